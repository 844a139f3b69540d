/*
 * smtpd.h - the inbound SMTP server (port 25): state shared by its files.
 *
 * smtpd is glue: the protocol engine is lib/smtp/server (shared with
 * submission), the settings, the connection and the recipient check
 * lib/smtp/service, the queue file writer lib/smtp/queue_sink, the
 * destination and recipient lookups lib/mail/resolve. What is smtpd's own is
 * the policy of an MTA facing the Internet: relay only for clients in
 * mynetworks, STARTTLS offered when a certificate is configured.
 */
#ifndef PETREL_SMTPD_H
#define PETREL_SMTPD_H

#include <stdbool.h>

#include "smtp/service.h"

/* One client connection. */
struct smtpd_session {
    struct smtp_conn conn;
    bool trusted;             /* client in mynetworks (or a UNIX socket) */
};

/* session.c: serves one accepted connection. */
void smtpd_serve(struct smtp_service_settings *s, int fd);

#endif
