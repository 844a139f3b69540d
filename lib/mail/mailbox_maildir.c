/*
 * mailbox_maildir.c - the Maildir back end of the mailbox reader: lists
 * cur/ (after moving new/ there), gives each message its unique id and
 * size as sent, opens messages for the reader, and applies deletions.
 *
 * Everything works relative to descriptors of the Maildir, cur/ and new/
 * opened with O_NOFOLLOW|O_DIRECTORY and owned by us (the session runs as
 * the mailbox owner, like delivery in maildir.c): a symlink anywhere in the
 * last step is refused, and swapping a directory later achieves nothing.
 *
 * Speed: for a name carrying ",W=" (Petrel and Dovecot deliveries) the size
 * comes from the name, checked once per message (W= misses the CRLF of a
 * last line without LF, see mailbox_cache.c) and then remembered in the
 * size cache, so a session over a Maildir it has seen before costs one
 * readdir pass and one cache read, no per-message open or stat.
 *
 * Session lock (MAILBOX_EXCLUSIVE): flock() on the descriptor of the
 * Maildir directory itself: nothing to create or clean up, released by the
 * kernel when the session ends or crashes. An exclusive session also
 * removes tmp/ files untouched for 36 hours (crashed deliveries); tmp/ is
 * otherwise never looked at.
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
#include "mail/mailbox_int.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MSG_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
#define INFO_SEP ":2,"
#define TMP_MAX_AGE (36 * 3600)

/* ---- directories ---- */

/* Opens name (relative to at) as one of our directories. Returns the fd,
 * or -1 with *missing set (ENOENT) or err set. */
static int open_dir(int at, const char *name, const char *display, bool *missing, strbuf *err)
{
    struct stat st;
    int fd = openat(at, name, DIR_FLAGS);
    *missing = false;
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            *missing = true;
            return -1;
        }
        if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            mailbox_err(err, "refusing to read %s: it is a symbolic link", display);
        else if (e == ENOTDIR)
            mailbox_err(err, "cannot read %s: not a directory", display);
        else
            mailbox_err(err, "cannot open %s: %s", display, strerror(e));
        return -1;
    }
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        mailbox_err(err, "refusing to read %s: owned by uid %lu, reading as uid %lu", display,
                    (unsigned long)st.st_uid, (unsigned long)geteuid());
        close(fd);
        return -1;
    }
    return fd;
}

static int open_sub(struct mailbox *mb, const char *sub, bool *missing, strbuf *err)
{
    strbuf display;
    int fd;
    strbuf_init(&display);
    strbuf_printf(&display, "%s/%s", mb->path, sub);
    fd = open_dir(mb->dirfd, sub, display.data, missing, err);
    strbuf_free(&display);
    return fd;
}

/* A directory stream over dirfd that leaves dirfd itself alone. */
static DIR *dir_stream(int dirfd)
{
    int fd = openat(dirfd, ".", DIR_FLAGS);
    DIR *dh;
    if (fd < 0)
        return NULL;
    if ((dh = fdopendir(fd)) == NULL)
        close(fd);
    return dh;
}

/* Regular file? DT_UNKNOWN (some file systems) costs a stat; *st is
 * filled (and *have_st set) when one was done. Symlinks and other special
 * files are skipped with a note: they are not messages and following them
 * could read someone else's file. */
static bool is_message(int dirfd, const struct dirent *de, const char *display, struct stat *st,
                       bool *have_st)
{
    unsigned char t = de->d_type;
    *have_st = false;
    if (t == DT_UNKNOWN) {
        if (fstatat(dirfd, de->d_name, st, AT_SYMLINK_NOFOLLOW) != 0)
            return false;
        *have_st = true;
        if (S_ISREG(st->st_mode))
            return true;
        t = S_ISLNK(st->st_mode) ? DT_LNK : DT_DIR;
    }
    if (t == DT_REG)
        return true;
    if (t == DT_LNK)
        log_warning("%s/%s: ignoring a symbolic link in a Maildir", display, de->d_name);
    return false;
}

/* ---- names ---- */

/* Length of the part before the ":2," info (the whole name when none). */
static size_t base_len(const char *name)
{
    const char *c = strrchr(name, ':');
    if (c != NULL && strncmp(c, INFO_SEP, 3) == 0)
        return (size_t)(c - name);
    return strlen(name);
}

