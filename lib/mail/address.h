/*
 * address.h - parsing and formatting of envelope addresses (RFC 5321 §4.1.2,
 * RFC 6531 for SMTPUTF8).
 *
 * smtpd and submission parse the MAIL FROM:/RCPT TO: arguments with
 * address_parse_mail_arg(); the sendmail CLI, pickup, aliases and other
 * config use address_parse_mailbox() for a bare user@domain. Every parser
 * takes a pointer and a length, so a NUL byte in the input is seen and
 * refused instead of silently ending the string. On failure the caller gets
 * an error code, a message fit for an SMTP reply and the suggested reply and
 * enhanced status codes.
 *
 * Choices made where the RFCs leave room:
 * - The null path "<>" is accepted only with ADDRESS_ALLOW_NULL (reverse-path).
 * - Source routes "<@a,@b:user@c>" are syntax-checked and dropped, as RFC 5321
 *   §4.1.1.3 and appendix C tell receivers to do; had_source_route says so.
 * - '%' and '!' in a local part are plain characters, never routing.
 *   address_has_routing_chars() lets the caller refuse them.
 * - An empty quoted local part ("") is refused: RFC 5321 grammar allows it,
 *   but no mailbox can have an empty name and RFC 5321 §4.1.2 says quoted
 *   forms SHOULD NOT be used for mailboxes; it is a known probe (BAD-INPUT 2).
 * - A domain ending in a dot ("a@example.org.") is refused, not normalised:
 *   the RFC 5321 Domain grammar has no trailing dot, and silently rewriting an
 *   envelope address hides client bugs.
 * - Address literals: "[1.2.3.4]" and "[IPv6:...]" (checked with inet_pton,
 *   which also refuses leading zeros such as "[01.2.3.4]"); other tagged
 *   literals "[tag:...]" are refused as unsupported. Literals are not
 *   accepted inside source routes (RFC 5321 At-domain is a plain Domain).
 * - Non-ASCII needs ADDRESS_ALLOW_UTF8 (the client gave SMTPUTF8). It must be
 *   well-formed UTF-8 without C1 controls; it is allowed in dot-atom and
 *   quoted local parts and in domain labels (U-labels, not checked against
 *   IDNA2008 tables; a label starting "xn--" must be ASCII). Label and
 *   length limits count octets of the UTF-8 text as given.
 * - Length limits (RFC 5321 §4.5.3.1): local part 64 octets as written
 *   (quotes and backslashes included), domain 255, label 63, path 256
 *   including '<', '>' and any source route. A bare mailbox is limited to 254
 *   so that it always fits in a path.
 * - Leniency in address_parse_mail_arg(), and only there: spaces after the
 *   colon ("MAIL FROM: <a@b>", sent by several common clients) are skipped.
 *   An address without angle brackets is refused.
 */
#ifndef PETREL_ADDRESS_H
#define PETREL_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

/* RFC 5321 §4.5.3.1 limits, in octets. */
#define ADDRESS_LOCAL_MAX 64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_LABEL_MAX 63
#define ADDRESS_PATH_MAX 256
#define ADDRESS_MAILBOX_MAX (ADDRESS_PATH_MAX - 2)

/* Flags for the parsers. */
#define ADDRESS_ALLOW_NULL 0x01       /* accept "<>" (reverse-path) */
#define ADDRESS_ALLOW_UTF8 0x02       /* accept non-ASCII (SMTPUTF8 given) */
#define ADDRESS_ALLOW_POSTMASTER 0x04 /* accept "<Postmaster>" without domain
                                       * (RFC 5321 §4.1.1.3, RCPT only) */
#define ADDRESS_ALLOW_NO_DOMAIN 0x08  /* address_parse_mailbox: accept a bare
                                       * local part ("bob"), for aliases */

/* What an address is used for; selects the enhanced status code and, in
 * address_parse_mail_arg(), the keyword and the implied flags. */
enum address_role {
    ADDRESS_ROLE_SENDER,    /* MAIL FROM: reverse-path */
    ADDRESS_ROLE_RECIPIENT, /* RCPT TO: forward-path */
};

