/*
 * netio.h - line-oriented network I/O with a timeout and a size limit on
 * every read.
 *
 * Every protocol engine of Petrel (smtpd, submission, the SMTP client, pop3d,
 * imapd) reads its peer through a `struct netio`: an input buffer filled in
 * large chunks, an output buffer flushed with a write timeout, and a line
 * reader that says exactly how each line ended (CRLF, bare LF, bare CR inside,
 * NUL bytes) so that callers can defend against SMTP smuggling and framing
 * tricks. Over-long lines are cut at the limit and the rest of the line is
 * discarded, so the caller can answer "500 5.5.2 line too long" and stay in
 * step with the client. Message content, where no byte may be lost, is read
 * with netio_read_line_part() instead: pieces of a bounded size, never a
 * discard.
 *
 * The bytes travel through a pluggable backend (struct netio_backend). The
 * plain backend talks to file descriptors with poll(); the TLS layer adds a
 * second backend later and switches to it after STARTTLS with
 * netio_set_backend(), keeping the same line layer above.
 *
 * Timeouts are deadlines for a whole call: netio_read_line() must receive the
 * complete line (and the discarded rest of an over-long line) within the read
 * timeout; netio_flush() must hand all buffered output to the kernel within
 * the write timeout. A peer trickling one byte at a time cannot stretch a call.
 *
 * The descriptors are never switched to non-blocking mode (they may be shared,
 * e.g. stdin/stdout of `sendmail -bs`): the plain backend waits with poll() and
 * then uses MSG_DONTWAIT on sockets, or at most PIPE_BUF bytes on other
 * descriptors, so no call blocks past its deadline.
 */
#ifndef PETREL_NETIO_H
#define PETREL_NETIO_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/strbuf.h"

/* Defaults for a new netio; change them with the setters below. */
#define NETIO_DEFAULT_TIMEOUT_MS (300 * 1000) /* RFC 5321 4.5.3.2: minutes */
#define NETIO_DEFAULT_MAX_LINE 4096           /* bytes, terminator excluded */
#define NETIO_DEFAULT_DISCARD_LIMIT (64u * 1024 * 1024)
/* Size of one read from the backend, and the output size that triggers an
 * automatic flush. */
#define NETIO_CHUNK (16 * 1024)

/* Outcome of a read. */
enum netio_status {
    NETIO_OK,          /* a complete line (or all n bytes for read_exact) */
    NETIO_EOF,         /* the peer closed the connection before any byte */
    NETIO_EOF_PARTIAL, /* the peer closed in the middle; partial data returned */
    NETIO_TIMEOUT,     /* the read timeout expired (errno ETIMEDOUT) */
    NETIO_TOO_LONG,    /* the line exceeded the maximum; first max bytes returned */
    NETIO_ERROR,       /* a read error; errno says which */
};

/* Flags returned by netio_read_line() describing the line just read. */
#define NETIO_LINE_CRLF 0x01   /* ended by CR LF */
#define NETIO_LINE_LF 0x02     /* ended by a bare LF (no CR before it) */
#define NETIO_LINE_BARE_CR 0x04 /* held a CR not followed by LF somewhere */
#define NETIO_LINE_NUL 0x08    /* held at least one NUL byte */
/* With NETIO_TOO_LONG only: the discard limit was reached before the end of
 * the over-long line, so the stream is no longer at a line boundary. The
 * caller must reply with an error and close the connection. */
#define NETIO_LINE_DESYNC 0x10
/* From netio_read_line_part() only: the piece returned is not the end of its
 * line; the next call continues the same line. */
#define NETIO_LINE_PARTIAL 0x20

/*
 * How the line layer moves bytes. Both functions wait at most timeout_ms
 * (>= 0; 0 means "only if ready now") for the descriptor to become ready.
 *   read:  reads up to n bytes into buf; returns the count (> 0), 0 at end
 *          of file, or -1 with errno set (ETIMEDOUT when the time ran out).
 *   write: writes up to n (> 0) bytes; returns the count (> 0) or -1 with
 *          errno set (ETIMEDOUT when the time ran out).
 * Short reads and writes are fine; the line layer loops. EINTR and EAGAIN
 * are the backend's business, never returned.
 */
struct netio_backend {
    const char *name; /* for log messages: "plain", "tls" */
    ssize_t (*read)(void *ctx, void *buf, size_t n, int timeout_ms);
    ssize_t (*write)(void *ctx, const void *buf, size_t n, int timeout_ms);
};

struct netio;

/* Creates a netio on one bidirectional descriptor (a socket), using the
 * plain backend. The netio does not own the descriptor: netio_free() leaves
 * it open. */
struct netio *netio_new(int fd);
/* Same with separate descriptors for reading and writing (stdin/stdout). */
struct netio *netio_new_fds(int rfd, int wfd);
/* Releases the netio and NULLs *iop; unsent output is dropped (flush first).
 * The descriptors stay open. */
void netio_free(struct netio **iop);

/* The descriptor reads come from (for a TLS backend that needs it). */
int netio_rfd(const struct netio *io);
int netio_wfd(const struct netio *io);

/* Settings. Timeouts are in milliseconds and must be > 0; max_line must be
 * > 0; the discard limit bounds how many bytes of one over-long line are
 * thrown away before giving up with NETIO_LINE_DESYNC. Bad values are a
 * programming error (log_panic). */
