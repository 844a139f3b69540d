/*
 * map.c - the generic table layer: spec parsing, the type registry, key
 * folding, reopening rebuilt tables, stale-file warnings, building from text
 * sources, and lists of tables. See map.h; the types are map_hash.c and
 * map_text.c.
 */
#include "mail/map.h"
#include "mail/map_int.h"
#include "mail/map_source.h"
#include "util/config.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The registry. The first entry is the default type (a spec without one). */
static const struct map_type *const map_types[] = {
    &map_type_hash,
    &map_type_texthash,
};
#define N_TYPES (sizeof(map_types) / sizeof(map_types[0]))

const char *map_type_names(void)
{
    static char names[256];
    if (names[0] == '\0') {
        size_t used = 0;
        for (size_t i = 0; i < N_TYPES; i++) {
            size_t n = strlen(map_types[i]->name);
            if (used + n + 3 > sizeof(names))
                break;
            if (i > 0) {
                memcpy(names + used, ", ", 2);
                used += 2;
            }
            memcpy(names + used, map_types[i]->name, n);
            used += n;
            names[used] = '\0';
        }
    }
    return names;
}

void map_file_id_from_stat(struct map_file_id *id, const struct stat *st)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->mtime = st->st_mtim;
    id->size = st->st_size;
}

bool map_file_id_equal(const struct map_file_id *a, const struct map_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->size == b->size;
}

/* Splits spec into its type and path. Returns the type, or NULL with one
 * message in err. *path_r points into spec. */
static const struct map_type *parse_spec(const char *spec, const char **path_r, strbuf *err)
{
    const char *path = spec;
    const struct map_type *type = map_types[0];
    if (spec[0] != '/') {
        const char *colon = strchr(spec, ':');
        if (colon == NULL) {
            if (err != NULL) {
                strbuf_appends(err, "table '");
                log_sanitize(err, spec, strlen(spec));
                strbuf_printf(err, "': expected type:/path (supported types: %s)",
                              map_type_names());
            }
            return NULL;
        }
        size_t n = (size_t)(colon - spec);
        type = NULL;
        for (size_t i = 0; i < N_TYPES; i++) {
            if (strlen(map_types[i]->name) == n && memcmp(map_types[i]->name, spec, n) == 0)
                type = map_types[i];
        }
        if (type == NULL) {
            if (err != NULL) {
                strbuf_appends(err, "unsupported table type '");
                log_sanitize(err, spec, n);
                strbuf_appends(err, "' in '");
                log_sanitize(err, spec, strlen(spec));
                strbuf_printf(err, "' (supported types: %s)", map_type_names());
            }
            return NULL;
        }
        path = colon + 1;
    }
    bool bad = path[0] != '/';
    for (const char *p = path; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            bad = true;
    }
    if (bad) {
        if (err != NULL) {
            strbuf_appends(err, "table '");
            log_sanitize(err, spec, strlen(spec));
            strbuf_appends(err, "': the path must be absolute and hold no control characters");
        }
        return NULL;
    }
    *path_r = path;
    return type;
}

/* Warns when a compiled file is older than its text source. */
static void check_stale(const struct map *m)
{
    if (m->type->build == NULL)
        return;
    struct stat src;
    if (stat(m->path, &src) != 0)
        return; /* tables may be shipped without their source */
    if (src.st_mtim.tv_sec > m->id.mtime.tv_sec ||
        (src.st_mtim.tv_sec == m->id.mtime.tv_sec && src.st_mtim.tv_nsec > m->id.mtime.tv_nsec)) {
        if (m->flags & MAP_ALIASES)
            log_warning("database %s is older than source file %s; run newaliases", m->file,
                        m->path);
        else
            log_warning("database %s is older than source file %s; run \"petrel map %s\"",
                        m->file, m->path, m->spec);
    }
}

static int open_file(struct map *m, strbuf *err)
{
    strbuf msg;
    strbuf_init(&msg);
    int rc = m->type->open(m, &msg);
    if (rc == 0) {
        m->is_open = true;
        check_stale(m);
    } else if (err != NULL) {
        strbuf_printf(err, "table %s: %s", m->spec, msg.data);
    }
    strbuf_free(&msg);
    return rc;
}

int map_open(const char *spec, unsigned flags, struct map **m_r, strbuf *err)
{
    *m_r = NULL;
    const char *path;
    const struct map_type *type = parse_spec(spec, &path, err);
    if (type == NULL)
        return -1;
    struct map *m = xcalloc(1, sizeof(*m));
    m->type = type;
    m->spec = xstrdup(spec);
    m->path = xstrdup(path);
    size_t n = strlen(path), s = strlen(type->suffix);
    m->file = xmalloc(n + s + 1);
    memcpy(m->file, path, n);
    memcpy(m->file + n, type->suffix, s + 1);
    m->flags = flags;
    strbuf_init(&m->key);
    if (open_file(m, err) != 0) {
        map_close(&m);
        return -1;
    }
    *m_r = m;
    return 0;
}

void map_close(struct map **m_r)
{
    struct map *m = *m_r;
    if (m == NULL)
        return;
    if (m->is_open)
        m->type->close(m);
    free(m->spec);
    free(m->path);
    free(m->file);
    strbuf_free(&m->key);
    free(m);
    *m_r = NULL;
}

const char *map_spec(const struct map *m)
{
    return m->spec;
}

