/*
 * queue_file.c - queue file pieces shared by readers and writers: value and
 * status checks, the queue directory tree, quarantine into corrupt/, and the
 * low-level I/O loops. The writer lives in queue_file_write.c, the reader in
 * queue_file_read.c; the format is described in docs/queue.md.
 */
#include "mail/queue_file.h"
#include "mail/queue_layout.h"
#include "mail/queue_file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool queue_value_ok(const char *s, size_t n)
{
    if (n > QUEUE_MAX_VALUE)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
            return false;
    }
    return true;
}

bool queue_rcpt_status_valid(int status)
{
    return status == QUEUE_RCPT_PENDING || status == QUEUE_RCPT_DEFERRED ||
           status == QUEUE_RCPT_DONE || status == QUEUE_RCPT_BOUNCED;
}

bool queue_rcpt_status_final(enum queue_rcpt_status status)
{
    return status == QUEUE_RCPT_DONE || status == QUEUE_RCPT_BOUNCED;
}

const char *queue_rcpt_status_name(int status)
{
    switch (status) {
    case QUEUE_RCPT_PENDING: return "pending";
    case QUEUE_RCPT_DEFERRED: return "deferred";
    case QUEUE_RCPT_DONE: return "done";
    case QUEUE_RCPT_BOUNCED: return "bounced";
    default: return "invalid";
    }
}

bool queue_notify_valid(unsigned notify)
{
    const unsigned all = QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE |
                         QUEUE_NOTIFY_DELAY;
    if (notify & ~all)
        return false;
    if ((notify & QUEUE_NOTIFY_NEVER) && notify != QUEUE_NOTIFY_NEVER)
        return false;
    return true;
}

/* ---- low-level I/O ---- */

int qf_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t r = write(fd, c, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) { /* should not happen for regular files; do not spin */
            errno = EIO;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

int qf_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *c = p;
    while (n > 0) {
        ssize_t r = pwrite(fd, c, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

ssize_t qf_pread_full(int fd, void *p, size_t n, off_t off)
{
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, c + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int qf_fsync_fd(int fd)
{
    while (fsync(fd) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* ---- the directory tree ---- */

/* The tree and its modes are in one table, lib/mail/queue_layout.c; this
 * creates it owned by the caller (tests, tools) and sets the modes of the
 * table on what exists; symlinks in the tree are refused. */
int queue_dirs_create(const char *queue_dir, strbuf *err)
{
    struct queue_owners self;
    queue_layout_owners_self(&self);
    strbuf problems;
    strbuf_init(&problems);
    int n = queue_layout_apply(queue_dir, &self, QUEUE_LAYOUT_FIX, &problems);
    if (n > 0) {
        strbuf_rtrim(&problems);
        strbuf_reset(err);
        strbuf_printf(err, "queue directory %s", problems.data);
    }
    strbuf_free(&problems);
    return n > 0 ? -1 : 0;
}

/* ---- quarantine ---- */

static const char *const live_subdirs[] = {"incoming", "active", "deferred", "hold", "maildrop"};

static bool is_live_subdir(const char *s)
{
    for (size_t i = 0; i < sizeof(live_subdirs) / sizeof(live_subdirs[0]); i++) {
        if (strcmp(s, live_subdirs[i]) == 0)
            return true;
    }
    return false;
}

static int sync_dir_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = qf_fsync_fd(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Returns 0, -1 with err set, or 1 when the source does not exist (err set
 * too, for the caller that gives up). */
static int quarantine_one(const char *queue_dir, const char *subdir, const char *id,
                          strbuf *err)
{
    strbuf from, to, dir;
    strbuf_init(&from);
    strbuf_init(&to);
    strbuf_init(&dir);
    strbuf_printf(&from, "%s/%s/%s", queue_dir, subdir, id);
    strbuf_printf(&to, "%s/corrupt/%s", queue_dir, id);
    int rc = 0;
    if (rename(from.data, to.data) != 0) {
        int e = errno;
        strbuf_reset(err);
        strbuf_printf(err, "cannot move queue file %s to %s: %s", from.data, to.data,
                      strerror(e));
        rc = e == ENOENT ? 1 : -1;
        goto out;
    }
    strbuf_printf(&dir, "%s/corrupt", queue_dir);
    if (sync_dir_path(dir.data) != 0) {
        strbuf_reset(err);
        strbuf_printf(err, "moved queue file %s to %s, but fsync of %s failed: %s", from.data,
                      to.data, dir.data, strerror(errno));
        rc = -1;
        goto out;
    }
    strbuf_reset(&dir);
    strbuf_printf(&dir, "%s/%s", queue_dir, subdir);
    if (sync_dir_path(dir.data) != 0) {
        strbuf_reset(err);
        strbuf_printf(err, "moved queue file %s to %s, but fsync of %s failed: %s", from.data,
                      to.data, dir.data, strerror(errno));
        rc = -1;
    }
out:
    strbuf_free(&from);
    strbuf_free(&to);
    strbuf_free(&dir);
    return rc;
}

int queue_file_quarantine_from(const char *queue_dir, const char *subdir, const char *id,
                               strbuf *err)
{
    if (!queue_id_valid(id)) {
        strbuf_reset(err);
        strbuf_appends(err, "cannot quarantine: not a valid queue id");
        return -1;
    }
    if (subdir == NULL || !is_live_subdir(subdir)) {
        strbuf_reset(err);
        strbuf_appends(err, "cannot quarantine: source must be incoming, active, deferred or hold");
        return -1;
    }
    return quarantine_one(queue_dir, subdir, id, err) == 0 ? 0 : -1;
}

int queue_file_quarantine(const char *queue_dir, const char *id, strbuf *err)
{
    if (!queue_id_valid(id)) {
        strbuf_reset(err);
        strbuf_appends(err, "cannot quarantine: not a valid queue id");
        return -1;
    }
    for (size_t i = 0; i < sizeof(live_subdirs) / sizeof(live_subdirs[0]); i++) {
        int rc = quarantine_one(queue_dir, live_subdirs[i], id, err);
        if (rc <= 0)
            return rc;
    }
    strbuf_reset(err);
    strbuf_printf(err, "cannot quarantine queue file %s: not found in %s/incoming, active, "
                  "deferred or hold", id, queue_dir);
    return -1;
}