void netio_set_read_timeout(struct netio *io, int timeout_ms);
void netio_set_write_timeout(struct netio *io, int timeout_ms);
void netio_set_max_line(struct netio *io, size_t max_line);
void netio_set_discard_limit(struct netio *io, size_t limit);

/*
 * Replaces the backend (after a STARTTLS handshake). Output must have been
 * flushed (log_panic otherwise). Input already buffered arrived before the
 * switch and must never be taken as if it came through the new layer, so it
 * is thrown away; the count is returned for the caller to log. Callers check
 * netio_pending() before the handshake and refuse pipelined STARTTLS.
 */
size_t netio_set_backend(struct netio *io, const struct netio_backend *be, void *ctx);

/* Bytes received but not yet returned to the caller. Non-zero right after
 * reading a STARTTLS command means the client pipelined data behind it. */
size_t netio_pending(const struct netio *io);
/* Throws away buffered input; returns how many bytes were dropped. */
size_t netio_discard_input(struct netio *io);

/*
 * Reads one line into `line` (replacing its contents), without its
 * terminator. Only CR LF and a bare LF end a line; a CR followed by anything
 * else is part of the line and flagged NETIO_LINE_BARE_CR. *flags_r receives
 * NETIO_LINE_* flags (may be NULL).
 * Returns:
 *   NETIO_OK           the line; flags has exactly one of CRLF or LF.
 *   NETIO_TOO_LONG     the line had more than max_line bytes: `line` holds the
 *                      first max_line bytes and the rest was read and thrown
 *                      away up to and including its terminator, so the next
 *                      call returns the next line. Flags describe the whole
 *                      line (terminator, bare CR and NUL anywhere in it), or
 *                      include NETIO_LINE_DESYNC (see above).
 *   NETIO_EOF          the peer closed at a line boundary; `line` is empty.
 *   NETIO_EOF_PARTIAL  the peer closed mid-line; `line` holds what came (at
 *                      most max_line bytes), flags have neither CRLF nor LF.
 *   NETIO_TIMEOUT      the whole line did not arrive within the read timeout.
 *   NETIO_ERROR        a read error (errno).
 * After TIMEOUT or ERROR the stream position is unknown: close the session.
 */
enum netio_status netio_read_line(struct netio *io, strbuf *line, unsigned *flags_r);

/*
 * Reads the next piece of the current line, never throwing input away: for
 * message content, where an over-long line must be kept whole (DATA), unlike
 * commands. `part` receives at most max (> 0) content bytes, replacing its
 * contents. If the line ends within them, flags has NETIO_LINE_CRLF or
 * NETIO_LINE_LF as with netio_read_line (terminator not included); otherwise
 * `part` holds exactly max bytes, flags has NETIO_LINE_PARTIAL and the next
 * call goes on with the same line. A CR is never split from its LF: a piece
 * ends in CR only when the byte after it was seen not to be LF, and that CR
 * is then flagged NETIO_LINE_BARE_CR. BARE_CR and NUL describe this piece
 * only. The read timeout bounds each call (one piece), not the whole line.
 * The maximum line length and the discard limit do not apply.
 * Returns NETIO_OK, NETIO_EOF (closed at a line boundary, `part` empty),
 * NETIO_EOF_PARTIAL (closed mid-line: `part` holds the rest, flags have
 * neither CRLF nor LF; a trailing CR is bare), NETIO_TIMEOUT or NETIO_ERROR.
 */
enum netio_status netio_read_line_part(struct netio *io, strbuf *part, size_t max,
                                       unsigned *flags_r);

/*
 * Reads exactly n bytes into `out` (replacing its contents), for BDAT
 * chunks. Memory grows only as bytes arrive, so a hostile n costs nothing by
 * itself; callers still read large chunks in pieces (e.g. 64 KiB) because the
 * read timeout bounds the whole call. Returns NETIO_OK, NETIO_EOF (closed
 * before any byte; n == 0 always gives OK), NETIO_EOF_PARTIAL (out holds what
 * came), NETIO_TIMEOUT (out holds what came) or NETIO_ERROR.
 */
enum netio_status netio_read_exact(struct netio *io, strbuf *out, size_t n);

/*
 * Output. Bytes are buffered and written out automatically when NETIO_CHUNK
 * bytes are waiting, and by netio_flush(). A write error or timeout is
 * sticky: the unsent output is dropped, every later write and flush fails at
 * once with the same errno, and netio_write_error() reports it.
 * Each returns 0, or -1 with errno set (ETIMEDOUT after a write timeout).
 */
int netio_write(struct netio *io, const void *p, size_t n);
int netio_puts(struct netio *io, const char *s);
int netio_printf(struct netio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int netio_vprintf(struct netio *io, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Writes all buffered output within the write timeout. */
int netio_flush(struct netio *io);
/* The sticky write errno, or 0 when no write has failed. */
int netio_write_error(const struct netio *io);

/* A short English name for a status, for log messages ("timeout"). */
const char *netio_status_str(enum netio_status st);

/*
 * The plain backend's primitives, for other backends that sit on a
 * descriptor (TLS waits for readability or writability the same way).
 * netio_wait_fd: polls fd for `events` (POLLIN/POLLOUT) up to timeout_ms,
 * retrying on EINTR; returns 0 when ready, -1 with errno (ETIMEDOUT).
 */
int netio_wait_fd(int fd, short events, int timeout_ms);

/* Monotonic clock in milliseconds, and the time left until a deadline
 * (never below 0), shared by the I/O modules for their deadlines. */
long long netio_now_ms(void);
int netio_remaining_ms(long long deadline_ms);

#endif
