/*
 * queue_file_read.c - opening and validating a queue file, reading its
 * content, and the in-place updates of recipient status and retry schedule;
 * see queue_file.h for the contract and docs/queue.md for the format.
 *
 * The reader trusts nothing in the file: every length is checked against
 * the file size and a per-type limit before anything is allocated, every
 * type byte against the known types and the position it may appear in,
 * every text value for CR, LF and NUL, every number for its range; and the
 * file must end exactly after the end record. Errors name the file, the
 * offset and the problem, never the (possibly hostile) value itself.
 */
#include "mail/queue_file.h"
#include "mail/queue_file_int.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where in the file we are: records have a fixed order of sections. */
enum section {
    SEC_START,    /* expecting the version record */
    SEC_ENVELOPE, /* envelope records, in any order */
    SEC_CONTENT,  /* after the content record: only the end record */
};

/* Bytes read ahead in one pread while parsing: a typical envelope (and the
 * whole file of a small message) is one system call instead of two per
 * record. Larger payloads are read directly. */
#define QF_READ_WINDOW 8192

struct parser {
    struct queue_file *qf;
    off_t file_size;
    unsigned char win[QF_READ_WINDOW]; /* file bytes [win_off, win_off + win_len) */
    off_t win_off;
    size_t win_len;
    strbuf *err;
    strbuf payload;
    bool have_arrival, have_schedule, have_size, have_sender, have_ret, have_content;
    uint64_t size;
    size_t rcpt_cap;
};

