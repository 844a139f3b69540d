/*
 * tls_conn_info.c - what a TLS connection tells about itself, for log lines
 * and the Received: header: protocol and cipher, the peer's certificate
 * (escaped, since a certificate name is outside input), the verification
 * result, resumption, and the session for a later resumption.
 */
#include "tls/tls.h"
#include "tls/tls_int.h"

#include <openssl/x509.h>

size_t tls_conn_dropped(const struct tls_conn *c)
{
    return c->dropped;
}

void tls_describe(const struct tls_conn *c, strbuf *out)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(c->ssl);
    strbuf_printf(out, "%s %s", SSL_get_version(c->ssl),
                  cipher != NULL ? SSL_CIPHER_get_name(cipher) : "(no cipher)");
}

/* Appends a certificate name in RFC 2253 form; every byte that is not
 * printable ASCII is written as \xHH, so a hostile CN (NUL, CR LF, escape
 * sequences) cannot forge a log line or a header. */
static void append_name(strbuf *out, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        for (long i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)p[i];
            if (ch < 0x20 || ch >= 0x7f)
                strbuf_printf(out, "\\x%02X", ch);
            else
                strbuf_appendc(out, (char)ch);
        }
    }
    BIO_free(b);
}

void tls_describe_peer(const struct tls_conn *c, strbuf *out)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL) {
        strbuf_appends(out, "no peer certificate");
        return;
    }
    strbuf_appends(out, "subject=");
    append_name(out, X509_get_subject_name(peer));
    strbuf_appends(out, ", issuer=");
    append_name(out, X509_get_issuer_name(peer));
}

bool tls_conn_verified(const struct tls_conn *c)
{
    return c->verified;
}

const char *tls_conn_verify_result(const struct tls_conn *c)
{
    return X509_verify_cert_error_string(c->verify_result);
}

bool tls_conn_resumed(const struct tls_conn *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

SSL_SESSION *tls_conn_get_session(const struct tls_conn *c)
{
    return SSL_get1_session(c->ssl);
}

SSL *tls_conn_ssl(const struct tls_conn *c)
{
    return c->ssl;
}

const char *tls_conn_error(const struct tls_conn *c)
{
    return c->error.data;
}

