/*
 * test_map.c - unit tests for the lookup-table layer (lib/mail/map*.c).
 *
 * Each test works in a fresh mkdtemp directory that is removed afterwards;
 * logged warnings go to a file there so that tests can assert them.
 * Covered: build and lookup round trips for hash: and texthash: (case
 * folding, continuation, CRLF, spaces and UTF-8 in values, missing keys,
 * NUL/empty keys), source errors (missing value, NUL, control characters,
 * invalid UTF-8, overlong lines, stray continuation), duplicate keys,
 * the stale-.db warning, reopening after a rebuild, atomic replacement and
 * file modes, hostile DB_CONFIG files (BAD-INPUT.md row 8), unknown types,
 * missing and corrupt files (MAP_ERROR, never MAP_NOTFOUND), lists of
 * tables, close-on-exec descriptors and .db files written by other tools.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/testdir.h"
#include "mail/map.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fixture and helpers ---- */

struct fx {
    char dir[64];
    char log[128];
    strbuf err, val;
};


static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/petrel-map-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->log, sizeof(f->log), "%s/test.log", f->dir);
    log_init("test_map");
    if (log_open(LOG_DEST_FILE, f->log) != 0)
        return -1;
    strbuf_init(&f->err);
    strbuf_init(&f->val);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    log_close();
    test_rm_tree(f->dir);
    strbuf_free(&f->err);
    strbuf_free(&f->val);
    free(f);
    return 0;
}

/* <dir>/<name> into out. */
static void path_in(const struct fx *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

/* Writes text to path through a temporary file and a rename, as an editor
 * or a deployment tool would: the file gets a new inode. */
static void replace_text(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    write_text(tmp, text);
    assert_int_equal(rename(tmp, path), 0);
}

static void slurp(const char *path, strbuf *sb)
{
    char buf[4096];
    ssize_t n;
    strbuf_reset(sb);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_append(sb, buf, (size_t)n);
    close(fd);
}

static bool log_has(const struct fx *f, const char *needle)
{
    strbuf sb;
    strbuf_init(&sb);
    slurp(f->log, &sb);
    bool found = strstr(sb.data, needle) != NULL;
    strbuf_free(&sb);
    return found;
}

/* Empties the log file, so that later assertions see only new lines. */
static void log_reset(const struct fx *f)
{
    log_close();
    unlink(f->log);
    assert_int_equal(log_open(LOG_DEST_FILE, f->log), 0);
}

/* Files in the directory whose name contains part. */
static int count_named(const char *dir, const char *part)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(dh);
    while ((de = readdir(dh)) != NULL) {
        if (strstr(de->d_name, part) != NULL)
            n++;
    }
    closedir(dh);
    return n;
}

