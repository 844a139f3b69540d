/*
 * request.c - one connection from qmgr, many `deliver` requests in turn:
 * for each, open the queue file read-only (it is never written here: qmgr
 * records the results), expand and deliver each recipient, answer one
 * result per recipient, then the end record with reuse=yes (another request
 * may follow) unless this process is about to end.
 *
 * One recipient may expand to several destinations. Its single result is
 * the worst of theirs: deferred (the whole recipient is retried; the
 * destinations that did get the message will get it again — the
 * at-least-once rule, as in Postfix) over bounced (the sender learns which
 * part failed, the others were delivered) over sent. A failure found while
 * expanding that defers (a table error) stops before anything is
 * delivered, so the common temporary errors cause no duplicates.
 */
#include "local.h"
#include "mail/queue_file.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

static double now_seconds(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static const char *kind_name(enum action_kind k)
{
    switch (k) {
    case ACT_MAILBOX:
        return "mailbox";
    case ACT_FILE:
        return "file";
    case ACT_COMMAND:
        return "command";
    case ACT_VIRTUAL:
        return "virtual mailbox";
    default:
        return "forward";
    }
}

/* Folds one destination's result into the recipient's. */
static void combine(struct local_result *total, int *count, const struct local_result *one,
                    const char *where)
{
    int rank_total = total->status == DELIVERY_DEFERRED ? 2 : total->status == DELIVERY_BOUNCED;
    int rank_one = one->status == DELIVERY_DEFERRED ? 2 : one->status == DELIVERY_BOUNCED;
    (*count)++;
    if (*count == 1 || rank_one > rank_total) {
        if (where && one->status != DELIVERY_SENT)
            local_result_set(total, one->status, one->dsn, "%s: %s", where, one->reason.data);
        else
            local_result_set(total, one->status, one->dsn, "%s", one->reason.data);
    }
}

/* The per-destination line, Postfix-style (qmgr logs the recipient's
 * overall result): to= is the local address whose mailbox, file or
 * command got the message (or the remote address it was forwarded to),
 * orig_to= the recipient qmgr asked for when an alias or .forward led
 * elsewhere. */
static void log_action(const struct local_message *m, const char *orig, const struct action *a,
                       const char *to, const struct local_result *r)
{
    strbuf extra;
    strbuf_init(&extra);
    if (a->kind == ACT_COMMAND)
        strbuf_printf(&extra, " (%s: %s)", r->reason.data, a->text);
    else
        strbuf_printf(&extra, " (%s)", r->reason.data);
    if (strcmp(orig, to) == 0)
        log_event(m->id, "local: to=<%s>, delay=%.2f, dsn=%s, status=%s%s", to,
                  now_seconds() - m->arrival, r->dsn, delivery_status_name(r->status),
                  extra.data);
    else
        log_event(m->id, "local: to=<%s>, orig_to=<%s>, delay=%.2f, dsn=%s, status=%s%s", to,
                  orig, now_seconds() - m->arrival, r->dsn, delivery_status_name(r->status),
                  extra.data);
    strbuf_free(&extra);
}

static void deliver_recipient(struct local_settings *s, struct local_message *m,
                              const char *address, const char *orig, struct local_result *res)
{
    if (s->hopcount_limit > 0 && m->received > s->hopcount_limit) {
        local_result_set(res, DELIVERY_BOUNCED, "5.4.6",
                         "mail forwarding loop: %ld Received: headers (hopcount_limit %lld)",
                         m->received, s->hopcount_limit);
        return;
    }
    struct expansion e;
    expansion_init(&e);
    local_expand(s, m, address, &e);
    int count = 0;
    if (e.failed)
        combine(res, &count, &e.fail, NULL);
    if (!e.failed || e.fail.status != DELIVERY_DEFERRED) {
        struct local_result one;
        local_result_init(&one);
        bool *done = xcalloc(e.n ? e.n : 1, sizeof(bool));
        for (size_t i = 0; i < e.n; i++) {
            const struct action *a = &e.acts[i];
            if (done[i])
                continue;
            done[i] = true;
            local_result_set(&one, DELIVERY_DEFERRED, "4.3.0", "not attempted");
            strbuf dest;
            strbuf_init(&dest);
            switch (a->kind) {
            case ACT_MAILBOX:
                strbuf_sets(&dest, a->recipient);
                local_deliver_mailbox(s, m, a, &one);
                break;
            case ACT_FILE:
                strbuf_printf(&dest, "%s", a->text);
                local_deliver_file(s, m, a, &one);
                break;
            case ACT_VIRTUAL:
                strbuf_sets(&dest, a->recipient);
                local_deliver_virtual(s, m, a, &one);
                break;
            case ACT_COMMAND:
                strbuf_printf(&dest, "|%s", a->text);
                local_deliver_command(s, m, a, orig, &one);
                break;
            case ACT_REMOTE: {
                /* Every remote target forwarded by the same address goes
                 * into one new queue file. */
                const char **addrs = xcalloc(e.n, sizeof(char *));
                size_t n = 0;
                for (size_t k = i; k < e.n; k++) {
                    if (e.acts[k].kind == ACT_REMOTE &&
                        strcmp(e.acts[k].recipient, a->recipient) == 0) {
                        addrs[n++] = e.acts[k].text;
                        done[k] = true;
                    }
                }
                strbuf_sets(&dest, a->text);
                if (n > 1)
                    strbuf_printf(&dest, " (+%zu more)", n - 1);
                local_requeue(s, m, a->recipient, addrs, n, &one);
                free(addrs);
                break;
            }
            }
            log_action(m, orig, a, a->kind == ACT_REMOTE ? dest.data : a->recipient, &one);
            strbuf where;
            strbuf_init(&where);
            if (e.n > 1 || strcmp(a->recipient, address) != 0)
                strbuf_printf(&where, "%s %s", kind_name(a->kind), dest.data);
            combine(res, &count, &one, where.len ? where.data : NULL);
            strbuf_free(&where);
            strbuf_free(&dest);
        }
        free(done);
        local_result_free(&one);
        if (res->status == DELIVERY_SENT && e.n > 1)
            local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to %zu destinations",
                             e.n);
    }
    if (count == 0) /* cannot happen: an expansion ends in an action or a failure */
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "expansion found no destination");
    expansion_free(&e);
}

