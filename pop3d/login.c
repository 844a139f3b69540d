/*
 * login.c - pop3-login: the POP3 AUTHORIZATION state (RFC 1939 §4, CAPA
 * RFC 2449, STLS RFC 2595, AUTH RFC 5034) on top of the shared login front
 * (lib/login/login.h), which does TLS, limits, auth and the hand-off.
 *
 *   pop3   accept inet:110 - /var/spool/petrel/login 100 pop3-login
 *   pop3s  accept inet:995 - /var/spool/petrel/login 100 pop3-login -o tls_mode=implicit
 *
 * This process never answers "+OK" to PASS or AUTH: after auth said yes
 * the mailbox process (pop3d) opens the mailbox and answers, "+OK" or
 * "-ERR [IN-USE]". Failures are answered here:
 *   -ERR [AUTH] Authentication failed
 *   -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections
 *   -ERR [SYS/TEMP] Temporary authentication failure
 *   -ERR [SYS/TEMP] Too many failed logins from your address, try again later (then closed)
 */
#include "pop3.h"
#include "login/login.h"
#include "mail/sasl.h"
#include "mail/server.h"
#include "util/log.h"

#include <string.h>
#include <strings.h>

struct pop3_login {
    strbuf user; /* from USER, for PASS */
    bool have_user;
};

static struct login_settings settings;
/* One client per process at a time: the state is reset by each greeting. */
static struct pop3_login state;

static void greet(struct login_conn *c)
{
    if (state.user.data == NULL)
        strbuf_init(&state.user);
    strbuf_reset(&state.user);
    state.have_user = false;
    c->state = &state;
    login_reply(c, "+OK Petrel POP3 server ready");
}

static void too_long(struct login_conn *c)
{
    login_reply(c, "-ERR Line too long");
}

static void too_many_bad(struct login_conn *c)
{
    login_reply(c, "-ERR Too many bad commands, closing connection");
}

static void capa(struct login_conn *c)
{
    struct pop3_capa cp = {
        .authorization = true,
        .plaintext_ok = login_plaintext_allowed(c),
        .stls = login_tls_available(c),
    };
    strbuf out;
    strbuf_init(&out);
    pop3_capa(&cp, &out);
    strbuf_truncate(&out, out.len - 2); /* login_reply ends the last line */
    login_reply(c, "%s", out.data);
    strbuf_free(&out);
}

/* Answers a failed login; returns whether the session goes on. */
static enum login_next answer_auth(struct login_conn *c, enum login_auth r)
{
    switch (r) {
    case LOGIN_AUTH_HANDED_OFF:
        return LOGIN_END;
    case LOGIN_AUTH_FAILED:
        login_reply(c, "-ERR [AUTH] Authentication failed");
        login_bad_command(c);
        return LOGIN_CONTINUE;
    case LOGIN_AUTH_THROTTLED:
        login_reply(c, "-ERR [SYS/TEMP] Too many failed logins from your address, "
                       "try again later");
        return LOGIN_END;
    case LOGIN_AUTH_TEMPFAIL:
    default:
        login_reply(c, "-ERR [SYS/TEMP] Temporary authentication failure");
        return LOGIN_CONTINUE;
    }
}

