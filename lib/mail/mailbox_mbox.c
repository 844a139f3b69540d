/*
 * mailbox_mbox.c - the mbox back end of the mailbox reader: parses the
 * file that mbox.c appends to (mboxo), and compacts it in place to apply
 * deletions.
 *
 * Parsing: a message starts with a "From " line at offset 0 or after an
 * empty line. The From_ line is not part of the message, nor is the empty
 * line the writer adds after each message (the last empty line before the
 * next From_ line, or at the end of the file). Lines are served as stored:
 * ">From " stays ">From ", because mboxo quoting is lossy (a line that was
 * ">From " is stored the same way) - Dovecot does the same.
 *
 * Unique id: '~' + 40 hex digits of SHA-256 over the From_ line and the
 * message bytes. It depends on nothing outside the message, so deleting an
 * earlier message never changes it; the From_ line's date tells two copies
 * of one text apart, and exact duplicates get derived ids
 * (mailbox_uid_dedup). X-UIDL headers are not used: a sender could forge
 * one to hide a message from a client.
 *
 * Locks: the session lock (MAILBOX_EXCLUSIVE) is flock() on the file; the
 * listing is read under an fcntl read lock, so a delivery in progress (it
 * holds the write lock) is never half seen. The commit takes the same
 * locks mbox.c takes for an append, dot-lock "<path>.lock" then an fcntl
 * write lock (one protocol, mbox_lock.c), and
 * checks the file is still the one listed: same inode, not shorter, the
 * listed bytes unchanged (SHA-256 again), and anything appended since
 * starting with a From_ line. Mail appended since the listing is kept.
 *
 * Compaction: kept data is copied down over deleted messages in chunks no
 * longer than the gap between write and read position, so a write never
 * covers bytes not yet copied: if anything fails midway (or the system
 * crashes), every kept message is still in the file, at its new place or
 * its old one (the file may then hold copies of some messages, never lose
 * one). Then fsync, truncate, fsync.
 */
#include "mail/mailbox_int.h"
#include "mail/mbox_lock.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define COPY_MAX (1024 * 1024)
#define LOCK_WAIT 10       /* seconds, as mbox.c's default */
#define STALE_LOCK_AGE 300 /* seconds, as mbox.c's default */

/* ---- locks: the writer's protocol, mbox_lock.h ---- */

static int fcntl_lock(struct mailbox *mb, short type, strbuf *err)
{
    return mbox_fcntl_lock(mb->fd, mb->path, type, LOCK_WAIT, err);
}

/* *lock_r is the dot-lock to remove afterwards, NULL when the directory is
 * not writable to us (then delivery, which needs the same, cannot run
 * either). */
static int dotlock(struct mailbox *mb, char **lock_r, strbuf *err)
{
    return mbox_dotlock_take(mb->path, LOCK_WAIT, STALE_LOCK_AGE, true, lock_r, err);
}

/* ---- I/O helpers ---- */

