/*
 * test_mailbox.c - unit tests for the Maildir side of lib/mail/mailbox*.c
 * (the mbox side is test_mailbox_mbox.c).
 *
 * Each test works in a fresh mkdtemp directory. Covered: missing and empty
 * mailboxes; delivery order; the new/ -> cur/ move keeping the unique id;
 * sizes as sent for every kind of line end, from W= names and from
 * reading, and the reader producing exactly those bytes; the size cache
 * (used, not trusted after a change, a damaged one rebuilt); hostile names
 * giving valid ids; symlinks and foreign owners refused (BAD-INPUT.md
 * row 8); the session lock (also held by another process, and released
 * when it dies); commit removing only what was marked, also when another client
 * removed or renamed a message first; the tmp/ cleanup of exclusive
 * sessions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/testdir.h"
#include "mail/mailbox.h"
#include "mail/maildir.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The scratch fixture of tests/unit/support (f->path is <dir>/Maildir). */
#define fx test_scratch

static int setup(void **state)
{
    return test_scratch_setup(state, "/tmp/petrel-mailbox-", "Maildir");
}

static int teardown(void **state)
{
    return test_scratch_teardown(state);
}

/* ---- helpers ---- */

static void make_md(struct fx *f)
{
    assert_int_equal(maildir_create(f->path, 0700, &f->err), 0);
}

/* Writes <md>/<rel> with the given bytes. */
static void put(struct fx *f, const char *rel, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", f->path, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void puts_(struct fx *f, const char *rel, const char *s)
{
    put(f, rel, s, strlen(s));
}

static bool exists(struct fx *f, const char *rel)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", f->path, rel);
    return lstat(path, &st) == 0;
}

/* Delivers through maildir.c (name with S= and W=); returns the base name. */
static char *deliver(struct fx *f, const void *p, size_t n)
{
    struct maildir_delivery *d;
    char *final = NULL;
    assert_int_equal(maildir_open(f->path, &d, &f->err), 0);
    assert_int_equal(maildir_write(d, p, n, &f->err), 0);
    assert_int_equal(maildir_commit(&d, &final, &f->err), 0);
    char *base = strdup(strrchr(final, '/') + 1);
    free(final);
    return base;
}

static struct mailbox *open_ok(struct fx *f, unsigned flags)
{
    struct mailbox *mb = NULL;
    enum mailbox_status st = mailbox_open(f->path, flags, &mb, &f->err);
    if (st != MAILBOX_OK)
        fail_msg("mailbox_open: %d %s", st, f->err.data);
    assert_non_null(mb);
    return mb;
}

/* The size as sent, the slow obvious way: split at LF, drop one CR before
 * each LF, every line (also a last one without LF) is its bytes + 2. */
static uint64_t expected_size(const char *p, size_t n)
{
    uint64_t size = 0;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            size_t len = i - start;
            if (len > 0 && p[i - 1] == '\r')
                len--;
            size += len + 2;
            start = i + 1;
        }
    }
    if (start < n)
        size += (n - start) + 2;
    return size;
}

/* Reads message i back, checks the lines rebuild (with CRLF) the expected
 * text, and returns the sum of (len + 2). */
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
    assert_null(r);
    strbuf_free(&line);
    strbuf_free(&err);
    return sum;
}

/* The expected CRLF form of p (for comparing with read_back). */
static void crlf_form(const char *p, size_t n, strbuf *out)
{
    size_t start = 0;
    strbuf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            size_t len = i - start;
            if (len > 0 && p[i - 1] == '\r')
                len--;
            strbuf_append(out, p + start, len);
            strbuf_appends(out, "\r\n");
            start = i + 1;
        }
    }
    if (start < n) {
        strbuf_append(out, p + start, n - start);
        strbuf_appends(out, "\r\n");
    }
}

static void read_cache_file(struct fx *f, strbuf *out)
{
    char path[256], buf[4096];
    ssize_t n;
    snprintf(path, sizeof(path), "%s/petrel-sizes", f->path);
    strbuf_reset(out);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_append(out, buf, (size_t)n);
    close(fd);
}

/* ---- tests ---- */

