/*
 * header_addr.c - parsing RFC 5322 §3.4 address lists (From, To, Cc, Bcc,
 * Reply-To...) into envelope addresses, for "sendmail -t", submission's
 * From: checks and bounces. See header.h for the contract.
 *
 * A small lexer turns the unfolded value into tokens (atoms, quoted strings,
 * domain literals, special characters), skipping whitespace and comments;
 * a recursive-descent parser with one token of lookahead reads the list.
 * Each byte is looked at a bounded number of times, so the cost is linear
 * in the value whatever it holds: 10k addresses or a "((((..." bomb (the
 * comment depth is capped) cannot make it quadratic. The addr-spec found is
 * rebuilt without comments and whitespace and then checked and normalised by
 * address_parse_mailbox(), so header and envelope addresses obey the same
 * rules.
 */
#include "mail/header.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/address.h"
#include "util/log.h"
#include "util/utf8.h"
#include "util/xalloc.h"

/* How much of a bad list element is quoted in an error message. */
#define ELEMENT_QUOTE_MAX 64

enum tok_kind { TK_END, TK_ATOM, TK_QSTRING, TK_LITERAL, TK_SPECIAL };

struct tok {
    enum tok_kind kind;
    char ch;          /* the character of a TK_SPECIAL */
    size_t start, end;
    bool ws_before;   /* whitespace or a comment came before it */
};

/* A word or a dot of a phrase or local part: a token kept for later. */
struct item {
    enum tok_kind kind; /* TK_ATOM, TK_QSTRING or TK_SPECIAL ('.') */
    size_t start, end;
    bool ws_before;
};

struct parser {
    const char *s;
    size_t n, pos;          /* pos: where the lexer continues */
    struct tok tok;         /* the lookahead */
    strbuf *err;
    size_t elem_start;      /* where the current list element began */
    size_t elem_no;         /* its number, from 1, for error messages */
    bool in_group;
    struct item *items;
    size_t n_items, cap_items;
    struct header_address *list;
    size_t n_list, cap_list;
    strbuf local, domain, name, spec;
    struct address addr;
};

static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
        return true; /* 8-bit: RFC 6532 UTF-8, checked later where it matters */
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Error "address N ("element text"): why", element text from elem_start to
 * at, shortened and made printable. Always returns -1. */
static int perr(struct parser *p, size_t at, const char *why)
{
    if (p->err == NULL)
        return -1;
    size_t from = p->elem_start;
    while (from < p->n && (p->s[from] == ' ' || p->s[from] == '\t'))
        from++;
    if (at > p->n)
        at = p->n;
    if (at < from)
        at = from;
    size_t to = at;
    bool cut = false;
    if (to - from > ELEMENT_QUOTE_MAX) {
        to = from + ELEMENT_QUOTE_MAX;
        while (to > from && ((unsigned char)p->s[to] & 0xc0) == 0x80)
            to--; /* do not split a UTF-8 sequence */
        cut = true;
    }
    while (to > from && (p->s[to - 1] == ' ' || p->s[to - 1] == '\t' || p->s[to - 1] == ','))
        to--;
    strbuf_reset(p->err);
    strbuf_printf(p->err, "address %zu (\"", p->elem_no);
    log_sanitize(p->err, p->s + from, to - from);
    strbuf_printf(p->err, "%s\"): %s", cut ? "..." : "", why);
    return -1;
}

/* The error for a control character or NUL at s[i]. */
static int ctl_err(struct parser *p, size_t i)
{
    unsigned char c = (unsigned char)p->s[i];
    char why[80];
    if (c == '\0')
        snprintf(why, sizeof(why), "NUL byte at offset %zu", i);
    else
        snprintf(why, sizeof(why), "control character 0x%02x at offset %zu", c, i);
    return perr(p, i + 1, why);
}

/* Skips the comment that starts at s[*ip] == '(' (nested, with
 * quoted-pairs): returns 0 with *ip past it, or -1 with the error set. */
