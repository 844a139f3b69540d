/*
 * test_smtp_server.c - dialogue tests for the SMTP server engine
 * (lib/smtp/server.h).
 *
 * The engine runs in a thread on one end of a socketpair; the test plays the
 * client on the other end. A dialogue is a table of steps: C sends a
 * command line (CRLF added), RAW sends bytes exactly (NUL and bare CR/LF
 * allowed), S expects the next reply line to begin with the given text,
 * CLOSED expects the server to have closed the connection. The callbacks
 * record what reached them (struct rec), so each test also proves what
 * was NOT accepted: a smuggled message never reaches on_mail, bytes past the
 * size limit never reach the sink, an abort is reported and no commit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smtp/server.h"
#include "smtp/xtext.h"
#include "util/log.h"
#include "util/netio.h"
#include "util/strbuf.h"

/* ---- what the callbacks saw, and how they behave ---- */

struct rec {
    int connects, helos, mails, rcpts, data_starts, data_ends, aborts, resets, starttls;
    int chunks;
    strbuf events;   /* "MAIL <a@b>\n", "RCPT <c@d>\n", "END\n", "ABORT reason\n" ... */
    strbuf content;  /* content of the current message */
    strbuf last_msg; /* content of the last committed message */
    uint64_t sink_bytes; /* every byte handed to on_data_chunk */
    /* knobs */
    bool refuse_connect;
    bool sink_fail;       /* on_data_chunk refuses with 452 4.3.1 */
    bool starttls_switch; /* the STARTTLS hook switches the netio backend */
    enum smtp_end end;
};

static void ev(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ev(struct rec *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&r->events, fmt, ap);
    va_end(ap);
}

static void on_connect(void *ctx, struct smtp_session *s, struct smtp_reply *r)
{
    (void)s;
    struct rec *rec = ctx;
    rec->connects++;
    if (rec->refuse_connect)
        smtp_reply_set(r, 554, "5.7.1", "Go away");
}

static void on_helo(void *ctx, struct smtp_session *s, const char *name, bool esmtp,
                    struct smtp_reply *r)
{
    (void)s;
    struct rec *rec = ctx;
    rec->helos++;
    ev(rec, "%s %s\n", esmtp ? "EHLO" : "HELO", name);
    if (strcmp(name, "refused.example") == 0)
        smtp_reply_set(r, 550, "5.7.1", "Not you");
}

static void on_mail(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    struct smtp_reply *r)
{
    struct rec *rec = ctx;
    rec->mails++;
    strbuf a;
    strbuf_init(&a);
    address_format_path(&a, &env->sender);
    ev(rec, "MAIL %s size=%llu body=%d utf8=%d ret=%d envid=%s auth=%s user=%s\n", a.data,
       (unsigned long long)env->declared_size, (int)env->body, env->smtputf8, (int)env->ret,
       env->envid.data, env->has_auth ? env->auth.data : "-",
       smtp_session_auth_user(s) ? smtp_session_auth_user(s) : "-");
    if (strcmp(a.data, "<blocked@example.org>") == 0)
        smtp_reply_set(r, 550, "5.7.1", "Sender blocked");
    strbuf_free(&a);
}

static void on_rcpt(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                    const struct smtp_rcpt *rc, struct smtp_reply *r)
{
    (void)s;
    (void)env;
    struct rec *rec = ctx;
    strbuf a;
    strbuf_init(&a);
    address_format_path(&a, &rc->addr);
    /* RFC 5321 D.1: Green is not a user here. */
    if (strcmp(rc->addr.local.data, "Green") == 0) {
        smtp_reply_set(r, 550, "5.1.1", "No such user here");
    } else {
        rec->rcpts++;
        ev(rec, "RCPT %s notify=%u orcpt=%s;%s\n", a.data, rc->notify, rc->orcpt_type.data,
           rc->orcpt.data);
    }
    strbuf_free(&a);
}

static void on_data_start(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          struct smtp_reply *r)
{
    (void)s;
    (void)env;
    (void)r;
    struct rec *rec = ctx;
    rec->data_starts++;
    strbuf_reset(&rec->content);
}

static int on_data_chunk(void *ctx, struct smtp_session *s, const char *p, size_t n,
                         struct smtp_reply *r)
{
    (void)s;
    struct rec *rec = ctx;
    rec->chunks++;
    rec->sink_bytes += n;
    if (rec->sink_fail) {
        smtp_reply_set(r, 452, "4.3.1", "Insufficient system storage");
        return -1;
    }
    strbuf_append(&rec->content, p, n);
    return 0;
}

static void on_data_end(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                        struct smtp_reply *r)
{
    (void)s;
    struct rec *rec = ctx;
    rec->data_ends++;
    ev(rec, "END %zu rcpt, %llu bytes\n", env->nrcpt, (unsigned long long)env->size);
    strbuf_set(&rec->last_msg, rec->content.data, rec->content.len);
    smtp_reply_set(r, 250, "2.0.0", "Ok: queued as TESTID%d", rec->data_ends);
}

static void on_data_abort(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          const char *reason)
{
    (void)s;
    (void)env;
    struct rec *rec = ctx;
    rec->aborts++;
    ev(rec, "ABORT %s\n", reason);
}

static void on_reset(void *ctx, struct smtp_session *s)
{
    (void)s;
    struct rec *rec = ctx;
    rec->resets++;
}

static void ehlo_keywords(void *ctx, struct smtp_session *s, strbuf *out)
{
    (void)ctx;
    if (smtp_session_tls(s))
        strbuf_appends(out, "AUTH PLAIN\n");
}

/* A stand-in for a TLS backend: plain recv/send on the same socket. */
struct fake_tls {
    int fd;
};

static ssize_t fake_read(void *ctx, void *buf, size_t n, int timeout_ms)
{
    struct fake_tls *t = ctx;
    if (netio_wait_fd(t->fd, POLLIN, timeout_ms) < 0)
        return -1;
    return recv(t->fd, buf, n, MSG_DONTWAIT);
}

static ssize_t fake_write(void *ctx, const void *buf, size_t n, int timeout_ms)
{
    struct fake_tls *t = ctx;
    if (netio_wait_fd(t->fd, POLLOUT, timeout_ms) < 0)
        return -1;
    return send(t->fd, buf, n, MSG_NOSIGNAL);
}

static const struct netio_backend fake_backend = { "fake-tls", fake_read, fake_write };
static struct fake_tls fake_tls_ctx;

static int on_starttls(void *ctx, struct smtp_session *s)
{
    struct rec *rec = ctx;
    rec->starttls++;
    if (rec->starttls_switch) {
        struct netio *io = smtp_session_netio(s);
        fake_tls_ctx.fd = netio_rfd(io);
        /* Anything still buffered would be dropped here (counted). */
        netio_set_backend(io, &fake_backend, &fake_tls_ctx);
    }
    return 0;
}

