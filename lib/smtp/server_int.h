/*
 * server_int.h - what the files of the SMTP server engine share: the session
 * state and the internal helpers. Not for use outside lib/smtp/.
 *
 * session.c   run loop, command dispatch, replies, errors, HELO/EHLO, misc
 * envelope.c  transaction state and accessors
 * mail.c      MAIL and RCPT with their ESMTP parameters
 * data.c      DATA (dot framing, smuggling defence) and the content sink
 * bdat.c      BDAT (RFC 3030 CHUNKING)
 */
#ifndef PETREL_SMTP_SERVER_INT_H
#define PETREL_SMTP_SERVER_INT_H

#include "smtp/server.h"

struct smtp_session {
    struct netio *io;
    struct smtp_server_config cfg; /* copy with defaults filled in */
    const struct smtp_server_ops *ops;
    void *ctx;

    strbuf helo;
    bool have_helo;
    bool esmtp;
    bool tls;
    char *auth_user;

    struct smtp_envelope env;
    bool in_mail; /* MAIL accepted: a transaction is open */

    /* Content in progress (DATA or BDAT). */
    bool data_started;   /* on_data_start accepted; abort/end still owed */
    bool sink_failed;    /* on_data_chunk refused: drop the rest */
    bool too_big;        /* size limit passed: drop the rest */
    bool saw_nul;        /* NUL in content */
    bool bad_newline;    /* BDAT: bare CR or LF in content */
    bool bdat_cr;        /* BDAT: the previous piece ended in CR */
    struct smtp_reply sink_reply;
    strbuf content;      /* bytes waiting for on_data_chunk */

    int errors;
    size_t overshoot; /* uncounted 452 too-many-recipients replies */
    bool closing;     /* end the session after this command */
    enum smtp_end end;

    struct smtp_rcpt cand; /* RCPT being checked */
    strbuf line;    /* the current command line */
    strbuf logbuf;  /* smtp_logsafe */
    strbuf scratch; /* reply formatting */
    struct smtp_reply reply; /* handed to callbacks */
};

/* Replies through the error accounting (session.c). Internal replies that
 * must not count (421 closing, 452 overshoot) use smtp_reply_nocount. */
int smtp_reply_nocount(struct smtp_session *s, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends a callback's reply r, or the default when r->code is 0. Counts
 * 4xx/5xx. */
void smtp_send_reply(struct smtp_session *s, const struct smtp_reply *r, int def_code,
                     const char *def_dsn, const char *def_text);
/* Prepares s->reply for a callback. */
struct smtp_reply *smtp_fresh_reply(struct smtp_session *s);
/* Ends the session with 421 for a timeout, or silently for a closed or
 * broken connection; logs what happened during `what`. */
void smtp_read_failed(struct smtp_session *s, enum netio_status st, const char *what);
/* Flushes output when no client input is buffered (RFC 2920). */
int smtp_flush_if_idle(struct smtp_session *s);
/* A log-safe, bounded copy of client text (for log arguments). */
const char *smtp_logsafe(struct smtp_session *s, const char *p, size_t n);

/* envelope.c */
void smtp_envelope_init(struct smtp_envelope *env);
void smtp_envelope_free(struct smtp_envelope *env);
void smtp_envelope_clear(struct smtp_envelope *env);
struct smtp_rcpt *smtp_envelope_add_rcpt(struct smtp_envelope *env);
void smtp_rcpt_init(struct smtp_rcpt *r);
void smtp_rcpt_free(struct smtp_rcpt *r);
/* Ends the transaction: on_data_abort (when content was started and not
 * committed, with reason), then on_reset (when MAIL was accepted). */
void smtp_transaction_end(struct smtp_session *s, const char *abort_reason);

/* mail.c */
void smtp_cmd_mail(struct smtp_session *s, const char *args, size_t n);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t n);

/* data.c */
void smtp_cmd_data(struct smtp_session *s, const char *args, size_t n);
/* Content sink shared with BDAT: counts, enforces the size limit, batches
 * bytes to on_data_chunk. */
void smtp_content_add(struct smtp_session *s, const char *p, size_t n);
void smtp_content_flush(struct smtp_session *s);
/* Starts content: on_data_start; false (reply sent, transaction reset) when
 * refused. */
bool smtp_content_start(struct smtp_session *s);
/* Finishes content after its end was seen: the final reply, then the end of
 * the transaction. */
void smtp_content_finish(struct smtp_session *s);

/* bdat.c */
void smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t n);

#endif
