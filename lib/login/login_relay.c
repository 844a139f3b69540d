/*
 * login_relay.c - after a TLS client was handed off, the login process
 * keeps the TLS connection (the mailbox process never sees key material or
 * needs OpenSSL) and copies plaintext both ways between it and its end of
 * the socketpair whose other end the mailbox process got.
 *
 * One poll loop, one bounded buffer per direction (RELAY_CHUNK): client ->
 * mailbox bytes come from SSL_read on the non-blocking BIO of tls_io.c
 * (records OpenSSL already decrypted are drained before polling, so none
 * wait for more network input), mailbox -> client bytes go out through the
 * netio (write timeout). When the client closes, the mailbox side gets a
 * half-close (shutdown SHUT_WR) and the relay waits for the session to end
 * (a POP3 session without QUIT then deletes nothing); when the mailbox
 * side closes, the relay flushes, sends close_notify and ends. Idle for
 * login_relay_timeout in both directions also ends it.
 */
#include "login/login.h"
#include "tls/tls.h"
#include "util/log.h"

#include <openssl/err.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_CHUNK (16 * 1024)

/* Writes all of buf to the socketpair within the deadline. */
static int write_inner(int fd, const char *buf, size_t n, int timeout_ms)
{
    long long deadline = netio_now_ms() + timeout_ms;
    while (n > 0) {
        if (netio_wait_fd(fd, POLLOUT, netio_remaining_ms(deadline)) < 0)
            return -1;
        ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Moves what the TLS layer has for the mailbox side. Returns 1 when bytes
 * moved, 0 when nothing is ready (*want says which poll event the TLS
 * layer waits for), -1 when the client is gone (clean close or error). */
static int client_to_inner(struct login_conn *c, int inner, char *buf, short *want)
{
    SSL *ssl = tls_conn_ssl(c->tls);
    size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(ssl, buf, RELAY_CHUNK, &got);
    if (r == 1) {
        if (write_inner(inner, buf, got, c->settings->relay_timeout_ms) < 0)
            return -2;
        return 1;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        *want = POLLIN;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = POLLOUT;
        return 0;
    }
    ERR_clear_error();
    return -1;
}

void login_relay(struct login_conn *c, int inner)
{
    static char buf[RELAY_CHUNK];
    bool client_open = true;
    const char *why = "session ended";
    netio_set_write_timeout(c->io, c->settings->relay_timeout_ms);
    for (;;) {
        bool moved = false;
        short want = POLLIN;
        if (client_open) {
            int r = client_to_inner(c, inner, buf, &want);
            if (r == -2) {
                why = "mailbox process stopped reading";
                break;
            }
            if (r < 0) {
                /* The client is gone: let the session see end of file and
                 * finish (without QUIT nothing is deleted). */
                client_open = false;
                shutdown(inner, SHUT_WR);
            }
            if (r > 0)
                moved = true;
        }
        ssize_t n = recv(inner, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            break; /* the session ended */
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            why = "mailbox connection error";
            break;
        }
        if (n > 0) {
            moved = true;
            if (client_open &&
                (netio_write(c->io, buf, (size_t)n) < 0 || netio_flush(c->io) < 0)) {
                /* Keep draining the mailbox side until it ends. */
                client_open = false;
                shutdown(inner, SHUT_WR);
            }
        }
        if (moved)
            continue;
        struct pollfd p[2];
        int np = 0;
        p[np++] = (struct pollfd){ .fd = inner, .events = POLLIN };
        if (client_open)
            p[np++] = (struct pollfd){ .fd = c->fd, .events = want };
        int rc = poll(p, (nfds_t)np, c->settings->relay_timeout_ms);
        if (rc == 0) {
            why = "idle timeout";
            break;
        }
        if (rc < 0 && errno != EINTR) {
            why = "poll error";
            break;
        }
    }
    memset(buf, 0, sizeof(buf));
    log_debug("%s: relay finished: %s", c->client_log, why);
}
