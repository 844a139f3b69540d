/*
 * service_table.h - the service table: which programs master runs, where they
 * listen, as whom, and how many at once.
 *
 * It lives in `services.conf` beside `petrel.conf`, one service per line in
 * columns, like Postfix's master.cf (see docs/configuration.md):
 *
 *   # name      type    listen              user    chroot  limit  command [args...]
 *   smtp        accept  inet:25             -       -       100    smtpd
 *   qmgr        daemon  unix:public/qmgr    -       -       1      qmgr
 *
 * `-` means the default: user = $mail_owner, no chroot, limit =
 * $default_process_limit. Arguments after the command are passed on; `-o
 * name=value` among them overrides a petrel.conf parameter for that service
 * only (TLS mode, max_use, max_idle...). Comments and blank lines are
 * ignored; a line starting with whitespace continues the previous one.
 * master and `petrel check` both read the table through this module, so they
 * agree on every error, which is reported as `file:line: message`.
 */
#ifndef PETREL_SERVICE_TABLE_H
#define PETREL_SERVICE_TABLE_H

#include <stdbool.h>

struct strbuf;

enum endpoint_kind {
    ENDPOINT_INET,
    ENDPOINT_UNIX,
};

struct service_endpoint {
    enum endpoint_kind kind;
    char *text; /* as written, for messages */
    char *host; /* INET: address literal, or NULL for every address */
    int port;   /* INET */
    char *path; /* UNIX: relative to queue_directory */
};

enum service_kind {
    SERVICE_ACCEPT,
    SERVICE_DAEMON,
};

struct service_def {
    char *name;
    enum service_kind kind;
    struct service_endpoint *endpoints;
    int nendpoints;
    char *user;   /* NULL = $mail_owner */
    char *chroot; /* NULL = none */
    int limit;    /* 0 = $default_process_limit */
    char *command;
    char **args;  /* argument vector after the command, NULL-terminated */
    int nargs;
    int line;     /* where it was defined */
};

struct service_table {
    char *path;
    struct service_def *services;
    int nservices;
};

/* service_table_load: reads and checks the table at path. Problems are
 * appended to errors as "path:line: message\n" lines; returns their number
 * (0 = usable). A table with errors is still filled with the valid lines. */
int service_table_load(const char *path, struct service_table *table, struct strbuf *errors);
/* Parses a table held in memory; `path` is only used in messages. */
int service_table_parse(const char *path, const char *text, unsigned long len,
                        struct service_table *table, struct strbuf *errors);
void service_table_free(struct service_table *table);
/* Frees one definition (e.g. one moved out of a table) and zeroes it. */
void service_def_free(struct service_def *def);
/* The service called name, or NULL. */
const struct service_def *service_table_find(const struct service_table *table, const char *name);
/* True when two endpoints are the same socket (master reuses a listener
 * across a reload only then). */
bool service_endpoint_equal(const struct service_endpoint *a, const struct service_endpoint *b);
/* The value of `-o name=value` among a service's arguments, or NULL. */
const char *service_override(const struct service_def *def, const char *name);

#endif
