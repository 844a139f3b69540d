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
 *   agent.c     connections to the delivery agents, kept open between
 *               batches, read and written without blocking by the loop
 *   notify.c    delivery status notifications written into incoming/
 *
 * qmgr is the only process that writes queue files; agents open them
 * read-only (docs/qmgr.md explains why).
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
/* An idle agent connection is closed after this long (the agent waits
 * longer for the next request, so it never closes one qmgr may still use). */
#define QMGR_AGENT_IDLE_MS 10000
/* After a full listen queue at an agent (all its processes busy), the next
 * connect attempt comes this much later. */
#define QMGR_AGENT_RETRY_MS 100

struct qmgr_msg;

/* Queue ids from a directory listing, sorted (= oldest first). */
struct qmgr_names {
    char (*ids)[QUEUE_ID_SIZE];
    size_t n, cap;
};

/* A transport: a delivery agent at <queue>/private/<name>. */
struct qmgr_transport {
    const char *name;
    bool available;          /* false: recipients are deferred with `why` */
    const char *why_dsn, *why;
    long concurrency;        /* most batches in flight (and connections open) */
    long dest_concurrency;   /* most of them for one destination; 0: no such limit */
    long rcpt_limit;         /* most recipients per batch */
    int running;             /* connections with a batch */
    int nconns;              /* connections open, idle ones included */
    long long retry_at;      /* CLOCK_MONOTONIC ms: no connect before this */
    struct qmgr_batch *head, *tail; /* waiting batches */
};

/* One delivery request: some recipients of one message for one transport. */
struct qmgr_batch {
    struct qmgr_msg *msg;
    struct qmgr_transport *tp;
    unsigned *idx;           /* recipient indexes in the queue file */
    char *dest;              /* destination, for dest_concurrency: the lowercased
                              * recipient (one per batch) or its domain */
    bool *answered;
    size_t n;
    struct qmgr_batch *next; /* in the transport's FIFO */
};

/* A connection to a delivery agent: busy with one batch, or idle (kept for
 * the next batch of its transport when the agent said reuse=yes). */
struct qmgr_conn {
    struct qmgr_transport *tp;
    int fd;                  /* non-blocking */
    struct qmgr_batch *batch; /* NULL: idle */
    strbuf out;              /* the request, out_off bytes of it sent */
    size_t out_off;
    strbuf in;               /* bytes from the agent not parsed yet */
    long long deadline;      /* busy: CLOCK_MONOTONIC ms by which the agent must have progressed */
    long long idle_since;    /* idle: since when (CLOCK_MONOTONIC ms) */
    struct qmgr_conn *next;
};

/* What happened to one recipient in this round. */
struct qmgr_result {
    bool set;
    enum delivery_status status;
    char dsn[16];
    char *reason;
    const char *relay;       /* transport name, or "none" */
    char *mta;               /* remote server that decided it (agent's mta=), or NULL */
    char *diag;              /* its raw reply (agent's diag=), or NULL */
};
/* Frees what a result holds (reason, mta, diag). */
void qmgr_result_free(struct qmgr_result *r);

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
    struct qmgr_conn *conns;  /* agent connections, busy and idle */
    bool scan_incoming;       /* list incoming/ again once `incoming` is used up */
    struct qmgr_names incoming; /* the last listing of incoming/ */
    size_t incoming_next;     /* its next id to take */
    bool scan_deferred;
    bool deferred_cut;        /* the last deferred scan stopped at QMGR_ACTIVE_LIMIT */
    bool flush;               /* the next deferred scan ignores retry times */
};

/* scan.c */
void qmgr_recover_active(struct qmgr *q);
/* Takes ids of the last listing of incoming/ while there is room; lists the
 * directory again only when that listing is used up. */
void qmgr_scan_incoming(struct qmgr *q);
/* Takes ids of the last listing only (no directory access). */
void qmgr_take_incoming(struct qmgr *q);
/* True when a new listing of incoming/ would be used now. */
bool qmgr_incoming_listable(const struct qmgr *q);
void qmgr_scan_deferred(struct qmgr *q, bool all);

/* message.c */
/* Takes <dir>/<id> (dir "incoming" or "deferred") into active/ and starts a
 * round of deliveries. Corrupt files are quarantined. */
void qmgr_message_start(struct qmgr *q, const char *dir, const char *id);
/* Records a result for recipient index of msg (from a worker, or decided by
 * qmgr itself) and logs it. mta and diag (NULL or empty: none) are the
 * remote server and its raw reply when one decided the result; they reach
 * the delivery status notification only (Remote-MTA, Diagnostic-Code). */
void qmgr_message_result(struct qmgr *q, struct qmgr_msg *m, unsigned index,
                         enum delivery_status st, const char *dsn, const char *relay,
                         const char *reason, const char *mta, const char *diag);
/* A batch of m ended; when it was the last one, the round ends. */
void qmgr_message_batch_done(struct qmgr *q, struct qmgr_msg *m);

/* schedule.c */
void qmgr_schedule_add(struct qmgr *q, struct qmgr_msg *m, struct qmgr_transport *tp,
                       const unsigned *idx, size_t n);
/* Starts workers for waiting batches while the limits allow. */
void qmgr_schedule_run(struct qmgr *q);
/* Milliseconds until a transport may try to connect again, or -1. */
int qmgr_schedule_poll_ms(const struct qmgr *q);
/* Back-off after `attempts` attempts: min * 2^(attempts-1), capped at max. */
long long qmgr_backoff(long long min, long long max, uint32_t attempts);

/* agent.c */
/* Hands b to an agent connection of its transport (an idle one, or a new
 * one). Returns 0 (started, or answered "deferred" at once when the agent is
 * unavailable), or 1 when the agent's listen queue is full (b is untouched:
 * try again after QMGR_AGENT_RETRY_MS). */
int qmgr_agent_start(struct qmgr *q, struct qmgr_batch *b);
/* The poll loop saw revents on c's descriptor. */
void qmgr_agent_event(struct qmgr *q, struct qmgr_conn *c, short revents);
/* Timeouts of busy connections, expiry of idle ones (all of them once
 * stopping). */
void qmgr_agent_timers(struct qmgr *q);
/* Milliseconds until the next qmgr_agent_timers matters, or -1. */
int qmgr_agent_poll_ms(const struct qmgr *q);
/* At exit: every connection closed, unanswered recipients deferred. */
void qmgr_agent_close_all(struct qmgr *q);

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
