/*
 * service_table.c - reads services.conf (see service_table.h for the format).
 *
 * The parser is strict: every column is checked here, once, so master never
 * starts with a half-understood table and `petrel check` reports exactly what
 * master would refuse.
 */
#include "mail/service_table.h"
#include "util/readfile.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TABLE_MAX_BYTES (1024 * 1024)
#define TABLE_MAX_SERVICES 256
#define TABLE_MAX_ENDPOINTS 16
#define TABLE_MIN_FIELDS 7

static int report(struct strbuf *errors, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int report(struct strbuf *errors, const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    strbuf_printf(errors, "%s:%d: ", path, line);
    va_start(ap, fmt);
    strbuf_vprintf(errors, fmt, ap);
    va_end(ap);
    strbuf_appendc(errors, '\n');
    return 1;
}

static bool valid_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
            *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

/* A safe relative path below the queue directory: no "..", no "//", not absolute. */
static bool valid_rel_path(const char *p)
{
    if (*p == '\0' || *p == '/' || strlen(p) > 100)
        return false;
    const char *seg = p;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*c == '\0')
                return true;
            seg = c + 1;
        } else if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            return false;
        }
    }
}

static bool parse_port(const char *s, int *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return false;
    long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

/* inet:PORT, inet:HOST:PORT, inet:[V6]:PORT; "inet:" may be left out. */
static const char *parse_endpoint(const char *text, struct service_endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->text = xstrdup(text);
    if (strncmp(text, "unix:", 5) == 0) {
        ep->kind = ENDPOINT_UNIX;
        if (!valid_rel_path(text + 5))
            return "UNIX socket path must be relative to queue_directory, without '..'";
        ep->path = xstrdup(text + 5);
        return NULL;
    }
    ep->kind = ENDPOINT_INET;
    if (strncmp(text, "inet:", 5) == 0)
        text += 5;
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return "expected inet:[IPv6-address]:port";
        char *host = xstrndup(text + 1, (size_t)(close - text - 1));
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            free(host);
            return "invalid IPv6 address";
        }
        ep->host = host;
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon != NULL) {
            char *host = xstrndup(text, (size_t)(colon - text));
            struct in_addr a4;
            if (strcmp(host, "*") == 0) {
                free(host);
                host = NULL;
            } else if (inet_pton(AF_INET, host, &a4) != 1) {
                free(host);
                return "invalid IPv4 address (write IPv6 addresses in brackets)";
            }
            ep->host = host;
        }
    }
    if (!parse_port(colon ? colon + 1 : text, &ep->port))
        return "invalid port (expected a number from 1 to 65535)";
    return NULL;
}

static void endpoint_free(struct service_endpoint *ep)
{
    free(ep->text);
    free(ep->host);
    free(ep->path);
}

void service_def_free(struct service_def *d)
{
    free(d->name);
    for (int i = 0; i < d->nendpoints; i++)
        endpoint_free(&d->endpoints[i]);
    free(d->endpoints);
    free(d->user);
    free(d->chroot);
    free(d->command);
    for (int i = 0; i < d->nargs; i++)
        free(d->args[i]);
    free(d->args);
    memset(d, 0, sizeof(*d));
}

/* Equal (exact) or overlapping (a wildcard host overlaps every address on
 * the same port) endpoints. */
static bool endpoints_match(const struct service_endpoint *a, const struct service_endpoint *b,
                            bool wildcard_overlaps)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == ENDPOINT_UNIX)
        return strcmp(a->path, b->path) == 0;
    if (a->port != b->port)
        return false;
    if (a->host == NULL || b->host == NULL)
        return wildcard_overlaps || a->host == b->host;
    return strcmp(a->host, b->host) == 0;
}

bool service_endpoint_equal(const struct service_endpoint *a, const struct service_endpoint *b)
{
    return endpoints_match(a, b, false);
}

static bool same_endpoint(const struct service_endpoint *a, const struct service_endpoint *b)
{
    return endpoints_match(a, b, true);
}

