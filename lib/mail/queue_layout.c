/*
 * queue_layout.c - the table of queue subdirectories and the code that
 * checks, creates and repairs them (see queue_layout.h).
 *
 * Everything the daemons own is private to the mail owner. maildrop/ is
 * where `sendmail`, running as any local user with no privilege at all,
 * drops its file: writable by everyone but listable by no one, and sticky so
 * one user cannot remove or rename another's file (pickup learns the sender
 * from the file's owner and validates everything). public/ holds the
 * trigger sockets local users may reach (pickup, qmgr): traversable, not
 * listable. pid/ belongs to root. login/ is the empty root of the chrooted
 * POP3/IMAP login processes; its private/ holds only sockets.
 */
#include "mail/queue_layout.h"
#include "util/privilege.h"
#include "util/strbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum owner_role { ROLE_ROOT, ROLE_OWNER };
enum group_role { GROUP_ROOT, GROUP_OWNER, GROUP_DROP };

struct layout_entry {
    const char *name; /* "" is queue_directory itself */
    enum owner_role owner;
    enum group_role group;
    mode_t mode;
};

static const struct layout_entry layout[] = {
    { "", ROLE_ROOT, GROUP_ROOT, 0755 },
    { "maildrop", ROLE_OWNER, GROUP_DROP, 01733 },
    { "incoming", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "active", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "deferred", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "hold", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "corrupt", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "defer", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "private", ROLE_OWNER, GROUP_OWNER, 0700 },
    { "public", ROLE_OWNER, GROUP_DROP, 0711 },
    { "pid", ROLE_ROOT, GROUP_ROOT, 0755 },
    /* The chroot of the POP3/IMAP login processes: nothing but the sockets
     * of auth and the mailbox services (lib/login/login.h). */
    { "login", ROLE_ROOT, GROUP_ROOT, 0755 },
    { "login/private", ROLE_OWNER, GROUP_OWNER, 0700 },
};

void queue_layout_owners_self(struct queue_owners *o)
{
    o->root_uid = o->owner_uid = geteuid();
    o->root_gid = o->owner_gid = o->drop_gid = getegid();
}

int queue_layout_owners(const char *mail_owner, const char *setgid_group, struct queue_owners *o,
                        struct strbuf *err)
{
    queue_layout_owners_self(o);
    if (!privilege_can_switch())
        return 0;
    struct priv_user u;
    struct priv_group g;
    if (privilege_lookup_user(mail_owner, &u, err) != PRIV_LOOKUP_FOUND) {
        strbuf_printf(err, " (mail_owner; create it with: adduser --system --group "
                           "--no-create-home --home /nonexistent %s)", mail_owner);
        return -1;
    }
    if (privilege_lookup_group(setgid_group, &g, err) != PRIV_LOOKUP_FOUND) {
        strbuf_printf(err, " (setgid_group; create it with: addgroup --system %s)", setgid_group);
        privilege_user_free(&u);
        return -1;
    }
    o->root_uid = 0;
    o->root_gid = 0;
    o->owner_uid = u.uid;
    o->owner_gid = u.gid;
    o->drop_gid = g.gid;
    privilege_user_free(&u);
    privilege_group_free(&g);
    return 0;
}

static int problem(struct strbuf *problems, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int problem(struct strbuf *problems, const char *path, const char *fmt, ...)
{
    va_list ap;
    strbuf_printf(problems, "%s: ", path);
    va_start(ap, fmt);
    strbuf_vprintf(problems, fmt, ap);
    va_end(ap);
    strbuf_appendc(problems, '\n');
    return 1;
}

int queue_layout_apply(const char *queue_dir, const struct queue_owners *o,
                       enum queue_layout_action action, struct strbuf *problems)
{
    int n = 0;
    strbuf path;
    strbuf_init(&path);
    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        const struct layout_entry *e = &layout[i];
        uid_t uid = e->owner == ROLE_ROOT ? o->root_uid : o->owner_uid;
        gid_t gid = e->group == GROUP_ROOT    ? o->root_gid
                    : e->group == GROUP_OWNER ? o->owner_gid
                                              : o->drop_gid;
        strbuf_sets(&path, queue_dir);
        if (*e->name)
            strbuf_printf(&path, "/%s", e->name);

        /* The queue directory itself may be a symlink (an administrator's
         * choice of disk); nothing below it may be. */
        struct stat st;
        if ((*e->name ? lstat(path.data, &st) : stat(path.data, &st)) < 0) {
            if (errno != ENOENT) {
                n += problem(problems, path.data, "cannot inspect: %s", strerror(errno));
                continue;
            }
            if (action == QUEUE_LAYOUT_CHECK) {
                n += problem(problems, path.data, "missing (master creates it at start)");
                continue;
            }
            if (mkdir(path.data, 0700) < 0 && !(errno == EEXIST && *e->name == '\0')) {
                n += problem(problems, path.data, "cannot create: %s", strerror(errno));
                continue;
            }
            /* A directory we just made gets its owner and mode whatever the action. */
            if (lchown(path.data, uid, gid) < 0)
                n += problem(problems, path.data, "cannot set owner: %s", strerror(errno));
            if (chmod(path.data, e->mode) < 0)
                n += problem(problems, path.data, "cannot set mode: %s", strerror(errno));
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            n += problem(problems, path.data, "is not a directory%s",
                         S_ISLNK(st.st_mode) ? " (a symbolic link: refusing to follow it)" : "");
            continue;
        }
        bool wrong_owner = st.st_uid != uid || st.st_gid != gid;
        bool wrong_mode = (st.st_mode & 07777) != e->mode;
        if (action == QUEUE_LAYOUT_FIX) {
            if (wrong_owner && lchown(path.data, uid, gid) < 0)
                n += problem(problems, path.data, "cannot set owner %lu:%lu: %s",
                             (unsigned long)uid, (unsigned long)gid, strerror(errno));
            if (wrong_mode && chmod(path.data, e->mode) < 0)
                n += problem(problems, path.data, "cannot set mode %04o: %s", (unsigned)e->mode,
                             strerror(errno));
            continue;
        }
        if (wrong_owner)
            n += problem(problems, path.data,
                         "owned by %lu:%lu, should be %lu:%lu (run petrel set-permissions)",
                         (unsigned long)st.st_uid, (unsigned long)st.st_gid, (unsigned long)uid,
                         (unsigned long)gid);
        if (wrong_mode)
            n += problem(problems, path.data, "mode %04o, should be %04o (run petrel set-permissions)",
                         (unsigned)(st.st_mode & 07777), (unsigned)e->mode);
    }
    strbuf_free(&path);
    return n;
}
