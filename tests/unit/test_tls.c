/*
 * test_tls.c - unit tests for the TLS layer (lib/tls): contexts from files
 * and settings, handshakes and line I/O over a socketpair, verification,
 * and hostile peers (plaintext before the switch, garbage, silence, closes
 * and alerts in the middle).
 *
 * One side of each connection runs in a thread (the server, usually), the
 * other in the test itself. Certificates are the TEST-ONLY fixtures of
 * tests/fixtures/tls (see its README), found from this file's path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mail/params.h"
#include "support/testdir.h"
#include "tls/tls.h"
#include "util/config.h"
#include "util/netio.h"
#include "util/strbuf.h"

#define TIMEOUT 5000

/* ---- fixtures ---- */

static char fixture_dir[4096];

static const char *fx(const char *name)
{
    static char path[8][4200];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", fixture_dir, name);
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    const char *slash = strrchr(__FILE__, '/');
    if (slash == NULL)
        snprintf(fixture_dir, sizeof(fixture_dir), "../fixtures/tls");
    else
        snprintf(fixture_dir, sizeof(fixture_dir), "%.*s/../fixtures/tls",
                 (int)(slash - __FILE__), __FILE__);
    if (access(fx("server.pem"), R_OK) != 0) {
        fprintf(stderr, "test_tls: fixtures not found in %s\n", fixture_dir);
        return -1;
    }
    return 0;
}

static SSL_CTX *server_ctx_with(const char *cert, const char *key, const char *protocols,
                                const char *cipherlist, int session_timeout)
{
    struct tls_server_settings s = {
        .cert_file = fx(cert), .key_file = fx(key), .protocols = protocols,
        .cipherlist = cipherlist, .session_timeout = session_timeout,
    };
    strbuf err;
    strbuf_init(&err);
    SSL_CTX *ctx = tls_server_ctx_new(&s, &err);
    if (ctx == NULL)
        fail_msg("server context: %s", err.data);
    strbuf_free(&err);
    return ctx;
}

static SSL_CTX *server_ctx(void)
{
    return server_ctx_with("server.pem", "server.test-only.key", NULL, NULL, 300);
}

static SSL_CTX *client_ctx_with(const char *protocols, const char *cipherlist, bool trust_ca)
{
    struct tls_client_settings s = {
        .protocols = protocols, .cipherlist = cipherlist,
        .ca_file = trust_ca ? fx("ca.pem") : NULL,
    };
    strbuf err;
    strbuf_init(&err);
    SSL_CTX *ctx = tls_client_ctx_new(&s, &err);
    if (ctx == NULL)
        fail_msg("client context: %s", err.data);
    strbuf_free(&err);
    return ctx;
}

static SSL_CTX *client_ctx(void)
{
    return client_ctx_with(NULL, NULL, true);
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t r = write(fd, s, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return; /* the peer went away: the test's assertions say the rest */
        s += r;
        n -= (size_t)r;
    }
}

/* ---- a server in a thread ---- */

struct server_job {
    SSL_CTX *ctx;
    int fd;
    int timeout_ms;
    /* What the server does after the handshake. */
    enum { JOB_ECHO, JOB_ONE_LINE, JOB_BULK, JOB_READ_UNTIL_END, JOB_NOTHING } what;
    /* Results. */
    bool ok;
    strbuf err;
    strbuf describe;
    strbuf line;      /* JOB_ONE_LINE: the line read */
    enum netio_status last;
    size_t dropped;
    size_t bulk_bytes;
    strbuf conn_error;
    /* Optional plaintext exchange before the handshake (STARTTLS). */
    bool starttls;
    size_t pending_before;
};

static void job_init(struct server_job *j, SSL_CTX *ctx, int fd)
{
    memset(j, 0, sizeof(*j));
    j->ctx = ctx;
    j->fd = fd;
    j->timeout_ms = TIMEOUT;
    j->what = JOB_ECHO;
    strbuf_init(&j->err);
    strbuf_init(&j->describe);
    strbuf_init(&j->line);
    strbuf_init(&j->conn_error);
}

static void job_free(struct server_job *j)
{
    strbuf_free(&j->err);
    strbuf_free(&j->describe);
    strbuf_free(&j->line);
    strbuf_free(&j->conn_error);
}

static void *server_thread(void *arg)
{
    struct server_job *j = arg;
    struct netio *io = netio_new(j->fd);
    netio_set_read_timeout(io, TIMEOUT);
    netio_set_write_timeout(io, TIMEOUT);
    strbuf line;
    strbuf_init(&line);
    if (j->starttls) {
        /* Like the SMTP engine minus its own discard: read one command and
         * leave whatever was pipelined behind it in the buffer. */
        if (netio_read_line(io, &line, NULL) != NETIO_OK || !strbuf_eq(&line, "STARTTLS"))
            goto out;
        j->pending_before = netio_pending(io);
        netio_puts(io, "220 go ahead\r\n");
        netio_flush(io);
    }
    struct tls_conn *c = tls_server_start(io, j->ctx, j->timeout_ms, &j->err);
    if (c == NULL)
        goto out;
    j->ok = true;
    j->dropped = tls_conn_dropped(c);
    tls_describe(c, &j->describe);
    unsigned flags;
    switch (j->what) {
    case JOB_ECHO:
        while ((j->last = netio_read_line(io, &line, &flags)) == NETIO_OK) {
            if (strbuf_eq(&line, "QUIT")) {
                netio_puts(io, "221 bye\r\n");
                break;
            }
            netio_printf(io, "250 %s\r\n", line.data);
            netio_flush(io);
        }
        break;
    case JOB_ONE_LINE:
        j->last = netio_read_line(io, &j->line, &flags);
        netio_puts(io, "250 ok\r\n");
        break;
    case JOB_BULK:
        while ((j->last = netio_read_line(io, &line, &flags)) == NETIO_OK) {
            if (strbuf_eq(&line, "."))
                break;
            j->bulk_bytes += line.len + 2;
        }
        netio_printf(io, "250 %zu\r\n", j->bulk_bytes);
        break;
    case JOB_READ_UNTIL_END:
        while ((j->last = netio_read_line(io, &line, &flags)) == NETIO_OK)
            ;
        break;
    case JOB_NOTHING:
        break;
    }
    netio_flush(io);
    strbuf_appends(&j->conn_error, tls_conn_error(c));
    tls_conn_shutdown(c, 1000);
    netio_free(&io);
    tls_conn_free(&c);
    strbuf_free(&line);
    shutdown(j->fd, SHUT_RDWR);
    return NULL;
out:
    netio_free(&io);
    strbuf_free(&line);
    shutdown(j->fd, SHUT_RDWR);
    return NULL;
}

