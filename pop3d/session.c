/*
 * session.c - the POP3 TRANSACTION and UPDATE states (RFC 1939 §5, §6;
 * TOP and UIDL §7; CAPA RFC 2449) on a mailbox opened by pop3d as its
 * owner, through lib/mail/mailbox.h.
 *
 * Deletions are marks in memory until QUIT (UPDATE state): a connection
 * that ends any other way (closed, timeout, too many bad commands, the
 * process killed) deletes nothing. Messages are sent as the mailbox
 * module's lines (CRLF line ends, exactly the size LIST reports) with
 * dot-stuffing; a message that vanished since the listing gets "-ERR".
 */
#include "pop3.h"
#include "mail/mailbox.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct session {
    const struct pop3_session_settings *settings;
    struct netio *io;
    struct mailbox *mb;
    unsigned long retr;
    unsigned long dele;
    uint64_t bytes;
    int bad;
};

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    netio_vprintf(s->io, fmt, ap);
    va_end(ap);
    netio_puts(s->io, "\r\n");
}

static void bad(struct session *s, const char *text)
{
    reply(s, "-ERR %s", text);
    s->bad++;
}

/* Parses a message number: strict decimal, 1..count. Returns the index or
 * -1 (answered). With must_exist, a message marked deleted is refused. */
static long msgno(struct session *s, const char *arg, bool must_exist)
{
    size_t n = mailbox_count(s->mb);
    if (arg == NULL || *arg == '\0') {
        bad(s, "Message number required");
        return -1;
    }
    unsigned long long v = 0;
    for (const char *p = arg; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000ULL) {
            bad(s, "Invalid message number");
            return -1;
        }
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v == 0 || v > n) {
        reply(s, "-ERR No such message");
        return -1;
    }
    if (must_exist && mailbox_msg(s->mb, (size_t)v - 1)->deleted) {
        reply(s, "-ERR Message %llu already deleted", v);
        return -1;
    }
    return (long)v - 1;
}

static void stat_cmd(struct session *s)
{
    size_t n = mailbox_count(s->mb), live = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mailbox_msg *m = mailbox_msg(s->mb, i);
        if (!m->deleted) {
            live++;
            total += m->size;
        }
    }
    reply(s, "+OK %zu %llu", live, (unsigned long long)total);
}

/* LIST and UIDL: one message or the whole scan listing. */
static void listing(struct session *s, const char *arg, bool uidl)
{
    if (arg != NULL) {
        long i = msgno(s, arg, true);
        if (i < 0)
            return;
        const struct mailbox_msg *m = mailbox_msg(s->mb, (size_t)i);
        if (uidl)
            reply(s, "+OK %ld %s", i + 1, m->uid);
        else
            reply(s, "+OK %ld %llu", i + 1, (unsigned long long)m->size);
        return;
    }
    size_t n = mailbox_count(s->mb);
    netio_puts(s->io, uidl ? "+OK Unique-ID listing follows\r\n" : "+OK Scan listing follows\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct mailbox_msg *m = mailbox_msg(s->mb, i);
        if (m->deleted)
            continue;
        if (uidl)
            netio_printf(s->io, "%zu %s\r\n", i + 1, m->uid);
        else
            netio_printf(s->io, "%zu %llu\r\n", i + 1, (unsigned long long)m->size);
    }
    netio_puts(s->io, ".\r\n");
}

/* RETR (body_lines < 0) and TOP. Returns -1 when the session must end
 * (the message broke off after "+OK": the client cannot be told). */
static int send_message(struct session *s, size_t i, long body_lines)
{
    strbuf err, line;
    strbuf_init(&err);
    strbuf_init(&line);
    int rc = 0;
    struct mailbox_reader *r = mailbox_reader_open(s->mb, i, &err);
    if (r == NULL) {
        log_warning("cannot read message %zu: %s", i + 1, err.data);
        reply(s, "-ERR [SYS/TEMP] Message %zu is not available", i + 1);
        goto out;
    }
    const struct mailbox_msg *m = mailbox_msg(s->mb, i);
    if (body_lines < 0)
        reply(s, "+OK %llu octets", (unsigned long long)m->size);
    else
        reply(s, "+OK Top of message follows");
    bool in_body = false;
    long sent_body = 0;
    for (;;) {
        if (in_body && body_lines >= 0 && sent_body >= body_lines)
            break;
        int got = mailbox_reader_line(r, &line, &err);
        if (got == 0)
            break;
        if (got < 0) {
            log_warning("message %zu broke off while being sent: %s", i + 1, err.data);
            rc = -1;
            goto out;
        }
        if (in_body)
            sent_body++;
        else if (line.len == 0)
            in_body = true;
        if (line.len > 0 && line.data[0] == '.')
            netio_write(s->io, ".", 1);
        netio_write(s->io, line.data, line.len);
        netio_write(s->io, "\r\n", 2);
    }
    netio_puts(s->io, ".\r\n");
    if (body_lines < 0) {
        s->retr++;
        s->bytes += m->size;
    }
out:
    mailbox_reader_close(&r);
    strbuf_free(&err);
    strbuf_free(&line);
    return rc;
}

