/*
 * test_maildir.c - unit tests for lib/mail/maildir.c.
 *
 * Each test works in a fresh mkdtemp directory that is removed afterwards.
 * Covered: creation, the delivery round trip (content, names, ,S=/,W=
 * sizes, uniqueness), abort, the symlink and ownership refusals of
 * BAD-INPUT.md row 8, the CRLF->LF filter at every chunk split, and write
 * errors (forced with RLIMIT_FSIZE, since a full disk cannot be arranged
 * here: ENOSPC takes the same path as the EFBIG that this produces).
 */
#define _GNU_SOURCE /* unshare, sethostname */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/testdir.h"
#include "mail/maildir.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OTHER_UID 65534 /* "nobody" on Debian; any uid other than ours works */

/* ---- fixtures and helpers ---- */

/* The scratch fixture of tests/unit/support (f->path is <dir>/Maildir). */
#define fx test_scratch

static int setup(void **state)
{
    return test_scratch_setup(state, "/tmp/petrel-maildir-", "Maildir");
}

static int teardown(void **state)
{
    return test_scratch_teardown(state);
}

/* Number of entries in <md>/<sub> other than . and .. (-1 if unreadable). */
static int count_entries(const char *md, const char *sub)
{
    char path[256];
    DIR *dh;
    struct dirent *de;
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s", md, sub);
    if ((dh = opendir(path)) == NULL)
        return -1;
    while ((de = readdir(dh)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    }
    closedir(dh);
    return n;
}

/* Reads a whole file into sb. */
static void slurp(const char *path, strbuf *sb)
{
    char buf[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    strbuf_reset(sb);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_append(sb, buf, (size_t)n);
    assert_int_equal(n, 0);
    close(fd);
}

/* Parses ",S=<n>,W=<m>" at the end of a name; false if absent. */
static bool parse_sizes(const char *name, unsigned long long *s, unsigned long long *w)
{
    const char *p = strstr(name, ",S=");
    char tail;
    if (p == NULL)
        return false;
    return sscanf(p, ",S=%llu,W=%llu%c", s, w, &tail) == 2;
}

/* Delivers content through the raw API and returns the final path. */
static char *deliver(struct fx *f, const void *p, size_t n)
{
    struct maildir_delivery *d;
    char *final = NULL;
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    assert_int_equal(maildir_write(d, p, n, &f->err), 0);
    assert_int_equal(maildir_commit(&d, &final, &f->err), 0);
    assert_null(d);
    assert_non_null(final);
    return final;
}

/* ---- creation ---- */

static void test_create(void **state)
{
    struct fx *f = *state;
    struct stat st;
    char sub[160];
    const char *subs[] = { "tmp", "new", "cur" };

    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    for (size_t i = 0; i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", f->path, subs[i]);
        assert_int_equal(lstat(sub, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
    }
    /* Idempotent, and completes a half-made maildir. */
    snprintf(sub, sizeof(sub), "%s/cur", f->path);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    assert_int_equal(lstat(sub, &st), 0);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
}

static void test_create_errors(void **state)
{
    struct fx *f = *state;
    char path[160], target[160];
    int fd;

    /* Parents are not created. */
    snprintf(path, sizeof(path), "%s/no/such/Maildir", f->dir);
    assert_int_equal(maildir_create(path, 0700, &f->err), -1);
    assert_non_null(strstr(f->err.data, "No such file or directory"));
    assert_non_null(strstr(f->err.data, "parent directory must exist"));

    /* A plain file in the way. */
    snprintf(path, sizeof(path), "%s/file", f->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(maildir_create(path, 0700, &f->err), -1);
    assert_non_null(strstr(f->err.data, "is not a directory"));

    /* A symlinked maildir is refused, even to a real directory. */
    snprintf(target, sizeof(target), "%s/real", f->dir);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, f->path), 0);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), -1);
    assert_non_null(strstr(f->err.data, "it is a symbolic link"));
    assert_int_equal(count_entries(target, "."), 0);
    assert_int_equal(unlink(f->path), 0);

    /* A symlinked subdirectory is refused. */
    assert_int_equal(mkdir(f->path, 0700), 0);
    snprintf(path, sizeof(path), "%s/new", f->path);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), -1);
    assert_non_null(strstr(f->err.data, "/Maildir/new: it is a symbolic link"));

    assert_int_equal(maildir_create("", 0700, &f->err), -1);
    assert_string_equal(f->err.data, "cannot create maildir: empty path");
}

