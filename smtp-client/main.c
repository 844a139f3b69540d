/*
 * main.c - smtp-client: wiring into the server skeleton, the settings read
 * once per process, and one `deliver` request from qmgr: open the queue
 * file read-only, group the recipients by domain (qmgr batches by transport
 * only), route and deliver each group, answer one result per recipient,
 * then the end record. Connections kept for reuse (cache.c) are closed by
 * the skeleton's wakeup hook when they expire and at exit. See smtpc.h for
 * the files.
 */
#include "smtpc.h"
#include "mail/map.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/server.h"
#include "mail/service_table.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct smtpc_settings settings;

/* ---- results ---- */

void smtpc_result_init(struct smtpc_result *r)
{
    r->status = DELIVERY_DEFERRED;
    strcpy(r->dsn, "4.0.0");
    strbuf_init(&r->reason);
    strbuf_init(&r->mta);
    strbuf_init(&r->diag);
    r->set = false;
}

void smtpc_result_free(struct smtpc_result *r)
{
    strbuf_free(&r->reason);
    strbuf_free(&r->mta);
    strbuf_free(&r->diag);
}

/* A peer's text may hold anything: printable ASCII only, at most max bytes. */
static void keep_printable(strbuf *b, size_t max)
{
    for (size_t i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)b->data[i];
        if (c < 0x20 || c >= 0x7f)
            b->data[i] = '?';
    }
    if (b->len > max) {
        strbuf_truncate(b, max);
        strbuf_appends(b, "...");
    }
}

void smtpc_result_set_remote(struct smtpc_result *r, const char *mta, const char *diag)
{
    strbuf_sets(&r->mta, mta);
    strbuf_sets(&r->diag, diag);
    keep_printable(&r->mta, DELIVERY_MTA_MAX - 3);
    keep_printable(&r->diag, DELIVERY_DIAG_MAX - 3);
}

void smtpc_result_copy(struct smtpc_result *dst, const struct smtpc_result *src)
{
    smtpc_result_set(dst, src->status, src->dsn, "%s", src->reason.data);
    if (src->mta.len && src->diag.len)
        smtpc_result_set_remote(dst, src->mta.data, src->diag.data);
}

void smtpc_result_set(struct smtpc_result *r, enum delivery_status st, const char *dsn,
                      const char *fmt, ...)
{
    r->status = st;
    r->set = true;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    if (!delivery_dsn_valid(r->dsn) ||
        r->dsn[0] != (st == DELIVERY_SENT ? '2' : st == DELIVERY_DEFERRED ? '4' : '5'))
        snprintf(r->dsn, sizeof(r->dsn), "%s",
                 st == DELIVERY_SENT ? "2.0.0" : st == DELIVERY_DEFERRED ? "4.0.0" : "5.0.0");
    strbuf_reset(&r->reason);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&r->reason, fmt, ap);
    va_end(ap);
    keep_printable(&r->reason, SMTPC_REASON_MAX);
    strbuf_reset(&r->mta);
    strbuf_reset(&r->diag);
}

/* ---- settings ---- */

static long long get_ms(struct config *cfg, const char *name)
{
    long long v = param_time(cfg, name);
    return v > 86400 ? 86400 * 1000LL : v * 1000;
}

/* The TCP ports this instance listens on: connecting to one of them on an
 * address of this host would deliver to ourselves. */
static void own_ports(struct smtpc_settings *s, const char *config_dir)
{
    struct service_table tab;
    memset(&tab, 0, sizeof(tab));
    strbuf path, err;
    strbuf_init(&path);
    strbuf_init(&err);
    strbuf_printf(&path, "%s/services.conf", config_dir);
    service_table_load(path.data, &tab, &err);
    for (int i = 0; i < tab.nservices; i++)
        for (int e = 0; e < tab.services[i].nendpoints; e++)
            if (tab.services[i].endpoints[e].kind == ENDPOINT_INET) {
                s->own_ports = xrealloc(s->own_ports, (s->n_own_ports + 1) * sizeof(int));
                s->own_ports[s->n_own_ports++] = tab.services[i].endpoints[e].port;
            }
    if (tab.nservices == 0) { /* unreadable table: assume the standard port */
        s->own_ports = xrealloc(s->own_ports, sizeof(int));
        s->own_ports[s->n_own_ports++] = 25;
    }
    service_table_free(&tab);
    strbuf_free(&path);
    strbuf_free(&err);
}

