/*
 * xalloc.h - memory allocation that never returns NULL to the caller.
 *
 * Every allocation in Petrel goes through these wrappers: on exhaustion (or a
 * size computation that would overflow) the process logs a fatal error and
 * exits, so no call site has to remember a NULL check. Daemons are restarted
 * by master; a half-handled allocation failure is worse than a clean exit.
 */
#ifndef PETREL_XALLOC_H
#define PETREL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* xreallocarray: realloc for nmemb*size with an overflow check. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xmemdup: copy of n bytes plus a terminating NUL (so text can be used as a C string). */
void *xmemdup(const void *p, size_t n);

#endif
