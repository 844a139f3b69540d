/*
 * address_domain.c - the domain half of an envelope address: dot-separated
 * LDH labels (RFC 5321 §4.1.2; U-labels under SMTPUTF8, RFC 6531) and
 * address literals (RFC 5321 §4.1.3), checked with inet_pton and rewritten
 * in canonical form with inet_ntop. Part of the address parser (address.c
 * drives it through address_int.h).
 */
#include "mail/address.h"
#include "mail/address_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Address literal (RFC 5321 §4.1.3): "[" IPv4 "]" or "[IPv6:" IPv6 "]";
 * p->i is at the '['. Other tags are refused as unsupported. */
static int scan_literal(struct parser *p, struct domain_span *d)
{
    const char *where = "address literal";
    size_t open = p->i++;
    size_t cs = p->i;
    while (!at_end(p) && p->s[p->i] != ']') {
        unsigned char c = p->s[p->i];
        /* dcontent: %d33-90 / %d94-126 */
        if (c < 33 || c > 126 || c == '[' || c == '\\')
            return address_bad_byte(p, p->i, where);
        p->i++;
    }
    if (at_end(p))
        return address_fail(p, ADDRESS_ERR_LITERAL_SYNTAX, open,
                            "unterminated address literal: missing ']'");
    size_t ce = p->i++;
    const unsigned char *c = p->s + cs;
    size_t clen = ce - cs;
    if (clen == 0)
        return address_fail(p, ADDRESS_ERR_LITERAL_SYNTAX, open, "empty address literal []");

    const unsigned char *colon = memchr(c, ':', clen);
    char buf[INET6_ADDRSTRLEN + 1];
    if (colon == NULL) {
        struct in_addr a4;
        if (clen >= sizeof(buf))
            return address_fail(p, ADDRESS_ERR_LITERAL_IPV4, cs, "invalid IPv4 address literal");
        memcpy(buf, c, clen);
        buf[clen] = '\0';
        if (inet_pton(AF_INET, buf, &a4) != 1)
            return address_fail(p, ADDRESS_ERR_LITERAL_IPV4, cs, "invalid IPv4 address literal");
        char out[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a4, out, sizeof(out));
        snprintf(d->canon, sizeof(d->canon), "[%s]", out);
        d->family = AF_INET;
        return 0;
    }

    /* Standardized-tag = Ldh-str (letters, digits, hyphens; not ending in '-') */
    size_t taglen = (size_t)(colon - c);
    bool ldh = taglen > 0 && is_let_dig(c[0]) && c[taglen - 1] != '-';
    for (size_t k = 0; ldh && k < taglen; k++)
        ldh = is_let_dig(c[k]) || c[k] == '-';
    if (!ldh)
        return address_fail(p, ADDRESS_ERR_LITERAL_SYNTAX, cs, "malformed address literal tag");
    if (taglen != 4 || !ascii_ieq(c, "IPv6", 4))
        return address_fail(p, ADDRESS_ERR_LITERAL_UNSUPPORTED, cs,
                            "unsupported address literal tag \"%.*s\" (only IPv6 is accepted)",
                            (int)(taglen > 32 ? 32 : taglen), (const char *)c);

    struct in6_addr a6;
    size_t alen = clen - taglen - 1;
    if (alen >= sizeof(buf))
        return address_fail(p, ADDRESS_ERR_LITERAL_IPV6, cs, "invalid IPv6 address literal");
    memcpy(buf, colon + 1, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return address_fail(p, ADDRESS_ERR_LITERAL_IPV6, cs, "invalid IPv6 address literal");
    char out[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, out, sizeof(out));
    snprintf(d->canon, sizeof(d->canon), "[IPv6:%s]", out);
    d->family = AF_INET6;
    return 0;
}

/* Domain (RFC 5321 §4.1.2, U-labels per RFC 6531): labels of letters,
 * digits and hyphens (and UTF-8), joined by dots; or, when allow_literal,
 * an address literal. Stops at the first byte that cannot continue it. */
int address_scan_domain(struct parser *p, bool allow_literal, const char *where,
                        struct domain_span *d)
{
    memset(d, 0, sizeof(*d));
    d->start = p->i;
    if (peek(p) == '[') {
        if (!allow_literal)
            return address_fail(p, ADDRESS_ERR_ROUTE_SYNTAX, p->i,
                                "address literals are not allowed in a source route");
        d->literal = true;
        if (scan_literal(p, d) < 0)
            return -1;
        d->end = p->i;
        return 0;
    }

    for (;;) {
        size_t ls = p->i;
        bool ascii = true;
        while (!at_end(p)) {
            unsigned char c = p->s[p->i];
            if (is_let_dig(c) || c == '-') {
                p->i++;
            } else if (c >= 0x80) {
                if (address_take_utf8(p, where) < 0)
                    return -1;
                ascii = false;
            } else {
                break;
            }
        }
        size_t llen = p->i - ls;
        if (llen == 0) {
            int c = peek(p);
            bool stop = c == -1 || c == '>' || c == ',' || c == ':';
            if (ls == d->start) {
                if (c == '.')
                    return address_fail(p, ADDRESS_ERR_DOMAIN_SYNTAX, p->i, "%s starts with a dot",
                                        where);
                if (stop)
                    return address_fail(p, ADDRESS_ERR_DOMAIN_EMPTY, p->i, "missing %s after '@'",
                                        where);
            } else {
                if (c == '.')
                    return address_fail(p, ADDRESS_ERR_DOMAIN_SYNTAX, p->i,
                                        "%s has two dots in a row", where);
                if (stop)
                    return address_fail(p, ADDRESS_ERR_DOMAIN_SYNTAX, p->i - 1,
                                        "%s ends with a dot (not accepted)", where);
            }
            return address_bad_byte(p, p->i, where);
        }
        if (p->s[ls] == '-')
            return address_fail(p, ADDRESS_ERR_DOMAIN_SYNTAX, ls, "%s label starts with a hyphen",
                                where);
        if (p->s[p->i - 1] == '-')
            return address_fail(p, ADDRESS_ERR_DOMAIN_SYNTAX, p->i - 1,
                                "%s label ends with a hyphen", where);
        if (llen > ADDRESS_LABEL_MAX)
            return address_fail(p, ADDRESS_ERR_LABEL_TOO_LONG, ls,
                                "%s label too long (%zu octets, at most %d)", where, llen,
                                ADDRESS_LABEL_MAX);
        if (!ascii && llen >= 4 && ascii_ieq(p->s + ls, "xn--", 4))
            return address_fail(p, ADDRESS_ERR_DOMAIN_SYNTAX, ls,
                                "%s label starting with \"xn--\" must be ASCII", where);
        if (peek(p) != '.')
            break;
        p->i++;
    }
    d->end = p->i;
    if (d->end - d->start > ADDRESS_DOMAIN_MAX)
        return address_fail(p, ADDRESS_ERR_DOMAIN_TOO_LONG, d->start,
                            "%s too long (%zu octets, at most %d)", where, d->end - d->start,
                            ADDRESS_DOMAIN_MAX);
    return 0;
}
