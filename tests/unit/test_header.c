/*
 * test_header.c - unit tests for lib/mail/header (header section scanning,
 * RFC 5322 address lists, Message-ID), table-driven, including hostile
 * input: NUL, bare CR, leading continuation lines, 10 MB headers, 10k
 * addresses and comment nesting bombs (BAD-INPUT rows 6 and 13).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/header.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

/* ---- header section ------------------------------------------------- */

/* The first field of msg: its name and unfolded value. */
struct unfold_case {
    const char *msg;
    const char *name;
    const char *value;
};

static const struct unfold_case unfold_cases[] = {
    { "Subject: hello\r\n\r\nbody", "Subject", "hello" },
    { "Subject: hello\n\nbody", "Subject", "hello" },
    { "Subject: hello\r\n world\r\n\r\n", "Subject", "hello world" },
    { "Subject: hello\n world\n\n", "Subject", "hello world" },
    { "Subject: a\r\n\tb\r\n\r\n", "Subject", "a\tb" },           /* RFC 5322 §2.2.3: WSP kept */
    { "Subject: a\n\t\tb\n  c\n\n", "Subject", "a\t\tb  c" },
    { "Subject:   spaced   \r\n\r\n", "Subject", "spaced" },
    { "Subject:\r\n folded only\r\n\r\n", "Subject", "folded only" },
    { "Subject:\tx\t\r\n\r\n", "Subject", "x" },
    { "Subject : obsolete\r\n\r\n", "Subject", "obsolete" },      /* RFC 5322 §4.5.8 */
    { "Subject\t: obsolete\n", "Subject", "obsolete" },
    { "X: a\r\n \r\n b\r\n\r\n", "X", "a  b" },                   /* whitespace-only line */
    { "X: a\r\n \r\n\r\n", "X", "a" },
    { "Subject: no line end", "Subject", "no line end" },
    { "Subject: x\r\n", "Subject", "x" },
    { "Empty:\r\n\r\n", "Empty", "" },
    { "Empty:", "Empty", "" },
    { "Subject: h\xc3\xa9llo \xe9\r\n", "Subject", "h\xc3\xa9llo \xe9" }, /* 8-bit kept */
    { "X-Odd-Name!#$%&'*+-.^_`|~: v\n", "X-Odd-Name!#$%&'*+-.^_`|~", "v" },
    { "a:b:c\n", "a", "b:c" },
    { "CRLF-mix: a\n b\r\n c\n", "CRLF-mix", "a b c" },
};

static void test_unfold_table(void **state)
{
    (void)state;
    struct header_field f;
    header_field_init(&f);
    strbuf err;
    strbuf_init(&err);
    for (size_t i = 0; i < sizeof(unfold_cases) / sizeof(unfold_cases[0]); i++) {
        const struct unfold_case *c = &unfold_cases[i];
        size_t pos = 0, len = strlen(c->msg);
        int r = header_next(c->msg, len, &pos, &f, &err);
        if (r != 1)
            fail_msg("case %zu (%s): r=%d err=%s", i, c->msg, r, err.data);
        assert_int_equal(f.name_len, strlen(c->name));
        assert_memory_equal(f.name, c->name, f.name_len);
        if (!strbuf_eq(&f.value, c->value))
            fail_msg("case %zu: value [%s], expected [%s]", i, f.value.data, c->value);
        assert_int_equal(f.start, 0);
        assert_int_equal(f.end, pos);
        assert_true(f.raw_value_start <= f.raw_value_end && f.raw_value_end <= f.end);
    }
    header_field_free(&f);
    strbuf_free(&err);
}

/* Where the fields end and the body starts. */
struct section_case {
    const char *msg;
    size_t nfields;
    size_t fields_end, body;
};

static const struct section_case section_cases[] = {
    { "A: 1\r\nB: 2\r\n\r\nbody", 2, 12, 14 },
    { "A: 1\nB: 2\n\nbody", 2, 10, 11 },
    { "A: 1\r\n\r\n", 1, 6, 8 },
    { "A: 1\n", 1, 5, 5 },                           /* no body */
    { "A: 1", 1, 4, 4 },
    { "", 0, 0, 0 },
    { "\r\nbody", 0, 0, 2 },                        /* no header */
    { "\nbody", 0, 0, 1 },
    { "A: 1\nnot a header\nB: 2\n\n", 1, 5, 5 },   /* Postfix: body starts */
    { "A: 1\n\nB: looks like a header\n", 1, 5, 6 },
    { "A: 1\n\r\nB: 2\n", 1, 5, 7 },
    { "From nobody Mon Jan  1 00:00:00 2026\nA: 1\n", 0, 0, 0 }, /* mbox From_ line */
    { "A: 1\n: no name\n", 1, 5, 5 },
    { "A: 1\nno colon at all\n", 1, 5, 5 },
    { "A: 1\n\r", 1, 5, 5 },                        /* a lone CR is a body line */
    { "A: 1\nB: 2\n folded\n\tmore\nC: 3\n\nB: body\n", 3, 29, 30 },
    { "A: 1\nWith Space: x\n", 1, 5, 5 },
};

