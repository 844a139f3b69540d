/*
 * request.c - one connection to the auth service: read one request record,
 * check every attribute, ask the throttle, the backend or the token store,
 * log the outcome and answer one reply record (docs/ipc.md "auth").
 *
 * The password is wiped from memory as soon as it was checked and never
 * reaches a log line. A failed password costs the client a growing delay
 * (throttle.c) before the answer; a client over the failure limit gets
 * `throttled` without its password being looked at.
 */
#include "auth.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#include <poll.h>
#include <string.h>
#include <time.h>

/* A password of AUTH_PASSWORD_MAX bytes fits; anything much larger is
 * refused by the reader itself, after its length digits. */
static const struct attr_limits request_limits = {
    .max_attrs = 16,
    .max_value = 4096,
    .max_total = 16384,
};

struct reply {
    const char *status; /* ok, fail, tempfail, throttled */
    strbuf reason;
    const struct auth_identity *id; /* identity attributes when set */
    const char *user;               /* user attribute when set */
    const char *token;
};

static void send_reply(int fd, const struct reply *r)
{
    struct attr_list *l = attr_list_new();
    attr_add_str(l, ATTR_PROTOCOL, "auth");
    attr_add_str(l, "status", r->status);
    if (r->user)
        attr_add_str(l, "user", r->user);
    if (r->id) {
        attr_add_str(l, "home", r->id->home.data);
        attr_add_uint64(l, "uid", r->id->uid);
        attr_add_uint64(l, "gid", r->id->gid);
        attr_add_str(l, "mailbox", r->id->mailbox.data);
    }
    if (r->token)
        attr_add_str(l, "token", r->token);
    attr_add_str(l, "reason", r->reason.data);
    if (attr_write(fd, l, AUTH_READ_TIMEOUT_MS) < 0)
        log_warning("cannot send the reply to the auth client: %m");
    attr_list_free(&l);
}

static bool text_ok(const char *s, size_t max, bool allow_space)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(s + i, n - i, &cp);
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || (!allow_space && cp == ' '))
            return false;
        i += k;
    }
    return true;
}

/* User names: UTF-8 text without controls, spaces or ':' (the passwd-file
 * separator). '%' and '$' are ordinary characters: nothing is expanded. */
static bool user_ok(const char *u)
{
    return text_ok(u, AUTH_USER_MAX, false) && strchr(u, ':') == NULL;
}

/* Client addresses: printable ASCII without spaces ("192.0.2.1", "::1",
 * "unknown"). */
static bool client_ok(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > AUTH_CLIENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (c[i] <= ' ' || c[i] >= 0x7f)
            return false;
    return true;
}

