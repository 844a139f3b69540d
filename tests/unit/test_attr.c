/*
 * test_attr.c - unit tests for IPC records (lib/util/attr*.c) and descriptor
 * passing (lib/util/fdpass.c).
 *
 * The parser is driven by a table of malformed records, each with the error
 * text an administrator would see; every prefix of a valid record must read
 * as "incomplete", and random corruption must never crash. Socket tests
 * cover framing on a real stream (two records in one write, a trickling
 * peer, EOF and timeouts), and SCM_RIGHTS hand-over with leak checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/attr.h"
#include "util/fdpass.h"
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

static void reap(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Number of open descriptors, to prove nothing leaked. */
static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void assert_contains(const strbuf *sb, const char *needle)
{
    if (strstr(sb->data, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", sb->data, needle);
}

/* ---- building, serializing, parsing ---- */

static void test_serialize_exact(void **state)
{
    (void)state;
    struct attr_list *l = attr_list_new();
    attr_add_str(l, ATTR_PROTOCOL, "verify");
    attr_add_str(l, "user", "bob");
    attr_add_str(l, "empty", "");
    attr_add_int(l, "n", -12);
    attr_add_uint64(l, "size", UINT64_MAX);
    strbuf out;
    strbuf_init(&out);
    attr_serialize(l, &out);
    assert_true(strbuf_eq(&out, "8:protocol,6:verify,4:user,3:bob,5:empty,0:,1:n,3:-12,"
                                "4:size,20:18446744073709551615,0:,"));
    strbuf_free(&out);
    attr_list_free(&l);
    assert_null(l);
}

static void test_round_trip_binary(void **state)
{
    (void)state;
    static const char bin[] = "a=b\0c\r\nd,e:f\r.\r\n0:,";
    struct attr_list *l = attr_list_new();
    attr_add_str(l, ATTR_PROTOCOL, "test");
    attr_add_bytes(l, "blob", bin, sizeof(bin) - 1);
    attr_add_bytes(l, "nul", "\0", 1);
    attr_add_str(l, "empty", "");
    attr_add_int(l, "min", LLONG_MIN);
    attr_add_int(l, "max", LLONG_MAX);
    attr_add_uint64(l, "u", 0);
    strbuf wire, err;
    strbuf_init(&wire);
    strbuf_init(&err);
    attr_serialize(l, &wire);
    strbuf_append(&wire, "next record", 11); /* trailing bytes are not ours */

    struct attr_list *r = attr_list_new();
    size_t used = 0;
    assert_int_equal(attr_parse(wire.data, wire.len, NULL, r, &used, &err), ATTR_PARSE_OK);
    assert_int_equal(used, wire.len - 11);
    assert_int_equal(attr_count(r), 7);
    assert_string_equal(attr_name_at(r, 1), "blob");
    size_t len;
    const char *v = attr_get_bytes(r, "blob", &len);
    assert_int_equal(len, sizeof(bin) - 1);
    assert_memory_equal(v, bin, len);
    assert_null(attr_get(r, "blob")); /* holds a NUL: not a C string */
    v = attr_value_at(r, 2, &len);
    assert_int_equal(len, 1);
    assert_int_equal(v[0], '\0');
    assert_string_equal(attr_get(r, "empty"), "");
    assert_null(attr_get(r, "absent"));
    long long s;
    assert_int_equal(attr_get_int(r, "min", LLONG_MIN, LLONG_MAX, &s, &err), 0);
    assert_true(s == LLONG_MIN);
    assert_int_equal(attr_get_int(r, "max", LLONG_MIN, LLONG_MAX, &s, &err), 0);
    assert_true(s == LLONG_MAX);
    uint64_t u = 99;
    assert_int_equal(attr_get_uint64(r, "u", 0, 10, &u, &err), 0);
    assert_int_equal(u, 0);
    assert_int_equal(attr_expect_protocol(r, "test", &err), 0);

    /* A record of exactly max_total bytes fits; one byte less does not
     * (see the malformed table). */
    const struct attr_limits exact = { .max_attrs = 10, .max_value = 4, .max_total = 14 };
    assert_int_equal(attr_parse("1:a,4:abcd,0:,", 14, &exact, r, &used, &err), ATTR_PARSE_OK);
    assert_int_equal(used, 14);

    /* An empty record is valid too. */
    assert_int_equal(attr_parse("0:,", 3, NULL, r, &used, &err), ATTR_PARSE_OK);
    assert_int_equal(attr_count(r), 0);
    assert_int_equal(used, 3);

    attr_list_free(&r);
    attr_list_free(&l);
    strbuf_free(&wire);
    strbuf_free(&err);
}

struct bad_case {
    const char *in;
    size_t len;                  /* 0: strlen(in) */
    const struct attr_limits *lim;
    const char *err;             /* expected substring of the message */
};

static const struct attr_limits small = { .max_attrs = 2, .max_value = 4, .max_total = 40 };

static void test_parse_malformed(void **state)
{
    (void)state;
    char longname[200];
    strcpy(longname, "65:");
    memset(longname + 3, 'a', 65);
    strcpy(longname + 68, ",1:x,0:,");
    const struct bad_case cases[] = {
        { "x:a,1:b,0:,", 0, NULL, "byte 0: attribute name: expected a decimal length, got 'x'" },
        { "01:a,1:b,0:,", 0, NULL, "byte 0: attribute name: length with a leading zero" },
        { "1:a,01:b,0:,", 0, NULL, "byte 4: value of attribute \"a\": length with a leading zero" },
        { "00:,", 0, NULL, "leading zero" },
        { "+1:a,1:b,0:,", 0, NULL, "expected a decimal length, got '+'" },
        { "-1:a,1:b,0:,", 0, NULL, "expected a decimal length, got '-'" },
        { " 1:a,1:b,0:,", 0, NULL, "expected a decimal length, got ' '" },
        { "1 :a,1:b,0:,", 0, NULL, "expected ':' after the length, got ' '" },
        { "1:a,1\n:b,0:,", 0, NULL, "expected ':' after the length, got '\\n'" },
        { "1:a,99999999999999999999:b", 0, NULL,
          "value of attribute \"a\": length exceeds the limit of 1048576 bytes" },
        { "1:a,18446744073709551617:", 0, NULL, "length exceeds the limit" },
        { "1:a;1:b,0:,", 0, NULL, "attribute name \"a\" not followed by ','" },
        { "1:a,1:bb0:,", 0, NULL, "value of attribute \"a\" not followed by ','" },
        { "1:A,1:b,0:,", 0, NULL, "invalid character 'A' in an attribute name" },
        { "3:a-b,1:b,0:,", 0, NULL, "invalid character '-' in an attribute name" },
        { "3:a\0b,1:b,0:,", 13, NULL, "invalid character '\\x00' in an attribute name" },
        { "1:=,1:b,0:,", 0, NULL, "invalid character '='" },
        { longname, 0, NULL, "attribute name: length exceeds the limit of 64 bytes" },
        { "1:a,1:b,1:c,1:d,1:a,1:e,0:,", 0, NULL, "byte 16: duplicate attribute \"a\"" },
        { "0:x", 0, NULL, "end marker \"0:\" not followed by ','" },
        { "1:a,0:,1:b,0:,1:c,0:,0:,", 0, &small, "more than the limit of 2 attributes" },
        { "1:a,5:", 0, &small, "value of attribute \"a\": length exceeds the limit of 4 bytes" },
        { "1:a,4:abcd,1:b,4:abcd,1:c,4:abcd,0:,", 0,
          &(struct attr_limits){ 10, 4, 30 }, "IPC record longer than the limit of 30 bytes" },
        { "1:a,4:abcd,0:,", 0, &(struct attr_limits){ 10, 4, 13 }, "longer than the limit of 13" },
    };
    strbuf err;
    strbuf_init(&err);
    struct attr_list *l = attr_list_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        size_t used = 12345;
        strbuf_reset(&err);
        enum attr_parse_status st = attr_parse(c->in, len, c->lim, l, &used, &err);
        if (st != ATTR_PARSE_ERROR)
            fail_msg("case %zu (%s): status %d, expected an error", i, c->in, st);
        assert_contains(&err, c->err);
        assert_int_equal(attr_count(l), 0);
        assert_int_equal(used, 12345);
    }
    attr_list_free(&l);
    strbuf_free(&err);
}

static void test_parse_incomplete(void **state)
{
    (void)state;
    struct attr_list *l = attr_list_new();
    attr_add_str(l, ATTR_PROTOCOL, "p");
    attr_add_bytes(l, "v", "12345678901\0", 12);
    attr_add_str(l, "e", "");
    strbuf wire, err;
    strbuf_init(&wire);
    strbuf_init(&err);
    attr_serialize(l, &wire);
    struct attr_list *r = attr_list_new();
    size_t used;
    /* Every strict prefix of a valid record (truncation anywhere) is
     * incomplete, never an error, never a record. */
    for (size_t n = 0; n < wire.len; n++) {
        enum attr_parse_status st = attr_parse(wire.data, n, NULL, r, &used, &err);
        if (st != ATTR_PARSE_INCOMPLETE)
            fail_msg("prefix of %zu bytes: status %d (%s)", n, st, err.data);
        assert_int_equal(attr_count(r), 0);
    }
    assert_int_equal(attr_parse(wire.data, wire.len, NULL, r, &used, &err), ATTR_PARSE_OK);
    assert_int_equal(used, wire.len);
    attr_list_free(&r);
    attr_list_free(&l);
    strbuf_free(&wire);
    strbuf_free(&err);
}

/* Random corruption of a valid record: any result is fine, a crash or a
 * sanitizer report is not. */
static void test_parse_corruption(void **state)
{
    (void)state;
    struct attr_list *l = attr_list_new();
    attr_add_str(l, ATTR_PROTOCOL, "fuzz");
    attr_add_str(l, "sender", "a@b.org");
    attr_add_bytes(l, "data", "\0\r\n,:0123", 9);
    strbuf wire, err;
    strbuf_init(&wire);
    strbuf_init(&err);
    attr_serialize(l, &wire);
    static const char alphabet[] = "0123456789:,az_A\0\r\n-";
    struct attr_list *r = attr_list_new();
    srand(42);
    char *copy = malloc(wire.len);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, wire.data, wire.len);
        int edits = 1 + rand() % 3;
        for (int e = 0; e < edits; e++)
            copy[rand() % wire.len] = alphabet[rand() % (sizeof(alphabet) - 1)];
        size_t len = wire.len - (size_t)(rand() % 4);
        size_t used = 0;
        enum attr_parse_status st = attr_parse(copy, len, NULL, r, &used, &err);
        if (st == ATTR_PARSE_OK)
            assert_true(used <= len);
        else
            assert_int_equal(attr_count(r), 0);
        if (st == ATTR_PARSE_ERROR)
            assert_true(err.len > 0);
    }
    free(copy);
    attr_list_free(&r);
    attr_list_free(&l);
    strbuf_free(&wire);
    strbuf_free(&err);
}