static void test_section_end_table(void **state)
{
    (void)state;
    struct header_field f;
    header_field_init(&f);
    strbuf err;
    strbuf_init(&err);
    for (size_t i = 0; i < sizeof(section_cases) / sizeof(section_cases[0]); i++) {
        const struct section_case *c = &section_cases[i];
        size_t len = strlen(c->msg), pos = 0, n = 0, prev_end = 0;
        int r;
        while ((r = header_next(c->msg, len, &pos, &f, &err)) == 1) {
            assert_int_equal(f.start, prev_end); /* fields are contiguous */
            prev_end = f.end;
            n++;
        }
        if (r != 0 || n != c->nfields || pos != c->fields_end)
            fail_msg("case %zu: r=%d n=%zu pos=%zu", i, r, n, pos);
        size_t fe = 99, body = 99;
        assert_int_equal(header_section_end(c->msg, len, &fe, &body, &err), 0);
        if (fe != c->fields_end || body != c->body)
            fail_msg("case %zu: fields_end=%zu body=%zu", i, fe, body);
        assert_int_equal(header_section_end(c->msg, len, NULL, NULL, NULL), 0);
    }
    header_field_free(&f);
    strbuf_free(&err);
}

/* Malformed headers: -1 and an error naming the problem. */
struct malformed_case {
    const char *msg;
    size_t len; /* 0: strlen */
    const char *error;
};

static const struct malformed_case malformed_cases[] = {
    { " Subject: leading space\n\n", 0, "starts with a folded" },
    { "\tSubject: leading tab\n\n", 0, "starts with a folded" },
    { " \n\nbody", 0, "starts with a folded" },
    { "Subject: a\0b\n\n", 14, "NUL byte in header field \"Subject\"" },
    { "A: 1\nSubject: a\n b\0c\n\n", 21, "NUL byte" },
    { "Subject: a\rb\n\n", 0, "CR not followed by LF in header field \"Subject\"" },
    { "Subject: a\r", 0, "CR not followed by LF" },
    { "Subject: a\r\r\n\r\n", 0, "CR not followed by LF" },
    /* a long name is quoted shortened */
    { "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN: a\rb\n", 0, "header field \"NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN...\" (at byte 103 of the message)" },
};

static void test_malformed_table(void **state)
{
    (void)state;
    struct header_field f;
    header_field_init(&f);
    strbuf err;
    strbuf_init(&err);
    for (size_t i = 0; i < sizeof(malformed_cases) / sizeof(malformed_cases[0]); i++) {
        const struct malformed_case *c = &malformed_cases[i];
        size_t len = c->len ? c->len : strlen(c->msg), pos = 0;
        int r;
        strbuf_reset(&err);
        while ((r = header_next(c->msg, len, &pos, &f, &err)) == 1)
            ;
        if (r != -1 || strstr(err.data, c->error) == NULL)
            fail_msg("case %zu: r=%d err=[%s], expected [%s]", i, r, err.data, c->error);
        size_t saved = pos;
        assert_int_equal(header_next(c->msg, len, &pos, &f, NULL), -1); /* err may be NULL */
        assert_int_equal(pos, saved);                                   /* pos unchanged */
        assert_int_equal(header_section_end(c->msg, len, NULL, NULL, &err), -1);
        assert_int_equal(header_find(c->msg, len, "No-Such-Field", &f, &err), -1);
    }
    header_field_free(&f);
    strbuf_free(&err);
}

/* sendmail -t: dropping every Bcc by its byte range leaves a valid header
 * with the other fields and the body intact. */
