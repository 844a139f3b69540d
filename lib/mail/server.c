/*
 * server.c - the server skeleton shared by every service (see server.h).
 *
 * Accept loop: poll the listeners (and the status pipe, whose POLLERR says
 * master is gone) with max_idle as the timeout, accept without blocking
 * (sibling processes race for the same connection; the losers get EAGAIN),
 * serve, report. Signals only set flags; the loop looks at them between
 * clients, so a session in progress always finishes.
 */
#define _GNU_SOURCE
#include "mail/server.h"
#include "mail/params.h"
#include "util/config.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PETREL_CONFIG_DIR
#define PETREL_CONFIG_DIR "/etc/petrel"
#endif

static volatile sig_atomic_t stop_requested;

bool server_stopping(void)
{
    return stop_requested != 0;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static bool have_status_pipe;

static void report(enum server_status status)
{
    if (!have_status_pipe)
        return;
    struct server_report r = { .pid = (int)getpid(), .status = (int)status };
    ssize_t n;
    do
        n = write(SERVER_STATUS_FD, &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EPIPE) {
        /* master is gone: nobody will count us, and nobody will stop us. */
        log_warning("master went away; exiting");
        exit(0);
    }
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART keeps a session's reads and writes going; poll() still
     * returns EINTR, which is how the accept loop notices the request. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* -U uid:gid after init: used for chrooted services that master started as root. */
static void drop_after_init(const char *ids, const char *chroot_dir)
{
    unsigned long uid, gid;
    char tail;
    if (sscanf(ids, "%lu:%lu%c", &uid, &gid, &tail) != 2)
        log_fatal("bad -U argument \"%s\" (expected uid:gid)", ids);
    strbuf err;
    strbuf_init(&err);
    if (privilege_drop((uid_t)uid, (gid_t)gid, chroot_dir, 0, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
}

/* The validated copy of petrel.conf master hands us on SERVER_CONFIG_FD. */
static bool read_config_fd(strbuf *text)
{
    if (fcntl(SERVER_CONFIG_FD, F_GETFD) < 0)
        return false;
    char buf[8192];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(SERVER_CONFIG_FD, buf, sizeof(buf), off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            log_fatal("cannot read the configuration from master (descriptor %d): %m",
                      SERVER_CONFIG_FD);
        if (r == 0)
            break;
        if (text->len + (size_t)r > CONFIG_MAX_FILE)
            log_fatal("configuration from master is larger than %d bytes", CONFIG_MAX_FILE);
        strbuf_append(text, buf, (size_t)r);
        off += r;
    }
    close(SERVER_CONFIG_FD);
    return true;
}

/* petrel.conf plus this service's -o overrides (NUL-separated in overrides).
 * master checked it before starting us, so an error here is fatal. */
static struct config *load_config(const char *config_dir, const strbuf *overrides)
{
    struct config *cfg = params_config_new();
    strbuf path, err, text;
    strbuf_init(&path);
    strbuf_init(&err);
    strbuf_init(&text);
    strbuf_printf(&path, "%s/petrel.conf", config_dir);
    int nerr = read_config_fd(&text)
                   ? config_load_string(cfg, path.data, text.data, text.len, &err)
                   : config_load_file(cfg, path.data, &err);
    strbuf_free(&text);
    if (nerr > 0)
        log_fatal("%s", err.data);
    for (size_t off = 0; off < overrides->len;) {
        const char *kv = overrides->data + off;
        off += strlen(kv) + 1;
        const char *eq = strchr(kv, '=');
        char *name = eq ? xstrndup(kv, (size_t)(eq - kv)) : NULL;
        if (name == NULL || config_set(cfg, name, eq + 1, "-o", 0) < 0)
            log_fatal("bad -o override \"%s\" (expected name=value)", kv);
        free(name);
    }
    const char *dest = config_get(cfg, "log_destination");
    if (dest && *dest && log_open_spec(dest) < 0)
        log_warning("log_destination %s: %m; logging to stderr", dest);
    strbuf_free(&path);
    strbuf_free(&err);
    return cfg;
}

static void accept_loop(struct server_ctx *ctx, const struct server_ops *ops, long max_use,
                        long max_idle)
{
    int npoll = ctx->nlisten + (have_status_pipe ? 1 : 0);
    struct pollfd *pfd = xcalloc((size_t)npoll, sizeof(*pfd));
    for (int i = 0; i < ctx->nlisten; i++) {
        pfd[i].fd = ctx->listen_fds[i];
        pfd[i].events = POLLIN;
    }
    if (have_status_pipe) {
        pfd[ctx->nlisten].fd = SERVER_STATUS_FD;
        pfd[ctx->nlisten].events = 0; /* only POLLERR: the read end was closed */
    }
    long served = 0;
    time_t last = time(NULL);
    while (!stop_requested && (max_use <= 0 || served < max_use)) {
        time_t now = time(NULL);
        long left = max_idle > 0 ? max_idle - (long)(now - last) : -1;
        if (max_idle > 0 && left <= 0)
            break; /* idle too long: master starts another process when needed */
        int wait_ms = left > 0 ? (int)(left * 1000) : -1;
        int wake_ms = ops->wakeup ? ops->wakeup(ctx) : -1;
        if (wake_ms >= 0 && (wait_ms < 0 || wake_ms < wait_ms))
            wait_ms = wake_ms;
        int rc = poll(pfd, (nfds_t)npoll, wait_ms);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_fatal("poll: %m");
        }
        if (have_status_pipe && (pfd[ctx->nlisten].revents & (POLLERR | POLLHUP))) {
            log_info("master went away; exiting");
            break;
        }
        for (int i = 0; i < ctx->nlisten && !stop_requested; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            int fd = accept4(ctx->listen_fds[i], NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                    errno != ECONNABORTED)
                    log_warning("accept: %m");
                continue;
            }
            report(SERVER_STATUS_BUSY);
            ops->serve(ctx, fd);
            close(fd);
            served++;
            last = time(NULL);
            report(SERVER_STATUS_IDLE);
            break; /* poll again: another process may be idle for the other listeners */
        }
    }
    free(pfd);
}

int server_main(int argc, char **argv, const struct server_ops *ops)
{
    const char *name = NULL, *config_dir = PETREL_CONFIG_DIR, *drop_ids = NULL;
    const char *chroot_dir = NULL;
    long nlisten = 0, max_use = -1, max_idle = -1;
    bool verbose = false;
    strbuf overrides;
    strbuf_init(&overrides);

    log_init(argv[0]);
    int opt;
    while ((opt = getopt(argc, argv, "n:c:l:u:i:o:U:R:v")) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 'c': config_dir = optarg; break;
        case 'l':
            if (parse_uint(optarg, 64, &nlisten) < 0)
                log_fatal("bad -l value \"%s\"", optarg);
            break;
        case 'u':
            if (parse_uint(optarg, 1000000000, &max_use) < 0)
                log_fatal("bad -u value \"%s\"", optarg);
            break;
        case 'i':
            if (parse_uint(optarg, 1000000000, &max_idle) < 0)
                log_fatal("bad -i value \"%s\"", optarg);
            break;
        case 'o':
            strbuf_append(&overrides, optarg, strlen(optarg) + 1);
            break;
        case 'U': drop_ids = optarg; break;
        case 'R': chroot_dir = optarg; break;
        case 'v': verbose = true; break;
        default:
            log_fatal("usage: %s -n service [-c confdir] [-l nlisten] [-u max_use] "
                      "[-i max_idle] [-o name=value]... [-U uid:gid [-R chroot]] [-v]",
                      argv[0]);
        }
    }
    if (name == NULL)
        name = log_progname();
    if (verbose)
        log_set_level(LOG_LEVEL_DEBUG);

    struct server_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.service = name;
    ctx.config_dir = config_dir;
    ctx.nlisten = (int)nlisten;
    ctx.listen_fds = xcalloc((size_t)nlisten + 1, sizeof(int));
    for (int i = 0; i < nlisten; i++)
        ctx.listen_fds[i] = SERVER_LISTEN_FD0 + i;
    have_status_pipe = fcntl(SERVER_STATUS_FD, F_GETFD) >= 0;
    if (have_status_pipe)
        fcntl(SERVER_CONFIG_FD, F_SETFD, FD_CLOEXEC);
    for (int i = 0; i <= nlisten; i++) {
        int fd = i == 0 ? SERVER_STATUS_FD : SERVER_LISTEN_FD0 + i - 1;
        if (i > 0 && fcntl(fd, F_GETFD) < 0)
            log_fatal("listener descriptor %d is not open (started outside master?)", fd);
        if (i > 0 || have_status_pipe)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }

    ctx.config = load_config(config_dir, &overrides);
    strbuf_free(&overrides);
    long long v;
    strbuf err;
    strbuf_init(&err);
    if (max_use < 0) {
        if (config_get_int(ctx.config, "max_use", &v, &err) < 0)
            log_fatal("%s", err.data);
        max_use = (long)v;
    }
    if (max_idle < 0) {
        if (config_get_time(ctx.config, "max_idle", &v, &err) < 0)
            log_fatal("%s", err.data);
        max_idle = (long)v;
    }
    strbuf_free(&err);

    install_signals();
    if (ops->init)
        ops->init(&ctx);
    if (drop_ids)
        drop_after_init(drop_ids, chroot_dir);
    else if (chroot_dir)
        log_fatal("-R needs -U");

    if (ops->kind == SERVER_ACCEPT) {
        if (ctx.nlisten == 0)
            log_fatal("service %s: no listening socket to accept on", name);
        accept_loop(&ctx, ops, max_use, max_idle);
    } else {
        ops->run(&ctx);
    }
    config_free(&ctx.config);
    free(ctx.listen_fds);
    return 0;
}