/* ---- lookups ---- */

static struct attr_list *parse_str(const char *s, size_t len)
{
    struct attr_list *l = attr_list_new();
    strbuf err;
    strbuf_init(&err);
    size_t used;
    if (attr_parse(s, len, NULL, l, &used, &err) != ATTR_PARSE_OK)
        fail_msg("parse failed: %s", err.data);
    strbuf_free(&err);
    return l;
}

static void test_lookups(void **state)
{
    (void)state;
    static const char rec[] = "8:protocol,4:auth,4:user,7:bob\0eve,3:num,2:42,3:neg,2:-7,"
                              "4:zero,2:-0,3:lz0,3:007,4:plus,2:+1,2:sp,2: 1,3:big,"
                              "19:9223372036854775808,4:lmin,20:-9223372036854775808,"
                              "4:umax,20:18446744073709551615,4:uovf,20:18446744073709551616,"
                              "5:empty,0:,0:,";
    struct attr_list *l = parse_str(rec, sizeof(rec) - 1);
    strbuf err;
    strbuf_init(&err);
    long long v = 1234;
    uint64_t u = 1234;

    assert_null(attr_get(l, "user"));
    assert_null(attr_require(l, "user", &err));
    assert_string_equal(err.data, "attribute \"user\" contains a NUL byte");
    assert_null(attr_require(l, "sender", &err));
    assert_string_equal(err.data, "missing attribute \"sender\"");
    assert_string_equal(attr_require(l, "num", &err), "42");

    assert_int_equal(attr_get_int(l, "num", 0, 100, &v, &err), 0);
    assert_int_equal(v, 42);
    assert_int_equal(attr_get_int(l, "neg", -10, 10, &v, &err), 0);
    assert_int_equal(v, -7);
    assert_int_equal(attr_get_int(l, "lmin", LLONG_MIN, 0, &v, &err), 0);
    assert_true(v == LLONG_MIN);
    v = 1234;
    assert_int_equal(attr_get_int(l, "num", 0, 41, &v, &err), -1);
    assert_string_equal(err.data, "attribute \"num\": number out of range: \"42\" (allowed 0..41)");
    assert_int_equal(v, 1234);
    assert_int_equal(attr_get_int(l, "neg", 0, 10, &v, &err), -1);
    assert_int_equal(attr_get_int(l, "zero", -1, 1, &v, &err), -1);
    assert_contains(&err, "not a decimal number: \"-0\"");
    assert_int_equal(attr_get_int(l, "lz0", 0, 100, &v, &err), -1);
    assert_contains(&err, "not a decimal number");
    assert_int_equal(attr_get_int(l, "plus", 0, 100, &v, &err), -1);
    assert_int_equal(attr_get_int(l, "sp", 0, 100, &v, &err), -1);
    assert_int_equal(attr_get_int(l, "empty", 0, 100, &v, &err), -1);
    assert_int_equal(attr_get_int(l, "user", 0, 100, &v, &err), -1);
    assert_contains(&err, "\"bob\\x00eve\""); /* peer bytes shown escaped */
    assert_int_equal(attr_get_int(l, "big", LLONG_MIN, LLONG_MAX, &v, &err), -1);
    assert_contains(&err, "out of range");
    assert_int_equal(attr_get_int(l, "nothere", 0, 1, &v, &err), -1);
    assert_string_equal(err.data, "missing attribute \"nothere\"");
    assert_int_equal(v, 1234);

    assert_int_equal(attr_get_uint64(l, "umax", 0, UINT64_MAX, &u, &err), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(attr_get_uint64(l, "uovf", 0, UINT64_MAX, &u, &err), -1);
    assert_contains(&err, "not an unsigned decimal number");
    assert_int_equal(attr_get_uint64(l, "neg", 0, UINT64_MAX, &u, &err), -1);
    assert_int_equal(attr_get_uint64(l, "num", 50, 60, &u, &err), -1);
    assert_string_equal(err.data, "attribute \"num\": 42 is out of range 50..60");

    attr_list_free(&l);
    strbuf_free(&err);
}

static void test_protocol_and_known(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    struct attr_list *l = attr_list_new();
    assert_int_equal(attr_expect_protocol(l, "verify", &err), -1);
    assert_string_equal(err.data, "empty record; expected protocol \"verify\"");
    attr_add_str(l, "user", "x");
    assert_int_equal(attr_expect_protocol(l, "verify", &err), -1);
    assert_string_equal(err.data, "record starts with attribute \"user\", not \"protocol\""
                                  " (expected protocol \"verify\")");
    attr_list_clear(l);
    attr_add_str(l, ATTR_PROTOCOL, "trig\r\nger");
    assert_int_equal(attr_expect_protocol(l, "verify", &err), -1);
    assert_string_equal(err.data, "peer speaks protocol \"trig\\r\\nger\", expected \"verify\"");
    attr_list_clear(l);
    attr_add_str(l, ATTR_PROTOCOL, "verify");
    attr_add_str(l, "user", "x");
    attr_add_str(l, "newer_field", "y");
    assert_int_equal(attr_expect_protocol(l, "verify", &err), 0);
    const char *const known[] = { "user", NULL };
    assert_int_equal(attr_check_known(l, known, &err), -1);
    assert_string_equal(err.data, "unknown attribute \"newer_field\"");
    const char *const known2[] = { "user", "newer_field", NULL };
    assert_int_equal(attr_check_known(l, known2, &err), 0);

    assert_true(attr_name_valid("queue_id2", 9));
    assert_false(attr_name_valid("Queue", 5));
    assert_false(attr_name_valid("", 0));
    attr_list_free(&l);
    strbuf_free(&err);
}

/* ---- over a socket ---- */

static void test_socket_round_trip(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    strbuf err;
    strbuf_init(&err);
    struct attr_list *a = attr_list_new(), *b = attr_list_new(), *r = attr_list_new();
    attr_add_str(a, ATTR_PROTOCOL, "one");
    attr_add_bytes(a, "data", "x\0y", 3);
    attr_add_str(b, ATTR_PROTOCOL, "two");

    /* Two records back to back: each read takes exactly one. */
    assert_int_equal(attr_write(sv[1], a, 1000), 0);
    assert_int_equal(attr_write(sv[1], b, 1000), 0);
    write_all(sv[1], "1:", 2); /* start of a third */
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), 1);
    assert_int_equal(attr_expect_protocol(r, "one", &err), 0);
    size_t len;
    assert_memory_equal(attr_get_bytes(r, "data", &len), "x\0y", 3);
    assert_int_equal(len, 3);
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), 1);
    assert_int_equal(attr_expect_protocol(r, "two", &err), 0);
    assert_int_equal(attr_count(r), 1);

    /* The third never completes: EOF in the middle. */
    close(sv[1]);
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_string_equal(err.data, "peer closed the connection in the middle of an IPC record"
                                  " (2 bytes received)");
    assert_int_equal(attr_count(r), 0);
    /* Now a clean EOF at a record boundary. */
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), 0);
    close(sv[0]);

    /* A writer whose peer is gone gets EPIPE, not SIGPIPE. */
    make_pair(sv);
    close(sv[0]);
    assert_int_equal(attr_write(sv[1], a, 1000), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[1]);

    attr_list_free(&a);
    attr_list_free(&b);
    attr_list_free(&r);
    strbuf_free(&err);
}

