/*
 * queue_file.h - the queue file: one file per message, named by its queue id.
 *
 * A queue file holds typed, length-prefixed envelope records (format
 * version, arrival time, retry schedule, size, sender, client information,
 * DSN options, recipients with their state), then the message content as
 * one counted record, then a required end record. docs/queue.md describes
 * every record byte by byte; this header is the programming interface.
 *
 * Writers (smtpd, submission, pickup, qmgr for bounces) build the file under
 * a temporary name in incoming/ and commit it: end record, flush, fsync,
 * close, rename to incoming/<id>, fsync incoming/. A message is accepted
 * (250 after DATA) only after queue_file_commit() returned 0.
 *
 * Readers (qmgr, delivery agents, mailq) open a file with queue_file_open(),
 * which validates every record and the whole structure as if the file were
 * hostile, refuses symlinks and hard-linked files, and exposes the envelope
 * plus the position of the content for streaming. Recipient states and the
 * retry schedule are fixed-width fields updated in place (pwrite + fsync).
 *
 * Every function that can fail returns -1 (or NULL) and replaces the text of
 * `err` with a message for the administrator that names the file and the
 * problem; none of them logs by itself.
 */
#ifndef PETREL_QUEUE_FILE_H
#define PETREL_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

#include "mail/queue_id.h"
#include "util/strbuf.h"

/* ---- On-disk format, version 1 (docs/queue.md) ---------------------------- */

#define QUEUE_FILE_VERSION 1
/* Every record: one type byte, then the payload length as 4 bytes big-endian. */
#define QUEUE_REC_HDR_LEN 5

enum queue_rec_type {
    QREC_VERSION = 'V',     /* u32 format version; always the first record */
    QREC_ARRIVAL = 'T',     /* u64 seconds + u32 microseconds since the epoch */
    QREC_SCHEDULE = 'Q',    /* u32 attempts + u64 next retry (epoch seconds); in place */
    QREC_SIZE = 'Z',        /* u64 content size; must equal the content record length */
    QREC_SENDER = 'S',      /* text; empty = null sender <> */
    QREC_CLIENT_NAME = 'C', /* text: client host name (as verified by smtpd) */
    QREC_CLIENT_ADDR = 'A', /* text: client IP address */
    QREC_HELO = 'H',        /* text: HELO/EHLO argument */
    QREC_PROTOCOL = 'P',    /* text: SMTP, ESMTP, ESMTPSA, ..., or "sendmail" */
    QREC_AUTH_USER = 'U',   /* text: SASL authenticated user */
    QREC_ENVID = 'I',       /* text: DSN ENVID (RFC 3461), already xtext-decoded */
    QREC_RET = 'F',         /* 1 byte: DSN RET, 'F' (full) or 'H' (headers) */
    QREC_RCPT = 'R',        /* one recipient, see docs/queue.md; status in place */
    QREC_CONTENT = 'M',     /* the message (headers + body, as received) */
    QREC_END = 'X',         /* empty; the last record; nothing may follow */
};

/* Limits the writer enforces and the reader checks before it allocates. */
#define QUEUE_MAX_VALUE 4096        /* bytes in one text value */
#define QUEUE_MAX_RCPTS 100000      /* recipients in one file */
#define QUEUE_MAX_CONTENT UINT32_MAX /* bytes of message content */

/* Recipient state: one byte on disk, updated in place. */
enum queue_rcpt_status {
    QUEUE_RCPT_PENDING = 'P',  /* not yet tried */
    QUEUE_RCPT_DEFERRED = 'W', /* tried, failed temporarily; will be retried */
    QUEUE_RCPT_DONE = 'D',     /* delivered (final) */
    QUEUE_RCPT_BOUNCED = 'B',  /* failed permanently, bounce handled (final) */
};

/* DSN NOTIFY (RFC 3461) as a bit set; 0 means the client did not say.
 * NEVER excludes every other bit. */
#define QUEUE_NOTIFY_NEVER 0x01u
#define QUEUE_NOTIFY_SUCCESS 0x02u
#define QUEUE_NOTIFY_FAILURE 0x04u
#define QUEUE_NOTIFY_DELAY 0x08u

/* The attempt count of the schedule record (QREC_SCHEDULE) carries one flag
 * in its top bit: qmgr sent the delay warning for this message (it sends at
 * most one). Files written before the flag existed simply have it clear. */
#define QUEUE_ATTEMPTS_DELAY_WARNED 0x80000000u
#define QUEUE_ATTEMPTS_COUNT(a) ((uint32_t)(a) & 0x7fffffffu)

/* DSN RET (RFC 3461). */
enum queue_ret {
    QUEUE_RET_NONE = 0, /* not given: no QREC_RET record */
    QUEUE_RET_FULL = 'F',
    QUEUE_RET_HDRS = 'H',
};

