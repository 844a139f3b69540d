/*
 * rcpt_check.c - the RCPT decision shared by smtpd and submission (moved
 * here from smtpd/policy.c); see smtp_check_rcpt in service.h.
 */
#include "smtp/service.h"
#include "util/log.h"

static void reject(struct smtp_conn *c, const struct smtp_envelope *env,
                   const strbuf *rcpt, struct smtp_reply *r, int code, const char *dsn,
                   const char *why)
{
    smtp_reply_set(r, code, dsn, "<%s>: %s", rcpt->data, why);
    strbuf from;
    strbuf_init(&from);
    address_format(&from, &env->sender);
    log_event(NULL, "reject: RCPT from %s: %d %s <%s>: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
              c->client_log, code, dsn, rcpt->data, why, from.data, rcpt->data,
              env->esmtp ? "ESMTP" : "SMTP", env->helo ? env->helo : "");
    strbuf_free(&from);
}

void smtp_check_rcpt(struct smtp_conn *c, bool may_relay, const struct smtp_envelope *env,
                     const struct smtp_rcpt *rcpt, struct smtp_reply *r)
{
    const struct address *a = &rcpt->addr;
    if (a->is_postmaster)
        return; /* RFC 5321 §4.1.1.3: always ours */
    strbuf text;
    strbuf_init(&text);
    address_format(&text, a);
    struct resolver *res = c->settings->resolver;
    enum resolve_class cls =
        a->domain_is_literal ? RESOLVE_REMOTE : resolver_class(res, a->domain.data);
    if (cls == RESOLVE_REMOTE) {
        if (!may_relay)
            reject(c, env, &text, r, 554, "5.7.1", "Relay access denied");
        strbuf_free(&text);
        return;
    }
    if (cls == RESOLVE_RELAY) {
        strbuf_free(&text);
        return;
    }
    if (address_has_routing_chars(a)) {
        reject(c, env, &text, r, 550, "5.7.1",
               "Recipient address rejected: '%', '!' and '@' are not routing characters here");
        strbuf_free(&text);
        return;
    }
    strbuf why;
    strbuf_init(&why);
    switch (resolver_exists(res, a->local.data, a->domain.data, &why)) {
    case RESOLVE_EXISTS:
        break;
    case RESOLVE_NO_SUCH_USER:
        reject(c, env, &text, r, 550, "5.1.1",
               cls == RESOLVE_LOCAL
                   ? "Recipient address rejected: User unknown in local recipient table"
                   : "Recipient address rejected: User unknown in virtual mailbox table");
        break;
    case RESOLVE_LOOKUP_ERROR:
        log_warning("recipient lookup for <%s> failed: %s", text.data, why.data);
        reject(c, env, &text, r, 451, "4.3.0", "Temporary lookup failure");
        break;
    }
    strbuf_free(&why);
    strbuf_free(&text);
}
