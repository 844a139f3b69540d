/*
 * smtpc.h - smtp-client: the delivery agent for remote domains, an `accept`
 * service on unix:private/smtp (`smtp accept unix:private/smtp - - 20
 * smtp-client`). qmgr sends one `deliver` request (lib/mail/delivery.h);
 * this program groups the recipients by domain, finds the next hops by DNS
 * (MX, else A/AAAA) with c-ares, talks ESMTP to them and answers one result
 * per recipient. It never writes the queue file. docs/smtp-client.md
 * describes the behaviour.
 *
 * Files: main.c (skeleton wiring, settings, one request), dns.c (c-ares
 * lookups), route.c (a domain's ordered list of addresses to try, loop
 * detection), connect.c (TCP connect with a timeout, "is this myself"),
 * reply.c (the reply parser), content.c (the message with dot-stuffing),
 * mime.c (8-bit to 7-bit MIME downgrade), dest.c (transport_maps,
 * smtp_tls_policy_maps, smtp_sasl_password_maps: what applies to one
 * destination), session.c (the ESMTP dialogue with one destination, on a
 * new or a cached connection), auth.c (SASL AUTH PLAIN/LOGIN), cache.c (open connections
 * kept for the next message to the same next hop).
 */
#ifndef PETREL_SMTPC_H
#define PETREL_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "mail/delivery.h"
#include "mail/dns.h"
#include "tls/tls.h"
#include "util/netio.h"
#include "util/strbuf.h"

struct config;
struct queue_file;
struct map_list;

/* The longest reason text sent back to qmgr (the protocol has no CR/LF). */
#define SMTPC_REASON_MAX 1000
/* Reply limits (BAD-INPUT row 12): one line, all lines of one reply. */
#define SMTPC_REPLY_LINE_MAX 4096
#define SMTPC_REPLY_MAX_LINES 200
#define SMTPC_REPLY_MAX_BYTES (64 * 1024)
/* DNS: per try, number of tries, and a deadline for one lookup. */
#define SMTPC_DNS_TRY_MS 2000
#define SMTPC_DNS_TRIES 2
#define SMTPC_DNS_DEADLINE_MS 15000
/* Most addresses tried for one destination (Postfix: smtp_mx_address_limit). */
#define SMTPC_MAX_ADDRS 10
/* Most idle connections one process keeps open for reuse. */
#define SMTPC_CACHE_MAX 8

/* A lookup table list (transport_maps, ...) opened lazily: spec is the
 * parameter's value, name the parameter (both for messages). */
struct smtpc_table {
    const char *name;
    char *spec;            /* "" = no table */
    struct map_list *ml;   /* NULL until opened */
};

struct smtpc_settings {
    char *queue_dir;
    char *myhostname;
    char *dns_servers;   /* "addr[:port],..." for c-ares, "" = resolv.conf */
    char *relayhost;     /* "" = deliver by MX */
    int family;          /* AF_UNSPEC, AF_INET or AF_INET6 (inet_protocols) */
    int port;            /* smtp_port */
    int connect_ms, helo_ms, mail_ms, rcpt_ms, data_init_ms, data_xfer_ms, data_done_ms,
        quit_ms;
    enum tls_level tls_level;
    SSL_CTX *tls_ctx;    /* NULL when TLS is off or could not be set up */
    int *own_ports;      /* TCP ports this instance listens on (services.conf) */
    size_t n_own_ports;
    int rset_ms;         /* smtp_rset_timeout */
    int cache_ms;        /* smtp_connection_cache_time_limit; 0 = no reuse */
    int reuse_limit;     /* smtp_connection_reuse_count_limit; 0 = no limit */
    struct smtpc_table transport, tls_policy, sasl_passwords;
    bool sasl_enable;    /* smtp_sasl_auth_enable */
    bool sasl_tls_only;  /* smtp_sasl_tls_only */
};

void smtpc_settings_load(struct smtpc_settings *s, struct config *cfg, const char *config_dir);
void smtpc_settings_free(struct smtpc_settings *s);

