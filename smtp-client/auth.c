/*
 * auth.c - SASL authentication of the SMTP client (RFC 4954) to a server
 * that wants it, typically a relayhost: smtp_sasl_auth_enable, the
 * credentials from smtp_sasl_password_maps (dest.c finds them), AUTH PLAIN
 * (RFC 4616) when offered, else AUTH LOGIN.
 *
 * A password is never sent over a connection without TLS unless
 * smtp_sasl_tls_only = no: the mail is deferred instead (4.7.0), so a
 * server that "forgot" STARTTLS (or an attacker who stripped it) learns
 * nothing. A refusal (535 and friends) defers the mail with the server's
 * text, as Postfix does: a wrong password is an administrator's problem,
 * not a reason to return the mail. Nothing here logs a command line: the
 * credentials reach only the socket.
 */
#include "smtpc.h"
#include "util/base64.h"

#include <stdio.h>
#include <string.h>

static bool offers(const struct smtpc_sess *x, const char *mech)
{
    char word[32];
    snprintf(word, sizeof(word), " %s ", mech);
    return x->auth_mechs.data && strstr(x->auth_mechs.data, word) != NULL;
}

static void refused(struct smtpc_sess *x, struct smtpc_result *fail)
{
    char dsn[16];
    snprintf(dsn, sizeof(dsn), "%s", x->rep.dsn);
    dsn[0] = '4';
    smtpc_result_set(fail, DELIVERY_DEFERRED, x->rep.code / 100 == 5 ? "4.7.0" : dsn,
                     "SASL authentication failed; server %s said: %d %s", x->peer.data,
                     x->rep.code, x->rep.text.data);
}

static void lost(struct smtpc_sess *x, struct smtpc_result *fail)
{
    smtpc_result_set(fail, DELIVERY_DEFERRED, x->timeout ? "4.4.2" : "4.5.0",
                     "conversation with %s failed: %s (during SASL authentication)",
                     x->peer.data, x->err.data);
}

/* Sends one line of the exchange and reads the reply. The line is wiped
 * from memory afterwards: it holds the password in base64. */
static int step(struct smtpc_sess *x, strbuf *line, struct smtpc_result *fail)
{
    int rc = smtpc_send_cmd(x, x->s->helo_ms, true, line->data);
    memset(line->data, 0, line->len);
    strbuf_reset(line);
    if (rc < 0 || smtpc_read_reply(x, x->s->helo_ms) < 0) {
        lost(x, fail);
        return -1;
    }
    return 0;
}

int smtpc_auth(struct smtpc_sess *x, struct smtpc_result *fail)
{
    const struct smtpc_dest *d = x->dest;
    if (!x->s->sasl_enable || d->sasl_user.len == 0 || !(x->feat & SMTPC_F_AUTH))
        return 0; /* no credentials for this next hop, or a server without AUTH */
    if (x->tls == NULL && x->s->sasl_tls_only) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.0",
                         "SASL authentication to %s needs TLS (smtp_sasl_tls_only = yes), "
                         "but the connection is not encrypted; no password sent",
                         x->peer.data);
        return -1;
    }
    bool plain = offers(x, "PLAIN");
    if (!plain && !offers(x, "LOGIN")) {
        smtpc_result_set(fail, DELIVERY_DEFERRED, "4.7.0",
                         "SASL authentication to %s failed: no mechanism in common (server "
                         "offers%s; supported: PLAIN LOGIN)",
                         x->peer.data, x->auth_mechs.data);
        return -1;
    }
    strbuf line, raw;
    strbuf_init(&line);
    strbuf_init(&raw);
    int rc = -1;
    if (plain) {
        /* authzid (empty) NUL authcid NUL password */
        strbuf_appendc(&raw, '\0');
        strbuf_append_sb(&raw, &d->sasl_user);
        strbuf_appendc(&raw, '\0');
        strbuf_append_sb(&raw, &d->sasl_pass);
        strbuf_appends(&line, "AUTH PLAIN ");
        base64_encode(&line, raw.data, raw.len);
        if (step(x, &line, fail) < 0)
            goto out;
    } else {
        strbuf_appends(&line, "AUTH LOGIN");
        if (step(x, &line, fail) < 0)
            goto out;
        /* 334 VXNlcm5hbWU6 ("Username:"), then 334 UGFzc3dvcmQ6 */
        for (int i = 0; i < 2 && x->rep.code == 334; i++) {
            const strbuf *v = i == 0 ? &d->sasl_user : &d->sasl_pass;
            base64_encode(&line, v->data, v->len);
            if (step(x, &line, fail) < 0)
                goto out;
        }
    }
    if (x->rep.code == 334) {
        /* The server wants more than the mechanism has: cancel (RFC 4954). */
        strbuf_sets(&line, "*");
        if (step(x, &line, fail) < 0)
            goto out;
    }
    if (x->rep.code != 235) {
        refused(x, fail);
        goto out;
    }
    rc = 0;
out:
    if (raw.len)
        memset(raw.data, 0, raw.len);
    strbuf_free(&raw);
    strbuf_free(&line);
    return rc;
}