static bool service_ok(const char *s)
{
    return strcmp(s, "smtp") == 0 || strcmp(s, "pop3") == 0 || strcmp(s, "imap") == 0;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static void do_password(const struct auth_settings *s, const struct attr_list *req, int fd,
                        const char *service)
{
    struct reply r = {0};
    strbuf_init(&r.reason);
    strbuf err;
    strbuf_init(&err);
    struct auth_identity id;
    auth_identity_init(&id);
    strbuf token;
    strbuf_init(&token);

    const char *user = attr_require(req, "user", &err);
    const char *client = user ? attr_require(req, "client", &err) : NULL;
    size_t pwlen = 0;
    const char *pw = attr_get_bytes(req, "password", &pwlen);
    const char *want = attr_get(req, "token");
    r.status = "fail";
    if (user == NULL || client == NULL) {
        strbuf_printf(&r.reason, "malformed request: %s", err.data);
        log_warning("malformed request: %s", err.data);
        goto reply;
    }
    if (pw == NULL) {
        strbuf_sets(&r.reason, "malformed request: missing attribute \"password\"");
        log_warning("malformed request: missing attribute \"password\"");
        goto reply;
    }
    if (!client_ok(client)) {
        strbuf_sets(&r.reason, "malformed request: bad client address");
        log_warning("malformed request: bad client address \"%s\"", client);
        goto reply;
    }
    bool want_token = false;
    if (want && strcmp(want, "1") == 0) {
        if (strcmp(service, "pop3") != 0 && strcmp(service, "imap") != 0) {
            strbuf_sets(&r.reason, "malformed request: tokens are issued for pop3 and imap only");
            log_warning("malformed request from service %s: token asked for", service);
            goto reply;
        }
        want_token = true;
    } else if (want && strcmp(want, "0") != 0) {
        strbuf_sets(&r.reason, "malformed request: token must be 1 or 0");
        log_warning("malformed request: token=\"%s\"", want);
        goto reply;
    }
    if (!user_ok(user)) {
        /* Not a name anyone can have: a definite no, logged like any failure. */
        strbuf_sets(&r.reason, "malformed user name");
        log_info("failed for user=<%s> client=%s service=%s (malformed user name)", user, client,
                 service);
        goto reply;
    }

    time_t now = time(NULL);
    long long left = throttle_check(s, client, now);
    if (left > 0) {
        r.status = "throttled";
        strbuf_printf(&r.reason, "too many failed logins from %s, try again in %lld s", client,
                      left);
        log_info("throttled user=<%s> client=%s service=%s (%lld s left)", user, client, service,
                 left);
        goto reply;
    }

    enum auth_verdict v;
    if (pwlen > AUTH_PASSWORD_MAX) {
        v = VERDICT_FAIL;
        strbuf_printf(&r.reason, "password longer than %d bytes", AUTH_PASSWORD_MAX);
    } else if (memchr(pw, '\0', pwlen) != NULL) {
        v = VERDICT_FAIL;
        strbuf_sets(&r.reason, "password contains a NUL byte");
    } else {
        v = auth_route(s, user, pw, pwlen, client, want_token, &id, &r.reason);
    }
    explicit_bzero((void *)pw, pwlen); /* our copy of the record: gone now */

    if (v == VERDICT_OK && want_token) {
        if (token_issue(s, &id, service, &token, &err) < 0) {
            v = VERDICT_TEMPFAIL;
            strbuf_sets(&r.reason, "cannot issue a token");
            log_error("cannot issue a token for user=<%s>: %s", id.user.data, err.data);
        }
    }
    const char *logname = id.user.len ? id.user.data : user;
    if (v == VERDICT_OK) {
        throttle_success(s, client);
        r.status = "ok";
        r.user = id.user.data;
        if (want_token) {
            r.id = &id;
            r.token = token.data;
        }
        log_info("ok for user=<%s> client=%s service=%s (%s)", logname, client, service,
                 r.reason.data);
    } else if (v == VERDICT_TEMPFAIL) {
        r.status = "tempfail";
        log_warning("temporary failure for user=<%s> client=%s service=%s (%s)", logname, client,
                    service, r.reason.data);
    } else {
        long long delay = throttle_failure(s, client, now);
        log_info("failed for user=<%s> client=%s service=%s (%s)", logname, client, service,
                 r.reason.data);
        if (delay > 0)
            sleep_ms(delay);
        r.status = "fail";
    }
reply:
    send_reply(fd, &r);
    if (token.data)
        explicit_bzero(token.data, token.len);
    strbuf_free(&token);
    auth_identity_free(&id);
    strbuf_free(&err);
    strbuf_free(&r.reason);
}

static void do_redeem(const struct auth_settings *s, const struct attr_list *req, int fd,
                      const char *service)
{
    struct reply r = {0};
    strbuf_init(&r.reason);
    strbuf err;
    strbuf_init(&err);
    struct auth_identity id;
    auth_identity_init(&id);
    r.status = "fail";
    const char *token = attr_require(req, "token", &err);
    if (strcmp(service, "pop3") != 0 && strcmp(service, "imap") != 0) {
        strbuf_sets(&r.reason, "malformed request: tokens are redeemed by pop3 and imap only");
        log_warning("malformed redeem request from service %s", service);
    } else if (token == NULL) {
        strbuf_printf(&r.reason, "malformed request: %s", err.data);
        log_warning("malformed redeem request: %s", err.data);
    } else if (!token_syntax_ok(token)) {
        strbuf_sets(&r.reason, "unknown token");
        log_info("token redeem failed for service=%s (malformed token)", service);
    } else {
        int rc = token_redeem(s, token, service, &id, &r.reason);
        if (rc > 0) {
            r.status = "ok";
            r.user = id.user.data;
            r.id = &id;
            log_info("token redeemed for user=<%s> service=%s", id.user.data, service);
        } else {
            r.status = rc == 0 ? "fail" : "tempfail";
            log_info("token redeem failed for service=%s (%s)", service, r.reason.data);
        }
    }
    send_reply(fd, &r);
    auth_identity_free(&id);
    strbuf_free(&err);
    strbuf_free(&r.reason);
}

void auth_serve(const struct auth_settings *s, int fd)
{
    struct attr_list *req = attr_list_new();
    strbuf err;
    strbuf_init(&err);
    int rc = attr_read(fd, req, &request_limits, AUTH_READ_TIMEOUT_MS, &err);
    if (rc == 0)
        goto out; /* a client that connected and went away */
    const char *op = NULL, *service = NULL;
    if (rc < 0 || attr_expect_protocol(req, "auth", &err) < 0 ||
        (op = attr_require(req, "op", &err)) == NULL ||
        (service = attr_require(req, "service", &err)) == NULL) {
        log_warning("malformed request: %s", err.data);
        struct reply r = {.status = "fail"};
        strbuf_init(&r.reason);
        strbuf_printf(&r.reason, "malformed request: %s", err.data);
        send_reply(fd, &r);
        strbuf_free(&r.reason);
        goto out;
    }
    if (!service_ok(service)) {
        struct reply r = {.status = "fail"};
        strbuf_init(&r.reason);
        strbuf_sets(&r.reason, "malformed request: service must be smtp, pop3 or imap");
        log_warning("malformed request: unknown service \"%s\"", service);
        send_reply(fd, &r);
        strbuf_free(&r.reason);
    } else if (strcmp(op, "password") == 0) {
        do_password(s, req, fd, service);
    } else if (strcmp(op, "redeem") == 0) {
        do_redeem(s, req, fd, service);
    } else {
        struct reply r = {.status = "fail"};
        strbuf_init(&r.reason);
        strbuf_sets(&r.reason, "malformed request: op must be password or redeem");
        log_warning("malformed request: unknown op \"%s\"", op);
        send_reply(fd, &r);
        strbuf_free(&r.reason);
    }
out:
    /* The password may sit in the list, whatever happened above. */
    for (size_t i = 0; i < attr_count(req); i++)
        if (strcmp(attr_name_at(req, i), "password") == 0) {
            size_t n;
            const char *v = attr_value_at(req, i, &n);
            explicit_bzero((void *)v, n);
        }
    attr_list_free(&req);
    strbuf_free(&err);
}
