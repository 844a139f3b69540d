/*
 * config_read.c - reads a petrel.conf file into a config (see config.h).
 *
 * The file is read whole (bounded by CONFIG_MAX_FILE), then cut into
 * physical lines, each checked before anything else looks at it: length,
 * NUL bytes, control characters, UTF-8. Physical lines are joined into
 * logical lines as in Postfix main.cf: a line starting with whitespace
 * continues the previous one (joined with one space); blank lines and lines
 * whose first non-blank character is '#' are skipped and do not end a
 * logical line. A bad physical line drops the whole logical line it belongs
 * to, so a half-read value never takes effect.
 */
#include "util/config.h"
#include "util/config_int.h"
#include "util/utf8.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum logical_state {
    LOGICAL_NONE,      /* no logical line open */
    LOGICAL_ACTIVE,    /* collecting a `name = value` line */
    LOGICAL_DISCARDED, /* the open logical line had an error: swallow continuations */
};

struct reader {
    struct config *cfg;
    const char *file;
    struct strbuf *errors;
    int nerr;
    strbuf logical;
    int logical_line;
    enum logical_state state;
};

static void line_error(struct reader *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void line_error(struct reader *r, int line, const char *fmt, ...)
{
    r->nerr++;
    if (r->errors == NULL)
        return;
    strbuf_printf(r->errors, "%s:%d: ", r->file, line);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(r->errors, fmt, ap);
    va_end(ap);
    strbuf_appendc(r->errors, '\n');
}

/* Checks one physical line (without its line end); reports and returns
 * false if it cannot be used. */
static bool check_line(struct reader *r, int lineno, const char *s, size_t n)
{
    if (n > CONFIG_MAX_LINE) {
        line_error(r, lineno, "line is longer than %d bytes", CONFIG_MAX_LINE);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0') {
            line_error(r, lineno, "line contains a NUL byte (column %zu)", i + 1);
            return false;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            line_error(r, lineno, "line contains the control character 0x%02x (column %zu)", c,
                       i + 1);
            return false;
        }
    }
    size_t bad = utf8_invalid_at(s, n);
    if (bad < n) {
        line_error(r, lineno, "line is not valid UTF-8 (byte 0x%02x at column %zu)",
                   (unsigned char)s[bad], bad + 1);
        return false;
    }
    return true;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Applies a complete logical line: `name = value`. */
static void parse_assignment(struct reader *r, const char *s, size_t len, int lineno)
{
    size_t i = 0;
    while (i < len && config_name_char(s[i]))
        i++;
    if (i < len && !blank(s[i]) && s[i] != '=') {
        size_t word = i;
        while (word < len && !blank(s[word]) && s[word] != '=')
            word++;
        strbuf q;
        strbuf_init(&q);
        strbuf_append(&q, s, word);
        strbuf text;
        strbuf_init(&text);
        config_quote(&text, q.data);
        line_error(r, lineno,
                   "invalid parameter name %s (use letters, digits and '_'; "
                   "expected 'name = value')",
                   text.data);
        strbuf_free(&q);
        strbuf_free(&text);
        return;
    }
    if (i == 0) {
        line_error(r, lineno, "missing parameter name before '=' (expected 'name = value')");
        return;
    }
    if (i > CONFIG_MAX_NAME) {
        line_error(r, lineno, "parameter name is longer than %d bytes", CONFIG_MAX_NAME);
        return;
    }
    strbuf name;
    strbuf_init(&name);
    strbuf_append(&name, s, i);
    while (i < len && blank(s[i]))
        i++;
    if (i == len || s[i] != '=') {
        line_error(r, lineno, "missing '=' after parameter name '%s' (expected 'name = value')",
                   name.data);
        strbuf_free(&name);
        return;
    }
    i++;
    while (i < len && blank(s[i]))
        i++;
    strbuf value;
    strbuf_init(&value);
    strbuf_append(&value, s + i, len - i);
    if (config_set(r->cfg, name.data, value.data, r->file, lineno) < 0)
        line_error(r, lineno, "cannot set parameter '%s'", name.data); /* checked above */
    strbuf_free(&name);
    strbuf_free(&value);
}

static void finish_logical(struct reader *r)
{
    if (r->state == LOGICAL_ACTIVE)
        parse_assignment(r, r->logical.data, r->logical.len, r->logical_line);
    r->state = LOGICAL_NONE;
    strbuf_reset(&r->logical);
}

static void process_line(struct reader *r, int lineno, const char *s, size_t n)
{
    bool continuation = n > 0 && blank(s[0]);
    if (!check_line(r, lineno, s, n)) {
        /* A bad first line drops its continuations; a bad continuation
         * drops the line it continues. */
        if (!continuation)
            finish_logical(r);
        r->state = LOGICAL_DISCARDED;
        return;
    }
    size_t start = 0;
    while (start < n && blank(s[start]))
        start++;
    if (start == n || s[start] == '#')
        return; /* blank or comment: ignored, even between continuation lines */
    size_t end = n;
    while (end > start && blank(s[end - 1]))
        end--;
    if (!continuation) {
        finish_logical(r);
        strbuf_set(&r->logical, s, end);
        r->logical_line = lineno;
        r->state = LOGICAL_ACTIVE;
        return;
    }
    switch (r->state) {
    case LOGICAL_NONE:
        line_error(r, lineno,
                   "line starts with whitespace but there is no 'name = value' line before it "
                   "to continue (remove the leading whitespace)");
        r->state = LOGICAL_DISCARDED;
        return;
    case LOGICAL_DISCARDED:
        return;
    case LOGICAL_ACTIVE:
        if (end - start + 1 > (size_t)CONFIG_MAX_LINE - r->logical.len) {
            line_error(r, r->logical_line,
                       "line with its continuation lines is longer than %d bytes",
                       CONFIG_MAX_LINE);
            r->state = LOGICAL_DISCARDED;
            return;
        }
        strbuf_appendc(&r->logical, ' ');
        strbuf_append(&r->logical, s + start, end - start);
        return;
    }
}

int config_load_string(struct config *cfg, const char *file, const char *text, size_t len,
                       struct strbuf *errors)
{
    struct reader r = {.cfg = cfg, .file = file != NULL ? file : "(string)", .errors = errors};
    strbuf_init(&r.logical);
    const char *p = text, *end = text + len;
    int lineno = 0;
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        const char *next = nl != NULL ? nl + 1 : end;
        if (n > 0 && p[n - 1] == '\r')
            n--; /* CRLF line ends from a Windows editor */
        process_line(&r, lineno, p, n);
        p = next;
    }
    finish_logical(&r);
    strbuf_free(&r.logical);
    return r.nerr;
}

