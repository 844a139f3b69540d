/*
 * test_privilege.c - unit tests for lib/util/privilege.c.
 *
 * Lookups run everywhere. The identity switches run in a forked child (a
 * dropped process cannot come back, and cmocka's longjmp must not cross a
 * fork), which reports the first failed check through its exit status; the
 * parent asserts status 0 and names the failed check otherwise. Tests that
 * need root skip cleanly when run by an ordinary user.
 */
#define _GNU_SOURCE /* getresuid */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/privilege.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MISSING_USER "petrel-test-no-such-user-x9"

/* ---- helpers ---- */

/* Runs fn in a child and returns its exit status (or 100+signal). */
static int run_in_child(int (*fn)(void *), void *arg)
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        return 100 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

static void skip_unless_root(void)
{
    if (geteuid() != 0) {
        print_message("    (not root: identity switching not testable)\n");
        skip();
    }
}

/* Looks up nobody for the tests that switch to it; skips if absent. */
static void lookup_nobody(struct priv_user *u)
{
    strbuf err;
    strbuf_init(&err);
    if (privilege_lookup_user("nobody", u, &err) != PRIV_LOOKUP_FOUND) {
        print_message("    (no user nobody: %s)\n", err.data);
        strbuf_free(&err);
        skip();
    }
    strbuf_free(&err);
    assert_int_not_equal(u->uid, 0);
}

/* Writes a file with the given mode (mode forced despite the umask). */
static void make_file(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x\n", 2), 2);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

/* ---- lookups ---- */

static void test_lookup_root(void **state)
{
    (void)state;
    struct priv_user u;
    strbuf err;
    strbuf_init(&err);

    assert_int_equal(privilege_lookup_user("root", &u, &err), PRIV_LOOKUP_FOUND);
    assert_int_equal(u.uid, 0);
    assert_int_equal(u.gid, 0);
    assert_string_equal(u.name, "root");
    assert_non_null(u.home);
    assert_true(u.home[0] == '/');
    assert_non_null(u.shell);
    privilege_user_free(&u);
    assert_null(u.name);

    assert_int_equal(privilege_lookup_uid(0, &u, &err), PRIV_LOOKUP_FOUND);
    assert_string_equal(u.name, "root");
    privilege_user_free(&u);
    strbuf_free(&err);
}

static void test_lookup_missing_user(void **state)
{
    (void)state;
    struct priv_user u;
    strbuf err;
    strbuf_init(&err);

    assert_int_equal(privilege_lookup_user(MISSING_USER, &u, &err), PRIV_LOOKUP_NOTFOUND);
    assert_string_equal(err.data, "no such user \"" MISSING_USER "\"");
    assert_null(u.name);
    privilege_user_free(&u); /* safe on the zeroed result */

    /* A uid far above any allocated range. */
    assert_int_equal(privilege_lookup_uid((uid_t)3999999999u, &u, &err), PRIV_LOOKUP_NOTFOUND);
    assert_string_equal(err.data, "no such user with uid 3999999999");
    strbuf_free(&err);
}

/* Names that cannot exist are NOTFOUND with the reason, and the name is
 * escaped in the message so it cannot forge a log line. */
static void test_lookup_bad_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *why;
    } cases[] = {
        { "", "empty name" },
        { "root\nroot", "control character" },
        { "root\r", "control character" },
        { "a\033[2J", "control character" },
        { "a:b", "':'" },
        { "../root", "'/'" },
        { "+", "starts with '+'" },
        { "-root", "starts with '+' or '-'" },
    };
    struct priv_user u;
    struct priv_group g;
    strbuf err;
    strbuf_init(&err);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(privilege_lookup_user(cases[i].name, &u, &err), PRIV_LOOKUP_NOTFOUND);
        assert_non_null(strstr(err.data, "no such user"));
        assert_non_null(strstr(err.data, cases[i].why));
        assert_null(strchr(err.data, '\n'));
        assert_null(strchr(err.data, '\r'));
        assert_null(strchr(err.data, '\033'));
        assert_int_equal(privilege_lookup_group(cases[i].name, &g, &err), PRIV_LOOKUP_NOTFOUND);
        assert_non_null(strstr(err.data, "no such group"));
        assert_non_null(strstr(err.data, cases[i].why));
    }
    assert_string_equal(err.data, "no such group \"-root\": name starts with '+' or '-'");

    /* Overlong: refused without a database query, message stays bounded. */
    char *longname = malloc(100001);
    assert_non_null(longname);
    memset(longname, 'a', 100000);
    longname[100000] = '\0';
    assert_int_equal(privilege_lookup_user(longname, &u, &err), PRIV_LOOKUP_NOTFOUND);
    assert_non_null(strstr(err.data, "name too long"));
    assert_true(err.len < 400);
    free(longname);
    strbuf_free(&err);
}

