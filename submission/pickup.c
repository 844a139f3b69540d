/*
 * pickup.c - moves messages that local users dropped with `sendmail` from
 * maildrop/ into the queue.
 *
 * A `daemon` service (one process) run as the mail owner. It wakes on a
 * trigger from sendmail (public/pickup) and every pickup_interval. Each
 * maildrop file is hostile until proven otherwise: it is opened with the
 * validating queue file reader (no symlinks, no hard links, every record
 * checked), its owner names the local user who sent it, and its size is
 * checked; a file that fails is moved to corrupt/ with a log line and
 * nothing else is affected. A valid one becomes a new queue file in
 * incoming/ — committed durably before the maildrop file is removed, so a
 * crash in between can only duplicate, never lose — and qmgr is woken.
 */
#define _GNU_SOURCE
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/received.h"
#include "mail/server.h"
#include "mail/trigger.h"
#include "util/config.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STALE_TEMP_SECONDS (24 * 3600)

static struct {
    const char *queue_dir;
    const char *myhostname;
    const char *mail_name;
    long long size_limit;
    long long interval;
} pk;

static void quarantine(const char *id, const char *why)
{
    strbuf err;
    strbuf_init(&err);
    if (queue_file_quarantine_from(pk.queue_dir, "maildrop", id, &err) < 0)
        log_error("maildrop/%s: %s; cannot move it to corrupt/: %s", id, why, err.data);
    else
        log_warning("maildrop/%s: %s; moved to corrupt/", id, why);
    strbuf_free(&err);
}

/* Copies the validated maildrop file into a new queue file. */
static int requeue(struct queue_file *in, uid_t uid, const char *user, char newid[QUEUE_ID_SIZE],
                   strbuf *err)
{
    struct queue_writer *w;
    if (queue_file_create(pk.queue_dir, newid, &w, err) < 0)
        return -1;
    int rc = queue_file_set_sender(w, in->sender, strlen(in->sender), err);
    if (rc == 0)
        rc = queue_file_set_attr(w, QUEUE_ATTR_PROTOCOL, "local", 5, err);
    if (rc == 0 && in->envid)
        rc = queue_file_set_attr(w, QUEUE_ATTR_ENVID, in->envid, strlen(in->envid), err);
    if (rc == 0 && in->ret != QUEUE_RET_NONE)
        rc = queue_file_set_ret(w, in->ret, err);
    for (size_t i = 0; rc == 0 && i < in->rcpt_count; i++) {
        const struct queue_rcpt *r = &in->rcpts[i];
        rc = queue_file_add_recipient(w, r->address, strlen(r->address), r->orcpt,
                                      r->orcpt ? strlen(r->orcpt) : 0, r->notify, err);
    }
    if (rc == 0) {
        strbuf hdr;
        strbuf_init(&hdr);
        strbuf_printf(&hdr, "Received: by %s (%s, from userid %lu)\r\n\tid %s; ", pk.myhostname,
                      pk.mail_name, (unsigned long)uid, newid);
        rfc5322_date(&hdr, time(NULL));
        strbuf_appends(&hdr, "\r\n");
        rc = queue_file_write_content(w, hdr.data, hdr.len, err);
        strbuf_free(&hdr);
    }
    char buf[65536];
    for (uint64_t pos = 0; rc == 0 && pos < in->content_length;) {
        ssize_t n = queue_file_read_content(in, pos, buf, sizeof(buf), err);
        if (n <= 0) {
            if (n == 0)
                strbuf_sets(err, "content shorter than its size record");
            rc = -1;
            break;
        }
        rc = queue_file_write_content(w, buf, (size_t)n, err);
        pos += (uint64_t)n;
    }
    if (rc < 0) {
        queue_file_abort(&w);
        return -1;
    }
    (void)user;
    return queue_file_commit(&w, err);
}

