/*
 * mailbox.c - delivery into a user's own mailbox: Maildir under the home
 * directory (home_mailbox ending in '/') or an mbox file in
 * mail_spool_directory (home_mailbox empty). Runs in the long-lived child
 * of the user (runner.c), switched to the user; the Maildir and mbox modules refuse symlinks, hard
 * links and foreign-owned files (BAD-INPUT.md row 8).
 *
 * The spool directory: on Debian /var/mail is root:mail, mode 2775, and
 * the mbox files are <user>:mail 0660 — mail programs are set-gid mail to
 * create dot-locks there. When the spool directory is group-writable and
 * not world-writable, the delivery child therefore runs with that group
 * (never gid 0) instead of the user's primary group; with a sticky
 * world-writable spool (mode 1777) it keeps the user's group.
 */
#include "local.h"
#include <errno.h>
#include "mail/maildir.h"
#include "mail/mbox.h"
#include "mail/queue_file.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct job {
    struct local_settings *s;
    const struct local_message *m;
    const struct action *a;
};

static int maildir_sink(void *arg, const char *p, size_t n, strbuf *err)
{
    return maildir_write_crlf_to_lf(arg, p, n, err);
}

static int mbox_sink(void *arg, const char *p, size_t n, strbuf *err)
{
    return mbox_write_crlf(arg, p, n, err) == MBOX_OK ? 0 : -1;
}

static bool too_big(const struct job *j, struct local_result *res)
{
    if (j->s->mailbox_size_limit && j->m->qf->content_length > j->s->mailbox_size_limit) {
        local_result_set(res, DELIVERY_BOUNCED, "5.2.3",
                         "message too large for the mailbox (%llu bytes, mailbox_size_limit "
                         "%llu)",
                         (unsigned long long)j->m->qf->content_length,
                         (unsigned long long)j->s->mailbox_size_limit);
        return true;
    }
    return false;
}

/* Starts a delivery into the Maildir at path. The Maildir is created (or
 * completed) only when opening it fails or cur/ is missing: the usual
 * delivery into an existing Maildir costs no mkdir and no second open of
 * its directories. */
static int open_maildir(const char *path, struct maildir_delivery **d, strbuf *err)
{
    strbuf cur;
    strbuf_init(&cur);
    strbuf_printf(&cur, "%s/cur", path);
    struct stat st;
    bool whole = lstat(cur.data, &st) == 0 && S_ISDIR(st.st_mode);
    strbuf_free(&cur);
    if (whole && maildir_open(path, d, err) == 0)
        return 0;
    strbuf_reset(err);
    if (maildir_create(path, 0700, err) < 0)
        return -1;
    return maildir_open(path, d, err);
}

static void deliver_maildir(void *arg, struct local_result *res, strbuf *data)
{
    (void)data;
    const struct job *j = arg;
    strbuf path, err;
    strbuf_init(&path);
    strbuf_init(&err);
    const char *rel = j->s->home_mailbox;
    while (*rel == '/')
        rel++;
    strbuf_printf(&path, "%s/%s", j->a->who.home, rel);
    while (path.len > 1 && path.data[path.len - 1] == '/')
        strbuf_truncate(&path, path.len - 1);
    struct maildir_delivery *d = NULL;
    char *final = NULL;
    if (too_big(j, res))
        goto out;
    if (open_maildir(path.data, &d, &err) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.2.0", "cannot deliver to maildir %s: %s",
                         path.data, err.data);
        goto out;
    }
    if (local_message_copy(j->m, j->a->recipient, true, maildir_sink, d, &err) != 0) {
        maildir_abort(&d);
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "maildir delivery failed: %s",
                         err.data);
        goto out;
    }
    if (maildir_commit(&d, &final, &err) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "maildir delivery failed: %s",
                         err.data);
        goto out;
    }
    local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to maildir");
    strbuf_sets(data, final);
out:
    free(final);
    strbuf_free(&path);
    strbuf_free(&err);
}

/* Appends the message mbox-style (also used for /file targets). */
void local_mbox_append(const struct local_message *m, const char *recipient, const char *path,
                       const struct mbox_options *o, struct local_result *res, const char *what)
{
    strbuf err, from;
    strbuf_init(&err);
    strbuf_init(&from);
    struct mbox *mb = NULL;
    int rc = mbox_open(path, o, &mb, &err);
    if (rc == MBOX_OK) {
        mbox_from_line(&from, m->sender, time(NULL));
        rc = mbox_write_raw(mb, from.data, from.len, &err);
        if (rc == MBOX_OK && local_message_copy(m, recipient, true, mbox_sink, mb, &err) != 0)
            rc = MBOX_TEMP;
        if (rc == MBOX_OK)
            rc = mbox_commit(&mb, &err);
        else
            mbox_abort(&mb);
    }
    if (rc == MBOX_OK)
        local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to %s", what);
    else if (rc == MBOX_FULL)
        local_result_set(res, DELIVERY_DEFERRED, "4.2.2", "%s", err.data);
    else
        local_result_set(res, DELIVERY_DEFERRED, "4.2.0", "cannot deliver to %s: %s", what,
                         err.data);
    strbuf_free(&err);
    strbuf_free(&from);
}

