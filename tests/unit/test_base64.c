/*
 * test_base64.c - unit tests for the strict base64 codec (lib/util/base64):
 * the RFC 4648 §10 test vectors both ways, every byte value round-trips,
 * and each kind of malformed input SASL clients (or attackers) send is
 * refused with a clear message and leaves the output untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "util/base64.h"

#define S(x) x, (sizeof(x) - 1)

struct vec {
    const char *plain;
    const char *b64;
};

/* RFC 4648 §10. */
static const struct vec vectors[] = {
    {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    strbuf out, err;
    strbuf_init(&out);
    strbuf_init(&err);
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        strbuf_reset(&out);
        base64_encode(&out, vectors[i].plain, strlen(vectors[i].plain));
        assert_string_equal(out.data, vectors[i].b64);
        strbuf_reset(&out);
        assert_int_equal(base64_decode(&out, vectors[i].b64, strlen(vectors[i].b64), &err), 0);
        assert_int_equal(out.len, strlen(vectors[i].plain));
        assert_memory_equal(out.data, vectors[i].plain, out.len);
    }
    assert_int_equal(err.len, 0);
    strbuf_free(&out);
    strbuf_free(&err);
}

static void test_every_byte_round_trips(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    strbuf enc, dec;
    strbuf_init(&enc);
    strbuf_init(&dec);
    for (size_t n = 0; n <= sizeof(all); n++) {
        strbuf_reset(&enc);
        strbuf_reset(&dec);
        base64_encode(&enc, all, n);
        assert_int_equal(enc.len, (n + 2) / 3 * 4);
        assert_int_equal(base64_decode(&dec, enc.data, enc.len, NULL), 0);
        assert_int_equal(dec.len, n);
        if (n > 0)
            assert_memory_equal(dec.data, all, n);
    }
    strbuf_free(&enc);
    strbuf_free(&dec);
}

/* SASL PLAIN: "\0user\0pass" carries NUL bytes; the decoder keeps them. */
static void test_decoded_nul_is_kept(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    assert_int_equal(base64_decode(&out, S("AHVzZXIAcGFzcw=="), NULL), 0);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "\0user\0pass", 10);
    strbuf_free(&out);
}

/* Appends to what out holds already. */
static void test_appends(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    strbuf_sets(&out, "x:");
    assert_int_equal(base64_decode(&out, S("Zm9v"), NULL), 0);
    assert_string_equal(out.data, "x:foo");
    base64_encode(&out, "!", 1);
    assert_string_equal(out.data, "x:fooIQ==");
    strbuf_free(&out);
}

struct bad {
    const char *in;
    size_t len;
    const char *msg;
};

static const struct bad bads[] = {
    {S("Zg="), "base64 length 3 is not a multiple of 4"},          /* odd length */
    {S("Zg"), "base64 length 2 is not a multiple of 4"},           /* padding missing */
    {S("Z"), "base64 length 1 is not a multiple of 4"},
    {S("Zm9vY"), "base64 length 5 is not a multiple of 4"},
    {S("Zm9 Zm9v"), "invalid base64 character 0x20 at offset 3"},  /* space */
    {S("Zm9v\r\nZm9v"), "base64 length 10 is not a multiple of 4"},
    {S("Zm\r\nZm9v"), "invalid base64 character 0x0d at offset 2"},
    {S("Zm9\tv"), "base64 length 5 is not a multiple of 4"},
    {S("Zm\t\tZm9v"), "invalid base64 character 0x09 at offset 2"}, /* tabs */
    {S("Zm9v\0\0\0\0"), "invalid base64 character 0x00 at offset 4"}, /* NUL */
    {S("Zm-v"), "invalid base64 character 0x2d at offset 2"},      /* base64url */
    {S("Zm_v"), "invalid base64 character 0x5f at offset 2"},
    {S("Zm9v\xc3\xa9=="), "invalid base64 character 0xc3 at offset 4"}, /* 8-bit */
    {S("===="), "base64 padding '=' before the end, at offset 0"},
    {S("Z==="), "base64 padding '=' before the end, at offset 1"},
    {S("Zg==Zm9v"), "base64 padding '=' before the end, at offset 2"}, /* concatenated */
    {S("Zm=v"), "base64 padding '=' before the end, at offset 2"},
    {S("Zh=="), "non-canonical base64: unused bits set at offset 1"}, /* 'h' low bits */
    {S("Zm9="), "non-canonical base64: unused bits set at offset 2"},
    {S("*"), "base64 length 1 is not a multiple of 4"},             /* SASL cancel */
};

static void test_malformed_is_refused(void **state)
{
    (void)state;
    strbuf out, err;
    strbuf_init(&out);
    strbuf_init(&err);
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        strbuf_sets(&out, "keep");
        strbuf_reset(&err);
        assert_int_equal(base64_decode(&out, bads[i].in, bads[i].len, &err), -1);
        assert_string_equal(err.data, bads[i].msg);
        assert_string_equal(out.data, "keep"); /* untouched */
        assert_int_equal(base64_decode(&out, bads[i].in, bads[i].len, NULL), -1);
    }
    strbuf_free(&out);
    strbuf_free(&err);
}

/* A large input (a huge SASL response) decodes in linear time and size. */
static void test_large_input(void **state)
{
    (void)state;
    size_t n = 3 * 1024 * 1024;
    char *raw = test_malloc(n);
    for (size_t i = 0; i < n; i++)
        raw[i] = (char)(i * 7);
    strbuf enc, dec;
    strbuf_init(&enc);
    strbuf_init(&dec);
    base64_encode(&enc, raw, n);
    assert_int_equal(enc.len, 4 * 1024 * 1024);
    assert_int_equal(base64_decoded_max(enc.len), n);
    assert_int_equal(base64_decode(&dec, enc.data, enc.len, NULL), 0);
    assert_int_equal(dec.len, n);
    assert_memory_equal(dec.data, raw, n);
    test_free(raw);
    strbuf_free(&enc);
    strbuf_free(&dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_every_byte_round_trips),
        cmocka_unit_test(test_decoded_nul_is_kept),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_malformed_is_refused),
        cmocka_unit_test(test_large_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
