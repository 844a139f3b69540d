/*
 * address.c - parsing of envelope addresses: RFC 5321 Path and Mailbox with
 * the RFC 6531 (SMTPUTF8) extensions; see address.h for the contract and for
 * the choices made where the RFCs leave room.
 *
 * The parser is a hand-written scanner over (pointer, length): it first
 * finds where each part begins and ends, checks it, and only copies text
 * into the result once the whole address is known to be good, so a failed
 * parse leaves nothing half-filled. Every rejected byte goes through
 * address_bad_byte(), which names the problem (NUL, control character,
 * invalid or unwanted UTF-8, or a plain character out of place) and where it
 * was found. Domains and address literals are in address_domain.c.
 */
#include "mail/address.h"
#include "mail/address_int.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool address_is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

int address_fail(struct parser *p, enum address_status st, size_t at, const char *fmt, ...)
{
    p->err->status = st;
    p->err->offset = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
    va_end(ap);
    return -1;
}

/* Reports the byte at s[at] (at < n), which is not allowed in `where`. */
int address_bad_byte(struct parser *p, size_t at, const char *where)
{
    unsigned char c = p->s[at];
    if (c == '\0')
        return address_fail(p, ADDRESS_ERR_NUL_BYTE, at, "NUL byte in %s", where);
    if (c < 0x20 || c == 0x7F)
        return address_fail(p, ADDRESS_ERR_CONTROL_CHAR, at,
                            "invalid control character 0x%02X in %s", c, where);
    if (c >= 0x80) {
        if (!(p->flags & ADDRESS_ALLOW_UTF8))
            return address_fail(p, ADDRESS_ERR_UTF8_NOT_ALLOWED, at,
                                "non-ASCII character in %s requires SMTPUTF8", where);
        uint32_t cp;
        if (utf8_decode(p->s + at, p->n - at, &cp) == 0)
            return address_fail(p, ADDRESS_ERR_UTF8_INVALID, at,
                                "invalid UTF-8 (byte 0x%02X) in %s", c, where);
        if (utf8_is_c1(cp))
            return address_fail(p, ADDRESS_ERR_CONTROL_CHAR, at,
                                "invalid control character U+%04X in %s", (unsigned)cp, where);
        return address_fail(p, ADDRESS_ERR_BAD_CHAR, at, "character U+%04X is not allowed in %s",
                            (unsigned)cp, where);
    }
    if (c == ' ')
        return address_fail(p, ADDRESS_ERR_BAD_CHAR, at, "invalid character (space) in %s", where);
    return address_fail(p, ADDRESS_ERR_BAD_CHAR, at, "invalid character '%c' in %s", c, where);
}

/* Consumes one non-ASCII character at p->i if it is allowed (SMTPUTF8 given,
 * well-formed, not a C1 control); otherwise reports it. */
int address_take_utf8(struct parser *p, const char *where)
{
    uint32_t cp = 0;
    size_t k = 0;
    if (p->flags & ADDRESS_ALLOW_UTF8)
        k = utf8_decode(p->s + p->i, p->n - p->i, &cp);
    if (k == 0 || utf8_is_c1(cp))
        return address_bad_byte(p, p->i, where);
    p->i += k;
    p->utf8 = true;
    return 0;
}

/* Quoted-string (RFC 5321 §4.1.2): DQUOTE *(qtextSMTP / quoted-pairSMTP)
 * DQUOTE, qtextSMTP extended by UTF-8 (RFC 6531). p->i is at the DQUOTE. */
static int scan_quoted(struct parser *p)
{
    const char *where = "quoted local part";
    size_t open = p->i++;
    for (;;) {
        if (at_end(p))
            return address_fail(p, ADDRESS_ERR_UNBALANCED_QUOTES, open,
                                "unbalanced quotes: quoted local part is not closed");
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c == '\\') {
            if (p->i + 1 >= p->n)
                return address_fail(p, ADDRESS_ERR_UNBALANCED_QUOTES, open,
                                    "unbalanced quotes: quoted local part is not closed");
            unsigned char d = p->s[p->i + 1];
            if (d < 32 || d > 126)
                return address_bad_byte(p, p->i + 1, "quoted local part (after a backslash)");
            p->i += 2;
        } else if (c >= 0x80) {
            if (address_take_utf8(p, where) < 0)
                return -1;
        } else if (c >= 32 && c <= 126) {
            p->i++;
        } else {
            return address_bad_byte(p, p->i, where);
        }
    }
    if (p->i - open == 2)
        return address_fail(p, ADDRESS_ERR_LOCAL_EMPTY, open,
                            "empty quoted local part \"\" is not accepted");
    return 0;
}

