/*
 * runner.c - mailbox deliveries (Maildir, mbox) in long-lived children, one
 * per user: the "runner" of (uid, gid) is forked once, drops to that user
 * for good with privilege_drop(), and then takes delivery jobs over a
 * socketpair until local-delivery ends. A job is the queue file's
 * descriptor (fdpass) and one attribute record naming the message and the
 * mailbox; the answer is one record, as from child.c's one-shot children.
 *
 * Why: a fork, an identity switch, an exit and a reap per message were most
 * of local-delivery's work under load (docs/local-delivery.md). The rules
 * of child.c hold unchanged: a user's files are only ever touched by a
 * process that is that user and can never become root again; the root
 * parent only sends jobs and reads answers. A runner that dies, breaks the
 * protocol or overruns the time limit is killed and the delivery deferred.
 * At most LOCAL_RUNNERS_MAX runners live at once (the least recently used
 * goes first) and one idle for LOCAL_RUNNER_IDLE_SECONDS is ended.
 */
#define _GNU_SOURCE
#include "local.h"
#include "mail/queue_file.h"
#include "mail/server.h"
#include "util/attr.h"
#include "util/fdpass.h"
#include "util/log.h"
#include "util/privilege.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_RUNNERS_MAX 8
#define LOCAL_RUNNER_IDLE_SECONDS 60
/* A runner waits this long for its next job before it ends by itself. */
#define RUNNER_WAIT_MS (3600 * 1000)

struct runner {
    pid_t pid;
    int sock;
    uid_t uid;
    gid_t gid;
    time_t used;
};

static struct runner runners[LOCAL_RUNNERS_MAX];
static int nrunners;

static void runner_end(int i)
{
    close(runners[i].sock);
    kill(runners[i].pid, SIGKILL);
    while (waitpid(runners[i].pid, NULL, 0) < 0 && errno == EINTR)
        ;
    runners[i] = runners[--nrunners];
}

/* ---- the runner's side ---- */

static void answer(int sock, const struct local_result *res, const strbuf *data)
{
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "status", delivery_status_name(res->status));
    attr_add_str(l, "dsn", res->dsn);
    attr_add_bytes(l, "reason", res->reason.data, res->reason.len);
    attr_add_bytes(l, "data", data->data, data->len);
    int rc = attr_write(sock, l, 10000);
    attr_list_free(&l);
    if (rc < 0)
        _exit(1);
}

/* One job: rebuild what mailbox.c needs from the record and the descriptor. */
static void run_job(struct local_settings *s, const struct local_who *who, int fd,
                    const struct attr_list *l, struct local_result *res, strbuf *data)
{
    strbuf err;
    strbuf_init(&err);
    long long off;
    uint64_t len;
    const char *kind = attr_get(l, "kind"), *id = attr_get(l, "queue_id");
    const char *sender = attr_get(l, "sender"), *rcpt = attr_get(l, "recipient");
    const char *name = attr_get(l, "user"), *home = attr_get(l, "home");
    if (kind == NULL || id == NULL || sender == NULL || rcpt == NULL || name == NULL ||
        home == NULL ||
        attr_get_int(l, "offset", 0, INT64_MAX, &off, &err) < 0 ||
        attr_get_uint64(l, "length", 0, UINT64_MAX, &len, &err) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "bad job for the delivery process");
        strbuf_free(&err);
        return;
    }
    struct queue_file qf;
    memset(&qf, 0, sizeof(qf));
    qf.fd = fd;
    qf.path = (char *)id;
    qf.sender = (char *)sender;
    qf.content_offset = (off_t)off;
    qf.content_length = len;
    struct local_message m;
    memset(&m, 0, sizeof(m));
    m.qf = &qf;
    m.id = id;
    m.sender = sender;
    struct action a;
    memset(&a, 0, sizeof(a));
    a.kind = ACT_MAILBOX;
    /* Name and home come with each job: two passwd entries may share a uid. */
    a.who.uid = who->uid;
    a.who.gid = who->gid;
    a.who.name = (char *)name;
    a.who.home = (char *)home;
    a.recipient = (char *)rcpt;
    local_mailbox_job(s, &m, &a, strcmp(kind, "maildir") == 0, res, data);
    strbuf_free(&err);
}

static void runner_main(struct local_settings *s, int sock, const struct local_who *who)
{
    struct local_result res;
    strbuf data, err;
    local_result_init(&res);
    strbuf_init(&data);
    strbuf_init(&err);
    bool switched = privilege_drop(who->uid, who->gid, NULL, 0, &err) == 0;
    strbuf why;
    strbuf_init(&why);
    if (!switched)
        strbuf_printf(&why, "cannot switch to user %s: %s", who->name, err.data);
    umask(077);
    struct attr_list *l = attr_list_new();
    for (;;) {
        int fd;
        char tag;
        strbuf_reset(&err);
        if (fdpass_recv(sock, &fd, &tag, 1, RUNNER_WAIT_MS, &err) < 0)
            _exit(0); /* local-delivery went away, or nothing to do for long */
        if (attr_read(sock, l, NULL, 10000, &err) != 1)
            _exit(1);
        strbuf_reset(&data);
        if (switched)
            run_job(s, who, fd, l, &res, &data);
        else
            local_result_set(&res, DELIVERY_DEFERRED, "4.3.0", "%s", why.data);
        close(fd);
        answer(sock, &res, &data);
    }
}

