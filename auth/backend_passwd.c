/*
 * backend_passwd.c - virtual users in a Dovecot-style passwd-file
 * (auth_passwd_file), one user per line:
 *
 *   user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra
 *
 * '#' starts a comment line; trailing fields may be left out. Hashes are
 * checked with crypt(3) from libxcrypt: {SHA512-CRYPT} ($6$), {SHA256-CRYPT}
 * ($5$), {BLF-CRYPT} ($2b$/$2y$), {YESCRYPT} ($y$), or {CRYPT} and no
 * scheme for any prefix libcrypt rates as current (and SHA256-crypt);
 * legacy hashes (DES, MD5-crypt) are refused. {PLAIN} works only with
 * auth_allow_plain_passwords = yes. The file is read for every request, so
 * edits take effect at once; it may be root-only (auth runs as root).
 */
#define _GNU_SOURCE /* crypt_rn, crypt_checksalt, crypt_gensalt_rn of libxcrypt */
#include "auth.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/readfile.h"
#include "util/xalloc.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PASSWD_FILE_MAX (64 * 1024 * 1024)

void passwd_entry_init(struct passwd_entry *e)
{
    memset(e, 0, sizeof(*e));
    strbuf_init(&e->user);
    strbuf_init(&e->password);
    strbuf_init(&e->home);
    strbuf_init(&e->extra);
    e->uid = e->gid = -1;
}

void passwd_entry_free(struct passwd_entry *e)
{
    if (e->password.data)
        explicit_bzero(e->password.data, e->password.len);
    strbuf_free(&e->user);
    strbuf_free(&e->password);
    strbuf_free(&e->home);
    strbuf_free(&e->extra);
}

bool auth_secret_equal(const char *a, size_t an, const char *b, size_t bn)
{
    /* Walk the longer length whatever the contents: the loop always does
     * the same work for the same lengths. */
    size_t n = an > bn ? an : bn;
    unsigned char diff = an != bn;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < an ? (unsigned char)a[i] : 0;
        unsigned char y = i < bn ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

/* "local@domain" vs the file's name: local parts exactly, domains in any case. */
static bool same_user(const char *want, const char *have, size_t have_len)
{
    const char *wat = strrchr(want, '@');
    const char *hat = memrchr(have, '@', have_len);
    if (wat == NULL || hat == NULL)
        return strlen(want) == have_len && memcmp(want, have, have_len) == 0;
    size_t wl = (size_t)(wat - want), hl = (size_t)(hat - have);
    size_t wd = strlen(wat + 1), hd = have_len - hl - 1;
    return wl == hl && memcmp(want, have, wl) == 0 && wd == hd &&
           strncasecmp(wat + 1, hat + 1, wd) == 0;
}

/* A decimal uid/gid field: empty = -1. */
static bool parse_id(const char *p, size_t n, long long *out)
{
    if (n == 0) {
        *out = -1;
        return true;
    }
    if (n > 10)
        return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 4294967294LL)
        return false;
    *out = v;
    return true;
}

/* Splits one line into fields at ':'; fills e. -1 when malformed. */
static int parse_line(const char *line, size_t len, struct passwd_entry *e, strbuf *err)
{
    const char *f[8] = {0};
    size_t fl[8] = {0};
    size_t nf = 0;
    const char *p = line, *end = line + len;
    while (nf < 8) {
        const char *c = nf < 7 ? memchr(p, ':', (size_t)(end - p)) : NULL;
        const char *stop = c ? c : end;
        f[nf] = p;
        fl[nf] = (size_t)(stop - p);
        nf++;
        if (c == NULL)
            break;
        p = c + 1;
    }
    if (nf < 2) {
        strbuf_sets(err, "expected user:password[:uid:gid:gecos:home:shell:extra]");
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t') {
            strbuf_sets(err, "control character in the line");
            return -1;
        }
    if (!parse_id(f[2], fl[2], &e->uid) || !parse_id(f[3], fl[3], &e->gid)) {
        strbuf_sets(err, "uid and gid must be decimal numbers or empty");
        return -1;
    }
    strbuf_set(&e->user, f[0], fl[0]);
    strbuf_set(&e->password, f[1], fl[1]);
    strbuf_set(&e->home, f[5], fl[5]);
    strbuf_set(&e->extra, f[7], fl[7]);
    return 0;
}