/* Dot-string (RFC 5321 §4.1.2): Atom *("." Atom), atoms of atext or UTF-8.
 * Stops at the first byte that cannot continue it. */
static int scan_dot_string(struct parser *p)
{
    const char *where = "local part";
    size_t start = p->i;
    for (;;) {
        size_t atom = p->i;
        while (!at_end(p)) {
            unsigned char c = p->s[p->i];
            if (c >= 0x80) {
                if (address_take_utf8(p, where) < 0)
                    return -1;
            } else if (address_is_atext(c)) {
                p->i++;
            } else {
                break;
            }
        }
        if (p->i == atom) {
            int c = peek(p);
            bool stop = c == -1 || c == '@' || c == '>';
            if (atom == start) {
                if (c == '.')
                    return address_fail(p, ADDRESS_ERR_LOCAL_DOTS, p->i,
                                        "local part starts with a dot");
                if (stop)
                    return address_fail(p, ADDRESS_ERR_LOCAL_EMPTY, p->i, "empty local part");
            } else {
                if (c == '.')
                    return address_fail(p, ADDRESS_ERR_LOCAL_DOTS, p->i,
                                        "local part has two dots in a row");
                if (stop)
                    return address_fail(p, ADDRESS_ERR_LOCAL_DOTS, p->i - 1,
                                        "local part ends with a dot");
            }
            return address_bad_byte(p, p->i, where);
        }
        if (peek(p) != '.')
            return 0;
        p->i++;
    }
}

/* Copies the checked parts into *a. */
static void store(struct parser *p, struct address *a, size_t ls, size_t le, bool quoted,
                  const struct domain_span *d, bool utf8)
{
    const char *s = (const char *)p->s;
    strbuf_set(&a->local_raw, s + ls, le - ls);
    a->local_quoted = quoted;
    if (quoted) {
        for (size_t k = ls + 1; k < le - 1; k++) {
            if (s[k] == '\\')
                k++;
            strbuf_appendc(&a->local, s[k]);
        }
    } else {
        strbuf_set(&a->local, s + ls, le - ls);
    }
    if (d != NULL) {
        strbuf_set(&a->domain_raw, s + d->start, d->end - d->start);
        if (d->literal) {
            strbuf_sets(&a->domain, d->canon);
        } else {
            strbuf_reserve(&a->domain, d->end - d->start);
            for (size_t k = d->start; k < d->end; k++)
                strbuf_appendc(&a->domain, (char)ascii_lower(p->s[k]));
        }
        a->domain_is_literal = d->literal;
        a->literal_family = d->family;
    }
    a->needs_smtputf8 = utf8;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), ending at `term`
 * ('>' inside a path) or at the end of the text (term == 0). */
