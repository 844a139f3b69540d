/*
 * header.h - the header section of an RFC 5322 message: scanning its fields,
 * parsing address lists (From/To/Cc/Bcc...) and making a Message-ID.
 *
 * Users: the sendmail CLI ("sendmail -t" takes recipients from To/Cc/Bcc,
 * drops Bcc, adds a missing From/Date/Message-ID), submission (checks on
 * From:) and bounces (quoting the original headers). header.c scans the
 * header block; header_addr.c parses address lists. Dates come from
 * rfc5322_date() in mail/received.h.
 *
 * Choices made where the RFCs leave room (RFC 5322 §2.2, §3.4, §4):
 * - Lines may end in CRLF or in a bare LF (sendmail input uses LF). A CR not
 *   followed by LF inside a field is refused, as is a NUL byte: both have
 *   been used to smuggle one header past one parser and not another.
 * - The header section ends at the first empty line. As in Postfix, a line
 *   that is neither a field ("name:") nor a continuation ends it too, and
 *   that line is the first line of the body (there is then no empty line
 *   between header and body; a writer must add one).
 * - A message whose first line starts with a space or tab (a continuation
 *   with no field before it) is refused as malformed, as OpenSMTPD 7.5 does
 *   (BAD-INPUT row 6): different readers disagree on what such a line means.
 * - A field name is 1 or more printable ASCII characters other than ':'; the
 *   obsolete form with spaces or tabs before the colon (RFC 5322 §4.5.8,
 *   "Subject :") is accepted, the whitespace is not part of the name.
 * - A line of only spaces/tabs after a field continues that field
 *   (obsolete folding, RFC 5322 §4.2), it does not end the header section.
 * - Unfolding follows RFC 5322 §2.2.3 to the letter: a line end (CRLF or LF)
 *   followed by a space or tab is removed and the space or tab is kept, so
 *   "a\r\n\tb" unfolds to "a\tb". The value is then trimmed of leading and
 *   trailing spaces and tabs. 8-bit bytes (RFC 6532 UTF-8) are kept as they
 *   are; the value is not checked for UTF-8 here.
 * - Limits against resource exhaustion (BAD-INPUT row 6): one field may span
 *   at most HEADER_FIELD_MAX bytes of input (name, folding and line end
 *   included, so its unfolded value is smaller), the header section at most
 *   HEADER_SECTION_MAX bytes. Beyond either the scan fails; the work done is
 *   linear in the bytes scanned, never more.
 */
#ifndef PETREL_HEADER_H
#define PETREL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

#define HEADER_FIELD_MAX (1024u * 1024u)          /* bytes of input per field */
#define HEADER_SECTION_MAX (10u * 1024u * 1024u)  /* bytes of the header section */
#define HEADER_ADDRESSES_MAX 10000u               /* addresses in one list */
#define HEADER_COMMENT_DEPTH_MAX 64u              /* nesting of "(...)" comments */

/* One field of the header section. name points into the message; value is
 * a copy, unfolded and trimmed. All offsets are into the message. */
struct header_field {
    const char *name;   /* not NUL-terminated: use name_len */
    size_t name_len;
    size_t start, end;  /* [start, end): the whole field, folded lines and
                         * the final line end included; dropping this range
                         * removes the field and leaves a valid header */
    size_t raw_value_start, raw_value_end; /* the value as written: after the
                         * colon, up to but excluding the final line end */
    strbuf value;       /* unfolded and trimmed; may hold 8-bit bytes */
};

/* header_field_init/header_field_free: set up and release the value strbuf.
 * A field may be filled by header_next/header_find any number of times. */
void header_field_init(struct header_field *f);
void header_field_free(struct header_field *f);

/* header_next: reads the field that starts at msg[*pos] (start with
 * *pos = 0). Returns 1 and fills *f, moving *pos to the next field; returns
 * 0 at the end of the header section (an empty line, a line that is not a
 * field, or the end of the message), with *pos left at the end of the last
 * field, which is where a new field can be inserted; returns -1 when the
 * header is malformed or over a limit, with a message for the administrator
 * in *err (which may be NULL) and *pos unchanged. *f is undefined unless 1
 * is returned. */
