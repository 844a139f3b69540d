/*
 * mailbox_cache.c - the per-Maildir size cache "<maildir>/petrel-sizes"
 * (format in mailbox_int.h).
 *
 * Why: a message's size as sent is in its name (",W=") when Petrel or
 * Dovecot delivered it, but W= is only right when the file ends with an LF
 * (mailbox.h counts a last line without LF as line + CRLF), and names
 * without W= need the file read. Either check costs an open per message,
 * so the result is kept here and the next session only reads the
 * directory and this file.
 *
 * Trust: the file is only read when it is a regular file owned by us;
 * one malformed line makes the whole file ignored; an entry only counts
 * when the caller's match (name plus size/mtime) holds. It is written to
 * "petrel-sizes.tmp" (O_EXCL, so two sessions never write one file) and
 * renamed over the old one, so a reader sees the old or the new file,
 * never a mix. It is not fsync'd: losing it only costs a rebuild.
 */
#include "mail/mailbox_int.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_NAME "petrel-sizes"
#define CACHE_TMP "petrel-sizes.tmp"
#define CACHE_HEADER "petrel-sizes 1\n"
#define CACHE_MAX_BYTES (256u * 1024 * 1024)
#define CACHE_TMP_STALE 300 /* seconds: a tmp file this old was left by a crash */

struct cache_ent {
    char *base;     /* NUL-terminated; points into file or owned */
    size_t n;
    bool owned;
    bool used;
    struct mailbox_cache_entry e;
};

struct mailbox_cache {
    int dirfd;
    char *path;
    strbuf file;              /* the loaded file; bases point into it */
    struct cache_ent *ents;
    size_t count, cap;
    size_t *table;            /* open addressing: entry index + 1, 0 = free */
    size_t tcap;              /* power of two */
    bool dirty;
};

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void table_insert(struct mailbox_cache *c, size_t idx)
{
    size_t mask = c->tcap - 1;
    size_t at = (size_t)hash_name(c->ents[idx].base, c->ents[idx].n) & mask;
    while (c->table[at] != 0)
        at = (at + 1) & mask;
    c->table[at] = idx + 1;
}

static void table_grow(struct mailbox_cache *c)
{
    if (c->count * 2 < c->tcap)
        return;
    free(c->table);
    c->tcap = c->tcap ? c->tcap * 2 : 1024;
    while (c->count * 2 >= c->tcap)
        c->tcap *= 2;
    c->table = xcalloc(c->tcap, sizeof(*c->table));
    for (size_t i = 0; i < c->count; i++)
        table_insert(c, i);
}

static struct cache_ent *find(struct mailbox_cache *c, const char *base, size_t n)
{
    size_t mask, at;
    if (c->tcap == 0)
        return NULL;
    mask = c->tcap - 1;
    at = (size_t)hash_name(base, n) & mask;
    while (c->table[at] != 0) {
        struct cache_ent *e = &c->ents[c->table[at] - 1];
        if (e->n == n && memcmp(e->base, base, n) == 0)
            return e;
        at = (at + 1) & mask;
    }
    return NULL;
}

static struct cache_ent *append(struct mailbox_cache *c)
{
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->ents = xreallocarray(c->ents, c->cap, sizeof(*c->ents));
    }
    struct cache_ent *e = &c->ents[c->count++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* Digits up to a single space (or '.' when dot is set); no overflow. */
static bool parse_num(char **pp, char stop, uint64_t *v)
{
    char *p = *pp;
    uint64_t x = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (*p != stop)
        return false;
    *pp = p + 1;
    *v = x;
    return true;
}

/* Parses c->file in place (bases are cut at their newline). */
static bool parse(struct mailbox_cache *c)
{
    char *p = c->file.data, *end = c->file.data + c->file.len;
    size_t hl = strlen(CACHE_HEADER);
    if (c->file.len < hl || memcmp(p, CACHE_HEADER, hl) != 0 || strbuf_has_nul(&c->file))
        return false;
    p += hl;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        uint64_t size, fsize, sec, nsec;
        if (nl == NULL)
            return false; /* torn last line */
        *nl = '\0';
        if (!parse_num(&p, ' ', &size) || !parse_num(&p, ' ', &fsize) ||
            !parse_num(&p, '.', &sec) || !parse_num(&p, ' ', &nsec) || nsec >= 1000000000 ||
            sec > INT64_MAX || p >= nl || find(c, p, (size_t)(nl - p)) != NULL)
            return false;
        struct cache_ent *e = append(c);
        e->base = p;
        e->n = (size_t)(nl - p);
        e->e.size = size;
        e->e.fsize = fsize;
        e->e.mtime_sec = (int64_t)sec;
        e->e.mtime_nsec = (long)nsec;
        table_grow(c);
        table_insert(c, c->count - 1);
        p = nl + 1;
    }
    return true;
}

static void reset(struct mailbox_cache *c)
{
    for (size_t i = 0; i < c->count; i++)
        if (c->ents[i].owned)
            free(c->ents[i].base);
    c->count = 0;
    if (c->table)
        memset(c->table, 0, c->tcap * sizeof(*c->table));
}

