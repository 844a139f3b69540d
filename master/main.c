/*
 * main.c - master, the root supervisor: reads the configuration, prepares
 * the queue directory, takes the queue lock, opens every listener and then
 * spends its life starting, counting and restarting service processes.
 *
 *   master [-c confdir] [-f] [-v]
 *     -f  stay in the foreground (systemd, tests); otherwise master detaches
 *         and its parent exits 0 only once the instance is up (or prints why
 *         it is not and exits 1), so `petrel start` can report the truth.
 *
 * Signals: SIGHUP reloads (new processes use the new configuration, old
 * ones finish their client and exit); SIGTERM/SIGINT stop (listeners closed,
 * children told to finish, killed after master_stop_timeout).
 */
#define _GNU_SOURCE
#include "master.h"
#include "mail/queue_layout.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PETREL_CONFIG_DIR
#define PETREL_CONFIG_DIR "/etc/petrel"
#endif
#define LIMIT_LOG_INTERVAL 60

static int signal_pipe[2] = { -1, -1 };
static int ready_fd = -1; /* daemon mode: tells the waiting parent how start-up went */

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t r = write(signal_pipe[1], &c, 1);
    (void)r;
    errno = saved;
}

/* Start-up failure: the reason goes to the log and to whoever started us. */
__attribute__((format(printf, 1, 2))) static _Noreturn void startup_fail(const char *fmt, ...)
{
    strbuf sb;
    strbuf_init(&sb);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    strbuf_rtrim(&sb);
    log_error("%s", sb.data);
    strbuf_appendc(&sb, '\n');
    int fd = ready_fd >= 0 ? ready_fd : 2;
    ssize_t r = write(fd, sb.data, sb.len);
    (void)r;
    exit(1);
}

