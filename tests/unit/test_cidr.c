/*
 * test_cidr.c - unit tests for network lists (lib/mail/cidr): Postfix
 * syntax, prefix edges, IPv4-mapped clients, and every malformed entry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mail/cidr.h"
#include "util/strbuf.h"

static void test_matching(void **state)
{
    (void)state;
    struct cidr_list l = { 0 };
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(cidr_list_parse(&l, "127.0.0.0/8 [::1]/128, 192.0.2.77,10.0.0.0/9\n"
                                         "2001:db8::/32 [2001:db8:ff::]/48 0.0.0.0/0",
                                     "mynetworks", &err),
                     0);
    assert_int_equal(l.count, 7);
    cidr_list_free(&l);

    assert_int_equal(cidr_list_parse(&l, "127.0.0.0/8 [::1]/128 192.0.2.77 10.0.0.0/9 2001:db8::/32",
                                     "mynetworks", &err),
                     0);
    assert_true(cidr_match_text(&l, "127.0.0.1"));
    assert_true(cidr_match_text(&l, "127.255.255.255"));
    assert_false(cidr_match_text(&l, "128.0.0.1"));
    assert_true(cidr_match_text(&l, "::1"));
    assert_false(cidr_match_text(&l, "::2"));
    assert_true(cidr_match_text(&l, "192.0.2.77"));
    assert_false(cidr_match_text(&l, "192.0.2.78"));
    assert_true(cidr_match_text(&l, "10.127.255.255"));  /* /9 edge */
    assert_false(cidr_match_text(&l, "10.128.0.0"));
    assert_true(cidr_match_text(&l, "2001:db8:1234::1"));
    assert_false(cidr_match_text(&l, "2001:db9::1"));
    /* An IPv4 client on a dual-stack socket. */
    assert_true(cidr_match_text(&l, "::ffff:127.0.0.1"));
    assert_false(cidr_match_text(&l, "::ffff:8.8.8.8"));
    assert_false(cidr_match_text(&l, "not an address"));
    cidr_list_free(&l);
    strbuf_free(&err);
}

static void test_empty_and_all(void **state)
{
    (void)state;
    struct cidr_list l = { 0 };
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(cidr_list_parse(&l, "  ,, ", "x", &err), 0);
    assert_false(cidr_match_text(&l, "127.0.0.1"));
    assert_int_equal(cidr_list_parse(&l, "0.0.0.0/0 ::/0", "x", &err), 0);
    assert_true(cidr_match_text(&l, "203.0.113.9"));
    assert_true(cidr_match_text(&l, "2001:db8::9"));
    cidr_list_free(&l);
    strbuf_free(&err);
}

static void test_bad_entries(void **state)
{
    (void)state;
    static const struct {
        const char *in, *why;
    } bad[] = {
        { "192.0.2.1/24", "host bits set" },
        { "192.0.2.0/33", "prefix length too large" },
        { "::/129", "prefix length too large" },
        { "192.0.2.0/", "bad prefix length" },
        { "192.0.2.0/2x", "bad prefix length" },
        { "192.0.2.0/-1", "bad prefix length" },
        { "999.0.0.1", "not an IPv4 or IPv6 address" },
        { "[192.0.2.1]", "brackets are for IPv6" },
        { "example.org", "not an IPv4 or IPv6 address" },
        { "[::1", "not an IPv4 or IPv6 address" },
        { "01234567890123456789012345678901234567890123456789012345678901234567890123456789",
          "too long" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cidr_list l = { 0 };
        strbuf err;
        strbuf_init(&err);
        assert_int_equal(cidr_list_parse(&l, bad[i].in, "mynetworks", &err), 1);
        assert_int_equal(l.count, 0);
        if (strstr(err.data, bad[i].why) == NULL || strncmp(err.data, "mynetworks: invalid network '", 29))
            fail_msg("%s: got %s", bad[i].in, err.data);
        cidr_list_free(&l);
        strbuf_free(&err);
    }
    /* Good entries around a bad one are kept. */
    struct cidr_list l = { 0 };
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(cidr_list_parse(&l, "127.0.0.1 bogus ::1", "x", &err), 1);
    assert_int_equal(l.count, 2);
    cidr_list_free(&l);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_empty_and_all),
        cmocka_unit_test(test_bad_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
