/*
 * test_auth_client.c - unit tests for lib/mail/auth_client: the requests it
 * sends and its strict checking of replies, against a fake auth service (a
 * forked child listening on <tmp>/private/auth that checks the request and
 * answers raw bytes, so malformed replies can be sent too).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail/auth_client.h"
#include "util/attr.h"
#include "util/strbuf.h"

struct fixture {
    char dir[64];
    char sock[128];
    int lfd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_auth_client.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    char priv[100];
    snprintf(priv, sizeof(priv), "%s/private", f->dir);
    mkdir(priv, 0700);
    snprintf(f->sock, sizeof(f->sock), "%s/auth", priv);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, f->sock);
    if (bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(f->lfd, 5) < 0)
        return -1;
    auth_client_set_timeout(2000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close(f->lfd);
    unlink(f->sock);
    char priv[100];
    snprintf(priv, sizeof(priv), "%s/private", f->dir);
    rmdir(priv);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* What the fake service expects of the request (NULL = must be absent). */
struct expect {
    const char *op, *service, *client, *user, *token;
    const char *password;
    size_t password_len;
};

enum fake_mode {
    FAKE_REPLY,   /* read the request, answer `reply` */
    FAKE_CLOSE,   /* read the request, close without a word */
    FAKE_SILENT,  /* read the request, never answer */
};

/* Child: exit 0 when the request matched `want`, 1 otherwise. */
static void fake_child(int lfd, const struct expect *want, enum fake_mode mode, const char *reply,
                       size_t reply_len)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        _exit(2);
    struct attr_list *l = attr_list_new();
    strbuf err;
    strbuf_init(&err);
    int ok = attr_read(fd, l, NULL, 5000, &err) == 1 && attr_expect_protocol(l, "auth", &err) == 0;
    const struct {
        const char *name, *value;
    } checks[] = {{"op", want->op},         {"service", want->service}, {"client", want->client},
                  {"user", want->user},     {"token", want->token}};
    for (size_t i = 0; ok && i < sizeof(checks) / sizeof(checks[0]); i++) {
        const char *v = attr_get(l, checks[i].name);
        if (checks[i].value == NULL ? v != NULL : (v == NULL || strcmp(v, checks[i].value) != 0))
            ok = 0;
    }
    if (ok && want->password) {
        size_t n;
        const char *p = attr_get_bytes(l, "password", &n);
        ok = p && n == want->password_len && memcmp(p, want->password, n) == 0;
    }
    if (mode == FAKE_REPLY)
        (void)!write(fd, reply, reply_len);
    else if (mode == FAKE_SILENT)
        sleep(5);
    close(fd);
    _exit(ok ? 0 : 1);
}

static pid_t start_fake(struct fixture *f, const struct expect *want, enum fake_mode mode,
                        const char *reply, size_t reply_len)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        fake_child(f->lfd, want, mode, reply, reply_len);
    return pid;
}

static int reap(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static const struct expect PW = {"password", "smtp", "192.0.2.7", "bob@example.org", NULL,
                                 "p:a,s\xc3\xa9", 7};

#define REC(s) s, sizeof(s) - 1

/* A password request answered with `reply`; returns the client's rc. */
static int ask_pw(struct fixture *f, const char *reply, size_t len, struct auth_result *r)
{
    pid_t pid = start_fake(f, &PW, FAKE_REPLY, reply, len);
    int rc = auth_verify_password(f->dir, "smtp", "192.0.2.7", "bob@example.org", PW.password,
                                  PW.password_len, false, r);
    assert_int_equal(reap(pid), 0);
    return rc;
}

static void test_ok(void **state)
{
    struct fixture *f = *state;
    struct auth_result r;
    auth_result_init(&r);
    int rc = ask_pw(f, REC("8:protocol,4:auth,6:status,2:ok,4:user,15:bob@example.org,"
                           "6:reason,13:authenticated,0:,"), &r);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, AUTH_OK);
    assert_string_equal(r.user.data, "bob@example.org");
    assert_string_equal(r.reason.data, "authenticated");
    assert_int_equal(r.token.len, 0);
    auth_result_free(&r);
}