/* Runs a server job on sv[1] in a thread; the caller talks on sv[0]. */
static void start_server(pthread_t *t, struct server_job *j)
{
    assert_int_equal(pthread_create(t, NULL, server_thread, j), 0);
}

static void finish(pthread_t t, int sv[2])
{
    shutdown(sv[0], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
}

/* A client connection on fd; fails the test with the error on failure. */
static struct tls_conn *client_start(struct netio *io, SSL_CTX *ctx, enum tls_level level,
                                     const char *peername, strbuf *err)
{
    struct tls_client_opts o = { .level = level, .peername = peername };
    return tls_client_start(io, ctx, &o, TIMEOUT, err);
}

static void expect_line(struct netio *io, const char *want)
{
    strbuf line;
    strbuf_init(&line);
    enum netio_status st = netio_read_line(io, &line, NULL);
    if (st != NETIO_OK)
        fail_msg("expected '%s', got %s", want, netio_status_str(st));
    assert_string_equal(line.data, want);
    strbuf_free(&line);
}

/* ---- handshake and line I/O ---- */

static void test_handshake_lines_both_ways(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    pthread_t t;
    start_server(&t, &j);

    struct netio *io = netio_new(sv[0]);
    strbuf err, d;
    strbuf_init(&err);
    strbuf_init(&d);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_VERIFY, "mx.petrel.test", &err);
    if (c == NULL)
        fail_msg("client handshake: %s", err.data);
    assert_true(tls_conn_verified(c));
    assert_string_equal(tls_conn_verify_result(c), "ok");
    assert_int_equal(tls_conn_dropped(c), 0);
    assert_false(tls_conn_resumed(c));

    netio_puts(io, "HELLO there\r\n");
    assert_int_equal(netio_flush(io), 0);
    expect_line(io, "250 HELLO there");
    /* Several lines in one flush arrive as separate lines. */
    netio_puts(io, "ONE\r\nTWO\r\nTHREE\r\n");
    netio_flush(io);
    expect_line(io, "250 ONE");
    expect_line(io, "250 TWO");
    expect_line(io, "250 THREE");

    tls_describe(c, &d);
    /* "TLSv1.3 TLS_AES_256_GCM_SHA384": protocol, one space, cipher. */
    assert_true(strncmp(d.data, "TLSv1.3 TLS_", 12) == 0);
    assert_null(strchr(d.data + 8, ' '));
    strbuf_reset(&d);
    tls_describe_peer(c, &d);
    assert_non_null(strstr(d.data, "subject=CN=mx.petrel.test,O=Petrel tests"));
    assert_non_null(strstr(d.data, "issuer=CN=Petrel TEST-ONLY CA,O=Petrel tests"));

    netio_puts(io, "QUIT\r\n");
    netio_flush(io);
    expect_line(io, "221 bye");
    /* The server sent close_notify: a clean end of file. */
    strbuf line;
    strbuf_init(&line);
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_EOF);
    strbuf_free(&line);
    tls_conn_shutdown(c, 1000);
    netio_free(&io);
    tls_conn_free(&c);
    assert_null(c);
    finish(t, sv);

    assert_true(j.ok);
    assert_true(strncmp(j.describe.data, "TLSv1.3 TLS_", 12) == 0);
    job_free(&j);
    strbuf_free(&err);
    strbuf_free(&d);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* Far more than socket buffers and TLS records hold: partial writes and
 * WANT_WRITE on both sides. */
static void test_bulk_transfer(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.what = JOB_BULK;
    pthread_t t;
    start_server(&t, &j);

    struct netio *io = netio_new(sv[0]);
    strbuf err;
    strbuf_init(&err);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, &err);
    assert_non_null(c);
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk) - 2);
    chunk[sizeof(chunk) - 2] = '\r';
    chunk[sizeof(chunk) - 1] = '\n';
    for (int i = 0; i < 2000; i++)
        assert_int_equal(netio_write(io, chunk, sizeof(chunk)), 0);
    netio_puts(io, ".\r\n");
    netio_flush(io);
    expect_line(io, "250 2000000");
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    job_free(&j);
    strbuf_free(&err);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* A server certificate chain file (leaf + CA) loads and verifies. */