enum address_status {
    ADDRESS_OK = 0,
    ADDRESS_ERR_EMPTY,               /* nothing given */
    ADDRESS_ERR_COMMAND_SYNTAX,      /* "FROM:"/"TO:" missing or malformed */
    ADDRESS_ERR_NO_BRACKETS,         /* path not enclosed in <> */
    ADDRESS_ERR_UNBALANCED_BRACKETS, /* '<' without its '>' */
    ADDRESS_ERR_TRAILING_JUNK,       /* text after the closing '>' */
    ADDRESS_ERR_NULL_NOT_ALLOWED,    /* "<>" where a mailbox is required */
    ADDRESS_ERR_ROUTE_SYNTAX,        /* bad "@a,@b:" source route */
    ADDRESS_ERR_NUL_BYTE,            /* a NUL byte anywhere */
    ADDRESS_ERR_CONTROL_CHAR,        /* CR, LF, other C0, DEL or C1 control */
    ADDRESS_ERR_BAD_CHAR,            /* a character not allowed where it is */
    ADDRESS_ERR_NO_DOMAIN,           /* no '@domain' */
    ADDRESS_ERR_LOCAL_EMPTY,         /* empty local part, including "" */
    ADDRESS_ERR_LOCAL_DOTS,          /* leading, trailing or double dot */
    ADDRESS_ERR_UNBALANCED_QUOTES,   /* quoted local part not closed */
    ADDRESS_ERR_LOCAL_TOO_LONG,      /* > 64 octets */
    ADDRESS_ERR_DOMAIN_EMPTY,        /* nothing after '@' */
    ADDRESS_ERR_DOMAIN_SYNTAX,       /* empty label, trailing dot, hyphens */
    ADDRESS_ERR_LABEL_TOO_LONG,      /* > 63 octets */
    ADDRESS_ERR_DOMAIN_TOO_LONG,     /* > 255 octets */
    ADDRESS_ERR_PATH_TOO_LONG,       /* > 256 (path) or 254 (mailbox) */
    ADDRESS_ERR_LITERAL_SYNTAX,      /* malformed or unterminated [...] */
    ADDRESS_ERR_LITERAL_IPV4,        /* [x.x.x.x] not an IPv4 address */
    ADDRESS_ERR_LITERAL_IPV6,        /* [IPv6:...] not an IPv6 address */
    ADDRESS_ERR_LITERAL_UNSUPPORTED, /* [tag:...] other than IPv6 */
    ADDRESS_ERR_UTF8_INVALID,        /* malformed UTF-8 */
    ADDRESS_ERR_UTF8_NOT_ALLOWED,    /* non-ASCII without ADDRESS_ALLOW_UTF8 */
};

/* Size of address_error.text, terminator included. */
#define ADDRESS_ERROR_TEXT_SIZE 160

/* Why a parse failed. text is one line of printable ASCII with no CR/LF, so
 * it can go into an SMTP reply or a log line as is: input appears in it only
 * as one printable ASCII character, a checked literal tag of at most 32
 * letters, digits and hyphens, or a byte value written as 0xNN or U+NNNN. */
struct address_error {
    enum address_status status;
    size_t offset; /* where in the input the problem was found */
    char text[ADDRESS_ERROR_TEXT_SIZE];
};

/* A parsed address. All strbufs are NUL-terminated and, after a successful
 * parse, hold no NUL, CR, LF or other control byte. */
struct address {
    strbuf local_raw;  /* local part as written: "\"john smith\"" */
    strbuf local;      /* unquoted: quotes dropped, quoted-pairs resolved */
    strbuf domain_raw; /* domain as written, literal brackets included */
    strbuf domain;     /* canonical: ASCII lowercased; a literal is
                        * rewritten as "[1.2.3.4]" or "[IPv6:<inet_ntop>]" */
    bool is_null;           /* "<>": every string is empty */
    bool is_postmaster;     /* "<Postmaster>" without domain (any case) */
    bool had_source_route;  /* a "@a,@b:" route was given and dropped */
    bool domain_is_literal; /* "[...]" */
    int literal_family;     /* AF_INET or AF_INET6 for a literal, else 0 */
    bool needs_smtputf8;    /* non-ASCII in local part or domain */
    bool local_quoted;      /* local part was a quoted-string */
};

/* address_init/address_free: set up and release the strbufs. A struct may
 * be parsed into any number of times between the two. */
void address_init(struct address *a);
void address_free(struct address *a);
/* address_reset: back to the empty state (keeps the allocations). */
void address_reset(struct address *a);

/* address_parse_path: parses a complete RFC 5321 Path or Reverse-path,
 * s[0..n) being exactly the text from '<' to '>' inclusive. flags:
 * ADDRESS_ALLOW_NULL, ADDRESS_ALLOW_UTF8, ADDRESS_ALLOW_POSTMASTER.
 * Returns 0 and fills *a, or -1: *a is left reset and *err (which may be
 * NULL) says why. */