/* Splits a logical line into whitespace-separated fields (pointers into it). */
static int split_fields(char *s, char ***fields_r)
{
    int n = 0, cap = 16;
    char **f = xreallocarray(NULL, (size_t)cap, sizeof(*f));
    char *save = NULL;
    for (char *tok = strtok_r(s, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n + 1 >= cap) {
            cap *= 2;
            f = xreallocarray(f, (size_t)cap, sizeof(*f));
        }
        f[n++] = tok;
    }
    f[n] = NULL;
    *fields_r = f;
    return n;
}

static int parse_line(const char *path, int lineno, char *text, struct service_table *t,
                      struct strbuf *errors)
{
    char **f;
    int n = split_fields(text, &f);
    int nerr = 0;
    struct service_def d;
    memset(&d, 0, sizeof(d));
    d.line = lineno;
    if (n < TABLE_MIN_FIELDS) {
        nerr += report(errors, path, lineno,
                       "expected at least %d columns (name type listen user chroot limit "
                       "command), found %d",
                       TABLE_MIN_FIELDS, n);
        goto out;
    }
    if (!valid_name(f[0]))
        nerr += report(errors, path, lineno, "invalid service name \"%s\"", f[0]);
    else if (service_table_find(t, f[0]))
        nerr += report(errors, path, lineno, "service \"%s\" is defined twice", f[0]);
    d.name = xstrdup(f[0]);

    if (strcmp(f[1], "accept") == 0)
        d.kind = SERVICE_ACCEPT;
    else if (strcmp(f[1], "daemon") == 0)
        d.kind = SERVICE_DAEMON;
    else
        nerr += report(errors, path, lineno,
                       "service %s: unknown type \"%s\" (expected accept or daemon)", d.name,
                       f[1]);

    if (strcmp(f[2], "-") != 0) {
        char *save = NULL;
        char *copy = xstrdup(f[2]);
        for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
            if (d.nendpoints == TABLE_MAX_ENDPOINTS) {
                nerr += report(errors, path, lineno, "service %s: more than %d listen endpoints",
                               d.name, TABLE_MAX_ENDPOINTS);
                break;
            }
            d.endpoints = xreallocarray(d.endpoints, (size_t)d.nendpoints + 1, sizeof(*d.endpoints));
            const char *why = parse_endpoint(e, &d.endpoints[d.nendpoints]);
            d.nendpoints++;
            if (why)
                nerr += report(errors, path, lineno, "service %s: listen \"%s\": %s", d.name, e, why);
        }
        free(copy);
    }
    if (d.kind == SERVICE_ACCEPT && d.nendpoints == 0 && strcmp(f[1], "accept") == 0)
        nerr += report(errors, path, lineno, "service %s: type accept needs a listen endpoint",
                       d.name);
    for (int i = 0; i < d.nendpoints; i++)
        for (int s = 0; s < t->nservices; s++)
            for (int j = 0; j < t->services[s].nendpoints; j++)
                if (d.endpoints[i].text && t->services[s].endpoints[j].text &&
                    same_endpoint(&d.endpoints[i], &t->services[s].endpoints[j]))
                    nerr += report(errors, path, lineno,
                                   "service %s: listen \"%s\" overlaps service %s (line %d)",
                                   d.name, d.endpoints[i].text, t->services[s].name,
                                   t->services[s].line);

    if (strcmp(f[3], "-") != 0) {
        if (!valid_name(f[3]))
            nerr += report(errors, path, lineno, "service %s: invalid user name \"%s\"", d.name,
                           f[3]);
        d.user = xstrdup(f[3]);
    }
    if (strcmp(f[4], "-") != 0) {
        if (f[4][0] != '/')
            nerr += report(errors, path, lineno,
                           "service %s: chroot \"%s\" must be an absolute path", d.name, f[4]);
        d.chroot = xstrdup(f[4]);
    }
    if (strcmp(f[5], "-") != 0) {
        char *end;
        errno = 0;
        long v = strtol(f[5], &end, 10);
        if (errno || *end || end == f[5] || v < 1 || v > 10000)
            nerr += report(errors, path, lineno,
                           "service %s: invalid process limit \"%s\" (expected 1..10000 or -)",
                           d.name, f[5]);
        else
            d.limit = (int)v;
    }
    if (d.kind == SERVICE_DAEMON && d.limit > 1)
        nerr += report(errors, path, lineno,
                       "service %s: a daemon service runs exactly one process (limit %d)", d.name,
                       d.limit);
    if (!valid_name(f[6]))
        nerr += report(errors, path, lineno,
                       "service %s: invalid command \"%s\" (a program name in daemon_directory)",
                       d.name, f[6]);
    d.command = xstrdup(f[6]);
    d.nargs = n - TABLE_MIN_FIELDS;
    d.args = xcalloc((size_t)d.nargs + 1, sizeof(char *));
    for (int i = 0; i < d.nargs; i++)
        d.args[i] = xstrdup(f[TABLE_MIN_FIELDS + i]);
    for (int i = 0; i < d.nargs; i++) {
        if (strcmp(d.args[i], "-o") != 0)
            continue;
        const char *kv = d.args[i + 1];
        if (kv == NULL || strchr(kv, '=') == NULL || kv[0] == '=')
            nerr += report(errors, path, lineno, "service %s: -o needs name=value", d.name);
        i++;
    }
    if (t->nservices >= TABLE_MAX_SERVICES) {
        nerr += report(errors, path, lineno, "more than %d services", TABLE_MAX_SERVICES);
        goto out;
    }
    t->services = xreallocarray(t->services, (size_t)t->nservices + 1, sizeof(*t->services));
    t->services[t->nservices++] = d;
    free(f);
    return nerr;
