/*
 * service_conn.c - one client connection of an SMTP server daemon: who it
 * is, the TLS handshake, and the end of the connection; see service.h.
 */
#include "smtp/service.h"
#include "mail/dns.h"
#include "util/log.h"
#include "util/netio.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

void smtp_conn_open(struct smtp_conn *c, const struct smtp_service_settings *s, int fd)
{
    memset(c, 0, sizeof(*c));
    c->settings = s;
    c->fd = fd;
    peer_address(fd, c->client_addr, sizeof(c->client_addr), &c->local_socket);
    snprintf(c->client_name, sizeof(c->client_name), "unknown");
    if (s->peername_lookup && !c->local_socket)
        dns_client_name(s->dns_servers, s->client_dns_timeout_ms, c->client_addr,
                        c->client_name, sizeof(c->client_name));
    snprintf(c->client_log, sizeof(c->client_log), "%s[%s]", c->client_name, c->client_addr);
    c->client.name = c->client_name;
    c->client.addr = c->client_addr;
    c->client.log_name = c->client_log;
    strbuf_init(&c->tls_details);
    queue_sink_init(&c->sink, s->queue_dir, s->myhostname, s->mail_name);
    log_info("connect from %s", c->client_log);
}

int smtp_conn_start_tls(struct smtp_conn *c, struct netio *io)
{
    strbuf err;
    strbuf_init(&err);
    c->tls = tls_server_start(io, c->settings->tls_ctx, c->settings->starttls_timeout_ms, &err);
    if (c->tls == NULL) {
        log_info("TLS handshake error from %s: %s", c->client_log, err.data);
        strbuf_free(&err);
        return -1;
    }
    strbuf_free(&err);
    if (tls_conn_dropped(c->tls) > 0)
        log_warning("discarded %zu bytes of plaintext received from %s before the TLS "
                    "handshake", tls_conn_dropped(c->tls), c->client_log);
    strbuf_reset(&c->tls_details);
    tls_describe(c->tls, &c->tls_details);
    c->client.tls = true;
    c->client.tls_details = c->tls_details.data;
    log_info("TLS connection established from %s: %s%s", c->client_log, c->tls_details.data,
             tls_conn_resumed(c->tls) ? " (resumed)" : "");
    return 0;
}

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

void smtp_conn_close(struct smtp_conn *c, struct netio **io, enum smtp_end end)
{
    if (c->tls != NULL && (end == SMTP_END_QUIT || end == SMTP_END_DISCONNECT))
        tls_conn_shutdown(c->tls, 1000); /* close_notify after the last reply */
    netio_free(io);
    tls_conn_free(&c->tls);
    strbuf_free(&c->tls_details);
    if (end != SMTP_END_QUIT && end != SMTP_END_DISCONNECT)
        lingering_close(c->fd);
    queue_sink_free(&c->sink);
    log_info("disconnect from %s (%s)", c->client_log, smtp_end_str(end));
}