static int skip_comment(struct parser *p, size_t *ip)
{
    size_t i = *ip;
    unsigned depth = 0;
    while (i < p->n) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '(') {
            if (++depth > HEADER_COMMENT_DEPTH_MAX)
                return perr(p, i + 1, "comments nested more than 64 deep");
        } else if (c == ')') {
            if (--depth == 0) {
                *ip = i + 1;
                return 0;
            }
        } else if (c == '\\') {
            if (++i >= p->n)
                break;
            if (is_ctl((unsigned char)p->s[i]))
                return ctl_err(p, i);
        } else if (is_ctl(c)) {
            return ctl_err(p, i);
        }
        i++;
    }
    return perr(p, p->n, "unterminated comment: '(' without its ')'");
}

/* Scans a quoted string or domain literal opened at s[i] (close: '"' or
 * ']'); sets *end_r past the closing character. */
static int scan_quoted(struct parser *p, size_t i, char close, size_t *end_r)
{
    for (i++; i < p->n; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == (unsigned char)close) {
            *end_r = i + 1;
            return 0;
        }
        if (c == '\\') {
            if (++i >= p->n)
                break;
            c = (unsigned char)p->s[i];
        } else if (close == ']' && c == '[') {
            return perr(p, i + 1, "'[' inside a domain literal");
        }
        if (is_ctl(c))
            return ctl_err(p, i);
    }
    return perr(p, p->n, close == '"' ? "unterminated quoted string: '\"' without its closing '\"'"
                                      : "unterminated domain literal: '[' without its ']'");
}

/* Reads the next token into p->tok, skipping whitespace and comments. */
static int lex(struct parser *p)
{
    size_t i = p->pos;
    bool ws = false;
    for (;;) {
        if (i < p->n && (p->s[i] == ' ' || p->s[i] == '\t')) {
            i++;
            ws = true;
        } else if (i < p->n && p->s[i] == '(') {
            if (skip_comment(p, &i) < 0)
                return -1;
            ws = true;
        } else {
            break;
        }
    }
    struct tok *t = &p->tok;
    t->ws_before = ws;
    t->start = i;
    t->ch = 0;
    if (i >= p->n) {
        t->kind = TK_END;
        t->end = i;
    } else {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"' || c == '[') {
            t->kind = c == '"' ? TK_QSTRING : TK_LITERAL;
            if (scan_quoted(p, i, c == '"' ? '"' : ']', &t->end) < 0)
                return -1;
        } else if (is_ctl(c)) {
            return ctl_err(p, i);
        } else if (is_atext(c)) {
            t->kind = TK_ATOM;
            while (i < p->n && is_atext((unsigned char)p->s[i]))
                i++;
            t->end = i;
        } else if (strchr("<>:;@,.", c) != NULL) {
            t->kind = TK_SPECIAL;
            t->ch = (char)c;
            t->end = i + 1;
        } else if (c == ')') {
            return perr(p, i + 1, "')' without its '('");
        } else {
            char why[64];
            snprintf(why, sizeof(why), "unexpected character '%c'", c);
            return perr(p, i + 1, why);
        }
    }
    p->pos = t->end;
    return 0;
}

static bool tok_is(const struct parser *p, char ch)
{
    return p->tok.kind == TK_SPECIAL && p->tok.ch == ch;
}

/* Collects words (atoms, quoted strings) and dots into p->items. */
static int collect_items(struct parser *p)
{
    p->n_items = 0;
    while (p->tok.kind == TK_ATOM || p->tok.kind == TK_QSTRING || tok_is(p, '.')) {
        if (p->n_items == p->cap_items) {
            p->cap_items = p->cap_items ? p->cap_items * 2 : 8;
            p->items = xreallocarray(p->items, p->cap_items, sizeof(*p->items));
        }
        p->items[p->n_items++] = (struct item){ p->tok.kind, p->tok.start, p->tok.end,
                                                p->tok.ws_before };
        if (lex(p) < 0)
            return -1;
    }
    return 0;
}

