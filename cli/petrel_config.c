/*
 * petrel_config.c - `petrel config [-n] [-x] [name...]` prints parameters as
 * `name = value` (like postconf: -n only those set in petrel.conf, -x with
 * $name expanded), and `petrel set-permissions` creates the queue tree and
 * repairs its owners and modes from the one table in lib/mail/queue_layout.
 */
#include "petrel.h"
#include "mail/queue_layout.h"
#include "util/config.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct print_ctx {
    struct petrel_cli *cli;
    bool expand;
};

static int print_one(const struct config_item *it, void *vctx)
{
    struct print_ctx *p = vctx;
    const char *v = p->expand ? config_get(p->cli->cfg, it->name) : it->raw;
    printf("%s = %s\n", it->name, v ? v : "");
    return 0;
}

int cmd_config(struct petrel_cli *cli, int argc, char **argv)
{
    bool set_only = false, expand = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-n") == 0)
            set_only = true;
        else if (strcmp(argv[i], "-x") == 0)
            expand = true;
        else {
            fprintf(stderr, "usage: petrel config [-n] [-x] [name...]\n");
            return 64;
        }
    }
    strbuf err;
    strbuf_init(&err);
    petrel_load(cli, &err);
    fputs(err.data, stderr);
    strbuf_free(&err);
    struct print_ctx p = { cli, expand };
    if (i == argc) {
        config_foreach(cli->cfg, set_only, print_one, &p);
        return cli->load_errors ? 1 : 0;
    }
    int rc = cli->load_errors ? 1 : 0;
    for (; i < argc; i++) {
        const char *raw = config_raw(cli->cfg, argv[i]);
        if (raw == NULL || (set_only && !config_is_set(cli->cfg, argv[i]))) {
            fprintf(stderr, "petrel config: %s: unknown parameter\n", argv[i]);
            rc = 1;
            continue;
        }
        const char *v = expand ? config_get(cli->cfg, argv[i]) : raw;
        printf("%s = %s\n", argv[i], v ? v : "");
    }
    return rc;
}

int cmd_set_permissions(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel set-permissions\n");
        return 64;
    }
    strbuf out;
    strbuf_init(&out);
    petrel_load(cli, &out);
    if (cli->load_errors) {
        fprintf(stderr, "%spetrel set-permissions: the configuration has errors\n", out.data);
        strbuf_free(&out);
        return 1;
    }
    const char *q = petrel_param(cli, "queue_directory");
    struct queue_owners o;
    int n = 0;
    if (queue_layout_owners(petrel_param(cli, "mail_owner"), petrel_param(cli, "setgid_group"),
                            &o, &out) < 0) {
        strbuf_appendc(&out, '\n');
        n = 1;
    } else {
        if (mkdir(q, 0755) < 0 && access(q, F_OK) < 0) {
            strbuf_printf(&out, "%s: cannot create: %m\n", q);
            n++;
        }
        n += queue_layout_apply(q, &o, QUEUE_LAYOUT_FIX, &out);
    }
    fputs(out.data, stderr);
    strbuf_free(&out);
    return n ? 1 : 0;
}