/* AUTH as a glue would do it: 334, read a line, 235 or 535. */
static bool on_command(void *ctx, struct smtp_session *s, const char *verb, const char *args)
{
    (void)ctx;
    if (strcmp(verb, "AUTH") != 0)
        return false;
    if (strcmp(args, "PLAIN") != 0) {
        smtp_session_reply(s, 504, "5.5.4", "Unsupported mechanism");
        return true;
    }
    smtp_session_reply(s, 334, "", "%s", "");
    strbuf line;
    strbuf_init(&line);
    int r = smtp_session_read_line(s, &line);
    if (r == 0 && strbuf_eq(&line, "AGJvYgBzZWNyZXQ=")) {
        smtp_session_set_auth_user(s, "bob");
        smtp_session_reply(s, 235, "2.7.0", "Authentication successful");
    } else if (r == 0) {
        smtp_session_reply(s, 535, "5.7.8", "Authentication failed");
    }
    strbuf_free(&line);
    return true;
}

static const struct smtp_server_ops all_ops = {
    .on_connect = on_connect,
    .on_helo = on_helo,
    .on_mail = on_mail,
    .on_rcpt = on_rcpt,
    .on_data_start = on_data_start,
    .on_data_chunk = on_data_chunk,
    .on_data_end = on_data_end,
    .on_data_abort = on_data_abort,
    .on_reset = on_reset,
    .ehlo_keywords = ehlo_keywords,
    .on_command = on_command,
};

static struct smtp_server_ops tls_ops; /* all_ops plus on_starttls, set in main */

static struct smtp_server_config base_cfg(void)
{
    struct smtp_server_config c = {
        .hostname = "mx.test",
        .client = "client.test[192.0.2.1]",
        .size_limit = 10 * 1024 * 1024,
        .max_rcpt = 100,
        .cmd_timeout_ms = 5000,
        .data_timeout_ms = 5000,
        .error_delay_ms = -1,
        .pregreet_ms = -1,
        .pipelining = true,
        .eightbitmime = true,
        .smtputf8 = true,
        .dsn = true,
        .chunking = true,
    };
    return c;
}

/* ---- the session under test ---- */

struct server {
    pthread_t th;
    int fd;
    struct netio *io;
    struct smtp_server_config cfg;
    const struct smtp_server_ops *ops;
    struct rec *rec;
};

static void *server_main(void *arg)
{
    struct server *sv = arg;
    sv->rec->end = smtp_server_run(sv->io, &sv->cfg, sv->ops, sv->rec);
    netio_free(&sv->io);
    close(sv->fd);
    return NULL;
}

struct client {
    int fd;
    struct netio *io;
    struct server sv;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    strbuf_init(&r->events);
    strbuf_init(&r->content);
    strbuf_init(&r->last_msg);
}

static void rec_free(struct rec *r)
{
    strbuf_free(&r->events);
    strbuf_free(&r->content);
    strbuf_free(&r->last_msg);
}

static void start(struct client *c, const struct smtp_server_config *cfg,
                  const struct smtp_server_ops *ops, struct rec *rec)
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    c->fd = sp[1];
    c->io = netio_new(sp[1]);
    netio_set_read_timeout(c->io, 10000);
    netio_set_max_line(c->io, 1 << 20);
    c->sv.fd = sp[0];
    c->sv.io = netio_new(sp[0]);
    c->sv.cfg = *cfg;
    c->sv.ops = ops;
    c->sv.rec = rec;
    assert_int_equal(pthread_create(&c->sv.th, NULL, server_main, &c->sv), 0);
}

/* Closes the client side and waits for the session to end. */
static void finish(struct client *c)
{
    netio_free(&c->io);
    close(c->fd);
    pthread_join(c->sv.th, NULL);
}

static void send_bytes(struct client *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) /* the server may have closed already; that is for S/CLOSED to judge */
            return;
        s += r;
        n -= (size_t)r;
    }
}

/* Reads one reply line; false at EOF or error. */
static bool reply_line(struct client *c, strbuf *line)
{
    enum netio_status st = netio_read_line(c->io, line, NULL);
    return st == NETIO_OK;
}

static void expect(struct client *c, const char *prefix, int step)
{
    strbuf line;
    strbuf_init(&line);
    if (!reply_line(c, &line))
        fail_msg("step %d: connection closed, expected \"%s\"", step, prefix);
    if (strncmp(line.data, prefix, strlen(prefix)) != 0)
        fail_msg("step %d: got \"%s\", expected \"%s...\"", step, line.data, prefix);
    strbuf_free(&line);
}

static void expect_closed(struct client *c, int step)
{
    strbuf line;
    strbuf_init(&line);
    if (reply_line(c, &line))
        fail_msg("step %d: got \"%s\", expected the connection to be closed", step, line.data);
    strbuf_free(&line);
}

struct step {
    char kind; /* C, R, S, E (closed), 0 (end of table) */
    const char *text;
    size_t len;
};

#define C(s) { 'C', s, sizeof(s) - 1 }
#define RAW(s) { 'R', s, sizeof(s) - 1 }
#define S(s) { 'S', s, sizeof(s) - 1 }
#define CLOSED { 'E', NULL, 0 }
#define EHLO_DONE { 'H', NULL, 0 }
#define END { 0, NULL, 0 }

static void play(struct client *c, const struct step *steps)
{
    for (int i = 0; steps[i].kind != 0; i++) {
        const struct step *st = &steps[i];
        switch (st->kind) {
        case 'C':
            send_bytes(c, st->text, st->len);
            send_bytes(c, "\r\n", 2);
            break;
        case 'R':
            send_bytes(c, st->text, st->len);
            break;
        case 'S':
            expect(c, st->text, i);
            break;
        case 'E':
            expect_closed(c, i);
            break;
        case 'H': { /* the rest of a multi-line EHLO reply */
            strbuf line;
            strbuf_init(&line);
            do {
                if (!reply_line(c, &line))
                    fail_msg("step %d: connection closed in the EHLO reply", i);
            } while (strncmp(line.data, "250-", 4) == 0);
            if (strncmp(line.data, "250 ", 4) != 0)
                fail_msg("step %d: got \"%s\" in the EHLO reply", i, line.data);
            strbuf_free(&line);
            break;
        }
        }
    }
}

/* Runs a whole dialogue and waits for the session to end. */
static void dialogue(const struct smtp_server_config *cfg, const struct smtp_server_ops *ops,
                     struct rec *rec, const struct step *steps)
{
    struct client c;
    start(&c, cfg, ops, rec);
    play(&c, steps);
    finish(&c);
}

static void dialogue_default(struct rec *rec, const struct step *steps)
{
    struct smtp_server_config cfg = base_cfg();
    dialogue(&cfg, &all_ops, rec, steps);
}

static bool has_event(const struct rec *rec, const char *needle)
{
    return strstr(rec->events.data, needle) != NULL;
}

