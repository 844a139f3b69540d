/*
 * message.c - one message in active/, one round at a time: take it from
 * incoming/ or deferred/, give each unfinished recipient a transport, queue
 * batches, record each result in place as it comes, and when the last batch
 * ended decide: remove the file, bounce (after the notice is committed), or
 * defer it with exponential back-off; expire it after its lifetime.
 */
#include "qmgr.h"
#include "mail/resolve.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static void path_of(struct qmgr *q, const char *dir, const char *id, strbuf *out)
{
    strbuf_reset(out);
    strbuf_printf(out, "%s/%s/%s", q->queue_dir, dir, id);
}

/* local for mydestination and virtual mailbox domains (local-delivery
 * handles both), smtp for everything else. An address without a domain is
 * local (RFC 5321 allows <postmaster>). */
static struct qmgr_transport *transport_of(struct qmgr *q, const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL)
        return &q->local;
    strbuf dom;
    strbuf_init(&dom);
    for (const char *p = at + 1; *p; p++)
        strbuf_appendc(&dom, (char)tolower((unsigned char)*p));
    enum resolve_class c = resolver_class(q->resolver, dom.data);
    strbuf_free(&dom);
    return (c == RESOLVE_LOCAL || c == RESOLVE_VIRTUAL) ? &q->local : &q->smtp;
}

static double delay_of(const struct qmgr_msg *m)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    double d = (double)(now.tv_sec - m->qf->arrival.tv_sec) +
               (double)(now.tv_usec - m->qf->arrival.tv_usec) / 1e6;
    return d < 0 ? 0 : d;
}

void qmgr_result_free(struct qmgr_result *r)
{
    free(r->reason);
    free(r->mta);
    free(r->diag);
    r->reason = r->mta = r->diag = NULL;
}

static void msg_free(struct qmgr *q, struct qmgr_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->msgs = m->next;
    if (m->next)
        m->next->prev = m->prev;
    if (q->nmsgs-- >= QMGR_ACTIVE_LIMIT && q->deferred_cut)
        q->scan_deferred = true; /* room again for what the last scan left */
    for (size_t i = 0; i < m->qf->rcpt_count; i++)
        qmgr_result_free(&m->res[i]);
    free(m->res);
    queue_file_close(&m->qf);
    free(m);
}