static void test_missing_and_empty(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb = NULL;
    char path[160];

    /* Missing, as a Maildir (trailing slash) and as a directory path. */
    snprintf(path, sizeof(path), "%s/", f->path);
    assert_int_equal(mailbox_open(path, MAILBOX_EXCLUSIVE, &mb, &f->err), MAILBOX_OK);
    assert_int_equal(mailbox_count(mb), 0);
    assert_null(mailbox_msg(mb, 0));
    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    mailbox_close(&mb);
    assert_null(mb);
    assert_false(exists(f, "")); /* reading creates nothing */

    /* Existing but empty. */
    make_md(f);
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 0);
    mailbox_close(&mb);

    /* A directory with only new/ (cur/ is made on the way). */
    snprintf(path, sizeof(path), "%s/cur", f->path);
    assert_int_equal(rmdir(path), 0);
    puts_(f, "new/1700000000.M1P1Q1.host", "Subject: x\n\nbody\n");
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 1);
    assert_true(exists(f, "cur/1700000000.M1P1Q1.host:2,"));
    mailbox_close(&mb);

    mailbox_close(&mb); /* NULL-safe */
    assert_int_equal(mailbox_open("", 0, &mb, &f->err), MAILBOX_ERROR);
}

static void test_order(void **state)
{
    struct fx *f = *state;
    static const char *const want[] = {
        "999999999.M1P1Q1.h",      /* fewer digits: older */
        "1700000010.M5P1Q1.h",
        "1700000010.M5P1Q9.h",
        "1700000010.M5P1Q10.h",    /* Q10 after Q9: numbers, not bytes */
        "1700000010.M10P1Q1.h",    /* M10 after M5 */
        "1700000011.M0P1Q1.h",
        "zzz-no-number",           /* no leading number: last */
    };
    char path[256];
    make_md(f);
    /* Created in a scrambled order, some in new/. */
    puts_(f, "cur/1700000010.M10P1Q1.h:2,S", "a\n");
    puts_(f, "cur/zzz-no-number:2,", "a\n");
    puts_(f, "new/1700000010.M5P1Q10.h", "a\n");
    puts_(f, "cur/1700000011.M0P1Q1.h:2,", "a\n");
    puts_(f, "cur/999999999.M1P1Q1.h:2,", "a\n");
    puts_(f, "new/1700000010.M5P1Q9.h", "a\n");
    puts_(f, "cur/1700000010.M5P1Q1.h:2,RS", "a\n");
    /* Not messages: dot files, tmp/, a directory. */
    puts_(f, "cur/.hidden", "a\n");
    puts_(f, "new/.hidden", "a\n");
    puts_(f, "tmp/1600000000.M1P1Q1.h", "a\n");
    snprintf(path, sizeof(path), "%s/cur/1600000000.dir", f->path);
    assert_int_equal(mkdir(path, 0700), 0);

    struct mailbox *mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < mailbox_count(mb); i++)
        assert_string_equal(mailbox_msg(mb, i)->uid, want[i]);
    mailbox_close(&mb);
    assert_true(exists(f, "new/.hidden"));
    assert_true(exists(f, "tmp/1600000000.M1P1Q1.h"));
}

static void test_new_to_cur_keeps_uid(void **state)
{
    struct fx *f = *state;
    make_md(f);
    char *base = deliver(f, "Subject: a\n\nhello\n", 18);
    char rel[512];

    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 1);
    assert_string_equal(mailbox_msg(mb, 0)->uid, base);
    assert_false(mailbox_msg(mb, 0)->deleted);
    mailbox_close(&mb);

    snprintf(rel, sizeof(rel), "new/%s", base);
    assert_false(exists(f, rel));
    snprintf(rel, sizeof(rel), "cur/%s:2,", base);
    assert_true(exists(f, rel));

    /* The next session sees the same id; a second message comes after. */
    char *base2 = deliver(f, "x\n", 2);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 2);
    assert_string_equal(mailbox_msg(mb, 0)->uid, base);
    assert_string_equal(mailbox_msg(mb, 1)->uid, base2);
    mailbox_close(&mb);
    free(base);
    free(base2);
}

static const struct {
    const char *name;
    const char *text;
    size_t len;
} size_cases[] = {
    { "lf", "Subject: a\n\nline\n", 17 },
    { "crlf", "Subject: a\r\n\r\nline\r\n", 20 },
    { "mixed", "a\nb\r\nc\n\r\n", 9 },
    { "no-final-lf", "Subject: a\n\nlast", 16 },
    { "crlf-no-final-lf", "a\r\nlast", 7 },
    { "empty", "", 0 },
    { "bare-cr", "a\rb\n\r\r\nc\r", 9 },
    { "only-lf", "\n", 1 },
    { "only-cr", "\r", 1 },
    { "nul", "a\0b\n", 4 },
};
#define NCASES (sizeof(size_cases) / sizeof(size_cases[0]))

