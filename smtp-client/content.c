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

int smtpc_content_send(struct queue_file *qf, struct netio *io, strbuf *err, bool *local_r)
{
    static unsigned char buf[BLOCK];
    strbuf out;
    strbuf_init(&out);
    bool bol = true;      /* at the beginning of a line */
    bool last_cr = false; /* the previous byte was a CR */
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
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = buf[i];
            if (bol && c == '.')
                strbuf_appendc(&out, '.');
            if (c == '\n' && !last_cr)
                strbuf_appendc(&out, '\r');
            strbuf_appendc(&out, (char)c);
            bol = c == '\n';
            last_cr = c == '\r';
        }
        if (netio_write(io, out.data, out.len) < 0) {
            strbuf_printf(err, "lost connection while sending message content (%s)",
                          strerror(errno));
            goto out;
        }
    }
    if (!bol && netio_puts(io, last_cr ? "\n" : "\r\n") < 0) {
        strbuf_printf(err, "lost connection while sending message content (%s)",
                      strerror(errno));
        goto out;
    }
    if (netio_puts(io, ".\r\n") < 0 || netio_flush(io) < 0) {
        strbuf_printf(err, "lost connection while sending message content (%s)",
                      errno == ETIMEDOUT ? "timeout" : strerror(errno));
        goto out;
    }
    rc = 0;
out:
    strbuf_free(&out);
    return rc;
}
