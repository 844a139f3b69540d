/*
 * fuzz_config.c - petrel.conf parsing, $name expansion and every typed getter.
 * libFuzzer target (tests/fuzz/run.sh, `make fuzz`): hostile input must give a
 * clean error, never a crash, a leak or undefined behaviour.
 */
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "mail/params.h"
#include "util/config.h"
#include "util/strbuf.h"

static int get_all(const struct config_item *it, void *ctx)
{
    struct config *cfg = ctx;
    long long v;
    bool b;
    struct config_list l;
    config_get(cfg, it->name);
    config_get_int(cfg, it->name, &v, NULL);
    config_get_size(cfg, it->name, &v, NULL);
    config_get_time(cfg, it->name, &v, NULL);
    config_get_bool(cfg, it->name, &b, NULL);
    if (config_get_list(cfg, it->name, &l, NULL) == 0)
        config_list_free(&l);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct config *cfg = params_config_new();
    strbuf err;
    strbuf_init(&err);
    config_load_string(cfg, "fuzz.conf", (const char *)d, n, &err);
    config_validate(cfg, &err);
    config_foreach(cfg, false, get_all, cfg);
    config_free(&cfg);
    strbuf_free(&err);
    return 0;
}
