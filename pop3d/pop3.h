/*
 * pop3.h - what the two POP3 programs share: the CAPA list (capa.c) and
 * the mailbox session (session.c, run by pop3d after the hand-off).
 */
#ifndef PETREL_POP3_H
#define PETREL_POP3_H

#include <stdbool.h>
#include <stddef.h>

#include "util/netio.h"
#include "util/strbuf.h"

/* What the CAPA answer lists depends on the state and the connection. */
struct pop3_capa {
    bool authorization; /* before login: USER, SASL, STLS may be listed */
    bool plaintext_ok;  /* USER and SASL PLAIN (RFC 2595: not on an open line) */
    bool stls;          /* STLS is available */
};

/* Appends the whole CAPA reply, "+OK ..." to the final ".", CRLF ends. */
void pop3_capa(const struct pop3_capa *c, strbuf *out);

/* The session after the hand-off (session.c). */
struct pop3_session_settings {
    int timeout_ms;
    size_t max_line;
    int max_bad;
};

struct mailbox;

/* Serves TRANSACTION and UPDATE on io for user with mailbox mb; the
 * "+OK" of the login was sent already. Logs the logout line. Returns -1
 * after an abnormal end (the caller drains the connection), else 0. */
int pop3_session(const struct pop3_session_settings *s, struct netio *io, struct mailbox *mb,
                  const char *user, const char *client);

#endif
