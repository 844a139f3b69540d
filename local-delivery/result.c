/*
 * result.c - small helpers shared by the local-delivery files: results
 * (status, DSN code, reason text safe for the deliver protocol) and copies
 * of user identities.
 */
#include "local.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void local_result_init(struct local_result *r)
{
    r->status = DELIVERY_SENT;
    strcpy(r->dsn, "2.0.0");
    strbuf_init(&r->reason);
}

void local_result_free(struct local_result *r)
{
    strbuf_free(&r->reason);
}

void local_result_set(struct local_result *r, enum delivery_status st, const char *dsn,
                      const char *fmt, ...)
{
    r->status = st;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    strbuf_reset(&r->reason);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&r->reason, fmt, ap);
    va_end(ap);
    /* The protocol refuses CR, LF and NUL; a reason may quote a command's
     * output or a file name, so every control byte becomes a space. */
    for (size_t i = 0; i < r->reason.len; i++) {
        unsigned char c = (unsigned char)r->reason.data[i];
        if (c < 0x20 || c == 0x7f)
            r->reason.data[i] = ' ';
    }
    if (r->reason.len > LOCAL_REASON_MAX) {
        /* Cut on a UTF-8 character boundary. */
        size_t cut = LOCAL_REASON_MAX;
        while (cut > 0 && ((unsigned char)r->reason.data[cut] & 0xC0) == 0x80)
            cut--;
        strbuf_truncate(&r->reason, cut);
        strbuf_appends(&r->reason, "...");
    }
}

void local_who_copy(struct local_who *dst, const struct local_who *src)
{
    dst->uid = src->uid;
    dst->gid = src->gid;
    dst->name = xstrdup(src->name ? src->name : "");
    dst->home = xstrdup(src->home ? src->home : "/");
}

void local_who_free(struct local_who *w)
{
    free(w->name);
    free(w->home);
    w->name = w->home = NULL;
}

void expansion_init(struct expansion *e)
{
    memset(e, 0, sizeof(*e));
    local_result_init(&e->fail);
}

void expansion_free(struct expansion *e)
{
    for (size_t i = 0; i < e->n; i++) {
        struct action *a = &e->acts[i];
        free(a->text);
        free(a->recipient);
        free(a->local);
        free(a->extension);
        free(a->domain);
        local_who_free(&a->who);
    }
    free(e->acts);
    local_result_free(&e->fail);
    memset(e, 0, sizeof(*e));
}