__attribute__((format(printf, 3, 4)))
static int perr(struct parser *p, off_t off, const char *fmt, ...)
{
    va_list ap;
    strbuf_reset(p->err);
    strbuf_printf(p->err, "queue file %s: ", p->qf->path);
    if (off >= 0)
        strbuf_printf(p->err, "record at offset %jd: ", (intmax_t)off);
    va_start(ap, fmt);
    strbuf_vprintf(p->err, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *type_name(unsigned char type)
{
    switch (type) {
    case QREC_VERSION: return "version";
    case QREC_ARRIVAL: return "arrival time";
    case QREC_SCHEDULE: return "schedule";
    case QREC_SIZE: return "size";
    case QREC_SENDER: return "sender";
    case QREC_CLIENT_NAME: return "client host name";
    case QREC_CLIENT_ADDR: return "client address";
    case QREC_HELO: return "HELO name";
    case QREC_PROTOCOL: return "protocol";
    case QREC_AUTH_USER: return "authenticated user";
    case QREC_ENVID: return "ENVID";
    case QREC_RET: return "DSN RET";
    case QREC_RCPT: return "recipient";
    case QREC_CONTENT: return "content";
    case QREC_END: return "end";
    default: return NULL;
    }
}

/* Largest payload each type may have (content is bounded by the file). */
static uint32_t max_payload(unsigned char type)
{
    switch (type) {
    case QREC_VERSION: return QREC_VERSION_LEN;
    case QREC_ARRIVAL: return QREC_ARRIVAL_LEN;
    case QREC_SCHEDULE: return QREC_SCHEDULE_LEN;
    case QREC_SIZE: return QREC_SIZE_LEN;
    case QREC_RET: return QREC_RET_LEN;
    case QREC_RCPT: return QREC_RCPT_FIXED_LEN + 2 * QUEUE_MAX_VALUE;
    case QREC_CONTENT: return QUEUE_MAX_CONTENT;
    case QREC_END: return 0;
    default: return QUEUE_MAX_VALUE; /* text records */
    }
}

/* Checks a fixed-width record's exact length. */
static int want_len(struct parser *p, off_t off, unsigned char type, uint32_t len,
                    uint32_t want)
{
    if (len != want)
        return perr(p, off, "%s record has length %" PRIu32 ", expected %" PRIu32,
                    type_name(type), len, want);
    return 0;
}

/* Stores a text value (validated) as a C string in *dst; refuses a second
 * record of the same type. */
static int take_text(struct parser *p, off_t off, unsigned char type, char **dst)
{
    if (*dst != NULL)
        return perr(p, off, "duplicate %s record", type_name(type));
    if (!queue_value_ok(p->payload.data, p->payload.len))
        return perr(p, off, "%s contains a CR, LF or NUL byte", type_name(type));
    *dst = xmemdup(p->payload.data, p->payload.len);
    return 0;
}

static int parse_rcpt(struct parser *p, off_t off)
{
    struct queue_file *qf = p->qf;
    const unsigned char *b = (const unsigned char *)p->payload.data;
    size_t len = p->payload.len;
    if (len < QREC_RCPT_FIXED_LEN)
        return perr(p, off, "recipient record too short (%zu bytes)", len);
    if (qf->rcpt_count >= QUEUE_MAX_RCPTS)
        return perr(p, off, "more than %d recipients", QUEUE_MAX_RCPTS);
    if (!queue_rcpt_status_valid(b[0]))
        return perr(p, off, "recipient has invalid status byte 0x%02x", b[0]);
    if (!queue_notify_valid(b[1]))
        return perr(p, off, "recipient has invalid NOTIFY flags 0x%02x", b[1]);
    if (b[2] > 1)
        return perr(p, off, "recipient has invalid ORCPT flag 0x%02x", b[2]);
    size_t alen = qf_get_u16(b + 3);
    if (alen == 0)
        return perr(p, off, "recipient has an empty address");
    if (alen > len - QREC_RCPT_FIXED_LEN)
        return perr(p, off, "recipient address length %zu runs past the record", alen);
    size_t olen = qf_get_u16(b + 5 + alen);
    if (QREC_RCPT_FIXED_LEN + alen + olen != len)
        return perr(p, off, "recipient field lengths (%zu + %zu) do not match the record "
                    "length %zu", alen, olen, len);
    if (b[2] == 0 && olen != 0)
        return perr(p, off, "recipient has ORCPT bytes but no ORCPT flag");
    const char *addr = (const char *)b + 5, *orcpt = (const char *)b + 7 + alen;
    if (!queue_value_ok(addr, alen))
        return perr(p, off, "recipient address contains a CR, LF or NUL byte");
    if (!queue_value_ok(orcpt, olen))
        return perr(p, off, "recipient ORCPT contains a CR, LF or NUL byte");

    if (qf->rcpt_count == p->rcpt_cap) {
        p->rcpt_cap = p->rcpt_cap ? 2 * p->rcpt_cap : 4;
        qf->rcpts = xreallocarray(qf->rcpts, p->rcpt_cap, sizeof(*qf->rcpts));
    }
    struct queue_rcpt *r = &qf->rcpts[qf->rcpt_count++];
    r->address = xmemdup(addr, alen);
    r->orcpt = b[2] ? xmemdup(orcpt, olen) : NULL;
    r->notify = b[1];
    r->status = (enum queue_rcpt_status)b[0];
    r->status_offset = off + QUEUE_REC_HDR_LEN;
    return 0;
}

/* Interprets one envelope record whose payload is in p->payload. */
static int parse_envelope(struct parser *p, off_t off, unsigned char type, uint32_t len)
{
    struct queue_file *qf = p->qf;
    const unsigned char *b = (const unsigned char *)p->payload.data;
    switch (type) {
    case QREC_ARRIVAL: {
        if (p->have_arrival)
            return perr(p, off, "duplicate arrival time record");
        if (want_len(p, off, type, len, QREC_ARRIVAL_LEN) != 0)
            return -1;
        uint64_t sec = qf_get_u64(b);
        uint32_t usec = qf_get_u32(b + 8);
        if (sec > INT64_MAX || usec >= 1000000)
            return perr(p, off, "arrival time out of range");
        qf->arrival.tv_sec = (time_t)sec;
        qf->arrival.tv_usec = (suseconds_t)usec;
        p->have_arrival = true;
        return 0;
    }
    case QREC_SCHEDULE: {
        if (p->have_schedule)
            return perr(p, off, "duplicate schedule record");
        if (want_len(p, off, type, len, QREC_SCHEDULE_LEN) != 0)
            return -1;
        uint64_t next = qf_get_u64(b + 4);
        if (next > INT64_MAX)
            return perr(p, off, "next retry time out of range");
        qf->attempts = qf_get_u32(b);
        qf->next_retry = (int64_t)next;
        qf->schedule_offset = off + QUEUE_REC_HDR_LEN;
        p->have_schedule = true;
        return 0;
    }
    case QREC_SIZE:
        if (p->have_size)
            return perr(p, off, "duplicate size record");
        if (want_len(p, off, type, len, QREC_SIZE_LEN) != 0)
            return -1;
        p->size = qf_get_u64(b);
        p->have_size = true;
        return 0;
    case QREC_SENDER:
        if (p->have_sender)
            return perr(p, off, "duplicate sender record");
        p->have_sender = true;
        return take_text(p, off, type, &qf->sender);
    case QREC_CLIENT_NAME: return take_text(p, off, type, &qf->client_name);
    case QREC_CLIENT_ADDR: return take_text(p, off, type, &qf->client_addr);
    case QREC_HELO: return take_text(p, off, type, &qf->helo);
    case QREC_PROTOCOL: return take_text(p, off, type, &qf->protocol);
    case QREC_AUTH_USER: return take_text(p, off, type, &qf->auth_user);
    case QREC_ENVID: return take_text(p, off, type, &qf->envid);
    case QREC_RET:
        if (p->have_ret)
            return perr(p, off, "duplicate DSN RET record");
        if (want_len(p, off, type, len, QREC_RET_LEN) != 0)
            return -1;
        if (b[0] != QUEUE_RET_FULL && b[0] != QUEUE_RET_HDRS)
            return perr(p, off, "invalid DSN RET value 0x%02x", b[0]);
        qf->ret = (enum queue_ret)b[0];
        p->have_ret = true;
        return 0;
    case QREC_RCPT:
        return parse_rcpt(p, off);
    default:
        return perr(p, off, "%s record not allowed in the envelope", type_name(type));
    }
}

/* Walks the records from offset 0 to the end record and end of file. */
/* Reads n bytes at off through the read-ahead window. Returns the number of
 * bytes read (short only at the end of the file), or -1 with errno. */
static ssize_t parser_read(struct parser *p, void *dst, size_t n, off_t off)
{
    if (off >= p->win_off && (uint64_t)(off - p->win_off) + n <= p->win_len) {
        memcpy(dst, p->win + (off - p->win_off), n);
        return (ssize_t)n;
    }
    if (n > sizeof(p->win))
        return qf_pread_full(p->qf->fd, dst, n, off);
    off_t left = p->file_size - off;
    size_t want = left < (off_t)sizeof(p->win) ? (size_t)(left > 0 ? left : 0) : sizeof(p->win);
    if (want < n)
        want = n; /* the file shrank: let the read show it */
    ssize_t got = qf_pread_full(p->qf->fd, p->win, want, off);
    if (got < 0) {
        p->win_len = 0;
        return -1;
    }
    p->win_off = off;
    p->win_len = (size_t)got;
    size_t take = (size_t)got < n ? (size_t)got : n;
    memcpy(dst, p->win, take);
    return (ssize_t)take;
}

static int parse_file(struct parser *p)
{
    struct queue_file *qf = p->qf;
    enum section sec = SEC_START;
    off_t off = 0;
    for (;;) {
        if (off == p->file_size)
            return perr(p, -1, "ends at offset %jd without an end record (truncated file)",
                        (intmax_t)off);
        if (p->file_size - off < QUEUE_REC_HDR_LEN)
            return perr(p, off, "truncated record header (%jd of %d bytes before end of file)",
                        (intmax_t)(p->file_size - off), QUEUE_REC_HDR_LEN);
        unsigned char hdr[QUEUE_REC_HDR_LEN];
        ssize_t got = parser_read(p, hdr, sizeof(hdr), off);
        if (got < 0)
            return perr(p, off, "read error: %s", strerror(errno));
        if (got != (ssize_t)sizeof(hdr))
            return perr(p, off, "file shrank while being read");
        unsigned char type = hdr[0];
        uint32_t len = qf_get_u32(hdr + 1);
        if (type_name(type) == NULL)
            return perr(p, off, "unknown record type 0x%02x", type);
        if (sec == SEC_START && type != QREC_VERSION)
            return perr(p, off, "first record is %s, not the version record", type_name(type));
        if (sec == SEC_CONTENT && type != QREC_END)
            return perr(p, off, "%s record after the message content", type_name(type));
        if (sec == SEC_ENVELOPE && (type == QREC_VERSION || type == QREC_END))
            return perr(p, off, type == QREC_VERSION ? "duplicate version record"
                                                     : "end record before the message content");
        off_t left = p->file_size - off - QUEUE_REC_HDR_LEN;
        if ((off_t)len > left)
            return perr(p, off, "%s record length %" PRIu32 " runs past the end of the file "
                        "(%jd bytes left; truncated file?)", type_name(type), len,
                        (intmax_t)left);
        if (len > max_payload(type))
            return perr(p, off, "%s record length %" PRIu32 " exceeds the limit of %" PRIu32,
                        type_name(type), len, max_payload(type));


        if (type == QREC_CONTENT) {
            /* The content is not read here: any bytes are allowed in it. */
            qf->content_offset = off + QUEUE_REC_HDR_LEN;
            qf->content_length = len;
            p->have_content = true;
            sec = SEC_CONTENT;
            off += QUEUE_REC_HDR_LEN + (off_t)len;
            continue;
        }
        if (type == QREC_END) {
            off += QUEUE_REC_HDR_LEN;
            if (off != p->file_size)
                return perr(p, -1, "%jd bytes of trailing data after the end record",
                            (intmax_t)(p->file_size - off));
            return 0;
        }

        strbuf_reset(&p->payload);
        strbuf_reserve(&p->payload, len);
        got = parser_read(p, p->payload.data, len, off + QUEUE_REC_HDR_LEN);
        if (got < 0)
            return perr(p, off, "read error: %s", strerror(errno));
        if (got != (ssize_t)len)
            return perr(p, off, "file shrank while being read");
        p->payload.len = len;
        p->payload.data[len] = '\0';

        if (type == QREC_VERSION) {
            if (want_len(p, off, type, len, QREC_VERSION_LEN) != 0)
                return -1;
            qf->version = qf_get_u32((const unsigned char *)p->payload.data);
            if (qf->version != QUEUE_FILE_VERSION)
                return perr(p, off, "unsupported queue file version %" PRIu32
                            " (this program reads version %d)", qf->version, QUEUE_FILE_VERSION);
            sec = SEC_ENVELOPE;
        } else if (parse_envelope(p, off, type, len) != 0) {
            return -1;
        }
        off += QUEUE_REC_HDR_LEN + (off_t)len;
    }
}

/* The structure rules that no single record can check. */
static int check_structure(struct parser *p)
{
    const struct queue_file *qf = p->qf;
    if (!p->have_arrival)
        return perr(p, -1, "no arrival time record");
    if (!p->have_schedule)
        return perr(p, -1, "no schedule record");
    if (!p->have_size)
        return perr(p, -1, "no size record");
    if (!p->have_sender)
        return perr(p, -1, "no sender record");
    if (qf->rcpt_count == 0)
        return perr(p, -1, "no recipient records");
    if (!p->have_content)
        return perr(p, -1, "no content record");
    if (p->size != qf->content_length)
        return perr(p, -1, "size record says %" PRIu64 " bytes but the content has %" PRIu64,
                    p->size, qf->content_length);
    return 0;
}

static void set_id_from_path(struct queue_file *qf)
{
    const char *slash = strrchr(qf->path, '/');
    const char *base = slash ? slash + 1 : qf->path;
    if (queue_id_valid(base))
        memcpy(qf->id, base, QUEUE_ID_SIZE);
    else
        qf->id[0] = '\0';
}

static int open_common(const char *path, bool writable, struct queue_file **qf_r, strbuf *err)
{
    *qf_r = NULL;
    struct queue_file *qf = xcalloc(1, sizeof(*qf));
    qf->path = xstrdup(path);
    qf->writable = writable;
    set_id_from_path(qf);
    struct parser p = {.qf = qf, .err = err};
    strbuf_init(&p.payload);

    /* O_NOFOLLOW refuses a symlink; O_NONBLOCK keeps a FIFO planted in the
     * queue from blocking the open (it is refused just below). */
    qf->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (qf->fd < 0) {
        int e = errno;
        strbuf_reset(err);
        if (e == ELOOP)
            strbuf_printf(err, "queue file %s: is a symbolic link; refusing it", path);
        else
            strbuf_printf(err, "queue file %s: cannot open: %s", path, strerror(e));
        goto failed;
    }
    struct stat st;
    if (fstat(qf->fd, &st) != 0) {
        perr(&p, -1, "cannot stat: %s", strerror(errno));
        goto failed;
    }
    if (!S_ISREG(st.st_mode)) {
        perr(&p, -1, "not a regular file; refusing it");
        goto failed;
    }
    if (st.st_nlink != 1) {
        /* A second name could be a hard link planted by someone who wants
         * the file read or modified through another path. */
        perr(&p, -1, "has %ju links, expected exactly 1; refusing it", (uintmax_t)st.st_nlink);
        goto failed;
    }
    /* Back to blocking mode for a regular file (it makes no difference on
     * Linux, but the descriptor may be handed to code that expects it). */
    int fl = fcntl(qf->fd, F_GETFL);
    if (fl >= 0)
        fcntl(qf->fd, F_SETFL, fl & ~O_NONBLOCK);
    p.file_size = st.st_size;
    if (parse_file(&p) != 0 || check_structure(&p) != 0)
        goto failed;
    strbuf_free(&p.payload);
    *qf_r = qf;
    return 0;

failed:
    strbuf_free(&p.payload);
    queue_file_close(&qf);
    return -1;
}

int queue_file_open(const char *path, struct queue_file **qf_r, strbuf *err)
{
    return open_common(path, true, qf_r, err);
}

int queue_file_open_readonly(const char *path, struct queue_file **qf_r, strbuf *err)
{
    return open_common(path, false, qf_r, err);
}

void queue_file_close(struct queue_file **qfp)
{
    if (qfp == NULL || *qfp == NULL)
        return;
    struct queue_file *qf = *qfp;
    *qfp = NULL;
    if (qf->fd >= 0)
        close(qf->fd);
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        free(qf->rcpts[i].address);
        free(qf->rcpts[i].orcpt);
    }
    free(qf->rcpts);
    free(qf->sender);
    free(qf->client_name);
    free(qf->client_addr);
    free(qf->helo);
    free(qf->protocol);
    free(qf->auth_user);
    free(qf->envid);
    free(qf->path);
    free(qf);
}

ssize_t queue_file_read_content(struct queue_file *qf, uint64_t pos, void *buf, size_t n,
                                strbuf *err)
{
    if (pos >= qf->content_length)
        return 0;
    if (n > qf->content_length - pos)
        n = (size_t)(qf->content_length - pos);
    ssize_t got = qf_pread_full(qf->fd, buf, n, qf->content_offset + (off_t)pos);
    if (got < 0) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: read error: %s", qf->path, strerror(errno));
        return -1;
    }
    if ((size_t)got != n) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: file shrank while its content was read", qf->path);
        return -1;
    }
    return got;
}

