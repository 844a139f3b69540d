/*
 * test_smtpc_mime.c - unit tests for smtp-client's 8-bit to 7-bit MIME
 * downgrade (smtp-client/mime.c, linked in by tests/CMakeLists.txt): exact
 * quoted-printable output, every byte value surviving a decode, line
 * lengths, the MIME headers added to a plain message, multipart and
 * message/rfc822 recursion, parts left alone, and hostile shapes (deep
 * nesting, many header fields, no closing boundary, no body) from
 * BAD-INPUT.md row 6.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtpc.h"

static void conv(const char *in, strbuf *out)
{
    smtpc_mime_convert(in, strlen(in), out);
}

static bool all_7bit(const strbuf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] & 0x80)
            return false;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A strict decoder for the checks: "=XX", soft breaks "=\r\n", CRLF kept. */
static void qp_decode(const char *p, size_t n, strbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '=') {
            strbuf_appendc(out, p[i]);
            continue;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            i += 2;
            continue;
        }
        assert_true(i + 2 < n);
        int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
        assert_true(h >= 0 && l >= 0);
        strbuf_appendc(out, (char)(h * 16 + l));
        i += 2;
    }
}

static const char *body_of(const strbuf *b)
{
    const char *p = strstr(b->data, "\r\n\r\n");
    assert_non_null(p);
    return p + 4;
}

static void test_7bit_unchanged(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    const char *m = "Subject: x\n\nplain text\n";
    conv(m, &out);
    assert_string_equal(out.data, m);
    strbuf_free(&out);
}

static void test_single_part_exact(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    conv("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\nK\xc3\xb6ln = x \r\ntab\t\r\nend",
         &out);
    assert_string_equal(out.data,
                        "Subject: x\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                        "K=C3=B6ln =3D x=20\r\ntab=09\r\nend");
    strbuf_free(&out);
}

static void test_every_byte_round_trips(void **state)
{
    (void)state;
    strbuf in, out, dec;
    strbuf_init(&in);
    strbuf_init(&out);
    strbuf_init(&dec);
    strbuf_appends(&in, "Content-Type: application/octet-stream\r\n\r\n");
    size_t hdr = in.len;
    for (int rep = 0; rep < 3; rep++)
        for (int c = 0; c < 256; c++)
            if (c != '\n' && c != '\r')
                strbuf_appendc(&in, (char)c);
    strbuf_appends(&in, "\r\nlast line \r\n");
    smtpc_mime_convert(in.data, in.len, &out);
    assert_true(all_7bit(&out));
    const char *b = body_of(&out);
    /* Every line at most 76 characters. */
    for (const char *p = b; *p;) {
        const char *e = strstr(p, "\r\n");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        assert_true(len <= 76);
        p += len + (e ? 2 : 0);
    }
    qp_decode(b, strlen(b), &dec);
    assert_int_equal(dec.len, in.len - hdr);
    assert_memory_equal(dec.data, in.data + hdr, dec.len);
    strbuf_free(&in);
    strbuf_free(&out);
    strbuf_free(&dec);
}

static void test_plain_message_gets_mime_headers(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    conv("From: a@b\nSubject: s\n\nd\xc3\xa9j\xc3\xa0\n", &out);
    assert_string_equal(out.data, "From: a@b\nSubject: s\nMIME-Version: 1.0\r\n"
                                  "Content-Type: text/plain; charset=unknown-8bit\r\n"
                                  "Content-Transfer-Encoding: quoted-printable\r\n\n"
                                  "d=C3=A9j=C3=A0\r\n");
    strbuf_free(&out);
}

static void test_multipart(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    conv("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "pre\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\xe9\r\n"
         "--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nAAA=\r\n"
         "--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\n\xff\r\n"
         "--b1--  \r\nepi\r\n",
         &out);
    assert_string_equal(out.data,
                        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"
                        "\r\npre\r\n--b1\r\nContent-Type: text/plain\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"
                        "--b1\r\nContent-Type: text/plain\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\nAAA=\r\n"
                        "--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=FF\r\n"
                        "--b1--  \r\nepi\r\n");
    strbuf_free(&out);
}

static void test_other_encodings_left_alone(void **state)
{
    (void)state;
    strbuf out;
    strbuf_init(&out);
    /* A part that claims quoted-printable but has raw 8-bit bytes, and 8-bit
     * bytes in a header field only: both sent as they are. */
    const char *m = "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
                    "\xe9\n";
    conv(m, &out);
    assert_string_equal(out.data, m);
    const char *h = "Subject: \xc3\xa9t\xc3\xa9\n\nascii body\n";
    conv(h, &out);
    assert_string_equal(out.data, h);
    strbuf_free(&out);
}

static void test_hostile_shapes(void **state)
{
    (void)state;
    strbuf in, out;
    strbuf_init(&in);
    strbuf_init(&out);
    /* 150 nested multiparts with 8-bit text at the bottom: no crash, and
     * the levels beyond the depth limit are copied as they are. */
    for (int i = 0; i < 150; i++)
        strbuf_printf(&in, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
                      i);
    strbuf_appends(&in, "Content-Type: text/plain\r\n\r\n\xe9\r\n");
    for (int i = 149; i >= 0; i--)
        strbuf_printf(&in, "--b%d--\r\n", i);
    smtpc_mime_convert(in.data, in.len, &out);
    assert_true(out.len == in.len);
    /* 10000 header fields, a missing closing boundary, no body at all. */
    strbuf_reset(&in);
    for (int i = 0; i < 10000; i++)
        strbuf_printf(&in, "X-H%d: v\r\n", i);
    strbuf_appends(&in, "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\n\xe9");
    smtpc_mime_convert(in.data, in.len, &out);
    assert_true(all_7bit(&out));
    assert_non_null(strstr(out.data, "--zz\r\nContent-Transfer-Encoding: quoted-printable"
                                     "\r\n\r\n=E9"));
    conv("Subject: \xe9", &out);
    assert_string_equal(out.data, "Subject: \xe9");
    conv("", &out);
    assert_int_equal(out.len, 0);
    conv("Content-Type: multipart/mixed; boundary=\"\"\n\n\xe9", &out);
    assert_true(all_7bit(&out));
    strbuf_free(&in);
    strbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_7bit_unchanged),
        cmocka_unit_test(test_single_part_exact),
        cmocka_unit_test(test_every_byte_round_trips),
        cmocka_unit_test(test_plain_message_gets_mime_headers),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_other_encodings_left_alone),
        cmocka_unit_test(test_hostile_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
