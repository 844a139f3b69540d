/*
 * maildir.c - Maildir creation and delivery; see maildir.h for the contract.
 *
 * The delivery keeps descriptors for tmp/ and new/ and does every file
 * operation relative to them (openat/linkat/unlinkat), so the checks done at
 * open time (no symlinks, right owner) stay true until the commit. The
 * commit order is the one that makes a crash safe at any point: until the
 * link into new/ the message does not exist for readers; the tmp/ leftovers
 * of a crash are removed by readers' tmp/ cleanup (files older than 36h).
 */
#include "mail/maildir.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h> /* renameat */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef HOST_NAME_MAX
#define HOST_NAME_MAX 255
#endif

/* Unique-name collisions need the same second, microsecond, pid and counter
 * on the same host: a few retries with the next counter are plenty. */
#define MAILDIR_NAME_TRIES 10

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct maildir_delivery {
    char *path;          /* the maildir as given, for messages */
    int tmp_dirfd;
    int new_dirfd;
    int fd;              /* the message file in tmp/; -1 once closed */
    char *name;          /* its base name in tmp/ */
    bool tmp_exists;     /* tmp/<name> still needs removing on failure */
    bool failed;
    strbuf error;        /* first failure, repeated by later calls */
    uint64_t size;       /* bytes written */
    uint64_t bare_lf;    /* LFs not preceded by CR: W= adds one per LF */
    char last;           /* last byte written, to spot CRLF across writes */
    struct crlf_filter filter;
    strbuf conv;         /* scratch buffer for the CRLF filter */
};

static unsigned long name_counter; /* the Q<n> part: unique within a process */

static void set_err(strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(strbuf *err, const char *fmt, ...)
{
    va_list ap;
    strbuf_reset(err);
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
}

/* ---- the CRLF filter ---- */

void crlf_filter_init(struct crlf_filter *f)
{
    f->cr_pending = false;
}

void crlf_filter_feed(struct crlf_filter *f, const void *in, size_t n, strbuf *out)
{
    const char *p = in;
    size_t i = 0;

    if (n == 0)
        return;
    if (f->cr_pending) {
        /* The held CR either completes a CRLF (drop it) or was bare. */
        if (p[0] != '\n')
            strbuf_appendc(out, '\r');
        f->cr_pending = false;
    }
    strbuf_reserve(out, n);
    while (i < n) {
        const char *cr = memchr(p + i, '\r', n - i);
        if (cr == NULL) {
            strbuf_append(out, p + i, n - i);
            break;
        }
        size_t at = (size_t)(cr - p);
        strbuf_append(out, p + i, at - i);
        if (at + 1 == n) {
            f->cr_pending = true; /* decide when the next chunk arrives */
            break;
        }
        if (p[at + 1] != '\n')
            strbuf_appendc(out, '\r');
        i = at + 1; /* the LF (if any) is copied with the next span */
    }
}

void crlf_filter_finish(struct crlf_filter *f, strbuf *out)
{
    if (f->cr_pending)
        strbuf_appendc(out, '\r');
    f->cr_pending = false;
}

/* ---- directories ---- */

/* Opens name (relative to at) as a directory without following a symlink;
 * display is the path shown in messages. Returns the fd or -1. */
static int open_dir(int at, const char *name, const char *display, strbuf *err)
{
    struct stat st;
    int fd = openat(at, name, DIR_FLAGS);
    int saved;

    if (fd >= 0)
        return fd;
    saved = errno;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
            set_err(err, "refusing to deliver to %s: it is a symbolic link", display);
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            set_err(err, "cannot use %s as a maildir directory: it is not a directory",
                    display);
            return -1;
        }
    }
    set_err(err, "cannot open directory %s: %s", display, strerror(saved));
    return -1;
}

/* Delivery runs as the mailbox owner, so a directory owned by anyone else
 * is someone else's (or a trap): refuse it. */
