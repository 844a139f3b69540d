/*
 * fuzz_address.c - the RFC 5321 address parsers (paths, mailboxes, MAIL/RCPT
 * arguments): whatever parses must format and parse back to the same address.
 * libFuzzer target (tests/fuzz/run.sh, `make fuzz`): hostile input must give a
 * clean error, never a crash, a leak or undefined behaviour.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>
#include "mail/address.h"
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    unsigned flags = d[0] & 0x0F; d++; n--;
    struct address a, b; struct address_error e; address_init(&a); address_init(&b);
    strbuf out; strbuf_init(&out);
    const char *p; size_t pl;
    int (*fns[2])(const char*, size_t, unsigned, struct address*, struct address_error*) = {address_parse_path, address_parse_mailbox};
    for (int k = 0; k < 2; k++) {
        if (fns[k]((const char*)d, n, flags, &a, &e) == 0) {
            strbuf_reset(&out);
            if (k == 0) address_format_path(&out, &a); else address_format(&out, &a);
            if (fns[k](out.data, out.len, flags, &b, &e) != 0) abort();
            if (!strbuf_eq(&b.local, a.local.data) || !strbuf_eq(&b.domain, a.domain.data)) abort();
            (void)address_has_unsafe_chars(&a); (void)address_has_routing_chars(&a);
        } else if (a.local.len || e.status == ADDRESS_OK || e.offset > n) abort();
    }
    if (address_parse_mail_arg((const char*)d, n, flags & 1 ? ADDRESS_ROLE_SENDER : ADDRESS_ROLE_RECIPIENT, flags, &a, &p, &pl, &e) == 0) {
        if (p + pl != (const char*)d + n) abort();
    }
    strbuf_free(&out); address_free(&a); address_free(&b);
    return 0;
}
