/*
 * test_strbuf.c - unit tests for the self-growing byte string (lib/util/strbuf).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

static void test_append_and_terminator(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.data, "");
    strbuf_appends(&sb, "hello");
    strbuf_appendc(&sb, ' ');
    strbuf_append(&sb, "world!!", 5);
    assert_int_equal(sb.len, 11);
    assert_string_equal(sb.data, "hello world");
    assert_true(strbuf_eq(&sb, "hello world"));
    assert_false(strbuf_eq(&sb, "hello worl"));
    strbuf_free(&sb);
}

static void test_binary_with_nul(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_append(&sb, "a\0b\r\n", 5);
    assert_int_equal(sb.len, 5);
    assert_true(strbuf_has_nul(&sb));
    assert_memory_equal(sb.data, "a\0b\r\n", 5);
    assert_int_equal(sb.data[5], '\0');
    assert_false(strbuf_eq(&sb, "a"));
    strbuf_free(&sb);
}

static void test_growth_large(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 2000; i++)
        strbuf_append(&sb, chunk, sizeof(chunk));
    assert_int_equal(sb.len, 2000000);
    assert_true(sb.cap > sb.len);
    assert_int_equal(sb.data[sb.len], '\0');
    assert_int_equal(sb.data[1999999], 'x');
    strbuf_free(&sb);
}

static void test_printf(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "%d-%s", 42, "x");
    /* Longer than the initial allocation, to exercise the second pass. */
    char big[300];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    strbuf_printf(&sb, "[%s]", big);
    assert_int_equal(sb.len, 4 + 2 + 299);
    assert_memory_equal(sb.data, "42-x[yyy", 8);
    assert_int_equal(sb.data[sb.len - 1], ']');
    strbuf_free(&sb);
}

static void test_consume_truncate_trim(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_sets(&sb, "MAIL FROM:<a@b>  \r\n");
    strbuf_rtrim(&sb);
    assert_string_equal(sb.data, "MAIL FROM:<a@b>");
    strbuf_consume(&sb, 5);
    assert_string_equal(sb.data, "FROM:<a@b>");
    strbuf_truncate(&sb, 4);
    assert_string_equal(sb.data, "FROM");
    strbuf_truncate(&sb, 100); /* longer than content: no change */
    assert_string_equal(sb.data, "FROM");
    strbuf_consume(&sb, 100); /* more than content: empties */
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.data, "");
    strbuf_free(&sb);
}

static void test_detach_and_reuse(void **state)
{
    (void)state;
    strbuf *sb = strbuf_new();
    strbuf_sets(sb, "owned");
    size_t n;
    char *p = strbuf_detach(sb, &n);
    assert_int_equal(n, 5);
    assert_string_equal(p, "owned");
    free(p);
    assert_null(sb->data);
    strbuf_init(sb);
    strbuf_appends(sb, "again");
    assert_string_equal(sb->data, "again");
    strbuf_free_ptr(&sb);
    assert_null(sb);
    strbuf_free_ptr(&sb); /* NULL is fine */
}

static void test_self_append(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_sets(&sb, "abc");
    /* Appending a string to itself must survive the reallocation. */
    for (int i = 0; i < 10; i++)
        strbuf_append_sb(&sb, &sb);
    assert_int_equal(sb.len, 3 * 1024);
    assert_memory_equal(sb.data + 3 * 1023, "abc", 3);
    strbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_terminator),
        cmocka_unit_test(test_binary_with_nul),
        cmocka_unit_test(test_growth_large),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_consume_truncate_trim),
        cmocka_unit_test(test_detach_and_reuse),
        cmocka_unit_test(test_self_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
