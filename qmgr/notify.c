/*
 * notify.c - delivery status notifications (lib/mail/bounce.h) written as
 * new messages from the null sender into incoming/, where qmgr picks them up
 * like any other mail.
 *
 * Who gets one: the original sender; for mail from the null sender (itself
 * a notice, usually) a failure goes to postmaster only, and a notice to
 * postmaster that fails is discarded with a log line, so notices never loop.
 * The two kinds are told apart by the protocol attribute qmgr writes:
 * "bounce" for notices to senders, "postmaster-bounce" for postmaster's.
 */
#include "qmgr.h"
#include "mail/bounce.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROTO_NOTICE "bounce"
#define PROTO_POSTMASTER "postmaster-bounce"

/* The first `limit` bytes of the original's content. */
static int read_original(struct queue_file *qf, size_t limit, strbuf *out, strbuf *err)
{
    size_t want = qf->content_length < limit ? (size_t)qf->content_length : limit;
    strbuf_reset(out);
    strbuf_reserve(out, want);
    char buf[16384];
    while (out->len < want) {
        size_t n = want - out->len < sizeof(buf) ? want - out->len : sizeof(buf);
        ssize_t got = queue_file_read_content(qf, out->len, buf, n, err);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        strbuf_append(out, buf, (size_t)got);
    }
    return 0;
}

int qmgr_notice_send(struct qmgr *q, struct qmgr_msg *m, enum qmgr_notice kind,
                     const size_t *idx, size_t n)
{
    struct queue_file *qf = m->qf;
    bool to_postmaster = false;
    const char *to = qf->sender;
    if (*to == '\0') {
        if (kind != QMGR_NOTICE_FAILED)
            return 0;
        if (qf->protocol && strcmp(qf->protocol, PROTO_POSTMASTER) == 0) {
            log_event(m->id, "undeliverable postmaster notification discarded");
            return 0;
        }
        to = q->postmaster;
        to_postmaster = true;
    }

    strbuf original, out, err;
    strbuf_init(&original);
    strbuf_init(&out);
    strbuf_init(&err);
    struct bounce_rcpt *br = xcalloc(n, sizeof(*br));
    for (size_t i = 0; i < n; i++) {
        const struct queue_rcpt *r = &qf->rcpts[idx[i]];
        const struct qmgr_result *res = &m->res[idx[i]];
        br[i].address = r->address;
        br[i].orcpt = r->orcpt;
        br[i].status = res->dsn;
        if (res->mta && res->diag) {
            /* A remote server's reply decided it: RFC 3464's smtp type with
             * the raw reply; the explanation stays in the human part. */
            br[i].diag_type = "smtp";
            br[i].diagnostic = res->diag;
            br[i].remote_mta = res->mta;
            br[i].text = res->reason;
        } else {
            br[i].diag_type = "x-petrel";
            br[i].diagnostic = res->reason;
        }
    }
    long long lifetime = qf->sender[0] ? q->max_lifetime : q->bounce_lifetime;
    struct bounce_request req = {
        .kind = kind == QMGR_NOTICE_FAILED    ? BOUNCE_FAILED
                : kind == QMGR_NOTICE_DELAYED ? BOUNCE_DELAYED
                                              : BOUNCE_DELIVERED,
        .to_postmaster = to_postmaster,
        .queue_id = m->id,
        .hostname = q->hostname,
        .notice_text = q->notice_text,
        .to = to,
        .sender = qf->sender,
        .envid = qf->envid,
        .arrival = qf->arrival.tv_sec,
        .now = time(NULL),
        .retry_until = (time_t)(qf->arrival.tv_sec + lifetime),
        .ret_hdrs = qf->ret == QUEUE_RET_HDRS,
        .rcpts = br,
        .nrcpt = n,
        .content_total = qf->content_length,
        .size_limit = (size_t)q->bounce_size_limit,
    };
    int rc = -1;
    char newid[QUEUE_ID_SIZE];
    struct queue_writer *w = NULL;
    if (read_original(qf, (size_t)q->bounce_size_limit, &original, &err) < 0)
        goto out;
    req.content = original.data;
    req.content_len = original.len;
    const char *proto = to_postmaster ? PROTO_POSTMASTER : PROTO_NOTICE;
    if (queue_file_create(q->queue_dir, newid, &w, &err) < 0)
        goto out;
    req.new_id = newid;
    if (bounce_build(&req, &out, &err) < 0 || queue_file_set_sender(w, "", 0, &err) < 0 ||
        queue_file_set_attr(w, QUEUE_ATTR_PROTOCOL, proto, strlen(proto), &err) < 0 ||
        queue_file_add_recipient(w, to, strlen(to), NULL, 0, 0, &err) < 0 ||
        queue_file_write_content(w, out.data, out.len, &err) < 0) {
        queue_file_abort(&w);
        goto out;
    }
    if (queue_file_commit(&w, &err) < 0)
        goto out;
    rc = 0;
    q->scan_incoming = true;
    log_event(m->id, "%s %s notification: %s", to_postmaster ? "postmaster" : "sender",
              kind == QMGR_NOTICE_FAILED    ? "non-delivery"
              : kind == QMGR_NOTICE_DELAYED ? "delay"
                                            : "delivery status",
              newid);
out:
    if (rc < 0)
        log_warning("%s: cannot queue a delivery status notification: %s", m->id, err.data);
    free(br);
    strbuf_free(&original);
    strbuf_free(&out);
    strbuf_free(&err);
    return rc;
}
