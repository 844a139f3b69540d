/*
 * config_int.h - what the parts of the config module share: the store
 * (config.c), the file reader (config_read.c), $name expansion
 * (config_expand.c), typed values (config_value.c) and config_validate()
 * (config_validate.c). Not for use outside lib/util/config*.c: the public
 * interface is config.h.
 */
#ifndef PETREL_CONFIG_INT_H
#define PETREL_CONFIG_INT_H

#include "util/config.h"

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/* Expansion state of an entry, for caching and loop detection. */
enum config_state {
    CONFIG_UNEXPANDED, /* cache empty */
    CONFIG_EXPANDING,  /* on the current expansion stack: meeting it again is a loop */
    CONFIG_EXPANDED,   /* cache holds the expanded value */
};

struct config_entry {
    char *name;
    const struct config_def *def; /* NULL: not in the table */
    char *value;                  /* set value; NULL = not set, use the default */
    char *default_value;          /* run-time default; NULL = def->value */
    const char *file;             /* where set (owned by config.files), may be NULL */
    int line;
    /* Expanding each entry once and caching the result keeps a chain of
     * references that fans out (a = $b$b$b..., b = $c$c$c...) linear in
     * the text instead of exponential. Any change empties every cache. */
    char *cache;
    enum config_state state;
    bool referenced; /* scratch for config_validate: some value says $name */
};

struct config {
    const struct config_def *defs;
    struct config_entry *entries; /* sorted by name, for lookups and listings */
    size_t n, cap;
    char **files; /* file names used as sources, kept for the entries */
    size_t nfiles;
};

/* The entry called name[0..len), or NULL. */
struct config_entry *config_find(const struct config *cfg, const char *name, size_t len);
/* The value in effect before expansion: set value, run-time default or
 * table default (never NULL for an existing entry). */
const char *config_entry_raw(const struct config_entry *e);
/* True for [A-Za-z0-9_]. */
bool config_name_char(char c);

/* Appends where e's value in effect came from: "file:line: ", "file: ",
 * "(default): ", or nothing for a value set without a file. */
void config_location(struct strbuf *out, const struct config_entry *e);
/* Appends "file:line: parameter NAME: " (or "(default): parameter NAME: "),
 * the formatted text and '\n' to errors (NULL-safe). */
void config_report(struct strbuf *errors, const struct config_entry *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends s as 'text' for a message: control bytes escaped, long text cut
 * with "...". */
void config_quote(struct strbuf *out, const char *s);

/* A `$` reference at the start of s, as config_ref_parse reads it. */
enum config_ref_kind {
    CONFIG_REF_DOLLAR, /* "$$": a literal '$' */
    CONFIG_REF_NAME,   /* $name, ${name}, $(name) */
    CONFIG_REF_ERROR,  /* bad syntax; *error_r says what */
};
/* Reads the reference at s (s[0] == '$'). Sets *skip_r to the bytes it
 * spans and, for CONFIG_REF_NAME, *name_r and *len_r to the name inside. */
enum config_ref_kind config_ref_parse(const char *s, size_t *skip_r, const char **name_r,
                                      size_t *len_r, const char **error_r);

/* Expands e's value into its cache and points *value_r at it: 0, or -1 with
 * the reason (without location) in msg. */
int config_expand(struct config *cfg, struct config_entry *e, const char **value_r,
                  struct strbuf *msg);
/* Forgets every cached expansion (after any change). */
void config_uncache(struct config *cfg);

/* Parses an expanded value as type and checks it against e's range; on
 * failure appends a located message to errors and returns -1. For
 * CONFIG_LIST and CONFIG_STRING every value is valid. out points to a bool
 * (BOOL) or long long (INT/SIZE/TIME), or is NULL for a check only. */
int config_check_value(const struct config_entry *e, enum config_type type, const char *value,
                       void *out, struct strbuf *errors);

#endif