static void test_bcc_removal(void **state)
{
    (void)state;
    const char *msg = "From: a@x.org\r\n"
                      "To: b@y.org\r\n"
                      "Bcc: secret1@z.org,\r\n"
                      "\tsecret2@z.org\r\n"
                      "Cc: c@y.org\n"
                      "bcc: secret3@z.org\n"
                      "Subject: hi\r\n"
                      "\r\n"
                      "Bcc: in the body stays\r\n";
    const char *expected = "From: a@x.org\r\n"
                           "To: b@y.org\r\n"
                           "Cc: c@y.org\n"
                           "Subject: hi\r\n"
                           "\r\n"
                           "Bcc: in the body stays\r\n";
    size_t len = strlen(msg), pos = 0;
    struct header_field f;
    header_field_init(&f);
    strbuf out, err, bccs;
    strbuf_init(&out);
    strbuf_init(&err);
    strbuf_init(&bccs);
    size_t copied = 0;
    int r;
    while ((r = header_next(msg, len, &pos, &f, &err)) == 1) {
        if (header_name_is(&f, "Bcc")) {
            strbuf_append(&out, msg + copied, f.start - copied);
            copied = f.end;
            strbuf_append_sb(&bccs, &f.value);
            strbuf_appendc(&bccs, '|');
        }
    }
    assert_int_equal(r, 0);
    strbuf_append(&out, msg + copied, len - copied);
    assert_string_equal(out.data, expected);
    assert_string_equal(bccs.data, "secret1@z.org,\tsecret2@z.org|secret3@z.org|");

    /* The result scans cleanly and has no Bcc left in its header. */
    assert_int_equal(header_find(out.data, out.len, "bcc", &f, &err), 0);
    assert_int_equal(header_find(out.data, out.len, "subject", &f, &err), 1);
    assert_string_equal(f.value.data, "hi");
    size_t fe, body;
    assert_int_equal(header_section_end(out.data, out.len, &fe, &body, &err), 0);
    assert_string_equal(out.data + body, "Bcc: in the body stays\r\n");
    header_field_free(&f);
    strbuf_free(&out);
    strbuf_free(&err);
    strbuf_free(&bccs);
}

static void test_find_case_insensitive(void **state)
{
    (void)state;
    const char *msg = "Received: x\r\nFROM: first@x.org\r\nfrom: second@x.org\r\n"
                      "Message-ID: <1@x>\r\n\r\nDate: not a header\r\n";
    size_t len = strlen(msg);
    struct header_field f;
    header_field_init(&f);
    strbuf err;
    strbuf_init(&err);
    const char *names[] = { "From", "from", "FROM", "fRoM" };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(header_find(msg, len, names[i], &f, &err), 1);
        assert_string_equal(f.value.data, "first@x.org"); /* the first one */
        assert_true(header_name_is(&f, "from"));
        assert_false(header_name_is(&f, "fro"));
        assert_false(header_name_is(&f, "fromm"));
    }
    assert_int_equal(header_find(msg, len, "message-id", &f, &err), 1);
    assert_string_equal(f.value.data, "<1@x>");
    assert_int_equal(header_find(msg, len, "Date", &f, &err), 0); /* only in the body */
    assert_int_equal(header_find(msg, len, "Fro", &f, &err), 0);
    assert_int_equal(header_find(msg, len, "", &f, &err), 0);
    header_field_free(&f);
    strbuf_free(&err);
}

/* A 1,000,000-byte value passes; a field over HEADER_FIELD_MAX, folded or
 * not, fails with a clear message. */
static void test_field_limits(void **state)
{
    (void)state;
    struct header_field f;
    header_field_init(&f);
    strbuf msg, err;
    strbuf_init(&msg);
    strbuf_init(&err);

    strbuf_appends(&msg, "Subject: ");
    for (size_t i = 0; i < 1000000; i++)
        strbuf_appendc(&msg, 'x');
    strbuf_appends(&msg, "\r\n\r\nbody");
    size_t pos = 0;
    assert_int_equal(header_next(msg.data, msg.len, &pos, &f, &err), 1);
    assert_int_equal(f.value.len, 1000000);

    /* The same folded into 1000 lines. */
    strbuf_reset(&msg);
    strbuf_appends(&msg, "To:");
    for (size_t i = 0; i < 1000; i++) {
        strbuf_appends(&msg, " ");
        for (size_t k = 0; k < 997; k++)
            strbuf_appendc(&msg, 'y');
        strbuf_appends(&msg, "\r\n");
    }
    strbuf_appends(&msg, "\r\n");
    pos = 0;
    assert_int_equal(header_next(msg.data, msg.len, &pos, &f, &err), 1);
    assert_int_equal(f.value.len, 1000 * 998 - 1);

    /* Over the limit, unfolded. */
    strbuf_reset(&msg);
    strbuf_appends(&msg, "Subject: ");
    for (size_t i = 0; i < HEADER_FIELD_MAX; i++)
        strbuf_appendc(&msg, 'x');
    strbuf_appends(&msg, "\r\n\r\n");
    pos = 0;
    assert_int_equal(header_next(msg.data, msg.len, &pos, &f, &err), -1);
    assert_non_null(strstr(err.data, "field longer than 1048576 bytes in header field \"Subject\""));
    assert_int_equal(pos, 0);

    /* Over the limit, folded: many short lines. */
    strbuf_reset(&msg);
    strbuf_appends(&msg, "To: a");
    for (size_t i = 0; i < HEADER_FIELD_MAX / 4 + 1; i++)
        strbuf_appends(&msg, "\n b,");
    strbuf_appends(&msg, "\n\n");
    pos = 0;
    assert_int_equal(header_next(msg.data, msg.len, &pos, &f, &err), -1);
    assert_non_null(strstr(err.data, "longer than 1048576"));

    header_field_free(&f);
    strbuf_free(&msg);
    strbuf_free(&err);
}

