/*
 * tls_io.c - TLS connections: the handshake on a netio's descriptors, the
 * netio backend that carries the line layer over TLS afterwards, and the
 * end of a connection.
 *
 * OpenSSL talks to the descriptors through a small BIO of our own that
 * never blocks (MSG_DONTWAIT on sockets, poll-then-read/write on anything
 * else) and never changes the descriptor's flags; every "want read/write"
 * becomes a netio_wait_fd() with the time left until the caller's deadline.
 * So the handshake and every read and write obey netio's timeouts, and a
 * peer that stops talking costs at most the timeout. What a connection
 * tells about itself (protocol, cipher, peer) is in tls_conn_info.c.
 */
#include "tls/tls.h"
#include "tls/tls_int.h"
#include "util/xalloc.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


/* ---- the BIO ---- */

static BIO_METHOD *bio_method;
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

/* Readiness now, without waiting (for descriptors that are not sockets). */
static bool ready_now(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
    return poll(&p, 1, 0) > 0;
}

static int bio_read(BIO *b, char *buf, int n)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    ssize_t r = -1;
    if (!c->r_notsock) {
        r = recv(c->rfd, buf, (size_t)n, MSG_DONTWAIT);
        if (r < 0 && errno == ENOTSOCK)
            c->r_notsock = true;
    }
    if (c->r_notsock) {
        if (!ready_now(c->rfd, POLLIN)) {
            BIO_set_retry_read(b);
            return -1;
        }
        r = read(c->rfd, buf, (size_t)n);
    }
    if (r >= 0)
        return (int)r; /* 0: end of file */
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        BIO_set_retry_read(b);
        return -1;
    }
    c->sys_errno = errno;
    return -1;
}

static int bio_write(BIO *b, const char *buf, int n)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    ssize_t r = -1;
    if (!c->w_notsock) {
        /* MSG_NOSIGNAL: a vanished peer is EPIPE, not a signal. */
        r = send(c->wfd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0 && errno == ENOTSOCK)
            c->w_notsock = true;
    }
    if (c->w_notsock) {
        if (!ready_now(c->wfd, POLLOUT)) {
            BIO_set_retry_write(b);
            return -1;
        }
        /* POLLOUT on a pipe promises room for PIPE_BUF bytes. */
        r = write(c->wfd, buf, (size_t)n < PIPE_BUF ? (size_t)n : PIPE_BUF);
    }
    if (r > 0)
        return (int)r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_write(b);
        return -1;
    }
    c->sys_errno = r == 0 ? EIO : errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Nothing is buffered here, so a flush is always complete. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "petrel fd");
    if (m == NULL || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

/* ---- waiting and errors ---- */

/* After SSL_ERROR_WANT_*: waits for the descriptor within the deadline.
 * Returns 0, or -1 with errno (ETIMEDOUT). */
static int wait_for(struct tls_conn *c, int ssl_error, long long deadline)
{
    if (ssl_error == SSL_ERROR_WANT_READ)
        return netio_wait_fd(c->rfd, POLLIN, netio_remaining_ms(deadline));
    return netio_wait_fd(c->wfd, POLLOUT, netio_remaining_ms(deadline));
}

/* Records a fatal error of the connection in c->error, in words. `during`
 * completes "connection closed by the peer ..."; `failed` introduces
 * OpenSSL's reasons ("TLS handshake failed"). */
static void record_error(struct tls_conn *c, int ssl_error, const char *during,
                         const char *failed)
{
    c->fatal = true;
    strbuf_reset(&c->error);
    unsigned long e = ERR_peek_last_error();
    if (ssl_error == SSL_ERROR_SYSCALL && c->sys_errno != 0) {
        strbuf_printf(&c->error, "connection error %s: %s", during, strerror(c->sys_errno));
    } else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN ||
               ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        strbuf_printf(&c->error, "connection closed by the peer %s", during);
    } else {
        int reason = ERR_GET_REASON(e);
        strbuf_printf(&c->error, "%s: ", failed);
        tls_append_ssl_errors(&c->error, "unknown error");
        /* What OpenSSL says when the bytes are not TLS records at all. */
        if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST ||
            reason == SSL_R_HTTPS_PROXY_REQUEST || reason == SSL_R_PACKET_LENGTH_TOO_LONG)
            strbuf_appends(&c->error, " (the peer did not send TLS data)");
    }
    ERR_clear_error();
}

