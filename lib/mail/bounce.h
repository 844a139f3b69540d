/*
 * bounce.h - builds delivery status notifications (RFC 3464): the message
 * qmgr sends from the null sender when mail fails (a bounce), is delayed (a
 * delay warning) or was delivered to a recipient who asked for NOTIFY=SUCCESS.
 *
 * The result is a complete message (header and body, CRLF line ends) of type
 * multipart/report; report-type=delivery-status with three parts:
 *   1. text/plain: bounce_notice_text, what happened, one line per recipient;
 *   2. message/delivery-status: Reporting-MTA, Arrival-Date, and per
 *      recipient Original-Recipient, Final-Recipient, Action, Status,
 *      Remote-MTA, Diagnostic-Code (RFC 3464 section 2.3). For a remote
 *      server's reply that is "Remote-MTA: dns; mx.b.org" and
 *      "Diagnostic-Code: smtp; 550 5.1.1 no such user" (the raw reply) while
 *      the human part keeps the explanation ("host mx.b.org[10.0.0.2] said:
 *      ... (in reply to RCPT TO command)"); local failures have no
 *      Remote-MTA and an "x-petrel;" diagnostic. A long Diagnostic-Code is
 *      folded at spaces (RFC 5322 2.2.3) to lines of about 78 bytes;
 *   3. the original: message/rfc822 when it is returned in full (failures
 *      with RET other than HDRS, no larger than the size limit), otherwise
 *      text/rfc822-headers with its header section (cut at a line end to fit
 *      the limit). Omitted when the size limit is 0.
 * Internationalised mail (RFC 6533): a non-ASCII address makes part 2
 * message/global-delivery-status with utf-8 address types; 8-bit bytes in the
 * original's header section make part 3 message/global (or
 * message/global-headers); 8-bit content is labelled 8bit.
 *
 * The builder is a pure function on memory; qmgr decides who gets a notice
 * and writes it into the queue (see docs/qmgr.md).
 */
#ifndef PETREL_BOUNCE_H
#define PETREL_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/strbuf.h"

enum bounce_kind {
    BOUNCE_FAILED,    /* Action: failed */
    BOUNCE_DELAYED,   /* Action: delayed */
    BOUNCE_DELIVERED, /* Action: delivered */
};

/* Most bytes of one Diagnostic-Code text; longer texts are cut. */
#define BOUNCE_MAX_DIAGNOSTIC 900

struct bounce_rcpt {
    const char *address;    /* the final recipient, not empty */
    const char *orcpt;      /* ORCPT as stored ("rfc822;bob@b.org"), or NULL */
    const char *status;     /* enhanced status code "X.Y.Z" */
    const char *diag_type;  /* "smtp" (a peer's raw reply) or "x-petrel"; NULL = "x-petrel" */
    const char *diagnostic; /* the reason, or NULL/empty: no Diagnostic-Code */
    const char *remote_mta; /* host name of the server whose reply decided it, or
                             * NULL/empty: no Remote-MTA */
    const char *text;       /* the human part's line, or NULL/empty: diagnostic */
};

struct bounce_request {
    enum bounce_kind kind;     /* the same Action for every recipient */
    bool to_postmaster;        /* a notice about mail from the null sender */
    const char *queue_id;      /* the original message's id */
    const char *new_id;        /* the notice's own queue id (for Message-ID) */
    const char *hostname;      /* Reporting-MTA and MAILER-DAEMON@hostname */
    const char *notice_text;   /* first paragraph of the human part (may be NULL) */
    const char *to;            /* who receives the notice */
    const char *sender;        /* the original envelope sender ("" = <>) */
    const char *envid;         /* DSN ENVID, or NULL */
    time_t arrival;            /* when the original arrived */
    time_t now;                /* Date: of the notice */
    time_t retry_until;        /* delayed notices: when the queue gives up (0 = omit) */
    bool ret_hdrs;             /* RET=HDRS: never return the body */
    const struct bounce_rcpt *rcpts;
    size_t nrcpt;              /* >= 1 */
    const char *content;       /* the first content_len bytes of the original */
    size_t content_len;
    uint64_t content_total;    /* the original's full size (>= content_len) */
    size_t size_limit;         /* bounce_size_limit */
};

/* bounce_build: appends the notice to out. Returns 0, or -1 with err set when
 * the request is unusable (no recipient, an empty address, a status that is
 * not X.Y.Z, a missing host name or queue id). Text taken from the request
 * (diagnostics, addresses) is made safe for a header line: control bytes
 * become spaces, invalid UTF-8 becomes '?', diagnostics are cut to
 * BOUNCE_MAX_DIAGNOSTIC bytes, a Remote-MTA name to 255. */
int bounce_build(const struct bounce_request *req, strbuf *out, strbuf *err);

/* bounce_format_date: an RFC 5322 date ("Sun, 29 Nov 2026 05:22:32 +0000")
 * of t in local time, appended to out. */
void bounce_format_date(time_t t, strbuf *out);

#endif
