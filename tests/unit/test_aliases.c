/*
 * test_aliases.c - unit tests for lib/mail/aliases.c and aliases_targets.c.
 *
 * Targets are tested from tables of good and bad values; files are built
 * into hash: tables in a fresh mkdtemp directory and read back through the
 * map layer, as local-delivery will. Covered: every syntax rule of
 * aliases.h (names, case, comments, continuation, CRLF, quoting with commas
 * and escapes inside, :include:, files, commands, \user), duplicates with
 * both line numbers, malformed targets, NUL bytes, control characters,
 * invalid UTF-8, overlong lines, the postmaster warning, check-only runs and
 * a 10,000-entry file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/testdir.h"
#include "mail/aliases.h"
#include "mail/map.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- fixture and helpers ---- */

struct fx {
    char dir[64];
    char log[128];
    char src[128];  /* <dir>/aliases */
    char spec[160]; /* hash:<dir>/aliases */
    char db[160];   /* <dir>/aliases.db */
    strbuf err, val;
};


static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/petrel-aliases-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->log, sizeof(f->log), "%s/test.log", f->dir);
    snprintf(f->src, sizeof(f->src), "%s/aliases", f->dir);
    snprintf(f->spec, sizeof(f->spec), "hash:%s", f->src);
    snprintf(f->db, sizeof(f->db), "%s.db", f->src);
    log_init("test_aliases");
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

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static bool log_has(const struct fx *f, const char *needle)
{
    char buf[65536];
    int fd = open(f->log, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Builds text into the fixture's table; returns the error count. */
static int build(struct fx *f, const char *text, size_t n)
{
    write_file(f->src, text, n);
    strbuf_reset(&f->err);
    return aliases_build(f->src, f->spec, &f->err);
}

static int build_s(struct fx *f, const char *text)
{
    return build(f, text, strlen(text));
}

/* Looks name up in the built table and compares the stored value. */
static void expect_alias(struct fx *f, const char *name, const char *want)
{
    struct map *m;
    strbuf_reset(&f->err);
    if (map_open(f->spec, MAP_ALIASES, &m, &f->err) != 0)
        fail_msg("open: %s", f->err.data);
    enum map_status st = map_lookup(m, name, strlen(name), &f->val, &f->err);
    map_close(&m);
    if (want == NULL) {
        assert_int_equal(st, MAP_NOTFOUND);
        return;
    }
    if (st != MAP_FOUND)
        fail_msg("alias '%s' not found (%d)", name, st);
    assert_string_equal(f->val.data, want);
}

/* ---- targets ---- */

struct good_case {
    const char *value;
    size_t n;
    struct {
        enum alias_target_type type;
        const char *text;
        bool no_expand;
    } want[4];
};

#define A ALIAS_TARGET_ADDRESS
#define F ALIAS_TARGET_FILE
#define C ALIAS_TARGET_COMMAND
#define I ALIAS_TARGET_INCLUDE

static const struct good_case good[] = {
    {"bob", 1, {{A, "bob", false}}},
    {"  bob  ", 1, {{A, "bob", false}}},
    {"bob@Example.ORG", 1, {{A, "bob@example.org", false}}},
    {"alice, bob@example.org,carol", 3,
     {{A, "alice", false}, {A, "bob@example.org", false}, {A, "carol", false}}},
    {"\talice\t,\tbob", 2, {{A, "alice", false}, {A, "bob", false}}},
    {"\"|/usr/bin/prog arg, x\"", 1, {{C, "/usr/bin/prog arg, x", false}}},
    {"|/usr/bin/vacation", 1, {{C, "/usr/bin/vacation", false}}},
    {"\"|echo \\\"hi\\\" \\\\ there\"", 1, {{C, "echo \"hi\" \\ there", false}}},
    {"/var/mail/archive", 1, {{F, "/var/mail/archive", false}}},
    {"\"/var/spool/a b, c\"", 1, {{F, "/var/spool/a b, c", false}}},
    {"/home/bob/Maildir/", 1, {{F, "/home/bob/Maildir/", false}}},
    {":include:/etc/petrel/list", 1, {{I, "/etc/petrel/list", false}}},
    {":INCLUDE:/etc/x", 1, {{I, "/etc/x", false}}},
    {"\":include: /etc/a list\"", 1, {{I, "/etc/a list", false}}},
    {"\\bob, bob", 2, {{A, "bob", true}, {A, "bob", false}}},
    {"\"john smith\"@example.org", 1, {{A, "\"john smith\"@example.org", false}}},
    {"\"/C=US/O=x/\"@gateway.example", 1, {{A, "/C=US/O=x/@gateway.example", false}}},
    {"\"|x\"@example.org", 1, {{A, "|x@example.org", false}}},
    {"\"bob\"", 1, {{A, "bob", false}}},
    {"j\xc3\xbcrgen@example.org", 1, {{A, "j\xc3\xbcrgen@example.org", false}}},
    {"bob, \"|/bin/a, b\", /tmp/f, :include:/x", 4,
     {{A, "bob", false}, {C, "/bin/a, b", false}, {F, "/tmp/f", false}, {I, "/x", false}}},
};

static void test_targets_good(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct alias_target *list;
        size_t n;
        strbuf_reset(&f->err);
        if (aliases_parse_targets(good[i].value, strlen(good[i].value), &list, &n, &f->err) != 0)
            fail_msg("'%s': %s", good[i].value, f->err.data);
        if (n != good[i].n)
            fail_msg("'%s': %zu targets, want %zu", good[i].value, n, good[i].n);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(list[k].type, good[i].want[k].type);
            assert_string_equal(list[k].text, good[i].want[k].text);
            assert_int_equal(list[k].no_expand, good[i].want[k].no_expand);
        }
        /* The normalized form parses to the same list. */
        strbuf norm;
        strbuf_init(&norm);
        aliases_format_targets(&norm, list, n);
        struct alias_target *again;
        size_t n2;
        if (aliases_parse_targets(norm.data, norm.len, &again, &n2, &f->err) != 0)
            fail_msg("normalized '%s': %s", norm.data, f->err.data);
        assert_int_equal(n2, n);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(again[k].type, list[k].type);
            assert_string_equal(again[k].text, list[k].text);
            assert_int_equal(again[k].no_expand, list[k].no_expand);
        }
        aliases_free_targets(again, n2);
        aliases_free_targets(list, n);
        strbuf_free(&norm);
    }
}

