/*
 * aliases.c - reading /etc/aliases and compiling it into a table, as
 * newaliases does; see aliases.h. Lines are read by map_source.c, targets
 * parsed by aliases_targets.c, the table written by map.c/map_hash.c.
 */
#include "mail/aliases.h"
#include "mail/address.h"
#include "mail/map.h"
#include "mail/map_source.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct read_ctx {
    const char *path;
    struct map_entries *e;
};

static void line_error(strbuf *err, const char *path, int line, const char *name, size_t nlen,
                       const char *msg)
{
    if (err == NULL)
        return;
    strbuf_printf(err, "%s:%d: ", path, line);
    if (name != NULL) {
        strbuf_appends(err, "alias '");
        map_source_quote_key(err, name, nlen);
        strbuf_appends(err, "': ");
    }
    strbuf_appends(err, msg);
    strbuf_appendc(err, '\n');
}

/* Finds the ':' that ends the name: the first one, or the first after a
 * quoted name. Returns its offset, or len when there is none. */
static size_t name_end(const char *s, size_t len)
{
    size_t i = 0;
    if (len > 0 && s[0] == '"') {
        for (i = 1; i < len && s[i] != '"'; i++) {
            if (s[i] == '\\')
                i++;
        }
    }
    while (i < len && s[i] != ':')
        i++;
    return i;
}

static int alias_line(const char *text, size_t len, int line, void *vctx, strbuf *err)
{
    struct read_ctx *c = vctx;
    size_t colon = name_end(text, len);
    if (colon == len) {
        line_error(err, c->path, line, NULL, 0,
                   "missing ':' after the alias name (expected: name: target, target, ...)");
        return 1;
    }
    size_t nlen = colon;
    while (nlen > 0 && (text[nlen - 1] == ' ' || text[nlen - 1] == '\t'))
        nlen--;
    if (nlen == 0) {
        line_error(err, c->path, line, NULL, 0, "empty alias name before ':'");
        return 1;
    }
    struct address a;
    struct address_error aerr;
    address_init(&a);
    strbuf msg;
    strbuf_init(&msg);
    int rc = 0;
    if (address_parse_mailbox(text, nlen, ADDRESS_ALLOW_NO_DOMAIN | ADDRESS_ALLOW_UTF8, &a,
                              &aerr) != 0) {
        strbuf_printf(&msg, "invalid alias name: %s", aerr.text);
        rc = 1;
    } else if (a.domain.len > 0) {
        strbuf_appends(&msg, "an alias name is a local user name, without '@domain' (use "
                             "virtual_alias_maps for full addresses)");
        rc = 1;
    }
    struct alias_target *list = NULL;
    size_t n = 0;
    if (rc == 0 &&
        aliases_parse_targets(text + colon + 1, len - colon - 1, &list, &n, &msg) != 0)
        rc = 1;
    if (rc != 0) {
        line_error(err, c->path, line, text, nlen, msg.data);
    } else {
        strbuf value;
        strbuf_init(&value);
        aliases_format_targets(&value, list, n);
        map_entries_add(c->e, a.local.data, a.local.len, value.data, value.len, line);
        strbuf_free(&value);
    }
    aliases_free_targets(list, n);
    strbuf_free(&msg);
    address_free(&a);
    return rc;
}

/* A name may be defined once: report every later definition. */
static int check_duplicates(struct map_entries *e, const char *path, strbuf *err)
{
    int errors = 0;
    map_entries_sort(e);
    for (size_t i = 1; i < e->n; i++) {
        const struct map_entry *prev = &e->v[i - 1], *cur = &e->v[i];
        if (prev->key_len != cur->key_len || memcmp(prev->key, cur->key, cur->key_len) != 0)
            continue;
        size_t first = i - 1;
        while (first > 0 && e->v[first - 1].key_len == cur->key_len &&
               memcmp(e->v[first - 1].key, cur->key, cur->key_len) == 0)
            first--;
        char where[64];
        snprintf(where, sizeof(where), "defined again (first defined at line %d)",
                 e->v[first].line);
        line_error(err, path, cur->line, cur->key, cur->key_len, where);
        errors++;
    }
    return errors;
}

static bool has_key(const struct map_entries *e, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < e->n; i++) {
        if (e->v[i].key_len == n && memcmp(e->v[i].key, key, n) == 0)
            return true;
    }
    return false;
}

int aliases_build(const char *source, const char *db_spec, strbuf *errors)
{
    struct map_entries e;
    map_entries_init(&e);
    struct read_ctx c = {.path = source, .e = &e};
    int n = map_source_read(source, 0, alias_line, &c, errors);
    if (n == 0)
        n = check_duplicates(&e, source, errors);
    if (n == 0 && !has_key(&e, "postmaster") && getpwnam("postmaster") == NULL)
        log_warning("%s: no alias for postmaster and no such user: RFC 5321 section 4.5.1 "
                    "requires that mail to postmaster is delivered (add e.g. "
                    "\"postmaster: root\")",
                    source);
    if (n == 0 && db_spec != NULL) {
        struct stat st;
        if (stat(source, &st) != 0) {
            if (errors != NULL)
                strbuf_printf(errors, "%s: cannot access: %s\n", source, strerror(errno));
            n = 1;
        } else {
            mode_t mode = (st.st_mode & S_IROTH) ? 0644 : (st.st_mode & 0666);
            if (map_build_entries(db_spec, source, &e, mode, st.st_uid, st.st_gid, errors) != 0)
                n = 1;
        }
    }
    map_entries_free(&e);
    return n;
}
