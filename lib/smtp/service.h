/*
 * service.h - what the SMTP server daemons (smtpd on 25, submission on
 * 587/465) share around the protocol engine: their settings from
 * petrel.conf, one client connection (who it is, its queue sink, its TLS
 * layer, the connect/disconnect log lines) and the RCPT check for our own
 * domains.
 *
 * The engine (server.h) knows the protocol; this module knows the mail
 * system; each daemon adds only its policy (smtpd: relay control by
 * network; submission: AUTH and sender ownership).
 */
#ifndef PETREL_SMTP_SERVICE_H
#define PETREL_SMTP_SERVICE_H

#include <stdbool.h>

#include "mail/cidr.h"
#include "mail/resolve.h"
#include "smtp/queue_sink.h"
#include "smtp/server.h"
#include "tls/tls.h"

struct config;

struct smtp_service_settings {
    char *queue_dir;
    char *myhostname;
    char *mail_name;
    char *banner;             /* smtpd_banner, after the hostname */
    struct cidr_list mynetworks;
    struct resolver *resolver;
    struct smtp_server_config engine;
    /* A server context when smtpd_tls_cert_file and smtpd_tls_key_file are
     * set and load (read in init, as mail_owner: the files must be readable
     * by that user); NULL: no TLS. */
    SSL_CTX *tls_ctx;
    int starttls_timeout_ms;  /* the whole handshake */
    /* Client names (smtpd_peername_lookup): forward-confirmed reverse DNS
     * through dns_servers (empty: resolv.conf), the whole lookup bounded by
     * smtpd_client_dns_timeout. */
    bool peername_lookup;
    char *dns_servers;
    int client_dns_timeout_ms;
};

/* smtp_service_settings_load: reads petrel.conf (with the service's -o
 * overrides) into s: names, banner, mynetworks, the recipient resolver, the
 * engine limits (message_size_limit, smtpd_* limits and timeouts) and the
 * TLS context. Configuration errors are fatal (master validated the file,
 * so this only happens on real breakage), except: tables that do not open
 * (lookups then answer 451) and TLS files that do not load (logged; tls_ctx
 * stays NULL so that the caller decides what that means). */
void smtp_service_settings_load(struct smtp_service_settings *s, struct config *cfg);

/* One client connection. */
struct smtp_conn {
    const struct smtp_service_settings *settings;
    int fd;
    char client_addr[64];     /* "192.0.2.1"; "127.0.0.1" for a UNIX socket */
    char client_name[256];    /* "mail.example.org" (confirmed) or "unknown" */
    char client_log[340];     /* "mail.example.org[192.0.2.1]" */
    bool local_socket;        /* the client came through a UNIX socket */
    struct queue_sink sink;
    struct queue_sink_client client;
    struct tls_conn *tls;     /* after a handshake */
    strbuf tls_details;       /* "TLSv1.3 TLS_AES_256_GCM_SHA384" for Received: */
};

/* smtp_conn_open: identifies the client on fd (its address and, when
 * peername_lookup is on, its name by forward-confirmed reverse DNS,
 * lib/mail/dns.h; "unknown" otherwise and for UNIX-socket clients),
 * prepares the queue sink and logs "connect from NAME[ADDR]". */
void smtp_conn_open(struct smtp_conn *c, const struct smtp_service_settings *s, int fd);

/* smtp_conn_start_tls: the server side of a handshake on io (after "220
 * Ready to start TLS", or at once for implicit TLS) with the settings'
 * context and timeout. Logs the result ("TLS connection established from
 * ...: TLSv1.3 ..." or "TLS handshake error from ...: why"), and plaintext
 * that was dropped. Returns 0 (io now runs over TLS; client.tls_details
 * set) or -1 (the session must end). */
int smtp_conn_start_tls(struct smtp_conn *c, struct netio *io);

/* smtp_conn_close: ends the connection after smtp_server_run returned end
 * (or without a session, end = SMTP_END_TLS_FAILED): close_notify after a
 * normal end, frees *io and the TLS layer, drains the socket briefly after
 * an abnormal end (so the last reply is not destroyed by a reset), releases
 * the sink and logs "disconnect from ... (why)". The caller's skeleton
 * closes fd. */
void smtp_conn_close(struct smtp_conn *c, struct netio **io, enum smtp_end end);

/*
 * smtp_check_rcpt: the RCPT decision both daemons share.
 *  1. Destination class (lib/mail/resolve): local, virtual and relay
 *     domains are accepted; any other domain only when may_relay (smtpd:
 *     a client in mynetworks; submission: an authenticated one), otherwise
 *     "554 5.7.1 Relay access denied".
 *  2. For our own domains, '%', '!' and '@' in the local part (classic
 *     relay tricks) are refused outright.
 *  3. The recipient must exist (aliases, passwd, virtual tables — the
 *     lookup local delivery uses), so we never accept mail we would have to
 *     bounce; a table that cannot be read gives 451, never a false 550.
 * Every refusal is logged Postfix-style as "NOQUEUE: reject: RCPT from ...".
 */
void smtp_check_rcpt(struct smtp_conn *c, bool may_relay, const struct smtp_envelope *env,
                     const struct smtp_rcpt *rcpt, struct smtp_reply *r);

#endif
