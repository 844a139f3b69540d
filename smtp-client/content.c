/*
 * content.c - the message on its way out: read from the queue file in
 * blocks, every line end made CRLF (a bare LF gets its CR, so no peer sees
 * an ambiguous end of data: SMTP smuggling), a '.' at the start of a line
 * doubled (RFC 5321 4.5.2), and the final ".\r\n" after a CRLF.
 */
#include "smtpc.h"
#include "mail/queue_file.h"

#include <errno.h>
#include <string.h>

#define BLOCK 65536

int smtpc_content_scan(struct queue_file *qf, bool *eightbit_r, strbuf *err)
{
    static unsigned char buf[BLOCK];
    *eightbit_r = false;
    for (uint64_t pos = 0;;) {
        ssize_t n = queue_file_read_content(qf, pos, buf, sizeof(buf), err);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] & 0x80) {
                *eightbit_r = true;
                return 0;
            }
        pos += (uint64_t)n;
    }
}

/* CRLF line ends and dot-stuffing of one block, carried across blocks. */
struct stuffer {
    bool bol;     /* at the beginning of a line */
    bool last_cr; /* the previous byte was a CR */
};

static void stuff(struct stuffer *st, const unsigned char *buf, size_t n, strbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (st->bol && c == '.')
            strbuf_appendc(out, '.');
        if (c == '\n' && !st->last_cr)
            strbuf_appendc(out, '\r');
        strbuf_appendc(out, (char)c);
        st->bol = c == '\n';
        st->last_cr = c == '\r';
    }
}

/* The end: a line end if the content lacks one, then ".\r\n". */
static int finish(const struct stuffer *st, struct netio *io, strbuf *err)
{
    if ((!st->bol && netio_puts(io, st->last_cr ? "\n" : "\r\n") < 0) ||
        netio_puts(io, ".\r\n") < 0 || netio_flush(io) < 0) {
        strbuf_printf(err, "lost connection while sending message content (%s)",
                      errno == ETIMEDOUT ? "timeout" : strerror(errno));
        return -1;
    }
    return 0;
}

int smtpc_content_send(struct queue_file *qf, struct netio *io, strbuf *err, bool *local_r)
{
    static unsigned char buf[BLOCK];
    strbuf out;
    strbuf_init(&out);
    struct stuffer st = { .bol = true, .last_cr = false };
    int rc = -1;
    *local_r = false;
    for (uint64_t pos = 0;;) {
        ssize_t n = queue_file_read_content(qf, pos, buf, sizeof(buf), err);
        if (n < 0) {
            *local_r = true;
            goto out;
        }
        if (n == 0)
            break;
        pos += (uint64_t)n;
        strbuf_reset(&out);
        stuff(&st, buf, (size_t)n, &out);
        if (netio_write(io, out.data, out.len) < 0) {
            strbuf_printf(err, "lost connection while sending message content (%s)",
                          strerror(errno));
            goto out;
        }
    }
    rc = finish(&st, io, err);
out:
    strbuf_free(&out);
    return rc;
}

int smtpc_content_send_buf(const strbuf *content, struct netio *io, strbuf *err)
{
    strbuf out;
    strbuf_init(&out);
    struct stuffer st = { .bol = true, .last_cr = false };
    int rc = -1;
    for (size_t pos = 0; pos < content->len; pos += BLOCK) {
        size_t n = content->len - pos < BLOCK ? content->len - pos : BLOCK;
        strbuf_reset(&out);
        stuff(&st, (const unsigned char *)content->data + pos, n, &out);
        if (netio_write(io, out.data, out.len) < 0) {
            strbuf_printf(err, "lost connection while sending message content (%s)",
                          strerror(errno));
            goto out;
        }
    }
    rc = finish(&st, io, err);
out:
    strbuf_free(&out);
    return rc;
}