static enum login_next refuse_plaintext(struct login_conn *c)
{
    login_reply(c, "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                   "connections");
    login_bad_command(c);
    return LOGIN_CONTINUE;
}

/* AUTH mechanism [initial-response] (RFC 5034). */
static enum login_next auth_command(struct login_conn *c, const char *args)
{
    if (args == NULL || *args == '\0') {
        /* Not in RFC 5034, but clients (and RFC 1734 servers) list this way. */
        if (login_plaintext_allowed(c))
            login_reply(c, "+OK\r\nPLAIN\r\n.");
        else
            login_reply(c, "+OK\r\n.");
        return LOGIN_CONTINUE;
    }
    const char *sp = strchr(args, ' ');
    size_t mlen = sp ? (size_t)(sp - args) : strlen(args);
    if (mlen != 5 || strncasecmp(args, "PLAIN", 5) != 0) {
        login_reply(c, "-ERR Unsupported authentication mechanism");
        login_bad_command(c);
        return LOGIN_CONTINUE;
    }
    if (!login_plaintext_allowed(c))
        return refuse_plaintext(c);
    const char *initial = sp ? sp + 1 : NULL;
    struct sasl_server sx;
    strbuf challenge, err, line;
    strbuf_init(&challenge);
    strbuf_init(&err);
    strbuf_init(&line);
    sasl_server_init(&sx, SASL_MECH_PLAIN);
    enum login_next next = LOGIN_CONTINUE;
    enum sasl_status st = sasl_server_start(&sx, initial, &challenge, &err);
    while (st == SASL_CHALLENGE) {
        if (login_reply(c, "+ %s", challenge.data) < 0) {
            next = LOGIN_END;
            goto out;
        }
        enum netio_status ns = login_read_line(c, &line);
        if (ns == NETIO_TOO_LONG) {
            login_reply(c, "-ERR Line too long");
            login_bad_command(c);
            goto out;
        }
        if (ns != NETIO_OK) {
            next = LOGIN_END;
            goto out;
        }
        st = sasl_server_step(&sx, line.data, line.len, &challenge, &err);
    }
    switch (st) {
    case SASL_DONE:
        next = answer_auth(c, login_authenticate(c, "PLAIN", sx.user.data, sx.password.data,
                                                 sx.password.len, ""));
        break;
    case SASL_CANCELLED:
        login_reply(c, "-ERR Authentication cancelled");
        break;
    case SASL_BAD_BASE64:
        log_warning("%s: AUTH PLAIN: %s", c->client_log, err.data);
        login_reply(c, "-ERR Invalid base64 data");
        login_bad_command(c);
        break;
    default:
        log_warning("%s: AUTH PLAIN: %s", c->client_log, err.data);
        login_reply(c, "-ERR Malformed authentication response");
        login_bad_command(c);
        break;
    }
out:
    memset(line.data, 0, line.cap);
    strbuf_free(&line);
    strbuf_free(&challenge);
    strbuf_free(&err);
    sasl_server_free(&sx);
    return next;
}

static enum login_next command(struct login_conn *c, const strbuf *line)
{
    struct pop3_login *st = c->state;
    const char *l = line->data;
    if (strbuf_has_nul(line)) {
        login_reply(c, "-ERR Invalid command");
        login_bad_command(c);
        return LOGIN_CONTINUE;
    }
    const char *sp = strchr(l, ' ');
    size_t klen = sp ? (size_t)(sp - l) : strlen(l);
    const char *args = sp ? sp + 1 : NULL;
#define IS(k) (klen == sizeof(k) - 1 && strncasecmp(l, k, klen) == 0)
    if (IS("CAPA")) {
        capa(c);
    } else if (IS("QUIT")) {
        login_reply(c, "+OK Petrel POP3 server signing off");
        return LOGIN_END;
    } else if (IS("STLS")) {
        if (login_tls_active(c)) {
            login_reply(c, "-ERR Command not permitted when TLS active");
            login_bad_command(c);
        } else if (!login_tls_available(c)) {
            login_reply(c, "-ERR TLS not available");
            login_bad_command(c);
        } else {
            if (login_reply(c, "+OK Begin TLS negotiation") < 0 || login_start_tls(c) < 0)
                return LOGIN_END;
            st->have_user = false;
        }
    } else if (IS("USER")) {
        if (!login_plaintext_allowed(c))
            return refuse_plaintext(c);
        if (args == NULL || *args == '\0') {
            login_reply(c, "-ERR Syntax: USER name");
            login_bad_command(c);
        } else {
            strbuf_sets(&st->user, args);
            st->have_user = true;
            login_reply(c, "+OK");
        }
    } else if (IS("PASS")) {
        if (!login_plaintext_allowed(c))
            return refuse_plaintext(c);
        if (!st->have_user) {
            login_reply(c, "-ERR USER first");
            login_bad_command(c);
        } else if (args == NULL) {
            login_reply(c, "-ERR Syntax: PASS password");
            login_bad_command(c);
        } else {
            st->have_user = false;
            /* The password is the rest of the line: it may hold spaces. */
            return answer_auth(c, login_authenticate(c, "USER", st->user.data, args,
                                                     line->len - (size_t)(args - l), ""));
        }
    } else if (IS("AUTH")) {
        return auth_command(c, args);
    } else if (IS("STAT") || IS("LIST") || IS("RETR") || IS("DELE") || IS("NOOP") ||
               IS("RSET") || IS("TOP") || IS("UIDL") || IS("APOP")) {
        login_reply(c, "-ERR Not logged in");
        login_bad_command(c);
    } else {
        login_reply(c, "-ERR Unknown command");
        login_bad_command(c);
    }
#undef IS
    return LOGIN_CONTINUE;
}

static const struct login_proto pop3_proto = {
    .greet = greet,
    .command = command,
    .too_long = too_long,
    .too_many_bad = too_many_bad,
};

static void init(struct server_ctx *ctx)
{
    login_settings_load(&settings, ctx->config, "pop3");
}

static void serve(struct server_ctx *ctx, int fd)
{
    (void)ctx;
    login_serve(&settings, &pop3_proto, fd);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = init,
        .serve = serve,
    };
    return server_main(argc, argv, &ops);
}