static void set_mtime(const char *path, time_t when)
{
    struct timespec ts[2] = {{when, 0}, {when, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Looks key up and checks status and, for MAP_FOUND, the value. */
static void expect(struct fx *f, struct map *m, const char *key, enum map_status want,
                   const char *value)
{
    strbuf_reset(&f->err);
    enum map_status st = map_lookup(m, key, strlen(key), &f->val, &f->err);
    if (st != want)
        fail_msg("key '%s': status %d, want %d (err: %s)", key, st, want, f->err.data);
    if (want == MAP_FOUND)
        assert_string_equal(f->val.data, value);
    else
        assert_int_equal(f->val.len, 0);
}

static const char ROUND_TRIP_SOURCE[] =
    "# a comment line\n"
    "\n"
    "Alice@Example.ORG    alice\n"
    "bob\tBob Smith   <bob@example.org>   \n"
    "   # an indented comment\n"
    "utf8 J\xc3\xbcrgen \xe2\x9c\x89\n"
    "long first part,\n"
    "     second part\n"
    "crlf value\r\n"
    "MixedKey MixedValue\n"
    "last no-newline";

/* The round trip every type must pass. */
static void round_trip(struct fx *f, const char *type)
{
    char src[128], spec[160];
    path_in(f, "table", src, sizeof(src));
    snprintf(spec, sizeof(spec), "%s:%s", type, src);
    write_text(src, ROUND_TRIP_SOURCE);
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    assert_int_equal(f->err.len, 0);

    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    assert_string_equal(map_spec(m), spec);
    expect(f, m, "alice@example.org", MAP_FOUND, "alice");
    expect(f, m, "ALICE@EXAMPLE.ORG", MAP_FOUND, "alice");
    expect(f, m, "bob", MAP_FOUND, "Bob Smith   <bob@example.org>");
    expect(f, m, "BOB", MAP_FOUND, "Bob Smith   <bob@example.org>");
    expect(f, m, "utf8", MAP_FOUND, "J\xc3\xbcrgen \xe2\x9c\x89");
    expect(f, m, "long", MAP_FOUND, "first part, second part");
    expect(f, m, "crlf", MAP_FOUND, "value");
    expect(f, m, "mixedkey", MAP_FOUND, "MixedValue"); /* values keep their case */
    expect(f, m, "last", MAP_FOUND, "no-newline");
    expect(f, m, "carol", MAP_NOTFOUND, NULL);
    expect(f, m, "alice", MAP_NOTFOUND, NULL);
    expect(f, m, "#", MAP_NOTFOUND, NULL);
    expect(f, m, "", MAP_NOTFOUND, NULL);
    /* A key with a NUL inside can never match (sources cannot hold one). */
    assert_int_equal(map_lookup(m, "bob\0x", 5, &f->val, &f->err), MAP_NOTFOUND);
    /* Nor can an overlong one. */
    size_t big = MAP_MAX_LINE + 10;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'a', big);
    assert_int_equal(map_lookup(m, huge, big, &f->val, &f->err), MAP_NOTFOUND);
    free(huge);
    map_close(&m);
    assert_null(m);
    map_close(&m); /* NULL-safe */
}

/* ---- round trips ---- */

static void test_hash_round_trip(void **state)
{
    struct fx *f = *state;
    round_trip(f, "hash");
    char db[128];
    path_in(f, "table.db", db, sizeof(db));
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(count_named(f->dir, ".tmp"), 0);
}

static void test_texthash_round_trip(void **state)
{
    struct fx *f = *state;
    round_trip(f, "texthash");
    /* No compile step: nothing was written beside the source. */
    assert_int_equal(count_named(f->dir, ".db"), 0);
}

static void test_default_type_is_hash(void **state)
{
    struct fx *f = *state;
    char src[128];
    path_in(f, "plain", src, sizeof(src));
    write_text(src, "k v\n");
    assert_int_equal(map_build(src, NULL, &f->err), 0);
    struct map *m;
    assert_int_equal(map_open(src, 0, &m, &f->err), 0);
    expect(f, m, "K", MAP_FOUND, "v");
    map_close(&m);
    char db[128];
    path_in(f, "plain.db", db, sizeof(db));
    assert_int_equal(access(db, F_OK), 0);
}

static void test_build_from_other_source(void **state)
{
    struct fx *f = *state;
    char src[128], dst[128], spec[160];
    path_in(f, "source.txt", src, sizeof(src));
    path_in(f, "dest", dst, sizeof(dst));
    snprintf(spec, sizeof(spec), "hash:%s", dst);
    write_text(src, "x y\n");
    assert_int_equal(map_build(spec, src, &f->err), 0);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    expect(f, m, "x", MAP_FOUND, "y");
    map_close(&m);
}

/* ---- source errors ---- */

/* Builds text and expects failure with the given message fragments, and
 * that no .db was written. */
static void expect_build_errors(struct fx *f, const char *text, size_t n, int nerrors,
                                const char *const *fragments)
{
    char src[128], spec[160];
    path_in(f, "bad", src, sizeof(src));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_file(src, text, n);
    strbuf_reset(&f->err);
    int got = map_build(spec, NULL, &f->err);
    if (got != nerrors)
        fail_msg("%d errors, want %d: %s", got, nerrors, f->err.data);
    for (const char *const *p = fragments; *p != NULL; p++) {
        if (strstr(f->err.data, *p) == NULL)
            fail_msg("missing '%s' in: %s", *p, f->err.data);
    }
    assert_int_equal(count_named(f->dir, "bad.db"), 0);
    assert_int_equal(count_named(f->dir, ".tmp"), 0);
}

static void test_build_missing_value(void **state)
{
    static const char text[] = "good value\nlonely\n  \nalso good\n";
    const char *frags[] = {"/bad:2: missing value after key 'lonely'", NULL};
    expect_build_errors(*state, text, sizeof(text) - 1, 1, frags);
}

static void test_build_nul_byte(void **state)
{
    static const char text[] = "a b\nk v\0x\nc d\n";
    const char *frags[] = {"/bad:2: NUL byte", NULL};
    expect_build_errors(*state, text, sizeof(text) - 1, 1, frags);
}

static void test_build_control_char(void **state)
{
    static const char text[] = "a b\x1b[31m\nb c\rd\n";
    const char *frags[] = {"/bad:1: control character 0x1b", "/bad:2: control character 0x0d",
                           NULL};
    expect_build_errors(*state, text, sizeof(text) - 1, 2, frags);
}

static void test_build_invalid_utf8(void **state)
{
    /* Latin-1, an overlong '/', a surrogate, a truncated sequence. */
    static const char text[] = "a J\xfcrgen\nb \xc0\xaf\nc \xed\xa0\x80\nd \xe2\x9c\n";
    const char *frags[] = {"/bad:1: invalid UTF-8", "/bad:2: invalid UTF-8",
                           "/bad:3: invalid UTF-8", "/bad:4: invalid UTF-8", NULL};
    expect_build_errors(*state, text, sizeof(text) - 1, 4, frags);
}

static void test_build_overlong_line(void **state)
{
    struct fx *f = *state;
    size_t n = MAP_MAX_LINE + 100;
    strbuf text;
    strbuf_init(&text);
    strbuf_appends(&text, "ok 1\nbig ");
    for (size_t i = 0; i < n; i++)
        strbuf_appendc(&text, 'x');
    strbuf_appends(&text, "\nok2 2\n");
    const char *frags[] = {"/bad:2: line longer than 65536 bytes", NULL};
    expect_build_errors(f, text.data, text.len, 1, frags);

    /* Short physical lines that add up to too long a logical line. */
    strbuf_reset(&text);
    strbuf_appends(&text, "big start\n");
    for (int i = 0; i < 20; i++) {
        strbuf_appends(&text, " ");
        for (int j = 0; j < 4000; j++)
            strbuf_appendc(&text, 'y');
        strbuf_appends(&text, "\n");
    }
    const char *frags2[] = {"/bad:1: line longer than 65536 bytes (with its continuation", NULL};
    expect_build_errors(f, text.data, text.len, 1, frags2);
    strbuf_free(&text);
}

static void test_build_stray_continuation(void **state)
{
    static const char text[] = "  starts indented\nk v\n";
    const char *frags[] = {"/bad:1: continuation line", NULL};
    expect_build_errors(*state, text, sizeof(text) - 1, 1, frags);
}

static void test_build_error_keeps_old_table(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "keep", src, sizeof(src));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k old\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    write_text(src, "k new\nbroken\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 1);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    expect(f, m, "k", MAP_FOUND, "old");
    map_close(&m);
    assert_int_equal(count_named(f->dir, ".tmp"), 0);
}

static void test_build_binary_file_stops(void **state)
{
    struct fx *f = *state;
    /* One error per line would be thousands: the reader gives up. */
    strbuf text;
    strbuf_init(&text);
    for (int i = 0; i < 5000; i++)
        strbuf_append(&text, "k \x01\n", 4);
    char src[128], spec[160];
    path_in(f, "binary", src, sizeof(src));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_file(src, text.data, text.len);
    int n = map_build(spec, NULL, &f->err);
    assert_true(n > 0 && n <= 101);
    assert_non_null(strstr(f->err.data, "too many errors"));
    strbuf_free(&text);
}

static void test_build_missing_source(void **state)
{
    struct fx *f = *state;
    assert_int_equal(map_build("hash:/nonexistent-petrel/x", NULL, &f->err), 1);
    assert_non_null(strstr(f->err.data, "/nonexistent-petrel/x: cannot open: No such file"));
}

static void test_texthash_build_only_checks(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "tt", src, sizeof(src));
    snprintf(spec, sizeof(spec), "texthash:%s", src);
    write_text(src, "k v\nnovalue\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 1);
    assert_non_null(strstr(f->err.data, "/tt:2: missing value"));
    /* And opening it refuses the broken file as a whole. */
    struct map *m;
    strbuf_reset(&f->err);
    assert_int_equal(map_open(spec, 0, &m, &f->err), -1);
    assert_null(m);
    assert_non_null(strstr(f->err.data, "1 error in the source"));
    assert_non_null(strstr(f->err.data, "missing value"));
    assert_int_equal(count_named(f->dir, "tt."), 0);
}

/* ---- duplicates ---- */

static void test_duplicates_first_wins(void **state)
{
    struct fx *f = *state;
    for (int t = 0; t < 2; t++) {
        const char *type = t == 0 ? "hash" : "texthash";
        char src[128], spec[160];
        log_reset(f);
        path_in(f, "dups", src, sizeof(src));
        snprintf(spec, sizeof(spec), "%s:%s", type, src);
        write_text(src, "k first\nother x\nK second\nk third\n");
        assert_int_equal(map_build(spec, NULL, &f->err), 0);
        struct map *m;
        assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
        expect(f, m, "k", MAP_FOUND, "first");
        expect(f, m, "other", MAP_FOUND, "x");
        map_close(&m);
        assert_true(log_has(f, "/dups:3: duplicate key 'k' ignored (line 1 gives it first)"));
        assert_true(log_has(f, "/dups:4: duplicate key 'k' ignored (line 1 gives it first)"));
    }
}

/* ---- stale .db, reopening, atomic replacement, modes ---- */

static void test_stale_db_warning(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "stale", src, sizeof(src));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k v\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    map_close(&m);
    assert_false(log_has(f, "older than"));

    set_mtime(src, time(NULL) + 100); /* edited after the build */
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    expect(f, m, "k", MAP_FOUND, "v"); /* still usable */
    map_close(&m);
    char want[512];
    snprintf(want, sizeof(want),
             "database %s.db is older than source file %s; run \"petrel map %s\"", src, src, spec);
    assert_true(log_has(f, want));

    assert_int_equal(map_open(spec, MAP_ALIASES, &m, &f->err), 0);
    map_close(&m);
    snprintf(want, sizeof(want), "database %s.db is older than source file %s; run newaliases",
             src, src);
    assert_true(log_has(f, want));

    /* Rebuilt: fresh again (the new .db is newer than the source? it has
     * the current time, the source a future one, so make it current). */
    set_mtime(src, time(NULL) - 100);
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    log_reset(f);
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    map_close(&m);
    assert_false(log_has(f, "older than"));
}

static void test_reopen_after_rebuild(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "live", src, sizeof(src));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k one\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    expect(f, m, "k", MAP_FOUND, "one");
    write_text(src, "k two\nnew entry\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    expect(f, m, "k", MAP_FOUND, "two");
    expect(f, m, "new", MAP_FOUND, "entry");
    assert_true(log_has(f, "changed, reopening"));

    /* MAP_NO_REOPEN keeps what was opened. */
    struct map *fixed;
    assert_int_equal(map_open(spec, MAP_NO_REOPEN, &fixed, &f->err), 0);
    write_text(src, "k three\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    expect(f, fixed, "k", MAP_FOUND, "two");
    expect(f, m, "k", MAP_FOUND, "three");
    map_close(&fixed);
    map_close(&m);
}

static void test_texthash_reopen(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "tlive", src, sizeof(src));
    snprintf(spec, sizeof(spec), "texthash:%s", src);
    write_text(src, "k one\n");
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    expect(f, m, "k", MAP_FOUND, "one");
    replace_text(src, "k two\n");
    expect(f, m, "k", MAP_FOUND, "two");
    /* A broken edit makes lookups fail (defer), not answer "not found". */
    replace_text(src, "k three\nbroken\n");
    strbuf_reset(&f->err);
    assert_int_equal(map_lookup(m, "k", 1, &f->val, &f->err), MAP_ERROR);
    assert_non_null(strstr(f->err.data, "missing value"));
    /* Fixed again: back in service. */
    replace_text(src, "k four\n");
    expect(f, m, "k", MAP_FOUND, "four");
    map_close(&m);
}

static void test_atomic_rebuild_and_modes(void **state)
{
    struct fx *f = *state;
    char src[128], db[128], spec[160];
    path_in(f, "modes", src, sizeof(src));
    path_in(f, "modes.db", db, sizeof(db));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    mode_t old_umask = umask(077);
    write_text(src, "k v\n");
    chmod(src, 0644);
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644); /* not reduced by the umask */
    ino_t first_ino = st.st_ino;

    /* A reader holding the old table keeps a complete, valid table while
     * the new one is written beside it and renamed over it. */
    struct map *m;
    assert_int_equal(map_open(spec, MAP_NO_REOPEN, &m, &f->err), 0);
    chmod(src, 0640); /* private source: private table */
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_true(st.st_ino != first_ino); /* replaced, not rewritten in place */
    expect(f, m, "k", MAP_FOUND, "v");
    map_close(&m);

    chmod(src, 0600);
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    chmod(src, 0755); /* execute bits never reach the table */
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    umask(old_umask);
    assert_int_equal(count_named(f->dir, ".tmp"), 0);
}

