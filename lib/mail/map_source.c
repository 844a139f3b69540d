/*
 * map_source.c - the line reader shared by every table source and the
 * postmap "key value" splitter; see map_source.h.
 *
 * The file is read in chunks and split into physical lines held in a strbuf
 * that stops growing at MAP_MAX_LINE, so a file without newlines cannot make
 * the reader allocate more than one line's worth.
 */
#include "mail/map_source.h"
#include "mail/map.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- entries ---- */

void map_entries_init(struct map_entries *e)
{
    e->v = NULL;
    e->n = 0;
    e->cap = 0;
}

void map_entries_free(struct map_entries *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].key);
        free(e->v[i].value);
    }
    free(e->v);
    map_entries_init(e);
}

void map_entries_add(struct map_entries *e, const char *key, size_t key_len, const char *value,
                     size_t value_len, int line)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = xreallocarray(e->v, e->cap, sizeof(e->v[0]));
    }
    struct map_entry *me = &e->v[e->n++];
    me->key = xmemdup(key, key_len);
    for (size_t i = 0; i < key_len; i++) {
        if (me->key[i] >= 'A' && me->key[i] <= 'Z')
            me->key[i] = (char)(me->key[i] - 'A' + 'a');
    }
    me->key_len = key_len;
    me->value = xmemdup(value, value_len);
    me->value_len = value_len;
    me->line = line;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct map_entry *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

void map_entries_sort(struct map_entries *e)
{
    if (e->n > 1)
        qsort(e->v, e->n, sizeof(e->v[0]), entry_cmp);
}

static bool same_key(const struct map_entry *a, const struct map_entry *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

void map_entries_dedupe(struct map_entries *e, const char *source_name)
{
    map_entries_sort(e);
    size_t out = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (out > 0 && same_key(&e->v[out - 1], &e->v[i])) {
            strbuf k;
            strbuf_init(&k);
            map_source_quote_key(&k, e->v[i].key, e->v[i].key_len);
            log_warning("%s:%d: duplicate key '%s' ignored (line %d gives it first)", source_name,
                        e->v[i].line, k.data, e->v[out - 1].line);
            strbuf_free(&k);
            free(e->v[i].key);
            free(e->v[i].value);
            continue;
        }
        e->v[out++] = e->v[i];
    }
    e->n = out;
}

void map_source_quote_key(strbuf *out, const char *key, size_t n)
{
    enum { SHOWN = 100 };
    log_sanitize(out, key, n > SHOWN ? SHOWN : n);
    if (n > SHOWN)
        strbuf_appends(out, "...");
}

/* ---- the line reader ---- */

struct reader {
    const char *path;
    map_line_fn *fn;
    void *ctx;
    strbuf *err;
    int errors;
    int lineno;        /* physical line being read */
    strbuf logical;    /* the logical line being assembled */
    int logical_line;  /* its first physical line; 0 = none yet */
    bool logical_bad;  /* an error was reported for it: drop it */
};

static void reader_error(struct reader *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reader_error(struct reader *r, int line, const char *fmt, ...)
{
    r->errors++;
    if (r->err == NULL)
        return;
    va_list ap;
    strbuf_printf(r->err, "%s:%d: ", r->path, line);
    va_start(ap, fmt);
    strbuf_vprintf(r->err, fmt, ap);
    va_end(ap);
    strbuf_appendc(r->err, '\n');
}

static void flush_logical(struct reader *r)
{
    if (r->logical_line != 0 && !r->logical_bad)
        r->errors += r->fn(r->logical.data, r->logical.len, r->logical_line, r->ctx, r->err);
    strbuf_reset(&r->logical);
    r->logical_line = 0;
    r->logical_bad = false;
}

/* Checks the bytes of one physical line; reports the first problem. */
static bool line_bytes_ok(struct reader *r, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0') {
            reader_error(r, r->lineno, "NUL byte in line (column %zu)", i + 1);
            return false;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            reader_error(r, r->lineno, "control character 0x%02x in line (column %zu)", c, i + 1);
            return false;
        }
    }
    size_t bad = utf8_invalid_at(s, n);
    if (bad != n) {
        reader_error(r, r->lineno, "invalid UTF-8 (byte 0x%02x at column %zu)",
                     (unsigned char)s[bad], bad + 1);
        return false;
    }
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Handles one physical line s[0..n) (newline removed); overlong says that
 * more than MAP_MAX_LINE bytes were on it and s holds only the first
 * MAP_MAX_LINE. */
