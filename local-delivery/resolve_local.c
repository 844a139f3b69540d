/*
 * resolve_local.c - what a local recipient expands to: aliases
 * (alias_maps) first, then the user's ~/.forward, then the user's mailbox;
 * alias and .forward targets recursively (addresses in local domains are
 * expanded again, other domains are forwarded, /files, |commands and
 * :include: files as allowed by allow_mail_to_files/_commands).
 *
 * Rules:
 *  - keys are the local part lowercased; "user+ext" is looked up as is,
 *    then as "user" (recipient_delimiter); users are looked up without the
 *    extension;
 *  - an address met again on its own expansion path is not expanded the
 *    same way twice: "bob: bob, alice" delivers to bob's mailbox (or his
 *    .forward), a .forward naming its owner ("\bob" or "bob") means the
 *    mailbox; "\user" always means the mailbox, without aliases or
 *    .forward;
 *  - at most LOCAL_MAX_DEPTH levels and LOCAL_MAX_NODES addresses; a
 *    Delivered-To: header naming an address being expanded is a mail loop
 *    (5.4.6);
 *  - a table that cannot be read defers the recipient (4.3.0), never
 *    bounces it; an unknown user bounces (5.1.1); a user with uid 0 gets
 *    no delivery and no .forward: "mail for root must be aliased";
 *  - .forward and include files are read in a child running as the user
 *    whose rights apply (child.c; forward_read checks owner and mode), and
 *    an unsafe .forward is ignored with a warning (the mail goes to the
 *    mailbox), as sendmail and Postfix do;
 *  - targets from aliases (and includes read from them) run as
 *    default_privs, targets from a .forward as its owner.
 * Identical final destinations reached twice are delivered once.
 */
#include "local.h"
#include "mail/address.h"
#include "mail/aliases.h"
#include "mail/forward.h"
#include "mail/map.h"
#include "mail/resolve.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct path_node {
    char *key;          /* lowercased local part with extension */
    bool did_alias, did_forward;
};

struct expander {
    struct local_settings *s;
    const struct local_message *m;
    struct expansion *e;
    struct path_node path[LOCAL_MAX_DEPTH + 2];
    int npath;
    bool have_privs;    /* default_privs looked up */
    struct local_who privs;
};

/* Keeps the worst failure: deferred over bounced; the first of a kind. */
static void fail(struct expander *x, enum delivery_status st, const char *dsn, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
static void fail(struct expander *x, enum delivery_status st, const char *dsn, const char *fmt,
                 ...)
{
    struct expansion *e = x->e;
    if (e->failed && (e->fail.status == DELIVERY_DEFERRED || st == DELIVERY_BOUNCED))
        return;
    strbuf text;
    strbuf_init(&text);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&text, fmt, ap);
    va_end(ap);
    local_result_set(&e->fail, st, dsn, "%s", text.data);
    e->failed = true;
    strbuf_free(&text);
}