static void test_build_owner_as_root(void **state)
{
    struct fx *f = *state;
    if (geteuid() != 0)
        skip();
    char src[128], db[128], spec[160];
    path_in(f, "owned", src, sizeof(src));
    path_in(f, "owned.db", db, sizeof(db));
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k v\n");
    assert_int_equal(chown(src, 65534, 65534), 0);
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);
}

static void test_build_unwritable_dir(void **state)
{
    struct fx *f = *state;
    if (geteuid() == 0)
        skip(); /* root writes anywhere */
    char sub[128], src[160], spec[200];
    path_in(f, "ro", sub, sizeof(sub));
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(src, sizeof(src), "%s/t", sub);
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k v\n");
    chmod(sub, 0555);
    assert_int_equal(map_build(spec, NULL, &f->err), 1);
    assert_non_null(strstr(f->err.data, "cannot create a temporary file beside"));
    chmod(sub, 0755);
}

/* ---- DB_CONFIG (CVE-2017-10140, BAD-INPUT.md row 8) ---- */

/* A directive the library refuses: if it ever reads this file, opening the
 * environment fails with "unrecognized name-value pair". The set_data_dir
 * line would also redirect relative file names. */
static const char HOSTILE_DB_CONFIG[] = "set_data_dir /nonexistent-petrel-data\n"
                                        "petrel_hostile_directive 1\n";