/* ---- local-delivery's side ---- */

/* The runner of who, alive, or a new one; -1 with res set when none can be
 * had. */
static int runner_get(struct local_settings *s, const struct local_who *who,
                      const struct local_message *m, struct local_result *res)
{
    time_t now = time(NULL);
    for (int i = 0; i < nrunners;) {
        /* A runner that ended (or crashed) while idle has a readable or
         * hung-up socket; one idle for long is ended here. */
        struct pollfd p = { .fd = runners[i].sock, .events = POLLIN };
        if (poll(&p, 1, 0) != 0 || now - runners[i].used > LOCAL_RUNNER_IDLE_SECONDS)
            runner_end(i);
        else
            i++;
    }
    for (int i = 0; i < nrunners; i++)
        if (runners[i].uid == who->uid && runners[i].gid == who->gid)
            return i;
    if (nrunners == LOCAL_RUNNERS_MAX) {
        int lru = 0;
        for (int i = 1; i < nrunners; i++)
            if (runners[i].used < runners[lru].used)
                lru = i;
        runner_end(lru);
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* Nothing of the root process that the user could use or that
         * would keep a peer waiting: qmgr's connection, master's sockets,
         * the other runners, the current queue file. */
        close(sv[0]);
        if (s->client_fd >= 0)
            close(s->client_fd);
        for (int i = 0; i < s->nlisten; i++)
            close(s->listen_fds[i]);
        close(SERVER_STATUS_FD);
        for (int i = 0; i < nrunners; i++)
            close(runners[i].sock);
        if (m->qf)
            close(m->qf->fd);
        signal(SIGTERM, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
        runner_main(s, sv[1], who);
        _exit(0);
    }
    close(sv[1]);
    runners[nrunners] = (struct runner){ .pid = pid, .sock = sv[0], .uid = who->uid,
                                         .gid = who->gid, .used = now };
    return nrunners++;
}

void local_runner_deliver(struct local_settings *s, const struct local_message *m,
                          const struct action *a, const struct local_who *who, bool maildir,
                          struct local_result *res, strbuf *data)
{
    if (who->uid == 0) {
        /* The callers never ask for this; a last line of defence. */
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "refusing to deliver with root privileges");
        return;
    }
    int i = runner_get(s, who, m, res);
    if (i < 0)
        return;
    struct runner *r = &runners[i];
    r->used = time(NULL);
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "kind", maildir ? "maildir" : "mbox");
    attr_add_str(l, "queue_id", m->id);
    attr_add_str(l, "sender", m->sender);
    attr_add_str(l, "recipient", a->recipient);
    attr_add_str(l, "user", who->name);
    attr_add_str(l, "home", who->home);
    attr_add_int(l, "offset", (long long)m->qf->content_offset);
    attr_add_uint64(l, "length", m->qf->content_length);
    strbuf err;
    strbuf_init(&err);
    int rc = -1;
    if (fdpass_send(r->sock, m->qf->fd, "j", 1, 10000) == 0 && attr_write(r->sock, l, 10000) == 0) {
        long long t = s->command_time_limit;
        long long ms = t > 0 && t < 86400 ? t * 1000 : 86400000LL;
        rc = attr_read(r->sock, l, NULL, (int)ms, &err);
    } else {
        strbuf_printf(&err, "cannot send the job: %s", strerror(errno));
    }
    bool timed_out = rc < 0 && errno == ETIMEDOUT;
    enum delivery_status st = DELIVERY_DEFERRED;
    const char *dsn = attr_get(l, "dsn"), *status = attr_get(l, "status");
    size_t rlen = 0, dlen = 0;
    const char *reason = attr_get_bytes(l, "reason", &rlen);
    const char *d = attr_get_bytes(l, "data", &dlen);
    bool ok = rc == 1 && status && dsn && reason && delivery_dsn_valid(dsn);
    if (ok) {
        if (strcmp(status, "sent") == 0)
            st = DELIVERY_SENT;
        else if (strcmp(status, "deferred") == 0)
            st = DELIVERY_DEFERRED;
        else if (strcmp(status, "bounced") == 0)
            st = DELIVERY_BOUNCED;
        else
            ok = false;
    }
    if (ok && dsn[0] == (st == DELIVERY_SENT ? '2' : st == DELIVERY_DEFERRED ? '4' : '5')) {
        local_result_set(res, st, dsn, "%.*s", (int)rlen, reason);
        if (d)
            strbuf_append(data, d, dlen);
    } else {
        if (timed_out)
            local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                             "delivery as user %s timed out after %lld s", who->name,
                             s->command_time_limit);
        else
            local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                             "delivery process for user %s failed%s%s", who->name,
                             err.len ? ": " : "", err.data);
        runner_end(i);
    }
    attr_list_free(&l);
    strbuf_free(&err);
}

void local_runners_forget(void)
{
    for (int i = 0; i < nrunners; i++)
        close(runners[i].sock);
    nrunners = 0;
}

void local_runners_end(void)
{
    while (nrunners > 0)
        runner_end(nrunners - 1);
}