static char *lower(const char *s)
{
    char *r = xstrdup(s);
    for (char *p = r; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return r;
}

/* Splits "user+ext" (lowercased) into base and extension. */
static void split_ext(struct local_settings *s, const char *local, strbuf *base, strbuf *ext)
{
    strbuf_reset(ext);
    if (resolver_strip_extension(s->resolver, local, base))
        strbuf_sets(ext, local + base->len + 1);
}

static void add_action(struct expander *x, enum action_kind kind, const char *text,
                       const struct local_who *who, const char *recipient, const char *local,
                       const char *domain, enum local_origin origin)
{
    struct expansion *e = x->e;
    for (size_t i = 0; i < e->n; i++) {
        const struct action *a = &e->acts[i];
        if (a->kind == kind && strcmp(a->text, text) == 0 &&
            (kind == ACT_REMOTE || a->who.uid == who->uid))
            return; /* the same destination, reached twice */
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4;
        e->acts = xreallocarray(e->acts, e->cap, sizeof(e->acts[0]));
    }
    struct action *a = &e->acts[e->n++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->text = xstrdup(text);
    local_who_copy(&a->who, who);
    a->recipient = xstrdup(recipient);
    a->domain = xstrdup(domain);
    a->origin = origin;
    strbuf base, ext;
    strbuf_init(&base);
    strbuf_init(&ext);
    split_ext(x->s, local, &base, &ext);
    a->local = strbuf_detach(&base, NULL);
    a->extension = strbuf_detach(&ext, NULL);
}

static const char *origin_name(enum local_origin o)
{
    return o == ORIGIN_ALIAS ? "aliases" : o == ORIGIN_FORWARD ? ".forward files"
                                                               : ":include: files";
}

/* ---- reading .forward and include files as a user ---- */

struct read_job {
    const char *path;
    uid_t owner;
};

static void read_as_user(void *arg, struct local_result *res, strbuf *data)
{
    const struct read_job *j = arg;
    strbuf err;
    strbuf_init(&err);
    switch (forward_read(j->path, j->owner, data, &err)) {
    case FORWARD_READ_OK:
        local_result_set(res, DELIVERY_SENT, "2.0.0", "read");
        break;
    case FORWARD_READ_ABSENT:
        local_result_set(res, DELIVERY_SENT, "2.0.0", "absent");
        break;
    case FORWARD_READ_UNSAFE:
        local_result_set(res, DELIVERY_BOUNCED, "5.7.1", "%s", err.data);
        break;
    default:
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "%s", err.data);
        break;
    }
    strbuf_free(&err);
}

/* 1 = text in out, 0 = absent, 2 = unsafe (why set), -1 = error (why). */
static int read_file_as(struct expander *x, const struct local_who *who, const char *path,
                        strbuf *out, strbuf *why)
{
    struct read_job j = {path, who->uid};
    struct local_result res;
    local_result_init(&res);
    local_run_as(who, 60, read_as_user, &j, &res, out);
    int rc;
    if (res.status == DELIVERY_SENT)
        rc = strcmp(res.reason.data, "read") == 0 ? 1 : 0;
    else
        rc = res.status == DELIVERY_BOUNCED ? 2 : -1;
    if (rc == 2 || rc == -1)
        strbuf_set(why, res.reason.data, res.reason.len);
    local_result_free(&res);
    (void)x;
    return rc;
}

/* ---- expansion ---- */

static void expand_local(struct expander *x, const char *local, const char *domain,
                         bool skip_alias, bool skip_forward);

static void expand_targets(struct expander *x, const struct alias_target *t, size_t n,
                           enum local_origin origin, const struct local_who *who,
                           const char *addr, const char *local, const char *domain);

static bool get_default_privs(struct expander *x)
{
    if (x->have_privs)
        return true;
    struct priv_user pu;
    strbuf err;
    strbuf_init(&err);
    enum priv_lookup lk = privilege_lookup_user(x->s->default_privs, &pu, &err);
    if (lk != PRIV_LOOKUP_FOUND) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "default_privs: %s", err.data);
    } else if (pu.uid == 0) {
        fail(x, DELIVERY_DEFERRED, "4.3.0",
             "default_privs user %s has uid 0: commands and files in aliases are never run "
             "as root",
             pu.name);
    } else {
        struct local_who w = {pu.uid, pu.gid, pu.name, pu.home};
        local_who_copy(&x->privs, &w);
        x->have_privs = true;
    }
    privilege_user_free(&pu);
    strbuf_free(&err);
    return x->have_privs;
}

static void expand_include(struct expander *x, const char *path, const struct local_who *who,
                           enum local_origin parent, const char *addr, const char *local,
                           const char *domain)
{
    (void)parent;
    if (x->e->depth >= LOCAL_MAX_DEPTH) {
        fail(x, DELIVERY_BOUNCED, "5.4.6",
             "mail forwarding loop: expansion of %s deeper than %d levels at :include:%s", addr,
             LOCAL_MAX_DEPTH, path);
        return;
    }
    strbuf text, why;
    strbuf_init(&text);
    strbuf_init(&why);
    int rc = read_file_as(x, who, path, &text, &why);
    if (rc == 0) {
        fail(x, DELIVERY_BOUNCED, "5.3.0", "include file %s (for %s) does not exist", path, addr);
    } else if (rc == 2) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "include file for %s refused: %s", addr, why.data);
    } else if (rc < 0) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "include file for %s: %s", addr, why.data);
    } else {
        struct alias_target *t;
        size_t n;
        strbuf_reset(&why);
        if (forward_parse(text.data, text.len, &t, &n, &why) < 0) {
            fail(x, DELIVERY_DEFERRED, "4.3.0", "include file %s: %s", path, why.data);
        } else {
            x->e->depth++;
            expand_targets(x, t, n, ORIGIN_INCLUDE, who, addr, local, domain);
            x->e->depth--;
            aliases_free_targets(t, n);
        }
    }
    strbuf_free(&text);
    strbuf_free(&why);
}