/* Proves the fixture works: an environment whose home holds the file does
 * read it and fails. */
static void assert_db_config_is_potent(const char *home)
{
    DB_ENV *env;
    assert_int_equal(db_env_create(&env, 0), 0);
    env->set_errfile(env, NULL); /* the expected complaint is not news */
    int ret = env->open(env, home, DB_CREATE | DB_INIT_MPOOL | DB_PRIVATE, 0);
    env->close(env, 0);
    assert_int_equal(ret, EINVAL);
}

static void test_db_config_ignored(void **state)
{
    struct fx *f = *state;
    char cwd_dir[128], tab_dir[128], home_dir[128], cfg[200], src[200], spec[220];
    path_in(f, "cwd", cwd_dir, sizeof(cwd_dir));
    path_in(f, "tables", tab_dir, sizeof(tab_dir));
    path_in(f, "dbhome", home_dir, sizeof(home_dir));
    const char *dirs[] = {cwd_dir, tab_dir, home_dir};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mkdir(dirs[i], 0755), 0);
        snprintf(cfg, sizeof(cfg), "%s/DB_CONFIG", dirs[i]);
        write_text(cfg, HOSTILE_DB_CONFIG);
        assert_db_config_is_potent(dirs[i]);
    }
    snprintf(src, sizeof(src), "%s/virtual", tab_dir);
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "info@example.org alice\n");

    char saved_cwd[4096];
    assert_non_null(getcwd(saved_cwd, sizeof(saved_cwd)));
    assert_int_equal(chdir(cwd_dir), 0);
    setenv("DB_HOME", home_dir, 1);

    strbuf_reset(&f->err);
    int built = map_build(spec, NULL, &f->err);
    struct map *m = NULL;
    int opened = map_open(spec, 0, &m, &f->err);
    enum map_status st = MAP_ERROR;
    if (m != NULL)
        st = map_lookup(m, "INFO@example.org", 16, &f->val, &f->err);
    map_close(&m);

    unsetenv("DB_HOME");
    assert_int_equal(chdir(saved_cwd), 0);
    if (built != 0 || opened != 0)
        fail_msg("a DB_CONFIG file was read: %s", f->err.data);
    assert_int_equal(st, MAP_FOUND);
    assert_string_equal(f->val.data, "alice");
    /* Nothing was created next to the hostile files either. */
    assert_int_equal(count_named(cwd_dir, ""), 3); /* ., .., DB_CONFIG */
    assert_int_equal(count_named(home_dir, ""), 3);
}

