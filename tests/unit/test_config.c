/*
 * test_config.c - unit tests for petrel.conf parsing (lib/util/config*.c)
 * and the defaults table (lib/mail/params.c): syntax, continuation lines,
 * $name expansion and its failures, typed values, validation, and bad
 * input (NUL bytes, invalid UTF-8, overlong lines, missing files), each
 * checked for a clear `file:line: message`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/params.h"
#include "util/config.h"
#include "util/strbuf.h"

/* Each test gets a fresh configuration with Petrel's table and an error
 * buffer. */
struct fixture {
    struct config *cfg;
    strbuf errors;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->cfg = params_config_new();
    strbuf_init(&f->errors);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    config_free(&f->cfg);
    assert_null(f->cfg);
    strbuf_free(&f->errors);
    free(f);
    return 0;
}

/* Loads text as "petrel.conf"; returns the number of errors. */
static int load(struct fixture *f, const char *text)
{
    return config_load_string(f->cfg, "petrel.conf", text, strlen(text), &f->errors);
}

static void assert_errors_contain(struct fixture *f, const char *needle)
{
    if (strstr(f->errors.data, needle) == NULL)
        fail_msg("expected '%s' in errors:\n%s", needle, f->errors.data);
}

/* Counts lines in the error buffer. */
static int error_lines(struct fixture *f)
{
    int n = 0;
    for (size_t i = 0; i < f->errors.len; i++)
        n += f->errors.data[i] == '\n';
    return n;
}

/* ---- syntax ---- */

static void test_basic_syntax(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "myhostname=mx.example.org\n"
                             "  \n"
                             "relayhost   =    [smart.example.org]:587   \n"
                             "smtpd_banner = hello # not a comment\n"
                             "mail_name =\n"
                             "recipient_delimiter\t=\t-\t\n"),
                     0);
    assert_string_equal(config_get(f->cfg, "myhostname"), "mx.example.org");
    assert_string_equal(config_get(f->cfg, "relayhost"), "[smart.example.org]:587");
    assert_string_equal(config_get(f->cfg, "smtpd_banner"), "hello # not a comment");
    assert_string_equal(config_get(f->cfg, "mail_name"), "");
    assert_true(config_is_set(f->cfg, "mail_name"));
    assert_string_equal(config_get(f->cfg, "recipient_delimiter"), "-");
    assert_false(config_is_set(f->cfg, "queue_directory"));
    assert_string_equal(config_get(f->cfg, "queue_directory"), "/var/spool/petrel");
    assert_null(config_get(f->cfg, "no_such_parameter"));
    assert_string_equal(f->errors.data, "");
}

static void test_comments_and_blank_lines(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "# a comment = with an equals sign\n"
                             "\n"
                             "   # an indented comment\n"
                             "\t\n"
                             "#relayhost = nope\n"
                             "mail_name = X\n"
                             "# last line without newline"),
                     0);
    assert_false(config_is_set(f->cfg, "relayhost"));
    assert_string_equal(config_get(f->cfg, "mail_name"), "X");
}

static int find_line(const struct config_item *item, void *ctx)
{
    int *line = ctx;
    if (strcmp(item->name, "mail_name") == 0)
        *line = item->line;
    return 0;
}

static void test_last_setting_wins_and_line_recorded(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "mail_name = first\n"
                             "relayhost = x\n"
                             "mail_name = second\n"),
                     0);
    assert_string_equal(config_get(f->cfg, "mail_name"), "second");
    int line = 0;
    config_foreach(f->cfg, true, find_line, &line);
    assert_int_equal(line, 3);
    /* An error about the value names the line of the setting in effect. */
    assert_int_equal(load(f, "\n\n\n\nmail_name = x\nmessage_size_limit = huge\n"), 0);
    long long size;
    assert_int_equal(config_get_size(f->cfg, "message_size_limit", &size, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:6: parameter message_size_limit: invalid size value "
                             "'huge'");
}

static void test_continuation_lines(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "mydestination = a.example,\n"
                             "    b.example,\n"
                             "\tc.example   \n"
                             "mynetworks = 10.0.0.0/8\n"
                             "# a comment does not end the logical line\n"
                             "  192.168.0.0/16\n"
                             "\n"
                             "  172.16.0.0/12\n"
                             "mail_name = after\n"),
                     0);
    assert_string_equal(config_get(f->cfg, "mydestination"), "a.example, b.example, c.example");
    assert_string_equal(config_get(f->cfg, "mynetworks"),
                        "10.0.0.0/8 192.168.0.0/16 172.16.0.0/12");
    assert_string_equal(config_get(f->cfg, "mail_name"), "after");
}

static void test_continuation_without_line(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "# header\n  relayhost = x\n    more\nmail_name = ok\n"), 1);
    assert_errors_contain(f, "petrel.conf:2: line starts with whitespace but there is no "
                             "'name = value' line before it");
    assert_false(config_is_set(f->cfg, "relayhost"));
    assert_string_equal(config_get(f->cfg, "mail_name"), "ok");
}

static void test_crlf_line_ends(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "mail_name = dos\r\nrelayhost = r\r\n  cont\r\n"), 0);
    assert_string_equal(config_get(f->cfg, "mail_name"), "dos");
    assert_string_equal(config_get(f->cfg, "relayhost"), "r cont");
}

static void test_bad_lines(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "foo-bar = 1\n"     /* 1 */
                             "= value\n"         /* 2 */
                             "relayhost\n"       /* 3 */
                             "relayhost x = 1\n" /* 4 */
                             "mail_name = ok\n"  /* 5 */
                             "-x = 2\n"),        /* 6 */
                     5);
    assert_errors_contain(f, "petrel.conf:1: invalid parameter name 'foo-bar'");
    assert_errors_contain(f, "petrel.conf:2: missing parameter name before '='");
    assert_errors_contain(f, "petrel.conf:3: missing '=' after parameter name 'relayhost'");
    assert_errors_contain(f, "petrel.conf:4: missing '=' after parameter name 'relayhost'");
    assert_errors_contain(f, "petrel.conf:6: invalid parameter name '-x'");
    assert_false(config_is_set(f->cfg, "relayhost"));
    assert_string_equal(config_get(f->cfg, "mail_name"), "ok");
}