/* ---- the netio backend ---- */

static ssize_t be_read(void *vctx, void *buf, size_t n, int timeout_ms)
{
    struct tls_conn *c = vctx;
    long long deadline = netio_now_ms() + timeout_ms;
    if (c->fatal) {
        errno = EPROTO;
        return -1;
    }
    for (;;) {
        size_t got = 0;
        ERR_clear_error();
        c->sys_errno = 0;
        int r = SSL_read_ex(c->ssl, buf, n, &got);
        if (r == 1)
            return (ssize_t)got;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_for(c, e, deadline) < 0)
                return -1;
            continue;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0; /* close_notify, or a plain close (SSL_OP_IGNORE_UNEXPECTED_EOF) */
        record_error(c, e, "while reading", "TLS read error");
        if (e == SSL_ERROR_SYSCALL && c->sys_errno == 0)
            return 0;
        /* A TLS alert or a damaged record: the stream is over, no crash. */
        errno = e == SSL_ERROR_SYSCALL ? c->sys_errno : EPROTO;
        return -1;
    }
}

static ssize_t be_write(void *vctx, const void *buf, size_t n, int timeout_ms)
{
    struct tls_conn *c = vctx;
    long long deadline = netio_now_ms() + timeout_ms;
    if (c->fatal) {
        errno = EPROTO;
        return -1;
    }
    for (;;) {
        size_t put = 0;
        ERR_clear_error();
        c->sys_errno = 0;
        /* A retry after WANT_WRITE repeats the same buffer, as OpenSSL wants. */
        int r = SSL_write_ex(c->ssl, buf, n, &put);
        if (r == 1)
            return (ssize_t)put;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_for(c, e, deadline) < 0)
                return -1;
            continue;
        }
        record_error(c, e, "while writing", "TLS write error");
        errno = e == SSL_ERROR_SYSCALL && c->sys_errno != 0 ? c->sys_errno : EPIPE;
        return -1;
    }
}

static const struct netio_backend tls_backend = {
    .name = "tls",
    .read = be_read,
    .write = be_write,
};

/* ---- connections ---- */

static struct tls_conn *conn_new(struct netio *io, SSL_CTX *ctx, strbuf *err)
{
    CRYPTO_THREAD_run_once(&bio_once, make_bio_method);
    if (bio_method == NULL) {
        strbuf_appends(err, "cannot set up the TLS layer: out of memory");
        return NULL;
    }
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    strbuf_init(&c->error);
    c->rfd = netio_rfd(io);
    c->wfd = netio_wfd(io);
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    BIO *b = c->ssl != NULL ? BIO_new(bio_method) : NULL;
    if (b == NULL) {
        strbuf_appends(err, "cannot start TLS: ");
        tls_append_ssl_errors(err, "out of memory");
        tls_conn_free(&c);
        return NULL;
    }
    BIO_set_data(b, c);
    SSL_set_bio(c->ssl, b, b); /* one reference, owned by the SSL */
    SSL_set_mode(c->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return c;
}

/* Runs the handshake to its end within timeout_ms. Returns 0 or -1 with a
 * line in err. */
static int handshake(struct tls_conn *c, int timeout_ms, strbuf *err)
{
    long long deadline = netio_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        ERR_clear_error();
        c->sys_errno = 0;
        int r = SSL_do_handshake(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_for(c, e, deadline) < 0) {
                c->fatal = true;
                if (errno == ETIMEDOUT)
                    strbuf_printf(err, "TLS handshake timed out after %d ms", timeout_ms);
                else
                    strbuf_printf(err, "TLS handshake failed: %s", strerror(errno));
                return -1;
            }
            continue;
        }
        long vr = SSL_get_verify_result(c->ssl);
        if ((SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) && vr != X509_V_OK) {
            c->fatal = true;
            ERR_clear_error();
            strbuf_printf(err, "certificate verification failed: %s",
                          X509_verify_cert_error_string(vr));
            return -1;
        }
        record_error(c, e, "during the TLS handshake", "TLS handshake failed");
        strbuf_append_sb(err, &c->error);
        return -1;
    }
}

