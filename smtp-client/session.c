/*
 * session.c - the ESMTP dialogue with the next hops of one destination
 * (RFC 5321): connect to each address of the route in turn until one
 * session gets as far as MAIL FROM, then EHLO (HELO when EHLO is refused),
 * STARTTLS as the destination's TLS policy asks (smtp_tls_security_level
 * or smtp_tls_policy_maps; verify with match= names is checked here), AUTH
 * (auth.c), MAIL/RCPT/DATA (in one write when the server offers
 * PIPELINING), the content with dot-stuffing (converted to 7 bits by
 * mime.c for a server without 8BITMIME), QUIT.
 *
 * Failures before MAIL FROM (connect, greeting, EHLO, TLS, AUTH) move on to the
 * next address; once MAIL FROM was sent the session decides: 2xx sent, 4xx
 * deferred, 5xx bounced, per recipient, with the server's own text in the
 * reason ("host mx.b.org[10.0.0.2] said: 550 5.1.1 no such user (in reply
 * to RCPT TO command)"), and with it the host name and the raw reply for the
 * notification's Remote-MTA and "Diagnostic-Code: smtp;". A broken session
 * (timeout, lost connection, a malformed or oversized reply) defers every
 * recipient not yet answered.
 * Each stage has its own time limit (smtp_*_timeout, RFC 5321 4.5.3.2).
 *
 * A session whose transaction ended cleanly is not closed but handed to
 * cache.c (after RSET when the transaction was aborted), so the next
 * message to the same next hop skips connect, greeting, EHLO, STARTTLS and
 * AUTH. A cached connection that turns out dead before the content was sent
 * (lost, or 421) is dropped and the message goes out on a new connection;
 * nothing can have been delivered by then, so nothing is sent twice.
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

#include <openssl/x509v3.h>

/* Writes one command line and, unless batching, flushes. */
int smtpc_send_cmd(struct smtpc_sess *x, int timeout_ms, bool flush, const char *cmd)
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

int smtpc_read_reply(struct smtpc_sess *x, int timeout_ms)
{
    strbuf_reset(&x->err);
    if (smtp_reply_read(x->io, timeout_ms, &x->rep, &x->err, &x->timeout) < 0) {
        x->broken = true;
        return -1;
    }
    if (x->rep.code == 421)
        x->closing = true;
    return 0;
}

/* The last reply as the server sent it, for a DSN's "Diagnostic-Code:
 * smtp;" and its Remote-MTA (the host name, without the address): every
 * line with its code, joined with spaces ("550-5.1.1 a 550 5.1.1 b"). */
static void remote_from_reply(struct smtpc_sess *x, struct smtpc_result *r)
{
    strbuf raw;
    strbuf_init(&raw);
    const char *p = x->rep.lines.data;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        bool last = nl == NULL || nl[1] == '\0';
        if (raw.len)
            strbuf_appendc(&raw, ' ');
        strbuf_printf(&raw, "%d%c", x->rep.code, last ? ' ' : '-');
        strbuf_append(&raw, p, len);
        p += len + (nl ? 1 : 0);
    }
    if (raw.len == 0)
        strbuf_printf(&raw, "%d", x->rep.code);
    while (raw.len && raw.data[raw.len - 1] == ' ')
        strbuf_truncate(&raw, raw.len - 1);
    smtpc_result_set_remote(r, x->t.host, raw.data);
    strbuf_free(&raw);
}

/* A result from the last reply: class 2 sent, 4 deferred, 5 bounced. */
static void result_from_reply(struct smtpc_sess *x, struct smtpc_result *r, const char *stage)
{
    int cls = x->rep.code / 100;
    if (cls == 2)
        smtpc_result_set(r, DELIVERY_SENT, x->rep.dsn, "delivered to %s:%d: %d %s",
                         x->peer.data, smtpc_addr_port(&x->t.addr), x->rep.code,
                         x->rep.text.data);
    else
        smtpc_result_set(r, cls == 5 ? DELIVERY_BOUNCED : DELIVERY_DEFERRED,
                         cls == 5 || cls == 4 ? x->rep.dsn : "4.5.0",
                         "host %s said: %d %s (in reply to %s)", x->peer.data, x->rep.code,
                         x->rep.text.data, stage);
    remote_from_reply(x, r);
}