static void expand_targets(struct expander *x, const struct alias_target *t, size_t n,
                           enum local_origin origin, const struct local_who *who,
                           const char *addr, const char *local, const char *domain)
{
    for (size_t i = 0; i < n; i++) {
        if (x->e->failed && x->e->fail.status == DELIVERY_DEFERRED)
            return; /* the recipient will be retried as a whole */
        switch (t[i].type) {
        case ALIAS_TARGET_ADDRESS: {
            struct address a;
            struct address_error aerr;
            address_init(&a);
            if (address_parse_mailbox(t[i].text, strlen(t[i].text),
                                      ADDRESS_ALLOW_UTF8 | ADDRESS_ALLOW_NO_DOMAIN, &a,
                                      &aerr) < 0) {
                fail(x, DELIVERY_BOUNCED, "5.1.3", "invalid address in %s for %s: %s",
                     origin_name(origin), addr, aerr.text);
            } else {
                const char *dom = a.domain.len ? a.domain.data : domain;
                if (resolver_class(x->s->resolver, dom) == RESOLVE_LOCAL) {
                    char *l = lower(a.local.data);
                    expand_local(x, l, dom, t[i].no_expand, t[i].no_expand);
                    free(l);
                } else {
                    strbuf full;
                    strbuf_init(&full);
                    address_format(&full, &a);
                    add_action(x, ACT_REMOTE, full.data, who, addr, local, domain, origin);
                    strbuf_free(&full);
                }
            }
            address_free(&a);
            break;
        }
        case ALIAS_TARGET_FILE:
            if (!(x->s->files_allowed & origin))
                fail(x, DELIVERY_BOUNCED, "5.7.1",
                     "mail to files is not allowed in %s (allow_mail_to_files): %s for %s",
                     origin_name(origin), t[i].text, addr);
            else
                add_action(x, ACT_FILE, t[i].text, who, addr, local, domain, origin);
            break;
        case ALIAS_TARGET_COMMAND:
            if (!(x->s->commands_allowed & origin))
                fail(x, DELIVERY_BOUNCED, "5.7.1",
                     "mail to commands is not allowed in %s (allow_mail_to_commands): for %s",
                     origin_name(origin), addr);
            else
                add_action(x, ACT_COMMAND, t[i].text, who, addr, local, domain, origin);
            break;
        case ALIAS_TARGET_INCLUDE:
            expand_include(x, t[i].text, who, origin, addr, local, domain);
            break;
        }
    }
}

/* 1 = alias found and expanded, 0 = no alias, -1 = failure recorded. */
static int try_alias(struct expander *x, const char *local, const char *base, bool has_ext,
                     const char *addr, const char *domain)
{
    if (x->s->aliases == NULL) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "%s", x->s->alias_error.data);
        return -1;
    }
    strbuf value, err;
    strbuf_init(&value);
    strbuf_init(&err);
    enum map_status st = map_list_lookup(x->s->aliases, local, strlen(local), &value, &err);
    if (st == MAP_NOTFOUND && has_ext)
        st = map_list_lookup(x->s->aliases, base, strlen(base), &value, &err);
    int rc = 0;
    if (st == MAP_ERROR) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "alias lookup for %s failed: %s", addr, err.data);
        rc = -1;
    } else if (st == MAP_FOUND) {
        struct alias_target *t;
        size_t n;
        if (aliases_parse_targets(value.data, value.len, &t, &n, &err) < 0) {
            fail(x, DELIVERY_DEFERRED, "4.3.0", "alias %s has an invalid value: %s", local,
                 err.data);
            rc = -1;
        } else if (get_default_privs(x)) {
            x->path[x->npath - 1].did_alias = true;
            expand_targets(x, t, n, ORIGIN_ALIAS, &x->privs, addr, local, domain);
            aliases_free_targets(t, n);
            rc = 1;
        } else {
            aliases_free_targets(t, n);
            rc = -1;
        }
    }
    strbuf_free(&value);
    strbuf_free(&err);
    return rc;
}

