/*
 * sender_check.c - which sender addresses an authenticated user owns; see
 * sender_owned() in submission.h.
 *
 * Why: an MSA that lets any user send as anyone is a forgery service, and
 * mail from it would carry our DKIM signature one day. Postfix calls this
 * reject_sender_login_mismatch with smtpd_sender_login_maps; Petrel
 * applies it always, with a default rule so that the common case needs no
 * table at all.
 */
#include "submission.h"

#include <string.h>
#include <strings.h>

/* Whether the comma/space separated list holds login (ASCII case ignored). */
static bool list_has(const char *list, const char *login)
{
    size_t ll = strlen(login);
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == ll && ll > 0 && strncasecmp(p, login, ll) == 0)
            return true;
        p = e;
    }
    return false;
}

enum sender_verdict sender_owned(struct submission_settings *s, const char *login,
                                 const char *local, const char *domain, strbuf *why)
{
    if (s->sender_logins_broken) {
        if (why)
            strbuf_sets(why, "smtpd_sender_login_maps could not be opened");
        return SENDER_LOOKUP_ERROR;
    }
    struct resolver *res = s->base.resolver;
    strbuf base, key, value;
    strbuf_init(&base);
    strbuf_init(&key);
    strbuf_init(&value);
    enum sender_verdict v = SENDER_NOT_OWNED;
    /* The table, when there is one: the address, its extension-less form,
     * then the domain. The first entry found decides. */
    if (s->sender_logins != NULL) {
        bool ext = resolver_strip_extension(res, local, &base);
        const char *keys[3] = { NULL, NULL, NULL };
        strbuf k1, k2;
        strbuf_init(&k1);
        strbuf_init(&k2);
        strbuf_printf(&k1, "%s@%s", local, domain);
        keys[0] = k1.data;
        if (ext) {
            strbuf_printf(&k2, "%s@%s", base.data, domain);
            keys[1] = k2.data;
        }
        strbuf_printf(&key, "@%s", domain);
        keys[2] = key.data;
        enum map_status st = MAP_NOTFOUND;
        for (int i = 0; i < 3 && st == MAP_NOTFOUND; i++) {
            if (keys[i] == NULL)
                continue;
            st = map_list_lookup(s->sender_logins, keys[i], strlen(keys[i]), &value, why);
        }
        strbuf_free(&k1);
        strbuf_free(&k2);
        if (st == MAP_ERROR) {
            v = SENDER_LOOKUP_ERROR;
            goto out;
        }
        if (st == MAP_FOUND) {
            v = list_has(value.data, login) ? SENDER_OWNED : SENDER_NOT_OWNED;
            goto out;
        }
    }
    /* The default rule. */
    resolver_strip_extension(res, local, &base); /* lowercased, no extension */
    const char *at = strchr(login, '@');
    if (at == NULL) {
        if (strcasecmp(base.data, login) == 0 && resolver_class(res, domain) == RESOLVE_LOCAL)
            v = SENDER_OWNED;
    } else {
        size_t ul = (size_t)(at - login);
        if (strlen(base.data) == ul && strncasecmp(base.data, login, ul) == 0 &&
            strcasecmp(domain, at + 1) == 0)
            v = SENDER_OWNED;
    }
out:
    strbuf_free(&base);
    strbuf_free(&key);
    strbuf_free(&value);
    return v;
}
