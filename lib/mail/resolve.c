/*
 * resolve.c - destination classes and recipient existence; see resolve.h.
 *
 * Lookup order for existence, the same one local delivery follows:
 * virtual_alias_maps (any domain: the full address, then "@domain"), then by
 * class: LOCAL — postmaster, alias_maps (with, then without the extension),
 * the passwd database; VIRTUAL — virtual_mailbox_maps (address, address
 * without extension, "@domain"). Any table error is RESOLVE_LOOKUP_ERROR: the
 * caller answers 4xx, so a broken table delays mail but never bounces it.
 */
#include "mail/resolve.h"
#include "mail/map.h"
#include "util/config.h"
#include "util/privilege.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct resolver {
    struct config_list mydestination, virtual_domains, relay_domains;
    char *delimiters;
    struct map_list *aliases, *virtual_alias, *virtual_mailbox;
    char *specs[3];  /* alias_maps, virtual_alias_maps, virtual_mailbox_maps */
    strbuf broken;   /* non-empty: a table could not be opened; lookups fail
                      * until reopening works (tried at each lookup) */
};

static const char *const list_params[3] = { "alias_maps", "virtual_alias_maps",
                                             "virtual_mailbox_maps" };

static struct map_list **list_slot(struct resolver *r, int i)
{
    return i == 0 ? &r->aliases : i == 1 ? &r->virtual_alias : &r->virtual_mailbox;
}