/* 1 = .forward expanded, 0 = none (deliver to the mailbox), -1 = failure. */
static int try_forward(struct expander *x, const struct local_who *user, const char *addr,
                       const char *local, const char *domain)
{
    strbuf path, text, why;
    strbuf_init(&path);
    strbuf_init(&text);
    strbuf_init(&why);
    strbuf_printf(&path, "%s/.forward", strcmp(user->home, "/") == 0 ? "" : user->home);
    /* Most users have no .forward. When root cannot see one, the user
     * cannot either (they see less, never more): no child is forked to
     * find that out. Only the existence is looked at as root, never the
     * file's content. */
    struct stat st;
    int rc;
    if (lstat(path.data, &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
        rc = 0;
    else
        rc = read_file_as(x, user, path.data, &text, &why);
    int result = 0;
    if (rc == 2) {
        log_warning("%s: %s (mail for %s goes to the mailbox)", x->m->id, why.data, addr);
    } else if (rc < 0) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "cannot read .forward of %s: %s", user->name,
             why.data);
        result = -1;
    } else if (rc == 1) {
        struct alias_target *t;
        size_t n;
        strbuf_reset(&why);
        if (forward_parse(text.data, text.len, &t, &n, &why) < 0) {
            log_warning("%s: %s: %s: ignored (mail for %s goes to the mailbox)", x->m->id,
                        path.data, why.data, addr);
        } else if (n > 0) {
            x->path[x->npath - 1].did_forward = true;
            expand_targets(x, t, n, ORIGIN_FORWARD, user, addr, local, domain);
            aliases_free_targets(t, n);
            result = 1;
        }
    }
    strbuf_free(&path);
    strbuf_free(&text);
    strbuf_free(&why);
    return result;
}

static void expand_local(struct expander *x, const char *local, const char *domain,
                         bool skip_alias, bool skip_forward)
{
    struct expansion *e = x->e;
    strbuf addr, base, ext;
    strbuf_init(&addr);
    strbuf_init(&base);
    strbuf_init(&ext);
    strbuf_printf(&addr, "%s@%s", local, domain);
    if (++e->nodes > LOCAL_MAX_NODES) {
        fail(x, DELIVERY_BOUNCED, "5.4.6", "alias expansion exceeds %d addresses at %s",
             LOCAL_MAX_NODES, addr.data);
        goto out;
    }
    if (x->npath >= LOCAL_MAX_DEPTH || e->depth >= LOCAL_MAX_DEPTH) {
        fail(x, DELIVERY_BOUNCED, "5.4.6",
             "mail forwarding loop: alias/.forward expansion deeper than %d levels at %s",
             LOCAL_MAX_DEPTH, addr.data);
        goto out;
    }
    if (local_message_delivered_to(x->m, addr.data)) {
        fail(x, DELIVERY_BOUNCED, "5.4.6", "mail forwarding loop for %s", addr.data);
        goto out;
    }
    bool revisited = false;
    for (int i = 0; i < x->npath; i++) {
        if (strcmp(x->path[i].key, local) == 0) {
            skip_alias = skip_alias || x->path[i].did_alias;
            skip_forward = skip_forward || x->path[i].did_forward;
            revisited = true;
        }
    }
    x->path[x->npath].key = xstrdup(local);
    x->path[x->npath].did_alias = x->path[x->npath].did_forward = false;
    x->npath++;
    e->depth++;

    bool has_ext = resolver_strip_extension(x->s->resolver, local, &base);
    if (has_ext)
        strbuf_sets(&ext, local + base.len + 1);
    if (!skip_alias && try_alias(x, local, base.data, has_ext, addr.data, domain) != 0)
        goto pop;

    struct priv_user pu;
    strbuf err;
    strbuf_init(&err);
    enum priv_lookup lk = privilege_lookup_user(base.data, &pu, &err);
    if (lk == PRIV_LOOKUP_ERROR) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "user lookup for %s failed: %s", addr.data,
             err.data);
    } else if (lk == PRIV_LOOKUP_NOTFOUND) {
        if (revisited)
            fail(x, DELIVERY_BOUNCED, "5.4.6",
                 "mail forwarding loop: alias %s refers back to itself and \"%s\" is not a user",
                 local, base.data);
        else
            fail(x, DELIVERY_BOUNCED, "5.1.1", "unknown user: \"%s\"", base.data);
    } else if (pu.uid == 0) {
        fail(x, DELIVERY_DEFERRED, "4.3.0",
             "mail for %s must be aliased to a user: add %s: <user> to /etc/aliases", pu.name,
             pu.name);
    } else {
        struct local_who user = {pu.uid, pu.gid, pu.name, pu.home};
        int rc = skip_forward ? 0 : try_forward(x, &user, addr.data, local, domain);
        if (rc == 0)
            add_action(x, ACT_MAILBOX, pu.name, &user, addr.data, local, domain, 0);
    }
    privilege_user_free(&pu);
    strbuf_free(&err);
