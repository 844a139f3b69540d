/*
 * config.h - parameters in the Postfix main.cf style: `name = value` lines
 * with `$name` expansion, a default for every known parameter, typed getters
 * and every problem reported as `file:line: message`.
 *
 * This module knows nothing about mail: the table of known parameters (name,
 * default, type, range, description) is handed to config_new(); Petrel's own
 * table is in lib/mail/params.c (params_config_new()). The file syntax is
 * described in docs/configuration.md:
 *
 *   # comment (only whole lines; '#' inside a value is part of it)
 *   myorigin = $mydomain
 *   mydestination = $myhostname, localhost.$mydomain,
 *       localhost                 <- starts with whitespace: continues the line
 *
 * Values are stored as written and expanded when they are looked up, so a
 * value may refer to parameters set later in the file and to defaults.
 * `$name`, `${name}` and `$(name)` expand to the value of name (itself
 * expanded); `$$` is a literal `$`; a name that is neither set nor in the
 * table expands to nothing (config_validate() reports it). Expansion detects
 * loops and is capped in depth (CONFIG_MAX_DEPTH) and size
 * (CONFIG_MAX_VALUE).
 *
 * Errors are appended to a caller's strbuf, one line each, ending in '\n':
 *   petrel.conf:12: parameter smtpd_timeout: invalid time value '5x' (...)
 *   (default): parameter ...        <- the value came from the table
 * Functions that read a file or check everything return how many lines they
 * appended; single lookups return 0 or -1 and append one line on -1. Every
 * `errors` argument may be NULL when the caller does not want the text.
 */
#ifndef PETREL_CONFIG_H
#define PETREL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/* Limits, fixed so that a hostile or broken file cannot exhaust memory. */
#define CONFIG_MAX_LINE (64 * 1024)        /* physical or logical line, bytes */
#define CONFIG_MAX_FILE (16 * 1024 * 1024) /* whole file, bytes */
#define CONFIG_MAX_NAME 100                /* parameter name, bytes */
#define CONFIG_MAX_DEPTH 20                /* nested $name expansions */
#define CONFIG_MAX_VALUE (256 * 1024)      /* one value after expansion, bytes */

enum config_type {
    CONFIG_STRING, /* any text */
    CONFIG_BOOL,   /* yes/no, true/false, on/off, 1/0 (any case) */
    CONFIG_INT,    /* decimal integer */
    CONFIG_SIZE,   /* bytes, optional suffix k, M, G (powers of 1024) */
    CONFIG_TIME,   /* seconds, optional suffix s, m, h, d, w */
    CONFIG_LIST,   /* items separated by commas and/or whitespace */
};

/* One known parameter. A table is an array ending with an entry whose name is
 * NULL. For INT, SIZE and TIME values must lie in [min, max]; max == 0 means
 * "no upper limit" (values are never negative unless min is). */
struct config_def {
    const char *name;
    const char *value; /* the default, may hold $name references */
    enum config_type type;
    long long min, max;
    const char *desc; /* one line, for docs and `petrel config` */
};

struct config;

/* config_new: an empty configuration whose known parameters and defaults
 * come from defs (not copied: it must outlive the config; NULL = none). */
struct config *config_new(const struct config_def *defs);
/* config_free: releases everything and NULLs *cfgp; NULL-safe. */
void config_free(struct config **cfgp);

/* config_load_file: reads path and applies every valid `name = value` line
 * (a later line for the same name wins). Bad lines are reported and skipped:
 * missing '=', bad names, NUL bytes, control characters, invalid UTF-8,
 * lines longer than CONFIG_MAX_LINE, a continuation without a line to
 * continue. A file that cannot be opened or read, is not a regular file or
 * is larger than CONFIG_MAX_FILE gives one "path: ..." error and changes
 * nothing. Returns the number of errors appended (0 = all lines applied).
 * Values are not checked here: see config_validate(). */
int config_load_file(struct config *cfg, const char *path, struct strbuf *errors);
/* config_load_string: the same for text held in memory (len bytes, may hold
 * NULs); `file` names it in messages and is kept as the settings' source. */
int config_load_string(struct config *cfg, const char *file, const char *text, size_t len,
                       struct strbuf *errors);

/* config_set: sets name explicitly, as a file line would (used for service
 * `-o name=value` overrides). file/line say where it came from (file may be
 * NULL, e.g. for the command line). Returns -1, changing nothing, when name
 * is not a valid parameter name ([A-Za-z0-9_]+, at most CONFIG_MAX_NAME). */