/* Every case, delivered with W= names and written without: the size
 * matches the definition, and the reader produces exactly that. */
static void test_sizes(void **state)
{
    struct fx *f = *state;
    strbuf got, want;
    strbuf_init(&got);
    strbuf_init(&want);
    make_md(f);
    for (size_t i = 0; i < NCASES; i++) {
        char rel[128];
        free(deliver(f, size_cases[i].text, size_cases[i].len));
        /* Same second as nothing else: the plain copy sorts after all. */
        snprintf(rel, sizeof(rel), "cur/2000000000.M%zuP1Q1.plain:2,", i);
        put(f, rel, size_cases[i].text, size_cases[i].len);
    }
    for (int pass = 0; pass < 2; pass++) { /* second pass: from the cache */
        struct mailbox *mb = open_ok(f, 0);
        assert_int_equal(mailbox_count(mb), 2 * NCASES);
        for (size_t k = 0; k < 2 * NCASES; k++) {
            size_t i = k % NCASES;
            uint64_t exp = expected_size(size_cases[i].text, size_cases[i].len);
            const struct mailbox_msg *m = mailbox_msg(mb, k);
            if (m->size != exp)
                fail_msg("pass %d case %s (%s): size %llu, want %llu", pass,
                         size_cases[i].name, k < NCASES ? "W=" : "plain",
                         (unsigned long long)m->size, (unsigned long long)exp);
            assert_int_equal(read_back(mb, k, &got), exp);
            crlf_form(size_cases[i].text, size_cases[i].len, &want);
            assert_int_equal(got.len, want.len);
            assert_memory_equal(got.data, want.data, want.len);
        }
        mailbox_close(&mb);
    }
    strbuf_free(&got);
    strbuf_free(&want);
}

/* A long message crosses the reader's buffer, with a long line. */
static void test_big_message(void **state)
{
    struct fx *f = *state;
    strbuf text, got, want;
    strbuf_init(&text);
    strbuf_init(&got);
    strbuf_init(&want);
    make_md(f);
    for (int i = 0; i < 20000; i++)
        strbuf_printf(&text, "line %d%s", i, i % 3 == 0 ? "\r\n" : "\n");
    for (int i = 0; i < 200000; i++)
        strbuf_appendc(&text, (char)('a' + i % 26));
    strbuf_appends(&text, "\r\nend");
    free(deliver(f, text.data, text.len));
    struct mailbox *mb = open_ok(f, 0);
    assert_int_equal(mailbox_msg(mb, 0)->size, expected_size(text.data, text.len));
    assert_int_equal(read_back(mb, 0, &got), expected_size(text.data, text.len));
    crlf_form(text.data, text.len, &want);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    mailbox_close(&mb);
    strbuf_free(&text);
    strbuf_free(&got);
    strbuf_free(&want);
}

