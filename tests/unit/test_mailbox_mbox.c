/*
 * test_mailbox_mbox.c - unit tests for the mbox side of lib/mail/mailbox*.c
 * (the Maildir side is test_mailbox.c).
 *
 * Files are written by lib/mail/mbox.c (the real writer) or by hand for
 * shapes it never makes. Covered: missing, empty and non-mbox files;
 * message boundaries (From_ line and separator line not part of the
 * message, "From " only after an empty line, ">From " served as stored);
 * sizes matching the reader; unique ids stable across a deletion and
 * distinct for identical messages; symlinked and hard-linked files refused;
 * the session lock; commit removing only the marked messages while keeping
 * mail appended since the listing, waiting for a delivery's dot-lock,
 * refusing a file changed meanwhile; random files listed, read back at
 * their sizes and compacted without losing a kept message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/testdir.h"
#include "mail/mailbox.h"
#include "mail/mbox.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The scratch fixture of tests/unit/support (f->path is <dir>/mbox). */
#define fx test_scratch

static int setup(void **state)
{
    return test_scratch_setup(state, "/tmp/petrel-mbox-read-", "mbox");
}

static int teardown(void **state)
{
    return test_scratch_teardown(state);
}

/* ---- helpers ---- */

/* Appends one message with the real writer; t picks the From_ date. */
static void append(struct fx *f, const char *text, size_t n, time_t t)
{
    struct mbox *m;
    strbuf from;
    strbuf_init(&from);
    mbox_from_line(&from, "sender@example.org", t);
    assert_int_equal(mbox_open(f->path, NULL, &m, &f->err), MBOX_OK);
    assert_int_equal(mbox_write_raw(m, from.data, from.len, &f->err), MBOX_OK);
    assert_int_equal(mbox_write(m, text, n, &f->err), MBOX_OK);
    assert_int_equal(mbox_commit(&m, &f->err), MBOX_OK);
    strbuf_free(&from);
}

static void appends(struct fx *f, const char *text, time_t t)
{
    append(f, text, strlen(text), t);
}

static void write_raw(struct fx *f, const char *s)
{
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    close(fd);
}

static void slurp(const char *path, strbuf *out)
{
    char buf[65536];
    ssize_t n;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    strbuf_reset(out);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_append(out, buf, (size_t)n);
    close(fd);
}

static struct mailbox *open_ok(struct fx *f, unsigned flags)
{
    struct mailbox *mb = NULL;
    enum mailbox_status st = mailbox_open(f->path, flags, &mb, &f->err);
    if (st != MAILBOX_OK)
        fail_msg("mailbox_open: %d %s", st, f->err.data);
    return mb;
}

/* Message i as the client gets it (lines joined with CRLF); returns the
 * sum of (len + 2), which must be its listed size. */
static uint64_t read_back(struct mailbox *mb, size_t i, strbuf *joined)
{
    strbuf line, err;
    uint64_t sum = 0;
    int rc;
    strbuf_init(&line);
    strbuf_init(&err);
    struct mailbox_reader *r = mailbox_reader_open(mb, i, &err);
    if (r == NULL)
        fail_msg("reader_open: %s", err.data);
    strbuf_reset(joined);
    while ((rc = mailbox_reader_line(r, &line, &err)) == 1) {
        sum += line.len + 2;
        strbuf_append_sb(joined, &line);
        strbuf_appends(joined, "\r\n");
    }
    assert_int_equal(rc, 0);
    mailbox_reader_close(&r);
    strbuf_free(&line);
    strbuf_free(&err);
    assert_int_equal(sum, mailbox_msg(mb, i)->size);
    return sum;
}

static void assert_msg(struct mailbox *mb, size_t i, const char *want_crlf)
{
    strbuf got;
    strbuf_init(&got);
    read_back(mb, i, &got);
    if (!strbuf_eq(&got, want_crlf))
        fail_msg("message %zu: got [%s] want [%s]", i, got.data, want_crlf);
    strbuf_free(&got);
}

/* ---- tests ---- */

static void test_missing_empty_bad(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb = NULL;

    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 0);
    mailbox_close(&mb);

    write_raw(f, "");
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 0);
    mailbox_close(&mb);

    write_raw(f, "Subject: not an mbox\n\nbody\n");
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "not an mbox file"));
    assert_null(mb);
}

