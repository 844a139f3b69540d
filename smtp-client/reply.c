/*
 * reply.c - reads one SMTP reply from a server (RFC 5321 4.2): lines
 * "DDD-text" ending with "DDD text" (or a bare "DDD"). The server is
 * untrusted (BAD-INPUT row 12): a line is at most SMTPC_REPLY_LINE_MAX
 * bytes, a reply at most SMTPC_REPLY_MAX_LINES lines and
 * SMTPC_REPLY_MAX_BYTES bytes, the whole reply must arrive within one
 * deadline (a server that never sends the final line times out), and every
 * line of a multi-line reply must carry the same code. Anything else is a
 * protocol error that ends the session; the caller defers with the reason.
 */
#include "smtpc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void smtp_reply_init(struct smtp_reply *r)
{
    r->code = 0;
    r->dsn[0] = '\0';
    strbuf_init(&r->text);
    strbuf_init(&r->lines);
}

void smtp_reply_free(struct smtp_reply *r)
{
    strbuf_free(&r->text);
    strbuf_free(&r->lines);
}

/* "X.Y.Z " at the start of text with X the reply's class: its length, else 0. */
static size_t enhanced_code(const char *t, size_t n, int cls)
{
    if (n < 5 || t[0] != '0' + cls || t[1] != '.')
        return 0;
    size_t i = 2, digits = 0;
    while (i < n && isdigit((unsigned char)t[i]) && digits < 3)
        i++, digits++;
    if (digits == 0 || i >= n || t[i] != '.')
        return 0;
    i++;
    digits = 0;
    while (i < n && isdigit((unsigned char)t[i]) && digits < 3)
        i++, digits++;
    if (digits == 0 || (i < n && t[i] != ' '))
        return 0;
    return i;
}

int smtp_reply_read(struct netio *io, int timeout_ms, struct smtp_reply *r, strbuf *err,
                    bool *timeout_r)
{
    long long deadline = netio_now_ms() + timeout_ms;
    strbuf line;
    strbuf_init(&line);
    r->code = 0;
    r->dsn[0] = '\0';
    strbuf_reset(&r->text);
    strbuf_reset(&r->lines);
    *timeout_r = false;
    size_t nlines = 0, bytes = 0;
    int rc = -1;
    netio_set_max_line(io, SMTPC_REPLY_LINE_MAX);
    /* A 1 MB line is read and thrown away up to this much, then the
     * session is given up (NETIO_LINE_DESYNC). */
    netio_set_discard_limit(io, 2 * SMTPC_REPLY_MAX_BYTES);
    for (;;) {
        int left = netio_remaining_ms(deadline);
        if (left <= 0) {
            *timeout_r = true;
            strbuf_appends(err, "timed out while reading a reply");
            goto out;
        }
        netio_set_read_timeout(io, left);
        unsigned flags = 0;
        enum netio_status st = netio_read_line(io, &line, &flags);
        switch (st) {
        case NETIO_OK:
            break;
        case NETIO_TIMEOUT:
            *timeout_r = true;
            strbuf_printf(err, "timed out while reading a reply%s",
                          nlines ? " (no final line of a multi-line reply)" : "");
            goto out;
        case NETIO_TOO_LONG:
            strbuf_printf(err, "reply line longer than %d bytes", SMTPC_REPLY_LINE_MAX);
            goto out;
        case NETIO_EOF:
        case NETIO_EOF_PARTIAL:
            strbuf_appends(err, "lost connection");
            goto out;
        default:
            strbuf_appends(err, "lost connection (read error)");
            goto out;
        }
        nlines++;
        bytes += line.len + 2;
        if (nlines > SMTPC_REPLY_MAX_LINES || bytes > SMTPC_REPLY_MAX_BYTES) {
            strbuf_printf(err, "reply longer than %d lines or %d bytes", SMTPC_REPLY_MAX_LINES,
                          SMTPC_REPLY_MAX_BYTES);
            goto out;
        }
        const char *p = line.data;
        if (line.len < 3 || !isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
            !isdigit((unsigned char)p[2]) || (line.len > 3 && p[3] != ' ' && p[3] != '-') ||
            (flags & NETIO_LINE_NUL)) {
            strbuf_printf(err, "malformed reply line \"%.*s\"",
                          line.len > 60 ? 60 : (int)line.len, line.data);
            goto out;
        }
        int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        if (code < 200 || code > 599) {
            strbuf_printf(err, "reply code %d out of range", code);
            goto out;
        }
        if (r->code && code != r->code) {
            strbuf_printf(err, "multi-line reply with mismatched codes (%d then %d)", r->code,
                          code);
            goto out;
        }
        r->code = code;
        const char *text = line.len > 4 ? p + 4 : "";
        size_t tlen = line.len > 4 ? line.len - 4 : 0;
        if (r->text.len)
            strbuf_appendc(&r->text, ' ');
        strbuf_append(&r->text, text, tlen);
        strbuf_append(&r->lines, text, tlen);
        strbuf_appendc(&r->lines, '\n');
        if (line.len == 3 || p[3] == ' ')
            break;
    }
    size_t n = enhanced_code(r->text.data, r->text.len, r->code / 100);
    if (n && n < sizeof(r->dsn)) {
        memcpy(r->dsn, r->text.data, n);
        r->dsn[n] = '\0';
    } else {
        snprintf(r->dsn, sizeof(r->dsn), "%d.0.0", r->code / 100);
    }
    if (r->code / 100 == 3) /* 354: a DSN code of class 3 does not exist */
        strcpy(r->dsn, "2.0.0");
    rc = 0;
out:
    strbuf_free(&line);
    return rc;
}
