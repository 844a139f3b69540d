/*
 * address_int.h - what the parts of the address module share: the scanner
 * state and its helpers. address.c parses paths, mailboxes and local parts;
 * address_domain.c parses domains and address literals; address_format.c
 * writes addresses back and answers questions about them. Not for use
 * outside lib/mail/address*.c.
 */
#ifndef PETREL_ADDRESS_INT_H
#define PETREL_ADDRESS_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "mail/address.h"

/* Scanner state. s[0..n) is all the text the caller gave; i moves forward. */
struct parser {
    const unsigned char *s;
    size_t n;
    size_t i;
    unsigned flags;
    struct address_error *err;
    bool utf8; /* non-ASCII seen since the last reset of this flag */
};

/* Where a domain begins and ends, and its canonical form for a literal. */
struct domain_span {
    size_t start, end;
    bool literal;
    int family;
    char canon[INET6_ADDRSTRLEN + 8]; /* "[IPv6:" + address + "]" */
};

/* RFC 5321 atext: ASCII letters, digits and !#$%&'*+-/=?^_`{|}~ (the
 * characters of a Dot-string atom). Non-ASCII is handled by the callers. */
bool address_is_atext(unsigned char c);

static inline bool is_let_dig(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive ASCII comparison of exactly n bytes (no locale). */
static inline bool ascii_ieq(const unsigned char *a, const char *b, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (ascii_lower(a[k]) != ascii_lower((unsigned char)b[k]))
            return false;
    return true;
}

static inline bool at_end(const struct parser *p)
{
    return p->i >= p->n;
}

/* The byte at p->i, or -1 at the end. */
static inline int peek(const struct parser *p)
{
    return at_end(p) ? -1 : p->s[p->i];
}

/* address_fail: records the error (status, offset, formatted message) in
 * p->err; returns -1 so that callers can "return address_fail(...)". */
int address_fail(struct parser *p, enum address_status st, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* address_bad_byte: reports the byte at s[at] (at < n), not allowed in
 * `where`, naming what it is (NUL, control, bad or unwanted UTF-8, or a
 * plain character out of place). Returns -1. */
int address_bad_byte(struct parser *p, size_t at, const char *where);

/* address_take_utf8: consumes one non-ASCII character at p->i if it is
 * allowed (ADDRESS_ALLOW_UTF8, well-formed, not a C1 control) and notes
 * p->utf8; otherwise reports it and returns -1. */
int address_take_utf8(struct parser *p, const char *where);

/* address_scan_domain: scans a Domain at p->i (or, when allow_literal, an
 * address literal) and records its extent in *d; stops at the first byte
 * that cannot continue it, leaving the check of that byte to the caller.
 * `where` names the part in messages ("domain", "source route"). */
int address_scan_domain(struct parser *p, bool allow_literal, const char *where,
                        struct domain_span *d);

#endif