/* TOP msg n */
static int top_cmd(struct session *s, const char *args)
{
    const char *sp = args ? strchr(args, ' ') : NULL;
    if (sp == NULL) {
        bad(s, "Syntax: TOP message lines");
        return 0;
    }
    strbuf num;
    strbuf_init(&num);
    strbuf_set(&num, args, (size_t)(sp - args));
    long i = msgno(s, num.data, true);
    strbuf_free(&num);
    if (i < 0)
        return 0;
    long n = 0;
    const char *p = sp + 1;
    if (*p == '\0') {
        bad(s, "Syntax: TOP message lines");
        return 0;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || n > 100000000L) {
            bad(s, "Invalid line count");
            return 0;
        }
        n = n * 10 + (*p - '0');
    }
    return send_message(s, (size_t)i, n);
}

/* The UPDATE state. */
static void quit_cmd(struct session *s)
{
    strbuf err;
    strbuf_init(&err);
    size_t n = mailbox_count(s->mb);
    unsigned long marked = 0;
    for (size_t i = 0; i < n; i++)
        if (mailbox_msg(s->mb, i)->deleted)
            marked++;
    if (marked > 0 && mailbox_commit(s->mb, &err) < 0) {
        log_error("deletions not applied: %s", err.data);
        reply(s, "-ERR [SYS/TEMP] Some deleted messages not removed");
    } else {
        s->dele = marked;
        reply(s, "+OK Petrel POP3 server signing off (%lu messages deleted)", marked);
    }
    strbuf_free(&err);
}

int pop3_session(const struct pop3_session_settings *set, struct netio *io, struct mailbox *mb,
                 const char *user, const char *client)
{
    struct session s = { .settings = set, .io = io, .mb = mb };
    netio_set_read_timeout(io, set->timeout_ms);
    netio_set_write_timeout(io, set->timeout_ms);
    netio_set_max_line(io, set->max_line);
    netio_set_discard_limit(io, 64 * 1024);
    strbuf line;
    strbuf_init(&line);
    const char *why = "connection lost";
    for (;;) {
        /* Pipelined commands are answered together (RFC 2449 PIPELINING). */
        if (netio_pending(io) == 0 && netio_flush(io) < 0)
            break;
        unsigned flags = 0;
        enum netio_status st = netio_read_line(io, &line, &flags);
        if (st == NETIO_TOO_LONG) {
            bad(&s, "Line too long");
            if (flags & NETIO_LINE_DESYNC) {
                /* Past the discard limit: no longer at a line boundary. */
                why = "line too long";
                break;
            }
        } else if (st != NETIO_OK) {
            why = st == NETIO_TIMEOUT ? "timeout" : "connection lost";
            break;
        } else if (strbuf_has_nul(&line)) {
            bad(&s, "Invalid command");
        } else {
            const char *l = line.data;
            const char *sp = strchr(l, ' ');
            size_t klen = sp ? (size_t)(sp - l) : line.len;
            const char *args = sp ? sp + 1 : NULL;
#define IS(k) (klen == sizeof(k) - 1 && strncasecmp(l, k, klen) == 0)
            if (IS("STAT")) {
                stat_cmd(&s);
            } else if (IS("LIST")) {
                listing(&s, args, false);
            } else if (IS("UIDL")) {
                listing(&s, args, true);
            } else if (IS("RETR")) {
                long i = msgno(&s, args, true);
                if (i >= 0 && send_message(&s, (size_t)i, -1) < 0) {
                    why = "message read error";
                    break;
                }
            } else if (IS("TOP")) {
                if (top_cmd(&s, args) < 0) {
                    why = "message read error";
                    break;
                }
            } else if (IS("DELE")) {
                long i = msgno(&s, args, true);
                if (i >= 0) {
                    mailbox_mark_deleted(mb, (size_t)i, true);
                    reply(&s, "+OK Message %ld deleted", i + 1);
                }
            } else if (IS("NOOP")) {
                reply(&s, "+OK");
            } else if (IS("RSET")) {
                size_t n = mailbox_count(mb);
                for (size_t i = 0; i < n; i++)
                    mailbox_mark_deleted(mb, i, false);
                reply(&s, "+OK");
            } else if (IS("CAPA")) {
                strbuf out;
                strbuf_init(&out);
                struct pop3_capa cp = { .authorization = false };
                pop3_capa(&cp, &out);
                netio_write(io, out.data, out.len);
                strbuf_free(&out);
            } else if (IS("QUIT")) {
                quit_cmd(&s);
                why = "quit";
                break;
            } else if (IS("USER") || IS("PASS") || IS("AUTH") || IS("APOP") || IS("STLS")) {
                bad(&s, "Already logged in");
            } else {
                bad(&s, "Unknown command");
            }
#undef IS
        }
        if (s.bad >= set->max_bad) {
            reply(&s, "-ERR Too many bad commands, closing connection");
            why = "too many bad commands";
            break;
        }
    }
    netio_flush(io);
    strbuf_free(&line);
    log_info("logout: user=<%s>, client=%s, retr=%lu, dele=%lu, bytes=%llu (%s)", user, client,
             s.retr, s.dele, (unsigned long long)s.bytes, why);
    return strcmp(why, "line too long") == 0 || strcmp(why, "too many bad commands") == 0 ? -1
                                                                                           : 0;
}