int config_set(struct config *cfg, const char *name, const char *value, const char *file,
               int line);
/* config_set_default: replaces the default of a parameter of the table with
 * a value computed at run time (e.g. myhostname from the system); it still
 * counts as a default, not as set. Returns -1 if name is not in the table. */
int config_set_default(struct config *cfg, const char *name, const char *value);

/* config_get: the expanded value of name; NULL when name is neither set nor
 * in the table, or its value cannot be expanded (loop, bad `$` syntax, too
 * deep or too long; config_get_str says why). The string belongs to cfg and
 * stays valid until the next config_set/_set_default/_load/_free. */
const char *config_get(struct config *cfg, const char *name);
/* config_get_str: the same with an error line on failure: 0 or -1. */
int config_get_str(struct config *cfg, const char *name, const char **value_r,
                   struct strbuf *errors);
/* config_raw: the value as written (or the default), unexpanded; NULL when
 * unknown. Same lifetime as config_get's result. */
const char *config_raw(const struct config *cfg, const char *name);
/* config_is_set: true when name was set explicitly (file or config_set). */
bool config_is_set(const struct config *cfg, const char *name);
/* config_def_of: name's table entry, or NULL when it is not in the table. */
const struct config_def *config_def_of(const struct config *cfg, const char *name);

/* Typed getters: expand name, parse it as the type and check the table's
 * range. Return 0 and store the value, or -1 and append a line such as
 * "petrel.conf:7: parameter message_size_limit: invalid size value '10x'
 * (...)" without touching *value_r. A parameter that is not in the table is
 * parsed without a range check. */
int config_get_bool(struct config *cfg, const char *name, bool *value_r, struct strbuf *errors);
int config_get_int(struct config *cfg, const char *name, long long *value_r,
                   struct strbuf *errors);
/* Sizes in bytes. */
int config_get_size(struct config *cfg, const char *name, long long *bytes_r,
                    struct strbuf *errors);
/* Times in seconds. */
int config_get_time(struct config *cfg, const char *name, long long *seconds_r,
                    struct strbuf *errors);

/* A list value split into items (empty items dropped); release with
 * config_list_free. items[count] is NULL. */
struct config_list {
    char **items;
    size_t count;
};
int config_get_list(struct config *cfg, const char *name, struct config_list *list_r,
                    struct strbuf *errors);
void config_list_free(struct config_list *list);

/* config_validate: checks everything `petrel check` should know, appending
 * one line per problem, and returns how many:
 *  - a set parameter that is not in the table and not referred to by any
 *    other value: "file:line: unknown parameter 'foo'" (a parameter that
 *    another value refers to as $foo is a user-defined helper, as in
 *    Postfix, and is accepted);
 *  - a set value referring to a parameter that does not exist;
 *  - a value that cannot be expanded (loops, bad `$` syntax, limits);
 *  - a value, set or default, that is not valid for its type and range.
 * Expansion failures are reported on the set parameters that cause them,
 * not again on every default that refers to those. Lines come in file
 * order (set parameters by file and line, then defaults by name). */
int config_validate(struct config *cfg, struct strbuf *errors);

/* One parameter as shown by `petrel config`. */
struct config_item {
    const char *name;
    const char *raw;               /* unexpanded value */
    bool is_set;                   /* set explicitly, not the default */
    const char *file;              /* where set; NULL for defaults */
    int line;                      /* where set; 0 for defaults */
    const struct config_def *def;  /* NULL when not in the table */
};
/* config_foreach: calls fn for every parameter (table entries and set ones)
 * in name order, or only for the explicitly set ones when set_only (for
 * `petrel config -n`). Stops at the first nonzero return of fn and returns
 * it; returns 0 otherwise. fn may look values up (config_get and the typed
 * getters) but must not set or load anything. */
int config_foreach(const struct config *cfg, bool set_only,
                   int (*fn)(const struct config_item *item, void *ctx), void *ctx);

/* Value parsers used by the getters, for callers with text of their own.
 * They accept the whole string or nothing (no surrounding whitespace) and
 * return false on bad syntax or overflow. */
bool config_parse_bool(const char *s, bool *value_r);
bool config_parse_int(const char *s, long long *value_r);
bool config_parse_size(const char *s, long long *bytes_r);
bool config_parse_time(const char *s, long long *seconds_r);
/* Splits s on commas and whitespace into list_r (empty items dropped). */
void config_split_list(const char *s, struct config_list *list_r);

#endif