static void test_long_name(void **state)
{
    struct fixture *f = *state;
    strbuf text;
    strbuf_init(&text);
    for (int i = 0; i < CONFIG_MAX_NAME + 1; i++)
        strbuf_appendc(&text, 'n');
    strbuf_appends(&text, " = 1\n");
    assert_int_equal(load(f, text.data), 1);
    assert_errors_contain(f, "petrel.conf:1: parameter name is longer than 100 bytes");
    strbuf_free(&text);
}

/* ---- bad bytes ---- */

static void test_nul_byte(void **state)
{
    struct fixture *f = *state;
    static const char text[] = "mail_name = a\0b\nrelayhost = r\n";
    assert_int_equal(config_load_string(f->cfg, "petrel.conf", text, sizeof(text) - 1,
                                        &f->errors),
                     1);
    assert_errors_contain(f, "petrel.conf:1: line contains a NUL byte (column 14)");
    assert_false(config_is_set(f->cfg, "mail_name"));
    assert_string_equal(config_get(f->cfg, "relayhost"), "r");
}

static void test_nul_in_continuation_drops_logical_line(void **state)
{
    struct fixture *f = *state;
    static const char text[] = "mynetworks = 10.0.0.0/8\n  1.2.3.4\0/32\n  5.6.7.8\nmail_name = m\n";
    assert_int_equal(config_load_string(f->cfg, "petrel.conf", text, sizeof(text) - 1,
                                        &f->errors),
                     1);
    assert_errors_contain(f, "petrel.conf:2: line contains a NUL byte");
    assert_false(config_is_set(f->cfg, "mynetworks"));
    assert_string_equal(config_get(f->cfg, "mail_name"), "m");
}

static void test_control_character(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "mail_name = a\x1b[31mred\nsmtpd_banner = x\ry\n"), 2);
    assert_errors_contain(f, "petrel.conf:1: line contains the control character 0x1b");
    assert_errors_contain(f, "petrel.conf:2: line contains the control character 0x0d");
    assert_false(config_is_set(f->cfg, "mail_name"));
}

static void test_invalid_utf8(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "mail_name = caf\xe9\n"            /* Latin-1 */
                             "relayhost = \xc0\x80\n"           /* overlong NUL */
                             "smtpd_banner = \xed\xa0\x80\n"    /* surrogate */
                             "myorigin = \xe2\x82\n"            /* truncated */
                             "mydomain = \xf4\x90\x80\x80\n"    /* above U+10FFFF */
                             "# comment \xff\n"                 /* comments too */
                             "myhostname = Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x89 \xf0\x9f\x98\x80\n"),
                     6);
    assert_errors_contain(f, "petrel.conf:1: line is not valid UTF-8 (byte 0xe9 at column 16)");
    assert_errors_contain(f, "petrel.conf:2: line is not valid UTF-8");
    assert_errors_contain(f, "petrel.conf:3: line is not valid UTF-8");
    assert_errors_contain(f, "petrel.conf:4: line is not valid UTF-8");
    assert_errors_contain(f, "petrel.conf:5: line is not valid UTF-8");
    assert_errors_contain(f, "petrel.conf:6: line is not valid UTF-8");
    assert_false(config_is_set(f->cfg, "mail_name"));
    assert_false(config_is_set(f->cfg, "relayhost"));
    assert_string_equal(config_get(f->cfg, "myhostname"),
                        "Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x89 \xf0\x9f\x98\x80");
}

static void test_overlong_line(void **state)
{
    struct fixture *f = *state;
    strbuf text;
    strbuf_init(&text);
    /* Exactly the limit is fine. */
    strbuf_appends(&text, "smtpd_banner = ");
    while (text.len < CONFIG_MAX_LINE)
        strbuf_appendc(&text, 'a');
    strbuf_appends(&text, "\nmail_name = ");
    size_t start = text.len - strlen("mail_name = ");
    while (text.len - start < CONFIG_MAX_LINE + 1)
        strbuf_appendc(&text, 'b');
    strbuf_appends(&text, "\n  continuation of the bad line\nrelayhost = ok\n");
    assert_int_equal(load(f, text.data), 1);
    assert_errors_contain(f, "petrel.conf:2: line is longer than 65536 bytes");
    assert_int_equal(strlen(config_get(f->cfg, "smtpd_banner")),
                     CONFIG_MAX_LINE - strlen("smtpd_banner = "));
    assert_false(config_is_set(f->cfg, "mail_name"));
    assert_string_equal(config_get(f->cfg, "relayhost"), "ok");
    strbuf_free(&text);
}

static void test_overlong_logical_line(void **state)
{
    struct fixture *f = *state;
    strbuf text;
    strbuf_init(&text);
    strbuf_appends(&text, "# first\nmynetworks = 10.0.0.0/8\n");
    for (int i = 0; i < 20; i++) {
        strbuf_appends(&text, "  ");
        for (int k = 0; k < 4000; k++)
            strbuf_appendc(&text, 'x');
        strbuf_appendc(&text, '\n');
    }
    strbuf_appends(&text, "mail_name = next\n");
    assert_int_equal(load(f, text.data), 1);
    assert_errors_contain(f, "petrel.conf:2: line with its continuation lines is longer than "
                             "65536 bytes");
    assert_false(config_is_set(f->cfg, "mynetworks"));
    assert_string_equal(config_get(f->cfg, "mail_name"), "next");
    strbuf_free(&text);
}

/* ---- expansion ---- */

