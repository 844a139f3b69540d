/*
 * route.c - where the mail for one domain goes: the ordered list of
 * addresses to try. The next hop when set (relayhost or transport_maps;
 * [host] skips the MX lookup), else
 * the domain's MX hosts by preference (random order among equal ones, so
 * load spreads as RFC 5321 5.1 asks), else the domain itself (implicit MX).
 *
 * DNS answers decide the fate of the mail: NXDOMAIN bounces (5.1.2), a null
 * MX bounces (5.1.10, RFC 7505), a server failure or timeout defers (4.4.3).
 * An MX host that is this host (myhostname, or an own address on a port
 * this instance listens on) and every MX host it prefers less are dropped,
 * as RFC 5321 5.1 says; when nothing is left the mail would loop, and
 * bounces with 5.4.6.
 */
#include "smtpc.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int pref_cmp(const void *a, const void *b)
{
    const struct dns_mx *x = a, *y = b;
    return (x->pref > y->pref) - (x->pref < y->pref);
}

/* Sorts by preference, then shuffles each run of equal preference. */
static void mx_order(struct dns_mx *mx, size_t n)
{
    qsort(mx, n, sizeof(*mx), pref_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && mx[j].pref == mx[i].pref)
            j++;
        /* Fisher-Yates over mx[i..j): offsets from i keep the bounds
         * obvious to the compiler (-O3 warned on the old form). */
        for (size_t m = j - i; m > 1; m--) {
            size_t r = (size_t)random() % m;
            struct dns_mx t = mx[i + m - 1];
            mx[i + m - 1] = mx[i + r];
            mx[i + r] = t;
        }
        i = j;
    }
}

static void add_target(struct smtpc_route *route, const char *host, const struct dns_addr *a)
{
    route->t = xrealloc(route->t, (route->n + 1) * sizeof(*route->t));
    route->t[route->n].host = xstrdup(host);
    route->t[route->n].addr = *a;
    route->n++;
}

static bool is_myhostname(const struct smtpc_settings *s, const char *host)
{
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    return strlen(s->myhostname) == n && strncasecmp(s->myhostname, host, n) == 0;
}

/* Adds the addresses of host, skipping our own. Returns the DNS outcome;
 * *self_r set when an address was dropped as ours. */
static enum dns_outcome add_host(const struct smtpc_settings *s, struct dns *d, const char *host,
                                 int port, struct smtpc_route *route, bool *self_r, strbuf *err)
{
    struct dns_addr *a = NULL;
    size_t n = 0;
    enum dns_outcome out = dns_lookup_addrs(d, host, s->family, port, &a, &n, err);
    for (size_t i = 0; i < n && route->n < SMTPC_MAX_ADDRS; i++) {
        if (smtpc_addr_is_self(s, &a[i]))
            *self_r = true;
        else
            add_target(route, host, &a[i]);
    }
    free(a);
    return out;
}

int smtpc_route(const struct smtpc_settings *s, struct dns *d, const struct smtpc_dest *dest,
                struct smtpc_route *route, struct smtpc_result *fail)
{
    const char *domain = dest->domain;
    strbuf err, host;
    strbuf_init(&err);
    strbuf_init(&host);
    route->t = NULL;
    route->n = 0;
    bool self = false;
    int port = s->port;
    bool use_mx = true;
    const char *name = domain;
    if (dest->nexthop.len > 0) {
        /* relayhost or a transport_maps next hop: [host] skips the MX lookup */
        if (smtpc_parse_nexthop(dest->nexthop.data, s->port, &host, &port, &use_mx) < 0) {
            smtpc_result_set(fail, DELIVERY_DEFERRED, "4.3.5", "malformed next hop \"%s\"",
                             dest->nexthop.data);
            strbuf_free(&err);
            strbuf_free(&host);
            return -1;
        }
        name = host.data;
    }