#define ASSERT_EVENT(rec, s)                                                                     \
    do {                                                                                         \
        if (!has_event(rec, s))                                                                  \
            fail_msg("event \"%s\" missing from:\n%s", s, (rec)->events.data);                   \
    } while (0)
#define ASSERT_NO_EVENT(rec, s)                                                                  \
    do {                                                                                         \
        if (has_event(rec, s))                                                                   \
            fail_msg("event \"%s\" unexpected in:\n%s", s, (rec)->events.data);                  \
    } while (0)

/* The usual opening of a transaction. */
#define OPEN_TXN                                                                                 \
    S("220 mx.test ESMTP"), C("EHLO client.example"), S("250-mx.test"), S("250-PIPELINING"),     \
        S("250-SIZE 10485760"), S("250-ENHANCEDSTATUSCODES"), S("250-8BITMIME"), S("250-DSN"),   \
        S("250-SMTPUTF8"), S("250 CHUNKING"), C("MAIL FROM:<alice@example.org>"),                \
        S("250 2.1.0 Ok"), C("RCPT TO:<bob@mx.test>"), S("250 2.1.5 Ok")

/* ---- basic commands ---- */

static void test_greeting_and_quit(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        S("220 mx.test ESMTP"), C("NOOP"), S("250 2.0.0 Ok"), C("QUIT"), S("221 2.0.0 Bye"),
        CLOSED, END,
    };
    dialogue_default(&rec, d);
    assert_int_equal(rec.end, SMTP_END_QUIT);
    assert_int_equal(rec.connects, 1);
    rec_free(&rec);
}

static void test_connect_refused(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    rec.refuse_connect = true;
    static const struct step d[] = { S("554 5.7.1 Go away"), CLOSED, END };
    dialogue_default(&rec, d);
    assert_int_equal(rec.end, SMTP_END_REFUSED);
    rec_free(&rec);
}

static void test_ehlo_keywords(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    /* Every feature, with a STARTTLS hook. */
    struct smtp_server_config cfg = base_cfg();
    cfg.vrfy = true;
    static const struct step d1[] = {
        S("220 mx.test ESMTP"), C("EHLO client.example"), S("250-mx.test"), S("250-PIPELINING"),
        S("250-SIZE 10485760"), S("250-VRFY"), S("250-STARTTLS"), S("250-ENHANCEDSTATUSCODES"),
        S("250-8BITMIME"), S("250-DSN"), S("250-SMTPUTF8"), S("250 CHUNKING"), C("HELP"),
        S("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS"),
        END,
    };
    dialogue(&cfg, &tls_ops, &rec, d1);
    /* No optional feature, no size limit, no hook. */
    struct smtp_server_config bare = {
        .hostname = "mx.test", .pregreet_ms = -1, .error_delay_ms = -1,
    };
    static const struct step d2[] = {
        S("220 mx.test ESMTP"), C("EHLO client.example"), S("250-mx.test"), S("250-SIZE"),
        S("250 ENHANCEDSTATUSCODES"), C("HELO client.example"), S("250 mx.test"),
        C("STARTTLS"), S("500 5.5.2"), C("BDAT 0 LAST"), S("500 5.5.2"), END,
    };
    dialogue(&bare, NULL, &rec, d2);
    rec_free(&rec);
}

static void test_helo_validation(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        S("220"),
        C("EHLO"), S("501 5.5.4 Syntax: EHLO hostname"),
        C("HELO   "), S("501 5.5.4 Syntax: HELO hostname"),
        C("EHLO bad\x01name"), S("501 5.5.2 Error: invalid character in hostname"),
        C("EHLO bad\x1b[31mname"), S("501 5.5.2"),
        C("EHLO \xc3\x28"), S("501 5.5.2"),       /* invalid UTF-8 */
        C("EHLO \xc2\x85"), S("501 5.5.2"),       /* C1 control (NEL) */
        C("EHLO "
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        S("501 5.5.2 Error: hostname too long"),
        C("EHLO refused.example"), S("550 5.7.1 Not you"),
        C("MAIL FROM:<a@example.org>"), S("503 5.5.1 Error: send HELO/EHLO first"),
        C("helo [192.0.2.1]"), S("250 mx.test"),
        /* HELO clients may not use ESMTP parameters. */
        C("MAIL FROM:<a@example.org> SIZE=10"), S("555 5.5.4 Error: parameters need EHLO"),
        END,
    };
    dialogue_default(&rec, d);
    ASSERT_EVENT(&rec, "HELO [192.0.2.1]\n");
    assert_int_equal(rec.mails, 0);
    rec_free(&rec);
}

static void test_helo_64k(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct client c;
    struct smtp_server_config cfg = base_cfg();
    start(&c, &cfg, &all_ops, &rec);
    expect(&c, "220", 0);
    size_t n = 64 * 1024;
    char *big = malloc(n + 8);
    memcpy(big, "EHLO ", 5);
    memset(big + 5, 'h', n - 5);
    memcpy(big + n, "\r\n", 2);
    send_bytes(&c, big, n + 2);
    expect(&c, "500 5.5.2 Error: line too long", 1);
    static const struct step d[] = { C("EHLO ok.example"), S("250-mx.test"), END };
    play(&c, d);
    finish(&c);
    assert_int_equal(rec.helos, 1);
    free(big);
    rec_free(&rec);
}

static void test_command_order_and_syntax(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        S("220"),
        C("RCPT TO:<bob@mx.test>"), S("503 5.5.1 Error: need MAIL command"),
        C("DATA"), S("503 5.5.1 Error: need MAIL command"),
        C("EHLO client.example"), S("250-mx.test"), S("250-"), S("250-"), S("250-"), S("250-"),
        S("250-"), S("250-"), S("250 CHUNKING"),
        C("DATA"), S("503 5.5.1 Error: need MAIL command"),
        C("mail from:<alice@example.org>"), S("250 2.1.0 Ok"),
        C("MAIL FROM:<alice@example.org>"), S("503 5.5.1 Error: nested MAIL command"),
        C("DATA"), S("503 5.5.1 Error: need RCPT command"),
        C("DATA extra"), S("501 5.5.4 Syntax: DATA"),
        C("RSET now"), S("501 5.5.4 Syntax: RSET"),
        C("RSET"), S("250 2.0.0 Ok"),
        C("XYZZY"), S("500 5.5.2 Error: command not recognized"),
        C("EXPN staff"), S("500 5.5.2"),
        C(""), S("500 5.5.2"),
        C("VRFY"), S("501 5.5.4"),
        C("VRFY bob"), S("252 2.5.0"),
        /* Bare-LF terminated commands are accepted. */
        RAW("NOOP\n"), S("250 2.0.0 Ok"),
        /* NUL and bare CR in a command are refused. */
        RAW("NO\0OP\r\n"), S("500 5.5.2 Error: command contains a NUL byte or a bare <CR>"),
        RAW("MAIL FROM:<a@b.example>\rRCPT TO:<x@y.example>\r\n"), S("500 5.5.2"),
        C("quit"), S("221 2.0.0 Bye"), CLOSED, END,
    };
    dialogue_default(&rec, d);
    assert_int_equal(rec.mails, 1);
    assert_int_equal(rec.resets, 1); /* the RSET */
    rec_free(&rec);
}

