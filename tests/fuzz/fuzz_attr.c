/*
 * fuzz_attr.c - the IPC record reader (attr_parse): every record a broken or
 * hostile peer could send. A record that parses must serialize back to the
 * bytes that were consumed.
 * libFuzzer target (tests/fuzz/run.sh, `make fuzz`): hostile input must give a
 * clean error, never a crash, a leak or undefined behaviour.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/attr.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct attr_list *l = attr_list_new();
    strbuf err, out;
    strbuf_init(&err);
    strbuf_init(&out);
    size_t used = 0;
    if (attr_parse((const char *)d, n, NULL, l, &used, &err) == ATTR_PARSE_OK) {
        attr_serialize(l, &out);
        if (out.len != used || memcmp(out.data, d, used) != 0)
            abort();
    }
    attr_list_free(&l);
    strbuf_free(&err);
    strbuf_free(&out);
    return 0;
}
