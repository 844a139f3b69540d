/*
 * token.c - one-time tokens for the POP3/IMAP login -> mailbox hand-off
 * (DESIGN.md): the login process gets a token with its successful
 * password check and passes it on; the mailbox process redeems it with
 * another auth process for the user's identity.
 *
 * A token is AUTH_TOKEN_BYTES from getrandom() in lowercase hex (160 bits).
 * It is stored as the file <state_dir>/tokens/<token> (the directory is
 * private to auth), holding one IPC record: service, user, uid, gid, home,
 * mailbox and the issue time. Issuing writes a temporary file and renames
 * it into place, so a redeemer never sees half a token. Redeeming renames
 * the file to a name private to this process first: rename is atomic, so
 * of two processes redeeming the same token only one finds it; the file
 * is then read, removed, and its age and service checked. Tokens nobody
 * redeems are swept when new ones are issued.
 */
#include "auth.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/readfile.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 16384
#define TOKEN_SWEEP_MAX 1000 /* files looked at per sweep */

bool token_syntax_ok(const char *t)
{
    if (strlen(t) != AUTH_TOKEN_BYTES * 2)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void token_path(const struct auth_settings *s, const char *name, strbuf *out)
{
    strbuf_reset(out);
    strbuf_printf(out, "%s/tokens/%s", s->state_dir, name);
}

/* Removes tokens (and leftovers of crashed processes) older than twice
 * the lifetime. */
static void sweep(const struct auth_settings *s, time_t now)
{
    strbuf dir, path;
    strbuf_init(&dir);
    strbuf_init(&path);
    strbuf_printf(&dir, "%s/tokens", s->state_dir);
    DIR *d = opendir(dir.data);
    if (d == NULL) {
        strbuf_free(&dir);
        return;
    }
    struct dirent *de;
    int seen = 0;
    while ((de = readdir(d)) != NULL && seen++ < TOKEN_SWEEP_MAX) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_mtime + 2 * s->token_lifetime < now)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
    strbuf_free(&dir);
    strbuf_free(&path);
}

int token_issue(const struct auth_settings *s, const struct auth_identity *id,
                const char *service, strbuf *token, strbuf *err)
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            strbuf_printf(err, "getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)r;
    }
    strbuf_reset(token);
    for (size_t i = 0; i < sizeof(raw); i++)
        strbuf_printf(token, "%02x", raw[i]);
    explicit_bzero(raw, sizeof(raw));

    time_t now = time(NULL);
    sweep(s, now);
    struct attr_list *l = attr_list_new();
    attr_add_str(l, ATTR_PROTOCOL, "auth-token");
    attr_add_str(l, "service", service);
    attr_add_str(l, "user", id->user.data);
    attr_add_uint64(l, "uid", id->uid);
    attr_add_uint64(l, "gid", id->gid);
    attr_add_str(l, "home", id->home.data);
    attr_add_str(l, "mailbox", id->mailbox.data);
    attr_add_int(l, "issued", (long long)now);
    strbuf rec, tmp, final;
    strbuf_init(&rec);
    strbuf_init(&tmp);
    strbuf_init(&final);
    attr_serialize(l, &rec);
    attr_list_free(&l);

    strbuf name;
    strbuf_init(&name);
    strbuf_printf(&name, ".new-%s", token->data);
    token_path(s, name.data, &tmp);
    token_path(s, token->data, &final);
    strbuf_free(&name);
    int rc = -1;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        strbuf_printf(err, "cannot create %s: %s", tmp.data, strerror(errno));
    } else {
        ssize_t w = write(fd, rec.data, rec.len);
        if (w != (ssize_t)rec.len || close(fd) < 0) {
            strbuf_printf(err, "cannot write %s: %s", tmp.data,
                          w < 0 ? strerror(errno) : "short write");
            unlink(tmp.data);
        } else if (rename(tmp.data, final.data) < 0) {
            strbuf_printf(err, "cannot rename %s: %s", tmp.data, strerror(errno));
            unlink(tmp.data);
        } else {
            rc = 0;
        }
    }
    strbuf_free(&rec);
    strbuf_free(&tmp);
    strbuf_free(&final);
    return rc;
}

int token_redeem(const struct auth_settings *s, const char *token, const char *service,
                 struct auth_identity *id, strbuf *reason)
{
    if (!token_syntax_ok(token)) {
        strbuf_sets(reason, "unknown token");
        return 0;
    }
    strbuf from, mine, name, text, err;
    strbuf_init(&from);
    strbuf_init(&mine);
    strbuf_init(&name);
    strbuf_init(&text);
    strbuf_init(&err);
    token_path(s, token, &from);
    strbuf_printf(&name, ".redeem-%ld-%s", (long)getpid(), token);
    token_path(s, name.data, &mine);
    int rc = 0;
    struct attr_list *l = attr_list_new();
    if (rename(from.data, mine.data) < 0) {
        if (errno == ENOENT) {
            strbuf_sets(reason, "unknown or already used token");
        } else {
            strbuf_sets(reason, "token store unavailable");
            log_error("cannot rename %s: %m", from.data);
            rc = -1;
        }
        goto out;
    }
    int r = read_file_limited(mine.data, TOKEN_FILE_MAX, &text, &err);
    unlink(mine.data);
    size_t used = 0;
    if (r == 0 && attr_parse(text.data, text.len, NULL, l, &used, &err) == ATTR_PARSE_OK &&
        used != text.len)
        strbuf_sets(&err, "bytes after the record");
    if (r < 0 || err.len > 0 || attr_expect_protocol(l, "auth-token", &err) < 0) {
        log_error("damaged token file %s: %s", from.data, err.data);
        strbuf_sets(reason, "damaged token");
        rc = -1;
        goto out;
    }
    long long issued, uid, gid;
    const char *svc, *user = NULL, *home = NULL, *mailbox = NULL;
    if (!(svc = attr_require(l, "service", &err)) || !(user = attr_require(l, "user", &err)) ||
        !(home = attr_require(l, "home", &err)) || !(mailbox = attr_require(l, "mailbox", &err)) ||
        attr_get_int(l, "issued", 0, (long long)1 << 62, &issued, &err) < 0 ||
        attr_get_int(l, "uid", 0, 4294967294LL, &uid, &err) < 0 ||
        attr_get_int(l, "gid", 0, 4294967294LL, &gid, &err) < 0) {
        log_error("damaged token file %s: %s", from.data, err.data);
        strbuf_sets(reason, "damaged token");
        rc = -1;
        goto out;
    }
    time_t now = time(NULL);
    if (now - issued > s->token_lifetime || issued > now + 5) {
        strbuf_printf(reason, "expired token (issued %lld s ago, valid for %lld s)",
                      (long long)now - issued, s->token_lifetime);
        goto out;
    }
    if (strcmp(svc, service) != 0) {
        strbuf_printf(reason, "token was issued for %s, not %s", svc, service);
        goto out;
    }
    strbuf_sets(&id->user, user);
    strbuf_sets(&id->home, home);
    strbuf_sets(&id->mailbox, mailbox);
    id->uid = (uid_t)uid;
    id->gid = (gid_t)gid;
    strbuf_sets(reason, "token redeemed");
    rc = 1;
out:
    attr_list_free(&l);
    strbuf_free(&from);
    strbuf_free(&mine);
    strbuf_free(&name);
    strbuf_free(&text);
    strbuf_free(&err);
    return rc;
}