/* Appends the content of the quoted string s[start..end) (quotes included),
 * quoted-pairs resolved. */
static void append_unquoted(strbuf *out, const char *s, size_t start, size_t end)
{
    for (size_t i = start + 1; i + 1 < end; i++) {
        if (s[i] == '\\')
            i++;
        strbuf_appendc(out, s[i]);
    }
}

/* The display name from p->items: words decoded, joined by one space where
 * the input had whitespace or a comment. */
static void items_to_name(struct parser *p, strbuf *out)
{
    strbuf_reset(out);
    for (size_t k = 0; k < p->n_items; k++) {
        const struct item *it = &p->items[k];
        if (k > 0 && it->ws_before)
            strbuf_appendc(out, ' ');
        if (it->kind == TK_QSTRING)
            append_unquoted(out, p->s, it->start, it->end);
        else
            strbuf_append(out, p->s + it->start, it->end - it->start);
    }
}

/* The local part from p->items, as text that address_parse_mailbox takes:
 * written as is when it is atoms and dots or one quoted string; the
 * obsolete mixes ("a"."b", RFC 5322 §4.4) become one quoted string. */
static int items_to_local(struct parser *p, strbuf *out)
{
    strbuf_reset(out);
    bool quoted = false;
    for (size_t k = 0; k < p->n_items; k++) {
        if (p->items[k].kind != TK_SPECIAL) {
            if (k > 0 && p->items[k - 1].kind != TK_SPECIAL)
                return perr(p, p->items[k].end, "words separated by spaces where an address "
                                                "was expected (a display name without <address>?)");
            if (p->items[k].kind == TK_QSTRING)
                quoted = true;
        }
    }
    if (!quoted || p->n_items == 1) {
        for (size_t k = 0; k < p->n_items; k++)
            strbuf_append(out, p->s + p->items[k].start, p->items[k].end - p->items[k].start);
        return 0;
    }
    /* Words and dots must alternate, starting and ending with a word. */
    for (size_t k = 0; k < p->n_items; k++)
        if ((p->items[k].kind == TK_SPECIAL) != (k % 2 == 1) || p->n_items % 2 == 0)
            return perr(p, p->items[k].end, "misplaced '.' in the local part");
    strbuf_appendc(out, '"');
    for (size_t k = 0; k < p->n_items; k++) {
        const struct item *it = &p->items[k];
        size_t from = it->kind == TK_QSTRING ? it->start + 1 : it->start;
        size_t to = it->kind == TK_QSTRING ? it->end - 1 : it->end;
        for (size_t i = from; i < to; i++) {
            char c = p->s[i];
            if (c == '\\' && it->kind == TK_QSTRING)
                c = p->s[++i];
            if (c == '"' || c == '\\')
                strbuf_appendc(out, '\\');
            strbuf_appendc(out, c);
        }
    }
    strbuf_appendc(out, '"');
    return 0;
}

/* Reads a domain (atoms separated by dots, or a domain literal) into out. */
static int parse_domain(struct parser *p, strbuf *out)
{
    strbuf_reset(out);
    if (p->tok.kind == TK_LITERAL) {
        for (size_t i = p->tok.start; i < p->tok.end; i++)
            if (p->s[i] != ' ' && p->s[i] != '\t') /* FWS inside is obsolete */
                strbuf_appendc(out, p->s[i]);
        return lex(p);
    }
    if (p->tok.kind != TK_ATOM)
        return perr(p, p->tok.end, "the domain after '@' is missing");
    for (;;) {
        strbuf_append(out, p->s + p->tok.start, p->tok.end - p->tok.start);
        if (lex(p) < 0)
            return -1;
        if (!tok_is(p, '.'))
            return 0;
        if (lex(p) < 0)
            return -1;
        if (p->tok.kind != TK_ATOM)
            return perr(p, p->tok.end, "the domain has an empty label or ends with '.'");
        strbuf_appendc(out, '.');
    }
}

