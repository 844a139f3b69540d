/*
 * tls.h - TLS for Petrel's servers and SMTP client: the one wrapper around
 * OpenSSL 3 (Postfix keeps its OpenSSL code in src/tls/ the same way).
 *
 * Three parts:
 *  - contexts (tls_ctx.c, tls_files.c, tls_config.c): an SSL_CTX for a
 *    server (certificate chain and key from PEM files, TLS 1.2 minimum by
 *    default, OpenSSL's cipher defaults unless overridden, session cache and
 *    tickets for resumption, renegotiation off) or for a client (trust
 *    store, same protocol floor), built from petrel.conf or from explicit
 *    settings; tls_check_files() for `petrel check`;
 *  - connections (tls_io.c): the handshake on a netio's descriptors, then a
 *    netio backend that carries the line layer over TLS. Plaintext the
 *    netio had buffered before the switch is dropped (CVE-2011-0411);
 *  - descriptions for logs and Received: ("TLSv1.3 TLS_AES_256_GCM_SHA384").
 *
 * The descriptors are never put into non-blocking mode (netio's rule): the
 * TLS layer reads and writes through its own OpenSSL BIO that uses
 * MSG_DONTWAIT on sockets (poll-then-read on other descriptors) and waits
 * with netio_wait_fd() within the caller's deadlines.
 *
 * Errors are appended to a caller's strbuf as one English line without a
 * trailing newline, e.g. "key file /etc/petrel/key.pem does not match the
 * certificate in /etc/petrel/cert.pem".
 */
#ifndef PETREL_TLS_H
#define PETREL_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "util/netio.h"
#include "util/strbuf.h"

struct config;

/* ---- protocol versions ---- */

/*
 * Parses a protocol specification as Postfix's smtpd_tls_protocols accepts
 * it: either bounds (">=TLSv1.2", "<=TLSv1.2", both separated by a space or
 * comma) or an exclusion list ("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"), or a
 * plain list of versions ("TLSv1.2 TLSv1.3"). Names: SSLv2, SSLv3 (only
 * valid as exclusions), TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, any case. An
 * empty spec means the default, ">=TLSv1.2". Sets *min_r and *max_r to
 * OpenSSL version constants (TLS1_2_VERSION...; 0 for "no upper bound").
 * Returns 0, or -1 with an error such as "unknown TLS protocol 'TLSv1.4'".
 */
int tls_parse_protocols(const char *spec, int *min_r, int *max_r, strbuf *err);

/* ---- contexts ---- */

/* What a server context is built from. NULL or "" strings mean the default. */
struct tls_server_settings {
    const char *cert_file;    /* PEM: the certificate, then its chain (required) */
    const char *key_file;     /* PEM private key, unencrypted (required) */
    const char *protocols;    /* tls_parse_protocols syntax; default ">=TLSv1.2" */
    const char *cipherlist;   /* OpenSSL cipher string for TLS <= 1.2 */
    const char *ciphersuites; /* OpenSSL TLS 1.3 cipher suites */
    int session_timeout;      /* seconds a session may be resumed; 0: no resumption */
};

/*
 * Builds a server context: loads and checks the certificate chain and key
 * (the same checks as tls_check_files), sets the protocol range and cipher
 * overrides, enables the server-side session cache and session tickets
 * (RFC 5077 / TLS 1.3 tickets) for session_timeout seconds, disables
 * renegotiation and never prompts for a pass phrase (encrypted keys are
 * refused). Cheap enough to call again at every reload.
 * Returns the context, or NULL with a line in err.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_server_settings *s, strbuf *err);

/* What a client context is built from. NULL or "" strings mean the default. */
struct tls_client_settings {
    const char *protocols;    /* default ">=TLSv1.2" */
    const char *cipherlist;
    const char *ciphersuites;
    const char *ca_file;      /* PEM trust anchors; NULL: the system's store */
    const char *ca_path;      /* hashed directory of trust anchors; NULL: system */
};

/* Builds a client context (trust store loaded; verification itself is per
 * connection, see tls_client_start). Returns it, or NULL with a line in err. */
SSL_CTX *tls_client_ctx_new(const struct tls_client_settings *s, strbuf *err);

/*
 * Rebuilds a server context for a reload (SIGHUP): on success the old
 * context is released (connections still using it keep it alive: SSL_CTX is
 * reference counted) and *ctxp is the new one; on failure *ctxp is left as
 * it was, so a broken certificate file does not stop a running server.
 * Returns 0 or -1 with a line in err.
 */
int tls_server_ctx_reload(SSL_CTX **ctxp, const struct tls_server_settings *s, strbuf *err);

/* Releases a context and NULLs *ctxp; NULL-safe. */
void tls_ctx_free(SSL_CTX **ctxp);

/*
 * From petrel.conf: the server settings (smtpd_tls_cert_file,
 * smtpd_tls_key_file, smtpd_tls_protocols, smtpd_tls_cipherlist,
 * smtpd_tls_ciphersuites, smtpd_tls_session_cache_timeout) and the context.
 * Returns 1 with *ctx_r set, 0 when TLS is not configured (both files empty;
 * *ctx_r NULL), or -1 with a line in err (one file set without the other, a
 * bad value, files that do not load).
 */
int tls_server_ctx_from_config(struct config *cfg, SSL_CTX **ctx_r, strbuf *err);