/* pwrite + fdatasync of an in-place field. */
static int update_in_place(struct queue_file *qf, const void *p, size_t n, off_t off,
                           const char *what, strbuf *err)
{
    if (!qf->writable) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: opened read-only, cannot update %s", qf->path, what);
        return -1;
    }
    if (qf_pwrite_all(qf->fd, p, n, off) != 0) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: cannot write %s: %s", qf->path, what,
                      strerror(errno));
        return -1;
    }
    qf->dirty = true;
    if (qf->lazy_sync)
        return 0;
    int rc;
    while ((rc = fdatasync(qf->fd)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: fdatasync after updating %s failed: %s", qf->path,
                      what, strerror(errno));
        return -1;
    }
    qf->dirty = false;
    return 0;
}

void queue_file_set_lazy_sync(struct queue_file *qf, bool lazy)
{
    qf->lazy_sync = lazy;
}

int queue_file_sync(struct queue_file *qf, strbuf *err)
{
    if (!qf->dirty)
        return 0;
    int rc;
    while ((rc = fdatasync(qf->fd)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: fdatasync failed: %s", qf->path, strerror(errno));
        return -1;
    }
    qf->dirty = false;
    return 0;
}

int queue_file_set_recipient_status(struct queue_file *qf, size_t index,
                                    enum queue_rcpt_status status, strbuf *err)
{
    if (index >= qf->rcpt_count) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: no recipient number %zu (there are %zu)", qf->path,
                      index, qf->rcpt_count);
        return -1;
    }
    if (!queue_rcpt_status_valid((int)status)) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: invalid recipient status %d", qf->path, (int)status);
        return -1;
    }
    unsigned char c = (unsigned char)status;
    if (update_in_place(qf, &c, 1, qf->rcpts[index].status_offset, "recipient status",
                        err) != 0)
        return -1;
    qf->rcpts[index].status = status;
    return 0;
}

int queue_file_set_schedule(struct queue_file *qf, uint32_t attempts, int64_t next_retry,
                            strbuf *err)
{
    if (next_retry < 0) {
        strbuf_reset(err);
        strbuf_printf(err, "queue file %s: negative next retry time", qf->path);
        return -1;
    }
    unsigned char b[QREC_SCHEDULE_LEN];
    qf_put_u32(b, attempts);
    qf_put_u64(b + 4, (uint64_t)next_retry);
    if (update_in_place(qf, b, sizeof(b), qf->schedule_offset, "retry schedule", err) != 0)
        return -1;
    qf->attempts = attempts;
    qf->next_retry = next_retry;
    return 0;
}

size_t queue_file_unfinished(const struct queue_file *qf)
{
    size_t n = 0;
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        if (!queue_rcpt_status_final(qf->rcpts[i].status))
            n++;
    }
    return n;
}
