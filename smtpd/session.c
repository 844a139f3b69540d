/*
 * session.c - one SMTP client: who it is, the engine's callbacks, and the
 * connect/disconnect log lines.
 */
#include "smtpd.h"
#include "util/log.h"
#include "util/netio.h"

#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void peer_address(int fd, char *out, size_t n, bool *is_local_socket)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    *is_local_socket = false;
    snprintf(out, n, "unknown");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)n);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)n);
        else
            inet_ntop(AF_INET6, a6, out, (socklen_t)n);
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(out, n, "127.0.0.1");
        *is_local_socket = true;
    }
}

static void cb_rcpt(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    const struct smtp_rcpt *rcpt, struct smtp_reply *r)
{
    (void)s;
    smtpd_check_rcpt(ctx, env, rcpt, r);
}

static void cb_data_start(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          struct smtp_reply *r)
{
    struct smtpd_session *ss = ctx;
    ss->client.tls = smtp_session_tls(s);
    ss->client.auth_user = smtp_session_auth_user(s);
    queue_sink_begin(&ss->sink, env, &ss->client, r);
}

static int cb_data_chunk(void *ctx, struct smtp_session *s, const char *p, size_t n,
                         struct smtp_reply *r)
{
    (void)s;
    struct smtpd_session *ss = ctx;
    return queue_sink_write(&ss->sink, p, n, r);
}

static void cb_data_end(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                        struct smtp_reply *r)
{
    (void)s;
    struct smtpd_session *ss = ctx;
    queue_sink_commit(&ss->sink, env, &ss->client, r);
}

static void cb_data_abort(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          const char *reason)
{
    (void)s;
    (void)env;
    struct smtpd_session *ss = ctx;
    queue_sink_abort(&ss->sink, reason);
}

/* STARTTLS: the engine has sent 220 and dropped pipelined input; the
 * handshake runs on the socket and netio switches to TLS. */
static int cb_starttls(void *ctx, struct smtp_session *s)
{
    struct smtpd_session *ss = ctx;
    strbuf err;
    strbuf_init(&err);
    ss->tls = tls_server_start(smtp_session_netio(s), ss->settings->tls_ctx,
                               ss->settings->starttls_timeout_ms, &err);
    if (ss->tls == NULL) {
        log_info("TLS handshake error from %s: %s", ss->client_log, err.data);
        strbuf_free(&err);
        return -1;
    }
    strbuf_free(&err);
    if (tls_conn_dropped(ss->tls) > 0)
        log_warning("discarded %zu bytes of plaintext received from %s before the TLS "
                    "handshake", tls_conn_dropped(ss->tls), ss->client_log);
    strbuf_reset(&ss->tls_details);
    tls_describe(ss->tls, &ss->tls_details);
    ss->client.tls_details = ss->tls_details.data;
    log_info("TLS connection established from %s: %s%s", ss->client_log, ss->tls_details.data,
             tls_conn_resumed(ss->tls) ? " (resumed)" : "");
    return 0;
}

static const struct smtp_server_ops smtpd_ops = {
    .on_rcpt = cb_rcpt,
    .on_data_start = cb_data_start,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_data_abort = cb_data_abort,
};

/* Closing a socket with unread input makes the kernel send a reset, which
 * can destroy our last reply (a 554 to a pre-greeting talker, a 421) before
 * the client reads it. Half-close and drain briefly first. */
static void lingering_close(int fd)
{
    if (shutdown(fd, SHUT_WR) < 0)
        return;
    char buf[4096];
    size_t drained = 0;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (drained < 256 * 1024 && poll(&p, 1, 200) > 0) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        drained += (size_t)r;
    }
}

void smtpd_serve(struct smtpd_settings *s, int fd)
{
    struct smtpd_session ss;
    memset(&ss, 0, sizeof(ss));
    ss.settings = s;
    bool local_socket;
    peer_address(fd, ss.client_addr, sizeof(ss.client_addr), &local_socket);
    snprintf(ss.client_log, sizeof(ss.client_log), "unknown[%s]", ss.client_addr);
    ss.trusted = local_socket || cidr_match_text(&s->mynetworks, ss.client_addr);
    ss.client.name = "unknown";
    ss.client.addr = ss.client_addr;
    ss.client.log_name = ss.client_log;
    strbuf_init(&ss.tls_details);
    queue_sink_init(&ss.sink, s->queue_dir, s->myhostname, s->mail_name);
    log_info("connect from %s", ss.client_log);

    struct smtp_server_config engine = s->engine;
    engine.client = ss.client_log;
    struct smtp_server_ops ops = smtpd_ops;
    if (s->tls_ctx != NULL)
        ops.on_starttls = cb_starttls;
    struct netio *io = netio_new(fd);
    enum smtp_end end = smtp_server_run(io, &engine, &ops, &ss);
    if (ss.tls != NULL && (end == SMTP_END_QUIT || end == SMTP_END_DISCONNECT))
        tls_conn_shutdown(ss.tls, 1000); /* close_notify after the last reply */
    netio_free(&io);
    tls_conn_free(&ss.tls);
    strbuf_free(&ss.tls_details);
    if (end != SMTP_END_QUIT && end != SMTP_END_DISCONNECT)
        lingering_close(fd);
    queue_sink_free(&ss.sink);
    log_info("disconnect from %s (%s)", ss.client_log, smtp_end_str(end));
}
