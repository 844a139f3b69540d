/*
 * mail.c - MAIL and RCPT: the envelope addresses (through lib/mail/address)
 * and the ESMTP parameters of RFC 1870 (SIZE), RFC 6152 (BODY), RFC 6531
 * (SMTPUTF8), RFC 3461 (RET, ENVID, NOTIFY, ORCPT) and RFC 4954 (AUTH=).
 *
 * Parameters are parsed strictly: each may appear once, unknown or
 * unadvertised ones are refused with 555 5.5.4 (RFC 5321 §4.1.1.11), and
 * xtext values are decoded and refused when they would smuggle a control
 * character into the queue file (BAD-INPUT row 3).
 */
#include "smtp/server_int.h"
#include "smtp/xtext.h"
#include "util/log.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Parameter bits, for duplicate detection. */
enum {
    P_SIZE = 1 << 0,
    P_BODY = 1 << 1,
    P_SMTPUTF8 = 1 << 2,
    P_RET = 1 << 3,
    P_ENVID = 1 << 4,
    P_AUTH = 1 << 5,
    P_NOTIFY = 1 << 6,
    P_ORCPT = 1 << 7,
};

/* Parses 1..20 decimal digits into *v; false on anything else or overflow. */
static bool parse_u64(const char *p, size_t n, uint64_t *v)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

static bool word_eq(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(p, w, n) == 0;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1). */
static bool parse_notify(const char *p, size_t n, unsigned *bits)
{
    unsigned b = 0;
    size_t pos = 0;
    for (;;) {
        const char *comma = memchr(p + pos, ',', n - pos);
        size_t end = comma != NULL ? (size_t)(comma - p) : n;
        unsigned bit;
        if (word_eq(p + pos, end - pos, "NEVER"))
            bit = SMTP_NOTIFY_NEVER;
        else if (word_eq(p + pos, end - pos, "SUCCESS"))
            bit = SMTP_NOTIFY_SUCCESS;
        else if (word_eq(p + pos, end - pos, "FAILURE"))
            bit = SMTP_NOTIFY_FAILURE;
        else if (word_eq(p + pos, end - pos, "DELAY"))
            bit = SMTP_NOTIFY_DELAY;
        else
            return false;
        if (b & bit)
            return false;
        b |= bit;
        if (comma == NULL)
            break;
        pos = end + 1;
    }
    if ((b & SMTP_NOTIFY_NEVER) && b != SMTP_NOTIFY_NEVER)
        return false;
    *bits = b;
    return true;
}

/* ORCPT=addr-type;xtext. The addr-type is an atom (RFC 3461 §4.2; we take
 * letters, digits and '-', which covers rfc822 and utf-8). */
static bool parse_orcpt(struct smtp_session *s, const char *p, size_t n, struct smtp_rcpt *rc,
                        const char **why)
{
    const char *semi = memchr(p, ';', n);
    if (semi == NULL || semi == p || semi - p > 32) {
        *why = "ORCPT needs addr-type;address";
        return false;
    }
    size_t tlen = (size_t)(semi - p);
    for (size_t i = 0; i < tlen; i++) {
        if (!isalnum((unsigned char)p[i]) && p[i] != '-') {
            *why = "bad ORCPT address type";
            return false;
        }
    }
    if (semi + 1 == p + n) {
        *why = "empty ORCPT address";
        return false;
    }
    if (xtext_decode(semi + 1, n - tlen - 1, SMTP_ORCPT_MAX, &rc->orcpt, why) < 0)
        return false;
    strbuf_set(&rc->orcpt_type, p, tlen);
    for (size_t i = 0; i < tlen; i++)
        rc->orcpt_type.data[i] = (char)tolower((unsigned char)rc->orcpt_type.data[i]);
    (void)s;
    return true;
}

/* Replies and returns -1 for a parameter problem, naming the keyword (a
 * checked token of letters, digits and '-'). */
static int param_error(struct smtp_session *s, int code, const char *kw, size_t kwlen,
                       const char *what)
{
    smtp_session_reply(s, code, "5.5.4", "Error: %s %.*s%s", what, (int)kwlen, kw,
                       code == 555 ? "" : " parameter");
    return -1;
}

/*
 * Parses the parameters after the path into the envelope (MAIL) or rc
 * (RCPT). Returns 0, or -1 after replying.
 */
