/*
 * test_sasl.c - unit tests for the SASL PLAIN and LOGIN server exchanges
 * (lib/mail/sasl): RFC 4616 / RFC 4954 dialogues with and without initial
 * responses, and the hostile inputs of BAD-INPUT.md row 4 (bad base64, odd
 * length, whitespace, "*" cancel, NUL bytes where not allowed, missing
 * separators, proxy authorization, over-long fields, bad UTF-8, control
 * characters, responses after the end).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mail/sasl.h"
#include "util/base64.h"

struct fx {
    struct sasl_server sx;
    strbuf ch, err, b64;
};

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));
    strbuf_init(&f->ch);
    strbuf_init(&f->err);
    strbuf_init(&f->b64);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sasl_server_free(&f->sx);
    strbuf_free(&f->ch);
    strbuf_free(&f->err);
    strbuf_free(&f->b64);
    test_free(f);
    return 0;
}

/* base64 of raw bytes, into f->b64 (returned as a C string). */
static const char *b64(struct fx *f, const char *p, size_t n)
{
    strbuf_reset(&f->b64);
    base64_encode(&f->b64, p, n);
    return f->b64.data;
}
#define B64(f, lit) b64(f, lit, sizeof(lit) - 1)

static void test_mech_names(void **state)
{
    (void)state;
    enum sasl_mech m;
    assert_int_equal(sasl_mech_parse("plain", &m), 0);
    assert_int_equal(m, SASL_MECH_PLAIN);
    assert_int_equal(sasl_mech_parse("LoGiN", &m), 0);
    assert_int_equal(m, SASL_MECH_LOGIN);
    assert_int_equal(sasl_mech_parse("CRAM-MD5", &m), -1);
    assert_int_equal(sasl_mech_parse("", &m), -1);
    assert_string_equal(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
    assert_string_equal(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
}

static void test_plain_initial_response(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    /* RFC 4616 §4 example: "\0tim\0tanstaaftanstaaf". */
    assert_int_equal(sasl_server_start(&f->sx, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &f->ch, &f->err),
                     SASL_DONE);
    assert_string_equal(f->sx.user.data, "tim");
    assert_string_equal(f->sx.password.data, "tanstaaftanstaaf");
    assert_int_equal(f->sx.authzid.len, 0);
    /* Nothing more is accepted once done. */
    assert_int_equal(sasl_server_step(&f->sx, "", 0, &f->ch, &f->err), SASL_MALFORMED);
    assert_string_equal(f->err.data, "response after the end of the exchange");
}

static void test_plain_after_empty_challenge(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(f->ch.len, 0); /* "334 " */
    const char *r = B64(f, "bob\0bob\0s3cr\xc3\xa9t pass");
    assert_int_equal(sasl_server_step(&f->sx, r, strlen(r), &f->ch, &f->err), SASL_DONE);
    assert_string_equal(f->sx.user.data, "bob");
    assert_string_equal(f->sx.authzid.data, "bob"); /* same as the user: allowed */
    assert_string_equal(f->sx.password.data, "s3cr\xc3\xa9t pass");
}

static void test_plain_virtual_user(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    const char *r = B64(f, "\0alice@example.org\0pw");
    assert_int_equal(sasl_server_start(&f->sx, r, &f->ch, &f->err), SASL_DONE);
    assert_string_equal(f->sx.user.data, "alice@example.org");
}

/* "=" is an empty initial response, which is not a valid PLAIN message. */
static void test_plain_empty_initial_response(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, "=", &f->ch, &f->err), SASL_MALFORMED);
    assert_string_equal(f->err.data,
                        "malformed PLAIN response: expected authzid NUL user NUL password");
    /* "=" as a later response is not base64 at all. */
    sasl_server_free(&f->sx);
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(sasl_server_step(&f->sx, "=", 1, &f->ch, &f->err), SASL_BAD_BASE64);
}