static void test_lookup_group(void **state)
{
    (void)state;
    struct priv_group g;
    strbuf err;
    strbuf_init(&err);

    assert_int_equal(privilege_lookup_group("root", &g, &err), PRIV_LOOKUP_FOUND);
    assert_int_equal(g.gid, 0);
    assert_string_equal(g.name, "root");
    privilege_group_free(&g);
    assert_null(g.name);

    assert_int_equal(privilege_lookup_group(MISSING_USER, &g, &err), PRIV_LOOKUP_NOTFOUND);
    assert_string_equal(err.data, "no such group \"" MISSING_USER "\"");
    privilege_group_free(&g);
    strbuf_free(&err);
}

/* ---- dropping ---- */

/* Refused before any system call, so safe to run in this process. */
static void test_refuse_root_without_flag(void **state)
{
    (void)state;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(privilege_drop(0, 0, NULL, 0, &err), -1);
    assert_non_null(strstr(err.data, "refusing to run as uid 0"));
    strbuf_free(&err);
}

struct drop_args {
    uid_t uid;
    gid_t gid;
    const char *secret;     /* a root-only 0600 file the child must not open */
    const char *jail;       /* chroot directory or NULL */
    const char *outside;    /* a file that must not be visible in the jail */
};

/* Child: drop to nobody and prove it. Exit codes name the failed check. */
static int child_drop_nobody(void *p)
{
    struct drop_args *a = p;
    uid_t r, e, s;
    gid_t rg, eg, sg, groups[4];
    strbuf err;
    int n;

    strbuf_init(&err);
    if (privilege_drop(a->uid, a->gid, NULL, 0, &err) != 0) {
        fprintf(stderr, "privilege_drop: %s\n", err.data);
        return 1;
    }
    if (getresuid(&r, &e, &s) != 0 || r != a->uid || e != a->uid || s != a->uid)
        return 2;
    if (getresgid(&rg, &eg, &sg) != 0 || rg != a->gid || eg != a->gid || sg != a->gid)
        return 3;
    n = getgroups(4, groups);
    if (n != 1 || groups[0] != a->gid)
        return 4;
    if (setuid(0) == 0 || errno != EPERM)
        return 5;
    if (seteuid(0) == 0 || setgid(0) == 0 || setgroups(0, NULL) == 0)
        return 6;
    if (open(a->secret, O_RDONLY) >= 0 || errno != EACCES)
        return 7;
    if (privilege_can_switch())
        return 8;
    return 0;
}

static void test_drop_to_nobody(void **state)
{
    (void)state;
    char dir[] = "/tmp/petrel-priv-XXXXXX";
    char secret[sizeof(dir) + 16];
    struct priv_user nobody;
    struct drop_args a = { 0 };

    skip_unless_root();
    lookup_nobody(&nobody);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    snprintf(secret, sizeof(secret), "%s/secret", dir);
    make_file(secret, 0600);

    a.uid = nobody.uid;
    a.gid = nobody.gid;
    a.secret = secret;
    int rc = run_in_child(child_drop_nobody, &a);

    unlink(secret);
    rmdir(dir);
    privilege_user_free(&nobody);
    /* 1 drop failed, 2 uids, 3 gids, 4 groups, 5 setuid(0), 6 seteuid/setgid/setgroups,
     * 7 root file readable, 8 still claims it can switch */
    assert_int_equal(rc, 0);
}

/* Child: chroot + drop, then look around. */
static int child_chroot(void *p)
{
    struct drop_args *a = p;
    char cwd[64];
    strbuf err;

    strbuf_init(&err);
    if (privilege_drop(a->uid, a->gid, a->jail, 0, &err) != 0) {
        fprintf(stderr, "privilege_drop: %s\n", err.data);
        return 1;
    }
    if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
        return 2;
    if (access("/inside", R_OK) != 0)
        return 3;
    if (access(a->outside, F_OK) == 0 || errno != ENOENT)
        return 4;
    if (access("/../../inside", R_OK) != 0) /* ".." at the root stays inside */
        return 5;
    if (chroot("/") == 0) /* no way to re-chroot out */
        return 6;
    return 0;
}

