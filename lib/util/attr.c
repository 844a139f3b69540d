/*
 * attr.c - the attribute list of an IPC record: building and looking up.
 *
 * The wire format and socket I/O live in attr_wire.c; this file knows
 * nothing about bytes on a socket. Values are stored NUL-terminated so that
 * text values can be used as C strings, with their exact length kept beside.
 */
#include "util/attr.h"
#include "util/attr_int.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct attr {
    char *name;
    char *value; /* NUL-terminated; may also hold NULs inside */
    size_t len;
};

struct attr_list {
    struct attr *v;
    size_t n;
    size_t cap;
};

const struct attr_limits attr_default_limits = {
    .max_attrs = ATTR_DEFAULT_MAX_ATTRS,
    .max_value = ATTR_DEFAULT_MAX_VALUE,
    .max_total = ATTR_DEFAULT_MAX_TOTAL,
};

struct attr_list *attr_list_new(void)
{
    return xcalloc(1, sizeof(struct attr_list));
}

void attr_list_clear(struct attr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].value);
    }
    l->n = 0;
}

void attr_list_free(struct attr_list **lp)
{
    struct attr_list *l = *lp;
    if (l == NULL)
        return;
    attr_list_clear(l);
    free(l->v);
    free(l);
    *lp = NULL;
}

bool attr_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > ATTR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static const struct attr *find(const struct attr_list *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i].name) == len && memcmp(l->v[i].name, name, len) == 0)
            return &l->v[i];
    return NULL;
}

void attr_list_append_raw(struct attr_list *l, const char *name, size_t name_len,
                          const void *p, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = xreallocarray(l->v, l->cap, sizeof(l->v[0]));
    }
    struct attr *a = &l->v[l->n++];
    a->name = xmemdup(name, name_len);
    a->value = xmemdup(p, n);
    a->len = n;
}

bool attr_list_has(const struct attr_list *l, const char *name, size_t name_len)
{
    return find(l, name, name_len) != NULL;
}

void attr_add_bytes(struct attr_list *l, const char *name, const void *p, size_t n)
{
    size_t nlen = strlen(name);
    if (!attr_name_valid(name, nlen))
        log_panic("attr: invalid attribute name \"%s\"", name);
    if (find(l, name, nlen) != NULL)
        log_panic("attr: attribute \"%s\" added twice", name);
    attr_list_append_raw(l, name, nlen, p, n);
}

void attr_add_str(struct attr_list *l, const char *name, const char *value)
{
    attr_add_bytes(l, name, value, strlen(value));
}

void attr_add_int(struct attr_list *l, const char *name, long long value)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", value);
    attr_add_bytes(l, name, buf, (size_t)n);
}

void attr_add_uint64(struct attr_list *l, const char *name, uint64_t value)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, value);
    attr_add_bytes(l, name, buf, (size_t)n);
}

size_t attr_count(const struct attr_list *l)
{
    return l->n;
}

const char *attr_name_at(const struct attr_list *l, size_t i)
{
    if (i >= l->n)
        log_panic("attr: index %zu out of range (%zu attributes)", i, l->n);
    return l->v[i].name;
}

const char *attr_value_at(const struct attr_list *l, size_t i, size_t *len_r)
{
    if (i >= l->n)
        log_panic("attr: index %zu out of range (%zu attributes)", i, l->n);
    if (len_r != NULL)
        *len_r = l->v[i].len;
    return l->v[i].value;
}

const char *attr_get_bytes(const struct attr_list *l, const char *name, size_t *len_r)
{
    const struct attr *a = find(l, name, strlen(name));
    if (a == NULL)
        return NULL;
    if (len_r != NULL)
        *len_r = a->len;
    return a->value;
}

const char *attr_get(const struct attr_list *l, const char *name)
{
    size_t len;
    const char *v = attr_get_bytes(l, name, &len);
    if (v == NULL || memchr(v, '\0', len) != NULL)
        return NULL;
    return v;
}

const char *attr_require(const struct attr_list *l, const char *name, strbuf *err)
{
    size_t len;
    const char *v = attr_get_bytes(l, name, &len);
    if (v == NULL) {
        strbuf_reset(err);
        strbuf_printf(err, "missing attribute \"%s\"", name);
        return NULL;
    }
    if (memchr(v, '\0', len) != NULL) {
        strbuf_reset(err);
        strbuf_printf(err, "attribute \"%s\" contains a NUL byte", name);
        return NULL;
    }
    return v;
}

