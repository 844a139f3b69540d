/*
 * schedule.c - per-transport queues of batches: a batch waits in its
 * transport's FIFO until fewer than the transport's concurrency limit are
 * running, then gets a worker. Also the retry back-off.
 */
#include "qmgr.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

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
    b->fd = -1;
    if (tp->tail)
        tp->tail->next = b;
    else
        tp->head = b;
    tp->tail = b;
    m->batches++;
}

static void run_transport(struct qmgr *q, struct qmgr_transport *tp)
{
    while (tp->head && tp->running < tp->concurrency) {
        struct qmgr_batch *b = tp->head;
        tp->head = b->next;
        if (tp->head == NULL)
            tp->tail = NULL;
        b->next = NULL;
        if (qmgr_worker_start(q, b) < 0) {
            qmgr_worker_finish(q, b, "cannot start a delivery process");
            continue;
        }
        tp->running++;
        b->next = q->running;
        q->running = b;
    }
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
