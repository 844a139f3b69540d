/*
 * petrel_map.c - `petrel map SPEC...` compiles lookup tables from their text
 * source (like postmap), and `petrel newaliases` rebuilds every table of
 * alias_database from its aliases file (like newaliases). Errors are
 * printed as file:line: message; nothing is replaced when there is one.
 */
#include "petrel.h"
#include "aliases_db.h"
#include "mail/map.h"
#include "util/config.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

int cmd_map(struct petrel_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (argc < 2) {
        fprintf(stderr, "usage: petrel map [type:]/path/to/table...\n");
        return 64;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        strbuf spec, err;
        strbuf_init(&spec);
        strbuf_init(&err);
        if (strchr(argv[i], ':') == NULL)
            strbuf_appends(&spec, "hash:");
        strbuf_appends(&spec, argv[i]);
        if (map_build(spec.data, NULL, &err) > 0) {
            fputs(err.data, stderr);
            fprintf(stderr, "petrel map: %s not rebuilt\n", spec.data);
            failed = 1;
        }
        strbuf_free(&spec);
        strbuf_free(&err);
    }
    return failed;
}

int cmd_newaliases(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel newaliases\n");
        return 64;
    }
    strbuf err;
    strbuf_init(&err);
    petrel_load(cli, &err);
    fputs(err.data, stderr);
    strbuf_free(&err);
    if (cli->load_errors)
        return 1;
    return aliases_db_rebuild(cli->cfg, "petrel newaliases");
}