static void test_rfc5321_d1(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    /* RFC 5321 appendix D.1, with our reply texts. */
    static const struct step d[] = {
        S("220 mx.test ESMTP"),
        C("EHLO bar.com"), S("250-mx.test"), S("250-"), S("250-"), S("250-"), S("250-"),
        S("250-"), S("250-"), S("250 "),
        C("MAIL FROM:<Smith@bar.com>"), S("250 2.1.0 Ok"),
        C("RCPT TO:<Jones@foo.com>"), S("250 2.1.5 Ok"),
        C("RCPT TO:<Green@foo.com>"), S("550 5.1.1 No such user here"),
        C("RCPT TO:<Brown@foo.com>"), S("250 2.1.5 Ok"),
        C("DATA"), S("354 End data with <CR><LF>.<CR><LF>"),
        C("Blah blah blah..."), C("...etc. etc. etc."), C("."),
        S("250 2.0.0 Ok: queued as TESTID1"),
        C("QUIT"), S("221 2.0.0 Bye"), CLOSED, END,
    };
    dialogue_default(&rec, d);
    ASSERT_EVENT(&rec, "MAIL <Smith@bar.com>");
    ASSERT_EVENT(&rec, "RCPT <Jones@foo.com>");
    ASSERT_EVENT(&rec, "RCPT <Brown@foo.com>");
    ASSERT_NO_EVENT(&rec, "Green");
    ASSERT_EVENT(&rec, "END 2 rcpt, 37 bytes");
    /* Dot-unstuffed: "...etc" was sent as "...etc" (stuffing only removes
     * one leading dot: the client meant "..etc"). */
    assert_true(strbuf_eq(&rec.last_msg, "Blah blah blah...\r\n..etc. etc. etc.\r\n"));
    assert_int_equal(rec.resets, 1);
    rec_free(&rec);
}

static void test_pipelining(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        S("220"), C("EHLO client.example"), S("250-mx.test"), S("250-"), S("250-"), S("250-"),
        S("250-"), S("250-"), S("250-"), S("250 "),
        /* One write, four commands: four replies in order. */
        RAW("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@mx.test>\r\n"
            "RCPT TO:<Green@mx.test>\r\nRCPT TO:<carol@mx.test>\r\nDATA\r\n"),
        S("250 2.1.0"), S("250 2.1.5"), S("550 5.1.1"), S("250 2.1.5"), S("354"),
        RAW("Subject: t\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n"),
        S("250 2.0.0 Ok: queued as TESTID1"), S("250 2.0.0 Ok"), S("250 2.0.0 Ok"),
        S("221 2.0.0"), CLOSED, END,
    };
    dialogue_default(&rec, d);
    assert_true(strbuf_eq(&rec.last_msg, "Subject: t\r\n\r\nbody\r\n"));
    rec_free(&rec);
}

/* ---- MAIL, RCPT and parameters ---- */

static void test_mail_params(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        S("220"), C("EHLO client.example"), S("250-mx.test"), S("250-"), S("250-"), S("250-"),
        S("250-"), S("250-"), S("250-"), S("250 "),
        C("MAIL FROM:<a@example.org> SIZE=11000000"), S("552 5.3.4 Message size exceeds fixed limit"),
        C("MAIL FROM:<a@example.org> SIZE=99999999999999999999"), S("501 5.5.4 Error: bad SIZE parameter"),
        C("MAIL FROM:<a@example.org> SIZE=123456789012345678901"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> SIZE=12a"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> SIZE="), S("555 5.5.4 Error: malformed parameter"),
        C("MAIL FROM:<a@example.org> SIZE=1 SIZE=2"), S("555 5.5.4 Error: duplicate parameter SIZE"),
        C("MAIL FROM:<a@example.org> FOO=bar"), S("555 5.5.4 Error: unsupported parameter FOO"),
        C("MAIL FROM:<a@example.org> REQUIRETLS"), S("555 5.5.4"),
        C("MAIL FROM:<a@example.org> BODY=BINARYMIME"), S("555 5.5.4 Error: BODY=BINARYMIME is not supported"),
        C("MAIL FROM:<a@example.org> BODY=9BIT"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> RET=ALL"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> SMTPUTF8=yes"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> =x"), S("555 5.5.4"),
        C("MAIL FROM:<a@example.org> SI\x7fZE=1"), S("555 5.5.4"),
        /* xtext newline injection toward queue metadata (BAD-INPUT 3). */
        C("MAIL FROM:<a@example.org> ENVID=abc+0AX-Injected:+20yes"), S("501 5.5.4 Error: bad ENVID parameter: encoded control character"),
        C("MAIL FROM:<a@example.org> ENVID=abc+0D"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> ENVID=abc+00"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> ENVID=abc+1B"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> ENVID=abc+C2+85"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> ENVID=abc+FF"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> ENVID=abc+4"), S("501 5.5.4"),
        C("MAIL FROM:<a@example.org> AUTH=x+0Ay"), S("501 5.5.4 Error: bad AUTH parameter"),
        /* Non-ASCII sender without SMTPUTF8. */
        C("MAIL FROM:<j\xc3\xb6rg@example.org>"), S("553 5.6.7"),
        C("MAIL FROM:<blocked@example.org>"), S("550 5.7.1 Sender blocked"),
        C("MAIL FROM:alice@example.org"), S("501 5.1.7"),
        C("MAIL TO:<alice@example.org>"), S("501 5.5.4"),
        C("MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8 BODY=8BITMIME SIZE=1000 RET=HDRS "
          "ENVID=QQ+2Bid+3D1 AUTH=<>"),
        S("250 2.1.0 Ok"),
        C("RCPT TO:<b@mx.test> NOTIFY=NEVER,SUCCESS"), S("501 5.5.4 Error: bad NOTIFY parameter"),
        C("RCPT TO:<b@mx.test> NOTIFY=SUCCESS,SUCCESS"), S("501 5.5.4"),
        C("RCPT TO:<b@mx.test> NOTIFY="), S("555 5.5.4"),
        C("RCPT TO:<b@mx.test> ORCPT=rfc822"), S("501 5.5.4"),
        C("RCPT TO:<b@mx.test> ORCPT=rfc822;b+0D+0A@x"), S("501 5.5.4 Error: bad ORCPT parameter: encoded control character"),
        C("RCPT TO:<b@mx.test> ORCPT=rf/c;b@x"), S("501 5.5.4"),
        C("RCPT TO:<b@mx.test> SIZE=1"), S("555 5.5.4"),
        C("RCPT TO:<b@mx.test> NOTIFY=NEVER NOTIFY=NEVER"), S("555 5.5.4"),
        C("RCPT TO:<\"\"@mx.test>"), S("501 5.1.3"),
        C("RCPT TO:<b@mx.test> NOTIFY=success,Delay ORCPT=RFC822;b+40mx.test"), S("250 2.1.5"),
        C("RCPT TO:<c\xc3\xa9@mx.test> NOTIFY=NEVER"), S("250 2.1.5"),
        C("RCPT TO:<Postmaster>"), S("250 2.1.5"),
        END,
    };
    struct smtp_server_config cfg = base_cfg();
    cfg.hard_errors = -1; /* many refusals in one session on purpose */
    dialogue(&cfg, &all_ops, &rec, d);
    assert_int_equal(rec.mails, 2);
    ASSERT_EVENT(&rec, "MAIL <j\xc3\xb6rg@example.org> size=1000 body=2 utf8=1 ret=2 envid=QQ+id=1 auth=<>");
    ASSERT_EVENT(&rec, "RCPT <b@mx.test> notify=10 orcpt=rfc822;b@mx.test\n");
    ASSERT_EVENT(&rec, "RCPT <c\xc3\xa9@mx.test> notify=1 orcpt=;\n");
    ASSERT_NO_EVENT(&rec, "Injected");
    rec_free(&rec);
}

static void test_rcpt_limit_10k(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.max_rcpt = 100;
    cfg.rcpt_overshoot = 20000;
    struct client c;
    start(&c, &cfg, &all_ops, &rec);
    static const struct step d[] = { OPEN_TXN, END };
    play(&c, d);
    /* 9,999 more recipients in one pipelined burst, written by a thread
     * while the replies are read here. */
    strbuf burst;
    strbuf_init(&burst);
    for (int i = 1; i < 10000; i++)
        strbuf_printf(&burst, "RCPT TO:<user%d@mx.test>\r\n", i);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        send_bytes(&c, burst.data, burst.len);
        _exit(0);
    }
    strbuf line;
    strbuf_init(&line);
    for (int i = 1; i < 10000; i++) {
        assert_true(reply_line(&c, &line));
        if (i < 100)
            assert_true(strncmp(line.data, "250 2.1.5", 9) == 0);
        else if (strncmp(line.data, "452 4.5.3 Error: too many recipients", 36) != 0)
            fail_msg("recipient %d: %s", i, line.data);
    }
    waitpid(pid, NULL, 0);
    static const struct step d2[] = { C("QUIT"), S("221"), END };
    play(&c, d2);
    finish(&c);
    assert_int_equal(rec.rcpts, 100);
    strbuf_free(&line);
    strbuf_free(&burst);
    rec_free(&rec);
}

