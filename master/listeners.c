/*
 * listeners.c - master opens every listening socket itself, so ports below
 * 1024 are bound as root and a reload keeps sockets whose endpoint did not
 * change (no connection is refused while services restart).
 *
 * Listeners are non-blocking: several children poll and accept on the same
 * socket, and the ones that lose the race get EAGAIN instead of hanging.
 */
#define _GNU_SOURCE
#include "master.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 128

static int open_inet(const struct service_endpoint *ep, struct strbuf *err)
{
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } sa;
    socklen_t salen;
    int family;
    memset(&sa, 0, sizeof(sa));
    if (ep->host == NULL || strchr(ep->host, ':') != NULL) {
        family = AF_INET6;
        sa.v6.sin6_family = AF_INET6;
        sa.v6.sin6_port = htons((uint16_t)ep->port);
        if (ep->host == NULL)
            sa.v6.sin6_addr = in6addr_any;
        else
            inet_pton(AF_INET6, ep->host, &sa.v6.sin6_addr);
        salen = sizeof(sa.v6);
    } else {
        family = AF_INET;
        sa.v4.sin_family = AF_INET;
        sa.v4.sin_port = htons((uint16_t)ep->port);
        inet_pton(AF_INET, ep->host, &sa.v4.sin_addr);
        salen = sizeof(sa.v4);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 && family == AF_INET6 && ep->host == NULL && errno == EAFNOSUPPORT) {
        /* No IPv6 on this host: the wildcard means every IPv4 address. */
        family = AF_INET;
        memset(&sa, 0, sizeof(sa));
        sa.v4.sin_family = AF_INET;
        sa.v4.sin_port = htons((uint16_t)ep->port);
        sa.v4.sin_addr.s_addr = htonl(INADDR_ANY);
        salen = sizeof(sa.v4);
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    }
    if (fd < 0) {
        strbuf_printf(err, "listen %s: socket: %s", ep->text, strerror(errno));
        return -1;
    }
    int on = 1, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (family == AF_INET6)
        /* The wildcard listens on IPv4 and IPv6 at once; a literal only on itself. */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, ep->host ? &on : &off, sizeof(int));
    if (bind(fd, (struct sockaddr *)&sa, salen) < 0) {
        strbuf_printf(err, "listen %s: bind: %s", ep->text, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        strbuf_printf(err, "listen %s: %s", ep->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int open_unix(struct master *m, const struct msvc *svc, const struct service_endpoint *ep,
                     struct strbuf *err)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/%s", m->queue_dir, ep->path);
    if (path.len >= sizeof(sun.sun_path)) {
        strbuf_printf(err, "listen %s: path %s is too long for a UNIX socket", ep->text, path.data);
        strbuf_free(&path);
        return -1;
    }
    memcpy(sun.sun_path, path.data, path.len + 1);
    /* A socket left by a previous master is replaced; anything else is not ours. */
    struct stat st;
    if (lstat(path.data, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            strbuf_printf(err, "listen %s: %s exists and is not a socket", ep->text, path.data);
            strbuf_free(&path);
            return -1;
        }
        unlink(path.data);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_printf(err, "listen %s: socket: %s", ep->text, strerror(errno));
        strbuf_free(&path);
        return -1;
    }
    /* Access is controlled by the directory (private/ 0700, public/ 0710). */
    mode_t old = umask(0);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        strbuf_printf(err, "listen %s: %s: %s", ep->text, path.data, strerror(errno));
        close(fd);
        strbuf_free(&path);
        return -1;
    }
    if (m->can_switch && lchown(path.data, svc->uid, svc->gid) < 0) {
        strbuf_printf(err, "listen %s: chown %s: %s", ep->text, path.data, strerror(errno));
        close(fd);
        strbuf_free(&path);
        return -1;
    }
    strbuf_free(&path);
    return fd;
}

int listeners_open(struct master *m, struct msvc *svc, struct strbuf *err)
{
    for (int i = 0; i < svc->def.nendpoints; i++) {
        if (svc->listen_fds[i] >= 0)
            continue;
        const struct service_endpoint *ep = &svc->def.endpoints[i];
        int fd = ep->kind == ENDPOINT_INET ? open_inet(ep, err) : open_unix(m, svc, ep, err);
        if (fd < 0)
            return -1;
        svc->listen_fds[i] = fd;
    }
    return 0;
}

void listeners_close(struct msvc *svc)
{
    for (int i = 0; i < svc->def.nendpoints; i++)
        if (svc->listen_fds[i] >= 0) {
            close(svc->listen_fds[i]);
            svc->listen_fds[i] = -1;
        }
}

void listeners_inherit(struct msvc *newsvc, struct msvc *old)
{
    for (int i = 0; i < newsvc->def.nendpoints; i++)
        for (int j = 0; j < old->def.nendpoints; j++)
            if (old->listen_fds[j] >= 0 &&
                service_endpoint_equal(&newsvc->def.endpoints[i], &old->def.endpoints[j])) {
                newsvc->listen_fds[i] = old->listen_fds[j];
                old->listen_fds[j] = -1;
            }
}
