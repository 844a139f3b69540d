/*
 * service_settings.c - the settings the SMTP server daemons read from
 * petrel.conf once per process (moved here from smtpd so that submission
 * reads the same parameters the same way); see service.h.
 */
#include "smtp/service.h"
#include "mail/params.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <string.h>

void smtp_service_settings_load(struct smtp_service_settings *s, struct config *cfg)
{
    memset(s, 0, sizeof(*s));
    strbuf err;
    strbuf_init(&err);
    params_host_defaults(cfg, NULL);
    s->queue_dir = xstrdup(config_get(cfg, "queue_directory"));
    s->myhostname = xstrdup(config_get(cfg, "myhostname"));
    s->mail_name = xstrdup(config_get(cfg, "mail_name"));
    /* smtpd_banner starts with $myhostname by convention; the engine puts the
     * hostname first itself, so keep only what follows it. */
    const char *banner = config_get(cfg, "smtpd_banner");
    size_t hl = strlen(s->myhostname);
    if (banner && strncmp(banner, s->myhostname, hl) == 0 && banner[hl] == ' ')
        banner += hl + 1;
    s->banner = xstrdup(banner && *banner ? banner : "ESMTP");

    const char *nets = config_get(cfg, "mynetworks");
    if (cidr_list_parse(&s->mynetworks, nets ? nets : "", "mynetworks", &err) > 0)
        log_fatal("%s", err.data);
    strbuf_reset(&err);
    s->resolver = resolver_new(cfg, &err);
    if (err.len)
        log_warning("%s", err.data); /* lookups answer 451 until the tables are fixed */
    strbuf_reset(&err);

    long long size = 0;
    if (config_get_size(cfg, "message_size_limit", &size, &err) < 0)
        log_fatal("%s", err.data);
    struct smtp_server_config *e = &s->engine;
    e->hostname = s->myhostname;
    e->greeting = s->banner;
    e->size_limit = (uint64_t)size;
    e->max_rcpt = (size_t)param_int(cfg, "smtpd_recipient_limit");
    e->max_line = (size_t)param_int(cfg, "line_length_limit");
    e->cmd_timeout_ms = (int)(param_time(cfg, "smtpd_timeout") * 1000);
    e->data_timeout_ms = (int)(param_time(cfg, "smtpd_data_timeout") * 1000);
    e->soft_errors = (int)param_int(cfg, "smtpd_soft_error_limit");
    if (e->soft_errors == 0)
        e->soft_errors = -1; /* 0 in the config: delay from the first error */
    e->hard_errors = (int)param_int(cfg, "smtpd_hard_error_limit");
    e->error_delay_ms = (int)(param_time(cfg, "smtpd_error_sleep_time") * 1000);
    if (e->error_delay_ms == 0)
        e->error_delay_ms = -1;
    e->pregreet_ms = (int)param_int(cfg, "smtpd_pregreet_wait");
    e->pipelining = true;
    e->eightbitmime = true;
    e->smtputf8 = param_bool(cfg, "smtputf8_enable");
    e->dsn = true;
    e->chunking = true;
    e->vrfy = false; /* 252: VRFY never reveals users */

    s->starttls_timeout_ms = (int)(param_time(cfg, "smtpd_starttls_timeout") * 1000);
    s->peername_lookup = param_bool(cfg, "smtpd_peername_lookup");
    const char *servers = config_get(cfg, "dns_servers");
    s->dns_servers = xstrdup(servers ? servers : "");
    s->client_dns_timeout_ms = (int)(param_time(cfg, "smtpd_client_dns_timeout") * 1000);
    strbuf_reset(&err);
    if (tls_server_ctx_from_config(cfg, &s->tls_ctx, &err) < 0)
        log_error("TLS is not available, STARTTLS will not be offered: %s", err.data);
    strbuf_free(&err);
}
