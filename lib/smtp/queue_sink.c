/*
 * queue_sink.c - SMTP transaction -> queue file; see queue_sink.h.
 */
#include "smtp/queue_sink.h"
#include "mail/queue_file.h"
#include "mail/received.h"
#include "mail/trigger.h"
#include "util/log.h"

#include <string.h>

void queue_sink_init(struct queue_sink *qs, const char *queue_dir, const char *myhostname,
                     const char *mail_name)
{
    memset(qs, 0, sizeof(*qs));
    qs->queue_dir = queue_dir;
    qs->myhostname = myhostname;
    qs->mail_name = mail_name;
    qs->subdir = "incoming";
    qs->file_mode = 0600;
    qs->wake = "public/qmgr";
    strbuf_init(&qs->err);
}

void queue_sink_use_maildrop(struct queue_sink *qs)
{
    qs->subdir = "maildrop";
    qs->file_mode = 0644;
    qs->wake = "public/pickup";
}

void queue_sink_free(struct queue_sink *qs)
{
    queue_file_abort(&qs->w);
    strbuf_free(&qs->err);
}

void queue_sink_rcpt_address(strbuf *out, const struct address *a, const char *myhostname)
{
    strbuf_reset(out);
    address_format(out, a);
    if (a->is_postmaster)
        strbuf_printf(out, "@%s", myhostname);
}

static int fail(struct queue_sink *qs, struct smtp_reply *r, const char *what)
{
    log_error("%s: %s: %s", qs->id[0] ? qs->id : "NOQUEUE", what, qs->err.data);
    queue_file_abort(&qs->w);
    smtp_reply_set(r, 451, "4.3.0", "Error: queue file write error");
    return -1;
}

static enum queue_ret map_ret(enum smtp_ret ret)
{
    return ret == SMTP_RET_FULL ? QUEUE_RET_FULL : ret == SMTP_RET_HDRS ? QUEUE_RET_HDRS
                                                                        : QUEUE_RET_NONE;
}

static int set_attr(struct queue_sink *qs, enum queue_attr a, const char *v)
{
    if (v == NULL || *v == '\0')
        return 0;
    return queue_file_set_attr(qs->w, a, v, strlen(v), &qs->err);
}

int queue_sink_begin(struct queue_sink *qs, const struct smtp_envelope *env,
                     const struct queue_sink_client *c, struct smtp_reply *r)
{
    queue_file_abort(&qs->w);
    strbuf_reset(&qs->err);
    qs->id[0] = '\0';
    strbuf dir;
    strbuf_init(&dir);
    strbuf_printf(&dir, "%s/%s", qs->queue_dir, qs->subdir);
    int created = queue_file_create_in(dir.data, (mode_t)qs->file_mode, qs->id, &qs->w, &qs->err);
    strbuf_free(&dir);
    if (created < 0)
        return fail(qs, r, "cannot create queue file");
    const char *protocol =
        received_protocol(env->esmtp ? "ESMTP" : "SMTP", env->smtputf8, c->tls, c->auth_user != NULL);
    strbuf addr;
    strbuf_init(&addr);
    address_format(&addr, &env->sender);
    int rc = queue_file_set_sender(qs->w, addr.data, addr.len, &qs->err);
    if (rc == 0)
        rc = set_attr(qs, QUEUE_ATTR_CLIENT_NAME, c->name);
    if (rc == 0)
        rc = set_attr(qs, QUEUE_ATTR_CLIENT_ADDR, c->addr);
    if (rc == 0)
        rc = set_attr(qs, QUEUE_ATTR_HELO, env->helo);
    if (rc == 0)
        rc = set_attr(qs, QUEUE_ATTR_PROTOCOL, protocol);
    if (rc == 0)
        rc = set_attr(qs, QUEUE_ATTR_AUTH_USER, c->auth_user);
    if (rc == 0)
        rc = set_attr(qs, QUEUE_ATTR_ENVID, env->envid.data);
    if (rc == 0 && env->ret != SMTP_RET_UNSPEC)
        rc = queue_file_set_ret(qs->w, map_ret(env->ret), &qs->err);
    strbuf orcpt;
    strbuf_init(&orcpt);
    for (size_t i = 0; rc == 0 && i < env->nrcpt; i++) {
        const struct smtp_rcpt *rc_ = &env->rcpt[i];
        queue_sink_rcpt_address(&addr, &rc_->addr, qs->myhostname);
        strbuf_reset(&orcpt);
        bool has_orcpt = rc_->orcpt_type.len > 0;
        if (has_orcpt)
            strbuf_printf(&orcpt, "%s;%s", rc_->orcpt_type.data, rc_->orcpt.data);
        rc = queue_file_add_recipient(qs->w, addr.data, addr.len, has_orcpt ? orcpt.data : NULL,
                                      orcpt.len, rc_->notify, &qs->err);
    }
    if (rc == 0) {
        strbuf hdr;
        strbuf_init(&hdr);
        struct received_info ri = {
            .helo = env->helo, .client_name = c->name, .client_addr = c->addr,
            .by = qs->myhostname, .mail_name = qs->mail_name,
            .protocol = env->esmtp ? "ESMTP" : "SMTP", .tls = c->tls,
            .auth = c->auth_user != NULL, .smtputf8 = env->smtputf8,
            .tls_details = c->tls_details, .queue_id = qs->id,
            .for_rcpt = NULL, .when = time(NULL),
        };
        if (env->nrcpt == 1) {
            queue_sink_rcpt_address(&addr, &env->rcpt[0].addr, qs->myhostname);
            ri.for_rcpt = addr.data;
        }
        received_header(&hdr, &ri);
        rc = queue_file_write_content(qs->w, hdr.data, hdr.len, &qs->err);
        strbuf_free(&hdr);
    }
    strbuf_free(&addr);
    strbuf_free(&orcpt);
    if (rc < 0)
        return fail(qs, r, "cannot write queue file");
    log_event(qs->id, "client=%s%s%s", c->log_name, c->auth_user ? ", sasl_username=" : "",
              c->auth_user ? c->auth_user : "");
    return 0;
}

int queue_sink_write(struct queue_sink *qs, const char *p, size_t n, struct smtp_reply *r)
{
    if (qs->w == NULL) {
        smtp_reply_set(r, 451, "4.3.0", "Error: queue file write error");
        return -1;
    }
    if (queue_file_write_content(qs->w, p, n, &qs->err) < 0)
        return fail(qs, r, "cannot write queue file");
    return 0;
}

int queue_sink_commit(struct queue_sink *qs, const struct smtp_envelope *env,
                      const struct queue_sink_client *c, struct smtp_reply *r)
{
    (void)c;
    if (qs->w == NULL) {
        smtp_reply_set(r, 451, "4.3.0", "Error: queue file write error");
        return -1;
    }
    if (queue_file_commit(&qs->w, &qs->err) < 0)
        return fail(qs, r, "cannot commit queue file");
    strbuf from;
    strbuf_init(&from);
    address_format(&from, &env->sender);
    log_event(qs->id, "from=<%s>, size=%llu, nrcpt=%zu (queued)", from.data,
              (unsigned long long)env->size, env->nrcpt);
    strbuf_free(&from);
    trigger_send(qs->queue_dir, qs->wake, TRIGGER_NEW_MAIL);
    smtp_reply_set(r, 250, "2.0.0", "Ok: queued as %s", qs->id);
    return 0;
}

void queue_sink_abort(struct queue_sink *qs, const char *reason)
{
    if (qs->w) {
        log_event(qs->id, "discarded: %s", reason);
        queue_file_abort(&qs->w);
    }
}
