/*
 * control.c - master's control socket, `<queue_directory>/pid/master.ctl`,
 * through which `petrel status` asks what is running.
 *
 * The request is one line ("status"); the answer is one line per service
 * of `name=value` fields, then "end". The socket sits in pid/, which only
 * root (or the instance's own user) may write, and master never waits on a
 * client for more than a second, so a stuck client cannot stall supervision.
 */
#define _GNU_SOURCE
#include "master.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_TIMEOUT_MS 1000
#define CONTROL_MAX_REQUEST 256

int control_open(struct master *m, struct strbuf *err)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/pid/master.ctl", m->queue_dir);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        strbuf_printf(err, "queue_directory %s is too long for the control socket path",
                      m->queue_dir);
        return -1;
    }
    unlink(sun.sun_path); /* we hold the master lock: a leftover socket is stale */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_printf(err, "control socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        strbuf_printf(err, "control socket %s: %s", sun.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    m->control_fd = fd;
    return 0;
}

static void send_all(int fd, const strbuf *sb)
{
    size_t off = 0;
    while (off < sb->len) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, CONTROL_TIMEOUT_MS) <= 0)
            return;
        ssize_t w = send(fd, sb->data + off, sb->len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return;
        }
        off += (size_t)w;
    }
}

static void describe(struct master *m, strbuf *out)
{
    time_t now = time(NULL);
    for (struct msvc *s = m->services; s; s = s->next) {
        const char *state = s->retired                 ? "retiring"
                            : s->throttle_until > now ? "throttled"
                                                       : "running";
        strbuf_printf(out,
                      "service=%s type=%s procs=%d idle=%d limit=%d started=%lu state=%s "
                      "listen=",
                      s->def.name, s->def.kind == SERVICE_DAEMON ? "daemon" : "accept", s->nproc,
                      s->nidle, s->limit, s->spawned, state);
        if (s->def.nendpoints == 0)
            strbuf_appendc(out, '-');
        for (int i = 0; i < s->def.nendpoints; i++)
            strbuf_printf(out, "%s%s", i ? "," : "", s->def.endpoints[i].text);
        strbuf_appendc(out, '\n');
    }
    strbuf_appends(out, "end\n");
}

void control_serve(struct master *m)
{
    int fd = accept4(m->control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    char req[CONTROL_MAX_REQUEST];
    size_t len = 0;
    while (len < sizeof(req) && memchr(req, '\n', len) == NULL) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, CONTROL_TIMEOUT_MS) <= 0)
            break;
        ssize_t r = recv(fd, req + len, sizeof(req) - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    strbuf out;
    strbuf_init(&out);
    if (len >= 7 && memcmp(req, "status\n", 7) == 0)
        describe(m, &out);
    else
        strbuf_appends(&out, "error=unknown request\nend\n");
    send_all(fd, &out);
    strbuf_free(&out);
    close(fd);
}
