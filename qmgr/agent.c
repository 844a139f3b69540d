/*
 * agent.c - qmgr's connections to the delivery agents, driven by the main
 * poll loop: no process per batch. A batch gets a connection to
 * <queue>/private/<transport> (an idle one of that transport when there is
 * one, else a new one), its request is written without blocking, and the
 * agent's result records are parsed as they arrive and recorded at once.
 * An agent that ends a request with `reuse=yes` (lib/mail/delivery.h) keeps
 * the connection for the next batch of the same transport; the others
 * (smtp-client) close it after one request.
 *
 * Every recipient the agent did not answer - agent socket missing, agent
 * crashed, timed out or broke the protocol - is deferred here, with the
 * same reasons the forked workers of earlier versions gave. Only this
 * process writes queue files; agents open them read-only.
 */
#define _GNU_SOURCE
#include "qmgr.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Bytes read from an agent per poll wake-up. */
#define AGENT_READ_CHUNK 16384

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to the agent without blocking. Returns the fd; -1 with why set
 * (the agent is unavailable); -2 when its listen queue is full (try again
 * a little later: every agent process is busy and master is starting more). */
static int agent_connect(struct qmgr *q, const char *transport, strbuf *why)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s", q->queue_dir,
                     transport);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        strbuf_printf(why, "socket path %s/private/%s is too long", q->queue_dir, transport);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_printf(why, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        close(fd);
        if (e == EAGAIN)
            return -2;
        strbuf_printf(why, "connect to private/%s: %s", transport, strerror(e));
        return -1;
    }
    return fd;
}

static void conn_close(struct qmgr *q, struct qmgr_conn *c)
{
    for (struct qmgr_conn **p = &q->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->tp->nconns--;
    close(c->fd);
    strbuf_free(&c->out);
    strbuf_free(&c->in);
    free(c);
}

/* Ends the batch of c: the unanswered recipients are deferred with why
 * (dsn), the batch is freed and its message told. */
static void batch_end(struct qmgr *q, struct qmgr_conn *c, const char *dsn, const char *why)
{
    struct qmgr_batch *b = c->batch;
    c->batch = NULL;
    c->tp->running--;
    for (size_t k = 0; k < b->n; k++)
        if (!b->answered[k])
            qmgr_message_result(q, b->msg, b->idx[k], DELIVERY_DEFERRED, dsn, b->tp->name, why,
                                NULL, NULL);
    struct qmgr_msg *m = b->msg;
    free(b->idx);
    free(b->answered);
    free(b->dest);
    free(b);
    qmgr_message_batch_done(q, m);
}

/* The connection is broken: defer what is left of its batch and drop it. */
static void conn_fail(struct qmgr *q, struct qmgr_conn *c, const char *what)
{
    if (c->batch) {
        strbuf why;
        strbuf_init(&why);
        strbuf_printf(&why, "delivery agent %s failed: %s", c->tp->name, what);
        batch_end(q, c, "4.3.0", why.data);
        strbuf_free(&why);
    }
    conn_close(q, c);
}

/* Writes what is pending of the request. -1: the connection failed. */
static int conn_flush(struct qmgr *q, struct qmgr_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            strbuf why;
            strbuf_init(&why);
            strbuf_printf(&why, "cannot send the request: %s", strerror(errno));
            conn_fail(q, c, why.data);
            strbuf_free(&why);
            return -1;
        }
        c->out_off += (size_t)w;
        c->deadline = now_ms() + DELIVERY_IO_TIMEOUT_MS;
    }
    strbuf_reset(&c->out);
    c->out_off = 0;
    c->deadline = now_ms() + DELIVERY_RESULT_TIMEOUT_MS;
    return 0;
}

int qmgr_agent_start(struct qmgr *q, struct qmgr_batch *b)
{
    struct qmgr_transport *tp = b->tp;
    struct qmgr_conn *c = NULL;
    for (struct qmgr_conn *o = q->conns; o; o = o->next)
        if (o->tp == tp && o->batch == NULL) {
            c = o;
            break;
        }
    if (c == NULL) {
        strbuf why;
        strbuf_init(&why);
        int fd = agent_connect(q, tp->name, &why);
        if (fd == -2) {
            strbuf_free(&why);
            return 1;
        }
        if (fd < 0) {
            strbuf err;
            strbuf_init(&err);
            strbuf_printf(&err, "delivery agent %s unavailable: %s", tp->name, why.data);
            tp->running++; /* batch_end counts it down */
            struct qmgr_conn tmp = { .tp = tp, .batch = b, .fd = -1 };
            batch_end(q, &tmp, "4.4.1", err.data);
            strbuf_free(&err);
            strbuf_free(&why);
            return 0;
        }
        strbuf_free(&why);
        c = xcalloc(1, sizeof(*c));
        c->tp = tp;
        c->fd = fd;
        strbuf_init(&c->out);
        strbuf_init(&c->in);
        c->next = q->conns;
        q->conns = c;
        tp->nconns++;
    }
    const struct queue_file *qf = b->msg->qf;
    struct delivery_request req;
    delivery_request_init(&req);
    memcpy(req.queue_id, b->msg->id, QUEUE_ID_SIZE);
    strbuf_sets(&req.sender, qf->sender);
    req.arrival = qf->arrival.tv_sec;
    for (size_t i = 0; i < b->n; i++) {
        const struct queue_rcpt *r = &qf->rcpts[b->idx[i]];
        delivery_request_add(&req, b->idx[i], r->address, r->orcpt, r->notify);
    }
    strbuf_reset(&c->out);
    c->out_off = 0;
    delivery_request_serialize(&req, &c->out);
    delivery_request_free(&req);
    c->batch = b;
    tp->running++;
    c->deadline = now_ms() + DELIVERY_IO_TIMEOUT_MS;
    conn_flush(q, c); /* a failure ends the batch already */
    return 0;
}