static void physical_line(struct reader *r, const char *s, size_t n, bool overlong)
{
    if (!overlong && n > 0 && s[n - 1] == '\r')
        n--; /* CRLF */
    size_t first = 0;
    while (first < n && is_blank(s[first]))
        first++;
    if (first == n)
        return; /* blank line (an overlong one too: nothing but blanks) */
    if (first < n && s[first] == '#')
        return; /* comment: ignored whatever it holds */
    bool continuation = first > 0;
    if (!continuation) {
        flush_logical(r);
        r->logical_line = r->lineno;
    } else if (r->logical_line == 0) {
        reader_error(r, r->lineno,
                     "continuation line (starting with whitespace) without a line to continue");
        return;
    }
    if (r->logical_bad)
        return; /* already reported */
    if (overlong) {
        reader_error(r, r->lineno, "line longer than %d bytes", MAP_MAX_LINE);
        r->logical_bad = true;
        return;
    }
    if (!line_bytes_ok(r, s, n)) {
        r->logical_bad = true;
        return;
    }
    while (n > first && is_blank(s[n - 1]))
        n--;
    size_t add = n - first + (continuation ? 1 : 0);
    if (r->logical.len + add > MAP_MAX_LINE) {
        reader_error(r, r->logical_line, "line longer than %d bytes (with its continuation lines)",
                     MAP_MAX_LINE);
        r->logical_bad = true;
        return;
    }
    if (continuation)
        strbuf_appendc(&r->logical, ' ');
    strbuf_append(&r->logical, s + first, n - first);
}

int map_source_read(const char *path, size_t max_file, map_line_fn *fn, void *ctx, strbuf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (err != NULL)
            strbuf_printf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (err != NULL)
            strbuf_printf(err, "%s: not a regular file\n", path);
        close(fd);
        return 1;
    }
    if (max_file != 0 && (unsigned long long)st.st_size > max_file) {
        if (err != NULL)
            strbuf_printf(err, "%s: larger than %zu bytes\n", path, max_file);
        close(fd);
        return 1;
    }

    struct reader r = {.path = path, .fn = fn, .ctx = ctx, .err = err, .lineno = 1};
    strbuf_init(&r.logical);
    strbuf line;
    strbuf_init(&line);
    bool overlong = false;
    size_t total = 0;
    char *buf = xmalloc(65536);
    for (;;) {
        ssize_t got = read(fd, buf, 65536);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r.errors++;
            if (err != NULL)
                strbuf_printf(err, "%s: read error: %s\n", path, strerror(errno));
            break;
        }
        total += (size_t)got;
        if (max_file != 0 && total > max_file) {
            r.errors++;
            if (err != NULL)
                strbuf_printf(err, "%s: larger than %zu bytes\n", path, max_file);
            break;
        }
        if (got == 0) {
            if (line.len > 0 || overlong)
                physical_line(&r, line.data, line.len, overlong);
            flush_logical(&r);
            break;
        }
        const char *p = buf, *end = buf + got;
        while (p < end && r.errors < MAP_SOURCE_MAX_ERRORS) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl != NULL ? nl : end;
            size_t take = (size_t)(stop - p);
            if (!overlong) {
                /* Past the limit only the start is kept, to classify the line. */
                if (line.len + take > MAP_MAX_LINE) {
                    overlong = true;
                    take = MAP_MAX_LINE - line.len;
                }
                strbuf_append(&line, p, take);
            }
            if (nl == NULL)
                break;
            physical_line(&r, line.data, line.len, overlong);
            strbuf_reset(&line);
            overlong = false;
            r.lineno++;
            p = nl + 1;
        }
        if (r.errors >= MAP_SOURCE_MAX_ERRORS) {
            r.errors++;
            if (err != NULL)
                strbuf_printf(err, "%s: too many errors, stopped reading at line %d\n", path,
                              r.lineno);
            break;
        }
    }
    free(buf);
    strbuf_free(&line);
    strbuf_free(&r.logical);
    close(fd);
    return r.errors;
}

/* ---- the postmap format ---- */

struct pairs_ctx {
    const char *path;
    struct map_entries *e;
};

static int pair_line(const char *text, size_t len, int line, void *vctx, strbuf *err)
{
    struct pairs_ctx *c = vctx;
    size_t k = 0;
    while (k < len && !is_blank(text[k]))
        k++;
    size_t v = k;
    while (v < len && is_blank(text[v]))
        v++;
    if (v == len) {
        if (err != NULL) {
            strbuf_printf(err, "%s:%d: missing value after key '", c->path, line);
            map_source_quote_key(err, text, k);
            strbuf_appends(err, "' (expected: key whitespace value)\n");
        }
        return 1;
    }
    map_entries_add(c->e, text, k, text + v, len - v, line);
    return 0;
}

int map_source_read_pairs(const char *path, size_t max_file, struct map_entries *e, strbuf *err)
{
    struct pairs_ctx c = {.path = path, .e = e};
    return map_source_read(path, max_file, pair_line, &c, err);
}
