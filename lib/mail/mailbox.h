/*
 * mailbox.h - reading a user's mailbox for the retrieval servers (pop3d
 * now, imapd later): the list of messages with stable unique ids and exact
 * sizes, streaming one message line by line, marking messages deleted and
 * applying the deletions. Delivery (the writing side) is maildir.h and
 * mbox.h; this is the reading side of the same formats.
 *
 * The caller runs as the mailbox owner (pop3d's mailbox process after it
 * switched to the user); nothing here changes privileges.
 *
 * Size: the "size as sent" of a message is the number of octets a client
 * receives when the message is sent with CRLF line ends and no
 * dot-stuffing: the file is split into lines at LF, one CR before each LF
 * is dropped, and every line (including a last line without LF) counts its
 * bytes + 2. POP3 LIST/STAT and IMAP RFC822.SIZE report it, and
 * mailbox_reader_line() produces exactly those lines, so the two never
 * disagree.
 *
 * Unique id (POP3 UIDL, RFC 1939 §7): 1..70 characters in 0x21..0x7E,
 * stable across sessions and server restarts, never reused for another
 * message of the same mailbox. Maildir: the file's base name (before
 * ":2,") when it qualifies, else '~' + 40 hex digits of its SHA-256; mbox:
 * '~' + 40 hex digits of SHA-256 over the From_ line and the message.
 * Details, locks and safety rules: docs/mailbox.md.
 */
#ifndef PETREL_MAILBOX_H
#define PETREL_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

enum mailbox_status {
    MAILBOX_OK = 0,
    MAILBOX_IN_USE,    /* another session holds the exclusive lock */
    MAILBOX_NOT_FOUND, /* no mailbox yet: callers treat it as empty */
    MAILBOX_ERROR,     /* anything else, message in err */
};

enum mailbox_flags {
    /* Hold an exclusive session lock until mailbox_close (POP3: a second
     * session gets MAILBOX_IN_USE). Released by the kernel on a crash. */
    MAILBOX_EXCLUSIVE = 1 << 0,
};

struct mailbox_msg {
    const char *uid;  /* unique id, see above */
    uint64_t size;    /* size as sent, see above */
    bool deleted;     /* marked by mailbox_mark_deleted */
};

struct mailbox;
struct mailbox_reader;

/* mailbox_open: path is a Maildir when it ends in '/' or is a directory,
 * else an mbox file. Lists the messages in delivery order (oldest first);
 * for a Maildir, messages in new/ are moved to cur/ first. A missing
 * mailbox (Maildir or mbox) opens as an empty one with MAILBOX_OK.
 * Returns MAILBOX_OK with *out set, or another status with err set. */
enum mailbox_status mailbox_open(const char *path, unsigned flags, struct mailbox **out,
                                 strbuf *err);

/* Closes without applying deletions and releases the lock. */
void mailbox_close(struct mailbox **mbp);

size_t mailbox_count(const struct mailbox *mb);
/* i in [0, count) */
const struct mailbox_msg *mailbox_msg(const struct mailbox *mb, size_t i);

/* Marks or unmarks message i deleted (in memory only). */
void mailbox_mark_deleted(struct mailbox *mb, size_t i, bool deleted);

/* mailbox_commit: removes the messages marked deleted from the mailbox
 * (POP3's UPDATE state). A message already gone (another program removed
 * it) is not an error. On failure nothing undeleted is lost; returns -1
 * with err set. Returns 0 at once when nothing is marked. It ends the
 * session's reading: afterwards only mailbox_close (a second commit with
 * marked messages fails). */
int mailbox_commit(struct mailbox *mb, strbuf *err);

/* Streaming one message: lines without their line end, as described
 * above. mailbox_reader_open returns NULL with err set on failure (i out
 * of range, file refused or unreadable). mailbox_reader_line returns 1
 * with a line in *line, 0 at the end of the message, -1 on error (err
 * set). A message that vanished since the listing gives NULL/-1 with
 * errno-free text "message was removed". Several readers may be open at
 * once; close each with mailbox_reader_close before mailbox_close. */
struct mailbox_reader *mailbox_reader_open(struct mailbox *mb, size_t i, strbuf *err);
int mailbox_reader_line(struct mailbox_reader *r, strbuf *line, strbuf *err);
void mailbox_reader_close(struct mailbox_reader **rp);

#endif