static void test_targets_normalized_text(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {" alice ,bob@EXAMPLE.org", "alice, bob@example.org"},
        {"\"|/bin/prog a, b\"", "\"|/bin/prog a, b\""},
        {"\"|/bin/prog\"", "|/bin/prog"},
        {"\"/a b\"", "\"/a b\""},
        {":Include:/x", ":include:/x"},
        {"\\Bob", "\\Bob"},
        {"\"/C=US/\"@gw.example", "\"/C=US/\"@gw.example"},
        {"\"|say \\\"x\\\"\"", "\"|say \\\"x\\\"\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct alias_target *list;
        size_t n;
        assert_int_equal(aliases_parse_targets(cases[i].in, strlen(cases[i].in), &list, &n, NULL),
                         0);
        strbuf out;
        strbuf_init(&out);
        aliases_format_targets(&out, list, n);
        assert_string_equal(out.data, cases[i].out);
        strbuf_free(&out);
        aliases_free_targets(list, n);
    }
}

static const struct {
    const char *value;
    size_t len; /* 0: strlen */
    const char *error;
} bad[] = {
    {"", 0, "no targets"},
    {"   \t ", 0, "no targets"},
    {"a,,b", 0, "empty target (two commas in a row"},
    {",a", 0, "empty target (two commas in a row, or a comma first)"},
    {"a,", 0, "empty target after the last comma"},
    {"a, ", 0, "empty target after the last comma"},
    {"\"|/bin/prog, x", 0, "unterminated quote in '\"|/bin/prog, x'"},
    {"\"abc\\", 0, "unterminated quote"},
    {"\"/x\"y", 0, "text after a closing quote"},
    {"\"a\"\"b\"", 0, "text after a closing quote"},
    {"file/x", 0, "relative file path 'file/x'"},
    {"./mbox", 0, "relative file path"},
    {"~/mbox", 0, "relative file path"},
    {"\"mail/box\"", 0, "relative file path"},
    {"user@example.org/x", 0, "relative file path"},
    {":include:relative", 0, "include file 'relative' is not an absolute path"},
    {":include:", 0, "include file '' is not an absolute path"},
    {"|", 0, "empty command"},
    {"\"|  \"", 0, "empty command"},
    {"a b", 0, "target 'a b' contains whitespace"},
    {"|/bin/prog arg", 0, "contains whitespace"},
    {"bob@@example.org", 0, "invalid address 'bob@@example.org'"},
    {"bob@", 0, "invalid address"},
    {"bob@-x.org", 0, "invalid address"},
    {"<bob@example.org>", 0, "invalid address"},
    {"bob\0|evil", 9, "NUL byte in the target list (at byte 4)"},
    {"bob\x01", 0, "control character 0x01"},
    {"bob\n|evil", 0, "control character 0x0a"},
    {"bob\x7f", 0, "control character 0x7f"},
    {"j\xfcrgen", 0, "invalid UTF-8"},
    {"\"|x\xc0\xaf\"", 0, "invalid UTF-8"},
};

