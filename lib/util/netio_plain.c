/*
 * netio_plain.c - the clock and the plain descriptor backend of netio.
 *
 * Waits with poll() and never blocks past a deadline without touching the
 * descriptor's flags: MSG_DONTWAIT on sockets, at most PIPE_BUF bytes per
 * write on pipes (what POLLOUT promises), read() only after POLLIN.
 */
#include "util/netio.h"
#include "util/netio_int.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- clock ---- */

long long netio_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        log_panic("netio: clock_gettime(CLOCK_MONOTONIC) failed");
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int netio_remaining_ms(long long deadline_ms)
{
    long long left = deadline_ms - netio_now_ms();
    if (left < 0)
        return 0;
    if (left > INT_MAX)
        return INT_MAX;
    return (int)left;
}

/* ---- plain backend ---- */

int netio_wait_fd(int fd, short events, int timeout_ms)
{
    long long deadline = netio_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events, .revents = 0 };
        int n = poll(&pfd, 1, netio_remaining_ms(deadline));
        if (n > 0) {
            if (pfd.revents & POLLNVAL) {
                errno = EBADF;
                return -1;
            }
            /* POLLHUP/POLLERR: the next read or write reports what happened. */
            return 0;
        }
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
        /* Interrupted: retry with the time that is left. */
    }
}

static ssize_t plain_read(void *vctx, void *buf, size_t n, int timeout_ms)
{
    struct netio_plain_ctx *c = vctx;
    long long deadline = netio_now_ms() + timeout_ms;
    for (;;) {
        if (netio_wait_fd(c->rfd, POLLIN, netio_remaining_ms(deadline)) < 0)
            return -1;
        ssize_t r;
        if (!c->r_notsock) {
            /* MSG_DONTWAIT: never block past the deadline, without touching
             * the descriptor's flags (it may be shared). */
            r = recv(c->rfd, buf, n, MSG_DONTWAIT);
            if (r < 0 && errno == ENOTSOCK) {
                c->r_notsock = true;
                r = read(c->rfd, buf, n);
            }
        } else {
            /* After POLLIN a read() on a pipe or tty returns without waiting. */
            r = read(c->rfd, buf, n);
        }
        if (r >= 0)
            return r;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (netio_remaining_ms(deadline) == 0) {
            /* Ready by poll() yet nothing to read, and out of time. */
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

static ssize_t plain_write(void *vctx, const void *buf, size_t n, int timeout_ms)
{
    struct netio_plain_ctx *c = vctx;
    long long deadline = netio_now_ms() + timeout_ms;
    for (;;) {
        if (netio_wait_fd(c->wfd, POLLOUT, netio_remaining_ms(deadline)) < 0)
            return -1;
        ssize_t r = -1;
        if (!c->w_notsock) {
            /* MSG_NOSIGNAL: a vanished peer is an EPIPE error, not a signal. */
            r = send(c->wfd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r < 0 && errno == ENOTSOCK)
                c->w_notsock = true;
        }
        if (c->w_notsock) {
            /* POLLOUT on a pipe promises room for PIPE_BUF bytes; writing no
             * more than that cannot block a blocking descriptor. */
            r = write(c->wfd, buf, n < PIPE_BUF ? n : PIPE_BUF);
        }
        if (r > 0)
            return r;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (netio_remaining_ms(deadline) == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

const struct netio_backend netio_plain_backend = {
    .name = "plain",
    .read = plain_read,
    .write = plain_write,
};
