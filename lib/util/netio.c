/*
 * netio.c - buffered line I/O with deadlines; see netio.h for the contract.
 *
 * The plain descriptor backend and the clock are in netio_plain.c. Here:
 * life cycle and settings, the input side (chunked fill, line splitting with
 * terminator classification, discard of over-long lines, exact reads), then
 * the output side (bounded buffer, sticky errors).
 */
#include "util/netio.h"
#include "util/netio_int.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct netio {
    const struct netio_backend *be;
    void *ctx;
    struct netio_plain_ctx plain;
    strbuf in;     /* received bytes; in.data[in_pos..in.len) not yet returned */
    size_t in_pos; /* kept as an offset so taking a line never moves memory */
    strbuf out;    /* output waiting for flush, at most NETIO_CHUNK bytes */
    strbuf fmt;    /* scratch for netio_printf */
    int read_timeout;
    int write_timeout;
    size_t max_line;
    size_t discard_limit;
    int werr; /* sticky write errno */
};

/* ---- life cycle and settings ---- */

struct netio *netio_new_fds(int rfd, int wfd)
{
    struct netio *io = xcalloc(1, sizeof(*io));
    io->plain.rfd = rfd;
    io->plain.wfd = wfd;
    io->be = &netio_plain_backend;
    io->ctx = &io->plain;
    strbuf_init(&io->in);
    strbuf_init(&io->out);
    strbuf_init(&io->fmt);
    io->read_timeout = NETIO_DEFAULT_TIMEOUT_MS;
    io->write_timeout = NETIO_DEFAULT_TIMEOUT_MS;
    io->max_line = NETIO_DEFAULT_MAX_LINE;
    io->discard_limit = NETIO_DEFAULT_DISCARD_LIMIT;
    return io;
}

struct netio *netio_new(int fd)
{
    return netio_new_fds(fd, fd);
}

void netio_free(struct netio **iop)
{
    struct netio *io = *iop;
    if (io == NULL)
        return;
    strbuf_free(&io->in);
    strbuf_free(&io->out);
    strbuf_free(&io->fmt);
    free(io);
    *iop = NULL;
}

int netio_rfd(const struct netio *io)
{
    return io->plain.rfd;
}

int netio_wfd(const struct netio *io)
{
    return io->plain.wfd;
}

void netio_set_read_timeout(struct netio *io, int timeout_ms)
{
    if (timeout_ms <= 0)
        log_panic("netio: read timeout must be positive (got %d ms)", timeout_ms);
    io->read_timeout = timeout_ms;
}

void netio_set_write_timeout(struct netio *io, int timeout_ms)
{
    if (timeout_ms <= 0)
        log_panic("netio: write timeout must be positive (got %d ms)", timeout_ms);
    io->write_timeout = timeout_ms;
}

void netio_set_max_line(struct netio *io, size_t max_line)
{
    /* The upper bound keeps max_line + 2 and buffer arithmetic far from overflow. */
    if (max_line == 0 || max_line > SIZE_MAX / 4)
        log_panic("netio: maximum line length %zu out of range", max_line);
    io->max_line = max_line;
}

void netio_set_discard_limit(struct netio *io, size_t limit)
{
    io->discard_limit = limit;
}

size_t netio_pending(const struct netio *io)
{
    return io->in.len - io->in_pos;
}

size_t netio_discard_input(struct netio *io)
{
    size_t n = netio_pending(io);
    strbuf_reset(&io->in);
    io->in_pos = 0;
    return n;
}

size_t netio_set_backend(struct netio *io, const struct netio_backend *be, void *ctx)
{
    if (io->out.len > 0)
        log_panic("netio: backend switched to %s with %zu bytes of unsent output",
                  be->name, io->out.len);
    size_t dropped = netio_discard_input(io);
    io->be = be;
    io->ctx = ctx;
    return dropped;
}

const char *netio_status_str(enum netio_status st)
{
    switch (st) {
    case NETIO_OK: return "ok";
    case NETIO_EOF: return "connection closed";
    case NETIO_EOF_PARTIAL: return "connection closed in the middle of a line";
    case NETIO_TIMEOUT: return "timeout";
    case NETIO_TOO_LONG: return "line too long";
    case NETIO_ERROR: return "read error";
    }
    return "unknown status";
}

