/*
 * fuzz_header.c - RFC 5322 header sections and address lists.
 * libFuzzer target (tests/fuzz/run.sh, `make fuzz`): hostile input must give a
 * clean error, never a crash, a leak or undefined behaviour.
 */
#include <stdint.h>
#include <string.h>
#include "mail/header.h"
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    strbuf err; strbuf_init(&err);
    struct header_address *l; size_t cnt;
    if (header_parse_addresses((const char *)d, n, &l, &cnt, &err) == 0) header_addresses_free(&l, cnt);
    struct header_field f; header_field_init(&f);
    size_t pos = 0; int r;
    while ((r = header_next((const char *)d, n, &pos, &f, &err)) == 1) {
        if (header_parse_addresses(f.value.data, f.value.len, &l, &cnt, &err) == 0) header_addresses_free(&l, cnt);
        if (f.end > n || f.start >= f.end) __builtin_trap();
    }
    size_t fe, b; header_section_end((const char *)d, n, &fe, &b, &err);
    header_field_free(&f); strbuf_free(&err);
    return 0;
}