static void deliver_mbox(void *arg, struct local_result *res, strbuf *data)
{
    const struct job *j = arg;
    if (too_big(j, res))
        return;
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/%s", j->s->spool_dir, j->a->who.name);
    struct mbox_options o;
    mbox_options_default(&o);
    o.size_limit = j->s->mailbox_size_limit;
    local_mbox_append(j->m, j->a->recipient, path.data, &o, res, "mailbox");
    strbuf_set(data, path.data, path.len);
    strbuf_free(&path);
}

void local_mailbox_job(struct local_settings *s, const struct local_message *m,
                       const struct action *a, bool maildir, struct local_result *res,
                       strbuf *data)
{
    struct job j = {s, m, a};
    if (maildir)
        deliver_maildir(&j, res, data);
    else
        deliver_mbox(&j, res, data);
}

void local_deliver_mailbox(struct local_settings *s, const struct local_message *m,
                           const struct action *a, struct local_result *res)
{
    struct local_who who;
    local_who_copy(&who, &a->who);
    bool maildir = s->home_mailbox[0] != '\0' &&
                   s->home_mailbox[strlen(s->home_mailbox) - 1] == '/';
    if (!maildir && s->home_mailbox[0] != '\0') {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "home_mailbox '%s' names an mbox file in the home directory, which is "
                         "not supported: use a Maildir (trailing '/') or leave it empty",
                         s->home_mailbox);
        local_who_free(&who);
        return;
    }
    if (!maildir) {
        struct stat st;
        if (stat(s->spool_dir, &st) == 0 && (st.st_mode & S_IWGRP) && !(st.st_mode & S_IWOTH) &&
            st.st_gid != 0 && geteuid() == 0)
            who.gid = st.st_gid;
    }
    strbuf data;
    strbuf_init(&data);
    local_runner_deliver(s, m, a, &who, maildir, res, &data);
    if (data.len)
        log_debug("%s: %s: %s", m->id, a->recipient, data.data);
    strbuf_free(&data);
    local_who_free(&who);
}

/* ---- virtual mailboxes ---- */

/* Creates the directories between virtual_mailbox_base and the mailbox
 * (e.g. base/example.org/), as the store owner, refusing symlinks. */
static int make_parents(const char *base, const char *path, strbuf *err)
{
    size_t bl = strlen(base);
    strbuf cur;
    strbuf_init(&cur);
    int rc = 0;
    for (const char *p = path + bl + 1; (p = strchr(p, '/')) != NULL; p++) {
        strbuf_set(&cur, path, (size_t)(p - path));
        struct stat st;
        if (lstat(cur.data, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                strbuf_printf(err, "%s is not a directory", cur.data);
                rc = -1;
                break;
            }
        } else if (mkdir(cur.data, 0700) < 0 && errno != EEXIST) {
            strbuf_printf(err, "cannot create %s: %s", cur.data, strerror(errno));
            rc = -1;
            break;
        }
    }
    strbuf_free(&cur);
    return rc;
}

static void deliver_virtual(void *arg, struct local_result *res, strbuf *data)
{
    const struct job *j = arg;
    if (too_big(j, res))
        return;
    const char *path = j->a->text;
    size_t n = strlen(path);
    strbuf err, dir;
    strbuf_init(&err);
    strbuf_init(&dir);
    if (make_parents(j->s->virtual_base, path, &err) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.2.0", "cannot deliver to %s: %s", path,
                         err.data);
    } else if (n > 0 && path[n - 1] == '/') {
        strbuf_set(&dir, path, n - 1);
        struct maildir_delivery *d = NULL;
        char *final = NULL;
        if (open_maildir(dir.data, &d, &err) < 0) {
            local_result_set(res, DELIVERY_DEFERRED, "4.2.0", "cannot deliver to maildir %s: %s",
                             dir.data, err.data);
        } else if (local_message_copy(j->m, j->a->recipient, true, maildir_sink, d, &err) != 0) {
            maildir_abort(&d);
            local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "maildir delivery failed: %s",
                             err.data);
        } else if (maildir_commit(&d, &final, &err) < 0) {
            local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "maildir delivery failed: %s",
                             err.data);
        } else {
            local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to virtual maildir");
            strbuf_sets(data, final);
        }
        free(final);
    } else {
        struct mbox_options o;
        mbox_options_default(&o);
        o.size_limit = j->s->mailbox_size_limit;
        local_mbox_append(j->m, j->a->recipient, path, &o, res, "virtual mailbox");
    }
    strbuf_free(&err);
    strbuf_free(&dir);
}

void local_deliver_virtual(struct local_settings *s, const struct local_message *m,
                           const struct action *a, struct local_result *res)
{
    struct job j = {s, m, a};
    strbuf data;
    strbuf_init(&data);
    local_run_as(&a->who, s->command_time_limit, deliver_virtual, &j, res, &data);
    strbuf_free(&data);
}
