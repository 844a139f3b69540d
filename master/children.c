/*
 * children.c - starting, counting and burying service processes.
 *
 * A child is forked with the validated petrel.conf on descriptor 3, the
 * status pipe on 4 and the service's listeners on 5.. (see
 * lib/mail/server.h), switched to the service user
 * (unless it is chrooted: then the server skeleton drops after its init),
 * and exec'd. Its busy/idle reports arrive on the service's status pipe.
 *
 * Restarts: a process that exits with a non-zero status or a signal is
 * logged and its service is throttled for a back-off period that doubles
 * (up to a minute) while processes keep dying young, so a service that
 * crashes on start costs a fork per back-off period, not a spinning CPU.
 */
#define _GNU_SOURCE
#include "master.h"
#include "util/log.h"
#include "util/privilege.h"
#include "mail/server.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MAX 60
#define YOUNG_SECONDS 10
#define FD_STAGING 1000

/* Environment passed to services: fixed PATH, plus a few variables worth
 * keeping (time zone, sanitizer options for the ASan test run). */
static char **child_environment(void)
{
    static const char *keep[] = { "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL };
    char **env = xcalloc(8, sizeof(char *));
    int n = 0;
    env[n++] = xstrdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    for (int i = 0; keep[i]; i++) {
        const char *v = getenv(keep[i]);
        if (v) {
            strbuf sb;
            strbuf_init(&sb);
            strbuf_printf(&sb, "%s=%s", keep[i], v);
            env[n++] = strbuf_detach(&sb, NULL);
        }
    }
    return env;
}

static char **child_argv(struct master *m, struct msvc *svc)
{
    int n = 0, cap = 16 + svc->def.nargs;
    char **argv = xcalloc((size_t)cap, sizeof(char *));
    strbuf num;
    strbuf_init(&num);
    argv[n++] = xstrdup(svc->def.command);
    argv[n++] = xstrdup("-n");
    argv[n++] = xstrdup(svc->def.name);
    argv[n++] = xstrdup("-c");
    argv[n++] = xstrdup(m->config_dir);
    argv[n++] = xstrdup("-l");
    strbuf_printf(&num, "%d", svc->def.nendpoints);
    argv[n++] = xstrdup(num.data);
    if (!svc->drop_in_child && svc->def.chroot && m->can_switch) {
        argv[n++] = xstrdup("-U");
        strbuf_reset(&num);
        strbuf_printf(&num, "%lu:%lu", (unsigned long)svc->uid, (unsigned long)svc->gid);
        argv[n++] = xstrdup(num.data);
        argv[n++] = xstrdup("-R");
        argv[n++] = xstrdup(svc->def.chroot);
    }
    for (int i = 0; i < svc->def.nargs; i++)
        argv[n++] = xstrdup(svc->def.args[i]);
    argv[n] = NULL;
    strbuf_free(&num);
    return argv;
}

/* In the child: configuration, status pipe and listeners on 3, 4, 5.. (see
 * lib/mail/server.h) and nothing else open. */
static void child_setup_fds(struct master *m, struct msvc *svc)
{
    int n = svc->def.nendpoints;
    int staged[2 + 64];
    staged[0] = fcntl(m->config_fd, F_DUPFD, FD_STAGING);
    staged[1] = fcntl(svc->status_wr, F_DUPFD, FD_STAGING);
    for (int i = 0; i < n && i < 64; i++)
        staged[2 + i] = fcntl(svc->listen_fds[i], F_DUPFD, FD_STAGING);
    for (int i = 0; i < 2 + n && i < 2 + 64; i++) {
        if (staged[i] < 0 || dup2(staged[i], SERVER_CONFIG_FD + i) < 0)
            _exit(126);
        close(staged[i]);
    }
    /* Everything else master had open is close-on-exec; be explicit anyway.
     * close_range is one system call where the loop was ~20,000 (agents are
     * respawned every max_use requests); the loop stays for old kernels. */
    if (close_range((unsigned)(SERVER_LISTEN_FD0 + n), ~0U, 0) == 0)
        return;
    int maxfd = (int)sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;
    for (int fd = SERVER_LISTEN_FD0 + n; fd < maxfd; fd++)
        close(fd);
}

static void free_vector(char **v)
{
    for (int i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

int child_spawn(struct master *m, struct msvc *svc)
{
    char **argv = child_argv(m, svc);
    char **envp = child_environment();
    pid_t pid = fork();
    if (pid < 0) {
        log_warning("service %s: fork: %m", svc->def.name);
        free_vector(argv);
        free_vector(envp);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        child_setup_fds(m, svc);
        if (svc->drop_in_child && m->can_switch) {
            strbuf err;
            strbuf_init(&err);
            unsigned flags = svc->uid == 0 ? PRIV_ALLOW_ROOT : 0;
            if (privilege_drop(svc->uid, svc->gid, NULL, flags, &err) < 0) {
                log_error("service %s: %s", svc->def.name, err.data);
                _exit(1);
            }
            strbuf_free(&err);
        }
        execve(svc->program, argv, envp);
        log_error("service %s: cannot execute %s: %m", svc->def.name, svc->program);
        _exit(127);
    }
    free_vector(argv);
    free_vector(envp);

    struct mchild *c = xcalloc(1, sizeof(*c));
    c->pid = pid;
    c->svc = svc;
    c->idle = true; /* a new process is ready for a client as soon as it runs */
    c->started = time(NULL);
    c->next = m->children;
    m->children = c;
    svc->nproc++;
    svc->nidle++;
    svc->spawned++;
    log_debug("service %s: started pid %ld", svc->def.name, (long)pid);
    return 0;
}

static struct mchild *find_child(struct master *m, pid_t pid, struct mchild ***link_r)
{
    struct mchild **link = &m->children;
    for (struct mchild *c = m->children; c; link = &c->next, c = c->next)
        if (c->pid == pid) {
            if (link_r)
                *link_r = link;
            return c;
        }
    return NULL;
}

void children_reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct mchild **link;
        struct mchild *c = find_child(m, pid, &link);
        if (c == NULL)
            continue;
        struct msvc *svc = c->svc;
        *link = c->next;
        svc->nproc--;
        if (c->idle)
            svc->nidle--;
        time_t now = time(NULL);
        bool abnormal = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (abnormal && !m->stopping && !svc->retired) {
            bool young = now - c->started < YOUNG_SECONDS;
            svc->backoff = young && svc->backoff ? svc->backoff * 2 : 1;
            if (svc->backoff > BACKOFF_MAX)
                svc->backoff = BACKOFF_MAX;
            svc->throttle_until = now + svc->backoff;
            if (WIFSIGNALED(status))
                log_warning("service %s: process %s pid %ld killed by signal %d; restarting in %d s",
                            svc->def.name, svc->program, (long)pid, WTERMSIG(status),
                            svc->backoff);
            else
                log_warning("service %s: process %s pid %ld exit status %d; restarting in %d s",
                            svc->def.name, svc->program, (long)pid, WEXITSTATUS(status),
                            svc->backoff);
        } else if (!abnormal) {
            svc->backoff = 0;
        }
        free(c);
    }
}

void children_read_status(struct master *m, struct msvc *svc)
{
    struct server_report rep[64];
    for (;;) {
        ssize_t n = read(svc->status_rd, rep, sizeof(rep));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (size_t i = 0; i < (size_t)n / sizeof(rep[0]); i++) {
            struct mchild *c = find_child(m, rep[i].pid, NULL);
            if (c == NULL || c->svc != svc)
                continue;
            bool idle = rep[i].status == SERVER_STATUS_IDLE;
            if (idle != c->idle) {
                svc->nidle += idle ? 1 : -1;
                c->idle = idle;
            }
        }
    }
}

void children_signal(struct master *m, struct msvc *svc, int sig)
{
    for (struct mchild *c = m->children; c; c = c->next)
        if (svc == NULL || c->svc == svc)
            kill(c->pid, sig);
}

int children_count(const struct master *m)
{
    int n = 0;
    for (const struct mchild *c = m->children; c; c = c->next)
        n++;
    return n;
}
