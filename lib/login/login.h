/*
 * login.h - the login -> mailbox hand-off of the retrieval servers (POP3
 * now, IMAP later), as DESIGN.md splits them like Dovecot:
 *
 *   client --TCP--> login process (mail_owner, chrooted to <queue>/login)
 *                     TLS, pre-auth commands, auth service (token=1)
 *                   --<queue>/login/private/<service>: descriptor + record-->
 *                   mailbox process (root; redeems the token, forks a child
 *                     that becomes the mail owner and serves the session)
 *
 * The login side (login_serve) owns accepting a client's first minutes:
 * implicit TLS or STLS/STARTTLS, the line reader with its limits, the
 * bad-command count, asking auth, and the hand-off. The protocol gives only
 * callbacks (struct login_proto): the greeting and one call per command
 * line. A successful login_authenticate() never answers the client: the
 * mailbox process sends the final "+OK"/"OK" (or "-ERR [IN-USE]"), because
 * only it knows whether the mailbox opens.
 *
 * Hand-off wire (docs/ipc.md "login"): the login process connects to the
 * mailbox service socket, sends the client's descriptor with one byte "L"
 * (fdpass), then one attribute record
 *   protocol=login service=pop3 token=T client=ADDR local_port=N
 *   tls=DESCRIPTION ("" without TLS) pending=BYTES proto_data=BYTES
 * and waits for "protocol=login status=ok". pending is what the client
 * already sent after its login command (pipelining): it is replayed to the
 * mailbox session before anything read from the descriptor, never lost.
 * Without TLS the descriptor is the client's socket itself and the login
 * process is done; with TLS it is one end of a socketpair and the login
 * process relays between the TLS connection and the other end
 * (login_relay.c) until either side ends.
 *
 * The login sockets live in <queue_directory>/login/private/ (auth's second
 * listener and the mailbox services): the login process may be chrooted to
 * <queue_directory>/login, where nothing but those sockets exists. The
 * front notices the chroot itself (the root directory is that directory)
 * and picks the socket paths to match.
 */
#ifndef PETREL_LOGIN_H
#define PETREL_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "mail/auth_client.h"
#include "util/netio.h"
#include "util/strbuf.h"

struct config;

/* The directory under queue_directory that login processes may be
 * chrooted to; it holds only private/ with sockets. */
#define LOGIN_DIR "login"

struct login_settings {
    char *queue_dir;
    const char *service;        /* "pop3": auth service name and socket name */
    SSL_CTX *tls_ctx;           /* smtpd_tls_cert_file/key_file; NULL: no TLS */
    bool implicit_tls;          /* tls_mode = implicit (995, 993) */
    bool plaintext_loopback;    /* login_plaintext_loopback */
    int timeout_ms;             /* login_timeout: each pre-auth read */
    int relay_timeout_ms;       /* idle time of a relayed TLS session */
    size_t max_line;            /* login_max_line */
    int max_bad;                /* login_max_bad_commands */
    /* <queue>/login as seen at init (before any chroot). */
    bool have_login_dir;
    dev_t login_dev;
    ino_t login_ino;
};

/* One client of a login process. */
struct login_conn {
    const struct login_settings *settings;
    const struct login_proto *proto;
    int fd;
    struct netio *io;
    struct tls_conn *tls;
    char client_addr[64];
    char client_log[96];        /* "unknown[192.0.2.1]" */
    int local_port;
    bool loopback;              /* client address is 127.0.0.0/8 or ::1 */
    strbuf tls_desc;            /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
    int bad;                    /* bad commands so far */
    bool handed_off;
    void *state;                /* the protocol's own */
};

enum login_next {
    LOGIN_CONTINUE,
    LOGIN_END,
};

struct login_proto {
    /* Sends the greeting (e.g. "+OK Petrel POP3 ready"). */
    void (*greet)(struct login_conn *c);
    /* One command line (without its line end). */
    enum login_next (*command)(struct login_conn *c, const strbuf *line);
    /* Answers a line over login_max_line (the rest was discarded). */
    void (*too_long)(struct login_conn *c);
    /* Answers the bad command that reached login_max_bad_commands, just
     * before the connection is closed. */
    void (*too_many_bad)(struct login_conn *c);
};

/* Reads the login_* parameters, tls_mode and the TLS context; call in the
 * service's init (before any chroot: certificate files and the login
 * directory are looked at here). service is "pop3" or "imap". */
void login_settings_load(struct login_settings *s, struct config *cfg, const char *service);