/* 10 MB of small fields is refused, 10k fields are fine and linear. */
static void test_section_limits(void **state)
{
    (void)state;
    strbuf msg, err;
    strbuf_init(&msg);
    strbuf_init(&err);
    for (size_t i = 0; i < 10000; i++)
        strbuf_printf(&msg, "To: user%zu@example.org\r\n", i);
    strbuf_appends(&msg, "\r\nbody\r\n");
    size_t fe, body;
    clock_t t0 = clock();
    assert_int_equal(header_section_end(msg.data, msg.len, &fe, &body, &err), 0);
    assert_int_equal(fe, msg.len - 8);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);

    strbuf_reset(&msg);
    while (msg.len <= HEADER_SECTION_MAX + 2000)
        strbuf_appends(&msg, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    strbuf_appends(&msg, "\r\nbody\r\n");
    t0 = clock();
    assert_int_equal(header_section_end(msg.data, msg.len, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.data, "header section longer than 10485760 bytes"));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);

    /* A 10 MB body after a small header is no problem. */
    strbuf_reset(&msg);
    strbuf_appends(&msg, "Subject: big body\n\n");
    while (msg.len <= HEADER_SECTION_MAX + 2000)
        strbuf_appends(&msg, "Looks-Like: a header but is body\n");
    assert_int_equal(header_section_end(msg.data, msg.len, &fe, &body, &err), 0);
    assert_int_equal(fe, 18);
    assert_int_equal(body, 19);
    strbuf_free(&msg);
    strbuf_free(&err);
}

/* ---- address lists -------------------------------------------------- */

/* Renders a parsed list as "addr name=... +flags | ..." for comparison. */
static void render(strbuf *out, const struct header_address *l, size_t n)
{
    strbuf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strbuf_appends(out, " | ");
        strbuf_append_sb(out, &l[i].addr);
        if (l[i].display_name.len > 0) {
            strbuf_appends(out, " name=");
            strbuf_append_sb(out, &l[i].display_name);
        }
        if (!l[i].has_domain)
            strbuf_appends(out, " +nodomain");
        if (l[i].in_group)
            strbuf_appends(out, " +group");
        if (l[i].had_route)
            strbuf_appends(out, " +route");
        if (l[i].needs_smtputf8)
            strbuf_appends(out, " +utf8");
        if (!l[i].name_utf8_valid)
            strbuf_appends(out, " +badname");
    }
}

struct addr_case {
    const char *value;
    const char *expected; /* rendered list, or NULL: an error */
    const char *error;    /* substring of the error */
};

