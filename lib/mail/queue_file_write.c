/*
 * queue_file_write.c - building a queue file and committing it durably; see
 * queue_file.h for the contract and docs/queue.md for the format.
 *
 * Records are collected in a 64 KiB buffer and written in blocks; large
 * content pieces go straight to the file. Two fields are only known at the
 * end (the size record and the content record's length), so the writer
 * remembers their offsets and fills them in at commit, before the fsync.
 * The file lives as incoming/.<id> until the rename in queue_file_commit();
 * queue scanners only accept names that pass queue_id_valid(), which a
 * leading dot never does.
 */
#define _GNU_SOURCE /* O_PATH */
#include "mail/queue_file.h"
#include "mail/queue_file_int.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITE_BLOCK 65536
#define CREATE_TRIES 5
#define ATTR_COUNT 6

struct queue_writer {
    char id[QUEUE_ID_SIZE];
    char tmp_name[QUEUE_ID_SIZE + 1]; /* "." + id */
    char *incoming;                   /* <queue_dir>/incoming, for messages */
    int dirfd;                        /* incoming/, for openat/renameat/fsync */
    bool dir_sync;                    /* dirfd can be fsync'd (see create_in) */
    int fd;
    strbuf buf;                       /* bytes not yet written to fd */
    off_t flushed;                    /* bytes already written to fd */
    off_t arrival_off;                /* record offsets to fill in later */
    off_t size_off;
    off_t content_off;
    bool arrival_set;
    bool have_sender;
    bool have_attr[ATTR_COUNT];
    bool have_ret;
    bool content_started;
    size_t rcpt_count;
    uint64_t content_len;
    bool broken;                      /* a call failed: only abort remains */
    strbuf error;                     /* the first failure, repeated later */
};

static const unsigned char attr_type[ATTR_COUNT] = {
    [QUEUE_ATTR_CLIENT_NAME] = QREC_CLIENT_NAME, [QUEUE_ATTR_CLIENT_ADDR] = QREC_CLIENT_ADDR,
    [QUEUE_ATTR_HELO] = QREC_HELO,               [QUEUE_ATTR_PROTOCOL] = QREC_PROTOCOL,
    [QUEUE_ATTR_AUTH_USER] = QREC_AUTH_USER,     [QUEUE_ATTR_ENVID] = QREC_ENVID,
};

static const char *const attr_name[ATTR_COUNT] = {
    [QUEUE_ATTR_CLIENT_NAME] = "client host name", [QUEUE_ATTR_CLIENT_ADDR] = "client address",
    [QUEUE_ATTR_HELO] = "HELO name",               [QUEUE_ATTR_PROTOCOL] = "protocol",
    [QUEUE_ATTR_AUTH_USER] = "authenticated user", [QUEUE_ATTR_ENVID] = "ENVID",
};

/* Records the first failure, marks the writer broken, copies it to err. */
__attribute__((format(printf, 3, 4)))
static int fail(struct queue_writer *w, strbuf *err, const char *fmt, ...)
{
    if (!w->broken) {
        va_list ap;
        strbuf_reset(&w->error);
        strbuf_printf(&w->error, "queue file %s/%s: ", w->incoming, w->tmp_name);
        va_start(ap, fmt);
        strbuf_vprintf(&w->error, fmt, ap);
        va_end(ap);
        w->broken = true;
    }
    strbuf_set(err, w->error.data, w->error.len);
    return -1;
}

/* Refuses a call on a broken writer, with the first error. */
static int check_usable(struct queue_writer *w, strbuf *err)
{
    if (w->broken) {
        strbuf_set(err, w->error.data, w->error.len);
        return -1;
    }
    return 0;
}

static int flush(struct queue_writer *w, strbuf *err)
{
    if (w->buf.len == 0)
        return 0;
    if (qf_write_all(w->fd, w->buf.data, w->buf.len) != 0)
        return fail(w, err, "write failed: %s", strerror(errno));
    w->flushed += (off_t)w->buf.len;
    strbuf_reset(&w->buf);
    return 0;
}

/* The file offset the next appended byte will have. */
static off_t next_offset(const struct queue_writer *w)
{
    return w->flushed + (off_t)w->buf.len;
}

static int append_record(struct queue_writer *w, unsigned char type, const void *payload,
                         size_t len, strbuf *err)
{
    unsigned char hdr[QUEUE_REC_HDR_LEN];
    hdr[0] = type;
    qf_put_u32(hdr + 1, (uint32_t)len);
    strbuf_append(&w->buf, hdr, sizeof(hdr));
    strbuf_append(&w->buf, payload, len);
    if (w->buf.len >= WRITE_BLOCK)
        return flush(w, err);
    return 0;
}