static ssize_t pread_full(int fd, char *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int pwrite_full(int fd, const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* SHA-256 of the bytes [0, n) of the file. */
static int hash_prefix(int fd, uint64_t n, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = xmalloc(CHUNK);
    uint64_t pos = 0;
    int rc = -1;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    while (pos < n) {
        size_t want = n - pos < CHUNK ? (size_t)(n - pos) : CHUNK;
        ssize_t r = pread_full(fd, buf, want, pos);
        if (r != (ssize_t)want)
            goto out;
        EVP_DigestUpdate(ctx, buf, want);
        pos += want;
    }
    rc = EVP_DigestFinal_ex(ctx, out, NULL) == 1 ? 0 : -1;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* ---- parsing ---- */

struct parser {
    struct mailbox *mb;
    struct mailbox_entry *cur;
    EVP_MD_CTX *msg_ctx;  /* the current message's id */
    EVP_MD_CTX *file_ctx; /* the whole listed part */
    struct mailbox_sizer sizer;
    bool pending_blank;   /* the previous line was empty, not yet counted */
    uint64_t pending_off;
    char pending[2];
    size_t pending_len;
};

static void feed(struct parser *ps, const char *p, size_t n)
{
    mailbox_sizer_feed(&ps->sizer, p, n);
    EVP_DigestUpdate(ps->msg_ctx, p, n);
}

static void flush_blank(struct parser *ps)
{
    if (ps->pending_blank)
        feed(ps, ps->pending, ps->pending_len);
    ps->pending_blank = false;
}

/* Ends the current message at end (the separator line, if any, was
 * dropped by the caller choosing end). */
static void finish_msg(struct parser *ps, uint64_t end, uint64_t next)
{
    unsigned char d[32];
    struct mailbox_entry *e = ps->cur;
    if (e == NULL)
        return;
    e->end = end;
    e->next = next;
    e->msg.size = mailbox_sizer_result(&ps->sizer);
    if (EVP_DigestFinal_ex(ps->msg_ctx, d, NULL) != 1)
        memset(d, 0, sizeof(d));
    e->uid = mailbox_uid_from_digest(d);
    e->msg.uid = e->uid;
    ps->cur = NULL;
}

/* One line at off: n bytes including its LF (if it has one). */
static int line(struct parser *ps, uint64_t off, const char *p, size_t n, strbuf *err)
{
    bool blank = (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n');
    bool from = n >= 5 && memcmp(p, "From ", 5) == 0 && (off == 0 || ps->pending_blank);

    if (off == 0 && !from) {
        mailbox_err(err, "%s: not an mbox file (it does not start with a \"From \" line)",
                    ps->mb->path);
        return -1;
    }
    if (from) {
        finish_msg(ps, ps->pending_blank ? ps->pending_off : off, off);
        ps->pending_blank = false;
        ps->cur = mailbox_add(ps->mb);
        ps->cur->from_start = off;
        ps->cur->start = off + n;
        mailbox_sizer_init(&ps->sizer);
        if (EVP_DigestInit_ex(ps->msg_ctx, EVP_sha256(), NULL) != 1) {
            mailbox_err(err, "%s: cannot initialise SHA-256", ps->mb->path);
            return -1;
        }
        EVP_DigestUpdate(ps->msg_ctx, p, n); /* the From_ line is part of the id */
        return 0;
    }
    flush_blank(ps);
    if (blank) {
        /* Held: if a From_ line follows, this is the separator. */
        ps->pending_blank = true;
        ps->pending_off = off;
        memcpy(ps->pending, p, n);
        ps->pending_len = n;
        return 0;
    }
    feed(ps, p, n);
    return 0;
}

/* Reads [0, size) line by line (memory: the longest line). */
static int parse(struct mailbox *mb, uint64_t size, strbuf *err)
{
    struct parser ps;
    strbuf buf;
    uint64_t pos = 0, buf_off = 0; /* file offset of buf.data[0] */
    int rc = -1;

    memset(&ps, 0, sizeof(ps));
    ps.mb = mb;
    ps.msg_ctx = EVP_MD_CTX_new();
    ps.file_ctx = EVP_MD_CTX_new();
    strbuf_init(&buf);
    if (ps.msg_ctx == NULL || ps.file_ctx == NULL ||
        EVP_DigestInit_ex(ps.file_ctx, EVP_sha256(), NULL) != 1) {
        mailbox_err(err, "%s: cannot initialise SHA-256", mb->path);
        goto out;
    }
    while (pos < size) {
        size_t want = size - pos < CHUNK ? (size_t)(size - pos) : CHUNK;
        strbuf_reserve(&buf, want);
        ssize_t r = pread_full(mb->fd, buf.data + buf.len, want, pos);
        if (r != (ssize_t)want) {
            mailbox_err(err, "%s: cannot read: %s", mb->path,
                        r < 0 ? strerror(errno) : "file shrank while locked");
            goto out;
        }
        EVP_DigestUpdate(ps.file_ctx, buf.data + buf.len, want);
        buf.len += want;
        pos += want;
        size_t at = 0;
        char *lf;
        while ((lf = memchr(buf.data + at, '\n', buf.len - at)) != NULL) {
            size_t n = (size_t)(lf - (buf.data + at)) + 1;
            if (line(&ps, buf_off + at, buf.data + at, n, err) != 0)
                goto out;
            at += n;
        }
        strbuf_consume(&buf, at);
        buf_off += at;
    }
    if (buf.len > 0 && line(&ps, buf_off, buf.data, buf.len, err) != 0)
        goto out; /* a last line without LF */
    finish_msg(&ps, ps.pending_blank ? ps.pending_off : size, size);
    if (EVP_DigestFinal_ex(ps.file_ctx, mb->snap_hash, NULL) != 1) {
        mailbox_err(err, "%s: cannot finish SHA-256", mb->path);
        goto out;
    }
    mb->snap_end = size;
    rc = 0;
out:
    if (rc != 0 && ps.cur != NULL)
        ps.cur->uid = NULL; /* never finished: nothing to free */
    EVP_MD_CTX_free(ps.msg_ctx);
    EVP_MD_CTX_free(ps.file_ctx);
    strbuf_free(&buf);
    return rc;
}

/* ---- open ---- */

static int open_file(struct mailbox *mb, bool *missing, strbuf *err)
{
    const int flags = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    struct stat st;
    int fd;

    *missing = false;
    mb->writable = true;
    fd = open(mb->path, O_RDWR | flags);
    if (fd < 0 && (errno == EACCES || errno == EROFS)) {
        mb->writable = false; /* still readable; a commit will say why not */
        fd = open(mb->path, O_RDONLY | flags);
    }
    if (fd < 0) {
        if (errno == ENOENT)
            *missing = true;
        else if (errno == ELOOP)
            mailbox_err(err, "refusing to read %s: it is a symbolic link", mb->path);
        else if (errno == ENXIO)
            mailbox_err(err, "refusing to read %s: not a regular file", mb->path);
        else
            mailbox_err(err, "cannot open %s: %s", mb->path, strerror(errno));
        return -1;
    }
    mb->fd = fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 || fstat(fd, &st) != 0) {
        mailbox_err(err, "%s: %s", mb->path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        mailbox_err(err, "refusing to read %s: not a regular file", mb->path);
        return -1;
    }
    if (st.st_nlink != 1) {
        mailbox_err(err, "refusing to read %s: it has %lu hard links", mb->path,
                    (unsigned long)st.st_nlink);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        mailbox_err(err, "refusing to read %s: owned by uid %lu, reading as uid %lu", mb->path,
                    (unsigned long)st.st_uid, (unsigned long)geteuid());
        return -1;
    }
    mb->dev = st.st_dev;
    mb->ino = st.st_ino;
    return 0;
}

enum mailbox_status mailbox_mbox_open(struct mailbox *mb, unsigned flags, strbuf *err)
{
    struct stat st;
    bool missing;
    int rc;

    if (open_file(mb, &missing, err) != 0) {
        if (!missing)
            return MAILBOX_ERROR;
        mb->kind = MAILBOX_KIND_EMPTY; /* nothing delivered yet */
        return MAILBOX_OK;
    }
    if ((flags & MAILBOX_EXCLUSIVE) && flock(mb->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            mailbox_err(err, "%s: mailbox is in use by another session", mb->path);
            return MAILBOX_IN_USE;
        }
        mailbox_err(err, "%s: cannot lock: %s", mb->path, strerror(errno));
        return MAILBOX_ERROR;
    }
    /* The listing under a read lock: no append is half done meanwhile. */
    if (fcntl_lock(mb, F_RDLCK, err) != 0)
        return MAILBOX_ERROR;
    if (fstat(mb->fd, &st) != 0) {
        mailbox_err(err, "%s: %s", mb->path, strerror(errno));
        rc = -1;
    } else {
        rc = parse(mb, (uint64_t)st.st_size, err);
    }
    fcntl_lock(mb, F_UNLCK, NULL);
    if (rc != 0)
        return MAILBOX_ERROR;
    mailbox_uid_dedup(mb);
    return MAILBOX_OK;
}

/* ---- commit ---- */

/* The file is still the one we listed: same inode at the path, at least
 * as long, and the listed bytes unchanged. */
static int check_unchanged(struct mailbox *mb, uint64_t *size_r, strbuf *err)
{
    struct stat st, pst;
    unsigned char h[32];
    if (fstat(mb->fd, &st) != 0 || lstat(mb->path, &pst) != 0) {
        mailbox_err(err, "%s: %s", mb->path, strerror(errno));
        return -1;
    }
    if (pst.st_dev != mb->dev || pst.st_ino != mb->ino) {
        mailbox_err(err, "%s: the mailbox was replaced by another program; deletions not applied",
                    mb->path);
        return -1;
    }
    if ((uint64_t)st.st_size < mb->snap_end || hash_prefix(mb->fd, mb->snap_end, h) != 0 ||
        memcmp(h, mb->snap_hash, sizeof(h)) != 0) {
        mailbox_err(err, "%s: the mailbox was changed by another program; deletions not applied",
                    mb->path);
        return -1;
    }
    /* Whatever was appended since must start with a From_ line, or it is
     * the rest of a message some writer was still adding (without the
     * locks) when we listed: moving it would glue it to another message. */
    if ((uint64_t)st.st_size > mb->snap_end) {
        char head[5];
        if (pread_full(mb->fd, head, sizeof(head), mb->snap_end) != (ssize_t)sizeof(head) ||
            memcmp(head, "From ", 5) != 0) {
            mailbox_err(err, "%s: the mailbox was changed by another program; deletions not "
                             "applied", mb->path);
            return -1;
        }
    }
    *size_r = (uint64_t)st.st_size;
    return 0;
}

/* Copies [from, to) down to *w (the end of the data kept so far), never
 * writing past the read position; data not yet moved stays in place. */
static int copy_down(struct mailbox *mb, char *buf, uint64_t from, uint64_t to, uint64_t *w)
{
    while (from < to) {
        uint64_t gap = from - *w;
        size_t n = (size_t)(to - from < COPY_MAX ? to - from : COPY_MAX);
        if (gap == 0) { /* nothing deleted before: the data is in place */
            *w = to;
            return 0;
        }
        if (n > gap)
            n = (size_t)gap;
        if (pread_full(mb->fd, buf, n, from) != (ssize_t)n)
            return -1;
        if (pwrite_full(mb->fd, buf, n, *w) != 0)
            return -1;
        from += n;
        *w += n;
    }
    return 0;
}

int mailbox_mbox_commit(struct mailbox *mb, strbuf *err)
{
    char *lock_path = NULL, *buf = NULL;
    uint64_t size, w = 0;
    int rc = -1;
    bool locked = false;

    if (!mb->writable) {
        mailbox_err(err, "%s: cannot delete messages: the file is not writable", mb->path);
        return -1;
    }
    if (dotlock(mb, &lock_path, err) != 0)
        return -1;
    if (fcntl_lock(mb, F_WRLCK, err) != 0)
        goto out;
    locked = true;
    if (check_unchanged(mb, &size, err) != 0)
        goto out;

    buf = xmalloc(COPY_MAX);
    for (size_t i = 0; i < mb->count; i++) {
        const struct mailbox_entry *e = &mb->msgs[i];
        if (e->msg.deleted)
            continue; /* left behind: later data is copied over it */
        if (copy_down(mb, buf, e->from_start, e->next, &w) != 0)
            goto io_error;
    }
    /* Mail delivered since the listing. */
    if (copy_down(mb, buf, mb->snap_end, size, &w) != 0)
        goto io_error;
    /* Kept data first on disk, then cut the file, then that on disk. */
    if (fsync(mb->fd) != 0 || ftruncate(mb->fd, (off_t)w) != 0 || fsync(mb->fd) != 0)
        goto io_error;
    rc = 0;
    goto out;
io_error:
    mailbox_err(err,
                "%s: deleting messages failed midway: %s (no kept message was lost, but the "
                "mailbox may now hold copies of some)",
                mb->path, strerror(errno));
    log_error("%s", err->data);
out:
    free(buf);
    if (locked)
        fcntl_lock(mb, F_UNLCK, NULL);
    if (lock_path != NULL) {
        unlink(lock_path);
        free(lock_path);
    }
    return rc;
}