/* ---- delivery ---- */

static void test_roundtrip(void **state)
{
    struct fx *f = *state;
    struct maildir_delivery *d;
    static const char part1[] = "From: a@b.org\nSubject: hi\n\n";
    static const char part2[] = "line with NUL \0 byte\nand CRLF\r\nend\n";
    strbuf want, got;
    struct stat st;
    char *final = NULL, prefix[160];
    unsigned long long s, w;

    strbuf_init(&want);
    strbuf_init(&got);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    assert_int_equal(count_entries(f->path, "tmp"), 1); /* written in tmp/ first */
    assert_int_equal(count_entries(f->path, "new"), 0);
    assert_int_equal(maildir_write(d, part1, sizeof(part1) - 1, &f->err), 0);
    assert_int_equal(maildir_write(d, "", 0, &f->err), 0);
    assert_int_equal(maildir_write(d, part2, sizeof(part2) - 1, &f->err), 0);
    assert_int_equal(maildir_commit(&d, &final, &f->err), 0);
    assert_null(d);

    strbuf_append(&want, part1, sizeof(part1) - 1);
    strbuf_append(&want, part2, sizeof(part2) - 1);
    snprintf(prefix, sizeof(prefix), "%s/new/", f->path);
    assert_true(strncmp(final, prefix, strlen(prefix)) == 0);
    slurp(final, &got);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    assert_int_equal(count_entries(f->path, "tmp"), 0);
    assert_int_equal(count_entries(f->path, "new"), 1);
    assert_int_equal(count_entries(f->path, "cur"), 0);

    /* <sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<size with CRLF> */
    const char *name = final + strlen(prefix);
    long long sec;
    long usec, pid;
    unsigned long q;
    int used = 0;
    assert_int_equal(sscanf(name, "%lld.M%ldP%ldQ%lu.%n", &sec, &usec, &pid, &q, &used), 4);
    assert_true(used > 0);
    assert_int_equal(pid, (long)getpid());
    assert_true(usec >= 0 && usec < 1000000);
    assert_null(strchr(name, '/'));
    assert_null(strchr(name, ':'));
    assert_true(parse_sizes(name, &s, &w));
    assert_int_equal(lstat(final, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(s, (unsigned long long)st.st_size);
    /* 6 LFs, one of them already preceded by CR: 5 bare LFs. */
    assert_int_equal(w, s + 5);

    free(final);
    strbuf_free(&want);
    strbuf_free(&got);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_thousand_unique(void **state)
{
    struct fx *f = *state;
    enum { N = 1000 };
    char **names = calloc(N, sizeof(*names));
    char body[64];
    struct stat st;
    unsigned long long s, w;

    assert_non_null(names);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    for (int i = 0; i < N; i++) {
        int n = snprintf(body, sizeof(body), "message %d\n%s", i, i % 2 ? "x\n" : "");
        names[i] = deliver(f, body, (size_t)n);
        assert_int_equal(stat(names[i], &st), 0);
        assert_true(parse_sizes(names[i], &s, &w));
        assert_int_equal(s, (unsigned long long)st.st_size);
        assert_int_equal(s, (unsigned long long)n);
    }
    /* No delivery replaced another: all files exist under distinct names. */
    assert_int_equal(count_entries(f->path, "new"), N);
    assert_int_equal(count_entries(f->path, "tmp"), 0);
    qsort(names, N, sizeof(*names), cmp_str);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(names[i - 1], names[i]) != 0);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);
}

static void test_large_message(void **state)
{
    struct fx *f = *state;
    size_t n = 3 * 1024 * 1024 + 7;
    char *big = malloc(n);
    strbuf got;
    unsigned long long s, w;

    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (i % 77 == 76) ? '\n' : (char)('a' + i % 26);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    char *final = deliver(f, big, n);
    strbuf_init(&got);
    slurp(final, &got);
    assert_int_equal(got.len, n);
    assert_memory_equal(got.data, big, n);
    assert_true(parse_sizes(final, &s, &w));
    assert_int_equal(s, n);
    assert_int_equal(w, n + n / 77);
    free(final);
    free(big);
    strbuf_free(&got);
}

static void test_abort(void **state)
{
    struct fx *f = *state;
    struct maildir_delivery *d;

    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    assert_int_equal(maildir_write(d, "partial", 7, &f->err), 0);
    assert_int_equal(count_entries(f->path, "tmp"), 1);
    maildir_abort(&d);
    assert_null(d);
    assert_int_equal(count_entries(f->path, "tmp"), 0);
    assert_int_equal(count_entries(f->path, "new"), 0);
    maildir_abort(&d); /* NULL is fine */

    /* Abort right after open, and commit without asking for the name. */
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    maildir_abort(&d);
    assert_int_equal(count_entries(f->path, "tmp"), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    assert_int_equal(maildir_commit(&d, NULL, &f->err), 0);
    assert_int_equal(count_entries(f->path, "new"), 1);
}

/* ---- refusals (BAD-INPUT.md row 8) ---- */

static void test_missing_maildir(void **state)
{
    struct fx *f = *state;
    struct maildir_delivery *d = (void *)1;

    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_null(d);
    assert_non_null(strstr(f->err.data, "cannot open directory"));
    assert_non_null(strstr(f->err.data, "No such file or directory"));

    /* A maildir without new/ is not usable either. */
    assert_int_equal(mkdir(f->path, 0700), 0);
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/tmp", f->path);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_non_null(strstr(f->err.data, "/Maildir/new: No such file or directory"));
    assert_int_equal(count_entries(f->path, "tmp"), 0);

    assert_int_equal(maildir_open("", &d, &f->err), -1);
    assert_string_equal(f->err.data, "cannot deliver to maildir: empty path");
}

/* Replaces <md>/<sub> by a symlink to a real maildir subdirectory elsewhere
 * and checks that delivery is refused and nothing lands in the target. */
static void check_symlinked_sub(struct fx *f, const char *sub)
{
    char elsewhere[160], link_path[160], target[200];
    struct maildir_delivery *d;
    char expect[512];

    snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", f->dir);
    assert_int_equal(maildir_create(elsewhere, 0700, &f->err), 0);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    snprintf(link_path, sizeof(link_path), "%s/%s", f->path, sub);
    snprintf(target, sizeof(target), "%s/%s", elsewhere, sub);
    assert_int_equal(rmdir(link_path), 0);
    assert_int_equal(symlink(target, link_path), 0);

    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_null(d);
    snprintf(expect, sizeof(expect), "refusing to deliver to %s: it is a symbolic link",
             link_path);
    assert_string_equal(f->err.data, expect);
    assert_int_equal(count_entries(elsewhere, "tmp"), 0);
    assert_int_equal(count_entries(elsewhere, "new"), 0);
}

static void test_symlinked_new(void **state)
{
    check_symlinked_sub(*state, "new");
}

static void test_symlinked_tmp(void **state)
{
    check_symlinked_sub(*state, "tmp");
}

static void test_symlinked_maildir(void **state)
{
    struct fx *f = *state;
    char real[160], expect[512];
    struct maildir_delivery *d;

    snprintf(real, sizeof(real), "%s/real", f->dir);
    assert_int_equal(maildir_create(real, 0700, &f->err), 0);
    assert_int_equal(symlink(real, f->path), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_null(d);
    snprintf(expect, sizeof(expect), "refusing to deliver to %s: it is a symbolic link", f->path);
    assert_string_equal(f->err.data, expect);
    assert_int_equal(count_entries(real, "tmp"), 0);
    assert_int_equal(count_entries(real, "new"), 0);

    /* A dangling symlink is refused the same way. */
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(symlink("/nonexistent/petrel", f->path), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_string_equal(f->err.data, expect);
}

/* A plain file where new/ should be is refused with its own message. */
static void test_not_a_directory(void **state)
{
    struct fx *f = *state;
    char sub[160];
    struct maildir_delivery *d;

    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    snprintf(sub, sizeof(sub), "%s/new", f->path);
    assert_int_equal(rmdir(sub), 0);
    int fd = open(sub, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_non_null(strstr(f->err.data, "/Maildir/new as a maildir directory: it is not a directory"));
}

static void test_foreign_owner(void **state)
{
    struct fx *f = *state;
    struct maildir_delivery *d;
    char sub[160], expect[512];

    if (geteuid() != 0) {
        print_message("    (not root: cannot give a directory to another user)\n");
        skip();
    }
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    snprintf(sub, sizeof(sub), "%s/new", f->path);
    assert_int_equal(chown(sub, OTHER_UID, OTHER_UID), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    snprintf(expect, sizeof(expect),
             "refusing to deliver to %s: owned by uid %d, delivering as uid 0", sub, OTHER_UID);
    assert_string_equal(f->err.data, expect);
    assert_int_equal(count_entries(f->path, "tmp"), 0);

    assert_int_equal(chown(sub, 0, 0), 0);
    assert_int_equal(chown(f->path, OTHER_UID, OTHER_UID), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), -1);
    assert_non_null(strstr(f->err.data, "owned by uid 65534"));
}

/* ---- CRLF -> LF ---- */

/* CRLF pairs, bare CR, bare LF, CR CR LF, CR at the very end. */
static const char crlf_in[] = "a\r\nb\rc\n\r\r\nd\r\n\r\n.\r\ne\r";
static const char crlf_out[] = "a\nb\rc\n\r\nd\n\n.\ne\r";

static void filter_all(const char *in, const size_t *cuts, size_t ncuts, strbuf *out)
{
    struct crlf_filter cf;
    size_t from = 0;
    crlf_filter_init(&cf);
    strbuf_reset(out);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : strlen(in);
        crlf_filter_feed(&cf, in + from, to - from, out);
        from = to;
    }
    crlf_filter_finish(&cf, out);
}

static void test_crlf_filter_every_split(void **state)
{
    (void)state;
    size_t n = sizeof(crlf_in) - 1;
    strbuf out;
    strbuf_init(&out);

    filter_all(crlf_in, NULL, 0, &out);
    assert_string_equal(out.data, crlf_out);
    /* Every split into two and three chunks, empty chunks included. */
    for (size_t a = 0; a <= n; a++) {
        size_t cut1[1] = { a };
        filter_all(crlf_in, cut1, 1, &out);
        assert_string_equal(out.data, crlf_out);
        for (size_t b = a; b <= n; b++) {
            size_t cut2[2] = { a, b };
            filter_all(crlf_in, cut2, 2, &out);
            assert_string_equal(out.data, crlf_out);
        }
    }
    /* One byte at a time. */
    size_t cuts[sizeof(crlf_in)];
    for (size_t i = 0; i < n - 1; i++)
        cuts[i] = i + 1;
    filter_all(crlf_in, cuts, n - 1, &out);
    assert_string_equal(out.data, crlf_out);

    /* NUL bytes pass through. */
    struct crlf_filter cf;
    crlf_filter_init(&cf);
    strbuf_reset(&out);
    crlf_filter_feed(&cf, "x\0\r", 3, &out);
    crlf_filter_feed(&cf, "\n\0", 2, &out);
    crlf_filter_finish(&cf, &out);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "x\0\n\0", 4);
    strbuf_free(&out);
}

static void test_crlf_delivery_every_split(void **state)
{
    struct fx *f = *state;
    size_t n = sizeof(crlf_in) - 1;
    strbuf got;
    unsigned long long s, w;

    strbuf_init(&got);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    for (size_t a = 0; a <= n; a++) {
        struct maildir_delivery *d;
        char *final;
        assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
        assert_int_equal(maildir_write_crlf_to_lf(d, crlf_in, a, &f->err), 0);
        assert_int_equal(maildir_write_crlf_to_lf(d, crlf_in + a, n - a, &f->err), 0);
        assert_int_equal(maildir_commit(&d, &final, &f->err), 0);
        slurp(final, &got);
        assert_int_equal(got.len, sizeof(crlf_out) - 1);
        assert_memory_equal(got.data, crlf_out, got.len);
        /* 6 LFs in the stored text; the one after the kept bare CR
         * already counts as CRLF, so W adds 5. */
        assert_true(parse_sizes(final, &s, &w));
        assert_int_equal(s, sizeof(crlf_out) - 1);
        assert_int_equal(w, s + 5);
        free(final);
    }
    /* A held CR followed by a raw write was bare: it is kept. */
    struct maildir_delivery *d;
    char *final;
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    assert_int_equal(maildir_write_crlf_to_lf(d, "a\r", 2, &f->err), 0);
    assert_int_equal(maildir_write(d, "\nb", 2, &f->err), 0);
    assert_int_equal(maildir_commit(&d, &final, &f->err), 0);
    slurp(final, &got);
    assert_string_equal(got.data, "a\r\nb");
    assert_true(parse_sizes(final, &s, &w));
    assert_int_equal(w, s); /* the LF follows a CR: no bare LF */
    free(final);
    strbuf_free(&got);
}

/* ---- write errors ---- */

/* RLIMIT_FSIZE makes write() fail with EFBIG, the same path as ENOSPC. */
static void test_write_error(void **state)
{
    struct fx *f = *state;
    struct maildir_delivery *d;
    struct rlimit old, small;
    void (*old_handler)(int);
    char *big = calloc(1, 10000);
    strbuf first;
    int rc;

    assert_non_null(big);
    strbuf_init(&first);
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);

    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 4096;
    old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    rc = maildir_write(d, big, 10000, &f->err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, -1);
    assert_non_null(strstr(f->err.data, "cannot write message to"));
    assert_non_null(strstr(f->err.data, "/Maildir/tmp/"));
    assert_non_null(strstr(f->err.data, strerror(EFBIG)));
    strbuf_append_sb(&first, &f->err);
    /* Removed at once, and the failure sticks. */
    assert_int_equal(count_entries(f->path, "tmp"), 0);
    assert_int_equal(maildir_write(d, "x", 1, &f->err), -1);
    assert_string_equal(f->err.data, first.data);
    assert_int_equal(maildir_write_crlf_to_lf(d, "x", 1, &f->err), -1);
    char *final = (char *)1;
    assert_int_equal(maildir_commit(&d, &final, &f->err), -1);
    assert_null(d);
    assert_null(final);
    assert_string_equal(f->err.data, first.data);
    assert_int_equal(count_entries(f->path, "tmp"), 0);
    assert_int_equal(count_entries(f->path, "new"), 0);
    free(big);
    strbuf_free(&first);
}

/* Child body: tmp/ is read-only for us, open must fail cleanly. */
static int child_unwritable(struct fx *f)
{
    struct maildir_delivery *d;
    if (maildir_open(f->path, &d, &f->err) != -1 || d != NULL)
        return 1;
    if (strstr(f->err.data, "cannot create a file in ") == NULL ||
        strstr(f->err.data, "/Maildir/tmp: Permission denied") == NULL) {
        fprintf(stderr, "unexpected: %s\n", f->err.data);
        return 2;
    }
    return 0;
}

/* Root ignores permissions, so as root the check runs in a child that has
 * become OTHER_UID (owning the maildir, so only the mode stops it). */
static void test_unwritable_tmp(void **state)
{
    struct fx *f = *state;
    char sub[160];
    int status;

    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
    snprintf(sub, sizeof(sub), "%s/tmp", f->path);
    assert_int_equal(chmod(sub, 0500), 0);
    if (geteuid() != 0) {
        assert_int_equal(child_unwritable(f), 0);
        return;
    }
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(chown(f->path, OTHER_UID, OTHER_UID), 0);
    assert_int_equal(chown(sub, OTHER_UID, OTHER_UID), 0);
    snprintf(sub, sizeof(sub), "%s/new", f->path);
    assert_int_equal(chown(sub, OTHER_UID, OTHER_UID), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gid_t g = OTHER_UID;
        if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 ||
            setresuid(OTHER_UID, OTHER_UID, OTHER_UID) != 0)
            _exit(9);
        _exit(child_unwritable(f));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- host name escaping ---- */

static int child_hostname(struct fx *f)
{
    static const char host[] = "evil/host:name,x";
    char *final;
    if (unshare(CLONE_NEWUTS) != 0 || sethostname(host, sizeof(host) - 1) != 0)
        return 77; /* not possible here */
    if (maildir_create(f->path, 0700, &f->err) != 0)
        return 1;
    struct maildir_delivery *d;
    if (maildir_open(f->path, &d, &f->err) != 0 || maildir_commit(&d, &final, &f->err) != 0)
        return 2;
    const char *name = strrchr(final, '/') + 1;
    if (strstr(name, ".evil\\057host\\072name\\054x,S=0,W=0") == NULL) {
        fprintf(stderr, "unexpected name: %s\n", name);
        return 3;
    }
    free(final);
    return 0;
}

static void test_hostname_escaped(void **state)
{
    struct fx *f = *state;
    int status;

    if (geteuid() != 0) {
        print_message("    (not root: cannot set a host name)\n");
        skip();
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_hostname(f));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        print_message("    (no UTS namespace available)\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create),
        T(test_create_errors),
        T(test_roundtrip),
        T(test_thousand_unique),
        T(test_large_message),
        T(test_abort),
        T(test_missing_maildir),
        T(test_symlinked_new),
        T(test_symlinked_tmp),
        T(test_symlinked_maildir),
        T(test_not_a_directory),
        T(test_foreign_owner),
        T(test_crlf_filter_every_split),
        T(test_crlf_delivery_every_split),
        T(test_write_error),
        T(test_unwritable_tmp),
        T(test_hostname_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
