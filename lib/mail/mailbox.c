/*
 * mailbox.c - the public face of the mailbox reader (see mailbox.h): picks
 * the back end (Maildir or mbox), keeps the message list, and streams a
 * message line by line. Also the helpers the back ends share: sizes as
 * sent and unique ids (mailbox_int.h).
 *
 * The reader is the one place that splits a message into lines; the sizer
 * counts exactly what the reader produces (bytes + one per bare LF, + 2 for
 * a last line without LF), and the unit tests check the two agree for
 * every kind of line end.
 */
#define _GNU_SOURCE /* qsort_r */
#include "mail/mailbox.h"
#include "mail/mailbox_int.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READER_CHUNK (64 * 1024)
#define UID_MAX_LEN 70
#define UID_HASH_HEX 40

struct mailbox_reader {
    int fd;
    bool own_fd;      /* Maildir: the message file, closed with the reader */
    uint64_t pos;     /* next offset to read */
    uint64_t end;     /* stop here (mbox); UINT64_MAX: read to EOF */
    bool eof;
    strbuf buf;       /* read but not yet returned: buf.data[off..len) */
    size_t off;
};

void mailbox_err(strbuf *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    strbuf_reset(err);
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
}

/* ---- sizes ---- */

void mailbox_sizer_init(struct mailbox_sizer *s)
{
    s->bytes = 0;
    s->bare_lf = 0;
    s->last = '\n';
}

void mailbox_sizer_feed(struct mailbox_sizer *s, const char *p, size_t n)
{
    const char *q = p, *stop = p + n;
    char prev = s->last;
    if (n == 0)
        return;
    while ((q = memchr(q, '\n', (size_t)(stop - q))) != NULL) {
        if ((q > p ? q[-1] : prev) != '\r')
            s->bare_lf++;
        q++;
    }
    s->bytes += n;
    s->last = p[n - 1];
}

/* Every byte is sent; a bare LF becomes CRLF (one more); a last line
 * without LF still gets its CRLF (two more). */
uint64_t mailbox_sizer_result(const struct mailbox_sizer *s)
{
    uint64_t size = s->bytes + s->bare_lf;
    if (s->bytes > 0 && s->last != '\n')
        size += 2;
    return size;
}

/* ---- unique ids ---- */

bool mailbox_uid_literal_ok(const char *s, size_t n)
{
    if (n == 0 || n > UID_MAX_LEN || s[0] == '~')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

char *mailbox_uid_from_digest(const unsigned char digest[32])
{
    static const char hex[] = "0123456789abcdef";
    char *uid = xmalloc(UID_HASH_HEX + 2);
    uid[0] = '~';
    for (int i = 0; i < UID_HASH_HEX / 2; i++) {
        uid[1 + 2 * i] = hex[digest[i] >> 4];
        uid[2 + 2 * i] = hex[digest[i] & 15];
    }
    uid[UID_HASH_HEX + 1] = '\0';
    return uid;
}

static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32); /* cannot happen with the default provider */
}

char *mailbox_uid_from_name(const char *s, size_t n)
{
    unsigned char d[32];
    if (mailbox_uid_literal_ok(s, n))
        return xstrndup(s, n);
    sha256(s, n, d);
    return mailbox_uid_from_digest(d);
}

static int cmp_uid_index(const void *a, const void *b, void *arg)
{
    const struct mailbox *mb = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(mb->msgs[ia].uid, mb->msgs[ib].uid);
    if (c != 0)
        return c;
    return ia < ib ? -1 : ia > ib;
}

/* Duplicates are rare (two copies of one Maildir name with different
 * flags, two identical mbox messages): the first keeps its id, the k-th
 * later one gets the hash of "<id>/<k>", which stays the same as long as
 * the earlier copies stay. */
void mailbox_uid_dedup(struct mailbox *mb)
{
    size_t *idx;
    if (mb->count < 2)
        return;
    idx = xreallocarray(NULL, mb->count, sizeof(*idx));
    for (size_t i = 0; i < mb->count; i++)
        idx[i] = i;
    qsort_r(idx, mb->count, sizeof(*idx), cmp_uid_index, mb);
    for (size_t i = 0; i < mb->count;) {
        const char *first = mb->msgs[idx[i]].uid; /* keeps its id */
        size_t j = i + 1, k = 1;
        for (; j < mb->count && strcmp(mb->msgs[idx[j]].uid, first) == 0; j++) {
            struct mailbox_entry *e = &mb->msgs[idx[j]];
            unsigned char d[32];
            strbuf s;
            strbuf_init(&s);
            strbuf_printf(&s, "%s/%zu", first, k++);
            sha256(s.data, s.len, d);
            strbuf_free(&s);
            free(e->uid);
            e->uid = mailbox_uid_from_digest(d);
            e->msg.uid = e->uid;
        }
        i = j;
    }
    free(idx);
}

/* ---- the mailbox ---- */

struct mailbox_entry *mailbox_add(struct mailbox *mb)
{
    if (mb->count == mb->cap) {
        mb->cap = mb->cap ? mb->cap * 2 : 64;
        mb->msgs = xreallocarray(mb->msgs, mb->cap, sizeof(*mb->msgs));
    }
    struct mailbox_entry *e = &mb->msgs[mb->count++];
    memset(e, 0, sizeof(*e));
    return e;
}

static void mailbox_free(struct mailbox *mb)
{
    for (size_t i = 0; i < mb->count; i++) {
        free(mb->msgs[i].uid);
        free(mb->msgs[i].name);
    }
    free(mb->msgs);
    if (mb->dirfd >= 0)
        close(mb->dirfd); /* releases the session flock */
    if (mb->curfd >= 0)
        close(mb->curfd);
    if (mb->newfd >= 0)
        close(mb->newfd);
    if (mb->fd >= 0)
        close(mb->fd);
    free(mb->path);
    free(mb);
}