static void test_socket_large_and_trickle(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    strbuf err, wire;
    strbuf_init(&err);
    strbuf_init(&wire);
    struct attr_list *a = attr_list_new(), *r = attr_list_new();
    size_t big = 900 * 1000;
    char *val = malloc(big);
    for (size_t i = 0; i < big; i++)
        val[i] = (char)(i % 251);
    attr_add_str(a, ATTR_PROTOCOL, "big");
    attr_add_bytes(a, "v", val, big);

    /* Larger than the socket buffer: the writer runs in a child. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(attr_write(sv[1], a, 5000) == 0 ? 0 : 1);
    assert_int_equal(attr_read(sv[0], r, NULL, 5000, &err), 1);
    reap(pid);
    size_t len;
    const char *v = attr_get_bytes(r, "v", &len);
    assert_int_equal(len, big);
    assert_memory_equal(v, val, big);

    /* A peer that trickles one byte at a time, with a record behind. */
    attr_list_clear(a);
    attr_add_str(a, ATTR_PROTOCOL, "slow");
    attr_add_str(a, "k", "value");
    attr_serialize(a, &wire);
    attr_serialize(a, &wire);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (size_t i = 0; i < wire.len; i++) {
            if (write(sv[1], wire.data + i, 1) != 1)
                _exit(1);
            usleep(500);
        }
        _exit(0);
    }
    assert_int_equal(attr_read(sv[0], r, NULL, 5000, &err), 1);
    assert_string_equal(attr_get(r, "k"), "value");
    assert_int_equal(attr_read(sv[0], r, NULL, 5000, &err), 1);
    assert_string_equal(attr_get(r, "k"), "value");
    reap(pid);

    free(val);
    attr_list_free(&a);
    attr_list_free(&r);
    strbuf_free(&err);
    strbuf_free(&wire);
    close(sv[0]);
    close(sv[1]);
}

