/*
 * auth.h - the auth service's internal interfaces (auth/ only).
 *
 * auth is an `accept` service run as root (`auth accept unix:private/auth
 * root - 10 auth`): root because PAM's unix module reads /etc/shadow. Each
 * process answers one connection at a time: one request record, one reply
 * record (docs/ipc.md "auth", lib/mail/auth_client.h). Several processes
 * run at once, so everything that must outlive a request or be seen by a
 * sibling lives in files under <queue_directory>/pid/auth/ (root, 0700):
 * the failure counters of throttle.c and the one-time tokens of token.c.
 *
 * Files: main.c (skeleton glue), settings.c (parameters, state directory),
 * request.c (protocol, validation, logging), route.c (which backend a name
 * belongs to), backend_pam.c, backend_passwd.c, throttle.c, token.c.
 */
#ifndef PETREL_AUTH_AUTH_H
#define PETREL_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util/config.h"
#include "util/strbuf.h"

#define AUTH_USER_MAX 256       /* bytes in a user name */
#define AUTH_PASSWORD_MAX 1024  /* bytes in a password */
#define AUTH_CLIENT_MAX 128     /* bytes in a client address */
#define AUTH_TOKEN_BYTES 20     /* random bytes in a token: 160 bits */
#define AUTH_READ_TIMEOUT_MS 10000

struct auth_settings {
    char *queue_dir;
    char *state_dir;      /* <queue_directory>/pid/auth */
    char *pam_service;    /* auth_pam_service */
    char *passwd_file;    /* auth_passwd_file; "" = none */
    bool allow_plain;     /* auth_allow_plain_passwords */
    char *home_mailbox;   /* for system users' mailbox paths */
    char *spool_dir;      /* mail_spool_directory */
    char *store_owner;    /* mail_store_owner: default owner of virtual mailboxes */
    struct config_list mydestination;
    struct config_list virtual_domains;
    long long failure_limit;
    long long failure_window;   /* seconds */
    long long failure_delay_ms;
    long long failure_max_delay_ms;
    long long token_lifetime;   /* seconds */
};

/* settings.c: reads the parameters and creates the state directories
 * (fatal when they cannot be made safe). */
void auth_settings_load(struct auth_settings *s, struct config *cfg);
void auth_settings_free(struct auth_settings *s);

/* A backend's answer. */
enum auth_verdict {
    VERDICT_OK,
    VERDICT_FAIL,     /* wrong password, unknown user, disabled account */
    VERDICT_TEMPFAIL, /* the backend could not answer */
};

/* Who a user is once authenticated: what a mailbox process needs. */
struct auth_identity {
    strbuf user;    /* canonical name */
    strbuf home;
    strbuf mailbox; /* ends in '/' for a Maildir, else an mbox file */
    uid_t uid;
    gid_t gid;
};
void auth_identity_init(struct auth_identity *id);
void auth_identity_free(struct auth_identity *id);

/* request.c: serves one connection. */
void auth_serve(const struct auth_settings *s, int fd);

/* route.c: checks a user name and sends it to its backend. The verdict;
 * id->user always gets the name to log; with want_identity, an OK verdict
 * also fills uid, gid, home and mailbox (else TEMPFAIL says why not).
 * reason gets a short text for logs and the reply. */
enum auth_verdict auth_route(const struct auth_settings *s, const char *user,
                             const char *password, size_t password_len, const char *client,
                             bool want_identity, struct auth_identity *id, strbuf *reason);
/* True when domain (any case) is in the list; ".example.org" entries also
 * match subdomains, as in lib/mail/resolve. */
bool auth_domain_in(const struct config_list *list, const char *domain);

/* backend_pam.c: pam_start(pam_service) .. pam_authenticate ..
 * pam_acct_mgmt .. pam_end, with the password as the only answer. On OK,
 * canonical gets the user name PAM ended with. */
enum auth_verdict pam_backend_verify(const struct auth_settings *s, const char *user,
                                     const char *password, const char *client, strbuf *canonical,
                                     strbuf *reason);
/* The identity of a system user (getpwnam): uid 0 is refused. */
enum auth_verdict system_identity(const struct auth_settings *s, const char *user,
                                  struct auth_identity *id, strbuf *reason);

/* backend_passwd.c: one line of a Dovecot-style passwd-file. */
struct passwd_entry {
    strbuf user;
    strbuf password; /* "{SCHEME}hash" as written */
    strbuf home;
    strbuf extra;    /* field 8: space-separated name=value */
    long long uid;   /* -1 when the field is empty */
    long long gid;
    int line;
};
void passwd_entry_init(struct passwd_entry *e);
void passwd_entry_free(struct passwd_entry *e);
/* Finds user in path: 1 found (e filled), 0 not there, -1 the file cannot
 * be used (err says why). Local parts compare exactly, domains in any case. */
int passwd_file_lookup(const char *path, const char *user, struct passwd_entry *e, strbuf *err);
/* Checks a password against an entry (constant-time comparison). */
enum auth_verdict passwd_verify(const struct auth_settings *s, const char *path,
                                const struct passwd_entry *e, const char *password,
                                strbuf *reason);
/* Fills id from an entry (uid/gid default to mail_store_owner's). */
enum auth_verdict passwd_identity(const struct auth_settings *s, const struct passwd_entry *e,
                                  struct auth_identity *id, strbuf *reason);
/* A password hash for unknown users, so that they cost what known ones do. */
void passwd_waste_time(const char *password);

/* secret comparison: true when a[0..an) equals b[0..bn); the time depends
 * on the lengths only, not on where the bytes differ. */
bool auth_secret_equal(const char *a, size_t an, const char *b, size_t bn);

/* throttle.c: failure counters per client address, shared by every auth
 * process through <state_dir>/failures (flock). Errors are logged and
 * never throttle anybody. */
/* Seconds the client stays throttled (0 = not throttled). */
long long throttle_check(const struct auth_settings *s, const char *client, time_t now);
/* Counts a failure; returns the delay in ms to wait before answering. */
long long throttle_failure(const struct auth_settings *s, const char *client, time_t now);
/* A success forgets the client's failures. */
void throttle_success(const struct auth_settings *s, const char *client);

/* token.c: one-time tokens in <state_dir>/tokens/. */
/* Creates a token for id and service; 0, or -1 with err. */
int token_issue(const struct auth_settings *s, const struct auth_identity *id,
                const char *service, strbuf *token, strbuf *err);
/* Redeems (and so destroys) a token: 1 ok (id filled), 0 unknown, used,
 * expired or for another service (reason), -1 a system error (reason). */
int token_redeem(const struct auth_settings *s, const char *token, const char *service,
                 struct auth_identity *id, strbuf *reason);
/* True when t has the shape of a token we issue (hex, exact length). */
bool token_syntax_ok(const char *t);

#endif
