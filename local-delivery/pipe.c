#define _GNU_SOURCE /* close_range */
/*
 * pipe.c - delivery to a |command target: /bin/sh -c COMMAND, run as the
 * user whose rights apply (the recipient for .forward, default_privs for
 * aliases), with the message (Return-Path:, Delivered-To:, LF line ends)
 * on standard input.
 *
 * "Programs and files are not addresses" (BAD-INPUT.md row 2): the command
 * text comes only from an alias table, a .forward or an include file,
 * never from the envelope; the addresses reach the command only through
 * the environment (SENDER, RECIPIENT, ORIGINAL_RECIPIENT, LOCAL,
 * EXTENSION, DOMAIN, USER, HOME), which the command may quote as it likes.
 * The child gets descriptors 0, 1 and 2 only (everything else is closed
 * before exec), a clean environment, its own process group (so the time
 * limit kills everything it started) and the user's home as its working
 * directory. stdout and stderr are one pipe; the first line of what the
 * command wrote is quoted in a failure reason, the rest is read and
 * dropped so that a chatty command cannot block.
 *
 * Exit status: 0 is delivered; the sysexits codes that mean "try again"
 * (EX_OSERR 71, EX_OSFILE 72, EX_CANTCREAT 73, EX_IOERR 74, EX_TEMPFAIL 75,
 * EX_CONFIG 78), a signal and the time limit (command_time_limit) defer;
 * any other status bounces (EX_NOUSER 67 as 5.1.1, EX_NOHOST 68 as 5.1.2,
 * EX_NOPERM 77 as 5.7.1, the rest as 5.3.0).
 */
#include "local.h"
#include "mail/maildir.h" /* crlf_filter */
#include "util/privilege.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_KEEP 4096    /* bytes of command output kept for the reason */
#define OUTPUT_SHOWN 200    /* bytes of its first line shown */
#define EX_TEMP_EXIT 75     /* what the child exits with when it cannot exec */

struct pipe_io {
    int in_fd, out_fd;
    strbuf out;
    bool in_closed;
    bool timed_out;
    long long deadline;     /* CLOCK_MONOTONIC ms */
    struct crlf_filter filter;
    strbuf conv;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void read_output(struct pipe_io *io)
{
    char buf[4096];
    ssize_t r = read(io->out_fd, buf, sizeof(buf));
    if (r > 0) {
        if (io->out.len < OUTPUT_KEEP) {
            size_t room = OUTPUT_KEEP - io->out.len;
            strbuf_append(&io->out, buf, (size_t)r < room ? (size_t)r : room);
        }
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(io->out_fd);
        io->out_fd = -1;
    }
}

/* Writes p[0..n) to the command while draining its output. 0 = written,
 * 1 = the command closed its input, -1 = time limit. */
static int pump(struct pipe_io *io, const char *p, size_t n)
{
    while (n > 0) {
        if (io->in_closed)
            return 1;
        long long left = io->deadline - now_ms();
        if (left <= 0) {
            io->timed_out = true;
            return -1;
        }
        struct pollfd pf[2] = {{io->in_fd, POLLOUT, 0}, {io->out_fd, POLLIN, 0}};
        int r = poll(pf, 2, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        if (io->out_fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_output(io);
        if (pf[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = write(io->in_fd, p, n);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                io->in_closed = true; /* EPIPE: it stopped reading; not an error */
                return 1;
            }
        }
    }
    return 0;
}

static int pipe_sink(void *arg, const char *p, size_t n, strbuf *err)
{
    struct pipe_io *io = arg;
    strbuf_reset(&io->conv);
    crlf_filter_feed(&io->filter, p, n, &io->conv);
    int rc = pump(io, io->conv.data, io->conv.len);
    if (rc < 0)
        strbuf_sets(err, "time limit");
    return rc;
}

static void add_env(char ***env, size_t *n, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = xmalloc(len);
    snprintf(s, len, "%s=%s", name, value);
    *env = xreallocarray(*env, *n + 2, sizeof(char *));
    (*env)[(*n)++] = s;
    (*env)[*n] = NULL;
}

static char **build_env(const struct local_message *m, const struct action *a,
                        const char *orig)
{
    char **env = NULL;
    size_t n = 0;
    add_env(&env, &n, "PATH", "/usr/local/bin:/usr/bin:/bin");
    add_env(&env, &n, "SHELL", "/bin/sh");
    add_env(&env, &n, "HOME", a->who.home);
    add_env(&env, &n, "USER", a->who.name);
    add_env(&env, &n, "LOGNAME", a->who.name);
    add_env(&env, &n, "SENDER", m->sender);
    add_env(&env, &n, "RECIPIENT", a->recipient);
    add_env(&env, &n, "ORIGINAL_RECIPIENT", orig);
    add_env(&env, &n, "LOCAL", a->local ? a->local : "");
    add_env(&env, &n, "EXTENSION", a->extension ? a->extension : "");
    add_env(&env, &n, "DOMAIN", a->domain ? a->domain : "");
    const char *tz = getenv("TZ");
    if (tz)
        add_env(&env, &n, "TZ", tz);
    return env;
}

static void free_env(char **env)
{
    for (char **e = env; e && *e; e++)
        free(*e);
    free(env);
}

/* In the child: descriptors, signals, identity, exec. Never returns. */
static void exec_command(const struct action *a, int in_fd, int out_fd, char **env)
{
    setsid();
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(EX_TEMP_EXIT);
    if (close_range(3, ~0U, 0) < 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
            close((int)fd);
    }
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* SIGPIPE is ignored in the daemon */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    strbuf err;
    strbuf_init(&err);
    if (a->who.uid == 0 || privilege_drop(a->who.uid, a->who.gid, NULL, 0, &err) < 0) {
        dprintf(2, "cannot switch to user %s: %s\n", a->who.name, err.data);
        _exit(EX_TEMP_EXIT);
    }
    if (chdir(a->who.home) < 0 && chdir("/") < 0)
        _exit(EX_TEMP_EXIT);
    umask(077);
    char *argv[] = {"sh", "-c", a->text, NULL};
    execve("/bin/sh", argv, env);
    dprintf(2, "cannot execute /bin/sh: %s\n", strerror(errno));
    _exit(EX_TEMP_EXIT);
}

/* The first line of the output, shortened, for a reason text. */
static void first_line(const strbuf *out, strbuf *line)
{
    size_t n = 0;
    while (n < out->len && out->data[n] != '\n' && n < OUTPUT_SHOWN)
        n++;
    strbuf_set(line, out->data, n);
    strbuf_rtrim(line);
}

static void map_status(int wst, const strbuf *out, long long limit, bool timed_out,
                       struct local_result *res)
{
    strbuf line;
    strbuf_init(&line);
    first_line(out, &line);
    const char *sep = line.len ? ": " : "";
    if (timed_out) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "command time limit exceeded (%lld s)%s%s", limit, sep, line.data);
    } else if (WIFSIGNALED(wst)) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "command killed by signal %d%s%s",
                         WTERMSIG(wst), sep, line.data);
    } else {
        int code = WEXITSTATUS(wst);
        const char *dsn = NULL;
        enum delivery_status st = DELIVERY_BOUNCED;
        switch (code) {
        case 0:
            dsn = "2.0.0";
            st = DELIVERY_SENT;
            break;
        case 71: case 72: case 73: case 74: case 75: case 78:
            dsn = "4.3.0";
            st = DELIVERY_DEFERRED;
            break;
        case 67:
            dsn = "5.1.1";
            break;
        case 68:
            dsn = "5.1.2";
            break;
        case 77:
            dsn = "5.7.1";
            break;
        default:
            dsn = "5.3.0";
            break;
        }
        if (st == DELIVERY_SENT)
            local_result_set(res, st, dsn, "delivered to command");
        else
            local_result_set(res, st, dsn, "command failed with exit status %d%s%s", code, sep,
                             line.data);
    }
    strbuf_free(&line);
}

