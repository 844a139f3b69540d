/*
 * route.c - which backend a user name belongs to (docs/auth.md):
 *
 *   name@domain, domain in virtual_mailbox_domains, or name@domain
 *       present in auth_passwd_file         -> the passwd-file
 *   name@domain, domain in mydestination     -> PAM, as "name"
 *   name (no '@')                            -> PAM
 *   anything else                            -> no such user
 *
 * Unknown users of the passwd-file still pay for one password hash, so
 * that the answer's timing does not tell which names exist.
 */
#include "auth.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void auth_identity_init(struct auth_identity *id)
{
    memset(id, 0, sizeof(*id));
    strbuf_init(&id->user);
    strbuf_init(&id->home);
    strbuf_init(&id->mailbox);
    id->uid = (uid_t)-1;
    id->gid = (gid_t)-1;
}

void auth_identity_free(struct auth_identity *id)
{
    strbuf_free(&id->user);
    strbuf_free(&id->home);
    strbuf_free(&id->mailbox);
}

bool auth_domain_in(const struct config_list *list, const char *domain)
{
    size_t dn = strlen(domain);
    for (size_t i = 0; i < list->count; i++) {
        const char *e = list->items[i];
        if (strcasecmp(e, domain) == 0)
            return true;
        size_t en = strlen(e);
        if (e[0] == '.' && en > 1 && dn > en && strcasecmp(domain + dn - en, e) == 0)
            return true;
    }
    return false;
}

static enum auth_verdict via_pam(const struct auth_settings *s, const char *name,
                                 const char *password, const char *client, bool want_identity,
                                 struct auth_identity *id, strbuf *reason)
{
    strbuf canonical;
    strbuf_init(&canonical);
    enum auth_verdict v = pam_backend_verify(s, name, password, client, &canonical, reason);
    strbuf_sets(&id->user, canonical.len ? canonical.data : name);
    strbuf_free(&canonical);
    if (v != VERDICT_OK)
        return v;
    /* Even without a token the system account must exist and not be root:
     * the name we hand back is one the mail system can deliver to. */
    struct auth_identity sys;
    auth_identity_init(&sys);
    strbuf why;
    strbuf_init(&why);
    v = system_identity(s, id->user.data, &sys, &why);
    if (v == VERDICT_OK) {
        if (want_identity) {
            strbuf_set(&id->home, sys.home.data, sys.home.len);
            strbuf_set(&id->mailbox, sys.mailbox.data, sys.mailbox.len);
            id->uid = sys.uid;
            id->gid = sys.gid;
        }
        strbuf_sets(reason, "authenticated by PAM");
    } else {
        strbuf_set(reason, why.data, why.len);
    }
    strbuf_free(&why);
    auth_identity_free(&sys);
    return v;
}

enum auth_verdict auth_route(const struct auth_settings *s, const char *user,
                             const char *password, size_t password_len, const char *client,
                             bool want_identity, struct auth_identity *id, strbuf *reason)
{
    (void)password_len; /* checked by the caller: no NUL, within the limit */
    strbuf_sets(&id->user, user);
    const char *at = strrchr(user, '@');
    if (at == NULL)
        return via_pam(s, user, password, client, want_identity, id, reason);

    const char *domain = at + 1;
    if (at == user || *domain == '\0') {
        strbuf_sets(reason, "malformed user name");
        return VERDICT_FAIL;
    }
    bool virtual_domain = auth_domain_in(&s->virtual_domains, domain);
    struct passwd_entry e;
    passwd_entry_init(&e);
    int found = 0;
    enum auth_verdict v;
    strbuf err;
    strbuf_init(&err);
    if (*s->passwd_file) {
        found = passwd_file_lookup(s->passwd_file, user, &e, &err);
        if (found < 0) {
            log_error("%s", err.data);
            strbuf_sets(reason, "passwd-file unavailable");
            v = VERDICT_TEMPFAIL;
            goto out;
        }
    } else if (virtual_domain) {
        log_error("user %s is in virtual mailbox domain %s but auth_passwd_file is not set",
                  user, domain);
        strbuf_sets(reason, "no passwd-file configured for virtual users");
        v = VERDICT_TEMPFAIL;
        goto out;
    }
    if (found) {
        strbuf_set(&id->user, e.user.data, e.user.len);
        v = passwd_verify(s, s->passwd_file, &e, password, reason);
        if (v == VERDICT_OK && want_identity)
            v = passwd_identity(s, &e, id, reason);
        else if (v == VERDICT_OK)
            strbuf_sets(reason, "authenticated by passwd-file");
        goto out;
    }
    if (virtual_domain) {
        passwd_waste_time(password);
        strbuf_sets(reason, "unknown user");
        v = VERDICT_FAIL;
        goto out;
    }
    if (auth_domain_in(&s->mydestination, domain)) {
        char *local = xstrndup(user, (size_t)(at - user));
        v = via_pam(s, local, password, client, want_identity, id, reason);
        free(local);
        goto out;
    }
    passwd_waste_time(password);
    strbuf_printf(reason, "unknown user (domain %s is not served here)", domain);
    v = VERDICT_FAIL;
out:
    passwd_entry_free(&e);
    strbuf_free(&err);
    return v;
}