pop:
    e->depth--;
    x->npath--;
    free(x->path[x->npath].key);
out:
    strbuf_free(&addr);
    strbuf_free(&base);
    strbuf_free(&ext);
}

/* ---- virtual domains ---- */

/* Looks key, then key without extension, then "@domain" up in ml.
 * 1 found (value set), 0 not found, -1 error (failure recorded). */
static int lookup_virtual(struct expander *x, struct map_list *ml, const char *param,
                          const char *local, const char *domain, strbuf *value)
{
    if (ml == NULL) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "%s", x->s->virtual_error.data);
        return -1;
    }
    if (map_list_count(ml) == 0)
        return 0;
    strbuf base, ext, key, err;
    strbuf_init(&base);
    strbuf_init(&ext);
    strbuf_init(&key);
    strbuf_init(&err);
    split_ext(x->s, local, &base, &ext);
    enum map_status st;
    strbuf_printf(&key, "%s@%s", local, domain);
    st = map_list_lookup(ml, key.data, key.len, value, &err);
    if (st == MAP_NOTFOUND && ext.len) {
        strbuf_reset(&key);
        strbuf_printf(&key, "%s@%s", base.data, domain);
        st = map_list_lookup(ml, key.data, key.len, value, &err);
    }
    if (st == MAP_NOTFOUND) {
        strbuf_reset(&key);
        strbuf_printf(&key, "@%s", domain);
        st = map_list_lookup(ml, key.data, key.len, value, &err);
    }
    int rc = st == MAP_FOUND ? 1 : st == MAP_NOTFOUND ? 0 : -1;
    if (rc < 0)
        fail(x, DELIVERY_DEFERRED, "4.3.0", "%s lookup for %s@%s failed: %s", param, local, domain,
             err.data);
    strbuf_free(&base);
    strbuf_free(&ext);
    strbuf_free(&key);
    strbuf_free(&err);
    return rc;
}

/* A virtual alias: its value lists addresses only (no files, commands or
 * includes: virtual tables are not trusted with those). */
static void expand_virtual_alias(struct expander *x, const char *value, const char *addr,
                                 const char *local, const char *domain)
{
    struct alias_target *t;
    size_t n;
    strbuf why;
    strbuf_init(&why);
    if (aliases_parse_targets(value, strlen(value), &t, &n, &why) < 0) {
        fail(x, DELIVERY_DEFERRED, "4.3.0", "virtual_alias_maps entry for %s: %s", addr, why.data);
        strbuf_free(&why);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (t[i].type != ALIAS_TARGET_ADDRESS) {
            fail(x, DELIVERY_BOUNCED, "5.7.1",
                 "virtual_alias_maps entry for %s names a file, command or include; only "
                 "addresses are allowed there",
                 addr);
            aliases_free_targets(t, n);
            strbuf_free(&why);
            return;
        }
    /* Addresses are resolved like alias targets: local ones expanded here,
     * others (virtual mailboxes included) forwarded through the queue. */
    struct local_who nobody = {0};
    if (!get_default_privs(x)) {
        aliases_free_targets(t, n);
        strbuf_free(&why);
        return;
    }
    nobody = x->privs;
    expand_targets(x, t, n, ORIGIN_ALIAS, &nobody, addr, local, domain);
    aliases_free_targets(t, n);
    strbuf_free(&why);
}

/* A mailbox path from virtual_mailbox_maps: relative, no "..", no control
 * characters; the result is virtual_mailbox_base/path. */
static bool safe_relative(const char *p)
{
    if (*p == '\0' || *p == '/')
        return false;
    const char *seg = p;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*c == '\0')
                return true;
            seg = c + 1;
        } else if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            return false;
        }
    }
}

