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
    local_settings_free(&settings);
}

static void local_init(struct server_ctx *ctx)
{
    local_settings_load(&settings, ctx->config);
    /* Delivery children leave with _exit(), so only this process runs it. */
    atexit(local_fini);
}

static void local_serve_cb(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    local_serve(&settings, fd);
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