static const struct addr_case addr_cases[] = {
    /* simple and multiple */
    { "a@b.org", "a@b.org", NULL },
    { "A.Person@EXAMPLE.Org", "A.Person@example.org", NULL },
    { "a@b.org, c@d.org", "a@b.org | c@d.org", NULL },
    { "a@b.org,c@d.org,e@f.org", "a@b.org | c@d.org | e@f.org", NULL },
    { "  a@b.org\t,\tc@d.org  ", "a@b.org | c@d.org", NULL },
    { "<a@b.org>", "a@b.org", NULL },
    { "< a@b.org >", "a@b.org", NULL },
    { "a+tag@sub.b.org", "a+tag@sub.b.org", NULL },
    /* display names */
    { "Bob Smith <bob@x.org>", "bob@x.org name=Bob Smith", NULL },
    { "Bob   Smith<bob@x.org>", "bob@x.org name=Bob Smith", NULL },
    { "\"Smith, Bob\" <bob@x.org>", "bob@x.org name=Smith, Bob", NULL },
    { "\"Bob \\\"The Builder\\\"\" <bob@x.org>", "bob@x.org name=Bob \"The Builder\"", NULL },
    { "\"a\\\\b\" <bob@x.org>", "bob@x.org name=a\\b", NULL },
    { "John Q. Public <jqp@x.org>", "jqp@x.org name=John Q. Public", NULL },
    { "Mr. \"Bob\" Smith <bob@x.org>, Ann <ann@x.org>",
      "bob@x.org name=Mr. Bob Smith | ann@x.org name=Ann", NULL },
    { "\"\" <bob@x.org>", "bob@x.org", NULL },
    { "=?UTF-8?B?SsO2cmc=?= <j@x.org>", "j@x.org name==?UTF-8?B?SsO2cmc=?=", NULL },
    { "\"a@b.org, evil@c.org\" <real@x.org>", "real@x.org name=a@b.org, evil@c.org", NULL },
    /* comments */
    { "bob@x.org (Bob Smith)", "bob@x.org", NULL },
    { "(lead) bob (c1) @ (c2) x (c3) . org (trail)", "bob@x.org", NULL },
    { "bob@x.org (a (b) c)", "bob@x.org", NULL },
    { "bob@x.org (a \\( b)", "bob@x.org", NULL },
    { "bob@x.org (a \\) b)", "bob@x.org", NULL },
    { "bob@x.org (\"quote in comment)", "bob@x.org", NULL },
    { "Bob (nick) Smith <bob@x.org>", "bob@x.org name=Bob Smith", NULL },
    { "Bob<(c)bob@x.org(c)>(c), (only comment), c@d.org", "bob@x.org name=Bob | c@d.org", NULL },
    { "(just a comment)", "", NULL },
    /* groups */
    { "team: a@x.org, b@y.org;", "a@x.org +group | b@y.org +group", NULL },
    { "team: a@x.org, b@y.org;, c@z.org", "a@x.org +group | b@y.org +group | c@z.org", NULL },
    { "Undisclosed recipients:;", "", NULL },
    { "undisclosed-recipients:;", "", NULL },
    { "undisclosed-recipients: ;", "", NULL },
    { "undisclosed-recipients:", "", NULL },  /* ';' missing at the end */
    { "team: a@x.org", "a@x.org +group", NULL },
    { "empty:;, a@x.org", "a@x.org", NULL },
    { "\"The Team\": Ann <ann@x.org>, , bob@x.org;",
      "ann@x.org name=Ann +group | bob@x.org +group", NULL },
    { "a@x.org, g: b@y.org; , h:;", "a@x.org | b@y.org +group", NULL },
    /* obsolete forms */
    { "a@x.org, , ,b@y.org", "a@x.org | b@y.org", NULL },
    { ", a@x.org,", "a@x.org", NULL },
    { ",,,", "", NULL },
    { "", "", NULL },
    { "   ", "", NULL },
    { "<@relay.org:bob@x.org>", "bob@x.org +route", NULL },
    { "<@r1.org,@r2.org:bob@x.org>", "bob@x.org +route", NULL },
    { "Bob <@r1.org, @r2.org : bob@x.org>", "bob@x.org name=Bob +route", NULL },
    { "<,@r1.org,,@[192.0.2.1]:bob@x.org>", "bob@x.org +route", NULL },
    { "john.\"smith\"@x.org", "john.smith@x.org", NULL },
    { "\"john\".\"q smith\"@x.org", "\"john.q smith\"@x.org", NULL },
    { "a . b @ x . org", "a.b@x.org", NULL },
    /* quoted local parts and literals */
    { "\"john smith\"@x.org", "\"john smith\"@x.org", NULL },
    { "\"john\"@x.org", "john@x.org", NULL },
    { "\"a\\\"b\"@x.org", "\"a\\\"b\"@x.org", NULL },
    { "bob@[192.0.2.1]", "bob@[192.0.2.1]", NULL },
    { "Bob <bob@[IPv6:2001:db8::1]>", "bob@[IPv6:2001:db8::1] name=Bob", NULL },
    /* bare local parts */
    { "bob", "bob +nodomain", NULL },
    { "bob, alice@x.org", "bob +nodomain | alice@x.org", NULL },
    { "<bob>", "bob +nodomain", NULL },
    { "Bob <bob>", "bob name=Bob +nodomain", NULL },
    { "bob.smith (comment)", "bob.smith +nodomain", NULL },
    { "team: bob;", "bob +nodomain +group", NULL },
    /* UTF-8 (RFC 6532) */
    { "J\xc3\xb6rg <j\xc3\xb6rg@ex\xc3\xa4mple.org>",
      "j\xc3\xb6rg@ex\xc3\xa4mple.org name=J\xc3\xb6rg +utf8", NULL },
    { "\"J\xc3\xb6rg M.\" <j@x.org>", "j@x.org name=J\xc3\xb6rg M.", NULL },
    { "\xe5\xbc\xa0\xe4\xbc\x9f@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8",
      "\xe5\xbc\xa0\xe4\xbc\x9f@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8 +utf8", NULL },
    { "\xe9t\xe9 <j@x.org>", "j@x.org name=\xe9t\xe9 +badname", NULL }, /* raw Latin-1 name */

    /* invalid */
    { "Bob <bob@x.org", NULL, "address 1 (\"Bob <bob@x.org\"): '<' without its '>'" },
    { "<bob@x.org", NULL, "'<' without its '>'" },
    { "Bob bob@x.org>", NULL, "display name without <address>" },
    { "\"unterminated <a@b.org>", NULL, "unterminated quoted string" },
    { "a@b.org (unterminated", NULL, "unterminated comment" },
    { "a@b.org (a (b) c", NULL, "unterminated comment" },
    { "a@b.org (a \\)", NULL, "unterminated comment" },
    { "a@b.org )", NULL, "')' without its '('" },
    { "a@", NULL, "address 1 (\"a@\"): the domain after '@' is missing" },
    { "@b.org", NULL, "the local part before '@' is missing" },
    { "<@b.org>", NULL, "malformed route" },
    { "a@b.org, c@", NULL, "address 2 (\"c@\"): the domain after '@' is missing" },
    { "a@b.org, c@, d@e.org", NULL, "address 2 (\"c@\")" },
    { "a\x01" "b@x.org", NULL, "control character 0x01" },
    { "a@x.org\r\n", NULL, "control character 0x0d" },
    { "\"a\x7f\"@x.org", NULL, "control character 0x7f" },
    { "Bob (\x1b[31m) <a@x.org>", NULL, "control character 0x1b" },
    { "a@b.org; c@d.org", NULL, "address 1 (\"a@b.org;\"): ';' outside a group" },
    { "a@b.org, x@y (c) d@e", NULL, "address 2 (\"x@y (c) d\"): unexpected text after" },
    { "a@b.org,g:x@y;z@w", NULL, "address 2 (\"x@y;z\")" },
    { "a@b.org, (((", NULL, "address 2 (\"(((\"): unterminated comment" },
    { ";", NULL, "unexpected ';'" },
    { "John Smith", NULL, "display name without <address>" },
    { "a@b c", NULL, "unexpected text after the address" },
    { "<a@b.org> <c@d.org>", NULL, "unexpected text after the address" },
    { "a@b.org>", NULL, "unexpected text after the address" },
    { "<>", NULL, "empty address <>" },
    { "Bob <>", NULL, "empty address <>" },
    { "a..b@x.org", NULL, "two dots in a row" },
    { "\"a\".@x.org", NULL, "misplaced '.' in the local part" },
    { ".\"a\"@x.org", NULL, "misplaced '.' in the local part" },
    { "\"a\"..b@x.org", NULL, "misplaced '.' in the local part" },
    { "a.@x.org", NULL, "ends with a dot" },
    { ".a@x.org", NULL, "starts with a dot" },
    { "a@b..org", NULL, "empty label" },
    { "a@b.org.", NULL, "ends with '.'" },
    { "g1: g2: a@b.org;;", NULL, "a group inside a group" },
    { ": a@b.org;", NULL, "a group without a name" },
    { "a@[1.2.3.4", NULL, "unterminated domain literal" },
    { "a@[1.2[3.4]", NULL, "'[' inside a domain literal" },
    { "a@[999.1.1.1]", NULL, "address 1" },
    { "[1.2.3.4]", NULL, "domain literal without '@'" },
    { "a\\b@x.org", NULL, "unexpected character '\\'" },
    { "bad\xff@x.org", NULL, "address 1" },
    { "a@x.org, bad\xc3@x.org", NULL, "address 2" },
    { "Bob <a@b.org", NULL, "'<' without its '>'" },
    { "<a@b.org c>", NULL, "unexpected text inside <...>" },
    { "a@b.org <c@d.org>", NULL, "unexpected text after the address" },
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.org", NULL,
      "address 1 (\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\")" },
};