/* ---- input ---- */

/* Reads one chunk from the backend into the input buffer, first dropping the
 * bytes already returned (only a partial line is ever moved). Returns the
 * byte count, 0 at end of file, -1 with errno. */
static ssize_t fill(struct netio *io, long long deadline)
{
    if (io->in_pos > 0) {
        strbuf_consume(&io->in, io->in_pos);
        io->in_pos = 0;
    }
    strbuf_reserve(&io->in, NETIO_CHUNK);
    ssize_t r = io->be->read(io->ctx, io->in.data + io->in.len, NETIO_CHUNK,
                             netio_remaining_ms(deadline));
    if (r > 0) {
        if ((size_t)r > NETIO_CHUNK)
            log_panic("netio: backend %s returned %zd bytes for a %d byte read",
                      io->be->name, r, NETIO_CHUNK);
        io->in.len += (size_t)r;
        io->in.data[io->in.len] = '\0';
    }
    return r;
}

static enum netio_status read_failed(void)
{
    return errno == ETIMEDOUT ? NETIO_TIMEOUT : NETIO_ERROR;
}

/*
 * Flags for a stretch of line content p[0..n) that holds no LF. A CR is bare
 * when the byte after it is not LF; the last byte's fate is decided by what
 * follows, so *pending_cr carries "the previous stretch ended in CR" from
 * one stretch to the next. `have` are flags already known (skips searches).
 */
static unsigned stretch_flags(const char *p, size_t n, bool *pending_cr, unsigned have)
{
    if (n == 0)
        return 0;
    unsigned f = 0;
    if (*pending_cr)
        f |= NETIO_LINE_BARE_CR;
    if (!(have & NETIO_LINE_NUL) && memchr(p, '\0', n) != NULL)
        f |= NETIO_LINE_NUL;
    if (!((have | f) & NETIO_LINE_BARE_CR) && memchr(p, '\r', n - 1) != NULL)
        f |= NETIO_LINE_BARE_CR;
    *pending_cr = p[n - 1] == '\r';
    return f;
}

/*
 * The current line is longer than max_line and holds no LF in the buffer:
 * keep its first max_line bytes, then read and throw away the rest up to its
 * LF, within the same deadline and at most discard_limit bytes.
 */
static enum netio_status discard_rest(struct netio *io, strbuf *line, unsigned *flags_r,
                                      long long deadline)
{
    unsigned flags = 0;
    bool pending_cr = false;
    const char *start = io->in.data + io->in_pos;
    size_t avail = netio_pending(io);

    strbuf_set(line, start, io->max_line);
    flags |= stretch_flags(start, avail, &pending_cr, flags);
    size_t discarded = avail - io->max_line;
    io->in_pos = io->in.len;

    for (;;) {
        if (discarded > io->discard_limit) {
            *flags_r = flags | NETIO_LINE_DESYNC;
            return NETIO_TOO_LONG;
        }
        ssize_t r = fill(io, deadline);
        if (r == 0) {
            /* A CR as the very last byte before end of file is bare. */
            *flags_r = flags | (pending_cr ? NETIO_LINE_BARE_CR : 0);
            return NETIO_EOF_PARTIAL;
        }
        if (r < 0) {
            *flags_r = flags;
            return read_failed();
        }
        start = io->in.data + io->in_pos;
        avail = netio_pending(io);
        const char *lf = memchr(start, '\n', avail);
        if (lf != NULL) {
            size_t seg = (size_t)(lf - start);
            flags |= stretch_flags(start, seg, &pending_cr, flags);
            flags |= pending_cr ? NETIO_LINE_CRLF : NETIO_LINE_LF;
            io->in_pos += seg + 1;
            *flags_r = flags;
            return NETIO_TOO_LONG;
        }
        flags |= stretch_flags(start, avail, &pending_cr, flags);
        discarded += avail;
        io->in_pos = io->in.len;
    }
}

