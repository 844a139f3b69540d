/*
 * petrel.c - the `petrel` administration command: start, stop, reload,
 * status, check, config, set-permissions, map and newaliases (see usage()
 * and docs/petrel.8.md).
 *
 * Exit status: 0 success; 1 the operation failed or found problems (check),
 * or master is not running (stop, reload, status); 64 usage error.
 */
#include "petrel.h"
#include "mail/params.h"
#include "util/config.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PETREL_CONFIG_DIR
#define PETREL_CONFIG_DIR "/etc/petrel"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: petrel [-c confdir] command [args]\n"
            "\n"
            "commands:\n"
            "  start              check the configuration and start the mail system\n"
            "  stop               stop it; sessions in progress get master_stop_timeout to end\n"
            "  reload             re-read the configuration; running sessions finish first\n"
            "  status             show whether it runs, and each service's processes\n"
            "  check              report every configuration problem as file:line: message\n"
            "  config [-n] [-x] [name...]\n"
            "                     print parameters (-n: only those set, -x: expanded)\n"
            "  set-permissions    create the queue directories and repair owners and modes\n"
            "  map [type:]file... compile lookup tables from their text source (like postmap)\n"
            "  newaliases         rebuild the alias_database tables from their aliases files\n"
            "  queue list [--json] | show ID | hold ID|ALL | release ID|ALL | requeue ID|ALL |\n"
            "        delete ID|ALL|--from ADDR|--to ADDR | flush\n"
            "                     inspect and manage the mail queue (root or the mail owner)\n"
            "\n"
            "-c confdir selects the configuration directory (default %s).\n"
            "Exit status: 0 success, 1 failure or problems found or not running, 64 usage.\n",
            PETREL_CONFIG_DIR);
}

void petrel_load(struct petrel_cli *cli, struct strbuf *errors)
{
    cli->cfg = params_config_new();
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/petrel.conf", cli->config_dir);
    cli->load_errors = config_load_file(cli->cfg, path.data, errors);
    strbuf_free(&path);
}

const char *petrel_param(struct petrel_cli *cli, const char *name)
{
    strbuf err;
    strbuf_init(&err);
    const char *v;
    if (config_get_str(cli->cfg, name, &v, &err) < 0) {
        fprintf(stderr, "%s", err.data);
        exit(1);
    }
    strbuf_free(&err);
    return v;
}

struct where_ctx {
    const char *name;
    struct strbuf *out;
};

static int where_fn(const struct config_item *it, void *vctx)
{
    struct where_ctx *w = vctx;
    if (strcmp(it->name, w->name) != 0)
        return 0;
    if (it->file)
        strbuf_printf(w->out, "%s:%d", it->file, it->line);
    return 1;
}

void petrel_where(struct petrel_cli *cli, const char *name, struct strbuf *out)
{
    struct where_ctx w = { name, out };
    size_t before = out->len;
    config_foreach(cli->cfg, true, where_fn, &w);
    if (out->len == before)
        strbuf_appends(out, "(default)");
}

int main(int argc, char **argv)
{
    struct petrel_cli cli = { .config_dir = PETREL_CONFIG_DIR };
    log_init("petrel");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            cli.config_dir = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 64;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 64;
    }
    static const struct {
        const char *name;
        int (*fn)(struct petrel_cli *, int, char **);
    } cmds[] = {
        { "start", cmd_start },   { "stop", cmd_stop },     { "reload", cmd_reload },
        { "status", cmd_status }, { "check", cmd_check },   { "config", cmd_config },
        { "set-permissions", cmd_set_permissions }, { "map", cmd_map },
        { "newaliases", cmd_newaliases }, { "queue", cmd_queue },
    };
    for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
        if (strcmp(argv[i], cmds[c].name) == 0) {
            int rc = cmds[c].fn(&cli, argc - i, argv + i);
            config_free(&cli.cfg);
            return rc;
        }
    fprintf(stderr, "petrel: unknown command \"%s\"\n", argv[i]);
    usage(stderr);
    return 64;
}