/* The optional text attributes of a message (one record type each). */
enum queue_attr {
    QUEUE_ATTR_CLIENT_NAME,
    QUEUE_ATTR_CLIENT_ADDR,
    QUEUE_ATTR_HELO,
    QUEUE_ATTR_PROTOCOL,
    QUEUE_ATTR_AUTH_USER,
    QUEUE_ATTR_ENVID,
};

/* True when the n bytes at s may be stored as a metadata value: no CR, LF
 * or NUL (BAD-INPUT.md row 7) and at most QUEUE_MAX_VALUE bytes. */
bool queue_value_ok(const char *s, size_t n);
bool queue_rcpt_status_valid(int status);
/* True for DONE and BOUNCED: nothing more to do for this recipient. */
bool queue_rcpt_status_final(enum queue_rcpt_status status);
/* "pending", "deferred", "done", "bounced" or "invalid". */
const char *queue_rcpt_status_name(int status);
/* True when notify uses only the four known bits and NEVER stands alone. */
bool queue_notify_valid(unsigned notify);

/* ---- Queue directories ----------------------------------------------------- */

/* Creates queue_dir (if missing, mode 0755) and its subdirectories maildrop/
 * (01730), incoming/ active/ deferred/ hold/ corrupt/ private/ (0700),
 * public/ (0710) and pid/ (0755). Modes are set exactly (umask does not
 * apply); ownership is master's business. An existing subdirectory is kept
 * as it is, but a symlink or non-directory in its place is an error.
 * Returns 0 or -1 with err set. */
int queue_dirs_create(const char *queue_dir, strbuf *err);

/* Moves <queue_dir>/<subdir>/<id> into <queue_dir>/corrupt/ and fsyncs both
 * directories. subdir must be one of incoming, active, deferred, hold; id
 * must pass queue_id_valid(). Returns 0 or -1 with err set. */
int queue_file_quarantine_from(const char *queue_dir, const char *subdir, const char *id,
                               strbuf *err);
/* Same, looking for the id in incoming/, active/, deferred/ and hold/ in that
 * order; -1 if it is in none of them. */
int queue_file_quarantine(const char *queue_dir, const char *id, strbuf *err);

/* ---- Writing ----------------------------------------------------------------- */

struct queue_writer;

/* Starts a new message: makes a fresh queue id, creates
 * <queue_dir>/incoming/.<id> (O_EXCL, O_NOFOLLOW, mode 0600; the leading dot
 * keeps every scanner away from it) and writes the version, arrival (now),
 * schedule (0 attempts) and size placeholder records. The id is copied to
 * id_r when id_r is not NULL. Returns 0 and *w_r, or -1 with err set. */
int queue_file_create(const char *queue_dir, char id_r[QUEUE_ID_SIZE],
                      struct queue_writer **w_r, strbuf *err);
/* queue_file_create_in: the same in another directory (the full path), with
 * the given file mode: `sendmail` writes its maildrop/ file this way (mode
 * 0644, so that pickup, running as the mail owner, can read a file owned by
 * the local user). The commit renames within that directory. */
int queue_file_create_in(const char *dir, mode_t mode, char id_r[QUEUE_ID_SIZE],
                         struct queue_writer **w_r, strbuf *err);
const char *queue_writer_id(const struct queue_writer *w);

/* The envelope. Each setter may be called once, before the first content is
 * written; values are (pointer, length) so that an embedded NUL is seen and
 * refused rather than silently cutting the value. A value with CR, LF or NUL
 * or longer than QUEUE_MAX_VALUE is refused with -1. Once any call failed,
 * the writer is broken and every later call fails with the first error; the
 * caller answers 4xx and aborts. */
int queue_file_set_arrival(struct queue_writer *w, const struct timeval *tv, strbuf *err);
/* Empty (len 0) is the null sender <>. */
int queue_file_set_sender(struct queue_writer *w, const char *s, size_t len, strbuf *err);
int queue_file_set_attr(struct queue_writer *w, enum queue_attr attr, const char *s,
                        size_t len, strbuf *err);
int queue_file_set_ret(struct queue_writer *w, enum queue_ret ret, strbuf *err);
/* addr must not be empty; orcpt NULL means no ORCPT was given (an empty
 * ORCPT is stored as present and empty); notify as for queue_notify_valid().
 * At most QUEUE_MAX_RCPTS recipients. The recipient starts PENDING. */
int queue_file_add_recipient(struct queue_writer *w, const char *addr, size_t addr_len,
                             const char *orcpt, size_t orcpt_len, unsigned notify, strbuf *err);

/* Appends n bytes of message content (headers and body as received, any
 * bytes). May be called any number of times with pieces of any size; data is
 * buffered in 64 KiB blocks, so the message never has to be in memory. The
 * first call requires a sender and at least one recipient. */