/* Reopens the table when its file was replaced (one stat per lookup). */
static int refresh(struct map *m, strbuf *err)
{
    if (m->is_open && (m->flags & MAP_NO_REOPEN))
        return 0;
    struct stat st;
    if (stat(m->file, &st) != 0) {
        if (err != NULL)
            strbuf_printf(err, "table %s: cannot access %s: %s", m->spec, m->file,
                          strerror(errno));
        return -1;
    }
    struct map_file_id id;
    map_file_id_from_stat(&id, &st);
    if (m->is_open && map_file_id_equal(&id, &m->id))
        return 0;
    if (m->is_open) {
        m->type->close(m);
        m->is_open = false;
        log_info("table %s changed, reopening", m->spec);
    }
    return open_file(m, err);
}

enum map_status map_lookup(struct map *m, const char *key, size_t keylen, strbuf *value,
                           strbuf *err)
{
    strbuf_reset(value);
    if (refresh(m, err) != 0)
        return MAP_ERROR;
    if (keylen == 0 || keylen > MAP_MAX_LINE || memchr(key, '\0', keylen) != NULL)
        return MAP_NOTFOUND;
    strbuf_set(&m->key, key, keylen);
    for (size_t i = 0; i < keylen; i++) {
        if (m->key.data[i] >= 'A' && m->key.data[i] <= 'Z')
            m->key.data[i] = (char)(m->key.data[i] - 'A' + 'a');
    }
    strbuf msg;
    strbuf_init(&msg);
    enum map_status st = m->type->lookup(m, m->key.data, m->key.len, value, &msg);
    if (st != MAP_FOUND)
        strbuf_reset(value);
    if (st == MAP_ERROR && err != NULL)
        strbuf_printf(err, "table %s: %s", m->spec, msg.data);
    strbuf_free(&msg);
    return st;
}

/* ---- building ---- */

int map_build_entries(const char *spec, const char *source_name, struct map_entries *e,
                      mode_t mode, uid_t uid, gid_t gid, strbuf *err)
{
    const char *path;
    strbuf msg;
    strbuf_init(&msg);
    const struct map_type *type = parse_spec(spec, &path, &msg);
    if (type != NULL && type->build == NULL)
        strbuf_printf(&msg, "table %s: type %s has no compile step", spec, type->name);
    if (type == NULL || type->build == NULL) {
        if (err != NULL)
            strbuf_printf(err, "%s\n", msg.data);
        strbuf_free(&msg);
        return -1;
    }
    map_entries_dedupe(e, source_name);
    size_t n = strlen(path), s = strlen(type->suffix);
    char *file = xmalloc(n + s + 1);
    memcpy(file, path, n);
    memcpy(file + n, type->suffix, s + 1);
    int rc = type->build(file, e, mode, uid, gid, &msg);
    if (rc != 0 && err != NULL)
        strbuf_printf(err, "table %s: %s\n", spec, msg.data);
    free(file);
    strbuf_free(&msg);
    return rc;
}

int map_build(const char *spec, const char *source_path, strbuf *err)
{
    const char *path;
    strbuf msg;
    strbuf_init(&msg);
    const struct map_type *type = parse_spec(spec, &path, &msg);
    if (type == NULL) {
        if (err != NULL)
            strbuf_printf(err, "%s\n", msg.data);
        strbuf_free(&msg);
        return 1;
    }
    strbuf_free(&msg);
    const char *src = source_path != NULL ? source_path : path;
    struct map_entries e;
    map_entries_init(&e);
    int errors = map_source_read_pairs(src, 0, &e, err);
    if (errors == 0 && type->build != NULL) {
        struct stat st;
        if (stat(src, &st) != 0) {
            if (err != NULL)
                strbuf_printf(err, "%s: cannot access: %s\n", src, strerror(errno));
            errors = 1;
        } else {
            /* A source that others may not read is private: so is its table. */
            mode_t mode = (st.st_mode & S_IROTH) ? 0644 : (st.st_mode & 0666);
            if (map_build_entries(spec, src, &e, mode, st.st_uid, st.st_gid, err) != 0)
                errors = 1;
        }
    }
    map_entries_free(&e);
    return errors;
}

/* ---- lists ---- */

struct map_list {
    struct map **maps;
    size_t n;
};

int map_list_open(const char *specs, unsigned flags, struct map_list **ml_r, strbuf *err)
{
    struct config_list items;
    config_split_list(specs, &items);
    struct map_list *ml = xcalloc(1, sizeof(*ml));
    ml->maps = xcalloc(items.count + 1, sizeof(ml->maps[0]));
    int rc = 0;
    for (size_t i = 0; i < items.count; i++) {
        if (map_open(items.items[i], flags, &ml->maps[ml->n], err) != 0) {
            rc = -1;
            break;
        }
        ml->n++;
    }
    config_list_free(&items);
    if (rc != 0)
        map_list_close(&ml);
    *ml_r = ml;
    return rc;
}

enum map_status map_list_lookup(struct map_list *ml, const char *key, size_t keylen,
                                strbuf *value, strbuf *err)
{
    strbuf_reset(value);
    for (size_t i = 0; i < ml->n; i++) {
        enum map_status st = map_lookup(ml->maps[i], key, keylen, value, err);
        if (st != MAP_NOTFOUND)
            return st;
    }
    return MAP_NOTFOUND;
}

size_t map_list_count(const struct map_list *ml)
{
    return ml->n;
}

void map_list_close(struct map_list **ml_r)
{
    struct map_list *ml = *ml_r;
    if (ml == NULL)
        return;
    for (size_t i = 0; i < ml->n; i++)
        map_close(&ml->maps[i]);
    free(ml->maps);
    free(ml);
    *ml_r = NULL;
}