static void test_statuses(void **state)
{
    struct fixture *f = *state;
    const struct {
        const char *rec;
        size_t len;
        enum auth_status st;
    } cases[] = {
        {REC("8:protocol,4:auth,6:status,4:fail,6:reason,17:password mismatch,0:,"), AUTH_FAIL},
        {REC("8:protocol,4:auth,6:status,8:tempfail,6:reason,3:pam,0:,"), AUTH_TEMPFAIL},
        {REC("8:protocol,4:auth,6:status,9:throttled,0:,"), AUTH_THROTTLED},
        /* unknown attributes are ignored (forward compatibility) */
        {REC("8:protocol,4:auth,6:status,4:fail,5:extra,1:x,0:,"), AUTH_FAIL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct auth_result r;
        auth_result_init(&r);
        assert_int_equal(ask_pw(f, cases[i].rec, cases[i].len, &r), 0);
        assert_int_equal(r.status, cases[i].st);
        auth_result_free(&r);
    }
}

static void test_token_request(void **state)
{
    struct fixture *f = *state;
    struct expect want = {"password", "imap", "unknown", "bob", "1", "pw", 2};
    const char rep[] = "8:protocol,4:auth,6:status,2:ok,4:user,3:bob,4:home,9:/home/bob,"
                       "3:uid,4:1001,3:gid,3:100,7:mailbox,18:/home/bob/Maildir/,"
                       "5:token,32:0123456789abcdef0123456789abcdef,0:,";
    pid_t pid = start_fake(f, &want, FAKE_REPLY, REC(rep));
    struct auth_result r;
    auth_result_init(&r);
    assert_int_equal(auth_verify_password(f->dir, "imap", NULL, "bob", "pw", 2, true, &r), 0);
    assert_int_equal(reap(pid), 0);
    assert_int_equal(r.status, AUTH_OK);
    assert_string_equal(r.token.data, "0123456789abcdef0123456789abcdef");
    assert_int_equal(r.uid, 1001);
    assert_int_equal(r.gid, 100);
    assert_string_equal(r.home.data, "/home/bob");
    assert_string_equal(r.mailbox.data, "/home/bob/Maildir/");
    auth_result_free(&r);

    /* asked for a token, got none: not trusted */
    pid = start_fake(f, &want, FAKE_REPLY, REC("8:protocol,4:auth,6:status,2:ok,4:user,3:bob,0:,"));
    auth_result_init(&r);
    assert_int_equal(auth_verify_password(f->dir, "imap", NULL, "bob", "pw", 2, true, &r), -1);
    assert_int_equal(reap(pid), 0);
    assert_int_equal(r.status, AUTH_TEMPFAIL);
    assert_non_null(strstr(r.reason.data, "without the token"));
    auth_result_free(&r);
}

static void test_redeem(void **state)
{
    struct fixture *f = *state;
    struct expect want = {"redeem", "pop3", NULL, NULL, "abc123", NULL, 0};
    const char ok[] = "8:protocol,4:auth,6:status,2:ok,4:user,3:bob,4:home,9:/home/bob,"
                      "3:uid,4:1001,3:gid,3:100,7:mailbox,18:/home/bob/Maildir/,0:,";
    pid_t pid = start_fake(f, &want, FAKE_REPLY, REC(ok));
    struct auth_result r;
    auth_result_init(&r);
    assert_int_equal(auth_redeem_token(f->dir, "pop3", "abc123", &r), 0);
    assert_int_equal(reap(pid), 0);
    assert_int_equal(r.status, AUTH_OK);
    assert_int_equal(r.uid, 1001);
    assert_string_equal(r.mailbox.data, "/home/bob/Maildir/");
    auth_result_free(&r);

    /* identity incomplete */
    pid = start_fake(f, &want, FAKE_REPLY,
                     REC("8:protocol,4:auth,6:status,2:ok,4:user,3:bob,4:home,9:/home/bob,0:,"));
    auth_result_init(&r);
    assert_int_equal(auth_redeem_token(f->dir, "pop3", "abc123", &r), -1);
    assert_int_equal(reap(pid), 0);
    assert_int_equal(r.status, AUTH_TEMPFAIL);
    assert_non_null(strstr(r.reason.data, "missing attribute \"uid\""));
    auth_result_free(&r);

    /* a used token: fail is a normal answer */
    pid = start_fake(f, &want, FAKE_REPLY,
                     REC("8:protocol,4:auth,6:status,4:fail,6:reason,13:unknown token,0:,"));
    auth_result_init(&r);
    assert_int_equal(auth_redeem_token(f->dir, "pop3", "abc123", &r), 0);
    assert_int_equal(reap(pid), 0);
    assert_int_equal(r.status, AUTH_FAIL);
    auth_result_free(&r);
}

/* Replies that must be refused: rc -1, status TEMPFAIL, reason names why. */
static void test_bad_replies(void **state)
{
    struct fixture *f = *state;
    const struct {
        const char *rec;
        size_t len;
        const char *why;
    } cases[] = {
        {REC("8:protocol,6:verify,6:status,2:ok,0:,"), "expected \"auth\""},
        {REC("6:status,2:ok,0:,"), "protocol"},
        {REC("8:protocol,4:auth,0:,"), "missing attribute \"status\""},
        {REC("8:protocol,4:auth,6:status,3:yes,0:,"), "unknown status \"yes\""},
        {REC("8:protocol,4:auth,6:status,2:ok,0:,"), "without a user name"},
        {REC("8:protocol,4:auth,6:status,2:ok,4:user,0:,0:,"), "without a user name"},
        {REC("8:protocol,4:auth,6:status,2:ok,4:user,7:bob\0eve,0:,"), "control character"},
        {REC("8:protocol,4:auth,6:status,4:fail,6:reason,5:a\r\nb.,0:,"), "control character"},
        {REC("8:protocol,4:auth,6:status,2:ok,4:user,3:bob,5:token,3:../,0:,"), "malformed token"},
        {REC("8:protocol,4:auth,6:status,2:ok,4:user,3:bob,3:uid,2:-1,3:gid,1:0,"
             "4:home,1:/,7:mailbox,1:/,0:,"), "uid"},
        {REC("8:protocol,4:auth,6:status,2:ok,4:user,3:bob,3:uid,2:01,3:gid,1:0,"
             "4:home,1:/,7:mailbox,1:/,0:,"), "uid"},
        {REC("8:protocol,4:auth,6:status,2:ok,4:user,3:bob,3:uid,1:1,3:gid,1:1,"
             "4:home,3:tmp,7:mailbox,1:/,0:,"), "absolute"},
        {REC("8:protocol,4:auth,6:status,2:ok;0:,"), "malformed IPC record"},
        {REC("8:protocol,4:auth,6:status,99999:"), "limit"},
        {REC("8:protocol,4:auth,6:sta"), "closed the connection in the middle"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct auth_result r;
        auth_result_init(&r);
        int rc = ask_pw(f, cases[i].rec, cases[i].len, &r);
        if (rc != -1 || r.status != AUTH_TEMPFAIL || strstr(r.reason.data, cases[i].why) == NULL)
            fail_msg("case %zu: rc %d status %d reason \"%s\" (wanted \"%s\")", i, rc, r.status,
                     r.reason.data, cases[i].why);
        assert_int_equal(r.user.len, 0);
        auth_result_free(&r);
    }
}

static void test_no_service(void **state)
{
    struct fixture *f = *state;
    struct auth_result r;
    auth_result_init(&r);
    assert_int_equal(auth_verify_password("/nonexistent/queue", "smtp", "1.2.3.4", "bob", "x", 1,
                                          false, &r),
                     -1);
    assert_int_equal(r.status, AUTH_TEMPFAIL);
    assert_non_null(strstr(r.reason.data, "cannot connect to the auth service"));
    auth_result_free(&r);

    /* a path longer than sun_path */
    char longdir[300];
    memset(longdir, 'a', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    auth_result_init(&r);
    assert_int_equal(auth_redeem_token(longdir, "imap", "abc", &r), -1);
    assert_non_null(strstr(r.reason.data, "too long"));
    auth_result_free(&r);

    /* missing arguments */
    auth_result_init(&r);
    assert_int_equal(auth_verify_password(f->dir, "smtp", NULL, NULL, "x", 1, false, &r), -1);
    assert_int_equal(r.status, AUTH_TEMPFAIL);
    auth_result_free(&r);
}

static void test_peer_closes_or_hangs(void **state)
{
    struct fixture *f = *state;
    struct auth_result r;
    auth_result_init(&r);
    pid_t pid = start_fake(f, &PW, FAKE_CLOSE, NULL, 0);
    assert_int_equal(auth_verify_password(f->dir, "smtp", "192.0.2.7", "bob@example.org",
                                          PW.password, PW.password_len, false, &r),
                     -1);
    assert_int_equal(reap(pid), 0);
    assert_non_null(strstr(r.reason.data, "without a reply"));
    auth_result_free(&r);

    auth_client_set_timeout(300);
    auth_result_init(&r);
    pid = start_fake(f, &PW, FAKE_SILENT, NULL, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(auth_verify_password(f->dir, "smtp", "192.0.2.7", "bob@example.org",
                                          PW.password, PW.password_len, false, &r),
                     -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(pid, SIGKILL);
    reap(pid);
    assert_true(t1.tv_sec - t0.tv_sec < 4);
    assert_int_equal(r.status, AUTH_TEMPFAIL);
    assert_non_null(strstr(r.reason.data, "timeout"));
    auth_result_free(&r);
    auth_client_set_timeout(2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_token_request),
        cmocka_unit_test(test_redeem),
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_no_service),
        cmocka_unit_test(test_peer_closes_or_hangs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
