/*
 * params.c - the defaults table: every petrel.conf parameter, its default,
 * type, range and a one-line description. This is the only place where
 * defaults live; docs/configuration.md mirrors it for people.
 *
 * Ranges (min, max) apply to int, size and time parameters; max 0 means no
 * upper limit. Timeouts of the SMTP client follow RFC 5321 section 4.5.3.2.
 */
#include "mail/params.h"
#include "util/config.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <string.h>
#include <unistd.h>

#define S CONFIG_STRING
#define B CONFIG_BOOL
#define I CONFIG_INT
#define Z CONFIG_SIZE
#define T CONFIG_TIME
#define L CONFIG_LIST

const struct config_def petrel_params[] = {
    /* Version, directories, identities. */
    {"config_version", "1", I, 1, PETREL_CONFIG_VERSION,
     "version of the configuration syntax and defaults this file was written for"},
    {"config_directory", "/etc/petrel", S, 0, 0, "directory of petrel.conf and services.conf"},
    {"queue_directory", "/var/spool/petrel", S, 0, 0, "root of the mail queue"},
    {"daemon_directory", "/usr/libexec/petrel", S, 0, 0,
     "directory of the programs that master starts"},
    {"data_directory", "/var/lib/petrel", S, 0, 0,
     "directory for data files written by the daemons (caches, locks)"},
    {"mail_owner", "petrel", S, 0, 0, "user the daemons run as"},
    {"mail_store_owner", "petrel-mail", S, 0, 0,
     "user that owns mail stored outside home directories (virtual mailboxes)"},
    {"setgid_group", "petreldrop", S, 0, 0, "group that may write into maildrop/"},
    {"mail_name", "Petrel", S, 0, 0, "name of the mail system, shown in the SMTP greeting"},

    /* Names of this system. */
    {"myhostname", "", S, 0, 0,
     "fully qualified name of this host; empty = the system hostname at run time"},
    {"mydomain", "", S, 0, 0,
     "domain of this host; empty = $myhostname without its first label"},
    {"myorigin", "$myhostname", S, 0, 0,
     "domain appended to unqualified addresses of locally posted mail"},
    {"mydestination", "$myhostname, localhost.$mydomain, localhost", L, 0, 0,
     "domains delivered locally (to system users and aliases)"},
    {"mynetworks", "127.0.0.0/8 [::1]/128", L, 0, 0,
     "client networks trusted to relay through this host"},
    {"inet_interfaces", "all", L, 0, 0,
     "addresses the network services listen on: all, loopback-only or addresses"},
    {"inet_protocols", "all", L, 0, 0, "IP versions used: all, ipv4, ipv6"},
    {"smtpd_banner", "$myhostname ESMTP $mail_name", S, 0, 0,
     "text after the 220 code of the SMTP greeting"},

    /* Limits of the SMTP server. */
    {"message_size_limit", "10240000", Z, 0, 0,
     "largest message accepted, in bytes, headers included; 0 = no limit"},
    {"smtpd_recipient_limit", "1000", I, 1, 0, "most recipients accepted for one message"},
    {"line_length_limit", "2048", I, 1000, 0,
     "longest line stored as one piece; longer lines are split (RFC 5321 needs 1000)"},
    {"smtpd_timeout", "300s", T, 1, 0,
     "how long the SMTP server waits for the next command or reply write"},
    {"smtpd_data_timeout", "600s", T, 1, 0,
     "how long the SMTP server waits for more message content during DATA or BDAT"},
    {"disable_vrfy_command", "no", B, 0, 0, "refuse the VRFY command"},
    {"smtputf8_enable", "yes", B, 0, 0, "offer and accept SMTPUTF8 (RFC 6531)"},
    {"smtpd_pregreet_wait", "0", I, 0, 10000,
     "milliseconds to wait before the greeting; a client that talks first is refused "
     "(0 = only refuse input already waiting)"},
    {"smtpd_soft_error_limit", "10", I, 0, 0,
     "errors in one session after which each error reply is delayed"},
    {"smtpd_hard_error_limit", "20", I, 1, 0,
     "errors in one session after which the server disconnects (421 4.7.0)"},
    {"smtpd_error_sleep_time", "1s", T, 0, 60,
     "delay before each error reply once the soft error limit is passed"},
    /* Submission (587/465): set tls_mode per service with -o. */
    {"tls_mode", "starttls", S, 0, 0,
     "TLS of a submission service: starttls (587, RFC 6409) or implicit (465, RFC 8314); "
     "set per service with -o tls_mode=implicit"},
    {"smtpd_sender_login_maps", "", L, 0, 0,
     "tables of sender address (or @domain) -> logins allowed to use it in MAIL FROM and From: "
     "on submission; empty = only the default rule (a user owns user@ each local domain, "
     "a virtual user exactly its address)"},

    /* SMTP client. */
    {"relayhost", "", S, 0, 0,
     "send all outgoing mail via this host, optionally host:port; [host] skips the MX lookup; "
     "empty = deliver directly"},
    {"smtp_port", "25", I, 1, 65535, "TCP port of next-hop hosts found by MX lookup"},
    {"smtp_connect_timeout", "30s", T, 1, 0, "time limit for a TCP connection to complete"},
    {"smtp_helo_timeout", "300s", T, 1, 0, "time limit for the greeting and EHLO reply"},
    {"smtp_mail_timeout", "300s", T, 1, 0, "time limit for the MAIL FROM reply"},
    {"smtp_rcpt_timeout", "300s", T, 1, 0, "time limit for each RCPT TO reply"},
    {"smtp_data_init_timeout", "120s", T, 1, 0, "time limit for the DATA reply"},
    {"smtp_data_xfer_timeout", "180s", T, 1, 0, "time limit for sending each block of content"},
    {"smtp_data_done_timeout", "600s", T, 1, 0, "time limit for the reply after the final '.'"},
    {"smtp_quit_timeout", "300s", T, 1, 0, "time limit for the QUIT reply"},
    {"smtp_tls_security_level", "may", S, 0, 0,
     "TLS for outgoing mail: none, may (opportunistic), encrypt, verify"},
    {"dns_servers", "", L, 0, 0,
     "DNS servers (address or address:port) for MX lookups; empty = /etc/resolv.conf"},

    /* TLS of the servers. */
    {"smtpd_tls_cert_file", "", S, 0, 0, "PEM certificate chain of the servers; empty = no TLS"},
    {"smtpd_tls_key_file", "", S, 0, 0, "PEM private key matching smtpd_tls_cert_file"},
    {"smtpd_tls_protocols", ">=TLSv1.2", S, 0, 0,
     "TLS versions the servers accept: >=TLSv1.2, <=TLSv1.3 or exclusions such as "
     "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"},
    {"smtpd_tls_cipherlist", "", S, 0, 0,
     "OpenSSL cipher string for TLS 1.2 and older; empty = OpenSSL's default"},
    {"smtpd_tls_ciphersuites", "", S, 0, 0,
     "OpenSSL TLS 1.3 cipher suites; empty = OpenSSL's default"},
    {"smtpd_tls_session_cache_timeout", "3600s", T, 0, 86400,
     "how long a TLS session may be resumed (session cache and tickets); 0 = no resumption"},
    {"smtpd_peername_lookup", "yes", B, 0, 0,
     "name SMTP clients by forward-confirmed reverse DNS (else \"unknown\")"},
    {"smtpd_client_dns_timeout", "5s", T, 1, 60,
     "time limit for naming an SMTP client (PTR and A/AAAA lookups together)"},
    {"smtpd_starttls_timeout", "300s", T, 1, 0,
     "time limit for the TLS handshake after STARTTLS (or at connect for implicit TLS)"},
    {"smtp_tls_protocols", ">=TLSv1.2", S, 0, 0,
     "TLS versions the SMTP client offers, in the syntax of smtpd_tls_protocols"},
    {"smtp_tls_cipherlist", "", S, 0, 0,
     "OpenSSL cipher string of the SMTP client for TLS 1.2 and older; empty = OpenSSL's default"},
    {"smtp_tls_ciphersuites", "", S, 0, 0,
     "OpenSSL TLS 1.3 cipher suites of the SMTP client; empty = OpenSSL's default"},
    {"smtp_tls_CAfile", "", S, 0, 0,
     "PEM file of CA certificates the SMTP client trusts; empty = the system's trust store"},
    {"smtp_tls_CApath", "", S, 0, 0,
     "directory of hashed CA certificates the SMTP client trusts; empty = the system's"},
    {"smtp_tls_policy_maps", "", L, 0, 0,
     "tables of next hop (domain, .parent, [host]:port) -> TLS policy (none, may, encrypt, "
     "verify [match=name:name]) that overrides smtp_tls_security_level"},
    {"smtp_rset_timeout", "20s", T, 1, 0,
     "time limit for the RSET reply before a connection is kept for reuse"},
    {"smtp_connection_cache_time_limit", "2s", T, 0, 300,
     "how long the SMTP client keeps an idle connection open for the next message to the "
     "same next hop; 0 = no connection reuse"},
    {"smtp_connection_reuse_count_limit", "100", I, 0, 0,
     "most messages sent over one SMTP client connection; 0 = no limit"},
    {"smtp_sasl_auth_enable", "no", B, 0, 0,
     "authenticate to servers that have an entry in smtp_sasl_password_maps"},
    {"smtp_sasl_password_maps", "", L, 0, 0,
     "tables of next hop ([host]:port, host or domain) -> user:password for SMTP AUTH"},
    {"smtp_sasl_tls_only", "yes", B, 0, 0,
     "send SMTP AUTH credentials over TLS-protected connections only (else the mail waits)"},

    /* Queue manager. */
    {"maximal_queue_lifetime", "5d", T, 0, 0,
     "how long a message may stay in the queue before it is returned as undeliverable"},
    {"bounce_queue_lifetime", "5d", T, 0, 0,
     "the same for bounces (messages with a null sender)"},
    {"minimal_backoff_time", "300s", T, 1, 0, "shortest wait before retrying a deferred message"},
    {"maximal_backoff_time", "4000s", T, 1, 0, "longest wait before retrying a deferred message"},
    {"queue_run_delay", "300s", T, 1, 0, "how often the deferred queue is scanned"},
    {"delay_warning_time", "0h", T, 0, 0,
     "when to tell the sender that a message is delayed; 0 = never"},
    {"local_destination_concurrency_limit", "2", I, 1, 1000,
     "most local deliveries in progress at once for one recipient (or domain)"},
    {"default_destination_concurrency_limit", "20", I, 1, 1000,
     "most deliveries in progress at once through any other transport"},
    {"local_destination_recipient_limit", "1", I, 1, 1000,
     "most recipients handed to the local transport in one delivery"},
    {"default_destination_recipient_limit", "50", I, 1, 1000,
     "most recipients handed to any other transport in one delivery"},
    {"bounce_size_limit", "50000", Z, 0, 0,
     "most bytes of the original message returned in a delivery status notification"},
    {"bounce_notice_text", "This is the mail system at host $myhostname.", S, 0, 0,
     "first paragraph of the human-readable part of delivery status notifications"},

    /* Addresses, tables and local delivery. */
    {"recipient_delimiter", "+", S, 0, 0,
     "characters that separate a user name from an extension (user+ext); empty = none"},
    {"alias_maps", "hash:/etc/aliases", L, 0, 0, "alias tables used by local delivery"},
    {"alias_database", "hash:/etc/aliases", L, 0, 0, "alias tables rebuilt by newaliases"},
    {"home_mailbox", "Maildir/", S, 0, 0,
     "mailbox relative to the home directory; a trailing '/' means Maildir, "
     "empty = mbox in mail_spool_directory"},
    {"mail_spool_directory", "/var/mail", S, 0, 0,
     "directory of mbox files when home_mailbox is empty"},
    {"virtual_alias_maps", "", L, 0, 0, "tables that rewrite recipient addresses of any domain"},
    {"virtual_mailbox_domains", "", L, 0, 0,
     "domains whose users have virtual mailboxes (no system account)"},
    {"virtual_mailbox_base", "/var/mail/vhosts", S, 0, 0,
     "directory under which virtual_mailbox_maps paths lie (owned by mail_store_owner)"},
    {"virtual_mailbox_maps", "", L, 0, 0,
     "tables mapping virtual mailbox addresses to mailbox paths"},
    {"relay_domains", "", L, 0, 0, "domains this host accepts mail for and relays onward"},
    {"transport_maps", "", L, 0, 0, "tables choosing the delivery method and next hop per domain"},

    /* auth service (docs/auth.md). */
    {"auth_pam_service", "petrel", S, 0, 0,
     "PAM service name the auth service uses for system users (/etc/pam.d/NAME)"},
    {"auth_passwd_file", "", S, 0, 0,
     "Dovecot-style passwd-file of virtual users (user@domain:{SCHEME}hash:uid:gid::home::); "
     "empty = none"},
    {"auth_allow_plain_passwords", "no", B, 0, 0,
     "accept {PLAIN} (unhashed) passwords in auth_passwd_file"},
    {"auth_failure_limit", "10", I, 1, 0,
     "failed logins from one client address within auth_failure_window after which it is "
     "throttled"},
    {"auth_failure_window", "5m", T, 1, 86400,
     "window in which failed logins are counted, and how long a throttled client waits"},
    {"auth_failure_delay", "500", I, 0, 10000,
     "milliseconds a failed login reply is delayed per recent failure of the same client"},
    {"auth_failure_max_delay", "5000", I, 0, 60000,
     "longest delay of a failed login reply, in milliseconds"},
    {"auth_token_lifetime", "60s", T, 1, 3600,
     "how long a one-time token of the POP3/IMAP login hand-off can be redeemed"},

    /* POP3 (and later IMAP) login processes and sessions (docs/pop3.md). */
    {"login_plaintext_loopback", "yes", B, 0, 0,
     "login processes accept plaintext passwords without TLS from loopback clients"},
    {"login_timeout", "120s", T, 1, 3600,
     "how long a login process waits for each command before the client logs in"},
    {"login_relay_timeout", "15m", T, 1, 86400,
     "idle time after which a login process ends a TLS session it relays"},
    {"login_max_line", "2048", I, 64, 65536,
     "longest command line, in bytes, a login process accepts (AUTH responses included)"},
    {"login_max_bad_commands", "10", I, 1, 1000,
     "bad commands after which a login process closes the connection"},
    {"pop3_timeout", "10m", T, 1, 86400,
     "how long a POP3 session waits for the next command once logged in (RFC 1939: >= 10m)"},
    {"pop3_max_line", "512", I, 64, 65536, "longest POP3 command line, in bytes, once logged in"},
    {"pop3_max_bad_commands", "20", I, 1, 1000,
     "bad commands after which a POP3 session ends (without applying deletions)"},

    /* Processes and logging. */
    {"default_process_limit", "100", I, 1, 0,
     "most processes of one service when services.conf says '-'"},
    {"max_use", "100", I, 1, 0, "clients a daemon process serves before it exits"},
    {"max_idle", "100s", T, 1, 0, "how long an idle daemon process waits before it exits"},
    {"log_destination", "syslog", S, 0, 0, "where logs go: syslog, stderr or an absolute file path"},
    {"pickup_interval", "60s", T, 1, 3600,
     "how often pickup looks into maildrop/ when no sendmail wakes it"},
    {"master_stop_timeout", "10s", T, 0, 3600,
     "at stop, how long master lets sessions in progress finish before it kills them"},

    /* local-delivery (docs/local-delivery.md). */
    {"default_privs", "nobody", S, 0, 0,
     "user whose rights apply to commands, files and includes named in aliases"},
    {"command_time_limit", "1000s", T, 1, 0,
     "time limit of a delivery to a |command (aliases, .forward)"},
    {"mailbox_size_limit", "51200000", Z, 0, 0,
     "largest mbox file, or Maildir message, local delivery writes; 0 = no limit"},
    {"allow_mail_to_commands", "alias, forward", L, 0, 0,
     "where |command targets are allowed: alias, forward, include"},
    {"allow_mail_to_files", "alias, forward", L, 0, 0,
     "where /file targets are allowed: alias, forward, include"},
    {"hopcount_limit", "50", I, 1, 0,
     "Received: headers after which local delivery treats a message as a mail loop"},

    {NULL, NULL, S, 0, 0, NULL},
};

