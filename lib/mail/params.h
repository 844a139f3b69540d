/*
 * params.h - Petrel's configuration parameters: the one table that names
 * every parameter of petrel.conf with its default, type, range and a short
 * description (lib/mail/params.c). Names and defaults follow Postfix where
 * Postfix has the same setting, so that its administrators feel at home.
 * docs/configuration.md lists the same table for people; keep both in step.
 *
 * Typical start of a program:
 *
 *   struct config *cfg = params_config_new();
 *   int nerr = config_load_file(cfg, "/etc/petrel/petrel.conf", errors);
 *   params_host_defaults(cfg, NULL);
 *   nerr += config_validate(cfg, errors);
 */
#ifndef PETREL_PARAMS_H
#define PETREL_PARAMS_H

#include "util/config.h"

/* The current configuration syntax and defaults version (config_version). */
#define PETREL_CONFIG_VERSION 1

/* The table, ending with a {NULL} entry. */
extern const struct config_def petrel_params[];

/* params_config_new: an empty configuration that knows petrel_params. */
struct config *params_config_new(void);

/* params_host_defaults: fills in the defaults that depend on the host, as
 * Postfix does: when myhostname is not set, its default becomes hostname
 * (NULL = the system's, from gethostname(); "localhost" if that fails);
 * when mydomain is not set, its default becomes $myhostname without its
 * first label ("localdomain" if it has only one). Call it after loading
 * the files, since a set myhostname changes the mydomain default. */
void params_host_defaults(struct config *cfg, const char *hostname);

/* For daemons, which read the configuration master has validated: a value
 * that cannot be had here means the environment broke (the file changed
 * under us, a $name expands to nothing valid), so these log_fatal with the
 * file:line message instead of returning. param_str's result belongs to
 * cfg. */
const char *param_str(struct config *cfg, const char *name);
long long param_int(struct config *cfg, const char *name);
long long param_size(struct config *cfg, const char *name);
long long param_time(struct config *cfg, const char *name);
bool param_bool(struct config *cfg, const char *name);

#endif