/* Overwrites n bytes at file offset off, in the buffer or in the file. */
static int patch(struct queue_writer *w, off_t off, const void *p, size_t n, strbuf *err)
{
    if (off >= w->flushed) {
        memcpy(w->buf.data + (off - w->flushed), p, n);
        return 0;
    }
    if (off + (off_t)n > w->flushed && flush(w, err) != 0)
        return -1;
    if (qf_pwrite_all(w->fd, p, n, off) != 0)
        return fail(w, err, "write failed: %s", strerror(errno));
    return 0;
}

static void encode_arrival(unsigned char *p, const struct timeval *tv)
{
    qf_put_u64(p, (uint64_t)tv->tv_sec);
    qf_put_u32(p + 8, (uint32_t)tv->tv_usec);
}

static void writer_free(struct queue_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    strbuf_free(&w->buf);
    strbuf_free(&w->error);
    free(w->incoming);
    free(w);
}

int queue_file_create(const char *queue_dir, char id_r[QUEUE_ID_SIZE],
                      struct queue_writer **w_r, strbuf *err)
{
    strbuf dir;
    strbuf_init(&dir);
    strbuf_printf(&dir, "%s/incoming", queue_dir);
    int rc = queue_file_create_in(dir.data, 0600, id_r, w_r, err);
    strbuf_free(&dir);
    return rc;
}

int queue_file_create_in(const char *dir, mode_t mode, char id_r[QUEUE_ID_SIZE],
                         struct queue_writer **w_r, strbuf *err)
{
    *w_r = NULL;
    struct queue_writer *w = xcalloc(1, sizeof(*w));
    w->fd = w->dirfd = -1;
    strbuf_init(&w->buf);
    strbuf_init(&w->error);
    w->incoming = xstrdup(dir);

