/*
 * petrel_queue.c - `petrel queue ...`: the administrator's view of the mail
 * queue (list, show) and the operations Postfix admins know from postqueue
 * and postsuper: hold, release, delete, requeue, flush.
 *
 * Operations are renames and unlinks between queue directories. A message
 * that qmgr is delivering right now (in active/) is left alone and
 * reported: qmgr owns it until it puts it back. Each rename is atomic, so
 * racing with qmgr can make an operation fail ("try again"), never lose or
 * duplicate a message. Needs root or the mail owner (the queue is private).
 */
#include "petrel.h"
#include "queue_list.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/trigger.h"
#include "util/config.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const movable[] = { "incoming", "deferred", "hold", "maildrop" };

/* Where is message id? Returns the directory name or NULL. */
static const char *locate(const char *q, const char *id)
{
    static const char *const all[] = { "incoming", "active", "deferred", "hold", "maildrop" };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        strbuf p;
        strbuf_init(&p);
        strbuf_printf(&p, "%s/%s/%s", q, all[i], id);
        bool there = access(p.data, F_OK) == 0;
        strbuf_free(&p);
        if (there)
            return all[i];
    }
    return NULL;
}

/* Calls fn for every message id in the movable directories (ALL), or the
 * one id given. from/to filters match the sender/any recipient exactly
 * (case-insensitive). Returns the number of failures. */
typedef int (*queue_op)(const char *q, const char *dir, const char *id);

static bool matches(const char *q, const char *dir, const char *id, const char *from,
                    const char *to)
{
    if (from == NULL && to == NULL)
        return true;
    strbuf p, err;
    strbuf_init(&p);
    strbuf_init(&err);
    strbuf_printf(&p, "%s/%s/%s", q, dir, id);
    struct queue_file *qf;
    bool ok = false;
    if (queue_file_open_readonly(p.data, &qf, &err) == 0) {
        ok = from == NULL || strcasecmp(qf->sender, from) == 0;
        if (ok && to) {
            ok = false;
            for (size_t i = 0; i < qf->rcpt_count; i++)
                if (strcasecmp(qf->rcpts[i].address, to) == 0)
                    ok = true;
        }
        queue_file_close(&qf);
    }
    strbuf_free(&p);
    strbuf_free(&err);
    return ok;
}

static int for_each(const char *q, const char *target, const char *from, const char *to,
                    const char *const *dirs, size_t ndirs, queue_op fn, int *count)
{
    int failures = 0;
    if (target && strcmp(target, "ALL") != 0) {
        if (!queue_id_valid(target)) {
            fprintf(stderr, "petrel queue: \"%s\" is not a queue id\n", target);
            return 1;
        }
        const char *dir = locate(q, target);
        if (dir == NULL) {
            fprintf(stderr, "petrel queue: %s: no such message\n", target);
            return 1;
        }
        if (strcmp(dir, "active") == 0) {
            fprintf(stderr, "petrel queue: %s: being delivered right now; try again shortly\n",
                    target);
            return 1;
        }
        for (size_t i = 0; i < ndirs; i++)
            if (strcmp(dir, dirs[i]) == 0) {
                failures += fn(q, dir, target);
                *count += failures == 0;
                return failures;
            }
        fprintf(stderr, "petrel queue: %s: not possible for a message in %s/\n", target, dir);
        return 1;
    }
    for (size_t d = 0; d < ndirs; d++) {
        strbuf p;
        strbuf_init(&p);
        strbuf_printf(&p, "%s/%s", q, dirs[d]);
        DIR *dh = opendir(p.data);
        strbuf_free(&p);
        if (dh == NULL) {
            if (errno == EACCES) {
                fprintf(stderr, "petrel queue: permission denied: run as root or the mail owner\n");
                return 1;
            }
            continue;
        }
        struct dirent *de;
        while ((de = readdir(dh)) != NULL)
            if (queue_id_valid(de->d_name) && matches(q, dirs[d], de->d_name, from, to)) {
                int f = fn(q, dirs[d], de->d_name);
                failures += f;
                *count += f == 0;
            }
        closedir(dh);
    }
    return failures;
}

static int move(const char *q, const char *from_dir, const char *id, const char *to_dir)
{
    strbuf a, b;
    strbuf_init(&a);
    strbuf_init(&b);
    strbuf_printf(&a, "%s/%s/%s", q, from_dir, id);
    strbuf_printf(&b, "%s/%s/%s", q, to_dir, id);
    int rc = rename(a.data, b.data);
    if (rc < 0)
        fprintf(stderr, "petrel queue: %s: cannot move from %s/ to %s/: %s%s\n", id, from_dir,
                to_dir, strerror(errno), errno == ENOENT ? " (picked up meanwhile; try again)" : "");
    strbuf_free(&a);
    strbuf_free(&b);
    return rc < 0;
}

static int op_hold(const char *q, const char *dir, const char *id)
{
    return strcmp(dir, "hold") == 0 ? 0 : move(q, dir, id, "hold");
}

static int op_release(const char *q, const char *dir, const char *id)
{
    /* Released mail is retried now: qmgr treats incoming/ as due. */
    return move(q, dir, id, "incoming");
}

static int op_requeue(const char *q, const char *dir, const char *id)
{
    return strcmp(dir, "incoming") == 0 ? 0 : move(q, dir, id, "incoming");
}