/* The client context from smtp_tls_protocols, smtp_tls_CAfile,
 * smtp_tls_CApath, smtp_tls_cipherlist, smtp_tls_ciphersuites. Returns the
 * context or NULL with a line in err. */
SSL_CTX *tls_client_ctx_from_config(struct config *cfg, strbuf *err);

/*
 * Checks a certificate chain file and a key file the way a server would load
 * them, for `petrel check`: each file exists, is a regular readable file,
 * holds a PEM certificate (resp. an unencrypted private key), the key
 * belongs to the certificate, and the certificate has not expired (or is
 * not yet valid). Appends one line ending in '\n' per problem, e.g.
 *   "certificate file /x.pem: cannot open: No such file or directory"
 *   "key file /k.pem does not match the certificate in /x.pem"
 *   "certificate file /x.pem: certificate expired on Jan  1 00:00:00 2001 GMT"
 * Returns the number of problems (0: usable). The checks run with the
 * caller's privileges: a daemon reads the files as its own user.
 */
int tls_check_files(const char *cert_file, const char *key_file, strbuf *err);

/* ---- connections ---- */

/* Client policy (smtp_tls_security_level, as in Postfix). */
enum tls_level {
    TLS_LEVEL_NONE,    /* no TLS (the caller never starts it) */
    TLS_LEVEL_MAY,     /* opportunistic: encrypt, accept any certificate */
    TLS_LEVEL_ENCRYPT, /* mandatory encryption, any certificate */
    TLS_LEVEL_VERIFY,  /* mandatory, certificate chain and name verified */
};

/* "none", "may", "encrypt", "verify" (any case). Returns 0 or -1. */
int tls_parse_level(const char *s, enum tls_level *level_r);
const char *tls_level_str(enum tls_level level);

/* One TLS connection over a netio: the SSL object and the backend state. */
struct tls_conn;

/*
 * Server side of a handshake (after "220 Ready to start TLS", or at once
 * for implicit TLS) on the netio's descriptors, within timeout_ms for the
 * whole handshake. On success the netio's backend is switched to TLS:
 * plaintext it still held is dropped (tls_conn_dropped() says how much).
 * Returns the connection, or NULL with a line in err (peer closed, timeout,
 * not TLS at all, no shared protocol or cipher...); the netio is then
 * unchanged and the session should end. io's output must be flushed.
 */
struct tls_conn *tls_server_start(struct netio *io, SSL_CTX *ctx, int timeout_ms, strbuf *err);

struct tls_client_opts {
    enum tls_level level;
    /* The name to send as SNI and to verify (a host name, or an IPv4/IPv6
     * address, which is verified against IP SANs and never sent as SNI).
     * NULL: no SNI and, at TLS_LEVEL_VERIFY, a refusal. */
    const char *peername;
    /* A session to resume (from tls_conn_get_session); may be NULL. */
    SSL_SESSION *session;
};

/*
 * Client side of a handshake. At TLS_LEVEL_VERIFY the chain must verify
 * against the context's trust store and match peername (SSL_set1_host /
 * IP SAN), or the handshake fails with "certificate verification failed:
 * <reason>". At MAY and ENCRYPT any certificate is accepted and the
 * verification result is only recorded (tls_conn_verified). Returns the
 * connection or NULL with a line in err, as tls_server_start.
 */
struct tls_conn *tls_client_start(struct netio *io, SSL_CTX *ctx, const struct tls_client_opts *o,
                                  int timeout_ms, strbuf *err);

/* Bytes of plaintext the netio held when the backend was switched. */
size_t tls_conn_dropped(const struct tls_conn *c);
/* Appends "TLSv1.3 TLS_AES_256_GCM_SHA384" (protocol and cipher). */
void tls_describe(const struct tls_conn *c, strbuf *out);
/* Appends the peer certificate as "subject=CN=mx.example.org,O=Example,
 * issuer=CN=Example CA" (control and non-ASCII bytes escaped as \xHH), or
 * "no peer certificate". */
void tls_describe_peer(const struct tls_conn *c, strbuf *out);
/* True when the peer's certificate chain verified and matched peername. */
bool tls_conn_verified(const struct tls_conn *c);
/* The verification result in English ("ok", "certificate has expired"). */
const char *tls_conn_verify_result(const struct tls_conn *c);
/* True when the handshake resumed an earlier session. */
bool tls_conn_resumed(const struct tls_conn *c);
/* A reference to the session for a later resumption (SSL_SESSION_free it);
 * NULL when there is none. */
SSL_SESSION *tls_conn_get_session(const struct tls_conn *c);
/* The SSL object, for what this API does not cover (the caller must not
 * change its BIOs). */
SSL *tls_conn_ssl(const struct tls_conn *c);
/* The last error the backend met (a TLS alert, "connection reset"); "" when
 * none. Read errors reach the netio as NETIO_ERROR with errno EPROTO. */
const char *tls_conn_error(const struct tls_conn *c);

/* Sends close_notify (waits at most timeout_ms for the socket, never for the
 * peer's answer). Call after the last flush, before freeing. Returns 0 or -1. */
int tls_conn_shutdown(struct tls_conn *c, int timeout_ms);
/* Releases the connection and NULLs *cp. The netio must not be used for I/O
 * afterwards (free it first or together). NULL-safe. */
void tls_conn_free(struct tls_conn **cp);

#endif
