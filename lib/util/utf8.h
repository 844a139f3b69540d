/*
 * utf8.h - strict UTF-8 validation and decoding.
 *
 * Mail text that may carry non-ASCII (SMTPUTF8 addresses, RFC 6531/6532
 * headers, IMAP UTF8=ACCEPT, config files) must be well-formed UTF-8 as
 * RFC 3629 defines it: no overlong forms, no UTF-16 surrogates (U+D800..
 * U+DFFF), nothing above U+10FFFF, no stray continuation bytes and no
 * truncated sequences. These functions take a pointer and a length, so NUL
 * bytes are seen (they are valid UTF-8: rejecting control characters is the
 * caller's decision, since only the caller knows the context).
 */
#ifndef PETREL_UTF8_H
#define PETREL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest UTF-8 sequence, in bytes. */
#define UTF8_MAX_SEQ 4

/* utf8_decode: decodes the one character that starts at s, where n bytes are
 * available. Returns its length (1..4) and stores the code point in *cp_r
 * (cp_r may be NULL), or returns 0 (*cp_r untouched) when the bytes at s do
 * not start a complete, well-formed sequence, including when n == 0. */
size_t utf8_decode(const void *s, size_t n, uint32_t *cp_r);

/* utf8_invalid_at: the offset of the first byte of s[0..n) that does not
 * belong to a well-formed sequence, or n when all of it is valid. */
size_t utf8_invalid_at(const void *s, size_t n);

/* utf8_valid: true when s[0..n) is entirely well-formed UTF-8. */
bool utf8_valid(const void *s, size_t n);

/* utf8_is_c1: true for the C1 control characters U+0080..U+009F, which are
 * as unwelcome as C0 controls in any text Petrel takes from outside. */
bool utf8_is_c1(uint32_t cp);

#endif
