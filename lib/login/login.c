/*
 * login.c - the front of a login process (see login.h): settings, the
 * client's identity, implicit TLS and STLS, the command loop with its line
 * limit, timeouts and bad-command count, and login_authenticate(), which
 * asks auth for a token and hands the client to the mailbox service.
 *
 * The protocol (pop3d/login.c, later imapd) only parses commands; every
 * byte to and from the client passes through here, so the limits are the
 * same for every protocol.
 */
#include "login/login.h"
#include "mail/params.h"
#include "tls/tls.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void login_settings_load(struct login_settings *s, struct config *cfg, const char *service)
{
    memset(s, 0, sizeof(*s));
    s->service = service;
    s->queue_dir = xstrdup(param_str(cfg, "queue_directory"));
    const char *mode = param_str(cfg, "tls_mode");
    if (strcmp(mode, "implicit") == 0)
        s->implicit_tls = true;
    else if (strcmp(mode, "starttls") != 0)
        log_fatal("parameter tls_mode: invalid value \"%s\" (expected starttls or implicit)",
                  mode);
    s->plaintext_loopback = param_bool(cfg, "login_plaintext_loopback");
    s->timeout_ms = (int)param_time(cfg, "login_timeout") * 1000;
    s->relay_timeout_ms = (int)param_time(cfg, "login_relay_timeout") * 1000;
    s->max_line = (size_t)param_int(cfg, "login_max_line");
    s->max_bad = (int)param_int(cfg, "login_max_bad_commands");
    strbuf err;
    strbuf_init(&err);
    if (tls_server_ctx_from_config(cfg, &s->tls_ctx, &err) < 0) {
        log_error("%s: TLS is off: %s", service, err.data);
        s->tls_ctx = NULL;
    }
    strbuf_free(&err);
    if (s->implicit_tls && s->tls_ctx == NULL)
        log_error("%s: tls_mode=implicit needs smtpd_tls_cert_file and smtpd_tls_key_file: "
                  "clients will be refused until it is configured", service);
    strbuf dir;
    strbuf_init(&dir);
    strbuf_printf(&dir, "%s/%s", s->queue_dir, LOGIN_DIR);
    struct stat st;
    if (stat(dir.data, &st) == 0) {
        s->have_login_dir = true;
        s->login_dev = st.st_dev;
        s->login_ino = st.st_ino;
    } else {
        log_error("%s: %s: %m (master creates it at start)", service, dir.data);
    }
    strbuf_free(&dir);
}

void login_socket_base(const struct login_settings *s, strbuf *out)
{
    struct stat st;
    if (s->have_login_dir && stat("/", &st) == 0 && st.st_dev == s->login_dev &&
        st.st_ino == s->login_ino)
        strbuf_sets(out, "");
    else
        strbuf_reset(out), strbuf_printf(out, "%s/%s", s->queue_dir, LOGIN_DIR);
}

static void identify(struct login_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    snprintf(c->client_addr, sizeof(c->client_addr), "unknown");
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct in_addr *a = &((struct sockaddr_in *)&ss)->sin_addr;
            inet_ntop(AF_INET, a, c->client_addr, sizeof(c->client_addr));
            c->loopback = (ntohl(a->s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
            if (IN6_IS_ADDR_V4MAPPED(a6)) {
                inet_ntop(AF_INET, &a6->s6_addr[12], c->client_addr, sizeof(c->client_addr));
                c->loopback = a6->s6_addr[12] == 127;
            } else {
                inet_ntop(AF_INET6, a6, c->client_addr, sizeof(c->client_addr));
                c->loopback = IN6_IS_ADDR_LOOPBACK(a6);
            }
        } else if (ss.ss_family == AF_UNIX) {
            snprintf(c->client_addr, sizeof(c->client_addr), "127.0.0.1");
            c->loopback = true;
        }
    }
    len = sizeof(ss);
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            c->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            c->local_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->client_log, sizeof(c->client_log), "unknown[%s]", c->client_addr);
}