/* Records what the agent sent so far; returns -1 when c was closed. */
static int conn_parse(struct qmgr *q, struct qmgr_conn *c)
{
    size_t pos = 0;
    int rc = 0;
    struct delivery_result res;
    delivery_result_init(&res);
    strbuf err;
    strbuf_init(&err);
    while (pos < c->in.len) {
        size_t used;
        bool reuse;
        enum delivery_parse st =
            delivery_result_parse(c->in.data + pos, c->in.len - pos, &used, &res, &reuse, &err);
        if (st == DELIVERY_PARSE_INCOMPLETE)
            break;
        if (st == DELIVERY_PARSE_ERROR || c->batch == NULL) {
            /* Bytes from an idle agent are a protocol error too. */
            if (st != DELIVERY_PARSE_ERROR)
                strbuf_sets(&err, "delivery agent sent records without a request");
            if (c->batch)
                log_warning("%s: delivery agent %s: %s", c->batch->msg->id, c->tp->name,
                            err.data);
            else
                log_warning("delivery agent %s: %s", c->tp->name, err.data);
            conn_fail(q, c, err.data);
            rc = -1;
            break;
        }
        pos += used;
        struct qmgr_batch *b = c->batch;
        if (st == DELIVERY_PARSE_DONE) {
            batch_end(q, c, "4.3.0", "delivery agent gave no answer");
            if (!reuse || server_stopping() || pos < c->in.len) {
                conn_close(q, c);
                rc = -1;
                break;
            }
            c->idle_since = now_ms();
            continue;
        }
        size_t k;
        for (k = 0; k < b->n && b->idx[k] != res.index; k++)
            ;
        if (k == b->n || b->answered[k]) {
            strbuf_reset(&err);
            strbuf_printf(&err, "answer for recipient %u that was not asked for or answered "
                                "twice", res.index);
            log_warning("%s: delivery agent %s: %s", b->msg->id, c->tp->name, err.data);
            conn_fail(q, c, err.data);
            rc = -1;
            break;
        }
        b->answered[k] = true;
        qmgr_message_result(q, b->msg, res.index, res.status, res.dsn, b->tp->name,
                            res.reason.data, res.mta.data, res.diag.data);
        c->deadline = now_ms() + DELIVERY_RESULT_TIMEOUT_MS;
    }
    if (rc == 0 && pos > 0) {
        memmove(c->in.data, c->in.data + pos, c->in.len - pos);
        strbuf_truncate(&c->in, c->in.len - pos);
    }
    delivery_result_free(&res);
    strbuf_free(&err);
    return rc;
}

void qmgr_agent_event(struct qmgr *q, struct qmgr_conn *c, short revents)
{
    if ((revents & POLLOUT) && c->out_off < c->out.len && c->batch) {
        if (conn_flush(q, c) < 0)
            return;
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    strbuf_reserve(&c->in, AGENT_READ_CHUNK);
    ssize_t r = recv(c->fd, c->in.data + c->in.len, AGENT_READ_CHUNK, MSG_DONTWAIT);
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        strbuf why;
        strbuf_init(&why);
        strbuf_printf(&why, "read error: %s", strerror(errno));
        conn_fail(q, c, why.data);
        strbuf_free(&why);
        return;
    }
    if (r == 0) {
        conn_fail(q, c, "delivery agent closed the connection before the end record");
        return;
    }
    c->in.len += (size_t)r;
    c->in.data[c->in.len] = '\0';
    conn_parse(q, c);
}

void qmgr_agent_timers(struct qmgr *q)
{
    long long now = now_ms();
    struct qmgr_conn *next;
    for (struct qmgr_conn *c = q->conns; c; c = next) {
        next = c->next;
        if (c->batch && now >= c->deadline) {
            log_warning("%s: delivery agent %s: timed out", c->batch->msg->id, c->tp->name);
            conn_fail(q, c, "timed out waiting for the agent");
        } else if (c->batch == NULL &&
                   (server_stopping() || now - c->idle_since >= QMGR_AGENT_IDLE_MS)) {
            conn_close(q, c); /* the agent process goes back to master's pool */
        }
    }
}

int qmgr_agent_poll_ms(const struct qmgr *q)
{
    long long now = now_ms(), wake = -1;
    for (const struct qmgr_conn *c = q->conns; c; c = c->next) {
        long long at = c->batch ? c->deadline : c->idle_since + QMGR_AGENT_IDLE_MS;
        if (wake < 0 || at < wake)
            wake = at;
    }
    if (wake < 0)
        return -1;
    return wake <= now ? 0 : (int)(wake - now < 1000000 ? wake - now : 1000000);
}

void qmgr_agent_close_all(struct qmgr *q)
{
    /* Nothing is recorded: a batch still running (master went away) stays
     * unanswered, and its message is moved back from active/ at the next
     * start. */
    while (q->conns) {
        struct qmgr_conn *c = q->conns;
        if (c->batch) {
            free(c->batch->idx);
            free(c->batch->answered);
            free(c->batch->dest);
            free(c->batch);
            c->batch = NULL;
        }
        conn_close(q, c);
    }
}
