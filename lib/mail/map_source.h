/*
 * map_source.h - reading the text sources of lookup tables.
 *
 * Both table sources Petrel compiles, postmap-style "key value" files and
 * /etc/aliases, share the same line rules, implemented once here:
 *  - a line whose first non-blank character is '#' is a comment, and blank
 *    lines are ignored (their bytes are not checked: they mean nothing);
 *  - a line starting with a space or a tab continues the previous logical
 *    line; the two are joined with one space; comments and blank lines in
 *    between do not end the logical line;
 *  - CRLF line ends are accepted; trailing whitespace is removed;
 *  - NUL bytes, control characters other than tab, invalid UTF-8 and lines
 *    longer than MAP_MAX_LINE (physical, or logical with continuations) are
 *    errors, and the whole logical line they belong to is dropped.
 * Every error is one line "path:line: message\n". After MAP_SOURCE_MAX_ERRORS
 * the reader stops (a binary file would otherwise yield one per line).
 *
 * The parsed entries are collected in a map_entries vector, which map.c hands
 * to a table type's builder (map_int.h) and aliases.c fills itself.
 */
#ifndef PETREL_MAP_SOURCE_H
#define PETREL_MAP_SOURCE_H

#include <stddef.h>

struct strbuf;

#define MAP_SOURCE_MAX_ERRORS 100

/* One key -> value pair and the line it came from. key and value are
 * NUL-terminated copies; the key has its ASCII letters lowercased. */
struct map_entry {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int line;
};

struct map_entries {
    struct map_entry *v;
    size_t n, cap;
};

void map_entries_init(struct map_entries *e);
void map_entries_free(struct map_entries *e);
/* map_entries_add: appends a copy, lowercasing the key's ASCII letters. */
void map_entries_add(struct map_entries *e, const char *key, size_t key_len, const char *value,
                     size_t value_len, int line);
/* map_entries_sort: orders by key (bytes), and by line for equal keys, so
 * that duplicates are adjacent with the first one first. */
void map_entries_sort(struct map_entries *e);
/* map_entries_dedupe: sorts, then drops every entry whose key an earlier line
 * already gave, logging "source:line: duplicate key 'k' ignored (line N
 * gives it first)" for each: the first one wins, as with postmap. */
void map_entries_dedupe(struct map_entries *e, const char *source_name);

/* Called with each complete logical line (trailing whitespace removed, text
 * NUL-terminated, no NUL inside) and the number of its first physical line.
 * Returns how many error lines it appended to err (0 when it took the line). */
typedef int map_line_fn(const char *text, size_t len, int line, void *ctx, struct strbuf *err);

/* map_source_read: reads path (a regular file of at most max_file bytes;
 * 0 = no limit) and calls fn for every valid logical line. Returns the
 * number of error lines appended to err: reader errors, fn's errors, and
 * "path: cannot open: ..." style errors for the file itself. */
int map_source_read(const char *path, size_t max_file, map_line_fn *fn, void *ctx,
                    struct strbuf *err);

/* map_source_read_pairs: map_source_read for the postmap format: the key is
 * the first token (up to a space or tab), the value the rest of the line
 * after the whitespace; a line with no value is an error ("missing value").
 * Appends the pairs to e (duplicates kept, see map_entries_dedupe).
 * Returns the number of error lines. */
int map_source_read_pairs(const char *path, size_t max_file, struct map_entries *e,
                          struct strbuf *err);

/* map_source_quote_key: appends key[0..n) to out for a message, escaped
 * (log_sanitize) and cut to 100 bytes with "..." after. */
void map_source_quote_key(struct strbuf *out, const char *key, size_t n);

#endif
