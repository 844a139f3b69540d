/*
 * test_login.c - unit tests for lib/login: the login -> mailbox hand-off
 * without TLS, end to end inside one test: a fake auth service (a forked
 * child answering "password" on <tmp>/login/private/auth and "redeem" on
 * <tmp>/private/auth), the login side (login_authenticate in another
 * child, on one end of a socketpair that plays the client) and the mailbox
 * side (login_handoff_receive here). Also: a refused token, a failed
 * password (nothing handed off), and hostile hand-off records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "login/login.h"
#include "util/attr.h"
#include "util/fdpass.h"
#include "util/strbuf.h"

#define TOKEN "0123456789abcdef0123456789abcdef01234567"

struct fixture {
    char dir[64];
    int auth_login;   /* <dir>/login/private/auth */
    int auth_private; /* <dir>/private/auth */
    int mailbox;      /* <dir>/login/private/pop3 */
};

static int listen_at(const char *dir, const char *rel)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 5) < 0)
        return -1;
    return fd;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_login.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    char p[200];
    const char *dirs[] = {"private", "login", "login/private"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, dirs[i]);
        mkdir(p, 0700);
    }
    f->auth_login = listen_at(f->dir, "login/private/auth");
    f->auth_private = listen_at(f->dir, "private/auth");
    f->mailbox = listen_at(f->dir, "login/private/pop3");
    auth_client_set_timeout(3000);
    *state = f;
    return f->auth_login < 0 || f->auth_private < 0 || f->mailbox < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close(f->auth_login);
    close(f->auth_private);
    close(f->mailbox);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* The fake auth service: one request on `lfd`, answered by op. */
static void fake_auth_once(int lfd, bool password_ok, bool redeem_ok)
{
    int c = accept(lfd, NULL, NULL);
    if (c < 0)
        _exit(10);
    struct attr_list *req = attr_list_new(), *rep = attr_list_new();
    strbuf err;
    strbuf_init(&err);
    if (attr_read(c, req, NULL, 3000, &err) != 1)
        _exit(11);
    const char *op = attr_get(req, "op");
    attr_add_str(rep, "protocol", "auth");
    bool redeem = op && strcmp(op, "redeem") == 0;
    if (redeem ? !redeem_ok : !password_ok) {
        attr_add_str(rep, "status", "fail");
        attr_add_str(rep, "reason", "no");
    } else {
        if (redeem && strcmp(attr_get(req, "token"), TOKEN) != 0)
            _exit(12);
        attr_add_str(rep, "status", "ok");
        attr_add_str(rep, "user", "bob");
        attr_add_str(rep, "uid", "1234");
        attr_add_str(rep, "gid", "1235");
        attr_add_str(rep, "home", "/home/bob");
        attr_add_str(rep, "mailbox", "/home/bob/Maildir/");
        if (!redeem)
            attr_add_str(rep, "token", TOKEN);
        attr_add_str(rep, "reason", "ok");
    }
    attr_write(c, rep, 3000);
    close(c);
    attr_list_free(&req);
    attr_list_free(&rep);
    strbuf_free(&err);
}

/* The login side in a child: reads "PASS x" from the client socket and
 * authenticates; exits with the login_auth result. */
static pid_t run_login(struct fixture *f, int client_srv)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    struct login_settings s;
    memset(&s, 0, sizeof(s));
    s.queue_dir = f->dir;
    s.service = "pop3";
    s.timeout_ms = 3000;
    s.relay_timeout_ms = 3000;
    struct login_conn c;
    memset(&c, 0, sizeof(c));
    c.settings = &s;
    c.fd = client_srv;
    c.io = netio_new(client_srv);
    strbuf_init(&c.tls_desc);
    snprintf(c.client_addr, sizeof(c.client_addr), "192.0.2.7");
    snprintf(c.client_log, sizeof(c.client_log), "unknown[192.0.2.7]");
    c.local_port = 110;
    strbuf line;
    strbuf_init(&line);
    if (netio_read_line(c.io, &line, NULL) != NETIO_OK || !strbuf_eq(&line, "PASS x"))
        _exit(20);
    enum login_auth r = login_authenticate(&c, "USER", "bob", "x", 1, "tag7");
    netio_free(&c.io);
    _exit((int)r);
}

static int wait_status(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static void test_handoff_plain(void **state)
{
    struct fixture *f = *state;
    int cs[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cs), 0);
    /* The client pipelines two commands behind PASS. */
    const char *sent = "PASS x\r\nSTAT\r\nQUIT\r\n";
    assert_int_equal(write(cs[0], sent, strlen(sent)), (ssize_t)strlen(sent));
    pid_t authp = fork();
    if (authp == 0) {
        fake_auth_once(f->auth_login, true, true);
        fake_auth_once(f->auth_private, true, true);
        _exit(0);
    }
    pid_t loginp = run_login(f, cs[1]);

    int sock = accept(f->mailbox, NULL, NULL);
    assert_true(sock >= 0);
    struct login_handoff h;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(login_handoff_receive(sock, f->dir, "pop3", &h, &err), 0);
    close(sock);
    assert_int_equal(h.auth.status, AUTH_OK);
    assert_string_equal(h.auth.user.data, "bob");
    assert_int_equal(h.auth.uid, 1234);
    assert_int_equal(h.auth.gid, 1235);
    assert_string_equal(h.auth.mailbox.data, "/home/bob/Maildir/");
    assert_string_equal(h.client_addr.data, "192.0.2.7");
    assert_int_equal(h.local_port, 110);
    assert_string_equal(h.tls.data, "");
    assert_string_equal(h.proto_data.data, "tag7");
    assert_string_equal(h.pending.data, "STAT\r\nQUIT\r\n");
    assert_int_equal(wait_status(loginp), LOGIN_AUTH_HANDED_OFF);
    assert_int_equal(wait_status(authp), 0);

    /* The mailbox side reads what was pipelined first, then the socket. */
    assert_int_equal(write(cs[0], "NOOP\r\n", 6), 6);
    struct netio *io = login_handoff_netio(&h);
    strbuf line;
    strbuf_init(&line);
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_OK);
    assert_string_equal(line.data, "STAT");
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_OK);
    assert_string_equal(line.data, "QUIT");
    assert_int_equal(netio_read_line(io, &line, NULL), NETIO_OK);
    assert_string_equal(line.data, "NOOP");
    /* ...and its answers reach the client on the same connection. */
    assert_int_equal(netio_puts(io, "+OK Logged in\r\n"), 0);
    assert_int_equal(netio_flush(io), 0);
    char buf[64] = {0};
    assert_int_equal(read(cs[0], buf, sizeof(buf) - 1), 15);
    assert_string_equal(buf, "+OK Logged in\r\n");
    netio_free(&io);
    login_handoff_free(&h);
    strbuf_free(&line);
    strbuf_free(&err);
    close(cs[0]);
    close(cs[1]);
}