static void test_chain_file(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx_with("server-chain.pem", "server.test-only.key", NULL, NULL, 0);
    SSL_CTX *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.what = JOB_NOTHING;
    pthread_t t;
    start_server(&t, &j);
    struct netio *io = netio_new(sv[0]);
    strbuf err;
    strbuf_init(&err);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_VERIFY, "localhost", &err);
    if (c == NULL)
        fail_msg("%s", err.data);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(tls_conn_ssl(c));
    assert_int_equal(sk_X509_num(chain), 2);
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    job_free(&j);
    strbuf_free(&err);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* ---- protocol versions ---- */

/* Tries a TLS 1.1-only client against a server; returns the client conn
 * result, with the server job's outcome in *j. */
static bool try_tls11(SSL_CTX *sctx, struct server_job *j, strbuf *cerr, strbuf *cdesc)
{
    SSL_CTX *cctx = client_ctx_with("TLSv1.1", "DEFAULT:@SECLEVEL=0", true);
    int sv[2];
    make_pair(sv);
    job_init(j, sctx, sv[1]);
    j->what = JOB_NOTHING;
    pthread_t t;
    start_server(&t, j);
    struct netio *io = netio_new(sv[0]);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, cerr);
    bool ok = c != NULL;
    if (c != NULL)
        tls_describe(c, cdesc);
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    SSL_CTX_free(cctx);
    return ok;
}

static void test_tls11_refused_when_min_is_12(void **state)
{
    (void)state;
    strbuf cerr, cdesc;
    strbuf_init(&cerr);
    strbuf_init(&cdesc);
    struct server_job j;

    /* First prove that this OpenSSL can still speak TLS 1.1 at security
     * level 0 (a server that allows it, through the cipher override). */
    SSL_CTX *old = server_ctx_with("server.pem", "server.test-only.key", ">=TLSv1",
                                   "DEFAULT:@SECLEVEL=0", 0);
    bool can = try_tls11(old, &j, &cerr, &cdesc);
    job_free(&j);
    SSL_CTX_free(old);
    if (!can) {
        fprintf(stderr, "note: this OpenSSL cannot negotiate TLS 1.1 even at security level 0 "
                        "(%s); skipping\n", cerr.data);
        strbuf_free(&cerr);
        strbuf_free(&cdesc);
        skip();
    }
    assert_true(strncmp(cdesc.data, "TLSv1.1 ", 8) == 0);

    /* The default server (TLS 1.2 minimum) refuses the same client. */
    strbuf_reset(&cerr);
    SSL_CTX *sctx = server_ctx();
    assert_false(try_tls11(sctx, &j, &cerr, &cdesc));
    assert_false(j.ok);
    assert_non_null(strstr(j.err.data, "unsupported protocol"));
    assert_non_null(strstr(cerr.data, "protocol version"));
    job_free(&j);
    SSL_CTX_free(sctx);
    strbuf_free(&cerr);
    strbuf_free(&cdesc);
}

static void test_parse_protocols(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int min, max; /* -1: error */
        const char *msg;
    } cases[] = {
        {"", TLS1_2_VERSION, 0, NULL},
        {NULL, TLS1_2_VERSION, 0, NULL},
        {">=TLSv1.2", TLS1_2_VERSION, 0, NULL},
        {">=tlsv1.3", TLS1_3_VERSION, 0, NULL},
        {"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", TLS1_2_VERSION, 0, NULL},
        {"!SSLv2 !SSLv3", TLS1_VERSION, 0, NULL},
        {"<=TLSv1.2", TLS1_VERSION, TLS1_2_VERSION, NULL},
        {">=TLSv1.1, <=TLSv1.2", TLS1_1_VERSION, TLS1_2_VERSION, NULL},
        {"TLSv1.2 TLSv1.3", TLS1_2_VERSION, 0, NULL},
        {"TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION, NULL},
        {"TLSv1 TLSv1.2", -1, -1, "leave a gap (TLSv1.1 is off"},
        {"TLSv1.4", -1, -1, "unknown TLS protocol 'TLSv1.4'"},
        {">=", -1, -1, "unknown TLS protocol ''"},
        {"SSLv3", -1, -1, "SSLv3 is not supported"},
        {">=SSLv3", -1, -1, "SSLv3 is not supported"},
        {">=TLSv1.2 !TLSv1.2 !TLSv1.3", -1, -1, "leave no protocol version enabled"},
        {"<=TLSv1.1 >=TLSv1.2", -1, -1, "leave no protocol version enabled"},
    };
    strbuf err;
    strbuf_init(&err);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int min = 99, max = 99;
        strbuf_reset(&err);
        int r = tls_parse_protocols(cases[i].spec, &min, &max, &err);
        if (cases[i].min < 0) {
            if (r != -1)
                fail_msg("'%s' accepted", cases[i].spec);
            if (strstr(err.data, cases[i].msg) == NULL)
                fail_msg("'%s': error '%s' lacks '%s'", cases[i].spec, err.data, cases[i].msg);
        } else {
            if (r != 0)
                fail_msg("'%s' refused: %s", cases[i].spec ? cases[i].spec : "(null)", err.data);
            assert_int_equal(min, cases[i].min);
            assert_int_equal(max, cases[i].max);
        }
    }
    strbuf_free(&err);
}

static void test_parse_level(void **state)
{
    (void)state;
    enum tls_level l;
    assert_int_equal(tls_parse_level("none", &l), 0);
    assert_int_equal(l, TLS_LEVEL_NONE);
    assert_int_equal(tls_parse_level("May", &l), 0);
    assert_int_equal(l, TLS_LEVEL_MAY);
    assert_int_equal(tls_parse_level("encrypt", &l), 0);
    assert_int_equal(l, TLS_LEVEL_ENCRYPT);
    assert_int_equal(tls_parse_level("VERIFY", &l), 0);
    assert_int_equal(l, TLS_LEVEL_VERIFY);
    assert_int_equal(tls_parse_level("secure", &l), -1);
    assert_int_equal(tls_parse_level("", &l), -1);
    assert_int_equal(tls_parse_level(NULL, &l), -1);
    assert_string_equal(tls_level_str(TLS_LEVEL_ENCRYPT), "encrypt");
}

