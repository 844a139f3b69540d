/*
 * fdpass.c - SCM_RIGHTS descriptor passing; see fdpass.h for the contract.
 *
 * The receive side is written for a hostile or buggy sender: it accepts
 * exactly one descriptor on the first chunk of data, closes anything else
 * the kernel installed (extra descriptors, descriptors on later chunks, a
 * partial set after MSG_CTRUNC) and reports it.
 */
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#include "util/fdpass.h"
#include "util/netio.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Room for this many descriptors in one control message. More than we ever
 * expect, so that a sender's extra descriptors are received (and closed)
 * rather than only counted; beyond it the kernel truncates (MSG_CTRUNC) and
 * closes the rest itself. */
#define FDPASS_CMSG_FDS 8

int fdpass_send(int sock, int fd, const void *data, size_t n, int timeout_ms)
{
    if (n == 0) {
        errno = EINVAL;
        return -1;
    }
    union {
        struct cmsghdr hdr; /* for alignment */
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    long long deadline = netio_now_ms() + timeout_ms;
    const char *p = data;
    size_t off = 0;
    bool fd_sent = false;

    while (off < n) {
        if (netio_wait_fd(sock, POLLOUT, netio_remaining_ms(deadline)) < 0)
            return -1;
        struct iovec iov = { .iov_base = (void *)(p + off), .iov_len = n - off };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (!fd_sent) {
            msg.msg_control = ctl.buf;
            msg.msg_controllen = sizeof(ctl.buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        ssize_t r = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            bool retry = errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
            if (retry && netio_remaining_ms(deadline) > 0)
                continue;
            if (retry)
                errno = ETIMEDOUT;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        /* Once any byte went out, the descriptor went with it. */
        fd_sent = true;
        off += (size_t)r;
    }
    return 0;
}

static void close_fds(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

static int recv_fail(strbuf *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int recv_fail(strbuf *err, int errnum, const char *fmt, ...)
{
    strbuf_reset(err);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(err, fmt, ap);
    va_end(ap);
    errno = errnum;
    return -1;
}

/* Collects the SCM_RIGHTS descriptors of one received message into fds
 * (capacity FDPASS_CMSG_FDS per control message, so it cannot overflow:
 * the control buffer holds no more). Other control messages are ignored. */
static size_t collect_fds(struct msghdr *msg, int *fds, size_t cap)
{
    size_t n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *d = CMSG_DATA(c);
        for (size_t i = 0; i < k && n < cap; i++)
            memcpy(&fds[n++], d + i * sizeof(int), sizeof(int));
    }
    return n;
}

int fdpass_recv(int sock, int *fd_r, void *buf, size_t n, int timeout_ms, strbuf *err)
{
    *fd_r = -1;
    if (n == 0)
        return recv_fail(err, EINVAL, "fdpass_recv: zero-length message");
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(FDPASS_CMSG_FDS * sizeof(int))];
    } ctl;
    long long deadline = netio_now_ms() + timeout_ms;
    char *p = buf;
    size_t got = 0;
    int fd = -1;

    while (got < n) {
        if (netio_wait_fd(sock, POLLIN, netio_remaining_ms(deadline)) < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            if (e == ETIMEDOUT)
                return recv_fail(err, e, "timeout after %d ms waiting for a passed descriptor"
                                 " (%zu of %zu bytes received)", timeout_ms, got, n);
            return recv_fail(err, e, "descriptor receive: %s", strerror(e));
        }
        struct iovec iov = { .iov_base = p + got, .iov_len = n - got };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (r < 0) {
            bool retry = errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
            if (retry && netio_remaining_ms(deadline) > 0)
                continue;
            int e = retry ? ETIMEDOUT : errno;
            if (fd >= 0)
                close(fd);
            return recv_fail(err, e, "descriptor receive: %s", strerror(e));
        }
        int fds[FDPASS_CMSG_FDS];
        size_t nfds = collect_fds(&msg, fds, FDPASS_CMSG_FDS);
        const char *problem = NULL;
        if (msg.msg_flags & MSG_CTRUNC)
            problem = "control data truncated (peer sent too many descriptors)";
        else if (nfds > 1)
            problem = "peer sent more than one descriptor";
        else if (nfds == 1 && (got > 0 || fd >= 0))
            problem = "descriptor arrived after the start of the message";
        else if (r == 0)
            problem = "peer closed the connection";
        else if (msg.msg_flags & MSG_TRUNC)
            problem = "data truncated";
        if (problem != NULL) {
            close_fds(fds, nfds);
            if (fd >= 0)
                close(fd);
            return recv_fail(err, EPROTO, "descriptor receive: %s (%zu of %zu bytes received)",
                             problem, got + (r > 0 ? (size_t)r : 0), n);
        }
        if (nfds == 1)
            fd = fds[0];
        if (got == 0 && fd < 0) {
            /* The descriptor must ride with the first bytes; if it did not,
             * this is not the message we were waiting for. */
            return recv_fail(err, EPROTO, "descriptor receive: message came without a"
                             " descriptor");
        }
        got += (size_t)r;
    }
    *fd_r = fd;
    return 0;
}
