/*
 * session.c - one client of submission: the engine's callbacks and the
 * connection.
 *
 * Order of things a client meets:
 *   587: banner, EHLO (STARTTLS offered, AUTH not), STARTTLS, EHLO (AUTH
 *        offered), AUTH, MAIL, RCPT, DATA. AUTH or MAIL before STARTTLS:
 *        530 5.7.0 Must issue a STARTTLS command first.
 *   465: the TLS handshake before anything else (RFC 8314 §3.3), then the
 *        banner and the same dialogue without STARTTLS.
 *   MAIL before AUTH: 530 5.7.0 Authentication required. The envelope
 *   sender must belong to the user (sender_owned; 553 5.7.1); so must the
 *   From:/Sender: addresses (content.c).
 *   RCPT: any destination (the client is authenticated), but recipients in
 *   our own domains must exist (smtp_check_rcpt, shared with smtpd).
 * The queue file records the user (auth_user) and Received: says ESMTPSA.
 */
#include "submission.h"
#include "util/log.h"
#include "util/netio.h"

#include <string.h>

static void cb_connect(void *ctx, struct smtp_session *s, struct smtp_reply *r)
{
    struct submission_session *ss = ctx;
    if (ss->settings->base.tls_ctx == NULL) {
        smtp_reply_set(r, 421, "4.3.0", "%s Error: TLS is not available, try again later",
                       ss->settings->base.myhostname);
        return;
    }
    if (ss->settings->implicit_tls)
        smtp_session_set_tls(s, true); /* the handshake ran before the session */
}

static void cb_mail(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    struct smtp_reply *r)
{
    struct submission_session *ss = ctx;
    if (!smtp_session_tls(s)) {
        smtp_reply_set(r, 530, "5.7.0", "Must issue a STARTTLS command first");
        return;
    }
    const char *login = smtp_session_auth_user(s);
    if (login == NULL) {
        smtp_reply_set(r, 530, "5.7.0", "Authentication required");
        return;
    }
    if (env->sender.is_null)
        return; /* <>: notifications (vacation replies) belong to nobody */
    strbuf addr, why;
    strbuf_init(&addr);
    strbuf_init(&why);
    address_format(&addr, &env->sender);
    switch (sender_owned(ss->settings, login, env->sender.local.data, env->sender.domain.data,
                         &why)) {
    case SENDER_OWNED:
        break;
    case SENDER_NOT_OWNED:
        submission_reject_sender(ss, addr.data, login, "MAIL", r);
        break;
    case SENDER_LOOKUP_ERROR:
        log_warning("sender login lookup for <%s> failed: %s", addr.data, why.data);
        smtp_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure", addr.data);
        break;
    }
    strbuf_free(&addr);
    strbuf_free(&why);
}

static void cb_rcpt(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    const struct smtp_rcpt *rcpt, struct smtp_reply *r)
{
    (void)s;
    struct submission_session *ss = ctx;
    smtp_check_rcpt(&ss->conn, true, env, rcpt, r);
}

static void cb_data_start(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          struct smtp_reply *r)
{
    struct submission_session *ss = ctx;
    ss->conn.client.tls = smtp_session_tls(s);
    ss->conn.client.auth_user = smtp_session_auth_user(s);
    if (queue_sink_begin(&ss->conn.sink, env, &ss->conn.client, r) == 0)
        submission_content_begin(ss);
}

static int cb_data_chunk(void *ctx, struct smtp_session *s, const char *p, size_t n,
                         struct smtp_reply *r)
{
    struct submission_session *ss = ctx;
    return submission_content_write(ss, smtp_session_envelope(s), smtp_session_auth_user(s), p,
                                     n, r);
}

static void cb_data_end(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                        struct smtp_reply *r)
{
    struct submission_session *ss = ctx;
    if (submission_content_end(ss, env, smtp_session_auth_user(s), r) < 0) {
        queue_sink_abort(&ss->conn.sink, "refused at end of data");
        return;
    }
    queue_sink_commit(&ss->conn.sink, env, &ss->conn.client, r);
}

static void cb_data_abort(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          const char *reason)
{
    (void)s;
    (void)env;
    struct submission_session *ss = ctx;
    queue_sink_abort(&ss->conn.sink, reason);
}

static void cb_reset(void *ctx, struct smtp_session *s)
{
    (void)s;
    struct submission_session *ss = ctx;
    strbuf_reset(&ss->head);
}

static void cb_ehlo_keywords(void *ctx, struct smtp_session *s, strbuf *out)
{
    submission_auth_ehlo(ctx, s, out);
}

static int cb_starttls(void *ctx, struct smtp_session *s)
{
    struct submission_session *ss = ctx;
    return smtp_conn_start_tls(&ss->conn, smtp_session_netio(s));
}

static bool cb_command(void *ctx, struct smtp_session *s, const char *verb, const char *args)
{
    if (strcmp(verb, "AUTH") == 0)
        return submission_auth_command(ctx, s, args);
    return false;
}

static const struct smtp_server_ops submission_ops = {
    .on_connect = cb_connect,
    .on_mail = cb_mail,
    .on_rcpt = cb_rcpt,
    .on_data_start = cb_data_start,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_data_abort = cb_data_abort,
    .on_reset = cb_reset,
    .ehlo_keywords = cb_ehlo_keywords,
    .on_command = cb_command,
};

void submission_serve(struct submission_settings *s, int fd)
{
    struct submission_session ss;
    memset(&ss, 0, sizeof(ss));
    ss.settings = s;
    strbuf_init(&ss.head);
    smtp_conn_open(&ss.conn, &s->base, fd);

    struct smtp_server_config engine = s->base.engine;
    engine.client = ss.conn.client_log;
    struct smtp_server_ops ops = submission_ops;
    struct netio *io = netio_new(fd);
    enum smtp_end end;
    if (s->implicit_tls && s->base.tls_ctx != NULL) {
        /* RFC 8314: TLS first; the client speaks first, so no pre-greeting
         * check. A failed handshake ends the connection without a word. */
        engine.pregreet_ms = -1;
        if (smtp_conn_start_tls(&ss.conn, io) < 0) {
            smtp_conn_close(&ss.conn, &io, SMTP_END_TLS_FAILED);
            strbuf_free(&ss.head);
            return;
        }
    } else if (s->base.tls_ctx != NULL) {
        ops.on_starttls = cb_starttls;
    }
    end = smtp_server_run(io, &engine, &ops, &ss);
    smtp_conn_close(&ss.conn, &io, end);
    strbuf_free(&ss.head);
}
