/*
 * queue_sink.h - turns an SMTP transaction into a durable queue file: the
 * part of the SMTP server glue that smtpd and submission share.
 *
 * queue_sink_begin() (from on_data_start) creates incoming/.<id>, writes the
 * envelope (sender, recipients with DSN options, client attributes, ENVID,
 * RET) and the Received: header; queue_sink_write() (on_data_chunk) streams
 * the content; queue_sink_commit() (on_data_end) makes it durable, logs it
 * and wakes qmgr; queue_sink_abort() (on_data_abort) removes every trace.
 * Only a successful commit may be answered with 250.
 */
#ifndef PETREL_QUEUE_SINK_H
#define PETREL_QUEUE_SINK_H

#include <stdbool.h>
#include <time.h>

#include "mail/queue_id.h"
#include "smtp/server.h"

struct queue_writer;

/* Who is talking, for the envelope and the Received: header. */
struct queue_sink_client {
    const char *name;      /* reverse DNS name or "unknown" */
    const char *addr;      /* "127.0.0.1" */
    const char *log_name;  /* "unknown[127.0.0.1]" */
    bool tls;
    const char *tls_details;
    const char *auth_user; /* NULL when not authenticated */
};

struct queue_sink {
    const char *queue_dir;
    /* Where files go: "incoming" (daemons) or "maildrop" (sendmail -bs, run
     * by a local user, for pickup), with the file mode and the service to
     * wake. Set by queue_sink_init / queue_sink_use_maildrop. */
    const char *subdir;
    unsigned file_mode;
    const char *wake;
    const char *myhostname;
    const char *mail_name;
    struct queue_writer *w;
    char id[QUEUE_ID_SIZE];
    strbuf err;
};

void queue_sink_init(struct queue_sink *qs, const char *queue_dir, const char *myhostname,
                     const char *mail_name);
void queue_sink_free(struct queue_sink *qs);
/* Makes the sink write into maildrop/ (mode 0644) and wake pickup. */
void queue_sink_use_maildrop(struct queue_sink *qs);

/* Each returns 0, or -1 having filled r with the 4xx reply to send (and
 * having logged why); after -1 the sink holds no file. */
int queue_sink_begin(struct queue_sink *qs, const struct smtp_envelope *env,
                     const struct queue_sink_client *client, struct smtp_reply *r);
int queue_sink_write(struct queue_sink *qs, const char *p, size_t n, struct smtp_reply *r);
/* On success r is "250 2.0.0 Ok: queued as ID". */
int queue_sink_commit(struct queue_sink *qs, const struct smtp_envelope *env,
                      const struct queue_sink_client *client, struct smtp_reply *r);
void queue_sink_abort(struct queue_sink *qs, const char *reason);

/* The mailbox to store for a recipient: the canonical address, or
 * postmaster@myhostname for a bare <Postmaster>. */
void queue_sink_rcpt_address(strbuf *out, const struct address *a, const char *myhostname);

#endif