static void test_address_table(void **state)
{
    (void)state;
    strbuf err, got;
    strbuf_init(&err);
    strbuf_init(&got);
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        const struct addr_case *c = &addr_cases[i];
        struct header_address *l = (void *)1;
        size_t n = 99;
        strbuf_reset(&err);
        int r = header_parse_addresses(c->value, strlen(c->value), &l, &n, &err);
        if (c->expected != NULL) {
            if (r != 0)
                fail_msg("case %zu [%s]: error %s", i, c->value, err.data);
            render(&got, l, n);
            if (!strbuf_eq(&got, c->expected))
                fail_msg("case %zu [%s]: got [%s], expected [%s]", i, c->value, got.data,
                         c->expected);
            if (n == 0)
                assert_null(l);
        } else {
            if (r != -1)
                fail_msg("case %zu [%s]: accepted, expected error [%s]", i, c->value, c->error);
            if (strstr(err.data, c->error) == NULL)
                fail_msg("case %zu [%s]: error [%s], expected [%s]", i, c->value, err.data,
                         c->error);
            assert_null(l);
            assert_int_equal(n, 0);
            for (size_t k = 0; k < err.len; k++) /* one printable line */
                assert_true(err.data[k] != '\n' && err.data[k] != '\r' &&
                            err.data[k] != '\x1b' && err.data[k] != '\0');
            /* err may be NULL */
            assert_int_equal(header_parse_addresses(c->value, strlen(c->value), &l, &n, NULL), -1);
        }
        header_addresses_free(&l, n);
        assert_null(l);
    }
    strbuf_free(&err);
    strbuf_free(&got);
}