static void test_socket_errors(void **state)
{
    (void)state;
    int sv[2];
    strbuf err;
    strbuf_init(&err);
    struct attr_list *r = attr_list_new();

    /* Silent peer: timeout, bounded. */
    make_pair(sv);
    long long t0 = netio_now_ms();
    assert_int_equal(attr_read(sv[0], r, NULL, 100, &err), -1);
    assert_int_equal(errno, ETIMEDOUT);
    long long dt = netio_now_ms() - t0;
    assert_true(dt >= 95 && dt < 2000);
    assert_string_equal(err.data, "timeout after 100 ms waiting for an IPC record (0 bytes received)");

    /* A peer that stops mid-record also times out. */
    write_all(sv[1], "8:protocol,3:", 13);
    assert_int_equal(attr_read(sv[0], r, NULL, 100, &err), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_contains(&err, "(13 bytes received)");
    close(sv[0]);
    close(sv[1]);

    /* Malformed and oversized records are refused with the parser's words. */
    make_pair(sv);
    write_all(sv[1], "8:protocol,03:abc,0:,", 21);
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_contains(&err, "length with a leading zero");
    close(sv[0]);
    close(sv[1]);

    make_pair(sv);
    write_all(sv[1], "1:a,99999999999999999999:", 25);
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_contains(&err, "length exceeds the limit");
    close(sv[0]);
    close(sv[1]);

    /* Record size limit reached while still reading digits. */
    make_pair(sv);
    const struct attr_limits tiny = { .max_attrs = 5, .max_value = 100, .max_total = 8 };
    write_all(sv[1], "1:a,1:b,1:c,0:,", 15);
    assert_int_equal(attr_read(sv[0], r, &tiny, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_contains(&err, "longer than the limit of 8 bytes");
    close(sv[0]);
    close(sv[1]);

    /* A writer whose peer never reads times out instead of hanging, and
     * so does a descriptor send behind it. */
    make_pair(sv);
    struct attr_list *w = attr_list_new();
    size_t big = 4 * 1024 * 1024;
    char *val = calloc(1, big);
    attr_add_str(w, ATTR_PROTOCOL, "stuck");
    attr_add_bytes(w, "v", val, big);
    t0 = netio_now_ms();
    assert_int_equal(attr_write(sv[1], w, 100), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(netio_now_ms() - t0 < 2000);
    assert_int_equal(fdpass_send(sv[1], 0, "x", 1, 100), -1);
    assert_int_equal(errno, ETIMEDOUT);
    free(val);
    attr_list_free(&w);
    close(sv[0]);
    close(sv[1]);

    /* attr_read needs a socket. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    write_all(p[1], "0:,", 3);
    assert_int_equal(attr_read(p[0], r, NULL, 100, &err), -1);
    assert_int_equal(errno, ENOTSOCK);
    close(p[0]);
    close(p[1]);

    attr_list_free(&r);
    strbuf_free(&err);
}

/* ---- descriptor passing ---- */

static void test_fdpass_pipe(void **state)
{
    (void)state;
    int sv[2], p[2];
    make_pair(sv);
    assert_int_equal(pipe(p), 0);
    strbuf err;
    strbuf_init(&err);

    /* Hand over the pipe's write end, then a request record behind it. */
    assert_int_equal(fdpass_send(sv[1], p[1], "C", 1, 1000), 0);
    close(p[1]);
    struct attr_list *a = attr_list_new();
    attr_add_str(a, ATTR_PROTOCOL, "handoff");
    attr_add_str(a, "token", "t0k");
    assert_int_equal(attr_write(sv[1], a, 1000), 0);

    int fd = -1;
    char tag;
    assert_int_equal(fdpass_recv(sv[0], &fd, &tag, 1, 1000, &err), 0);
    assert_true(fd >= 0);
    assert_int_equal(tag, 'C');
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct attr_list *r = attr_list_new();
    assert_int_equal(attr_read(sv[0], r, NULL, 1000, &err), 1);
    assert_string_equal(attr_get(r, "token"), "t0k");

    /* The received descriptor writes into the original pipe. */
    write_all(fd, "through", 7);
    close(fd);
    char buf[16];
    assert_int_equal(read(p[0], buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "through", 7);
    assert_int_equal(read(p[0], buf, sizeof(buf)), 0); /* all write ends closed */

    /* More than one byte of data travels with the descriptor. */
    assert_int_equal(fdpass_send(sv[1], p[0], "hello", 5, 1000), 0);
    char five[5];
    assert_int_equal(fdpass_recv(sv[0], &fd, five, 5, 1000, &err), 0);
    assert_memory_equal(five, "hello", 5);
    close(fd);

    close(p[0]);
    close(sv[0]);
    close(sv[1]);
    attr_list_free(&a);
    attr_list_free(&r);
    strbuf_free(&err);
}

/* Sends k copies of fd with one byte, bypassing fdpass_send. */
static void send_fds_raw(int sock, int fd, int k)
{
    int fds[32];
    for (int i = 0; i < k; i++)
        fds[i] = fd;
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(fds))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { .iov_base = "X", .iov_len = 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                          .msg_controllen = CMSG_SPACE(k * sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(k * sizeof(int));
    memcpy(CMSG_DATA(c), fds, k * sizeof(int));
    assert_int_equal(sendmsg(sock, &msg, 0), 1);
}

static void test_fdpass_hostile(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    strbuf err;
    strbuf_init(&err);
    int fd = 1234;
    char b;
    /* Descriptors to pass: a pipe end (not the socket itself, which would
     * keep the connection open while in flight). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    int base = count_fds();

    /* Two descriptors: both closed, error. */
    send_fds_raw(sv[1], p[0], 2);
    assert_int_equal(fdpass_recv(sv[0], &fd, &b, 1, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_int_equal(fd, -1);
    assert_contains(&err, "more than one descriptor");
    assert_int_equal(count_fds(), base);

    /* Too many for the control buffer: MSG_CTRUNC, everything closed. */
    send_fds_raw(sv[1], p[0], 20);
    assert_int_equal(fdpass_recv(sv[0], &fd, &b, 1, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_contains(&err, "control data truncated");
    assert_int_equal(count_fds(), base);

    /* Data without a descriptor. */
    write_all(sv[1], "abcd", 4);
    char four[4];
    assert_int_equal(fdpass_recv(sv[0], &fd, four, 4, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_contains(&err, "without a descriptor");
    assert_int_equal(count_fds(), base);

    /* Descriptor with fewer bytes than expected, then silence: timeout,
     * and the descriptor that did arrive is closed. */
    assert_int_equal(fdpass_send(sv[1], p[0], "ab", 2, 1000), 0);
    assert_int_equal(fdpass_recv(sv[0], &fd, four, 4, 100, &err), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_contains(&err, "(2 of 4 bytes received)");
    assert_int_equal(count_fds(), base);

    /* Descriptor then EOF before the rest. */
    assert_int_equal(fdpass_send(sv[1], p[0], "ab", 2, 1000), 0);
    close(sv[1]);
    assert_int_equal(fdpass_recv(sv[0], &fd, four, 4, 1000, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_contains(&err, "peer closed the connection");
    assert_int_equal(count_fds(), base - 1);

    /* Silent peer. */
    close(sv[0]);
    make_pair(sv);
    assert_int_equal(fdpass_recv(sv[0], &fd, &b, 1, 100, &err), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(fdpass_send(sv[1], 0, "", 0, 100), -1);
    assert_int_equal(errno, EINVAL);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialize_exact),
        cmocka_unit_test(test_round_trip_binary),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_incomplete),
        cmocka_unit_test(test_parse_corruption),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_protocol_and_known),
        cmocka_unit_test(test_socket_round_trip),
        cmocka_unit_test(test_socket_large_and_trickle),
        cmocka_unit_test(test_socket_errors),
        cmocka_unit_test(test_fdpass_pipe),
        cmocka_unit_test(test_fdpass_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
