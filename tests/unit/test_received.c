/*
 * test_received.c - unit tests for the Received: header and RFC 5322 dates
 * (lib/mail/received), incl. hostile HELO text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/received.h"
#include "util/strbuf.h"

static void test_full_header(void **state)
{
    (void)state;
    setenv("TZ", "UTC0", 1);
    tzset();
    strbuf sb;
    strbuf_init(&sb);
    struct received_info ri = {
        .helo = "mx.example.org", .client_name = "mail.example.org", .client_addr = "192.0.2.1",
        .by = "mx.petrel.test", .mail_name = "Petrel", .protocol = "ESMTP", .tls = true,
        .tls_details = "TLSv1.3 TLS_AES_256_GCM_SHA384", .queue_id = "0123456789ABCDEFGHIJKL",
        .for_rcpt = "bob@petrel.test", .when = 1795930305 };
    received_header(&sb, &ri);
    assert_string_equal(sb.data,
                        "Received: from mx.example.org (mail.example.org [192.0.2.1])\r\n"
                        "\tby mx.petrel.test (Petrel) with ESMTPS id 0123456789ABCDEFGHIJKL\r\n"
                        "\t(TLSv1.3 TLS_AES_256_GCM_SHA384)\r\n"
                        "\tfor <bob@petrel.test>; Sun, 29 Nov 2026 05:31:45 +0000\r\n");
    strbuf_free(&sb);
}

static void test_hostile_helo_and_no_for(void **state)
{
    (void)state;
    setenv("TZ", "UTC0", 1);
    tzset();
    strbuf sb;
    strbuf_init(&sb);
    struct received_info ri = { .helo = "evil) (by\x1b[31m\\", .client_addr = "2001:db8::1",
                                .by = "h", .protocol = "SMTP", .queue_id = "ID", .when = 0 };
    received_header(&sb, &ri);
    assert_string_equal(sb.data, "Received: from evil? ?by?[31m? (unknown [2001:db8::1])\r\n"
                                 "\tby h (Petrel) with SMTP id ID; Thu, 1 Jan 1970 00:00:00 +0000\r\n");
    strbuf_free(&sb);
}

static void test_protocols(void **state)
{
    (void)state;
    assert_string_equal(received_protocol("ESMTP", false, false, false), "ESMTP");
    assert_string_equal(received_protocol("ESMTP", false, true, true), "ESMTPSA");
    assert_string_equal(received_protocol("ESMTP", false, false, true), "ESMTPA");
    assert_string_equal(received_protocol("SMTP", false, true, false), "ESMTPS");
    assert_string_equal(received_protocol("ESMTP", true, true, false), "UTF8SMTPS");
    assert_string_equal(received_protocol("local", false, false, false), "local");
}

static void test_date_zone(void **state)
{
    (void)state;
    setenv("TZ", "IST-5:30", 1); /* +0530: a zone with minutes (POSIX form, no tzdata needed) */
    tzset();
    strbuf sb;
    strbuf_init(&sb);
    rfc5322_date(&sb, 0);
    assert_string_equal(sb.data, "Thu, 1 Jan 1970 05:30:00 +0530");
    strbuf_free(&sb);
    setenv("TZ", "UTC0", 1);
    tzset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_header),
        cmocka_unit_test(test_hostile_helo_and_no_for),
        cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_date_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
