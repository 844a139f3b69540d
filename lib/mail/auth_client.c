/*
 * auth_client.c - the client side of the auth protocol (auth_client.h,
 * docs/ipc.md "auth"): connect to <queue_dir>/private/auth, send one
 * request record, read one reply record and check it strictly.
 *
 * The reply decides whether a user gets in, so it is validated as if the
 * peer were hostile: the protocol name, a known status, text values free of
 * control bytes, numbers in range, and every attribute the status requires.
 * Anything else is "the service could not be asked" (AUTH_TEMPFAIL, -1):
 * a broken auth service must never let a user in nor lock one out.
 */
#include "mail/auth_client.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A reply is small: identity, paths, a token and a reason. */
static const struct attr_limits reply_limits = {
    .max_attrs = 32,
    .max_value = 8192,
    .max_total = 65536,
};

static int io_timeout_ms = AUTH_IO_TIMEOUT_MS;

void auth_client_set_timeout(int timeout_ms)
{
    io_timeout_ms = timeout_ms > 0 ? timeout_ms : AUTH_IO_TIMEOUT_MS;
}

void auth_result_init(struct auth_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = AUTH_TEMPFAIL;
    r->uid = (uid_t)-1;
    r->gid = (gid_t)-1;
    strbuf_init(&r->user);
    strbuf_init(&r->home);
    strbuf_init(&r->mailbox);
    strbuf_init(&r->token);
    strbuf_init(&r->reason);
}

void auth_result_free(struct auth_result *r)
{
    strbuf_free(&r->user);
    strbuf_free(&r->home);
    strbuf_free(&r->mailbox);
    /* The token is a credential for a short while: do not leave it in freed memory. */
    if (r->token.data)
        explicit_bzero(r->token.data, r->token.len);
    strbuf_free(&r->token);
    strbuf_free(&r->reason);
    r->status = AUTH_TEMPFAIL;
}

/* Empties the result and records why the service could not be asked. */
static int fail_tempfail(struct auth_result *res, const char *why)
{
    strbuf_reset(&res->user);
    strbuf_reset(&res->home);
    strbuf_reset(&res->mailbox);
    strbuf_reset(&res->token);
    res->uid = (uid_t)-1;
    res->gid = (gid_t)-1;
    res->status = AUTH_TEMPFAIL;
    strbuf_sets(&res->reason, why);
    return -1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to the service socket within the timeout. A UNIX connect only
 * waits when the listen backlog is full (EAGAIN on a non-blocking socket):
 * retry then, a little later, until the deadline. */
static int connect_service(const char *queue_dir, strbuf *err)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/private/auth", queue_dir);
    if (path.len >= sizeof(sun.sun_path)) {
        strbuf_printf(err, "auth service socket path %s is too long", path.data);
        strbuf_free(&path);
        return -1;
    }
    memcpy(sun.sun_path, path.data, path.len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_printf(err, "auth service: socket: %s", strerror(errno));
        strbuf_free(&path);
        return -1;
    }
    long long deadline = now_ms() + io_timeout_ms;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
            break;
        if ((errno == EAGAIN || errno == EINTR) && now_ms() < deadline) {
            poll(NULL, 0, 20);
            continue;
        }
        if (errno == EAGAIN)
            strbuf_printf(err, "cannot connect to the auth service at %s: timeout (the service "
                               "is busy)",
                          path.data);
        else
            strbuf_printf(err, "cannot connect to the auth service at %s: %s", path.data,
                          strerror(errno));
        close(fd);
        strbuf_free(&path);
        return -1;
    }
    strbuf_free(&path);
    /* attr_read/attr_write poll with their own deadlines; blocking mode is fine. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* A text value of the reply: no NUL, no control bytes. NULL when absent.
 * Sets *bad when present but unacceptable. */
static const char *reply_text(const struct attr_list *l, const char *name, strbuf *err,
                              bool *bad)
{
    size_t n;
    const char *v = attr_get_bytes(l, name, &n);
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            strbuf_printf(err, "attribute \"%s\" holds a control character", name);
            *bad = true;
            return NULL;
        }
    }
    return v;
}

static bool token_syntax_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > AUTH_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
            return false;
    return true;
}

enum reply_need {
    NEED_NOTHING,
    NEED_TOKEN,    /* op=password with token=1 */
    NEED_IDENTITY, /* op=redeem */
};

