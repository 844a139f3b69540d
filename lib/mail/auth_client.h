/*
 * auth_client.h - asking the auth service (auth/, runs as root because PAM's
 * unix module reads the shadow file) whether a user's credentials are good.
 *
 * The service listens on <queue_directory>/private/auth. One connection
 * carries one request record and one reply record (lib/util/attr, see
 * docs/ipc.md "auth"):
 *
 *   request: protocol=auth op=password service=smtp|pop3|imap client=ADDR
 *            user=NAME password=BYTES [token=1]
 *            protocol=auth op=redeem service=pop3|imap token=TOKEN
 *   reply:   status=ok|fail|tempfail|throttled user=CANONICAL
 *            [home=DIR uid=N gid=N mailbox=PATH token=TOKEN] reason=TEXT
 *
 * "fail" is a definite no (535 / -ERR / NO); "tempfail" means the backend
 * could not answer (454 4.7.0); "throttled" means this client failed too
 * often and must wait. The password never appears in a log line.
 */
#ifndef PETREL_AUTH_CLIENT_H
#define PETREL_AUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/strbuf.h"

#define AUTH_TOKEN_MAX 128
#define AUTH_IO_TIMEOUT_MS 30000

enum auth_status {
    AUTH_OK,
    AUTH_FAIL,
    AUTH_TEMPFAIL,
    AUTH_THROTTLED,
};

struct auth_result {
    enum auth_status status;
    strbuf user;    /* canonical user name (system user, or user@domain) */
    strbuf home;    /* for mailbox access (redeem, and password with token=1) */
    strbuf mailbox; /* mail location for pop3/imap, e.g. /home/bob/Maildir */
    uid_t uid;
    gid_t gid;
    strbuf token;   /* one-time token for the login -> mailbox hand-off */
    strbuf reason;  /* human text for logs; never contains the password */
};

void auth_result_init(struct auth_result *r);
void auth_result_free(struct auth_result *r);

/* auth_verify_password: asks the service at <queue_dir>/private/auth.
 * password is (pointer, length): SASL PLAIN can carry any byte but NUL.
 * want_token asks for a one-time token (pop3/imap login processes).
 * Returns 0 with res filled (any status), or -1 when the service could not
 * be asked (res->status is then AUTH_TEMPFAIL with a reason). */
int auth_verify_password(const char *queue_dir, const char *service, const char *client_addr,
                         const char *user, const char *password, size_t password_len,
                         bool want_token, struct auth_result *res);

/* auth_redeem_token: exchanges a one-time token (from a login process) for
 * the user's identity and mailbox; a token works once, for a short time. */
int auth_redeem_token(const char *queue_dir, const char *service, const char *token,
                      struct auth_result *res);

/* auth_client_set_timeout: the deadline of each step (connect, send, read
 * the reply) in milliseconds; <= 0 restores AUTH_IO_TIMEOUT_MS. For tests
 * and for callers that must answer their own client sooner. */
void auth_client_set_timeout(int timeout_ms);

#endif
