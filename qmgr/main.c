/*
 * main.c - qmgr, the queue manager: a `daemon` service (one process) that
 * moves messages from incoming/ and deferred/ through active/ to the
 * delivery agents, records results, retries and bounces. See docs/qmgr.md.
 *
 * The loop polls the trigger listener(s), master's status pipe and the
 * agent connections (agent.c), with a timeout that brings the next timed
 * scan or agent deadline. Triggers only set flags; the queue directories
 * are the truth.
 */
#define _GNU_SOURCE
#include "qmgr.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/service_table.h"
#include "mail/trigger.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void setup(struct qmgr *q, struct config *cfg)
{
    memset(q, 0, sizeof(*q));
    q->cfg = cfg;
    q->queue_dir = xstrdup(param_str(cfg, "queue_directory"));
    q->hostname = xstrdup(param_str(cfg, "myhostname"));
    q->notice_text = xstrdup(param_str(cfg, "bounce_notice_text"));
    q->max_lifetime = param_time(cfg, "maximal_queue_lifetime");
    q->bounce_lifetime = param_time(cfg, "bounce_queue_lifetime");
    q->min_backoff = param_time(cfg, "minimal_backoff_time");
    q->max_backoff = param_time(cfg, "maximal_backoff_time");
    if (q->max_backoff < q->min_backoff)
        q->max_backoff = q->min_backoff;
    q->queue_run_delay = param_time(cfg, "queue_run_delay");
    q->delay_warning = param_time(cfg, "delay_warning_time");
    q->bounce_size_limit = param_size(cfg, "bounce_size_limit");

    /* Postmaster notices stay on this host: postmaster@ the first local domain. */
    struct config_list dest;
    strbuf err;
    strbuf_init(&err);
    if (config_get_list(cfg, "mydestination", &dest, &err) < 0)
        log_fatal("%s", err.data);
    strbuf pm;
    strbuf_init(&pm);
    strbuf_appends(&pm, "postmaster");
    if (dest.count > 0 && dest.items[0][0] != '.') {
        strbuf_appendc(&pm, '@');
        strbuf_appends(&pm, dest.items[0]);
    }
    config_list_free(&dest);
    q->postmaster = strbuf_detach(&pm, NULL);

    strbuf_reset(&err);
    q->resolver = resolver_new(cfg, &err);
    if (err.len)
        log_debug("lookup tables (not used by qmgr's transport choice): %s", err.data);
    strbuf_free(&err);

    q->local.name = "local";
    q->local.available = true;
    /* As in Postfix: local_destination_concurrency_limit counts per
     * destination (per recipient, with one recipient per batch); the
     * transport as a whole is bounded by its agent's process limit. */
    q->local.dest_concurrency = param_int(cfg, "local_destination_concurrency_limit");
    q->local.concurrency = param_int(cfg, "default_process_limit");
    q->local.rcpt_limit = param_int(cfg, "local_destination_recipient_limit");
    /* Remote and relay domains: smtp-client at private/smtp. */
    q->smtp.name = "smtp";
    q->smtp.available = true;
    q->smtp.concurrency = param_int(cfg, "default_destination_concurrency_limit");
    q->smtp.rcpt_limit = param_int(cfg, "default_destination_recipient_limit");
}

/* Batches of a transport in flight never exceed the process limit of its
 * agent's service in services.conf: each holds an agent process for as long
 * as its connection is open, and one connection more than there are
 * processes would wait in the listen queue behind idle connections. */
static void cap_by_process_limit(struct qmgr *q, struct server_ctx *ctx)
{
    strbuf path, err;
    strbuf_init(&path);
    strbuf_init(&err);
    strbuf_printf(&path, "%s/services.conf", ctx->config_dir);
    struct service_table t;
    memset(&t, 0, sizeof(t));
    service_table_load(path.data, &t, &err); /* master reported any error already */
    struct qmgr_transport *tps[] = { &q->local, &q->smtp };
    for (size_t i = 0; i < 2; i++) {
        strbuf want;
        strbuf_init(&want);
        strbuf_printf(&want, "private/%s", tps[i]->name);
        for (int s = 0; s < t.nservices; s++) {
            const struct service_def *d = &t.services[s];
            for (int e = 0; e < d->nendpoints; e++) {
                if (d->endpoints[e].kind != ENDPOINT_UNIX ||
                    strcmp(d->endpoints[e].path, want.data) != 0)
                    continue;
                long limit = d->limit > 0 ? d->limit : param_int(q->cfg, "default_process_limit");
                if (limit < tps[i]->concurrency && tps[i]->dest_concurrency > 0) {
                    tps[i]->concurrency = limit; /* the local transport's total */
                } else if (limit < tps[i]->concurrency) {
                    log_info("transport %s: %ld batches at once (the process limit of service "
                             "%s), not %ld", tps[i]->name, limit, d->name, tps[i]->concurrency);
                    tps[i]->concurrency = limit;
                }
            }
        }
        strbuf_free(&want);
    }
    service_table_free(&t);
    strbuf_free(&path);
    strbuf_free(&err);
}

/* Frees everything at exit (the files stay where they are). */
static void teardown(struct qmgr *q)
{
    struct qmgr_transport *tps[] = { &q->local, &q->smtp };
    for (size_t t = 0; t < 2; t++)
        while (tps[t]->head) {
            struct qmgr_batch *b = tps[t]->head;
            tps[t]->head = b->next;
            free(b->idx);
            free(b->answered);
            free(b->dest);
            free(b);
        }
    while (q->msgs) {
        struct qmgr_msg *m = q->msgs;
        q->msgs = m->next;
        for (size_t i = 0; i < m->qf->rcpt_count; i++)
            qmgr_result_free(&m->res[i]);
        free(m->res);
        queue_file_close(&m->qf);
        free(m);
    }
    resolver_free(&q->resolver);
    free((char *)q->queue_dir);
    free((char *)q->hostname);
    free((char *)q->notice_text);
    free(q->postmaster);
    free(q->incoming.ids);
}

