/*
 * scan.c - qmgr's view of the queue directories: at start every message
 * left in active/ by a crash goes back to incoming/; incoming/ is scanned on
 * every trigger and every few seconds, deferred/ every queue_run_delay (only
 * messages whose retry time has come, or all of them on a flush). A name is
 * never trusted: only queue_id_valid() names are touched; writers'
 * temporary files (.<id>) are left alone unless older than a day.
 */
#include "qmgr.h"
#include "mail/queue_id.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Opens <queue>/<sub> as a directory that is not a symlink. */
static int open_sub(struct qmgr *q, const char *sub)
{
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/%s", q->queue_dir, sub);
    int fd = open(path.data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        log_warning("cannot open queue directory %s: %m", path.data);
    strbuf_free(&path);
    return fd;
}

/* The valid ids in <queue>/<sub>, sorted (= oldest first). With clean_temp,
 * writers' temporary files older than QMGR_STALE_TEMP_SECONDS are removed. */
static int list_ids(struct qmgr *q, const char *sub, bool clean_temp, struct qmgr_names *out)
{
    memset(out, 0, sizeof(*out));
    int dfd = open_sub(q, sub);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return -1;
    }
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (queue_id_valid(e->d_name)) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 64;
                out->ids = xreallocarray(out->ids, out->cap, sizeof(*out->ids));
            }
            memcpy(out->ids[out->n++], e->d_name, QUEUE_ID_SIZE);
        } else if (clean_temp && e->d_name[0] == '.' && queue_id_valid(e->d_name + 1)) {
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode) && now - st.st_mtime > QMGR_STALE_TEMP_SECONDS) {
                if (unlinkat(dirfd(d), e->d_name, 0) == 0)
                    log_info("removed stale temporary file %s/%s/%s", q->queue_dir, sub,
                             e->d_name);
            }
        }
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->ids, out->n, sizeof(*out->ids), cmp_ids);
    return 0;
}

void qmgr_recover_active(struct qmgr *q)
{
    struct qmgr_names ids;
    if (list_ids(q, "active", false, &ids) < 0)
        log_fatal("cannot read %s/active", q->queue_dir);
    int from = open_sub(q, "active"), to = open_sub(q, "incoming");
    if (from < 0 || to < 0)
        log_fatal("cannot open the queue directories under %s", q->queue_dir);
    size_t moved = 0;
    for (size_t i = 0; i < ids.n; i++) {
        if (renameat(from, ids.ids[i], to, ids.ids[i]) == 0)
            moved++;
        else
            log_warning("%s: cannot move back from active/ to incoming/: %m", ids.ids[i]);
    }
    if (moved) {
        /* The new names must survive a crash before anything else happens. */
        fsync(to);
        fsync(from);
        log_info("moved %zu message%s left in active/ back to incoming/", moved,
                 moved == 1 ? "" : "s");
    }
    close(from);
    close(to);
    free(ids.ids);
}

void qmgr_take_incoming(struct qmgr *q)
{
    while (q->incoming_next < q->incoming.n && q->nmsgs < QMGR_ACTIVE_LIMIT)
        qmgr_message_start(q, "incoming", q->incoming.ids[q->incoming_next++]);
}

bool qmgr_incoming_listable(const struct qmgr *q)
{
    return q->incoming_next == q->incoming.n && q->nmsgs < QMGR_ACTIVE_LIMIT;
}

void qmgr_scan_incoming(struct qmgr *q)
{
    /* One listing serves many messages: under load, incoming/ holds
     * thousands of files and every commit sends a trigger; listing (and
     * sorting) the directory for each would cost more than the delivery. */
    qmgr_take_incoming(q);
    if (!qmgr_incoming_listable(q))
        return; /* the next listing comes when this one is used up */
    free(q->incoming.ids);
    q->incoming_next = 0;
    if (list_ids(q, "incoming", true, &q->incoming) < 0)
        memset(&q->incoming, 0, sizeof(q->incoming));
    qmgr_take_incoming(q);
}

void qmgr_scan_deferred(struct qmgr *q, bool all)
{
    struct qmgr_names ids;
    q->deferred_cut = false;
    if (list_ids(q, "deferred", false, &ids) < 0)
        return;
    time_t now = time(NULL);
    strbuf path, err;
    strbuf_init(&path);
    strbuf_init(&err);
    for (size_t i = 0; i < ids.n; i++) {
        if (q->nmsgs >= QMGR_ACTIVE_LIMIT) {
            q->deferred_cut = true; /* scanned again when room frees up */
            break;
        }
        bool due = all;
        if (!due) {
            strbuf_reset(&path);
            strbuf_printf(&path, "%s/deferred/%s", q->queue_dir, ids.ids[i]);
            struct queue_file *qf;
            if (queue_file_open_readonly(path.data, &qf, &err) < 0) {
                due = true; /* message_start reports and quarantines it */
            } else {
                due = qf->next_retry <= (int64_t)now;
                queue_file_close(&qf);
            }
        }
        if (due)
            qmgr_message_start(q, "deferred", ids.ids[i]);
    }
    strbuf_free(&path);
    strbuf_free(&err);
    free(ids.ids);
}
