/*
 * main.c - smtpd: the inbound ESMTP server on port 25, one client per
 * process, served by master through the server skeleton.
 */
#include "smtpd.h"
#include "mail/server.h"

static struct smtp_service_settings settings;

static void smtpd_init(struct server_ctx *ctx)
{
    smtp_service_settings_load(&settings, ctx->config);
}

static void smtpd_serve_cb(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    smtpd_serve(&settings, fd);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = smtpd_init,
        .serve = smtpd_serve_cb,
    };
    return server_main(argc, argv, &ops);
}
