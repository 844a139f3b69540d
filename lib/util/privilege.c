#define _GNU_SOURCE /* getresuid, setresuid and friends */
/*
 * privilege.c - user/group lookup and privilege dropping; see privilege.h.
 *
 * The lookups copy the reentrant C library results into owned strings so the
 * caller can keep them across later lookups. privilege_drop() changes
 * identity in the one order that works (groups and chroot need root, so they
 * come first; the uid goes last) and then proves the change cannot be undone,
 * because a silently failed setuid() is the classic way a daemon keeps root.
 */
#include "util/privilege.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest name we pass to the C library; real names are far shorter
 * (LOGIN_NAME_MAX is 256 on Linux). */
#define PRIV_NAME_MAX 256
/* The passwd/group buffer starts here and doubles on ERANGE up to the cap,
 * so a corrupt database cannot make us allocate without bound. */
#define PRIV_BUF_START 1024
#define PRIV_BUF_MAX (1024 * 1024)

static void set_err(strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(strbuf *err, const char *fmt, ...)
{
    va_list ap;
    strbuf_reset(err);
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
}

/* Appends name in double quotes with control bytes escaped, so a hostile
 * name cannot break the log line that carries the message. */
static void quote_name(strbuf *err, const char *name)
{
    size_t n = strlen(name);
    strbuf_appendc(err, '"');
    log_sanitize(err, name, n > PRIV_NAME_MAX ? PRIV_NAME_MAX : n);
    if (n > PRIV_NAME_MAX)
        strbuf_appends(err, "...");
    strbuf_appendc(err, '"');
}

/* Returns NULL when the name could exist, else why it cannot. */
static const char *name_problem(const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return "empty name";
    if (n > PRIV_NAME_MAX)
        return "name too long";
    /* passwd(5) and group(5) lines cannot hold these; '+' and '-' lines are
     * NIS compat markers that must never be matched by a lookup. */
    if (name[0] == '+' || name[0] == '-')
        return "name starts with '+' or '-'";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == ':' || c == '/')
            return "name contains a control character, ':' or '/'";
    }
    return NULL;
}

static size_t initial_bufsize(int sc_name)
{
    long n = sysconf(sc_name);
    if (n <= 0 || n > PRIV_BUF_MAX)
        return PRIV_BUF_START;
    return (size_t)n;
}

/* Interprets a get*_r return code. glibc says "not found" with 0 and a NULL
 * result; some NSS modules return ENOENT for the same thing. Anything else
 * is a failure to read the database, which must not look like "no such
 * user" (that would bounce mail during an LDAP outage). */
static enum priv_lookup lookup_outcome(int rc, const void *result)
{
    if (rc == 0 && result != NULL)
        return PRIV_LOOKUP_FOUND;
    if (rc == 0 || rc == ENOENT)
        return PRIV_LOOKUP_NOTFOUND;
    return PRIV_LOOKUP_ERROR;
}

static void copy_passwd(const struct passwd *pw, struct priv_user *user_r)
{
    user_r->name = xstrdup(pw->pw_name);
    user_r->uid = pw->pw_uid;
    user_r->gid = pw->pw_gid;
    user_r->home = xstrdup(pw->pw_dir ? pw->pw_dir : "");
    user_r->shell = xstrdup(pw->pw_shell ? pw->pw_shell : "");
}