/* Serves one client on fd until it logs out, fails, or its session in the
 * mailbox process ends. The caller (the server skeleton) closes fd. */
void login_serve(const struct login_settings *s, const struct login_proto *p, int fd);

/* Writes one reply line (CRLF added) and flushes. Returns 0 or -1. */
int login_reply(struct login_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes raw bytes (for multi-line replies); login_reply flushes them. */
int login_write(struct login_conn *c, const char *s);
/* Reads one line for a multi-step exchange (SASL). Returns netio's status;
 * after anything but NETIO_OK and NETIO_TOO_LONG the session must end. */
enum netio_status login_read_line(struct login_conn *c, strbuf *line);
/* Counts a bad command; true when the limit is reached (the session must
 * end after the protocol's too_many_bad answer, which the front sends). */
bool login_bad_command(struct login_conn *c);
/* Whether plaintext credentials may be used now: under TLS, or from
 * loopback when login_plaintext_loopback is on. */
bool login_plaintext_allowed(const struct login_conn *c);
/* True when STLS/STARTTLS can be offered (a context and no TLS yet). */
bool login_tls_available(const struct login_conn *c);
bool login_tls_active(const struct login_conn *c);
/* Bytes the client sent after the current line (pipelining). */
size_t login_pending(const struct login_conn *c);
/* The handshake after the protocol's "go ahead" reply. Input the client
 * pipelined behind the command is dropped (CVE-2011-0411). Returns 0 or -1
 * (logged; the session must end). */
int login_start_tls(struct login_conn *c);

enum login_auth {
    LOGIN_AUTH_HANDED_OFF, /* the mailbox process answers and serves the session */
    LOGIN_AUTH_FAILED,     /* wrong user or password */
    LOGIN_AUTH_TEMPFAIL,   /* auth or the mailbox service could not answer */
    LOGIN_AUTH_THROTTLED,  /* too many failures from this client */
};

/*
 * Asks auth (with a token), then hands the client off. mech is for the log
 * ("USER", "PLAIN"); proto_data travels to the mailbox process unchanged
 * (IMAP: the command tag). On LOGIN_AUTH_HANDED_OFF the call returns only
 * after the session ended (TLS relay) or at once (plain socket); the
 * protocol must then return LOGIN_END without writing anything. Other
 * results: the protocol answers (-ERR [AUTH] ...).
 */
enum login_auth login_authenticate(struct login_conn *c, const char *mech, const char *user,
                                   const char *password, size_t password_len,
                                   const char *proto_data);

/* After an abnormal end (a line past the discard limit, too many bad
 * commands): half-closes fd and reads what the client still sends, for at
 * most timeout_ms, so that the kernel does not answer its unread bytes
 * with a reset that would destroy our last reply in transit. */
void login_drain(int fd, int timeout_ms);

/* ---- the mailbox process's side ---- */

struct login_handoff {
    int client_fd;          /* the client (or the relay's socketpair end) */
    strbuf client_addr;
    strbuf tls;             /* "" without TLS */
    strbuf pending;         /* replayed before reading client_fd */
    strbuf proto_data;
    long long local_port;
    struct auth_result auth; /* after the token was redeemed */
    void *backend_ctx;      /* internal: see login_handoff_netio */
};

/*
 * On a connection accepted by the mailbox service: receives the descriptor
 * and the record, answers status=ok, and redeems the token with auth
 * (service must match). Returns 0 with h filled (h->auth.status AUTH_OK),
 * 1 when the token was refused (h->client_fd valid: tell the client), or -1
 * when nothing usable arrived (err says why; no client to answer).
 */
int login_handoff_receive(int sock, const char *queue_dir, const char *service,
                          struct login_handoff *h, strbuf *err);
/* A netio on h->client_fd that first returns h->pending. Free it before
 * login_handoff_free. */
struct netio *login_handoff_netio(struct login_handoff *h);
void login_handoff_free(struct login_handoff *h);

/* ---- internal, between the login files ---- */

/* Where the login sockets are from here: "" inside the chroot (the root
 * directory is <queue>/login), "<queue>/login" otherwise (replaces out). */
void login_socket_base(const struct login_settings *s, strbuf *out);

/* Relays between a TLS client and the socketpair end `inner` until one
 * side ends (login_relay.c). */
void login_relay(struct login_conn *c, int inner);
/* Connects to the hand-off socket of the service, passes `fd` and the
 * record; returns 0 or -1 with err (login_handoff.c). */
int login_handoff_send(struct login_conn *c, int fd, const char *token,
                       const strbuf *pending, const char *proto_data, strbuf *err);

#endif
