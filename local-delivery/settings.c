/*
 * settings.c - local-delivery's parameters, read once per process from
 * petrel.conf (with the service's -o overrides), and the tables it keeps
 * open: alias_maps and the resolver (domain classes).
 */
#include "local.h"
#include "mail/map.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *get_str(struct config *cfg, const char *name)
{
    const char *v = config_get(cfg, name);
    return xstrdup(v ? v : "");
}

/* "alias, forward, include" -> ORIGIN_* bits. */
static unsigned origins(struct config *cfg, const char *name)
{
    struct config_list l;
    strbuf err;
    strbuf_init(&err);
    unsigned bits = 0;
    if (config_get_list(cfg, name, &l, &err) < 0)
        log_fatal("%s", err.data);
    for (size_t i = 0; i < l.count; i++) {
        if (strcasecmp(l.items[i], "alias") == 0)
            bits |= ORIGIN_ALIAS;
        else if (strcasecmp(l.items[i], "forward") == 0)
            bits |= ORIGIN_FORWARD;
        else if (strcasecmp(l.items[i], "include") == 0)
            bits |= ORIGIN_INCLUDE;
        else
            log_warning("parameter %s: unknown item '%s' ignored (expected alias, forward or "
                        "include)",
                        name, l.items[i]);
    }
    config_list_free(&l);
    strbuf_free(&err);
    return bits;
}

void local_settings_load(struct local_settings *s, struct config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->queue_dir = get_str(cfg, "queue_directory");
    s->home_mailbox = get_str(cfg, "home_mailbox");
    s->spool_dir = get_str(cfg, "mail_spool_directory");
    s->myhostname = get_str(cfg, "myhostname");
    s->default_privs = get_str(cfg, "default_privs");
    s->mail_owner = get_str(cfg, "mail_owner");
    s->command_time_limit = param_time(cfg, "command_time_limit");
    s->mailbox_size_limit = (uint64_t)param_size(cfg, "mailbox_size_limit");
    s->hopcount_limit = param_int(cfg, "hopcount_limit");
    s->max_use = param_int(cfg, "max_use");
    s->commands_allowed = origins(cfg, "allow_mail_to_commands");
    s->files_allowed = origins(cfg, "allow_mail_to_files");
    if (s->home_mailbox[0] == '/')
        log_warning("parameter home_mailbox: '%s' is relative to the home directory; the "
                    "leading '/' is ignored",
                    s->home_mailbox);

    strbuf err;
    strbuf_init(&err);
    s->resolver = resolver_new(cfg, &err);
    strbuf_rtrim(&err);
    if (err.len)
        log_warning("%s", err.data);
    strbuf_init(&s->alias_error);
    strbuf_reset(&err);
    const char *specs = config_get(cfg, "alias_maps");
    if (map_list_open(specs ? specs : "", MAP_ALIASES, &s->aliases, &err) < 0) {
        /* Not fatal: recipients are deferred with this reason until the
         * table is fixed (a fresh process reopens it). */
        strbuf_printf(&s->alias_error, "alias_maps: %s", err.data);
        log_warning("%s; local mail is deferred until this is fixed", s->alias_error.data);
    }
    strbuf_init(&s->virtual_error);
    static const char *const vparams[] = { "virtual_alias_maps", "virtual_mailbox_maps" };
    struct map_list **vlists[] = { &s->virtual_alias, &s->virtual_mailbox };
    for (int i = 0; i < 2; i++) {
        strbuf_reset(&err);
        specs = config_get(cfg, vparams[i]);
        if (map_list_open(specs ? specs : "", 0, vlists[i], &err) < 0) {
            if (s->virtual_error.len == 0)
                strbuf_printf(&s->virtual_error, "%s: %s", vparams[i], err.data);
            log_warning("%s: %s; mail for virtual addresses is deferred until this is fixed",
                        vparams[i], err.data);
        }
    }
    const char *base = config_get(cfg, "virtual_mailbox_base");
    s->virtual_base = xstrdup(base ? base : "");
    const char *owner = config_get(cfg, "mail_store_owner");
    s->store_owner = xstrdup(owner ? owner : "");
    strbuf_free(&err);
}

void local_settings_free(struct local_settings *s)
{
    free(s->queue_dir);
    free(s->home_mailbox);
    free(s->spool_dir);
    free(s->myhostname);
    free(s->default_privs);
    free(s->mail_owner);
    resolver_free(&s->resolver);
    map_list_close(&s->aliases);
    strbuf_free(&s->alias_error);
    map_list_close(&s->virtual_alias);
    map_list_close(&s->virtual_mailbox);
    strbuf_free(&s->virtual_error);
    free(s->virtual_base);
    free(s->store_owner);
    memset(s, 0, sizeof(*s));
}
