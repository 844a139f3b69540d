/*
 * test_service_table.c - unit tests for services.conf parsing
 * (lib/mail/service_table): every column, continuation, and each error with
 * its file:line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mail/service_table.h"
#include "util/strbuf.h"

static int parse(const char *text, struct service_table *t, strbuf *err)
{
    return service_table_parse("services.conf", text, strlen(text), t, err);
}

static void test_valid_table(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "\n"
                       "smtp accept inet:25,[::1]:2525 - - 100 smtpd\n"
                       "submission accept 127.0.0.1:587 petrel - - smtpd -o tls_mode=starttls\n"
                       "   -o max_use=10\n"
                       "qmgr daemon unix:public/qmgr petrel /var/spool/petrel 1 qmgr -v\n";
    struct service_table t;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(parse(text, &t, &err), 0);
    assert_string_equal(err.data, "");
    assert_int_equal(t.nservices, 3);

    const struct service_def *smtp = service_table_find(&t, "smtp");
    assert_non_null(smtp);
    assert_int_equal(smtp->kind, SERVICE_ACCEPT);
    assert_int_equal(smtp->nendpoints, 2);
    assert_int_equal(smtp->endpoints[0].kind, ENDPOINT_INET);
    assert_null(smtp->endpoints[0].host);
    assert_int_equal(smtp->endpoints[0].port, 25);
    assert_string_equal(smtp->endpoints[1].host, "::1");
    assert_int_equal(smtp->endpoints[1].port, 2525);
    assert_null(smtp->user);
    assert_int_equal(smtp->limit, 100);
    assert_int_equal(smtp->line, 3);

    const struct service_def *sub = service_table_find(&t, "submission");
    assert_string_equal(sub->endpoints[0].host, "127.0.0.1");
    assert_string_equal(sub->user, "petrel");
    assert_int_equal(sub->limit, 0);
    assert_int_equal(sub->nargs, 4); /* the continuation line joined in */
    assert_string_equal(service_override(sub, "tls_mode"), "starttls");
    assert_string_equal(service_override(sub, "max_use"), "10");
    assert_null(service_override(sub, "max"));

    const struct service_def *q = service_table_find(&t, "qmgr");
    assert_int_equal(q->kind, SERVICE_DAEMON);
    assert_int_equal(q->endpoints[0].kind, ENDPOINT_UNIX);
    assert_string_equal(q->endpoints[0].path, "public/qmgr");
    assert_string_equal(q->chroot, "/var/spool/petrel");
    assert_string_equal(q->args[0], "-v");
    assert_null(q->args[1]);
    assert_int_equal(q->line, 6);
    assert_null(service_table_find(&t, "pop3"));
    service_table_free(&t);
    strbuf_free(&err);
}

struct bad_case {
    const char *text;
    const char *message; /* expected substring, including file:line */
};

static void test_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "smtp accept 25 - - 100\n", "services.conf:1: expected at least 7 columns" },
        { "smtp listen 25 - - 100 smtpd\n", "services.conf:1: service smtp: unknown type \"listen\"" },
        { "smtp accept 0 - - 100 smtpd\n", "invalid port" },
        { "smtp accept 65536 - - 100 smtpd\n", "invalid port" },
        { "smtp accept 25x - - 100 smtpd\n", "invalid port" },
        { "smtp accept 999.1.1.1:25 - - 100 smtpd\n", "invalid IPv4 address" },
        { "smtp accept [zz]:25 - - 100 smtpd\n", "invalid IPv6 address" },
        { "smtp accept [::1]25 - - 100 smtpd\n", "expected inet:[IPv6-address]:port" },
        { "q daemon unix:../etc/x - - 1 qmgr\n", "relative to queue_directory" },
        { "q daemon unix:/tmp/x - - 1 qmgr\n", "relative to queue_directory" },
        { "smtp accept - - - 100 smtpd\n", "type accept needs a listen endpoint" },
        { "smtp accept 25 - - 0 smtpd\n", "invalid process limit \"0\"" },
        { "smtp accept 25 - - lots smtpd\n", "invalid process limit" },
        { "q daemon - - - 2 qmgr\n", "runs exactly one process" },
        { "smtp accept 25 - relative 1 smtpd\n", "must be an absolute path" },
        { "smtp accept 25 bad/user - 1 smtpd\n", "invalid user name" },
        { "smtp accept 25 - - 1 ../bin/sh\n", "invalid command" },
        { "smtp accept 25 - - 1 smtpd -o\n", "-o needs name=value" },
        { "smtp accept 25 - - 1 smtpd -o novalue\n", "-o needs name=value" },
        { "a accept 25 - - 1 smtpd\nb accept 127.0.0.1:25 - - 1 smtpd\n",
          "services.conf:2: service b: listen \"127.0.0.1:25\" overlaps service a (line 1)" },
        { "a accept 25 - - 1 smtpd\na accept 26 - - 1 smtpd\n", "services.conf:2: service \"a\" is defined twice" },
        { "  continued\n", "services.conf:1: continuation line" },
        { "smtp accept 25 - - 1 smtpd\nx\0y accept 26 - - 1 smtpd\n", "services.conf:2: NUL byte" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct service_table t;
        strbuf err;
        strbuf_init(&err);
        /* Lengths: the NUL case needs the real length. */
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].message, "NUL"))
            len = sizeof("smtp accept 25 - - 1 smtpd\nx\0y accept 26 - - 1 smtpd\n") - 1;
        int n = service_table_parse("services.conf", cases[i].text, len, &t, &err);
        if (n == 0 || strstr(err.data, cases[i].message) == NULL)
            fail_msg("case %zu: expected \"%s\", got %d errors: %s", i, cases[i].message, n,
                     err.data);
        service_table_free(&t);
        strbuf_free(&err);
    }
}

static void test_missing_file(void **state)
{
    (void)state;
    struct service_table t;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(service_table_load("/nonexistent/services.conf", &t, &err), 1);
    assert_string_equal(err.data, "/nonexistent/services.conf: cannot open: No such file or directory\n");
    service_table_free(&t);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
