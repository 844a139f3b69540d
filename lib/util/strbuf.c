/*
 * strbuf.c - the self-growing byte string; see strbuf.h for the contract.
 */
#include "util/strbuf.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_INITIAL 64

void strbuf_init(strbuf *sb)
{
    sb->cap = STRBUF_INITIAL;
    sb->data = xmalloc(sb->cap);
    sb->len = 0;
    sb->data[0] = '\0';
}

strbuf *strbuf_new(void)
{
    strbuf *sb = xmalloc(sizeof(*sb));
    strbuf_init(sb);
    return sb;
}

void strbuf_free(strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

void strbuf_free_ptr(strbuf **sbp)
{
    if (*sbp == NULL)
        return;
    strbuf_free(*sbp);
    free(*sbp);
    *sbp = NULL;
}

void strbuf_reset(strbuf *sb)
{
    sb->len = 0;
    sb->data[0] = '\0';
}

void strbuf_reserve(strbuf *sb, size_t extra)
{
    if (extra > SIZE_MAX - 1 - sb->len)
        log_fatal("strbuf: size overflow (%zu + %zu)", sb->len, extra);
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : STRBUF_INITIAL;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

void strbuf_append(strbuf *sb, const void *p, size_t n)
{
    if (n == 0)
        return;
    /* p may point into our own storage, which reserve can move. */
    const char *src = p;
    uintptr_t a = (uintptr_t)src, base = (uintptr_t)sb->data;
    if (a >= base && a < base + sb->cap) {
        size_t off = (size_t)(a - base);
        strbuf_reserve(sb, n);
        src = sb->data + off;
    } else {
        strbuf_reserve(sb, n);
    }
    memmove(sb->data + sb->len, src, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void strbuf_appends(strbuf *sb, const char *s)
{
    strbuf_append(sb, s, strlen(s));
}

void strbuf_appendc(strbuf *sb, char c)
{
    strbuf_reserve(sb, 1);
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void strbuf_append_sb(strbuf *sb, const strbuf *other)
{
    strbuf_append(sb, other->data, other->len);
}

void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = sb->cap - sb->len;
    int n = vsnprintf(sb->data + sb->len, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        log_panic("strbuf_vprintf: bad format \"%s\"", fmt);
    if ((size_t)n >= room) {
        strbuf_reserve(sb, (size_t)n);
        n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
        if (n < 0)
            log_panic("strbuf_vprintf: bad format \"%s\"", fmt);
    }
    sb->len += (size_t)n;
}

void strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_set(strbuf *sb, const void *p, size_t n)
{
    strbuf_reset(sb);
    strbuf_append(sb, p, n);
}

void strbuf_sets(strbuf *sb, const char *s)
{
    strbuf_set(sb, s, strlen(s));
}

void strbuf_truncate(strbuf *sb, size_t n)
{
    if (n < sb->len) {
        sb->len = n;
        sb->data[n] = '\0';
    }
}

void strbuf_consume(strbuf *sb, size_t n)
{
    if (n >= sb->len) {
        strbuf_reset(sb);
        return;
    }
    memmove(sb->data, sb->data + n, sb->len - n);
    sb->len -= n;
    sb->data[sb->len] = '\0';
}

void strbuf_rtrim(strbuf *sb)
{
    while (sb->len > 0) {
        char c = sb->data[sb->len - 1];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\v' && c != '\f')
            break;
        sb->len--;
    }
    sb->data[sb->len] = '\0';
}

char *strbuf_detach(strbuf *sb, size_t *len_r)
{
    char *d = sb->data;
    if (len_r)
        *len_r = sb->len;
    sb->data = NULL;
    sb->len = sb->cap = 0;
    return d;
}

bool strbuf_has_nul(const strbuf *sb)
{
    return memchr(sb->data, '\0', sb->len) != NULL;
}

bool strbuf_eq(const strbuf *sb, const char *s)
{
    size_t n = strlen(s);
    return n == sb->len && memcmp(sb->data, s, n) == 0;
}