int queue_file_write_content(struct queue_writer *w, const void *data, size_t n, strbuf *err);

/* Makes the message durable and visible, in this order: end record, flush,
 * fill in the size fields, fsync, close (checked), rename to
 * incoming/<id>, fsync incoming/. Only when this returns 0 may the message
 * be acknowledged. On failure the temporary file (or the renamed file, if
 * the final directory fsync failed) is removed and -1 returned with err set.
 * Always frees the writer and sets *w to NULL. */
int queue_file_commit(struct queue_writer **w, strbuf *err);

/* Removes the temporary file and frees the writer; *w becomes NULL. NULL or
 * *w == NULL is a no-op. Nothing half-written is left behind. */
void queue_file_abort(struct queue_writer **w);

/* ---- Reading ----------------------------------------------------------------- */

struct queue_rcpt {
    char *address;      /* never empty */
    char *orcpt;        /* NULL when absent */
    unsigned notify;    /* QUEUE_NOTIFY_* bits, 0 = not given */
    enum queue_rcpt_status status;
    off_t status_offset; /* where the status byte lives in the file */
};

/* A validated queue file. Read-only to callers except through the
 * functions below. Text values contain no CR, LF or NUL. */
struct queue_file {
    char *path;
    char id[QUEUE_ID_SIZE];  /* the file's name if it is a valid id, else "" */
    int fd;
    bool writable;           /* opened for in-place updates */
    uint32_t version;
    struct timeval arrival;
    uint32_t attempts;
    int64_t next_retry;      /* epoch seconds; 0 = as soon as possible */
    off_t schedule_offset;
    char *sender;            /* "" = null sender */
    char *client_name;       /* these six are NULL when absent */
    char *client_addr;
    char *helo;
    char *protocol;
    char *auth_user;
    char *envid;
    enum queue_ret ret;
    struct queue_rcpt *rcpts;
    size_t rcpt_count;       /* >= 1 */
    off_t content_offset;    /* first byte of the message in the file */
    uint64_t content_length; /* equals the size record */
    bool lazy_sync;          /* in-place updates wait for queue_file_sync() */
    bool dirty;              /* an update is not synced yet */
};

/* Opens and validates path for reading and in-place updates (O_RDWR).
 * Refuses a symlink (O_NOFOLLOW), anything but a regular file, and a file
 * with a link count other than 1. Validates the version, every record type,
 * length and value, and the structure: version first; exactly one arrival,
 * schedule, size and sender record; each optional record at most once; at
 * least one recipient; exactly one content record, then the end record, then
 * end of file; size record equal to the content length. Returns 0 and *qf_r,
 * or -1 with err naming the file and the problem (the caller quarantines). */
int queue_file_open(const char *path, struct queue_file **qf_r, strbuf *err);
/* The same, O_RDONLY: for listers (mailq); updates fail. */
int queue_file_open_readonly(const char *path, struct queue_file **qf_r, strbuf *err);

/* Closes the descriptor and frees everything; *qf becomes NULL. */
void queue_file_close(struct queue_file **qf);

/* Reads up to n bytes of content starting at content position pos (0 is the
 * first byte of the message) into buf. Returns the number of bytes read
 * (0 at the end of the content), or -1 with err set. */
ssize_t queue_file_read_content(struct queue_file *qf, uint64_t pos, void *buf, size_t n,
                                strbuf *err);

/* queue_file_set_lazy_sync: with lazy on, the in-place updates below
 * write without fdatasync until queue_file_sync(). qmgr uses this for a
 * message it is about to remove when every recipient is done: syncing marks
 * on a file that is unlinked a moment later costs a disk flush per message
 * and protects nothing but against a repeated delivery after a crash in
 * that moment (at-least-once delivery allows that). */
void queue_file_set_lazy_sync(struct queue_file *qf, bool lazy);
/* Flushes pending in-place updates (fdatasync); 0, or -1 with err set. */
int queue_file_sync(struct queue_file *qf, strbuf *err);

/* Writes the new status byte of recipient `index` in place and fdatasyncs
 * (unless lazy, see above) before returning 0; -1 with err set on a bad index or status, a read-only
 * file or an I/O error. The in-memory copy is updated only on success. */
int queue_file_set_recipient_status(struct queue_file *qf, size_t index,
                                    enum queue_rcpt_status status, strbuf *err);

/* Writes the attempt count and next retry time in place, then fdatasyncs. */
int queue_file_set_schedule(struct queue_file *qf, uint32_t attempts, int64_t next_retry,
                            strbuf *err);

/* Number of recipients whose status is not final (0: the message is done). */
size_t queue_file_unfinished(const struct queue_file *qf);

#endif