    /* O_NOFOLLOW: incoming/ itself must not be a symlink to elsewhere. */
    w->dirfd = open(w->incoming, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    w->dir_sync = w->dirfd >= 0;
    if (w->dirfd < 0 && errno == EACCES) {
        /* maildrop/ is writable but not readable by local users (sendmail):
         * a path descriptor still serves openat and renameat, but a directory
         * that cannot be opened cannot be fsync'd. The file itself is synced;
         * pickup makes the message durable in incoming/ (as with Postfix's
         * postdrop, which cannot read its maildrop either). */
        w->dirfd = open(w->incoming, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (w->dirfd < 0) {
        strbuf_reset(err);
        strbuf_printf(err, "queue directory %s: cannot open: %s", w->incoming, strerror(errno));
        writer_free(w);
        return -1;
    }
    for (int tries = 0; w->fd < 0; tries++) {
        queue_id_new(w->id);
        w->tmp_name[0] = '.';
        memcpy(w->tmp_name + 1, w->id, QUEUE_ID_SIZE);
        w->fd = openat(w->dirfd, w->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       mode);
        /* EEXIST would need a colliding id: try a fresh one a few times. */
        if (w->fd < 0 && (errno != EEXIST || tries + 1 >= CREATE_TRIES)) {
            strbuf_reset(err);
            strbuf_printf(err, "queue file %s/%s: cannot create: %s", w->incoming, w->tmp_name,
                          strerror(errno));
            writer_free(w);
            return -1;
        }
    }

    unsigned char v[QREC_VERSION_LEN], t[QREC_ARRIVAL_LEN], q[QREC_SCHEDULE_LEN],
        z[QREC_SIZE_LEN];
    struct timeval now;
    gettimeofday(&now, NULL);
    qf_put_u32(v, QUEUE_FILE_VERSION);
    encode_arrival(t, &now);
    memset(q, 0, sizeof(q)); /* 0 attempts, retry as soon as possible */
    memset(z, 0, sizeof(z)); /* filled in by commit */
    /* These only fill the (empty) buffer, so they cannot fail. */
    append_record(w, QREC_VERSION, v, sizeof(v), err);
    w->arrival_off = next_offset(w);
    append_record(w, QREC_ARRIVAL, t, sizeof(t), err);
    append_record(w, QREC_SCHEDULE, q, sizeof(q), err);
    w->size_off = next_offset(w);
    append_record(w, QREC_SIZE, z, sizeof(z), err);

    if (id_r != NULL)
        memcpy(id_r, w->id, QUEUE_ID_SIZE);
    *w_r = w;
    return 0;
}

const char *queue_writer_id(const struct queue_writer *w)
{
    return w->id;
}

/* Common checks of the envelope setters. */
static int check_envelope(struct queue_writer *w, strbuf *err)
{
    if (check_usable(w, err) != 0)
        return -1;
    if (w->content_started)
        return fail(w, err, "envelope record added after the message content");
    return 0;
}

int queue_file_set_arrival(struct queue_writer *w, const struct timeval *tv, strbuf *err)
{
    if (check_envelope(w, err) != 0)
        return -1;
    if (w->arrival_set)
        return fail(w, err, "arrival time set twice");
    if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
        return fail(w, err, "invalid arrival time");
    unsigned char t[QREC_ARRIVAL_LEN];
    encode_arrival(t, tv);
    w->arrival_set = true;
    return patch(w, w->arrival_off + QUEUE_REC_HDR_LEN, t, sizeof(t), err);
}

int queue_file_set_sender(struct queue_writer *w, const char *s, size_t len, strbuf *err)
{
    if (check_envelope(w, err) != 0)
        return -1;
    if (w->have_sender)
        return fail(w, err, "sender set twice");
    if (len > QUEUE_MAX_VALUE)
        return fail(w, err, "sender longer than %d bytes", QUEUE_MAX_VALUE);
    if (!queue_value_ok(s, len))
        return fail(w, err, "sender contains a CR, LF or NUL byte");
    w->have_sender = true;
    return append_record(w, QREC_SENDER, s, len, err);
}

int queue_file_set_attr(struct queue_writer *w, enum queue_attr attr, const char *s,
                        size_t len, strbuf *err)
{
    if (check_envelope(w, err) != 0)
        return -1;
    if ((unsigned)attr >= ATTR_COUNT)
        return fail(w, err, "unknown envelope attribute %d", (int)attr);
    if (w->have_attr[attr])
        return fail(w, err, "%s set twice", attr_name[attr]);
    if (len > QUEUE_MAX_VALUE)
        return fail(w, err, "%s longer than %d bytes", attr_name[attr], QUEUE_MAX_VALUE);
    if (!queue_value_ok(s, len))
        return fail(w, err, "%s contains a CR, LF or NUL byte", attr_name[attr]);
    w->have_attr[attr] = true;
    return append_record(w, attr_type[attr], s, len, err);
}

int queue_file_set_ret(struct queue_writer *w, enum queue_ret ret, strbuf *err)
{
    if (check_envelope(w, err) != 0)
        return -1;
    if (w->have_ret)
        return fail(w, err, "DSN RET set twice");
    if (ret == QUEUE_RET_NONE)
        return 0; /* absent record: nothing to write */
    if (ret != QUEUE_RET_FULL && ret != QUEUE_RET_HDRS)
        return fail(w, err, "invalid DSN RET value %d", (int)ret);
    unsigned char c = (unsigned char)ret;
    w->have_ret = true;
    return append_record(w, QREC_RET, &c, 1, err);
}

int queue_file_add_recipient(struct queue_writer *w, const char *addr, size_t addr_len,
                             const char *orcpt, size_t orcpt_len, unsigned notify, strbuf *err)
{
    if (check_envelope(w, err) != 0)
        return -1;
    if (w->rcpt_count >= QUEUE_MAX_RCPTS)
        return fail(w, err, "more than %d recipients", QUEUE_MAX_RCPTS);
    if (addr_len == 0)
        return fail(w, err, "empty recipient address");
    if (addr_len > QUEUE_MAX_VALUE)
        return fail(w, err, "recipient address longer than %d bytes", QUEUE_MAX_VALUE);
    if (!queue_value_ok(addr, addr_len))
        return fail(w, err, "recipient address contains a CR, LF or NUL byte");
    if (orcpt == NULL)
        orcpt_len = 0;
    if (orcpt_len > QUEUE_MAX_VALUE)
        return fail(w, err, "ORCPT longer than %d bytes", QUEUE_MAX_VALUE);
    if (orcpt != NULL && !queue_value_ok(orcpt, orcpt_len))
        return fail(w, err, "ORCPT contains a CR, LF or NUL byte");
    if (!queue_notify_valid(notify))
        return fail(w, err, "invalid DSN NOTIFY flags 0x%x", notify);

    size_t len = QREC_RCPT_FIXED_LEN + addr_len + orcpt_len;
    unsigned char *p = xmalloc(len);
    p[0] = QUEUE_RCPT_PENDING;
    p[1] = (unsigned char)notify;
    p[2] = orcpt != NULL;
    qf_put_u16(p + 3, (uint16_t)addr_len);
    memcpy(p + 5, addr, addr_len);
    qf_put_u16(p + 5 + addr_len, (uint16_t)orcpt_len);
    if (orcpt_len > 0)
        memcpy(p + 7 + addr_len, orcpt, orcpt_len);
    w->rcpt_count++;
    int rc = append_record(w, QREC_RCPT, p, len, err);
    free(p);
    return rc;
}

/* Writes the content record header (length filled in at commit). */
static int start_content(struct queue_writer *w, strbuf *err)
{
    if (!w->have_sender)
        return fail(w, err, "message content before a sender was set");
    if (w->rcpt_count == 0)
        return fail(w, err, "message content before any recipient was added");
    w->content_off = next_offset(w);
    w->content_started = true;
    return append_record(w, QREC_CONTENT, NULL, 0, err);
}

int queue_file_write_content(struct queue_writer *w, const void *data, size_t n, strbuf *err)
{
    if (check_usable(w, err) != 0)
        return -1;
    if (!w->content_started && start_content(w, err) != 0)
        return -1;
    if (n > QUEUE_MAX_CONTENT - w->content_len)
        return fail(w, err, "message larger than the queue file limit of %lu bytes",
                    (unsigned long)QUEUE_MAX_CONTENT);
    w->content_len += n;
    if (n >= WRITE_BLOCK) {
        /* A large piece: write it directly instead of copying it. */
        if (flush(w, err) != 0)
            return -1;
        if (qf_write_all(w->fd, data, n) != 0)
            return fail(w, err, "write failed: %s", strerror(errno));
        w->flushed += (off_t)n;
        return 0;
    }
    strbuf_append(&w->buf, data, n);
    if (w->buf.len >= WRITE_BLOCK)
        return flush(w, err);
    return 0;
}

int queue_file_commit(struct queue_writer **wp, strbuf *err)
{
    struct queue_writer *w = *wp;
    *wp = NULL;
    bool renamed = false;

    if (check_usable(w, err) != 0)
        goto failed;
    if (!w->content_started && start_content(w, err) != 0)
        goto failed;

    /* 1. The end record: a file without it is truncated, whatever else. */
    if (append_record(w, QREC_END, NULL, 0, err) != 0)
        goto failed;
    /* 2. The lengths that were unknown until now: content record, size. */
    unsigned char len4[4], size8[QREC_SIZE_LEN];
    qf_put_u32(len4, (uint32_t)w->content_len);
    qf_put_u64(size8, w->content_len);
    if (patch(w, w->content_off + 1, len4, sizeof(len4), err) != 0 ||
        patch(w, w->size_off + QUEUE_REC_HDR_LEN, size8, sizeof(size8), err) != 0)
        goto failed;
    /* 3. Flush what is still buffered. */
    if (flush(w, err) != 0)
        goto failed;
    /* 4. fsync: the data is on disk before the name says it is complete. */
    if (qf_fsync_fd(w->fd) != 0) {
        fail(w, err, "fsync failed: %s", strerror(errno));
        goto failed;
    }
    /* 5. close, checked: NFS and some file systems report errors only here. */
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        fail(w, err, "close failed: %s", strerror(errno));
        goto failed;
    }
    /* 6. rename into place: atomic, the scanners now see a complete file. */
    if (renameat(w->dirfd, w->tmp_name, w->dirfd, w->id) != 0) {
        fail(w, err, "cannot rename to %s: %s", w->id, strerror(errno));
        goto failed;
    }
    renamed = true;
    /* 7. fsync the directory so that the new name survives a crash. Only
     * after this may the caller answer 250. */
    if (w->dir_sync && qf_fsync_fd(w->dirfd) != 0) {
        fail(w, err, "fsync of directory %s failed: %s", w->incoming, strerror(errno));
        goto failed;
    }
    writer_free(w);
    return 0;

failed:
    /* The caller will answer 4xx: leave nothing that could be delivered
     * too. After a failed directory fsync the renamed file is removed (the
     * small window in which qmgr could already have opened it is the price
     * of never leaving a file behind that the client will send again). */
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlinkat(w->dirfd, renamed ? w->id : w->tmp_name, 0);
    writer_free(w);
    return -1;
}

void queue_file_abort(struct queue_writer **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    struct queue_writer *w = *wp;
    *wp = NULL;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlinkat(w->dirfd, w->tmp_name, 0);
    writer_free(w);
}
