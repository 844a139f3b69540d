/*
 * xtext.h - the xtext encoding of RFC 3461 §4 (ENVID, ORCPT, MAIL AUTH=).
 *
 * xtext carries any octet as "+HH" (two upper-case hex digits); other
 * characters are printable ASCII except '+', '=' and space. The SMTP server
 * decodes with xtext_decode(), which refuses what could reach queue metadata
 * as a line break or terminal control (BAD-INPUT row 3: "+0A" injection);
 * the SMTP client encodes with xtext_encode() when relaying DSN parameters.
 */
#ifndef PETREL_SMTP_XTEXT_H
#define PETREL_SMTP_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

/* xtext_decode: decodes s[0..n) into out (replacing its contents). Fails
 * (returns -1, *why_r a static English phrase) on a character outside xtext,
 * a '+' not followed by two hex digits (lower case is accepted), a decoded
 * control byte (C0, DEL; NUL, CR and LF included), decoded non-ASCII that is
 * not well-formed UTF-8 or holds a C1 control, or a decoded value longer than
 * max octets (0: no limit). Returns 0 on success. */
int xtext_decode(const char *s, size_t n, size_t max, strbuf *out, const char **why_r);

/* xtext_encode: appends the xtext form of s[0..n) to out; '+', '=', space,
 * controls and non-ASCII become "+HH". */
void xtext_encode(strbuf *out, const char *s, size_t n);

#endif