static void read_cache(struct mailbox_cache *c)
{
    struct stat st;
    int fd = openat(c->dirfd, CACHE_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (uint64_t)st.st_size > CACHE_MAX_BYTES) {
        close(fd);
        return;
    }
    strbuf_reserve(&c->file, (size_t)st.st_size + 1);
    for (;;) {
        strbuf_reserve(&c->file, 65536);
        ssize_t r = read(fd, c->file.data + c->file.len, c->file.cap - c->file.len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                strbuf_reset(&c->file);
            break;
        }
        c->file.len += (size_t)r;
        c->file.data[c->file.len] = '\0';
        if (c->file.len > CACHE_MAX_BYTES) {
            strbuf_reset(&c->file);
            break;
        }
    }
    close(fd);
    if (c->file.len > 0 && !parse(c)) {
        log_warning("%s/%s: ignoring a damaged size cache (it is rebuilt)", c->path,
                    CACHE_NAME);
        reset(c);
        c->dirty = true;
    }
}

struct mailbox_cache *mailbox_cache_load(int dirfd, const char *path)
{
    struct mailbox_cache *c = xcalloc(1, sizeof(*c));
    c->dirfd = dirfd;
    c->path = xstrdup(path);
    strbuf_init(&c->file);
    read_cache(c);
    return c;
}

const struct mailbox_cache_entry *mailbox_cache_get(struct mailbox_cache *c, const char *base,
                                                    size_t n)
{
    struct cache_ent *e = find(c, base, n);
    if (e == NULL)
        return NULL;
    e->used = true;
    return &e->e;
}

void mailbox_cache_put(struct mailbox_cache *c, const char *base, size_t n,
                       const struct mailbox_cache_entry *ce)
{
    struct cache_ent *e;
    if (n == 0 || memchr(base, '\n', n) != NULL || memchr(base, '\0', n) != NULL)
        return;
    c->dirty = true;
    if ((e = find(c, base, n)) != NULL) {
        e->e = *ce;
        e->used = true;
        return;
    }
    e = append(c);
    e->base = xstrndup(base, n);
    e->n = n;
    e->owned = true;
    e->used = true;
    e->e = *ce;
    table_grow(c);
    table_insert(c, c->count - 1);
}

/* Creates the tmp file; a leftover of a crash (older than the stale age)
 * is removed once. -1 when another session is writing right now. */
static int create_tmp(struct mailbox_cache *c)
{
    for (int tries = 0; tries < 2; tries++) {
        struct stat st;
        int fd = openat(c->dirfd, CACHE_TMP, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        if (fstatat(c->dirfd, CACHE_TMP, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            time(NULL) - st.st_mtime < CACHE_TMP_STALE)
            return -1;
        unlinkat(c->dirfd, CACHE_TMP, 0);
    }
    return -1;
}

static void save(struct mailbox_cache *c)
{
    strbuf out;
    size_t off = 0;
    int fd, ok = 1;

    strbuf_init(&out);
    strbuf_appends(&out, CACHE_HEADER);
    for (size_t i = 0; i < c->count; i++) {
        const struct cache_ent *e = &c->ents[i];
        if (!e->used)
            continue; /* its message is gone */
        strbuf_printf(&out, "%llu %llu %lld.%09ld ", (unsigned long long)e->e.size,
                      (unsigned long long)e->e.fsize, (long long)e->e.mtime_sec,
                      e->e.mtime_nsec);
        strbuf_append(&out, e->base, e->n);
        strbuf_appendc(&out, '\n');
    }
    if ((fd = create_tmp(c)) < 0) {
        if (errno != EEXIST)
            log_warning("%s/%s: cannot write the size cache: %s", c->path, CACHE_TMP,
                        strerror(errno));
        strbuf_free(&out);
        return;
    }
    while (ok && off < out.len) {
        ssize_t w = write(fd, out.data + off, out.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            ok = 0;
        else
            off += (size_t)w;
    }
    if (close(fd) != 0)
        ok = 0;
    if (!ok || renameat(c->dirfd, CACHE_TMP, c->dirfd, CACHE_NAME) != 0) {
        log_warning("%s/%s: cannot write the size cache: %s", c->path, CACHE_NAME,
                    strerror(errno));
        unlinkat(c->dirfd, CACHE_TMP, 0);
    }
    strbuf_free(&out);
}

void mailbox_cache_finish(struct mailbox_cache **cp, bool do_save)
{
    struct mailbox_cache *c = *cp;
    if (c == NULL)
        return;
    bool changed = do_save && c->dirty;
    for (size_t i = 0; do_save && i < c->count && !changed; i++)
        changed = !c->ents[i].used;
    if (changed)
        save(c);
    reset(c);
    free(c->ents);
    free(c->table);
    free(c->path);
    strbuf_free(&c->file);
    free(c);
    *cp = NULL;
}
