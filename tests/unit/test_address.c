/*
 * test_address.c - unit tests for envelope address parsing and formatting
 * (lib/mail/address). Table-driven: each case is named, and a failure prints
 * the name with what was expected and what came back. Covers the RFC 5321
 * grammar, the SMTPUTF8 rules, every length limit at and past its boundary,
 * the BAD-INPUT.md row 2 items (shell metacharacters, leading '-', '%', '!',
 * source routes, "", "\", long parts, bad literals, bad or unannounced
 * UTF-8), NUL/CR/LF anywhere, and a mutation run that checks the parser's
 * invariants on thousands of malformed inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mail/address.h"

/* A string literal with its exact length, so that embedded NULs count. */
#define S(x) x, (sizeof(x) - 1)

/* Expected flags in the tables. */
#define F_NULL 0x01
#define F_ROUTE 0x02
#define F_LIT 0x04
#define F_UTF8 0x08
#define F_QUOTED 0x10
#define F_PM 0x20

#define NUL_OK ADDRESS_ALLOW_NULL
#define UTF8 ADDRESS_ALLOW_UTF8
#define PM ADDRESS_ALLOW_POSTMASTER

struct ok_case {
    const char *name;
    const char *in;
    size_t len;
    unsigned flags;
    const char *local_raw, *local, *domain_raw, *domain;
    unsigned bits;
    const char *path; /* expected address_format_path() */
};

struct bad_case {
    const char *name;
    const char *in;
    size_t len;
    unsigned flags;
    enum address_status st;
    const char *text; /* must occur in err.text */
    size_t offset;    /* expected err.offset, or SIZE_MAX to skip the check */
};

#define ANY SIZE_MAX

static unsigned bits_of(const struct address *a)
{
    return (a->is_null ? F_NULL : 0) | (a->had_source_route ? F_ROUTE : 0) |
           (a->domain_is_literal ? F_LIT : 0) | (a->needs_smtputf8 ? F_UTF8 : 0) |
           (a->local_quoted ? F_QUOTED : 0) | (a->is_postmaster ? F_PM : 0);
}

static void expect_sb(const char *name, const char *what, const strbuf *sb, const char *want)
{
    if (!strbuf_eq(sb, want))
        fail_msg("case '%s': %s is '%s', expected '%s'", name, what, sb->data, want);
}

/* Checks a successful parse against a table row. */
static void check_ok(const struct ok_case *c, int rc, const struct address *a,
                     const struct address_error *err)
{
    if (rc != 0)
        fail_msg("case '%s': rejected: %s (status %d, offset %zu)", c->name, err->text,
                 (int)err->status, err->offset);
    assert_int_equal(err->status, ADDRESS_OK);
    expect_sb(c->name, "local_raw", &a->local_raw, c->local_raw);
    expect_sb(c->name, "local", &a->local, c->local);
    expect_sb(c->name, "domain_raw", &a->domain_raw, c->domain_raw);
    expect_sb(c->name, "domain", &a->domain, c->domain);
    if (bits_of(a) != c->bits)
        fail_msg("case '%s': flags 0x%02x, expected 0x%02x", c->name, bits_of(a), c->bits);
    strbuf out;
    strbuf_init(&out);
    address_format_path(&out, a);
    if (!strbuf_eq(&out, c->path))
        fail_msg("case '%s': formatted as '%s', expected '%s'", c->name, out.data, c->path);
    strbuf_free(&out);
}

/* Checks a rejection against a table row, and that the address was reset. */
static void check_bad(const struct bad_case *c, int rc, const struct address *a,
                      const struct address_error *err)
{
    if (rc != -1)
        fail_msg("case '%s': accepted (local '%s', domain '%s')", c->name, a->local.data,
                 a->domain.data);
    if (err->status != c->st)
        fail_msg("case '%s': status %d (%s), expected %d", c->name, (int)err->status, err->text,
                 (int)c->st);
    if (strstr(err->text, c->text) == NULL)
        fail_msg("case '%s': message '%s' lacks '%s'", c->name, err->text, c->text);
    if (c->offset != ANY && err->offset != c->offset)
        fail_msg("case '%s': offset %zu, expected %zu", c->name, err->offset, c->offset);
    /* The message goes into SMTP replies: printable ASCII only. */
    for (const char *t = err->text; *t; t++)
        if ((unsigned char)*t < 0x20 || (unsigned char)*t > 0x7E)
            fail_msg("case '%s': unprintable byte 0x%02x in message", c->name, (unsigned char)*t);
    assert_true(a->local.len == 0 && a->domain.len == 0 && a->local_raw.len == 0);
    assert_false(a->is_null || a->had_source_route || a->needs_smtputf8);
}

/* ---------------------------------------------------------------- paths */

