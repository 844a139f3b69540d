/*
 * server.h - the SMTP server protocol engine (RFC 5321 with PIPELINING,
 * SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN), shared by
 * smtpd (port 25) and submission (587/465).
 *
 * smtp_server_run() drives one session over a netio from the greeting to the
 * end: it reads commands, checks their syntax and order, parses envelopes
 * and ESMTP parameters, frames message content (DATA with dot-unstuffing,
 * BDAT with byte counts) and enforces the limits (line length, size,
 * recipients, timeouts, errors). What to accept is the caller's business:
 * every decision point is a callback in struct smtp_server_ops that may fill
 * in a refusal. The engine never touches the queue, DNS or the policy.
 *
 * Defences that live here (see docs/smtp-server.md):
 * - SMTP smuggling: only <CRLF>.<CRLF> ends DATA. A bare LF or a bare CR
 *   anywhere in DATA content ends the session with 521 (the message is
 *   aborted); nothing after it is ever read as a command or a new message.
 * - STARTTLS injection (CVE-2011-0411): input pipelined behind STARTTLS is
 *   thrown away before the TLS hook runs, and netio_set_backend() drops any
 *   that is still buffered.
 * - Pre-greeting talkers, over-long commands, NUL and bare CR in commands,
 *   hostile ESMTP parameters (xtext decoding to control characters), error
 *   and recipient limits, timeouts.
 *
 * Replies always carry RFC 3463 enhanced status codes. Replies are buffered
 * and flushed when no more client input is buffered (RFC 2920 pipelining)
 * and before any read that could block.
 */
#ifndef PETREL_SMTP_SERVER_H
#define PETREL_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/address.h"
#include "util/netio.h"
#include "util/strbuf.h"

/* Defaults used where a config field is 0 (see struct smtp_server_config). */
#define SMTP_DEFAULT_MAX_LINE 2048
#define SMTP_DEFAULT_MAX_RCPT 1000
#define SMTP_DEFAULT_RCPT_OVERSHOOT 1000
#define SMTP_DEFAULT_CMD_TIMEOUT_MS (300 * 1000)
#define SMTP_DEFAULT_DATA_TIMEOUT_MS (300 * 1000)
#define SMTP_DEFAULT_SOFT_ERRORS 10
#define SMTP_DEFAULT_HARD_ERRORS 20
#define SMTP_DEFAULT_ERROR_DELAY_MS 1000

/* RFC 5321 §4.1.1.1: the EHLO/HELO argument, in octets. */
#define SMTP_HELO_MAX 255
/* RFC 3461: ENVID at most 100 characters, ORCPT at most 500. */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

struct smtp_server_config {
    const char *hostname; /* in the banner and replies; required */
    const char *greeting; /* banner text after the hostname; NULL: "ESMTP" */
    const char *client;   /* "name[addr]" for log lines; NULL: "unknown" */
    size_t max_line;      /* command line length, CRLF excluded; 0: default */
    uint64_t size_limit;  /* message content bytes; 0: no limit */
    size_t max_rcpt;      /* recipients per transaction; 0: default */
    /* 452 "too many recipients" replies that are not counted as errors (so a
     * client that overshoots the limit by pipelining is not disconnected);
     * 0: default. */
    size_t rcpt_overshoot;
    int cmd_timeout_ms;   /* per command line; 0: default */
    int data_timeout_ms;  /* per DATA line piece / BDAT piece; 0: default */
    /* Error limits: from the soft_errors-th error on, each error reply is
     * delayed by error_delay_ms; at hard_errors errors the session ends with
     * 421. 0 for soft/hard: default; a negative value: no limit. A negative
     * delay means none. */
    int soft_errors;
    int hard_errors;
    int error_delay_ms;
    /* Pre-greeting talker check: wait this long for input before sending the
     * banner; input means "554 5.5.1 Protocol error: talked before the
     * greeting" and the end. 0: only look at input already there; negative:
     * no check (implicit TLS, where the client speaks first). */
    int pregreet_ms;
    bool pipelining, eightbitmime, smtputf8, dsn, chunking;
    bool vrfy; /* false: VRFY answers 252; true: VRFY goes to on_command */
};

/* A reply a callback fills in. A callback that leaves code 0 accepts (the
 * engine's default reply is used); 2xx/3xx replaces the success reply where
 * the callback's doc says so; 4xx/5xx refuses. text may hold several lines
 * separated by '\n' (multi-line reply); control characters in it are
 * replaced when sent. Set it with smtp_reply_set(). */
