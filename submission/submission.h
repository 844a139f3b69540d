/*
 * submission.h - the mail submission agent (RFC 6409) on 587 (STARTTLS)
 * and 465 (implicit TLS, RFC 8314): state shared by its files.
 *
 * submission is glue like smtpd: the protocol engine is lib/smtp/server,
 * the settings, connection and recipient check lib/smtp/service, the queue
 * file lib/smtp/queue_sink, the SASL mechanisms lib/mail/sasl and the
 * password check the auth service (lib/mail/auth_client). What is its own:
 *   auth.c          the AUTH command (RFC 4954) and when it is allowed
 *   sender_check.c  which sender addresses an authenticated user owns
 *   content.c       the header section: From:/Sender: ownership, missing
 *                   Date:/Message-ID:/From: added
 *   session.c       the engine's callbacks and one connection
 *   main.c          the skeleton and the settings
 */
#ifndef PETREL_SUBMISSION_H
#define PETREL_SUBMISSION_H

#include <stdbool.h>

#include "mail/address.h"
#include "mail/map.h"
#include "smtp/service.h"

/* The header section is held in memory until its end (to check From: and
 * add missing fields before anything of it is stored); a longer one is
 * refused. No mail program writes a megabyte of header. */
#define SUBMISSION_HEADER_MAX (1024u * 1024u)

struct submission_settings {
    struct smtp_service_settings base;
    bool implicit_tls;                /* tls_mode = implicit (465) */
    struct map_list *sender_logins;   /* smtpd_sender_login_maps; NULL: none */
    bool sender_logins_broken;        /* the tables did not open: answer 451 */
    char *myorigin;                   /* qualifies a bare "From: bob" */
};

/* main.c */
void submission_settings_load(struct submission_settings *s, struct config *cfg);

/* One client connection. */
struct submission_session {
    struct submission_settings *settings;
    struct smtp_conn conn;
    strbuf head;          /* content buffered until the end of the header */
    bool head_done;       /* the header section has been written out */
    bool head_failed;     /* refused (r set): drop the rest */
};

/* auth.c: the AUTH verb (on_command) and the EHLO keyword. */
bool submission_auth_command(struct submission_session *ss, struct smtp_session *s,
                             const char *args);
void submission_auth_ehlo(struct submission_session *ss, struct smtp_session *s, strbuf *out);

/* sender_check.c */
enum sender_verdict {
    SENDER_OWNED,
    SENDER_NOT_OWNED,
    SENDER_LOOKUP_ERROR, /* a sender-login table could not be read: 451 */
};
/* Whether login may use the address local@domain: a smtpd_sender_login_maps
 * entry for the address, else for "@domain", decides when there is one (its
 * value lists the logins, separated by commas or spaces); otherwise the
 * default rule: a system user (login without '@') owns login@D for every
 * local domain D (mydestination), a virtual user (login "user@domain") owns
 * exactly that address; an address extension (recipient_delimiter,
 * "bob+lists@") is ignored. Case is ignored. why (may be NULL) gets the
 * table error. */
enum sender_verdict sender_owned(struct submission_settings *s, const char *login,
                                 const char *local, const char *domain, strbuf *why);

/* content.c: the data callbacks' work on the content. */
/* Starts a message (after queue_sink_begin succeeded). */
void submission_content_begin(struct submission_session *ss);
/* Takes content bytes; returns 0, or -1 with r set (sink error, header too
 * long or malformed, From: not owned). */
int submission_content_write(struct submission_session *ss, const struct smtp_envelope *env,
                             const char *login, const char *p, size_t n, struct smtp_reply *r);
/* At the end of the content: flushes a header section that never ended.
 * Returns 0 or -1 with r set. */
int submission_content_end(struct submission_session *ss, const struct smtp_envelope *env,
                           const char *login, struct smtp_reply *r);

/* session.c */
void submission_serve(struct submission_settings *s, int fd);

/* Logs and sets the 553 reply for an address the user does not own. */
void submission_reject_sender(struct submission_session *ss, const char *addr, const char *login,
                              const char *where, struct smtp_reply *r);

#endif
