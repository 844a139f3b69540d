/*
 * dest.c - what applies to the recipients of one domain before any
 * connection is made, from three lookup tables (lib/mail/map.h):
 *
 *   transport_maps           domain -> smtp:[host]:port, smtp:host, relay:...,
 *                            error:text, retry:text, discard:text
 *   smtp_tls_policy_maps     next hop -> none | may | encrypt |
 *                            verify [match=name:name]
 *   smtp_sasl_password_maps  next hop / host / domain -> user:password
 *
 * Domains are looked up as they are, then as ".parent" for each parent
 * domain (a.b.example: a.b.example, .b.example, .example). A table that
 * cannot be read, or an entry this program does not understand, defers the
 * mail with a reason naming the table: an unknown TLS policy never turns
 * into plaintext, an unknown transport never into a guess.
 *
 * qmgr hands smtp-client every recipient whose domain is not local, so the
 * transport table routes remote and relay domains only.
 */
#include "smtpc.h"
#include "mail/map.h"
#include "util/log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void smtpc_dest_init(struct smtpc_dest *d)
{
    memset(d, 0, sizeof(*d));
    strbuf_init(&d->nexthop);
    strbuf_init(&d->tls_match);
    strbuf_init(&d->sasl_user);
    strbuf_init(&d->sasl_pass);
}

void smtpc_dest_free(struct smtpc_dest *d)
{
    strbuf_free(&d->nexthop);
    strbuf_free(&d->tls_match);
    strbuf_free(&d->sasl_user);
    if (d->sasl_pass.len)
        memset(d->sasl_pass.data, 0, d->sasl_pass.len);
    strbuf_free(&d->sasl_pass);
}

int smtpc_parse_nexthop(const char *nh, int defport, strbuf *host, int *port, bool *mx)
{
    *port = defport;
    *mx = true;
    const char *rest;
    strbuf_reset(host);
    if (nh[0] == '[') {
        const char *end = strchr(nh, ']');
        if (end == NULL)
            return -1;
        strbuf_set(host, nh + 1, (size_t)(end - nh - 1));
        *mx = false;
        rest = end + 1;
    } else {
        /* One colon separates the port; more make a bare IPv6 address. */
        const char *colon = strchr(nh, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL;
        rest = colon ? colon : nh + strlen(nh);
        strbuf_set(host, nh, (size_t)(rest - nh));
    }
    if (host->len == 0)
        return -1;
    if (*rest == ':') {
        char *end;
        long p = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || *end || p < 1 || p > 65535)
            return -1;
        *port = (int)p;
    } else if (*rest) {
        return -1;
    }
    return 0;
}

/* Looks key up in t (opening it on first use). MAP_ERROR with err naming
 * the table. */
static enum map_status lookup(struct smtpc_table *t, const char *key, strbuf *value,
                              strbuf *err)
{
    if (t->spec[0] == '\0')
        return MAP_NOTFOUND;
    strbuf e;
    strbuf_init(&e);
    enum map_status st = MAP_ERROR;
    if (t->ml == NULL && map_list_open(t->spec, 0, &t->ml, &e) < 0) {
        log_warning("%s = %s: %s", t->name, t->spec, e.data);
    } else {
        st = map_list_lookup(t->ml, key, strlen(key), value, &e);
        if (st == MAP_ERROR)
            log_warning("%s = %s: lookup of %s: %s", t->name, t->spec, key, e.data);
    }
    if (st == MAP_ERROR)
        strbuf_printf(err, "%s lookup error (%s): %s", t->name, t->spec, e.data);
    strbuf_free(&e);
    return st;
}

/* The domain, then ".parent" for each parent. */
static enum map_status lookup_domain(struct smtpc_table *t, const char *domain, strbuf *value,
                                     strbuf *err)
{
    enum map_status st = lookup(t, domain, value, err);
    strbuf key;
    strbuf_init(&key);
    for (const char *p = strchr(domain, '.'); st == MAP_NOTFOUND && p && p[1];
         p = strchr(p + 1, '.')) {
        strbuf_sets(&key, p);
        st = lookup(t, key.data, value, err);
    }
    strbuf_free(&key);
    return st;
}