static void test_cancel(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(sasl_server_step(&f->sx, "*", 1, &f->ch, &f->err), SASL_CANCELLED);
    assert_string_equal(f->err.data, "authentication cancelled by the client");
    sasl_server_free(&f->sx);
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    const char *u = B64(f, "bob");
    assert_int_equal(sasl_server_step(&f->sx, u, strlen(u), &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(sasl_server_step(&f->sx, "*", 1, &f->ch, &f->err), SASL_CANCELLED);
    /* "*" as the initial response cancels too. */
    sasl_server_free(&f->sx);
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, "*", &f->ch, &f->err), SASL_CANCELLED);
}

struct bad {
    const char *raw;
    size_t n;
    const char *err;
};
#define RAW(x) x, sizeof(x) - 1

static const struct bad plain_bads[] = {
    {RAW("bobpassword"), "malformed PLAIN response: expected authzid NUL user NUL password"},
    {RAW("\0bob"), "malformed PLAIN response: expected authzid NUL user NUL password"},
    {RAW(""), "malformed PLAIN response: expected authzid NUL user NUL password"},
    {RAW("\0\0pw"), "empty user name"},
    {RAW("\0bob\0"), "empty password"},
    {RAW("\0bob\0pw\0extra"), "NUL byte in password"},
    {RAW("\0b\x01ob\0pw"), "control character in user name"},
    {RAW("\0bob\r\nX-Injected: 1\0pw"), "control character in user name"},
    {RAW("\0b\xffob\0pw"), "user name is not valid UTF-8"},
    {RAW("\0\xc0\xafob\0pw"), "user name is not valid UTF-8"},
    {RAW("admin\0bob\0pw"), "authorization identity differs from the user name "
                            "(proxy authorization is not supported)"},
    {RAW("a\x1b[31m\0bob\0pw"), "control character in authorization identity"},
};

static void test_plain_malformed(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(plain_bads) / sizeof(plain_bads[0]); i++) {
        sasl_server_init(&f->sx, SASL_MECH_PLAIN);
        const char *r = b64(f, plain_bads[i].raw, plain_bads[i].n);
        assert_int_equal(sasl_server_start(&f->sx, r, &f->ch, &f->err), SASL_MALFORMED);
        assert_string_equal(f->err.data, plain_bads[i].err);
        assert_int_equal(f->sx.user.len, 0); /* nothing half-filled */
        assert_int_equal(f->sx.password.len, 0);
        sasl_server_free(&f->sx);
    }
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
}

static void test_bad_base64(void **state)
{
    struct fx *f = *state;
    static const char *const bads[] = {
        "AHRpbQB0YW5zdGFhZnRhbnN0YWF",   /* odd length */
        "AHRpbQB0 YW5zdGFhZnRhbnN0YWFm", /* space */
        "AHRpbQB0\tYW5zdGFhZnRhbnN0YWFm",
        "AHRpbQB0YW5zdGFh!nRhbnN0YWFm",  /* bad character */
        "AHRp=QB0YW5zdGFhZnRhbnN0YWFm",  /* padding inside */
        "==",
        "**",
    };
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        sasl_server_init(&f->sx, SASL_MECH_PLAIN);
        assert_int_equal(sasl_server_start(&f->sx, bads[i], &f->ch, &f->err), SASL_BAD_BASE64);
        assert_true(f->err.len > 0);
        sasl_server_free(&f->sx);
        sasl_server_init(&f->sx, SASL_MECH_LOGIN);
        assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
        assert_int_equal(sasl_server_step(&f->sx, bads[i], strlen(bads[i]), &f->ch, &f->err),
                         SASL_BAD_BASE64);
        sasl_server_free(&f->sx);
    }
    /* A NUL byte inside the line itself (the SMTP engine refuses such lines
     * earlier; the decoder must not stop at it either). */
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(sasl_server_step(&f->sx, "AHRp\0QB0", 8, &f->ch, &f->err), SASL_BAD_BASE64);
    assert_string_equal(f->err.data, "invalid base64 character 0x00 at offset 4");
}

