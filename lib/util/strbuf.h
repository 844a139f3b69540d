/*
 * strbuf.h - the length-counted, self-growing byte string.
 *
 * Everything that arrives from outside (network lines, file contents, IPC
 * values) lands in a strbuf, never in a fixed array. A strbuf may hold any
 * byte including NUL; `data` is always followed by a terminating NUL that is
 * not counted in `len`, so text without embedded NULs can be used as a C
 * string directly. Growth checks for size overflow and dies through xalloc on
 * exhaustion; callers that read from the network impose their own limits
 * (netio's maximum line length) before appending.
 */
#ifndef PETREL_STRBUF_H
#define PETREL_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *data;  /* never NULL after strbuf_init; data[len] == '\0' */
    size_t len;  /* bytes in use, not counting the terminator */
    size_t cap;  /* bytes allocated, including room for the terminator */
} strbuf;

/* A static initializer is not provided on purpose: always call strbuf_init. */
void strbuf_init(strbuf *sb);
/* strbuf_new/strbuf_free_ptr: heap-allocated variant; free_ptr NULLs *sbp. */
strbuf *strbuf_new(void);
void strbuf_free_ptr(strbuf **sbp);
/* Releases the storage; the strbuf must be init'ed again before reuse. */
void strbuf_free(strbuf *sb);

/* Empties the string, keeping the allocation. */
void strbuf_reset(strbuf *sb);
/* Makes sure that `extra` more bytes fit without another allocation. */
void strbuf_reserve(strbuf *sb, size_t extra);

void strbuf_append(strbuf *sb, const void *p, size_t n);
void strbuf_appends(strbuf *sb, const char *s);
void strbuf_appendc(strbuf *sb, char c);
void strbuf_append_sb(strbuf *sb, const strbuf *other);
void strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Replaces the contents. */
void strbuf_set(strbuf *sb, const void *p, size_t n);
void strbuf_sets(strbuf *sb, const char *s);

/* Shortens to n bytes (no-op if already shorter). */
void strbuf_truncate(strbuf *sb, size_t n);
/* Removes the first n bytes (all if n >= len), moving the rest down. */
void strbuf_consume(strbuf *sb, size_t n);
/* Removes trailing ASCII whitespace. */
void strbuf_rtrim(strbuf *sb);

/* Hands the storage (NUL-terminated) to the caller, who frees it; sb is left
 * released, as after strbuf_free. */
char *strbuf_detach(strbuf *sb, size_t *len_r);

/* True when the contents contain a NUL byte. */
bool strbuf_has_nul(const strbuf *sb);
/* Byte-exact comparison with a C string. */
bool strbuf_eq(const strbuf *sb, const char *s);

#endif