/* The number after field (",S=", ",W=") in base[0..n): digits that end at
 * ',' or at the end of the base. */
static bool name_field(const char *base, size_t n, const char *field, uint64_t *v)
{
    size_t fl = strlen(field);
    for (size_t i = 0; i + fl < n; i++) {
        if (memcmp(base + i, field, fl) != 0)
            continue;
        size_t j = i + fl;
        uint64_t x = 0;
        if (base[j] < '0' || base[j] > '9')
            continue;
        while (j < n && base[j] >= '0' && base[j] <= '9') {
            if (x > (UINT64_MAX - 9) / 10)
                return false;
            x = x * 10 + (uint64_t)(base[j++] - '0');
        }
        if (j == n || base[j] == ',') {
            *v = x;
            return true;
        }
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads digits at *p (saturating); advances *p. */
static uint64_t leading_number(const char **p, const char *end)
{
    uint64_t x = 0;
    for (; *p < end && is_digit(**p); (*p)++)
        x = x > (UINT64_MAX - 9) / 10 ? UINT64_MAX : x * 10 + (uint64_t)(**p - '0');
    return x;
}

/* The sort key: "<sec>.M<usec>..." as numbers; names that do not start
 * with a number get UINT64_MAX, so they come last. */
static void sort_key(struct mailbox_entry *e)
{
    const char *p = e->name, *end = e->name + e->base_len;
    e->key_sec = is_digit(*p) ? leading_number(&p, end) : UINT64_MAX;
    e->key_usec = 0;
    if (e->key_sec != UINT64_MAX && end - p > 2 && p[0] == '.' && p[1] == 'M' && is_digit(p[2])) {
        p += 2;
        e->key_usec = leading_number(&p, end);
    }
}

/* Delivery order: names are "<seconds>.<rest>": the seconds, then the
 * microseconds of "M<usec>" (the key), then digit runs compare as numbers
 * (P<pid>, Q<n>), other bytes as bytes; names that do not start with a
 * number come last. */
static int order_cmp(const void *pa, const void *pb)
{
    const struct mailbox_entry *ea = pa, *eb = pb;
    const char *a = ea->name, *b = eb->name;
    const char *ae = a + ea->base_len, *be = b + eb->base_len;
    if (ea->key_sec != eb->key_sec)
        return ea->key_sec < eb->key_sec ? -1 : 1;
    if (ea->key_usec != eb->key_usec)
        return ea->key_usec < eb->key_usec ? -1 : 1;
    while (a < ae && b < be) {
        if (is_digit(*a) && is_digit(*b)) {
            const char *x = a, *y = b;
            while (x < ae && *x == '0')
                x++;
            while (y < be && *y == '0')
                y++;
            const char *xe = x, *ye = y;
            while (xe < ae && is_digit(*xe))
                xe++;
            while (ye < be && is_digit(*ye))
                ye++;
            if (xe - x != ye - y)
                return xe - x < ye - y ? -1 : 1;
            int c = memcmp(x, y, (size_t)(xe - x));
            if (c != 0)
                return c;
            a = xe;
            b = ye;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    if ((a < ae) != (b < be))
        return a < ae ? 1 : -1;
    return strcmp(ea->name, eb->name); /* a total order, whatever the names */
}

/* ---- sizes ---- */

/* Reads the whole file: its size as sent. */
static int size_by_reading(int fd, uint64_t *size)
{
    struct mailbox_sizer s;
    char buf[65536];
    uint64_t pos = 0;
    mailbox_sizer_init(&s);
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof(buf), (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        mailbox_sizer_feed(&s, buf, (size_t)r);
        pos += (uint64_t)r;
    }
    *size = mailbox_sizer_result(&s);
    return 0;
}

/* The size of cur/<name> when the cache cannot answer: W= checked against
 * the last byte, or the file read. 1 = skip the entry (gone, not a
 * regular file), 0 = done, -1 = error. */
static int size_by_file(struct mailbox *mb, struct mailbox_entry *e, bool have_w, uint64_t w,
                        bool have_s, uint64_t s, struct mailbox_cache_entry *ce, strbuf *err)
{
    struct stat st;
    int fd = openat(mb->curfd, e->name, MSG_FLAGS);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP)
            return 1; /* removed meanwhile, or a symlink put in its place */
        mailbox_err(err, "cannot open %s/cur/%s: %s", mb->path, e->name, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 1;
    }
    ce->fsize = (uint64_t)st.st_size;
    ce->mtime_sec = (int64_t)st.st_mtim.tv_sec;
    ce->mtime_nsec = st.st_mtim.tv_nsec;
    /* W= is trusted when it fits the file: S= (if given) is its size, and
     * bytes <= W <= 2 * bytes; then only the last byte matters. */
    if (have_w && (!have_s || s == ce->fsize) && w >= ce->fsize && w / 2 <= ce->fsize) {
        char last = '\n';
        ssize_t r = ce->fsize > 0 ? pread(fd, &last, 1, st.st_size - 1) : 0;
        if (r >= 0) {
            ce->size = w + ((ce->fsize > 0 && last != '\n') ? 2 : 0);
            close(fd);
            return 0;
        }
    }
    if (size_by_reading(fd, &ce->size) != 0) {
        mailbox_err(err, "cannot read %s/cur/%s: %s", mb->path, e->name, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Fills e->msg.size. Returns as size_by_file. */
static int entry_size(struct mailbox *mb, struct mailbox_entry *e, struct mailbox_cache *cache,
                      const struct stat *st_known, strbuf *err)
{
    const struct mailbox_cache_entry *hit;
    struct mailbox_cache_entry ce;
    struct stat st;
    uint64_t w = 0, s = 0;
    bool have_w = name_field(e->name, e->base_len, ",W=", &w);
    bool have_s = name_field(e->name, e->base_len, ",S=", &s);
    int rc;

    hit = mailbox_cache_get(cache, e->name, e->base_len);
    if (have_w) {
        /* The name states the size; messages are never rewritten in place. */
        if (hit != NULL && (!have_s || hit->fsize == s)) {
            e->msg.size = hit->size;
            return 0;
        }
    } else {
        if (st_known != NULL)
            st = *st_known;
        else if (fstatat(mb->curfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return 1;
        if (!S_ISREG(st.st_mode))
            return 1;
        if (hit != NULL && hit->fsize == (uint64_t)st.st_size &&
            hit->mtime_sec == (int64_t)st.st_mtim.tv_sec &&
            hit->mtime_nsec == st.st_mtim.tv_nsec) {
            e->msg.size = hit->size;
            return 0;
        }
    }
    rc = size_by_file(mb, e, have_w, w, have_s, s, &ce, err);
    if (rc == 0) {
        e->msg.size = ce.size;
        mailbox_cache_put(cache, e->name, e->base_len, &ce);
    }
    return rc;
}

/* ---- listing ---- */

/* Moves new/<name> to cur/<name>:2, without ever replacing a file. */
static void move_to_cur(struct mailbox *mb, const char *name)
{
    strbuf target;
    int rc;
    strbuf_init(&target);
    strbuf_appends(&target, name);
    if (base_len(name) == strlen(name))
        strbuf_appends(&target, INFO_SEP);
    rc = renameat2(mb->newfd, name, mb->curfd, target.data, RENAME_NOREPLACE);
    if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
        /* No RENAME_NOREPLACE here: link (never replaces) + unlink. */
        rc = linkat(mb->newfd, name, mb->curfd, target.data, 0);
        if (rc == 0)
            unlinkat(mb->newfd, name, 0);
    }
    if (rc != 0 && errno != ENOENT) /* ENOENT: another session moved it */
        log_warning("cannot move %s/new/%s to cur/: %s", mb->path, name, strerror(errno));
    strbuf_free(&target);
}

static int scan_new(struct mailbox *mb, strbuf *err)
{
    strbuf display;
    struct dirent *de;
    struct stat st;
    bool have_st;
    DIR *dh = dir_stream(mb->newfd);
    if (dh == NULL) {
        mailbox_err(err, "cannot read %s/new: %s", mb->path, strerror(errno));
        return -1;
    }
    strbuf_init(&display);
    strbuf_printf(&display, "%s/new", mb->path);
    while ((de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.' || !is_message(mb->newfd, de, display.data, &st, &have_st))
            continue;
        move_to_cur(mb, de->d_name);
    }
    closedir(dh);
    strbuf_free(&display);
    return 0;
}

static int scan_cur(struct mailbox *mb, struct mailbox_cache *cache, strbuf *err)
{
    strbuf display;
    struct dirent *de;
    struct stat st;
    bool have_st;
    int rc = 0;
    DIR *dh = dir_stream(mb->curfd);
    if (dh == NULL) {
        mailbox_err(err, "cannot read %s/cur: %s", mb->path, strerror(errno));
        return -1;
    }
    strbuf_init(&display);
    strbuf_printf(&display, "%s/cur", mb->path);
    for (;;) {
        errno = 0;
        if ((de = readdir(dh)) == NULL) {
            if (errno != 0) {
                mailbox_err(err, "cannot read %s: %s", display.data, strerror(errno));
                rc = -1;
            }
            break;
        }
        if (de->d_name[0] == '.' || !is_message(mb->curfd, de, display.data, &st, &have_st))
            continue;
        struct mailbox_entry *e = mailbox_add(mb);
        e->name = xstrdup(de->d_name);
        e->base_len = base_len(e->name);
        sort_key(e);
        int r = entry_size(mb, e, cache, have_st ? &st : NULL, err);
        if (r != 0) {
            free(e->name);
            mb->count--;
            if (r < 0) {
                rc = -1;
                break;
            }
        }
    }
    closedir(dh);
    strbuf_free(&display);
    return rc;
}

/* tmp/ leftovers of crashed deliveries: maildir.c leaves their removal to
 * readers, as the Maildir convention says (files untouched for 36 hours;
 * a delivery never takes that long). Only regular files; best effort. */
static void clean_tmp(struct mailbox *mb)
{
    struct dirent *de;
    struct stat st;
    bool missing;
    strbuf ignored;
    time_t limit = time(NULL) - TMP_MAX_AGE;
    int fd;
    DIR *dh;

    strbuf_init(&ignored);
    fd = open_sub(mb, "tmp", &missing, &ignored);
    strbuf_free(&ignored);
    if (fd < 0)
        return;
    if ((dh = dir_stream(fd)) != NULL) {
        while ((de = readdir(dh)) != NULL) {
            if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(st.st_mode) || st.st_mtime >= limit || st.st_atime >= limit)
                continue;
            if (unlinkat(fd, de->d_name, 0) == 0)
                log_info("removed %s/tmp/%s, left by a delivery 36 hours ago or more", mb->path,
                         de->d_name);
        }
        closedir(dh);
    }
    close(fd);
}

enum mailbox_status mailbox_maildir_open(struct mailbox *mb, unsigned flags, strbuf *err)
{
    struct mailbox_cache *cache;
    bool missing;
    size_t n = strlen(mb->path);
    int rc;

    /* A trailing slash would make the kernel follow a symlink despite
     * O_NOFOLLOW: open the name without it ("/" stays "/"). */
    while (n > 1 && mb->path[n - 1] == '/')
        mb->path[--n] = '\0';
    mb->dirfd = open_dir(AT_FDCWD, mb->path, mb->path, &missing, err);
    if (mb->dirfd < 0) {
        if (!missing)
            return MAILBOX_ERROR;
        mb->kind = MAILBOX_KIND_EMPTY; /* nothing delivered yet */
        return MAILBOX_OK;
    }
    if ((flags & MAILBOX_EXCLUSIVE) && flock(mb->dirfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            mailbox_err(err, "%s: mailbox is in use by another session", mb->path);
            return MAILBOX_IN_USE;
        }
        mailbox_err(err, "%s: cannot lock: %s", mb->path, strerror(errno));
        return MAILBOX_ERROR;
    }
    mb->newfd = open_sub(mb, "new", &missing, err);
    if (mb->newfd < 0 && !missing)
        return MAILBOX_ERROR;
    mb->curfd = open_sub(mb, "cur", &missing, err);
    if (mb->curfd < 0 && missing && mb->newfd >= 0) {
        /* Only new/ so far: make cur/ to move the messages into. */
        if (mkdirat(mb->dirfd, "cur", 0700) != 0 && errno != EEXIST) {
            mailbox_err(err, "cannot create %s/cur: %s", mb->path, strerror(errno));
            return MAILBOX_ERROR;
        }
        mb->curfd = open_sub(mb, "cur", &missing, err);
    }
    if (mb->curfd < 0)
        return missing ? MAILBOX_OK : MAILBOX_ERROR; /* no cur/ and no new/: empty */

    if (mb->newfd >= 0 && scan_new(mb, err) != 0)
        return MAILBOX_ERROR;
    if (flags & MAILBOX_EXCLUSIVE)
        clean_tmp(mb);
    cache = mailbox_cache_load(mb->dirfd, mb->path);
    rc = scan_cur(mb, cache, err);
    mailbox_cache_finish(&cache, rc == 0);
    if (rc != 0)
        return MAILBOX_ERROR;
    if (mb->count > 1)
        qsort(mb->msgs, mb->count, sizeof(*mb->msgs), order_cmp);
    for (size_t i = 0; i < mb->count; i++) {
        struct mailbox_entry *e = &mb->msgs[i];
        e->uid = mailbox_uid_from_name(e->name, e->base_len);
        e->msg.uid = e->uid;
    }
    mailbox_uid_dedup(mb);
    return MAILBOX_OK;
}

/* ---- messages ---- */

/* Another client may have renamed cur/<name> (new flags) since the
 * listing: finds the file with the same base name. */
static char *find_by_base(struct mailbox *mb, const struct mailbox_entry *e)
{
    struct dirent *de;
    char *found = NULL;
    DIR *dh = dir_stream(mb->curfd);
    if (dh == NULL)
        return NULL;
    while ((de = readdir(dh)) != NULL) {
        if (base_len(de->d_name) == e->base_len &&
            memcmp(de->d_name, e->name, e->base_len) == 0) {
            found = xstrdup(de->d_name);
            break;
        }
    }
    closedir(dh);
    return found;
}

int mailbox_maildir_open_msg(struct mailbox *mb, size_t i, strbuf *err)
{
    struct mailbox_entry *e = &mb->msgs[i];
    struct stat st;
    int fd = openat(mb->curfd, e->name, MSG_FLAGS);
    if (fd < 0 && errno == ENOENT) {
        char *now = find_by_base(mb, e);
        if (now == NULL) {
            mailbox_err(err, "message was removed");
            return -1;
        }
        free(e->name);
        e->name = now;
        fd = openat(mb->curfd, e->name, MSG_FLAGS);
    }
    if (fd < 0) {
        if (errno == ENOENT)
            mailbox_err(err, "message was removed");
        else if (errno == ELOOP)
            mailbox_err(err, "refusing to read %s/cur/%s: it is a symbolic link", mb->path,
                        e->name);
        else
            mailbox_err(err, "cannot open %s/cur/%s: %s", mb->path, e->name, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mailbox_err(err, "refusing to read %s/cur/%s: not a regular file", mb->path, e->name);
        close(fd);
        return -1;
    }
    return fd;
}

int mailbox_maildir_commit(struct mailbox *mb, strbuf *err)
{
    int rc = 0;
    for (size_t i = 0; i < mb->count; i++) {
        struct mailbox_entry *e = &mb->msgs[i];
        if (!e->msg.deleted)
            continue;
        if (unlinkat(mb->curfd, e->name, 0) == 0)
            continue;
        if (errno == ENOENT) {
            /* Renamed by another client (flags), or already removed. */
            char *now = find_by_base(mb, e);
            if (now == NULL)
                continue;
            free(e->name);
            e->name = now;
            if (unlinkat(mb->curfd, e->name, 0) == 0 || errno == ENOENT)
                continue;
        }
        mailbox_err(err, "cannot remove %s/cur/%s: %s", mb->path, e->name, strerror(errno));
        rc = -1;
    }
    /* The removals must be durable before the client is told they are. */
    if (fsync(mb->curfd) != 0 && rc == 0) {
        mailbox_err(err, "cannot sync %s/cur: %s", mb->path, strerror(errno));
        rc = -1;
    }
    return rc;
}
