/*
 * auth.c - SMTP AUTH (RFC 4954) for submission, through the engine's
 * on_command hook.
 *
 * When AUTH is allowed: only under TLS (RFC 6409 §4.3 lets an MSA require
 * it, RFC 3207 §5 says credentials need it), so on 587 the client must
 * STARTTLS first ("530 5.7.0 Must issue a STARTTLS command first") and
 * AUTH is advertised only after it; on 465 TLS is there from the start.
 * Only after HELO/EHLO, only once per session (503 5.5.1). STARTTLS resets the
 * session including the authenticated user (the engine does it).
 *
 * The exchange itself is lib/mail/sasl (PLAIN, LOGIN; strict base64; "*"
 * cancels); lines come through smtp_session_read_line, so the engine's line
 * limit bounds every response and a NUL or bare CR in one ends the exchange.
 * Credentials go to the auth service (lib/mail/auth_client), which also
 * slows down and finally throttles clients that fail too often.
 *
 * Replies:
 *   235 2.7.0 Authentication successful
 *   334 <challenge>
 *   501 5.5.4 Syntax: AUTH mechanism [initial-response]
 *   504 5.5.4 Error: unsupported authentication mechanism
 *   501 5.7.0 Authentication aborted             ("*")
 *   501 5.5.2 Error: invalid base64 data         (not strict base64)
 *   501 5.5.2 Error: malformed authentication response: <why>
 *   535 5.7.8 Error: authentication failed       (wrong user or password)
 *   454 4.7.0 Temporary authentication failure   (auth service down)
 *   421 4.7.0 <host> Error: too many failed authentication attempts, try again later
 *             (the auth service throttles this client address; the session ends)
 * Every 4xx/5xx counts toward the engine's error limits (and their delays).
 * Failures are logged as Postfix does ("warning: unknown[addr]: SASL LOGIN
 * authentication failed: ...", which fail2ban's postfix-sasl filter reads);
 * the password is never logged.
 */
#include "submission.h"
#include "mail/auth_client.h"
#include "mail/sasl.h"
#include "util/log.h"

#include <string.h>

void submission_auth_ehlo(struct submission_session *ss, struct smtp_session *s, strbuf *out)
{
    (void)ss;
    if (smtp_session_tls(s))
        strbuf_appends(out, "AUTH " SASL_MECHANISMS "\n");
}

/* Asks the auth service and answers; the exchange produced sx->user/password. */
static void verify(struct submission_session *ss, struct smtp_session *s,
                   struct sasl_server *sx)
{
    const char *mech = sasl_mech_name(sx->mech);
    struct auth_result res;
    auth_result_init(&res);
    int rc = auth_verify_password(ss->settings->base.queue_dir, "smtp", ss->conn.client_addr,
                                  sx->user.data, sx->password.data, sx->password.len, false,
                                  &res);
    enum auth_status st = rc < 0 ? AUTH_TEMPFAIL : res.status;
    switch (st) {
    case AUTH_OK: {
        const char *user = res.user.len > 0 ? res.user.data : sx->user.data;
        smtp_session_set_auth_user(s, user);
        log_info("%s: sasl_method=%s, sasl_username=%s", ss->conn.client_log, mech, user);
        smtp_session_reply(s, 235, "2.7.0", "Authentication successful");
        break;
    }
    case AUTH_FAIL:
        log_warning("%s: SASL %s authentication failed: %s, sasl_username=%s",
                    ss->conn.client_log, mech, res.reason.len ? res.reason.data : "failed",
                    sx->user.data);
        smtp_session_reply(s, 535, "5.7.8", "Error: authentication failed");
        break;
    case AUTH_TEMPFAIL:
        log_warning("%s: SASL %s authentication temporarily failed: %s", ss->conn.client_log,
                    mech, res.reason.len ? res.reason.data : "auth service unavailable");
        smtp_session_reply(s, 454, "4.7.0", "Temporary authentication failure");
        break;
    case AUTH_THROTTLED:
        log_warning("%s: SASL %s authentication refused: too many failures from this client "
                    "(%s)", ss->conn.client_log, mech,
                    res.reason.len ? res.reason.data : "throttled");
        smtp_session_reply(s, 421, "4.7.0",
                           "%s Error: too many failed authentication attempts, try again later",
                           ss->settings->base.myhostname);
        smtp_session_close(s);
        break;
    }
    auth_result_free(&res);
}

