/*
 * tls_files.c - reading a certificate chain and its private key from PEM
 * files, with an administrator's error for every way they can be wrong;
 * shared by the context builder (tls_ctx.c) and `petrel check`
 * (tls_check_files), so both say the same thing about the same files.
 *
 * The files are read whole through read_file_limited() (regular files only,
 * bounded size) and parsed from memory; the key's bytes are wiped after.
 */
#include "tls/tls.h"
#include "tls/tls_int.h"
#include "util/readfile.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string.h>
#include <time.h>

int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* no pass phrase: an encrypted key fails to load */
}

void tls_append_ssl_errors(strbuf *err, const char *fallback)
{
    unsigned long e;
    bool any = false;
    while ((e = ERR_get_error()) != 0) {
        const char *reason = ERR_reason_error_string(e);
        char tmp[256];
        if (reason == NULL) {
            ERR_error_string_n(e, tmp, sizeof(tmp));
            reason = tmp;
        }
        strbuf_printf(err, "%s%s", any ? "; " : "", reason);
        any = true;
    }
    if (!any)
        strbuf_appends(err, fallback);
}

void tls_chomp(strbuf *err)
{
    while (err->len > 0 && err->data[err->len - 1] == '\n')
        strbuf_truncate(err, err->len - 1);
}

/* Reads `path` into out; on failure appends "<what> file <readfile message>". */
static int read_pem(const char *what, const char *path, strbuf *out, strbuf *err)
{
    strbuf why;
    strbuf_init(&why);
    int r = read_file_limited(path, TLS_MAX_PEM_FILE, out, &why);
    if (r < 0)
        strbuf_printf(err, "%s file %s\n", what, why.data);
    strbuf_free(&why);
    return r;
}

static int load_certs(const char *path, struct tls_keypair *kp, strbuf *err)
{
    strbuf pem;
    strbuf_init(&pem);
    if (read_pem("certificate", path, &pem, err) < 0) {
        strbuf_free(&pem);
        return 1;
    }
    int problems = 0;
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    if (bio != NULL)
        kp->cert = PEM_read_bio_X509_AUX(bio, NULL, tls_no_passphrase, NULL);
    if (kp->cert == NULL) {
        strbuf_printf(err, "certificate file %s: no PEM certificate found (", path);
        tls_append_ssl_errors(err, "empty file");
        strbuf_appends(err, ")\n");
        problems = 1;
    } else {
        kp->chain = sk_X509_new_null();
        X509 *x;
        while (kp->chain != NULL &&
               (x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL)) != NULL) {
            if (!sk_X509_push(kp->chain, x)) {
                X509_free(x);
                break;
            }
        }
        /* The loop ends with "no start line" at the end of the file, which
         * is normal; anything else is a damaged chain certificate. */
        unsigned long e = ERR_peek_last_error();
        if (kp->chain == NULL || (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
            strbuf_printf(err, "certificate file %s: damaged chain certificate after the first (",
                          path);
            tls_append_ssl_errors(err, "out of memory");
            strbuf_appends(err, ")\n");
            problems = 1;
        }
        ERR_clear_error();
    }
    BIO_free(bio);
    strbuf_free(&pem);
    return problems;
}

static int load_key(const char *path, struct tls_keypair *kp, strbuf *err)
{
    strbuf pem;
    strbuf_init(&pem);
    if (read_pem("key", path, &pem, err) < 0) {
        strbuf_free(&pem);
        return 1;
    }
    int problems = 0;
    BIO *bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    ERR_clear_error();
    if (bio != NULL)
        kp->key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
    if (kp->key == NULL) {
        bool encrypted = strstr(pem.data, "ENCRYPTED") != NULL;
        strbuf_printf(err, "key file %s: %s (", path,
                      encrypted ? "the private key is encrypted; Petrel needs it without a "
                                  "pass phrase"
                                : "no PEM private key found");
        tls_append_ssl_errors(err, "empty file");
        strbuf_appends(err, ")\n");
        problems = 1;
    }
    BIO_free(bio);
    OPENSSL_cleanse(pem.data, pem.len);
    strbuf_free(&pem);
    return problems;
}

int tls_keypair_load(const char *cert_file, const char *key_file, struct tls_keypair *kp,
                     strbuf *err)
{
    memset(kp, 0, sizeof(*kp));
    if (cert_file == NULL || *cert_file == '\0') {
        strbuf_appends(err, "no certificate file given\n");
        return 1;
    }
    if (key_file == NULL || *key_file == '\0') {
        strbuf_appends(err, "no key file given\n");
        return 1;
    }
    int problems = load_certs(cert_file, kp, err);
    problems += load_key(key_file, kp, err);
    if (problems == 0) {
        ERR_clear_error();
        if (X509_check_private_key(kp->cert, kp->key) != 1) {
            strbuf_printf(err, "key file %s does not match the certificate in %s\n", key_file,
                          cert_file);
            ERR_clear_error();
            problems = 1;
        }
    }
    if (problems > 0)
        tls_keypair_free(kp);
    return problems;
}

void tls_keypair_free(struct tls_keypair *kp)
{
    X509_free(kp->cert);
    sk_X509_pop_free(kp->chain, X509_free);
    EVP_PKEY_free(kp->key);
    memset(kp, 0, sizeof(*kp));
}

/* Appends an ASN1_TIME as OpenSSL prints it ("Jan  1 00:00:00 2001 GMT"). */
static void append_time(strbuf *out, const ASN1_TIME *t)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (ASN1_TIME_print(b, t) == 1) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        if (n > 0)
            strbuf_append(out, p, (size_t)n);
    }
    BIO_free(b);
}

int tls_check_files(const char *cert_file, const char *key_file, strbuf *err)
{
    struct tls_keypair kp;
    int problems = tls_keypair_load(cert_file, key_file, &kp, err);
    if (problems > 0)
        return problems;
    time_t now = time(NULL);
    const ASN1_TIME *nb = X509_get0_notBefore(kp.cert);
    const ASN1_TIME *na = X509_get0_notAfter(kp.cert);
    if (X509_cmp_time(na, &now) < 0) {
        strbuf_printf(err, "certificate file %s: certificate expired on ", cert_file);
        append_time(err, na);
        strbuf_appendc(err, '\n');
        problems++;
    } else if (X509_cmp_time(nb, &now) > 0) {
        strbuf_printf(err, "certificate file %s: certificate not valid before ", cert_file);
        append_time(err, nb);
        strbuf_appendc(err, '\n');
        problems++;
    }
    tls_keypair_free(&kp);
    return problems;
}