enum netio_status netio_read_line(struct netio *io, strbuf *line, unsigned *flags_r)
{
    unsigned dummy;
    if (flags_r == NULL)
        flags_r = &dummy;
    *flags_r = 0;
    strbuf_reset(line);
    long long deadline = netio_now_ms() + io->read_timeout;
    size_t scanned = 0; /* pending bytes already known to hold no LF */

    for (;;) {
        const char *start = io->in.data + io->in_pos;
        size_t avail = netio_pending(io);
        const char *lf = memchr(start + scanned, '\n', avail - scanned);
        if (lf != NULL) {
            size_t end = (size_t)(lf - start);
            bool pending_cr = false;
            unsigned flags = stretch_flags(start, end, &pending_cr, 0);
            /* A CR right before the LF is the CRLF terminator, not content. */
            size_t clen = pending_cr ? end - 1 : end;
            flags |= pending_cr ? NETIO_LINE_CRLF : NETIO_LINE_LF;
            bool too_long = clen > io->max_line;
            strbuf_set(line, start, too_long ? io->max_line : clen);
            io->in_pos += end + 1;
            *flags_r = flags;
            return too_long ? NETIO_TOO_LONG : NETIO_OK;
        }
        scanned = avail;
        /* max_line + 2 bytes without LF: even if the last byte is the CR of a
         * CRLF, the content already exceeds max_line. */
        if (avail >= io->max_line + 2)
            return discard_rest(io, line, flags_r, deadline);

        ssize_t r = fill(io, deadline);
        if (r < 0)
            return read_failed();
        if (r == 0) {
            if (avail == 0)
                return NETIO_EOF;
            /* Unterminated last line: a trailing CR is content (bare). */
            bool pending_cr = false;
            unsigned flags = stretch_flags(io->in.data + io->in_pos, avail, &pending_cr, 0);
            if (pending_cr)
                flags |= NETIO_LINE_BARE_CR;
            strbuf_set(line, io->in.data + io->in_pos,
                       avail > io->max_line ? io->max_line : avail);
            io->in_pos = io->in.len;
            *flags_r = flags;
            return NETIO_EOF_PARTIAL;
        }
    }
}

enum netio_status netio_read_line_part(struct netio *io, strbuf *part, size_t max,
                                       unsigned *flags_r)
{
    unsigned dummy;
    if (flags_r == NULL)
        flags_r = &dummy;
    *flags_r = 0;
    strbuf_reset(part);
    if (max == 0 || max > SIZE_MAX / 4)
        log_panic("netio: line piece size %zu out of range", max);
    long long deadline = netio_now_ms() + io->read_timeout;

    for (;;) {
        const char *start = io->in.data + io->in_pos;
        size_t avail = netio_pending(io);
        /* An LF at index max + 1 still ends a line of max bytes if a CR
         * precedes it, so look that far. */
        size_t window = avail < max + 2 ? avail : max + 2;
        const char *lf = memchr(start, '\n', window);
        bool pending_cr = false;
        if (lf != NULL) {
            size_t end = (size_t)(lf - start);
            size_t clen = end > 0 && start[end - 1] == '\r' ? end - 1 : end;
            if (clen <= max) {
                unsigned flags = stretch_flags(start, end, &pending_cr, 0);
                flags |= pending_cr ? NETIO_LINE_CRLF : NETIO_LINE_LF;
                strbuf_set(part, start, clen);
                io->in_pos += end + 1;
                *flags_r = flags;
                return NETIO_OK;
            }
        }
        if (avail >= max + 2 || (avail == max + 1 && start[max] != '\r')) {
            /* The content goes on past max bytes (a CR at index max could
             * still have been the terminator, hence the second byte). Byte
             * max is not LF, so a CR at max - 1 is bare. */
            unsigned flags = stretch_flags(start, max, &pending_cr, 0);
            if (pending_cr)
                flags |= NETIO_LINE_BARE_CR;
            strbuf_set(part, start, max);
            io->in_pos += max;
            *flags_r = flags | NETIO_LINE_PARTIAL;
            return NETIO_OK;
        }
        ssize_t r = fill(io, deadline);
        if (r < 0)
            return read_failed();
        if (r == 0) {
            if (avail == 0)
                return NETIO_EOF;
            /* avail <= max here: the whole unterminated rest fits. */
            start = io->in.data + io->in_pos;
            unsigned flags = stretch_flags(start, avail, &pending_cr, 0);
            if (pending_cr)
                flags |= NETIO_LINE_BARE_CR;
            strbuf_set(part, start, avail);
            io->in_pos = io->in.len;
            *flags_r = flags;
            return NETIO_EOF_PARTIAL;
        }
    }
}

