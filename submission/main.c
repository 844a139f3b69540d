/*
 * main.c - submission: the MSA on 587 (STARTTLS) and 465 (implicit TLS),
 * one client per process, served by master through the server skeleton:
 *
 *   submission  accept inet:587 - - 100 submission
 *   submissions accept inet:465 - - 100 submission -o tls_mode=implicit
 *
 * It reads the same smtpd_* parameters as smtpd (per-service -o overrides
 * change them for submission only), plus tls_mode and
 * smtpd_sender_login_maps.
 */
#include "submission.h"
#include "mail/server.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <string.h>

void submission_settings_load(struct submission_settings *s, struct config *cfg)
{
    memset(s, 0, sizeof(*s));
    smtp_service_settings_load(&s->base, cfg);
    const char *mode = config_get(cfg, "tls_mode");
    if (mode == NULL || strcmp(mode, "starttls") == 0)
        s->implicit_tls = false;
    else if (strcmp(mode, "implicit") == 0)
        s->implicit_tls = true;
    else
        log_fatal("parameter tls_mode: invalid value \"%s\" (expected starttls or implicit)",
                  mode);
    if (s->base.tls_ctx == NULL)
        log_error("submission needs TLS (smtpd_tls_cert_file and smtpd_tls_key_file): "
                  "clients will be refused until it is configured");
    const char *origin = config_get(cfg, "myorigin");
    s->myorigin = xstrdup(origin && *origin ? origin : s->base.myhostname);
    const char *maps = config_get(cfg, "smtpd_sender_login_maps");
    if (maps != NULL && *maps != '\0') {
        strbuf err;
        strbuf_init(&err);
        if (map_list_open(maps, 0, &s->sender_logins, &err) < 0) {
            /* Keep running: senders are answered 451 until the table is
             * fixed, so no mail is lost and nobody is let through. */
            log_error("smtpd_sender_login_maps: %s", err.data);
            s->sender_logins_broken = true;
        }
        strbuf_free(&err);
    }
}

static struct submission_settings settings;

static void submission_init(struct server_ctx *ctx)
{
    submission_settings_load(&settings, ctx->config);
}

static void submission_serve_cb(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    submission_serve(&settings, fd);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = submission_init,
        .serve = submission_serve_cb,
    };
    return server_main(argc, argv, &ops);
}