/* ---- verification ---- */

/* Connects a client with the given settings to a server on cert/key;
 * returns whether the client handshake succeeded, its error in err and its
 * verified state in *verified. */
static bool connect_with(const char *cert, const char *key, SSL_CTX *cctx, enum tls_level level,
                         const char *peername, strbuf *err, bool *verified, strbuf *vresult)
{
    SSL_CTX *sctx = server_ctx_with(cert, key, NULL, NULL, 0);
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.what = JOB_NOTHING;
    pthread_t t;
    start_server(&t, &j);
    struct netio *io = netio_new(sv[0]);
    struct tls_conn *c = client_start(io, cctx, level, peername, err);
    bool ok = c != NULL;
    if (c != NULL) {
        *verified = tls_conn_verified(c);
        if (vresult != NULL)
            strbuf_sets(vresult, tls_conn_verify_result(c));
    }
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    job_free(&j);
    SSL_CTX_free(sctx);
    return ok;
}

static void test_hostname_verification(void **state)
{
    (void)state;
    SSL_CTX *cctx = client_ctx();
    strbuf err, vr;
    strbuf_init(&err);
    strbuf_init(&vr);
    bool verified = false;
    const char *good[] = {"mx.petrel.test", "localhost", "MX.Petrel.Test", "127.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        strbuf_reset(&err);
        verified = false;
        if (!connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_VERIFY, good[i],
                          &err, &verified, NULL))
            fail_msg("%s: %s", good[i], err.data);
        assert_true(verified);
    }
    /* Wrong names and addresses fail at VERIFY with the reason. */
    strbuf_reset(&err);
    assert_false(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_VERIFY,
                              "other.example", &err, &verified, NULL));
    assert_string_equal(err.data, "certificate verification failed: hostname mismatch");
    strbuf_reset(&err);
    assert_false(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_VERIFY,
                              "sub.mx.petrel.test", &err, &verified, NULL));
    assert_string_equal(err.data, "certificate verification failed: hostname mismatch");
    strbuf_reset(&err);
    assert_false(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_VERIFY,
                              "127.0.0.2", &err, &verified, NULL));
    assert_string_equal(err.data, "certificate verification failed: IP address mismatch");
    /* VERIFY without a name is refused before any byte is sent. */
    strbuf_reset(&err);
    assert_false(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_VERIFY,
                              NULL, &err, &verified, NULL));
    assert_string_equal(err.data, "TLS verification needs the peer's name");

    /* MAY and ENCRYPT accept the same certificate and only record it. */
    strbuf_reset(&err);
    verified = true;
    assert_true(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_MAY,
                             "other.example", &err, &verified, &vr));
    assert_false(verified);
    assert_string_equal(vr.data, "hostname mismatch");
    verified = true;
    assert_true(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_ENCRYPT,
                             "other.example", &err, &verified, &vr));
    assert_false(verified);
    SSL_CTX_free(cctx);

    /* A client that does not trust the test CA. */
    struct tls_client_settings s = {.ca_file = fx("expired.pem")}; /* some unrelated anchor */
    cctx = tls_client_ctx_new(&s, &err);
    assert_non_null(cctx);
    strbuf_reset(&err);
    assert_false(connect_with("server.pem", "server.test-only.key", cctx, TLS_LEVEL_VERIFY,
                              "mx.petrel.test", &err, &verified, NULL));
    assert_string_equal(err.data,
                        "certificate verification failed: unable to get local issuer certificate");
    SSL_CTX_free(cctx);
    strbuf_free(&err);
    strbuf_free(&vr);
}

static void test_expired_certificate(void **state)
{
    (void)state;
    SSL_CTX *cctx = client_ctx();
    strbuf err, vr;
    strbuf_init(&err);
    strbuf_init(&vr);
    bool verified = true;
    assert_false(connect_with("expired.pem", "expired.test-only.key", cctx, TLS_LEVEL_VERIFY,
                              "mx.petrel.test", &err, &verified, NULL));
    assert_string_equal(err.data, "certificate verification failed: certificate has expired");
    /* Opportunistic TLS still encrypts, and says why it is not verified. */
    assert_true(connect_with("expired.pem", "expired.test-only.key", cctx, TLS_LEVEL_MAY,
                             "mx.petrel.test", &err, &verified, &vr));
    assert_false(verified);
    assert_string_equal(vr.data, "certificate has expired");
    SSL_CTX_free(cctx);
    strbuf_free(&err);
    strbuf_free(&vr);
}

/* ---- files ---- */

static void assert_contains(const strbuf *sb, const char *want)
{
    if (strstr(sb->data, want) == NULL)
        fail_msg("'%s' does not contain '%s'", sb->data, want);
}

