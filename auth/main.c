/*
 * main.c - auth: the authentication service, an `accept` service run as
 * root (`auth accept unix:private/auth root - 10 auth`); see auth.h and
 * docs/auth.md.
 */
#include "auth.h"
#include "mail/server.h"

#include <stdlib.h>

static struct auth_settings settings;

static void auth_fini(void)
{
    auth_settings_free(&settings);
}

static void auth_init(struct server_ctx *ctx)
{
    auth_settings_load(&settings, ctx->config);
    atexit(auth_fini);
}

static void auth_serve_cb(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    auth_serve(&settings, fd);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = auth_init,
        .serve = auth_serve_cb,
    };
    return server_main(argc, argv, &ops);
}
