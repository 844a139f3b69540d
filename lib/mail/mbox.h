/*
 * mbox.h - appending one message to an mbox file, safely: the format a
 * local `mail` command reads (/var/mail/<user>) and the format of `/file`
 * deliveries from aliases and .forward files.
 *
 * Format ("mboxo", as Postfix and sendmail write it): a "From " line
 * ("From sender date", the date in asctime form), the message with Unix
 * line ends, every line that starts with "From " written as ">From ", and
 * one empty line after the message (an LF is added first when the message
 * does not end with one).
 *
 * Locking: a dot-lock file "<path>.lock" (optional; created with O_EXCL,
 * removed afterwards; a lock older than the stale age is removed as left by
 * a crash) and then an fcntl() write lock on the file, both retried until a
 * deadline. Mail readers use one or both, so both are taken.
 *
 * Safety (BAD-INPUT.md row 8): the file is opened with O_NOFOLLOW and
 * refused when it is a symlink, not a regular file, has more than one hard
 * link, has an execute bit (appending mail to a program is a way to run
 * code), or, when asked, is not owned by the effective uid (the caller runs
 * as the mailbox owner). Appends use O_APPEND; the size before the message
 * is remembered and the file is truncated back to it when anything fails,
 * so a failed delivery never leaves half a message behind. Success means
 * the data was fsync'd.
 *
 * Errors are returned as MBOX_TEMP (retry later: locked, I/O error,
 * refused file — an administrator can fix those) or MBOX_FULL (over the
 * size limit, or ENOSPC/EDQUOT), with a message in err.
 */
#ifndef PETREL_MBOX_H
#define PETREL_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct strbuf;
struct mbox;

/* Results; 0 is success. */
#define MBOX_OK 0
#define MBOX_TEMP (-1) /* temporary failure (locked, I/O, unsafe file) */
#define MBOX_FULL (-2) /* size limit or file system full: also temporary */

struct mbox_options {
    bool dotlock;          /* take <path>.lock as well as the fcntl lock */
    bool require_owner;    /* the file must belong to the effective uid */
    bool create;           /* create a missing file (mode 0600) */
    int lock_wait;         /* seconds to keep trying for the locks (0 = once) */
    int stale_lock_age;    /* a dot-lock older than this (seconds) is removed */
    uint64_t size_limit;   /* largest file size after the append; 0 = none */
};

/* Defaults: dotlock, require_owner and create on; lock_wait 10 s;
 * stale_lock_age 300 s; no size limit. */
void mbox_options_default(struct mbox_options *o);

/* mbox_from_line: appends "From <sender> <date>\n" to out. An empty
 * sender (the null sender) is written MAILER-DAEMON; spaces and tabs in
 * the sender become '_' so that readers that split the line at spaces
 * find the date. The date is t in the local time zone, asctime style
 * ("Sun Nov 29 05:36:18 2026"). */
void mbox_from_line(struct strbuf *out, const char *sender, time_t t);

/* mbox_open: locks and opens path for one append (see above). Returns
 * MBOX_OK and *m_r, or MBOX_TEMP/MBOX_FULL with *m_r NULL and a message
 * naming the file in err. */
int mbox_open(const char *path, const struct mbox_options *o, struct mbox **m_r,
              struct strbuf *err);

/* mbox_write: appends n bytes of message text with LF line ends, quoting
 * lines that start with "From " (also when the match spans calls). The
 * caller writes the From_ line first with mbox_write_raw. Data is buffered;
 * a failure (I/O, size limit) is kept and returned by every later call,
 * including mbox_commit. */
int mbox_write(struct mbox *m, const void *p, size_t n, struct strbuf *err);
/* mbox_write_crlf: the same for CRLF text (the queue's form): CRLF pairs
 * become LF first. */
int mbox_write_crlf(struct mbox *m, const void *p, size_t n, struct strbuf *err);
/* mbox_write_raw: appends bytes without quoting (the From_ line). */
int mbox_write_raw(struct mbox *m, const void *p, size_t n, struct strbuf *err);

/* mbox_commit: ends the message (LF if missing, then an empty line),
 * writes, fsyncs, removes the dot-lock and closes. On any failure the file
 * is truncated to its size before the message. Always frees *mp (NULL
 * after). Returns MBOX_OK or an error code as above. */
int mbox_commit(struct mbox **mp, struct strbuf *err);

/* mbox_abort: truncates the file back, unlocks, closes and frees; NULL-safe. */
void mbox_abort(struct mbox **mp);

#endif