static void test_boundaries(void **state)
{
    struct fx *f = *state;
    appends(f, "Subject: a\n\nFrom me\n>From you\nbody\n", 1000);
    appends(f, "x\ny", 2000);                     /* the writer adds the LF */
    appends(f, "ends with an empty line\n\n", 3000);
    append(f, "", 0, 4000);                       /* an empty message */
    struct mbox *m;
    strbuf from;
    strbuf_init(&from);
    mbox_from_line(&from, "crlf@example.org", 5000);
    assert_int_equal(mbox_open(f->path, NULL, &m, &f->err), MBOX_OK);
    assert_int_equal(mbox_write_raw(m, from.data, from.len, &f->err), MBOX_OK);
    assert_int_equal(mbox_write_crlf(m, "A: b\r\n\r\nFrom x\r\nbare\rcr\r\n", 25, &f->err),
                     MBOX_OK);
    assert_int_equal(mbox_commit(&m, &f->err), MBOX_OK);
    strbuf_free(&from);

    struct mailbox *mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 5);
    /* ">From" lines are served as stored (mboxo quoting is lossy). */
    assert_msg(mb, 0, "Subject: a\r\n\r\n>From me\r\n>From you\r\nbody\r\n");
    assert_msg(mb, 1, "x\r\ny\r\n");
    assert_msg(mb, 2, "ends with an empty line\r\n\r\n");
    assert_msg(mb, 3, "");
    assert_int_equal(mailbox_msg(mb, 3)->size, 0);
    assert_msg(mb, 4, "A: b\r\n\r\n>From x\r\nbare\rcr\r\n");
    mailbox_close(&mb);

    /* By hand: "From " not after an empty line is text; CRLF separators;
     * no separator and no LF at the end. */
    write_raw(f, "From a Mon Jan  1 00:00:00 2024\nX: 1\nFrom notsep\n\n"
                 "From b Mon Jan  1 00:00:01 2024\r\nY: 2\r\n\r\n"
                 "From c Mon Jan  1 00:00:02 2024\nlast");
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 3);
    assert_msg(mb, 0, "X: 1\r\nFrom notsep\r\n");
    assert_msg(mb, 1, "Y: 2\r\n");
    assert_msg(mb, 2, "last\r\n");
    mailbox_close(&mb);
}

static void test_uids(void **state)
{
    struct fx *f = *state;
    char *uids[4];
    appends(f, "Subject: one\n\n1\n", 1000);
    appends(f, "Subject: same\n\nx\n", 2000);
    appends(f, "Subject: same\n\nx\n", 2000); /* an exact duplicate */
    appends(f, "Subject: same\n\nx\n", 3000); /* same text, later */

    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 4);
    for (size_t i = 0; i < 4; i++) {
        const char *u = mailbox_msg(mb, i)->uid;
        size_t n = strlen(u);
        assert_true(n >= 1 && n <= 70);
        for (size_t k = 0; k < n; k++)
            assert_true(u[k] >= 0x21 && u[k] <= 0x7e);
        uids[i] = strdup(u);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(uids[j], u);
    }
    mailbox_close(&mb);

    /* The same in the next session; deleting the first changes no other. */
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(mailbox_msg(mb, i)->uid, uids[i]);
    mailbox_mark_deleted(mb, 0, true);
    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    mailbox_close(&mb);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(mailbox_msg(mb, i)->uid, uids[i + 1]);
    mailbox_close(&mb);
    for (size_t i = 0; i < 4; i++)
        free(uids[i]);
}

static void test_refused(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb = NULL;
    char other[160];
    appends(f, "x\n", 1000);

    snprintf(other, sizeof(other), "%s/link", f->dir);
    assert_int_equal(symlink(f->path, other), 0);
    assert_int_equal(mailbox_open(other, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "symbolic link"));
    assert_int_equal(unlink(other), 0);

    snprintf(other, sizeof(other), "%s/hard", f->dir);
    assert_int_equal(link(f->path, other), 0);
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "hard links"));
    assert_int_equal(unlink(other), 0);

    if (geteuid() == 0) { /* someone else's file */
        assert_int_equal(chown(f->path, 65534, 65534), 0);
        assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
        assert_non_null(strstr(f->err.data, "owned by uid 65534"));
        assert_int_equal(chown(f->path, 0, 0), 0);
    }

    snprintf(other, sizeof(other), "%s/fifo", f->dir);
    assert_int_equal(mkfifo(other, 0600), 0);
    assert_int_equal(mailbox_open(other, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "not a regular file"));
    assert_null(mb);
}

static void test_lock(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb2 = NULL;
    appends(f, "x\n", 1000);
    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_open(f->path, MAILBOX_EXCLUSIVE, &mb2, &f->err), MAILBOX_IN_USE);
    assert_null(mb2);
    /* Delivery goes on during a session (it uses the dot-lock and fcntl). */
    appends(f, "y\n", 2000);
    mailbox_close(&mb);
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 2);
    mailbox_close(&mb);
}