int login_write(struct login_conn *c, const char *s)
{
    return netio_puts(c->io, s);
}

int login_reply(struct login_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = netio_vprintf(c->io, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = netio_puts(c->io, "\r\n");
    if (rc == 0)
        rc = netio_flush(c->io);
    return rc;
}

enum netio_status login_read_line(struct login_conn *c, strbuf *line)
{
    unsigned flags = 0;
    enum netio_status st = netio_read_line(c->io, line, &flags);
    if (st == NETIO_TOO_LONG && (flags & NETIO_LINE_DESYNC))
        return NETIO_ERROR;
    return st;
}

bool login_bad_command(struct login_conn *c)
{
    return ++c->bad >= c->settings->max_bad;
}

bool login_plaintext_allowed(const struct login_conn *c)
{
    return c->tls != NULL || (c->loopback && c->settings->plaintext_loopback);
}

bool login_tls_available(const struct login_conn *c)
{
    return c->tls == NULL && c->settings->tls_ctx != NULL;
}

bool login_tls_active(const struct login_conn *c)
{
    return c->tls != NULL;
}

size_t login_pending(const struct login_conn *c)
{
    return netio_pending(c->io);
}

int login_start_tls(struct login_conn *c)
{
    strbuf err;
    strbuf_init(&err);
    c->tls = tls_server_start(c->io, c->settings->tls_ctx, c->settings->timeout_ms, &err);
    if (c->tls == NULL) {
        log_info("TLS handshake error from %s: %s", c->client_log, err.data);
        strbuf_free(&err);
        return -1;
    }
    strbuf_free(&err);
    tls_describe(c->tls, &c->tls_desc);
    log_info("TLS connection established from %s: %s", c->client_log, c->tls_desc.data);
    if (tls_conn_dropped(c->tls) > 0)
        log_warning("%s: %zu bytes of plaintext pipelined before TLS were dropped",
                    c->client_log, tls_conn_dropped(c->tls));
    return 0;
}

/* The hand-off after auth said yes. Returns 0 when the client now belongs
 * to the mailbox process. */
static int hand_off(struct login_conn *c, const char *token, const char *proto_data)
{
    strbuf pending, err;
    strbuf_init(&pending);
    strbuf_init(&err);
    size_t n = netio_pending(c->io);
    if (n > 0 && netio_read_exact(c->io, &pending, n) != NETIO_OK) {
        strbuf_free(&pending);
        strbuf_free(&err);
        return -1;
    }
    int rc;
    if (c->tls == NULL) {
        rc = login_handoff_send(c, c->fd, token, &pending, proto_data, &err);
        if (rc == 0)
            c->handed_off = true;
    } else {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            strbuf_printf(&err, "socketpair: %s", strerror(errno));
            rc = -1;
        } else {
            rc = login_handoff_send(c, sv[1], token, &pending, proto_data, &err);
            close(sv[1]);
            if (rc == 0) {
                c->handed_off = true;
                login_relay(c, sv[0]);
            }
            close(sv[0]);
        }
    }
    if (rc < 0)
        log_error("%s: cannot hand the session to the mailbox service: %s", c->client_log,
                  err.data);
    memset(pending.data, 0, pending.cap);
    strbuf_free(&pending);
    strbuf_free(&err);
    return rc;
}

