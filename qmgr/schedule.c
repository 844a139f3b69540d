/*
 * schedule.c - per-transport queues of batches: a batch waits in its
 * transport's FIFO until fewer than the transport's limit are running and
 * fewer than the destination's limit for its destination, then gets an
 * agent connection (agent.c). Also the retry back-off.
 */
#include "qmgr.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void qmgr_schedule_add(struct qmgr *q, struct qmgr_msg *m, struct qmgr_transport *tp,
                       const unsigned *idx, size_t n)
{
    (void)q;
    struct qmgr_batch *b = xcalloc(1, sizeof(*b));
    b->msg = m;
    b->tp = tp;
    b->n = n;
    b->idx = xcalloc(n, sizeof(unsigned));
    memcpy(b->idx, idx, n * sizeof(unsigned));
    b->answered = xcalloc(n, sizeof(bool));
    /* Postfix's rule: with one recipient per batch the destination is the
     * recipient, otherwise its domain. */
    const char *addr = m->qf->rcpts[idx[0]].address;
    const char *at = strrchr(addr, '@');
    const char *key = n == 1 && tp->rcpt_limit == 1 ? addr : at ? at + 1 : addr;
    b->dest = xstrdup(key);
    for (char *p = b->dest; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (tp->tail)
        tp->tail->next = b;
    else
        tp->head = b;
    tp->tail = b;
    m->batches++;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Batches of tp for dest in flight. */
static long dest_running(const struct qmgr *q, const struct qmgr_transport *tp, const char *dest)
{
    long n = 0;
    for (const struct qmgr_conn *c = q->conns; c; c = c->next)
        if (c->tp == tp && c->batch && strcmp(c->batch->dest, dest) == 0)
            n++;
    return n;
}

/* Starts waiting batches of tp, oldest first, while the transport's limit
 * allows; a batch whose destination is at its own limit is passed over (it
 * keeps its place) so that other destinations are not held up behind it. */
static void run_transport(struct qmgr *q, struct qmgr_transport *tp)
{
    if (tp->head && tp->retry_at && now_ms() < tp->retry_at)
        return;
    tp->retry_at = 0;
    struct qmgr_batch **pp = &tp->head, *prev = NULL;
    while (*pp && tp->running < tp->concurrency) {
        struct qmgr_batch *b = *pp;
        if (tp->dest_concurrency > 0 && dest_running(q, tp, b->dest) >= tp->dest_concurrency) {
            prev = b;
            pp = &b->next;
            continue;
        }
        *pp = b->next;
        if (tp->tail == b)
            tp->tail = prev;
        b->next = NULL;
        /* qmgr_agent_start may end (and free) b at once: unlinked first. */
        if (qmgr_agent_start(q, b) > 0) {
            /* Every agent process is busy and the listen queue is full:
             * b goes back to its place. */
            b->next = *pp;
            *pp = b;
            if (b->next == NULL)
                tp->tail = b;
            tp->retry_at = now_ms() + QMGR_AGENT_RETRY_MS;
            return;
        }
    }
}

int qmgr_schedule_poll_ms(const struct qmgr *q)
{
    const struct qmgr_transport *tps[] = { &q->local, &q->smtp };
    long long now = now_ms(), wake = -1;
    for (size_t t = 0; t < 2; t++)
        if (tps[t]->head && tps[t]->retry_at && (wake < 0 || tps[t]->retry_at < wake))
            wake = tps[t]->retry_at;
    if (wake < 0)
        return -1;
    return wake <= now ? 0 : (int)(wake - now);
}

void qmgr_schedule_run(struct qmgr *q)
{
    run_transport(q, &q->local);
    run_transport(q, &q->smtp);
}

long long qmgr_backoff(long long min, long long max, uint32_t attempts)
{
    long long wait = min;
    for (uint32_t i = 1; i < attempts && wait < max; i++)
        wait *= 2;
    return wait > max ? max : wait;
}
