/*
 * received.h - the trace header an MTA prepends to every message it accepts
 * (RFC 5321 §4.4, RFC 5322 §3.6.7), and RFC 5322 dates.
 *
 *   Received: from mx.example.org (mail.example.org [192.0.2.1])
 *           by mx.petrel.test (Petrel) with ESMTPS id 0123456789ABCDEFGHIJKL
 *           (TLSv1.3 TLS_AES_256_GCM_SHA384)
 *           for <bob@petrel.test>; Sun, 29 Nov 2026 05:11:45 +0000
 *
 * `with` follows RFC 3848: SMTP, ESMTP, ESMTPA (authenticated), ESMTPS
 * (TLS), ESMTPSA, and UTF8SMTP/UTF8SMTPS/UTF8SMTPA/UTF8SMTPSA (RFC 6531)
 * when the client used SMTPUTF8; LMTP and "local" for other sources.
 */
#ifndef PETREL_RECEIVED_H
#define PETREL_RECEIVED_H

#include <stdbool.h>
#include <time.h>

struct strbuf;

struct received_info {
    const char *helo;        /* what the client said in HELO/EHLO; NULL if nothing */
    const char *client_name; /* reverse DNS name, or "unknown"; NULL for local mail */
    const char *client_addr; /* "192.0.2.1" or "2001:db8::1" */
    const char *by;          /* myhostname */
    const char *mail_name;   /* "Petrel" */
    const char *protocol;    /* "ESMTP", "SMTP", "local", ... without S/A suffixes */
    bool tls, auth, smtputf8;
    const char *tls_details; /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or NULL */
    const char *queue_id;
    const char *for_rcpt;    /* the single recipient, or NULL when there are several */
    time_t when;
};

/* received_header: appends the header, folded, ending in CRLF. Text from the
 * client (HELO) is made safe for a header: control characters and anything
 * that would unbalance the comment parentheses are replaced. */
void received_header(struct strbuf *out, const struct received_info *ri);

/* received_protocol: the RFC 3848 `with` keyword for these flags. Returns a
 * static string. */
const char *received_protocol(const char *base, bool smtputf8, bool tls, bool auth);

/* rfc5322_date: appends "Sun, 29 Nov 2026 05:11:45 +0000" for t in local time. */
void rfc5322_date(struct strbuf *out, time_t t);

#endif
