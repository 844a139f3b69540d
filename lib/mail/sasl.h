/*
 * sasl.h - the server side of the SASL mechanisms PLAIN (RFC 4616) and
 * LOGIN (draft-murchison-sasl-login), independent of the protocol that
 * carries them: submission uses it for SMTP AUTH (RFC 4954), and the POP3
 * and IMAP login processes can use it for AUTH/AUTHENTICATE.
 *
 * The caller owns the dialogue: it starts an exchange with the mechanism and
 * the optional initial response, sends each challenge this module produces
 * (SMTP: "334 <challenge>"), feeds back each client line, and stops when the
 * module says the credentials are complete or the exchange failed. This
 * module only decodes and checks; it never verifies a password (that is the
 * auth service's job, lib/mail/auth_client.h).
 *
 * What is refused (BAD-INPUT.md row 4), each with its own status so the
 * protocol can answer with the right code:
 *  - anything that is not strict base64 (lib/util/base64): SASL_BAD_BASE64;
 *  - "*" alone: the client cancels (RFC 4954 §4): SASL_CANCELLED;
 *  - PLAIN messages without exactly two NUL separators, an empty user name
 *    or password, more than SASL_FIELD_MAX bytes in a field; user names (and
 *    authorization identities) that are not UTF-8 or hold control
 *    characters; passwords holding NUL (LOGIN): SASL_MALFORMED.
 * A PLAIN authorization identity other than the user's own (proxy
 * authorization) is not supported: SASL_MALFORMED with a message saying so.
 *
 * Initial responses: "=" means an empty one (RFC 4954 §4). LOGIN does not
 * define an initial response, but Outlook and others send the user name
 * with "AUTH LOGIN <b64>": it is taken as the answer to "Username:".
 */
#ifndef PETREL_SASL_H
#define PETREL_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

/* RFC 4616 limits authcid and passwd to 255 octets; we allow a little more
 * for long virtual addresses and pass phrases, but keep a bound. */
#define SASL_FIELD_MAX 1024

enum sasl_mech {
    SASL_MECH_PLAIN,
    SASL_MECH_LOGIN,
};

enum sasl_status {
    SASL_CHALLENGE, /* send the challenge, read another line */
    SASL_DONE,      /* user and password are complete: verify them */
    SASL_CANCELLED, /* the client sent "*" */
    SASL_BAD_BASE64,
    SASL_MALFORMED,
};

struct sasl_server {
    enum sasl_mech mech;
    int step;         /* internal: how many responses were consumed */
    strbuf authzid;   /* PLAIN authorization identity ("" when none) */
    strbuf user;      /* authentication identity */
    strbuf password;  /* may hold any byte except NUL; wiped by _free */
    strbuf scratch;   /* internal: decoded response (wiped) */
};

/* sasl_mech_parse: the mechanism for a name (ASCII case ignored). Returns
 * 0, or -1 for a mechanism this module does not implement. */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r);
/* sasl_mech_name: "PLAIN", "LOGIN". */
const char *sasl_mech_name(enum sasl_mech mech);
/* The list to advertise: "PLAIN LOGIN". */
#define SASL_MECHANISMS "PLAIN LOGIN"

void sasl_server_init(struct sasl_server *sx, enum sasl_mech mech);
/* Releases the buffers after overwriting the password with zeros. */
void sasl_server_free(struct sasl_server *sx);

/*
 * sasl_server_start: begins an exchange. initial is the initial response as
 * the client wrote it (base64, or "=" for empty), or NULL when there was
 * none. Returns SASL_CHALLENGE with *challenge (replaced) holding the base64
 * challenge to send (may be empty: "334 " for PLAIN), SASL_DONE, or an
 * error status with one English line in *err (replaced) for the log and,
 * for SASL_MALFORMED, the reply text.
 */
enum sasl_status sasl_server_start(struct sasl_server *sx, const char *initial,
                                   strbuf *challenge, strbuf *err);

/* sasl_server_step: the client's answer line (without CRLF) to the last
 * challenge. Returns as sasl_server_start. */
enum sasl_status sasl_server_step(struct sasl_server *sx, const char *line, size_t len,
                                  strbuf *challenge, strbuf *err);

#endif