/* ---- bad specs, missing and corrupt files ---- */

static void test_unknown_type(void **state)
{
    struct fx *f = *state;
    struct map *m = (struct map *)1;
    assert_int_equal(map_open("foo:/x", 0, &m, &f->err), -1);
    assert_null(m);
    assert_string_equal(f->err.data, "unsupported table type 'foo' in 'foo:/x' "
                                     "(supported types: hash, texthash)");
    strbuf_reset(&f->err);
    assert_int_equal(map_build("lmdb:/x", NULL, &f->err), 1);
    assert_non_null(strstr(f->err.data, "unsupported table type 'lmdb'"));
    assert_string_equal(map_type_names(), "hash, texthash");
}

static void test_bad_specs(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"hash:relative/path", "hash:", "", "virtual",
                                      "texthash:~/x", "hash:/etc/x\nfoo"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct map *m;
        strbuf_reset(&f->err);
        assert_int_equal(map_open(bad[i], 0, &m, &f->err), -1);
        assert_null(m);
        assert_true(f->err.len > 0);
        assert_null(strchr(f->err.data, '\n')); /* escaped for logs */
    }
    strbuf_reset(&f->err);
    struct map *m;
    map_open("virtual", 0, &m, &f->err);
    assert_non_null(strstr(f->err.data, "expected type:/path"));
    strbuf_reset(&f->err);
    map_open("hash:relative", 0, &m, &f->err);
    assert_non_null(strstr(f->err.data, "must be absolute"));
}