static void test_check_files_good_and_mismatched(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(tls_check_files(fx("server.pem"), fx("server.test-only.key"), &err), 0);
    assert_int_equal(err.len, 0);
    assert_int_equal(tls_check_files(fx("server-chain.pem"), fx("server.test-only.key"), &err),
                     0);

    assert_int_equal(tls_check_files(fx("server.pem"), fx("mismatch.test-only.key"), &err), 1);
    strbuf want;
    strbuf_init(&want);
    strbuf_printf(&want, "key file %s does not match the certificate in %s\n",
                  fx("mismatch.test-only.key"), fx("server.pem"));
    assert_string_equal(err.data, want.data);

    /* The context builder refuses the same pair with the same words. */
    strbuf_reset(&err);
    struct tls_server_settings s = {.cert_file = fx("server.pem"),
                                    .key_file = fx("mismatch.test-only.key")};
    assert_null(tls_server_ctx_new(&s, &err));
    strbuf_truncate(&want, want.len - 1);
    assert_string_equal(err.data, want.data);

    /* Expired: loads, but petrel check says so. */
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(fx("expired.pem"), fx("expired.test-only.key"), &err), 1);
    assert_contains(&err, "certificate expired on Jan  1 00:00:00 2001 GMT");
    strbuf_free(&want);
    strbuf_free(&err);
}

static char tmpdir[64];

static const char *tmp(const char *name)
{
    static char path[4][128];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_check_files_bad_files(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tls.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    strbuf err;
    strbuf_init(&err);

    /* Missing files: both reported, each with the reason. */
    assert_int_equal(tls_check_files(tmp("none.pem"), tmp("none.key"), &err), 2);
    strbuf want;
    strbuf_init(&want);
    strbuf_printf(&want, "certificate file %s: cannot open: No such file or directory\n"
                         "key file %s: cannot open: No such file or directory\n",
                  tmp("none.pem"), tmp("none.key"));
    assert_string_equal(err.data, want.data);

    /* Empty, garbage, a directory, NUL bytes, a key where a cert belongs. */
    write_file(tmp("empty.pem"), "");
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(tmp("empty.pem"), fx("server.test-only.key"), &err), 1);
    assert_contains(&err, "no PEM certificate found");
    write_file(tmp("garbage.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n"
                                   "-----END CERTIFICATE-----\n");
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(tmp("garbage.pem"), fx("server.test-only.key"), &err), 1);
    assert_contains(&err, "no PEM certificate found");
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(tmpdir, fx("server.test-only.key"), &err), 1);
    assert_contains(&err, ": not a regular file");
    int fd = open(tmp("nul.pem"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    write_all(fd, "\0\0\0-----BEGIN", 13);
    close(fd);
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(tmp("nul.pem"), fx("server.test-only.key"), &err), 1);
    assert_contains(&err, "no PEM certificate found");
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(fx("server.test-only.key"), fx("server.pem"), &err), 2);
    assert_contains(&err, "no PEM certificate found");
    assert_contains(&err, "no PEM private key found");

    /* An encrypted key is refused without a prompt, and says why. */
    FILE *kf = fopen(fx("server.test-only.key"), "r");
    assert_non_null(kf);
    EVP_PKEY *key = PEM_read_PrivateKey(kf, NULL, NULL, (void *)"");
    fclose(kf);
    assert_non_null(key);
    FILE *ef = fopen(tmp("enc.key"), "w");
    assert_non_null(ef);
    assert_int_equal(PEM_write_PKCS8PrivateKey(ef, key, EVP_aes_128_cbc(), NULL, 0, NULL,
                                               (void *)"secret"), 1);
    fclose(ef);
    EVP_PKEY_free(key);
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(fx("server.pem"), tmp("enc.key"), &err), 1);
    assert_contains(&err, "the private key is encrypted; Petrel needs it without a pass phrase");

    /* Unreadable (only meaningful when not root). */
    if (geteuid() != 0) {
        write_file(tmp("locked.key"), "x");
        chmod(tmp("locked.key"), 0);
        strbuf_reset(&err);
        assert_int_equal(tls_check_files(fx("server.pem"), tmp("locked.key"), &err), 1);
        assert_contains(&err, "cannot open: Permission denied");
    }
    /* Empty names. */
    strbuf_reset(&err);
    assert_int_equal(tls_check_files("", fx("server.test-only.key"), &err), 1);
    assert_string_equal(err.data, "no certificate file given\n");
    strbuf_reset(&err);
    assert_int_equal(tls_check_files(fx("server.pem"), NULL, &err), 1);
    assert_string_equal(err.data, "no key file given\n");

    /* The context builder says the same, as one line. */
    strbuf_reset(&err);
    struct tls_server_settings s = {.cert_file = tmp("none.pem"), .key_file = tmp("none.key")};
    assert_null(tls_server_ctx_new(&s, &err));
    assert_null(strchr(err.data, '\n'));
    assert_contains(&err, "certificate file");
    assert_contains(&err, "key file");

    /* Bad cipher and protocol settings. */
    strbuf_reset(&err);
    struct tls_server_settings b = {.cert_file = fx("server.pem"),
                                    .key_file = fx("server.test-only.key"),
                                    .cipherlist = "NO-SUCH-CIPHER"};
    assert_null(tls_server_ctx_new(&b, &err));
    assert_contains(&err, "invalid TLS cipher list 'NO-SUCH-CIPHER'");
    strbuf_reset(&err);
    b.cipherlist = NULL;
    b.protocols = ">=TLSv2";
    assert_null(tls_server_ctx_new(&b, &err));
    assert_contains(&err, "unknown TLS protocol 'TLSv2'");
    strbuf_reset(&err);
    struct tls_client_settings cs = {.ca_file = tmp("none.pem")};
    assert_null(tls_client_ctx_new(&cs, &err));
    assert_contains(&err, "cannot load trusted certificates from");

    strbuf_free(&want);
    strbuf_free(&err);
    test_rm_tree(tmpdir);
}

