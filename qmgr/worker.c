/*
 * worker.c - one short-lived child process per batch. The child connects to
 * the agent's socket (<queue>/private/<transport>), sends the deliver
 * request (lib/mail/delivery.h), and relays every validated result to the
 * parent over a socketpair in the same record format, answering "deferred"
 * itself for every recipient the agent left unanswered (agent missing,
 * crashed, timed out, broken protocol), then the end record.
 *
 * Why a child: the agent may take long (a pipe delivery, a slow disk) and
 * the protocol library reads with blocking deadlines; in a child that never
 * stalls the parent's loop. The child never writes the queue file: the
 * parent records every result, so only one process writes a queue file.
 */
#define _GNU_SOURCE
#include "qmgr.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Connects to the agent; -1 with why set. */
static int agent_connect(struct qmgr *q, const char *transport, strbuf *why)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s", q->queue_dir,
                     transport);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        strbuf_printf(why, "socket path %s/private/%s is too long", q->queue_dir, transport);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        strbuf_printf(why, "socket: %s", strerror(errno));
        return -1;
    }
    /* A full backlog makes a UNIX connect wait; SO_SNDTIMEO bounds it. */
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        strbuf_printf(why, "connect to private/%s: %s", transport, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void relay_deferred(int sock, unsigned index, const char *dsn, const char *why)
{
    struct delivery_result res;
    delivery_result_init(&res);
    delivery_result_set(&res, index, DELIVERY_DEFERRED, dsn, "%s", why);
    delivery_result_write(sock, &res);
    delivery_result_free(&res);
}

static void worker_main(struct qmgr *q, struct qmgr_batch *b, int sock)
{
    const struct queue_file *qf = b->msg->qf;
    const char *tp = b->tp->name;
    strbuf why;
    strbuf_init(&why);
    const char *dsn = "4.4.1";
    int fd = agent_connect(q, tp, &why);
    if (fd < 0) {
        strbuf err;
        strbuf_init(&err);
        strbuf_printf(&err, "delivery agent %s unavailable: %s", tp, why.data);
        strbuf_sets(&why, err.data);
        strbuf_free(&err);
    } else {
        struct delivery_request req;
        delivery_request_init(&req);
        memcpy(req.queue_id, b->msg->id, QUEUE_ID_SIZE);
        strbuf_sets(&req.sender, qf->sender);
        req.arrival = qf->arrival.tv_sec;
        for (size_t i = 0; i < b->n; i++) {
            const struct queue_rcpt *r = &qf->rcpts[b->idx[i]];
            delivery_request_add(&req, b->idx[i], r->address, r->orcpt, r->notify);
        }
        dsn = "4.3.0";
        if (delivery_request_write(fd, &req) < 0) {
            strbuf_printf(&why, "delivery agent %s failed: cannot send the request: %s", tp,
                          strerror(errno));
        } else {
            struct delivery_result res;
            delivery_result_init(&res);
            strbuf err;
            strbuf_init(&err);
            for (;;) {
                int rc = delivery_result_read(fd, &res, &err);
                if (rc == 0)
                    break;
                if (rc < 0) {
                    strbuf_printf(&why, "delivery agent %s failed: %s", tp, err.data);
                    break;
                }
                size_t k;
                for (k = 0; k < b->n && b->idx[k] != res.index; k++)
                    ;
                if (k == b->n || b->answered[k]) {
                    strbuf_printf(&why, "delivery agent %s failed: answer for recipient %u "
                                        "that was not asked for or answered twice",
                                  tp, res.index);
                    break;
                }
                b->answered[k] = true;
                if (delivery_result_write(sock, &res) < 0)
                    _exit(1); /* the parent is gone; it will retry everything */
            }
            strbuf_free(&err);
            delivery_result_free(&res);
        }
        delivery_request_free(&req);
        close(fd);
    }
    for (size_t k = 0; k < b->n; k++)
        if (!b->answered[k])
            relay_deferred(sock, b->idx[k], dsn,
                           why.len ? why.data : "delivery agent gave no answer");
    delivery_done_write(sock);
    strbuf_free(&why);
}

int qmgr_worker_start(struct qmgr *q, struct qmgr_batch *b)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_warning("socketpair: %m");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_warning("fork: %m");
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* Nothing of the parent's but what this batch needs. */
        close(sv[0]);
        for (int i = 0; i < q->nlisten; i++)
            close(q->listen_fds[i]);
        close(SERVER_STATUS_FD);
        for (struct qmgr_batch *o = q->running; o; o = o->next)
            close(o->fd);
        signal(SIGTERM, SIG_DFL);
        worker_main(q, b, sv[1]);
        _exit(0);
    }
    close(sv[1]);
    b->pid = pid;
    b->fd = sv[0];
    return 0;
}

bool qmgr_worker_input(struct qmgr *q, struct qmgr_batch *b)
{
    struct delivery_result res;
    delivery_result_init(&res);
    strbuf err;
    strbuf_init(&err);
    bool over = false;
    int rc = delivery_result_read(b->fd, &res, &err);
    if (rc == 1) {
        size_t k;
        for (k = 0; k < b->n && b->idx[k] != res.index; k++)
            ;
        if (k < b->n && !b->answered[k]) {
            b->answered[k] = true;
            qmgr_message_result(q, b->msg, res.index, res.status, res.dsn, b->tp->name,
                                res.reason.data);
        }
    } else {
        if (rc < 0)
            log_warning("%s: delivery process %d: %s", b->msg->id, (int)b->pid, err.data);
        over = true;
    }
    delivery_result_free(&res);
    strbuf_free(&err);
    return over;
}

void qmgr_worker_finish(struct qmgr *q, struct qmgr_batch *b, const char *why)
{
    for (size_t k = 0; k < b->n; k++)
        if (!b->answered[k])
            qmgr_message_result(q, b->msg, b->idx[k], DELIVERY_DEFERRED, "4.3.0", b->tp->name,
                                why ? why : "delivery process ended without an answer");
    if (b->pid > 0) {
        for (struct qmgr_batch **p = &q->running; *p; p = &(*p)->next)
            if (*p == b) {
                *p = b->next;
                break;
            }
        b->tp->running--;
    }
    if (b->fd >= 0)
        close(b->fd);
    struct qmgr_msg *m = b->msg;
    free(b->idx);
    free(b->answered);
    free(b);
    qmgr_message_batch_done(q, m);
}

void qmgr_reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (WIFSIGNALED(status))
            log_warning("delivery process %d killed by signal %d", (int)pid, WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            log_warning("delivery process %d exited with status %d", (int)pid,
                        WEXITSTATUS(status));
    }
}