void local_deliver_command(struct local_settings *s, const struct local_message *m,
                           const struct action *a, const char *orig, struct local_result *res)
{
    if (a->who.uid == 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0",
                         "refusing to run a command with root privileges");
        return;
    }
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "pipe: %s", strerror(errno));
        return;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return;
    }
    char **env = build_env(m, a, orig);
    pid_t pid = fork();
    if (pid == 0)
        exec_command(a, in[0], out[1], env);
    free_env(env);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "fork: %s", strerror(errno));
        close(in[1]);
        close(out[0]);
        return;
    }
    struct pipe_io io = {.in_fd = in[1], .out_fd = out[0]};
    strbuf_init(&io.out);
    strbuf_init(&io.conv);
    crlf_filter_init(&io.filter);
    io.deadline = now_ms() + s->command_time_limit * 1000;
    fcntl(io.in_fd, F_SETFL, O_NONBLOCK);
    fcntl(io.out_fd, F_SETFL, O_NONBLOCK);

    strbuf err;
    strbuf_init(&err);
    int rc = local_message_copy(m, a->recipient, true, pipe_sink, &io, &err);
    bool copy_failed = rc < 0 && !io.timed_out;
    if (rc == 0) {
        strbuf_reset(&io.conv);
        crlf_filter_finish(&io.filter, &io.conv);
        pump(&io, io.conv.data, io.conv.len);
    }
    close(io.in_fd);
    /* Drain the output until the command closes it, then wait for it. */
    int wst = 0;
    bool exited = false;
    while (!io.timed_out) {
        if (io.out_fd < 0) {
            pid_t w = waitpid(pid, &wst, WNOHANG);
            if (w == pid) {
                exited = true;
                break;
            }
            if (now_ms() >= io.deadline) {
                io.timed_out = true;
                break;
            }
            usleep(20 * 1000);
            continue;
        }
        long long left = io.deadline - now_ms();
        if (left <= 0) {
            io.timed_out = true;
            break;
        }
        struct pollfd pf = {io.out_fd, POLLIN, 0};
        if (poll(&pf, 1, left > 1000 ? 1000 : (int)left) > 0)
            read_output(&io);
    }
    if (!exited) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
            ;
    }
    if (io.out_fd >= 0)
        close(io.out_fd);
    if (copy_failed)
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "cannot read the message: %s",
                         err.data);
    else
        map_status(wst, &io.out, s->command_time_limit, io.timed_out, res);
    strbuf_free(&io.out);
    strbuf_free(&io.conv);
    strbuf_free(&err);
}