static void test_targets_bad(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].value);
        struct alias_target *list = (struct alias_target *)1;
        size_t n = 99;
        strbuf_reset(&f->err);
        if (aliases_parse_targets(bad[i].value, len, &list, &n, &f->err) != -1)
            fail_msg("case %zu accepted", i);
        assert_null(list);
        assert_int_equal(n, 0);
        if (strstr(f->err.data, bad[i].error) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, f->err.data, bad[i].error);
        /* Messages are one line of safe text. */
        for (size_t k = 0; k < f->err.len; k++)
            assert_true((unsigned char)f->err.data[k] >= 0x20);
    }
    /* A NULL err is allowed. */
    struct alias_target *list;
    size_t n;
    assert_int_equal(aliases_parse_targets("a,,b", 4, &list, &n, NULL), -1);
}

/* Random values over the characters that matter to the syntax: every one
 * is either refused with a message or parsed into targets whose normalized
 * form parses to the same targets. Run under ASan this also proves that no
 * input reads outside the value. */
static void test_targets_random(void **state)
{
    struct fx *f = *state;
    static const char alphabet[] = "ab@.\"\\,|/ :\t-+include~\xc3\xbc\x01";
    srand(12345);
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char value[24];
        size_t len = (size_t)(rand() % (int)sizeof(value));
        for (size_t i = 0; i < len; i++)
            value[i] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
        /* Exactly len bytes: a copy without a terminator shows overreads. */
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, value, len);
        struct alias_target *list;
        size_t n;
        strbuf_reset(&f->err);
        if (aliases_parse_targets(copy, len, &list, &n, &f->err) != 0) {
            assert_true(f->err.len > 0);
            free(copy);
            continue;
        }
        accepted++;
        strbuf norm;
        strbuf_init(&norm);
        aliases_format_targets(&norm, list, n);
        struct alias_target *again;
        size_t n2;
        if (aliases_parse_targets(norm.data, norm.len, &again, &n2, &f->err) != 0)
            fail_msg("normalized '%s' refused: %s", norm.data, f->err.data);
        assert_int_equal(n2, n);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(again[k].type, list[k].type);
            assert_string_equal(again[k].text, list[k].text);
            assert_int_equal(again[k].no_expand, list[k].no_expand);
        }
        aliases_free_targets(again, n2);
        aliases_free_targets(list, n);
        strbuf_free(&norm);
        free(copy);
    }
    assert_true(accepted > 100);
}

/* ---- files ---- */