static const struct ok_case path_ok[] = {
    {"simple", S("<user@example.org>"), 0, "user", "user", "example.org", "example.org", 0,
     "<user@example.org>"},
    {"plus tag", S("<user+tag@example.org>"), 0, "user+tag", "user+tag", "example.org",
     "example.org", 0, "<user+tag@example.org>"},
    {"dot-atom", S("<john.q.public@mail.example.org>"), 0, "john.q.public", "john.q.public",
     "mail.example.org", "mail.example.org", 0, "<john.q.public@mail.example.org>"},
    {"every atext char", S("<!#$%&'*+-/=?^_`{|}~@example.org>"), 0, "!#$%&'*+-/=?^_`{|}~",
     "!#$%&'*+-/=?^_`{|}~", "example.org", "example.org", 0,
     "<!#$%&'*+-/=?^_`{|}~@example.org>"},
    {"quoted with space", S("<\"john smith\"@example.org>"), 0, "\"john smith\"", "john smith",
     "example.org", "example.org", F_QUOTED, "<\"john smith\"@example.org>"},
    {"quoted escaped quote", S("<\"a\\\"b\"@x.org>"), 0, "\"a\\\"b\"", "a\"b", "x.org", "x.org",
     F_QUOTED, "<\"a\\\"b\"@x.org>"},
    {"quoted escaped backslash", S("<\"a\\\\b\"@x.org>"), 0, "\"a\\\\b\"", "a\\b", "x.org",
     "x.org", F_QUOTED, "<\"a\\\\b\"@x.org>"},
    {"quoted needlessly", S("<\"john\"@x.org>"), 0, "\"john\"", "john", "x.org", "x.org",
     F_QUOTED, "<john@x.org>"},
    {"quoted-pair of plain char", S("<\"a\\b\"@x.org>"), 0, "\"a\\b\"", "ab", "x.org", "x.org",
     F_QUOTED, "<ab@x.org>"},
    {"quoted double dot", S("<\"a..b\"@x.org>"), 0, "\"a..b\"", "a..b", "x.org", "x.org",
     F_QUOTED, "<\"a..b\"@x.org>"},
    {"quoted at sign", S("<\"a@b\"@c.org>"), 0, "\"a@b\"", "a@b", "c.org", "c.org", F_QUOTED,
     "<\"a@b\"@c.org>"},
    {"quoted angle bracket", S("<\"a>b\"@c.org>"), 0, "\"a>b\"", "a>b", "c.org", "c.org",
     F_QUOTED, "<\"a>b\"@c.org>"},
    {"quoted space only", S("<\" \"@c.org>"), 0, "\" \"", " ", "c.org", "c.org", F_QUOTED,
     "<\" \"@c.org>"},
    {"null sender", S("<>"), NUL_OK, "", "", "", "", F_NULL, "<>"},
    {"source route", S("<@a.example,@b.example:user@c.example>"), 0, "user", "user",
     "c.example", "c.example", F_ROUTE, "<user@c.example>"},
    {"single hop route", S("<@relay:u@b.org>"), 0, "u", "u", "b.org", "b.org", F_ROUTE,
     "<u@b.org>"},
    {"IPv4 literal", S("<user@[192.0.2.1]>"), 0, "user", "user", "[192.0.2.1]", "[192.0.2.1]",
     F_LIT, "<user@[192.0.2.1]>"},
    {"IPv6 literal", S("<user@[IPv6:2001:DB8::1]>"), 0, "user", "user", "[IPv6:2001:DB8::1]",
     "[IPv6:2001:db8::1]", F_LIT, "<user@[IPv6:2001:db8::1]>"},
    {"IPv6 tag lower case", S("<u@[ipv6:0:0:0:0:0:0:0:1]>"), 0, "u", "u",
     "[ipv6:0:0:0:0:0:0:0:1]", "[IPv6:::1]", F_LIT, "<u@[IPv6:::1]>"},
    {"IPv6 with IPv4 tail", S("<u@[IPv6:::ffff:192.0.2.1]>"), 0, "u", "u",
     "[IPv6:::ffff:192.0.2.1]", "[IPv6:::ffff:192.0.2.1]", F_LIT, "<u@[IPv6:::ffff:192.0.2.1]>"},
    {"upper case domain lowered", S("<John.Doe@Example.ORG>"), 0, "John.Doe", "John.Doe",
     "Example.ORG", "example.org", 0, "<John.Doe@example.org>"},
    {"hyphens inside labels", S("<u@a-b.c--d.org>"), 0, "u", "u", "a-b.c--d.org", "a-b.c--d.org",
     0, "<u@a-b.c--d.org>"},
    {"numeric label", S("<u@123.example>"), 0, "u", "u", "123.example", "123.example", 0,
     "<u@123.example>"},
    {"single label domain", S("<u@localhost>"), 0, "u", "u", "localhost", "localhost", 0,
     "<u@localhost>"},
    {"percent and bang are plain", S("<a%b!c@relay.org>"), 0, "a%b!c", "a%b!c", "relay.org",
     "relay.org", 0, "<a%b!c@relay.org>"},
    {"shell chars quoted are valid", S("<\"a;b|c`$(x)&'\\\"\"@x.org>"), 0,
     "\"a;b|c`$(x)&'\\\"\"", "a;b|c`$(x)&'\"", "x.org", "x.org", F_QUOTED,
     "<\"a;b|c`$(x)&'\\\"\"@x.org>"},
    {"UTF-8 local and domain", S("<j\xc3\xb6rg@b\xc3\xbc" "cher.example>"), UTF8,
     "j\xc3\xb6rg", "j\xc3\xb6rg", "b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example", F_UTF8,
     "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>"},
    {"UTF-8 CJK", S("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>"),
     UTF8, "\xe7\x94\xa8\xe6\x88\xb7", "\xe7\x94\xa8\xe6\x88\xb7",
     "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
     "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", F_UTF8,
     "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>"},
    {"UTF-8 4-byte in local", S("<a\xf0\x9f\x98\x80@x.org>"), UTF8, "a\xf0\x9f\x98\x80",
     "a\xf0\x9f\x98\x80", "x.org", "x.org", F_UTF8, "<a\xf0\x9f\x98\x80@x.org>"},
    {"UTF-8 domain only", S("<u@B\xc3\xbc" "cher.DE>"), UTF8, "u", "u", "B\xc3\xbc" "cher.DE",
     "b\xc3\xbc" "cher.de", F_UTF8, "<u@b\xc3\xbc" "cher.de>"},
    {"UTF-8 quoted", S("<\"j\xc3\xb6 rg\"@x.org>"), UTF8, "\"j\xc3\xb6 rg\"", "j\xc3\xb6 rg",
     "x.org", "x.org", F_QUOTED | F_UTF8, "<\"j\xc3\xb6 rg\"@x.org>"},
    {"A-label is ASCII", S("<u@xn--bcher-kva.de>"), 0, "u", "u", "xn--bcher-kva.de",
     "xn--bcher-kva.de", 0, "<u@xn--bcher-kva.de>"},
    {"ASCII with UTF-8 allowed", S("<u@x.org>"), UTF8 | NUL_OK | PM, "u", "u", "x.org", "x.org",
     0, "<u@x.org>"},
    {"bare Postmaster", S("<Postmaster>"), PM, "Postmaster", "Postmaster", "", "", F_PM,
     "<Postmaster>"},
    {"bare postmaster upper", S("<POSTMASTER>"), PM, "POSTMASTER", "POSTMASTER", "", "", F_PM,
     "<POSTMASTER>"},
    {"postmaster with domain", S("<postmaster@x.org>"), PM, "postmaster", "postmaster", "x.org",
     "x.org", 0, "<postmaster@x.org>"},
};

