/*
 * test_mbox.c - the mbox append primitive: From_ line, >From quoting (also
 * across write calls), CRLF conversion, the trailing empty line, dot-lock
 * and fcntl locking (stale locks), refusal of symlinks, hard links,
 * executables and foreign-owned files, and truncation after a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mail/mbox.h"
#include "support/testdir.h"
#include "util/strbuf.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/test_mbox.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rm_tree(dir);
    return 0;
}

static char *path_in(const char *name)
{
    /* A few rotating buffers: symlink(path_in(a), path_in(b)) needs two. */
    static char p[4][256];
    static int next;
    next = (next + 1) % 4;
    snprintf(p[next], sizeof(p[next]), "%s/%s", dir, name);
    return p[next];
}

static void read_all(const char *path, strbuf *out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_append(out, buf, n);
    fclose(f);
}

static void opts(struct mbox_options *o)
{
    mbox_options_default(o);
    o->lock_wait = 0;
}

static void test_from_line(void **state)
{
    (void)state;
    strbuf s;
    strbuf_init(&s);
    setenv("TZ", "UTC", 1);
    tzset();
    mbox_from_line(&s, "alice@example.org", 1795931178); /* Sun Nov 29 05:46:18 2026 UTC */
    assert_string_equal(s.data, "From alice@example.org Sun Nov 29 05:46:18 2026\n");
    strbuf_reset(&s);
    mbox_from_line(&s, "", 0);
    assert_string_equal(s.data, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
    strbuf_reset(&s);
    mbox_from_line(&s, "\"john smith\"@x.org", 0);
    assert_string_equal(s.data, "From \"john_smith\"@x.org Thu Jan  1 00:00:00 1970\n");
    strbuf_free(&s);
}

/* Delivers the pieces (CRLF text) and returns the file contents. */
static void deliver_pieces(const char *name, const char *const *pieces, strbuf *out)
{
    struct mbox_options o;
    opts(&o);
    struct mbox *m;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(mbox_open(path_in(name), &o, &m, &err), MBOX_OK);
    assert_int_equal(mbox_write_raw(m, "From a@b Thu Jan  1 00:00:00 1970\n", 34, &err), 0);
    for (size_t i = 0; pieces[i]; i++)
        assert_int_equal(mbox_write_crlf(m, pieces[i], strlen(pieces[i]), &err), 0);
    assert_int_equal(mbox_commit(&m, &err), MBOX_OK);
    assert_null(m);
    read_all(path_in(name), out);
    strbuf_free(&err);
}

static void test_quoting_and_crlf(void **state)
{
    (void)state;
    static const char *const one[] = {
        "Subject: x\r\n\r\nFrom here\r\nFrom: not a header\r\n>From kept\r\nFro\r\nFrom\r\n"
        " From indented\r\nFrom ",
        NULL};
    strbuf s;
    strbuf_init(&s);
    deliver_pieces("one", one, &s);
    assert_string_equal(s.data, "From a@b Thu Jan  1 00:00:00 1970\n"
                                "Subject: x\n\n>From here\nFrom: not a header\n>From kept\n"
                                "Fro\nFrom\n From indented\n>From \n\n");
    strbuf_free(&s);
}

static void test_quoting_across_chunks(void **state)
{
    (void)state;
    /* "From " split over several calls, CR and LF split too. */
    static const char *const pieces[] = {"A: b\r", "\n\r\nFr", "o", "m x\r\nFro", "g\r\nF",
                                         "rom", " y", NULL};
    strbuf s;
    strbuf_init(&s);
    deliver_pieces("chunks", pieces, &s);
    assert_string_equal(s.data, "From a@b Thu Jan  1 00:00:00 1970\n"
                                "A: b\n\n>From x\nFrog\n>From y\n\n");
    strbuf_free(&s);
}

static void test_held_prefix_at_end(void **state)
{
    (void)state;
    static const char *const pieces[] = {"x\r\n\r\nFro", NULL};
    strbuf s;
    strbuf_init(&s);
    deliver_pieces("held", pieces, &s);
    assert_string_equal(s.data, "From a@b Thu Jan  1 00:00:00 1970\nx\n\nFro\n\n");
    strbuf_free(&s);
}

static void test_append_keeps_old_and_removes_lock(void **state)
{
    (void)state;
    static const char *const p1[] = {"first\r\n", NULL};
    static const char *const p2[] = {"second\r\n", NULL};
    strbuf s;
    strbuf_init(&s);
    deliver_pieces("two", p1, &s);
    strbuf_reset(&s);
    deliver_pieces("two", p2, &s);
    assert_string_equal(s.data, "From a@b Thu Jan  1 00:00:00 1970\nfirst\n\n"
                                "From a@b Thu Jan  1 00:00:00 1970\nsecond\n\n");
    struct stat st;
    assert_int_equal(stat(path_in("two"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(lstat(path_in("two.lock"), &st), -1);
    strbuf_free(&s);
}

static void test_fresh_dotlock_blocks(void **state)
{
    (void)state;
    int fd = open(path_in("box.lock"), O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct mbox_options o;
    opts(&o);
    struct mbox *m;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(mbox_open(path_in("box"), &o, &m, &err), MBOX_TEMP);
    assert_null(m);
    assert_non_null(strstr(err.data, "mailbox is locked"));
    /* The lock of someone else is left alone; no mailbox was created. */
    struct stat st;
    assert_int_equal(lstat(path_in("box.lock"), &st), 0);
    assert_int_equal(lstat(path_in("box"), &st), -1);
    strbuf_free(&err);
}

static void test_stale_dotlock_removed(void **state)
{
    (void)state;
    int fd = open(path_in("stale.lock"), O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct utimbuf old = {.actime = time(NULL) - 3600, .modtime = time(NULL) - 3600};
    assert_int_equal(utime(path_in("stale.lock"), &old), 0);
    struct mbox_options o;
    opts(&o);
    struct mbox *m;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(mbox_open(path_in("stale"), &o, &m, &err), MBOX_OK);
    assert_int_equal(mbox_write(m, "x\n", 2, &err), 0);
    assert_int_equal(mbox_commit(&m, &err), MBOX_OK);
    struct stat st;
    assert_int_equal(lstat(path_in("stale.lock"), &st), -1);
    strbuf_free(&err);
}

static void test_fcntl_lock_blocks(void **state)
{
    (void)state;
    int fd = open(path_in("held"), O_CREAT | O_RDWR, 0600);
    assert_true(fd >= 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        (void)!write(pipefd[1], "x", 1);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    struct mbox_options o;
    opts(&o);
    o.dotlock = false;
    struct mbox *m;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(mbox_open(path_in("held"), &o, &m, &err), MBOX_TEMP);
    assert_non_null(strstr(err.data, "locked by another process"));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* The lock died with its holder. */
    strbuf_reset(&err);
    assert_int_equal(mbox_open(path_in("held"), &o, &m, &err), MBOX_OK);
    mbox_abort(&m);
    assert_null(m);
    close(fd);
    close(pipefd[0]);
    close(pipefd[1]);
    strbuf_free(&err);
}

static void expect_refused(const char *name, const char *fragment, bool require_owner)
{
    struct mbox_options o;
    opts(&o);
    o.dotlock = false;
    o.require_owner = require_owner;
    struct mbox *m = (struct mbox *)1;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(mbox_open(path_in(name), &o, &m, &err), MBOX_TEMP);
    assert_null(m);
    if (strstr(err.data, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.data, fragment);
    strbuf_free(&err);
}

static void test_refuses_symlink(void **state)
{
    (void)state;
    int fd = open(path_in("target"), O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink(path_in("target"), path_in("link")), 0);
    expect_refused("link", "symbolic link", true);
    struct stat st;
    assert_int_equal(stat(path_in("target"), &st), 0);
    assert_int_equal(st.st_size, 0); /* nothing written through the link */
    /* A dangling symlink is not followed to create its target either. */
    assert_int_equal(symlink(path_in("nothere"), path_in("dangling")), 0);
    expect_refused("dangling", "symbolic link", true);
    assert_int_equal(lstat(path_in("nothere"), &st), -1);
}

static void test_refuses_hardlink(void **state)
{
    (void)state;
    int fd = open(path_in("orig"), O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(link(path_in("orig"), path_in("hard")), 0);
    expect_refused("hard", "2 hard links", true);
}

static void test_refuses_executable_and_special(void **state)
{
    (void)state;
    int fd = open(path_in("prog"), O_CREAT | O_WRONLY, 0700);
    assert_true(fd >= 0);
    close(fd);
    expect_refused("prog", "executable", false);
    assert_int_equal(mkfifo(path_in("fifo"), 0600), 0);
    expect_refused("fifo", "not a regular file", false);
    assert_int_equal(mkdir(path_in("adir"), 0700), 0);
    expect_refused("adir", "cannot open", false);
}

static void test_refuses_foreign_owner(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    int fd = open(path_in("foreign"), O_CREAT | O_WRONLY, 0666);
    assert_true(fd >= 0);
    assert_int_equal(fchown(fd, 1, 1), 0);
    close(fd);
    expect_refused("foreign", "owned by uid 1", true);
    /* Without the owner rule (a /file target) it is accepted. */
    struct mbox_options o;
    opts(&o);
    o.dotlock = false;
    o.require_owner = false;
    struct mbox *m;
    assert_int_equal(mbox_open(path_in("foreign"), &o, &m, NULL), MBOX_OK);
    mbox_abort(&m);
}

static void test_no_create(void **state)
{
    (void)state;
    struct mbox_options o;
    opts(&o);
    o.create = false;
    struct mbox *m;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(mbox_open(path_in("missing"), &o, &m, &err), MBOX_TEMP);
    assert_non_null(strstr(err.data, "No such file"));
    strbuf_free(&err);
}

static void test_size_limit_truncates_back(void **state)
{
    (void)state;
    static const char *const p1[] = {"first message\r\n", NULL};
    strbuf s, err;
    strbuf_init(&s);
    strbuf_init(&err);
    deliver_pieces("limited", p1, &s);
    size_t before = s.len;

    struct mbox_options o;
    opts(&o);
    o.size_limit = before + 1000;
    struct mbox *m;
    assert_int_equal(mbox_open(path_in("limited"), &o, &m, &err), MBOX_OK);
    char big[700];
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    assert_int_equal(mbox_write(m, big, sizeof(big), &err), MBOX_OK);
    assert_int_equal(mbox_write(m, big, sizeof(big), &err), MBOX_FULL);
    assert_non_null(strstr(err.data, "mailbox full"));
    /* Later calls repeat the failure; the commit truncates back. */
    assert_int_equal(mbox_write(m, "y\n", 2, &err), MBOX_FULL);
    strbuf_reset(&err);
    assert_int_equal(mbox_commit(&m, &err), MBOX_FULL);
    assert_null(m);
    strbuf_reset(&s);
    read_all(path_in("limited"), &s);
    assert_int_equal(s.len, before);

    /* A mailbox already at the limit is refused at open. */
    o.size_limit = before;
    assert_int_equal(mbox_open(path_in("limited"), &o, &m, &err), MBOX_FULL);
    strbuf_free(&s);
    strbuf_free(&err);
}

static void test_abort_truncates_written_data(void **state)
{
    (void)state;
    static const char *const p1[] = {"kept\r\n", NULL};
    strbuf s, err;
    strbuf_init(&s);
    strbuf_init(&err);
    deliver_pieces("aborted", p1, &s);
    size_t before = s.len;
    struct mbox_options o;
    opts(&o);
    struct mbox *m;
    assert_int_equal(mbox_open(path_in("aborted"), &o, &m, &err), MBOX_OK);
    /* More than the internal buffer, so some of it reached the file. */
    size_t n = 200 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'z', n);
    assert_int_equal(mbox_write(m, big, n, &err), MBOX_OK);
    struct stat st;
    assert_int_equal(stat(path_in("aborted"), &st), 0);
    assert_true((size_t)st.st_size > before);
    mbox_abort(&m);
    assert_int_equal(stat(path_in("aborted"), &st), 0);
    assert_int_equal((size_t)st.st_size, before);
    assert_int_equal(lstat(path_in("aborted.lock"), &st), -1);
    mbox_abort(&m); /* NULL-safe */
    free(big);
    strbuf_free(&s);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_line),
        cmocka_unit_test_setup_teardown(test_quoting_and_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoting_across_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_prefix_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_keeps_old_and_removes_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_dotlock_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_dotlock_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fcntl_lock_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_hardlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_executable_and_special, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_truncates_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_truncates_written_data, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