static void test_rcpt_overshoot_counts_later(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.max_rcpt = 1;
    cfg.rcpt_overshoot = 1;
    cfg.soft_errors = -1;
    cfg.hard_errors = 2;
    static const struct step d[] = {
        OPEN_TXN,
        C("RCPT TO:<c@mx.test>"), S("452 4.5.3"),  /* overshoot: not counted */
        C("RCPT TO:<d@mx.test>"), S("452 4.5.3"),  /* error 1 */
        C("RCPT TO:<e@mx.test>"), S("452 4.5.3"),  /* error 2: the limit */
        S("421 4.7.0 mx.test Error: too many errors"), CLOSED, END,
    };
    dialogue(&cfg, &all_ops, &rec, d);
    assert_int_equal(rec.end, SMTP_END_ERRORS);
    assert_int_equal(rec.resets, 1);
    rec_free(&rec);
}

/* ---- DATA ---- */

static void test_data_content_exact(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        OPEN_TXN, C("DATA"), S("354"),
        RAW(".leading dot\r\n..\r\n...\r\ntab\tand 8-bit \xc3\xa9\r\n\r\n.\r\n"),
        S("250 2.0.0 Ok: queued as TESTID1"),
        /* An empty message, from the null sender. */
        C("MAIL FROM:<>"), S("250 2.1.0"), C("RCPT TO:<bob@mx.test>"), S("250 2.1.5"),
        C("DATA"), S("354"), C("."), S("250 2.0.0 Ok: queued as TESTID2"),
        END,
    };
    dialogue_default(&rec, d);
    ASSERT_EVENT(&rec, "MAIL <> ");
    assert_int_equal(rec.data_ends, 2);
    assert_int_equal(rec.last_msg.len, 0);
    ASSERT_EVENT(&rec, "END 1 rcpt, 40 bytes");
    rec_free(&rec);
}

static void test_data_long_line_kept(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    struct client c;
    start(&c, &cfg, &all_ops, &rec);
    static const struct step d[] = { OPEN_TXN, C("DATA"), S("354"), END };
    play(&c, d);
    /* A 300 KB line, with a dot at a piece boundary and a final CRLF. */
    size_t n = 300 * 1024;
    char *big = malloc(n + 8);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[8192] = '.';
    memcpy(big + n, "\r\n.\r\n", 5);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        send_bytes(&c, big, n + 5);
        _exit(0);
    }
    expect(&c, "250 2.0.0 Ok: queued", 0);
    waitpid(pid, NULL, 0);
    finish(&c);
    assert_int_equal(rec.last_msg.len, n + 2);
    assert_memory_equal(rec.last_msg.data, big, n + 2);
    free(big);
    rec_free(&rec);
}

/* SMTP smuggling (2023): each payload carries a second message behind a
 * fake end of data. The session must end with 521 at the bare LF or CR,
 * the first message be aborted, and the second never seen. */
static void test_smuggling_variants(void **state)
{
    (void)state;
    static const char *const fake_ends[] = {
        "\n.\r\n",       /* <LF>.<CR><LF> */
        "\r\n.\n",       /* <CR><LF>.<LF> */
        "\n.\n",         /* <LF>.<LF> */
        "\r.\r\n",       /* <CR>.<CR><LF> */
        "\r\n.\r",       /* <CR><LF>.<CR> */
        "\r.\r",         /* <CR>.<CR> */
        "\r\n.\r\r\n",   /* ".<CR>" then CRLF */
        "\r\n\n.\r\n",   /* an empty line ended by a bare LF */
        "\r",            /* a lone CR mid-line */
        "\n",            /* a lone LF */
    };
    static const char smuggled[] = "MAIL FROM:<evil@attacker.example>\r\n"
                                   "RCPT TO:<victim@mx.test>\r\nDATA\r\n"
                                   "From: ceo@mx.test\r\n\r\nsmuggled\r\n.\r\n";
    for (size_t i = 0; i < sizeof(fake_ends) / sizeof(fake_ends[0]); i++) {
        struct rec rec;
        rec_init(&rec);
        struct smtp_server_config cfg = base_cfg();
        struct client c;
        start(&c, &cfg, &all_ops, &rec);
        static const struct step d[] = { OPEN_TXN, C("DATA"), S("354"), END };
        play(&c, d);
        strbuf payload;
        strbuf_init(&payload);
        strbuf_appends(&payload, "Subject: first\r\n\r\nhello");
        strbuf_appends(&payload, fake_ends[i]);
        strbuf_appends(&payload, smuggled);
        strbuf_appends(&payload, "\r\n.\r\nQUIT\r\n");
        send_bytes(&c, payload.data, payload.len);
        expect(&c, "521 5.5.2 mx.test Error: bare <LF> or <CR> received in message content",
               (int)i);
        expect_closed(&c, (int)i);
        finish(&c);
        if (rec.mails != 1 || rec.data_ends != 0 || rec.aborts != 1)
            fail_msg("variant %zu: mails %d ends %d aborts %d", i, rec.mails, rec.data_ends,
                     rec.aborts);
        ASSERT_NO_EVENT(&rec, "evil");
        ASSERT_NO_EVENT(&rec, "victim");
        assert_int_equal(rec.end, SMTP_END_PROTOCOL);
        assert_int_equal(rec.resets, 1);
        strbuf_free(&payload);
        rec_free(&rec);
    }
}