/* A NUL byte is seen, not taken for the end of the value. */
static void test_address_nul(void **state)
{
    (void)state;
    static const char v1[] = "a\0b@x.org";
    static const char v2[] = "a@x.org, \"b\0\"@x.org";
    static const char v3[] = "Bob (x\0) <a@x.org>";
    const char *vals[] = { v1, v2, v3 };
    size_t lens[] = { sizeof(v1) - 1, sizeof(v2) - 1, sizeof(v3) - 1 };
    strbuf err;
    strbuf_init(&err);
    for (size_t i = 0; i < 3; i++) {
        struct header_address *l;
        size_t n;
        assert_int_equal(header_parse_addresses(vals[i], lens[i], &l, &n, &err), -1);
        assert_non_null(strstr(err.data, "NUL byte"));
        assert_int_equal(strlen(err.data), err.len); /* no NUL in the message */
    }
    /* A length that stops before the bad part is honoured. */
    struct header_address *l;
    size_t n;
    assert_int_equal(header_parse_addresses(v2, 7, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].addr.data, "a@x.org");
    header_addresses_free(&l, n);
    strbuf_free(&err);
}

/* 10k addresses in one header: accepted, in linear time; 10001: refused. */
static void test_address_many(void **state)
{
    (void)state;
    strbuf v, err;
    strbuf_init(&v);
    strbuf_init(&err);
    for (size_t i = 0; i < HEADER_ADDRESSES_MAX; i++)
        strbuf_printf(&v, "%s\"User %zu\" <user%zu@example.org>", i ? ", " : "", i, i);
    struct header_address *l;
    size_t n;
    clock_t t0 = clock();
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
    assert_int_equal(n, HEADER_ADDRESSES_MAX);
    assert_string_equal(l[0].addr.data, "user0@example.org");
    assert_string_equal(l[9999].addr.data, "user9999@example.org");
    assert_string_equal(l[9999].display_name.data, "User 9999");
    header_addresses_free(&l, n);

    strbuf_appends(&v, ", one-too-many@example.org");
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), -1);
    assert_non_null(strstr(err.data, "address 10001"));
    assert_non_null(strstr(err.data, "too many addresses"));
    assert_null(l);

    /* Through the header scanner: a folded To: of 10k addresses. */
    strbuf msg;
    strbuf_init(&msg);
    strbuf_appends(&msg, "To: ");
    for (size_t i = 0; i < HEADER_ADDRESSES_MAX; i++)
        strbuf_printf(&msg, "%su%zu@example.org", i ? ",\r\n\t" : "", i);
    strbuf_appends(&msg, "\r\n\r\n");
    struct header_field f;
    header_field_init(&f);
    assert_int_equal(header_find(msg.data, msg.len, "to", &f, &err), 1);
    assert_int_equal(header_parse_addresses(f.value.data, f.value.len, &l, &n, &err), 0);
    assert_int_equal(n, HEADER_ADDRESSES_MAX);
    assert_string_equal(l[1234].addr.data, "u1234@example.org");
    header_addresses_free(&l, n);
    header_field_free(&f);
    strbuf_free(&msg);
    strbuf_free(&v);
    strbuf_free(&err);
}

/* A 1 MB value: a display name of 1,000,000 bytes, and 1 MB of separators. */
static void test_address_big(void **state)
{
    (void)state;
    strbuf v, err;
    strbuf_init(&v);
    strbuf_init(&err);
    strbuf_appendc(&v, '"');
    for (size_t i = 0; i < 1000000; i++)
        strbuf_appendc(&v, 'n');
    strbuf_appends(&v, "\" <a@b.org>");
    struct header_address *l;
    size_t n;
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].display_name.len, 1000000);
    header_addresses_free(&l, n);

    strbuf_reset(&v);
    for (size_t i = 0; i < 500000; i++)
        strbuf_appends(&v, ", ");
    clock_t t0 = clock();
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);

    /* 1 MB of words without an address: one clear error, quoted briefly. */
    strbuf_reset(&v);
    for (size_t i = 0; i < 200000; i++)
        strbuf_appends(&v, "word ");
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), -1);
    assert_non_null(strstr(err.data, "display name without <address>"));
    assert_true(err.len < 300);
    strbuf_free(&v);
    strbuf_free(&err);
}