static void test_reload_keeps_old_on_failure(void **state)
{
    (void)state;
    SSL_CTX *ctx = server_ctx();
    SSL_CTX *before = ctx;
    strbuf err;
    strbuf_init(&err);
    struct tls_server_settings bad = {.cert_file = fx("server.pem"),
                                      .key_file = fx("mismatch.test-only.key")};
    assert_int_equal(tls_server_ctx_reload(&ctx, &bad, &err), -1);
    assert_ptr_equal(ctx, before);
    assert_contains(&err, "does not match");
    struct tls_server_settings good = {.cert_file = fx("server-chain.pem"),
                                       .key_file = fx("server.test-only.key")};
    assert_int_equal(tls_server_ctx_reload(&ctx, &good, &err), 0);
    assert_non_null(ctx);
    tls_ctx_free(&ctx);
    assert_null(ctx);
    tls_ctx_free(&ctx);
    strbuf_free(&err);
}

static void test_from_config(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    struct config *cfg = params_config_new();
    SSL_CTX *ctx = (SSL_CTX *)1;
    assert_int_equal(tls_server_ctx_from_config(cfg, &ctx, &err), 0);
    assert_null(ctx);
    config_set(cfg, "smtpd_tls_cert_file", fx("server.pem"), "petrel.conf", 3);
    assert_int_equal(tls_server_ctx_from_config(cfg, &ctx, &err), -1);
    assert_string_equal(err.data, "smtpd_tls_cert_file is set but smtpd_tls_key_file is empty: "
                                  "set both or neither");
    config_set(cfg, "smtpd_tls_key_file", fx("server.test-only.key"), "petrel.conf", 4);
    config_set(cfg, "smtpd_tls_session_cache_timeout", "2d", "petrel.conf", 5);
    strbuf_reset(&err);
    assert_int_equal(tls_server_ctx_from_config(cfg, &ctx, &err), -1);
    assert_contains(&err, "smtpd_tls_session_cache_timeout");
    config_set(cfg, "smtpd_tls_session_cache_timeout", "1h", "petrel.conf", 5);
    config_set(cfg, "smtpd_tls_protocols", "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", "petrel.conf", 6);
    strbuf_reset(&err);
    assert_int_equal(tls_server_ctx_from_config(cfg, &ctx, &err), 1);
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_timeout(ctx), 3600);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
    tls_ctx_free(&ctx);

    SSL_CTX *cctx = tls_client_ctx_from_config(cfg, &err);
    assert_non_null(cctx);
    SSL_CTX_free(cctx);
    config_set(cfg, "smtp_tls_CAfile", "/nonexistent/ca.pem", "petrel.conf", 7);
    strbuf_reset(&err);
    assert_null(tls_client_ctx_from_config(cfg, &err));
    assert_contains(&err, "/nonexistent/ca.pem");
    config_free(&cfg);
    strbuf_free(&err);
}

/* ---- hostile peers ---- */

/* CVE-2011-0411: plaintext pipelined behind STARTTLS never comes out of
 * the TLS layer. */
static void test_plaintext_before_handshake_dropped(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.starttls = true;
    j.what = JOB_ONE_LINE;
    pthread_t t;
    /* Written before the server reads anything: one segment. */
    write_all(sv[0], "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example>\r\n", 42);
    start_server(&t, &j);
    struct netio *io = netio_new(sv[0]);
    expect_line(io, "220 go ahead");
    strbuf err;
    strbuf_init(&err);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_VERIFY, "mx.petrel.test", &err);
    if (c == NULL)
        fail_msg("%s", err.data);
    netio_puts(io, "NOOP\r\n");
    netio_flush(io);
    expect_line(io, "250 ok");
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    assert_int_equal(j.pending_before, 32);
    assert_int_equal(j.dropped, 32);
    assert_string_equal(j.line.data, "NOOP");
    job_free(&j);
    strbuf_free(&err);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* Runs a server handshake against raw bytes from the test; returns the
 * server's error. */
static void server_against_raw(const void *bytes, size_t n, bool close_after, int timeout_ms,
                               strbuf *err_out, long long *elapsed_ms)
{
    SSL_CTX *sctx = server_ctx();
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.timeout_ms = timeout_ms;
    pthread_t t;
    long long start = netio_now_ms();
    start_server(&t, &j);
    write_all(sv[0], bytes, n);
    if (close_after)
        shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    if (elapsed_ms != NULL)
        *elapsed_ms = netio_now_ms() - start;
    close(sv[0]);
    close(sv[1]);
    assert_false(j.ok);
    strbuf_append_sb(err_out, &j.err);
    job_free(&j);
    SSL_CTX_free(sctx);
}

static void test_peer_closes_mid_handshake(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    /* A TLS record header announcing a ClientHello, then the end. */
    server_against_raw("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11, true, TIMEOUT, &err,
                       NULL);
    assert_contains(&err, "closed by the peer during the TLS handshake");
    strbuf_reset(&err);
    server_against_raw("", 0, true, TIMEOUT, &err, NULL);
    assert_contains(&err, "closed by the peer during the TLS handshake");
    strbuf_free(&err);

    /* The client side when the server hangs up after reading the hello. */
    SSL_CTX *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    shutdown(sv[1], SHUT_WR);
    strbuf cerr;
    strbuf_init(&cerr);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, &cerr);
    assert_null(c);
    assert_contains(&cerr, "closed by the peer during the TLS handshake");
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
    strbuf_free(&cerr);
    SSL_CTX_free(cctx);
}

