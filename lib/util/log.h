/*
 * log.h - one logging interface for every Petrel program.
 *
 * Lines go to syslog (facility mail, the default for daemons), to stderr, or
 * appended to a file, each carrying the program name and pid. Messages about
 * a message in the queue use log_event(), which prefixes the queue id the way
 * Postfix does ("4Hx...: to=<bob@b.org>, status=sent (250 ok)") so existing
 * log tools can parse them.
 *
 * The formatted line is sanitized before it is written: CR, LF, ESC and other
 * control bytes become visible escapes, so client data can never forge a log
 * line or drive a terminal. Client data must still only ever be an argument,
 * never the format string.
 *
 * Two kinds of fatal, as in Postfix: log_fatal() is for a broken environment
 * (bad config, missing directory) and exits; log_panic() is for a broken
 * invariant of our own and aborts so that a core can be examined.
 */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_FATAL,
    LOG_LEVEL_PANIC,
};

enum log_dest {
    LOG_DEST_STDERR,
    LOG_DEST_SYSLOG,
    LOG_DEST_FILE,
};

/* Sets the program name shown in every line (a copy is kept). Logging goes to
 * stderr until log_open() says otherwise. */
void log_init(const char *progname);
const char *log_progname(void);

/* Chooses the destination. For LOG_DEST_FILE, path is opened for append
 * (created 0640); returns -1 with errno set if it cannot be opened, in which
 * case the previous destination stays in effect. */
int log_open(enum log_dest dest, const char *path);
/* Parses "syslog", "stderr" or an absolute file path (the log_destination
 * setting) and opens it; returns -1 on an unknown word or open failure. */
int log_open_spec(const char *spec);
/* Messages below this level are dropped (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level min);
/* Closes a log file or syslog; later messages go to stderr. */
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An event about one queued message: "<queue_id>: <message>" at info level.
 * A NULL or empty queue_id logs "NOQUEUE: ..." as Postfix does for mail that
 * was refused before it got an id. */
void log_event(const char *queue_id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s[0..n) to out with control bytes, DEL and backslash escaped
 * (\r, \n, \t, \\, \xHH). Used for every line written and available to
 * callers that build replies or records from client text. */
struct strbuf;
void log_sanitize(struct strbuf *out, const char *s, size_t n);

#endif