/* Runs the exchange to its end; sx was started with the initial response. */
static void exchange(struct submission_session *ss, struct smtp_session *s,
                     struct sasl_server *sx, enum sasl_status st, strbuf *challenge,
                     strbuf *err)
{
    strbuf line;
    strbuf_init(&line);
    while (st == SASL_CHALLENGE) {
        if (smtp_session_reply(s, 334, "", "%s", challenge->data) < 0)
            goto out;
        int rc = smtp_session_read_line(s, &line);
        if (rc != 0) {
            /* -1: the session is over; 1: the engine refused the line (too
             * long, NUL, bare CR) with 500 5.5.2, which ends the exchange. */
            if (rc > 0)
                log_warning("%s: SASL %s exchange aborted: bad response line",
                            ss->conn.client_log, sasl_mech_name(sx->mech));
            goto out;
        }
        st = sasl_server_step(sx, line.data, line.len, challenge, err);
    }
    switch (st) {
    case SASL_DONE:
        verify(ss, s, sx);
        break;
    case SASL_CANCELLED:
        smtp_session_reply(s, 501, "5.7.0", "Authentication aborted");
        break;
    case SASL_BAD_BASE64:
        log_warning("%s: SASL %s: %s", ss->conn.client_log, sasl_mech_name(sx->mech), err->data);
        smtp_session_reply(s, 501, "5.5.2", "Error: invalid base64 data");
        break;
    case SASL_MALFORMED:
        log_warning("%s: SASL %s: %s", ss->conn.client_log, sasl_mech_name(sx->mech), err->data);
        smtp_session_reply(s, 501, "5.5.2", "Error: malformed authentication response: %s",
                           err->data);
        break;
    case SASL_CHALLENGE:
        break;
    }
out:
    /* The line may have held the password. */
    memset(line.data, 0, line.cap);
    strbuf_free(&line);
}

bool submission_auth_command(struct submission_session *ss, struct smtp_session *s,
                             const char *args)
{
    if (!smtp_session_tls(s)) {
        smtp_session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return true;
    }
    if (smtp_session_helo(s)[0] == '\0') {
        /* HELO is enough: the primer's dialogue and old clients use it. */
        smtp_session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return true;
    }
    if (smtp_session_auth_user(s) != NULL) {
        smtp_session_reply(s, 503, "5.5.1", "Error: already authenticated");
        return true;
    }
    /* MAIL needs AUTH first here, so no transaction can be open now. */
    strbuf mech;
    strbuf_init(&mech);
    const char *sp = args ? strchr(args, ' ') : NULL;
    if (args != NULL)
        strbuf_set(&mech, args, sp ? (size_t)(sp - args) : strlen(args));
    const char *initial = sp ? sp + 1 : NULL;
    enum sasl_mech m;
    if (mech.len == 0) {
        smtp_session_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    } else if (sasl_mech_parse(mech.data, &m) < 0) {
        smtp_session_reply(s, 504, "5.5.4", "Error: unsupported authentication mechanism");
    } else {
        struct sasl_server sx;
        strbuf challenge, err;
        strbuf_init(&challenge);
        strbuf_init(&err);
        sasl_server_init(&sx, m);
        enum sasl_status st = sasl_server_start(&sx, initial, &challenge, &err);
        exchange(ss, s, &sx, st, &challenge, &err);
        sasl_server_free(&sx);
        strbuf_free(&challenge);
        strbuf_free(&err);
    }
    strbuf_free(&mech);
    return true;
}