void smtpc_settings_load(struct smtpc_settings *s, struct config *cfg, const char *config_dir)
{
    memset(s, 0, sizeof(*s));
    s->queue_dir = xstrdup(param_str(cfg, "queue_directory"));
    s->myhostname = xstrdup(param_str(cfg, "myhostname"));
    s->relayhost = xstrdup(param_str(cfg, "relayhost"));
    long long port;
    strbuf err;
    strbuf_init(&err);
    if (config_get_int(cfg, "smtp_port", &port, &err) < 0)
        log_fatal("%s", err.data);
    s->port = (int)port;
    s->connect_ms = (int)get_ms(cfg, "smtp_connect_timeout");
    s->helo_ms = (int)get_ms(cfg, "smtp_helo_timeout");
    s->mail_ms = (int)get_ms(cfg, "smtp_mail_timeout");
    s->rcpt_ms = (int)get_ms(cfg, "smtp_rcpt_timeout");
    s->data_init_ms = (int)get_ms(cfg, "smtp_data_init_timeout");
    s->data_xfer_ms = (int)get_ms(cfg, "smtp_data_xfer_timeout");
    s->data_done_ms = (int)get_ms(cfg, "smtp_data_done_timeout");
    s->quit_ms = (int)get_ms(cfg, "smtp_quit_timeout");

    struct config_list l;
    if (config_get_list(cfg, "dns_servers", &l, &err) < 0)
        log_fatal("%s", err.data);
    strbuf csv;
    strbuf_init(&csv);
    for (size_t i = 0; i < l.count; i++) {
        if (i)
            strbuf_appendc(&csv, ',');
        strbuf_appends(&csv, l.items[i]);
    }
    config_list_free(&l);
    s->dns_servers = strbuf_detach(&csv, NULL);

    s->family = AF_UNSPEC;
    if (config_get_list(cfg, "inet_protocols", &l, &err) < 0)
        log_fatal("%s", err.data);
    bool v4 = false, v6 = false;
    for (size_t i = 0; i < l.count; i++) {
        if (strcasecmp(l.items[i], "all") == 0)
            v4 = v6 = true;
        else if (strcasecmp(l.items[i], "ipv4") == 0)
            v4 = true;
        else if (strcasecmp(l.items[i], "ipv6") == 0)
            v6 = true;
    }
    config_list_free(&l);
    if (v4 && !v6)
        s->family = AF_INET;
    else if (v6 && !v4)
        s->family = AF_INET6;

    s->rset_ms = (int)get_ms(cfg, "smtp_rset_timeout");
    s->cache_ms = (int)get_ms(cfg, "smtp_connection_cache_time_limit");
    s->reuse_limit = (int)param_int(cfg, "smtp_connection_reuse_count_limit");
    s->transport.name = "transport_maps";
    s->transport.spec = xstrdup(param_str(cfg, "transport_maps"));
    s->tls_policy.name = "smtp_tls_policy_maps";
    s->tls_policy.spec = xstrdup(param_str(cfg, "smtp_tls_policy_maps"));
    s->sasl_passwords.name = "smtp_sasl_password_maps";
    s->sasl_passwords.spec = xstrdup(param_str(cfg, "smtp_sasl_password_maps"));
    s->sasl_enable = param_bool(cfg, "smtp_sasl_auth_enable");
    s->sasl_tls_only = param_bool(cfg, "smtp_sasl_tls_only");

    const char *level = param_str(cfg, "smtp_tls_security_level");
    if (tls_parse_level(level, &s->tls_level) < 0)
        log_fatal("smtp_tls_security_level = %s: expected none, may, encrypt or verify", level);
    /* The policy table may ask for TLS where the default level does not. */
    if (s->tls_level != TLS_LEVEL_NONE || s->tls_policy.spec[0]) {
        strbuf_reset(&err);
        s->tls_ctx = tls_client_ctx_from_config(cfg, &err);
        if (s->tls_ctx == NULL)
            log_warning("TLS client disabled: %s%s", err.data,
                        s->tls_level >= TLS_LEVEL_ENCRYPT ? " (mail waits: TLS is required)"
                                                          : "");
    }
    own_ports(s, config_dir);
    strbuf_free(&err);
}

