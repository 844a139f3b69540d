/*
 * dns_client.c - naming an SMTP client by forward-confirmed reverse DNS
 * (PTR of the address, then A/AAAA of that name, which must lead back to
 * the address); see dns.h. Everything that goes wrong gives "unknown": a
 * server must keep serving whatever the client's DNS says.
 *
 * PTR answers are hostile input: c-ares parses them (it refuses malformed
 * names and compression loops, and follows a CNAME only within the one
 * answer, so a CNAME loop cannot make it query forever); we take the first
 * name only, and only when it is a strict host name.
 */
#include "mail/dns.h"
#include "util/netio.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct ptr_query {
    bool done;
    int status;
    char name[254];
    bool have_name;
};

struct fwd_query {
    bool done;
    int status;
    int family;
    const void *addr; /* struct in_addr or in6_addr */
    bool confirmed;
};

/* A stricter check than dns_valid_hostname: no '_' (a client name ends up
 * in logs and Received: headers; Postfix's rule as the brief states it). */
static bool strict_hostname(const char *name)
{
    return dns_valid_hostname(name) && strchr(name, '_') == NULL;
}

static void ptr_cb(void *arg, int status, int timeouts, struct hostent *h)
{
    (void)timeouts;
    struct ptr_query *q = arg;
    q->done = true;
    q->status = status;
    if (status != ARES_SUCCESS || h == NULL || h->h_name == NULL)
        return;
    size_t len = strlen(h->h_name);
    if (len > 0 && h->h_name[len - 1] == '.')
        len--; /* an absolute name from a hosts file */
    if (len == 0 || len >= sizeof(q->name))
        return;
    memcpy(q->name, h->h_name, len);
    q->name[len] = '\0';
    q->have_name = strict_hostname(q->name);
}

static void fwd_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct fwd_query *q = arg;
    q->done = true;
    q->status = status;
    if (res == NULL)
        return;
    for (struct ares_addrinfo_node *n = res->nodes; n && status == ARES_SUCCESS; n = n->ai_next) {
        if (n->ai_addr == NULL || n->ai_family != q->family)
            continue;
        if (n->ai_family == AF_INET && (size_t)n->ai_addrlen >= sizeof(struct sockaddr_in) &&
            memcmp(&((struct sockaddr_in *)n->ai_addr)->sin_addr, q->addr,
                   sizeof(struct in_addr)) == 0)
            q->confirmed = true;
        if (n->ai_family == AF_INET6 && (size_t)n->ai_addrlen >= sizeof(struct sockaddr_in6) &&
            memcmp(&((struct sockaddr_in6 *)n->ai_addr)->sin6_addr, q->addr,
                   sizeof(struct in6_addr)) == 0)
            q->confirmed = true;
    }
    ares_freeaddrinfo(res);
}

void dns_client_name(const char *servers_csv, int timeout_ms, const char *addr, char *out,
                     size_t n)
{
    snprintf(out, n, "unknown");
    struct in_addr a4;
    struct in6_addr a6;
    int family;
    const void *bin;
    int binlen;
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        family = AF_INET;
        bin = &a4;
        binlen = (int)sizeof(a4);
    } else if (inet_pton(AF_INET6, addr, &a6) == 1) {
        family = AF_INET6;
        bin = &a6;
        binlen = (int)sizeof(a6);
    } else {
        return;
    }
    long long deadline = netio_now_ms() + timeout_ms;
    int try_ms = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
    strbuf err;
    strbuf_init(&err);
    /* The hosts file first, as the system resolver and c-ares's default do,
     * so that 127.0.0.1 is "localhost" without a DNS server. */
    struct dns *d = dns_new(servers_csv, "fb", try_ms, 2, &err);
    strbuf_free(&err);
    if (d == NULL)
        return;

    struct ptr_query pq;
    memset(&pq, 0, sizeof(pq));
    ares_gethostbyaddr(d->ch, bin, binlen, family, ptr_cb, &pq);
    dns_wait(d, &pq.done, &pq.status, deadline);
    if (pq.status == ARES_SUCCESS && pq.have_name) {
        struct fwd_query fq;
        memset(&fq, 0, sizeof(fq));
        fq.family = family;
        fq.addr = bin;
        struct ares_addrinfo_hints h;
        memset(&h, 0, sizeof(h));
        h.ai_family = family;
        h.ai_socktype = SOCK_STREAM;
        ares_getaddrinfo(d->ch, pq.name, NULL, &h, fwd_cb, &fq);
        dns_wait(d, &fq.done, &fq.status, deadline);
        if (fq.status == ARES_SUCCESS && fq.confirmed && n > strlen(pq.name))
            snprintf(out, n, "%s", pq.name);
    }
    dns_free(&d);
}
