/*
 * mbox_lock.c - dot-lock and fcntl lock of an mbox file; see mbox_lock.h.
 */
#include "mail/mbox_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void set_err(strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(strbuf *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    strbuf_reset(err);
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
}

int mbox_dotlock_take(const char *path, int wait, int stale_age, bool skip_unwritable,
                      char **lock_path_r, strbuf *err)
{
    strbuf lp;
    time_t deadline = time(NULL) + (wait > 0 ? wait : 0);
    *lock_path_r = NULL;
    strbuf_init(&lp);
    strbuf_printf(&lp, "%s.lock", path);
    for (;;) {
        struct stat st;
        int fd = open(lp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            *lock_path_r = strbuf_detach(&lp, NULL);
            return 0;
        }
        if (skip_unwritable && (errno == EACCES || errno == EROFS)) {
            strbuf_free(&lp);
            return 0;
        }
        if (errno != EEXIST) {
            set_err(err, "%s: cannot create lock file: %s", lp.data, strerror(errno));
            strbuf_free(&lp);
            return -1;
        }
        if (stale_age > 0 && lstat(lp.data, &st) == 0 && time(NULL) - st.st_mtime > stale_age &&
            (unlink(lp.data) == 0 || errno == ENOENT))
            continue; /* left by a crashed writer: try again at once */
        if (time(NULL) >= deadline) {
            set_err(err, "%s: mailbox is locked (lock file %s exists; waited %d s)", path,
                    lp.data, wait);
            strbuf_free(&lp);
            return -1;
        }
        usleep(200 * 1000);
    }
}

int mbox_fcntl_lock(int fd, const char *path, short type, int wait, strbuf *err)
{
    time_t deadline = time(NULL) + (wait > 0 ? wait : 0);
    for (;;) {
        struct flock fl;
        memset(&fl, 0, sizeof(fl));
        fl.l_type = type;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN && errno != EINTR) {
            set_err(err, "%s: cannot lock: %s", path, strerror(errno));
            return -1;
        }
        if (time(NULL) >= deadline) {
            set_err(err, "%s: mailbox is locked by another process (waited %d s)", path, wait);
            return -1;
        }
        usleep(200 * 1000);
    }
}
