/*
 * cidr.c - network lists and address matching; see cidr.h.
 */
#include "mail/cidr.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char *parse_entry(const char *tok, struct cidr_entry *e)
{
    char buf[80];
    size_t n = strlen(tok);
    if (n >= sizeof(buf))
        return "too long";
    memcpy(buf, tok, n + 1);
    char *slash = strchr(buf, '/');
    char *prefix = NULL;
    if (slash) {
        *slash = '\0';
        prefix = slash + 1;
    }
    char *host = buf;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        host++;
        if (strchr(host, ':') == NULL)
            return "brackets are for IPv6 addresses";
    }
    memset(e, 0, sizeof(*e));
    unsigned max;
    if (inet_pton(AF_INET, host, e->addr) == 1) {
        e->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, e->addr) == 1) {
        e->family = AF_INET6;
        max = 128;
    } else {
        return "not an IPv4 or IPv6 address";
    }
    e->prefix = max;
    if (prefix) {
        if (*prefix == '\0' || strlen(prefix) > 3)
            return "bad prefix length";
        unsigned v = 0;
        for (const char *p = prefix; *p; p++) {
            if (*p < '0' || *p > '9')
                return "bad prefix length";
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > max)
            return "prefix length too large";
        e->prefix = v;
    }
    unsigned bytes = max / 8;
    for (unsigned i = 0; i < bytes; i++) {
        unsigned bit0 = i * 8;
        unsigned char mask;
        if (bit0 + 8 <= e->prefix)
            mask = 0xff;
        else if (bit0 >= e->prefix)
            mask = 0;
        else
            mask = (unsigned char)(0xff << (8 - (e->prefix - bit0)));
        if (e->addr[i] & (unsigned char)~mask)
            return "host bits set below the prefix length";
    }
    return NULL;
}

int cidr_list_parse(struct cidr_list *list, const char *text, const char *where, strbuf *err)
{
    int nerr = 0;
    const char *p = text;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, ", \t\r\n");
        char *tok = xstrndup(p, n);
        p += n;
        struct cidr_entry e;
        const char *why = parse_entry(tok, &e);
        if (why) {
            strbuf_printf(err, "%s: invalid network '%s': %s\n", where, tok, why);
            nerr++;
        } else {
            list->entries = xreallocarray(list->entries, list->count + 1, sizeof(e));
            list->entries[list->count++] = e;
        }
        free(tok);
    }
    return nerr;
}

void cidr_list_free(struct cidr_list *list)
{
    free(list->entries);
    list->entries = NULL;
    list->count = 0;
}

static bool match_bytes(const struct cidr_entry *e, const unsigned char *a)
{
    unsigned full = e->prefix / 8, rest = e->prefix % 8;
    if (memcmp(e->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == e->addr[full];
}

static bool match_family(const struct cidr_list *list, int family, const unsigned char *a)
{
    for (size_t i = 0; i < list->count; i++)
        if (list->entries[i].family == family && match_bytes(&list->entries[i], a))
            return true;
    return false;
}

bool cidr_match(const struct cidr_list *list, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return match_family(list, AF_INET, (const unsigned char *)&in->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return match_family(list, AF_INET, a + 12) || match_family(list, AF_INET6, a);
        return match_family(list, AF_INET6, a);
    }
    return false;
}

bool cidr_match_text(const struct cidr_list *list, const char *addr)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    memset(&s6, 0, sizeof(s6));
    memset(&s4, 0, sizeof(s4));
    if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        return cidr_match(list, (struct sockaddr *)&s4);
    }
    if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        return cidr_match(list, (struct sockaddr *)&s6);
    }
    return false;
}