/* One loop for both passwd lookups: by name when name != NULL, else by uid. */
static enum priv_lookup lookup_passwd(const char *name, uid_t uid, struct priv_user *user_r,
                                      strbuf *err)
{
    size_t size = initial_bufsize(_SC_GETPW_R_SIZE_MAX);
    enum priv_lookup outcome;
    struct passwd pw, *result = NULL;
    char *buf = NULL;
    int rc;

    memset(user_r, 0, sizeof(*user_r));
    for (;;) {
        buf = xrealloc(buf, size);
        result = NULL;
        if (name != NULL)
            rc = getpwnam_r(name, &pw, buf, size, &result);
        else
            rc = getpwuid_r(uid, &pw, buf, size, &result);
        if (rc != ERANGE)
            break;
        if (size >= PRIV_BUF_MAX) {
            rc = ERANGE;
            break;
        }
        size *= 2;
    }
    outcome = lookup_outcome(rc, result);
    if (outcome == PRIV_LOOKUP_FOUND) {
        copy_passwd(&pw, user_r);
    } else {
        strbuf_reset(err);
        if (outcome == PRIV_LOOKUP_NOTFOUND)
            strbuf_appends(err, "no such user ");
        else
            strbuf_appends(err, "cannot look up user ");
        if (name != NULL)
            quote_name(err, name);
        else
            strbuf_printf(err, "with uid %lu", (unsigned long)uid);
        if (outcome == PRIV_LOOKUP_ERROR)
            strbuf_printf(err, ": %s", rc == ERANGE ? "passwd entry larger than 1 MB"
                                                    : strerror(rc));
    }
    free(buf);
    return outcome;
}

enum priv_lookup privilege_lookup_user(const char *name, struct priv_user *user_r, strbuf *err)
{
    const char *why = name_problem(name);
    if (why != NULL) {
        memset(user_r, 0, sizeof(*user_r));
        set_err(err, "no such user ");
        quote_name(err, name);
        strbuf_printf(err, ": %s", why);
        return PRIV_LOOKUP_NOTFOUND;
    }
    return lookup_passwd(name, 0, user_r, err);
}

enum priv_lookup privilege_lookup_uid(uid_t uid, struct priv_user *user_r, strbuf *err)
{
    return lookup_passwd(NULL, uid, user_r, err);
}

enum priv_lookup privilege_lookup_group(const char *name, struct priv_group *group_r,
                                        strbuf *err)
{
    size_t size = initial_bufsize(_SC_GETGR_R_SIZE_MAX);
    const char *why = name_problem(name);
    enum priv_lookup outcome;
    struct group gr, *result = NULL;
    char *buf = NULL;
    int rc;

    memset(group_r, 0, sizeof(*group_r));
    if (why != NULL) {
        set_err(err, "no such group ");
        quote_name(err, name);
        strbuf_printf(err, ": %s", why);
        return PRIV_LOOKUP_NOTFOUND;
    }
    for (;;) {
        buf = xrealloc(buf, size);
        result = NULL;
        rc = getgrnam_r(name, &gr, buf, size, &result);
        if (rc != ERANGE)
            break;
        if (size >= PRIV_BUF_MAX)
            break;
        size *= 2; /* groups with many members have long entries */
    }
    outcome = lookup_outcome(rc, result);
    if (outcome == PRIV_LOOKUP_FOUND) {
        group_r->name = xstrdup(gr.gr_name);
        group_r->gid = gr.gr_gid;
    } else if (outcome == PRIV_LOOKUP_NOTFOUND) {
        set_err(err, "no such group ");
        quote_name(err, name);
    } else {
        set_err(err, "cannot look up group ");
        quote_name(err, name);
        strbuf_printf(err, ": %s", rc == ERANGE ? "group entry larger than 1 MB"
                                                : strerror(rc));
    }
    free(buf);
    return outcome;
}

void privilege_user_free(struct priv_user *user)
{
    free(user->name);
    free(user->home);
    free(user->shell);
    memset(user, 0, sizeof(*user));
}

void privilege_group_free(struct priv_group *group)
{
    free(group->name);
    memset(group, 0, sizeof(*group));
}

bool privilege_can_switch(void)
{
    return geteuid() == 0;
}

/* The developer-instance path: nothing can change, so succeed only when
 * nothing needs to. */
