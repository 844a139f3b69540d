/*
 * petrel.h - shared pieces of the `petrel` admin command's subcommands.
 */
#ifndef PETREL_CLI_PETREL_H
#define PETREL_CLI_PETREL_H

#include <stdbool.h>

struct config;
struct strbuf;

struct petrel_cli {
    const char *config_dir;
    struct config *cfg;   /* petrel.conf as loaded (errors in load_errors) */
    int load_errors;
};

/* Loads petrel.conf from cli->config_dir; problems go to errors. */
void petrel_load(struct petrel_cli *cli, struct strbuf *errors);
/* The expanded value of a parameter, exiting with a message if it has none. */
const char *petrel_param(struct petrel_cli *cli, const char *name);
/* "file:line" where name was set, or "petrel.conf (default)". */
void petrel_where(struct petrel_cli *cli, const char *name, struct strbuf *out);

int cmd_start(struct petrel_cli *cli, int argc, char **argv);
int cmd_stop(struct petrel_cli *cli, int argc, char **argv);
int cmd_reload(struct petrel_cli *cli, int argc, char **argv);
int cmd_status(struct petrel_cli *cli, int argc, char **argv);
int cmd_check(struct petrel_cli *cli, int argc, char **argv);
int cmd_config(struct petrel_cli *cli, int argc, char **argv);
int cmd_set_permissions(struct petrel_cli *cli, int argc, char **argv);
int cmd_map(struct petrel_cli *cli, int argc, char **argv);
int cmd_newaliases(struct petrel_cli *cli, int argc, char **argv);
int cmd_queue(struct petrel_cli *cli, int argc, char **argv);

/* The pid of the running master from <queue>/pid/master.pid, or 0 when no
 * master holds the queue lock. */
long petrel_master_pid(struct petrel_cli *cli);

#endif
