/*
 * mbox.c - one locked, all-or-nothing append to an mbox file; see mbox.h.
 *
 * Order of operations: dot-lock, open (O_NOFOLLOW, checks on the open
 * descriptor), fcntl lock, remember the size, buffered appends, fsync,
 * unlock. Any failure after the first byte was written truncates the file
 * back to the remembered size while the locks are still held, so readers
 * that honour the locks never see a partial message.
 */
#include "mail/mbox.h"
#include "mail/mbox_lock.h"
#include "mail/maildir.h" /* crlf_filter */
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MBOX_FLUSH_SIZE (64 * 1024)
#define FROM_PREFIX "From "
#define FROM_PREFIX_LEN 5

struct mbox {
    char *path;
    char *lock_path;      /* NULL when no dot-lock is held */
    int fd;
    off_t orig_size;      /* size before this message: truncate back to it */
    uint64_t size_limit;
    uint64_t written;     /* bytes appended so far */
    strbuf buf;           /* not yet written */
    int failed;           /* 0, or the MBOX_* code of the first failure */
    strbuf error;         /* its message */
    bool at_bol;          /* the next byte starts a line */
    size_t pending;       /* bytes of "From " matched at a line start */
    char last;            /* last byte of message text, '\n' at start */
    struct crlf_filter filter;
    strbuf conv;
};

void mbox_options_default(struct mbox_options *o)
{
    o->dotlock = true;
    o->require_owner = true;
    o->create = true;
    o->lock_wait = 10;
    o->stale_lock_age = 300;
    o->size_limit = 0;
}

