/*
 * test_netio.c - unit tests for line-oriented network I/O (lib/util/netio).
 *
 * Real descriptors (socketpair, pipes) for timeouts, EOF and output; a small
 * in-memory backend that hands out a few bytes per read to exercise every
 * chunk boundary (a CR at the end of one read and its LF in the next).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/netio.h"
#include "util/strbuf.h"

/* ---- helpers ---- */

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t r = write(fd, s, n);
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r > 0);
        s += r;
        n -= (size_t)r;
    }
}

static void write_str(int fd, const char *s)
{
    write_all(fd, s, strlen(s));
}

/* Forks a child that writes p[0..n) to fd and exits: for inputs larger than
 * a socket buffer. */
static pid_t spawn_writer(int fd, const char *p, size_t n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *s = p;
        while (n > 0) {
            ssize_t r = write(fd, s, n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                _exit(1);
            s += r;
            n -= (size_t)r;
        }
        _exit(0);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* In-memory backend: returns at most `step` bytes per read, then EOF. */
struct mem {
    const char *data;
    size_t len;
    size_t pos;
    size_t step;
    strbuf written;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n, int timeout_ms)
{
    (void)timeout_ms;
    struct mem *m = ctx;
    size_t k = m->len - m->pos;
    if (k > m->step)
        k = m->step;
    if (k > n)
        k = n;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

static ssize_t mem_write(void *ctx, const void *buf, size_t n, int timeout_ms)
{
    (void)timeout_ms;
    struct mem *m = ctx;
    strbuf_append(&m->written, buf, n);
    return (ssize_t)n;
}

static const struct netio_backend mem_backend = { "mem", mem_read, mem_write };

static struct netio *mem_io(struct mem *m, const char *data, size_t len, size_t step)
{
    m->data = data;
    m->len = len;
    m->pos = 0;
    m->step = step;
    strbuf_init(&m->written);
    struct netio *io = netio_new(-1);
    netio_set_backend(io, &mem_backend, m);
    return io;
}

/* Reads one line and checks status, content and flags. */
static void expect_line(struct netio *io, enum netio_status st, const char *text, size_t len,
                        unsigned flags)
{
    strbuf line;
    strbuf_init(&line);
    unsigned f = 0xffff;
    enum netio_status got = netio_read_line(io, &line, &f);
    if (got != st)
        fail_msg("status %s, expected %s", netio_status_str(got), netio_status_str(st));
    assert_int_equal(line.len, len);
    assert_memory_equal(line.data, text, len);
    assert_int_equal(f, flags);
    strbuf_free(&line);
}

#define EXPECT(io, st, lit, flags) expect_line(io, st, lit, sizeof(lit) - 1, flags)

/* ---- line termination ---- */

static void test_crlf_and_lf(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    write_str(sv[1], "HELO a.org\r\nMAIL FROM:<x@y>\n\r\n\nlast\r\n");
    EXPECT(io, NETIO_OK, "HELO a.org", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_OK, "MAIL FROM:<x@y>", NETIO_LINE_LF);
    EXPECT(io, NETIO_OK, "", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_OK, "", NETIO_LINE_LF);
    EXPECT(io, NETIO_OK, "last", NETIO_LINE_CRLF);
    close(sv[1]);
    EXPECT(io, NETIO_EOF, "", 0);
    EXPECT(io, NETIO_EOF, "", 0); /* stays at EOF */
    netio_free(&io);
    assert_null(io);
    close(sv[0]);
}

static void test_bare_cr(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    /* SMTP smuggling shapes: only CRLF and LF end lines; CR elsewhere is
     * content and flagged. */
    write_str(sv[1], "a\rb\r\n" "x\r\r\n" "\r.\r\n" ".\r\n" "end\rX\n");
    EXPECT(io, NETIO_OK, "a\rb", NETIO_LINE_CRLF | NETIO_LINE_BARE_CR);
    EXPECT(io, NETIO_OK, "x\r", NETIO_LINE_CRLF | NETIO_LINE_BARE_CR);
    EXPECT(io, NETIO_OK, "\r.", NETIO_LINE_CRLF | NETIO_LINE_BARE_CR);
    EXPECT(io, NETIO_OK, ".", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_OK, "end\rX", NETIO_LINE_LF | NETIO_LINE_BARE_CR);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    write_all(sv[1], "a\0b\r\n\0\n", 7);
    expect_line(io, NETIO_OK, "a\0b", 3, NETIO_LINE_CRLF | NETIO_LINE_NUL);
    expect_line(io, NETIO_OK, "\0", 1, NETIO_LINE_LF | NETIO_LINE_NUL);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

/* Every line split at every possible read boundary: one byte per read. */
static void test_chunk_boundaries(void **state)
{
    (void)state;
    static const char in[] = "ab\r\ncd\r\re\n\r\r\nz\r";
    for (size_t step = 1; step <= 4; step++) {
        struct mem m;
        struct netio *io = mem_io(&m, in, sizeof(in) - 1, step);
        EXPECT(io, NETIO_OK, "ab", NETIO_LINE_CRLF);
        EXPECT(io, NETIO_OK, "cd\r\re", NETIO_LINE_LF | NETIO_LINE_BARE_CR);
        EXPECT(io, NETIO_OK, "\r", NETIO_LINE_CRLF | NETIO_LINE_BARE_CR);
        /* A CR as the last byte before EOF is bare. */
        EXPECT(io, NETIO_EOF_PARTIAL, "z\r", NETIO_LINE_BARE_CR);
        EXPECT(io, NETIO_EOF, "", 0);
        netio_free(&io);
        strbuf_free(&m.written);
    }
}

/* ---- limits ---- */

static void test_line_at_limit(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_max_line(io, 10);
    write_str(sv[1], "0123456789\r\n"  /* exactly max with CRLF */
                     "0123456789\n"    /* exactly max with LF */
                     "0123456789A\r\n" /* max + 1 */
                     "next\r\n"
                     "0123456789\r\r\n" /* max + a bare CR = max + 1 */
                     "0123456789ABCDEFGHIJ\n"
                     "after\n");
    EXPECT(io, NETIO_OK, "0123456789", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_OK, "0123456789", NETIO_LINE_LF);
    EXPECT(io, NETIO_TOO_LONG, "0123456789", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_OK, "next", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_TOO_LONG, "0123456789", NETIO_LINE_CRLF | NETIO_LINE_BARE_CR);
    EXPECT(io, NETIO_TOO_LONG, "0123456789", NETIO_LINE_LF);
    EXPECT(io, NETIO_OK, "after", NETIO_LINE_LF);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

/* max + 1 bytes where the last is CR: must wait for the next byte to know
 * whether it is CRLF (fits) or content (too long); here across reads. */
static void test_limit_cr_boundary(void **state)
{
    (void)state;
    static const char in[] = "0123456789\r\n" "0123456789\rX\n" "ok\n";
    for (size_t step = 1; step <= 13; step++) {
        struct mem m;
        struct netio *io = mem_io(&m, in, sizeof(in) - 1, step);
        netio_set_max_line(io, 10);
        EXPECT(io, NETIO_OK, "0123456789", NETIO_LINE_CRLF);
        EXPECT(io, NETIO_TOO_LONG, "0123456789", NETIO_LINE_LF | NETIO_LINE_BARE_CR);
        EXPECT(io, NETIO_OK, "ok", NETIO_LINE_LF);
        netio_free(&io);
        strbuf_free(&m.written);
    }
}

static void test_megabyte_line_resyncs(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    size_t big = 1024 * 1024;
    char *in = malloc(big + 32);
    memset(in, 'x', big);
    in[500000] = '\r'; /* bare CR and NUL deep in the discarded part */
    in[600000] = '\0';
    memcpy(in + big, "\r\nQUIT\r\n", 8);
    pid_t pid = spawn_writer(sv[1], in, big + 8);
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 10000);

    strbuf line;
    strbuf_init(&line);
    unsigned flags;
    assert_int_equal(netio_read_line(io, &line, &flags), NETIO_TOO_LONG);
    assert_int_equal(line.len, NETIO_DEFAULT_MAX_LINE);
    for (size_t i = 0; i < line.len; i++)
        assert_int_equal(line.data[i], 'x');
    assert_int_equal(flags, NETIO_LINE_CRLF | NETIO_LINE_BARE_CR | NETIO_LINE_NUL);
    EXPECT(io, NETIO_OK, "QUIT", NETIO_LINE_CRLF);
    reap(pid);
    strbuf_free(&line);
    free(in);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

static void test_discard_limit_desync(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    size_t big = 200 * 1000;
    char *in = malloc(big + 2);
    memset(in, 'y', big);
    memcpy(in + big, "\r\n", 2);
    pid_t pid = spawn_writer(sv[1], in, big + 2);
    struct netio *io = netio_new(sv[0]);
    netio_set_max_line(io, 100);
    netio_set_discard_limit(io, 50000);
    netio_set_read_timeout(io, 10000);
    strbuf line;
    strbuf_init(&line);
    unsigned flags;
    assert_int_equal(netio_read_line(io, &line, &flags), NETIO_TOO_LONG);
    assert_int_equal(line.len, 100);
    assert_true(flags & NETIO_LINE_DESYNC);
    assert_false(flags & (NETIO_LINE_CRLF | NETIO_LINE_LF));
    /* The caller closes now; drain so the writer can finish. */
    netio_free(&io);
    char buf[65536];
    size_t total = 0;
    ssize_t r;
    close(sv[1]);
    while (total < big + 2 && (r = read(sv[0], buf, sizeof(buf))) > 0)
        total += (size_t)r;
    reap(pid);
    strbuf_free(&line);
    free(in);
    close(sv[0]);
}

static void test_too_long_then_eof(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_max_line(io, 4);
    write_str(sv[1], "abcdefghij");
    close(sv[1]);
    EXPECT(io, NETIO_EOF_PARTIAL, "abcd", 0);
    EXPECT(io, NETIO_EOF, "", 0);
    netio_free(&io);
    close(sv[0]);
}

/* ---- EOF and timeouts ---- */

static void test_eof_mid_line(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    write_str(sv[1], "whole\r\npartial");
    close(sv[1]);
    EXPECT(io, NETIO_OK, "whole", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_EOF_PARTIAL, "partial", 0);
    EXPECT(io, NETIO_EOF, "", 0);
    netio_free(&io);
    close(sv[0]);
}

static void test_read_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 100);
    long long t0 = netio_now_ms();
    EXPECT(io, NETIO_TIMEOUT, "", 0);
    long long dt = netio_now_ms() - t0;
    assert_true(dt >= 95 && dt < 2000);

    /* A line that starts but never ends also times out, within the same
     * bound: the deadline covers the whole line. */
    write_str(sv[1], "MAIL FROM:<slow");
    t0 = netio_now_ms();
    strbuf line;
    strbuf_init(&line);
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_TIMEOUT);
    dt = netio_now_ms() - t0;
    assert_true(dt >= 95 && dt < 2000);
    strbuf_free(&line);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

/* ---- exact reads and pipelining ---- */

static void test_read_exact(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 5000);
    strbuf out;
    strbuf_init(&out);

    /* BDAT 5 then a pipelined command: read_exact must not eat the command. */
    write_all(sv[1], "BDAT 5\r\n\r\n\0xyQUIT\r\n", 19);
    EXPECT(io, NETIO_OK, "BDAT 5", NETIO_LINE_CRLF);
    assert_int_equal(netio_read_exact(io, &out, 5), NETIO_OK);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "\r\n\0xy", 5);
    EXPECT(io, NETIO_OK, "QUIT", NETIO_LINE_CRLF);

    assert_int_equal(netio_read_exact(io, &out, 0), NETIO_OK);
    assert_int_equal(out.len, 0);

    /* Larger than the buffer and the socket: comes in pieces. */
    size_t big = 300000;
    char *in = malloc(big);
    for (size_t i = 0; i < big; i++)
        in[i] = (char)(i * 7);
    pid_t pid = spawn_writer(sv[1], in, big);
    assert_int_equal(netio_read_exact(io, &out, big), NETIO_OK);
    assert_int_equal(out.len, big);
    assert_memory_equal(out.data, in, big);
    reap(pid);

    /* Timeout with partial data. */
    netio_set_read_timeout(io, 100);
    write_str(sv[1], "abc");
    assert_int_equal(netio_read_exact(io, &out, 10), NETIO_TIMEOUT);
    assert_int_equal(out.len, 3);

    /* EOF after a few bytes, then EOF at once. */
    write_str(sv[1], "12");
    close(sv[1]);
    assert_int_equal(netio_read_exact(io, &out, 10), NETIO_EOF_PARTIAL);
    assert_true(strbuf_eq(&out, "12"));
    assert_int_equal(netio_read_exact(io, &out, 10), NETIO_EOF);
    assert_int_equal(out.len, 0);

    free(in);
    strbuf_free(&out);
    netio_free(&io);
    close(sv[0]);
}

/* A hostile BDAT size must not allocate by itself. */
static void test_read_exact_huge_n(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 100);
    write_str(sv[1], "tiny");
    strbuf out;
    strbuf_init(&out);
    assert_int_equal(netio_read_exact(io, &out, SIZE_MAX / 2), NETIO_TIMEOUT);
    assert_true(strbuf_eq(&out, "tiny"));
    assert_true(out.cap < 1024 * 1024);
    strbuf_free(&out);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

static void test_pipelined_pending(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 100);
    assert_int_equal(netio_pending(io), 0);
    /* STARTTLS with plaintext pipelined behind it, in one write. */
    write_str(sv[1], "STARTTLS\r\nMAIL FROM:<evil>\r\nRCPT TO:<x>\r\n");
    EXPECT(io, NETIO_OK, "STARTTLS", NETIO_LINE_CRLF);
    assert_int_equal(netio_pending(io), 31);
    assert_int_equal(netio_discard_input(io), 31);
    assert_int_equal(netio_pending(io), 0);
    EXPECT(io, NETIO_TIMEOUT, "", 0);

    /* Switching backends drops whatever was buffered before the switch. */
    write_str(sv[1], "A\r\nB\r\n");
    EXPECT(io, NETIO_OK, "A", NETIO_LINE_CRLF);
    struct mem m;
    m.data = "TLS\r\n";
    m.len = 5;
    m.pos = 0;
    m.step = 100;
    strbuf_init(&m.written);
    assert_int_equal(netio_set_backend(io, &mem_backend, &m), 3);
    EXPECT(io, NETIO_OK, "TLS", NETIO_LINE_CRLF);
    assert_int_equal(netio_puts(io, "after switch\r\n"), 0);
    assert_int_equal(netio_flush(io), 0);
    assert_true(strbuf_eq(&m.written, "after switch\r\n"));
    strbuf_free(&m.written);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

/* ---- output ---- */

static void test_output(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    assert_int_equal(netio_puts(io, "220 mx.a.org ESMTP\r\n"), 0);
    assert_int_equal(netio_printf(io, "250-%s\r\n250 %d\r\n", "SIZE", 42), 0);
    assert_int_equal(netio_write(io, "x\0y", 3), 0);
    /* Buffered: nothing on the wire before the flush. */
    char buf[128];
    assert_int_equal(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_int_equal(netio_flush(io), 0);
    const char want[] = "220 mx.a.org ESMTP\r\n250-SIZE\r\n250 42\r\nx\0y";
    ssize_t r = read(sv[1], buf, sizeof(buf));
    assert_int_equal(r, sizeof(want) - 1);
    assert_memory_equal(buf, want, sizeof(want) - 1);
    assert_int_equal(netio_write_error(io), 0);

    /* More than a chunk goes out without an explicit flush. */
    char *big = malloc(3 * NETIO_CHUNK);
    memset(big, 'z', 3 * NETIO_CHUNK);
    assert_int_equal(netio_write(io, big, 3 * NETIO_CHUNK), 0);
    size_t total = 0;
    while ((r = recv(sv[1], big, 3 * NETIO_CHUNK, MSG_DONTWAIT)) > 0)
        total += (size_t)r;
    assert_int_equal(total, 3 * NETIO_CHUNK);
    free(big);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

static void test_flush_timeout_sticky(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct netio *io = netio_new(sv[0]);
    netio_set_write_timeout(io, 100);
    /* The peer never reads: the socket buffer fills and a flush times out. */
    char chunk[4096];
    memset(chunk, 'w', sizeof(chunk));
    long long t0 = netio_now_ms();
    int rc = 0;
    for (int i = 0; i < 4096 && rc == 0; i++)
        rc = netio_write(io, chunk, sizeof(chunk));
    if (rc == 0)
        rc = netio_flush(io);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(netio_now_ms() - t0 < 5000);
    assert_int_equal(netio_write_error(io), ETIMEDOUT);
    /* Sticky: later writes fail at once, without waiting. */
    t0 = netio_now_ms();
    errno = 0;
    assert_int_equal(netio_puts(io, "more"), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(netio_printf(io, "%d", 1), -1);
    assert_int_equal(netio_flush(io), -1);
    assert_true(netio_now_ms() - t0 < 50);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_to_closed_peer(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    struct netio *io = netio_new(sv[0]);
    /* MSG_NOSIGNAL: EPIPE, no SIGPIPE killing the test. */
    assert_int_equal(netio_puts(io, "221 bye\r\n"), 0);
    assert_int_equal(netio_flush(io), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(netio_write_error(io), EPIPE);
    netio_free(&io);
    close(sv[0]);
}

/* Separate non-socket descriptors, as for `sendmail -bs` on stdin/stdout. */
static void test_pipes(void **state)
{
    (void)state;
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    struct netio *io = netio_new_fds(in[0], out[1]);
    assert_int_equal(netio_rfd(io), in[0]);
    assert_int_equal(netio_wfd(io), out[1]);
    netio_set_read_timeout(io, 100);
    netio_set_write_timeout(io, 100);
    write_str(in[1], "EHLO x\r\n");
    EXPECT(io, NETIO_OK, "EHLO x", NETIO_LINE_CRLF);
    EXPECT(io, NETIO_TIMEOUT, "", 0);
    assert_int_equal(netio_puts(io, "250 ok\r\n"), 0);
    assert_int_equal(netio_flush(io), 0);
    char buf[16];
    assert_int_equal(read(out[0], buf, sizeof(buf)), 8);
    assert_memory_equal(buf, "250 ok\r\n", 8);

    /* Nobody reads the output pipe: the flush times out, no hang. */
    char chunk[4096];
    memset(chunk, 'p', sizeof(chunk));
    int rc = 0;
    for (int i = 0; i < 256 && rc == 0; i++)
        rc = netio_write(io, chunk, sizeof(chunk));
    if (rc == 0)
        rc = netio_flush(io);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, ETIMEDOUT);

    close(in[1]);
    EXPECT(io, NETIO_EOF, "", 0);
    netio_free(&io);
    close(in[0]);
    close(out[0]);
    close(out[1]);
}

/* ---- pieces of long lines (message content) ---- */

/* Reads one piece and checks status, content and flags. */
static void expect_part(struct netio *io, size_t max, enum netio_status st, const char *text,
                        size_t len, unsigned flags)
{
    strbuf part;
    strbuf_init(&part);
    unsigned f = 0xffff;
    enum netio_status got = netio_read_line_part(io, &part, max, &f);
    if (got != st)
        fail_msg("status %s, expected %s", netio_status_str(got), netio_status_str(st));
    assert_int_equal(part.len, len);
    assert_memory_equal(part.data, text, len);
    assert_int_equal(f, flags);
    strbuf_free(&part);
}

#define EXPECT_PART(io, max, st, lit, flags) expect_part(io, max, st, lit, sizeof(lit) - 1, flags)

static void test_part_splits_without_loss(void **state)
{
    (void)state;
    static const char in[] = "abcdefghij\r\nxy\r\nabcd\r\nab\nabcde\r\r\nend";
    /* Every read size, so that each piece boundary meets each chunk boundary. */
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct mem m;
        struct netio *io = mem_io(&m, in, sizeof(in) - 1, step);
        EXPECT_PART(io, 4, NETIO_OK, "abcd", NETIO_LINE_PARTIAL);
        EXPECT_PART(io, 4, NETIO_OK, "efgh", NETIO_LINE_PARTIAL);
        EXPECT_PART(io, 4, NETIO_OK, "ij", NETIO_LINE_CRLF);
        EXPECT_PART(io, 4, NETIO_OK, "xy", NETIO_LINE_CRLF);
        /* Exactly max bytes then CRLF: one piece, the CR is not split off. */
        EXPECT_PART(io, 4, NETIO_OK, "abcd", NETIO_LINE_CRLF);
        EXPECT_PART(io, 4, NETIO_OK, "ab", NETIO_LINE_LF);
        /* "abcde\r\r\n": the first CR is bare, the second ends the line. */
        EXPECT_PART(io, 4, NETIO_OK, "abcd", NETIO_LINE_PARTIAL);
        EXPECT_PART(io, 4, NETIO_OK, "e\r", NETIO_LINE_CRLF | NETIO_LINE_BARE_CR);
        EXPECT_PART(io, 4, NETIO_EOF_PARTIAL, "end", 0);
        EXPECT_PART(io, 4, NETIO_EOF, "", 0);
        netio_free(&io);
        strbuf_free(&m.written);
    }
}

static void test_part_cr_at_piece_end(void **state)
{
    (void)state;
    /* A CR in the last position of a piece: bare when the next byte is not
     * LF; when it is LF the piece must stop before the CR instead. */
    static const char in[] = "abc\rdef\r\nabc\r\n\0x\r\n";
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct mem m;
        struct netio *io = mem_io(&m, in, sizeof(in) - 1, step);
        EXPECT_PART(io, 4, NETIO_OK, "abc\r", NETIO_LINE_PARTIAL | NETIO_LINE_BARE_CR);
        EXPECT_PART(io, 4, NETIO_OK, "def", NETIO_LINE_CRLF);
        EXPECT_PART(io, 3, NETIO_OK, "abc", NETIO_LINE_CRLF);
        EXPECT_PART(io, 3, NETIO_OK, "\0x", NETIO_LINE_CRLF | NETIO_LINE_NUL);
        EXPECT_PART(io, 3, NETIO_EOF, "", 0);
        netio_free(&io);
        strbuf_free(&m.written);
    }
}

static void test_part_megabyte_line_kept(void **state)
{
    (void)state;
    /* A 1 MB line through a real socket: every byte comes back in pieces,
     * and the following line is intact. netio's max_line does not apply. */
    size_t n = 1024 * 1024;
    char *big = malloc(n + 16);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    memcpy(big + n, "\r\nnext\r\n", 8);
    int sv[2];
    make_pair(sv);
    pid_t pid = spawn_writer(sv[1], big, n + 8);
    struct netio *io = netio_new(sv[0]);
    netio_set_max_line(io, 100);
    strbuf part, all;
    strbuf_init(&part);
    strbuf_init(&all);
    unsigned f = 0;
    do {
        assert_int_equal(netio_read_line_part(io, &part, 65536, &f), NETIO_OK);
        assert_true(part.len <= 65536);
        strbuf_append_sb(&all, &part);
    } while (f & NETIO_LINE_PARTIAL);
    assert_int_equal(f, NETIO_LINE_CRLF);
    assert_int_equal(all.len, n);
    assert_memory_equal(all.data, big, n);
    assert_int_equal(netio_read_line_part(io, &part, 65536, &f), NETIO_OK);
    assert_true(strbuf_eq(&part, "next"));
    reap(pid);
    close(sv[1]);
    assert_int_equal(netio_read_line_part(io, &part, 65536, &f), NETIO_EOF);
    strbuf_free(&part);
    strbuf_free(&all);
    netio_free(&io);
    close(sv[0]);
    free(big);
}

static void test_part_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    write_str(sv[1], "no end");
    struct netio *io = netio_new(sv[0]);
    netio_set_read_timeout(io, 100);
    strbuf part;
    strbuf_init(&part);
    assert_int_equal(netio_read_line_part(io, &part, 100, NULL), NETIO_TIMEOUT);
    strbuf_free(&part);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(netio_status_str(NETIO_TIMEOUT), "timeout");
    assert_string_equal(netio_status_str(NETIO_TOO_LONG), "line too long");
    assert_string_equal(netio_status_str((enum netio_status)99), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crlf_and_lf),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_chunk_boundaries),
        cmocka_unit_test(test_line_at_limit),
        cmocka_unit_test(test_limit_cr_boundary),
        cmocka_unit_test(test_megabyte_line_resyncs),
        cmocka_unit_test(test_discard_limit_desync),
        cmocka_unit_test(test_too_long_then_eof),
        cmocka_unit_test(test_eof_mid_line),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_read_exact),
        cmocka_unit_test(test_read_exact_huge_n),
        cmocka_unit_test(test_pipelined_pending),
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_flush_timeout_sticky),
        cmocka_unit_test(test_write_to_closed_peer),
        cmocka_unit_test(test_pipes),
        cmocka_unit_test(test_part_splits_without_loss),
        cmocka_unit_test(test_part_cr_at_piece_end),
        cmocka_unit_test(test_part_megabyte_line_kept),
        cmocka_unit_test(test_part_timeout),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
