/*
 * session.c - the ESMTP dialogue with the next hops of one destination
 * (RFC 5321): connect to each address of the route in turn until one
 * session gets as far as MAIL FROM, then EHLO (HELO when EHLO is refused),
 * STARTTLS as smtp_tls_security_level asks, MAIL/RCPT/DATA (in one write
 * when the server offers PIPELINING), the content with dot-stuffing, QUIT.
 *
 * Failures before MAIL FROM (connect, greeting, EHLO, TLS) move on to the
 * next address; once MAIL FROM was sent the session decides: 2xx sent, 4xx
 * deferred, 5xx bounced, per recipient, with the server's own text in the
 * reason ("host mx.b.org[10.0.0.2] said: 550 5.1.1 no such user (in reply
 * to RCPT TO command)"). A broken session (timeout, lost connection, a
 * malformed or oversized reply) defers every recipient not yet answered.
 * Each stage has its own time limit (smtp_*_timeout, RFC 5321 4.5.3.2).
 */
#include "smtpc.h"
#include "mail/queue_file.h"
#include "smtp/xtext.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum {
    F_PIPELINING = 0x01,
    F_SIZE = 0x02,
    F_8BITMIME = 0x04,
    F_SMTPUTF8 = 0x08,
    F_DSN = 0x10,
    F_STARTTLS = 0x20,
};

struct sess {
    const struct smtpc_settings *s;
    const struct smtpc_msg *msg;
    const struct smtpc_target *t;
    int fd;
    struct netio *io;
    struct tls_conn *tls;
    strbuf peer; /* "mx.b.org[10.0.0.2]" */
    unsigned feat;
    uint64_t size_max;
    struct smtp_reply rep;
    strbuf err;
    bool timeout;
    bool broken; /* a read failed: the stream is out of step, no QUIT */
};

/* Writes one command line and, unless batching, flushes. */
static int send_cmd(struct sess *x, int timeout_ms, bool flush, const char *cmd)
{
    netio_set_write_timeout(x->io, timeout_ms);
    if (netio_puts(x->io, cmd) < 0 || netio_puts(x->io, "\r\n") < 0 ||
        (flush && netio_flush(x->io) < 0)) {
        strbuf_reset(&x->err);
        strbuf_printf(&x->err, "%s", errno == ETIMEDOUT ? "timed out while sending a command"
                                                          : "lost connection");
        return -1;
    }
    return 0;
}

static int read_reply(struct sess *x, int timeout_ms)
{
    strbuf_reset(&x->err);
    if (smtp_reply_read(x->io, timeout_ms, &x->rep, &x->err, &x->timeout) < 0) {
        x->broken = true;
        return -1;
    }
    return 0;
}

/* A result from the last reply: class 2 sent, 4 deferred, 5 bounced. */
static void result_from_reply(struct sess *x, struct smtpc_result *r, const char *stage)
{
    int cls = x->rep.code / 100;
    if (cls == 2)
        smtpc_result_set(r, DELIVERY_SENT, x->rep.dsn, "delivered to %s:%d: %d %s",
                         x->peer.data, smtpc_addr_port(&x->t->addr), x->rep.code,
                         x->rep.text.data);
    else
        smtpc_result_set(r, cls == 5 ? DELIVERY_BOUNCED : DELIVERY_DEFERRED,
                         cls == 5 || cls == 4 ? x->rep.dsn : "4.5.0",
                         "host %s said: %d %s (in reply to %s)", x->peer.data, x->rep.code,
                         x->rep.text.data, stage);
}

/* A failure that lets the next address be tried: always deferred. */
static void fail_from_reply(struct sess *x, struct smtpc_result *fail, const char *what,
                            const char *stage)
{
    char dsn[16];
    snprintf(dsn, sizeof(dsn), "%s", x->rep.dsn);
    dsn[0] = '4';
    smtpc_result_set(fail, DELIVERY_DEFERRED, dsn, "host %s %s: %d %s (in reply to %s)",
                     x->peer.data, what, x->rep.code, x->rep.text.data, stage);
}