int passwd_file_lookup(const char *path, const char *user, struct passwd_entry *e, strbuf *err)
{
    strbuf text, why;
    strbuf_init(&text);
    strbuf_init(&why);
    int rc = 0;
    if (read_file_limited(path, PASSWD_FILE_MAX, &text, &why) < 0) {
        strbuf_printf(err, "auth_passwd_file %s", why.data);
        rc = -1;
        goto out;
    }
    int lineno = 0;
    for (size_t off = 0; off < text.len;) {
        const char *line = text.data + off;
        const char *nl = memchr(line, '\n', text.len - off);
        size_t n = nl ? (size_t)(nl - line) : text.len - off;
        off += n + (nl != NULL);
        lineno++;
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        const char *colon = memchr(line, ':', n);
        size_t ulen = colon ? (size_t)(colon - line) : n;
        if (!same_user(user, line, ulen))
            continue;
        if (parse_line(line, n, e, &why) < 0) {
            strbuf_reset(err);
            strbuf_printf(err, "%s:%d: %s", path, lineno, why.data);
            rc = -1;
        } else {
            e->line = lineno;
            rc = 1;
        }
        break;
    }
out:
    if (text.data)
        explicit_bzero(text.data, text.len);
    strbuf_free(&text);
    strbuf_free(&why);
    return rc;
}

/* The hash prefixes each scheme name admits. */
static bool scheme_matches(const char *scheme, size_t n, const char *hash)
{
    static const struct {
        const char *name;
        const char *prefixes[4];
    } schemes[] = {
        {"SHA512-CRYPT", {"$6$", NULL}},
        {"SHA256-CRYPT", {"$5$", NULL}},
        {"BLF-CRYPT", {"$2b$", "$2y$", "$2a$", NULL}},
        {"YESCRYPT", {"$y$", NULL}},
    };
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strlen(schemes[i].name) != n || strncasecmp(scheme, schemes[i].name, n) != 0)
            continue;
        for (size_t k = 0; schemes[i].prefixes[k]; k++)
            if (strncmp(hash, schemes[i].prefixes[k], strlen(schemes[i].prefixes[k])) == 0)
                return true;
        return false;
    }
    return n == 5 && strncasecmp(scheme, "CRYPT", 5) == 0;
}

