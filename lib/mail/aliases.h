/*
 * aliases.h - the /etc/aliases file (sendmail syntax, aliases(5)) and the
 * targets an alias expands to.
 *
 *   # comment
 *   postmaster: root
 *   root:       alice, bob@example.org
 *   staff:      alice,
 *               bob                    <- starts with whitespace: continues
 *   log:        /var/log/mail-copy     <- a file (absolute path)
 *   ticket:     "|/usr/bin/ticket --queue mail, urgent"   <- a command
 *   team:       :include:/etc/petrel/team.list
 *
 * aliases_build() compiles the file into a table (normally hash:/etc/aliases,
 * i.e. /etc/aliases.db) through the map layer, as newaliases does: keys are
 * the alias names lowercased, values the normalized target list ("alice,
 * bob@example.org"). local-delivery looks a recipient up in alias_maps
 * (map_list_lookup) and splits the value with aliases_parse_targets().
 *
 * Syntax, as checked (every problem is an error, with file and line):
 *  - line rules of map_source.h (comments, continuation, CRLF, NUL, control
 *    characters, invalid UTF-8, 64 KiB lines);
 *  - "name: targets". The name is a local part (dot-atom, or a quoted string
 *    in double quotes), without a domain; it is stored unquoted and
 *    lowercased. A name defined twice is an error naming both lines.
 *  - targets are separated by commas; whitespace around them is ignored. A
 *    target may be enclosed in double quotes, inside which commas and spaces
 *    are plain text and a backslash quotes the next character. Outside
 *    quotes a target may not contain whitespace (commands and file names
 *    with spaces must be quoted). An empty target (",,", a comma at the end)
 *    is an error.
 *  - "|command" is a COMMAND (kept as text: nothing here runs or interprets
 *    it); "/path" is a FILE; ":include:/path" an INCLUDE (the path must be
 *    absolute); "\user" is an address that is delivered without further
 *    alias expansion; anything else is an ADDRESS, "user" or "user@domain",
 *    checked with address_parse_mailbox (UTF-8 allowed). A target that
 *    contains '/' but does not start with it is refused as a relative file
 *    path.
 * The build warns (log_warning) when there is no alias for postmaster and
 * no system user of that name: RFC 5321 section 4.5.1 requires that
 * postmaster is deliverable.
 */
#ifndef PETREL_ALIASES_H
#define PETREL_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

enum alias_target_type {
    ALIAS_TARGET_ADDRESS, /* text: "user" or "user@domain", canonical form */
    ALIAS_TARGET_FILE,    /* text: the absolute path */
    ALIAS_TARGET_COMMAND, /* text: the command line after '|', never interpreted here */
    ALIAS_TARGET_INCLUDE, /* text: the absolute path after ":include:" */
};

struct alias_target {
    enum alias_target_type type;
    char *text;     /* NUL-terminated, no control characters but tab */
    bool no_expand; /* ADDRESS written "\user": not to be expanded again */
};

/* aliases_parse_targets: splits value[0..len) (a looked-up alias value or
 * the part after "name:") into typed targets. Returns 0 with a new array in
 * *list_r and its length in *n_r (at least one), or -1 with *list_r = NULL,
 * *n_r = 0 and one message in err: no targets, an empty target, an
 * unterminated quote, text after a closing quote, whitespace in an unquoted
 * target, a relative file or include path, an empty command, an invalid
 * address, a NUL byte, a control character or invalid UTF-8. */
int aliases_parse_targets(const char *value, size_t len, struct alias_target **list_r, size_t *n_r,
                          struct strbuf *err);

/* aliases_free_targets: frees an array from aliases_parse_targets; NULL-safe. */
void aliases_free_targets(struct alias_target *list, size_t n);

/* aliases_format_targets: appends the normalized list to out: targets in
 * order, separated by ", ", quoted where needed (whitespace, ',', '"', '\'),
 * such that aliases_parse_targets gives the same list back. */
void aliases_format_targets(struct strbuf *out, const struct alias_target *list, size_t n);

/* aliases_build: reads the aliases file source and, when there is no error
 * and db_spec is not NULL, writes the table db_spec (e.g. "hash:/etc/aliases")
 * with map_build_entries: atomically, mode 0644 or the source's mode when
 * that is not world-readable, the source's owner when run as root. With
 * db_spec NULL the file is only checked. Every problem is appended to errors
 * as "file:line: message\n"; if there is any, nothing is written. Returns
 * the number of lines appended (0 = success). */
int aliases_build(const char *source, const char *db_spec, struct strbuf *errors);

#endif