/* The outcome for one recipient. */
struct smtpc_result {
    enum delivery_status status;
    char dsn[16];
    strbuf reason;
    strbuf mta;  /* the server whose reply decided it (host name), or empty */
    strbuf diag; /* that reply, raw ("550 5.1.1 no such user"), or empty */
    bool set;
};
void smtpc_result_init(struct smtpc_result *r);
void smtpc_result_free(struct smtpc_result *r);
/* Sets a result (printf-style); control and non-ASCII bytes in the text
 * become '?' and it is cut at SMTPC_REASON_MAX, so a peer's text is always
 * safe for the deliver protocol and the logs. */
void smtpc_result_set(struct smtpc_result *r, enum delivery_status st, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* After smtpc_result_set (which empties both): the remote host and reply
 * for the DSN's Remote-MTA and Diagnostic-Code (cleaned like the reason). */
void smtpc_result_set_remote(struct smtpc_result *r, const char *mta, const char *diag);
/* Copies status, DSN code, reason, host and reply from src. */
void smtpc_result_copy(struct smtpc_result *dst, const struct smtpc_result *src);

/* ---- dns.c ---- */

enum dns_outcome {
    DNS_FOUND,    /* records in the answer */
    DNS_NXDOMAIN, /* the name does not exist */
    DNS_NODATA,   /* the name exists, no records of this type */
    DNS_NULLMX,   /* RFC 7505: the domain accepts no mail */
    DNS_TEMPFAIL, /* SERVFAIL, timeout, no server reachable: try later */
};

struct dns_mx {
    char *host;
    int pref;
};

struct dns_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

/* The resolver is lib/mail/dns.h's (dns_new with lookups "b", dns_free,
 * dns_valid_hostname). */
/* MX records of domain, valid host names only, unsorted. On DNS_FOUND
 * *mx_r and *n_r hold at least one record (free with dns_mx_free). err says
 * what failed otherwise ("Host not found, try again"). */
enum dns_outcome dns_lookup_mx(struct dns *d, const char *domain, struct dns_mx **mx_r,
                               size_t *n_r, strbuf *err);
void dns_mx_free(struct dns_mx *mx, size_t n);
/* A and/or AAAA records of host (family AF_UNSPEC for both), port set to
 * port. At most max results appended to *a_r (grown with xrealloc). */
enum dns_outcome dns_lookup_addrs(struct dns *d, const char *host, int family, int port,
                                  struct dns_addr **a_r, size_t *n_r, strbuf *err);

/* ---- dest.c ---- */

/* What applies to the recipients of one domain, from relayhost and the
 * tables. */
struct smtpc_dest {
    const char *domain;
    strbuf nexthop;          /* "" = the domain's MX; else "[host]:port", "host", ... */
    enum tls_level tls_level;
    strbuf tls_match;        /* verify: "name:name" (literal names, "hostname",
                              * "nexthop"); "" = the MX host name */
    strbuf sasl_user, sasl_pass; /* empty user: no AUTH */
};
void smtpc_dest_init(struct smtpc_dest *d);
void smtpc_dest_free(struct smtpc_dest *d);
/* Fills d for domain: transport_maps (next hop, or error:/retry:/discard:),
 * relayhost, smtp_tls_policy_maps, smtp_sasl_password_maps. Returns 0 when
 * the mail goes out by SMTP, or -1 with *fail set: the table decided
 * (error: bounces, discard: counts as sent) or a table is broken or holds
 * something unsupported (deferred, never sent with a weaker policy). */
int smtpc_dest_resolve(struct smtpc_settings *s, const char *domain, struct smtpc_dest *d,
                       struct smtpc_result *fail);
/* Parses a next hop "[host]:port", "[host]", "host:port", "host". 0, or -1
 * for a malformed one (empty host, bad port). */
int smtpc_parse_nexthop(const char *nh, int defport, strbuf *host, int *port, bool *mx);

/* ---- route.c ---- */

struct smtpc_target {
    char *host;            /* the MX host name (for messages and TLS) */
    struct dns_addr addr;
};

struct smtpc_route {
    struct smtpc_target *t;
    size_t n;
};

/* The addresses to try for dest's domain, best first (the next hop, or MX
 * by preference with random order among equals, or the domain's own
 * address); dest->nexthop (relayhost or transport_maps) replaces the
 * domain when set. Returns 0 with a non-empty route, or -1 with *fail set
 * (bounced for NXDOMAIN, null MX and mail that loops back to this host;
 * deferred for temporary DNS failures and a malformed next hop). */
int smtpc_route(const struct smtpc_settings *s, struct dns *d, const struct smtpc_dest *dest,
                struct smtpc_route *route, struct smtpc_result *fail);
void smtpc_route_free(struct smtpc_route *route);

/* ---- connect.c ---- */

/* Connects to addr within timeout_ms. Returns the socket (blocking mode),
 * or -1 with err set ("Connection refused", "connection timed out"). */
int smtpc_connect(const struct dns_addr *addr, int timeout_ms, strbuf *err);
/* "10.0.0.2" / "2001:db8::1" */
void smtpc_addr_text(const struct dns_addr *addr, strbuf *out);
int smtpc_addr_port(const struct dns_addr *addr);
/* True when addr is an address of this host (an interface, loopback or
 * the wildcard) on a port that this instance listens on: a connection
 * there would hand the mail back to ourselves. */
bool smtpc_addr_is_self(const struct smtpc_settings *s, const struct dns_addr *addr);

/* ---- reply.c ---- */

struct smtp_reply {
    int code;         /* 200..599 */
    char dsn[16];     /* the enhanced status code, or a default by class */
    strbuf text;      /* every line's text after the code, joined with ' ' */
    strbuf lines;     /* every line's text, each ending in '\n' (EHLO keywords) */
};
void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
/*
 * Reads one (possibly multi-line) reply within timeout_ms for the whole
 * reply. Returns 0, or -1 with err set and *timeout_r true when the time
 * ran out: lost connection, timeout, a line that is not "DDD[ -]text", a
 * code that changes between lines, a code outside 2xx-5xx, a line over
 * SMTPC_REPLY_LINE_MAX bytes, or a reply over SMTPC_REPLY_MAX_LINES lines
 * or SMTPC_REPLY_MAX_BYTES bytes. After -1 the session must end.
 */
int smtp_reply_read(struct netio *io, int timeout_ms, struct smtp_reply *r, strbuf *err,
                    bool *timeout_r);

/* ---- content.c ---- */

/* Scans the content: *eightbit_r when any byte >= 0x80. -1 with err on a
 * read error. */
int smtpc_content_scan(struct queue_file *qf, bool *eightbit_r, strbuf *err);
/* Writes the content with CRLF line ends and dot-stuffing, then ".\r\n",
 * through io (the write timeout applies per block). -1 with err on a queue
 * file read error (*local_r true) or a network write error. */
int smtpc_content_send(struct queue_file *qf, struct netio *io, strbuf *err, bool *local_r);
/* The same for content already in memory (a downgraded message). */
int smtpc_content_send_buf(const strbuf *content, struct netio *io, strbuf *err);

/* ---- mime.c ---- */

/* The message converted to 7 bits for a server without 8BITMIME (RFC 6152
 * section 3): 8-bit MIME parts become quoted-printable, a message without
 * MIME headers gets them. -1 with err on a queue file read error. */
int smtpc_mime_downgrade(struct queue_file *qf, strbuf *out, strbuf *err);
/* The conversion itself, on a message in memory (out is replaced). */
void smtpc_mime_convert(const char *msg, size_t n, strbuf *out);

/* ---- session.c ---- */

struct smtpc_rcpt {
    const char *address;
    const char *orcpt;   /* "rfc822;addr" or NULL */
    unsigned notify;
    struct smtpc_result *res;
};

struct smtpc_msg {
    const char *id;
    struct queue_file *qf;
    const char *sender;
    bool eightbit;
};

/* One SMTP connection, kept between messages by cache.c. */
struct smtpc_sess {
    const struct smtpc_settings *s;
    const struct smtpc_msg *msg;    /* the message being sent (for logs) */
    const struct smtpc_dest *dest;  /* the destination being served */
    struct smtpc_target t;          /* own copy of the address */
    int fd;
    struct netio *io;
    struct tls_conn *tls;
    strbuf peer;      /* "mx.b.org[10.0.0.2]" */
    unsigned feat;    /* SMTPC_F_* from EHLO */
    uint64_t size_max;
    strbuf auth_mechs; /* " PLAIN LOGIN " from the AUTH keyword */
    struct smtp_reply rep;
    strbuf err;
    bool timeout;
    bool broken;      /* a read failed: the stream is out of step, no QUIT */
    bool closing;     /* the server said 421: it is closing, no reuse */
    bool need_rset;   /* a transaction was aborted: RSET before reuse */
    strbuf key;       /* cache key: address, port, TLS policy, SASL user */
    int uses;         /* transactions started on this connection */
    long long idle_since_ms;
};

enum {
    SMTPC_F_PIPELINING = 0x01,
    SMTPC_F_SIZE = 0x02,
    SMTPC_F_8BITMIME = 0x04,
    SMTPC_F_SMTPUTF8 = 0x08,
    SMTPC_F_DSN = 0x10,
    SMTPC_F_STARTTLS = 0x20,
    SMTPC_F_AUTH = 0x40,
};

/* Delivers msg to the recipients of one domain through the route's
 * addresses (or a cached connection to one of them), setting every
 * recipient's result. */
void smtpc_deliver(const struct smtpc_settings *s, const struct smtpc_msg *msg,
                   const struct smtpc_dest *dest, const struct smtpc_route *route,
                   struct smtpc_rcpt *rcpts, size_t n);
/* Ends a session: QUIT (when quit and the stream is in step; its reply
 * awaited at most quit_ms), TLS close_notify, close, free. */
void smtpc_sess_end(struct smtpc_sess *x, bool quit, int quit_ms);
/* Sends one command line (flushed unless batching). -1 with x->err set. */
int smtpc_send_cmd(struct smtpc_sess *x, int timeout_ms, bool flush, const char *cmd);
/* Reads a reply into x->rep. -1 with x->err set and x->broken. */
int smtpc_read_reply(struct smtpc_sess *x, int timeout_ms);

/* ---- auth.c ---- */

/* AUTH with dest's credentials when the server offers AUTH: PLAIN, else
 * LOGIN. Refuses (4.7.0) to send a password without TLS unless
 * smtp_sasl_tls_only = no. 0 (authenticated, or nothing to do), or -1 with
 * *fail set. The password never reaches a log or a reason. */
int smtpc_auth(struct smtpc_sess *x, struct smtpc_result *fail);

/* ---- cache.c ---- */

/* The cache key of a connection to t for dest. */
void smtpc_cache_key(const struct smtpc_target *t, const struct smtpc_dest *dest, strbuf *key);
/* Takes the cached connection with this key out of the cache when it is
 * still usable (nothing to read, no EOF), else NULL (a dead one is closed). */
struct smtpc_sess *smtpc_cache_take(const char *key);
/* Keeps a session whose transaction ended cleanly for the next message
 * (evicting the oldest one beyond SMTPC_CACHE_MAX). */
void smtpc_cache_put(struct smtpc_sess *x);
/* Closes (with QUIT) the connections idle longer than
 * smtp_connection_cache_time_limit; returns the ms until the next one
 * expires, or -1 when the cache is empty. */
int smtpc_cache_expire(void);
/* Closes every cached connection with QUIT (process exit). */
void smtpc_cache_close_all(void);

#endif
