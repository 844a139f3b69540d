/*
 * session.c - one SMTP client of smtpd: the engine's callbacks, wired to
 * the shared connection, recipient check and queue sink (lib/smtp/service,
 * lib/smtp/queue_sink). Relay is allowed to clients in mynetworks only.
 */
#include "smtpd.h"
#include "util/log.h"
#include "util/netio.h"

#include <string.h>

static void cb_rcpt(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    const struct smtp_rcpt *rcpt, struct smtp_reply *r)
{
    (void)s;
    struct smtpd_session *ss = ctx;
    smtp_check_rcpt(&ss->conn, ss->trusted, env, rcpt, r);
}

static void cb_data_start(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          struct smtp_reply *r)
{
    struct smtpd_session *ss = ctx;
    ss->conn.client.tls = smtp_session_tls(s);
    ss->conn.client.auth_user = smtp_session_auth_user(s);
    queue_sink_begin(&ss->conn.sink, env, &ss->conn.client, r);
}

static int cb_data_chunk(void *ctx, struct smtp_session *s, const char *p, size_t n,
                         struct smtp_reply *r)
{
    (void)s;
    struct smtpd_session *ss = ctx;
    return queue_sink_write(&ss->conn.sink, p, n, r);
}

static void cb_data_end(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                        struct smtp_reply *r)
{
    (void)s;
    struct smtpd_session *ss = ctx;
    queue_sink_commit(&ss->conn.sink, env, &ss->conn.client, r);
}

static void cb_data_abort(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          const char *reason)
{
    (void)s;
    (void)env;
    struct smtpd_session *ss = ctx;
    queue_sink_abort(&ss->conn.sink, reason);
}

/* STARTTLS: the engine has sent 220 and dropped pipelined input; the
 * handshake runs on the socket and netio switches to TLS. */
static int cb_starttls(void *ctx, struct smtp_session *s)
{
    struct smtpd_session *ss = ctx;
    return smtp_conn_start_tls(&ss->conn, smtp_session_netio(s));
}

static const struct smtp_server_ops smtpd_ops = {
    .on_rcpt = cb_rcpt,
    .on_data_start = cb_data_start,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_data_abort = cb_data_abort,
};

void smtpd_serve(struct smtp_service_settings *s, int fd)
{
    struct smtpd_session ss;
    memset(&ss, 0, sizeof(ss));
    smtp_conn_open(&ss.conn, s, fd);
    ss.trusted = ss.conn.local_socket || cidr_match_text(&s->mynetworks, ss.conn.client_addr);

    struct smtp_server_config engine = s->engine;
    engine.client = ss.conn.client_log;
    struct smtp_server_ops ops = smtpd_ops;
    if (s->tls_ctx != NULL)
        ops.on_starttls = cb_starttls;
    struct netio *io = netio_new(fd);
    enum smtp_end end = smtp_server_run(io, &engine, &ops, &ss);
    smtp_conn_close(&ss.conn, &io, end);
}