enum netio_status netio_read_exact(struct netio *io, strbuf *out, size_t n)
{
    strbuf_reset(out);
    if (n == 0)
        return NETIO_OK;
    long long deadline = netio_now_ms() + io->read_timeout;

    size_t take = netio_pending(io);
    if (take > n)
        take = n;
    strbuf_append(out, io->in.data + io->in_pos, take);
    io->in_pos += take;

    /* The rest goes straight into `out`, never more than still wanted, so
     * nothing past the n bytes is consumed; allocation follows arrival. */
    while (out->len < n) {
        size_t want = n - out->len;
        if (want > 4 * NETIO_CHUNK)
            want = 4 * NETIO_CHUNK;
        strbuf_reserve(out, want);
        ssize_t r = io->be->read(io->ctx, out->data + out->len, want,
                                 netio_remaining_ms(deadline));
        if (r == 0)
            return out->len == 0 ? NETIO_EOF : NETIO_EOF_PARTIAL;
        if (r < 0)
            return read_failed();
        if ((size_t)r > want)
            log_panic("netio: backend %s returned %zd bytes for a %zu byte read",
                      io->be->name, r, want);
        out->len += (size_t)r;
        out->data[out->len] = '\0';
    }
    return NETIO_OK;
}

/* ---- output ---- */

int netio_write_error(const struct netio *io)
{
    return io->werr;
}

int netio_flush(struct netio *io)
{
    if (io->werr != 0) {
        errno = io->werr;
        return -1;
    }
    long long deadline = netio_now_ms() + io->write_timeout;
    size_t off = 0;
    while (off < io->out.len) {
        ssize_t r = io->be->write(io->ctx, io->out.data + off, io->out.len - off,
                                  netio_remaining_ms(deadline));
        if (r <= 0) {
            /* Sticky: the session is broken; later replies would only be
             * written out of order or into a dead connection. */
            io->werr = (r < 0 && errno != 0) ? errno : EIO;
            strbuf_reset(&io->out);
            errno = io->werr;
            return -1;
        }
        off += (size_t)r;
    }
    strbuf_reset(&io->out);
    return 0;
}

int netio_write(struct netio *io, const void *p, size_t n)
{
    const char *s = p;
    if (io->werr != 0) {
        errno = io->werr;
        return -1;
    }
    while (n > 0) {
        size_t room = io->out.len < NETIO_CHUNK ? NETIO_CHUNK - io->out.len : 0;
        if (room == 0) {
            if (netio_flush(io) < 0)
                return -1;
            continue;
        }
        size_t take = n < room ? n : room;
        strbuf_append(&io->out, s, take);
        s += take;
        n -= take;
    }
    if (io->out.len >= NETIO_CHUNK)
        return netio_flush(io);
    return 0;
}

int netio_puts(struct netio *io, const char *s)
{
    return netio_write(io, s, strlen(s));
}

int netio_vprintf(struct netio *io, const char *fmt, va_list ap)
{
    if (io->werr != 0) {
        errno = io->werr;
        return -1;
    }
    strbuf_reset(&io->fmt);
    strbuf_vprintf(&io->fmt, fmt, ap);
    int r = netio_write(io, io->fmt.data, io->fmt.len);
    /* Do not keep a large scratch allocation around after a big reply. */
    if (io->fmt.cap > 4 * NETIO_CHUNK) {
        strbuf_free(&io->fmt);
        strbuf_init(&io->fmt);
    }
    return r;
}

int netio_printf(struct netio *io, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = netio_vprintf(io, fmt, ap);
    va_end(ap);
    return r;
}