static void test_chroot(void **state)
{
    (void)state;
    char jail[] = "/tmp/petrel-jail-XXXXXX";
    char out[] = "/tmp/petrel-out-XXXXXX";
    char inside[sizeof(jail) + 16], outside[sizeof(out) + 16];
    struct priv_user nobody;
    struct drop_args a = { 0 };

    skip_unless_root();
    lookup_nobody(&nobody);
    assert_non_null(mkdtemp(jail));
    assert_non_null(mkdtemp(out));
    assert_int_equal(chmod(jail, 0755), 0);
    assert_int_equal(chmod(out, 0755), 0);
    snprintf(inside, sizeof(inside), "%s/inside", jail);
    snprintf(outside, sizeof(outside), "%s/outside", out);
    make_file(inside, 0644);
    make_file(outside, 0644);
    assert_int_equal(access(outside, R_OK), 0);

    a.uid = nobody.uid;
    a.gid = nobody.gid;
    a.jail = jail;
    a.outside = outside;
    int rc = run_in_child(child_chroot, &a);

    unlink(inside);
    unlink(outside);
    rmdir(jail);
    rmdir(out);
    privilege_user_free(&nobody);
    /* 1 drop failed, 2 cwd not /, 3 jail file missing, 4 outside visible,
     * 5 escaped by .., 6 could chroot again */
    assert_int_equal(rc, 0);
}

static int child_bad_chroot(void *p)
{
    struct drop_args *a = p;
    strbuf err;
    strbuf_init(&err);
    if (privilege_drop(a->uid, a->gid, "/nonexistent/petrel-jail", 0, &err) == 0)
        return 1;
    if (strcmp(err.data, "cannot chroot to /nonexistent/petrel-jail: No such file or directory") != 0) {
        fprintf(stderr, "unexpected message: %s\n", err.data);
        return 2;
    }
    return 0;
}

static void test_bad_chroot_dir(void **state)
{
    (void)state;
    struct priv_user nobody;
    struct drop_args a = { 0 };

    skip_unless_root();
    lookup_nobody(&nobody);
    a.uid = nobody.uid;
    a.gid = nobody.gid;
    assert_int_equal(run_in_child(child_bad_chroot, &a), 0);
    privilege_user_free(&nobody);
}

static int child_allow_root(void *p)
{
    (void)p;
    gid_t groups[4];
    uid_t r, e, s;
    strbuf err;
    strbuf_init(&err);
    if (privilege_drop(0, 0, NULL, PRIV_ALLOW_ROOT, &err) != 0) {
        fprintf(stderr, "privilege_drop: %s\n", err.data);
        return 1;
    }
    if (getgroups(4, groups) != 1 || groups[0] != 0)
        return 2;
    if (getresuid(&r, &e, &s) != 0 || r != 0 || e != 0 || s != 0)
        return 3;
    return 0;
}

static void test_allow_root_flag(void **state)
{
    (void)state;
    skip_unless_root();
    assert_int_equal(run_in_child(child_allow_root, NULL), 0);
}

/* The developer-instance rules: no-op to our own ids, errors otherwise. */
static int check_unprivileged_rules(void)
{
    strbuf err;
    strbuf_init(&err);
    if (privilege_can_switch())
        return 11;
    if (privilege_drop(getuid(), getgid(), NULL, 0, &err) != 0) {
        fprintf(stderr, "no-op drop failed: %s\n", err.data);
        return 12;
    }
    if (privilege_drop(getuid() + 1, getgid(), NULL, 0, &err) != -1 ||
        strstr(err.data, "running as non-root") == NULL)
        return 13;
    if (privilege_drop(getuid(), getgid() + 1, NULL, 0, &err) != -1)
        return 14;
    if (privilege_drop(getuid(), getgid(), "/tmp", 0, &err) != -1 ||
        strstr(err.data, "cannot chroot to /tmp: running as non-root") == NULL)
        return 15;
    if (privilege_drop(0, 0, NULL, PRIV_ALLOW_ROOT, &err) != -1)
        return 16;
    strbuf_free(&err);
    return 0;
}

static int child_unprivileged(void *p)
{
    struct drop_args *a = p;
    strbuf err;
    strbuf_init(&err);
    if (privilege_drop(a->uid, a->gid, NULL, 0, &err) != 0)
        return 1;
    return check_unprivileged_rules();
}

/* As root, become nobody first so the non-root path is tested either way. */
static void test_unprivileged_noop(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        assert_int_equal(check_unprivileged_rules(), 0);
        return;
    }
    struct priv_user nobody;
    struct drop_args a = { 0 };
    lookup_nobody(&nobody);
    a.uid = nobody.uid;
    a.gid = nobody.gid;
    assert_int_equal(run_in_child(child_unprivileged, &a), 0);
    privilege_user_free(&nobody);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_root),
        cmocka_unit_test(test_lookup_missing_user),
        cmocka_unit_test(test_lookup_bad_names),
        cmocka_unit_test(test_lookup_group),
        cmocka_unit_test(test_refuse_root_without_flag),
        cmocka_unit_test(test_drop_to_nobody),
        cmocka_unit_test(test_chroot),
        cmocka_unit_test(test_bad_chroot_dir),
        cmocka_unit_test(test_allow_root_flag),
        cmocka_unit_test(test_unprivileged_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