static int drop_unprivileged(uid_t uid, gid_t gid, const char *chroot_dir, strbuf *err)
{
    if (chroot_dir != NULL) {
        set_err(err, "cannot chroot to %s: running as non-root (uid %lu)", chroot_dir,
                (unsigned long)geteuid());
        return -1;
    }
    if (uid != getuid() || uid != geteuid() || gid != getgid() || gid != getegid()) {
        set_err(err, "cannot switch to uid %lu gid %lu: running as non-root (uid %lu gid %lu)",
                (unsigned long)uid, (unsigned long)gid, (unsigned long)geteuid(),
                (unsigned long)getegid());
        return -1;
    }
    return 0;
}

/* Step 5 of privilege_drop: proves the switch took and cannot be undone. */
static int verify_dropped(uid_t uid, gid_t gid, strbuf *err)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    gid_t groups[2];
    int n;

    if (getresuid(&ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid) {
        set_err(err, "privilege drop to uid %lu did not take effect (real/effective/saved uid "
                "%lu/%lu/%lu)", (unsigned long)uid, (unsigned long)ru, (unsigned long)eu,
                (unsigned long)su);
        return -1;
    }
    if (getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid) {
        set_err(err, "privilege drop to gid %lu did not take effect (real/effective/saved gid "
                "%lu/%lu/%lu)", (unsigned long)gid, (unsigned long)rg, (unsigned long)eg,
                (unsigned long)sg);
        return -1;
    }
    /* Two slots: a list longer than one entry is already wrong (EINVAL). */
    n = getgroups(2, groups);
    if (n < 0 || n > 1 || (n == 1 && groups[0] != gid)) {
        set_err(err, "privilege drop to gid %lu left supplementary groups in place",
                (unsigned long)gid);
        return -1;
    }
    if (uid == 0)
        return 0;
    /* If any of these succeed the process still has CAP_SETUID/CAP_SETGID
     * (e.g. kept through securebits) and is root in all but name. */
    if (setuid(0) == 0 || seteuid(0) == 0) {
        set_err(err, "privilege drop to uid %lu is reversible: regained uid 0",
                (unsigned long)uid);
        return -1;
    }
    if (gid != 0 && setgid(0) == 0) {
        set_err(err, "privilege drop to gid %lu is reversible: regained gid 0",
                (unsigned long)gid);
        return -1;
    }
    return 0;
}

int privilege_drop(uid_t uid, gid_t gid, const char *chroot_dir, unsigned flags, strbuf *err)
{
    if (uid == 0 && !(flags & PRIV_ALLOW_ROOT)) {
        set_err(err, "refusing to run as uid 0: a service user must not be root");
        return -1;
    }
    if (!privilege_can_switch())
        return drop_unprivileged(uid, gid, chroot_dir, err);

    /* 1. Groups first: setgroups() needs root. Only the primary group is
     *    kept (see privilege.h for why not initgroups()). */
    if (setgroups(1, &gid) != 0) {
        set_err(err, "cannot set the group list to gid %lu: %s", (unsigned long)gid,
                strerror(errno));
        return -1;
    }
    /* 2. chroot also needs root; chdir so no directory outside stays open. */
    if (chroot_dir != NULL) {
        if (chroot(chroot_dir) != 0) {
            set_err(err, "cannot chroot to %s: %s", chroot_dir, strerror(errno));
            return -1;
        }
        if (chdir("/") != 0) {
            set_err(err, "cannot chdir to / after chroot to %s: %s", chroot_dir,
                    strerror(errno));
            return -1;
        }
    }
    /* 3. gid before uid: after setresuid() we could no longer change it. */
    if (setresgid(gid, gid, gid) != 0) {
        set_err(err, "cannot switch to gid %lu: %s", (unsigned long)gid, strerror(errno));
        return -1;
    }
    /* 4. All three uids, so no saved uid 0 remains to switch back to. */
    if (setresuid(uid, uid, uid) != 0) {
        set_err(err, "cannot switch to uid %lu: %s", (unsigned long)uid, strerror(errno));
        return -1;
    }
    /* 5. Trust nothing: check the result. */
    return verify_dropped(uid, gid, err);
}
