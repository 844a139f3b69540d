/*
 * config_validate.c - the whole-configuration check behind `petrel check`
 * (see config_validate() in config.h): unknown parameters, references to
 * parameters that do not exist, values that cannot be expanded, values that
 * are not valid for their type. Daemons read values through the same
 * expansion and parsers, so a configuration that passes here is one they
 * accept.
 */
#include "util/config.h"
#include "util/config_int.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* Marks every entry that e's value refers to; when report is true and the
 * value is set, reports names that refer to nothing. Syntax errors are left
 * to the expansion, which reports them with a reason. Returns the number of
 * reports. */
static int scan_refs(struct config *cfg, struct config_entry *e, bool report,
                     struct strbuf *errors)
{
    int nerr = 0;
    const char *p = config_entry_raw(e);
    while ((p = strchr(p, '$')) != NULL) {
        size_t skip, len;
        const char *name, *error;
        enum config_ref_kind kind = config_ref_parse(p, &skip, &name, &len, &error);
        if (kind == CONFIG_REF_ERROR)
            break;
        if (kind == CONFIG_REF_NAME) {
            struct config_entry *ref = config_find(cfg, name, len);
            if (ref != NULL) {
                ref->referenced = true;
            } else if (report && e->value != NULL) {
                int shown = len > CONFIG_MAX_NAME ? CONFIG_MAX_NAME : (int)len;
                config_report(errors, e, "refers to undefined parameter $%.*s%s", shown, name,
                              (size_t)shown < len ? "..." : "");
                nerr++;
            }
        }
        p += skip;
    }
    return nerr;
}

/* An entry with where it sits in the files, for sorting. */
struct located {
    struct config_entry *e;
    size_t file_rank; /* position of its file in load order; defaults last */
};

/* File order: set parameters by file and line, then the defaults by name. */
static int by_location(const void *pa, const void *pb)
{
    const struct located *a = pa, *b = pb;
    if (a->file_rank != b->file_rank)
        return a->file_rank < b->file_rank ? -1 : 1;
    if (a->e->line != b->e->line)
        return a->e->line < b->e->line ? -1 : 1;
    return strcmp(a->e->name, b->e->name);
}

int config_validate(struct config *cfg, struct strbuf *errors)
{
    int nerr = 0;
    for (size_t i = 0; i < cfg->n; i++)
        cfg->entries[i].referenced = false;
    for (size_t i = 0; i < cfg->n; i++)
        scan_refs(cfg, &cfg->entries[i], false, NULL);

    /* Report in the order of the file, as an administrator reads it. */
    struct located *order = xreallocarray(NULL, cfg->n + 1, sizeof(*order));
    for (size_t i = 0; i < cfg->n; i++) {
        struct config_entry *e = &cfg->entries[i];
        size_t rank = cfg->nfiles + (e->value != NULL ? 0 : 1); /* no file, then defaults */
        for (size_t k = 0; e->value != NULL && e->file != NULL && k < cfg->nfiles; k++)
            if (cfg->files[k] == e->file)
                rank = k;
        order[i] = (struct located){.e = e, .file_rank = rank};
    }
    qsort(order, cfg->n, sizeof(*order), by_location);

    strbuf msg;
    strbuf_init(&msg);
    for (size_t i = 0; i < cfg->n; i++) {
        struct config_entry *e = order[i].e;
        bool set = e->value != NULL;
        if (set && e->def == NULL && !e->referenced) {
            /* Most likely a typo; a helper that a value refers to as $name
             * is fine, as in Postfix. */
            if (errors != NULL) {
                config_location(errors, e);
                strbuf_appends(errors, "unknown parameter ");
                config_quote(errors, e->name);
                strbuf_appendc(errors, '\n');
            }
            nerr++;
        }
        nerr += scan_refs(cfg, e, true, errors);
        const char *value;
        strbuf_reset(&msg);
        if (config_expand(cfg, e, &value, &msg) < 0) {
            /* The defaults table has no loops or bad syntax, so a default
             * that fails to expand refers to a set value that fails itself
             * and is reported there: one mistake, one message. */
            if (set) {
                config_report(errors, e, "%s", msg.data);
                nerr++;
            }
            continue;
        }
        if (e->def != NULL && config_check_value(e, e->def->type, value, NULL, errors) < 0)
            nerr++;
    }
    strbuf_free(&msg);
    free(order);
    return nerr;
}