static int file_error(struct strbuf *errors, const char *path, const char *what, int err)
{
    if (errors != NULL) {
        if (err != 0)
            strbuf_printf(errors, "%s: %s: %s\n", path, what, strerror(err));
        else
            strbuf_printf(errors, "%s: %s\n", path, what);
    }
    return 1;
}

int config_load_file(struct config *cfg, const char *path, struct strbuf *errors)
{
    /* O_NONBLOCK: opening a FIFO by mistake must not hang `petrel check`. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return file_error(errors, path, "cannot open", errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return file_error(errors, path, "cannot stat", err);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return file_error(errors, path, "not a regular file", 0);
    }
    strbuf data;
    strbuf_init(&data);
    for (;;) {
        if (data.len > CONFIG_MAX_FILE) {
            close(fd);
            strbuf_free(&data);
            char what[64];
            snprintf(what, sizeof(what), "file is larger than %d bytes", CONFIG_MAX_FILE);
            return file_error(errors, path, what, 0);
        }
        strbuf_reserve(&data, 65536);
        ssize_t got = read(fd, data.data + data.len, data.cap - data.len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int err = errno;
            close(fd);
            strbuf_free(&data);
            return file_error(errors, path, "read error", err);
        }
        if (got == 0)
            break;
        data.len += (size_t)got;
        data.data[data.len] = '\0';
    }
    close(fd);
    int n = config_load_string(cfg, path, data.data, data.len, errors);
    strbuf_free(&data);
    return n;
}
