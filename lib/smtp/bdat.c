/*
 * bdat.c - BDAT (RFC 3030 CHUNKING): "BDAT <size> [LAST]" followed by
 * exactly size octets.
 *
 * The octets of a chunk are always consumed, whatever the reply, so that the
 * session stays in step with a pipelining client; the only exceptions are a
 * size that cannot be parsed (we cannot know how much to skip: 501 and the
 * end) and a chunk larger than the message size limit (skipping it would
 * mean reading up to 2^64 bytes for nothing: 552 or 503 and the end).
 * Chunks are read in pieces of at most 64 KiB, each within the data timeout.
 *
 * Since BINARYMIME is not offered, chunk content must be lines ended by CRLF
 * like DATA content: a bare CR or LF (possibly across a chunk boundary) or a
 * NUL fails the message with 554, because the message may later be relayed
 * with DATA, where a bare LF is a smuggling vector.
 */
#include "smtp/server_int.h"
#include "util/log.h"

#include <strings.h>

#define BDAT_PIECE (64 * 1024)

/* Parses "size [LAST]". */
static bool parse_bdat(const char *p, size_t n, uint64_t *size, bool *last)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    size_t i = 0;
    uint64_t x = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        unsigned d = (unsigned)(p[i] - '0');
        if (i >= 20 || x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
        i++;
    }
    if (i == 0)
        return false;
    *size = x;
    *last = false;
    if (i == n)
        return true;
    if (p[i] != ' ')
        return false;
    while (i < n && p[i] == ' ')
        i++;
    if (n - i == 4 && strncasecmp(p + i, "LAST", 4) == 0) {
        *last = true;
        return true;
    }
    return false;
}

/* Checks CRLF discipline and NUL over a piece; the CR state carries over
 * from piece to piece and chunk to chunk. */
static void check_piece(struct smtp_session *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (s->bdat_cr && c != '\n')
            s->bad_newline = true;
        else if (!s->bdat_cr && c == '\n')
            s->bad_newline = true;
        if (c == '\0')
            s->saw_nul = true;
        s->bdat_cr = c == '\r';
    }
}

/* Reads the chunk's octets; store=false throws them away. Returns false when
 * the connection failed (the session is over). */
static bool read_chunk(struct smtp_session *s, uint64_t size, bool store)
{
    netio_set_read_timeout(s->io, s->cfg.data_timeout_ms);
    bool ok = true;
    while (size > 0) {
        size_t piece = size > BDAT_PIECE ? BDAT_PIECE : (size_t)size;
        if (smtp_flush_if_idle(s) < 0) {
            ok = false;
            break;
        }
        enum netio_status st = netio_read_exact(s->io, &s->line, piece);
        if (st != NETIO_OK) {
            smtp_read_failed(s, st, "BDAT");
            ok = false;
            break;
        }
        if (store) {
            bool was_bad = s->bad_newline || s->saw_nul;
            check_piece(s, s->line.data, s->line.len);
            if (!was_bad && (s->bad_newline || s->saw_nul))
                log_warning("%s in BDAT content from %s",
                            s->saw_nul ? "NUL byte" : "bare <CR> or <LF>", s->cfg.client);
            smtp_content_add(s, s->line.data, s->line.len);
        }
        size -= piece;
    }
    netio_set_read_timeout(s->io, s->cfg.cmd_timeout_ms);
    return ok;
}

/* Ends the session after a chunk we cannot skip. */
static void give_up(struct smtp_session *s)
{
    s->closing = true;
    s->end = SMTP_END_PROTOCOL;
}

void smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t n)
{
    uint64_t size;
    bool last;
    if (!parse_bdat(args, n, &size, &last)) {
        log_warning("bad BDAT command from %s: %s", s->cfg.client, smtp_logsafe(s, args, n));
        smtp_reply_nocount(s, 501, "5.5.4", "Syntax: BDAT size [LAST]; closing the connection");
        give_up(s);
        smtp_transaction_end(s, "bad BDAT command");
        return;
    }
    uint64_t limit = s->cfg.size_limit;
    bool valid = s->in_mail && s->env.nrcpt > 0;
    if (!valid) {
        const char *why = s->in_mail ? "Error: need RCPT command" : "Error: need MAIL command";
        if (limit > 0 && size > limit) {
            smtp_reply_nocount(s, 503, "5.5.1", "%s; closing the connection", why);
            give_up(s);
            return;
        }
        if (read_chunk(s, size, false))
            smtp_session_reply(s, 503, "5.5.1", "%s", why);
        return;
    }
    if (limit > 0 && size > limit) {
        /* Too big to skip: refuse and end the session. A chunk that only
         * takes the total over the limit is read (and dropped) below. */
        smtp_reply_nocount(s, 552, "5.3.4", "Error: message too large; closing the connection");
        give_up(s);
        smtp_transaction_end(s, "message too large");
        return;
    }
    if (!s->env.bdat) {
        if (!smtp_content_start(s)) {
            /* Refused before any content: skip this chunk, reply already sent. */
            read_chunk(s, size, false);
            return;
        }
        s->env.bdat = true;
    }
    if (!read_chunk(s, size, true)) {
        smtp_transaction_end(s, s->end == SMTP_END_TIMEOUT ? "timeout in BDAT"
                                                           : "lost connection in BDAT");
        return;
    }
    if (last && s->bdat_cr)
        s->bad_newline = true; /* content ends in a bare CR */
    if (last || s->too_big || s->sink_failed || s->saw_nul || s->bad_newline) {
        /* The end, or a failure that the client should hear about now (RFC
         * 3030 §2: any chunk may be answered with an error). */
        smtp_content_finish(s);
        return;
    }
    smtp_reply_nocount(s, 250, "2.0.0", "%llu octets received", (unsigned long long)size);
}