out:
    service_def_free(&d);
    free(f);
    return nerr;
}

int service_table_parse(const char *path, const char *text, unsigned long len,
                        struct service_table *t, struct strbuf *errors)
{
    memset(t, 0, sizeof(*t));
    t->path = xstrdup(path);
    int nerr = 0;
    strbuf logical;
    strbuf_init(&logical);
    int logical_line = 0;
    int lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        lineno++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (memchr(start, '\0', n)) {
            nerr += report(errors, path, lineno, "NUL byte in line");
            continue;
        }
        size_t i = 0;
        while (i < n && (start[i] == ' ' || start[i] == '\t'))
            i++;
        if (i == n || start[i] == '#')
            continue;
        if (i > 0 && logical_line) {
            strbuf_appendc(&logical, ' ');
            strbuf_append(&logical, start + i, n - i);
            continue;
        }
        if (i > 0) {
            nerr += report(errors, path, lineno,
                           "continuation line (starts with whitespace) with nothing to continue");
            continue;
        }
        if (logical_line)
            nerr += parse_line(path, logical_line, logical.data, t, errors);
        strbuf_set(&logical, start, n);
        logical_line = lineno;
    }
    if (logical_line)
        nerr += parse_line(path, logical_line, logical.data, t, errors);
    strbuf_free(&logical);
    return nerr;
}

int service_table_load(const char *path, struct service_table *t, struct strbuf *errors)
{
    memset(t, 0, sizeof(*t));
    strbuf buf;
    strbuf_init(&buf);
    if (read_file_limited(path, TABLE_MAX_BYTES, &buf, errors) < 0) {
        strbuf_appendc(errors, '\n');
        strbuf_free(&buf);
        t->path = xstrdup(path);
        return 1;
    }
    int nerr = service_table_parse(path, buf.data, buf.len, t, errors);
    strbuf_free(&buf);
    return nerr;
}

void service_table_free(struct service_table *t)
{
    for (int i = 0; i < t->nservices; i++)
        service_def_free(&t->services[i]);
    free(t->services);
    free(t->path);
    memset(t, 0, sizeof(*t));
}

const struct service_def *service_table_find(const struct service_table *t, const char *name)
{
    for (int i = 0; i < t->nservices; i++)
        if (strcmp(t->services[i].name, name) == 0)
            return &t->services[i];
    return NULL;
}

const char *service_override(const struct service_def *def, const char *name)
{
    size_t n = strlen(name);
    const char *found = NULL;
    for (int i = 0; i + 1 < def->nargs; i++)
        if (strcmp(def->args[i], "-o") == 0) {
            const char *kv = def->args[++i];
            if (strncmp(kv, name, n) == 0 && kv[n] == '=')
                found = kv + n + 1;
        }
    return found;
}
