/*
 * config.c - the parameter store: entries sorted by name, set and default
 * values, lookups and listings (see config.h). Reading files is in
 * config_read.c, expansion in config_expand.c, typed values in
 * config_value.c and the whole-configuration check in config_validate.c.
 */
#include "util/config.h"
#include "util/config_int.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Messages quote at most this much of a value: enough to recognise it. */
#define QUOTE_MAX 80

bool config_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* Compares an entry name with name[0..len) in strcmp order. */
static int name_cmp(const char *entry_name, const char *name, size_t len)
{
    int c = strncmp(entry_name, name, len);
    if (c != 0)
        return c;
    return entry_name[len] == '\0' ? 0 : 1;
}

/* Binary search: the index of name, or where it would be inserted. */
static size_t find_pos(const struct config *cfg, const char *name, size_t len, bool *found_r)
{
    size_t lo = 0, hi = cfg->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(cfg->entries[mid].name, name, len);
        if (c == 0) {
            *found_r = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found_r = false;
    return lo;
}

struct config_entry *config_find(const struct config *cfg, const char *name, size_t len)
{
    bool found;
    size_t pos = find_pos(cfg, name, len, &found);
    return found ? &cfg->entries[pos] : NULL;
}

static struct config_entry *lookup(const struct config *cfg, const char *name)
{
    return name == NULL ? NULL : config_find(cfg, name, strlen(name));
}

/* The entry for name, created (unset, not in the table) if missing. */
static struct config_entry *find_or_add(struct config *cfg, const char *name)
{
    size_t len = strlen(name);
    bool found;
    size_t pos = find_pos(cfg, name, len, &found);
    if (found)
        return &cfg->entries[pos];
    if (cfg->n == cfg->cap) {
        cfg->cap = cfg->cap ? cfg->cap * 2 : 64;
        cfg->entries = xreallocarray(cfg->entries, cfg->cap, sizeof(*cfg->entries));
    }
    memmove(&cfg->entries[pos + 1], &cfg->entries[pos],
            (cfg->n - pos) * sizeof(*cfg->entries));
    cfg->n++;
    struct config_entry *e = &cfg->entries[pos];
    memset(e, 0, sizeof(*e));
    e->name = xstrndup(name, len);
    return e;
}

const char *config_entry_raw(const struct config_entry *e)
{
    if (e->value != NULL)
        return e->value;
    if (e->default_value != NULL)
        return e->default_value;
    return e->def != NULL && e->def->value != NULL ? e->def->value : "";
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > CONFIG_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!config_name_char(name[i]))
            return false;
    return true;
}

struct config *config_new(const struct config_def *defs)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->defs = defs;
    for (const struct config_def *d = defs; d != NULL && d->name != NULL; d++) {
        if (!valid_name(d->name))
            log_panic("config: invalid parameter name '%s' in the defaults table", d->name);
        struct config_entry *e = find_or_add(cfg, d->name);
        if (e->def != NULL)
            log_panic("config: parameter '%s' is twice in the defaults table", d->name);
        e->def = d;
    }
    return cfg;
}

void config_uncache(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].cache);
        cfg->entries[i].cache = NULL;
        cfg->entries[i].state = CONFIG_UNEXPANDED;
    }
}

void config_free(struct config **cfgp)
{
    struct config *cfg = *cfgp;
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        struct config_entry *e = &cfg->entries[i];
        free(e->name);
        free(e->value);
        free(e->default_value);
        free(e->cache);
    }
    free(cfg->entries);
    for (size_t i = 0; i < cfg->nfiles; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg);
    *cfgp = NULL;
}

/* A stable copy of a source file name, shared by all its settings. */
static const char *intern_file(struct config *cfg, const char *file)
{
    if (file == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nfiles; i++)
        if (strcmp(cfg->files[i], file) == 0)
            return cfg->files[i];
    cfg->files = xreallocarray(cfg->files, cfg->nfiles + 1, sizeof(*cfg->files));
    cfg->files[cfg->nfiles] = xstrdup(file);
    return cfg->files[cfg->nfiles++];
}

int config_set(struct config *cfg, const char *name, const char *value, const char *file,
               int line)
{
    if (name == NULL || !valid_name(name))
        return -1;
    struct config_entry *e = find_or_add(cfg, name);
    char *copy = xstrdup(value != NULL ? value : "");
    free(e->value);
    e->value = copy;
    e->file = intern_file(cfg, file);
    e->line = line;
    config_uncache(cfg);
    return 0;
}

int config_set_default(struct config *cfg, const char *name, const char *value)
{
    struct config_entry *e = lookup(cfg, name);
    if (e == NULL || e->def == NULL)
        return -1;
    char *copy = xstrdup(value != NULL ? value : "");
    free(e->default_value);
    e->default_value = copy;
    config_uncache(cfg);
    return 0;
}