static bool has_8bit(const strbuf *sb)
{
    for (size_t i = 0; i < sb->len; i++)
        if ((unsigned char)sb->data[i] >= 0x80)
            return true;
    return false;
}

/* Checks the addr-spec in p->local (and p->domain when has_domain) and adds
 * it to the list with display name p->name. */
static int add_address(struct parser *p, bool has_domain, bool had_route)
{
    if (p->n_list >= HEADER_ADDRESSES_MAX)
        return perr(p, p->tok.start, "too many addresses in one header (the limit is 10000)");
    strbuf_reset(&p->spec);
    strbuf_append_sb(&p->spec, &p->local);
    if (has_domain) {
        strbuf_appendc(&p->spec, '@');
        strbuf_append_sb(&p->spec, &p->domain);
    }
    unsigned flags = ADDRESS_ALLOW_NO_DOMAIN;
    if (has_8bit(&p->spec))
        flags |= ADDRESS_ALLOW_UTF8;
    struct address_error aerr;
    if (address_parse_mailbox(p->spec.data, p->spec.len, flags, &p->addr, &aerr) < 0)
        return perr(p, p->tok.start, aerr.text);

    if (p->n_list == p->cap_list) {
        p->cap_list = p->cap_list ? p->cap_list * 2 : 4;
        p->list = xreallocarray(p->list, p->cap_list, sizeof(*p->list));
    }
    struct header_address *ha = &p->list[p->n_list++];
    strbuf_init(&ha->addr);
    strbuf_init(&ha->display_name);
    address_format(&ha->addr, &p->addr);
    strbuf_append_sb(&ha->display_name, &p->name);
    ha->has_domain = has_domain;
    ha->in_group = p->in_group;
    ha->had_route = had_route;
    ha->needs_smtputf8 = p->addr.needs_smtputf8;
    ha->name_utf8_valid = utf8_valid(p->name.data, p->name.len);
    return 0;
}

/* "<" [route ":"] local-part ["@" domain] ">", the display name already in
 * p->name; the lookahead is the '<'. */
static int parse_angle(struct parser *p)
{
    bool had_route = false;
    if (lex(p) < 0)
        return -1;
    if (tok_is(p, '@') || tok_is(p, ',')) {
        /* Obsolete route "@a,@b:" (RFC 5322 §4.4): checked loosely, dropped. */
        for (;;) {
            if (tok_is(p, ',')) {
                if (lex(p) < 0)
                    return -1;
            } else if (tok_is(p, '@')) {
                if (lex(p) < 0 || parse_domain(p, &p->domain) < 0)
                    return -1;
                had_route = true;
            } else if (tok_is(p, ':')) {
                if (lex(p) < 0)
                    return -1;
                break;
            } else {
                return perr(p, p->tok.end, "malformed route: expected \"@domain,...:\" after '<'");
            }
        }
    }
    if (collect_items(p) < 0)
        return -1;
    if (p->n_items == 0 && tok_is(p, '>'))
        return perr(p, p->tok.end, "empty address <>");
    if (p->n_items == 0)
        return perr(p, p->tok.end, "the local part before '@' is missing");
    if (items_to_local(p, &p->local) < 0)
        return -1;
    bool has_domain = false;
    if (tok_is(p, '@')) {
        if (lex(p) < 0 || parse_domain(p, &p->domain) < 0)
            return -1;
        has_domain = true;
    }
    if (!tok_is(p, '>')) {
        if (p->tok.kind == TK_END)
            return perr(p, p->n, "'<' without its '>'");
        return perr(p, p->tok.end, "unexpected text inside <...>");
    }
    if (add_address(p, has_domain, had_route) < 0)
        return -1;
    return lex(p);
}

static int parse_list_body(struct parser *p);