static int op_delete(const char *q, const char *dir, const char *id)
{
    strbuf p;
    strbuf_init(&p);
    strbuf_printf(&p, "%s/%s/%s", q, dir, id);
    int rc = unlink(p.data);
    if (rc < 0)
        fprintf(stderr, "petrel queue: %s: cannot delete: %s\n", id, strerror(errno));
    strbuf_reset(&p);
    strbuf_printf(&p, "%s/defer/%s", q, id);
    unlink(p.data);
    strbuf_free(&p);
    return rc < 0;
}

static int show(const char *q, const char *id)
{
    if (!queue_id_valid(id)) {
        fprintf(stderr, "petrel queue: \"%s\" is not a queue id\n", id);
        return 1;
    }
    const char *dir = locate(q, id);
    if (dir == NULL) {
        fprintf(stderr, "petrel queue: %s: no such message\n", id);
        return 1;
    }
    strbuf p, err;
    strbuf_init(&p);
    strbuf_init(&err);
    strbuf_printf(&p, "%s/%s/%s", q, dir, id);
    struct queue_file *qf;
    if (queue_file_open_readonly(p.data, &qf, &err) < 0) {
        fprintf(stderr, "petrel queue: %s\n", err.data);
        strbuf_free(&p);
        strbuf_free(&err);
        return 1;
    }
    printf("*** ENVELOPE RECORDS %s/%s ***\n", dir, id);
    printf("arrival_time: %ld\n", (long)qf->arrival.tv_sec);
    printf("attempts: %u\n", (unsigned)QUEUE_ATTEMPTS_COUNT(qf->attempts));
    printf("sender: %s\n", qf->sender);
    if (qf->client_name)
        printf("client_name: %s\n", qf->client_name);
    if (qf->client_addr)
        printf("client_address: %s\n", qf->client_addr);
    if (qf->helo)
        printf("helo_name: %s\n", qf->helo);
    if (qf->protocol)
        printf("protocol: %s\n", qf->protocol);
    if (qf->auth_user)
        printf("sasl_username: %s\n", qf->auth_user);
    if (qf->envid)
        printf("envid: %s\n", qf->envid);
    for (size_t i = 0; i < qf->rcpt_count; i++)
        printf("recipient: %s (%s)%s%s\n", qf->rcpts[i].address,
               queue_rcpt_status_name(qf->rcpts[i].status), qf->rcpts[i].orcpt ? " orcpt=" : "",
               qf->rcpts[i].orcpt ? qf->rcpts[i].orcpt : "");
    printf("*** MESSAGE CONTENTS %s/%s ***\n", dir, id);
    fflush(stdout);
    char buf[65536];
    for (uint64_t pos = 0; pos < qf->content_length;) {
        ssize_t n = queue_file_read_content(qf, pos, buf, sizeof(buf), &err);
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, stdout);
        pos += (uint64_t)n;
    }
    printf("*** END OF MESSAGE %s/%s ***\n", dir, id);
    queue_file_close(&qf);
    strbuf_free(&p);
    strbuf_free(&err);
    return 0;
}

int cmd_queue(struct petrel_cli *cli, int argc, char **argv)
{
    static const char *usage_text =
        "usage: petrel queue list [--json] | show ID | hold ID|ALL | release ID|ALL |\n"
        "                    delete ID|ALL|--from ADDR|--to ADDR | requeue ID|ALL | flush\n";
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 64;
    }
    strbuf err;
    strbuf_init(&err);
    petrel_load(cli, &err);
    fputs(err.data, stderr);
    strbuf_free(&err);
    const char *q = petrel_param(cli, "queue_directory");
    const char *op = argv[1];
    if (strcmp(op, "list") == 0)
        return queue_list(q, stdout, argc > 2 && strcmp(argv[2], "--json") == 0);
    if (strcmp(op, "show") == 0 && argc == 3)
        return show(q, argv[2]);
    if (strcmp(op, "flush") == 0 && argc == 2) {
        if (trigger_send(q, "public/qmgr", TRIGGER_FLUSH) < 0) {
            fprintf(stderr, "petrel queue flush: cannot reach qmgr (is the mail system running?)\n");
            return 1;
        }
        return 0;
    }
    const char *target = NULL, *from = NULL, *to = NULL;
    if (argc == 3)
        target = argv[2];
    else if (argc == 4 && strcmp(op, "delete") == 0 && strcmp(argv[2], "--from") == 0)
        from = argv[3];
    else if (argc == 4 && strcmp(op, "delete") == 0 && strcmp(argv[2], "--to") == 0)
        to = argv[3];
    else {
        fputs(usage_text, stderr);
        return 64;
    }
    int count = 0, failures;
    static const char *const held[] = { "hold" };
    if (strcmp(op, "hold") == 0)
        failures = for_each(q, target, NULL, NULL, movable, 3, op_hold, &count);
    else if (strcmp(op, "release") == 0)
        failures = for_each(q, target, NULL, NULL, held, 1, op_release, &count);
    else if (strcmp(op, "requeue") == 0)
        failures = for_each(q, target, NULL, NULL, movable, 3, op_requeue, &count);
    else if (strcmp(op, "delete") == 0)
        failures = for_each(q, target, from, to, movable, 4, op_delete, &count);
    else {
        fputs(usage_text, stderr);
        return 64;
    }
    printf("petrel queue %s: %d message%s\n", op, count, count == 1 ? "" : "s");
    if (count && strcmp(op, "delete") != 0 && strcmp(op, "hold") != 0)
        trigger_send(q, "public/qmgr", TRIGGER_NEW_MAIL);
    return failures ? 1 : 0;
}
