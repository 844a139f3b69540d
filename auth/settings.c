/*
 * settings.c - the auth service's parameters, read once per process from
 * petrel.conf (with the service's -o overrides), and the state directory
 * <queue_directory>/pid/auth/ (failure counters, tokens) made safe before
 * the first request.
 */
#include "auth.h"
#include "mail/params.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *get_str(struct config *cfg, const char *name)
{
    const char *v = config_get(cfg, name);
    return xstrdup(v ? v : "");
}

static void get_list(struct config *cfg, const char *name, struct config_list *l)
{
    strbuf err;
    strbuf_init(&err);
    if (config_get_list(cfg, name, l, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
}

/* A directory only this process's user may enter: created when missing;
 * a symlink, a non-directory or a foreign owner is fatal (someone else
 * could then read tokens or forge failure counts). */
static void make_private_dir(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        log_fatal("cannot create %s: %m", path);
    struct stat st;
    if (lstat(path, &st) < 0)
        log_fatal("cannot inspect %s: %m", path);
    if (!S_ISDIR(st.st_mode))
        log_fatal("%s is not a directory (a symlink or file is never used)", path);
    if (st.st_uid != geteuid())
        log_fatal("%s is owned by uid %u, not by the auth service's uid %u", path,
                  (unsigned)st.st_uid, (unsigned)geteuid());
    if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
        log_fatal("cannot make %s private (chmod 0700): %m", path);
}

void auth_settings_load(struct auth_settings *s, struct config *cfg)
{
    memset(s, 0, sizeof(*s));
    params_host_defaults(cfg, NULL);
    bool allow_plain = false;
    strbuf err;
    strbuf_init(&err);
    if (config_get_bool(cfg, "auth_allow_plain_passwords", &allow_plain, &err) < 0)
        log_fatal("%s", err.data);
    strbuf_free(&err);
    s->allow_plain = allow_plain;
    s->queue_dir = get_str(cfg, "queue_directory");
    s->pam_service = get_str(cfg, "auth_pam_service");
    s->passwd_file = get_str(cfg, "auth_passwd_file");
    s->home_mailbox = get_str(cfg, "home_mailbox");
    s->spool_dir = get_str(cfg, "mail_spool_directory");
    s->store_owner = get_str(cfg, "mail_store_owner");
    get_list(cfg, "mydestination", &s->mydestination);
    get_list(cfg, "virtual_mailbox_domains", &s->virtual_domains);
    s->failure_limit = param_int(cfg, "auth_failure_limit");
    s->failure_window = param_time(cfg, "auth_failure_window");
    s->failure_delay_ms = param_int(cfg, "auth_failure_delay");
    s->failure_max_delay_ms = param_int(cfg, "auth_failure_max_delay");
    s->token_lifetime = param_time(cfg, "auth_token_lifetime");
    if (*s->pam_service == '\0' || strchr(s->pam_service, '/'))
        log_fatal("parameter auth_pam_service: '%s' is not a PAM service name",
                  s->pam_service);
    if (*s->passwd_file && *s->passwd_file != '/')
        log_fatal("parameter auth_passwd_file: '%s' must be an absolute path", s->passwd_file);

    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/pid/auth", s->queue_dir);
    make_private_dir(path.data);
    s->state_dir = xstrdup(path.data);
    strbuf_appends(&path, "/tokens");
    make_private_dir(path.data);
    strbuf_free(&path);
}

void auth_settings_free(struct auth_settings *s)
{
    free(s->queue_dir);
    free(s->state_dir);
    free(s->pam_service);
    free(s->passwd_file);
    free(s->home_mailbox);
    free(s->spool_dir);
    free(s->store_owner);
    config_list_free(&s->mydestination);
    config_list_free(&s->virtual_domains);
    memset(s, 0, sizeof(*s));
}