static void trim(strbuf *v)
{
    strbuf_rtrim(v);
    size_t i = 0;
    while (i < v->len && isspace((unsigned char)v->data[i]))
        i++;
    strbuf_consume(v, i);
}

/* transport_maps: 0 (dest->nexthop set, maybe empty), or -1 with *fail. */
static int transport(struct smtpc_settings *s, const char *domain, struct smtpc_dest *d,
                     struct smtpc_result *fail)
{
    strbuf v, err;
    strbuf_init(&v);
    strbuf_init(&err);
    int rc = 0;
    enum map_status st = lookup_domain(&s->transport, domain, &v, &err);
    if (st == MAP_ERROR) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.3.0", "%s", err.data);
        rc = -1;
        goto out;
    }
    if (st == MAP_NOTFOUND) {
        strbuf_sets(&d->nexthop, s->relayhost);
        goto out;
    }
    trim(&v);
    const char *colon = strchr(v.data, ':');
    size_t tlen = colon ? (size_t)(colon - v.data) : v.len;
    const char *nh = colon ? colon + 1 : "";
    while (isspace((unsigned char)*nh))
        nh++;
#define IS(name) (tlen == strlen(name) && strncasecmp(v.data, name, tlen) == 0)
    if (IS("smtp") || IS("relay")) {
        strbuf host;
        strbuf_init(&host);
        int port;
        bool mx;
        if (*nh == '\0') {
            strbuf_sets(&d->nexthop, s->relayhost); /* the default next hop */
        } else if (smtpc_parse_nexthop(nh, s->port, &host, &port, &mx) < 0 ||
                   (mx && !dns_valid_hostname(host.data))) {
            smtpc_result_set(fail, DELIVERY_DEFERRED, "4.3.5",
                             "transport_maps (%s): malformed next hop \"%s\" for %s",
                             s->transport.spec, nh, domain);
            rc = -1;
        } else {
            strbuf_sets(&d->nexthop, nh);
        }
        strbuf_free(&host);
    } else if (IS("error") || IS("retry")) {
        /* "error:5.1.1 text": a leading status code of the right class is
         * used; error: bounces (5.0.0), retry: defers (4.0.0), as Postfix. */
        bool bounce = IS("error");
        char dsn[16] = "";
        const char *text = nh;
        size_t n = strspn(nh, "0123456789.");
        if (n >= 5 && n < sizeof(dsn) && (nh[n] == ' ' || nh[n] == '\0') &&
            nh[0] == (bounce ? '5' : '4')) {
            memcpy(dsn, nh, n);
            dsn[n] = '\0';
            text = nh + n;
            while (*text == ' ')
                text++;
        }
        smtpc_result_set(fail, bounce ? DELIVERY_BOUNCED : DELIVERY_DEFERRED,
                         dsn[0] ? dsn : bounce ? "5.0.0" : "4.0.0", "%s",
                         *text ? text : bounce ? "mail for this domain is refused by "
                                                 "transport_maps"
                                               : "delivery postponed by transport_maps");
        rc = -1;
    } else if (IS("discard")) {
        smtpc_result_set(fail, DELIVERY_SENT, "2.0.0", "discarded%s%s", *nh ? ": " : "", nh);
        rc = -1;
    } else {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.3.5",
                         "transport_maps (%s): unsupported transport \"%.*s\" for %s "
                         "(supported: smtp, relay, error, retry, discard)",
                         s->transport.spec, (int)tlen, v.data, domain);
        rc = -1;
    }
#undef IS
out:
    strbuf_free(&v);
    strbuf_free(&err);
    return rc;
}

/* smtp_tls_policy_maps: the next hop as written (relayhost or transport),
 * or the domain and its parents. 0, or -1 with *fail. */
