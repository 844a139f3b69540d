/*
 * main.c - pop3d, the POP3 mailbox service: the half of the login split
 * (DESIGN.md, lib/login/login.h) that may touch mail.
 *
 *   pop3-mailbox  accept  unix:login/private/pop3  root  -  100  pop3d
 *
 * It runs as root only to redeem tokens (auth's private socket) and to
 * become the user: for each hand-off it receives the client and the record,
 * redeems the token with auth (service pop3), then forks a child that
 * drops to the uid/gid auth returned (never root: privilege_drop refuses
 * uid 0), and only then opens the mailbox with an exclusive session lock
 * and answers the client's pending PASS/AUTH: "+OK Logged in" or
 * "-ERR [IN-USE] ...". The parent waits for the child, so master's process
 * limit counts sessions. The child closes every descriptor of the service
 * (listeners, status pipe), so a session cannot accept other users' hand-offs.
 */
#include "pop3.h"
#include "login/login.h"
#include "mail/mailbox.h"
#include "mail/params.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/xalloc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *queue_dir;
static struct pop3_session_settings session_settings;

static void init(struct server_ctx *ctx)
{
    queue_dir = xstrdup(param_str(ctx->config, "queue_directory"));
    session_settings.timeout_ms = (int)param_time(ctx->config, "pop3_timeout") * 1000;
    session_settings.max_line = (size_t)param_int(ctx->config, "pop3_max_line");
    session_settings.max_bad = (int)param_int(ctx->config, "pop3_max_bad_commands");
}

/* Tells the client why its login, which auth accepted, ends anyway. */
static void refuse(struct login_handoff *h, const char *text)
{
    struct netio *io = login_handoff_netio(h);
    netio_set_write_timeout(io, 10000);
    netio_printf(io, "%s\r\n", text);
    netio_flush(io);
    netio_free(&io);
}

/* In the child: become the user, open the mailbox, serve the session. */
static _Noreturn void session_child(struct server_ctx *ctx, int handoff_fd,
                                    struct login_handoff *h)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    /* Not SERVER_CONFIG_FD: the skeleton closed it after reading, and the
     * number may now belong to the log file. */
    for (int i = 0; i < ctx->nlisten; i++)
        close(ctx->listen_fds[i]);
    struct stat sst;
    if (fstat(SERVER_STATUS_FD, &sst) == 0 && S_ISFIFO(sst.st_mode))
        close(SERVER_STATUS_FD); /* only master's pipe, never a reused number */
    close(handoff_fd);
    const char *user = h->auth.user.data;
    strbuf err;
    strbuf_init(&err);
    if (h->auth.uid == 0) {
        log_error("user=<%s>: refusing to serve a mailbox as root", user);
        refuse(h, "-ERR [SYS/PERM] This account cannot read mail here");
        _exit(1);
    }
    if (privilege_drop(h->auth.uid, h->auth.gid, NULL, 0, &err) < 0) {
        log_error("user=<%s>: cannot switch to uid %lu: %s", user, (unsigned long)h->auth.uid,
                  err.data);
        refuse(h, "-ERR [SYS/TEMP] Internal error, try again later");
        _exit(1);
    }
    const char *path = h->auth.mailbox.data;
    if (h->auth.mailbox.len == 0 || path[0] != '/') {
        log_error("user=<%s>: auth gave no absolute mailbox path", user);
        refuse(h, "-ERR [SYS/PERM] No mailbox for this account");
        _exit(1);
    }
    struct mailbox *mb = NULL;
    enum mailbox_status st = mailbox_open(path, MAILBOX_EXCLUSIVE, &mb, &err);
    if (st == MAILBOX_IN_USE) {
        log_info("user=<%s>, client=%s: mailbox in use", user, h->client_addr.data);
        refuse(h, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
        _exit(0);
    }
    if (st != MAILBOX_OK) {
        log_error("user=<%s>: cannot open mailbox %s: %s", user, path, err.data);
        refuse(h, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later");
        _exit(1);
    }
    struct netio *io = login_handoff_netio(h);
    netio_printf(io, "+OK Logged in, %zu messages\r\n", mailbox_count(mb));
    int rc = pop3_session(&session_settings, io, mb, user, h->client_addr.data);
    netio_free(&io);
    mailbox_close(&mb);
    if (rc < 0)
        login_drain(h->client_fd, 1000);
    strbuf_free(&err);
    _exit(0);
}

static void serve(struct server_ctx *ctx, int fd)
{
    struct login_handoff h;
    strbuf err;
    strbuf_init(&err);
    int rc = login_handoff_receive(fd, queue_dir, "pop3", &h, &err);
    if (rc < 0) {
        log_warning("hand-off refused: %s", err.data);
        goto out;
    }
    if (rc > 0) {
        log_warning("client=%s: %s", h.client_addr.data, err.data);
        refuse(&h, "-ERR [SYS/TEMP] Login failed, try again");
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork: %m");
        refuse(&h, "-ERR [SYS/TEMP] Internal error, try again later");
        goto out;
    }
    if (pid == 0)
        session_child(ctx, fd, &h);
    /* The child owns the client now. */
    close(h.client_fd);
    h.client_fd = -1;
    /* The skeleton's handlers use SA_RESTART, so a blocking waitpid would
     * never notice a stop request: poll (which returns EINTR) in between. */
    bool forwarded = false;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) {
            if (r < 0)
                log_error("waitpid: %m");
            else if (WIFSIGNALED(status))
                log_warning("session of user=<%s> ended by signal %d (no deletions applied)",
                            h.auth.user.data, WTERMSIG(status));
            break;
        }
        if (server_stopping() && !forwarded) {
            kill(pid, SIGTERM);
            forwarded = true;
        }
        poll(NULL, 0, 50);
    }
out:
    login_handoff_free(&h);
    strbuf_free(&err);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .init = init,
        .serve = serve,
    };
    return server_main(argc, argv, &ops);
}
