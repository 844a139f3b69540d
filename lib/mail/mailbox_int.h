/*
 * mailbox_int.h - what the parts of the mailbox reader share: the mailbox
 * object, the Maildir and mbox back ends, the per-Maildir size cache, and
 * the small helpers (sizes as sent, unique ids, errors). Only
 * lib/mail/mailbox*.c include this; users see mailbox.h.
 *
 * mailbox.c holds the public functions and the line reader;
 * mailbox_maildir.c lists and commits a Maildir; mailbox_cache.c keeps the
 * sizes of Maildir messages whose size had to be computed or checked;
 * mailbox_mbox.c parses, locks and compacts an mbox file.
 */
#ifndef PETREL_MAILBOX_INT_H
#define PETREL_MAILBOX_INT_H

#include "mail/mailbox.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One message. msg is the public view; msg.uid points to uid. */
struct mailbox_entry {
    struct mailbox_msg msg;
    char *uid;
    char *name;          /* Maildir: its file name in cur/ */
    size_t base_len;     /* Maildir: length of the name before ":2," */
    uint64_t key_sec;    /* Maildir: sort key, the leading number ... */
    uint64_t key_usec;   /* ... and the number after ".M" (0 if none) */
    uint64_t from_start; /* mbox: offset of its From_ line */
    uint64_t start;      /* mbox: offset of the message text */
    uint64_t end;        /* mbox: end of the text (before the separator line) */
    uint64_t next;       /* mbox: where the next From_ line (or the end) is */
};

enum mailbox_kind {
    MAILBOX_KIND_EMPTY, /* missing mailbox: nothing to read or commit */
    MAILBOX_KIND_MAILDIR,
    MAILBOX_KIND_MBOX,
};

struct mailbox {
    enum mailbox_kind kind;
    char *path;          /* as given, for messages */
    struct mailbox_entry *msgs;
    size_t count, cap;
    bool committed;      /* mailbox_commit ran: no more commits */
    /* Maildir */
    int dirfd, curfd, newfd;
    /* mbox */
    int fd;              /* read-write when possible; carries the locks */
    bool writable;
    uint64_t snap_end;   /* bytes of the file the listing covers */
    unsigned char snap_hash[32]; /* SHA-256 of those bytes */
    dev_t dev;
    ino_t ino;
};

/* Adds an entry (zeroed) and returns it. */
struct mailbox_entry *mailbox_add(struct mailbox *mb);

/* Replaces err with a formatted message (err may be NULL). */
void mailbox_err(strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Unique ids. A name is used as it is when it is 1..70 bytes of
 * 0x21..0x7E and does not start with '~'; otherwise the id is '~'
 * followed by 40 hex digits of SHA-256 over the name. Literal ids never
 * start with '~', so the two kinds can never collide. */
bool mailbox_uid_literal_ok(const char *s, size_t n);
char *mailbox_uid_from_name(const char *s, size_t n);
/* '~' + 40 hex digits of a finished SHA-256 digest. */
char *mailbox_uid_from_digest(const unsigned char digest[32]);
/* Gives every later duplicate of an id (in list order) a derived id, so
 * ids are unique within the listing. */
void mailbox_uid_dedup(struct mailbox *mb);

/* Size as sent (mailbox.h) of a byte stream, fed in chunks. */
struct mailbox_sizer {
    uint64_t bytes, bare_lf;
    char last;
};
void mailbox_sizer_init(struct mailbox_sizer *s);
void mailbox_sizer_feed(struct mailbox_sizer *s, const char *p, size_t n);
uint64_t mailbox_sizer_result(const struct mailbox_sizer *s);

/* Back ends. open_* fill mb (kind already set, fds -1) and return a
 * status with err set on failure; the caller frees mb on failure. */
enum mailbox_status mailbox_maildir_open(struct mailbox *mb, unsigned flags, strbuf *err);
int mailbox_maildir_commit(struct mailbox *mb, strbuf *err);
/* An open descriptor for message i (the reader's source), or -1 with err
 * set ("message was removed" when it is gone). */
int mailbox_maildir_open_msg(struct mailbox *mb, size_t i, strbuf *err);

enum mailbox_status mailbox_mbox_open(struct mailbox *mb, unsigned flags, strbuf *err);
int mailbox_mbox_commit(struct mailbox *mb, strbuf *err);

/* ---- the Maildir size cache (mailbox_cache.c) ----
 *
 * "<maildir>/petrel-sizes": a first line "petrel-sizes 1", then one line
 * per message: "<size> <file size> <mtime sec>.<mtime nsec> <base name>".
 * Anything malformed makes the whole file ignored (it is then rebuilt). */
struct mailbox_cache;

struct mailbox_cache_entry {
    uint64_t size;       /* size as sent */
    uint64_t fsize;      /* file size it was computed from */
    int64_t mtime_sec;
    long mtime_nsec;
};

/* Loads the cache of the Maildir open at dirfd (missing or bad: empty). */
struct mailbox_cache *mailbox_cache_load(int dirfd, const char *path);
/* The entry for base[0..n), marked used, or NULL. */
const struct mailbox_cache_entry *mailbox_cache_get(struct mailbox_cache *c, const char *base,
                                                    size_t n);
/* Adds or replaces an entry (marked used). Names with a newline are not
 * cached. */
void mailbox_cache_put(struct mailbox_cache *c, const char *base, size_t n,
                       const struct mailbox_cache_entry *e);
/* With save set, writes the cache back (tmp file + rename) when it
 * changed: entries were added or some were not used (their messages are
 * gone); a listing that failed midway passes false. Failures are only
 * logged: the cache is an optimisation. Frees *cp (NULL-safe). */
void mailbox_cache_finish(struct mailbox_cache **cp, bool save);

#endif