static void test_token_refused(void **state)
{
    struct fixture *f = *state;
    int cs[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cs), 0);
    assert_int_equal(write(cs[0], "PASS x\r\n", 8), 8);
    pid_t authp = fork();
    if (authp == 0) {
        fake_auth_once(f->auth_login, true, false);
        fake_auth_once(f->auth_private, true, false);
        _exit(0);
    }
    pid_t loginp = run_login(f, cs[1]);
    int sock = accept(f->mailbox, NULL, NULL);
    struct login_handoff h;
    strbuf err;
    strbuf_init(&err);
    /* 1: the client is there to be told, but nobody is logged in. */
    assert_int_equal(login_handoff_receive(sock, f->dir, "pop3", &h, &err), 1);
    assert_true(h.client_fd >= 0);
    assert_non_null(strstr(err.data, "token not redeemed"));
    close(sock);
    assert_int_equal(wait_status(loginp), LOGIN_AUTH_HANDED_OFF);
    assert_int_equal(wait_status(authp), 0);
    login_handoff_free(&h);
    strbuf_free(&err);
    close(cs[0]);
    close(cs[1]);
}

static void test_wrong_password_hands_off_nothing(void **state)
{
    struct fixture *f = *state;
    int cs[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cs), 0);
    assert_int_equal(write(cs[0], "PASS x\r\n", 8), 8);
    pid_t authp = fork();
    if (authp == 0) {
        fake_auth_once(f->auth_login, false, false);
        _exit(0);
    }
    pid_t loginp = run_login(f, cs[1]);
    assert_int_equal(wait_status(loginp), LOGIN_AUTH_FAILED);
    assert_int_equal(wait_status(authp), 0);
    struct pollfd p = {.fd = f->mailbox, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 100), 0); /* nobody connected */
    close(cs[0]);
    close(cs[1]);
}

/* A peer on the mailbox socket that sends a descriptor and a crafted record. */
static int hostile(struct fixture *f, const char *tag, struct attr_list *rec, bool send_fd)
{
    int cs[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, cs);
    pid_t pid = fork();
    if (pid == 0) {
        char path[200];
        snprintf(path, sizeof(path), "%s/login/private/pop3", f->dir);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        strcpy(sun.sun_path, path);
        if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0)
            _exit(1);
        if (send_fd)
            fdpass_send(s, cs[1], tag, 1, 2000);
        else if (write(s, tag, 1) != 1)
            _exit(2);
        attr_write(s, rec, 2000);
        char b;
        if (read(s, &b, 1) < 0)
            _exit(3);
        _exit(0);
    }
    int sock = accept(f->mailbox, NULL, NULL);
    struct login_handoff h;
    strbuf err;
    strbuf_init(&err);
    int rc = login_handoff_receive(sock, f->dir, "pop3", &h, &err);
    if (rc < 0)
        assert_int_equal(h.client_fd, -1);
    close(sock);
    login_handoff_free(&h);
    strbuf_free(&err);
    waitpid(pid, NULL, 0);
    close(cs[0]);
    close(cs[1]);
    return rc;
}

static struct attr_list *record(const char *service, const char *extra)
{
    struct attr_list *r = attr_list_new();
    attr_add_str(r, "protocol", "login");
    attr_add_str(r, "service", service);
    attr_add_str(r, "token", TOKEN);
    attr_add_str(r, "client", "192.0.2.1");
    attr_add_int(r, "local_port", 110);
    attr_add_str(r, "tls", "");
    attr_add_str(r, "pending", "");
    if (extra)
        attr_add_str(r, extra, "x");
    return r;
}

static void test_hostile_records(void **state)
{
    struct fixture *f = *state;
    struct attr_list *r = record("imap", NULL); /* the other service's socket */
    assert_int_equal(hostile(f, "L", r, true), -1);
    attr_list_free(&r);
    r = record("pop3", "uid"); /* an identity is auth's to give, not the login's */
    assert_int_equal(hostile(f, "L", r, true), -1);
    attr_list_free(&r);
    r = record("pop3", NULL);
    assert_int_equal(hostile(f, "L", r, false), -1); /* no descriptor */
    assert_int_equal(hostile(f, "X", r, true), -1);  /* wrong tag */
    attr_list_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handoff_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_hands_off_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