enum mailbox_status mailbox_open(const char *path, unsigned flags, struct mailbox **out,
                                 strbuf *err)
{
    struct mailbox *mb;
    struct stat st;
    size_t n = strlen(path);
    enum mailbox_status rc;

    *out = NULL;
    if (n == 0) {
        mailbox_err(err, "cannot open mailbox: empty path");
        return MAILBOX_ERROR;
    }
    mb = xcalloc(1, sizeof(*mb));
    mb->path = xstrdup(path);
    mb->dirfd = mb->curfd = mb->newfd = mb->fd = -1;
    /* stat follows a symlink only to pick the back end: both refuse it. */
    if (path[n - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        mb->kind = MAILBOX_KIND_MAILDIR;
        rc = mailbox_maildir_open(mb, flags, err);
    } else {
        mb->kind = MAILBOX_KIND_MBOX;
        rc = mailbox_mbox_open(mb, flags, err);
    }
    if (rc != MAILBOX_OK) {
        mailbox_free(mb);
        return rc;
    }
    *out = mb;
    return MAILBOX_OK;
}

void mailbox_close(struct mailbox **mbp)
{
    if (*mbp == NULL)
        return;
    mailbox_free(*mbp);
    *mbp = NULL;
}

size_t mailbox_count(const struct mailbox *mb)
{
    return mb->count;
}

const struct mailbox_msg *mailbox_msg(const struct mailbox *mb, size_t i)
{
    return i < mb->count ? &mb->msgs[i].msg : NULL;
}

void mailbox_mark_deleted(struct mailbox *mb, size_t i, bool deleted)
{
    if (i < mb->count)
        mb->msgs[i].msg.deleted = deleted;
}

int mailbox_commit(struct mailbox *mb, strbuf *err)
{
    bool any = false;
    for (size_t i = 0; i < mb->count; i++)
        any = any || mb->msgs[i].msg.deleted;
    if (!any)
        return 0;
    if (mb->committed) {
        mailbox_err(err, "%s: deletions were already applied in this session", mb->path);
        return -1;
    }
    mb->committed = true;
    switch (mb->kind) {
    case MAILBOX_KIND_MAILDIR:
        return mailbox_maildir_commit(mb, err);
    case MAILBOX_KIND_MBOX:
        return mailbox_mbox_commit(mb, err);
    case MAILBOX_KIND_EMPTY:
        break;
    }
    return 0;
}

/* ---- streaming ---- */

struct mailbox_reader *mailbox_reader_open(struct mailbox *mb, size_t i, strbuf *err)
{
    struct mailbox_reader *r;
    int fd;

    if (i >= mb->count) {
        mailbox_err(err, "no such message");
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    strbuf_init(&r->buf);
    if (mb->kind == MAILBOX_KIND_MAILDIR) {
        if ((fd = mailbox_maildir_open_msg(mb, i, err)) < 0) {
            strbuf_free(&r->buf);
            free(r);
            return NULL;
        }
        r->fd = fd;
        r->own_fd = true;
        r->end = UINT64_MAX;
    } else {
        r->fd = mb->fd;
        r->pos = mb->msgs[i].start;
        r->end = mb->msgs[i].end;
    }
    return r;
}

/* Reads the next chunk into r->buf; sets r->eof at the end. */
static int reader_fill(struct mailbox_reader *r, strbuf *err)
{
    size_t want = READER_CHUNK;
    ssize_t got;

    if (r->end != UINT64_MAX && r->end - r->pos < want)
        want = (size_t)(r->end - r->pos);
    if (want == 0) {
        r->eof = true;
        return 0;
    }
    if (r->off > 0) {
        strbuf_consume(&r->buf, r->off);
        r->off = 0;
    }
    strbuf_reserve(&r->buf, want);
    do
        got = pread(r->fd, r->buf.data + r->buf.len, want, (off_t)r->pos);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        mailbox_err(err, "cannot read message: %s", strerror(errno));
        return -1;
    }
    if (got == 0) {
        /* An mbox message cannot end early unless the file shrank under
         * our lock, i.e. someone ignored it. */
        if (r->end != UINT64_MAX) {
            mailbox_err(err, "message was removed");
            return -1;
        }
        r->eof = true;
        return 0;
    }
    r->buf.len += (size_t)got;
    r->buf.data[r->buf.len] = '\0';
    r->pos += (uint64_t)got;
    return 0;
}

int mailbox_reader_line(struct mailbox_reader *r, strbuf *line, strbuf *err)
{
    size_t scanned = r->off;

    for (;;) {
        char *start = r->buf.data + r->off;
        char *lf = memchr(r->buf.data + scanned, '\n', r->buf.len - scanned);
        if (lf != NULL) {
            size_t n = (size_t)(lf - start);
            if (n > 0 && lf[-1] == '\r')
                n--; /* one CR before the LF belongs to the line end */
            strbuf_set(line, start, n);
            r->off = (size_t)(lf - r->buf.data) + 1;
            return 1;
        }
        if (r->eof) {
            if (r->off == r->buf.len)
                return 0;
            /* A last line without LF: sent as it is, with a CRLF. */
            strbuf_set(line, start, r->buf.len - r->off);
            r->off = r->buf.len;
            return 1;
        }
        scanned = r->buf.len - r->off; /* relative: fill may move data */
        if (reader_fill(r, err) != 0)
            return -1;
        scanned += r->off;
    }
}

void mailbox_reader_close(struct mailbox_reader **rp)
{
    struct mailbox_reader *r = *rp;
    if (r == NULL)
        return;
    if (r->own_fd)
        close(r->fd);
    strbuf_free(&r->buf);
    free(r);
    *rp = NULL;
}