/* Comment nesting: 64 levels pass, 65 and a 1 MB "((((..." bomb fail fast. */
static void test_comment_bomb(void **state)
{
    (void)state;
    strbuf v, err;
    strbuf_init(&v);
    strbuf_init(&err);
    struct header_address *l;
    size_t n;

    strbuf_appends(&v, "a@b.org ");
    for (size_t i = 0; i < HEADER_COMMENT_DEPTH_MAX; i++)
        strbuf_appendc(&v, '(');
    for (size_t i = 0; i < HEADER_COMMENT_DEPTH_MAX; i++)
        strbuf_appendc(&v, ')');
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    header_addresses_free(&l, n);

    strbuf_reset(&v);
    strbuf_appends(&v, "a@b.org ");
    for (size_t i = 0; i <= HEADER_COMMENT_DEPTH_MAX; i++)
        strbuf_appendc(&v, '(');
    for (size_t i = 0; i <= HEADER_COMMENT_DEPTH_MAX; i++)
        strbuf_appendc(&v, ')');
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), -1);
    assert_non_null(strstr(err.data, "comments nested more than 64 deep"));

    strbuf_reset(&v);
    for (size_t i = 0; i < 1000000; i++)
        strbuf_appendc(&v, '(');
    clock_t t0 = clock();
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), -1);
    assert_non_null(strstr(err.data, "nested more than 64"));
    assert_true(err.len < 300);

    /* Many sibling comments, flat: fine and linear. */
    strbuf_reset(&v);
    strbuf_appends(&v, "a@b.org");
    for (size_t i = 0; i < 200000; i++)
        strbuf_appends(&v, "(c)");
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    header_addresses_free(&l, n);
    /* Unbalanced closers. */
    strbuf_reset(&v);
    strbuf_appends(&v, "a@b.org (x))))))");
    assert_int_equal(header_parse_addresses(v.data, v.len, &l, &n, &err), -1);
    assert_non_null(strstr(err.data, "')' without its '('"));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
    strbuf_free(&v);
    strbuf_free(&err);
}

/* ---- Message-ID ----------------------------------------------------- */

static void check_message_id(const char *id, const char *domain)
{
    /* "<" 14 digits "." 16 [0-9A-V] "@" domain ">" */
    size_t dl = strlen(domain);
    assert_int_equal(strlen(id), 1 + 14 + 1 + 16 + 1 + dl + 1);
    assert_int_equal(id[0], '<');
    for (size_t i = 1; i <= 14; i++)
        assert_true(id[i] >= '0' && id[i] <= '9');
    assert_int_equal(id[15], '.');
    for (size_t i = 16; i < 32; i++)
        assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUV", id[i]));
    assert_int_equal(id[32], '@');
    assert_memory_equal(id + 33, domain, dl);
    assert_string_equal(id + 33 + dl, ">");
}

static void test_message_id(void **state)
{
    (void)state;
    strbuf a, b;
    strbuf_init(&a);
    strbuf_init(&b);
    assert_int_equal(header_make_message_id(&a, "mx.petrel.test"), 0);
    assert_int_equal(header_make_message_id(&b, "mx.petrel.test"), 0);
    check_message_id(a.data, "mx.petrel.test");
    check_message_id(b.data, "mx.petrel.test");
    assert_string_not_equal(a.data, b.data);
    /* The year is plausible (UTC). */
    assert_true(strncmp(a.data + 1, "20", 2) == 0);

    /* The result parses as a header value. */
    strbuf msg, err;
    strbuf_init(&msg);
    strbuf_init(&err);
    strbuf_printf(&msg, "Message-ID: %s\r\n\r\n", a.data);
    struct header_field f;
    header_field_init(&f);
    assert_int_equal(header_find(msg.data, msg.len, "message-id", &f, &err), 1);
    assert_true(strbuf_eq(&f.value, a.data));
    header_field_free(&f);

    strbuf_reset(&b);
    assert_int_equal(header_make_message_id(&b, "b\xc3\xbc" "cher.example"), 0);
    check_message_id(b.data, "b\xc3\xbc" "cher.example");

    const char *bad[] = { "", "a b", "a>b", "a..b", ".a", "a.", "x\n", "a@b", "<x>", "b\xc3" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_reset(&b);
        if (header_make_message_id(&b, bad[i]) != -1)
            fail_msg("domain [%s] accepted", bad[i]);
        assert_int_equal(b.len, 0);
    }
    assert_int_equal(header_make_message_id(&b, NULL), -1);
    strbuf_reset(&b);
    char longd[300];
    memset(longd, 'a', sizeof(longd) - 1);
    longd[sizeof(longd) - 1] = '\0';
    assert_int_equal(header_make_message_id(&b, longd), -1);

    /* 1000 ids are all different. */
    strbuf all;
    strbuf_init(&all);
    char (*ids)[64] = xcalloc(1000, 64);
    for (size_t i = 0; i < 1000; i++) {
        strbuf_reset(&b);
        assert_int_equal(header_make_message_id(&b, "h"), 0);
        assert_true(b.len < 64);
        memcpy(ids[i], b.data, b.len + 1);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(ids[k], ids[i]);
    }
    free(ids);
    strbuf_free(&all);
    strbuf_free(&msg);
    strbuf_free(&err);
    strbuf_free(&a);
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unfold_table),
        cmocka_unit_test(test_section_end_table),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_bcc_removal),
        cmocka_unit_test(test_find_case_insensitive),
        cmocka_unit_test(test_field_limits),
        cmocka_unit_test(test_section_limits),
        cmocka_unit_test(test_address_table),
        cmocka_unit_test(test_address_nul),
        cmocka_unit_test(test_address_many),
        cmocka_unit_test(test_address_big),
        cmocka_unit_test(test_comment_bomb),
        cmocka_unit_test(test_message_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