static void pickup_one(const char *id)
{
    strbuf path, err;
    strbuf_init(&path);
    strbuf_init(&err);
    strbuf_printf(&path, "%s/maildrop/%s", pk.queue_dir, id);
    struct queue_file *qf = NULL;
    if (queue_file_open_readonly(path.data, &qf, &err) < 0) {
        if (errno == ENOENT) /* gone meanwhile */
            goto out;
        quarantine(id, err.data);
        goto out;
    }
    struct stat st;
    if (fstat(qf->fd, &st) < 0) {
        log_error("maildrop/%s: fstat: %m", id);
        goto out;
    }
    if (pk.size_limit > 0 && qf->content_length > (uint64_t)pk.size_limit) {
        quarantine(id, "larger than message_size_limit");
        goto out;
    }
    struct priv_user u;
    strbuf why;
    strbuf_init(&why);
    enum priv_lookup pl = privilege_lookup_uid(st.st_uid, &u, &why);
    if (pl == PRIV_LOOKUP_ERROR) {
        log_warning("maildrop/%s: %s; will retry", id, why.data);
        strbuf_free(&why);
        goto out;
    }
    char newid[QUEUE_ID_SIZE];
    if (requeue(qf, st.st_uid, pl == PRIV_LOOKUP_FOUND ? u.name : "unknown", newid, &err) < 0) {
        log_error("maildrop/%s: cannot queue: %s; will retry", id, err.data);
    } else {
        log_event(newid, "uid=%lu from=<%s> (maildrop/%s)", (unsigned long)st.st_uid, qf->sender,
                  id);
        if (unlink(path.data) < 0)
            log_error("maildrop/%s: cannot remove after queueing as %s: %m", id, newid);
        trigger_send(pk.queue_dir, "public/qmgr", TRIGGER_NEW_MAIL);
    }
    if (pl == PRIV_LOOKUP_FOUND)
        privilege_user_free(&u);
    strbuf_free(&why);
out:
    queue_file_close(&qf);
    strbuf_free(&path);
    strbuf_free(&err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One pass over maildrop/, oldest first; removes writers' temporary files
 * left by a crash a day ago. */
static void scan(void)
{
    strbuf dir;
    strbuf_init(&dir);
    strbuf_printf(&dir, "%s/maildrop", pk.queue_dir);
    DIR *dh = opendir(dir.data);
    if (dh == NULL) {
        log_warning("cannot read %s: %m", dir.data);
        strbuf_free(&dir);
        return;
    }
    char **ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    time_t now = time(NULL);
    while ((de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.' && queue_id_valid(de->d_name + 1)) {
            struct stat st;
            if (fstatat(dirfd(dh), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                now - st.st_mtime > STALE_TEMP_SECONDS && unlinkat(dirfd(dh), de->d_name, 0) == 0)
                log_info("maildrop/%s: removed an unfinished file older than a day", de->d_name);
            continue;
        }
        if (!queue_id_valid(de->d_name)) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                log_warning("maildrop/: ignoring a file with an invalid name");
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = realloc(ids, cap * sizeof(*ids));
            if (ids == NULL)
                log_fatal("out of memory");
        }
        ids[n++] = strdup(de->d_name);
    }
    closedir(dh);
    if (n > 1)
        qsort(ids, n, sizeof(*ids), cmp_str);
    for (size_t i = 0; i < n && !server_stopping(); i++)
        pickup_one(ids[i]);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    strbuf_free(&dir);
}

static void pickup_run(struct server_ctx *ctx)
{
    params_host_defaults(ctx->config, NULL);
    pk.queue_dir = config_get(ctx->config, "queue_directory");
    pk.myhostname = config_get(ctx->config, "myhostname");
    pk.mail_name = config_get(ctx->config, "mail_name");
    strbuf err;
    strbuf_init(&err);
    if (config_get_size(ctx->config, "message_size_limit", &pk.size_limit, &err) < 0 ||
        config_get_time(ctx->config, "pickup_interval", &pk.interval, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
    scan();
    while (!server_stopping()) {
        struct pollfd p[8];
        int np = ctx->nlisten < 8 ? ctx->nlisten : 8;
        for (int i = 0; i < np; i++)
            p[i] = (struct pollfd){ .fd = ctx->listen_fds[i], .events = POLLIN };
        int rc = poll(p, (nfds_t)np, (int)(pk.interval * 1000));
        if (rc < 0 && errno != EINTR)
            log_fatal("poll: %m");
        /* Drain every waiting trigger: one scan serves them all. */
        for (int i = 0; rc > 0 && i < np; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd;
            while ((fd = accept4(ctx->listen_fds[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
                close(fd);
        }
        if (!server_stopping())
            scan();
    }
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_DAEMON,
        .run = pickup_run,
    };
    return server_main(argc, argv, &ops);
}