static int parse_mailbox_at(struct parser *p, struct address *a, int term)
{
    size_t ls = p->i;

    /* RFC 5321 §4.1.1.3: "RCPT TO:<Postmaster>" without a domain. */
    if ((p->flags & ADDRESS_ALLOW_POSTMASTER) && term == '>' && p->n - ls >= 11 &&
        ascii_ieq(p->s + ls, "postmaster", 10) && p->s[ls + 10] == '>') {
        p->i = ls + 10;
        store(p, a, ls, p->i, false, NULL, false);
        a->is_postmaster = true;
        return 0;
    }

    p->utf8 = false;
    bool quoted = peek(p) == '"';
    if ((quoted ? scan_quoted(p) : scan_dot_string(p)) < 0)
        return -1;
    size_t le = p->i;
    if (le - ls > ADDRESS_LOCAL_MAX)
        return address_fail(p, ADDRESS_ERR_LOCAL_TOO_LONG, ls,
                            "local part too long (%zu octets, at most %d)", le - ls,
                            ADDRESS_LOCAL_MAX);

    int c = peek(p);
    if (c != '@') {
        if (c == -1 && term == '>')
            return address_fail(p, ADDRESS_ERR_UNBALANCED_BRACKETS, p->i,
                                "unbalanced '<': missing closing '>'");
        if (c == term || c == -1) {
            if (term == 0 && (p->flags & ADDRESS_ALLOW_NO_DOMAIN)) {
                store(p, a, ls, le, quoted, NULL, p->utf8);
                return 0;
            }
            return address_fail(p, ADDRESS_ERR_NO_DOMAIN, p->i,
                                "address has no domain (missing '@')");
        }
        if (quoted)
            return address_fail(p, ADDRESS_ERR_BAD_CHAR, p->i,
                                "quoted local part must be followed by '@'");
        return address_bad_byte(p, p->i, "local part");
    }
    p->i++;

    struct domain_span d;
    if (address_scan_domain(p, true, "domain", &d) < 0)
        return -1;
    c = peek(p);
    if (c == -1 && term == '>')
        return address_fail(p, ADDRESS_ERR_UNBALANCED_BRACKETS, p->i,
                            "unbalanced '<': missing closing '>'");
    if (c != -1 && c != term)
        return address_bad_byte(p, p->i,
                                d.literal ? "domain (after the address literal)" : "domain");
    store(p, a, ls, le, quoted, &d, p->utf8);
    return 0;
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">", or "<>" when allowed; p->i is at
 * the '<'. On success p->i is just past the '>'. */
static int parse_path_at(struct parser *p, struct address *a)
{
    size_t open = p->i;
    if (at_end(p))
        return address_fail(p, ADDRESS_ERR_EMPTY, p->i, "empty address");
    if (p->s[p->i] != '<')
        return address_fail(p, ADDRESS_ERR_NO_BRACKETS, p->i, "address must be enclosed in <>");
    p->i++;

    if (peek(p) == '>') {
        if (!(p->flags & ADDRESS_ALLOW_NULL))
            return address_fail(p, ADDRESS_ERR_NULL_NOT_ALLOWED, open,
                                "null address <> is not allowed here");
        p->i++;
        a->is_null = true;
        return 0;
    }

    if (peek(p) == '@') {
        /* A-d-l = At-domain *( "," At-domain ); checked, then dropped. */
        for (;;) {
            p->i++; /* the '@' */
            struct domain_span d;
            if (address_scan_domain(p, false, "source route", &d) < 0)
                return -1;
            int c = peek(p);
            if (c == ',') {
                p->i++;
                if (peek(p) != '@')
                    return address_fail(p, ADDRESS_ERR_ROUTE_SYNTAX, p->i,
                                        "source route: expected '@' after ','");
                continue;
            }
            if (c == ':') {
                p->i++;
                break;
            }
            if (c == -1)
                return address_fail(p, ADDRESS_ERR_UNBALANCED_BRACKETS, p->i,
                                    "unbalanced '<': missing closing '>'");
            if (c == '>')
                return address_fail(p, ADDRESS_ERR_ROUTE_SYNTAX, p->i,
                                    "source route must end with ':' and a mailbox");
            return address_bad_byte(p, p->i, "source route");
        }
        if (at_end(p))
            return address_fail(p, ADDRESS_ERR_UNBALANCED_BRACKETS, p->i,
                                "unbalanced '<': missing closing '>'");
        if (peek(p) == '>')
            return address_fail(p, ADDRESS_ERR_ROUTE_SYNTAX, p->i,
                                "source route with no mailbox after it");
        a->had_source_route = true;
    }

    if (parse_mailbox_at(p, a, '>') < 0)
        return -1;
    p->i++; /* the '>' (parse_mailbox_at stopped there) */
    if (p->i - open > ADDRESS_PATH_MAX)
        return address_fail(p, ADDRESS_ERR_PATH_TOO_LONG, open,
                            "address too long (%zu octets, at most %d)", p->i - open,
                            ADDRESS_PATH_MAX);
    return 0;
}

void address_init(struct address *a)
{
    strbuf_init(&a->local_raw);
    strbuf_init(&a->local);
    strbuf_init(&a->domain_raw);
    strbuf_init(&a->domain);
    address_reset(a);
}

void address_free(struct address *a)
{
    strbuf_free(&a->local_raw);
    strbuf_free(&a->local);
    strbuf_free(&a->domain_raw);
    strbuf_free(&a->domain);
}

void address_reset(struct address *a)
{
    strbuf_reset(&a->local_raw);
    strbuf_reset(&a->local);
    strbuf_reset(&a->domain_raw);
    strbuf_reset(&a->domain);
    a->is_null = false;
    a->is_postmaster = false;
    a->had_source_route = false;
    a->domain_is_literal = false;
    a->literal_family = 0;
    a->needs_smtputf8 = false;
    a->local_quoted = false;
}

/* Sets up a parser; a NUL byte anywhere in s[0..n) fails at once, so no
 * later step (or caller) can be fooled by a C string ending early. */
static int parser_start(struct parser *p, const char *s, size_t n, unsigned flags,
                        struct address *a, struct address_error *err)
{
    p->s = (const unsigned char *)s;
    p->n = n;
    p->i = 0;
    p->flags = flags;
    p->err = err;
    p->utf8 = false;
    err->status = ADDRESS_OK;
    err->offset = 0;
    err->text[0] = '\0';
    address_reset(a);
    const char *nul = n ? memchr(s, '\0', n) : NULL;
    if (nul != NULL)
        return address_fail(p, ADDRESS_ERR_NUL_BYTE, (size_t)(nul - s), "NUL byte in address");
    return 0;
}

/* Common ending: on failure the address is left empty. */
static int parser_finish(struct parser *p, struct address *a, int rc)
{
    (void)p;
    if (rc < 0)
        address_reset(a);
    return rc;
}

int address_parse_path(const char *s, size_t n, unsigned flags, struct address *a,
                       struct address_error *err)
{
    struct address_error scratch;
    struct parser p;
    flags &= ~(unsigned)ADDRESS_ALLOW_NO_DOMAIN;
    int rc = parser_start(&p, s, n, flags, a, err ? err : &scratch);
    if (rc == 0)
        rc = parse_path_at(&p, a);
    if (rc == 0 && p.i < n)
        rc = p.s[p.i] < 0x20 || p.s[p.i] == 0x7F
                 ? address_bad_byte(&p, p.i, "text after '>'")
                 : address_fail(&p, ADDRESS_ERR_TRAILING_JUNK, p.i, "unexpected text after '>'");
    return parser_finish(&p, a, rc);
}

int address_parse_mailbox(const char *s, size_t n, unsigned flags, struct address *a,
                          struct address_error *err)
{
    struct address_error scratch;
    struct parser p;
    flags &= ~(unsigned)(ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_POSTMASTER);
    int rc = parser_start(&p, s, n, flags, a, err ? err : &scratch);
    if (rc == 0 && n == 0)
        rc = address_fail(&p, ADDRESS_ERR_EMPTY, 0, "empty address");
    if (rc == 0)
        rc = parse_mailbox_at(&p, a, 0);
    if (rc == 0 && n > ADDRESS_MAILBOX_MAX)
        rc = address_fail(&p, ADDRESS_ERR_PATH_TOO_LONG, 0,
                          "address too long (%zu octets, at most %d)", n, ADDRESS_MAILBOX_MAX);
    return parser_finish(&p, a, rc);
}

int address_parse_mail_arg(const char *s, size_t n, enum address_role role, unsigned flags,
                           struct address *a, const char **params_r, size_t *params_len_r,
                           struct address_error *err)
{
    struct address_error scratch;
    struct parser p;
    bool sender = role == ADDRESS_ROLE_SENDER;
    const char *kw = sender ? "FROM:" : "TO:";
    const char *syntax = sender ? "syntax: MAIL FROM:<address>" : "syntax: RCPT TO:<address>";
    size_t kwlen = strlen(kw);

    flags &= ~(unsigned)(ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_POSTMASTER | ADDRESS_ALLOW_NO_DOMAIN);
    flags |= sender ? ADDRESS_ALLOW_NULL : ADDRESS_ALLOW_POSTMASTER;
    *params_r = s + n;
    *params_len_r = 0;
    int rc = parser_start(&p, s, n, flags, a, err ? err : &scratch);
    if (rc < 0)
        return parser_finish(&p, a, rc);
    if (n < kwlen || !ascii_ieq(p.s, kw, kwlen))
        return parser_finish(&p, a, address_fail(&p, ADDRESS_ERR_COMMAND_SYNTAX, 0, "%s", syntax));
    p.i = kwlen;
    /* Lenient: "MAIL FROM: <a@b>" is sent by enough clients to matter. */
    while (peek(&p) == ' ')
        p.i++;
    if (at_end(&p))
        return parser_finish(&p, a,
                             address_fail(&p, ADDRESS_ERR_COMMAND_SYNTAX, p.i, "%s", syntax));
    if (peek(&p) != '<')
        return parser_finish(&p, a,
                             address_fail(&p, ADDRESS_ERR_NO_BRACKETS, p.i,
                                          "address must be enclosed in <> (%s)", syntax));
    rc = parse_path_at(&p, a);
    if (rc == 0 && !at_end(&p)) {
        if (peek(&p) != ' ')
            rc = p.s[p.i] < 0x20 || p.s[p.i] == 0x7F
                     ? address_bad_byte(&p, p.i, "text after '>'")
                     : address_fail(&p, ADDRESS_ERR_TRAILING_JUNK, p.i,
                                    "unexpected text after '>' (parameters must follow a space)");
        while (peek(&p) == ' ')
            p.i++;
    }
    if (rc == 0) {
        *params_r = s + p.i;
        *params_len_r = n - p.i;
    }
    return parser_finish(&p, a, rc);
}
