/*
 * map_int.h - what a table type provides to the generic map layer (map.c).
 * Not for use outside lib/mail/map*.c: the public interface is map.h.
 *
 * map.c parses the spec, keeps the registry of types, lowercases keys,
 * watches the table file for replacement (reopening through the type's
 * close/open), warns about stale compiled files and parses text sources for
 * building. A type only opens, looks up, closes and writes its own files.
 * Adding a type (LMDB, say): write map_<type>.c defining one struct
 * map_type, declare it below and list it in map.c's registry.
 */
#ifndef PETREL_MAP_INT_H
#define PETREL_MAP_INT_H

#include "mail/map.h"
#include "mail/map_source.h"
#include "util/strbuf.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* Enough of a stat result to see that a file was replaced or rewritten. */
struct map_file_id {
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
};

struct map {
    const struct map_type *type;
    char *spec;   /* as given to map_open */
    char *path;   /* the path of the spec: the text source */
    char *file;   /* the file the table is read from (path + type->suffix) */
    unsigned flags;
    bool is_open; /* priv holds an open table */
    struct map_file_id id; /* of file, when is_open */
    void *priv;   /* the type's state */
    strbuf key;   /* scratch: the lowercased key */
};

struct map_type {
    const char *name;   /* "hash" */
    const char *suffix; /* appended to the spec's path to name the file read: ".db", "" */
    /* open: opens m->file into m->priv and records its identity with
     * map_file_id_from_stat (taken from the descriptor that was read, or
     * before reading, so that a replacement is never missed). Returns 0, or
     * -1 with one message (naming the file) in err and nothing to close. */
    int (*open)(struct map *m, strbuf *err);
    /* lookup: key is lowercased, NUL-terminated at key[keylen], has no NUL
     * inside and is not empty. value is empty on entry. */
    enum map_status (*lookup)(struct map *m, const char *key, size_t keylen, strbuf *value,
                              strbuf *err);
    /* close: releases m->priv (only called when open succeeded). */
    void (*close)(struct map *m);
    /* build: writes the sorted, duplicate-free entries as the new file,
     * atomically replacing the old one; mode, and owner when uid is not
     * (uid_t)-1 and we are root. Returns 0 or -1 with one line in err.
     * NULL for a type without a compile step. */
    int (*build)(const char *file, const struct map_entries *e, mode_t mode, uid_t uid, gid_t gid,
                 strbuf *err);
};

extern const struct map_type map_type_hash;
extern const struct map_type map_type_texthash;

void map_file_id_from_stat(struct map_file_id *id, const struct stat *st);
bool map_file_id_equal(const struct map_file_id *a, const struct map_file_id *b);

#endif
