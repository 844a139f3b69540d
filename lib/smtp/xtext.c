/*
 * xtext.c - RFC 3461 xtext decoding with validation, and encoding; see
 * xtext.h. Decoded values end up in queue records and log lines, so they are
 * held to "printable text": no C0/C1 controls, no DEL, UTF-8 only.
 */
#include "smtp/xtext.h"
#include "util/utf8.h"

#include <stdint.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int xtext_decode(const char *s, size_t n, size_t max, strbuf *out, const char **why_r)
{
    const char *dummy;
    if (why_r == NULL)
        why_r = &dummy;
    strbuf_reset(out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0
                || hexval((unsigned char)s[i + 2]) < 0) {
                *why_r = "'+' not followed by two hex digits";
                return -1;
            }
            c = (unsigned char)(hexval((unsigned char)s[i + 1]) * 16
                                + hexval((unsigned char)s[i + 2]));
            i += 2;
            if (c < 0x20 || c == 0x7f) {
                *why_r = "encoded control character";
                return -1;
            }
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            *why_r = "character not allowed in xtext";
            return -1;
        }
        strbuf_appendc(out, (char)c);
    }
    if (max > 0 && out->len > max) {
        *why_r = "value too long";
        return -1;
    }
    /* Encoded octets may form UTF-8; it must be well formed and free of C1
     * controls, like every other text taken from a client. */
    for (size_t i = 0; i < out->len;) {
        uint32_t cp;
        size_t k = utf8_decode(out->data + i, out->len - i, &cp);
        if (k == 0) {
            *why_r = "encoded bytes are not valid UTF-8";
            return -1;
        }
        if (utf8_is_c1(cp)) {
            *why_r = "encoded control character";
            return -1;
        }
        i += k;
    }
    return 0;
}

void xtext_encode(strbuf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '+' || c == '=') {
            strbuf_appendc(out, '+');
            strbuf_appendc(out, hex[c >> 4]);
            strbuf_appendc(out, hex[c & 15]);
        } else {
            strbuf_appendc(out, (char)c);
        }
    }
}