static void test_expansion_forms(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "myhostname = mx.example.org\n"
                             "mail_name = <$myhostname|${myhostname}|$(myhostname)>\n"
                             "smtpd_banner = costs $$5 and $${literal}\n"
                             "relayhost = ${myhostname}x$myhostname.y\n"),
                     0);
    assert_string_equal(config_get(f->cfg, "mail_name"),
                        "<mx.example.org|mx.example.org|mx.example.org>");
    assert_string_equal(config_get(f->cfg, "smtpd_banner"), "costs $5 and ${literal}");
    assert_string_equal(config_get(f->cfg, "relayhost"), "mx.example.orgxmx.example.org.y");
    assert_string_equal(config_raw(f->cfg, "relayhost"), "${myhostname}x$myhostname.y");
}

static void test_expansion_defaults_and_nesting(void **state)
{
    struct fixture *f = *state;
    /* Referenced before it is set, through defaults, nested three deep. */
    assert_int_equal(load(f, "myorigin = $mydomain\n"
                             "mydomain = ${helper}.org\n"
                             "helper = example\n"
                             "myhostname = mx.$mydomain\n"),
                     0);
    assert_string_equal(config_get(f->cfg, "myorigin"), "example.org");
    assert_string_equal(config_get(f->cfg, "mydestination"),
                        "mx.example.org, localhost.example.org, localhost");
    assert_string_equal(config_get(f->cfg, "smtpd_banner"), "mx.example.org ESMTP Petrel");
    assert_int_equal(config_validate(f->cfg, &f->errors), 0);
    /* A later change is seen (the cache is dropped). */
    config_set(f->cfg, "helper", "example2", NULL, 0);
    assert_string_equal(config_get(f->cfg, "myorigin"), "example2.org");
}

static void test_undefined_reference(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "mail_name = a${nothing_here}b$nothing2\n"), 0);
    assert_string_equal(config_get(f->cfg, "mail_name"), "ab");
    assert_int_equal(config_validate(f->cfg, &f->errors), 2);
    assert_errors_contain(f, "petrel.conf:1: parameter mail_name: refers to undefined parameter "
                             "$nothing_here\n");
    assert_errors_contain(f, "petrel.conf:1: parameter mail_name: refers to undefined parameter "
                             "$nothing2\n");
}

static void test_loop_direct(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "# loop\n\na = $b\nb = ${a}\n"), 0);
    const char *v;
    assert_int_equal(config_get_str(f->cfg, "a", &v, &f->errors), -1);
    assert_string_equal(f->errors.data, "petrel.conf:3: parameter a: expansion loop: a -> b -> a\n");
    assert_null(config_get(f->cfg, "b"));
    strbuf_reset(&f->errors);
    assert_int_equal(config_validate(f->cfg, &f->errors), 2);
    assert_errors_contain(f, "petrel.conf:3: parameter a: expansion loop: a -> b -> a\n");
    assert_errors_contain(f, "petrel.conf:4: parameter b: expansion loop: b -> a -> b\n");
}

