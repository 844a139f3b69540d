/*
 * main.c - local-delivery: the delivery agent for local domains, an
 * `accept` service on unix:private/local run as root
 * (`local accept unix:private/local root - 4 local-delivery`); see local.h.
 */
#include "local.h"
#include "mail/server.h"

#include <stdlib.h>

static struct local_settings settings;

static void local_fini(void)
{
    local_runners_end();
    local_settings_free(&settings);
}

static void local_init(struct server_ctx *ctx)
{
    local_settings_load(&settings, ctx->config);
    settings.listen_fds = ctx->listen_fds;
    settings.nlisten = ctx->nlisten;
    settings.client_fd = -1;
    /* Delivery children leave with _exit(), so only this process runs it. */
    atexit(local_fini);
}

static void local_serve_cb(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    settings.client_fd = fd;
    local_serve(&settings, fd);
    settings.client_fd = -1;
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = local_init,
        .serve = local_serve_cb,
    };
    return server_main(argc, argv, &ops);
}