static void fail_broken(struct sess *x, struct smtpc_result *fail, const char *stage)
{
    smtpc_result_set(fail, DELIVERY_DEFERRED, x->timeout ? "4.4.2" : "4.5.0",
                     "conversation with %s failed: %s (%s)", x->peer.data, x->err.data, stage);
}

static void parse_ehlo(struct sess *x)
{
    x->feat = 0;
    x->size_max = 0;
    const char *p = x->rep.lines.data;
    const char *nl = strchr(p, '\n'); /* the first line is the greeting text */
    for (p = nl ? nl + 1 : p + strlen(p); *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t kw = 0;
        while (kw < len && p[kw] != ' ' && p[kw] != '=')
            kw++;
#define IS(name) (kw == strlen(name) && strncasecmp(p, name, kw) == 0)
        if (IS("PIPELINING"))
            x->feat |= F_PIPELINING;
        else if (IS("8BITMIME"))
            x->feat |= F_8BITMIME;
        else if (IS("SMTPUTF8"))
            x->feat |= F_SMTPUTF8;
        else if (IS("DSN"))
            x->feat |= F_DSN;
        else if (IS("STARTTLS"))
            x->feat |= F_STARTTLS;
        else if (IS("SIZE")) {
            x->feat |= F_SIZE;
            if (kw < len) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(p + kw + 1, &end, 10);
                if (errno == 0 && end > p + kw + 1 && (size_t)(end - p) <= len)
                    x->size_max = v;
            }
        }
#undef IS
    }
}

/* EHLO, falling back to HELO on 5xx. 0, or -1 with *fail set. */
static int hello(struct sess *x, struct smtpc_result *fail)
{
    strbuf cmd;
    strbuf_init(&cmd);
    strbuf_printf(&cmd, "EHLO %s", x->s->myhostname);
    int rc = -1;
    if (send_cmd(x, x->s->helo_ms, true, cmd.data) < 0 || read_reply(x, x->s->helo_ms) < 0) {
        fail_broken(x, fail, "in reply to EHLO");
        goto out;
    }
    if (x->rep.code / 100 == 2) {
        parse_ehlo(x);
        rc = 0;
        goto out;
    }
    if (x->rep.code / 100 != 5) {
        fail_from_reply(x, fail, "refused to talk to me", "EHLO");
        goto out;
    }
    strbuf_reset(&cmd);
    strbuf_printf(&cmd, "HELO %s", x->s->myhostname);
    if (send_cmd(x, x->s->helo_ms, true, cmd.data) < 0 || read_reply(x, x->s->helo_ms) < 0) {
        fail_broken(x, fail, "in reply to HELO");
        goto out;
    }
    if (x->rep.code / 100 != 2) {
        fail_from_reply(x, fail, "refused to talk to me", "HELO");
        goto out;
    }
    x->feat = 0;
    rc = 0;
out:
    strbuf_free(&cmd);
    return rc;
}

/* STARTTLS when offered and wanted. 0 (TLS on, or plaintext allowed), or -1
 * with *fail set. */
static int starttls(struct sess *x, struct smtpc_result *fail)
{
    const struct smtpc_settings *s = x->s;
    bool required = s->tls_level >= TLS_LEVEL_ENCRYPT;
    if (s->tls_level == TLS_LEVEL_NONE)
        return 0;
    if (!(x->feat & F_STARTTLS) || s->tls_ctx == NULL) {
        if (!required)
            return 0;
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.4",
                         s->tls_ctx ? "TLS is required, but was not offered by host %s"
                                    : "TLS is required, but the TLS client could not be set up "
                                      "(see the log) for host %s",
                         x->peer.data);
        return -1;
    }
    if (send_cmd(x, s->helo_ms, true, "STARTTLS") < 0 || read_reply(x, s->helo_ms) < 0) {
        fail_broken(x, fail, "in reply to STARTTLS");
        return -1;
    }
    if (x->rep.code != 220) {
        if (!required)
            return 0;
        fail_from_reply(x, fail, "refused STARTTLS", "STARTTLS");
        return -1;
    }
    /* A server that sent anything after its 220 is attacking the client
     * side of STARTTLS (BAD-INPUT row 5): the bytes are dropped by the
     * switch, and the session is given up. */
    if (netio_pending(x->io) > 0) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.5",
                         "host %s sent plaintext after its STARTTLS reply", x->peer.data);
        return -1;
    }
    struct tls_client_opts o = { .level = s->tls_level, .peername = x->t->host };
    strbuf_reset(&x->err);
    x->tls = tls_client_start(x->io, s->tls_ctx, &o, s->helo_ms, &x->err);
    if (x->tls == NULL) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.5", "TLS handshake with %s failed: %s",
                         x->peer.data, x->err.data);
        return -1;
    }
    strbuf d;
    strbuf_init(&d);
    tls_describe(x->tls, &d);
    log_event(x->msg->id, "%s TLS connection established to %s:%d: %s",
              tls_conn_verified(x->tls) ? "Verified" : "Untrusted", x->peer.data,
              smtpc_addr_port(&x->t->addr), d.data);
    strbuf_free(&d);
    return hello(x, fail);
}