static void test_cache(void **state)
{
    struct fx *f = *state;
    strbuf c;
    char path[256];
    strbuf_init(&c);
    make_md(f);
    puts_(f, "cur/1700000000.M1P1Q1.h:2,", "a\nb\n"); /* size 6 */
    char *wname = deliver(f, "x\ny", 3);               /* W=4, really 6 */

    struct mailbox *mb = open_ok(f, 0);
    assert_int_equal(mailbox_msg(mb, 0)->size, 6);
    assert_int_equal(mailbox_msg(mb, 1)->size, 6);
    mailbox_close(&mb);
    read_cache_file(f, &c);
    assert_true(strncmp(c.data, "petrel-sizes 1\n", 15) == 0);
    assert_non_null(strstr(c.data, "6 4 "));
    assert_non_null(strstr(c.data, " 1700000000.M1P1Q1.h\n"));
    assert_non_null(strstr(c.data, wname));

    /* The cache is used: plant a different size for the same file. */
    char *p = strstr(c.data, "6 4 ");
    p[0] = '9';
    snprintf(path, sizeof(path), "%s/petrel-sizes", f->path);
    put(f, "petrel-sizes", c.data, c.len);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_msg(mb, 0)->size, 9);
    mailbox_close(&mb);

    /* ... but only while size and mtime match: touch the message. */
    struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
    snprintf(path, sizeof(path), "%s/cur/1700000000.M1P1Q1.h:2,", f->path);
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_msg(mb, 0)->size, 6);
    mailbox_close(&mb);

    /* A damaged cache is ignored and rebuilt. */
    static const char *const bad[] = {
        "garbage\n",
        "petrel-sizes 1\n6 4 x.0 1700000000.M1P1Q1.h\n",
        "petrel-sizes 1\n6 4 1.0 1700000000.M1P1Q1.h", /* torn */
        "petrel-sizes 1\n99999999999999999999999 4 1.0 a\n",
        "petrel-sizes 1\n6 4 1.0 \n",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        puts_(f, "petrel-sizes", bad[i]);
        mb = open_ok(f, 0);
        assert_int_equal(mailbox_msg(mb, 0)->size, 6);
        assert_int_equal(mailbox_msg(mb, 1)->size, 6);
        mailbox_close(&mb);
        read_cache_file(f, &c);
        assert_true(strncmp(c.data, "petrel-sizes 1\n", 15) == 0);
        assert_non_null(strstr(c.data, " 1700000000.M1P1Q1.h\n"));
    }

    /* A removed message leaves the cache at the next session. */
    snprintf(path, sizeof(path), "%s/cur/1700000000.M1P1Q1.h:2,", f->path);
    assert_int_equal(unlink(path), 0);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 1);
    mailbox_close(&mb);
    read_cache_file(f, &c);
    assert_null(strstr(c.data, "1700000000.M1P1Q1.h"));
    assert_non_null(strstr(c.data, wname));

    /* A cache that is a symlink is not read (the planted size is not
     * used), and not written through either. */
    puts_(f, "other", "petrel-sizes 1\n");
    snprintf(path, sizeof(path), "%s/petrel-sizes", f->path);
    assert_int_equal(unlink(path), 0);
    char target[256];
    snprintf(target, sizeof(target), "%s/other", f->path);
    assert_int_equal(symlink(target, path), 0);
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_msg(mb, 0)->size, 6);
    mailbox_close(&mb);
    read_cache_file(f, &c);
    assert_non_null(strstr(c.data, wname)); /* replaced by a real file */
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    free(wname);
    strbuf_free(&c);
}

static void test_hostile_names(void **state)
{
    struct fx *f = *state;
    char longname[300], rel[400];
    make_md(f);
    memset(longname, 'x', 250);
    memcpy(longname, "1700000003.", 11);
    longname[250] = '\0';
    puts_(f, "cur/1700000001.has space.h:2,", "a\n");
    puts_(f, "cur/1700000002.caf\xc3\xa9.h:2,", "a\n");
    snprintf(rel, sizeof(rel), "cur/%s:2,", longname);
    puts_(f, rel, "a\n");
    puts_(f, "cur/~1700000004.tilde:2,", "a\n");
    puts_(f, "cur/1700000005.tab\there:2,", "a\n");
    puts_(f, "cur/1700000006.new\nline:2,", "a\n");
    /* Same base twice (a copy with other flags): ids must still differ. */
    puts_(f, "cur/1700000007.dup:2,S", "a\n");
    puts_(f, "cur/1700000007.dup:2,RS", "a\n");

    struct mailbox *mb = open_ok(f, 0);
    struct mailbox *mb2 = open_ok(f, 0);
    size_t n = mailbox_count(mb);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        const char *uid = mailbox_msg(mb, i)->uid;
        size_t len = strlen(uid);
        assert_true(len >= 1 && len <= 70);
        for (size_t k = 0; k < len; k++)
            assert_true(uid[k] >= 0x21 && uid[k] <= 0x7e);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(uid, mailbox_msg(mb, j)->uid);
        /* Stable: the same in another session. */
        assert_string_equal(uid, mailbox_msg(mb2, i)->uid);
        assert_int_equal(mailbox_msg(mb, i)->size, 3);
    }
    /* A valid name is its own id; the others are hashes ("~" + hex). */
    assert_string_equal(mailbox_msg(mb, 5)->uid, "1700000007.dup");
    assert_int_equal(mailbox_msg(mb, 6)->uid[0], '~'); /* its copy */
    assert_int_equal(strlen(mailbox_msg(mb, 0)->uid), 41);
    assert_int_equal(mailbox_msg(mb, 0)->uid[0], '~');
    assert_int_equal(mailbox_msg(mb, 7)->uid[0], '~'); /* the '~' name, last */
    mailbox_close(&mb);
    mailbox_close(&mb2);
}