static void test_nul_in_data(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        OPEN_TXN, C("DATA"), S("354"), RAW("a\0b\r\nmore\r\n.\r\n"),
        S("554 5.6.0 Error: NUL byte in message content"),
        /* The session goes on. */
        C("MAIL FROM:<alice@example.org>"), S("250 2.1.0"), END,
    };
    dialogue_default(&rec, d);
    assert_int_equal(rec.data_ends, 0);
    assert_int_equal(rec.aborts, 1);
    assert_int_equal(rec.sink_bytes, 0);
    rec_free(&rec);
}

static void test_sink_failure(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    rec.sink_fail = true;
    static const struct step d[] = {
        OPEN_TXN, C("DATA"), S("354"), C("line"), C("."),
        S("452 4.3.1 Insufficient system storage"), C("NOOP"), S("250"), END,
    };
    dialogue_default(&rec, d);
    assert_int_equal(rec.data_ends, 0);
    assert_int_equal(rec.aborts, 1);
    ASSERT_EVENT(&rec, "ABORT storage failed");
    rec_free(&rec);
}

static void test_size_limit_5mb(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.size_limit = 1000000;
    struct client c;
    start(&c, &cfg, &all_ops, &rec);
    static const struct step d[] = {
        S("220"), C("EHLO c.example"), S("250-mx.test"), S("250-"), S("250-SIZE 1000000"),
        S("250-"), S("250-"), S("250-"), S("250-"), S("250 "),
        C("MAIL FROM:<a@example.org>"), S("250"), C("RCPT TO:<b@mx.test>"), S("250"),
        C("DATA"), S("354"), END,
    };
    play(&c, d);
    strbuf big;
    strbuf_init(&big);
    while (big.len < 5 * 1024 * 1024)
        strbuf_appends(&big, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
    strbuf_appends(&big, ".\r\n");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        send_bytes(&c, big.data, big.len);
        _exit(0);
    }
    expect(&c, "552 5.3.4 Error: message too large", 0);
    waitpid(pid, NULL, 0);
    static const struct step d2[] = {
        C("MAIL FROM:<a@example.org>"), S("250"), C("QUIT"), S("221"), END,
    };
    play(&c, d2);
    finish(&c);
    assert_true(rec.sink_bytes <= 1000000);
    assert_int_equal(rec.data_ends, 0);
    assert_int_equal(rec.aborts, 1);
    ASSERT_EVENT(&rec, "ABORT message too large");
    strbuf_free(&big);
    rec_free(&rec);
}

/* ---- timeouts, disconnects, limits ---- */

static void test_timeouts(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.cmd_timeout_ms = 200;
    static const struct step d[] = {
        S("220"), RAW("NOOP"), S("421 4.4.2 mx.test Error: timeout exceeded"), CLOSED, END,
    };
    dialogue(&cfg, &all_ops, &rec, d);
    assert_int_equal(rec.end, SMTP_END_TIMEOUT);
    rec_free(&rec);

    rec_init(&rec);
    cfg = base_cfg();
    cfg.data_timeout_ms = 200;
    static const struct step d2[] = {
        OPEN_TXN, C("DATA"), S("354"), RAW("partial line"),
        S("421 4.4.2 mx.test Error: timeout exceeded"), CLOSED, END,
    };
    dialogue(&cfg, &all_ops, &rec, d2);
    assert_int_equal(rec.end, SMTP_END_TIMEOUT);
    assert_int_equal(rec.aborts, 1);
    assert_int_equal(rec.data_ends, 0);
    rec_free(&rec);
}

