/*
 * base64.c - strict RFC 4648 base64; see base64.h for what is refused and why.
 */
#include "util/base64.h"

#include <stdint.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(strbuf *out, const void *p, size_t n)
{
    const unsigned char *s = p;
    strbuf_reserve(out, (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        char q[4] = { alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                      alphabet[v & 63] };
        strbuf_append(out, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        char q[4] = { alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '=' };
        strbuf_append(out, q, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        char q[4] = { alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                      '=' };
        strbuf_append(out, q, 4);
    }
}

/* The 6-bit value of c, or -1. */
static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t base64_decoded_max(size_t len)
{
    return len / 4 * 3;
}

/* Errors are written where err is not NULL; ERR is a statement. */
#define ERR(...)                                                                                   \
    do {                                                                                           \
        if (err != NULL)                                                                           \
            strbuf_printf(err, __VA_ARGS__);                                                       \
    } while (0)

int base64_decode(strbuf *out, const char *text, size_t len, strbuf *err)
{
    const unsigned char *t = (const unsigned char *)text;
    if (len % 4 != 0)
    {
        ERR("base64 length %zu is not a multiple of 4", len);
        return -1;
    }
    /* Padding: at most two '=' and only at the end. */
    size_t pad = 0;
    if (len >= 1 && t[len - 1] == '=')
        pad++;
    if (len >= 2 && t[len - 2] == '=')
        pad++;
    size_t data_len = len - pad;
    for (size_t i = 0; i < data_len; i++) {
        if (value_of(t[i]) < 0) {
            if (t[i] == '=')
                ERR("base64 padding '=' before the end, at offset %zu", i);
            else
                ERR("invalid base64 character 0x%02x at offset %zu", t[i], i);
            return -1;
        }
    }
    size_t start = out->len;
    strbuf_reserve(out, base64_decoded_max(len));
    for (size_t i = 0; i < len; i += 4) {
        int v0 = value_of(t[i]), v1 = value_of(t[i + 1]);
        int v2 = i + 2 < data_len ? value_of(t[i + 2]) : 0;
        int v3 = i + 3 < data_len ? value_of(t[i + 3]) : 0;
        uint32_t v = (uint32_t)v0 << 18 | (uint32_t)v1 << 12 | (uint32_t)v2 << 6 | (uint32_t)v3;
        char b[3] = { (char)(v >> 16), (char)((v >> 8) & 0xff), (char)(v & 0xff) };
        size_t keep = 3;
        if (i + 4 == len)
            keep = 3 - pad;
        strbuf_append(out, b, keep);
    }
    /* Canonical form: the bits a padded final group does not use are 0. */
    if (pad > 0) {
        int last = value_of(t[data_len - 1]);
        if ((pad == 1 && (last & 0x03) != 0) || (pad == 2 && (last & 0x0f) != 0)) {
            strbuf_truncate(out, start);
            ERR("non-canonical base64: unused bits set at offset %zu", data_len - 1);
            return -1;
        }
    }
    return 0;
}