static void test_missing_file_is_error(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "absent", src, sizeof(src));
    for (int t = 0; t < 2; t++) {
        snprintf(spec, sizeof(spec), "%s:%s", t == 0 ? "hash" : "texthash", src);
        struct map *m;
        strbuf_reset(&f->err);
        assert_int_equal(map_open(spec, 0, &m, &f->err), -1);
        assert_null(m);
        assert_non_null(strstr(f->err.data, spec));
        assert_non_null(strstr(f->err.data, "No such file or directory"));
    }
    /* Removed while open: lookups are errors, never "not found". */
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k v\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    char db[160];
    snprintf(db, sizeof(db), "%s.db", src);
    unlink(db);
    strbuf_reset(&f->err);
    assert_int_equal(map_lookup(m, "k", 1, &f->val, &f->err), MAP_ERROR);
    assert_int_equal(f->val.len, 0);
    assert_non_null(strstr(f->err.data, "cannot access"));
    assert_non_null(strstr(f->err.data, "No such file"));
    strbuf_reset(&f->err);
    assert_int_equal(map_lookup(m, "nokey", 5, &f->val, &f->err), MAP_ERROR);
    /* Rebuilt: it recovers by itself. */
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    expect(f, m, "k", MAP_FOUND, "v");
    map_close(&m);
}

static void test_corrupt_db_is_error(void **state)
{
    struct fx *f = *state;
    char src[128], db[160], spec[160];
    path_in(f, "corrupt", src, sizeof(src));
    snprintf(db, sizeof(db), "%s.db", src);
    snprintf(spec, sizeof(spec), "hash:%s", src);

    /* Garbage, a short text, an empty file, a directory. */
    char garbage[16384];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(i * 131 + 7);
    struct {
        const void *data;
        size_t n;
    } cases[] = {{garbage, sizeof(garbage)}, {"hello\n", 6}, {"", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(db, cases[i].data, cases[i].n);
        struct map *m;
        strbuf_reset(&f->err);
        assert_int_equal(map_open(spec, 0, &m, &f->err), -1);
        assert_null(m);
        assert_non_null(strstr(f->err.data, "cannot open database"));
        assert_non_null(strstr(f->err.data, "corrupt"));
    }
    unlink(db);
    assert_int_equal(mkdir(db, 0755), 0);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), -1);
    rmdir(db);

    /* A good table replaced by garbage under a running reader. */
    write_text(src, "k v\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    char tmp[200];
    snprintf(tmp, sizeof(tmp), "%s.junk", src);
    write_file(tmp, garbage, sizeof(garbage));
    assert_int_equal(rename(tmp, db), 0);
    strbuf_reset(&f->err);
    assert_int_equal(map_lookup(m, "k", 1, &f->val, &f->err), MAP_ERROR);
    assert_non_null(strstr(f->err.data, "corrupt"));
    map_close(&m);
}

