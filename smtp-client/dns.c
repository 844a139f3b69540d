/*
 * dns.c - the DNS lookups of smtp-client, through c-ares: MX records and
 * A/AAAA records, each with a deadline. The servers come from
 * /etc/resolv.conf, or from the `dns_servers` parameter (tests point it at a
 * dnsmasq on a loopback port). Names are looked up in the DNS only: the
 * hosts file is not consulted for mail routing.
 *
 * The channel, its event loop and the host name check are lib/mail/dns.c
 * (shared with the SMTP servers); main.c creates it with lookups "b".
 *
 * Answers are hostile input (BAD-INPUT row 11): c-ares parses them (it
 * refuses compression loops and malformed names), and every MX target is
 * checked again here as a host name before it is used.
 */
#include "smtpc.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* One outstanding query: the callback fills it. */
struct query {
    bool done;
    int status;
    /* MX */
    struct dns_mx *mx;
    size_t nmx;
    bool nullmx;
    /* addresses */
    struct dns_addr *addrs;
    size_t naddrs;
    int port;
};

/* Runs the channel until q->done, at most SMTPC_DNS_DEADLINE_MS. */
static void wait_for(struct dns *d, struct query *q)
{
    dns_wait(d, &q->done, &q->status, netio_now_ms() + SMTPC_DNS_DEADLINE_MS);
}

static enum dns_outcome outcome_of(int status, strbuf *err)
{
    switch (status) {
    case ARES_SUCCESS:
        return DNS_FOUND;
    case ARES_ENOTFOUND:
        strbuf_appends(err, "Host not found");
        return DNS_NXDOMAIN;
    case ARES_ENODATA:
        strbuf_appends(err, "No address associated with name");
        return DNS_NODATA;
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:
        strbuf_appends(err, "Host not found, try again (timeout)");
        return DNS_TEMPFAIL;
    case ARES_ESERVFAIL:
        strbuf_appends(err, "Host not found, try again (server failure)");
        return DNS_TEMPFAIL;
    default:
        strbuf_printf(err, "Host not found, try again (%s)", ares_strerror(status));
        return DNS_TEMPFAIL;
    }
}

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    q->done = true;
    q->status = status;
    if (status != ARES_SUCCESS)
        return;
    struct ares_mx_reply *head = NULL;
    int rc = ares_parse_mx_reply(abuf, alen, &head);
    if (rc != ARES_SUCCESS) {
        q->status = rc;
        return;
    }
    size_t total = 0;
    for (struct ares_mx_reply *p = head; p; p = p->next)
        total++;
    q->mx = xcalloc(total ? total : 1, sizeof(*q->mx));
    for (struct ares_mx_reply *p = head; p; p = p->next) {
        /* RFC 7505: one record "0 ." (c-ares gives the root as ""). */
        if (p->host[0] == '\0' || strcmp(p->host, ".") == 0) {
            if (total == 1 && p->priority == 0)
                q->nullmx = true;
            continue;
        }
        if (!dns_valid_hostname(p->host)) {
            strbuf esc;
            strbuf_init(&esc);
            log_sanitize(&esc, p->host, strlen(p->host));
            log_warning("ignoring MX record with an invalid host name \"%s\"", esc.data);
            strbuf_free(&esc);
            continue;
        }
        q->mx[q->nmx].host = xstrdup(p->host);
        q->mx[q->nmx].pref = p->priority;
        q->nmx++;
    }
    ares_free_data(head);
}

enum dns_outcome dns_lookup_mx(struct dns *d, const char *domain, struct dns_mx **mx_r,
                               size_t *n_r, strbuf *err)
{
    struct query q;
    memset(&q, 0, sizeof(q));
    *mx_r = NULL;
    *n_r = 0;
    ares_query(d->ch, domain, 1 /* C_IN */, 15 /* T_MX */, mx_cb, &q);
    wait_for(d, &q);
    enum dns_outcome out = outcome_of(q.status, err);
    if (out == DNS_FOUND) {
        if (q.nullmx) {
            out = DNS_NULLMX;
        } else if (q.nmx == 0) {
            strbuf_appends(err, "no valid MX host names");
            out = DNS_NODATA;
        }
    }
    if (out == DNS_FOUND) {
        *mx_r = q.mx;
        *n_r = q.nmx;
    } else {
        dns_mx_free(q.mx, q.nmx);
    }
    return out;
}

void dns_mx_free(struct dns_mx *mx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(mx[i].host);
    free(mx);
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct query *q = arg;
    q->done = true;
    q->status = status;
    if (status != ARES_SUCCESS || res == NULL) {
        if (res)
            ares_freeaddrinfo(res);
        return;
    }
    for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) || n->ai_addr == NULL ||
            (size_t)n->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        if (q->naddrs >= SMTPC_MAX_ADDRS)
            break;
        q->addrs = xrealloc(q->addrs, (q->naddrs + 1) * sizeof(*q->addrs));
        struct dns_addr *a = &q->addrs[q->naddrs++];
        memset(a, 0, sizeof(*a));
        memcpy(&a->sa, n->ai_addr, (size_t)n->ai_addrlen);
        a->len = (socklen_t)n->ai_addrlen;
        if (n->ai_family == AF_INET)
            ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)q->port);
        else
            ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)q->port);
    }
    ares_freeaddrinfo(res);
}

enum dns_outcome dns_lookup_addrs(struct dns *d, const char *host, int family, int port,
                                  struct dns_addr **a_r, size_t *n_r, strbuf *err)
{
    struct query q;
    memset(&q, 0, sizeof(q));
    q.port = port;
    struct ares_addrinfo_hints h;
    memset(&h, 0, sizeof(h));
    h.ai_family = family;
    h.ai_socktype = SOCK_STREAM;
    /* A numeric address (relayhost = [10.0.0.1]) needs no query. */
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
        h.ai_flags = ARES_AI_NUMERICHOST;
    ares_getaddrinfo(d->ch, host, NULL, &h, addr_cb, &q);
    wait_for(d, &q);
    enum dns_outcome out = outcome_of(q.status, err);
    if (out == DNS_FOUND && q.naddrs == 0) {
        strbuf_appends(err, "No address associated with name");
        out = DNS_NODATA;
    }
    if (out == DNS_FOUND) {
        *a_r = xrealloc(*a_r, (*n_r + q.naddrs) * sizeof(**a_r));
        memcpy(*a_r + *n_r, q.addrs, q.naddrs * sizeof(*q.addrs));
        *n_r += q.naddrs;
    }
    free(q.addrs);
    return out;
}
