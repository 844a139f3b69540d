/*
 * fuzz_sasl.c - the SASL PLAIN and LOGIN decoders (lib/mail/sasl) and strict
 * base64 (lib/util/base64), BAD-INPUT.md row 4 "per-mechanism decoder
 * fuzzing". libFuzzer target (tests/fuzz/run.sh, `make fuzz`): the input is
 * split at newlines into an initial response and further responses, fed to
 * both mechanisms; hostile input must give a status, never a crash, a leak
 * or undefined behaviour, and a finished exchange never holds a NUL in the
 * user name or password.
 */
#include <stdint.h>
#include <string.h>
#include "mail/sasl.h"
#include "util/base64.h"

static void run(enum sasl_mech m, const char *d, size_t n)
{
    struct sasl_server sx;
    strbuf ch, err, first;
    strbuf_init(&ch); strbuf_init(&err); strbuf_init(&first);
    sasl_server_init(&sx, m);
    const char *nl = memchr(d, '\n', n);
    size_t fl = nl ? (size_t)(nl - d) : n;
    strbuf_set(&first, d, fl);
    enum sasl_status st = sasl_server_start(&sx, strbuf_has_nul(&first) ? NULL : first.data, &ch, &err);
    size_t pos = nl ? fl + 1 : n;
    while (st == SASL_CHALLENGE && pos <= n) {
        const char *e = memchr(d + pos, '\n', n - pos);
        size_t l = e ? (size_t)(e - (d + pos)) : n - pos;
        st = sasl_server_step(&sx, d + pos, l, &ch, &err);
        pos += l + 1;
    }
    if (st == SASL_DONE && (memchr(sx.user.data, 0, sx.user.len) || memchr(sx.password.data, 0, sx.password.len)
                            || sx.user.len == 0 || sx.password.len == 0))
        __builtin_trap();
    sasl_server_free(&sx);
    strbuf_free(&ch); strbuf_free(&err); strbuf_free(&first);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    run(SASL_MECH_PLAIN, (const char *)d, n);
    run(SASL_MECH_LOGIN, (const char *)d, n);
    strbuf out, again; strbuf_init(&out); strbuf_init(&again);
    if (base64_decode(&out, (const char *)d, n, NULL) == 0) {
        base64_encode(&again, out.data, out.len); /* canonical: re-encodes to the input */
        if (again.len != n || memcmp(again.data, d, n) != 0) __builtin_trap();
    }
    strbuf_free(&out); strbuf_free(&again);
    return 0;
}