static int check_owner(int fd, const char *display, strbuf *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, "cannot stat %s: %s", display, strerror(errno));
        return -1;
    }
    if (st.st_uid != geteuid()) {
        set_err(err, "refusing to deliver to %s: owned by uid %lu, delivering as uid %lu",
                display, (unsigned long)st.st_uid, (unsigned long)geteuid());
        return -1;
    }
    return 0;
}

static int open_subdir(int dirfd, const char *path, const char *sub, bool check, strbuf *err)
{
    strbuf display;
    int fd;

    strbuf_init(&display);
    strbuf_printf(&display, "%s/%s", path, sub);
    fd = open_dir(dirfd, sub, display.data, err);
    if (fd >= 0 && check && check_owner(fd, display.data, err) != 0) {
        close(fd);
        fd = -1;
    }
    strbuf_free(&display);
    return fd;
}

int maildir_create(const char *path, mode_t mode, strbuf *err)
{
    static const char *const subdirs[] = { "tmp", "new", "cur" };
    bool created = false;
    int dirfd;

    if (path[0] == '\0') {
        set_err(err, "cannot create maildir: empty path");
        return -1;
    }
    if (mkdir(path, mode) == 0) {
        created = true;
    } else if (errno != EEXIST) {
        set_err(err, "cannot create maildir %s: %s%s", path, strerror(errno),
                errno == ENOENT ? " (its parent directory must exist)" : "");
        return -1;
    }
    if ((dirfd = open_dir(AT_FDCWD, path, path, err)) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        int fd;
        if (mkdirat(dirfd, subdirs[i], mode) == 0) {
            created = true;
        } else if (errno != EEXIST) {
            set_err(err, "cannot create maildir directory %s/%s: %s", path, subdirs[i],
                    strerror(errno));
            close(dirfd);
            return -1;
        }
        /* Whatever was there must be a real directory, not a symlink. */
        if ((fd = open_subdir(dirfd, path, subdirs[i], false, err)) < 0) {
            close(dirfd);
            return -1;
        }
        close(fd);
    }
    /* Make the new entries durable before anyone delivers into them. */
    if (created && fsync(dirfd) != 0) {
        set_err(err, "cannot sync maildir %s: %s", path, strerror(errno));
        close(dirfd);
        return -1;
    }
    close(dirfd);
    return 0;
}

/* ---- delivery ---- */

/* Appends the host name with everything outside [A-Za-z0-9.-_] as \ooo, so
 * the name can never hold '/', ':' (the flags separator) or ',' (Dovecot's
 * field separator). */
static void append_hostname(strbuf *out)
{
    char host[HOST_NAME_MAX + 1];

    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0'; /* gethostname may not terminate on truncation */
    if (host[0] == '\0') {
        strbuf_appends(out, "localhost");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)host; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '-' || *p == '_')
            strbuf_appendc(out, (char)*p);
        else
            strbuf_printf(out, "\\%03o", *p);
    }
}

static void make_name(strbuf *out)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    strbuf_reset(out);
    strbuf_printf(out, "%lld.M%ldP%ldQ%lu.", (long long)ts.tv_sec, (long)(ts.tv_nsec / 1000),
                  (long)getpid(), ++name_counter);
    append_hostname(out);
}

static void delivery_free(struct maildir_delivery *d)
{
    if (d->fd >= 0)
        close(d->fd);
    if (d->tmp_dirfd >= 0)
        close(d->tmp_dirfd);
    if (d->new_dirfd >= 0)
        close(d->new_dirfd);
    free(d->path);
    free(d->name);
    strbuf_free(&d->error);
    strbuf_free(&d->conv);
    free(d);
}

/* Removes the tmp file if it is still there. */
static void remove_tmp(struct maildir_delivery *d)
{
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
    if (d->tmp_exists) {
        if (unlinkat(d->tmp_dirfd, d->name, 0) != 0 && errno != ENOENT)
            log_warning("cannot remove %s/tmp/%s: %s", d->path, d->name, strerror(errno));
        d->tmp_exists = false;
    }
}