/* crypt(3) the password with hash as its setting and compare. */
static enum auth_verdict check_crypt(const char *path, const struct passwd_entry *e,
                                     const char *hash, const char *password, strbuf *reason)
{
    int salt = crypt_checksalt(hash);
    /* Debian's libxcrypt rates SHA256-crypt "legacy" (not for new hashes);
     * it is still sound, and Dovecot setups use it: accept it when named. */
    if (salt == CRYPT_SALT_METHOD_LEGACY && strncmp(hash, "$5$", 3) == 0)
        salt = CRYPT_SALT_OK;
    if (salt != CRYPT_SALT_OK && salt != CRYPT_SALT_TOO_CHEAP) {
        const char *why = salt == CRYPT_SALT_METHOD_LEGACY ? "a legacy (weak) hash method, refused"
                          : salt == CRYPT_SALT_METHOD_DISABLED ? "a hash method libcrypt disables"
                                                               : "not a hash libcrypt knows";
        log_error("%s:%d: password of %s is %s", path, e->line, e->user.data, why);
        strbuf_sets(reason, "unusable password hash");
        return VERDICT_TEMPFAIL;
    }
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
    enum auth_verdict v;
    if (out == NULL || out[0] == '*') {
        log_error("%s:%d: password hash of %s cannot be checked by crypt(3)", path, e->line,
                  e->user.data);
        strbuf_sets(reason, "unusable password hash");
        v = VERDICT_TEMPFAIL;
    } else if (auth_secret_equal(out, strlen(out), hash, strlen(hash))) {
        v = VERDICT_OK;
    } else {
        strbuf_sets(reason, "password mismatch");
        v = VERDICT_FAIL;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return v;
}

enum auth_verdict passwd_verify(const struct auth_settings *s, const char *path,
                                const struct passwd_entry *e, const char *password,
                                strbuf *reason)
{
    const char *pw = e->password.data;
    if (e->password.len == 0 || strcmp(pw, "!") == 0 || strcmp(pw, "*") == 0 || pw[0] == '!') {
        passwd_waste_time(password);
        strbuf_sets(reason, "account disabled");
        return VERDICT_FAIL;
    }
    const char *scheme = "CRYPT", *hash = pw;
    size_t sn = 5;
    if (pw[0] == '{') {
        const char *close = strchr(pw, '}');
        if (close == NULL) {
            log_error("%s:%d: password of %s: '{' without '}'", path, e->line, e->user.data);
            strbuf_sets(reason, "unusable password hash");
            return VERDICT_TEMPFAIL;
        }
        scheme = pw + 1;
        sn = (size_t)(close - scheme);
        hash = close + 1;
    }
    if (sn == 5 && strncasecmp(scheme, "PLAIN", 5) == 0) {
        if (!s->allow_plain) {
            log_error("%s:%d: password of %s is {PLAIN}, which is refused unless "
                      "auth_allow_plain_passwords = yes",
                      path, e->line, e->user.data);
            strbuf_sets(reason, "plaintext passwords are not allowed");
            return VERDICT_TEMPFAIL;
        }
        if (auth_secret_equal(password, strlen(password), hash, strlen(hash)))
            return VERDICT_OK;
        strbuf_sets(reason, "password mismatch");
        return VERDICT_FAIL;
    }
    if (!scheme_matches(scheme, sn, hash)) {
        log_error("%s:%d: password of %s: scheme {%.*s} unknown or not matching its hash", path,
                  e->line, e->user.data, (int)sn, scheme);
        strbuf_sets(reason, "unusable password hash");
        return VERDICT_TEMPFAIL;
    }
    return check_crypt(path, e, hash, password, reason);
}

void passwd_waste_time(const char *password)
{
    /* A fixed SHA512-CRYPT setting: costs about what a real check costs. */
    static const char setting[] = "$6$petrelpetrelpe$";
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    (void)crypt_rn(password, setting, cd, (int)sizeof(*cd));
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
}

/* "mail=PATH" among the extra fields (Dovecot's userdb_mail is accepted
 * too; a "maildir:" prefix is dropped and "~/" means the home directory). */
static bool extra_mail(const struct passwd_entry *e, strbuf *out)
{
    const char *p = e->extra.data;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = p + strcspn(p, " \t");
        const char *v = NULL;
        if (strncmp(p, "mail=", 5) == 0)
            v = p + 5;
        else if (strncmp(p, "userdb_mail=", 12) == 0)
            v = p + 12;
        if (v) {
            if (strncmp(v, "maildir:", 8) == 0)
                v += 8;
            strbuf_reset(out);
            if (v[0] == '~' && v[1] == '/') {
                strbuf_printf(out, "%s/", e->home.data);
                v += 2;
            }
            strbuf_append(out, v, (size_t)(end - v));
            return true;
        }
        p = end;
    }
    return false;
}

enum auth_verdict passwd_identity(const struct auth_settings *s, const struct passwd_entry *e,
                                  struct auth_identity *id, strbuf *reason)
{
    strbuf_set(&id->user, e->user.data, e->user.len);
    strbuf_set(&id->home, e->home.data, e->home.len);
    long long uid = e->uid, gid = e->gid;
    if (uid < 0 || gid < 0) {
        struct priv_user pu;
        strbuf err;
        strbuf_init(&err);
        if (privilege_lookup_user(s->store_owner, &pu, &err) != PRIV_LOOKUP_FOUND) {
            log_error("virtual user %s has no uid/gid and mail_store_owner cannot be used: %s",
                      e->user.data, err.data);
            strbuf_sets(reason, "no owner for the virtual mailbox");
            strbuf_free(&err);
            return VERDICT_TEMPFAIL;
        }
        if (uid < 0)
            uid = pu.uid;
        if (gid < 0)
            gid = pu.gid;
        privilege_user_free(&pu);
        strbuf_free(&err);
    }
    if (uid == 0) {
        log_error("virtual user %s would get uid 0: refused", e->user.data);
        strbuf_sets(reason, "virtual users never get uid 0");
        return VERDICT_TEMPFAIL;
    }
    id->uid = (uid_t)uid;
    id->gid = (gid_t)gid;
    if (!extra_mail(e, &id->mailbox) && e->home.len)
        strbuf_printf(&id->mailbox, "%s/Maildir/", e->home.data);
    if (id->home.len == 0 || id->home.data[0] != '/' || id->mailbox.len == 0 ||
        id->mailbox.data[0] != '/' || strstr(id->mailbox.data, "/../") != NULL) {
        log_error("virtual user %s needs an absolute home directory (field 6) or mail=PATH",
                  e->user.data);
        strbuf_sets(reason, "no mailbox location for the virtual user");
        return VERDICT_TEMPFAIL;
    }
    strbuf_sets(reason, "authenticated by passwd-file");
    return VERDICT_OK;
}