static void test_symlinks_refused(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb = NULL;
    char real[160], path[200], secret[160];

    /* A symlinked Maildir, with and without a trailing slash. */
    snprintf(real, sizeof(real), "%s/real", f->dir);
    assert_int_equal(maildir_create(real, 0700, &f->err), 0);
    assert_int_equal(symlink(real, f->path), 0);
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "symbolic link"));
    snprintf(path, sizeof(path), "%s/", f->path);
    assert_int_equal(mailbox_open(path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "symbolic link"));
    assert_null(mb);
    assert_int_equal(unlink(f->path), 0);

    /* A symlinked cur/ (or new/). */
    make_md(f);
    snprintf(path, sizeof(path), "%s/cur", f->path);
    assert_int_equal(rmdir(path), 0);
    snprintf(real, sizeof(real), "%s/real/cur", f->dir);
    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "/Maildir/cur: it is a symbolic link"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/new", f->path);
    assert_int_equal(rmdir(path), 0);
    snprintf(real, sizeof(real), "%s/real/new", f->dir);
    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "/Maildir/new: it is a symbolic link"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);

    /* A symlinked message (to a file the user should not see through
     * the mailbox) is not listed, in cur/ or in new/. */
    snprintf(secret, sizeof(secret), "%s/secret", f->dir);
    int fd = open(secret, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, "secret\n", 7), 7);
    close(fd);
    snprintf(path, sizeof(path), "%s/cur/1700000000.M1P1Q1.link,S=7,W=8:2,", f->path);
    assert_int_equal(symlink(secret, path), 0);
    snprintf(path, sizeof(path), "%s/new/1700000001.M1P1Q1.link", f->path);
    assert_int_equal(symlink(secret, path), 0);
    puts_(f, "cur/1700000002.M1P1Q1.real:2,", "ok\n");
    mb = open_ok(f, 0);
    assert_int_equal(mailbox_count(mb), 1);
    assert_string_equal(mailbox_msg(mb, 0)->uid, "1700000002.M1P1Q1.real");

    /* Swapped for a symlink after the listing: the reader refuses it. */
    snprintf(path, sizeof(path), "%s/cur/1700000002.M1P1Q1.real:2,", f->path);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(secret, path), 0);
    assert_null(mailbox_reader_open(mb, 0, &f->err));
    assert_non_null(strstr(f->err.data, "symbolic link"));
    mailbox_close(&mb);
}

/* A Maildir or subdirectory owned by someone else is refused (root can
 * arrange that; others skip). */
static void test_foreign_owner(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb = NULL;
    char path[256];
    if (geteuid() != 0)
        skip();
    make_md(f);
    snprintf(path, sizeof(path), "%s/cur", f->path);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "/Maildir/cur: owned by uid 65534"));
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(chown(f->path, 65534, 65534), 0);
    assert_int_equal(mailbox_open(f->path, 0, &mb, &f->err), MAILBOX_ERROR);
    assert_non_null(strstr(f->err.data, "owned by uid 65534"));
    assert_null(mb);
}

