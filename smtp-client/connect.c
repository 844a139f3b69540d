/*
 * connect.c - TCP connections to next-hop hosts with a time limit, address
 * text for messages, and the "is this address myself?" test that keeps a
 * mis-pointed MX from bouncing mail between this host and itself.
 */
#include "smtpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

int smtpc_connect(const struct dns_addr *addr, int timeout_ms, strbuf *err)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_printf(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0) {
        if (errno != EINPROGRESS) {
            strbuf_appends(err, strerror(errno));
            close(fd);
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        long long deadline = netio_now_ms() + timeout_ms;
        int r;
        do {
            r = poll(&p, 1, netio_remaining_ms(deadline));
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            strbuf_appends(err, "connection timed out");
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            strbuf_appends(err, strerror(r < 0 ? errno : soerr ? soerr : EIO));
            close(fd);
            return -1;
        }
    }
    /* netio wants blocking descriptors; it waits with poll() itself. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        strbuf_printf(err, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void smtpc_addr_text(const struct dns_addr *addr, strbuf *out)
{
    char buf[INET6_ADDRSTRLEN];
    const void *p = addr->sa.ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&addr->sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&addr->sa)->sin6_addr;
    if (inet_ntop(addr->sa.ss_family, p, buf, sizeof(buf)) == NULL)
        strbuf_appends(out, "?");
    else
        strbuf_appends(out, buf);
}

int smtpc_addr_port(const struct dns_addr *addr)
{
    if (addr->sa.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&addr->sa)->sin6_port);
}

/* Loopback, the unspecified address, or an address of an interface. */
static bool addr_is_local(const struct dns_addr *addr)
{
    if (addr->sa.ss_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)&addr->sa)->sin_addr;
        uint32_t h = ntohl(a->s_addr);
        if ((h >> 24) == 127 || h == 0)
            return true;
    } else {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&addr->sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127)
            return true;
    }
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) < 0)
        return false;
    bool found = false;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != addr->sa.ss_family)
            continue;
        if (addr->sa.ss_family == AF_INET)
            found = memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                           &((const struct sockaddr_in *)&addr->sa)->sin_addr,
                           sizeof(struct in_addr)) == 0;
        else
            found = memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
                           &((const struct sockaddr_in6 *)&addr->sa)->sin6_addr,
                           sizeof(struct in6_addr)) == 0;
    }
    freeifaddrs(ifs);
    return found;
}

bool smtpc_addr_is_self(const struct smtpc_settings *s, const struct dns_addr *addr)
{
    int port = smtpc_addr_port(addr);
    bool ours = false;
    for (size_t i = 0; i < s->n_own_ports; i++)
        if (s->own_ports[i] == port)
            ours = true;
    return ours && addr_is_local(addr);
}
