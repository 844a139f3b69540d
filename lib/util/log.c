/*
 * log.c - syslog/stderr/file logging with sanitized lines; see log.h.
 *
 * Each line is formatted completely into a strbuf first and written with one
 * write() (or one syslog() call), so lines from concurrent processes sharing a
 * log file do not interleave mid-line (O_APPEND makes each write atomic with
 * respect to the file offset).
 */
#include "util/log.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_name[64] = "petrel";
static enum log_dest log_where = LOG_DEST_STDERR;
static int log_fd = -1;
static enum log_level log_min = LOG_LEVEL_INFO;
static bool log_busy; /* guards against recursion through xalloc failure */

void log_init(const char *progname)
{
    const char *slash = strrchr(progname, '/');
    if (slash)
        progname = slash + 1;
    snprintf(log_name, sizeof(log_name), "%s", progname);
}

const char *log_progname(void)
{
    return log_name;
}

void log_close(void)
{
    if (log_where == LOG_DEST_FILE && log_fd >= 0)
        close(log_fd);
    else if (log_where == LOG_DEST_SYSLOG)
        closelog();
    log_fd = -1;
    log_where = LOG_DEST_STDERR;
}

int log_open(enum log_dest dest, const char *path)
{
    int fd = -1;
    if (dest == LOG_DEST_FILE) {
        if (path == NULL || *path == '\0') {
            errno = EINVAL;
            return -1;
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0640);
        if (fd < 0)
            return -1;
    }
    log_close();
    log_where = dest;
    log_fd = fd;
    if (dest == LOG_DEST_SYSLOG)
        openlog(log_name, LOG_PID | LOG_NDELAY, LOG_MAIL);
    return 0;
}

int log_open_spec(const char *spec)
{
    if (strcmp(spec, "syslog") == 0)
        return log_open(LOG_DEST_SYSLOG, NULL);
    if (strcmp(spec, "stderr") == 0)
        return log_open(LOG_DEST_STDERR, NULL);
    if (spec[0] == '/')
        return log_open(LOG_DEST_FILE, spec);
    errno = EINVAL;
    return -1;
}

void log_set_level(enum log_level min)
{
    log_min = min;
}

void log_sanitize(strbuf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\r': strbuf_append(out, "\\r", 2); break;
        case '\n': strbuf_append(out, "\\n", 2); break;
        case '\t': strbuf_append(out, "\\t", 2); break;
        case '\\': strbuf_append(out, "\\\\", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
                strbuf_append(out, esc, 4);
            } else {
                strbuf_appendc(out, (char)c);
            }
        }
    }
}

static const char *level_prefix(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_WARNING: return "warning: ";
    case LOG_LEVEL_ERROR: return "error: ";
    case LOG_LEVEL_FATAL: return "fatal: ";
    case LOG_LEVEL_PANIC: return "panic: ";
    default: return "";
    }
}

static int syslog_priority(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG: return LOG_DEBUG;
    case LOG_LEVEL_INFO: return LOG_INFO;
    case LOG_LEVEL_WARNING: return LOG_WARNING;
    case LOG_LEVEL_ERROR: return LOG_ERR;
    case LOG_LEVEL_FATAL: return LOG_CRIT;
    default: return LOG_ALERT;
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a logging failure */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Emergency path used when we are already inside the logger (an allocation
 * failed while formatting): write the bare format to stderr, no allocation. */
static void log_emergency(enum log_level level, const char *fmt)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s[%ld]: %s%s\n", log_name, (long)getpid(),
                     level_prefix(level), fmt);
    if (n > 0)
        write_all(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void log_emit(enum log_level level, const char *qid, const char *fmt, va_list ap)
{
    if (level < log_min && level < LOG_LEVEL_ERROR)
        return;
    if (log_busy) {
        log_emergency(level, fmt);
        return;
    }
    int saved_errno = errno;
    log_busy = true;

    strbuf raw, line;
    strbuf_init(&raw);
    strbuf_init(&line);
    if (qid != NULL)
        strbuf_printf(&raw, "%s: ", *qid ? qid : "NOQUEUE");
    strbuf_appends(&raw, level_prefix(level));
    errno = saved_errno; /* so %m in fmt reports the caller's errno */
    strbuf_vprintf(&raw, fmt, ap);

    if (log_where == LOG_DEST_SYSLOG) {
        log_sanitize(&line, raw.data, raw.len);
        syslog(syslog_priority(level), "%s", line.data);
    } else {
        if (log_where == LOG_DEST_FILE) {
            struct timeval tv;
            struct tm tm;
            char stamp[40];
            gettimeofday(&tv, NULL);
            gmtime_r(&tv.tv_sec, &tm);
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
            strbuf_printf(&line, "%s.%06ldZ ", stamp, (long)tv.tv_usec);
        }
        strbuf_printf(&line, "%s[%ld]: ", log_name, (long)getpid());
        log_sanitize(&line, raw.data, raw.len);
        strbuf_appendc(&line, '\n');
        write_all(log_where == LOG_DEST_FILE ? log_fd : 2, line.data, line.len);
    }
    strbuf_free(&raw);
    strbuf_free(&line);
    log_busy = false;
    errno = saved_errno;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    log_emit(level, NULL, fmt, ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, NULL, fmt, ap);
    va_end(ap);
}

#define LOG_LEVEL_FN(name, level)                                                                  \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, NULL, fmt, ap);                                                            \
        va_end(ap);                                                                                \
    }
LOG_LEVEL_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_LEVEL_FN(log_info, LOG_LEVEL_INFO)
LOG_LEVEL_FN(log_warning, LOG_LEVEL_WARNING)
LOG_LEVEL_FN(log_error, LOG_LEVEL_ERROR)

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LEVEL_FATAL, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LEVEL_PANIC, NULL, fmt, ap);
    va_end(ap);
    abort();
}

void log_event(const char *queue_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LEVEL_INFO, queue_id ? queue_id : "", fmt, ap);
    va_end(ap);
}