static const struct bad_case path_bad[] = {
    {"empty input", S(""), 0, ADDRESS_ERR_EMPTY, "empty address", 0},
    {"missing brackets", S("user@example.org"), 0, ADDRESS_ERR_NO_BRACKETS, "enclosed in <>", 0},
    {"missing '<'", S("user@example.org>"), 0, ADDRESS_ERR_NO_BRACKETS, "enclosed in <>", 0},
    {"unbalanced '<'", S("<user@example.org"), 0, ADDRESS_ERR_UNBALANCED_BRACKETS,
     "missing closing '>'", ANY},
    {"lone '<'", S("<"), 0, ADDRESS_ERR_LOCAL_EMPTY, "empty local part", 1},
    {"double brackets", S("<<user@x.org>>"), 0, ADDRESS_ERR_BAD_CHAR,
     "invalid character '<' in local part", 1},
    {"null not allowed", S("<>"), 0, ADDRESS_ERR_NULL_NOT_ALLOWED, "null address", 0},
    {"empty quoted local part", S("<\"\"@x.org>"), 0, ADDRESS_ERR_LOCAL_EMPTY,
     "empty quoted local part", 1},
    {"backslash-quote unterminated", S("<\"\\\"@x.org>"), 0, ADDRESS_ERR_UNBALANCED_QUOTES,
     "unbalanced quotes", 1},
    {"quote not closed", S("<\"abc@x.org>"), 0, ADDRESS_ERR_UNBALANCED_QUOTES,
     "unbalanced quotes", 1},
    {"backslash at end", S("<\"abc\\"), 0, ADDRESS_ERR_UNBALANCED_QUOTES, "unbalanced quotes", 1},
    {"quoted then atom", S("<\"a\"b@x.org>"), 0, ADDRESS_ERR_BAD_CHAR, "followed by '@'", 4},
    {"quoted then dot", S("<\"a\".b@x.org>"), 0, ADDRESS_ERR_BAD_CHAR, "followed by '@'", 4},
    {"atom then quote", S("<a\"b\"@x.org>"), 0, ADDRESS_ERR_BAD_CHAR,
     "invalid character '\"' in local part", 2},
    {"leading dot", S("<.a@x.org>"), 0, ADDRESS_ERR_LOCAL_DOTS, "starts with a dot", 1},
    {"trailing dot", S("<a.@x.org>"), 0, ADDRESS_ERR_LOCAL_DOTS, "ends with a dot", 2},
    {"double dot", S("<a..b@x.org>"), 0, ADDRESS_ERR_LOCAL_DOTS, "two dots in a row", 3},
    {"only a dot", S("<.@x.org>"), 0, ADDRESS_ERR_LOCAL_DOTS, "starts with a dot", 1},
    {"space in local part", S("<a b@x.org>"), 0, ADDRESS_ERR_BAD_CHAR, "(space) in local part", 2},
    {"comma in local part", S("<a,b@x.org>"), 0, ADDRESS_ERR_BAD_CHAR, "',' in local part", 2},
    {"no domain", S("<user>"), 0, ADDRESS_ERR_NO_DOMAIN, "no domain", 5},
    {"empty domain", S("<user@>"), 0, ADDRESS_ERR_DOMAIN_EMPTY, "missing domain", 6},
    {"empty local", S("<@>"), 0, ADDRESS_ERR_DOMAIN_EMPTY, "missing source route", ANY},
    {"two at signs", S("<a@b@c.org>"), 0, ADDRESS_ERR_BAD_CHAR, "'@' in domain", 4},
    {"domain trailing dot", S("<a@x.org.>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX, "ends with a dot", 8},
    {"domain leading dot", S("<a@.x.org>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX, "starts with a dot", 3},
    {"domain double dot", S("<a@x..org>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX, "two dots", 5},
    {"label leading hyphen", S("<a@-x.org>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX,
     "label starts with a hyphen", 3},
    {"label trailing hyphen", S("<a@x-.org>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX,
     "label ends with a hyphen", 4},
    {"label only hyphen", S("<a@x.-.org>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX, "hyphen", 5},
    {"underscore in domain", S("<a@x_y.org>"), 0, ADDRESS_ERR_BAD_CHAR, "'_' in domain", 4},
    {"space in domain", S("<a@x y.org>"), 0, ADDRESS_ERR_BAD_CHAR, "(space) in domain", 4},
    {"trailing junk", S("<a@x.org>junk"), 0, ADDRESS_ERR_TRAILING_JUNK, "after '>'", 9},
    {"trailing space", S("<a@x.org> "), 0, ADDRESS_ERR_TRAILING_JUNK, "after '>'", 9},
    {"doubled '>'", S("<a@x.org>>"), 0, ADDRESS_ERR_TRAILING_JUNK, "after '>'", 9},
    {"trailing CRLF", S("<a@x.org>\r\n"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x0D", 9},
    /* source routes */
    {"route without colon", S("<@a.org>"), 0, ADDRESS_ERR_ROUTE_SYNTAX, "must end with ':'", 7},
    {"route with nothing after", S("<@a,@b:>"), 0, ADDRESS_ERR_ROUTE_SYNTAX,
     "no mailbox after it", 7},
    {"route unterminated", S("<@a,@b:"), 0, ADDRESS_ERR_UNBALANCED_BRACKETS, "missing closing", 7},
    {"route missing '@'", S("<@a,b:u@c.org>"), 0, ADDRESS_ERR_ROUTE_SYNTAX, "expected '@'", 4},
    {"route empty hop", S("<@,@b:u@c.org>"), 0, ADDRESS_ERR_DOMAIN_EMPTY, "missing source route",
     2},
    {"route literal", S("<@[192.0.2.1]:u@c.org>"), 0, ADDRESS_ERR_ROUTE_SYNTAX,
     "literals are not allowed", 2},
    {"route then at", S("<@a:@b:u@c.org>"), 0, ADDRESS_ERR_LOCAL_EMPTY, "empty local part", 4},
    {"route bad char", S("<@a;u@c.org>"), 0, ADDRESS_ERR_BAD_CHAR, "';' in source route", 3},
    {"route trailing dot", S("<@a.:u@c.org>"), 0, ADDRESS_ERR_DOMAIN_SYNTAX, "ends with a dot",
     3},
    /* address literals */
    {"IPv4 octet > 255", S("<a@[999.1.1.1]>"), 0, ADDRESS_ERR_LITERAL_IPV4, "invalid IPv4", 4},
    {"IPv4 three parts", S("<a@[1.2.3]>"), 0, ADDRESS_ERR_LITERAL_IPV4, "invalid IPv4", 4},
    {"IPv4 leading zero", S("<a@[01.2.3.4]>"), 0, ADDRESS_ERR_LITERAL_IPV4, "invalid IPv4", 4},
    {"IPv4 words", S("<a@[localhost]>"), 0, ADDRESS_ERR_LITERAL_IPV4, "invalid IPv4", 4},
    {"IPv4 too long", S("<a@[1111111111111111111111111.2.3.4]>"), 0, ADDRESS_ERR_LITERAL_IPV4,
     "invalid IPv4", 4},
    {"IPv6 garbage", S("<a@[IPv6:zzzz]>"), 0, ADDRESS_ERR_LITERAL_IPV6, "invalid IPv6", 4},
    {"IPv6 nine groups", S("<a@[IPv6:1:2:3:4:5:6:7:8:9]>"), 0, ADDRESS_ERR_LITERAL_IPV6,
     "invalid IPv6", 4},
    {"IPv6 zone id", S("<a@[IPv6:fe80::1%eth0]>"), 0, ADDRESS_ERR_LITERAL_IPV6, "invalid IPv6", 4},
    {"IPv6 empty", S("<a@[IPv6:]>"), 0, ADDRESS_ERR_LITERAL_IPV6, "invalid IPv6", 4},
    {"IPv6 huge", S("<a@[IPv6:0000000000000000000000000000000000000000000000000000000000::1]>"),
     0, ADDRESS_ERR_LITERAL_IPV6, "invalid IPv6", 4},
    {"IPv6 without tag", S("<a@[2001:db8::1]>"), 0, ADDRESS_ERR_LITERAL_UNSUPPORTED,
     "tag \"2001\"", 4},
    {"general literal", S("<a@[x400:c=us;a=b]>"), 0, ADDRESS_ERR_LITERAL_UNSUPPORTED,
     "unsupported address literal tag \"x400\"", 4},
    {"literal bad tag", S("<a@[-x:1]>"), 0, ADDRESS_ERR_LITERAL_SYNTAX, "malformed", 4},
    {"literal empty tag", S("<a@[:1.2.3.4]>"), 0, ADDRESS_ERR_LITERAL_SYNTAX, "malformed", 4},
    {"empty literal", S("<a@[]>"), 0, ADDRESS_ERR_LITERAL_SYNTAX, "empty address literal", 3},
    {"unterminated literal", S("<a@[1.2.3.4>"), 0, ADDRESS_ERR_LITERAL_SYNTAX, "missing ']'", 3},
    {"space in literal", S("<a@[ 1.2.3.4]>"), 0, ADDRESS_ERR_BAD_CHAR, "in address literal", 4},
    {"nested bracket", S("<a@[[1.2.3.4]]>"), 0, ADDRESS_ERR_BAD_CHAR, "'[' in address literal",
     4},
    {"text after literal", S("<a@[1.2.3.4]x>"), 0, ADDRESS_ERR_BAD_CHAR, "after the address literal",
     12},
    {"literal then label", S("<a@[1.2.3.4].org>"), 0, ADDRESS_ERR_BAD_CHAR, "'.'", 12},
    /* NUL, CR, LF and other controls */
    {"NUL in local part", S("<a\0b@x.org>"), 0, ADDRESS_ERR_NUL_BYTE, "NUL byte", 2},
    {"NUL in domain", S("<ab@x\0.org>"), 0, ADDRESS_ERR_NUL_BYTE, "NUL byte", 5},
    {"NUL after '>'", S("<ab@x.org>\0"), 0, ADDRESS_ERR_NUL_BYTE, "NUL byte", 10},
    {"NUL first", S("\0<ab@x.org>"), 0, ADDRESS_ERR_NUL_BYTE, "NUL byte", 0},
    {"NUL quoted", S("<\"a\0b\"@x.org>"), 0, ADDRESS_ERR_NUL_BYTE, "NUL byte", 3},
    {"NUL after backslash", S("<\"a\\\0\"@x.org>"), 0, ADDRESS_ERR_NUL_BYTE, "NUL byte", 4},
    {"NUL with UTF-8", S("<a\0@x.org>"), UTF8 | NUL_OK, ADDRESS_ERR_NUL_BYTE, "NUL byte", 2},
    {"CRLF in local part", S("<a\r\n@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR,
     "invalid control character 0x0D in local part", 2},
    {"LF in local part", S("<a\nRCPT TO:<b@c>@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR,
     "invalid control character 0x0A in local part", 2},
    {"LF in domain", S("<a@x.org\n>"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x0A in domain", 8},
    {"CR in quotes", S("<\"a\rb\"@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR,
     "0x0D in quoted local part", 3},
    {"LF after backslash", S("<\"a\\\nb\"@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR,
     "0x0A in quoted local part (after a backslash)", 4},
    {"tab in local part", S("<a\tb@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x09", 2},
    {"tab in quotes", S("<\"a\tb\"@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x09", 3},
    {"ESC in local part", S("<a\x1b[31m@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x1B", 2},
    {"DEL in local part", S("<a\x7f@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x7F", 2},
    {"CR in route", S("<@a\r:u@x.org>"), 0, ADDRESS_ERR_CONTROL_CHAR, "in source route", 3},
    {"LF in literal", S("<u@[1.2.3.4\n]>"), 0, ADDRESS_ERR_CONTROL_CHAR, "in address literal", 11},
    /* invalid UTF-8 (with SMTPUTF8) */
    {"overlong C0 80", S("<\xc0\x80@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID,
     "invalid UTF-8 (byte 0xC0) in local part", 1},
    {"overlong C1 BF", S("<a\xc1\xbf@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xC1", 2},
    {"overlong E0 80 AF", S("<a\xe0\x80\xaf@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xE0", 2},
    {"overlong F0 80 80 AF", S("<a\xf0\x80\x80\xaf@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID,
     "0xF0", 2},
    {"lone continuation", S("<\x80@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0x80", 1},
    {"continuation after ASCII", S("<ab\xbf@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xBF", 3},
    {"surrogate ED A0 80", S("<\xed\xa0\x80@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xED", 1},
    {"surrogate ED BF BF", S("<a@\xed\xbf\xbf.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID,
     "0xED) in domain", 3},
    {"F5 lead", S("<\xf5\x80\x80\x80@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xF5", 1},
    {"FF byte", S("<a\xff@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xFF", 2},
    {"above U+10FFFF", S("<\xf4\x90\x80\x80@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xF4", 1},
    {"truncated before '@'", S("<a\xe4\xbd@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xE4", 2},
    {"truncated at end of input", S("<a@x\xe4"), UTF8, ADDRESS_ERR_UTF8_INVALID, "0xE4", 4},
    {"truncated 4-byte in quotes", S("<\"\xf0\x9f\x98\"@x.org>"), UTF8, ADDRESS_ERR_UTF8_INVALID,
     "in quoted local part", 2},
    {"C1 control U+0085", S("<a\xc2\x85@x.org>"), UTF8, ADDRESS_ERR_CONTROL_CHAR,
     "U+0085 in local part", 2},
    {"C1 control in domain", S("<a@x\xc2\x9b.org>"), UTF8, ADDRESS_ERR_CONTROL_CHAR, "U+009B", 4},
    {"UTF-8 after backslash", S("<\"\\\xc3\xa9\"@x.org>"), UTF8, ADDRESS_ERR_BAD_CHAR,
     "U+00E9 is not allowed", 3},
    {"UTF-8 in literal", S("<a@[1.2.3.\xc3\xa9]>"), UTF8, ADDRESS_ERR_BAD_CHAR,
     "in address literal", 10},
    {"xn-- with UTF-8", S("<a@xn--b\xc3\xbc.org>"), UTF8, ADDRESS_ERR_DOMAIN_SYNTAX,
     "\"xn--\" must be ASCII", 3},
    /* UTF-8 without SMTPUTF8 */
    {"UTF-8 local without flag", S("<j\xc3\xb6rg@x.org>"), 0, ADDRESS_ERR_UTF8_NOT_ALLOWED,
     "requires SMTPUTF8", 2},
    {"UTF-8 domain without flag", S("<u@b\xc3\xbc" "cher.de>"), NUL_OK | PM,
     ADDRESS_ERR_UTF8_NOT_ALLOWED, "non-ASCII character in domain requires SMTPUTF8", 4},
    {"UTF-8 quoted without flag", S("<\"\xc3\xa9\"@x.org>"), 0, ADDRESS_ERR_UTF8_NOT_ALLOWED,
     "in quoted local part", 2},
    {"8-bit junk without flag", S("<a\xff@x.org>"), 0, ADDRESS_ERR_UTF8_NOT_ALLOWED,
     "requires SMTPUTF8", 2},
    /* bare postmaster only with the flag, and only exactly */
    {"Postmaster without flag", S("<Postmaster>"), 0, ADDRESS_ERR_NO_DOMAIN, "no domain", 11},
    {"postmasters", S("<postmasters>"), PM, ADDRESS_ERR_NO_DOMAIN, "no domain", 12},
};

static void test_path_valid(void **state)
{
    (void)state;
    struct address a;
    struct address_error err;
    address_init(&a);
    for (size_t k = 0; k < sizeof(path_ok) / sizeof(path_ok[0]); k++) {
        const struct ok_case *c = &path_ok[k];
        int rc = address_parse_path(c->in, c->len, c->flags, &a, &err);
        check_ok(c, rc, &a, &err);
    }
    address_free(&a);
}

static void test_path_invalid(void **state)
{
    (void)state;
    struct address a;
    struct address_error err;
    address_init(&a);
    for (size_t k = 0; k < sizeof(path_bad) / sizeof(path_bad[0]); k++) {
        const struct bad_case *c = &path_bad[k];
        /* Fill the address first, to see that a failure resets it. */
        assert_int_equal(address_parse_path(S("<@r:old@example.org>"), UTF8, &a, &err), 0);
        int rc = address_parse_path(c->in, c->len, c->flags, &a, &err);
        check_bad(c, rc, &a, &err);
    }
    address_free(&a);
}

/* Every valid address, formatted and parsed again, is the same address. */
static void test_format_round_trip(void **state)
{
    (void)state;
    struct address a, b;
    struct address_error err;
    strbuf out, out2;
    address_init(&a);
    address_init(&b);
    strbuf_init(&out);
    strbuf_init(&out2);
    for (size_t k = 0; k < sizeof(path_ok) / sizeof(path_ok[0]); k++) {
        const struct ok_case *c = &path_ok[k];
        assert_int_equal(address_parse_path(c->in, c->len, c->flags, &a, &err), 0);
        strbuf_reset(&out);
        address_format_path(&out, &a);
        if (address_parse_path(out.data, out.len, c->flags, &b, &err) != 0)
            fail_msg("case '%s': formatted '%s' does not parse: %s", c->name, out.data, err.text);
        expect_sb(c->name, "re-parsed local", &b.local, a.local.data);
        expect_sb(c->name, "re-parsed domain", &b.domain, a.domain.data);
        assert_int_equal(a.is_null, b.is_null);
        assert_int_equal(a.needs_smtputf8, b.needs_smtputf8);
        strbuf_reset(&out2);
        address_format_path(&out2, &b);
        expect_sb(c->name, "re-formatted", &out2, out.data);
        /* address_format is the same without the brackets. */
        strbuf_reset(&out2);
        address_format(&out2, &a);
        assert_int_equal(out2.len + 2, out.len);
        assert_memory_equal(out2.data, out.data + 1, out2.len);
    }
    strbuf_free(&out);
    strbuf_free(&out2);
    address_free(&a);
    address_free(&b);
}

/* ---------------------------------------------------------- length limits */

/* Builds "<" local "@" domain ">" from repeated characters. */
static void build(strbuf *sb, bool brackets, size_t local_len, const size_t *labels, size_t nlabels)
{
    strbuf_reset(sb);
    if (brackets)
        strbuf_appendc(sb, '<');
    for (size_t k = 0; k < local_len; k++)
        strbuf_appendc(sb, 'l');
    strbuf_appendc(sb, '@');
    for (size_t k = 0; k < nlabels; k++) {
        if (k > 0)
            strbuf_appendc(sb, '.');
        for (size_t j = 0; j < labels[k]; j++)
            strbuf_appendc(sb, (char)('a' + k % 26));
    }
    if (brackets)
        strbuf_appendc(sb, '>');
}

static int parse_built(const strbuf *sb, bool brackets, struct address *a,
                       struct address_error *err)
{
    return brackets ? address_parse_path(sb->data, sb->len, 0, a, err)
                    : address_parse_mailbox(sb->data, sb->len, 0, a, err);
}

static void test_length_limits(void **state)
{
    (void)state;
    struct address a;
    struct address_error err;
    strbuf sb;
    address_init(&a);
    strbuf_init(&sb);

    /* local part: 64 is fine, 65 is not */
    size_t short_dom[] = {1, 3};
    build(&sb, true, 64, short_dom, 2);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), 0);
    assert_int_equal(a.local.len, 64);
    build(&sb, true, 65, short_dom, 2);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_LOCAL_TOO_LONG);
    assert_string_equal(err.text, "local part too long (65 octets, at most 64)");
    assert_int_equal(err.offset, 1);

    /* a quoted local part counts its quotes: 62 characters + 2 quotes */
    strbuf_reset(&sb);
    strbuf_appends(&sb, "<\"");
    for (int k = 0; k < 62; k++)
        strbuf_appendc(&sb, ' ');
    strbuf_appends(&sb, "\"@x.org>");
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), 0);
    strbuf_reset(&sb);
    strbuf_appends(&sb, "<\"");
    for (int k = 0; k < 62; k++)
        strbuf_appendc(&sb, ' ');
    strbuf_appends(&sb, "\\ \"@x.org>");
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_LOCAL_TOO_LONG);

    /* label: 63 is fine, 64 is not */
    size_t l63[] = {63, 3};
    size_t l64[] = {64, 3};
    build(&sb, true, 1, l63, 2);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), 0);
    build(&sb, true, 1, l64, 2);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_LABEL_TOO_LONG);
    assert_string_equal(err.text, "domain label too long (64 octets, at most 63)");
    assert_int_equal(err.offset, 3);

    /* domain: 255 octets passes the domain check (and then fails the path
     * limit, which is checked last), 256 fails the domain check */
    size_t d255[] = {63, 63, 63, 63}; /* 4*63 + 3 dots = 255 */
    size_t d256[] = {63, 63, 63, 62, 1}; /* 252 + 4 dots = 256 */
    build(&sb, true, 1, d255, 4);
    assert_int_equal(sb.len, 1 + 1 + 1 + 255 + 1);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_PATH_TOO_LONG);
    build(&sb, true, 1, d256, 5);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_DOMAIN_TOO_LONG);
    assert_string_equal(err.text, "domain too long (256 octets, at most 255)");

    /* path: 256 octets with brackets is fine, 257 is not */
    size_t p_ok[] = {63, 63, 63, 60}; /* 249 + 3 dots = 252; <l@...> = 256 */
    build(&sb, true, 1, p_ok, 4);
    assert_int_equal(sb.len, 256);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), 0);
    build(&sb, true, 2, p_ok, 4);
    assert_int_equal(sb.len, 257);
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_PATH_TOO_LONG);
    assert_string_equal(err.text, "address too long (257 octets, at most 256)");

    /* the same mailboxes bare: 254 fine, 255 not */
    build(&sb, false, 1, p_ok, 4);
    assert_int_equal(sb.len, 254);
    assert_int_equal(parse_built(&sb, false, &a, &err), 0);
    build(&sb, false, 2, p_ok, 4);
    assert_int_equal(parse_built(&sb, false, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_PATH_TOO_LONG);

    /* a source route counts towards the path */
    strbuf_reset(&sb);
    strbuf_appends(&sb, "<@");
    for (int k = 0; k < 60; k++)
        strbuf_appendc(&sb, 'r');
    strbuf_appendc(&sb, ':');
    strbuf mbox;
    strbuf_init(&mbox);
    build(&mbox, false, 1, p_ok, 4);
    strbuf_append_sb(&sb, &mbox);
    strbuf_free(&mbox);
    strbuf_appendc(&sb, '>');
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_PATH_TOO_LONG);

    /* a megabyte local part fails on length, not on memory or time */
    strbuf_reset(&sb);
    strbuf_appendc(&sb, '<');
    for (int k = 0; k < 1024 * 1024; k++)
        strbuf_appendc(&sb, 'x');
    strbuf_appends(&sb, "@x.org>");
    assert_int_equal(address_parse_path(sb.data, sb.len, 0, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_LOCAL_TOO_LONG);

    /* UTF-8 counts octets: 32 two-byte characters = 64 octets fine, 33 not */
    strbuf_reset(&sb);
    strbuf_appendc(&sb, '<');
    for (int k = 0; k < 32; k++)
        strbuf_appends(&sb, "\xc3\xa9");
    strbuf_appends(&sb, "@x.org>");
    assert_int_equal(address_parse_path(sb.data, sb.len, UTF8, &a, &err), 0);
    strbuf_reset(&sb);
    strbuf_appendc(&sb, '<');
    for (int k = 0; k < 33; k++)
        strbuf_appends(&sb, "\xc3\xa9");
    strbuf_appends(&sb, "@x.org>");
    assert_int_equal(address_parse_path(sb.data, sb.len, UTF8, &a, &err), -1);
    assert_int_equal(err.status, ADDRESS_ERR_LOCAL_TOO_LONG);

    strbuf_free(&sb);
    address_free(&a);
}

/* --------------------------------------------------------- bare mailboxes */

static const struct ok_case mailbox_ok[] = {
    {"simple", S("user@example.org"), 0, "user", "user", "example.org", "example.org", 0,
     "<user@example.org>"},
    {"quoted", S("\"john smith\"@Example.org"), 0, "\"john smith\"", "john smith", "Example.org",
     "example.org", F_QUOTED, "<\"john smith\"@example.org>"},
    {"literal", S("root@[IPv6:::1]"), 0, "root", "root", "[IPv6:::1]", "[IPv6:::1]", F_LIT,
     "<root@[IPv6:::1]>"},
    {"local only allowed", S("bob"), ADDRESS_ALLOW_NO_DOMAIN, "bob", "bob", "", "", 0, "<bob>"},
    {"quoted local only", S("\"bob smith\""), ADDRESS_ALLOW_NO_DOMAIN, "\"bob smith\"",
     "bob smith", "", "", F_QUOTED, "<\"bob smith\">"},
    {"UTF-8", S("j\xc3\xb6rg@x.org"), UTF8, "j\xc3\xb6rg", "j\xc3\xb6rg", "x.org", "x.org",
     F_UTF8, "<j\xc3\xb6rg@x.org>"},
    /* valid syntax (all atext): only address_has_unsafe_chars() stops it */
    {"shell pipe", S("|/bin/sh"), ADDRESS_ALLOW_NO_DOMAIN, "|/bin/sh", "|/bin/sh", "", "", 0,
     "<|/bin/sh>"},
};

static const struct bad_case mailbox_bad[] = {
    {"empty", S(""), 0, ADDRESS_ERR_EMPTY, "empty address", 0},
    {"no domain", S("bob"), 0, ADDRESS_ERR_NO_DOMAIN, "no domain", 3},
    {"brackets", S("<a@x.org>"), 0, ADDRESS_ERR_BAD_CHAR, "'<' in local part", 0},
    {"closing bracket", S("a@x.org>"), 0, ADDRESS_ERR_BAD_CHAR, "'>' in domain", 7},
    {"null not a mailbox", S("<>"), ADDRESS_ALLOW_NULL, ADDRESS_ERR_BAD_CHAR, "'<'", 0},
    {"postmaster needs domain", S("Postmaster"), ADDRESS_ALLOW_POSTMASTER, ADDRESS_ERR_NO_DOMAIN,
     "no domain", 10},
    {"route", S("@a:b@x.org"), 0, ADDRESS_ERR_LOCAL_EMPTY, "empty local part", 0},
    {"trailing space", S("a@x.org "), 0, ADDRESS_ERR_BAD_CHAR, "(space) in domain", 7},
    {"trailing newline", S("a@x.org\n"), 0, ADDRESS_ERR_CONTROL_CHAR, "0x0A", 7},
    {"NUL", S("a@x.org\0evil"), 0, ADDRESS_ERR_NUL_BYTE, "NUL", 7},
    {"two addresses", S("a@x.org,b@y.org"), 0, ADDRESS_ERR_BAD_CHAR, "','", 7},
    {"trailing dot", S("a@x.org."), 0, ADDRESS_ERR_DOMAIN_SYNTAX, "ends with a dot", 7},
    {"UTF-8 without flag", S("a@b\xc3\xbc.de"), ADDRESS_ALLOW_NO_DOMAIN,
     ADDRESS_ERR_UTF8_NOT_ALLOWED, "SMTPUTF8", 3},
};

static void test_mailbox(void **state)
{
    (void)state;
    struct address a;
    struct address_error err;
    address_init(&a);
    for (size_t k = 0; k < sizeof(mailbox_ok) / sizeof(mailbox_ok[0]); k++) {
        const struct ok_case *c = &mailbox_ok[k];
        int rc = address_parse_mailbox(c->in, c->len, c->flags, &a, &err);
        check_ok(c, rc, &a, &err);
    }
    for (size_t k = 0; k < sizeof(mailbox_bad) / sizeof(mailbox_bad[0]); k++) {
        const struct bad_case *c = &mailbox_bad[k];
        int rc = address_parse_mailbox(c->in, c->len, c->flags, &a, &err);
        check_bad(c, rc, &a, &err);
    }
    address_free(&a);
}

/* ----------------------------------------------------- MAIL/RCPT arguments */

struct arg_case {
    const char *name;
    const char *in;
    size_t len;
    enum address_role role;
    unsigned flags;
    enum address_status st;
    const char *path;   /* formatted path on success; error text substring on failure */
    const char *params; /* parameters on success */
    size_t offset;      /* error offset, or ANY */
};

#define SND ADDRESS_ROLE_SENDER
#define RCP ADDRESS_ROLE_RECIPIENT

static const struct arg_case arg_cases[] = {
    {"plain", S("FROM:<a@x.org>"), SND, 0, ADDRESS_OK, "<a@x.org>", "", ANY},
    {"lower-case keyword", S("from:<a@x.org>"), SND, 0, ADDRESS_OK, "<a@x.org>", "", ANY},
    {"params", S("FROM:<a@x.org> SIZE=100 BODY=8BITMIME"), SND, 0, ADDRESS_OK, "<a@x.org>",
     "SIZE=100 BODY=8BITMIME", ANY},
    {"space after colon", S("FROM: <a@x.org>"), SND, 0, ADDRESS_OK, "<a@x.org>", "", ANY},
    {"spaces everywhere", S("FROM:   <a@x.org>   SIZE=1"), SND, 0, ADDRESS_OK, "<a@x.org>",
     "SIZE=1", ANY},
    {"trailing space", S("TO:<a@x.org> "), RCP, 0, ADDRESS_OK, "<a@x.org>", "", ANY},
    {"null sender", S("FROM:<>"), SND, 0, ADDRESS_OK, "<>", "", ANY},
    {"null sender with params", S("FROM:<> BODY=7BIT"), SND, 0, ADDRESS_OK, "<>", "BODY=7BIT",
     ANY},
    {"null recipient", S("TO:<>"), RCP, 0, ADDRESS_ERR_NULL_NOT_ALLOWED, "null address", NULL, 3},
    {"null recipient despite flag", S("TO:<>"), RCP, ADDRESS_ALLOW_NULL,
     ADDRESS_ERR_NULL_NOT_ALLOWED, "null address", NULL, 3},
    {"postmaster recipient", S("TO:<Postmaster>"), RCP, 0, ADDRESS_OK, "<Postmaster>", "", ANY},
    {"postmaster sender", S("FROM:<Postmaster>"), SND, 0, ADDRESS_ERR_NO_DOMAIN, "no domain",
     NULL, 16},
    {"route", S("TO:<@relay.org:a@x.org> NOTIFY=NEVER"), RCP, 0, ADDRESS_OK, "<a@x.org>",
     "NOTIFY=NEVER", ANY},
    {"quoted '>'", S("TO:<\"a> b\"@x.org> ORCPT=rfc822;a@x.org"), RCP, 0, ADDRESS_OK,
     "<\"a> b\"@x.org>", "ORCPT=rfc822;a@x.org", ANY},
    {"UTF-8 with flag", S("FROM:<j\xc3\xb6rg@x.org> SMTPUTF8"), SND, UTF8, ADDRESS_OK,
     "<j\xc3\xb6rg@x.org>", "SMTPUTF8", ANY},
    {"UTF-8 without flag", S("TO:<j\xc3\xb6rg@x.org>"), RCP, 0, ADDRESS_ERR_UTF8_NOT_ALLOWED,
     "SMTPUTF8", NULL, 5},
    {"no brackets", S("FROM:a@x.org"), SND, 0, ADDRESS_ERR_NO_BRACKETS, "enclosed in <>", NULL, 5},
    {"no brackets after space", S("TO: a@x.org"), RCP, 0, ADDRESS_ERR_NO_BRACKETS, "RCPT TO:",
     NULL, 4},
    {"space before colon", S("FROM :<a@x.org>"), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX,
     "MAIL FROM:<address>", NULL, 0},
    {"missing colon", S("FROM<a@x.org>"), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX, "syntax", NULL, 0},
    {"nothing after colon", S("FROM:"), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX, "syntax", NULL, 5},
    {"only spaces after colon", S("FROM:   "), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX, "syntax", NULL,
     8},
    {"empty", S(""), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX, "syntax", NULL, 0},
    {"wrong keyword", S("TO:<a@x.org>"), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX, "MAIL FROM:", NULL,
     0},
    {"short keyword", S("FRO"), SND, 0, ADDRESS_ERR_COMMAND_SYNTAX, "syntax", NULL, 0},
    {"params glued to '>'", S("TO:<a@x.org>NOTIFY=NEVER"), RCP, 0, ADDRESS_ERR_TRAILING_JUNK,
     "after '>'", NULL, 12},
    {"unbalanced", S("TO:<a@x.org SIZE=1"), RCP, 0, ADDRESS_ERR_BAD_CHAR, "(space) in domain",
     NULL, 11},
    {"CRLF left on the line", S("FROM:<a@x.org>\r\n"), SND, 0, ADDRESS_ERR_CONTROL_CHAR, "0x0D",
     NULL, 14},
    {"NUL in params", S("FROM:<a@x.org> SIZE=1\0X"), SND, 0, ADDRESS_ERR_NUL_BYTE, "NUL", NULL,
     21},
    {"bad address offset", S("FROM:<a@x y>"), SND, 0, ADDRESS_ERR_BAD_CHAR, "(space) in domain",
     NULL, 9},
    {"smuggled command", S("TO:<a@x.org\r\nDATA>"), RCP, 0, ADDRESS_ERR_CONTROL_CHAR, "0x0D",
     NULL, 11},
};

static void test_mail_arg(void **state)
{
    (void)state;
    struct address a;
    struct address_error err;
    strbuf out;
    address_init(&a);
    strbuf_init(&out);
    for (size_t k = 0; k < sizeof(arg_cases) / sizeof(arg_cases[0]); k++) {
        const struct arg_case *c = &arg_cases[k];
        const char *params = NULL;
        size_t plen = 99;
        int rc = address_parse_mail_arg(c->in, c->len, c->role, c->flags, &a, &params, &plen, &err);
        if (c->st == ADDRESS_OK) {
            if (rc != 0)
                fail_msg("case '%s': rejected: %s", c->name, err.text);
            strbuf_reset(&out);
            address_format_path(&out, &a);
            expect_sb(c->name, "path", &out, c->path);
            assert_non_null(params);
            assert_true(params >= c->in && params + plen == c->in + c->len);
            if (plen != strlen(c->params) || memcmp(params, c->params, plen) != 0)
                fail_msg("case '%s': params '%.*s', expected '%s'", c->name, (int)plen, params,
                         c->params);
        } else {
            struct bad_case b = {c->name, c->in, c->len, c->flags, c->st, c->path, c->offset};
            check_bad(&b, rc, &a, &err);
            assert_int_equal(plen, 0);
        }
    }
    strbuf_free(&out);
    address_free(&a);
}

/* ---------------------------------------------------------- predicates */

struct pred_case {
    const char *path;
    size_t len;
    bool unsafe;
    bool routing;
};

/* BAD-INPUT.md row 2: each of these is a syntactically valid address (most
 * only inside quotes); the predicates must flag them for local delivery. */
static const struct pred_case pred_cases[] = {
    {S("<john.smith+tag@example.org>"), false, false},
    {S("<first_last=x@sub.example.org>"), false, false},
    {S("<\"a;b\"@x.org>"), true, false},
    {S("<a|b@x.org>"), true, false},
    {S("<\"|/bin/sh\"@x.org>"), true, false},
    {S("<a`id`@x.org>"), true, false},
    {S("<\"$(id)\"@x.org>"), true, false},
    {S("<${run{/bin/sh}}@x.org>"), true, false},
    {S("<a&b@x.org>"), true, false},
    {S("<\"a<b\"@x.org>"), true, false},
    {S("<\"a>b\"@x.org>"), true, false},
    {S("<a'b@x.org>"), true, false},
    {S("<\"a\\\"b\"@x.org>"), true, false},
    {S("<\"a\\\\b\"@x.org>"), true, false},
    {S("<\"a b\"@x.org>"), true, false},
    {S("<-oQ/tmp/@x.org>"), true, false},
    {S("<-x@x.org>"), true, false},
    {S("<a*b@x.org>"), true, false},
    {S("<a?b@x.org>"), true, false},
    {S("<~root@x.org>"), true, false},
    {S("<a#b@x.org>"), true, false},
    {S("<\"../../etc\"@x.org>"), true, false},
    {S("<a%b@x.org>"), true, true},
    {S("<host!user@x.org>"), true, true},
    {S("<\"user@evil.org\"@x.org>"), false, true},
    {S("<\"u%evil.org\"@x.org>"), true, true},
    {S("<@relay.org:user@x.org>"), false, false},
    {S("<user@[192.0.2.1]>"), true, false},
    {S("<>"), false, false},
    {S("<j\xc3\xb6rg@b\xc3\xbc" "cher.de>"), false, false},
};

static void test_predicates(void **state)
{
    (void)state;
    struct address a;
    struct address_error err;
    address_init(&a);
    for (size_t k = 0; k < sizeof(pred_cases) / sizeof(pred_cases[0]); k++) {
        const struct pred_case *c = &pred_cases[k];
        if (address_parse_path(c->path, c->len, NUL_OK | UTF8, &a, &err) != 0)
            fail_msg("case '%s': rejected: %s", c->path, err.text);
        if (address_has_unsafe_chars(&a) != c->unsafe)
            fail_msg("case '%s': unsafe is %d", c->path, !c->unsafe);
        if (address_has_routing_chars(&a) != c->routing)
            fail_msg("case '%s': routing is %d", c->path, !c->routing);
    }
    /* the text variant, including bytes the parser never lets through */
    assert_false(address_text_has_unsafe_chars(S("bob.smith")));
    assert_false(address_text_has_unsafe_chars("", 0));
    assert_true(address_text_has_unsafe_chars(S("-bob")));
    assert_false(address_text_has_unsafe_chars(S("bob-")));
    assert_true(address_text_has_unsafe_chars(S("bob\n")));
    assert_true(address_text_has_unsafe_chars(S("bob\0x")));
    assert_true(address_text_has_unsafe_chars(S("a/b")));
    assert_true(address_text_has_unsafe_chars(S("a$b")));
    assert_true(address_text_has_unsafe_chars(S("a\\b")));
    assert_true(address_text_has_unsafe_chars(S("a\x7f")));
    assert_int_equal(address_parse_mailbox(S("|/bin/sh"), ADDRESS_ALLOW_NO_DOMAIN, &a, &err), 0);
    assert_true(address_has_unsafe_chars(&a));
    address_free(&a);
}

/* ------------------------------------------------------- status mapping */

static void test_status_codes(void **state)
{
    (void)state;
    assert_string_equal(address_status_dsn(ADDRESS_ERR_UTF8_NOT_ALLOWED, SND), "5.6.7");
    assert_string_equal(address_status_dsn(ADDRESS_ERR_UTF8_NOT_ALLOWED, RCP), "5.6.7");
    assert_int_equal(address_status_reply(ADDRESS_ERR_UTF8_NOT_ALLOWED), 553);
    assert_string_equal(address_status_dsn(ADDRESS_ERR_COMMAND_SYNTAX, SND), "5.5.4");
    assert_string_equal(address_status_dsn(ADDRESS_ERR_LOCAL_DOTS, SND), "5.1.7");
    assert_string_equal(address_status_dsn(ADDRESS_ERR_LOCAL_DOTS, RCP), "5.1.3");
    assert_string_equal(address_status_dsn(ADDRESS_ERR_UTF8_INVALID, RCP), "5.1.3");
    assert_string_equal(address_status_dsn(ADDRESS_ERR_NULL_NOT_ALLOWED, RCP), "5.1.3");
    assert_string_equal(address_status_dsn(ADDRESS_OK, SND), "2.1.0");
    assert_string_equal(address_status_dsn(ADDRESS_OK, RCP), "2.1.5");
    assert_int_equal(address_status_reply(ADDRESS_OK), 250);
    assert_int_equal(address_status_reply(ADDRESS_ERR_PATH_TOO_LONG), 501);
    for (int st = ADDRESS_OK; st <= ADDRESS_ERR_UTF8_NOT_ALLOWED; st++) {
        const char *t = address_status_text((enum address_status)st);
        assert_non_null(t);
        assert_true(strlen(t) > 5);
        int r = address_status_reply((enum address_status)st);
        assert_true(st == ADDRESS_OK ? r == 250 : (r == 501 || r == 553));
        const char *d = address_status_dsn((enum address_status)st, RCP);
        assert_true(st == ADDRESS_OK ? d[0] == '2' : d[0] == '5');
    }
}

/* A NULL err is allowed; the message is simply not reported. */
static void test_null_err(void **state)
{
    (void)state;
    struct address a;
    address_init(&a);
    assert_int_equal(address_parse_path(S("<a@x.org>"), 0, &a, NULL), 0);
    assert_int_equal(address_parse_path(S("<a@x..org>"), 0, &a, NULL), -1);
    assert_int_equal(a.local.len, 0);
    assert_int_equal(address_parse_mailbox(S("a@"), 0, &a, NULL), -1);
    const char *p;
    size_t pl;
    assert_int_equal(address_parse_mail_arg(S("FROM:<>"), SND, 0, &a, &p, &pl, NULL), 0);
    assert_true(a.is_null);
    address_free(&a);
}

/* ----------------------------------------------------- mutation run */

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Whatever the input, a parse either succeeds with clean parts that format
 * and re-parse to the same address, or fails with a status, a printable
 * message, an offset inside the input and an empty address. */
static int check_invariants(const char *in, size_t n, unsigned flags, struct address *a,
                            struct address *b, strbuf *out)
{
    struct address_error err;
    int rc = address_parse_path(in, n, flags, a, &err);
    if (rc != 0) {
        assert_int_equal(rc, -1);
        assert_int_not_equal(err.status, ADDRESS_OK);
        assert_true(err.text[0] != '\0');
        for (const char *t = err.text; *t; t++)
            assert_true((unsigned char)*t >= 0x20 && (unsigned char)*t <= 0x7E);
        assert_true(err.offset <= n);
        assert_int_equal(a->local.len + a->domain.len + a->local_raw.len + a->domain_raw.len, 0);
        return rc;
    }
    assert_true(n <= ADDRESS_PATH_MAX);
    assert_true(a->local_raw.len <= ADDRESS_LOCAL_MAX);
    assert_true(a->domain_raw.len <= ADDRESS_DOMAIN_MAX);
    const strbuf *parts[] = {&a->local, &a->domain, &a->local_raw, &a->domain_raw};
    for (size_t k = 0; k < 4; k++)
        for (size_t j = 0; j < parts[k]->len; j++) {
            unsigned char c = (unsigned char)parts[k]->data[j];
            assert_true(c >= 0x20 && c != 0x7F);
            if (!(flags & UTF8))
                assert_true(c < 0x80);
        }
    strbuf_reset(out);
    address_format_path(out, a);
    if (address_parse_path(out->data, out->len, flags, b, &err) != 0)
        fail_msg("'%s' formatted as '%s' does not parse: %s", in, out->data, err.text);
    assert_true(strbuf_eq(&b->local, a->local.data));
    assert_true(strbuf_eq(&b->domain, a->domain.data));
    return rc;
}

static void test_mutations(void **state)
{
    (void)state;
    static const char *seeds[] = {
        "<user@example.org>",  "<\"john smith\"@x.org>", "<@a,@b:u@c.org>", "<u@[192.0.2.1]>",
        "<u@[IPv6:2001:db8::1]>", "<>", "<j\xc3\xb6rg@b\xc3\xbc" "cher.de>", "<\"a\\\"b\"@x.org>",
    };
    static const unsigned char interesting[] = {0,    '\r', '\n', '"', '\\', '<', '>',  '@',
                                                '.',  '[',  ']',  ':', ',',  ' ', '-',  0x80,
                                                0xC3, 0xA9, 0xED, 0xF4, 0xFF, 0x7F, 0xC2, 0x85};
    struct address a, b;
    strbuf in, out;
    int accepted = 0, rejected = 0;
    address_init(&a);
    address_init(&b);
    strbuf_init(&in);
    strbuf_init(&out);
    for (int iter = 0; iter < 40000; iter++) {
        strbuf_sets(&in, seeds[rng() % (sizeof(seeds) / sizeof(seeds[0]))]);
        int nmut = 1 + (int)(rng() % 3);
        for (int m = 0; m < nmut; m++) {
            size_t pos = in.len ? rng() % in.len : 0;
            unsigned char c = (rng() & 1) ? interesting[rng() % sizeof(interesting)]
                                          : (unsigned char)rng();
            switch (rng() % 3) {
            case 0: /* replace */
                if (in.len)
                    in.data[pos] = (char)c;
                break;
            case 1: /* insert */
                strbuf_appendc(&in, 0);
                memmove(in.data + pos + 1, in.data + pos, in.len - pos - 1);
                in.data[pos] = (char)c;
                break;
            default: /* delete */
                if (in.len) {
                    memmove(in.data + pos, in.data + pos + 1, in.len - pos - 1);
                    strbuf_truncate(&in, in.len - 1);
                }
                break;
            }
        }
        unsigned flags = (unsigned)(rng() % 8);
        if (check_invariants(in.data, in.len, flags, &a, &b, &out) == 0)
            accepted++;
        else
            rejected++;
    }
    /* Both outcomes must be well represented, or the run proves little. */
    assert_true(accepted > 1000 && rejected > 10000);
    strbuf_free(&in);
    strbuf_free(&out);
    address_free(&a);
    address_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_valid),     cmocka_unit_test(test_path_invalid),
        cmocka_unit_test(test_format_round_trip), cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_mailbox),        cmocka_unit_test(test_mail_arg),
        cmocka_unit_test(test_predicates),     cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_null_err),       cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
