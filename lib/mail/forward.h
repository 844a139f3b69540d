/*
 * forward.h - ~/.forward and :include: files: reading them safely and
 * splitting them into targets.
 *
 * Both are lists of delivery targets in the syntax of an alias value
 * (aliases.h: addresses, "\user", "/file", "|command", ":include:/path"),
 * separated by commas and/or line breaks; lines whose first non-blank
 * character is '#' and blank lines are ignored. local-delivery reads them
 * in a child process that already runs as the user whose privileges apply
 * (the recipient for .forward, default_privs for includes from aliases),
 * so the kernel's permission checks are the user's; forward_read() adds
 * the ownership rules (BAD-INPUT.md row 8): the file must not be a
 * symlink, must be a regular file with one link, owned by the expected
 * user or root, and not writable by group or others — otherwise anyone who
 * could write it could make the recipient run commands.
 */
#ifndef PETREL_FORWARD_H
#define PETREL_FORWARD_H

#include <stddef.h>
#include <sys/types.h>

#include "mail/aliases.h"

struct strbuf;

/* Largest .forward or include file read. */
#define FORWARD_MAX_SIZE (64 * 1024)
/* Most targets in one file. */
#define FORWARD_MAX_TARGETS 1000

enum forward_read_status {
    FORWARD_READ_OK = 0,      /* contents appended to out */
    FORWARD_READ_ABSENT = 1,  /* no such file (or no home): not an error */
    FORWARD_READ_UNSAFE = 2,  /* exists but fails a rule: ignore it, warn (err) */
    FORWARD_READ_ERROR = -1,  /* could not be read (I/O...): try again later */
};

/* forward_read: opens path (O_NOFOLLOW, O_NONBLOCK so a FIFO cannot block)
 * and appends its contents to out when it is a regular file with one link,
 * owned by `owner` or root, with no group/other write bit, and at most
 * FORWARD_MAX_SIZE bytes. ENOENT/ENOTDIR give ABSENT; a symlink, a wrong
 * type, owner or mode, a permission error or a too large file give UNSAFE;
 * other failures ERROR. err gets one message for UNSAFE and ERROR. */
enum forward_read_status forward_read(const char *path, uid_t owner, struct strbuf *out,
                                      struct strbuf *err);

/* forward_parse: splits text[0..len) into targets (see above). Returns 0
 * with a new array in *list_r (free with aliases_free_targets) and its
 * length in *n_r — 0 targets (an empty file) is valid and leaves *list_r
 * NULL — or -1 with "line N: <problem>" in err: a NUL byte, invalid
 * target syntax (as aliases_parse_targets says), more than
 * FORWARD_MAX_TARGETS targets. CRLF line ends are accepted. */
int forward_parse(const char *text, size_t len, struct alias_target **list_r, size_t *n_r,
                  struct strbuf *err);

#endif
