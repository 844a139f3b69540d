/*
 * petrel_control.c - `petrel start | stop | reload | status`: talking to a
 * running master through its pid file (pid/master.pid, flock'ed while master
 * lives) and its control socket (pid/master.ctl).
 */
#define _GNU_SOURCE
#include "petrel.h"
#include "util/config.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATUS_TIMEOUT_MS 5000
#define STATUS_MAX_REPLY (1024 * 1024)

long petrel_master_pid(struct petrel_cli *cli)
{
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/pid/master.pid", petrel_param(cli, "queue_directory"));
    int fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    strbuf_free(&path);
    if (fd < 0)
        return 0;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        char buf[32];
        ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[r > 0 ? r : 0] = '\0';
        pid = strtol(buf, NULL, 10);
        if (pid <= 0)
            pid = -1; /* locked but unreadable: running, pid unknown */
    }
    close(fd);
    return pid;
}

static bool load_or_fail(struct petrel_cli *cli, const char *what)
{
    strbuf err;
    strbuf_init(&err);
    petrel_load(cli, &err);
    cli->load_errors += config_validate(cli->cfg, &err);
    if (cli->load_errors) {
        fprintf(stderr, "%spetrel %s: the configuration has errors (petrel check)\n", err.data,
                what);
        strbuf_free(&err);
        return false;
    }
    strbuf_free(&err);
    return true;
}

int cmd_start(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel start\n");
        return 64;
    }
    if (!load_or_fail(cli, "start"))
        return 1;
    long pid = petrel_master_pid(cli);
    if (pid != 0) {
        fprintf(stderr, "petrel start: the mail system is already running (master pid %ld)\n",
                pid);
        return 1;
    }
    strbuf prog;
    strbuf_init(&prog);
    strbuf_printf(&prog, "%s/master", petrel_param(cli, "daemon_directory"));
    pid_t child = fork();
    if (child < 0) {
        perror("petrel start: fork");
        return 1;
    }
    if (child == 0) {
        execl(prog.data, "master", "-c", cli->config_dir, (char *)NULL);
        fprintf(stderr, "petrel start: cannot execute %s: %s\n", prog.data, strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    strbuf_free(&prog);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "petrel start: the mail system did not start\n");
        return 1;
    }
    printf("petrel: the mail system is running (master pid %ld)\n", petrel_master_pid(cli));
    return 0;
}

int cmd_stop(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel stop\n");
        return 64;
    }
    strbuf err;
    strbuf_init(&err);
    petrel_load(cli, &err); /* a broken file must not prevent stopping */
    strbuf_free(&err);
    long pid = petrel_master_pid(cli);
    if (pid == 0) {
        fprintf(stderr, "petrel stop: the mail system is not running\n");
        return 1;
    }
    if (pid < 0 || kill((pid_t)pid, SIGTERM) < 0) {
        fprintf(stderr, "petrel stop: cannot signal master (pid %ld): %s\n", pid,
                pid < 0 ? "pid file unreadable" : strerror(errno));
        return 1;
    }
    long long grace = 10;
    config_get_time(cli->cfg, "master_stop_timeout", &grace, NULL);
    time_t deadline = time(NULL) + grace + 10;
    while (petrel_master_pid(cli) != 0) {
        if (time(NULL) > deadline) {
            fprintf(stderr, "petrel stop: master (pid %ld) is still running after %lld s\n", pid,
                    grace + 10);
            return 1;
        }
        usleep(50000);
    }
    printf("petrel: the mail system is stopped\n");
    return 0;
}

int cmd_reload(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel reload\n");
        return 64;
    }
    if (!load_or_fail(cli, "reload"))
        return 1;
    long pid = petrel_master_pid(cli);
    if (pid == 0) {
        fprintf(stderr, "petrel reload: the mail system is not running\n");
        return 1;
    }
    if (pid < 0 || kill((pid_t)pid, SIGHUP) < 0) {
        fprintf(stderr, "petrel reload: cannot signal master (pid %ld): %s\n", pid,
                pid < 0 ? "pid file unreadable" : strerror(errno));
        return 1;
    }
    printf("petrel: reloading the configuration (master pid %ld)\n", pid);
    return 0;
}

/* Sends "status" to master and collects the reply up to its "end" line. */
static int query_master(struct petrel_cli *cli, strbuf *reply)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/pid/master.ctl",
                     petrel_param(cli, "queue_directory"));
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        send(fd, "status\n", 7, MSG_NOSIGNAL) != 7) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (;;) {
        if (reply->len >= 4 && memcmp(reply->data + reply->len - 4, "end\n", 4) == 0)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, STATUS_TIMEOUT_MS) <= 0 || reply->len > STATUS_MAX_REPLY)
            break;
        char buf[4096];
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        strbuf_append(reply, buf, (size_t)r);
    }
    close(fd);
    return reply->len >= 4 && memcmp(reply->data + reply->len - 4, "end\n", 4) == 0 ? 0 : -1;
}

/* Value of field `key=` in a status line, copied into out. */
static const char *field(const char *line, const char *key, strbuf *out)
{
    strbuf_reset(out);
    size_t k = strlen(key);
    for (const char *p = line; p && *p;) {
        if (strncmp(p, key, k) == 0 && p[k] == '=') {
            const char *v = p + k + 1;
            strbuf_append(out, v, strcspn(v, " \n"));
            return out->data;
        }
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return "?";
}

int cmd_status(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel status\n");
        return 64;
    }
    strbuf err;
    strbuf_init(&err);
    petrel_load(cli, &err);
    strbuf_free(&err);
    long pid = petrel_master_pid(cli);
    if (pid == 0) {
        printf("petrel: the mail system is not running\n");
        return 1;
    }
    strbuf reply;
    strbuf_init(&reply);
    if (query_master(cli, &reply) < 0) {
        printf("petrel: master is running (pid %ld) but does not answer on pid/master.ctl\n",
               pid);
        strbuf_free(&reply);
        return 1;
    }
    printf("petrel: the mail system is running (master pid %ld), configuration %s\n", pid,
           cli->config_dir);
    printf("%-16s %-7s %5s %5s %6s %8s %-10s %s\n", "SERVICE", "TYPE", "PROCS", "IDLE", "LIMIT",
           "STARTED", "STATE", "LISTEN");
    strbuf f[8];
    for (int i = 0; i < 8; i++)
        strbuf_init(&f[i]);
    char *save = NULL;
    for (char *line = strtok_r(reply.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "service=", 8) != 0)
            continue;
        printf("%-16s %-7s %5s %5s %6s %8s %-10s %s\n", field(line, "service", &f[0]),
               field(line, "type", &f[1]), field(line, "procs", &f[2]), field(line, "idle", &f[3]),
               field(line, "limit", &f[4]), field(line, "started", &f[5]),
               field(line, "state", &f[6]), field(line, "listen", &f[7]));
    }
    for (int i = 0; i < 8; i++)
        strbuf_free(&f[i]);
    strbuf_free(&reply);
    return 0;
}