/* One element of the list: a mailbox, or a group with its members. */
static int parse_address(struct parser *p)
{
    if (collect_items(p) < 0)
        return -1;
    strbuf_reset(&p->name);
    if (tok_is(p, '<')) {
        items_to_name(p, &p->name);
        return parse_angle(p);
    }
    if (tok_is(p, ':')) {
        if (p->in_group)
            return perr(p, p->tok.end, "a group inside a group");
        if (p->n_items == 0)
            return perr(p, p->tok.end, "a group without a name before ':'");
        p->in_group = true;
        p->elem_start = p->tok.end;
        p->elem_no = p->n_list + 1;
        if (lex(p) < 0 || parse_list_body(p) < 0)
            return -1;
        p->in_group = false;
        /* A missing ';' at the end of the value is tolerated. */
        return tok_is(p, ';') ? lex(p) : 0;
    }
    if (tok_is(p, '@')) {
        if (p->n_items == 0)
            return perr(p, p->tok.end, "the local part before '@' is missing");
        if (items_to_local(p, &p->local) < 0)
            return -1;
        if (lex(p) < 0 || parse_domain(p, &p->domain) < 0)
            return -1;
        return add_address(p, true, false);
    }
    if (p->n_items > 0 && (p->tok.kind == TK_END || tok_is(p, ',') || tok_is(p, ';'))) {
        if (items_to_local(p, &p->local) < 0) /* a bare local part: "bob" */
            return -1;
        return add_address(p, false, false);
    }
    if (p->tok.kind == TK_LITERAL)
        return perr(p, p->tok.end, "a domain literal without '@' before it");
    char why[64];
    snprintf(why, sizeof(why), "unexpected '%c'", p->tok.ch);
    return perr(p, p->tok.end, why);
}

/* Elements separated by commas, up to the end (or, in a group, the ';',
 * which is left as the lookahead). Empty elements are skipped. */
static int parse_list_body(struct parser *p)
{
    for (;;) {
        while (tok_is(p, ',')) {
            p->elem_start = p->tok.end;
            p->elem_no = p->n_list + 1;
            if (lex(p) < 0)
                return -1;
        }
        if (p->tok.kind == TK_END || (p->in_group && tok_is(p, ';')))
            return 0;
        p->elem_no = p->n_list + 1;
        if (parse_address(p) < 0)
            return -1;
        if (p->tok.kind == TK_END || tok_is(p, ',') || (p->in_group && tok_is(p, ';')))
            continue;
        if (tok_is(p, ';'))
            return perr(p, p->tok.end, "';' outside a group (addresses are separated by ',')");
        return perr(p, p->tok.end, "unexpected text after the address (a missing ','?)");
    }
}

void header_addresses_free(struct header_address **list, size_t n)
{
    if (*list == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        strbuf_free(&(*list)[i].addr);
        strbuf_free(&(*list)[i].display_name);
    }
    free(*list);
    *list = NULL;
}

int header_parse_addresses(const char *value, size_t len, struct header_address **list_r,
                           size_t *n_r, strbuf *err)
{
    struct parser p;
    memset(&p, 0, sizeof(p));
    p.s = value;
    p.n = len;
    p.err = err;
    p.elem_no = 1;
    strbuf_init(&p.local);
    strbuf_init(&p.domain);
    strbuf_init(&p.name);
    strbuf_init(&p.spec);
    address_init(&p.addr);

    int r = lex(&p);
    if (r == 0)
        r = parse_list_body(&p);

    free(p.items);
    strbuf_free(&p.local);
    strbuf_free(&p.domain);
    strbuf_free(&p.name);
    strbuf_free(&p.spec);
    address_free(&p.addr);
    if (r < 0) {
        header_addresses_free(&p.list, p.n_list);
        *list_r = NULL;
        *n_r = 0;
        return -1;
    }
    *list_r = p.list;
    *n_r = p.n_list;
    return 0;
}