int address_parse_path(const char *s, size_t n, unsigned flags, struct address *a,
                       struct address_error *err);

/* address_parse_mailbox: parses a bare "local@domain" (no brackets, no
 * source route, no null address), as used in config files and aliases.
 * flags: ADDRESS_ALLOW_UTF8, ADDRESS_ALLOW_NO_DOMAIN. Same results as
 * address_parse_path. */
int address_parse_mailbox(const char *s, size_t n, unsigned flags, struct address *a,
                          struct address_error *err);

/* address_parse_mail_arg: splits the argument of MAIL or RCPT, i.e. what
 * follows "MAIL " or "RCPT ": "FROM:<path> [SP params]" for
 * ADDRESS_ROLE_SENDER, "TO:<path> [SP params]" for ADDRESS_ROLE_RECIPIENT
 * (keywords in any case). The role adds ADDRESS_ALLOW_NULL (sender) or
 * ADDRESS_ALLOW_POSTMASTER (recipient) to flags. ADDRESS_ALLOW_UTF8: for RCPT,
 * pass it when the transaction's MAIL had SMTPUTF8. For MAIL, SMTPUTF8 comes
 * in the parameters after the path, so pass it whenever the server offers
 * SMTPUTF8, then refuse with 553 5.6.7 when a->needs_smtputf8 is set and the
 * parameters hold no SMTPUTF8 (the path is still validated strictly).
 * Spaces after the colon and between '>' and the parameters are skipped.
 * On success *params_r and *params_len_r point into s at the ESMTP parameters
 * (possibly empty, trailing spaces included) for the caller to parse.
 * Returns 0 or -1 as address_parse_path; err->offset is relative to s. */
int address_parse_mail_arg(const char *s, size_t n, enum address_role role, unsigned flags,
                           struct address *a, const char **params_r, size_t *params_len_r,
                           struct address_error *err);

/* address_status_text: a generic description of a status (for when no
 * address_error is at hand); never NULL. */
const char *address_status_text(enum address_status st);

/* address_status_reply: the suggested SMTP reply code for a failed parse:
 * 553 for non-ASCII without SMTPUTF8 (RFC 6531 §3.7), 501 for every syntax
 * error (RFC 5321 §4.2.2, "501 Path too long" §4.5.3.1.10), 250 for
 * ADDRESS_OK. */
int address_status_reply(enum address_status st);

/* address_status_dsn: the suggested enhanced status code (RFC 3463/6531):
 * "5.6.7" for non-ASCII without SMTPUTF8, "5.5.4" for a malformed FROM:/TO:
 * keyword, otherwise "5.1.7" (sender) or "5.1.3" (recipient) for bad address
 * syntax; for ADDRESS_OK "2.1.0" (sender) or "2.1.5" (recipient). */
const char *address_status_dsn(enum address_status st, enum address_role role);

/* address_format: appends the canonical mailbox "local@domain" to out
 * (no brackets): the local part is written as a dot-atom when it is one and
 * as a quoted-string otherwise, with '"' and '\' escaped, so that
 * "\"john smith\"@x" comes back as written and parses to the same address;
 * the domain is the canonical (lowercased) one. A null address appends
 * nothing; a bare postmaster or a mailbox without domain appends the local
 * part only. */
void address_format(strbuf *out, const struct address *a);

/* address_format_path: as address_format, enclosed in "<" and ">" ("<>" for
 * the null address), as used in SMTP commands and log lines. */
void address_format_path(strbuf *out, const struct address *a);

/* address_text_has_unsafe_chars: true when s[0..n) holds anything but
 * letters, digits, non-ASCII UTF-8 bytes and ". _ + - = @", or begins with
 * '-'. This flags every shell metacharacter (; | & $ ` ( ) < > ' " \ * ? [ ]
 * { } ~ # ! ^ % and whitespace), newlines, controls, NUL and '/', so such text
 * is never handed to a shell, an expander or a file name unquoted. */
bool address_text_has_unsafe_chars(const char *s, size_t n);

/* address_has_unsafe_chars: address_text_has_unsafe_chars applied to the
 * unquoted local part and to the canonical domain. False for "<>". */
bool address_has_unsafe_chars(const struct address *a);

/* address_has_routing_chars: true when the unquoted local part contains
 * '%', '!' or '@' (the last possible only in a quoted local part): old
 * source-routing syntaxes ("user%host@relay", "host!user@relay") that a
 * relay must not act upon; smtpd refuses them for non-local domains. The
 * parser itself never treats them as routing. */
bool address_has_routing_chars(const struct address *a);

#endif
