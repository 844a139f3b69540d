/*
 * tls_ctx.c - building OpenSSL contexts: one per process and role, built at
 * start-up (and again at a reload) from settings that tls_config.c reads
 * from petrel.conf.
 *
 * Choices that apply to every context:
 *  - protocol floor TLS 1.2 unless the administrator says otherwise;
 *  - OpenSSL's own cipher defaults (with TLS 1.2+ they are AEAD/forward
 *    secret), replaceable by an OpenSSL cipher string;
 *  - no renegotiation (SSL_OP_NO_RENEGOTIATION), no compression;
 *  - a peer that closes without close_notify is an ordinary end of file:
 *    SMTP, POP3 and IMAP frame their own data, so truncation is detected
 *    above TLS, and many clients simply close after QUIT;
 *  - never a pass phrase prompt.
 */
#include "tls/tls.h"
#include "tls/tls_int.h"

#include <openssl/err.h>

#include <string.h>

/* Session id context: resumption only within Petrel's own servers. */
static const unsigned char session_id_context[] = "petrel";

int tls_ctx_apply_common(SSL_CTX *ctx, const char *protocols, const char *cipherlist,
                         const char *ciphersuites, strbuf *err)
{
    int min = 0, max = 0;
    strbuf why;
    strbuf_init(&why);
    if (tls_parse_protocols(protocols, &min, &max, &why) < 0) {
        strbuf_append_sb(err, &why);
        strbuf_free(&why);
        return -1;
    }
    strbuf_free(&why);
    ERR_clear_error();
    if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max)) {
        strbuf_appends(err, "cannot set the TLS protocol range: ");
        tls_append_ssl_errors(err, "not supported by this OpenSSL");
        return -1;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (cipherlist != NULL && *cipherlist != '\0' && !SSL_CTX_set_cipher_list(ctx, cipherlist)) {
        strbuf_printf(err, "invalid TLS cipher list '%s': ", cipherlist);
        tls_append_ssl_errors(err, "no cipher matches");
        return -1;
    }
    if (ciphersuites != NULL && *ciphersuites != '\0' &&
        !SSL_CTX_set_ciphersuites(ctx, ciphersuites)) {
        strbuf_printf(err, "invalid TLS 1.3 cipher suites '%s': ", ciphersuites);
        tls_append_ssl_errors(err, "no suite matches");
        return -1;
    }
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
    return 0;
}

SSL_CTX *tls_server_ctx_new(const struct tls_server_settings *s, strbuf *err)
{
    struct tls_keypair kp;
    strbuf why;
    strbuf_init(&why);
    if (tls_keypair_load(s->cert_file, s->key_file, &kp, &why) > 0) {
        /* Several problems come as lines; the contract is one line. */
        tls_chomp(&why);
        for (size_t i = 0; i < why.len; i++)
            if (why.data[i] == '\n')
                why.data[i] = ';';
        strbuf_append_sb(err, &why);
        strbuf_free(&why);
        return NULL;
    }
    strbuf_free(&why);

    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        strbuf_appends(err, "cannot create a TLS server context: ");
        tls_append_ssl_errors(err, "out of memory");
        tls_keypair_free(&kp);
        return NULL;
    }
    if (tls_ctx_apply_common(ctx, s->protocols, s->cipherlist, s->ciphersuites, err) < 0)
        goto fail;
    /* SSL_CTX_use_* take their own references; the chain is handed over. */
    if (!SSL_CTX_use_certificate(ctx, kp.cert) || !SSL_CTX_use_PrivateKey(ctx, kp.key)) {
        strbuf_printf(err, "certificate %s or key %s refused by OpenSSL: ", s->cert_file,
                      s->key_file);
        tls_append_ssl_errors(err, "unknown error");
        goto fail;
    }
    if (!SSL_CTX_set1_chain(ctx, kp.chain)) {
        strbuf_printf(err, "certificate file %s: chain refused by OpenSSL: ", s->cert_file);
        tls_append_ssl_errors(err, "unknown error");
        goto fail;
    }
    if (!SSL_CTX_check_private_key(ctx)) {
        strbuf_printf(err, "key file %s does not match the certificate in %s", s->key_file,
                      s->cert_file);
        ERR_clear_error();
        goto fail;
    }
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof(session_id_context) - 1);
    if (s->session_timeout > 0) {
        /* An in-process cache for TLS 1.2 session ids, and tickets (TLS 1.2
         * and 1.3) sealed with this process's random key. A process serves
         * up to max_use clients, so a returning client that reaches the same
         * process resumes; tickets are not shared between processes. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, 1000);
        SSL_CTX_set_timeout(ctx, s->session_timeout);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    tls_keypair_free(&kp);
    return ctx;

fail:
    tls_keypair_free(&kp);
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx_new(const struct tls_client_settings *s, strbuf *err)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        strbuf_appends(err, "cannot create a TLS client context: ");
        tls_append_ssl_errors(err, "out of memory");
        return NULL;
    }
    if (tls_ctx_apply_common(ctx, s->protocols, s->cipherlist, s->ciphersuites, err) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    bool file = s->ca_file != NULL && *s->ca_file != '\0';
    bool path = s->ca_path != NULL && *s->ca_path != '\0';
    if (file || path) {
        if (!SSL_CTX_load_verify_locations(ctx, file ? s->ca_file : NULL,
                                           path ? s->ca_path : NULL)) {
            strbuf_printf(err, "cannot load trusted certificates from %s%s%s: ",
                          file ? s->ca_file : "", file && path ? " and " : "",
                          path ? s->ca_path : "");
            tls_append_ssl_errors(err, "unknown error");
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (!SSL_CTX_set_default_verify_paths(ctx)) {
        /* No system store: verification will fail, opportunistic TLS works. */
        ERR_clear_error();
    }
    /* Verification is decided per connection (tls_client_start). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return ctx;
}

int tls_server_ctx_reload(SSL_CTX **ctxp, const struct tls_server_settings *s, strbuf *err)
{
    SSL_CTX *fresh = tls_server_ctx_new(s, err);
    if (fresh == NULL)
        return -1;
    SSL_CTX_free(*ctxp);
    *ctxp = fresh;
    return 0;
}

void tls_ctx_free(SSL_CTX **ctxp)
{
    if (*ctxp != NULL) {
        SSL_CTX_free(*ctxp);
        *ctxp = NULL;
    }
}
