/*
 * test_forward.c - .forward / :include: files: parsing into targets
 * (comments, blank lines, commas, CRLF, quoted commands, bad input) and the
 * reading rules (symlink, group/world-writable, wrong owner, hard link,
 * FIFO, size limit are refused).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mail/forward.h"
#include "support/testdir.h"
#include "util/strbuf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/test_forward.XXXXXX");
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
    static char p[4][256];
    static int next;
    next = (next + 1) % 4;
    snprintf(p[next], sizeof(p[next]), "%s/%s", dir, name);
    return p[next];
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    int fd = open(path_in(name), O_CREAT | O_WRONLY | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_parse_typical(void **state)
{
    (void)state;
    const char *text = "# my forward\r\n"
                       "\n"
                       "  \\bob, bob@example.org\r\n"
                       "/home/bob/mail/copy,\n"
                       "\"|/usr/bin/vacation -a bob, -x\"\n"
                       "   # indented comment\n"
                       ":include:/home/bob/more\n"
                       "alice";
    struct alias_target *t;
    size_t n;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(forward_parse(text, strlen(text), &t, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_int_equal(t[0].type, ALIAS_TARGET_ADDRESS);
    assert_string_equal(t[0].text, "bob");
    assert_true(t[0].no_expand);
    assert_int_equal(t[1].type, ALIAS_TARGET_ADDRESS);
    assert_string_equal(t[1].text, "bob@example.org");
    assert_false(t[1].no_expand);
    assert_int_equal(t[2].type, ALIAS_TARGET_FILE);
    assert_string_equal(t[2].text, "/home/bob/mail/copy");
    assert_int_equal(t[3].type, ALIAS_TARGET_COMMAND);
    assert_string_equal(t[3].text, "/usr/bin/vacation -a bob, -x");
    assert_int_equal(t[4].type, ALIAS_TARGET_INCLUDE);
    assert_string_equal(t[4].text, "/home/bob/more");
    assert_int_equal(t[5].type, ALIAS_TARGET_ADDRESS);
    assert_string_equal(t[5].text, "alice");
    aliases_free_targets(t, n);
    strbuf_free(&err);
}

static void test_parse_empty(void **state)
{
    (void)state;
    struct alias_target *t = (struct alias_target *)1;
    size_t n = 7;
    assert_int_equal(forward_parse("", 0, &t, &n, NULL), 0);
    assert_null(t);
    assert_int_equal(n, 0);
    const char *only = "# nothing\n\n   \n,\n";
    assert_int_equal(forward_parse(only, strlen(only), &t, &n, NULL), 0);
    assert_int_equal(n, 0);
}

static void expect_bad(const char *text, size_t len, const char *fragment)
{
    struct alias_target *t = (struct alias_target *)1;
    size_t n = 7;
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(forward_parse(text, len, &t, &n, &err), -1);
    assert_null(t);
    assert_int_equal(n, 0);
    if (strstr(err.data, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.data, fragment);
    strbuf_free(&err);
}

static void test_parse_bad(void **state)
{
    (void)state;
    expect_bad("bob\nalice\0x\n", 12, "line 2: NUL byte");
    expect_bad("bob\n\"|unterminated\n", 19, "line 2:");
    expect_bad("good\nrelative/path\n", 19, "line 2:");
    expect_bad("a,,b\n", 5, "line 1:");
    expect_bad("two words\n", 10, "line 1:");
    expect_bad("bob\x01\n", 5, "line 1:");
    expect_bad("\xff\xfe@x.org\n", 9, "line 1:");
    expect_bad("|\n", 2, "line 1:");
    /* Too many targets. */
    strbuf big;
    strbuf_init(&big);
    for (int i = 0; i <= FORWARD_MAX_TARGETS; i++)
        strbuf_printf(&big, "u%d\n", i);
    expect_bad(big.data, big.len, "more than 1000 targets");
    strbuf_free(&big);
}

static enum forward_read_status read_it(const char *name, uid_t owner, strbuf *out, strbuf *err)
{
    strbuf_reset(out);
    strbuf_reset(err);
    return forward_read(path_in(name), owner, out, err);
}

static void test_read_rules(void **state)
{
    (void)state;
    strbuf out, err;
    strbuf_init(&out);
    strbuf_init(&err);
    uid_t me = geteuid();

    write_file("ok", "alice\n", 0644);
    assert_int_equal(read_it("ok", me, &out, &err), FORWARD_READ_OK);
    assert_string_equal(out.data, "alice\n");

    assert_int_equal(read_it("missing", me, &out, &err), FORWARD_READ_ABSENT);
    assert_int_equal(forward_read(path_in("ok/x"), me, &out, &err), FORWARD_READ_ABSENT);

    write_file("gw", "|evil\n", 0664);
    assert_int_equal(read_it("gw", me, &out, &err), FORWARD_READ_UNSAFE);
    assert_non_null(strstr(err.data, "writable by group or others"));
    assert_int_equal(out.len, 0);

    write_file("ww", "|evil\n", 0646);
    assert_int_equal(read_it("ww", me, &out, &err), FORWARD_READ_UNSAFE);

    assert_int_equal(symlink(path_in("ok"), path_in("sym")), 0);
    assert_int_equal(read_it("sym", me, &out, &err), FORWARD_READ_UNSAFE);
    assert_non_null(strstr(err.data, "symbolic link"));

    write_file("linked", "alice\n", 0600);
    assert_int_equal(link(path_in("linked"), path_in("linked2")), 0);
    assert_int_equal(read_it("linked", me, &out, &err), FORWARD_READ_UNSAFE);
    assert_non_null(strstr(err.data, "hard links"));

    assert_int_equal(mkfifo(path_in("fifo"), 0600), 0);
    assert_int_equal(read_it("fifo", me, &out, &err), FORWARD_READ_UNSAFE);
    assert_non_null(strstr(err.data, "not a regular file"));

    strbuf big;
    strbuf_init(&big);
    for (int i = 0; i < FORWARD_MAX_SIZE / 8 + 1; i++)
        strbuf_appends(&big, "aaaaaaa\n");
    write_file("big", big.data, 0600);
    assert_int_equal(read_it("big", me, &out, &err), FORWARD_READ_UNSAFE);
    assert_non_null(strstr(err.data, "larger than"));
    strbuf_free(&big);

    /* Owned by us, but we claim another owner: refused unless we are root
     * (root-owned files are accepted for any user). */
    if (me != 0) {
        assert_int_equal(read_it("ok", me + 1, &out, &err), FORWARD_READ_UNSAFE);
        assert_non_null(strstr(err.data, "not by uid"));
    }
    strbuf_free(&out);
    strbuf_free(&err);
}

static void test_read_foreign_owner(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    strbuf out, err;
    strbuf_init(&out);
    strbuf_init(&err);
    write_file("theirs", "|evil\n", 0644);
    assert_int_equal(chown(path_in("theirs"), 1, 1), 0);
    assert_int_equal(read_it("theirs", 2, &out, &err), FORWARD_READ_UNSAFE);
    assert_non_null(strstr(err.data, "owned by uid 1, not by uid 2"));
    assert_int_equal(read_it("theirs", 1, &out, &err), FORWARD_READ_OK);
    /* Root-owned: accepted for anyone. */
    write_file("roots", "alice\n", 0644);
    assert_int_equal(read_it("roots", 2, &out, &err), FORWARD_READ_OK);
    strbuf_free(&out);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_typical),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test_setup_teardown(test_read_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_foreign_owner, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