int header_next(const char *msg, size_t len, size_t *pos, struct header_field *f,
                strbuf *err);

/* header_section_end: scans the whole header section. On success returns 0,
 * with *fields_end_r (may be NULL) at the end of the last field, where new
 * fields can be inserted, and *body_r (may be NULL) at the start of the body:
 * after the empty line, or at the first non-field line (then *body_r ==
 * *fields_end_r and there was no empty line), or len when the message has
 * no body. Returns -1 as header_next does. */
int header_section_end(const char *msg, size_t len, size_t *fields_end_r, size_t *body_r,
                       strbuf *err);

/* header_name_is: true when the field's name equals name, ignoring ASCII
 * case ("from" matches "From"). */
bool header_name_is(const struct header_field *f, const char *name);

/* header_find: the first field called name (ASCII case ignored). Returns 1
 * and fills *f, 0 when there is none, -1 when the header is malformed (as
 * header_next). */
int header_find(const char *msg, size_t len, const char *name, struct header_field *f,
                strbuf *err);

/* One mailbox of an address list. */
struct header_address {
    strbuf addr;         /* the mailbox as an envelope address, canonical as
                          * address_format() writes it: "bob@example.org",
                          * "\"john smith\"@example.org", or "bob" when
                          * has_domain is false */
    strbuf display_name; /* the phrase before "<...>", quotes removed and
                          * quoted-pairs resolved, words joined by single
                          * spaces; RFC 2047 encoded-words are left as they
                          * are. Empty when there is none. Not checked for
                          * UTF-8 (old mail has raw Latin-1 names): see
                          * name_utf8_valid. */
    bool has_domain;     /* false for a bare local part ("bob", "<bob>"):
                          * sendmail appends @$myorigin */
    bool in_group;       /* member of a group "name: a, b;" */
    bool had_route;      /* an obsolete route "<@a,@b:x@y>" was dropped */
    bool needs_smtputf8; /* non-ASCII in the address */
    bool name_utf8_valid; /* display_name is well-formed UTF-8 (or ASCII) */
};

/* header_parse_addresses: parses an (unfolded) address-list or mailbox-list
 * field value, value[0..len), into a new array *list_r of *n_r entries, to
 * be freed with header_addresses_free(). Accepted: "a@b", "Name <a@b>",
 * "\"Quoted, Name\" <a@b>", comments "(...)" wherever whitespace may be,
 * nested up to HEADER_COMMENT_DEPTH_MAX, groups "team: a@b, c@d;" (members
 * returned, name dropped) including empty ones ("undisclosed-recipients:;",
 * ";" missing at the end tolerated), empty list elements ("a@b, , c@d"),
 * routes "<@x,@y:a@b>" (dropped), bare local parts "bob", non-ASCII
 * (RFC 6532). Each address is checked with address_parse_mailbox()
 * (ADDRESS_ALLOW_NO_DOMAIN, and ADDRESS_ALLOW_UTF8 when non-ASCII). An empty
 * value (or only commas and comments) gives 0 addresses.
 * Returns 0, or -1 with *list_r = NULL, *n_r = 0 and, in *err (may be NULL),
 * one line naming the bad element and why, e.g.
 * 'address 2 ("a@"): the domain after "@" is missing'; more than
 * HEADER_ADDRESSES_MAX addresses is an error too. Never reads past len. */
int header_parse_addresses(const char *value, size_t len, struct header_address **list_r,
                           size_t *n_r, strbuf *err);

/* header_addresses_free: frees a list from header_parse_addresses and NULLs
 * *list. */
void header_addresses_free(struct header_address **list, size_t n);

/* header_make_message_id: appends "<YYYYMMDDhhmmss.RANDOM@domain>" (UTC
 * time; RANDOM is 16 characters [0-9A-V] from getrandom(), 80 bits) to out.
 * domain (normally $myhostname) must be a plain host name: letters, digits,
 * '-', '.', or UTF-8 non-ASCII, at most 255 bytes. Returns 0, or -1 with out
 * unchanged when the domain is unusable. When getrandom() fails, the random
 * part is mixed from the clock, pid and a counter, which stays unique. */
int header_make_message_id(strbuf *out, const char *domain);

#endif