static void test_garbage_instead_of_client_hello(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    server_against_raw("EHLO client.example\r\n", 21, false, TIMEOUT, &err, NULL);
    assert_contains(&err, "TLS handshake failed: wrong version number (the peer did not send "
                          "TLS data)");
    /* 64 KiB of noise, NULs included. */
    size_t n = 64 * 1024;
    unsigned char *noise = malloc(n);
    assert_non_null(noise);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (unsigned char)(x >> 16);
    }
    noise[0] = 0x16; /* looks like a handshake record at first */
    strbuf_reset(&err);
    server_against_raw(noise, n, true, TIMEOUT, &err, NULL);
    assert_true(err.len > 0);
    free(noise);
    /* A record that says it is 16 MiB long. */
    strbuf_reset(&err);
    server_against_raw("\x16\x03\x03\xff\xff\x01\xff\xff\xff", 9, true, TIMEOUT, &err, NULL);
    assert_true(err.len > 0);
    strbuf_free(&err);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    long long elapsed = 0;
    /* A peer that connects and never says anything. */
    server_against_raw("", 0, false, 300, &err, &elapsed);
    assert_string_equal(err.data, "TLS handshake timed out after 300 ms");
    assert_true(elapsed >= 290);
    assert_true(elapsed < 3000);
    /* A peer that starts a ClientHello and stalls (slowloris). */
    strbuf_reset(&err);
    server_against_raw("\x16\x03\x01\x00\xc8\x01", 6, false, 300, &err, &elapsed);
    assert_string_equal(err.data, "TLS handshake timed out after 300 ms");
    assert_true(elapsed < 3000);

    /* The client side: a server that never answers the ClientHello. */
    SSL_CTX *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    struct tls_client_opts o = {.level = TLS_LEVEL_MAY};
    strbuf_reset(&err);
    struct tls_conn *c = tls_client_start(io, cctx, &o, 200, &err);
    assert_null(c);
    assert_string_equal(err.data, "TLS handshake timed out after 200 ms");
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(cctx);
    strbuf_free(&err);
}

/* After the handshake: a silent peer is a netio timeout; raw garbage or an
 * alert in the middle of the stream is a read error with a reason; a close
 * without close_notify is an end of file. */
static void test_mid_stream_failures(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    static const struct {
        const char *bytes;
        size_t n;
        const char *reason;
    } junk[] = {
        /* not a record at all */
        {"DATA\r\nplain text\r\n", 18,
         "TLS read error: wrong version number (the peer did not send TLS data)"},
        /* a cleartext fatal alert where only encrypted records may come */
        {"\x15\x03\x03\x00\x02\x02\x28", 7, "TLS read error: bad record type"},
        /* application data that fails to decrypt */
        {"\x17\x03\x03\x00\x10" "0123456789abcdef", 21,
         "TLS read error: decryption failed or bad record mac"},
    };
    for (size_t k = 0; k < 4; k++) {
        int sv[2];
        make_pair(sv);
        struct server_job j;
        job_init(&j, sctx, sv[1]);
        j.what = JOB_READ_UNTIL_END;
        pthread_t t;
        start_server(&t, &j);
        struct netio *io = netio_new(sv[0]);
        strbuf err;
        strbuf_init(&err);
        struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, &err);
        assert_non_null(c);
        netio_puts(io, "first line\r\n");
        netio_flush(io);
        if (k < 3)
            write_all(sv[0], junk[k].bytes, junk[k].n);
        else
            shutdown(sv[0], SHUT_WR); /* close without close_notify */
        pthread_join(t, NULL);
        if (k < 3) {
            assert_int_equal(j.last, NETIO_ERROR);
            assert_contains(&j.conn_error, junk[k].reason);
        } else {
            assert_int_equal(j.last, NETIO_EOF);
        }
        netio_free(&io);
        tls_conn_free(&c);
        close(sv[0]);
        close(sv[1]);
        job_free(&j);
        strbuf_free(&err);
    }

    /* A server that ends with close_notify: a clean end of file. */
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.what = JOB_NOTHING;
    pthread_t t;
    start_server(&t, &j);
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 200);
    strbuf err, line;
    strbuf_init(&err);
    strbuf_init(&line);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, &err);
    assert_non_null(c);
    pthread_join(t, NULL); /* the server thread sent close_notify and shut down */
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_EOF);
    netio_free(&io);
    tls_conn_free(&c);
    close(sv[0]);
    close(sv[1]);
    job_free(&j);

    make_pair(sv);
    job_init(&j, sctx, sv[1]);
    j.what = JOB_ONE_LINE;
    start_server(&t, &j);
    io = netio_new(sv[0]);
    netio_set_read_timeout(io, 200);
    c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, &err);
    assert_non_null(c);
    /* A peer that goes silent after the handshake: NETIO_TIMEOUT. */
    long long start = netio_now_ms();
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_TIMEOUT);
    assert_true(netio_now_ms() - start < 2000);
    netio_puts(io, "late\r\n");
    netio_flush(io);
    expect_line(io, "250 ok");
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    job_free(&j);
    strbuf_free(&err);
    strbuf_free(&line);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* A client that asks for renegotiation (TLS 1.2) is refused; the server
 * neither renegotiates nor crashes. */