void mbox_from_line(strbuf *out, const char *sender, time_t t)
{
    struct tm tm;
    char date[64];
    strbuf_appends(out, "From ");
    if (sender == NULL || *sender == '\0') {
        strbuf_appends(out, "MAILER-DAEMON");
    } else {
        for (const char *p = sender; *p; p++)
            strbuf_appendc(out, (*p == ' ' || *p == '\t') ? '_' : *p);
    }
    if (localtime_r(&t, &tm) == NULL || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
    strbuf_printf(out, " %s\n", date);
}

static void set_err(strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(strbuf *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    strbuf_reset(err);
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
}

static int errno_code(int e)
{
    return (e == ENOSPC || e == EDQUOT || e == EFBIG) ? MBOX_FULL : MBOX_TEMP;
}

/* ---- locks (mbox_lock.c: the one protocol the reader shares) ---- */

static int take_dotlock(struct mbox *m, const struct mbox_options *o, strbuf *err)
{
    return mbox_dotlock_take(m->path, o->lock_wait, o->stale_lock_age, false, &m->lock_path,
                             err) == 0
               ? MBOX_OK
               : MBOX_TEMP;
}

static int take_fcntl_lock(struct mbox *m, const struct mbox_options *o, strbuf *err)
{
    return mbox_fcntl_lock(m->fd, m->path, F_WRLCK, o->lock_wait, err) == 0 ? MBOX_OK
                                                                           : MBOX_TEMP;
}

/* ---- open ---- */

static int open_file(struct mbox *m, const struct mbox_options *o, strbuf *err)
{
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
    int fd = open(m->path, flags);
    if (fd < 0 && errno == ENOENT && o->create)
        fd = open(m->path, flags | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) /* created by someone else in between */
        fd = open(m->path, flags);
    if (fd < 0) {
        if (errno == ELOOP)
            set_err(err, "%s: refusing to deliver to a symbolic link", m->path);
        else if (errno == ENXIO) /* a FIFO without a reader, a socket */
            set_err(err, "%s: refusing to deliver to something that is not a regular file",
                    m->path);
        else
            set_err(err, "%s: cannot open: %s", m->path, strerror(errno));
        return MBOX_TEMP;
    }
    m->fd = fd;
    /* O_NONBLOCK kept a FIFO from blocking the open; appends must block. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        set_err(err, "%s: fcntl: %s", m->path, strerror(errno));
        return MBOX_TEMP;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_err(err, "%s: fstat: %s", m->path, strerror(errno));
        return MBOX_TEMP;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, "%s: refusing to deliver to something that is not a regular file", m->path);
        return MBOX_TEMP;
    }
    if (st.st_nlink != 1) {
        set_err(err, "%s: refusing to deliver to a file with %lu hard links", m->path,
                (unsigned long)st.st_nlink);
        return MBOX_TEMP;
    }
    if (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) {
        set_err(err, "%s: refusing to deliver to an executable file", m->path);
        return MBOX_TEMP;
    }
    if (o->require_owner && st.st_uid != geteuid()) {
        set_err(err, "%s: refusing to deliver to a file owned by uid %lu, not by the recipient "
                     "(uid %lu)",
                m->path, (unsigned long)st.st_uid, (unsigned long)geteuid());
        return MBOX_TEMP;
    }
    return MBOX_OK;
}

static void mbox_free(struct mbox *m)
{
    if (m->fd >= 0)
        close(m->fd); /* releases the fcntl lock */
    if (m->lock_path) {
        unlink(m->lock_path);
        free(m->lock_path);
    }
    free(m->path);
    strbuf_free(&m->buf);
    strbuf_free(&m->error);
    strbuf_free(&m->conv);
    free(m);
}

int mbox_open(const char *path, const struct mbox_options *o, struct mbox **m_r, strbuf *err)
{
    struct mbox_options def;
    if (o == NULL) {
        mbox_options_default(&def);
        o = &def;
    }
    *m_r = NULL;
    struct mbox *m = xcalloc(1, sizeof(*m));
    m->path = xstrdup(path);
    m->fd = -1;
    m->size_limit = o->size_limit;
    m->at_bol = true;
    m->last = '\n';
    strbuf_init(&m->buf);
    strbuf_init(&m->error);
    strbuf_init(&m->conv);
    crlf_filter_init(&m->filter);

    int rc = MBOX_OK;
    if (o->dotlock)
        rc = take_dotlock(m, o, err);
    if (rc == MBOX_OK)
        rc = open_file(m, o, err);
    if (rc == MBOX_OK)
        rc = take_fcntl_lock(m, o, err);
    if (rc == MBOX_OK) {
        /* The size under the lock: what a failed append goes back to. */
        struct stat st;
        if (fstat(m->fd, &st) < 0) {
            set_err(err, "%s: fstat: %s", m->path, strerror(errno));
            rc = MBOX_TEMP;
        } else {
            m->orig_size = st.st_size;
            if (m->size_limit && (uint64_t)st.st_size >= m->size_limit) {
                set_err(err, "%s: mailbox full (size limit %llu bytes)", m->path,
                        (unsigned long long)m->size_limit);
                rc = MBOX_FULL;
            }
        }
    }
    if (rc != MBOX_OK) {
        mbox_free(m);
        return rc;
    }
    *m_r = m;
    return MBOX_OK;
}

/* ---- writing ---- */

static int fail(struct mbox *m, int code, strbuf *err)
{
    if (!m->failed)
        m->failed = code;
    if (err)
        strbuf_set(err, m->error.data, m->error.len);
    return m->failed;
}

static int flush_buf(struct mbox *m, strbuf *err)
{
    size_t off = 0;
    while (off < m->buf.len) {
        ssize_t w = write(m->fd, m->buf.data + off, m->buf.len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            set_err(&m->error, "%s: write: %s", m->path, strerror(e));
            return fail(m, errno_code(e), err);
        }
        off += (size_t)w;
        m->written += (uint64_t)w;
    }
    strbuf_reset(&m->buf);
    return MBOX_OK;
}

static int append_checked(struct mbox *m, const char *p, size_t n, strbuf *err)
{
    if (m->size_limit &&
        (uint64_t)m->orig_size + m->written + m->buf.len + n > m->size_limit) {
        set_err(&m->error, "%s: mailbox full (size limit %llu bytes)", m->path,
                (unsigned long long)m->size_limit);
        return fail(m, MBOX_FULL, err);
    }
    strbuf_append(&m->buf, p, n);
    if (m->buf.len >= MBOX_FLUSH_SIZE)
        return flush_buf(m, err);
    return MBOX_OK;
}

int mbox_write_raw(struct mbox *m, const void *p, size_t n, strbuf *err)
{
    if (m->failed)
        return fail(m, m->failed, err);
    return append_checked(m, p, n, err);
}

/* Quoting: bytes at a line start that match a prefix of "From " are held
 * (m->pending counts them; they are always a prefix of the constant) until
 * the match completes (">From " is written) or breaks (they are written as
 * they were). The size limit is checked once per call. */
int mbox_write(struct mbox *m, const void *p, size_t n, strbuf *err)
{
    if (m->failed)
        return fail(m, m->failed, err);
    const char *s = p;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (m->at_bol) {
            if (c == FROM_PREFIX[m->pending]) {
                if (++m->pending == FROM_PREFIX_LEN) {
                    strbuf_append(&m->buf, ">" FROM_PREFIX, FROM_PREFIX_LEN + 1);
                    m->pending = 0;
                    m->at_bol = false;
                }
                m->last = c;
                continue;
            }
            if (m->pending > 0) {
                strbuf_append(&m->buf, FROM_PREFIX, m->pending);
                m->pending = 0;
            }
            m->at_bol = false;
        }
        strbuf_appendc(&m->buf, c);
        if (c == '\n')
            m->at_bol = true;
        m->last = c;
    }
    return append_checked(m, "", 0, err);
}

int mbox_write_crlf(struct mbox *m, const void *p, size_t n, strbuf *err)
{
    if (m->failed)
        return fail(m, m->failed, err);
    strbuf_reset(&m->conv);
    crlf_filter_feed(&m->filter, p, n, &m->conv);
    return mbox_write(m, m->conv.data, m->conv.len, err);
}

static void truncate_back(struct mbox *m)
{
    /* Best effort; the data past orig_size is what must go. */
    if (m->written > 0 || m->buf.len > 0) {
        strbuf_reset(&m->buf);
        if (ftruncate(m->fd, m->orig_size) == 0)
            fsync(m->fd);
    }
}

int mbox_commit(struct mbox **mp, strbuf *err)
{
    struct mbox *m = *mp;
    *mp = NULL;
    if (m == NULL)
        return MBOX_TEMP;
    int rc = m->failed;
    if (!rc) {
        /* A held CR from the CRLF filter, then held "From" bytes. */
        strbuf_reset(&m->conv);
        crlf_filter_finish(&m->filter, &m->conv);
        if (m->conv.len)
            rc = mbox_write(m, m->conv.data, m->conv.len, err);
    }
    if (!rc && m->pending) {
        size_t held = m->pending;
        m->pending = 0;
        rc = append_checked(m, FROM_PREFIX, held, err);
    }
    if (!rc && m->last != '\n')
        rc = append_checked(m, "\n", 1, err);
    if (!rc)
        rc = append_checked(m, "\n", 1, err);
    if (!rc)
        rc = flush_buf(m, err);
    if (!rc && fsync(m->fd) < 0) {
        int e = errno;
        set_err(&m->error, "%s: fsync: %s", m->path, strerror(e));
        rc = fail(m, errno_code(e), err);
    }
    if (rc) {
        if (err && err->len == 0)
            strbuf_set(err, m->error.data, m->error.len);
        truncate_back(m);
    }
    mbox_free(m);
    return rc;
}

void mbox_abort(struct mbox **mp)
{
    struct mbox *m = *mp;
    if (m == NULL)
        return;
    *mp = NULL;
    truncate_back(m);
    mbox_free(m);
}
