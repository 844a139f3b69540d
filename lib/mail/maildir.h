/*
 * maildir.h - delivering one message into a Maildir, safely.
 *
 * The Maildir layout (D. J. Bernstein): a directory with tmp/, new/ and cur/.
 * A message is written to a unique file in tmp/, synced, then linked into
 * new/ under its final name; readers only ever look at new/ and cur/, so
 * they never see a partial message and no locking is needed. local-delivery
 * uses this after switching to the mailbox owner; pop3d/imapd read the
 * result.
 *
 * File names: tmp/<sec>.M<usec>P<pid>Q<n>.<host> where <host> is the host
 * name with every byte other than [A-Za-z0-9.-_] written as \ooo ('/' is
 * \057, ':' is \072, as the modern spec asks). The name in new/ adds
 * ",S=<bytes>,W=<bytes>" as Dovecot does: S is the size of the file and W
 * its size with every bare LF counted as CRLF, so POP3 LIST/STAT and IMAP
 * RFC822.SIZE can be answered without reading the message.
 *
 * Safety (BAD-INPUT.md row 8): the maildir, tmp/ and new/ are opened with
 * O_NOFOLLOW|O_DIRECTORY and must be owned by the effective uid (delivery
 * runs as the mailbox owner); a symlink or a foreign-owned directory is
 * refused with a clear error. All later steps work relative to those open
 * directory descriptors, so swapping a directory for a symlink mid-delivery
 * achieves nothing. Every descriptor is close-on-exec.
 */
#ifndef PETREL_MAILDIR_H
#define PETREL_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct strbuf;
struct maildir_delivery;

/* maildir_create: makes path and its tmp/, new/ and cur/ with the given
 * mode (reduced by the umask, as mkdir does), keeping whatever already
 * exists. Only the maildir itself and its three subdirectories are created:
 * a missing parent is an error (creating parents of a mailbox path as the
 * delivery user could be steered by a hostile home directory layout).
 * Fails (-1, message in err) if path or a subdirectory is a symlink or not
 * a directory. Existing directories keep their mode. */
int maildir_create(const char *path, mode_t mode, struct strbuf *err);

/* maildir_open: starts a delivery into the Maildir at path: checks the
 * directories (see above) and creates a new file in tmp/ (mode 0600,
 * O_CREAT|O_EXCL|O_NOFOLLOW). On success *d_r is set and 0 returned; the
 * delivery must end with maildir_commit() or maildir_abort(). On failure
 * *d_r is NULL and err explains. */
int maildir_open(const char *path, struct maildir_delivery **d_r, struct strbuf *err);

/* maildir_write: appends n bytes as they are. Returns 0, or -1 with err set;
 * after a failure the tmp file is already removed and every later write and
 * the commit fail with the same message (so a caller may check only the
 * commit), but the caller must still call maildir_commit/maildir_abort to
 * free d. */
int maildir_write(struct maildir_delivery *d, const void *p, size_t n, struct strbuf *err);

/* maildir_write_crlf_to_lf: like maildir_write, but CRLF pairs become LF (the
 * queue holds SMTP CRLF text; Maildir files use Unix line ends). A CR at the
 * end of one chunk is held until the next chunk shows whether an LF follows;
 * a bare CR is kept. Mixing with maildir_write is allowed. */
int maildir_write_crlf_to_lf(struct maildir_delivery *d, const void *p, size_t n,
                             struct strbuf *err);

/* maildir_commit: finishes the delivery in this order: flush a held CR,
 * fsync the file, close it (checking for errors), link it into new/ under
 * its final name (rename() instead where the filesystem has no hard links:
 * EPERM, ENOSYS, EOPNOTSUPP), unlink the tmp name, fsync new/. Returns 0
 * only when all of that succeeded; *final_path_r (if not NULL) then gets
 * "<path>/new/<name>" (caller frees). On failure returns -1 with err set and
 * nothing left behind in tmp/ or new/. Always frees *dp and sets it NULL.
 * A failure to unlink the tmp name after the link is only logged (the
 * message is delivered; a retry would duplicate it). */
int maildir_commit(struct maildir_delivery **dp, char **final_path_r, struct strbuf *err);

/* maildir_abort: removes the tmp file (if still there) and frees *dp,
 * setting it NULL. Safe on NULL. */
void maildir_abort(struct maildir_delivery **dp);

/* A streaming CRLF -> LF converter, usable on its own (mbox delivery needs
 * the same). State carries a CR seen at the end of one chunk. */
struct crlf_filter {
    bool cr_pending;
};
void crlf_filter_init(struct crlf_filter *f);
/* Appends the converted form of in[0..n) to out. */
void crlf_filter_feed(struct crlf_filter *f, const void *in, size_t n, struct strbuf *out);
/* End of input: appends a held CR (it was bare) to out and resets. */
void crlf_filter_finish(struct crlf_filter *f, struct strbuf *out);

#endif