static const char FULL_FILE[] =
    "# /etc/aliases for a test\n"
    "\n"
    "postmaster: root\n"
    "MAILER-DAEMON: postmaster\n"
    "Root:\talice, bob@Example.ORG\n"
    "staff: alice,\n"
    "   # a comment inside a continued entry\n"
    "\n"
    "       bob,\n"
    "\tcarol\n"
    "ticket: \"|/usr/bin/ticket --queue mail, urgent\"\n"
    "archive: /var/spool/archive/mail\n"
    "team: :include:/etc/petrel/team.list\n"
    "crlf: dave\r\n"
    "direct: \\eve, eve@example.org\n"
    "\"quoted name\": frank\n"
    "spaced   :   gina   \n"
    "utf8: j\xc3\xbcrgen@example.org\n";

static void test_build_full_file(void **state)
{
    struct fx *f = *state;
    if (build_s(f, FULL_FILE) != 0)
        fail_msg("%s", f->err.data);
    assert_int_equal(f->err.len, 0);
    expect_alias(f, "postmaster", "root");
    expect_alias(f, "mailer-daemon", "postmaster");
    expect_alias(f, "MAILER-DAEMON", "postmaster");
    expect_alias(f, "root", "alice, bob@example.org");
    expect_alias(f, "staff", "alice, bob, carol");
    expect_alias(f, "ticket", "\"|/usr/bin/ticket --queue mail, urgent\"");
    expect_alias(f, "archive", "/var/spool/archive/mail");
    expect_alias(f, "team", ":include:/etc/petrel/team.list");
    expect_alias(f, "crlf", "dave");
    expect_alias(f, "direct", "\\eve, eve@example.org");
    expect_alias(f, "quoted name", "frank");
    expect_alias(f, "spaced", "gina");
    expect_alias(f, "utf8", "j\xc3\xbcrgen@example.org");
    expect_alias(f, "nobody-here", NULL);
    expect_alias(f, "#", NULL);
    assert_false(log_has(f, "postmaster"));

    /* What local-delivery will do with a value. */
    struct map *m;
    assert_int_equal(map_open(f->spec, MAP_ALIASES, &m, &f->err), 0);
    assert_int_equal(map_lookup(m, "ticket", 6, &f->val, &f->err), MAP_FOUND);
    struct alias_target *list;
    size_t n;
    assert_int_equal(aliases_parse_targets(f->val.data, f->val.len, &list, &n, &f->err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].type, ALIAS_TARGET_COMMAND);
    assert_string_equal(list[0].text, "/usr/bin/ticket --queue mail, urgent");
    aliases_free_targets(list, n);
    map_close(&m);

    struct stat st;
    assert_int_equal(stat(f->db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
}

/* Expects text to fail with exactly nerrors lines, containing fragments,
 * and nothing written. */
static void expect_errors(struct fx *f, const char *text, size_t n, int nerrors,
                          const char *const *fragments)
{
    unlink(f->db);
    int got = build(f, text, n);
    if (got != nerrors)
        fail_msg("%d errors, want %d: %s", got, nerrors, f->err.data);
    for (const char *const *p = fragments; *p != NULL; p++) {
        if (strstr(f->err.data, *p) == NULL)
            fail_msg("missing '%s' in: %s", *p, f->err.data);
    }
    assert_int_equal(access(f->db, F_OK), -1);
}

static void test_duplicates(void **state)
{
    struct fx *f = *state;
    static const char text[] = "postmaster: root\n"
                               "root: alice\n"
                               "other: x\n"
                               "ROOT: bob\n"
                               "Root: carol\n";
    const char *frags[] = {"/aliases:4: alias 'root': defined again (first defined at line 2)",
                           "/aliases:5: alias 'root': defined again (first defined at line 2)",
                           NULL};
    expect_errors(f, text, sizeof(text) - 1, 2, frags);
}

static void test_syntax_errors(void **state)
{
    struct fx *f = *state;
    static const char text[] = "postmaster: root\n"         /* 1 */
                               "no colon here\n"            /* 2 */
                               ": nobody\n"                 /* 3 */
                               "bob@example.org: alice\n"   /* 4 */
                               "two words: alice\n"         /* 5 */
                               "empty:\n"                   /* 6 */
                               "bad: alice,, bob\n"         /* 7 */
                               "cmd: |/bin/prog with args\n" /* 8 */
                               "rel: mail/box\n"            /* 9 */
                               "inc: :include:list\n"       /* 10 */
                               "quote: \"|/bin/x\n"         /* 11 */
                               "  starts: indented\n"       /* continues 11: still one error */
                               "good: alice\n";             /* 13 */
    const char *frags[] = {
        "/aliases:2: missing ':' after the alias name",
        "/aliases:3: empty alias name before ':'",
        "/aliases:4: alias 'bob@example.org': an alias name is a local user name",
        "/aliases:5: alias 'two words': invalid alias name",
        "/aliases:6: alias 'empty': no targets",
        "/aliases:7: alias 'bad': empty target",
        "/aliases:8: alias 'cmd': target '|/bin/prog with args' contains whitespace",
        "/aliases:9: alias 'rel': relative file path 'mail/box'",
        "/aliases:10: alias 'inc': include file 'list' is not an absolute path",
        "/aliases:11: alias 'quote': unterminated quote",
        NULL};
    expect_errors(f, text, sizeof(text) - 1, 10, frags);
}

static void test_byte_errors(void **state)
{
    struct fx *f = *state;
    static const char text[] = "postmaster: root\n"
                               "nul: bob\0evil\n"
                               "ctl: bob\x1b[2J\n"
                               "latin1: j\xfcrgen\n"
                               "ok: bob\n";
    const char *frags[] = {"/aliases:2: NUL byte", "/aliases:3: control character 0x1b",
                           "/aliases:4: invalid UTF-8", NULL};
    expect_errors(f, text, sizeof(text) - 1, 3, frags);
}

static void test_overlong_line(void **state)
{
    struct fx *f = *state;
    strbuf text;
    strbuf_init(&text);
    strbuf_appends(&text, "postmaster: root\nbig: ");
    while (text.len < MAP_MAX_LINE + 100)
        strbuf_appends(&text, "someone, ");
    strbuf_appends(&text, "last\nok: bob\n");
    const char *frags[] = {"/aliases:2: line longer than 65536 bytes", NULL};
    expect_errors(f, text.data, text.len, 1, frags);

    /* Long, but under the limit through continuation lines: fine. */
    strbuf_reset(&text);
    strbuf_appends(&text, "postmaster: root\nlist: a0");
    for (int i = 1; i < 3000; i++)
        strbuf_printf(&text, ",\n  a%d", i);
    strbuf_appends(&text, "\n");
    assert_int_equal(build(f, text.data, text.len), 0);
    struct map *m;
    assert_int_equal(map_open(f->spec, MAP_ALIASES, &m, &f->err), 0);
    assert_int_equal(map_lookup(m, "list", 4, &f->val, &f->err), MAP_FOUND);
    struct alias_target *list;
    size_t n;
    assert_int_equal(aliases_parse_targets(f->val.data, f->val.len, &list, &n, &f->err), 0);
    assert_int_equal(n, 3000);
    assert_string_equal(list[2999].text, "a2999");
    aliases_free_targets(list, n);
    map_close(&m);
    strbuf_free(&text);
}

static void test_errors_keep_old_table(void **state)
{
    struct fx *f = *state;
    assert_int_equal(build_s(f, "postmaster: root\nroot: alice\n"), 0);
    assert_int_equal(build_s(f, "postmaster: root\nroot: bob\nbroken\n"), 1);
    expect_alias(f, "root", "alice");
}

static void test_postmaster_warning(void **state)
{
    struct fx *f = *state;
    if (getpwnam("postmaster") != NULL)
        skip(); /* a real postmaster account needs no alias */
    assert_int_equal(build_s(f, "root: alice\n"), 0); /* a warning, not an error */
    assert_true(log_has(f, "no alias for postmaster"));
    assert_true(log_has(f, "RFC 5321 section 4.5.1"));
    expect_alias(f, "root", "alice");
}

static void test_check_only(void **state)
{
    struct fx *f = *state;
    write_file(f->src, "postmaster: root\n", 17);
    assert_int_equal(aliases_build(f->src, NULL, &f->err), 0);
    assert_int_equal(access(f->db, F_OK), -1);
    write_file(f->src, "postmaster root\n", 16);
    assert_int_equal(aliases_build(f->src, NULL, &f->err), 1);
    assert_int_equal(access(f->db, F_OK), -1);
}

static void test_texthash_spec_refused(void **state)
{
    struct fx *f = *state;
    write_file(f->src, "postmaster: root\n", 17);
    char spec[200];
    snprintf(spec, sizeof(spec), "texthash:%s", f->src);
    assert_int_equal(aliases_build(f->src, spec, &f->err), 1);
    assert_non_null(strstr(f->err.data, "no compile step"));
    strbuf_reset(&f->err);
    assert_int_equal(aliases_build(f->src, "bogus:/x", &f->err), 1);
    assert_non_null(strstr(f->err.data, "unsupported table type 'bogus'"));
}

static void test_missing_source(void **state)
{
    struct fx *f = *state;
    assert_int_equal(aliases_build("/nonexistent-petrel/aliases", f->spec, &f->err), 1);
    assert_non_null(strstr(f->err.data, "/nonexistent-petrel/aliases: cannot open"));
}

static void test_private_source_mode(void **state)
{
    struct fx *f = *state;
    write_file(f->src, "postmaster: root\n", 17);
    chmod(f->src, 0640);
    assert_int_equal(aliases_build(f->src, f->spec, &f->err), 0);
    struct stat st;
    assert_int_equal(stat(f->db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
}

static void test_stale_says_newaliases(void **state)
{
    struct fx *f = *state;
    assert_int_equal(build_s(f, "postmaster: root\n"), 0);
    struct timespec ts[2] = {{time(NULL) + 100, 0}, {time(NULL) + 100, 0}};
    assert_int_equal(utimensat(AT_FDCWD, f->src, ts, 0), 0);
    expect_alias(f, "postmaster", "root");
    assert_true(log_has(f, "is older than source file"));
    assert_true(log_has(f, "run newaliases"));
}

static void test_ten_thousand_entries(void **state)
{
    struct fx *f = *state;
    strbuf text;
    strbuf_init(&text);
    strbuf_appends(&text, "postmaster: root\n");
    for (int i = 0; i < 10000; i++)
        strbuf_printf(&text, "User%d: user%d@example.org, \"|/usr/bin/log %d\"\n", i, i, i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(build(f, text.data, text.len), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 30.0);
    struct map *m;
    assert_int_equal(map_open(f->spec, MAP_ALIASES, &m, &f->err), 0);
    for (int i = 0; i < 10000; i += 811) {
        char key[32], want[96];
        snprintf(key, sizeof(key), "USER%d", i);
        snprintf(want, sizeof(want), "user%d@example.org, \"|/usr/bin/log %d\"", i, i);
        assert_int_equal(map_lookup(m, key, strlen(key), &f->val, &f->err), MAP_FOUND);
        assert_string_equal(f->val.data, want);
    }
    assert_int_equal(map_lookup(m, "user10000", 9, &f->val, &f->err), MAP_NOTFOUND);
    map_close(&m);
    strbuf_free(&text);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_targets_good),
        T(test_targets_normalized_text),
        T(test_targets_bad),
        T(test_targets_random),
        T(test_build_full_file),
        T(test_duplicates),
        T(test_syntax_errors),
        T(test_byte_errors),
        T(test_overlong_line),
        T(test_errors_keep_old_table),
        T(test_postmaster_warning),
        T(test_check_only),
        T(test_texthash_spec_refused),
        T(test_missing_source),
        T(test_private_source_mode),
        T(test_stale_says_newaliases),
        T(test_ten_thousand_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
