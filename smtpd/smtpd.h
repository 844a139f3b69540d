/*
 * smtpd.h - the inbound SMTP server (port 25): state shared by its files.
 *
 * smtpd is glue: the protocol engine is lib/smtp/server (shared with
 * submission), the queue file writer lib/smtp/queue_sink, the destination
 * and recipient lookups lib/mail/resolve. What is smtpd's own is the policy
 * of an MTA facing the Internet: relay control by client network, recipient
 * validation at RCPT time, and its log lines.
 */
#ifndef PETREL_SMTPD_H
#define PETREL_SMTPD_H

#include <stdbool.h>

#include "mail/cidr.h"
#include "mail/resolve.h"
#include "smtp/queue_sink.h"
#include "smtp/server.h"
#include "tls/tls.h"

struct config;

struct smtpd_settings {
    char *queue_dir;
    char *myhostname;
    char *mail_name;
    char *banner;             /* smtpd_banner, after the hostname */
    struct cidr_list mynetworks;
    struct resolver *resolver;
    struct smtp_server_config engine;
    /* STARTTLS: a server context when smtpd_tls_cert_file and
     * smtpd_tls_key_file are set and load (read in init, as mail_owner:
     * the files must be readable by that user); NULL: no STARTTLS. */
    SSL_CTX *tls_ctx;
    int starttls_timeout_ms;
};

/* settings.c: reads petrel.conf into s; configuration errors are fatal
 * (master validated the file, so this only happens on real breakage),
 * except TLS files that do not load: then STARTTLS is not offered and the
 * reason is logged, so that mail keeps flowing (petrel check reports it). */
void smtpd_settings_load(struct smtpd_settings *s, struct config *cfg);

/* One client connection. */
struct smtpd_session {
    struct smtpd_settings *settings;
    char client_addr[64];
    char client_log[96];      /* "unknown[192.0.2.1]" */
    bool trusted;             /* client in mynetworks */
    struct queue_sink sink;
    struct queue_sink_client client;
    struct tls_conn *tls;     /* after STARTTLS */
    strbuf tls_details;       /* "TLSv1.3 TLS_AES_256_GCM_SHA384" for Received: */
};

/* policy.c: the RCPT decision (relay control, recipient existence). */
void smtpd_check_rcpt(struct smtpd_session *ss, const struct smtp_envelope *env,
                      const struct smtp_rcpt *rcpt, struct smtp_reply *r);

/* session.c: serves one accepted connection. */
void smtpd_serve(struct smtpd_settings *s, int fd);

#endif