/* Records the first failure, cleans up tmp/ and copies the message to err. */
static int delivery_fail(struct maildir_delivery *d, strbuf *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int delivery_fail(struct maildir_delivery *d, strbuf *err, const char *fmt, ...)
{
    va_list ap;
    strbuf_reset(&d->error);
    va_start(ap, fmt);
    strbuf_vprintf(&d->error, fmt, ap);
    va_end(ap);
    d->failed = true;
    remove_tmp(d);
    strbuf_reset(err);
    strbuf_append_sb(err, &d->error);
    return -1;
}

int maildir_open(const char *path, struct maildir_delivery **d_r, strbuf *err)
{
    struct maildir_delivery *d;
    strbuf name;
    int dirfd, saved = 0;

    *d_r = NULL;
    if (path[0] == '\0') {
        set_err(err, "cannot deliver to maildir: empty path");
        return -1;
    }
    if ((dirfd = open_dir(AT_FDCWD, path, path, err)) < 0)
        return -1;
    if (check_owner(dirfd, path, err) != 0) {
        close(dirfd);
        return -1;
    }
    d = xcalloc(1, sizeof(*d));
    d->fd = d->tmp_dirfd = d->new_dirfd = -1;
    d->path = xstrdup(path);
    strbuf_init(&d->error);
    strbuf_init(&d->conv);
    crlf_filter_init(&d->filter);
    d->tmp_dirfd = open_subdir(dirfd, path, "tmp", true, err);
    if (d->tmp_dirfd >= 0)
        d->new_dirfd = open_subdir(dirfd, path, "new", true, err);
    close(dirfd);
    if (d->new_dirfd < 0) {
        delivery_free(d);
        return -1;
    }

    strbuf_init(&name);
    for (int tries = 0; tries < MAILDIR_NAME_TRIES; tries++) {
        make_name(&name);
        d->fd = openat(d->tmp_dirfd, name.data,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (d->fd >= 0 || errno != EEXIST)
            break;
        saved = EEXIST;
    }
    if (d->fd < 0) {
        if (errno != EEXIST)
            saved = errno;
        set_err(err, "cannot create a file in %s/tmp: %s", path, strerror(saved));
        strbuf_free(&name);
        delivery_free(d);
        return -1;
    }
    d->name = strbuf_detach(&name, NULL);
    d->tmp_exists = true;
    *d_r = d;
    return 0;
}

/* Writes all of p[0..n) to the file, counting bytes and bare LFs. */
static int write_raw(struct maildir_delivery *d, const char *p, size_t n, strbuf *err)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i > 0 ? p[i - 1] : d->last) != '\r')
            d->bare_lf++;
    }
    if (n > 0)
        d->last = p[n - 1];
    while (n > 0) {
        ssize_t w = write(d->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return delivery_fail(d, err, "cannot write message to %s/tmp/%s: %s", d->path,
                                 d->name, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        d->size += (uint64_t)w;
    }
    return 0;
}

static int check_usable(struct maildir_delivery *d, strbuf *err)
{
    if (!d->failed)
        return 0;
    strbuf_reset(err);
    strbuf_append_sb(err, &d->error);
    return -1;
}

int maildir_write(struct maildir_delivery *d, const void *p, size_t n, strbuf *err)
{
    if (check_usable(d, err) != 0)
        return -1;
    if (d->filter.cr_pending) {
        /* A raw write after converted text: the held CR was bare. */
        d->filter.cr_pending = false;
        if (write_raw(d, "\r", 1, err) != 0)
            return -1;
    }
    return write_raw(d, p, n, err);
}

int maildir_write_crlf_to_lf(struct maildir_delivery *d, const void *p, size_t n, strbuf *err)
{
    if (check_usable(d, err) != 0)
        return -1;
    strbuf_reset(&d->conv);
    crlf_filter_feed(&d->filter, p, n, &d->conv);
    return write_raw(d, d->conv.data, d->conv.len, err);
}

/* Moves tmp/<name> to new/<final>: link where possible (it never replaces
 * an existing file), rename where the filesystem has no hard links. */
static int move_to_new(struct maildir_delivery *d, const char *final, strbuf *err)
{
    struct stat st;

    if (linkat(d->tmp_dirfd, d->name, d->new_dirfd, final, 0) == 0) {
        if (unlinkat(d->tmp_dirfd, d->name, 0) != 0)
            log_warning("delivered to %s/new/%s but cannot remove %s/tmp/%s: %s", d->path,
                        final, d->path, d->name, strerror(errno));
        d->tmp_exists = false;
        return 0;
    }
    if (errno != EPERM && errno != ENOSYS && errno != EOPNOTSUPP && errno != ENOTSUP)
        return delivery_fail(d, err, "cannot link %s/tmp/%s to %s/new/%s: %s", d->path,
                             d->name, d->path, final, strerror(errno));
    /* rename() would replace an existing file; names are unique by
     * construction, so this check only guards against the impossible. */
    if (fstatat(d->new_dirfd, final, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        return delivery_fail(d, err, "cannot move %s/tmp/%s to %s/new/%s: target exists",
                             d->path, d->name, d->path, final);
    if (renameat(d->tmp_dirfd, d->name, d->new_dirfd, final) != 0)
        return delivery_fail(d, err, "cannot rename %s/tmp/%s to %s/new/%s: %s", d->path,
                             d->name, d->path, final, strerror(errno));
    d->tmp_exists = false;
    return 0;
}

int maildir_commit(struct maildir_delivery **dp, char **final_path_r, strbuf *err)
{
    struct maildir_delivery *d = *dp;
    strbuf final;
    int rc = -1;

    *dp = NULL;
    if (final_path_r != NULL)
        *final_path_r = NULL;
    strbuf_init(&final);
    if (check_usable(d, err) != 0)
        goto out;
    /* 1. A CR held by the filter at the very end was a bare CR. */
    if (d->filter.cr_pending) {
        d->filter.cr_pending = false;
        if (write_raw(d, "\r", 1, err) != 0)
            goto out;
    }
    /* 2. The data must be on disk before the name in new/ promises it. */
    if (fsync(d->fd) != 0) {
        delivery_fail(d, err, "cannot sync %s/tmp/%s: %s", d->path, d->name, strerror(errno));
        goto out;
    }
    /* 3. close() can report a deferred write error (NFS): check it. */
    {
        int fd = d->fd;
        d->fd = -1;
        if (close(fd) != 0) {
            delivery_fail(d, err, "cannot close %s/tmp/%s: %s", d->path, d->name,
                          strerror(errno));
            goto out;
        }
    }
    /* 4. Link into new/ and drop the tmp name. */
    strbuf_printf(&final, "%s,S=%llu,W=%llu", d->name, (unsigned long long)d->size,
                  (unsigned long long)(d->size + d->bare_lf));
    if (move_to_new(d, final.data, err) != 0)
        goto out;
    /* 5. The new directory entry must be durable before we report success;
     *    if it cannot be synced, take the message back so that the retry
     *    which the failure causes does not duplicate it. */
    if (fsync(d->new_dirfd) != 0) {
        set_err(err, "cannot sync directory %s/new: %s", d->path, strerror(errno));
        if (unlinkat(d->new_dirfd, final.data, 0) != 0)
            log_warning("cannot remove %s/new/%s after a failed sync: %s", d->path,
                        final.data, strerror(errno));
        goto out;
    }
    if (final_path_r != NULL) {
        strbuf path;
        strbuf_init(&path);
        strbuf_printf(&path, "%s/new/%s", d->path, final.data);
        *final_path_r = strbuf_detach(&path, NULL);
    }
    rc = 0;
out:
    if (rc != 0)
        remove_tmp(d);
    strbuf_free(&final);
    delivery_free(d);
    return rc;
}

void maildir_abort(struct maildir_delivery **dp)
{
    if (*dp == NULL)
        return;
    remove_tmp(*dp);
    delivery_free(*dp);
    *dp = NULL;
}
