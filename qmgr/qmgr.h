/*
 * qmgr.h - the queue manager's shared state, between its few files:
 *
 *   main.c      server_main, settings, the event loop (triggers, timers,
 *               workers' results)
 *   scan.c      the queue directories: recovery of active/ at start,
 *               scans of incoming/ and deferred/, stale temporary files
 *   message.c   one message in active/: recipients to transports, batches,
 *               results recorded in place, the end of a round (remove,
 *               bounce, defer with back-off)
 *   schedule.c  per-transport queues of batches and concurrency limits
 *   worker.c    one forked process per batch that talks to the delivery
 *               agent and relays its answers to the parent
 *   notify.c    delivery status notifications written into incoming/
 *
 * The parent is the only process that writes queue files; workers only read
 * the agent's socket and report back (docs/qmgr.md explains why).
 */
#ifndef PETREL_QMGR_H
#define PETREL_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mail/delivery.h"
#include "mail/queue_file.h"
#include "util/strbuf.h"

struct config;
struct resolver;

/* Seconds between scans of incoming/ when no trigger came. */
#define QMGR_INCOMING_SCAN_SECONDS 5
/* Messages held open (in active/) at once; the rest wait in their directory. */
#define QMGR_ACTIVE_LIMIT 200
/* Temporary files of writers that died are removed after this many seconds. */
#define QMGR_STALE_TEMP_SECONDS (24 * 3600)

struct qmgr_msg;

/* A transport: a delivery agent at <queue>/private/<name>. */
struct qmgr_transport {
    const char *name;
    bool available;          /* false: recipients are deferred with `why` */
    const char *why_dsn, *why;
    long concurrency;        /* most batches in flight */
    long rcpt_limit;         /* most recipients per batch */
    int running;
    struct qmgr_batch *head, *tail; /* waiting batches */
};

/* One delivery request: some recipients of one message for one transport. */
struct qmgr_batch {
    struct qmgr_msg *msg;
    struct qmgr_transport *tp;
    unsigned *idx;           /* recipient indexes in the queue file */
    bool *answered;
    size_t n;
    pid_t pid;               /* worker, once started */
    int fd;                  /* parent's end of the worker's socket */
    struct qmgr_batch *next;
};

/* What happened to one recipient in this round. */
struct qmgr_result {
    bool set;
    enum delivery_status status;
    char dsn[16];
    char *reason;
    const char *relay;       /* transport name, or "none" */
};

struct qmgr_msg {
    char id[QUEUE_ID_SIZE];
    struct queue_file *qf;
    struct qmgr_result *res; /* one per recipient of the file */
    size_t batches;          /* waiting or running */
    struct qmgr_msg *prev, *next;
};

struct qmgr {
    struct config *cfg;
    int *listen_fds;          /* the trigger listener(s), closed in workers */
    int nlisten;
    const char *queue_dir;
    struct resolver *resolver;
    struct qmgr_transport local, smtp;
    const char *hostname;     /* myhostname */
    const char *notice_text;  /* bounce_notice_text */
    char *postmaster;         /* postmaster@<first mydestination domain> */
    long long max_lifetime, bounce_lifetime, min_backoff, max_backoff;
    long long queue_run_delay, delay_warning, bounce_size_limit;
    struct qmgr_msg *msgs;    /* in active/ */
    size_t nmsgs;
    struct qmgr_batch *running; /* batches with a worker */
    bool scan_incoming;       /* scan incoming/ at the next turn */
    bool scan_deferred;
    bool flush;               /* the next deferred scan ignores retry times */
};

/* scan.c */
void qmgr_recover_active(struct qmgr *q);
void qmgr_scan_incoming(struct qmgr *q);
void qmgr_scan_deferred(struct qmgr *q, bool all);

/* message.c */
/* Takes <dir>/<id> (dir "incoming" or "deferred") into active/ and starts a
 * round of deliveries. Corrupt files are quarantined. */
void qmgr_message_start(struct qmgr *q, const char *dir, const char *id);
/* Records a result for recipient index of msg (from a worker, or decided by
 * qmgr itself) and logs it. */
void qmgr_message_result(struct qmgr *q, struct qmgr_msg *m, unsigned index,
                         enum delivery_status st, const char *dsn, const char *relay,
                         const char *reason);
/* A batch of m ended; when it was the last one, the round ends. */
void qmgr_message_batch_done(struct qmgr *q, struct qmgr_msg *m);

/* schedule.c */
void qmgr_schedule_add(struct qmgr *q, struct qmgr_msg *m, struct qmgr_transport *tp,
                       const unsigned *idx, size_t n);
/* Starts workers for waiting batches while the limits allow. */
void qmgr_schedule_run(struct qmgr *q);
/* Back-off after `attempts` attempts: min * 2^(attempts-1), capped at max. */
long long qmgr_backoff(long long min, long long max, uint32_t attempts);

/* worker.c */
/* Forks the worker of b; returns 0, or -1 (the batch is then answered as
 * deferred by the caller). */
int qmgr_worker_start(struct qmgr *q, struct qmgr_batch *b);
/* Reads what the worker of b sent; returns true when the batch is over. */
bool qmgr_worker_input(struct qmgr *q, struct qmgr_batch *b);
/* Ends a batch: unanswered recipients are deferred, the worker is reaped. */
void qmgr_worker_finish(struct qmgr *q, struct qmgr_batch *b, const char *why);
void qmgr_reap(void);

/* notify.c */
enum qmgr_notice {
    QMGR_NOTICE_FAILED,
    QMGR_NOTICE_DELAYED,
    QMGR_NOTICE_SUCCESS,
};
/* Writes one notice about the recipients idx[0..n) of m into incoming/.
 * Returns 0 (the notice is committed, or there was nobody to send it to),
 * or -1 when it could not be written (the caller keeps the recipients). */
int qmgr_notice_send(struct qmgr *q, struct qmgr_msg *m, enum qmgr_notice kind,
                     const size_t *idx, size_t n);

#endif