static void daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        startup_fail("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        startup_fail("fork: %s", strerror(errno));
    if (pid > 0) {
        close(p[1]);
        strbuf msg;
        strbuf_init(&msg);
        char buf[512];
        ssize_t r;
        while ((r = read(p[0], buf, sizeof(buf))) != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                break;
            strbuf_append(&msg, buf, (size_t)r);
        }
        if (strbuf_eq(&msg, "ready\n"))
            _exit(0);
        if (msg.len == 0)
            strbuf_sets(&msg, "master exited during start-up; see the log\n");
        fprintf(stderr, "master: %s", msg.data);
        _exit(1);
    }
    close(p[0]);
    ready_fd = p[1];
    setsid();
    if (chdir("/") < 0)
        startup_fail("chdir /: %s", strerror(errno));
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* A log file written by every service: the unprivileged ones must be able
 * to append to it, so it belongs to mail_owner (the log module opens it
 * with O_NOFOLLOW, so the owner cannot redirect root's writes elsewhere). */
static void share_log_file(struct master *m)
{
    if (!m->can_switch || m->log_destination == NULL || m->log_destination[0] != '/')
        return;
    struct priv_user u;
    strbuf why;
    strbuf_init(&why);
    if (privilege_lookup_user(m->mail_owner, &u, &why) == PRIV_LOOKUP_FOUND) {
        if (chown(m->log_destination, u.uid, u.gid) < 0)
            log_warning("cannot give the log file %s to %s: %m", m->log_destination,
                        m->mail_owner);
        privilege_user_free(&u);
    }
    strbuf_free(&why);
}

static void prepare_queue(struct master *m)
{
    struct queue_owners o;
    strbuf why;
    strbuf_init(&why);
    if (queue_layout_owners(m->mail_owner, m->setgid_group, &o, &why) < 0)
        startup_fail("%s", why.data);
    strbuf_free(&why);
    strbuf problems;
    strbuf_init(&problems);
    if (mkdir(m->queue_dir, 0755) < 0 && errno != EEXIST)
        startup_fail("cannot create queue_directory %s: %s", m->queue_dir, strerror(errno));
    queue_layout_apply(m->queue_dir, &o, QUEUE_LAYOUT_CREATE, &problems);
    /* Report each problem; a broken pid/ or private/ shows up below as a hard error. */
    char *save = NULL;
    for (char *l = strtok_r(problems.data, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        log_warning("queue: %s", l);
    strbuf_free(&problems);
}

/* The lock that keeps two masters off one queue: flock on pid/master.pid,
 * which also records our pid for `petrel stop`. flock (not fcntl) because
 * the lock must survive nothing but this process and is not inherited by
 * exec'd children (the descriptor is close-on-exec). */
static void take_lock(struct master *m)
{
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/pid/master.pid", m->queue_dir);
    int fd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        startup_fail("cannot open %s: %s", path.data, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char buf[32] = "";
        ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[r > 0 ? r : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        startup_fail("the queue directory %s is in use by another master (pid %s); "
                     "stop it first (petrel stop)",
                     m->queue_dir, *buf ? buf : "unknown");
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        startup_fail("cannot write %s: %s", path.data, strerror(errno));
    m->lock_fd = fd;
    strbuf_free(&path);
}

static void install_signals(void)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        startup_fail("pipe: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int open_service(struct master *m, struct msvc *svc, strbuf *err)
{
    if (listeners_open(m, svc, err) < 0)
        return -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        strbuf_printf(err, "pipe: %s", strerror(errno));
        return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    svc->status_rd = p[0];
    svc->status_wr = p[1];
    return 0;
}

static void reload(struct master *m)
{
    struct msvc *fresh;
    strbuf err;
    strbuf_init(&err);
    if (services_load(m, &fresh, &err) > 0) {
        strbuf_rtrim(&err);
        log_error("reload: configuration has errors; keeping the running one:\n%s", err.data);
        strbuf_free(&err);
        return;
    }
    if (m->log_destination && log_open_spec(m->log_destination) < 0)
        log_warning("log_destination %s: %m", m->log_destination);
    share_log_file(m);
    for (struct msvc *n = fresh; n; n = n->next)
        for (struct msvc *o = m->services; o; o = o->next)
            listeners_inherit(n, o);
    struct msvc *ok = NULL, **tail = &ok;
    while (fresh) {
        struct msvc *n = fresh;
        fresh = n->next;
        n->next = NULL;
        strbuf_reset(&err);
        if (open_service(m, n, &err) < 0) {
            log_error("reload: service %s: %s; service not started", n->def.name, err.data);
            service_free(n);
            continue;
        }
        *tail = n;
        tail = &n->next;
    }
    /* Retire the old generation: idle processes exit now, busy ones after their client. */
    for (struct msvc *o = m->services; o; o = o->next) {
        if (o->retired)
            continue;
        o->retired = true;
        listeners_close(o);
        children_signal(m, o, SIGUSR1);
    }
    *tail = m->services;
    m->services = ok;
    log_info("reload -- configuration %s", m->config_dir);
    strbuf_free(&err);
}

static bool daemon_still_retiring(struct master *m, const struct msvc *svc)
{
    for (struct msvc *o = m->services; o; o = o->next)
        if (o->retired && o->nproc > 0 && strcmp(o->def.name, svc->def.name) == 0)
            return true;
    return false;
}

static void free_retired(struct master *m)
{
    struct msvc **link = &m->services;
    while (*link) {
        struct msvc *s = *link;
        if (s->retired && s->nproc == 0) {
            *link = s->next;
            service_free(s);
        } else {
            link = &s->next;
        }
    }
}

/* Accept services whose processes are all busy: master watches their
 * listeners and starts another process when a client is waiting. */
static bool wants_watch(const struct msvc *s, time_t now)
{
    return !s->retired && s->def.kind == SERVICE_ACCEPT && s->nidle == 0 &&
           s->throttle_until <= now && s->mute_until <= now;
}

static void stop_all(struct master *m)
{
    m->stopping = true;
    log_info("terminating on signal");
    for (struct msvc *s = m->services; s; s = s->next)
        listeners_close(s);
    children_signal(m, NULL, SIGTERM);
    time_t deadline = time(NULL) + m->grace;
    while (m->children && time(NULL) < deadline) {
        struct pollfd p = { .fd = signal_pipe[0], .events = POLLIN };
        poll(&p, 1, 200);
        unsigned char buf[64];
        while (read(signal_pipe[0], buf, sizeof(buf)) > 0)
            ;
        children_reap(m);
    }
    if (m->children) {
        log_warning("%d processes still running after %d s; killing them", children_count(m),
                    m->grace);
        children_signal(m, NULL, SIGKILL);
        while (m->children) {
            int before = children_count(m);
            children_reap(m);
            if (children_count(m) == before)
                usleep(20000);
        }
    }
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/pid/master.ctl", m->queue_dir);
    unlink(path.data);
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/pid/master.pid", m->queue_dir);
    unlink(path.data);
    strbuf_free(&path);
    log_info("stopped");
}

static void main_loop(struct master *m)
{
    struct pollfd *pfd = NULL;
    struct msvc **owner = NULL; /* which service each pollfd belongs to */
    size_t cap = 0;
    for (;;) {
        time_t now = time(NULL);
        size_t n = 0, need = 2;
        for (struct msvc *s = m->services; s; s = s->next)
            need += 1 + (size_t)s->def.nendpoints;
        if (need > cap) {
            cap = need;
            pfd = xreallocarray(pfd, cap, sizeof(*pfd));
            owner = xreallocarray(owner, cap, sizeof(*owner));
        }
        pfd[n] = (struct pollfd){ .fd = signal_pipe[0], .events = POLLIN };
        owner[n++] = NULL;
        pfd[n] = (struct pollfd){ .fd = m->control_fd, .events = POLLIN };
        owner[n++] = NULL;
        for (struct msvc *s = m->services; s; s = s->next) {
            pfd[n] = (struct pollfd){ .fd = s->status_rd, .events = POLLIN };
            owner[n++] = s;
            if (!s->retired && s->def.kind == SERVICE_DAEMON && s->nproc == 0 &&
                s->throttle_until <= now && !daemon_still_retiring(m, s))
                child_spawn(m, s);
            if (wants_watch(s, now))
                for (int i = 0; i < s->def.nendpoints; i++) {
                    pfd[n] = (struct pollfd){ .fd = s->listen_fds[i], .events = POLLIN };
                    owner[n++] = s;
                }
        }
        int rc = poll(pfd, (nfds_t)n, 1000);
        if (rc < 0 && errno != EINTR)
            log_fatal("poll: %m");
        bool do_reload = false, do_stop = false;
        if (rc > 0 && (pfd[0].revents & POLLIN)) {
            unsigned char sigs[64];
            ssize_t r;
            while ((r = read(signal_pipe[0], sigs, sizeof(sigs))) > 0)
                for (ssize_t i = 0; i < r; i++) {
                    if (sigs[i] == SIGHUP)
                        do_reload = true;
                    else if (sigs[i] == SIGTERM || sigs[i] == SIGINT)
                        do_stop = true;
                }
        }
        children_reap(m);
        if (do_stop) {
            stop_all(m);
            break;
        }
        now = time(NULL);
        for (size_t i = 2; rc > 0 && i < n; i++) {
            struct msvc *s = owner[i];
            if (!pfd[i].revents)
                continue;
            if (pfd[i].fd == s->status_rd) {
                children_read_status(m, s);
                continue;
            }
            /* A client waits on a listener and no process of s seemed idle; a
             * process that just finished may have reported since the poll. */
            children_read_status(m, s);
            if (s->nidle > 0 || s->retired)
                continue;
            if (s->nproc < s->limit) {
                child_spawn(m, s);
            } else {
                if (now - s->limit_logged >= LIMIT_LOG_INTERVAL) {
                    log_warning("service %s: all %d processes are busy (process limit reached); "
                                "clients wait. Consider raising the limit in services.conf",
                                s->def.name, s->limit);
                    s->limit_logged = now;
                }
                s->mute_until = now + 1;
            }
        }
        if (rc > 0 && (pfd[1].revents & POLLIN))
            control_serve(m);
        if (do_reload)
            reload(m);
        free_retired(m);
    }
    free(pfd);
    free(owner);
}

int main(int argc, char **argv)
{
    struct master m;
    memset(&m, 0, sizeof(m));
    m.control_fd = m.lock_fd = m.config_fd = -1;
    const char *config_dir = PETREL_CONFIG_DIR;
    bool foreground = false;
    int opt;
    log_init("master");
    while ((opt = getopt(argc, argv, "c:fv")) != -1) {
        switch (opt) {
        case 'c': config_dir = optarg; break;
        case 'f': foreground = true; break;
        case 'v': log_set_level(LOG_LEVEL_DEBUG); break;
        default:
            fprintf(stderr, "usage: master [-c confdir] [-f] [-v]\n");
            return 64;
        }
    }
    char *abs = realpath(config_dir, NULL);
    if (abs == NULL) {
        fprintf(stderr, "master: configuration directory %s: %s\n", config_dir, strerror(errno));
        return 1;
    }
    m.config_dir = abs;
    m.can_switch = privilege_can_switch();

    struct msvc *list;
    strbuf err;
    strbuf_init(&err);
    if (services_load(&m, &list, &err) > 0) {
        fprintf(stderr, "%smaster: the configuration has errors; not starting\n", err.data);
        return 1;
    }
    if (!foreground)
        daemonize();
    if (m.log_destination && log_open_spec(m.log_destination) < 0)
        startup_fail("log_destination %s: %s", m.log_destination, strerror(errno));
    share_log_file(&m);
    if (!m.can_switch)
        log_info("running as non-root (uid %ld): not switching users", (long)geteuid());
    prepare_queue(&m);
    take_lock(&m);
    install_signals();
    if (control_open(&m, &err) < 0)
        startup_fail("%s", err.data);
    m.services = list;
    for (struct msvc *s = m.services; s; s = s->next) {
        strbuf_reset(&err);
        if (open_service(&m, s, &err) < 0)
            startup_fail("service %s: %s", s->def.name, err.data);
    }
    strbuf_free(&err);
    log_info("daemon started -- version %s, configuration %s", PETREL_VERSION, m.config_dir);
    if (ready_fd >= 0) {
        detach_stdio();
        ssize_t r = write(ready_fd, "ready\n", 6);
        (void)r;
        close(ready_fd);
        ready_fd = -1;
    }
    main_loop(&m);
    while (m.services) {
        struct msvc *next = m.services->next;
        service_free(m.services);
        m.services = next;
    }
    close(m.control_fd);
    close(m.lock_fd);
    free(m.config_dir);
    free(m.queue_dir);
    free(m.daemon_dir);
    free(m.mail_owner);
    free(m.setgid_group);
    free(m.log_destination);
    return 0;
}