static void test_loop_self_and_indirect(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "self = x$(self)\n"
                             "p1 = $p2\np2 = $p3\np3 = $p1\n"),
                     0);
    const char *v;
    assert_int_equal(config_get_str(f->cfg, "self", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:1: parameter self: expansion loop: self -> self\n");
    assert_int_equal(config_get_str(f->cfg, "p2", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:3: parameter p2: expansion loop: p2 -> p3 -> p1 -> p2");
}

static void test_loop_through_defaults(void **state)
{
    struct fixture *f = *state;
    /* myorigin defaults to $myhostname. */
    assert_int_equal(load(f, "myhostname = $myorigin\n"), 0);
    assert_null(config_get(f->cfg, "myorigin"));
    /* Reported once, on the line that made the loop, not on every default
     * (myorigin, mydestination, smtpd_banner) that refers to it. */
    assert_int_equal(config_validate(f->cfg, &f->errors), 1);
    assert_string_equal(f->errors.data, "petrel.conf:1: parameter myhostname: expansion loop: "
                                        "myhostname -> myorigin -> myhostname\n");
}

static void test_bad_dollar_syntax(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "a = ${unterminated\n"
                             "b = $(unterminated\n"
                             "c = 100 $ each\n"
                             "d = trailing $\n"
                             "e = ${name?conditional}\n"
                             "f = ${}\n"
                             "g = $a\n"),
                     0);
    const char *v;
    assert_int_equal(config_get_str(f->cfg, "a", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:1: parameter a: unterminated '${': missing '}'");
    assert_int_equal(config_get_str(f->cfg, "b", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:2: parameter b: unterminated '$(': missing ')'");
    assert_int_equal(config_get_str(f->cfg, "c", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:3: parameter c: '$' must be followed by a parameter "
                             "name");
    assert_int_equal(config_get_str(f->cfg, "d", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:4: parameter d: '$' must be followed");
    assert_int_equal(config_get_str(f->cfg, "e", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:5: parameter e: '${' must hold only a parameter name");
    assert_int_equal(config_get_str(f->cfg, "f", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:6: parameter f: empty parameter name in '${}'");
    /* g refers to a: the error is the one of a, reported for g. */
    assert_int_equal(config_get_str(f->cfg, "g", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:7: parameter g: in the value of a: unterminated '${'");
    /* Seven bad values, and six of them are not Petrel parameters (a is
     * referred to by g, so it counts as a user-defined helper). */
    strbuf_reset(&f->errors);
    assert_int_equal(config_validate(f->cfg, &f->errors), 13);
    assert_errors_contain(f, "petrel.conf:2: unknown parameter 'b'\n");
    assert_null(strstr(f->errors.data, "unknown parameter 'a'"));
}

static void test_expansion_depth_limit(void **state)
{
    struct fixture *f = *state;
    strbuf text;
    strbuf_init(&text);
    for (int i = 0; i < CONFIG_MAX_DEPTH + 5; i++)
        strbuf_printf(&text, "p%d = $p%d\n", i, i + 1);
    strbuf_printf(&text, "p%d = end\n", CONFIG_MAX_DEPTH + 5);
    assert_int_equal(load(f, text.data), 0);
    const char *v;
    assert_int_equal(config_get_str(f->cfg, "p0", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:1: parameter p0: $name references nested more than 20 "
                             "levels deep: p0 -> p1 -> ");
    /* Shallower chains work. */
    assert_string_equal(config_get(f->cfg, "p10"), "end");
    strbuf_free(&text);
}

static void test_expansion_size_limit(void **state)
{
    struct fixture *f = *state;
    /* Each level multiplies by 16: 16^6 * 8 bytes, if nothing stopped it. */
    strbuf text;
    strbuf_init(&text);
    strbuf_appends(&text, "l0 = xxxxxxxx\n");
    for (int i = 1; i <= 6; i++) {
        strbuf_printf(&text, "l%d =", i);
        for (int k = 0; k < 16; k++)
            strbuf_printf(&text, " $l%d", i - 1);
        strbuf_appendc(&text, '\n');
    }
    assert_int_equal(load(f, text.data), 0);
    time_t t0 = time(NULL);
    const char *v;
    assert_int_equal(config_get_str(f->cfg, "l6", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:7: parameter l6: value is longer than 262144 bytes "
                             "after $name expansion");
    assert_true(time(NULL) - t0 < 5);
    assert_non_null(config_get(f->cfg, "l3"));
    strbuf_free(&text);
}

static void test_fanout_of_empty_values_is_fast(void **state)
{
    struct fixture *f = *state;
    /* 4000^3 lookups without caching; must finish at once. */
    strbuf text;
    strbuf_init(&text);
    strbuf_appends(&text, "e0 =\n");
    for (int i = 1; i <= 3; i++) {
        strbuf_printf(&text, "e%d = ", i);
        for (int k = 0; k < 4000; k++)
            strbuf_printf(&text, "$e%d", i - 1);
        strbuf_appendc(&text, '\n');
    }
    assert_int_equal(load(f, text.data), 0);
    time_t t0 = time(NULL);
    assert_string_equal(config_get(f->cfg, "e3"), "");
    assert_true(time(NULL) - t0 < 5);
    strbuf_free(&text);
}

/* ---- typed values ---- */

static void test_bool_values(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *text;
        bool value;
    } good[] = {{"yes", true},  {"YES", true},  {"true", true},   {"On", true},  {"1", true},
                {"no", false},  {"No", false},  {"false", false}, {"off", false}, {"0", false}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        config_set(f->cfg, "disable_vrfy_command", good[i].text, "petrel.conf", 1);
        bool b = !good[i].value;
        assert_int_equal(config_get_bool(f->cfg, "disable_vrfy_command", &b, &f->errors), 0);
        assert_int_equal(b, good[i].value);
    }
    static const char *const bad[] = {"", "y", "2", "yess", " yes", "enabled"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_set(f->cfg, "disable_vrfy_command", bad[i], "petrel.conf", 9);
        bool b = true;
        strbuf_reset(&f->errors);
        assert_int_equal(config_get_bool(f->cfg, "disable_vrfy_command", &b, &f->errors), -1);
        assert_true(b); /* untouched */
        assert_errors_contain(f, "petrel.conf:9: parameter disable_vrfy_command: invalid "
                                 "boolean value '");
        assert_errors_contain(f, "expected yes or no");
    }
    bool b;
    assert_int_equal(config_get_bool(f->cfg, "smtputf8_enable", &b, NULL), 0);
    assert_true(b);
}

static void test_int_values(void **state)
{
    struct fixture *f = *state;
    long long v = 0;
    assert_int_equal(config_get_int(f->cfg, "smtpd_recipient_limit", &v, &f->errors), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(load(f, "smtpd_recipient_limit = 50\n"), 0);
    assert_int_equal(config_get_int(f->cfg, "smtpd_recipient_limit", &v, &f->errors), 0);
    assert_int_equal(v, 50);

    assert_int_equal(load(f, "\nsmtpd_recipient_limit = 12abc\n"), 0);
    v = 7;
    assert_int_equal(config_get_int(f->cfg, "smtpd_recipient_limit", &v, &f->errors), -1);
    assert_int_equal(v, 7);
    assert_errors_contain(f, "petrel.conf:2: parameter smtpd_recipient_limit: invalid integer "
                             "value '12abc' (expected a whole number)");
    assert_int_equal(load(f, "smtpd_recipient_limit = 0\n"), 0);
    assert_int_equal(config_get_int(f->cfg, "smtpd_recipient_limit", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:1: parameter smtpd_recipient_limit: integer value '0' "
                             "is out of range (at least 1)");
    assert_int_equal(load(f, "smtp_port = 70000\n"), 0);
    assert_int_equal(config_get_int(f->cfg, "smtp_port", &v, &f->errors), -1);
    assert_errors_contain(f, "integer value '70000' is out of range (1 to 65535)");
    assert_int_equal(load(f, "smtp_port = 99999999999999999999999\n"), 0);
    assert_int_equal(config_get_int(f->cfg, "smtp_port", &v, &f->errors), -1);
    assert_errors_contain(f, "invalid integer value '99999999999999999999999'");
    assert_int_equal(load(f, "smtp_port = -25\n"), 0);
    assert_int_equal(config_get_int(f->cfg, "smtp_port", &v, &f->errors), -1);
    assert_errors_contain(f, "integer value '-25' is out of range");

    assert_true(config_parse_int("-12", &v));
    assert_int_equal(v, -12);
    assert_false(config_parse_int("", &v));
    assert_false(config_parse_int("-", &v));
    assert_false(config_parse_int("+3", &v));
    assert_false(config_parse_int("1 ", &v));
    assert_true(config_parse_int("9223372036854775807", &v));
    assert_false(config_parse_int("9223372036854775808", &v));
}

static void test_size_values(void **state)
{
    struct fixture *f = *state;
    long long v;
    assert_int_equal(config_get_size(f->cfg, "message_size_limit", &v, &f->errors), 0);
    assert_int_equal(v, 10240000);
    static const struct {
        const char *text;
        long long bytes;
    } good[] = {{"0", 0},           {"512", 512},          {"10k", 10240},
                {"10K", 10240},     {"3M", 3145728},       {"3m", 3145728},
                {"2G", 2147483648}, {"8589934591g", 8589934591LL * 1073741824LL}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(config_parse_size(good[i].text, &v));
        assert_int_equal(v, good[i].bytes);
    }
    static const char *const bad[] = {"", "k", "10kb", "10 k", "1.5M", "-1", "10T",
                                      "9999999999999G", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(config_parse_size(bad[i], &v));
    assert_int_equal(load(f, "# limits\nmessage_size_limit = 10xx\n"), 0);
    assert_int_equal(config_get_size(f->cfg, "message_size_limit", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:2: parameter message_size_limit: invalid size value "
                             "'10xx' (expected a number of bytes, optionally followed by k, M or "
                             "G (1k = 1024))");
}

static void test_time_values(void **state)
{
    struct fixture *f = *state;
    long long v;
    assert_int_equal(config_get_time(f->cfg, "maximal_queue_lifetime", &v, &f->errors), 0);
    assert_int_equal(v, 5 * 86400);
    assert_int_equal(config_get_time(f->cfg, "delay_warning_time", &v, &f->errors), 0);
    assert_int_equal(v, 0);
    static const struct {
        const char *text;
        long long seconds;
    } good[] = {{"0", 0},    {"45", 45},       {"45s", 45},      {"2m", 120},
                {"3h", 10800}, {"5d", 432000}, {"1w", 604800},  {"2W", 1209600}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(config_parse_time(good[i].text, &v));
        assert_int_equal(v, good[i].seconds);
    }
    static const char *const bad[] = {"", "s", "5x", "5 s", "1h30m", "-5s", "99999999999999999w"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(config_parse_time(bad[i], &v));
    assert_int_equal(load(f, "smtpd_timeout = 5x\nmax_idle = 0\n"), 0);
    assert_int_equal(config_get_time(f->cfg, "smtpd_timeout", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:1: parameter smtpd_timeout: invalid time value '5x' "
                             "(expected a number of seconds, optionally followed by s, m, h, d "
                             "or w)");
    assert_int_equal(config_get_time(f->cfg, "max_idle", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:2: parameter max_idle: time value '0' is out of range "
                             "(at least 1s)");
}

static void test_value_error_names_expansion_source(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "t = forever\nsmtpd_timeout = $t\n"), 0);
    long long v;
    assert_int_equal(config_get_time(f->cfg, "smtpd_timeout", &v, &f->errors), -1);
    assert_errors_contain(f, "petrel.conf:2: parameter smtpd_timeout: invalid time value "
                             "'forever' (from '$t')");
}

static void test_default_value_error_says_default(void **state)
{
    (void)state;
    /* A table of our own with a bad default: the message says (default). */
    static const struct config_def defs[] = {
        {"ratio", "lots", CONFIG_INT, 0, 0, "test"},
        {"base", "10", CONFIG_INT, 0, 0, "test"},
        {"derived", "${base}0x", CONFIG_SIZE, 0, 0, "test"},
        {NULL, NULL, CONFIG_STRING, 0, 0, NULL},
    };
    struct config *cfg = config_new(defs);
    strbuf errors;
    strbuf_init(&errors);
    long long v;
    assert_int_equal(config_get_int(cfg, "ratio", &v, &errors), -1);
    assert_string_equal(errors.data, "(default): parameter ratio: invalid integer value 'lots' "
                                     "(expected a whole number)\n");
    strbuf_reset(&errors);
    assert_int_equal(config_validate(cfg, &errors), 2);
    assert_non_null(strstr(errors.data, "(default): parameter derived: invalid size value '100x' "
                                        "(from '${base}0x')"));
    strbuf_free(&errors);
    config_free(&cfg);
}

static void test_list_values(void **state)
{
    struct fixture *f = *state;
    params_host_defaults(f->cfg, "mx.example.org");
    struct config_list list;
    assert_int_equal(config_get_list(f->cfg, "mydestination", &list, &f->errors), 0);
    assert_int_equal(list.count, 3);
    assert_string_equal(list.items[0], "mx.example.org");
    assert_string_equal(list.items[1], "localhost.example.org");
    assert_string_equal(list.items[2], "localhost");
    assert_null(list.items[3]);
    config_list_free(&list);
    assert_null(list.items);

    assert_int_equal(load(f, "relay_domains = ,a.example,,  b.example\t, c.example ,\n"
                             "  d.example\n"
                             "virtual_alias_maps =\n"),
                     0);
    assert_int_equal(config_get_list(f->cfg, "relay_domains", &list, &f->errors), 0);
    assert_int_equal(list.count, 4);
    assert_string_equal(list.items[0], "a.example");
    assert_string_equal(list.items[3], "d.example");
    config_list_free(&list);
    assert_int_equal(config_get_list(f->cfg, "virtual_alias_maps", &list, &f->errors), 0);
    assert_int_equal(list.count, 0);
    assert_null(list.items[0]);
    config_list_free(&list);
    assert_int_equal(config_get_list(f->cfg, "nonexistent", &list, &f->errors), -1);
    assert_errors_contain(f, "unknown parameter 'nonexistent'");
}

/* ---- validation ---- */

static void test_unknown_parameter(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "myhostnme = typo.example\n"
                             "my_helper = example.org\n"
                             "mydomain = $my_helper\n"),
                     0);
    assert_int_equal(config_validate(f->cfg, &f->errors), 1);
    assert_string_equal(f->errors.data, "petrel.conf:1: unknown parameter 'myhostnme'\n");
    /* The value is still there for those who ask. */
    assert_string_equal(config_get(f->cfg, "myhostnme"), "typo.example");
}

static void test_validate_reports_every_problem(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "config_version = 2\n"
                             "message_size_limit = 10 MB\n"
                             "disable_vrfy_command = sometimes\n"
                             "mail_name = $undefined_thing\n"
                             "bogus = 1\n"
                             "smtpd_timeout = 1h\n"),
                     0);
    assert_int_equal(config_validate(f->cfg, &f->errors), 5);
    assert_errors_contain(f, "petrel.conf:1: parameter config_version: integer value '2' is out "
                             "of range (1 to 1)");
    assert_errors_contain(f, "petrel.conf:2: parameter message_size_limit: invalid size value "
                             "'10 MB'");
    assert_errors_contain(f, "petrel.conf:3: parameter disable_vrfy_command: invalid boolean "
                             "value 'sometimes'");
    assert_errors_contain(f, "petrel.conf:4: parameter mail_name: refers to undefined parameter "
                             "$undefined_thing");
    assert_errors_contain(f, "petrel.conf:5: unknown parameter 'bogus'");
    assert_int_equal(error_lines(f), 5);
    /* In the order of the file, not of the names. */
    const char *prev = f->errors.data;
    for (int line = 1; line <= 5; line++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "petrel.conf:%d:", line);
        const char *at = strstr(f->errors.data, tag);
        assert_non_null(at);
        assert_true(at >= prev);
        prev = at;
    }
}

static void test_defaults_table_is_valid(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config_validate(f->cfg, &f->errors), 0);
    params_host_defaults(f->cfg, NULL);
    assert_int_equal(config_validate(f->cfg, &f->errors), 0);
    assert_string_equal(f->errors.data, "");
    /* Every table entry can be read with its own type. */
    for (const struct config_def *d = petrel_params; d->name != NULL; d++) {
        assert_non_null(d->desc);
        assert_non_null(config_get(f->cfg, d->name));
        assert_ptr_equal(config_def_of(f->cfg, d->name), d);
    }
    /* The names the brief asks for are there, with their defaults. */
    static const char *const expect[][2] = {
        {"config_version", "1"},
        {"config_directory", "/etc/petrel"},
        {"queue_directory", "/var/spool/petrel"},
        {"myorigin", "$myhostname"},
        {"mydestination", "$myhostname, localhost.$mydomain, localhost"},
        {"mynetworks", "127.0.0.0/8 [::1]/128"},
        {"inet_interfaces", "all"},
        {"message_size_limit", "10240000"},
        {"smtpd_recipient_limit", "1000"},
        {"line_length_limit", "2048"},
        {"smtpd_timeout", "300s"},
        {"smtpd_data_timeout", "600s"},
        {"maximal_queue_lifetime", "5d"},
        {"minimal_backoff_time", "300s"},
        {"maximal_backoff_time", "4000s"},
        {"delay_warning_time", "0h"},
        {"queue_run_delay", "300s"},
        {"recipient_delimiter", "+"},
        {"alias_maps", "hash:/etc/aliases"},
        {"alias_database", "hash:/etc/aliases"},
        {"home_mailbox", "Maildir/"},
        {"mail_owner", "petrel"},
        {"mail_store_owner", "petrel-mail"},
        {"setgid_group", "petreldrop"},
        {"log_destination", "syslog"},
        {"default_process_limit", "100"},
        {"max_use", "100"},
        {"max_idle", "100s"},
        {"smtpd_tls_cert_file", ""},
        {"smtpd_tls_key_file", ""},
        {"smtp_tls_security_level", "may"},
        {"relayhost", ""},
        {"dns_servers", ""},
        {"virtual_alias_maps", ""},
        {"virtual_mailbox_domains", ""},
        {"virtual_mailbox_maps", ""},
        {"relay_domains", ""},
        {"transport_maps", ""},
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        const struct config_def *d = config_def_of(f->cfg, expect[i][0]);
        if (d == NULL)
            fail_msg("parameter %s missing from the table", expect[i][0]);
        assert_string_equal(d->value, expect[i][1]);
    }
}

static void test_host_defaults(void **state)
{
    struct fixture *f = *state;
    params_host_defaults(f->cfg, "mx.mail.example.org");
    assert_string_equal(config_get(f->cfg, "myhostname"), "mx.mail.example.org");
    assert_string_equal(config_get(f->cfg, "mydomain"), "mail.example.org");
    assert_string_equal(config_get(f->cfg, "myorigin"), "mx.mail.example.org");
    assert_false(config_is_set(f->cfg, "myhostname"));
    assert_false(config_is_set(f->cfg, "mydomain"));

    /* A set myhostname wins over the system name and gives the domain. */
    struct config *cfg = params_config_new();
    config_set(cfg, "myhostname", "smtp.$helper", "petrel.conf", 1);
    config_set(cfg, "helper", "example.net", "petrel.conf", 2);
    params_host_defaults(cfg, "ignored.example");
    assert_string_equal(config_get(cfg, "myhostname"), "smtp.example.net");
    assert_string_equal(config_get(cfg, "mydomain"), "example.net");
    config_free(&cfg);

    /* A single-label name gets "localdomain", as in Postfix. */
    cfg = params_config_new();
    params_host_defaults(cfg, "box");
    assert_string_equal(config_get(cfg, "mydomain"), "localdomain");
    assert_string_equal(config_get(cfg, "mydestination"), "box, localhost.localdomain, localhost");
    config_free(&cfg);

    /* The system's own name: whatever it is, something non-empty. */
    cfg = params_config_new();
    params_host_defaults(cfg, NULL);
    assert_true(strlen(config_get(cfg, "myhostname")) > 0);
    assert_true(strlen(config_get(cfg, "mydomain")) > 0);
    config_free(&cfg);
}

/* docs/configuration.md lists every parameter with its default; found
 * from this file's path, skipped when the source tree is not at hand. */
static void test_docs_list_every_parameter(void **state)
{
    (void)state;
    strbuf path;
    strbuf_init(&path);
    const char *slash = strrchr(__FILE__, '/');
    if (slash != NULL)
        strbuf_append(&path, __FILE__, (size_t)(slash - __FILE__ + 1));
    strbuf_appends(&path, "../../docs/configuration.md");
    FILE *fp = fopen(path.data, "r");
    strbuf_free(&path);
    if (fp == NULL)
        skip();
    strbuf doc;
    strbuf_init(&doc);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        strbuf_append(&doc, chunk, n);
    fclose(fp);
    strbuf row;
    strbuf_init(&row);
    for (const struct config_def *d = petrel_params; d->name != NULL; d++) {
        strbuf_reset(&row);
        strbuf_printf(&row, "| `%s` | ", d->name);
        const char *at = strstr(doc.data, row.data);
        if (at == NULL)
            fail_msg("docs/configuration.md has no row for %s", d->name);
        strbuf_reset(&row);
        if (d->value[0] != '\0')
            strbuf_printf(&row, " | `%s` | ", d->value);
        else
            strbuf_appends(&row, " | (empty) | ");
        const char *eol = strchr(at, '\n');
        const char *dflt = strstr(at, row.data);
        if (dflt == NULL || (eol != NULL && dflt > eol))
            fail_msg("docs/configuration.md: default of %s is not '%s'", d->name, d->value);
    }
    strbuf_free(&row);
    strbuf_free(&doc);
}

/* ---- API details ---- */

static void test_set_and_default_api(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config_set(f->cfg, "bad-name", "x", NULL, 0), -1);
    assert_int_equal(config_set(f->cfg, "", "x", NULL, 0), -1);
    assert_int_equal(config_set_default(f->cfg, "not_in_table", "x"), -1);
    assert_int_equal(config_set(f->cfg, "max_use", "5", "services.conf", 12), 0);
    assert_true(config_is_set(f->cfg, "max_use"));
    long long v;
    assert_int_equal(config_get_int(f->cfg, "max_use", &v, NULL), 0);
    assert_int_equal(v, 5);
    config_set(f->cfg, "max_use", "zero", "services.conf", 12);
    assert_int_equal(config_get_int(f->cfg, "max_use", &v, &f->errors), -1);
    assert_errors_contain(f, "services.conf:12: parameter max_use: invalid integer value 'zero'");
    /* Set without a file: no location, just the parameter. */
    strbuf_reset(&f->errors);
    config_set(f->cfg, "max_use", "zero", NULL, 0);
    assert_int_equal(config_get_int(f->cfg, "max_use", &v, &f->errors), -1);
    assert_string_equal(f->errors.data, "parameter max_use: invalid integer value 'zero' "
                                        "(expected a whole number)\n");
    /* A run-time default is still a default. */
    assert_int_equal(config_set_default(f->cfg, "relayhost", "[r.example]"), 0);
    assert_false(config_is_set(f->cfg, "relayhost"));
    assert_string_equal(config_get(f->cfg, "relayhost"), "[r.example]");
    /* Unknown names in getters. */
    strbuf_reset(&f->errors);
    bool b;
    assert_int_equal(config_get_bool(f->cfg, "nope", &b, &f->errors), -1);
    assert_string_equal(f->errors.data, "unknown parameter 'nope'\n");
    assert_null(config_raw(f->cfg, "nope"));
    assert_null(config_def_of(f->cfg, "nope"));
}

static void test_message_quoting(void **state)
{
    struct fixture *f = *state;
    /* Control bytes set through the API are escaped; long values are cut. */
    config_set(f->cfg, "smtpd_timeout", "5\x1b[2J\n", NULL, 0);
    long long v;
    assert_int_equal(config_get_time(f->cfg, "smtpd_timeout", &v, &f->errors), -1);
    assert_null(strchr(f->errors.data, '\x1b'));
    assert_int_equal(error_lines(f), 1);
    strbuf_reset(&f->errors);
    char big[1000];
    memset(big, '7', sizeof(big) - 2);
    big[sizeof(big) - 2] = 'x';
    big[sizeof(big) - 1] = '\0';
    config_set(f->cfg, "smtpd_timeout", big, "petrel.conf", 4);
    assert_int_equal(config_get_time(f->cfg, "smtpd_timeout", &v, &f->errors), -1);
    assert_errors_contain(f, "...'");
    assert_true(f->errors.len < 400);
}

struct collect {
    strbuf names;
    int count;
};

static int collect_item(const struct config_item *item, void *ctx)
{
    struct collect *c = ctx;
    strbuf_printf(&c->names, "%s%s=%s@%s:%d", c->count ? " " : "", item->name, item->raw,
                  item->file ? item->file : "-", item->line);
    c->count++;
    return 0;
}

static int stop_at_second(const struct config_item *item, void *ctx)
{
    (void)item;
    return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_foreach(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "relayhost = r\nzz_helper = z\nmail_name = $zz_helper\n"), 0);
    struct collect c = {.count = 0};
    strbuf_init(&c.names);
    config_foreach(f->cfg, true, collect_item, &c);
    assert_string_equal(c.names.data, "mail_name=$zz_helper@petrel.conf:3 "
                                      "relayhost=r@petrel.conf:1 zz_helper=z@petrel.conf:2");
    strbuf_reset(&c.names);
    int ntable = 0;
    for (const struct config_def *d = petrel_params; d->name != NULL; d++)
        ntable++;
    c.count = 0;
    config_foreach(f->cfg, false, collect_item, &c);
    assert_int_equal(c.count, ntable + 1);
    assert_non_null(strstr(c.names.data, "alias_maps=hash:/etc/aliases@-:0"));
    strbuf_free(&c.names);
    int calls = 0;
    assert_int_equal(config_foreach(f->cfg, false, stop_at_second, &calls), 42);
    assert_int_equal(calls, 2);
}

static void test_null_errors_buffer(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config_load_string(f->cfg, "x.conf", "bad line\n  a\n=\n", 15, NULL), 2);
    assert_int_equal(config_load_file(f->cfg, "/nonexistent/petrel.conf", NULL), 1);
    config_set(f->cfg, "a", "$b", NULL, 0);
    config_set(f->cfg, "b", "$a", NULL, 0);
    assert_int_equal(config_validate(f->cfg, NULL), 2);
}

/* ---- files ---- */

static char *make_tmpdir(void)
{
    char *dir = strdup("/tmp/petrel-test-config-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static char *write_file(const char *dir, const char *name, const void *data, size_t len)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static void test_load_file(void **state)
{
    struct fixture *f = *state;
    char *dir = make_tmpdir();
    static const char text[] = "# petrel.conf\nmyhostname = mx.example.org\n"
                               "mydestination = $myhostname,\n  localhost\n"
                               "mail_name = x\0y\n";
    char *path = write_file(dir, "petrel.conf", text, sizeof(text) - 1);
    assert_int_equal(config_load_file(f->cfg, path, &f->errors), 1);
    strbuf expect;
    strbuf_init(&expect);
    strbuf_printf(&expect, "%s:5: line contains a NUL byte (column 14)\n", path);
    assert_string_equal(f->errors.data, expect.data);
    assert_string_equal(config_get(f->cfg, "mydestination"), "mx.example.org, localhost");
    /* Settings remember the file they came from. */
    strbuf_reset(&f->errors);
    config_set(f->cfg, "smtpd_timeout", "soon", path, 77);
    assert_int_equal(config_validate(f->cfg, &f->errors), 1);
    strbuf_reset(&expect);
    strbuf_printf(&expect, "%s:77: parameter smtpd_timeout: invalid time value 'soon'", path);
    assert_errors_contain(f, expect.data);
    strbuf_free(&expect);

    /* An empty file is fine. */
    char *empty = write_file(dir, "empty.conf", "", 0);
    assert_int_equal(config_load_file(f->cfg, empty, &f->errors), 0);
    unlink(empty);
    free(empty);
    unlink(path);
    free(path);
    rmdir(dir);
    free(dir);
}

static void test_file_not_found(void **state)
{
    struct fixture *f = *state;
    char *dir = make_tmpdir();
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/missing.conf", dir);
    assert_int_equal(config_load_file(f->cfg, path.data, &f->errors), 1);
    strbuf expect;
    strbuf_init(&expect);
    strbuf_printf(&expect, "%s: cannot open: %s\n", path.data, strerror(ENOENT));
    assert_string_equal(f->errors.data, expect.data);

    /* A directory is not a configuration file. */
    strbuf_reset(&f->errors);
    assert_int_equal(config_load_file(f->cfg, dir, &f->errors), 1);
    strbuf_reset(&expect);
    strbuf_printf(&expect, "%s: not a regular file\n", dir);
    assert_string_equal(f->errors.data, expect.data);
    strbuf_free(&expect);
    strbuf_free(&path);
    rmdir(dir);
    free(dir);
}

static void test_file_unreadable(void **state)
{
    struct fixture *f = *state;
    if (geteuid() == 0)
        skip(); /* root reads mode-000 files */
    char *dir = make_tmpdir();
    char *path = write_file(dir, "secret.conf", "mail_name = x\n", 14);
    assert_int_equal(chmod(path, 0), 0);
    assert_int_equal(config_load_file(f->cfg, path, &f->errors), 1);
    assert_errors_contain(f, ": cannot open: ");
    assert_errors_contain(f, strerror(EACCES));
    assert_false(config_is_set(f->cfg, "mail_name"));
    unlink(path);
    free(path);
    rmdir(dir);
    free(dir);
}

static void test_file_too_large(void **state)
{
    struct fixture *f = *state;
    char *dir = make_tmpdir();
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    snprintf(path, n, "%s/huge.conf", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    /* Sparse: size beyond the limit without writing 16 MB. */
    assert_int_equal(fseek(fp, CONFIG_MAX_FILE + 10, SEEK_SET), 0);
    fputc('\n', fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(config_load_file(f->cfg, path, &f->errors), 1);
    assert_errors_contain(f, "huge.conf: file is larger than 16777216 bytes\n");
    unlink(path);
    free(path);
    rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_basic_syntax),
        T(test_comments_and_blank_lines),
        T(test_last_setting_wins_and_line_recorded),
        T(test_continuation_lines),
        T(test_continuation_without_line),
        T(test_crlf_line_ends),
        T(test_bad_lines),
        T(test_long_name),
        T(test_nul_byte),
        T(test_nul_in_continuation_drops_logical_line),
        T(test_control_character),
        T(test_invalid_utf8),
        T(test_overlong_line),
        T(test_overlong_logical_line),
        T(test_expansion_forms),
        T(test_expansion_defaults_and_nesting),
        T(test_undefined_reference),
        T(test_loop_direct),
        T(test_loop_self_and_indirect),
        T(test_loop_through_defaults),
        T(test_bad_dollar_syntax),
        T(test_expansion_depth_limit),
        T(test_expansion_size_limit),
        T(test_fanout_of_empty_values_is_fast),
        T(test_bool_values),
        T(test_int_values),
        T(test_size_values),
        T(test_time_values),
        T(test_value_error_names_expansion_source),
        T(test_default_value_error_says_default),
        T(test_list_values),
        T(test_unknown_parameter),
        T(test_validate_reports_every_problem),
        T(test_defaults_table_is_valid),
        T(test_host_defaults),
        T(test_docs_list_every_parameter),
        T(test_set_and_default_api),
        T(test_message_quoting),
        T(test_foreach),
        T(test_null_errors_buffer),
        T(test_load_file),
        T(test_file_not_found),
        T(test_file_unreadable),
        T(test_file_too_large),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
