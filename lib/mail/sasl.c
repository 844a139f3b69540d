/*
 * sasl.c - SASL PLAIN and LOGIN, server side; see sasl.h.
 */
#include "mail/sasl.h"
#include "util/base64.h"
#include "util/utf8.h"

#include <string.h>
#include <strings.h>

int sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
    if (strcasecmp(name, "PLAIN") == 0)
        *mech_r = SASL_MECH_PLAIN;
    else if (strcasecmp(name, "LOGIN") == 0)
        *mech_r = SASL_MECH_LOGIN;
    else
        return -1;
    return 0;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
    return mech == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN";
}

void sasl_server_init(struct sasl_server *sx, enum sasl_mech mech)
{
    memset(sx, 0, sizeof(*sx));
    sx->mech = mech;
    strbuf_init(&sx->authzid);
    strbuf_init(&sx->user);
    strbuf_init(&sx->password);
    strbuf_init(&sx->scratch);
}

static void wipe(strbuf *sb)
{
    /* Through a volatile pointer so the stores are not optimised away. */
    volatile char *p = sb->data;
    for (size_t i = 0; i < sb->cap; i++)
        p[i] = 0;
    sb->len = 0;
}

void sasl_server_free(struct sasl_server *sx)
{
    wipe(&sx->password);
    wipe(&sx->scratch);
    strbuf_free(&sx->authzid);
    strbuf_free(&sx->user);
    strbuf_free(&sx->password);
    strbuf_free(&sx->scratch);
}

/* Decodes one response into sx->scratch; "*" cancels; "=" is the empty
 * initial response (an empty line is the empty answer to a challenge). */
static enum sasl_status decode(struct sasl_server *sx, const char *p, size_t n, bool initial,
                               strbuf *err)
{
    wipe(&sx->scratch);
    if (n == 1 && p[0] == '*') {
        strbuf_sets(err, "authentication cancelled by the client");
        return SASL_CANCELLED;
    }
    if (initial && n == 1 && p[0] == '=')
        return SASL_CHALLENGE;
    strbuf_reset(err);
    if (base64_decode(&sx->scratch, p, n, err) < 0)
        return SASL_BAD_BASE64;
    return SASL_CHALLENGE;
}

/* A user name or authorization identity: 1..SASL_FIELD_MAX bytes of UTF-8
 * without control characters (it reaches logs, the auth service and the
 * queue file). */
static bool name_ok(const char *p, size_t n, const char *what, strbuf *err)
{
    if (n == 0) {
        strbuf_printf(err, "empty %s", what);
        return false;
    }
    if (n > SASL_FIELD_MAX) {
        strbuf_printf(err, "%s longer than %d bytes", what, SASL_FIELD_MAX);
        return false;
    }
    if (!utf8_valid(p, n)) {
        strbuf_printf(err, "%s is not valid UTF-8", what);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f) {
            strbuf_printf(err, "control character in %s", what);
            return false;
        }
    }
    return true;
}

static bool password_ok(const char *p, size_t n, strbuf *err)
{
    if (n == 0) {
        strbuf_sets(err, "empty password");
        return false;
    }
    if (n > SASL_FIELD_MAX) {
        strbuf_printf(err, "password longer than %d bytes", SASL_FIELD_MAX);
        return false;
    }
    if (memchr(p, '\0', n) != NULL) {
        strbuf_sets(err, "NUL byte in password");
        return false;
    }
    return true;
}

/* RFC 4616: message = [authzid] NUL authcid NUL passwd. */
static enum sasl_status plain_message(struct sasl_server *sx, strbuf *err)
{
    const char *m = sx->scratch.data;
    size_t n = sx->scratch.len;
    strbuf_reset(err);
    const char *nul1 = memchr(m, '\0', n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - m)) : NULL;
    if (nul1 == NULL || nul2 == NULL) {
        strbuf_sets(err, "malformed PLAIN response: expected authzid NUL user NUL password");
        return SASL_MALFORMED;
    }
    size_t zlen = (size_t)(nul1 - m);
    const char *u = nul1 + 1;
    size_t ulen = (size_t)(nul2 - u);
    const char *pw = nul2 + 1;
    size_t plen = n - (size_t)(pw - m);
    if (zlen > 0 && !name_ok(m, zlen, "authorization identity", err))
        return SASL_MALFORMED;
    if (!name_ok(u, ulen, "user name", err))
        return SASL_MALFORMED;
    if (!password_ok(pw, plen, err)) /* a third NUL lands here */
        return SASL_MALFORMED;
    if (zlen > 0 && (zlen != ulen || memcmp(m, u, ulen) != 0)) {
        strbuf_sets(err, "authorization identity differs from the user name "
                         "(proxy authorization is not supported)");
        return SASL_MALFORMED;
    }
    strbuf_set(&sx->authzid, m, zlen);
    strbuf_set(&sx->user, u, ulen);
    strbuf_set(&sx->password, pw, plen);
    return SASL_DONE;
}

/* LOGIN: the response to "Username:" (step 0) or "Password:" (step 1). */
static enum sasl_status login_response(struct sasl_server *sx, strbuf *challenge, strbuf *err)
{
    const char *p = sx->scratch.data;
    size_t n = sx->scratch.len;
    strbuf_reset(err);
    if (sx->step == 0) {
        if (memchr(p, '\0', n) != NULL) {
            strbuf_sets(err, "NUL byte in user name");
            return SASL_MALFORMED;
        }
        if (!name_ok(p, n, "user name", err))
            return SASL_MALFORMED;
        strbuf_set(&sx->user, p, n);
        sx->step = 1;
        strbuf_reset(challenge);
        base64_encode(challenge, "Password:", 9);
        return SASL_CHALLENGE;
    }
    if (!password_ok(p, n, err))
        return SASL_MALFORMED;
    strbuf_set(&sx->password, p, n);
    sx->step = 2;
    return SASL_DONE;
}

static enum sasl_status step(struct sasl_server *sx, const char *line, size_t len, bool initial,
                             strbuf *challenge, strbuf *err);

enum sasl_status sasl_server_start(struct sasl_server *sx, const char *initial,
                                   strbuf *challenge, strbuf *err)
{
    strbuf_reset(challenge);
    strbuf_reset(err);
    sx->step = 0;
    if (initial == NULL) {
        if (sx->mech == SASL_MECH_LOGIN)
            base64_encode(challenge, "Username:", 9);
        return SASL_CHALLENGE; /* PLAIN: an empty challenge */
    }
    return step(sx, initial, strlen(initial), true, challenge, err);
}

static enum sasl_status step(struct sasl_server *sx, const char *line, size_t len, bool initial,
                             strbuf *challenge, strbuf *err)
{
    strbuf_reset(challenge);
    if (sx->step >= 2 || (sx->mech == SASL_MECH_PLAIN && sx->step >= 1)) {
        strbuf_sets(err, "response after the end of the exchange");
        return SASL_MALFORMED;
    }
    enum sasl_status st = decode(sx, line, len, initial, err);
    if (st != SASL_CHALLENGE)
        return st;
    if (sx->mech == SASL_MECH_PLAIN) {
        sx->step = 1;
        return plain_message(sx, err);
    }
    return login_response(sx, challenge, err);
}

enum sasl_status sasl_server_step(struct sasl_server *sx, const char *line, size_t len,
                                  strbuf *challenge, strbuf *err)
{
    return step(sx, line, len, false, challenge, err);
}