static void test_disconnect_in_each_state(void **state)
{
    (void)state;
    static const struct step greeted[] = { S("220"), END };
    static const struct step helo[] = { S("220"), C("HELO c.example"), S("250"), END };
    static const struct step mail[] = {
        S("220"), C("HELO c.example"), S("250"), C("MAIL FROM:<a@example.org>"), S("250"), END,
    };
    static const struct step rcpt[] = { OPEN_TXN, END };
    static const struct step data[] = { OPEN_TXN, C("DATA"), S("354"), RAW("Subject: x\r\n"), END };
    static const struct step data_dot[] = { OPEN_TXN, C("DATA"), S("354"), RAW("x\r\n."), END };
    static const struct step bdat[] = { OPEN_TXN, RAW("BDAT 100 LAST\r\nhalf"), END };
    static const struct step bdat2[] = {
        OPEN_TXN, RAW("BDAT 3\r\na\r\n"), S("250 2.0.0 3 octets"), END,
    };
    static const struct step cmd_half[] = { OPEN_TXN, RAW("RCPT TO:<x@"), END };
    const struct {
        const struct step *steps;
        int resets, aborts;
    } cases[] = {
        { greeted, 0, 0 }, { helo, 0, 0 }, { mail, 1, 0 }, { rcpt, 1, 0 },
        { data, 1, 1 }, { data_dot, 1, 1 }, { bdat, 1, 1 }, { bdat2, 1, 1 }, { cmd_half, 1, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rec rec;
        rec_init(&rec);
        dialogue_default(&rec, cases[i].steps);
        if (rec.resets != cases[i].resets || rec.aborts != cases[i].aborts || rec.data_ends != 0)
            fail_msg("case %zu: resets %d aborts %d ends %d", i, rec.resets, rec.aborts,
                     rec.data_ends);
        assert_int_equal(rec.end, SMTP_END_DISCONNECT);
        rec_free(&rec);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_error_limits(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.soft_errors = 2;
    cfg.hard_errors = 4;
    cfg.error_delay_ms = 150;
    static const struct step d[] = {
        S("220"), RAW("X1\r\nX2\r\nX3\r\nNOOP\r\nX4\r\nNOOP\r\n"),
        S("500 5.5.2"), S("500 5.5.2"), S("500 5.5.2"), S("250 2.0.0"), S("500 5.5.2"),
        S("421 4.7.0 mx.test Error: too many errors"), CLOSED, END,
    };
    double t0 = now_s();
    dialogue(&cfg, &all_ops, &rec, d);
    double took = now_s() - t0;
    /* Errors 3 and 4 came after the soft limit: two delays. */
    if (took < 0.29)
        fail_msg("error replies were not delayed (%.3f s)", took);
    assert_int_equal(rec.end, SMTP_END_ERRORS);
    rec_free(&rec);
}

static void test_pregreet(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.pregreet_ms = 300;
    struct client c;
    /* The client speaks first. */
    start(&c, &cfg, &all_ops, &rec);
    send_bytes(&c, "EHLO early.example\r\n", 20);
    static const struct step d[] = {
        S("554 5.5.1 Protocol error: talked before the greeting"), CLOSED, END,
    };
    play(&c, d);
    finish(&c);
    assert_int_equal(rec.end, SMTP_END_PREGREET);
    assert_int_equal(rec.connects, 0);
    assert_int_equal(rec.helos, 0);
    rec_free(&rec);

    /* A patient client gets the banner after the wait. */
    rec_init(&rec);
    cfg.pregreet_ms = 50;
    static const struct step ok[] = { S("220 mx.test"), C("QUIT"), S("221"), END };
    dialogue(&cfg, &all_ops, &rec, ok);
    assert_int_equal(rec.end, SMTP_END_QUIT);
    rec_free(&rec);
}

static void test_megabyte_command(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    struct client c;
    start(&c, &cfg, &all_ops, &rec);
    static const struct step d[] = { S("220"), C("EHLO c.example"), S("250-"), END };
    play(&c, d);
    strbuf line;
    strbuf_init(&line);
    size_t n = 1024 * 1024;
    strbuf_appends(&line, "MAIL FROM:<");
    while (line.len < n)
        strbuf_appendc(&line, 'a');
    strbuf_appends(&line, "@example.org>\r\n");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        send_bytes(&c, line.data, line.len);
        _exit(0);
    }
    strbuf r;
    strbuf_init(&r);
    for (;;) { /* skip the rest of the EHLO reply */
        assert_true(reply_line(&c, &r));
        if (strncmp(r.data, "250 ", 4) == 0)
            break;
    }
    expect(&c, "500 5.5.2 Error: line too long", 0);
    waitpid(pid, NULL, 0);
    static const struct step d2[] = { C("NOOP"), S("250 2.0.0 Ok"), END };
    play(&c, d2);
    finish(&c);
    assert_int_equal(rec.mails, 0);
    strbuf_free(&r);
    strbuf_free(&line);
    rec_free(&rec);
}

/* ---- STARTTLS and hooks ---- */

static void test_starttls_injection(void **state)
{
    (void)state;
    for (int sw = 0; sw < 2; sw++) {
        struct rec rec;
        rec_init(&rec);
        rec.starttls_switch = sw == 1;
        struct smtp_server_config cfg = base_cfg();
        static const struct step d[] = {
            S("220"), C("EHLO c.example"), S("250-mx.test"), S("250-PIPELINING"), S("250-SIZE"),
            S("250-STARTTLS"), S("250-ENHANCEDSTATUSCODES"), S("250-"), S("250-"), S("250-"),
            S("250 CHUNKING"),
            /* CVE-2011-0411: commands pipelined behind STARTTLS in plaintext. */
            RAW("STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<v@mx.test>\r\n"),
            S("220 2.0.0 Ready to start TLS"),
            /* "Inside TLS" now: the state was reset, EHLO needed again. */
            C("MAIL FROM:<alice@example.org>"), S("503 5.5.1 Error: send HELO/EHLO first"),
            C("EHLO c.example"), S("250-mx.test"), S("250-PIPELINING"), S("250-SIZE"),
            S("250-AUTH PLAIN"), S("250-ENHANCEDSTATUSCODES"), S("250-"), S("250-"), S("250-"),
            S("250 CHUNKING"),
            C("STARTTLS"), S("503 5.5.1 Error: TLS already active"),
            C("AUTH PLAIN"), S("334 "), C("AGJvYgBzZWNyZXQ="), S("235 2.7.0"),
            C("MAIL FROM:<alice@example.org>"), S("250 2.1.0"),
            C("QUIT"), S("221"), END,
        };
        dialogue(&cfg, &tls_ops, &rec, d);
        assert_int_equal(rec.starttls, 1);
        assert_int_equal(rec.mails, 1);
        ASSERT_NO_EVENT(&rec, "evil");
        ASSERT_NO_EVENT(&rec, "<v@mx.test>");
        ASSERT_EVENT(&rec, "user=bob");
        rec_free(&rec);
    }
}

static void test_starttls_syntax_and_reset(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    static const struct step d[] = {
        S("220"), C("STARTTLS now"), S("501 5.5.4 Syntax: STARTTLS"),
        C("HELO c.example"), S("250"), C("MAIL FROM:<a@example.org>"), S("250"),
        C("STARTTLS"), S("220 2.0.0"), C("RCPT TO:<b@mx.test>"), S("503 5.5.1 Error: need MAIL"),
        C("AUTH CRAM-MD5"), S("504 5.5.4"), END,
    };
    dialogue(&cfg, &tls_ops, &rec, d);
    assert_int_equal(rec.resets, 1); /* the transaction before STARTTLS */
    rec_free(&rec);
}

/* ---- BDAT ---- */

static void test_bdat(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    static const struct step d[] = {
        OPEN_TXN,
        /* A CRLF split across chunks is fine. */
        RAW("BDAT 6\r\nhello\r"), S("250 2.0.0 6 octets received"),
        RAW("bdat 8 last\r\n\nworld\r\n"), S("250 2.0.0 Ok: queued as TESTID1"),
        /* BDAT LAST twice: no transaction any more; the bytes are skipped. */
        RAW("BDAT 5 LAST\r\nNOOP\n"), S("503 5.5.1 Error: need MAIL command"),
        C("NOOP"), S("250 2.0.0 Ok"),
        /* BDAT 0 LAST: an empty message. */
        C("MAIL FROM:<a@example.org>"), S("250"), C("RCPT TO:<b@mx.test>"), S("250"),
        C("BDAT 0 LAST"), S("250 2.0.0 Ok: queued as TESTID2"),
        /* DATA after BDAT in one transaction. */
        C("MAIL FROM:<a@example.org>"), S("250"), C("RCPT TO:<b@mx.test>"), S("250"),
        RAW("BDAT 3\r\nab\r"), S("250 2.0.0 3 octets"), C("DATA"), S("503 5.5.1 Error: DATA after BDAT"),
        RAW("BDAT 1 LAST\r\n\n"), S("250 2.0.0 Ok: queued as TESTID3"),
        /* BDAT with MAIL but no RCPT. */
        C("MAIL FROM:<a@example.org>"), S("250"), RAW("BDAT 4\r\nQUIT"),
        S("503 5.5.1 Error: need RCPT command"), C("RSET"), S("250"),
        /* Bare LF in BDAT content. */
        C("MAIL FROM:<a@example.org>"), S("250"), C("RCPT TO:<b@mx.test>"), S("250"),
        RAW("BDAT 7 LAST\r\nab\ncd\r\n"), S("554 5.6.0 Error: bare <CR> or <LF>"),
        /* NUL in BDAT content. */
        C("MAIL FROM:<a@example.org>"), S("250"), C("RCPT TO:<b@mx.test>"), S("250"),
        RAW("BDAT 4\r\na\0\r\n"), S("554 5.6.0 Error: NUL byte"),
        RAW("BDAT 2 LAST\r\nxx"), S("503"),
        C("QUIT"), S("221"), END,
    };
    dialogue_default(&rec, d);
    assert_int_equal(rec.data_ends, 3);
    assert_int_equal(rec.aborts, 2);
    assert_true(strbuf_eq(&rec.last_msg, "ab\r\n"));
    ASSERT_EVENT(&rec, "END 1 rcpt, 14 bytes");
    ASSERT_EVENT(&rec, "END 1 rcpt, 0 bytes");
    rec_free(&rec);
}

static void test_bdat_fatal(void **state)
{
    (void)state;
    /* Sizes that cannot be skipped end the session. */
    static const struct step nonnum[] = {
        S("220"), C("EHLO c.example"), EHLO_DONE, C("BDAT abc"),
        S("501 5.5.4 Syntax: BDAT size [LAST]"), CLOSED, END,
    };
    static const struct step overflow[] = {
        S("220"), C("EHLO c.example"), EHLO_DONE, C("BDAT 123456789012345678901 LAST"),
        S("501 5.5.4"), CLOSED, END,
    };
    static const struct step junk[] = {
        S("220"), C("EHLO c.example"), EHLO_DONE, C("BDAT 10 LASTX"), S("501 5.5.4"), CLOSED, END,
    };
    static const struct step huge_nomail[] = {
        S("220"), C("EHLO c.example"), EHLO_DONE, C("BDAT 9223372036854775808 LAST"),
        S("503 5.5.1 Error: need MAIL command; closing"), CLOSED, END,
    };
    static const struct step huge[] = {
        OPEN_TXN, C("BDAT 9223372036854775808 LAST"), S("552 5.3.4 Error: message too large"),
        CLOSED, END,
    };
    const struct step *cases[] = { nonnum, overflow, junk, huge_nomail, huge };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rec rec;
        rec_init(&rec);
        dialogue_default(&rec, cases[i]);
        assert_int_equal(rec.end, SMTP_END_PROTOCOL);
        assert_int_equal(rec.data_ends, 0);
        rec_free(&rec);
    }
}

static void test_bdat_size_limit(void **state)
{
    (void)state;
    struct rec rec;
    rec_init(&rec);
    struct smtp_server_config cfg = base_cfg();
    cfg.size_limit = 10;
    static const struct step d[] = {
        S("220"), C("EHLO c.example"), S("250-"), S("250-"), S("250-SIZE 10"), EHLO_DONE,
        C("MAIL FROM:<a@example.org>"), S("250"), C("RCPT TO:<b@mx.test>"), S("250"),
        RAW("BDAT 8\r\n1234567\r"), S("250 2.0.0 8 octets"),
        RAW("BDAT 8\r\n\n23456\r\n"), S("552 5.3.4 Error: message too large"),
        /* The transaction is gone; further chunks are skipped. */
        RAW("BDAT 2 LAST\r\n\r\n"), S("503"), C("NOOP"), S("250"), END,
    };
    dialogue(&cfg, &all_ops, &rec, d);
    assert_true(rec.sink_bytes <= 10);
    assert_int_equal(rec.aborts, 1);
    assert_int_equal(rec.data_ends, 0);
    rec_free(&rec);
}

/* ---- xtext ---- */

static void test_xtext(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    const char *why = NULL;
    assert_int_equal(xtext_decode("a+2Bb+3dc", 9, 0, &out, &why), 0);
    assert_true(strbuf_eq(&out, "a+b=c"));
    assert_int_equal(xtext_decode("caf+C3+A9", 9, 0, &out, &why), 0);
    assert_true(strbuf_eq(&out, "caf\xc3\xa9"));
    static const char *const bad[] = {
        "a+0A", "a+0D", "+00", "+7F", "+1B", "+C2+85", "+FF", "+C3", "a+", "a+4", "a+GG",
        "a=b", "a b", "caf\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (xtext_decode(bad[i], strlen(bad[i]), 0, &out, &why) == 0)
            fail_msg("xtext \"%s\" accepted", bad[i]);
        assert_non_null(why);
    }
    assert_int_equal(xtext_decode("abcd", 4, 3, &out, &why), -1);
    assert_string_equal(why, "value too long");
    assert_int_equal(xtext_decode("abc\0", 4, 0, &out, &why), -1);
    strbuf_reset(&out);
    xtext_encode(&out, "a+b=c d\r\n\xc3\xa9", 11);
    assert_true(strbuf_eq(&out, "a+2Bb+3Dc+20d+0D+0A+C3+A9"));
    strbuf enc;
    strbuf_init(&enc);
    assert_int_equal(xtext_decode(out.data, out.len, 0, &enc, &why), -1); /* CR LF inside */
    strbuf_free(&enc);
    strbuf_free(&out);
}

static void test_end_names(void **state)
{
    (void)state;
    assert_string_equal(smtp_end_str(SMTP_END_TIMEOUT), "timeout");
    assert_string_equal(smtp_end_str((enum smtp_end)99), "unknown");
}

int main(void)
{
    tls_ops = all_ops;
    tls_ops.on_starttls = on_starttls;
    log_set_level(LOG_LEVEL_ERROR); /* the engine's warnings are expected here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_and_quit),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_ehlo_keywords),
        cmocka_unit_test(test_helo_validation),
        cmocka_unit_test(test_helo_64k),
        cmocka_unit_test(test_command_order_and_syntax),
        cmocka_unit_test(test_rfc5321_d1),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_mail_params),
        cmocka_unit_test(test_rcpt_limit_10k),
        cmocka_unit_test(test_rcpt_overshoot_counts_later),
        cmocka_unit_test(test_data_content_exact),
        cmocka_unit_test(test_data_long_line_kept),
        cmocka_unit_test(test_smuggling_variants),
        cmocka_unit_test(test_nul_in_data),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_size_limit_5mb),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_disconnect_in_each_state),
        cmocka_unit_test(test_error_limits),
        cmocka_unit_test(test_pregreet),
        cmocka_unit_test(test_megabyte_command),
        cmocka_unit_test(test_starttls_injection),
        cmocka_unit_test(test_starttls_syntax_and_reset),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_bdat_fatal),
        cmocka_unit_test(test_bdat_size_limit),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_end_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