static void answer_all(int fd, const struct delivery_request *req, enum delivery_status st,
                       const char *dsn, const char *reason, bool reuse)
{
    for (size_t i = 0; i < req->nrcpt; i++) {
        struct delivery_result r;
        delivery_result_init(&r);
        delivery_result_set(&r, req->rcpts[i].index, st, dsn, "%s", reason);
        delivery_result_write(fd, &r);
        delivery_result_free(&r);
    }
    delivery_done_write_reuse(fd, reuse);
}

/* Serves one request; ends it with the end record (reuse: another request
 * may follow on this connection). */
static void serve_request(struct local_settings *s, int fd, struct delivery_request *req,
                          bool reuse)
{
    strbuf err, path;
    strbuf_init(&err);
    strbuf_init(&path);
    strbuf_printf(&path, "%s/active/%s", s->queue_dir, req->queue_id);
    struct queue_file *qf = NULL;
    if (queue_file_open_readonly(path.data, &qf, &err) < 0) {
        log_warning("%s: %s", req->queue_id, err.data);
        struct local_result r;
        local_result_init(&r);
        local_result_set(&r, DELIVERY_DEFERRED, "4.3.0", "cannot open the queue file: %s",
                         err.data);
        answer_all(fd, req, DELIVERY_DEFERRED, "4.3.0", r.reason.data, reuse);
        local_result_free(&r);
        goto out;
    }
    struct local_message m;
    memset(&m, 0, sizeof(m));
    m.qf = qf;
    m.id = req->queue_id;
    m.sender = qf->sender; /* first-hand: the file, not the request */
    m.arrival = (double)qf->arrival.tv_sec + qf->arrival.tv_usec / 1e6;
    strbuf_reset(&err);
    if (local_message_scan(&m, &err) < 0) {
        log_warning("%s: %s", req->queue_id, err.data);
        answer_all(fd, req, DELIVERY_DEFERRED, "4.3.0", "cannot read the queue file", reuse);
        local_message_free(&m);
        queue_file_close(&qf);
        goto out;
    }
    for (size_t i = 0; i < req->nrcpt; i++) {
        const struct delivery_rcpt *rc = &req->rcpts[i];
        struct local_result res;
        local_result_init(&res);
        if (rc->index >= qf->rcpt_count || strcmp(qf->rcpts[rc->index].address, rc->address.data) != 0) {
            local_result_set(&res, DELIVERY_DEFERRED, "4.3.0",
                             "request does not match the queue file (recipient %u)", rc->index);
        } else {
            /* ORIGINAL_RECIPIENT: the DSN ORCPT address when given, else
             * the envelope recipient. */
            const char *orig = rc->address.data;
            const char *o = qf->rcpts[rc->index].orcpt;
            if (o && strncasecmp(o, "rfc822;", 7) == 0 && o[7])
                orig = o + 7;
            deliver_recipient(s, &m, rc->address.data, orig, &res);
        }
        struct delivery_result r;
        delivery_result_init(&r);
        delivery_result_set(&r, rc->index, res.status, res.dsn, "%s", res.reason.data);
        if (delivery_result_write(fd, &r) < 0)
            log_warning("%s: cannot send the result for <%s> to qmgr", req->queue_id,
                        rc->address.data);
        delivery_result_free(&r);
        local_result_free(&res);
    }
    delivery_done_write_reuse(fd, reuse);
    local_message_free(&m);
    queue_file_close(&qf);
out:
    strbuf_free(&err);
    strbuf_free(&path);
}

void local_serve(struct local_settings *s, int fd)
{
    /* qmgr keeps its connection between requests, so one connection brings
     * many requests. The process still ends after max_use requests (not
     * connections), like every accept service. qmgr closes an idle
     * connection after 10 s; the read below waits longer for the next
     * request (DELIVERY_IO_TIMEOUT_MS), so it is qmgr that closes first. */
    static long served;
    for (;;) {
        struct delivery_request req;
        strbuf err;
        delivery_request_init(&req);
        strbuf_init(&err);
        int rc = delivery_request_read(fd, &req, &err);
        if (rc < 0)
            log_warning("bad deliver request: %s", err.data);
        strbuf_free(&err);
        if (rc != 0) {
            delivery_request_free(&req);
            break;
        }
        served++;
        bool more = !server_stopping() && (s->max_use <= 0 || served < s->max_use);
        serve_request(s, fd, &req, more);
        delivery_request_free(&req);
        if (!more)
            break;
    }
    if (s->max_use > 0 && served >= s->max_use)
        raise(SIGTERM); /* the skeleton's own way out after this client */
}