static bool needs_smtputf8(const struct smtpc_msg *m, const struct smtpc_rcpt *r, size_t n)
{
    for (const char *p = m->sender; *p; p++)
        if (*p & 0x80)
            return true;
    for (size_t i = 0; i < n; i++)
        for (const char *p = r[i].address; *p; p++)
            if (*p & 0x80)
                return true;
    return false;
}

static void mail_cmd(struct sess *x, bool utf8, strbuf *cmd)
{
    const struct queue_file *qf = x->msg->qf;
    strbuf_printf(cmd, "MAIL FROM:<%s>", x->msg->sender);
    if (x->feat & F_SIZE)
        strbuf_printf(cmd, " SIZE=%" PRIu64, qf->content_length);
    if ((x->feat & F_8BITMIME) && x->msg->eightbit)
        strbuf_appends(cmd, " BODY=8BITMIME");
    if (utf8)
        strbuf_appends(cmd, " SMTPUTF8");
    if (x->feat & F_DSN) {
        if (qf->ret == QUEUE_RET_FULL)
            strbuf_appends(cmd, " RET=FULL");
        else if (qf->ret == QUEUE_RET_HDRS)
            strbuf_appends(cmd, " RET=HDRS");
        if (qf->envid && *qf->envid) {
            strbuf_appends(cmd, " ENVID=");
            xtext_encode(cmd, qf->envid, strlen(qf->envid));
        }
    }
}

static void rcpt_cmd(struct sess *x, const struct smtpc_rcpt *r, strbuf *cmd)
{
    strbuf_printf(cmd, "RCPT TO:<%s>", r->address);
    if (!(x->feat & F_DSN))
        return;
    if (r->notify) {
        if (r->notify & QUEUE_NOTIFY_NEVER) {
            strbuf_appends(cmd, " NOTIFY=NEVER");
        } else {
            const char *sep = " NOTIFY=";
            if (r->notify & QUEUE_NOTIFY_SUCCESS)
                strbuf_appends(cmd, sep), sep = ",", strbuf_appends(cmd, "SUCCESS");
            if (r->notify & QUEUE_NOTIFY_FAILURE)
                strbuf_appends(cmd, sep), sep = ",", strbuf_appends(cmd, "FAILURE");
            if (r->notify & QUEUE_NOTIFY_DELAY)
                strbuf_appends(cmd, sep), strbuf_appends(cmd, "DELAY");
        }
    }
    /* ORCPT=addr-type;xtext: the type must be an atom, the rest is encoded. */
    const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
    if (semi && semi > r->orcpt && semi[1]) {
        for (const char *p = r->orcpt; p < semi; p++)
            if (!isalnum((unsigned char)*p) && *p != '-')
                return;
        strbuf_appends(cmd, " ORCPT=");
        strbuf_append(cmd, r->orcpt, (size_t)(semi - r->orcpt + 1));
        xtext_encode(cmd, semi + 1, strlen(semi + 1));
    }
}

static void set_unset(struct smtpc_rcpt *r, size_t n, const struct smtpc_result *res)
{
    for (size_t i = 0; i < n; i++)
        if (!r[i].res->set)
            smtpc_result_set(r[i].res, res->status, res->dsn, "%s", res->reason.data);
}