/* One trigger connection: read the request byte(s) and close. A client that
 * connects and says nothing costs at most 100 ms. */
static void take_trigger(struct qmgr *q, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[16];
    ssize_t n = 0;
    if (poll(&p, 1, 100) > 0)
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    close(fd);
    for (ssize_t i = 0; i < n; i++) {
        switch (buf[i]) {
        case TRIGGER_NEW_MAIL:
            q->scan_incoming = true;
            break;
        case TRIGGER_FLUSH:
            q->scan_incoming = q->scan_deferred = q->flush = true;
            break;
        default:
            q->scan_incoming = true; /* unknown requests: a scan is always safe */
        }
    }
}

static void run(struct server_ctx *ctx)
{
    struct qmgr q;
    setup(&q, ctx->config);
    cap_by_process_limit(&q, ctx);
    q.listen_fds = ctx->listen_fds;
    q.nlisten = ctx->nlisten;
    log_info("queue manager started (queue %s)", q.queue_dir);
    qmgr_recover_active(&q);
    q.scan_incoming = q.scan_deferred = true;
    time_t next_incoming = 0, next_deferred = 0;
    bool have_status = fcntl(SERVER_STATUS_FD, F_GETFD) >= 0;

    struct pollfd *pfd = NULL;
    struct qmgr_conn **pc = NULL;
    size_t cap = 0;
    for (;;) {
        bool stopping = server_stopping();
        bool busy = false;
        for (struct qmgr_conn *c = q.conns; c; c = c->next)
            busy = busy || c->batch != NULL;
        if (stopping && !busy)
            break;
        time_t now = time(NULL);
        if (!stopping) {
            if (q.scan_deferred || now >= next_deferred) {
                qmgr_scan_deferred(&q, q.flush);
                q.scan_deferred = q.flush = false;
                next_deferred = now + q.queue_run_delay;
            }
            if (now >= next_incoming) {
                q.scan_incoming = true; /* in case a trigger was missed */
                next_incoming = now + QMGR_INCOMING_SCAN_SECONDS;
            }
            if (q.scan_incoming && qmgr_incoming_listable(&q))
                q.scan_incoming = false;
            qmgr_scan_incoming(&q); /* lists incoming/ only when its last listing is used up */
            qmgr_schedule_run(&q);
        }
        qmgr_agent_timers(&q);

        size_t n = (size_t)ctx->nlisten + 1;
        for (struct qmgr_conn *c = q.conns; c; c = c->next)
            n++;
        if (n > cap) {
            cap = n * 2;
            pfd = xreallocarray(pfd, cap, sizeof(*pfd));
            pc = xreallocarray(pc, cap, sizeof(*pc));
        }
        size_t k = 0;
        for (int i = 0; i < ctx->nlisten; i++) {
            pfd[k] = (struct pollfd){ .fd = stopping ? -1 : ctx->listen_fds[i], .events = POLLIN };
            pc[k++] = NULL;
        }
        pfd[k] = (struct pollfd){ .fd = have_status ? SERVER_STATUS_FD : -1, .events = 0 };
        pc[k++] = NULL;
        for (struct qmgr_conn *c = q.conns; c; c = c->next) {
            short ev = POLLIN;
            if (c->out_off < c->out.len)
                ev |= POLLOUT;
            pfd[k] = (struct pollfd){ .fd = c->fd, .events = ev };
            pc[k++] = c;
        }
        time_t wake = next_incoming < next_deferred ? next_incoming : next_deferred;
        long ms = (long)(wake - time(NULL)) * 1000;
        if ((q.scan_incoming && qmgr_incoming_listable(&q)) || q.scan_deferred)
            ms = 0;
        if (ms < 0)
            ms = 0;
        if (ms > 1000)
            ms = 1000;
        int ams = qmgr_agent_poll_ms(&q), sms = qmgr_schedule_poll_ms(&q);
        if (ams >= 0 && ams < ms)
            ms = ams;
        if (sms >= 0 && sms < ms)
            ms = sms;
        if (stopping && ms < 100)
            ms = 100;
        int rc = poll(pfd, (nfds_t)k, (int)ms);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_fatal("poll: %m");
        }
        if (have_status && (pfd[ctx->nlisten].revents & (POLLERR | POLLHUP))) {
            log_info("master went away; exiting");
            break;
        }
        for (int i = 0; i < ctx->nlisten; i++)
            if (pfd[i].revents & POLLIN)
                take_trigger(&q, ctx->listen_fds[i]);
        /* Handling one connection's event may close and free that
         * connection only (results touch messages, not other connections),
         * so the rest of pc[] stays valid. */
        for (size_t i = (size_t)ctx->nlisten + 1; i < k; i++)
            if (pfd[i].revents)
                qmgr_agent_event(&q, pc[i], pfd[i].revents);
    }
    free(pfd);
    free(pc);
    qmgr_agent_close_all(&q);
    /* Messages still in active/ go back to incoming/ at the next start. */
    log_info("queue manager stopping (%zu messages left in active/)", q.nmsgs);
    teardown(&q);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_DAEMON,
        .run = run,
    };
    return server_main(argc, argv, &ops);
}