struct config *params_config_new(void)
{
    return config_new(petrel_params);
}

void params_host_defaults(struct config *cfg, const char *hostname)
{
    if (!config_is_set(cfg, "myhostname")) {
        char buf[256]; /* HOST_NAME_MAX is 64 on Linux */
        if (hostname == NULL) {
            if (gethostname(buf, sizeof(buf)) == 0 && memchr(buf, '\0', sizeof(buf)) != NULL &&
                buf[0] != '\0')
                hostname = buf;
            else
                hostname = "localhost";
        }
        config_set_default(cfg, "myhostname", hostname);
    }
    if (!config_is_set(cfg, "mydomain")) {
        const char *host = config_get(cfg, "myhostname");
        const char *dot = host != NULL ? strchr(host, '.') : NULL;
        config_set_default(cfg, "mydomain",
                           dot != NULL && dot[1] != '\0' ? dot + 1 : "localdomain");
    }
}

const char *param_str(struct config *cfg, const char *name)
{
    const char *v = NULL;
    strbuf err;
    strbuf_init(&err);
    if (config_get_str(cfg, name, &v, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
    return v;
}

static long long param_num(struct config *cfg, const char *name,
                           int (*getter)(struct config *, const char *, long long *, strbuf *))
{
    long long v = 0;
    strbuf err;
    strbuf_init(&err);
    if (getter(cfg, name, &v, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
    return v;
}

long long param_int(struct config *cfg, const char *name)
{
    return param_num(cfg, name, config_get_int);
}

long long param_size(struct config *cfg, const char *name)
{
    return param_num(cfg, name, config_get_size);
}

long long param_time(struct config *cfg, const char *name)
{
    return param_num(cfg, name, config_get_time);
}

bool param_bool(struct config *cfg, const char *name)
{
    bool v = false;
    strbuf err;
    strbuf_init(&err);
    if (config_get_bool(cfg, name, &v, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
    return v;
}