/* Strict unsigned decimal: "0" or [1-9][0-9]*, no overflow. Returns false
 * on anything else. */
static bool parse_u64(const char *s, size_t len, uint64_t *v_r)
{
    if (len == 0 || (s[0] == '0' && len > 1))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *v_r = v;
    return true;
}

/* Shared front half of the integer getters: the value's text, or NULL with
 * *err set. The text is sanitized into error messages because it came from
 * a peer. */
static const char *int_text(const struct attr_list *l, const char *name, size_t *len_r,
                            strbuf *err)
{
    const char *v = attr_get_bytes(l, name, len_r);
    if (v == NULL) {
        strbuf_reset(err);
        strbuf_printf(err, "missing attribute \"%s\"", name);
    }
    return v;
}

static void bad_number(strbuf *err, const char *name, const char *v, size_t len,
                       const char *why)
{
    strbuf_reset(err);
    strbuf_printf(err, "attribute \"%s\": %s: \"", name, why);
    log_sanitize(err, v, len > 64 ? 64 : len);
    strbuf_appends(err, len > 64 ? "...\"" : "\"");
}

int attr_get_uint64(const struct attr_list *l, const char *name, uint64_t min, uint64_t max,
                    uint64_t *value_r, strbuf *err)
{
    size_t len;
    const char *v = int_text(l, name, &len, err);
    if (v == NULL)
        return -1;
    uint64_t u;
    if (!parse_u64(v, len, &u)) {
        bad_number(err, name, v, len, "not an unsigned decimal number");
        return -1;
    }
    if (u < min || u > max) {
        strbuf_reset(err);
        strbuf_printf(err, "attribute \"%s\": %" PRIu64 " is out of range %" PRIu64
                      "..%" PRIu64, name, u, min, max);
        return -1;
    }
    *value_r = u;
    return 0;
}

int attr_get_int(const struct attr_list *l, const char *name, long long min, long long max,
                 long long *value_r, strbuf *err)
{
    size_t len;
    const char *v = int_text(l, name, &len, err);
    if (v == NULL)
        return -1;
    bool neg = len > 0 && v[0] == '-';
    uint64_t u;
    if (!parse_u64(v + neg, len - neg, &u) || (neg && u == 0)) {
        bad_number(err, name, v, len, "not a decimal number");
        return -1;
    }
    long long s;
    if (neg) {
        if (u > (uint64_t)LLONG_MAX + 1)
            goto range;
        s = u == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(long long)u;
    } else {
        if (u > (uint64_t)LLONG_MAX)
            goto range;
        s = (long long)u;
    }
    if (s < min || s > max)
        goto range;
    *value_r = s;
    return 0;
range:
    bad_number(err, name, v, len, "number out of range");
    strbuf_printf(err, " (allowed %lld..%lld)", min, max);
    return -1;
}

int attr_expect_protocol(const struct attr_list *l, const char *name, strbuf *err)
{
    strbuf_reset(err);
    if (l->n == 0) {
        strbuf_printf(err, "empty record; expected protocol \"%s\"", name);
        return -1;
    }
    if (strcmp(l->v[0].name, ATTR_PROTOCOL) != 0) {
        strbuf_printf(err, "record starts with attribute \"%s\", not \"%s\" (expected protocol \"%s\")",
                      l->v[0].name, ATTR_PROTOCOL, name);
        return -1;
    }
    const struct attr *a = &l->v[0];
    if (a->len != strlen(name) || memcmp(a->value, name, a->len) != 0) {
        strbuf_appends(err, "peer speaks protocol \"");
        log_sanitize(err, a->value, a->len > 64 ? 64 : a->len);
        strbuf_printf(err, "\", expected \"%s\"", name);
        return -1;
    }
    return 0;
}

int attr_check_known(const struct attr_list *l, const char *const *known, strbuf *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *n = l->v[i].name;
        if (strcmp(n, ATTR_PROTOCOL) == 0)
            continue;
        bool ok = false;
        for (size_t k = 0; known[k] != NULL && !ok; k++)
            ok = strcmp(known[k], n) == 0;
        if (!ok) {
            strbuf_reset(err);
            strbuf_printf(err, "unknown attribute \"%s\"", n);
            return -1;
        }
    }
    return 0;
}
