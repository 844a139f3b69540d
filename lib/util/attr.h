/*
 * attr.h - IPC records: lists of name=value attributes between Petrel
 * processes.
 *
 * Every request and reply between daemons (smtpd -> cleanup, qmgr -> delivery
 * agents, login -> auth, ...) is one record of named attributes on a UNIX
 * stream socket. Values are length-counted, so they may hold any byte; names
 * are short lowercase identifiers. The wire format, limits and error
 * behaviour are documented in docs/ipc.md:
 *
 *     record    = *attribute "0:,"
 *     attribute = netstring(name) netstring(value)
 *     netstring = length ":" bytes ","     length: "0" or [1-9][0-9]*
 *
 * Building and parsing are pure functions on memory (easy to test and fuzz);
 * attr_write()/attr_read() move one record over a socket with a deadline.
 * The reader treats its peer as possibly broken: anything malformed or over
 * a limit is an error with a message for the administrator, never a crash.
 *
 * Conventions (STYLE.md "named attribute lists with a protocol-name
 * handshake"): the first attribute of every record is `protocol=<name>`,
 * checked by attr_expect_protocol(); attributes a reader does not know are
 * ignored unless it asks for strictness with attr_check_known().
 */
#ifndef PETREL_ATTR_H
#define PETREL_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

#define ATTR_NAME_MAX 64 /* bytes; names are [a-z0-9_]+ */
#define ATTR_PROTOCOL "protocol"

/* What a reader accepts. Every field must be > 0. */
struct attr_limits {
    size_t max_attrs; /* attributes per record */
    size_t max_value; /* bytes in one value */
    size_t max_total; /* bytes of the whole record on the wire, framing included */
};
#define ATTR_DEFAULT_MAX_ATTRS 256
#define ATTR_DEFAULT_MAX_VALUE (1024 * 1024)
#define ATTR_DEFAULT_MAX_TOTAL (1024 * 1024)
/* The defaults above; pass NULL wherever limits are taken to use them. */
extern const struct attr_limits attr_default_limits;

struct attr_list;

/* ---- building ---- */

struct attr_list *attr_list_new(void);
/* Frees the list and NULLs *lp. */
void attr_list_free(struct attr_list **lp);
/* Removes every attribute. */
void attr_list_clear(struct attr_list *l);

/*
 * Append an attribute; order is kept. The name must be 1..ATTR_NAME_MAX
 * bytes of [a-z0-9_] and not already in the list: names come from our own
 * code, so a bad one is a programming error (log_panic), not a runtime error.
 */
void attr_add_bytes(struct attr_list *l, const char *name, const void *p, size_t n);
void attr_add_str(struct attr_list *l, const char *name, const char *value);
void attr_add_int(struct attr_list *l, const char *name, long long value);
void attr_add_uint64(struct attr_list *l, const char *name, uint64_t value);

/* True when name is a valid attribute name. */
bool attr_name_valid(const char *name, size_t len);

/* ---- looking up ---- */

size_t attr_count(const struct attr_list *l);
/* The i-th attribute (i < attr_count); value is NUL-terminated, its length
 * in *len_r (may be NULL). */
const char *attr_name_at(const struct attr_list *l, size_t i);
const char *attr_value_at(const struct attr_list *l, size_t i, size_t *len_r);

/* A value as bytes (NUL-terminated, length in *len_r; len_r may be NULL),
 * or NULL when absent. */
const char *attr_get_bytes(const struct attr_list *l, const char *name, size_t *len_r);
/* A value as a C string, or NULL when absent OR when it holds a NUL byte: a
 * C string cannot carry one, and silently cutting "bob\0x" to "bob" would
 * let a peer smuggle one identity past a check of another. */
const char *attr_get(const struct attr_list *l, const char *name);
/* Like attr_get, but a missing attribute or a NUL byte in it is an error:
 * returns NULL and replaces *err with e.g. `missing attribute "sender"`. */
const char *attr_require(const struct attr_list *l, const char *name, strbuf *err);
/*
 * Integer values in strict decimal ("0", "42", "-7"; no sign on zero, no
 * "+", no leading zeros or spaces), within [min, max]. Return 0 and store
 * the value, or -1 with a message in *err (missing, malformed, out of
 * range); *value_r is untouched on error.
 */
int attr_get_int(const struct attr_list *l, const char *name, long long min, long long max,
                 long long *value_r, strbuf *err);
int attr_get_uint64(const struct attr_list *l, const char *name, uint64_t min, uint64_t max,
                    uint64_t *value_r, strbuf *err);

/* Checks that the first attribute is protocol=<name>; 0, or -1 with *err. */
int attr_expect_protocol(const struct attr_list *l, const char *name, strbuf *err);
/* For strict readers: -1 with *err naming the first attribute that is not
 * in `known` (a NULL-terminated array; "protocol" is always allowed). */
int attr_check_known(const struct attr_list *l, const char *const *known, strbuf *err);

/* ---- wire format ---- */

/* Appends the record's wire form (docs/ipc.md) to out. */
void attr_serialize(const struct attr_list *l, strbuf *out);

enum attr_parse_status {
    ATTR_PARSE_OK,         /* one complete record; *used_r bytes consumed */
    ATTR_PARSE_INCOMPLETE, /* buf is a valid prefix of a record; need more */
    ATTR_PARSE_ERROR,      /* malformed or over a limit; *err says why */
};
/*
 * Parses one record from buf[0..len) into l (cleared first). Bytes after
 * the end marker are not looked at (they belong to the next record). On
 * INCOMPLETE and ERROR, l is left empty. Errors are found as early as the
 * bytes allow: a bad digit or a length over a limit is reported without
 * waiting for the rest. limits may be NULL (defaults).
 */
enum attr_parse_status attr_parse(const char *buf, size_t len, const struct attr_limits *limits,
                                  struct attr_list *l, size_t *used_r, strbuf *err);

/* ---- over a socket ---- */

/*
 * Writes one record to a stream socket within timeout_ms (> 0). Returns 0,
 * or -1 with errno (ETIMEDOUT, EPIPE, ...). Never raises SIGPIPE, never
 * changes the descriptor's flags.
 */
int attr_write(int fd, const struct attr_list *l, int timeout_ms);
/*
 * Reads exactly one record from a stream socket into l (cleared first),
 * within timeout_ms (> 0) for the whole record; bytes after the record stay
 * in the socket for the next call (the reader peeks, then consumes only the
 * record). Returns:
 *    1  a record was read;
 *    0  the peer closed the connection before sending any byte of one;
 *   -1  error: *err has the reason and errno is ETIMEDOUT (timeout), EPROTO
 *       (malformed, over a limit, or the peer closed mid-record) or the
 *       system error. After -1 drop the connection: its position is unknown.
 * limits may be NULL (defaults). Needs a socket (uses MSG_PEEK).
 */
int attr_read(int fd, struct attr_list *l, const struct attr_limits *limits, int timeout_ms,
              strbuf *err);

#endif