static void lower_list(struct config_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        for (char *p = l->items[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
}

/* Opens every table list that is not open yet; records the first failure
 * in r->broken (and err, when given). */
static void open_lists(struct resolver *r, strbuf *err)
{
    strbuf_reset(&r->broken);
    strbuf why;
    strbuf_init(&why);
    for (int i = 0; i < 3; i++) {
        struct map_list **ml = list_slot(r, i);
        if (*ml)
            continue;
        strbuf_reset(&why);
        if (map_list_open(r->specs[i], i == 0 ? MAP_ALIASES : 0, ml, &why) < 0) {
            if (err)
                strbuf_printf(err, "%s: %s\n", list_params[i], why.data);
            if (r->broken.len == 0)
                strbuf_printf(&r->broken, "%s: %s", list_params[i], why.data);
        }
    }
    strbuf_free(&why);
}

struct resolver *resolver_new(struct config *cfg, strbuf *err)
{
    struct resolver *r = xcalloc(1, sizeof(*r));
    strbuf_init(&r->broken);
    config_get_list(cfg, "mydestination", &r->mydestination, err);
    config_get_list(cfg, "virtual_mailbox_domains", &r->virtual_domains, err);
    config_get_list(cfg, "relay_domains", &r->relay_domains, err);
    lower_list(&r->mydestination);
    lower_list(&r->virtual_domains);
    lower_list(&r->relay_domains);
    const char *d = config_get(cfg, "recipient_delimiter");
    r->delimiters = xstrdup(d ? d : "");
    for (int i = 0; i < 3; i++) {
        const char *v = config_get(cfg, list_params[i]);
        r->specs[i] = xstrdup(v ? v : "");
    }
    open_lists(r, err);
    return r;
}

void resolver_free(struct resolver **rp)
{
    struct resolver *r = *rp;
    if (r == NULL)
        return;
    config_list_free(&r->mydestination);
    config_list_free(&r->virtual_domains);
    config_list_free(&r->relay_domains);
    free(r->delimiters);
    map_list_close(&r->aliases);
    map_list_close(&r->virtual_alias);
    map_list_close(&r->virtual_mailbox);
    for (int i = 0; i < 3; i++)
        free(r->specs[i]);
    strbuf_free(&r->broken);
    free(r);
    *rp = NULL;
}

static bool domain_in(const struct config_list *l, const char *domain)
{
    size_t dl = strlen(domain);
    for (size_t i = 0; i < l->count; i++) {
        const char *e = l->items[i];
        if (e[0] == '.') {
            size_t el = strlen(e);
            if (dl > el && strcmp(domain + dl - el, e) == 0)
                return true;
        } else if (strcmp(e, domain) == 0) {
            return true;
        }
    }
    return false;
}

enum resolve_class resolver_class(struct resolver *r, const char *domain)
{
    if (domain_in(&r->mydestination, domain))
        return RESOLVE_LOCAL;
    if (domain_in(&r->virtual_domains, domain))
        return RESOLVE_VIRTUAL;
    if (domain_in(&r->relay_domains, domain))
        return RESOLVE_RELAY;
    return RESOLVE_REMOTE;
}

bool resolver_strip_extension(struct resolver *r, const char *local, strbuf *out)
{
    strbuf_reset(out);
    for (const char *p = local; *p; p++)
        strbuf_appendc(out, (char)tolower((unsigned char)*p));
    if (*r->delimiters == '\0')
        return false;
    size_t cut = strcspn(out->data, r->delimiters);
    /* "+tag" alone (empty user) is not an extension. */
    if (cut == 0 || cut == out->len)
        return false;
    strbuf_truncate(out, cut);
    return true;
}

/* One table lookup; returns 1 found, 0 not found, -1 error (why set). */
static int lookup(struct map_list *ml, const char *key, strbuf *why)
{
    if (ml == NULL || map_list_count(ml) == 0)
        return 0;
    strbuf value, err;
    strbuf_init(&value);
    strbuf_init(&err);
    enum map_status st = map_list_lookup(ml, key, strlen(key), &value, &err);
    if (st == MAP_ERROR && why)
        strbuf_sets(why, err.data);
    strbuf_free(&value);
    strbuf_free(&err);
    return st == MAP_FOUND ? 1 : st == MAP_NOTFOUND ? 0 : -1;
}

enum resolve_exists resolver_exists(struct resolver *r, const char *local, const char *domain,
                                    strbuf *why)
{
    enum resolve_class cls = resolver_class(r, domain);
    if (cls == RESOLVE_RELAY || cls == RESOLVE_REMOTE)
        return RESOLVE_EXISTS;
    if (r->broken.len)
        open_lists(r, NULL); /* the table may have been fixed meanwhile */
    if (r->broken.len) {
        if (why)
            strbuf_sets(why, r->broken.data);
        return RESOLVE_LOOKUP_ERROR;
    }
    strbuf base, key;
    strbuf_init(&base);
    strbuf_init(&key);
    bool had_ext = resolver_strip_extension(r, local, &base);
    enum resolve_exists result = RESOLVE_NO_SUCH_USER;
    int found = 0;

    /* virtual_alias_maps: full address, without extension, then @domain. */
    strbuf_printf(&key, "%s@%s", local, domain);
    found = lookup(r->virtual_alias, key.data, why);
    if (found == 0 && had_ext) {
        strbuf_reset(&key);
        strbuf_printf(&key, "%s@%s", base.data, domain);
        found = lookup(r->virtual_alias, key.data, why);
    }
    if (found == 0) {
        strbuf_reset(&key);
        strbuf_printf(&key, "@%s", domain);
        found = lookup(r->virtual_alias, key.data, why);
    }

    if (found == 0 && cls == RESOLVE_LOCAL) {
        if (strcmp(base.data, "postmaster") == 0)
            found = 1; /* RFC 5321 §4.5.1: always accepted */
        if (found == 0) {
            strbuf_reset(&key);
            for (const char *p = local; *p; p++)
                strbuf_appendc(&key, (char)tolower((unsigned char)*p));
            found = lookup(r->aliases, key.data, why);
        }
        if (found == 0 && had_ext)
            found = lookup(r->aliases, base.data, why);
        if (found == 0) {
            struct priv_user u;
            strbuf err;
            strbuf_init(&err);
            enum priv_lookup pl = privilege_lookup_user(base.data, &u, &err);
            if (pl == PRIV_LOOKUP_FOUND)
                found = 1;
            else if (pl == PRIV_LOOKUP_ERROR) {
                found = -1;
                if (why)
                    strbuf_sets(why, err.data);
            }
            privilege_user_free(&u);
            strbuf_free(&err);
        }
    } else if (found == 0 && cls == RESOLVE_VIRTUAL) {
        strbuf_reset(&key);
        strbuf_printf(&key, "%s@%s", local, domain);
        found = lookup(r->virtual_mailbox, key.data, why);
        if (found == 0 && had_ext) {
            strbuf_reset(&key);
            strbuf_printf(&key, "%s@%s", base.data, domain);
            found = lookup(r->virtual_mailbox, key.data, why);
        }
        if (found == 0) {
            strbuf_reset(&key);
            strbuf_printf(&key, "@%s", domain);
            found = lookup(r->virtual_mailbox, key.data, why);
        }
    }
    if (found > 0)
        result = RESOLVE_EXISTS;
    else if (found < 0)
        result = RESOLVE_LOOKUP_ERROR;
    strbuf_free(&base);
    strbuf_free(&key);
    return result;
}