static void expand_virtual_mailbox(struct expander *x, const char *local, const char *domain)
{
    strbuf addr, value;
    strbuf_init(&addr);
    strbuf_init(&value);
    strbuf_printf(&addr, "%s@%s", local, domain);
    int rc = lookup_virtual(x, x->s->virtual_mailbox, "virtual_mailbox_maps", local, domain, &value);
    if (rc == 0) {
        fail(x, DELIVERY_BOUNCED, "5.1.1", "unknown user: \"%s\" in virtual mailbox domain %s",
             local, domain);
    } else if (rc > 0) {
        strbuf_rtrim(&value);
        if (!safe_relative(value.data) || x->s->virtual_base[0] != '/') {
            fail(x, DELIVERY_DEFERRED, "4.3.0",
                 "virtual mailbox of %s: '%s' must be a relative path without '..' under an "
                 "absolute virtual_mailbox_base",
                 addr.data, value.data);
        } else {
            struct priv_user pu;
            strbuf err;
            strbuf_init(&err);
            if (privilege_lookup_user(x->s->store_owner, &pu, &err) != PRIV_LOOKUP_FOUND) {
                fail(x, DELIVERY_DEFERRED, "4.3.0", "mail_store_owner: %s", err.data);
            } else if (pu.uid == 0) {
                fail(x, DELIVERY_DEFERRED, "4.3.0",
                     "mail_store_owner %s has uid 0: virtual mailboxes are never written as root",
                     pu.name);
            } else {
                strbuf path;
                strbuf_init(&path);
                strbuf_printf(&path, "%s/%s", x->s->virtual_base, value.data);
                struct local_who owner = {pu.uid, pu.gid, pu.name, x->s->virtual_base};
                add_action(x, ACT_VIRTUAL, path.data, &owner, addr.data, local, domain, 0);
                strbuf_free(&path);
            }
            privilege_user_free(&pu);
            strbuf_free(&err);
        }
    }
    strbuf_free(&addr);
    strbuf_free(&value);
}

void local_expand(struct local_settings *s, const struct local_message *m, const char *address,
                  struct expansion *e)
{
    struct expander x;
    memset(&x, 0, sizeof(x));
    x.s = s;
    x.m = m;
    x.e = e;
    struct address a;
    struct address_error aerr;
    address_init(&a);
    if (address_parse_mailbox(address, strlen(address),
                              ADDRESS_ALLOW_UTF8 | ADDRESS_ALLOW_NO_DOMAIN, &a, &aerr) < 0) {
        fail(&x, DELIVERY_BOUNCED, "5.1.3", "invalid recipient address: %s", aerr.text);
        address_free(&a);
        return;
    }
    const char *domain = a.domain.len ? a.domain.data : s->myhostname;
    enum resolve_class c = resolver_class(s->resolver, domain);
    char *l = lower(a.local.data);
    strbuf valias;
    strbuf_init(&valias);
    /* virtual_alias_maps rewrite an address of any of our domains first
     * (smtpd accepted the recipient because of it). */
    int va = (c == RESOLVE_LOCAL || c == RESOLVE_VIRTUAL || a.domain.len == 0)
                 ? lookup_virtual(&x, s->virtual_alias, "virtual_alias_maps", l, domain, &valias)
                 : 0;
    if (va < 0) {
        /* failure recorded */
    } else if (va > 0) {
        strbuf full;
        strbuf_init(&full);
        strbuf_printf(&full, "%s@%s", l, domain);
        expand_virtual_alias(&x, valias.data, full.data, l, domain);
        strbuf_free(&full);
    } else if (a.domain.len == 0 || c == RESOLVE_LOCAL) {
        expand_local(&x, l, domain, false, false);
    } else if (c == RESOLVE_VIRTUAL) {
        expand_virtual_mailbox(&x, l, domain);
    } else {
        fail(&x, DELIVERY_DEFERRED, "4.3.0",
             "%s is not a local domain (mydestination); qmgr should not route it here", domain);
    }
    free(l);
    strbuf_free(&valias);
    if (x.have_privs)
        local_who_free(&x.privs);
    address_free(&a);
}