/* A .db written by another tool, with keys without the trailing NUL (and
 * one value holding a NUL, which must not be passed on). */
static void test_foreign_db(void **state)
{
    struct fx *f = *state;
    char db[160], spec[160], src[128];
    path_in(f, "foreign", src, sizeof(src));
    snprintf(db, sizeof(db), "%s.db", src);
    snprintf(spec, sizeof(spec), "hash:%s", src);
    DB *d;
    assert_int_equal(db_create(&d, NULL, 0), 0);
    assert_int_equal(d->open(d, NULL, db, NULL, DB_HASH, DB_CREATE, 0644), 0);
    DBT k, v;
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = "legacy";
    k.size = 6;
    v.data = "value";
    v.size = 5;
    assert_int_equal(d->put(d, NULL, &k, &v, 0), 0);
    k.data = "nul";
    k.size = 3;
    v.data = "a\0b";
    v.size = 3;
    assert_int_equal(d->put(d, NULL, &k, &v, 0), 0);
    d->close(d, 0);

    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    expect(f, m, "LEGACY", MAP_FOUND, "value");
    strbuf_reset(&f->err);
    assert_int_equal(map_lookup(m, "nul", 3, &f->val, &f->err), MAP_ERROR);
    assert_non_null(strstr(f->err.data, "NUL byte"));
    map_close(&m);
}

/* The table's descriptor must not leak into commands that delivery runs. */
static void test_descriptor_close_on_exec(void **state)
{
    struct fx *f = *state;
    char src[128], db[160], spec[160];
    path_in(f, "fdtest", src, sizeof(src));
    snprintf(db, sizeof(db), "%s.db", src);
    snprintf(spec, sizeof(spec), "hash:%s", src);
    write_text(src, "k v\n");
    assert_int_equal(map_build(spec, NULL, &f->err), 0);
    struct map *m;
    assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
    DIR *dh = opendir("/proc/self/fd");
    if (dh == NULL) {
        map_close(&m);
        skip();
    }
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        char link[300], target[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, db) == 0) {
            int fd = atoi(de->d_name);
            assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
            seen++;
        }
    }
    closedir(dh);
    map_close(&m);
    assert_true(seen >= 1);
}

/* ---- lists ---- */