enum login_auth login_authenticate(struct login_conn *c, const char *mech, const char *user,
                                   const char *password, size_t password_len,
                                   const char *proto_data)
{
    struct auth_result res;
    auth_result_init(&res);
    strbuf base;
    strbuf_init(&base);
    login_socket_base(c->settings, &base);
    int rc = auth_verify_password(base.data, c->settings->service, c->client_addr, user,
                                  password, password_len, true, &res);
    strbuf_free(&base);
    enum auth_status st = rc < 0 ? AUTH_TEMPFAIL : res.status;
    const char *reason = res.reason.len ? res.reason.data : "-";
    enum login_auth out;
    switch (st) {
    case AUTH_OK:
        if (res.token.len == 0) {
            log_error("%s: auth answered ok without a token for user=<%s>", c->client_log, user);
            out = LOGIN_AUTH_TEMPFAIL;
            break;
        }
        log_info("login: user=<%s>, method=%s, client=%s, tls=%s", res.user.data, mech,
                 c->client_addr, c->tls_desc.len ? c->tls_desc.data : "no");
        out = hand_off(c, res.token.data, proto_data) == 0 ? LOGIN_AUTH_HANDED_OFF
                                                            : LOGIN_AUTH_TEMPFAIL;
        break;
    case AUTH_FAIL:
        log_warning("%s: %s authentication failed: %s, user=<%s>", c->client_log, mech, reason,
                    user);
        out = LOGIN_AUTH_FAILED;
        break;
    case AUTH_THROTTLED:
        log_warning("%s: %s authentication refused: too many failures from this client (%s)",
                    c->client_log, mech, reason);
        out = LOGIN_AUTH_THROTTLED;
        break;
    default:
        log_warning("%s: %s authentication temporarily failed: %s", c->client_log, mech, reason);
        out = LOGIN_AUTH_TEMPFAIL;
        break;
    }
    auth_result_free(&res);
    return out;
}

void login_drain(int fd, int timeout_ms)
{
    char buf[4096];
    long long deadline = netio_now_ms() + timeout_ms;
    size_t total = 0;
    shutdown(fd, SHUT_WR);
    while (total < 4u * 1024 * 1024) {
        if (netio_wait_fd(fd, POLLIN, netio_remaining_ms(deadline)) < 0)
            return;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;
        if (n > 0)
            total += (size_t)n;
    }
}

void login_serve(const struct login_settings *s, const struct login_proto *p, int fd)
{
    struct login_conn c;
    memset(&c, 0, sizeof(c));
    c.settings = s;
    c.proto = p;
    c.fd = fd;
    strbuf_init(&c.tls_desc);
    identify(&c);
    log_info("connect from %s", c.client_log);
    c.io = netio_new(fd);
    netio_set_read_timeout(c.io, s->timeout_ms);
    netio_set_write_timeout(c.io, s->timeout_ms);
    netio_set_max_line(c.io, s->max_line);
    netio_set_discard_limit(c.io, 64 * 1024);
    const char *why = "logout";
    if (s->implicit_tls) {
        if (s->tls_ctx == NULL) {
            why = "no TLS certificate configured";
            goto out;
        }
        if (login_start_tls(&c) < 0) {
            why = "TLS handshake failed";
            goto out;
        }
    }
    p->greet(&c);
    strbuf line;
    strbuf_init(&line);
    for (;;) {
        unsigned flags = 0;
        enum netio_status st = netio_read_line(c.io, &line, &flags);
        if (st == NETIO_TOO_LONG) {
            p->too_long(&c);
            c.bad++;
            if (flags & NETIO_LINE_DESYNC) {
                /* Past the discard limit the stream is not at a line start. */
                why = "line too long";
                break;
            }
        } else if (st != NETIO_OK) {
            why = st == NETIO_TIMEOUT ? "timeout" : "connection lost";
            break;
        } else if (p->command(&c, &line) == LOGIN_END) {
            why = c.handed_off ? "handed off" : "logout";
            break;
        }
        if (c.bad >= s->max_bad) {
            p->too_many_bad(&c);
            why = "too many bad commands";
            break;
        }
        if (netio_write_error(c.io) != 0) {
            why = "connection lost";
            break;
        }
    }
    /* The line may have held a password. */
    memset(line.data, 0, line.cap);
    strbuf_free(&line);
out:
    if (c.tls != NULL) {
        netio_flush(c.io); /* after a relay: nothing left, a no-op */
        tls_conn_shutdown(c.tls, 1000);
    }
    netio_free(&c.io);
    tls_conn_free(&c.tls);
    if (strcmp(why, "line too long") == 0 || strcmp(why, "too many bad commands") == 0)
        login_drain(fd, 1000);
    log_info("disconnect from %s (%s)", c.client_log, why);
    strbuf_free(&c.tls_desc);
}
