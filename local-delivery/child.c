/*
 * child.c - runs one job as a given user in a forked child: the only way
 * local-delivery touches a user's files. The child switches identity with
 * privilege_drop() (never to root) before the job runs, so every open,
 * create and write is checked by the kernel as that user; the result (and
 * data, e.g. a .forward file's text) comes back as one attribute record
 * over a socketpair. The parent, still root, only waits: a child that
 * cannot switch, crashes or overruns the time limit is killed and the
 * delivery deferred, never retried as root.
 */
#include "local.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/privilege.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void child_main(int sock, const struct local_who *who, local_child_fn fn, void *arg)
{
    struct local_result res;
    strbuf data, err;
    local_result_init(&res);
    strbuf_init(&data);
    strbuf_init(&err);
    local_runners_forget(); /* another user's runner is none of this child's business */
    if (privilege_drop(who->uid, who->gid, NULL, 0, &err) < 0) {
        local_result_set(&res, DELIVERY_DEFERRED, "4.3.0", "cannot switch to user %s: %s",
                         who->name, err.data);
    } else {
        umask(077);
        fn(arg, &res, &data);
    }
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "status", delivery_status_name(res.status));
    attr_add_str(l, "dsn", res.dsn);
    attr_add_bytes(l, "reason", res.reason.data, res.reason.len);
    attr_add_bytes(l, "data", data.data, data.len);
    int rc = attr_write(sock, l, 10000);
    /* _exit: no atexit handlers or stdio flushes of the parent's state. */
    _exit(rc < 0 ? 1 : 0);
}

static bool parse_status(const char *s, enum delivery_status *st)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "sent") == 0)
        *st = DELIVERY_SENT;
    else if (strcmp(s, "deferred") == 0)
        *st = DELIVERY_DEFERRED;
    else if (strcmp(s, "bounced") == 0)
        *st = DELIVERY_BOUNCED;
    else
        return false;
    return true;
}

void local_run_as(const struct local_who *who, long long timeout_s, local_child_fn fn,
                  void *arg, struct local_result *res, strbuf *data)
{
    if (who->uid == 0) {
        /* The callers never ask for this; a last line of defence. */
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "refusing to deliver with root privileges");
        return;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "socketpair: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return;
    }
    if (pid == 0) {
        close(sv[0]);
        child_main(sv[1], who, fn, arg);
    }
    close(sv[1]);
    struct attr_list *l = attr_list_new();
    strbuf err;
    strbuf_init(&err);
    long long ms = timeout_s > 0 && timeout_s < 86400 ? timeout_s * 1000 : 86400000LL;
    int rc = attr_read(sv[0], l, NULL, (int)ms, &err);
    close(sv[0]);
    enum delivery_status st;
    const char *dsn = attr_get(l, "dsn");
    size_t rlen = 0, dlen = 0;
    const char *reason = attr_get_bytes(l, "reason", &rlen);
    const char *d = attr_get_bytes(l, "data", &dlen);
    if (rc == 1 && parse_status(attr_get(l, "status"), &st) && dsn && delivery_dsn_valid(dsn) &&
        reason) {
        local_result_set(res, st, dsn, "%.*s", (int)rlen, reason);
        if (data && d)
            strbuf_append(data, d, dlen);
    } else if (rc < 0 && errno == ETIMEDOUT) {
        kill(pid, SIGKILL);
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "delivery as user %s timed out after %lld s", who->name, timeout_s);
    } else {
        kill(pid, SIGKILL);
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "delivery process for user %s failed%s%s", who->name,
                         err.len ? ": " : "", err.data);
    }
    int wst;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    attr_list_free(&l);
    strbuf_free(&err);
}