/* The transaction: MAIL, RCPT, DATA, content. Every recipient gets a result. */
static void transaction(struct sess *x, struct smtpc_rcpt *r, size_t n, bool utf8)
{
    const struct smtpc_settings *s = x->s;
    bool pipe = x->feat & F_PIPELINING;
    bool *ok = xcalloc(n, sizeof(bool));
    size_t accepted = 0;
    struct smtpc_result broken;
    smtpc_result_init(&broken);
    strbuf cmd;
    strbuf_init(&cmd);
    mail_cmd(x, utf8, &cmd);
    if (send_cmd(x, s->mail_ms, !pipe, cmd.data) < 0)
        goto lost;
    if (pipe) {
        for (size_t i = 0; i < n; i++) {
            strbuf_reset(&cmd);
            rcpt_cmd(x, &r[i], &cmd);
            if (send_cmd(x, s->rcpt_ms, false, cmd.data) < 0)
                goto lost;
        }
        if (send_cmd(x, s->data_init_ms, true, "DATA") < 0)
            goto lost;
    }
    if (read_reply(x, s->mail_ms) < 0) {
        fail_broken(x, &broken, "in reply to MAIL FROM command");
        goto broken;
    }
    if (x->rep.code / 100 != 2) {
        struct smtpc_result res;
        smtpc_result_init(&res);
        result_from_reply(x, &res, "MAIL FROM command");
        set_unset(r, n, &res);
        strbuf_free(&res.reason);
        goto quit;
    }
    for (size_t i = 0; i < n; i++) {
        if (!pipe) {
            strbuf_reset(&cmd);
            rcpt_cmd(x, &r[i], &cmd);
            if (send_cmd(x, s->rcpt_ms, true, cmd.data) < 0)
                goto lost;
        }
        if (read_reply(x, s->rcpt_ms) < 0) {
            fail_broken(x, &broken, "in reply to RCPT TO command");
            goto broken;
        }
        if (x->rep.code / 100 == 2) {
            ok[i] = true;
            accepted++;
        } else {
            result_from_reply(x, r[i].res, "RCPT TO command");
        }
    }
    if (!pipe && accepted == 0)
        goto quit;
    if (!pipe && send_cmd(x, s->data_init_ms, true, "DATA") < 0)
        goto lost;
    if (read_reply(x, s->data_init_ms) < 0) {
        fail_broken(x, &broken, "in reply to DATA command");
        goto broken;
    }
    if (accepted == 0)
        goto quit; /* pipelined DATA after no valid recipient: its reply is moot */
    if (x->rep.code != 354) {
        for (size_t i = 0; i < n; i++)
            if (ok[i])
                result_from_reply(x, r[i].res, "DATA command");
        goto quit;
    }
    netio_set_write_timeout(x->io, s->data_xfer_ms);
    bool local = false;
    strbuf_reset(&x->err);
    if (smtpc_content_send(x->msg->qf, x->io, &x->err, &local) < 0) {
        if (local) {
            log_warning("%s: %s", x->msg->id, x->err.data);
            smtpc_result_set(&broken, DELIVERY_DEFERRED, "4.3.0",
                             "cannot read the queue file: %s", x->err.data);
        } else {
            x->timeout = netio_write_error(x->io) == ETIMEDOUT;
            fail_broken(x, &broken, "while sending message content");
        }
        goto broken;
    }
    if (read_reply(x, s->data_done_ms) < 0) {
        fail_broken(x, &broken, "in reply to end of DATA command");
        goto broken;
    }
    for (size_t i = 0; i < n; i++)
        if (ok[i])
            result_from_reply(x, r[i].res, "end of DATA command");
quit:
    /* QUIT is a courtesy: its reply changes nothing. */
    if (send_cmd(x, s->quit_ms, true, "QUIT") == 0)
        read_reply(x, s->quit_ms);
    goto out;
lost:
    x->timeout = netio_write_error(x->io) == ETIMEDOUT;
    fail_broken(x, &broken, "while sending a command");
broken:
    log_event(x->msg->id, "%s", broken.reason.data);
    set_unset(r, n, &broken);
out:
    strbuf_free(&cmd);
    strbuf_free(&broken.reason);
    free(ok);
}

