/*
 * backend_pam.c - system users through PAM (service auth_pam_service,
 * default "petrel": conf/pam.d/petrel includes Debian's common-auth and
 * common-account), and their identity from the password database.
 *
 * The conversation answers every PAM_PROMPT_ECHO_OFF prompt with the
 * password and nothing else: a module that wants a visible answer (a user
 * name, a one-time code) gets PAM_CONV_ERR, since a mail client has no way
 * to answer it. PAM's own failure delay is replaced by ours (throttle.c),
 * which grows with the client's failures instead of a fixed 2 s per try.
 */
#include "auth.h"
#include "util/log.h"
#include "util/privilege.h"

#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

struct conv_data {
    const char *password;
};

static int conversation(int n, const struct pam_message **msg, struct pam_response **resp,
                        void *appdata)
{
    const struct conv_data *cd = appdata;
    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    /* PAM frees the answers with free(): allocate them with calloc/strdup. */
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (r == NULL)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
            r[i].resp = strdup(cd->password);
            if (r[i].resp == NULL)
                goto fail;
            break;
        case PAM_ERROR_MSG:
        case PAM_TEXT_INFO:
            break; /* nobody to show it to */
        default:
            goto fail;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
fail:
    for (int i = 0; i < n; i++)
        if (r[i].resp) {
            explicit_bzero(r[i].resp, strlen(r[i].resp));
            free(r[i].resp);
        }
    free(r);
    return PAM_CONV_ERR;
}

/* PAM_FAIL_DELAY: we delay ourselves, per client. */
static void no_delay(int retval, unsigned usec, void *appdata)
{
    (void)retval;
    (void)usec;
    (void)appdata;
}

/* Which PAM errors mean "this user may not log in" (a definite no) rather
 * than "PAM could not decide" (try later). */
static enum auth_verdict classify(int rc)
{
    switch (rc) {
    case PAM_AUTH_ERR:
    case PAM_USER_UNKNOWN:
    case PAM_MAXTRIES:
    case PAM_PERM_DENIED:
    case PAM_ACCT_EXPIRED:
    case PAM_NEW_AUTHTOK_REQD:
    case PAM_CRED_INSUFFICIENT:
        return VERDICT_FAIL;
    default:
        return VERDICT_TEMPFAIL;
    }
}

enum auth_verdict pam_backend_verify(const struct auth_settings *s, const char *user,
                                     const char *password, const char *client, strbuf *canonical,
                                     strbuf *reason)
{
    struct conv_data cd = {password};
    struct pam_conv conv = {conversation, &cd};
    pam_handle_t *h = NULL;
    int rc = pam_start(s->pam_service, user, &conv, &h);
    if (rc != PAM_SUCCESS) {
        strbuf_printf(reason, "PAM start failed: %s", h ? pam_strerror(h, rc) : "no handle");
        log_error("PAM service %s: pam_start failed: %s", s->pam_service,
                  h ? pam_strerror(h, rc) : "no handle");
        if (h)
            pam_end(h, rc);
        return VERDICT_TEMPFAIL;
    }
    pam_set_item(h, PAM_RHOST, client);
    pam_set_item(h, PAM_FAIL_DELAY, (const void *)no_delay);
    const char *stage = "authentication";
    rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc == PAM_SUCCESS) {
        stage = "account check";
        rc = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    }
    enum auth_verdict v = VERDICT_OK;
    if (rc != PAM_SUCCESS) {
        v = classify(rc);
        strbuf_printf(reason, "PAM %s: %s", stage, pam_strerror(h, rc));
    } else {
        const void *item = NULL;
        if (pam_get_item(h, PAM_USER, &item) == PAM_SUCCESS && item != NULL)
            strbuf_sets(canonical, item);
        else
            strbuf_sets(canonical, user);
    }
    pam_end(h, rc);
    return v;
}

enum auth_verdict system_identity(const struct auth_settings *s, const char *user,
                                  struct auth_identity *id, strbuf *reason)
{
    struct priv_user pu;
    strbuf err;
    strbuf_init(&err);
    enum auth_verdict v = VERDICT_OK;
    enum priv_lookup rc = privilege_lookup_user(user, &pu, &err);
    if (rc == PRIV_LOOKUP_NOTFOUND) {
        strbuf_printf(reason, "PAM accepted %s but there is no such system user", user);
        v = VERDICT_FAIL;
    } else if (rc != PRIV_LOOKUP_FOUND) {
        strbuf_set(reason, err.data, err.len);
        v = VERDICT_TEMPFAIL;
    } else if (pu.uid == 0) {
        strbuf_printf(reason, "%s has uid 0: root never logs in to the mail system", user);
        v = VERDICT_FAIL;
    } else {
        strbuf_sets(&id->user, pu.name);
        strbuf_sets(&id->home, pu.home);
        id->uid = pu.uid;
        id->gid = pu.gid;
        if (*s->home_mailbox) {
            const char *rel = s->home_mailbox;
            while (*rel == '/')
                rel++;
            strbuf_printf(&id->mailbox, "%s/%s", pu.home, rel);
        } else {
            strbuf_printf(&id->mailbox, "%s/%s", s->spool_dir, pu.name);
        }
        if (id->home.len == 0 || id->home.data[0] != '/' || id->mailbox.data[0] != '/') {
            strbuf_printf(reason, "system user %s has no absolute home directory", user);
            v = VERDICT_TEMPFAIL;
        }
    }
    privilege_user_free(&pu);
    strbuf_free(&err);
    return v;
}
