/*
 * trigger.c - one-byte, non-blocking wake-ups over UNIX sockets; see trigger.h.
 */
#include "mail/trigger.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int trigger_send(const char *queue_dir, const char *endpoint, char what)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", queue_dir, endpoint);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
        send(fd, &what, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
        rc = 0;
    int saved = errno;
    if (rc < 0)
        log_debug("trigger %s: %s", sun.sun_path, strerror(saved));
    close(fd);
    errno = saved;
    return rc;
}
