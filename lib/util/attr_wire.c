/*
 * attr_wire.c - the wire form of IPC records (docs/ipc.md) and moving one
 * record over a stream socket with a deadline.
 *
 * The parser is resumable: it walks whole attributes from a position and,
 * when the buffer ends inside one, says "more" and leaves the position at
 * that attribute's start. attr_parse() runs it once over a buffer;
 * attr_read() feeds it as bytes arrive, so a peer trickling bytes costs at
 * most one partial attribute re-scan per arrival, never a whole record.
 */
#include "util/attr.h"
#include "util/attr_int.h"
#include "util/log.h"
#include "util/netio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

enum step { STEP_DONE, STEP_MORE, STEP_ERROR };

struct parser {
    const char *buf;
    size_t len;
    struct attr_limits lim; /* normalized, see parser_init */
    struct attr_list *l;
    strbuf *err;
};

static void parser_init(struct parser *ps, const char *buf, size_t len,
                        const struct attr_limits *limits, struct attr_list *l, strbuf *err)
{
    ps->buf = buf;
    ps->len = len;
    ps->lim = limits != NULL ? *limits : attr_default_limits;
    /* Cap the limits so that length arithmetic (n * 10 + 9, p + n + 1) can
     * never overflow, whatever a caller configured. */
    const size_t cap = SIZE_MAX / 16;
    if (ps->lim.max_value > cap)
        ps->lim.max_value = cap;
    if (ps->lim.max_total > cap)
        ps->lim.max_total = cap;
    ps->l = l;
    ps->err = err;
}