static void test_login_dialogue(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    assert_string_equal(f->ch.data, "VXNlcm5hbWU6"); /* "Username:" */
    const char *u = B64(f, "bob@example.org");
    assert_int_equal(sasl_server_step(&f->sx, u, strlen(u), &f->ch, &f->err), SASL_CHALLENGE);
    assert_string_equal(f->ch.data, "UGFzc3dvcmQ6"); /* "Password:" */
    const char *p = B64(f, "p\xc3\xa4ss word");
    assert_int_equal(sasl_server_step(&f->sx, p, strlen(p), &f->ch, &f->err), SASL_DONE);
    assert_string_equal(f->sx.user.data, "bob@example.org");
    assert_string_equal(f->sx.password.data, "p\xc3\xa4ss word");
    assert_int_equal(sasl_server_step(&f->sx, p, strlen(p), &f->ch, &f->err), SASL_MALFORMED);
}

static void test_login_initial_user(void **state)
{
    struct fx *f = *state;
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    const char *u = B64(f, "bob");
    assert_int_equal(sasl_server_start(&f->sx, u, &f->ch, &f->err), SASL_CHALLENGE);
    assert_string_equal(f->ch.data, "UGFzc3dvcmQ6");
    const char *p = B64(f, "pw");
    assert_int_equal(sasl_server_step(&f->sx, p, strlen(p), &f->ch, &f->err), SASL_DONE);
    assert_string_equal(f->sx.user.data, "bob");
}

static void test_login_malformed(void **state)
{
    struct fx *f = *state;
    /* NUL in the user name. */
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    const char *u = B64(f, "bob\0root");
    assert_int_equal(sasl_server_step(&f->sx, u, strlen(u), &f->ch, &f->err), SASL_MALFORMED);
    assert_string_equal(f->err.data, "NUL byte in user name");
    sasl_server_free(&f->sx);
    /* Empty user name (an empty line). */
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    assert_int_equal(sasl_server_start(&f->sx, NULL, &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(sasl_server_step(&f->sx, "", 0, &f->ch, &f->err), SASL_MALFORMED);
    assert_string_equal(f->err.data, "empty user name");
    sasl_server_free(&f->sx);
    /* NUL and empty password. */
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    u = B64(f, "bob");
    assert_int_equal(sasl_server_start(&f->sx, u, &f->ch, &f->err), SASL_CHALLENGE);
    const char *p = B64(f, "pw\0x");
    assert_int_equal(sasl_server_step(&f->sx, p, strlen(p), &f->ch, &f->err), SASL_MALFORMED);
    assert_string_equal(f->err.data, "NUL byte in password");
    sasl_server_free(&f->sx);
    sasl_server_init(&f->sx, SASL_MECH_LOGIN);
    assert_int_equal(sasl_server_start(&f->sx, B64(f, "bob"), &f->ch, &f->err), SASL_CHALLENGE);
    assert_int_equal(sasl_server_step(&f->sx, "", 0, &f->ch, &f->err), SASL_MALFORMED);
    assert_string_equal(f->err.data, "empty password");
}

static void test_overlong_fields(void **state)
{
    struct fx *f = *state;
    size_t n = SASL_FIELD_MAX + 1;
    char *raw = test_malloc(n + 8);
    raw[0] = '\0';
    memset(raw + 1, 'u', n);
    memcpy(raw + 1 + n, "\0pw", 3);
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, b64(f, raw, n + 4), &f->ch, &f->err),
                     SASL_MALFORMED);
    assert_string_equal(f->err.data, "user name longer than 1024 bytes");
    sasl_server_free(&f->sx);
    memcpy(raw, "\0u\0", 3);
    memset(raw + 3, 'p', n);
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, b64(f, raw, n + 3), &f->ch, &f->err),
                     SASL_MALFORMED);
    assert_string_equal(f->err.data, "password longer than 1024 bytes");
    /* Exactly at the limit is fine. */
    sasl_server_free(&f->sx);
    sasl_server_init(&f->sx, SASL_MECH_PLAIN);
    assert_int_equal(sasl_server_start(&f->sx, b64(f, raw, n + 2), &f->ch, &f->err), SASL_DONE);
    assert_int_equal(f->sx.password.len, SASL_FIELD_MAX);
    test_free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mech_names),
        cmocka_unit_test_setup_teardown(test_plain_initial_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_after_empty_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_virtual_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_empty_initial_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_base64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_dialogue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_initial_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_fields, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