void qmgr_message_start(struct qmgr *q, const char *dir, const char *id)
{
    for (struct qmgr_msg *m = q->msgs; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return;
    strbuf from, to, err;
    strbuf_init(&from);
    strbuf_init(&to);
    strbuf_init(&err);
    path_of(q, dir, id, &from);
    path_of(q, "active", id, &to);
    struct queue_file *qf = NULL;
    if (rename(from.data, to.data) < 0) {
        if (errno != ENOENT)
            log_warning("%s: cannot move %s to active/: %m", id, from.data);
        goto out;
    }
    if (queue_file_open(to.data, &qf, &err) < 0) {
        log_warning("%s: refusing queue file: %s; moving it to corrupt/", id, err.data);
        strbuf_reset(&err);
        if (queue_file_quarantine_from(q->queue_dir, "active", id, &err) < 0)
            log_error("%s: %s", id, err.data);
        goto out;
    }
    /* Results are written as they come but synced once at the end of the
     * round, and only if the file stays (see queue_file_set_lazy_sync). */
    queue_file_set_lazy_sync(qf, true);
    struct qmgr_msg *m = xcalloc(1, sizeof(*m));
    memcpy(m->id, id, QUEUE_ID_SIZE);
    m->qf = qf;
    m->res = xcalloc(qf->rcpt_count, sizeof(*m->res));
    m->next = q->msgs;
    if (q->msgs)
        q->msgs->prev = m;
    q->msgs = m;
    q->nmsgs++;
    log_event(id, "from=<%s>, size=%llu, nrcpt=%zu (queue active)", qf->sender,
              (unsigned long long)qf->content_length, qf->rcpt_count);

    /* Recipients per transport, in file order, cut into batches. The smtp
     * agent groups a batch's recipients by domain itself. */
    struct qmgr_transport *tps[] = { &q->local, &q->smtp };
    unsigned *list = xcalloc(qf->rcpt_count, sizeof(unsigned));
    for (size_t t = 0; t < 2; t++) {
        struct qmgr_transport *want = tps[t];
        size_t nlist = 0;
        for (size_t i = 0; i < qf->rcpt_count; i++) {
            if (queue_rcpt_status_final(qf->rcpts[i].status))
                continue;
            struct qmgr_transport *tp = transport_of(q, qf->rcpts[i].address);
            if (tp != want)
                continue;
            if (!tp->available)
                qmgr_message_result(q, m, (unsigned)i, DELIVERY_DEFERRED, tp->why_dsn, "none",
                                    tp->why, NULL, NULL);
            else
                list[nlist++] = (unsigned)i;
        }
        for (size_t i = 0; i < nlist; i += (size_t)want->rcpt_limit) {
            size_t n = nlist - i < (size_t)want->rcpt_limit ? nlist - i
                                                             : (size_t)want->rcpt_limit;
            qmgr_schedule_add(q, m, want, list + i, n);
        }
    }
    free(list);
    if (m->batches == 0)
        qmgr_message_batch_done(q, m); /* nothing to hand over: the round ends now */
out:
    strbuf_free(&from);
    strbuf_free(&to);
    strbuf_free(&err);
}

void qmgr_message_result(struct qmgr *q, struct qmgr_msg *m, unsigned index,
                         enum delivery_status st, const char *dsn, const char *relay,
                         const char *reason, const char *mta, const char *diag)
{
    (void)q;
    if (index >= m->qf->rcpt_count)
        return;
    struct qmgr_result *res = &m->res[index];
    const struct queue_rcpt *rc = &m->qf->rcpts[index];
    if (queue_rcpt_status_final(rc->status))
        return;
    res->set = true;
    res->status = st;
    snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
    qmgr_result_free(res);
    res->reason = xstrdup(reason);
    /* Both or neither: a Remote-MTA without the reply says nothing. */
    if (mta && *mta && diag && *diag) {
        res->mta = xstrdup(mta);
        res->diag = xstrdup(diag);
    }
    res->relay = relay;
    log_event(m->id, "to=<%s>, relay=%s, delay=%.1f, dsn=%s, status=%s (%s)", rc->address, relay,
              delay_of(m), dsn, delivery_status_name(st), reason);
    /* Delivered: final at once, so a crash repeats nothing. Bounced: marked
     * only after the notice is in the queue (round end), so a crash repeats
     * the attempt rather than losing the notice. */
    enum queue_rcpt_status mark = st == DELIVERY_SENT       ? QUEUE_RCPT_DONE
                                  : st == DELIVERY_DEFERRED ? QUEUE_RCPT_DEFERRED
                                                            : rc->status;
    if (mark != rc->status) {
        strbuf err;
        strbuf_init(&err);
        if (queue_file_set_recipient_status(m->qf, index, mark, &err) < 0)
            log_error("%s: %s", m->id, err.data);
        strbuf_free(&err);
    }
}

/* Marks every recipient in idx bounced (their notice is committed). */
static void mark_bounced(struct qmgr_msg *m, const size_t *idx, size_t n)
{
    strbuf err;
    strbuf_init(&err);
    for (size_t i = 0; i < n; i++)
        if (queue_file_set_recipient_status(m->qf, idx[i], QUEUE_RCPT_BOUNCED, &err) < 0)
            log_error("%s: %s", m->id, err.data);
    strbuf_free(&err);
}

static bool wants(unsigned notify, unsigned bit)
{
    if (notify & QUEUE_NOTIFY_NEVER)
        return false;
    return notify == 0 ? bit != QUEUE_NOTIFY_SUCCESS : (notify & bit) != 0;
}

/* defer/<id>: why each still-deferred recipient waits, for mailq. Written
 * to a temporary name and renamed, so a reader sees a whole file; a failure
 * only costs the listing its reasons. */
static void write_defer_reasons(struct qmgr *q, struct qmgr_msg *m)
{
    strbuf text, tmp, final;
    strbuf_init(&text);
    strbuf_init(&tmp);
    strbuf_init(&final);
    for (size_t i = 0; i < m->qf->rcpt_count; i++) {
        const struct qmgr_result *r = &m->res[i];
        if (m->qf->rcpts[i].status == QUEUE_RCPT_DEFERRED && r->set && r->reason)
            strbuf_printf(&text, "%s\t%s %s\n", m->qf->rcpts[i].address, r->dsn, r->reason);
    }
    strbuf_printf(&tmp, "%s/defer/.%s", q->queue_dir, m->id);
    strbuf_printf(&final, "%s/defer/%s", q->queue_dir, m->id);
    FILE *f = fopen(tmp.data, "w");
    if (f == NULL || fwrite(text.data, 1, text.len, f) != text.len || fclose(f) != 0 ||
        rename(tmp.data, final.data) < 0) {
        if (f == NULL)
            log_warning("%s: cannot record the defer reasons: %m", m->id);
        unlink(tmp.data);
    }
    strbuf_free(&text);
    strbuf_free(&tmp);
    strbuf_free(&final);
}

static void remove_defer_reasons(struct qmgr *q, const char *id)
{
    strbuf p;
    strbuf_init(&p);
    strbuf_printf(&p, "%s/defer/%s", q->queue_dir, id);
    unlink(p.data);
    strbuf_free(&p);
}

/* The end of a round: bounces, notices, then remove or defer. */
static void round_end(struct qmgr *q, struct qmgr_msg *m)
{
    struct queue_file *qf = m->qf;
    time_t now = time(NULL);
    bool null_sender = qf->sender[0] == '\0';
    long long lifetime = null_sender ? q->bounce_lifetime : q->max_lifetime;
    bool expired = (long long)(now - qf->arrival.tv_sec) >= lifetime;
    size_t n = qf->rcpt_count;
    size_t *failed = xcalloc(n, sizeof(size_t)), *notify_fail = xcalloc(n, sizeof(size_t));
    size_t *success = xcalloc(n, sizeof(size_t)), *delayed = xcalloc(n, sizeof(size_t));
    size_t nf = 0, nnf = 0, ns = 0, nd = 0, nexpired = 0;

    for (size_t i = 0; i < n; i++) {
        struct qmgr_result *r = &m->res[i];
        if (!r->set)
            continue;
        unsigned notify = qf->rcpts[i].notify;
        if (r->status == DELIVERY_DEFERRED && expired) {
            strbuf why;
            strbuf_init(&why);
            strbuf_printf(&why, "message expired: %s", r->reason);
            free(r->reason);
            r->reason = strbuf_detach(&why, NULL);
            r->status = DELIVERY_BOUNCED;
            nexpired++;
        }
        if (r->status == DELIVERY_BOUNCED) {
            failed[nf++] = i;
            if (null_sender || wants(notify, QUEUE_NOTIFY_FAILURE))
                notify_fail[nnf++] = i;
        } else if (r->status == DELIVERY_SENT) {
            if (wants(notify, QUEUE_NOTIFY_SUCCESS))
                success[ns++] = i;
        } else if (wants(notify, QUEUE_NOTIFY_DELAY)) {
            delayed[nd++] = i;
        }
    }
    if (nexpired)
        log_event(m->id, "from=<%s>, status=expired, returned to sender", qf->sender);

    if (nf > 0) {
        if (nnf == 0 || qmgr_notice_send(q, m, QMGR_NOTICE_FAILED, notify_fail, nnf) == 0) {
            mark_bounced(m, failed, nf);
        } else {
            /* No notice, no bounce: keep them and try again later. */
            strbuf err;
            strbuf_init(&err);
            for (size_t i = 0; i < nf; i++)
                if (queue_file_set_recipient_status(qf, failed[i], QUEUE_RCPT_DEFERRED, &err) < 0)
                    log_error("%s: %s", m->id, err.data);
            strbuf_free(&err);
        }
    }
    if (ns > 0 && !null_sender)
        qmgr_notice_send(q, m, QMGR_NOTICE_SUCCESS, success, ns);

    uint32_t attempts = qf->attempts;
    if (q->delay_warning > 0 && !(attempts & QUEUE_ATTEMPTS_DELAY_WARNED) && !expired &&
        queue_file_unfinished(qf) > 0 && (long long)(now - qf->arrival.tv_sec) >= q->delay_warning) {
        if (nd == 0 || null_sender || qmgr_notice_send(q, m, QMGR_NOTICE_DELAYED, delayed, nd) == 0)
            attempts |= QUEUE_ATTEMPTS_DELAY_WARNED;
    }

    strbuf path, to, err;
    strbuf_init(&path);
    strbuf_init(&to);
    strbuf_init(&err);
    path_of(q, "active", m->id, &path);
    if (queue_file_unfinished(qf) == 0) {
        if (unlink(path.data) < 0)
            log_error("%s: cannot remove %s: %m", m->id, path.data);
        else
            log_event(m->id, "removed");
        if (QUEUE_ATTEMPTS_COUNT(qf->attempts) > 0)
            remove_defer_reasons(q, m->id); /* only a message deferred before has one */
    } else {
        queue_file_set_lazy_sync(qf, false);
        if (queue_file_sync(qf, &err) < 0)
            log_error("%s: %s", m->id, err.data);
        uint32_t count = QUEUE_ATTEMPTS_COUNT(attempts);
        if (count < 0x7fffffffu)
            count++;
        long long wait = qmgr_backoff(q->min_backoff, q->max_backoff, count);
        if (queue_file_set_schedule(qf, count | (attempts & QUEUE_ATTEMPTS_DELAY_WARNED),
                                    (int64_t)now + wait, &err) < 0)
            log_error("%s: %s", m->id, err.data);
        write_defer_reasons(q, m);
        path_of(q, "deferred", m->id, &to);
        if (rename(path.data, to.data) < 0)
            log_error("%s: cannot move to deferred/: %m", m->id);
    }
    strbuf_free(&path);
    strbuf_free(&to);
    strbuf_free(&err);
    free(failed);
    free(notify_fail);
    free(success);
    free(delayed);
    msg_free(q, m);
}

void qmgr_message_batch_done(struct qmgr *q, struct qmgr_msg *m)
{
    if (m->batches > 0)
        m->batches--;
    if (m->batches == 0)
        round_end(q, m);
}
