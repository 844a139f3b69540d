/*
 * forward.c - reading ~/.forward and :include: files under the ownership
 * rules and splitting them into targets; see forward.h. Target syntax is
 * aliases_parse_targets(), so a .forward line means what the same text
 * means in /etc/aliases.
 */
#include "mail/forward.h"
#include "mail/aliases.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum forward_read_status forward_read(const char *path, uid_t owner, strbuf *out, strbuf *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return FORWARD_READ_ABSENT;
        if (err) {
            if (e == ELOOP)
                strbuf_printf(err, "%s: is a symbolic link: ignored", path);
            else
                strbuf_printf(err, "%s: cannot open: %s", path, strerror(e));
        }
        return (e == ELOOP || e == EACCES || e == EPERM) ? FORWARD_READ_UNSAFE
                                                         : FORWARD_READ_ERROR;
    }
    struct stat st;
    enum forward_read_status rc = FORWARD_READ_OK;
    if (fstat(fd, &st) < 0) {
        if (err)
            strbuf_printf(err, "%s: fstat: %s", path, strerror(errno));
        rc = FORWARD_READ_ERROR;
    } else if (!S_ISREG(st.st_mode)) {
        if (err)
            strbuf_printf(err, "%s: not a regular file: ignored", path);
        rc = FORWARD_READ_UNSAFE;
    } else if (st.st_nlink != 1) {
        if (err)
            strbuf_printf(err, "%s: has %lu hard links: ignored", path,
                          (unsigned long)st.st_nlink);
        rc = FORWARD_READ_UNSAFE;
    } else if (st.st_uid != owner && st.st_uid != 0) {
        if (err)
            strbuf_printf(err, "%s: owned by uid %lu, not by uid %lu or root: ignored", path,
                          (unsigned long)st.st_uid, (unsigned long)owner);
        rc = FORWARD_READ_UNSAFE;
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        if (err)
            strbuf_printf(err, "%s: writable by group or others (mode %03o): ignored", path,
                          (unsigned)(st.st_mode & 0777));
        rc = FORWARD_READ_UNSAFE;
    } else if (st.st_size > FORWARD_MAX_SIZE) {
        if (err)
            strbuf_printf(err, "%s: larger than %d bytes: ignored", path, FORWARD_MAX_SIZE);
        rc = FORWARD_READ_UNSAFE;
    }
    if (rc != FORWARD_READ_OK) {
        close(fd);
        return rc;
    }
    /* Read to the end, but never more than the limit (the file may grow). */
    char buf[8192];
    size_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (err)
                strbuf_printf(err, "%s: read: %s", path, strerror(errno));
            rc = FORWARD_READ_ERROR;
            break;
        }
        if (r == 0)
            break;
        total += (size_t)r;
        if (total > FORWARD_MAX_SIZE) {
            if (err)
                strbuf_printf(err, "%s: larger than %d bytes: ignored", path, FORWARD_MAX_SIZE);
            rc = FORWARD_READ_UNSAFE;
            break;
        }
        strbuf_append(out, buf, (size_t)r);
    }
    close(fd);
    return rc;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int forward_parse(const char *text, size_t len, struct alias_target **list_r, size_t *n_r,
                  strbuf *err)
{
    struct alias_target *all = NULL;
    size_t n = 0, cap = 0;
    *list_r = NULL;
    *n_r = 0;
    if (memchr(text, '\0', len) != NULL) {
        size_t line = 1;
        for (const char *p = text; *p; p++)
            line += *p == '\n';
        if (err)
            strbuf_printf(err, "line %zu: NUL byte", line);
        return -1;
    }
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t a = pos, b = end;
        pos = nl ? end + 1 : len;
        while (a < b && blank(text[a]))
            a++;
        while (b > a && blank(text[b - 1]))
            b--;
        if (a == b || text[a] == '#')
            continue;
        /* One trailing comma (a list continued on the next line) is fine. */
        if (text[b - 1] == ',') {
            b--;
            while (b > a && blank(text[b - 1]))
                b--;
            if (a == b)
                continue;
        }
        struct alias_target *list;
        size_t cnt;
        strbuf why;
        strbuf_init(&why);
        if (aliases_parse_targets(text + a, b - a, &list, &cnt, &why) < 0) {
            if (err)
                strbuf_printf(err, "line %zu: %s", lineno, why.data);
            strbuf_free(&why);
            aliases_free_targets(all, n);
            return -1;
        }
        strbuf_free(&why);
        if (n + cnt > FORWARD_MAX_TARGETS) {
            if (err)
                strbuf_printf(err, "line %zu: more than %d targets", lineno, FORWARD_MAX_TARGETS);
            aliases_free_targets(list, cnt);
            aliases_free_targets(all, n);
            return -1;
        }
        if (n + cnt > cap) {
            cap = (n + cnt) * 2;
            all = xreallocarray(all, cap, sizeof(all[0]));
        }
        memcpy(all + n, list, cnt * sizeof(list[0]));
        n += cnt;
        free(list); /* the texts moved into all */
    }
    *list_r = all;
    *n_r = n;
    return 0;
}
