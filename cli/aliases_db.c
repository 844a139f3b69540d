/*
 * aliases_db.c - see aliases_db.h.
 */
#include "aliases_db.h"
#include "mail/aliases.h"
#include "util/config.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

int aliases_db_rebuild(struct config *cfg, const char *prog)
{
    strbuf err;
    strbuf_init(&err);
    struct config_list list = { 0 };
    if (config_get_list(cfg, "alias_database", &list, &err) < 0) {
        fputs(err.data, stderr);
        strbuf_free(&err);
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < list.count; i++) {
        const char *spec = list.items[i];
        const char *colon = strchr(spec, ':');
        const char *path = colon ? colon + 1 : spec;
        strbuf_reset(&err);
        if (aliases_build(path, spec, &err) > 0) {
            fputs(err.data, stderr);
            fprintf(stderr, "%s: %s not rebuilt\n", prog, spec);
            failed = 1;
        }
    }
    config_list_free(&list);
    strbuf_free(&err);
    return failed;
}
