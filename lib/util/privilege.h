/*
 * privilege.h - user/group lookup and the one privilege-dropping function.
 *
 * Every place where Petrel changes identity goes through privilege_drop():
 * master after forking a service, local-delivery before writing a mailbox as
 * the recipient, the POP3/IMAP mailbox half as the mail owner. Keeping it in
 * one audited function (as OpenBSD httpd's proc.c does) means the order of
 * the calls and the checks that the switch is irrevocable are written once.
 *
 * Lookups happen before any chroot: the passwd and group databases are not
 * visible inside the jail, so callers resolve names first and pass numbers.
 *
 * A developer instance (or the demo) runs as an ordinary user. Then
 * privilege_can_switch() is false and privilege_drop() to the caller's own
 * uid/gid is a successful no-op; master checks privilege_can_switch() once at
 * start and logs "running as non-root: not switching users" (the log line is
 * master's job, this module logs nothing).
 */
#ifndef PETREL_PRIVILEGE_H
#define PETREL_PRIVILEGE_H

#include <stdbool.h>
#include <sys/types.h>

struct strbuf;

/* A passwd entry copied out of the C library's storage. All strings are
 * owned by the struct; release them with privilege_user_free(). */
struct priv_user {
    char *name;
    uid_t uid;
    gid_t gid;   /* primary group */
    char *home;
    char *shell;
};

/* A group entry; only what privilege dropping needs. */
struct priv_group {
    char *name;
    gid_t gid;
};

/* The three outcomes of a lookup. NOTFOUND is an answer ("no such user":
 * a recipient may be bounced); ERROR means the database could not be read
 * (NSS failure, out of file descriptors...): the caller must retry later and
 * never treat it as "no such user". */
enum priv_lookup {
    PRIV_LOOKUP_FOUND = 0,
    PRIV_LOOKUP_NOTFOUND = 1,
    PRIV_LOOKUP_ERROR = -1,
};

/* privilege_lookup_user: fills *user_r for the named user with
 * getpwnam_r (growing its buffer on ERANGE). An empty name, a name longer
 * than 256 bytes or one with a '/' or control character cannot exist and
 * is reported as NOTFOUND with a message saying why. On NOTFOUND/ERROR,
 * *user_r is left zeroed (safe to free) and err holds a message such as
 * `no such user "bob"` or `cannot look up user "bob": <strerror>`. */
enum priv_lookup privilege_lookup_user(const char *name, struct priv_user *user_r,
                                       struct strbuf *err);
/* privilege_lookup_uid: the same, by number (getpwuid_r): used where the
 * identity comes from a file's owner (maildrop files, .forward checks). */
enum priv_lookup privilege_lookup_uid(uid_t uid, struct priv_user *user_r,
                                      struct strbuf *err);
/* privilege_lookup_group: fills *group_r with getgrnam_r; same contract as
 * privilege_lookup_user (messages say "group"). */
enum priv_lookup privilege_lookup_group(const char *name, struct priv_group *group_r,
                                        struct strbuf *err);
/* Free the strings and zero the struct; safe on a zeroed struct. */
void privilege_user_free(struct priv_user *user);
void privilege_group_free(struct priv_group *group);

/* privilege_can_switch: true when this process can change its user
 * (effective uid 0). False for a developer instance run by a normal user. */
bool privilege_can_switch(void);

/* Flags for privilege_drop. */
#define PRIV_ALLOW_ROOT 0x1u  /* permit a target uid of 0 (auth, local-delivery
                                 delivering to root's own mailbox) */

/* privilege_drop: switches this process irrevocably to uid/gid, optionally
 * confined to chroot_dir. Steps, in this order:
 *   1. setgroups() to exactly { gid }: supplementary groups are dropped, not
 *      initialised from /etc/group. A daemon must not inherit root's group
 *      list, and Postfix's delivery agents also run with the primary group
 *      only; a mailbox needing a shared group must use the primary group.
 *   2. if chroot_dir is not NULL: chroot(chroot_dir) then chdir("/").
 *   3. setresgid(gid, gid, gid).
 *   4. setresuid(uid, uid, uid).
 *   5. verification: getresuid/getresgid report the target in all three
 *      slots, getgroups() holds only gid, and, unless the target uid is 0,
 *      setuid(0), seteuid(0) and (unless gid is 0) setgid(0) all fail.
 * A target uid of 0 is refused unless flags has PRIV_ALLOW_ROOT.
 * When the process is not root (privilege_can_switch() false), dropping to
 * the current real and effective uid/gid without chroot is a no-op success;
 * any other target, or a chroot request, fails.
 * Returns 0 on success, -1 with a message in err on any failure. After a
 * failure the process may be half-switched: the caller must exit at once.
 * Closing inherited descriptors and cleaning the environment stay the
 * caller's job (master does both before exec). */
int privilege_drop(uid_t uid, gid_t gid, const char *chroot_dir, unsigned flags,
                   struct strbuf *err);

#endif
