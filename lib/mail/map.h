/*
 * map.h - lookup tables named "type:path", as Postfix names them.
 *
 * Aliases, virtual aliases, virtual mailboxes, relay domains, transports and
 * sender logins are all key -> value tables that an administrator writes as
 * text and Petrel reads through this one layer. A table is named by a spec:
 *
 *   hash:/etc/petrel/virtual      Berkeley DB hash file /etc/petrel/virtual.db,
 *                                 compiled from the text file with `petrel map`
 *                                 (or `newaliases` for aliases)
 *   texthash:/etc/petrel/virtual  the text file itself, read into memory when
 *                                 the table is opened (no compile step)
 *   /etc/petrel/virtual           no type: the default type, hash
 *
 * The text format (docs/maps.md): one "key value" per line, the key being
 * the first whitespace-delimited token and the value the rest of the line;
 * '#' comment lines, blank lines, lines that start with whitespace continue
 * the previous one. Keys are case-insensitive: they are stored with ASCII
 * letters lowercased and looked up lowercased. Values keep their case.
 *
 * Each type lives in its own file (map_hash.c, map_text.c) and is listed in
 * the registry in map.c; another type (LMDB, say) is one more file and one
 * more line there. What a type must provide is in map_int.h.
 *
 * Status of a lookup: MAP_FOUND, MAP_NOTFOUND, or MAP_ERROR when the table
 * could not be read. MAP_ERROR never means "no such key": a caller must
 * defer the mail (try again later), never bounce it as an unknown user.
 *
 * A daemon that keeps a table open sees it rebuilt: every lookup stat()s the
 * table file (one system call) and reopens it when it was replaced. Opening a
 * hash table whose .db is older than its text source logs a warning that
 * names the command to run.
 *
 * Berkeley DB is opened inside a private environment whose home is a path
 * that can hold no DB_CONFIG file, and never with DB_USE_ENVIRON: neither a
 * DB_CONFIG file in the working directory or beside the table nor DB_HOME in
 * the environment is read (CVE-2017-10140, BAD-INPUT.md row 8).
 *
 * Errors: map_open and map_lookup append one message (no newline) to err;
 * map_build appends one line per problem, each ending in '\n'. Any err may
 * be NULL when the caller does not want the text.
 */
#ifndef PETREL_MAP_H
#define PETREL_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct strbuf;
struct map;
struct map_list;
struct map_entries;

/* Limits: a text line (physical or joined with its continuations) and so
 * every key and value. */
#define MAP_MAX_LINE (64 * 1024)
/* The largest text file a texthash table reads into memory. */
#define MAP_TEXT_MAX_FILE (64 * 1024 * 1024)

enum map_status {
    MAP_FOUND,
    MAP_NOTFOUND,
    MAP_ERROR, /* the table could not be read: defer, never "unknown user" */
};

/* Flags for map_open and map_list_open. */
#define MAP_NO_REOPEN 0x01 /* don't check for a rebuilt file at each lookup
                            * (one-shot queries) */
#define MAP_ALIASES 0x02   /* an alias table: warnings say "run newaliases" */

/* map_open: opens the table named by spec ("type:/absolute/path"). Fails
 * (-1, *m_r = NULL, one message in err) on an unknown type (the message
 * lists the supported ones), a relative or empty path, or a table that
 * cannot be opened (missing, unreadable, corrupt). A hash table whose .db is
 * older than its source file opens with a logged warning. Returns 0 and sets
 * *m_r. */
int map_open(const char *spec, unsigned flags, struct map **m_r, struct strbuf *err);

/* map_lookup: looks key[0..keylen) up, with ASCII letters lowercased.
 * MAP_FOUND: value holds the value (replaced, NUL-terminated, no NUL
 * inside). MAP_NOTFOUND: value is emptied; an empty key, a key with a NUL
 * byte or a key longer than MAP_MAX_LINE is never in a table and gives
 * MAP_NOTFOUND. MAP_ERROR: value is emptied and err says why (the table file
 * vanished, could not be reopened after a rebuild, or a read failed). */
enum map_status map_lookup(struct map *m, const char *key, size_t keylen, struct strbuf *value,
                           struct strbuf *err);

/* map_close: closes the table and NULLs *m_r; NULL-safe. */
void map_close(struct map **m_r);

/* map_spec: the spec as given to map_open (for messages). */
const char *map_spec(const struct map *m);

/* map_build: compiles a text source (source_path; NULL = the spec's path)
 * into the table named by spec, as Postfix's postmap does. Every problem is
 * reported as "file:line: message\n" (missing value, NUL byte, control
 * character, invalid UTF-8, line longer than MAP_MAX_LINE, continuation
 * without a line to continue); if there is any, nothing is written and the
 * old table stays as it was. A key given twice is logged as a warning and
 * the first one wins. The new file is written beside the old one under a
 * temporary name, synced and renamed over it, so readers see either the old
 * or the new table, never a partial one. Its mode is 0644, or the source's
 * mode (without execute bits) when the source is not world-readable; run by
 * root it gets the source's owner and group. For a type without a compile
 * step (texthash) the source is only checked. Returns the number of lines
 * appended to err (0 = success). */
int map_build(const char *spec, const char *source_path, struct strbuf *err);

/* map_build_entries: writes already parsed entries (see map_source.h) into
 * the table named by spec, as map_build does after parsing: entries are
 * sorted and, for a key given twice, the first one kept (with a warning
 * naming source_name and both lines). The file gets `mode` and, when
 * uid != (uid_t)-1 and the caller is root, that owner and group. Used by
 * aliases_build. Fails (-1, one line in err) for a type without a compile
 * step. Returns 0 or -1. */
int map_build_entries(const char *spec, const char *source_name, struct map_entries *e,
                      mode_t mode, uid_t uid, gid_t gid, struct strbuf *err);

/* map_type_names: the supported types, e.g. "hash, texthash". */
const char *map_type_names(void);

/* ---- lists of tables (alias_maps = hash:/etc/aliases, texthash:/x) ---- */

/* map_list_open: opens every spec of a list value (items separated by
 * commas and/or whitespace, as config lists are). An empty list is valid
 * and finds nothing. Fails (-1, *ml_r = NULL, the message of the first table
 * that failed, naming it) when any table cannot be opened. */
int map_list_open(const char *specs, unsigned flags, struct map_list **ml_r, struct strbuf *err);

/* map_list_lookup: asks the tables in order; the first MAP_FOUND wins. A
 * MAP_ERROR from a table asked before any hit is the result (with err),
 * since a later table cannot know whether the broken one held the key. */
enum map_status map_list_lookup(struct map_list *ml, const char *key, size_t keylen,
                                struct strbuf *value, struct strbuf *err);

/* map_list_count: how many tables the list holds. */
size_t map_list_count(const struct map_list *ml);

/* map_list_close: closes every table and NULLs *ml_r; NULL-safe. */
void map_list_close(struct map_list **ml_r);

#endif