struct tls_conn *tls_server_start(struct netio *io, SSL_CTX *ctx, int timeout_ms, strbuf *err)
{
    struct tls_conn *c = conn_new(io, ctx, err);
    if (c == NULL)
        return NULL;
    SSL_set_accept_state(c->ssl);
    if (handshake(c, timeout_ms, err) < 0) {
        tls_conn_free(&c);
        return NULL;
    }
    c->dropped = netio_set_backend(io, &tls_backend, c);
    return c;
}

static bool is_ip_address(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

struct tls_conn *tls_client_start(struct netio *io, SSL_CTX *ctx, const struct tls_client_opts *o,
                                  int timeout_ms, strbuf *err)
{
    const char *name = o->peername != NULL && *o->peername != '\0' ? o->peername : NULL;
    if (o->level == TLS_LEVEL_VERIFY && name == NULL) {
        strbuf_appends(err, "TLS verification needs the peer's name");
        return NULL;
    }
    struct tls_conn *c = conn_new(io, ctx, err);
    if (c == NULL)
        return NULL;
    SSL_set_connect_state(c->ssl);
    bool ok = true;
    if (name != NULL) {
        if (is_ip_address(name)) {
            /* RFC 6066: no IP addresses in SNI; match the IP SAN instead. */
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) == 1;
        } else {
            SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set_tlsext_host_name(c->ssl, name) == 1 && SSL_set1_host(c->ssl, name) == 1;
        }
        if (!ok) {
            strbuf_printf(err, "cannot use '%s' as the TLS peer name: ", name);
            tls_append_ssl_errors(err, "invalid name");
            tls_conn_free(&c);
            return NULL;
        }
    }
    /* Below VERIFY the chain is still checked, but only to be recorded. */
    SSL_set_verify(c->ssl, o->level == TLS_LEVEL_VERIFY ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (o->session != NULL)
        SSL_set_session(c->ssl, o->session);
    if (handshake(c, timeout_ms, err) < 0) {
        tls_conn_free(&c);
        return NULL;
    }
    c->verify_result = SSL_get_verify_result(c->ssl);
    c->verified = name != NULL && SSL_get0_peer_certificate(c->ssl) != NULL &&
                  c->verify_result == X509_V_OK;
    c->dropped = netio_set_backend(io, &tls_backend, c);
    return c;
}

int tls_conn_shutdown(struct tls_conn *c, int timeout_ms)
{
    if (c->fatal)
        return -1;
    long long deadline = netio_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        ERR_clear_error();
        c->sys_errno = 0;
        int r = SSL_shutdown(c->ssl);
        if (r >= 0) /* 0: our close_notify is sent; the peer's is not awaited */
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE && wait_for(c, e, deadline) == 0)
            continue;
        ERR_clear_error();
        /* The peer is gone already (EPIPE) or slow, but the conversation
         * itself ended cleanly: count close_notify as sent, or OpenSSL
         * would forbid resuming the session. */
        SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) | SSL_SENT_SHUTDOWN);
        c->fatal = true;
        return -1;
    }
}

void tls_conn_free(struct tls_conn **cp)
{
    struct tls_conn *c = *cp;
    if (c == NULL)
        return;
    /* Without tls_conn_shutdown() OpenSSL makes the session unresumable:
     * the connection may have been cut short. */
    SSL_free(c->ssl);
    strbuf_free(&c->error);
    free(c);
    *cp = NULL;
}
