/*
 * utf8.c - strict UTF-8 decoding (RFC 3629); see utf8.h for the contract.
 *
 * The check is table-free: the lead byte fixes the sequence length, and the
 * range allowed for the second byte is narrowed for the three lead bytes
 * where overlong forms, surrogates or code points past U+10FFFF would
 * otherwise slip through (E0, ED, F0, F4). C0, C1 and F5..FF never start a
 * sequence. This is the "Table 3-7" view of the Unicode standard, which makes
 * every rejection a simple range test.
 */
#include "util/utf8.h"

size_t utf8_decode(const void *sv, size_t n, uint32_t *cp_r)
{
    const unsigned char *s = sv;
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        if (cp_r)
            *cp_r = c;
        return 1;
    }

    size_t len;
    uint32_t cp;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* below: overlong forms of U+0000..U+07FF */
        else if (c == 0xED)
            hi = 0x9F; /* above: surrogates U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* below: overlong forms of U+0000..U+FFFF */
        else if (c == 0xF4)
            hi = 0x8F; /* above: code points past U+10FFFF */
    } else {
        /* 80..BF (a continuation byte without a lead), C0/C1 (always
         * overlong), F5..FF (past U+10FFFF or not UTF-8 at all). */
        return 0;
    }

    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    cp = (cp << 6) | (s[1] & 0x3F);
    for (size_t k = 2; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp_r)
        *cp_r = cp;
    return len;
}

size_t utf8_invalid_at(const void *sv, size_t n)
{
    const unsigned char *s = sv;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_decode(s + i, n - i, NULL);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

bool utf8_valid(const void *s, size_t n)
{
    return utf8_invalid_at(s, n) == n;
}

bool utf8_is_c1(uint32_t cp)
{
    return cp >= 0x80 && cp <= 0x9F;
}
