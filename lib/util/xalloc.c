/*
 * xalloc.c - allocation wrappers that die cleanly instead of returning NULL.
 * See xalloc.h. Failure goes through log_fatal so it reaches the configured log.
 */
#include "util/xalloc.h"
#include "util/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        log_fatal("out of memory allocating %zu bytes", size);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        log_fatal("out of memory allocating %zu x %zu bytes", nmemb, size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        log_fatal("out of memory reallocating to %zu bytes", size);
    return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
    if (size != 0 && nmemb > SIZE_MAX / size)
        log_fatal("allocation size overflow: %zu x %zu", nmemb, size);
    return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    return xmemdup(s, strnlen(s, n));
}

void *xmemdup(const void *p, size_t n)
{
    if (n == SIZE_MAX)
        log_fatal("allocation size overflow");
    char *d = xmalloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}
