/*
 * session.c - the SMTP server session: greeting, the command loop, replies
 * with error accounting, and the commands that need no transaction (HELO,
 * EHLO, RSET, NOOP, QUIT, VRFY, HELP, STARTTLS). MAIL/RCPT are in mail.c,
 * DATA in data.c, BDAT in bdat.c. See server.h for the contract.
 */
#include "smtp/server_int.h"
#include "util/log.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* A reply line longer than this is cut (RFC 5321 §4.5.3.1.5: 512 with the
 * code and CRLF). */
#define REPLY_TEXT_MAX 500

/* ---- replies ---- */

void smtp_reply_set(struct smtp_reply *r, int code, const char *dsn, const char *fmt, ...)
{
    r->code = code;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn != NULL ? dsn : "");
    strbuf_reset(&r->text);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&r->text, fmt, ap);
    va_end(ap);
}

struct smtp_reply *smtp_fresh_reply(struct smtp_session *s)
{
    s->reply.code = 0;
    s->reply.dsn[0] = '\0';
    strbuf_reset(&s->reply.text);
    return &s->reply;
}

/* Writes "code[-| ]dsn text" lines. Text comes from callbacks and may quote
 * client input: anything but printable ASCII becomes '?', so a reply can
 * never be split or forged. */
static void write_reply(struct smtp_session *s, int code, const char *dsn, const char *text,
                        size_t len)
{
    char derived[8];
    if (code < 200 || code > 599)
        log_panic("smtp: reply code %d out of range", code);
    if (dsn == NULL) {
        snprintf(derived, sizeof(derived), "%d.0.0", code / 100);
        dsn = derived;
    }
    strbuf *out = &s->scratch;
    size_t pos = 0;
    do {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        bool last = nl == NULL || end + 1 >= len;
        strbuf_reset(out);
        strbuf_printf(out, "%03d%c", code, last ? ' ' : '-');
        if (dsn[0] != '\0') {
            strbuf_appends(out, dsn);
            if (end > pos)
                strbuf_appendc(out, ' ');
        }
        size_t take = end - pos;
        if (take > REPLY_TEXT_MAX)
            take = REPLY_TEXT_MAX;
        for (size_t i = 0; i < take; i++) {
            unsigned char c = (unsigned char)text[pos + i];
            strbuf_appendc(out, c >= 0x20 && c < 0x7f ? (char)c : '?');
        }
        strbuf_append(out, "\r\n", 2);
        netio_write(s->io, out->data, out->len);
        pos = last ? len : end + 1;
    } while (pos < len);
    if (netio_write_error(s->io) != 0 && !s->closing) {
        s->closing = true;
        s->end = SMTP_END_IO_ERROR;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The error accounting around one reply: delay past the soft limit, count,
 * and end the session at the hard limit. */
static void counted_reply(struct smtp_session *s, int code, const char *dsn, const char *text,
                          size_t len)
{
    if (code < 400) {
        write_reply(s, code, dsn, text, len);
        return;
    }
    if (s->cfg.soft_errors > 0 && s->errors >= s->cfg.soft_errors
        && s->cfg.error_delay_ms > 0) {
        /* Make the replies so far visible, then make a misbehaving client wait. */
        netio_flush(s->io);
        sleep_ms(s->cfg.error_delay_ms);
    }
    write_reply(s, code, dsn, text, len);
    s->errors++;
    if (s->cfg.hard_errors > 0 && s->errors >= s->cfg.hard_errors && !s->closing) {
        log_warning("too many errors (%d) from %s", s->errors, s->cfg.client);
        strbuf msg;
        strbuf_init(&msg);
        strbuf_printf(&msg, "%s Error: too many errors", s->cfg.hostname);
        write_reply(s, 421, "4.7.0", msg.data, msg.len);
        strbuf_free(&msg);
        s->closing = true;
        s->end = SMTP_END_ERRORS;
    }
}

static int vreply(struct smtp_session *s, bool count, int code, const char *dsn,
                  const char *fmt, va_list ap)
{
    strbuf text;
    strbuf_init(&text);
    strbuf_vprintf(&text, fmt, ap);
    if (count)
        counted_reply(s, code, dsn, text.data, text.len);
    else
        write_reply(s, code, dsn, text.data, text.len);
    strbuf_free(&text);
    return netio_write_error(s->io) != 0 ? -1 : 0;
}

int smtp_session_reply(struct smtp_session *s, int code, const char *dsn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vreply(s, true, code, dsn, fmt, ap);
    va_end(ap);
    return r;
}

int smtp_reply_nocount(struct smtp_session *s, int code, const char *dsn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vreply(s, false, code, dsn, fmt, ap);
    va_end(ap);
    return r;
}

void smtp_send_reply(struct smtp_session *s, const struct smtp_reply *r, int def_code,
                     const char *def_dsn, const char *def_text)
{
    if (r->code == 0) {
        counted_reply(s, def_code, def_dsn, def_text, strlen(def_text));
        return;
    }
    if (r->code < 200 || r->code > 599) {
        log_error("smtp: callback reply code %d out of range; sending 451", r->code);
        counted_reply(s, 451, "4.3.0", "Error: internal error", 21);
        return;
    }
    counted_reply(s, r->code, r->dsn[0] != '\0' ? r->dsn : NULL, r->text.data, r->text.len);
}

/* ---- reading ---- */

const char *smtp_logsafe(struct smtp_session *s, const char *p, size_t n)
{
    strbuf_reset(&s->logbuf);
    log_sanitize(&s->logbuf, p, n > 200 ? 200 : n);
    if (n > 200)
        strbuf_appends(&s->logbuf, "...");
    return s->logbuf.data;
}

int smtp_flush_if_idle(struct smtp_session *s)
{
    if (netio_pending(s->io) > 0)
        return 0;
    if (netio_flush(s->io) < 0) {
        if (!s->closing) {
            s->closing = true;
            s->end = SMTP_END_IO_ERROR;
        }
        return -1;
    }
    return 0;
}

void smtp_read_failed(struct smtp_session *s, enum netio_status st, const char *what)
{
    s->closing = true;
    switch (st) {
    case NETIO_TIMEOUT:
        log_info("timeout after %s from %s", what, s->cfg.client);
        smtp_reply_nocount(s, 421, "4.4.2", "%s Error: timeout exceeded", s->cfg.hostname);
        s->end = SMTP_END_TIMEOUT;
        break;
    case NETIO_EOF:
    case NETIO_EOF_PARTIAL:
        log_info("lost connection after %s from %s", what, s->cfg.client);
        s->end = SMTP_END_DISCONNECT;
        break;
    default:
        log_info("read error after %s from %s: %s", what, s->cfg.client, strerror(errno));
        s->end = SMTP_END_IO_ERROR;
        break;
    }
}

int smtp_session_read_line(struct smtp_session *s, strbuf *line)
{
    if (s->closing)
        return -1;
    if (smtp_flush_if_idle(s) < 0)
        return -1;
    unsigned flags = 0;
    enum netio_status st = netio_read_line(s->io, line, &flags);
    switch (st) {
    case NETIO_OK:
        if (flags & (NETIO_LINE_NUL | NETIO_LINE_BARE_CR)) {
            log_warning("command with %s from %s: %s",
                        (flags & NETIO_LINE_NUL) ? "NUL byte" : "bare <CR>", s->cfg.client,
                        smtp_logsafe(s, line->data, line->len));
            smtp_session_reply(s, 500, "5.5.2",
                               "Error: command contains a NUL byte or a bare <CR>");
            return s->closing ? -1 : 1;
        }
        return 0;
    case NETIO_TOO_LONG:
        log_warning("command line too long from %s: %s", s->cfg.client,
                    smtp_logsafe(s, line->data, line->len));
        smtp_session_reply(s, 500, "5.5.2", "Error: line too long");
        if (flags & NETIO_LINE_DESYNC) {
            s->closing = true;
            s->end = SMTP_END_PROTOCOL;
        }
        return s->closing ? -1 : 1;
    default:
        smtp_read_failed(s, st, "command");
        return -1;
    }
}

/* ---- commands without a transaction ---- */

/* True when args (after trailing blanks are ignored) is empty. */
static bool no_args(const char *args, size_t n)
{
    while (n > 0 && (args[n - 1] == ' ' || args[n - 1] == '\t'))
        n--;
    return n == 0;
}

/* A HELO/EHLO name: 1..255 octets, no control character, UTF-8. */
static const char *helo_problem(const char *p, size_t n)
{
    if (n == 0)
        return "";
    if (n > SMTP_HELO_MAX)
        return "hostname too long";
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(p + i, n - i, &cp);
        if (k == 0 || cp < 0x20 || cp == 0x7f || utf8_is_c1(cp))
            return "invalid character in hostname";
        i += k;
    }
    return NULL;
}

static void ehlo_reply(struct smtp_session *s)
{
    strbuf kw;
    strbuf_init(&kw);
    strbuf_printf(&kw, "%s\n", s->cfg.hostname);
    if (s->cfg.pipelining)
        strbuf_appends(&kw, "PIPELINING\n");
    if (s->cfg.size_limit > 0)
        strbuf_printf(&kw, "SIZE %llu\n", (unsigned long long)s->cfg.size_limit);
    else
        strbuf_appends(&kw, "SIZE\n");
    if (s->cfg.vrfy)
        strbuf_appends(&kw, "VRFY\n");
    if (s->ops->on_starttls != NULL && !s->tls)
        strbuf_appends(&kw, "STARTTLS\n");
    if (s->ops->ehlo_keywords != NULL) {
        strbuf extra;
        strbuf_init(&extra);
        s->ops->ehlo_keywords(s->ctx, s, &extra);
        /* Keep the glue's lines, skipping empty ones (they would end the
         * multi-line reply early for a client). */
        size_t pos = 0;
        while (pos < extra.len) {
            const char *nl = memchr(extra.data + pos, '\n', extra.len - pos);
            size_t end = nl != NULL ? (size_t)(nl - extra.data) : extra.len;
            if (end > pos) {
                strbuf_append(&kw, extra.data + pos, end - pos);
                strbuf_appendc(&kw, '\n');
            }
            pos = end + 1;
        }
        strbuf_free(&extra);
    }
    strbuf_appends(&kw, "ENHANCEDSTATUSCODES\n");
    if (s->cfg.eightbitmime)
        strbuf_appends(&kw, "8BITMIME\n");
    if (s->cfg.dsn)
        strbuf_appends(&kw, "DSN\n");
    if (s->cfg.smtputf8)
        strbuf_appends(&kw, "SMTPUTF8\n");
    if (s->cfg.chunking)
        strbuf_appends(&kw, "CHUNKING\n");
    strbuf_truncate(&kw, kw.len - 1);
    write_reply(s, 250, "", kw.data, kw.len);
    strbuf_free(&kw);
}

static void cmd_helo(struct smtp_session *s, bool esmtp, const char *args, size_t n)
{
    while (n > 0 && (args[n - 1] == ' ' || args[n - 1] == '\t'))
        n--;
    const char *why = helo_problem(args, n);
    if (why != NULL) {
        if (why[0] == '\0') {
            smtp_session_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        } else {
            log_warning("bad %s name from %s: %s", esmtp ? "EHLO" : "HELO", s->cfg.client,
                        smtp_logsafe(s, args, n));
            smtp_session_reply(s, 501, "5.5.2", "Error: %s", why);
        }
        return;
    }
    strbuf name;
    strbuf_init(&name);
    strbuf_set(&name, args, n);
    if (s->ops->on_helo != NULL) {
        struct smtp_reply *r = smtp_fresh_reply(s);
        s->ops->on_helo(s->ctx, s, name.data, esmtp, r);
        if (r->code >= 400) {
            smtp_send_reply(s, r, 0, NULL, "");
            strbuf_free(&name);
            return;
        }
    }
    /* RFC 5321 §4.1.4: EHLO/HELO resets the state like RSET. */
    smtp_transaction_end(s, "new HELO/EHLO");
    strbuf_free(&s->helo);
    s->helo = name;
    s->have_helo = true;
    s->esmtp = esmtp;
    if (esmtp)
        ehlo_reply(s);
    else
        write_reply(s, 250, "", s->cfg.hostname, strlen(s->cfg.hostname));
}

static void cmd_starttls(struct smtp_session *s, const char *args, size_t n)
{
    if (!no_args(args, n)) {
        smtp_session_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
        return;
    }
    if (s->tls) {
        smtp_session_reply(s, 503, "5.5.1", "Error: TLS already active");
        return;
    }
    smtp_reply_nocount(s, 220, "2.0.0", "Ready to start TLS");
    if (netio_flush(s->io) < 0) {
        s->closing = true;
        s->end = SMTP_END_IO_ERROR;
        return;
    }
    /* CVE-2011-0411: whatever the client sent behind STARTTLS arrived in
     * plaintext and must not be executed as if it came through TLS. */
    size_t dropped = netio_discard_input(s->io);
    if (dropped > 0)
        log_warning("discarded %zu bytes of plaintext pipelined after STARTTLS from %s",
                    dropped, s->cfg.client);
    if (s->ops->on_starttls(s->ctx, s) < 0) {
        log_info("TLS handshake failed with %s", s->cfg.client);
        s->closing = true;
        s->end = SMTP_END_TLS_FAILED;
        return;
    }
    /* RFC 3207 §4.2: forget everything learnt before the handshake. */
    smtp_transaction_end(s, "STARTTLS");
    s->tls = true;
    s->have_helo = false;
    s->esmtp = false;
    strbuf_reset(&s->helo);
    free(s->auth_user);
    s->auth_user = NULL;
}

static void cmd_vrfy(struct smtp_session *s, const char *verb, const char *args, size_t n)
{
    if (no_args(args, n)) {
        smtp_session_reply(s, 501, "5.5.4", "Syntax: VRFY address");
        return;
    }
    if (s->cfg.vrfy && s->ops->on_command != NULL && s->ops->on_command(s->ctx, s, verb, args))
        return;
    smtp_reply_nocount(s, 252, "2.5.0",
                       "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct smtp_session *s)
{
    smtp_reply_nocount(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA%s RSET NOOP QUIT VRFY HELP%s",
                       s->cfg.chunking ? " BDAT" : "",
                       s->ops->on_starttls != NULL ? " STARTTLS" : "");
}

/* ---- the loop ---- */

static void dispatch(struct smtp_session *s)
{
    const char *p = s->line.data;
    size_t n = s->line.len;
    const char *sp = memchr(p, ' ', n);
    size_t vlen = sp != NULL ? (size_t)(sp - p) : n;
    const char *args = sp != NULL ? sp + 1 : p + n;
    size_t alen = sp != NULL ? n - vlen - 1 : 0;
    char verb[16];

    if (vlen == 0 || vlen >= sizeof(verb)) {
        log_info("unknown command from %s: %s", s->cfg.client, smtp_logsafe(s, p, n));
        smtp_session_reply(s, 500, "5.5.2", "Error: command not recognized");
        return;
    }
    for (size_t i = 0; i < vlen; i++)
        verb[i] = (char)toupper((unsigned char)p[i]);
    verb[vlen] = '\0';

    if (strcmp(verb, "EHLO") == 0 || strcmp(verb, "HELO") == 0) {
        cmd_helo(s, verb[0] == 'E', args, alen);
    } else if (strcmp(verb, "MAIL") == 0) {
        smtp_cmd_mail(s, args, alen);
    } else if (strcmp(verb, "RCPT") == 0) {
        smtp_cmd_rcpt(s, args, alen);
    } else if (strcmp(verb, "DATA") == 0) {
        smtp_cmd_data(s, args, alen);
    } else if (strcmp(verb, "BDAT") == 0 && s->cfg.chunking) {
        smtp_cmd_bdat(s, args, alen);
    } else if (strcmp(verb, "RSET") == 0) {
        if (!no_args(args, alen)) {
            smtp_session_reply(s, 501, "5.5.4", "Syntax: RSET");
            return;
        }
        smtp_transaction_end(s, "RSET");
        smtp_reply_nocount(s, 250, "2.0.0", "Ok");
    } else if (strcmp(verb, "NOOP") == 0) {
        smtp_reply_nocount(s, 250, "2.0.0", "Ok");
    } else if (strcmp(verb, "QUIT") == 0) {
        smtp_reply_nocount(s, 221, "2.0.0", "Bye");
        s->closing = true;
        s->end = SMTP_END_QUIT;
    } else if (strcmp(verb, "VRFY") == 0) {
        cmd_vrfy(s, verb, args, alen);
    } else if (strcmp(verb, "HELP") == 0) {
        cmd_help(s);
    } else if (strcmp(verb, "STARTTLS") == 0 && s->ops->on_starttls != NULL) {
        cmd_starttls(s, args, alen);
    } else if (s->ops->on_command != NULL && s->ops->on_command(s->ctx, s, verb, args)) {
        /* handled by the glue */
    } else {
        log_info("unknown command from %s: %s", s->cfg.client, smtp_logsafe(s, p, n));
        smtp_session_reply(s, 500, "5.5.2", "Error: command not recognized");
    }
}

/* The pre-greeting talker check. True when the session may go on. */
static bool pregreet_ok(struct smtp_session *s)
{
    if (s->cfg.pregreet_ms < 0)
        return true;
    bool talked = netio_pending(s->io) > 0;
    if (!talked && netio_wait_fd(netio_rfd(s->io), POLLIN, s->cfg.pregreet_ms) == 0) {
        char c;
        ssize_t r = recv(netio_rfd(s->io), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) {
            log_info("lost connection before the greeting from %s", s->cfg.client);
            s->end = SMTP_END_DISCONNECT;
            return false;
        }
        /* Readable but not a socket (a pipe): input is there all the same. */
        talked = r > 0 || (r < 0 && errno == ENOTSOCK);
    }
    if (!talked)
        return true;
    log_warning("client %s talked before the greeting", s->cfg.client);
    smtp_reply_nocount(s, 554, "5.5.1", "Protocol error: talked before the greeting");
    s->end = SMTP_END_PREGREET;
    return false;
}

static void config_defaults(struct smtp_server_config *c)
{
    if (c->hostname == NULL || c->hostname[0] == '\0')
        log_panic("smtp: server hostname not set");
    if (c->greeting == NULL)
        c->greeting = "ESMTP";
    if (c->client == NULL)
        c->client = "unknown";
    if (c->max_line == 0)
        c->max_line = SMTP_DEFAULT_MAX_LINE;
    if (c->max_rcpt == 0)
        c->max_rcpt = SMTP_DEFAULT_MAX_RCPT;
    if (c->rcpt_overshoot == 0)
        c->rcpt_overshoot = SMTP_DEFAULT_RCPT_OVERSHOOT;
    if (c->cmd_timeout_ms <= 0)
        c->cmd_timeout_ms = SMTP_DEFAULT_CMD_TIMEOUT_MS;
    if (c->data_timeout_ms <= 0)
        c->data_timeout_ms = SMTP_DEFAULT_DATA_TIMEOUT_MS;
    if (c->soft_errors == 0)
        c->soft_errors = SMTP_DEFAULT_SOFT_ERRORS;
    if (c->hard_errors == 0)
        c->hard_errors = SMTP_DEFAULT_HARD_ERRORS;
    if (c->error_delay_ms == 0)
        c->error_delay_ms = SMTP_DEFAULT_ERROR_DELAY_MS;
}

enum smtp_end smtp_server_run(struct netio *io, const struct smtp_server_config *cfg,
                              const struct smtp_server_ops *ops, void *ctx)
{
    static const struct smtp_server_ops no_ops;
    struct smtp_session s_, *s = &s_;
    memset(s, 0, sizeof(*s));
    s->io = io;
    s->cfg = *cfg;
    config_defaults(&s->cfg);
    s->ops = ops != NULL ? ops : &no_ops;
    s->ctx = ctx;
    s->end = SMTP_END_DISCONNECT;
    strbuf_init(&s->helo);
    strbuf_init(&s->line);
    strbuf_init(&s->logbuf);
    strbuf_init(&s->scratch);
    strbuf_init(&s->content);
    strbuf_init(&s->reply.text);
    strbuf_init(&s->sink_reply.text);
    smtp_envelope_init(&s->env);
    smtp_rcpt_init(&s->cand);
    netio_set_max_line(io, s->cfg.max_line);
    netio_set_read_timeout(io, s->cfg.cmd_timeout_ms);

    if (pregreet_ok(s)) {
        struct smtp_reply *r = smtp_fresh_reply(s);
        if (s->ops->on_connect != NULL)
            s->ops->on_connect(s->ctx, s, r);
        if (r->code >= 400) {
            smtp_send_reply(s, r, 0, NULL, "");
            s->end = SMTP_END_REFUSED;
        } else {
            if (r->code != 0)
                write_reply(s, 220, "", r->text.data, r->text.len);
            else
                smtp_reply_nocount(s, 220, "", "%s %s", s->cfg.hostname, s->cfg.greeting);
            while (!s->closing) {
                int st = smtp_session_read_line(s, &s->line);
                if (st < 0)
                    break;
                if (st == 0)
                    dispatch(s);
            }
        }
    }
    smtp_transaction_end(s, "session ended");
    netio_flush(io);

    smtp_rcpt_free(&s->cand);
    smtp_envelope_free(&s->env);
    strbuf_free(&s->helo);
    strbuf_free(&s->line);
    strbuf_free(&s->logbuf);
    strbuf_free(&s->scratch);
    strbuf_free(&s->content);
    strbuf_free(&s->reply.text);
    strbuf_free(&s->sink_reply.text);
    free(s->auth_user);
    return s->end;
}

const char *smtp_end_str(enum smtp_end e)
{
    switch (e) {
    case SMTP_END_QUIT: return "quit";
    case SMTP_END_DISCONNECT: return "lost connection";
    case SMTP_END_TIMEOUT: return "timeout";
    case SMTP_END_IO_ERROR: return "I/O error";
    case SMTP_END_REFUSED: return "refused at connect";
    case SMTP_END_PREGREET: return "talked before the greeting";
    case SMTP_END_ERRORS: return "too many errors";
    case SMTP_END_PROTOCOL: return "protocol violation";
    case SMTP_END_TLS_FAILED: return "TLS handshake failed";
    case SMTP_END_CLOSED: return "closed by the server";
    }
    return "unknown";
}
