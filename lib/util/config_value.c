/*
 * config_value.c - typed parameter values: booleans, integers, sizes with
 * k/M/G, times with s/m/h/d/w, lists. The getters in config.c and
 * config_validate() both check values here, so `petrel check` accepts
 * exactly what the daemons accept.
 */
#include "util/config.h"
#include "util/config_int.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool config_parse_bool(const char *s, bool *value_r)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *value_r = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *value_r = false;
            return true;
        }
    }
    return false;
}

/* Leading digits of s as a non-negative number; *end_r after them. False
 * when there are none or the number overflows. */
static bool parse_digits(const char *s, long long *value_r, const char **end_r)
{
    long long v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v > (LLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (p == s)
        return false;
    *value_r = v;
    *end_r = p;
    return true;
}

bool config_parse_int(const char *s, long long *value_r)
{
    bool negative = *s == '-';
    long long v;
    const char *end;
    if (!parse_digits(s + negative, &v, &end) || *end != '\0')
        return false;
    *value_r = negative ? -v : v;
    return true;
}

/* A number followed by at most one unit letter from units, whose factors
 * are in factors; no letter means factor 1. */
static bool parse_scaled(const char *s, const char *units, const long long *factors,
                         long long *value_r)
{
    long long v;
    const char *end;
    if (!parse_digits(s, &v, &end))
        return false;
    long long factor = 1;
    if (*end != '\0') {
        const char *u = strchr(units, *end);
        if (u == NULL || end[1] != '\0')
            return false;
        factor = factors[u - units];
    }
    if (v > LLONG_MAX / factor)
        return false;
    *value_r = v * factor;
    return true;
}

bool config_parse_size(const char *s, long long *bytes_r)
{
    static const long long factors[] = {1024LL, 1024LL, 1024LL * 1024, 1024LL * 1024,
                                        1024LL * 1024 * 1024, 1024LL * 1024 * 1024};
    return parse_scaled(s, "kKmMgG", factors, bytes_r);
}

bool config_parse_time(const char *s, long long *seconds_r)
{
    static const long long factors[] = {1, 1, 60, 60, 3600, 3600,
                                        86400, 86400, 604800, 604800};
    return parse_scaled(s, "sSmMhHdDwW", factors, seconds_r);
}

void config_split_list(const char *s, struct config_list *list_r)
{
    size_t cap = 4;
    list_r->items = xreallocarray(NULL, cap, sizeof(*list_r->items));
    list_r->count = 0;
    const char *seps = ", \t\r\n";
    for (const char *p = s + strspn(s, seps); *p != '\0'; p += strspn(p, seps)) {
        size_t n = strcspn(p, seps);
        if (list_r->count + 1 >= cap) {
            cap *= 2;
            list_r->items = xreallocarray(list_r->items, cap, sizeof(*list_r->items));
        }
        list_r->items[list_r->count++] = xstrndup(p, n);
        p += n;
    }
    list_r->items[list_r->count] = NULL;
}

void config_list_free(struct config_list *list)
{
    if (list->items != NULL)
        for (size_t i = 0; i < list->count; i++)
            free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* What each numeric type accepts, for messages. */
static const char *type_word(enum config_type type)
{
    switch (type) {
    case CONFIG_BOOL:
        return "boolean";
    case CONFIG_INT:
        return "integer";
    case CONFIG_SIZE:
        return "size";
    case CONFIG_TIME:
        return "time";
    default:
        return "string";
    }
}

static const char *type_hint(enum config_type type)
{
    switch (type) {
    case CONFIG_BOOL:
        return "expected yes or no (also true/false, on/off, 1/0)";
    case CONFIG_INT:
        return "expected a whole number";
    case CONFIG_SIZE:
        return "expected a number of bytes, optionally followed by k, M or G (1k = 1024)";
    case CONFIG_TIME:
        return "expected a number of seconds, optionally followed by s, m, h, d or w";
    default:
        return "";
    }
}

/* The message text when value differs from what was written. */
static void bad_value(const struct config_entry *e, enum config_type type, const char *value,
                      const char *problem, struct strbuf *errors)
{
    if (errors == NULL)
        return;
    strbuf q;
    strbuf_init(&q);
    config_quote(&q, value);
    const char *raw = config_entry_raw(e);
    if (strcmp(raw, value) != 0) {
        strbuf_appends(&q, " (from ");
        config_quote(&q, raw);
        strbuf_appendc(&q, ')');
    }
    if (problem == NULL)
        config_report(errors, e, "invalid %s value %s (%s)", type_word(type), q.data,
                      type_hint(type));
    else
        config_report(errors, e, "%s value %s %s", type_word(type), q.data, problem);
    strbuf_free(&q);
}

int config_check_value(const struct config_entry *e, enum config_type type, const char *value,
                       void *out, struct strbuf *errors)
{
    long long v = 0;
    bool ok;
    switch (type) {
    case CONFIG_STRING:
    case CONFIG_LIST:
        return 0;
    case CONFIG_BOOL: {
        bool b;
        if (!config_parse_bool(value, &b)) {
            bad_value(e, type, value, NULL, errors);
            return -1;
        }
        if (out != NULL)
            *(bool *)out = b;
        return 0;
    }
    case CONFIG_INT:
        ok = config_parse_int(value, &v);
        break;
    case CONFIG_SIZE:
        ok = config_parse_size(value, &v);
        break;
    case CONFIG_TIME:
        ok = config_parse_time(value, &v);
        break;
    default:
        return 0;
    }
    if (!ok) {
        bad_value(e, type, value, NULL, errors);
        return -1;
    }
    /* Without a table entry: any integer, and sizes and times are never
     * negative because the parsers accept no sign. */
    long long min = e->def != NULL ? e->def->min : LLONG_MIN;
    long long max = e->def != NULL && e->def->max != 0 ? e->def->max : LLONG_MAX;
    if (v < min || v > max) {
        char problem[128];
        const char *unit = type == CONFIG_SIZE ? " bytes" : type == CONFIG_TIME ? "s" : "";
        if (max == LLONG_MAX)
            snprintf(problem, sizeof(problem), "is out of range (at least %lld%s)", min, unit);
        else
            snprintf(problem, sizeof(problem), "is out of range (%lld to %lld%s)", min, max,
                     unit);
        bad_value(e, type, value, problem, errors);
        return -1;
    }
    if (out != NULL)
        *(long long *)out = v;
    return 0;
}