static void sess_close(struct sess *x)
{
    if (x->tls)
        tls_conn_shutdown(x->tls, 1000);
    netio_free(&x->io);
    tls_conn_free(&x->tls);
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
}

/* One address: 1 when the session decided every recipient, 0 to try the next
 * address (*fail says why this one did not work). */
static int attempt(const struct smtpc_settings *s, const struct smtpc_msg *m,
                   const struct smtpc_target *t, struct smtpc_rcpt *r, size_t n,
                   struct smtpc_result *fail)
{
    struct sess x;
    memset(&x, 0, sizeof(x));
    x.s = s;
    x.msg = m;
    x.t = t;
    x.fd = -1;
    strbuf_init(&x.peer);
    strbuf_init(&x.err);
    smtp_reply_init(&x.rep);
    strbuf_printf(&x.peer, "%s[", t->host);
    smtpc_addr_text(&t->addr, &x.peer);
    strbuf_appendc(&x.peer, ']');
    int decided = 0;

    x.fd = smtpc_connect(&t->addr, s->connect_ms, &x.err);
    if (x.fd < 0) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.4.1", "connect to %s:%d: %s", x.peer.data,
                         smtpc_addr_port(&t->addr), x.err.data);
        goto out;
    }
    x.io = netio_new(x.fd);
    if (read_reply(&x, s->helo_ms) < 0) {
        fail_broken(&x, fail, "while receiving the initial server greeting");
        goto out;
    }
    if (x.rep.code / 100 != 2) {
        fail_from_reply(&x, fail, "refused to talk to me", "the initial server greeting");
        send_cmd(&x, s->quit_ms, true, "QUIT");
        goto out;
    }
    if (hello(&x, fail) < 0 || starttls(&x, fail) < 0) {
        if (!x.broken && !netio_write_error(x.io) && send_cmd(&x, s->quit_ms, true, "QUIT") == 0)
            read_reply(&x, s->quit_ms);
        goto out;
    }
    decided = 1;
    if ((x.feat & F_SIZE) && x.size_max > 0 && m->qf->content_length > x.size_max) {
        struct smtpc_result res;
        smtpc_result_init(&res);
        smtpc_result_set(&res, DELIVERY_BOUNCED, "5.3.4",
                         "message size %" PRIu64 " exceeds size limit %" PRIu64
                         " of server %s",
                         m->qf->content_length, x.size_max, x.peer.data);
        set_unset(r, n, &res);
        strbuf_free(&res.reason);
        if (send_cmd(&x, s->quit_ms, true, "QUIT") == 0)
            read_reply(&x, s->quit_ms);
        goto out;
    }
    bool utf8 = needs_smtputf8(m, r, n);
    if (utf8 && !(x.feat & F_SMTPUTF8)) {
        struct smtpc_result res;
        smtpc_result_init(&res);
        smtpc_result_set(&res, DELIVERY_BOUNCED, "5.6.7",
                         "SMTPUTF8 is required, but was not offered by host %s", x.peer.data);
        set_unset(r, n, &res);
        strbuf_free(&res.reason);
        if (send_cmd(&x, s->quit_ms, true, "QUIT") == 0)
            read_reply(&x, s->quit_ms);
        goto out;
    }
    transaction(&x, r, n, utf8);
out:
    if (!decided && fail->set)
        log_event(m->id, "%s", fail->reason.data);
    sess_close(&x);
    strbuf_free(&x.peer);
    strbuf_free(&x.err);
    smtp_reply_free(&x.rep);
    return decided;
}

void smtpc_deliver(const struct smtpc_settings *s, const struct smtpc_msg *msg,
                   const struct smtpc_route *route, struct smtpc_rcpt *rcpts, size_t n)
{
    struct smtpc_result fail;
    smtpc_result_init(&fail);
    bool done = false;
    for (size_t i = 0; i < route->n && !done; i++)
        done = attempt(s, msg, &route->t[i], rcpts, n, &fail);
    if (!done) {
        if (!fail.set)
            smtpc_result_set(&fail, DELIVERY_DEFERRED, "4.4.1", "no next-hop address to try");
        set_unset(rcpts, n, &fail);
    }
    strbuf_free(&fail.reason);
}
