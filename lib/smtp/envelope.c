/*
 * envelope.c - the transaction state of an SMTP session (struct
 * smtp_envelope), the end of a transaction with its callbacks, and the
 * session accessors for callbacks.
 */
#include "smtp/server_int.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

void smtp_rcpt_init(struct smtp_rcpt *r)
{
    address_init(&r->addr);
    strbuf_init(&r->orcpt_type);
    strbuf_init(&r->orcpt);
    r->notify = 0;
}

void smtp_rcpt_free(struct smtp_rcpt *r)
{
    address_free(&r->addr);
    strbuf_free(&r->orcpt_type);
    strbuf_free(&r->orcpt);
}

void smtp_envelope_init(struct smtp_envelope *env)
{
    memset(env, 0, sizeof(*env));
    env->helo = "";
    address_init(&env->sender);
    strbuf_init(&env->envid);
    strbuf_init(&env->auth);
}

void smtp_envelope_clear(struct smtp_envelope *env)
{
    for (size_t i = 0; i < env->nrcpt; i++)
        smtp_rcpt_free(&env->rcpt[i]);
    env->nrcpt = 0;
    address_reset(&env->sender);
    strbuf_reset(&env->envid);
    strbuf_reset(&env->auth);
    env->has_auth = false;
    env->declared_size = 0;
    env->body = SMTP_BODY_UNSPEC;
    env->smtputf8 = false;
    env->ret = SMTP_RET_UNSPEC;
    env->size = 0;
    env->bdat = false;
}

void smtp_envelope_free(struct smtp_envelope *env)
{
    smtp_envelope_clear(env);
    free(env->rcpt);
    env->rcpt = NULL;
    env->cap = 0;
    address_free(&env->sender);
    strbuf_free(&env->envid);
    strbuf_free(&env->auth);
}

struct smtp_rcpt *smtp_envelope_add_rcpt(struct smtp_envelope *env)
{
    if (env->nrcpt == env->cap) {
        size_t cap = env->cap == 0 ? 8 : env->cap * 2;
        env->rcpt = xreallocarray(env->rcpt, cap, sizeof(*env->rcpt));
        env->cap = cap;
    }
    return &env->rcpt[env->nrcpt++];
}

void smtp_transaction_end(struct smtp_session *s, const char *abort_reason)
{
    if (s->data_started) {
        s->data_started = false;
        if (s->ops->on_data_abort != NULL)
            s->ops->on_data_abort(s->ctx, s, &s->env,
                                  abort_reason != NULL ? abort_reason : "transaction ended");
    }
    if (s->in_mail) {
        s->in_mail = false;
        if (s->ops->on_reset != NULL)
            s->ops->on_reset(s->ctx, s);
    }
    smtp_envelope_clear(&s->env);
    strbuf_reset(&s->content);
    s->sink_failed = s->too_big = s->saw_nul = s->bad_newline = s->bdat_cr = false;
}

/* ---- accessors ---- */

struct netio *smtp_session_netio(struct smtp_session *s)
{
    return s->io;
}

const struct smtp_server_config *smtp_session_config(const struct smtp_session *s)
{
    return &s->cfg;
}

const char *smtp_session_helo(const struct smtp_session *s)
{
    return s->have_helo ? s->helo.data : "";
}

bool smtp_session_esmtp(const struct smtp_session *s)
{
    return s->have_helo && s->esmtp;
}

bool smtp_session_tls(const struct smtp_session *s)
{
    return s->tls;
}

void smtp_session_set_tls(struct smtp_session *s, bool active)
{
    s->tls = active;
}

const char *smtp_session_auth_user(const struct smtp_session *s)
{
    return s->auth_user;
}

void smtp_session_set_auth_user(struct smtp_session *s, const char *user)
{
    free(s->auth_user);
    s->auth_user = user != NULL ? xstrdup(user) : NULL;
}

const struct smtp_envelope *smtp_session_envelope(const struct smtp_session *s)
{
    return &s->env;
}

int smtp_session_errors(const struct smtp_session *s)
{
    return s->errors;
}

void smtp_session_close(struct smtp_session *s)
{
    if (!s->closing) {
        s->closing = true;
        s->end = SMTP_END_CLOSED;
    }
}