static void test_renegotiation_refused(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx_with("<=TLSv1.2", NULL, true);
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.what = JOB_READ_UNTIL_END;
    pthread_t t;
    start_server(&t, &j);
    struct netio *io = netio_new(sv[0]);
    strbuf err;
    strbuf_init(&err);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, NULL, &err);
    assert_non_null(c);
    SSL *ssl = tls_conn_ssl(c);
    assert_string_equal(SSL_get_version(ssl), "TLSv1.2");
    SSL_clear_options(ssl, SSL_OP_NO_RENEGOTIATION);
    assert_int_equal(SSL_renegotiate(ssl), 1);
    /* Drive the client's renegotiation until it ends one way or another. */
    for (int i = 0; i < 50; i++) {
        int r = SSL_do_handshake(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        if (netio_wait_fd(sv[0], e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 1000) < 0)
            break;
    }
    ERR_clear_error();
    assert_int_equal(SSL_num_renegotiations(ssl), 1); /* asked once... */
    shutdown(sv[0], SHUT_RDWR);
    pthread_join(t, NULL);
    assert_true(j.ok);
    assert_int_not_equal(j.last, NETIO_OK);
    netio_free(&io);
    tls_conn_free(&c);
    close(sv[0]);
    close(sv[1]);
    job_free(&j);
    strbuf_free(&err);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* ---- resumption ---- */

static bool resumed_second_time(int session_timeout)
{
    SSL_CTX *sctx = server_ctx_with("server.pem", "server.test-only.key", NULL, NULL,
                                    session_timeout);
    SSL_CTX *cctx = client_ctx();
    SSL_SESSION *sess = NULL;
    bool resumed = false;
    for (int round = 0; round < 2; round++) {
        int sv[2];
        make_pair(sv);
        struct server_job j;
        job_init(&j, sctx, sv[1]);
        pthread_t t;
        start_server(&t, &j);
        struct netio *io = netio_new(sv[0]);
        strbuf err;
        strbuf_init(&err);
        struct tls_client_opts o = {.level = TLS_LEVEL_VERIFY, .peername = "localhost",
                                    .session = sess};
        struct tls_conn *c = tls_client_start(io, cctx, &o, TIMEOUT, &err);
        if (c == NULL)
            fail_msg("%s", err.data);
        /* A round trip, so that TLS 1.3 tickets have arrived. */
        netio_puts(io, "QUIT\r\n");
        netio_flush(io);
        expect_line(io, "221 bye");
        if (round == 0) {
            sess = tls_conn_get_session(c);
            assert_non_null(sess);
        } else {
            resumed = tls_conn_resumed(c);
        }
        tls_conn_shutdown(c, 1000);
        netio_free(&io);
        tls_conn_free(&c);
        finish(t, sv);
        job_free(&j);
        strbuf_free(&err);
    }
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return resumed;
}

static void test_session_resumption(void **state)
{
    (void)state;
    assert_true(resumed_second_time(300));
    assert_false(resumed_second_time(0));
}

/* ---- hostile certificate names ---- */

/* A self-signed certificate whose CN holds NUL, CR LF and an escape
 * sequence: the peer description must stay one clean line. */
static void test_peer_name_with_control_characters(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tls.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    static const unsigned char cn[] = "evil\0\r\nX-Injected: yes\x1b[31m\xff";
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, cn, (int)sizeof(cn) - 1,
                                                -1, 0), 1);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *fp = fopen(tmp("evil.pem"), "w");
    PEM_write_X509(fp, x);
    fclose(fp);
    fp = fopen(tmp("evil.key"), "w");
    PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    X509_free(x);
    EVP_PKEY_free(key);

    struct tls_server_settings s = {.cert_file = tmp("evil.pem"), .key_file = tmp("evil.key")};
    strbuf err;
    strbuf_init(&err);
    SSL_CTX *sctx = tls_server_ctx_new(&s, &err);
    if (sctx == NULL)
        fail_msg("%s", err.data);
    SSL_CTX *cctx = client_ctx();
    int sv[2];
    make_pair(sv);
    struct server_job j;
    job_init(&j, sctx, sv[1]);
    j.what = JOB_NOTHING;
    pthread_t t;
    start_server(&t, &j);
    struct netio *io = netio_new(sv[0]);
    struct tls_conn *c = client_start(io, cctx, TLS_LEVEL_MAY, "mx.petrel.test", &err);
    assert_non_null(c);
    assert_false(tls_conn_verified(c));
    strbuf d;
    strbuf_init(&d);
    tls_describe_peer(c, &d);
    assert_int_equal(strlen(d.data), d.len);
    for (size_t i = 0; i < d.len; i++)
        assert_true(d.data[i] >= 0x20 && d.data[i] < 0x7f);
    assert_contains(&d, "subject=CN=evil");
    assert_contains(&d, "X-Injected: yes");
    netio_free(&io);
    tls_conn_free(&c);
    finish(t, sv);
    job_free(&j);
    strbuf_free(&d);
    strbuf_free(&err);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    test_rm_tree(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_lines_both_ways),
        cmocka_unit_test(test_bulk_transfer),
        cmocka_unit_test(test_chain_file),
        cmocka_unit_test(test_tls11_refused_when_min_is_12),
        cmocka_unit_test(test_parse_protocols),
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_hostname_verification),
        cmocka_unit_test(test_expired_certificate),
        cmocka_unit_test(test_check_files_good_and_mismatched),
        cmocka_unit_test(test_check_files_bad_files),
        cmocka_unit_test(test_reload_keeps_old_on_failure),
        cmocka_unit_test(test_from_config),
        cmocka_unit_test(test_plaintext_before_handshake_dropped),
        cmocka_unit_test(test_peer_closes_mid_handshake),
        cmocka_unit_test(test_garbage_instead_of_client_hello),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_mid_stream_failures),
        cmocka_unit_test(test_renegotiation_refused),
        cmocka_unit_test(test_session_resumption),
        cmocka_unit_test(test_peer_name_with_control_characters),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
