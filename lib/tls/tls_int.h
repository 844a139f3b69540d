/*
 * tls_int.h - what the files of lib/tls/ share; not for use outside them.
 */
#ifndef PETREL_TLS_INT_H
#define PETREL_TLS_INT_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "util/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

/* One TLS connection (tls_io.c creates it; tls_conn_info.c reads it). */
struct tls_conn {
    SSL *ssl;
    int rfd, wfd;
    bool r_notsock, w_notsock; /* the descriptor turned out not to be a socket */
    int sys_errno;             /* errno of the last failed read/write in the BIO */
    bool fatal;                /* a fatal TLS error: no close_notify may follow */
    size_t dropped;
    bool verified;
    long verify_result;
    strbuf error;
};

/* Largest certificate or key file read (a chain of a few certificates is a
 * few kilobytes; this only stops a misconfigured path to something huge). */
#define TLS_MAX_PEM_FILE (1024 * 1024)

/* A certificate, its chain and its key, as read from PEM files. */
struct tls_keypair {
    X509 *cert;
    STACK_OF(X509) *chain; /* certificates after the first; may be empty */
    EVP_PKEY *key;
};

/* Reads and checks both files (existence, PEM content, key matches
 * certificate; validity dates are not checked). Returns the number of
 * problems appended to err (lines ending in '\n'); on 0 kp holds everything. */
int tls_keypair_load(const char *cert_file, const char *key_file, struct tls_keypair *kp,
                     strbuf *err);
void tls_keypair_free(struct tls_keypair *kp);

/* Appends OpenSSL's queued errors as "; "-separated reason strings (or
 * `fallback` when the queue is empty) and clears the queue. */
void tls_append_ssl_errors(strbuf *err, const char *fallback);

/* Applies a protocols spec and cipher overrides to ctx. Returns 0 or -1
 * with a line in err. */
int tls_ctx_apply_common(SSL_CTX *ctx, const char *protocols, const char *cipherlist,
                         const char *ciphersuites, strbuf *err);

/* OpenSSL's pass phrase callback that never asks (no prompt on a tty). */
int tls_no_passphrase(char *buf, int size, int rwflag, void *u);

/* Removes a trailing newline from err (the API's error lines have none). */
void tls_chomp(strbuf *err);

#endif