static int tls_policy(struct smtpc_settings *s, const char *domain, struct smtpc_dest *d,
                      struct smtpc_result *fail)
{
    d->tls_level = s->tls_level;
    strbuf v, err;
    strbuf_init(&v);
    strbuf_init(&err);
    int rc = 0;
    const char *key = d->nexthop.len ? d->nexthop.data : domain;
    enum map_status st = key[0] == '[' ? lookup(&s->tls_policy, key, &v, &err)
                                       : lookup_domain(&s->tls_policy, key, &v, &err);
    if (st == MAP_ERROR) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.5", "%s", err.data);
        rc = -1;
        goto out;
    }
    if (st == MAP_NOTFOUND)
        goto out;
    /* "level [match=a:b]" */
    strbuf orig;
    strbuf_init(&orig);
    strbuf_append_sb(&orig, &v);
    bool bad = false;
    char *save = NULL;
    char *w = strtok_r(v.data, " \t", &save);
    if (w == NULL || tls_parse_level(w, &d->tls_level) < 0)
        bad = true;
    while (!bad && (w = strtok_r(NULL, " \t", &save)) != NULL) {
        if (strncasecmp(w, "match=", 6) == 0 && d->tls_level == TLS_LEVEL_VERIFY && w[6] &&
            d->tls_match.len == 0)
            strbuf_sets(&d->tls_match, w + 6);
        else
            bad = true;
    }
    if (bad) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.5",
                         "smtp_tls_policy_maps (%s): unsupported policy \"%s\" for %s "
                         "(supported: none, may, encrypt, verify [match=name:...]); "
                         "mail not sent",
                         s->tls_policy.spec, orig.data, key);
        rc = -1;
    }
    strbuf_free(&orig);
out:
    strbuf_free(&v);
    strbuf_free(&err);
    return rc;
}

/* smtp_sasl_password_maps: the next hop as written ("[host]:port"), its
 * host alone, then the domain. 0, or -1 with *fail. */
static int sasl_password(struct smtpc_settings *s, const char *domain, struct smtpc_dest *d,
                         struct smtpc_result *fail)
{
    if (!s->sasl_enable)
        return 0;
    strbuf v, err, host;
    strbuf_init(&v);
    strbuf_init(&err);
    strbuf_init(&host);
    int rc = 0;
    enum map_status st = MAP_NOTFOUND;
    if (d->nexthop.len) {
        st = lookup(&s->sasl_passwords, d->nexthop.data, &v, &err);
        int port;
        bool mx;
        if (st == MAP_NOTFOUND &&
            smtpc_parse_nexthop(d->nexthop.data, s->port, &host, &port, &mx) == 0)
            st = lookup(&s->sasl_passwords, host.data, &v, &err);
    }
    if (st == MAP_NOTFOUND)
        st = lookup(&s->sasl_passwords, domain, &v, &err);
    if (st == MAP_ERROR) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.0", "%s", err.data);
        rc = -1;
    } else if (st == MAP_FOUND) {
        trim(&v);
        const char *colon = strchr(v.data, ':');
        if (colon == NULL || colon == v.data) {
            smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.0",
                             "smtp_sasl_password_maps (%s): the entry for %s is not "
                             "user:password", s->sasl_passwords.spec,
                             d->nexthop.len ? d->nexthop.data : domain);
            rc = -1;
        } else {
            strbuf_set(&d->sasl_user, v.data, (size_t)(colon - v.data));
            strbuf_sets(&d->sasl_pass, colon + 1);
        }
    }
    if (v.len)
        memset(v.data, 0, v.len);
    strbuf_free(&v);
    strbuf_free(&err);
    strbuf_free(&host);
    return rc;
}

int smtpc_dest_resolve(struct smtpc_settings *s, const char *domain, struct smtpc_dest *d,
                       struct smtpc_result *fail)
{
    d->domain = domain;
    if (transport(s, domain, d, fail) < 0 || tls_policy(s, domain, d, fail) < 0 ||
        sasl_password(s, domain, d, fail) < 0)
        return -1;
    return 0;
}
