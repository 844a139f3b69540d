/*
 * data.c - DATA (RFC 5321 §4.1.1.4, §4.5.2) and the content sink shared
 * with BDAT.
 *
 * Framing: content is read in line pieces (netio_read_line_part), so long
 * lines pass whole and nothing is dropped. Only a line "." ended by CRLF
 * ends the data. A line ended by a bare LF, or holding a bare CR, is never
 * taken as a boundary or passed on: the session ends with 521 (SMTP
 * smuggling; Postfix's smtpd_forbid_bare_newline does the same). The
 * leading dot of a stuffed line is removed; everything else, CRLFs
 * included, reaches on_data_chunk exactly as received.
 *
 * The sink counts every content byte. Past the size limit, or after
 * on_data_chunk refused, or after a NUL byte, nothing more is passed on but
 * the content is still read to its end, so the client gets a clear reply
 * and the session stays in step.
 */
#include "smtp/server_int.h"
#include "util/log.h"

#include <string.h>

/* Largest piece of one line read at a time, and the batch handed to
 * on_data_chunk. */
#define DATA_PIECE (8 * 1024)
#define SINK_BATCH (64 * 1024)

static bool dropping(const struct smtp_session *s)
{
    return s->too_big || s->sink_failed || s->saw_nul || s->bad_newline;
}

void smtp_content_flush(struct smtp_session *s)
{
    if (s->content.len == 0)
        return;
    if (!dropping(s) && s->ops->on_data_chunk != NULL) {
        struct smtp_reply *r = &s->sink_reply;
        r->code = 0;
        r->dsn[0] = '\0';
        strbuf_reset(&r->text);
        if (s->ops->on_data_chunk(s->ctx, s, s->content.data, s->content.len, r) < 0) {
            log_warning("message content refused by the storage for %s", s->cfg.client);
            s->sink_failed = true;
        }
    }
    strbuf_reset(&s->content);
}

void smtp_content_add(struct smtp_session *s, const char *p, size_t n)
{
    s->env.size += n;
    if (dropping(s))
        return;
    if (s->cfg.size_limit > 0 && s->env.size > s->cfg.size_limit) {
        /* What is still batched is dropped too: the sink never sees more
         * than the limit. */
        log_warning("message from %s exceeds the size limit of %llu bytes", s->cfg.client,
                    (unsigned long long)s->cfg.size_limit);
        s->too_big = true;
        strbuf_reset(&s->content);
        return;
    }
    strbuf_append(&s->content, p, n);
    if (s->content.len >= SINK_BATCH)
        smtp_content_flush(s);
}

bool smtp_content_start(struct smtp_session *s)
{
    struct smtp_reply *r = smtp_fresh_reply(s);
    if (s->ops->on_data_start != NULL)
        s->ops->on_data_start(s->ctx, s, &s->env, r);
    if (r->code >= 400) {
        smtp_send_reply(s, r, 0, NULL, "");
        smtp_transaction_end(s, NULL);
        return false;
    }
    s->data_started = true;
    s->env.size = 0;
    s->sink_failed = s->too_big = s->saw_nul = s->bad_newline = s->bdat_cr = false;
    strbuf_reset(&s->content);
    return true;
}

void smtp_content_finish(struct smtp_session *s)
{
    smtp_content_flush(s);
    const char *abort_reason = NULL;
    if (s->too_big) {
        abort_reason = "message too large";
        smtp_session_reply(s, 552, "5.3.4", "Error: message too large");
    } else if (s->bad_newline) {
        abort_reason = "bare <CR> or <LF> in content";
        smtp_session_reply(s, 554, "5.6.0", "Error: bare <CR> or <LF> received in message content");
    } else if (s->saw_nul) {
        abort_reason = "NUL byte in content";
        log_warning("NUL byte in message content from %s", s->cfg.client);
        smtp_session_reply(s, 554, "5.6.0", "Error: NUL byte in message content");
    } else if (s->sink_failed) {
        abort_reason = "storage failed";
        smtp_send_reply(s, &s->sink_reply, 451, "4.3.0", "Error: local error storing message");
    } else {
        struct smtp_reply *r = smtp_fresh_reply(s);
        if (s->ops->on_data_end != NULL)
            s->ops->on_data_end(s->ctx, s, &s->env, r);
        /* Whatever the answer, the glue has had its say: no abort. */
        s->data_started = false;
        smtp_send_reply(s, r, 250, "2.0.0", "Ok");
    }
    smtp_transaction_end(s, abort_reason);
}

void smtp_cmd_data(struct smtp_session *s, const char *args, size_t n)
{
    while (n > 0 && (args[n - 1] == ' ' || args[n - 1] == '\t'))
        n--;
    if (n > 0) {
        smtp_session_reply(s, 501, "5.5.4", "Syntax: DATA");
        return;
    }
    if (!s->in_mail) {
        smtp_session_reply(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    if (s->env.bdat) {
        smtp_session_reply(s, 503, "5.5.1", "Error: DATA after BDAT");
        return;
    }
    if (s->env.nrcpt == 0) {
        smtp_session_reply(s, 503, "5.5.1", "Error: need RCPT command");
        return;
    }
    if (!smtp_content_start(s))
        return;
    smtp_reply_nocount(s, 354, "", "End data with <CR><LF>.<CR><LF>");
    netio_set_read_timeout(s->io, s->cfg.data_timeout_ms);

    bool bol = true; /* the next piece starts a line */
    for (;;) {
        if (smtp_flush_if_idle(s) < 0) {
            smtp_transaction_end(s, "write error");
            break;
        }
        unsigned flags = 0;
        enum netio_status st = netio_read_line_part(s->io, &s->line, DATA_PIECE, &flags);
        if (st != NETIO_OK) {
            smtp_read_failed(s, st, "DATA");
            smtp_transaction_end(s, st == NETIO_TIMEOUT ? "timeout in DATA"
                                                        : "lost connection in DATA");
            break;
        }
        if (flags & (NETIO_LINE_LF | NETIO_LINE_BARE_CR)) {
            log_warning("bare <%s> in message content from %s; closing the connection",
                        (flags & NETIO_LINE_LF) ? "LF" : "CR", s->cfg.client);
            smtp_reply_nocount(s, 521, "5.5.2",
                               "%s Error: bare <LF> or <CR> received in message content",
                               s->cfg.hostname);
            s->closing = true;
            s->end = SMTP_END_PROTOCOL;
            smtp_transaction_end(s, "bare <LF> or <CR> in content");
            break;
        }
        const char *p = s->line.data;
        size_t len = s->line.len;
        if (bol && (flags & NETIO_LINE_CRLF) && len == 1 && p[0] == '.') {
            smtp_content_finish(s);
            break;
        }
        if (bol && len > 0 && p[0] == '.') {
            p++;
            len--;
        }
        if (flags & NETIO_LINE_NUL)
            s->saw_nul = true;
        smtp_content_add(s, p, len);
        if (flags & NETIO_LINE_CRLF)
            smtp_content_add(s, "\r\n", 2);
        bol = (flags & NETIO_LINE_PARTIAL) == 0;
    }
    netio_set_read_timeout(s->io, s->cfg.cmd_timeout_ms);
}
