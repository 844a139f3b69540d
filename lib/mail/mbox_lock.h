/*
 * mbox_lock.h - the locking protocol of mbox files, shared by the writer
 * (mbox.c: local delivery appending) and the reader (mailbox_mbox.c:
 * pop3d deleting messages), so the two can never disagree about it.
 *
 * Two locks, both retried every 200 ms until a deadline, because mail
 * readers of the world use one or the other: a dot-lock "<path>.lock"
 * created with O_EXCL (one older than stale_age seconds was left by a
 * crash and is removed), and an fcntl() lock of the whole file.
 */
#ifndef PETREL_MBOX_LOCK_H
#define PETREL_MBOX_LOCK_H

#include <stdbool.h>

#include "util/strbuf.h"

/* mbox_dotlock_take: creates "<path>.lock". Returns 0 with *lock_path_r
 * set (unlink and free it to release), or -1 with err set. When
 * skip_unwritable is true, a directory we may not create files in (EACCES,
 * EROFS) returns 0 with *lock_path_r NULL: no dot-lock, the fcntl lock
 * still protects against writers that could not take one either. */
int mbox_dotlock_take(const char *path, int wait, int stale_age, bool skip_unwritable,
                      char **lock_path_r, strbuf *err);

/* mbox_fcntl_lock: sets an fcntl lock of type (F_RDLCK, F_WRLCK or
 * F_UNLCK) on the whole of fd, waiting up to wait seconds. path is for
 * messages. Returns 0, or -1 with err set (err may be NULL). */
int mbox_fcntl_lock(int fd, const char *path, short type, int wait, strbuf *err);

#endif