void smtpc_settings_free(struct smtpc_settings *s)
{
    free(s->queue_dir);
    free(s->myhostname);
    free(s->relayhost);
    free(s->dns_servers);
    free(s->own_ports);
    tls_ctx_free(&s->tls_ctx);
    struct smtpc_table *t[] = { &s->transport, &s->tls_policy, &s->sasl_passwords };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        free(t[i]->spec);
        map_list_close(&t[i]->ml);
    }
    memset(s, 0, sizeof(*s));
}

/* ---- one request ---- */

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

static void answer(int fd, const char *id, unsigned index, const char *addr,
                   const struct smtpc_result *r)
{
    struct delivery_result res;
    delivery_result_init(&res);
    delivery_result_set(&res, index, r->status, r->dsn, "%s", r->reason.data);
    delivery_result_set_remote(&res, r->mta.data, r->diag.data);
    if (delivery_result_write(fd, &res) < 0)
        log_warning("%s: cannot send the result for <%s> to qmgr", id, addr);
    delivery_result_free(&res);
}

static void serve_request(int fd)
{
    struct delivery_request req;
    strbuf err, path;
    delivery_request_init(&req);
    strbuf_init(&err);
    strbuf_init(&path);
    struct queue_file *qf = NULL;
    struct dns *dns = NULL;
    struct smtpc_result *res = NULL;
    bool *answered = NULL;
    int rc = delivery_request_read(fd, &req, &err);
    if (rc != 0) {
        if (rc < 0)
            log_warning("bad deliver request: %s", err.data);
        goto out;
    }
    res = xcalloc(req.nrcpt, sizeof(*res));
    for (size_t i = 0; i < req.nrcpt; i++)
        smtpc_result_init(&res[i]);
    strbuf_printf(&path, "%s/active/%s", settings.queue_dir, req.queue_id);
    bool eightbit = false;
    if (queue_file_open_readonly(path.data, &qf, &err) < 0 ||
        smtpc_content_scan(qf, &eightbit, &err) < 0) {
        log_warning("%s: %s", req.queue_id, err.data);
        for (size_t i = 0; i < req.nrcpt; i++)
            smtpc_result_set(&res[i], DELIVERY_DEFERRED, "4.3.0",
                             "cannot read the queue file: %s", err.data);
        goto answer;
    }
    strbuf_reset(&err);
    dns = dns_new(settings.dns_servers, "b", SMTPC_DNS_TRY_MS, SMTPC_DNS_TRIES, &err);
    if (dns == NULL)
        log_warning("%s", err.data);
    for (size_t i = 0; i < req.nrcpt; i++) {
        const struct delivery_rcpt *rc = &req.rcpts[i];
        if (rc->index >= qf->rcpt_count ||
            strcmp(qf->rcpts[rc->index].address, rc->address.data) != 0)
            smtpc_result_set(&res[i], DELIVERY_DEFERRED, "4.3.0",
                             "request does not match the queue file (recipient %u)", rc->index);
        else if (domain_of(rc->address.data)[0] == '\0')
            smtpc_result_set(&res[i], DELIVERY_BOUNCED, "5.1.3",
                             "address <%s> has no domain for SMTP delivery", rc->address.data);
        else if (dns == NULL)
            smtpc_result_set(&res[i], DELIVERY_DEFERRED, "4.3.0", "DNS resolver unavailable: %s",
                             err.data);
    }
    struct smtpc_msg msg = { .id = req.queue_id, .qf = qf, .sender = qf->sender,
                             .eightbit = eightbit };
    struct smtpc_rcpt *group = xcalloc(req.nrcpt, sizeof(*group));
    size_t *members = xcalloc(req.nrcpt, sizeof(*members));
    answered = xcalloc(req.nrcpt, sizeof(bool));
    /* One destination at a time: every unanswered recipient whose domain
     * equals (ignoring case) the first one's. */
    for (size_t i = 0; i < req.nrcpt; i++) {
        if (res[i].set)
            continue;
        const char *dom = domain_of(req.rcpts[i].address.data);
        size_t n = 0;
        for (size_t k = i; k < req.nrcpt; k++) {
            if (res[k].set || strcasecmp(domain_of(req.rcpts[k].address.data), dom) != 0)
                continue;
            const struct queue_rcpt *q = &qf->rcpts[req.rcpts[k].index];
            group[n].address = q->address;
            group[n].orcpt = q->orcpt;
            group[n].notify = q->notify;
            group[n].res = &res[k];
            members[n] = k;
            n++;
        }
        struct smtpc_route route;
        struct smtpc_result fail;
        struct smtpc_dest dest;
        smtpc_result_init(&fail);
        smtpc_dest_init(&dest);
        if (smtpc_dest_resolve(&settings, dom, &dest, &fail) < 0 ||
            smtpc_route(&settings, dns, &dest, &route, &fail) < 0) {
            log_event(req.queue_id, "%s", fail.reason.data);
            for (size_t k = 0; k < n; k++)
                smtpc_result_copy(group[k].res, &fail);
        } else {
            smtpc_deliver(&settings, &msg, &dest, &route, group, n);
            smtpc_route_free(&route);
        }
        smtpc_dest_free(&dest);
        smtpc_result_free(&fail);
        /* Answer this destination now: qmgr waits a limited time for each
         * result, and the next destination may be slow. */
        for (size_t k = 0; k < n; k++) {
            size_t j = members[k];
            answer(fd, req.queue_id, req.rcpts[j].index, req.rcpts[j].address.data, &res[j]);
            answered[j] = true;
        }
    }
    free(group);
    free(members);
answer:
    for (size_t i = 0; i < req.nrcpt; i++)
        if (answered == NULL || !answered[i])
            answer(fd, req.queue_id, req.rcpts[i].index, req.rcpts[i].address.data, &res[i]);
    delivery_done_write(fd);
out:
    if (res)
        for (size_t i = 0; i < req.nrcpt; i++)
            smtpc_result_free(&res[i]);
    free(res);
    free(answered);
    dns_free(&dns);
    queue_file_close(&qf);
    delivery_request_free(&req);
    strbuf_free(&err);
    strbuf_free(&path);
}

/* ---- the skeleton ---- */

static void smtpc_fini(void)
{
    smtpc_cache_close_all(); /* QUIT to every kept connection */
    smtpc_settings_free(&settings);
}

/* While no request comes: close the kept connections as they expire. */
static int smtpc_wakeup(struct server_ctx *ctx)
{
    (void)ctx;
    return smtpc_cache_expire();
}

static void smtpc_init(struct server_ctx *ctx)
{
    smtpc_settings_load(&settings, ctx->config, ctx->config_dir);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    atexit(smtpc_fini);
}

static void smtpc_serve(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    serve_request(fd);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = smtpc_init,
        .serve = smtpc_serve,
        .wakeup = smtpc_wakeup,
    };
    return server_main(argc, argv, &ops);
}