static int parse_params(struct smtp_session *s, const char *p, size_t n, bool mail,
                        struct smtp_rcpt *rc)
{
    struct smtp_envelope *env = &s->env;
    unsigned seen = 0;
    size_t pos = 0;
    for (;;) {
        while (pos < n && p[pos] == ' ')
            pos++;
        if (pos == n)
            return 0;
        if (!s->esmtp) {
            smtp_session_reply(s, 555, "5.5.4", "Error: parameters need EHLO");
            return -1;
        }
        const char *tok = p + pos;
        const char *sp = memchr(tok, ' ', n - pos);
        size_t tlen = sp != NULL ? (size_t)(sp - tok) : n - pos;
        pos += tlen;
        /* esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2). */
        size_t klen = 0;
        while (klen < tlen && (isalnum((unsigned char)tok[klen]) || (klen > 0 && tok[klen] == '-')))
            klen++;
        const char *val = tok + klen + 1;
        size_t vlen = klen < tlen ? tlen - klen - 1 : 0;
        bool has_val = klen < tlen;
        bool ok = klen > 0 && klen <= 32 && (!has_val || (tok[klen] == '=' && vlen > 0));
        for (size_t i = 0; ok && i < vlen; i++)
            if ((unsigned char)val[i] < 0x21 || (unsigned char)val[i] > 0x7e || val[i] == '=')
                ok = false;
        if (!ok) {
            log_info("bad ESMTP parameter from %s: %s", s->cfg.client,
                     smtp_logsafe(s, tok, tlen));
            smtp_session_reply(s, 555, "5.5.4", "Error: malformed parameter");
            return -1;
        }
        unsigned bit = 0;
        const char *why = NULL;
        if (mail && word_eq(tok, klen, "SIZE")) {
            bit = P_SIZE;
            if (!has_val || !parse_u64(val, vlen, &env->declared_size))
                return param_error(s, 501, tok, klen, "bad");
        } else if (mail && word_eq(tok, klen, "BODY")) {
            bit = P_BODY;
            if (has_val && word_eq(val, vlen, "7BIT"))
                env->body = SMTP_BODY_7BIT;
            else if (has_val && word_eq(val, vlen, "8BITMIME") && s->cfg.eightbitmime)
                env->body = SMTP_BODY_8BITMIME;
            else if (has_val && word_eq(val, vlen, "BINARYMIME")) {
                smtp_session_reply(s, 555, "5.5.4", "Error: BODY=BINARYMIME is not supported");
                return -1;
            }
            else
                return param_error(s, 501, tok, klen, "bad");
        } else if (mail && s->cfg.smtputf8 && word_eq(tok, klen, "SMTPUTF8")) {
            bit = P_SMTPUTF8;
            if (has_val)
                return param_error(s, 501, tok, klen, "bad");
            env->smtputf8 = true;
        } else if (mail && s->cfg.dsn && word_eq(tok, klen, "RET")) {
            bit = P_RET;
            if (has_val && word_eq(val, vlen, "FULL"))
                env->ret = SMTP_RET_FULL;
            else if (has_val && word_eq(val, vlen, "HDRS"))
                env->ret = SMTP_RET_HDRS;
            else
                return param_error(s, 501, tok, klen, "bad");
        } else if (mail && s->cfg.dsn && word_eq(tok, klen, "ENVID")) {
            bit = P_ENVID;
            if (!has_val || xtext_decode(val, vlen, SMTP_ENVID_MAX, &env->envid, &why) < 0)
                goto bad_xtext;
        } else if (mail && word_eq(tok, klen, "AUTH")) {
            /* RFC 4954 §5: accepted and kept; the glue decides whether an
             * authenticated client may vouch for it. */
            bit = P_AUTH;
            if (!has_val || xtext_decode(val, vlen, ADDRESS_PATH_MAX, &env->auth, &why) < 0)
                goto bad_xtext;
            env->has_auth = true;
        } else if (!mail && s->cfg.dsn && word_eq(tok, klen, "NOTIFY")) {
            bit = P_NOTIFY;
            if (!has_val || !parse_notify(val, vlen, &rc->notify))
                return param_error(s, 501, tok, klen, "bad");
        } else if (!mail && s->cfg.dsn && word_eq(tok, klen, "ORCPT")) {
            bit = P_ORCPT;
            if (!has_val || !parse_orcpt(s, val, vlen, rc, &why))
                goto bad_xtext;
        } else {
            return param_error(s, 555, tok, klen, "unsupported parameter");
        }
        if (seen & bit)
            return param_error(s, 555, tok, klen, "duplicate parameter");
        seen |= bit;
        continue;
    bad_xtext:
        log_warning("bad %.*s parameter from %s (%s): %s", (int)klen, tok, s->cfg.client,
                    why != NULL ? why : "missing value", smtp_logsafe(s, val, vlen));
        smtp_session_reply(s, 501, "5.5.4", "Error: bad %.*s parameter: %s", (int)klen, tok,
                           why != NULL ? why : "missing value");
        return -1;
    }
}