struct smtp_reply {
    int code;
    char dsn[16]; /* "5.7.1"; empty: "c.0.0" derived from the code */
    strbuf text;
};

void smtp_reply_set(struct smtp_reply *r, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* NOTIFY bits (RFC 3461); 0 when the client gave no NOTIFY. */
#define SMTP_NOTIFY_NEVER 0x01
#define SMTP_NOTIFY_SUCCESS 0x02
#define SMTP_NOTIFY_FAILURE 0x04
#define SMTP_NOTIFY_DELAY 0x08

enum smtp_body { SMTP_BODY_UNSPEC, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_UNSPEC, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_rcpt {
    struct address addr;
    strbuf orcpt_type; /* ORCPT addr-type ("rfc822"); empty when absent */
    strbuf orcpt;      /* ORCPT address, xtext decoded, no control bytes */
    unsigned notify;   /* SMTP_NOTIFY_* */
};

/* One transaction. Strings hold no CR, LF, NUL or other control byte. */
struct smtp_envelope {
    const char *helo;      /* the session's HELO/EHLO name */
    bool esmtp;            /* EHLO (not HELO) was used */
    struct address sender;
    struct smtp_rcpt *rcpt; /* accepted recipients, in order */
    size_t nrcpt;
    uint64_t declared_size; /* MAIL SIZE=; 0 when absent */
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    strbuf envid;           /* ENVID, decoded; empty when absent */
    bool has_auth;          /* MAIL AUTH= was given */
    strbuf auth;            /* AUTH= mailbox, decoded ("<>" possible) */
    uint64_t size;          /* content bytes received so far */
    bool bdat;              /* content arrives by BDAT */
    size_t cap;             /* internal: allocated rcpt slots */
};

struct smtp_session;

/*
 * The callbacks. Every pointer may be NULL, meaning "accept". ctx is the
 * pointer given to smtp_server_run(). `r` arrives with code 0 and empty text.
 */
struct smtp_server_ops {
    /* Before the banner. 2xx: replaces the greeting text; 4xx/5xx: the
     * refusal is sent instead of the banner and the session ends. */
    void (*on_connect)(void *ctx, struct smtp_session *s, struct smtp_reply *r);
    /* EHLO/HELO with a syntactically valid name. Refusal: the session keeps
     * its previous HELO state. */
    void (*on_helo)(void *ctx, struct smtp_session *s, const char *name, bool esmtp,
                    struct smtp_reply *r);
    /* MAIL with a valid sender and parameters (env->sender etc. filled in). */
    void (*on_mail)(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    struct smtp_reply *r);
    /* RCPT with a valid recipient; it joins env->rcpt only if accepted. */
    void (*on_rcpt)(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    const struct smtp_rcpt *rcpt, struct smtp_reply *r);
    /* Before content: at DATA (before 354) or the first BDAT chunk. The glue
     * opens its queue file here. Refusal: no content is taken (BDAT: the
     * chunk is discarded) and the transaction is reset. */
    void (*on_data_start)(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          struct smtp_reply *r);
    /* Content bytes, exactly as they will be stored: DATA dot-unstuffed with
     * CRLF line ends, or BDAT bytes. Returns 0, or -1 to stop storing (the
     * rest of the content is read and dropped, and after its end the client
     * gets r, default "451 4.3.0"; on_data_abort follows). */
    int (*on_data_chunk)(void *ctx, struct smtp_session *s, const char *p, size_t n,
                         struct smtp_reply *r);
    /* The content is complete and valid: commit. Code 0: "250 2.0.0 Ok";
     * 2xx: that reply ("250 2.0.0 Ok: queued as ID"); 4xx/5xx: refused. */
    void (*on_data_end)(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                        struct smtp_reply *r);
    /* After on_data_start, the content will never be committed (client
     * vanished, timeout, size exceeded, bare newline, NUL, chunk refusal):
     * the glue discards its file. reason is a short English phrase. */
    void (*on_data_abort)(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          const char *reason);
    /* The transaction is forgotten: called once for every transaction that
     * had an accepted MAIL, whatever ended it (after on_data_end or
     * on_data_abort, RSET, HELO/EHLO, STARTTLS, disconnect). */
    void (*on_reset)(void *ctx, struct smtp_session *s);
    /* EHLO: append extra keyword lines ("AUTH PLAIN LOGIN"), each ended by
     * '\n'. STARTTLS is advertised by the engine itself. */
    void (*ehlo_keywords)(void *ctx, struct smtp_session *s, strbuf *out);
    /* STARTTLS: the engine has sent 220 and thrown away pipelined input;
     * the hook handshakes and swaps the netio backend (netio_set_backend).
     * Returns 0 (the engine then marks TLS active and forgets HELO and the
     * transaction) or -1 (the session ends silently). NULL: no STARTTLS. */
    int (*on_starttls)(void *ctx, struct smtp_session *s);
    /* Any verb the engine does not handle (AUTH, XCLIENT...), and VRFY when
     * cfg->vrfy is set. verb is upper-cased; args is what follows the first
     * space (NUL-free). The hook replies itself with smtp_session_reply()
     * (334 intermediate lines allowed) and may read further lines with
     * smtp_session_read_line(). Returns true when handled, false for the
     * engine's "500 5.5.2 Error: command not recognized". */
    bool (*on_command)(void *ctx, struct smtp_session *s, const char *verb, const char *args);
};

/* How a session ended (for the caller's log line). */
enum smtp_end {
    SMTP_END_QUIT,        /* QUIT */
    SMTP_END_DISCONNECT,  /* client closed without QUIT */
    SMTP_END_TIMEOUT,     /* 421 timeout */
    SMTP_END_IO_ERROR,    /* read or write error */
    SMTP_END_REFUSED,     /* on_connect refused */
    SMTP_END_PREGREET,    /* talked before the greeting */
    SMTP_END_ERRORS,      /* hard error limit */
    SMTP_END_PROTOCOL,    /* bare newline in DATA, bad BDAT, desync */
    SMTP_END_TLS_FAILED,  /* on_starttls returned -1 */
    SMTP_END_CLOSED,      /* a hook asked for the end (smtp_session_close) */
};

/*
 * Runs one session on io until it ends; returns why. The netio's timeouts
 * and maximum line are set from cfg. Output is flushed before returning;
 * the caller frees io and closes the descriptor. Session memory is released
 * before the return.
 */
enum smtp_end smtp_server_run(struct netio *io, const struct smtp_server_config *cfg,
                              const struct smtp_server_ops *ops, void *ctx);

/* A short English name for an end reason ("timeout"). */
const char *smtp_end_str(enum smtp_end e);

/* ---- for callbacks ---- */

/* Sends one reply ("code dsn text"; text may hold '\n' for a multi-line
 * reply; dsn NULL derives "c.0.0" from the code, "" sends none, as for 334;
 * control and non-ASCII bytes in text are replaced by '?'). 4xx/5xx replies count toward the error limits and are delayed
 * past the soft limit; at the hard limit a 421 follows and the session ends
 * after the current command. Returns 0, or -1 when the connection is broken. */
int smtp_session_reply(struct smtp_session *s, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads one client line (an AUTH response) with the command limits and
 * timeout, flushing pending replies first. Returns 0 with the line (no
 * terminator); 1 when the line was refused (too long, NUL, bare CR: the
 * engine already replied 500 5.5.2); -1 when the session is over (closed,
 * timeout: the engine already sent what it could). */
int smtp_session_read_line(struct smtp_session *s, strbuf *line);

/* Asks for the end of the session after the current command (the hook has
 * sent its last reply, e.g. 421). */
void smtp_session_close(struct smtp_session *s);

struct netio *smtp_session_netio(struct smtp_session *s);
const struct smtp_server_config *smtp_session_config(const struct smtp_session *s);
/* The HELO/EHLO name ("" before one), and whether it was EHLO. */
const char *smtp_session_helo(const struct smtp_session *s);
bool smtp_session_esmtp(const struct smtp_session *s);
/* TLS state: the engine sets it after a successful on_starttls; implicit
 * TLS glue sets it in on_connect. Details go into Received:. */
bool smtp_session_tls(const struct smtp_session *s);
void smtp_session_set_tls(struct smtp_session *s, bool active);
/* The authenticated user, set by the AUTH glue; NULL when not. */
const char *smtp_session_auth_user(const struct smtp_session *s);
void smtp_session_set_auth_user(struct smtp_session *s, const char *user);
/* The current transaction (never NULL; empty when none). */
const struct smtp_envelope *smtp_session_envelope(const struct smtp_session *s);
/* Errors counted so far (for the glue's AUTH failure policy). */
int smtp_session_errors(const struct smtp_session *s);

#endif