static void test_commit_keeps_new_mail(void **state)
{
    struct fx *f = *state;
    strbuf before, after;
    strbuf_init(&before);
    strbuf_init(&after);
    appends(f, "Subject: 0\n\nzero\n", 1000);
    appends(f, "Subject: 1\n\none\n", 1001);
    appends(f, "Subject: 2\n\ntwo\n", 1002);
    appends(f, "Subject: 3\n\nthree\n", 1003);

    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    char *keep1 = strdup(mailbox_msg(mb, 1)->uid);
    char *keep3 = strdup(mailbox_msg(mb, 3)->uid);
    mailbox_mark_deleted(mb, 0, true);
    mailbox_mark_deleted(mb, 2, true);
    appends(f, "Subject: 4\n\nnew mail\n", 1004); /* arrives during the session */
    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    /* A second commit in the same session is refused, not repeated. */
    assert_int_equal(mailbox_commit(mb, &f->err), -1);
    mailbox_close(&mb);

    slurp(f->path, &after);
    assert_null(strstr(after.data, "zero"));
    assert_null(strstr(after.data, "two"));
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 3);
    assert_string_equal(mailbox_msg(mb, 0)->uid, keep1);
    assert_string_equal(mailbox_msg(mb, 1)->uid, keep3);
    assert_msg(mb, 0, "Subject: 1\r\n\r\none\r\n");
    assert_msg(mb, 1, "Subject: 3\r\n\r\nthree\r\n");
    assert_msg(mb, 2, "Subject: 4\r\n\r\nnew mail\r\n");
    /* Delete everything: an empty file remains. */
    for (size_t i = 0; i < 3; i++)
        mailbox_mark_deleted(mb, i, true);
    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    mailbox_close(&mb);
    slurp(f->path, &after);
    assert_int_equal(after.len, 0);
    char lock[160];
    snprintf(lock, sizeof(lock), "%s.lock", f->path);
    assert_int_equal(access(lock, F_OK), -1); /* the dot-lock is gone */
    free(keep1);
    free(keep3);
    strbuf_free(&before);
    strbuf_free(&after);
}

/* The commit waits for a delivery's dot-lock (here held by a child for
 * half a second) and leaves no lock behind. */
static void test_commit_waits_for_dotlock(void **state)
{
    struct fx *f = *state;
    char lock[160];
    struct timespec t0, t1;
    appends(f, "Subject: 0\n\nzero\n", 1000);
    appends(f, "Subject: 1\n\none\n", 1001);
    snprintf(lock, sizeof(lock), "%s.lock", f->path);

    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usleep(500 * 1000);
        _exit(unlink(lock) == 0 ? 0 : 1);
    }
    mailbox_mark_deleted(mb, 0, true);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited >= 0.4);
    assert_int_equal(access(lock, F_OK), -1);
    mailbox_close(&mb);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 1);
    assert_msg(mb, 0, "Subject: 1\r\n\r\none\r\n");
    mailbox_close(&mb);
}

static void test_commit_refuses_changed_file(void **state)
{
    struct fx *f = *state;
    strbuf before, after;
    strbuf_init(&before);
    strbuf_init(&after);
    appends(f, "Subject: 0\n\nzero\n", 1000);
    appends(f, "Subject: 1\n\none\n", 1001);

    /* Rewritten in place (same size) by another program. */
    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    slurp(f->path, &before);
    char *p = strstr(before.data, "one");
    p[0] = 'O';
    write_raw(f, before.data);
    mailbox_mark_deleted(mb, 0, true);
    assert_int_equal(mailbox_commit(mb, &f->err), -1);
    assert_non_null(strstr(f->err.data, "changed by another program"));
    mailbox_close(&mb);
    slurp(f->path, &after);
    assert_true(strbuf_eq(&after, before.data));

    /* Grown by something that is not a whole message. */
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    int afd = open(f->path, O_WRONLY | O_APPEND);
    assert_int_equal(write(afd, "rest of a message\n", 18), 18);
    close(afd);
    mailbox_mark_deleted(mb, 1, true);
    assert_int_equal(mailbox_commit(mb, &f->err), -1);
    assert_non_null(strstr(f->err.data, "changed by another program"));
    mailbox_close(&mb);
    write_raw(f, before.data);

    /* Shortened. */
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(truncate(f->path, 10), 0);
    mailbox_mark_deleted(mb, 1, true);
    assert_int_equal(mailbox_commit(mb, &f->err), -1);
    mailbox_close(&mb);

    /* Replaced by another file. */
    write_raw(f, before.data);
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s/new", f->dir);
    int fd = open(tmp, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, before.data, before.len), (ssize_t)before.len);
    close(fd);
    assert_int_equal(rename(tmp, f->path), 0);
    mailbox_mark_deleted(mb, 1, true);
    assert_int_equal(mailbox_commit(mb, &f->err), -1);
    assert_non_null(strstr(f->err.data, "replaced"));
    mailbox_close(&mb);
    slurp(f->path, &after);
    assert_true(strbuf_eq(&after, before.data));
    strbuf_free(&before);
    strbuf_free(&after);
}