static enum step fail(struct parser *ps, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum step fail(struct parser *ps, size_t at, const char *fmt, ...)
{
    strbuf_reset(ps->err);
    strbuf_printf(ps->err, "malformed IPC record at byte %zu: ", at);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(ps->err, fmt, ap);
    va_end(ap);
    return STEP_ERROR;
}

/* The byte at `at`, made safe for a message. */
static void show_byte(struct parser *ps, size_t at, strbuf *out)
{
    strbuf_appendc(out, '\'');
    log_sanitize(out, ps->buf + at, 1);
    strbuf_appendc(out, '\'');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * A length at ps->buf[*p...]: "0" or [1-9][0-9]* followed by ':'. A value
 * above `limit` is refused as soon as its digits show it (so no overflow
 * and no waiting for a huge body). On DONE, *n_r is the length and *p
 * points after the ':'. `what` names the field for messages.
 */
static enum step parse_len(struct parser *ps, size_t *p, size_t limit, size_t *n_r,
                           const char *what)
{
    size_t i = *p;
    if (i >= ps->len)
        return STEP_MORE;
    if (!is_digit(ps->buf[i])) {
        strbuf b;
        strbuf_init(&b);
        show_byte(ps, i, &b);
        fail(ps, i, "%s: expected a decimal length, got %s", what, b.data);
        strbuf_free(&b);
        return STEP_ERROR;
    }
    size_t n = 0;
    if (ps->buf[i] == '0') {
        i++;
        if (i < ps->len && is_digit(ps->buf[i]))
            return fail(ps, *p, "%s: length with a leading zero", what);
    } else {
        while (i < ps->len && is_digit(ps->buf[i])) {
            n = n * 10 + (size_t)(ps->buf[i] - '0');
            if (n > limit)
                return fail(ps, *p, "%s: length exceeds the limit of %zu bytes", what, limit);
            i++;
        }
    }
    if (i >= ps->len)
        return STEP_MORE;
    if (ps->buf[i] != ':') {
        strbuf b;
        strbuf_init(&b);
        show_byte(ps, i, &b);
        fail(ps, i, "%s: expected ':' after the length, got %s", what, b.data);
        strbuf_free(&b);
        return STEP_ERROR;
    }
    *p = i + 1;
    *n_r = n;
    return STEP_DONE;
}

/* Checks that a body of n bytes starting at p, plus its ',', fits in the
 * record size limit. */
static enum step check_total(struct parser *ps, size_t p, size_t n)
{
    if (p + n + 1 > ps->lim.max_total) {
        strbuf_reset(ps->err);
        strbuf_printf(ps->err, "IPC record longer than the limit of %zu bytes",
                      ps->lim.max_total);
        return STEP_ERROR;
    }
    return STEP_DONE;
}

/* Name bytes name[0..n) must be [a-z0-9_]; checked on whatever has arrived. */
static enum step check_name_chars(struct parser *ps, size_t p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = ps->buf[p + i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            strbuf b;
            strbuf_init(&b);
            show_byte(ps, p + i, &b);
            fail(ps, p + i, "invalid character %s in an attribute name (allowed: a-z 0-9 _)",
                 b.data);
            strbuf_free(&b);
            return STEP_ERROR;
        }
    }
    return STEP_DONE;
}

/*
 * Parses whole attributes from *pos into ps->l until the end marker (DONE,
 * *pos after it), the end of the buffer inside an attribute (MORE, *pos at
 * that attribute's start) or an error.
 */
static enum step parse_attrs(struct parser *ps, size_t *pos)
{
    for (;;) {
        size_t p = *pos;
        size_t start = p;
        size_t nlen, vlen;
        enum step r = parse_len(ps, &p, ATTR_NAME_MAX, &nlen, "attribute name");
        if (r != STEP_DONE)
            return r;
        if (nlen == 0) {
            /* "0:," - the end of the record. */
            if (check_total(ps, p, 0) != STEP_DONE)
                return STEP_ERROR;
            if (p >= ps->len)
                return STEP_MORE;
            if (ps->buf[p] != ',')
                return fail(ps, p, "end marker \"0:\" not followed by ','");
            *pos = p + 1;
            return STEP_DONE;
        }
        if (attr_count(ps->l) >= ps->lim.max_attrs) {
            strbuf_reset(ps->err);
            strbuf_printf(ps->err, "IPC record has more than the limit of %zu attributes",
                          ps->lim.max_attrs);
            return STEP_ERROR;
        }
        if (check_total(ps, p, nlen) != STEP_DONE)
            return STEP_ERROR;
        size_t have = ps->len - p < nlen ? ps->len - p : nlen;
        if (check_name_chars(ps, p, have) != STEP_DONE)
            return STEP_ERROR;
        if (have < nlen || p + nlen >= ps->len)
            return STEP_MORE;
        const char *name = ps->buf + p;
        if (ps->buf[p + nlen] != ',')
            return fail(ps, p + nlen, "attribute name \"%.*s\" not followed by ','",
                        (int)nlen, name);
        if (attr_list_has(ps->l, name, nlen))
            return fail(ps, start, "duplicate attribute \"%.*s\"", (int)nlen, name);
        p += nlen + 1;

        char what[ATTR_NAME_MAX + 32];
        snprintf(what, sizeof(what), "value of attribute \"%.*s\"", (int)nlen, name);
        r = parse_len(ps, &p, ps->lim.max_value, &vlen, what);
        if (r != STEP_DONE)
            return r;
        if (check_total(ps, p, vlen) != STEP_DONE)
            return STEP_ERROR;
        if (p + vlen >= ps->len)
            return STEP_MORE;
        if (ps->buf[p + vlen] != ',')
            return fail(ps, p + vlen, "%s not followed by ','", what);
        attr_list_append_raw(ps->l, name, nlen, ps->buf + p, vlen);
        *pos = p + vlen + 1;
    }
}

enum attr_parse_status attr_parse(const char *buf, size_t len, const struct attr_limits *limits,
                                  struct attr_list *l, size_t *used_r, strbuf *err)
{
    struct parser ps;
    parser_init(&ps, buf, len, limits, l, err);
    attr_list_clear(l);
    size_t pos = 0;
    switch (parse_attrs(&ps, &pos)) {
    case STEP_DONE:
        *used_r = pos;
        return ATTR_PARSE_OK;
    case STEP_MORE:
        attr_list_clear(l);
        return ATTR_PARSE_INCOMPLETE;
    case STEP_ERROR:
        break;
    }
    attr_list_clear(l);
    return ATTR_PARSE_ERROR;
}

static void netstring(strbuf *out, const char *p, size_t n)
{
    strbuf_printf(out, "%zu:", n);
    strbuf_append(out, p, n);
    strbuf_appendc(out, ',');
}

void attr_serialize(const struct attr_list *l, strbuf *out)
{
    for (size_t i = 0; i < attr_count(l); i++) {
        const char *name = attr_name_at(l, i);
        size_t vlen;
        const char *v = attr_value_at(l, i, &vlen);
        netstring(out, name, strlen(name));
        netstring(out, v, vlen);
    }
    strbuf_appends(out, "0:,");
}

int attr_write(int fd, const struct attr_list *l, int timeout_ms)
{
    strbuf rec;
    strbuf_init(&rec);
    attr_serialize(l, &rec);
    long long deadline = netio_now_ms() + timeout_ms;
    size_t off = 0;
    int ret = 0;
    while (off < rec.len) {
        if (netio_wait_fd(fd, POLLOUT, netio_remaining_ms(deadline)) < 0) {
            ret = -1;
            break;
        }
        /* MSG_DONTWAIT: bounded by the deadline even on a blocking socket;
         * MSG_NOSIGNAL: a dead peer is EPIPE, not a fatal signal. */
        ssize_t r = send(fd, rec.data + off, rec.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        if (r == 0)
            errno = EIO;
        else if ((errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) &&
                 netio_remaining_ms(deadline) > 0)
            continue; /* poll() said ready; retry while time is left */
        else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            errno = ETIMEDOUT;
        ret = -1;
        break;
    }
    int saved = errno;
    strbuf_free(&rec);
    errno = saved;
    return ret;
}

static int read_fail(strbuf *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int read_fail(strbuf *err, int errnum, const char *fmt, ...)
{
    strbuf_reset(err);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
    errno = errnum;
    return -1;
}

/*
 * Peek at what the socket holds, parse it, and consume only what belongs to
 * this record: when the record is still incomplete every peeked byte is
 * ours; when it completes, exactly the rest of it.
 */
int attr_read(int fd, struct attr_list *l, const struct attr_limits *limits, int timeout_ms,
              strbuf *err)
{
    struct parser ps;
    strbuf acc;
    strbuf_init(&acc);
    parser_init(&ps, NULL, 0, limits, l, err);
    attr_list_clear(l);
    strbuf_reset(err);
    long long deadline = netio_now_ms() + timeout_ms;
    size_t pos = 0;
    int ret;

    for (;;) {
        size_t want = ps.lim.max_total - acc.len;
        if (want == 0) {
            ret = read_fail(err, EPROTO, "IPC record longer than the limit of %zu bytes",
                            ps.lim.max_total);
            break;
        }
        if (want > 64 * 1024)
            want = 64 * 1024;
        if (netio_wait_fd(fd, POLLIN, netio_remaining_ms(deadline)) < 0) {
            int e = errno;
            if (e == ETIMEDOUT)
                ret = read_fail(err, e, "timeout after %d ms waiting for an IPC record"
                                " (%zu bytes received)", timeout_ms, acc.len);
            else
                ret = read_fail(err, e, "IPC read: %s", strerror(e));
            break;
        }
        strbuf_reserve(&acc, want);
        ssize_t r = recv(fd, acc.data + acc.len, want, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0) {
            if ((errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) &&
                netio_remaining_ms(deadline) > 0)
                continue;
            int e = errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
            ret = read_fail(err, e, "IPC read: %s", strerror(e));
            break;
        }
        if (r == 0) {
            if (acc.len == 0) {
                ret = 0;
                break;
            }
            ret = read_fail(err, EPROTO, "peer closed the connection in the middle of an"
                            " IPC record (%zu bytes received)", acc.len);
            break;
        }
        size_t old = acc.len;
        acc.len += (size_t)r;
        acc.data[acc.len] = '\0';
        ps.buf = acc.data;
        ps.len = acc.len;
        enum step st = parse_attrs(&ps, &pos);
        if (st == STEP_ERROR) {
            errno = EPROTO;
            ret = -1;
            break;
        }
        /* Consume the peeked bytes that belong to this record. The kernel
         * hands back the same bytes it showed: we are the only reader. */
        size_t take = st == STEP_DONE ? pos - old : (size_t)r;
        ssize_t got;
        do
            got = recv(fd, acc.data + old, take, MSG_DONTWAIT);
        while (got < 0 && errno == EINTR);
        if (got < 0 || (size_t)got != take) {
            int e = got < 0 ? errno : EPROTO;
            ret = read_fail(err, e, "IPC read: could not consume %zu peeked bytes", take);
            break;
        }
        if (st == STEP_DONE) {
            ret = 1;
            break;
        }
    }
    if (ret != 1)
        attr_list_clear(l);
    int saved = errno;
    strbuf_free(&acc);
    errno = saved;
    return ret;
}
