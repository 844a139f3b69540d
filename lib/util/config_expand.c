/*
 * config_expand.c - $name expansion of parameter values at lookup time.
 *
 * `$name`, `${name}` and `$(name)` are replaced by the expanded value of
 * name; `$$` is a literal `$`. A name that is neither set nor in the table
 * expands to nothing (config_validate reports it). Every other use of `$`
 * is an error, so a typo never silently becomes text.
 *
 * Each entry is expanded once and cached; the entries on the current chain
 * are marked, so meeting one of them again is a loop and is reported with
 * the whole chain ("a -> b -> a"). Depth and result size are capped so that
 * a hostile file cannot make a lookup run away.
 */
#include "util/config.h"
#include "util/config_int.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

enum config_ref_kind config_ref_parse(const char *s, size_t *skip_r, const char **name_r,
                                      size_t *len_r, const char **error_r)
{
    const char *p = s + 1;
    if (*p == '$') {
        *skip_r = 2;
        return CONFIG_REF_DOLLAR;
    }
    char close = *p == '{' ? '}' : *p == '(' ? ')' : '\0';
    if (close != '\0')
        p++;
    const char *name = p;
    while (config_name_char(*p))
        p++;
    size_t len = (size_t)(p - name);
    if (close == '\0') {
        if (len == 0) {
            *skip_r = 1;
            *error_r = "'$' must be followed by a parameter name, '{name}' or '(name)'; "
                       "write '$$' for a literal '$'";
            return CONFIG_REF_ERROR;
        }
    } else {
        if (*p != close) {
            *skip_r = (size_t)(p - s);
            if (close == '}')
                *error_r = strchr(p, '}') == NULL
                               ? "unterminated '${': missing '}'"
                               : "'${' must hold only a parameter name (letters, digits, '_') "
                                 "before '}'";
            else
                *error_r = strchr(p, ')') == NULL
                               ? "unterminated '$(': missing ')'"
                               : "'$(' must hold only a parameter name (letters, digits, '_') "
                                 "before ')'";
            return CONFIG_REF_ERROR;
        }
        if (len == 0) {
            *skip_r = (size_t)(p + 1 - s);
            *error_r = close == '}' ? "empty parameter name in '${}'"
                                    : "empty parameter name in '$()'";
            return CONFIG_REF_ERROR;
        }
        p++;
    }
    *skip_r = (size_t)(p - s);
    *name_r = name;
    *len_r = len;
    return CONFIG_REF_NAME;
}

struct expansion {
    struct config *cfg;
    struct config_entry *stack[CONFIG_MAX_DEPTH + 1];
    int depth;
    struct strbuf *msg;
};

/* "a -> b -> ... -> last" from the current chain. */
static void append_chain(struct expansion *x, const char *last)
{
    for (int i = 0; i < x->depth; i++) {
        strbuf_appends(x->msg, x->stack[i]->name);
        strbuf_appends(x->msg, " -> ");
    }
    strbuf_appends(x->msg, last);
}

static int too_long(struct expansion *x)
{
    strbuf_printf(x->msg, "value is longer than %d bytes after $name expansion (chain: ",
                  CONFIG_MAX_VALUE);
    append_chain(x, "...)");
    return -1;
}

static int expand_entry(struct expansion *x, struct config_entry *e, const char **value_r);

/* Expands raw into out, recursing into the entries it names. */
static int expand_text(struct expansion *x, const char *raw, strbuf *out)
{
    const char *p = raw;
    while (*p != '\0') {
        const char *dollar = strchr(p, '$');
        size_t lit = dollar != NULL ? (size_t)(dollar - p) : strlen(p);
        if (lit > CONFIG_MAX_VALUE - out->len)
            return too_long(x);
        strbuf_append(out, p, lit);
        if (dollar == NULL)
            break;
        size_t skip, len;
        const char *name, *error;
        switch (config_ref_parse(dollar, &skip, &name, &len, &error)) {
        case CONFIG_REF_DOLLAR:
            if (out->len >= CONFIG_MAX_VALUE)
                return too_long(x);
            strbuf_appendc(out, '$');
            break;
        case CONFIG_REF_ERROR:
            /* Say whose value is wrong when it is not the one looked up. */
            if (x->depth > 1)
                strbuf_printf(x->msg, "in the value of %s: ", x->stack[x->depth - 1]->name);
            strbuf_appends(x->msg, error);
            return -1;
        case CONFIG_REF_NAME: {
            struct config_entry *ref = config_find(x->cfg, name, len);
            if (ref == NULL)
                break; /* undefined: empty, reported by config_validate */
            const char *value;
            if (expand_entry(x, ref, &value) < 0)
                return -1;
            size_t vlen = strlen(value);
            if (vlen > CONFIG_MAX_VALUE - out->len)
                return too_long(x);
            strbuf_append(out, value, vlen);
            break;
        }
        }
        p = dollar + skip;
    }
    return 0;
}

static int expand_entry(struct expansion *x, struct config_entry *e, const char **value_r)
{
    if (e->state == CONFIG_EXPANDED) {
        *value_r = e->cache;
        return 0;
    }
    if (e->state == CONFIG_EXPANDING) {
        strbuf_appends(x->msg, "expansion loop: ");
        append_chain(x, e->name);
        return -1;
    }
    if (x->depth == CONFIG_MAX_DEPTH) {
        strbuf_printf(x->msg, "$name references nested more than %d levels deep: ",
                      CONFIG_MAX_DEPTH);
        append_chain(x, e->name);
        return -1;
    }
    const char *raw = config_entry_raw(e);
    if (strchr(raw, '$') == NULL && strlen(raw) <= CONFIG_MAX_VALUE) {
        /* The common case: nothing to expand. */
        e->cache = xstrdup(raw);
        e->state = CONFIG_EXPANDED;
        *value_r = e->cache;
        return 0;
    }
    x->stack[x->depth++] = e;
    e->state = CONFIG_EXPANDING;
    strbuf out;
    strbuf_init(&out);
    int rc = expand_text(x, raw, &out);
    x->depth--;
    if (rc < 0) {
        /* Failures are not cached: the chain in the message depends on where
         * the lookup started. */
        e->state = CONFIG_UNEXPANDED;
        strbuf_free(&out);
        return -1;
    }
    e->cache = strbuf_detach(&out, NULL);
    e->state = CONFIG_EXPANDED;
    *value_r = e->cache;
    return 0;
}

int config_expand(struct config *cfg, struct config_entry *e, const char **value_r,
                  struct strbuf *msg)
{
    struct expansion x = {.cfg = cfg, .depth = 0, .msg = msg};
    return expand_entry(&x, e, value_r);
}