/* Checks the reply and fills res. 0, or -1 with the reason in err. */
static int parse_reply(const struct attr_list *l, enum reply_need need, struct auth_result *res,
                       strbuf *err)
{
    if (attr_expect_protocol(l, "auth", err) < 0)
        return -1;
    bool bad = false;
    const char *status = reply_text(l, "status", err, &bad);
    if (bad)
        return -1;
    if (status == NULL) {
        strbuf_sets(err, "missing attribute \"status\"");
        return -1;
    }
    if (strcmp(status, "ok") == 0)
        res->status = AUTH_OK;
    else if (strcmp(status, "fail") == 0)
        res->status = AUTH_FAIL;
    else if (strcmp(status, "tempfail") == 0)
        res->status = AUTH_TEMPFAIL;
    else if (strcmp(status, "throttled") == 0)
        res->status = AUTH_THROTTLED;
    else {
        strbuf_sets(err, "unknown status \"");
        log_sanitize(err, status, strlen(status));
        strbuf_appends(err, "\"");
        return -1;
    }
    const char *user = reply_text(l, "user", err, &bad);
    const char *reason = reply_text(l, "reason", err, &bad);
    const char *home = reply_text(l, "home", err, &bad);
    const char *mailbox = reply_text(l, "mailbox", err, &bad);
    const char *token = reply_text(l, "token", err, &bad);
    if (bad)
        return -1;
    strbuf_sets(&res->reason, reason ? reason : "");
    strbuf_sets(&res->user, user ? user : "");
    if (res->status != AUTH_OK)
        return 0;

    if (user == NULL || *user == '\0') {
        strbuf_sets(err, "status ok without a user name");
        return -1;
    }
    if (need == NEED_TOKEN || token != NULL) {
        if (token == NULL) {
            strbuf_sets(err, "status ok without the token that was asked for");
            return -1;
        }
        if (!token_syntax_ok(token)) {
            strbuf_printf(err, "malformed token (expected 1 to %d characters a-z 0-9)",
                          AUTH_TOKEN_MAX);
            return -1;
        }
        strbuf_sets(&res->token, token);
    }
    if (need == NEED_IDENTITY || attr_get_bytes(l, "uid", NULL) != NULL) {
        long long uid, gid;
        if (attr_get_int(l, "uid", 0, (long long)UINT32_MAX - 1, &uid, err) < 0 ||
            attr_get_int(l, "gid", 0, (long long)UINT32_MAX - 1, &gid, err) < 0)
            return -1;
        if (home == NULL || home[0] != '/' || mailbox == NULL || mailbox[0] != '/') {
            strbuf_sets(err, "home and mailbox must be absolute paths");
            return -1;
        }
        res->uid = (uid_t)uid;
        res->gid = (gid_t)gid;
        strbuf_sets(&res->home, home);
        strbuf_sets(&res->mailbox, mailbox);
    }
    return 0;
}

/* One request, one reply. */
static int ask(const char *queue_dir, struct attr_list *req, enum reply_need need,
               struct auth_result *res)
{
    strbuf err;
    strbuf_init(&err);
    int rc = -1;
    struct attr_list *reply = attr_list_new();
    int fd = connect_service(queue_dir, &err);
    if (fd < 0)
        goto out;
    if (attr_write(fd, req, io_timeout_ms) < 0) {
        strbuf_printf(&err, "auth service: cannot send the request: %s", strerror(errno));
        goto out;
    }
    strbuf rerr;
    strbuf_init(&rerr);
    int r = attr_read(fd, reply, &reply_limits, io_timeout_ms, &rerr);
    if (r == 0)
        strbuf_sets(&err, "auth service closed the connection without a reply");
    else if (r < 0)
        strbuf_printf(&err, "auth service: %s", rerr.data);
    strbuf_free(&rerr);
    if (r <= 0)
        goto out;
    strbuf perr;
    strbuf_init(&perr);
    if (parse_reply(reply, need, res, &perr) < 0)
        strbuf_printf(&err, "auth service sent a bad reply: %s", perr.data);
    else
        rc = 0;
    strbuf_free(&perr);
out:
    if (fd >= 0)
        close(fd);
    attr_list_free(&reply);
    if (rc < 0)
        fail_tempfail(res, err.data);
    strbuf_free(&err);
    return rc;
}

int auth_verify_password(const char *queue_dir, const char *service, const char *client_addr,
                         const char *user, const char *password, size_t password_len,
                         bool want_token, struct auth_result *res)
{
    if (queue_dir == NULL || service == NULL || user == NULL ||
        (password == NULL && password_len > 0))
        return fail_tempfail(res, "auth request without a queue directory, service or user");
    struct attr_list *req = attr_list_new();
    attr_add_str(req, ATTR_PROTOCOL, "auth");
    attr_add_str(req, "op", "password");
    attr_add_str(req, "service", service);
    attr_add_str(req, "client", client_addr && *client_addr ? client_addr : "unknown");
    attr_add_str(req, "user", user);
    attr_add_bytes(req, "password", password ? password : "", password_len);
    if (want_token)
        attr_add_str(req, "token", "1");
    int rc = ask(queue_dir, req, want_token ? NEED_TOKEN : NEED_NOTHING, res);
    attr_list_free(&req);
    return rc;
}

int auth_redeem_token(const char *queue_dir, const char *service, const char *token,
                      struct auth_result *res)
{
    if (queue_dir == NULL || service == NULL || token == NULL)
        return fail_tempfail(res, "token redeem request without a queue directory, service or "
                                  "token");
    struct attr_list *req = attr_list_new();
    attr_add_str(req, ATTR_PROTOCOL, "auth");
    attr_add_str(req, "op", "redeem");
    attr_add_str(req, "service", service);
    attr_add_str(req, "token", token);
    int rc = ask(queue_dir, req, NEED_IDENTITY, res);
    attr_list_free(&req);
    return rc;
}