void config_location(struct strbuf *out, const struct config_entry *e)
{
    if (e->value == NULL)
        strbuf_appends(out, "(default): ");
    else if (e->file != NULL && e->line > 0)
        strbuf_printf(out, "%s:%d: ", e->file, e->line);
    else if (e->file != NULL)
        strbuf_printf(out, "%s: ", e->file);
}

void config_report(struct strbuf *errors, const struct config_entry *e, const char *fmt, ...)
{
    if (errors == NULL)
        return;
    config_location(errors, e);
    strbuf_printf(errors, "parameter %s: ", e->name);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(errors, fmt, ap);
    va_end(ap);
    strbuf_appendc(errors, '\n');
}

void config_quote(struct strbuf *out, const char *s)
{
    size_t n = strlen(s);
    bool cut = n > QUOTE_MAX;
    if (cut) {
        n = QUOTE_MAX;
        /* Do not end inside a UTF-8 sequence. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    strbuf_appendc(out, '\'');
    log_sanitize(out, s, n);
    strbuf_appends(out, cut ? "...'" : "'");
}

/* "unknown parameter 'name'" for lookups of names nobody defined. */
static void report_unknown(struct strbuf *errors, const char *name)
{
    if (errors == NULL)
        return;
    strbuf_appends(errors, "unknown parameter ");
    config_quote(errors, name != NULL ? name : "(null)");
    strbuf_appendc(errors, '\n');
}

int config_get_str(struct config *cfg, const char *name, const char **value_r,
                   struct strbuf *errors)
{
    struct config_entry *e = lookup(cfg, name);
    if (e == NULL) {
        report_unknown(errors, name);
        return -1;
    }
    strbuf msg;
    strbuf_init(&msg);
    int rc = config_expand(cfg, e, value_r, &msg);
    if (rc < 0)
        config_report(errors, e, "%s", msg.data);
    strbuf_free(&msg);
    return rc;
}

const char *config_get(struct config *cfg, const char *name)
{
    const char *value;
    return config_get_str(cfg, name, &value, NULL) == 0 ? value : NULL;
}

const char *config_raw(const struct config *cfg, const char *name)
{
    struct config_entry *e = lookup(cfg, name);
    return e != NULL ? config_entry_raw(e) : NULL;
}

bool config_is_set(const struct config *cfg, const char *name)
{
    struct config_entry *e = lookup(cfg, name);
    return e != NULL && e->value != NULL;
}

const struct config_def *config_def_of(const struct config *cfg, const char *name)
{
    struct config_entry *e = lookup(cfg, name);
    return e != NULL ? e->def : NULL;
}

/* Shared by the typed getters: expand, then parse as type. */
static int get_typed(struct config *cfg, const char *name, enum config_type type, void *out,
                     struct strbuf *errors)
{
    const char *value;
    if (config_get_str(cfg, name, &value, errors) < 0)
        return -1;
    return config_check_value(lookup(cfg, name), type, value, out, errors);
}

int config_get_bool(struct config *cfg, const char *name, bool *value_r, struct strbuf *errors)
{
    return get_typed(cfg, name, CONFIG_BOOL, value_r, errors);
}

int config_get_int(struct config *cfg, const char *name, long long *value_r,
                   struct strbuf *errors)
{
    return get_typed(cfg, name, CONFIG_INT, value_r, errors);
}

int config_get_size(struct config *cfg, const char *name, long long *bytes_r,
                    struct strbuf *errors)
{
    return get_typed(cfg, name, CONFIG_SIZE, bytes_r, errors);
}

int config_get_time(struct config *cfg, const char *name, long long *seconds_r,
                    struct strbuf *errors)
{
    return get_typed(cfg, name, CONFIG_TIME, seconds_r, errors);
}

int config_get_list(struct config *cfg, const char *name, struct config_list *list_r,
                    struct strbuf *errors)
{
    const char *value;
    if (config_get_str(cfg, name, &value, errors) < 0)
        return -1;
    config_split_list(value, list_r);
    return 0;
}

int config_foreach(const struct config *cfg, bool set_only,
                   int (*fn)(const struct config_item *item, void *ctx), void *ctx)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const struct config_entry *e = &cfg->entries[i];
        if (set_only && e->value == NULL)
            continue;
        struct config_item item = {
            .name = e->name,
            .raw = config_entry_raw(e),
            .is_set = e->value != NULL,
            .file = e->value != NULL ? e->file : NULL,
            .line = e->value != NULL ? e->line : 0,
            .def = e->def,
        };
        int rc = fn(&item, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}