static void address_reply(struct smtp_session *s, enum address_role role,
                          const struct address_error *err, const char *args, size_t n)
{
    log_info("bad %s address from %s: %s: %s", role == ADDRESS_ROLE_SENDER ? "sender" : "recipient",
             s->cfg.client, err->text, smtp_logsafe(s, args, n));
    smtp_session_reply(s, address_status_reply(err->status), address_status_dsn(err->status, role),
                       "Error: %s", err->text);
}

void smtp_cmd_mail(struct smtp_session *s, const char *args, size_t n)
{
    if (!s->have_helo) {
        smtp_session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return;
    }
    if (s->in_mail) {
        smtp_session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
        return;
    }
    struct smtp_envelope *env = &s->env;
    smtp_envelope_clear(env);
    unsigned flags = s->cfg.smtputf8 && s->esmtp ? ADDRESS_ALLOW_UTF8 : 0;
    const char *params;
    size_t plen;
    struct address_error err;
    if (address_parse_mail_arg(args, n, ADDRESS_ROLE_SENDER, flags, &env->sender, &params, &plen,
                               &err) < 0) {
        address_reply(s, ADDRESS_ROLE_SENDER, &err, args, n);
        return;
    }
    if (parse_params(s, params, plen, true, NULL) < 0) {
        smtp_envelope_clear(env);
        return;
    }
    if (env->sender.needs_smtputf8 && !env->smtputf8) {
        smtp_session_reply(s, 553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
        smtp_envelope_clear(env);
        return;
    }
    if (s->cfg.size_limit > 0 && env->declared_size > s->cfg.size_limit) {
        smtp_session_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
        smtp_envelope_clear(env);
        return;
    }
    env->helo = s->helo.data;
    env->esmtp = s->esmtp;
    struct smtp_reply *r = smtp_fresh_reply(s);
    if (s->ops->on_mail != NULL)
        s->ops->on_mail(s->ctx, s, env, r);
    if (r->code >= 400) {
        smtp_send_reply(s, r, 0, NULL, "");
        smtp_envelope_clear(env);
        return;
    }
    s->in_mail = true;
    smtp_send_reply(s, r, 250, "2.1.0", "Ok");
}

void smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t n)
{
    if (!s->in_mail) {
        smtp_session_reply(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    struct smtp_envelope *env = &s->env;
    if (env->bdat) {
        smtp_session_reply(s, 503, "5.5.1", "Error: RCPT after BDAT");
        return;
    }
    if (env->nrcpt >= s->cfg.max_rcpt) {
        /* A client that pipelines more recipients than allowed retries the
         * rest later (RFC 5321 §4.5.3.1.8); not an error up to a point. */
        if (s->overshoot < s->cfg.rcpt_overshoot) {
            s->overshoot++;
            smtp_reply_nocount(s, 452, "4.5.3", "Error: too many recipients");
        } else {
            smtp_session_reply(s, 452, "4.5.3", "Error: too many recipients");
        }
        return;
    }
    struct smtp_rcpt *rc = &s->cand;
    address_reset(&rc->addr);
    strbuf_reset(&rc->orcpt_type);
    strbuf_reset(&rc->orcpt);
    rc->notify = 0;
    unsigned flags = env->smtputf8 ? ADDRESS_ALLOW_UTF8 : 0;
    const char *params;
    size_t plen;
    struct address_error err;
    if (address_parse_mail_arg(args, n, ADDRESS_ROLE_RECIPIENT, flags, &rc->addr, &params, &plen,
                               &err) < 0) {
        address_reply(s, ADDRESS_ROLE_RECIPIENT, &err, args, n);
        return;
    }
    if (parse_params(s, params, plen, false, rc) < 0)
        return;
    struct smtp_reply *r = smtp_fresh_reply(s);
    if (s->ops->on_rcpt != NULL)
        s->ops->on_rcpt(s->ctx, s, env, rc, r);
    if (r->code >= 400) {
        smtp_send_reply(s, r, 0, NULL, "");
        return;
    }
    /* Move the candidate into the envelope; the slot gets fresh buffers. */
    *smtp_envelope_add_rcpt(env) = *rc;
    smtp_rcpt_init(rc);
    smtp_send_reply(s, r, 250, "2.1.5", "Ok");
}