/* A failure that lets the next address be tried: always deferred. */
static void fail_from_reply(struct smtpc_sess *x, struct smtpc_result *fail, const char *what,
                            const char *stage)
{
    char dsn[16];
    snprintf(dsn, sizeof(dsn), "%s", x->rep.dsn);
    dsn[0] = '4';
    smtpc_result_set(fail, DELIVERY_DEFERRED, dsn, "host %s %s: %d %s (in reply to %s)",
                     x->peer.data, what, x->rep.code, x->rep.text.data, stage);
    remote_from_reply(x, fail);
}

static void fail_broken(struct smtpc_sess *x, struct smtpc_result *fail, const char *stage)
{
    smtpc_result_set(fail, DELIVERY_DEFERRED, x->timeout ? "4.4.2" : "4.5.0",
                     "conversation with %s failed: %s (%s)", x->peer.data, x->err.data, stage);
}

static void parse_ehlo(struct smtpc_sess *x)
{
    x->feat = 0;
    x->size_max = 0;
    strbuf_reset(&x->auth_mechs);
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
            x->feat |= SMTPC_F_PIPELINING;
        else if (IS("8BITMIME"))
            x->feat |= SMTPC_F_8BITMIME;
        else if (IS("SMTPUTF8"))
            x->feat |= SMTPC_F_SMTPUTF8;
        else if (IS("DSN"))
            x->feat |= SMTPC_F_DSN;
        else if (IS("STARTTLS"))
            x->feat |= SMTPC_F_STARTTLS;
        else if (IS("AUTH")) {
            /* "AUTH PLAIN LOGIN" (or the old "AUTH=PLAIN LOGIN"): kept as
             * " PLAIN LOGIN " in upper case for a whole-word search. */
            x->feat |= SMTPC_F_AUTH;
            if (x->auth_mechs.len == 0)
                strbuf_appendc(&x->auth_mechs, ' ');
            for (size_t i = kw; i < len && x->auth_mechs.len < 1024; i++)
                strbuf_appendc(&x->auth_mechs,
                               p[i] == '=' ? ' ' : (char)toupper((unsigned char)p[i]));
            strbuf_appendc(&x->auth_mechs, ' ');
        } else if (IS("SIZE")) {
            x->feat |= SMTPC_F_SIZE;
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
static int hello(struct smtpc_sess *x, struct smtpc_result *fail)
{
    strbuf cmd;
    strbuf_init(&cmd);
    strbuf_printf(&cmd, "EHLO %s", x->s->myhostname);
    int rc = -1;
    if (smtpc_send_cmd(x, x->s->helo_ms, true, cmd.data) < 0 ||
        smtpc_read_reply(x, x->s->helo_ms) < 0) {
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
    if (smtpc_send_cmd(x, x->s->helo_ms, true, cmd.data) < 0 ||
        smtpc_read_reply(x, x->s->helo_ms) < 0) {
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

/* The host part of the destination's next hop ("nexthop" in match=). */
static void nexthop_host(const struct smtpc_sess *x, strbuf *out)
{
    int port;
    bool mx;
    if (x->dest->nexthop.len == 0 ||
        smtpc_parse_nexthop(x->dest->nexthop.data, 0, out, &port, &mx) < 0)
        strbuf_sets(out, x->dest->domain);
}

/* verify with match=: the chain must have verified against the trust store
 * and the certificate must carry one of the names. 0, or -1 with why set. */
static int check_match(struct smtpc_sess *x, strbuf *why)
{
    SSL *ssl = tls_conn_ssl(x->tls);
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL) {
        strbuf_appends(why, "the server sent no certificate");
        return -1;
    }
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        strbuf_printf(why, "certificate verification failed: %s",
                      X509_verify_cert_error_string(vr));
        return -1;
    }
    strbuf name;
    strbuf_init(&name);
    int rc = -1;
    for (const char *p = x->dest->tls_match.data; *p && rc < 0;) {
        const char *c = strchr(p, ':');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        strbuf_set(&name, p, len);
        if (strcasecmp(name.data, "hostname") == 0)
            strbuf_sets(&name, x->t.host);
        else if (strcasecmp(name.data, "nexthop") == 0) {
            strbuf_reset(&name);
            nexthop_host(x, &name);
        }
        if (name.len > 0 && X509_check_host(cert, name.data, name.len,
                                            X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1)
            rc = 0;
        p = c ? c + 1 : p + len;
    }
    if (rc < 0)
        strbuf_printf(why, "certificate verification failed: the certificate matches none "
                           "of match=%s", x->dest->tls_match.data);
    strbuf_free(&name);
    return rc;
}

/* STARTTLS when offered and wanted (the destination's TLS level). 0 (TLS
 * on, or plaintext allowed), or -1 with *fail set. */
static int starttls(struct smtpc_sess *x, struct smtpc_result *fail)
{
    const struct smtpc_settings *s = x->s;
    enum tls_level level = x->dest->tls_level;
    bool required = level >= TLS_LEVEL_ENCRYPT;
    if (level == TLS_LEVEL_NONE)
        return 0;
    if (!(x->feat & SMTPC_F_STARTTLS) || s->tls_ctx == NULL) {
        if (!required)
            return 0;
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.4",
                         s->tls_ctx ? "TLS is required, but was not offered by host %s"
                                    : "TLS is required, but the TLS client could not be set up "
                                      "(see the log) for host %s",
                         x->peer.data);
        return -1;
    }
    if (smtpc_send_cmd(x, s->helo_ms, true, "STARTTLS") < 0 ||
        smtpc_read_reply(x, s->helo_ms) < 0) {
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
    /* verify with match= names: the handshake records the chain's result
     * (no host name set, no SNI) and check_match decides afterwards. */
    bool match = level == TLS_LEVEL_VERIFY && x->dest->tls_match.len > 0;
    struct tls_client_opts o = { .level = match ? TLS_LEVEL_ENCRYPT : level,
                                 .peername = match ? NULL : x->t.host };
    strbuf_reset(&x->err);
    x->tls = tls_client_start(x->io, s->tls_ctx, &o, s->helo_ms, &x->err);
    if (x->tls == NULL) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.5", "TLS handshake with %s failed: %s",
                         x->peer.data, x->err.data);
        return -1;
    }
    bool verified = tls_conn_verified(x->tls);
    if (match) {
        strbuf why;
        strbuf_init(&why);
        verified = check_match(x, &why) == 0;
        if (!verified)
            smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.5",
                             "TLS handshake with %s failed: %s", x->peer.data, why.data);
        strbuf_free(&why);
        if (!verified)
            return -1;
    }
    strbuf d;
    strbuf_init(&d);
    tls_describe(x->tls, &d);
    log_event(x->msg->id, "%s TLS connection established to %s:%d: %s",
              verified ? "Verified" : "Untrusted", x->peer.data,
              smtpc_addr_port(&x->t.addr), d.data);
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

static void mail_cmd(struct smtpc_sess *x, bool utf8, strbuf *cmd)
{
    const struct queue_file *qf = x->msg->qf;
    strbuf_printf(cmd, "MAIL FROM:<%s>", x->msg->sender);
    if (x->feat & SMTPC_F_SIZE)
        strbuf_printf(cmd, " SIZE=%" PRIu64, qf->content_length);
    if ((x->feat & SMTPC_F_8BITMIME) && x->msg->eightbit)
        strbuf_appends(cmd, " BODY=8BITMIME");
    if (utf8)
        strbuf_appends(cmd, " SMTPUTF8");
    if (x->feat & SMTPC_F_DSN) {
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

static void rcpt_cmd(struct smtpc_sess *x, const struct smtpc_rcpt *r, strbuf *cmd)
{
    strbuf_printf(cmd, "RCPT TO:<%s>", r->address);
    if (!(x->feat & SMTPC_F_DSN))
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
            smtpc_result_copy(r[i].res, res);
}

/* How a transaction left the connection. */
enum tx {
    TX_CLEAN, /* replies in step: QUIT, or keep it (RSET first if need_rset) */
    TX_BROKEN, /* out of step or lost: close without QUIT */
    TX_RETRY, /* a reused connection failed before the content: results
               * reset, send again on a new connection */
};

static void reset_results(struct smtpc_rcpt *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r[i].res->set = false;
        r[i].res->status = DELIVERY_DEFERRED;
        strbuf_reset(&r[i].res->reason);
        strbuf_reset(&r[i].res->mta);
        strbuf_reset(&r[i].res->diag);
    }
}

/* The transaction: MAIL, RCPT, DATA, content. Every recipient gets a result
 * (except for TX_RETRY, where none has one). */
static enum tx transaction(struct smtpc_sess *x, struct smtpc_rcpt *r, size_t n, bool utf8)
{
    const struct smtpc_settings *s = x->s;
    bool pipe = x->feat & SMTPC_F_PIPELINING;
    bool reused = x->uses > 1;
    bool content = false; /* the content (or its first bytes) was sent */
    enum tx out = TX_CLEAN;
    bool *ok = xcalloc(n, sizeof(bool));
    size_t accepted = 0;
    struct smtpc_result broken;
    smtpc_result_init(&broken);
    strbuf cmd;
    strbuf_init(&cmd);
    x->need_rset = true; /* until the reply to the final '.' */
    mail_cmd(x, utf8, &cmd);
    if (smtpc_send_cmd(x, s->mail_ms, !pipe, cmd.data) < 0)
        goto lost;
    if (pipe) {
        for (size_t i = 0; i < n; i++) {
            strbuf_reset(&cmd);
            rcpt_cmd(x, &r[i], &cmd);
            if (smtpc_send_cmd(x, s->rcpt_ms, false, cmd.data) < 0)
                goto lost;
        }
        if (smtpc_send_cmd(x, s->data_init_ms, true, "DATA") < 0)
            goto lost;
    }
    if (smtpc_read_reply(x, s->mail_ms) < 0) {
        fail_broken(x, &broken, "in reply to MAIL FROM command");
        goto broken;
    }
    if (x->rep.code / 100 != 2) {
        if (reused && x->closing)
            goto retry;
        struct smtpc_result res;
        smtpc_result_init(&res);
        result_from_reply(x, &res, "MAIL FROM command");
        set_unset(r, n, &res);
        smtpc_result_free(&res);
        /* Pipelined: the replies to the RCPTs and DATA are on their way;
         * read them so the stream stays in step (for QUIT or reuse). */
        for (size_t i = 0; pipe && i <= n && !x->broken; i++)
            smtpc_read_reply(x, i < n ? s->rcpt_ms : s->data_init_ms);
        if (pipe && !x->broken && x->rep.code == 354)
            x->broken = true; /* the server waits for content: close */
        if (x->broken)
            out = TX_BROKEN;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!pipe) {
            strbuf_reset(&cmd);
            rcpt_cmd(x, &r[i], &cmd);
            if (smtpc_send_cmd(x, s->rcpt_ms, true, cmd.data) < 0)
                goto lost;
        }
        if (smtpc_read_reply(x, s->rcpt_ms) < 0) {
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
    if (reused && x->closing)
        goto retry; /* 421 to a RCPT: the server is closing; nothing was sent */
    if (!pipe && accepted == 0)
        goto out;
    if (!pipe && smtpc_send_cmd(x, s->data_init_ms, true, "DATA") < 0)
        goto lost;
    if (smtpc_read_reply(x, s->data_init_ms) < 0) {
        fail_broken(x, &broken, "in reply to DATA command");
        goto broken;
    }
    if (accepted == 0) {
        /* Pipelined DATA after no valid recipient: its reply is moot, but a
         * server that said 354 waits for content: not reusable. */
        if (x->rep.code == 354) {
            x->broken = true;
            out = TX_BROKEN;
        }
        goto out;
    }
    if (x->rep.code != 354) {
        if (reused && x->closing)
            goto retry;
        for (size_t i = 0; i < n; i++)
            if (ok[i])
                result_from_reply(x, r[i].res, "DATA command");
        goto out;
    }
    content = true;
    netio_set_write_timeout(x->io, s->data_xfer_ms);
    bool local = false;
    strbuf_reset(&x->err);
    int sent;
    if (x->msg->eightbit && !(x->feat & SMTPC_F_8BITMIME)) {
        /* RFC 6152 section 3: convert (as Postfix does) rather than send
         * 8-bit data to a server that did not ask for it. */
        strbuf conv;
        strbuf_init(&conv);
        local = smtpc_mime_downgrade(x->msg->qf, &conv, &x->err) < 0;
        sent = local ? -1 : smtpc_content_send_buf(&conv, x->io, &x->err);
        strbuf_free(&conv);
    } else {
        sent = smtpc_content_send(x->msg->qf, x->io, &x->err, &local);
    }
    if (sent < 0) {
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
    if (smtpc_read_reply(x, s->data_done_ms) < 0) {
        fail_broken(x, &broken, "in reply to end of DATA command");
        goto broken;
    }
    x->need_rset = false;
    for (size_t i = 0; i < n; i++)
        if (ok[i])
            result_from_reply(x, r[i].res, "end of DATA command");
    goto out;
lost:
    x->timeout = netio_write_error(x->io) == ETIMEDOUT;
    fail_broken(x, &broken, "while sending a command");
broken:
    out = TX_BROKEN;
    if (reused && !content)
        goto retry;
    log_event(x->msg->id, "%s", broken.reason.data);
    set_unset(r, n, &broken);
    goto out;
retry:
    /* A cached connection the server had given up (idle timeout, restart):
     * nothing was delivered, so the message goes out on a new one. */
    log_event(x->msg->id, "cached connection to %s:%d is no longer usable (%s); "
              "using a new connection", x->peer.data, smtpc_addr_port(&x->t.addr),
              x->closing ? "421" : x->err.data);
    reset_results(r, n);
    out = TX_RETRY;
out:
    strbuf_free(&cmd);
    smtpc_result_free(&broken);
    free(ok);
    return out;
}

/* The checks that need the server's EHLO (SIZE, SMTPUTF8), then the
 * transaction. */
static enum tx send_message(struct smtpc_sess *x, struct smtpc_rcpt *r, size_t n)
{
    const struct smtpc_msg *m = x->msg;
    x->uses++;
    if (x->uses > 1)
        log_event(m->id, "reusing the connection to %s:%d (conn_use=%d)", x->peer.data,
                  smtpc_addr_port(&x->t.addr), x->uses);
    if ((x->feat & SMTPC_F_SIZE) && x->size_max > 0 && m->qf->content_length > x->size_max) {
        struct smtpc_result res;
        smtpc_result_init(&res);
        smtpc_result_set(&res, DELIVERY_BOUNCED, "5.3.4",
                         "message size %" PRIu64 " exceeds size limit %" PRIu64
                         " of server %s",
                         m->qf->content_length, x->size_max, x->peer.data);
        set_unset(r, n, &res);
        smtpc_result_free(&res);
        return TX_CLEAN;
    }
    bool utf8 = needs_smtputf8(m, r, n);
    if (utf8 && !(x->feat & SMTPC_F_SMTPUTF8)) {
        struct smtpc_result res;
        smtpc_result_init(&res);
        smtpc_result_set(&res, DELIVERY_BOUNCED, "5.6.7",
                         "SMTPUTF8 is required, but was not offered by host %s", x->peer.data);
        set_unset(r, n, &res);
        smtpc_result_free(&res);
        return TX_CLEAN;
    }
    return transaction(x, r, n, utf8);
}

void smtpc_sess_end(struct smtpc_sess *x, bool quit, int quit_ms)
{
    if (quit && x->io && !x->broken && !netio_write_error(x->io) &&
        smtpc_send_cmd(x, quit_ms, true, "QUIT") == 0)
        smtpc_read_reply(x, quit_ms); /* a courtesy: the reply changes nothing */
    if (x->tls)
        tls_conn_shutdown(x->tls, 1000);
    netio_free(&x->io);
    tls_conn_free(&x->tls);
    if (x->fd >= 0)
        close(x->fd);
    free(x->t.host);
    strbuf_free(&x->peer);
    strbuf_free(&x->err);
    strbuf_free(&x->auth_mechs);
    strbuf_free(&x->key);
    smtp_reply_free(&x->rep);
    free(x);
}

/* After a message: keep the connection for the next one (RSET first when
 * the transaction was aborted), or close it. */
static void finish(struct smtpc_sess *x, enum tx t)
{
    const struct smtpc_settings *s = x->s;
    bool keep = t == TX_CLEAN && !x->closing && s->cache_ms > 0 &&
                (s->reuse_limit <= 0 || x->uses < s->reuse_limit);
    if (keep && x->need_rset) {
        keep = smtpc_send_cmd(x, s->rset_ms, true, "RSET") == 0 &&
               smtpc_read_reply(x, s->rset_ms) == 0 && x->rep.code / 100 == 2;
        x->need_rset = false;
    }
    if (!keep) {
        smtpc_sess_end(x, t == TX_CLEAN, s->quit_ms);
        return;
    }
    x->msg = NULL;
    x->dest = NULL;
    smtpc_cache_put(x);
}

static struct smtpc_sess *sess_new(const struct smtpc_settings *s, const struct smtpc_msg *m,
                                   const struct smtpc_dest *dest, const struct smtpc_target *t)
{
    struct smtpc_sess *x = xcalloc(1, sizeof(*x));
    x->s = s;
    x->msg = m;
    x->dest = dest;
    x->t.host = xstrdup(t->host);
    x->t.addr = t->addr;
    x->fd = -1;
    strbuf_init(&x->peer);
    strbuf_init(&x->err);
    strbuf_init(&x->auth_mechs);
    strbuf_init(&x->key);
    smtp_reply_init(&x->rep);
    strbuf_printf(&x->peer, "%s[", t->host);
    smtpc_addr_text(&t->addr, &x->peer);
    strbuf_appendc(&x->peer, ']');
    smtpc_cache_key(t, dest, &x->key);
    return x;
}

/* One address: 1 when the session decided every recipient, 0 to try the next
 * address (*fail says why this one did not work). */
static int attempt(const struct smtpc_settings *s, const struct smtpc_msg *m,
                   const struct smtpc_dest *dest, const struct smtpc_target *t,
                   struct smtpc_rcpt *r, size_t n, struct smtpc_result *fail)
{
    struct smtpc_sess *x = sess_new(s, m, dest, t);
    x->fd = smtpc_connect(&t->addr, s->connect_ms, &x->err);
    if (x->fd < 0) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.4.1", "connect to %s:%d: %s", x->peer.data,
                         smtpc_addr_port(&t->addr), x->err.data);
        goto failed;
    }
    x->io = netio_new(x->fd);
    if (smtpc_read_reply(x, s->helo_ms) < 0) {
        fail_broken(x, fail, "while receiving the initial server greeting");
        goto failed;
    }
    if (x->rep.code / 100 != 2) {
        fail_from_reply(x, fail, "refused to talk to me", "the initial server greeting");
        smtpc_send_cmd(x, s->quit_ms, true, "QUIT");
        x->broken = true; /* QUIT sent already; its reply is not awaited */
        goto failed;
    }
    if (hello(x, fail) < 0 || starttls(x, fail) < 0 || smtpc_auth(x, fail) < 0)
        goto failed;
    finish(x, send_message(x, r, n));
    return 1;
failed:
    log_event(m->id, "%s", fail->reason.data);
    smtpc_sess_end(x, true, s->quit_ms);
    return 0;
}

void smtpc_deliver(const struct smtpc_settings *s, const struct smtpc_msg *msg,
                   const struct smtpc_dest *dest, const struct smtpc_route *route,
                   struct smtpc_rcpt *rcpts, size_t n)
{
    struct smtpc_result fail;
    smtpc_result_init(&fail);
    bool done = false;
    /* A cached connection to any address of the route first: it was the
     * best working choice for this next hop a moment ago. */
    strbuf key;
    strbuf_init(&key);
    for (size_t i = 0; i < route->n && !done; i++) {
        strbuf_reset(&key);
        smtpc_cache_key(&route->t[i], dest, &key);
        struct smtpc_sess *x = smtpc_cache_take(key.data);
        if (x == NULL)
            continue;
        x->msg = msg;
        x->dest = dest;
        enum tx t = send_message(x, rcpts, n);
        if (t == TX_RETRY) {
            smtpc_sess_end(x, false, 0);
            break;
        }
        finish(x, t);
        done = true;
    }
    strbuf_free(&key);
    for (size_t i = 0; i < route->n && !done; i++)
        done = attempt(s, msg, dest, &route->t[i], rcpts, n, &fail);
    if (!done) {
        if (!fail.set)
            smtpc_result_set(&fail, DELIVERY_DEFERRED, "4.4.1", "no next-hop address to try");
        set_unset(rcpts, n, &fail);
    }
    smtpc_result_free(&fail);
}
