/*
 * fdpass.h - passing an open descriptor between processes over a UNIX
 * socket (SCM_RIGHTS).
 *
 * Used where one process hands a client to another: the POP3/IMAP login
 * process gives the client connection to the mailbox process, master gives
 * listeners to services. The descriptor travels with a few bytes of data
 * (a stream socket cannot carry ancillary data alone); a typical exchange is
 * fdpass_send() with a fixed tag, then the request as an attribute record
 * (attr_write). The receiver never keeps a descriptor it did not expect: extra
 * or truncated descriptor data is closed and reported as an error. Received
 * descriptors are close-on-exec, so they cannot leak into child programs.
 */
#ifndef PETREL_FDPASS_H
#define PETREL_FDPASS_H

#include <stddef.h>

#include "util/strbuf.h"

/*
 * Sends descriptor fd together with data[0..n) (n >= 1) on the stream socket
 * sock, within timeout_ms (> 0). The descriptor rides with the first bytes.
 * Returns 0, or -1 with errno (ETIMEDOUT, EPIPE, EINVAL when n == 0).
 * The caller still owns fd and usually closes it afterwards.
 */
int fdpass_send(int sock, int fd, const void *data, size_t n, int timeout_ms);

/*
 * Receives exactly n (>= 1) bytes into buf and the one descriptor that must
 * come with the first of them, within timeout_ms (> 0). On success returns 0
 * and *fd_r is the new descriptor (close-on-exec). On failure returns -1,
 * *fd_r is -1, every descriptor that arrived has been closed, errno is set
 * (ETIMEDOUT, EPROTO for protocol trouble: no descriptor, more than one,
 * truncated control data, peer closed early) and *err explains.
 */
int fdpass_recv(int sock, int *fd_r, void *buf, size_t n, int timeout_ms, strbuf *err);

#endif