static void test_lock(void **state)
{
    struct fx *f = *state;
    struct mailbox *mb2 = NULL;
    make_md(f);
    puts_(f, "cur/1700000000.M1P1Q1.h:2,", "a\n");

    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_open(f->path, MAILBOX_EXCLUSIVE, &mb2, &f->err), MAILBOX_IN_USE);
    assert_null(mb2);
    assert_non_null(strstr(f->err.data, "in use"));
    /* A reader that does not ask for the lock is not stopped. */
    mb2 = open_ok(f, 0);
    mailbox_close(&mb2);
    mailbox_close(&mb);
    /* Released by close. */
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    mailbox_close(&mb);

    /* Another process holds it; when that process dies, the kernel
     * releases it. */
    int pfd[2];
    char c;
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mailbox *child = NULL;
        strbuf e;
        strbuf_init(&e);
        c = mailbox_open(f->path, MAILBOX_EXCLUSIVE, &child, &e) == MAILBOX_OK ? 'y' : 'n';
        if (write(pfd[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    assert_int_equal(c, 'y');
    assert_int_equal(mailbox_open(f->path, MAILBOX_EXCLUSIVE, &mb2, &f->err), MAILBOX_IN_USE);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    mailbox_close(&mb);
}

static void test_commit(void **state)
{
    struct fx *f = *state;
    strbuf got;
    strbuf_init(&got);
    make_md(f);
    puts_(f, "cur/1700000001.a:2,", "one\n");
    puts_(f, "cur/1700000002.b:2,", "two\n");
    puts_(f, "cur/1700000003.c:2,", "three\n");
    puts_(f, "cur/1700000004.d:2,", "four\n");
    puts_(f, "cur/1700000005.e:2,", "five\n");

    struct mailbox *mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 5);
    mailbox_mark_deleted(mb, 0, true);
    mailbox_mark_deleted(mb, 1, true);
    mailbox_mark_deleted(mb, 1, false); /* RSET-like: unmarked again */
    mailbox_mark_deleted(mb, 2, true);
    mailbox_mark_deleted(mb, 3, true);
    mailbox_mark_deleted(mb, 99, true); /* out of range: ignored */
    assert_true(mailbox_msg(mb, 0)->deleted);
    assert_false(mailbox_msg(mb, 1)->deleted);

    /* Meanwhile another client removed c and re-flagged d. */
    char a[256], b[256];
    snprintf(a, sizeof(a), "%s/cur/1700000003.c:2,", f->path);
    assert_int_equal(unlink(a), 0);
    snprintf(a, sizeof(a), "%s/cur/1700000004.d:2,", f->path);
    snprintf(b, sizeof(b), "%s/cur/1700000004.d:2,S", f->path);
    assert_int_equal(rename(a, b), 0);
    /* The reader reports the removed one and still finds the renamed one. */
    assert_null(mailbox_reader_open(mb, 2, &f->err));
    assert_string_equal(f->err.data, "message was removed");
    assert_int_equal(read_back(mb, 3, &got), 6);
    assert_memory_equal(got.data, "four\r\n", 6);

    assert_int_equal(mailbox_commit(mb, &f->err), 0);
    mailbox_close(&mb);
    assert_false(exists(f, "cur/1700000001.a:2,"));
    assert_true(exists(f, "cur/1700000002.b:2,"));
    assert_false(exists(f, "cur/1700000004.d:2,S"));
    assert_true(exists(f, "cur/1700000005.e:2,"));

    /* Closing without commit removes nothing. */
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 2);
    mailbox_mark_deleted(mb, 0, true);
    mailbox_close(&mb);
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 2);
    /* A file that vanished after the listing: the reader says so. */
    char p[256];
    snprintf(p, sizeof(p), "%s/cur/1700000005.e:2,", f->path);
    assert_int_equal(unlink(p), 0);
    assert_null(mailbox_reader_open(mb, 1, &f->err));
    assert_string_equal(f->err.data, "message was removed");
    assert_null(mailbox_reader_open(mb, 7, &f->err));
    mailbox_close(&mb);
    strbuf_free(&got);
}

/* Exclusive sessions remove tmp/ files left by crashed deliveries (36 h
 * untouched), nothing else; tmp/ files are never listed. */
static void test_tmp_cleanup(void **state)
{
    struct fx *f = *state;
    char path[256];
    time_t old = time(NULL) - 37 * 3600;
    struct timespec ts[2] = { { old, 0 }, { old, 0 } };
    make_md(f);
    puts_(f, "tmp/1600000000.M1P1Q1.old", "partial");
    puts_(f, "tmp/1600000000.M1P1Q2.fresh", "partial");
    snprintf(path, sizeof(path), "%s/tmp/1600000000.M1P1Q1.old", f->path);
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    snprintf(path, sizeof(path), "%s/tmp/olddir", f->path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);

    struct mailbox *mb = open_ok(f, 0); /* not exclusive: tmp/ untouched */
    assert_int_equal(mailbox_count(mb), 0);
    mailbox_close(&mb);
    assert_true(exists(f, "tmp/1600000000.M1P1Q1.old"));
    mb = open_ok(f, MAILBOX_EXCLUSIVE);
    assert_int_equal(mailbox_count(mb), 0);
    mailbox_close(&mb);
    assert_false(exists(f, "tmp/1600000000.M1P1Q1.old"));
    assert_true(exists(f, "tmp/1600000000.M1P1Q2.fresh"));
    assert_true(exists(f, "tmp/olddir"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_missing_and_empty), T(test_order),  T(test_new_to_cur_keeps_uid),
        T(test_sizes),             T(test_big_message), T(test_cache),
        T(test_hostile_names),     T(test_symlinks_refused), T(test_foreign_owner), T(test_lock),
        T(test_commit),            T(test_tmp_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