static void test_map_list(void **state)
{
    struct fx *f = *state;
    char a[128], b[128], specs[400];
    path_in(f, "first", a, sizeof(a));
    path_in(f, "second", b, sizeof(b));
    write_text(a, "shared from-first\nonly-a a\n");
    write_text(b, "shared from-second\nonly-b b\n");
    char bspec[160];
    snprintf(bspec, sizeof(bspec), "hash:%s", b);
    assert_int_equal(map_build(bspec, NULL, &f->err), 0);
    snprintf(specs, sizeof(specs), "texthash:%s,\n  %s ,", a, bspec);

    struct map_list *ml;
    assert_int_equal(map_list_open(specs, 0, &ml, &f->err), 0);
    assert_int_equal(map_list_count(ml), 2);
    assert_int_equal(map_list_lookup(ml, "SHARED", 6, &f->val, &f->err), MAP_FOUND);
    assert_string_equal(f->val.data, "from-first");
    assert_int_equal(map_list_lookup(ml, "only-b", 6, &f->val, &f->err), MAP_FOUND);
    assert_string_equal(f->val.data, "b");
    assert_int_equal(map_list_lookup(ml, "none", 4, &f->val, &f->err), MAP_NOTFOUND);
    assert_int_equal(f->val.len, 0);

    /* The first table breaks: a key that only the second holds is still an
     * error, since the broken one might have held it. */
    unlink(a);
    strbuf_reset(&f->err);
    assert_int_equal(map_list_lookup(ml, "only-b", 6, &f->val, &f->err), MAP_ERROR);
    assert_non_null(strstr(f->err.data, a));
    map_list_close(&ml);
    assert_null(ml);

    /* Broken after a hit does not matter. */
    write_text(a, "only-a a\n");
    assert_int_equal(map_list_open(specs, 0, &ml, &f->err), 0);
    char bdb[160];
    snprintf(bdb, sizeof(bdb), "%s.db", b);
    unlink(bdb);
    assert_int_equal(map_list_lookup(ml, "only-a", 6, &f->val, &f->err), MAP_FOUND);
    assert_int_equal(map_list_lookup(ml, "nothing", 7, &f->val, &f->err), MAP_ERROR);
    map_list_close(&ml);

    /* Opening fails when a table is missing, naming it. */
    strbuf_reset(&f->err);
    ml = (struct map_list *)1;
    assert_int_equal(map_list_open(specs, 0, &ml, &f->err), -1);
    assert_null(ml);
    assert_non_null(strstr(f->err.data, bspec));

    /* An empty list finds nothing. */
    assert_int_equal(map_list_open("  , ", 0, &ml, &f->err), 0);
    assert_int_equal(map_list_count(ml), 0);
    assert_int_equal(map_list_lookup(ml, "x", 1, &f->val, &f->err), MAP_NOTFOUND);
    map_list_close(&ml);
    map_list_close(&ml);
}

static void test_texthash_refuses_aliases_flag(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "al", src, sizeof(src));
    snprintf(spec, sizeof(spec), "texthash:%s", src);
    write_text(src, "root: bob\n");
    struct map *m;
    assert_int_equal(map_open(spec, MAP_ALIASES, &m, &f->err), -1);
    assert_non_null(strstr(f->err.data, "aliases syntax"));
}

static void test_large_table(void **state)
{
    struct fx *f = *state;
    char src[128], spec[160];
    path_in(f, "large", src, sizeof(src));
    strbuf text;
    strbuf_init(&text);
    for (int i = 0; i < 20000; i++)
        strbuf_printf(&text, "User%d@Example.org mailbox/%d/\n", i, i);
    write_file(src, text.data, text.len);
    strbuf_free(&text);
    for (int t = 0; t < 2; t++) {
        snprintf(spec, sizeof(spec), "%s:%s", t == 0 ? "hash" : "texthash", src);
        assert_int_equal(map_build(spec, NULL, &f->err), 0);
        struct map *m;
        assert_int_equal(map_open(spec, 0, &m, &f->err), 0);
        for (int i = 0; i < 20000; i += 997) {
            char key[64], want[64];
            snprintf(key, sizeof(key), "user%d@example.ORG", i);
            snprintf(want, sizeof(want), "mailbox/%d/", i);
            expect(f, m, key, MAP_FOUND, want);
        }
        expect(f, m, "user20000@example.org", MAP_NOTFOUND, NULL);
        map_close(&m);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_hash_round_trip),
        T(test_texthash_round_trip),
        T(test_default_type_is_hash),
        T(test_build_from_other_source),
        T(test_build_missing_value),
        T(test_build_nul_byte),
        T(test_build_control_char),
        T(test_build_invalid_utf8),
        T(test_build_overlong_line),
        T(test_build_stray_continuation),
        T(test_build_error_keeps_old_table),
        T(test_build_binary_file_stops),
        T(test_build_missing_source),
        T(test_texthash_build_only_checks),
        T(test_duplicates_first_wins),
        T(test_stale_db_warning),
        T(test_reopen_after_rebuild),
        T(test_texthash_reopen),
        T(test_atomic_rebuild_and_modes),
        T(test_build_owner_as_root),
        T(test_build_unwritable_dir),
        T(test_db_config_ignored),
        T(test_unknown_type),
        T(test_bad_specs),
        T(test_missing_file_is_error),
        T(test_corrupt_db_is_error),
        T(test_foreign_db),
        T(test_descriptor_close_on_exec),
        T(test_map_list),
        T(test_texthash_refuses_aliases_flag),
        T(test_large_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
