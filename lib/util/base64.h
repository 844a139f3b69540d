/*
 * base64.h - RFC 4648 base64 (the standard alphabet, with padding), as SASL
 * (RFC 4954, RFC 4616) and MIME use it.
 *
 * The decoder is strict on purpose: SASL decoders are a classic attack
 * surface (BAD-INPUT.md row 4), and a lenient decoder lets two programs read
 * one string as two different credentials. It accepts only the canonical
 * encoding: the alphabet A-Z a-z 0-9 + /, a length that is a multiple of 4,
 * '=' padding only at the very end (one or two), and zero bits in the unused
 * low bits of the last character (so "QQ==" is accepted, "QR==" is not).
 * Whitespace, line breaks, NUL bytes and a missing padding are refused.
 * OpenSSL's EVP_DecodeBlock is not used because it ignores some of these and
 * returns padding as zero bytes.
 */
#ifndef PETREL_BASE64_H
#define PETREL_BASE64_H

#include <stddef.h>

#include "util/strbuf.h"

/* base64_encode: appends the base64 form of p[0..n) to out (with padding,
 * no line breaks). */
void base64_encode(strbuf *out, const void *p, size_t n);

/* base64_decode: decodes text[0..len) and appends the bytes to out (which
 * may then hold NUL bytes: the caller decides whether they are allowed).
 * Empty input decodes to nothing. Returns 0, or -1 with out unchanged and
 * one English line in err (may be NULL), e.g. "invalid base64 character
 * 0x20 at offset 4" or "base64 length 5 is not a multiple of 4". */
int base64_decode(strbuf *out, const char *text, size_t len, strbuf *err);

/* The decoded size of len base64 characters, at most (len / 4 * 3). */
size_t base64_decoded_max(size_t len);

#endif