/* Many messages of very different sizes, every other pattern of
 * deletions: what remains is exactly the kept messages, in order. This
 * also drives the copy through gaps smaller than the data behind them. */
static void test_commit_many(void **state)
{
    struct fx *f = *state;
    enum { N = 60 };
    strbuf text, got;
    char *uids[N];
    strbuf_init(&text);
    strbuf_init(&got);
    for (int i = 0; i < N; i++) {
        strbuf_reset(&text);
        strbuf_printf(&text, "Subject: %d\n\n", i);
        int lines = (i % 7 == 3) ? 20000 : i % 5; /* some are big (~300 KB) */
        for (int k = 0; k < lines; k++)
            strbuf_printf(&text, "line %d of message %d\n", k, i);
        append(f, text.data, text.len, 1000 + i);
    }
    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), N);
    for (int i = 0; i < N; i++) {
        uids[i] = strdup(mailbox_msg(mb, (size_t)i)->uid);
        if (i % 3 == 0 || i % 7 == 2) /* small ones in front of big ones */
            mailbox_mark_deleted(mb, (size_t)i, true);
    }
    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    mailbox_close(&mb);

    mb = open_ok(f, 0);
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0 || i % 7 == 2)
            continue;
        assert_true(k < mailbox_count(mb));
        assert_string_equal(mailbox_msg(mb, k)->uid, uids[i]);
        read_back(mb, k, &got);
        strbuf_reset(&text);
        strbuf_printf(&text, "Subject: %d\r\n", i);
        assert_true(strncmp(got.data, text.data, text.len) == 0);
        k++;
    }
    assert_int_equal(mailbox_count(mb), k);
    mailbox_close(&mb);
    for (int i = 0; i < N; i++)
        free(uids[i]);
    strbuf_free(&text);
    strbuf_free(&got);
}

/* Random files made of mbox-ish pieces: listing never fails on a file
 * that starts with a From_ line, every message reads back at its listed
 * size, and after deleting a random subset the file lists exactly the
 * kept messages with the same contents. */
static void test_random_files(void **state)
{
    struct fx *f = *state;
    static const char *const pieces[] = {
        "From a Mon Jan  1 00:00:00 2024\n", "\n", "\r\n", ">From b\n", "From c\n",
        "text", "\r", "line\n", "x\r\n", "From ",
    };
    strbuf file, got;
    strbuf_init(&file);
    strbuf_init(&got);
    srandom(12345);
    for (int round = 0; round < 300; round++) {
        strbuf_sets(&file, pieces[0]);
        int n = (int)(random() % 40);
        for (int k = 0; k < n; k++)
            strbuf_appends(&file, pieces[random() % (sizeof(pieces) / sizeof(pieces[0]))]);
        write_raw(f, file.data);

        struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
        size_t count = mailbox_count(mb);
        assert_true(count >= 1);
        char **kept = calloc(count, sizeof(char *));
        size_t nkept = 0;
        for (size_t i = 0; i < count; i++) {
            read_back(mb, i, &got); /* asserts the size */
            if (random() % 2)
                mailbox_mark_deleted(mb, i, true);
            else
                kept[nkept++] = strdup(got.data);
        }
        assert_int_equal(mailbox_commit(mb, &f->err), 0);
        mailbox_close(&mb);
        mb = open_ok(f, 0);
        if (mailbox_count(mb) != nkept)
            fail_msg("round %d: %zu messages after commit, want %zu", round, mailbox_count(mb),
                     nkept);
        for (size_t i = 0; i < nkept; i++) {
            read_back(mb, i, &got);
            assert_string_equal(got.data, kept[i]);
            free(kept[i]);
        }
        free(kept);
        mailbox_close(&mb);
    }
    strbuf_free(&file);
    strbuf_free(&got);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_missing_empty_bad), T(test_boundaries), T(test_uids),
        T(test_refused),           T(test_lock),       T(test_commit_keeps_new_mail),
        T(test_commit_waits_for_dotlock),
        T(test_commit_refuses_changed_file), T(test_commit_many), T(test_random_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