    struct dns_mx *mx = NULL;
    size_t nmx = 0;
    enum dns_outcome out = use_mx ? dns_lookup_mx(d, name, &mx, &nmx, &err) : DNS_NODATA;
    if (out == DNS_NXDOMAIN) {
        smtpc_result_set(fail, DELIVERY_BOUNCED, "5.1.2",
                         "Host or domain name not found. Name service error for name=%s "
                         "type=MX: %s", name, err.data);
    } else if (out == DNS_TEMPFAIL) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.4.3",
                         "Host or domain name not found. Name service error for name=%s "
                         "type=MX: %s", name, err.data);
    } else if (out == DNS_NULLMX) {
        smtpc_result_set(fail, DELIVERY_BOUNCED, "5.1.10",
                         "Domain %s does not accept mail (nullMX)", name);
    } else if (out == DNS_NODATA) {
        /* Implicit MX (RFC 5321 5.1): the name's own addresses. */
        if (!use_mx || !is_myhostname(s, name)) {
            strbuf_reset(&err);
            out = add_host(s, d, name, port, route, &self, &err);
        }
        if (route->n == 0) {
            if (out == DNS_TEMPFAIL)
                smtpc_result_set(fail, DELIVERY_DEFERRED, "4.4.3",
                                 "Host or domain name not found. Name service error for "
                                 "name=%s type=A: %s", name, err.data);
            else if (self || is_myhostname(s, name))
                smtpc_result_set(fail, DELIVERY_BOUNCED, "5.4.6",
                                 "mail for %s loops back to myself", domain);
            else
                smtpc_result_set(fail, DELIVERY_BOUNCED, "5.1.2",
                                 "Host or domain name not found. Name service error for "
                                 "name=%s type=A: %s", name, err.data);
        }
    } else {
        mx_order(mx, nmx);
        /* Drop ourselves and every host we prefer less (RFC 5321 5.1). */
        size_t usable = nmx;
        for (size_t i = 0; i < nmx; i++)
            if (is_myhostname(s, mx[i].host)) {
                usable = i;
                while (usable > 0 && mx[usable - 1].pref == mx[i].pref)
                    usable--;
                self = true;
                break;
            }
        bool temp = false;
        strbuf last;
        strbuf_init(&last);
        for (size_t i = 0; i < usable && route->n < SMTPC_MAX_ADDRS; i++) {
            strbuf_reset(&err);
            bool me = false;
            size_t before = route->n;
            enum dns_outcome o = add_host(s, d, mx[i].host, port, route, &me, &err);
            if (o == DNS_TEMPFAIL)
                temp = true;
            if (o != DNS_FOUND) {
                strbuf_reset(&last);
                strbuf_printf(&last, "name=%s type=A: %s", mx[i].host, err.data);
            }
            if (me) {
                /* An address of ours: less preferred hosts are no use. */
                self = true;
                if (route->n == before) {
                    while (i + 1 < usable && mx[i + 1].pref == mx[i].pref)
                        i++;
                    break;
                }
            }
        }
        if (route->n == 0) {
            if (temp)
                smtpc_result_set(fail, DELIVERY_DEFERRED, "4.4.3",
                                 "Host or domain name not found. Name service error for %s",
                                 last.data);
            else if (self)
                smtpc_result_set(fail, DELIVERY_BOUNCED, "5.4.6",
                                 "mail for %s loops back to myself", domain);
            else
                smtpc_result_set(fail, DELIVERY_BOUNCED, "5.4.4",
                                 "no address for any MX host of %s (%s)", name, last.data);
        }
        strbuf_free(&last);
        dns_mx_free(mx, nmx);
    }
    strbuf_free(&err);
    strbuf_free(&host);
    if (route->n == 0) {
        if (!fail->set)
            smtpc_result_set(fail, DELIVERY_DEFERRED, "4.4.3", "no route to %s", domain);
        return -1;
    }
    return 0;
}

void smtpc_route_free(struct smtpc_route *route)
{
    for (size_t i = 0; i < route->n; i++)
        free(route->t[i].host);
    free(route->t);
    route->t = NULL;
    route->n = 0;
}
