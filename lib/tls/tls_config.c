/*
 * tls_config.c - the TLS settings of petrel.conf: protocol specifications in
 * Postfix's syntax, client security levels, and the contexts built from the
 * smtpd_tls_* and smtp_tls_* parameters (lib/mail/params.c).
 */
#include "tls/tls.h"
#include "tls/tls_int.h"
#include "util/config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* The versions a spec may name, oldest first. SSLv2/SSLv3 only ever appear
 * as exclusions in old Postfix configurations. */
static const struct {
    const char *name;
    int version;
    bool usable;
} versions[] = {
    {"SSLv2", SSL2_VERSION, false},    {"SSLv3", SSL3_VERSION, false},
    {"TLSv1", TLS1_VERSION, true},     {"TLSv1.1", TLS1_1_VERSION, true},
    {"TLSv1.2", TLS1_2_VERSION, true}, {"TLSv1.3", TLS1_3_VERSION, true},
};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

static int version_index(const char *name)
{
    for (size_t i = 0; i < NVERSIONS; i++)
        if (strcasecmp(versions[i].name, name) == 0)
            return (int)i;
    return -1;
}

int tls_parse_protocols(const char *spec, int *min_r, int *max_r, strbuf *err)
{
    if (spec == NULL || spec[strspn(spec, " \t,")] == '\0')
        spec = ">=TLSv1.2";
    /* Bit i: versions[i] allowed. Plain names select, '!' removes, bounds cut. */
    unsigned selected = 0, excluded = 0, lower = 0, upper = NVERSIONS - 1;
    bool any_plain = false;
    struct config_list items;
    config_split_list(spec, &items);
    int rc = 0;
    for (size_t k = 0; k < items.count && rc == 0; k++) {
        const char *t = items.items[k];
        const char *name = t;
        char op = 0;
        if (strncmp(t, ">=", 2) == 0 || strncmp(t, "<=", 2) == 0) {
            op = t[0];
            name = t + 2;
        } else if (t[0] == '!') {
            op = '!';
            name = t + 1;
        }
        int i = version_index(name);
        if (i < 0) {
            strbuf_printf(err, "unknown TLS protocol '%s' (known: TLSv1, TLSv1.1, TLSv1.2, "
                               "TLSv1.3, and !SSLv2, !SSLv3 as exclusions)", name);
            rc = -1;
        } else if (op == '!') {
            excluded |= 1u << i;
        } else if (!versions[i].usable) {
            strbuf_printf(err, "TLS protocol %s is not supported; only exclude it (!%s)", name,
                          name);
            rc = -1;
        } else if (op == '>') {
            lower = (unsigned)i;
        } else if (op == '<') {
            upper = (unsigned)i;
        } else {
            selected |= 1u << i;
            any_plain = true;
        }
    }
    config_list_free(&items);
    if (rc < 0)
        return -1;

    unsigned allowed = 0;
    for (unsigned i = 0; i < NVERSIONS; i++) {
        bool in = versions[i].usable && i >= lower && i <= upper && !(excluded & (1u << i)) &&
                  (!any_plain || (selected & (1u << i)));
        if (in)
            allowed |= 1u << i;
    }
    if (allowed == 0) {
        strbuf_printf(err, "TLS protocols '%s' leave no protocol version enabled", spec);
        return -1;
    }
    int lo = -1, hi = -1;
    for (int i = 0; i < (int)NVERSIONS; i++) {
        if (allowed & (1u << i)) {
            if (lo < 0)
                lo = i;
            hi = i;
        }
    }
    for (int i = lo; i <= hi; i++) {
        if (!(allowed & (1u << i))) {
            strbuf_printf(err, "TLS protocols '%s' leave a gap (%s is off between %s and %s); "
                               "give a range such as >=TLSv1.2",
                          spec, versions[i].name, versions[lo].name, versions[hi].name);
            return -1;
        }
    }
    *min_r = versions[lo].version;
    /* The newest version known here is left unbounded, so that a later
     * OpenSSL may negotiate a newer one. */
    *max_r = hi == (int)NVERSIONS - 1 ? 0 : versions[hi].version;
    return 0;
}

static const char *const level_names[] = {"none", "may", "encrypt", "verify"};

int tls_parse_level(const char *s, enum tls_level *level_r)
{
    for (int i = 0; s != NULL && i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level_r = (enum tls_level)i;
            return 0;
        }
    }
    return -1;
}

const char *tls_level_str(enum tls_level level)
{
    if ((unsigned)level < 4)
        return level_names[level];
    return "unknown";
}

/* config_get that treats a failed expansion as an error line. */
static int get(struct config *cfg, const char *name, const char **v, strbuf *err)
{
    if (config_get_str(cfg, name, v, err) < 0) {
        tls_chomp(err);
        return -1;
    }
    return 0;
}

int tls_server_ctx_from_config(struct config *cfg, SSL_CTX **ctx_r, strbuf *err)
{
    *ctx_r = NULL;
    struct tls_server_settings s;
    memset(&s, 0, sizeof(s));
    if (get(cfg, "smtpd_tls_cert_file", &s.cert_file, err) < 0 ||
        get(cfg, "smtpd_tls_key_file", &s.key_file, err) < 0 ||
        get(cfg, "smtpd_tls_protocols", &s.protocols, err) < 0 ||
        get(cfg, "smtpd_tls_cipherlist", &s.cipherlist, err) < 0 ||
        get(cfg, "smtpd_tls_ciphersuites", &s.ciphersuites, err) < 0)
        return -1;
    if (*s.cert_file == '\0' && *s.key_file == '\0')
        return 0;
    if (*s.cert_file == '\0' || *s.key_file == '\0') {
        strbuf_printf(err, "smtpd_tls_%s_file is set but smtpd_tls_%s_file is empty: set both "
                           "or neither",
                      *s.cert_file ? "cert" : "key", *s.cert_file ? "key" : "cert");
        return -1;
    }
    long long timeout = 0;
    if (config_get_time(cfg, "smtpd_tls_session_cache_timeout", &timeout, err) < 0) {
        tls_chomp(err);
        return -1;
    }
    s.session_timeout = timeout > INT32_MAX ? INT32_MAX : (int)timeout;
    /* Pointers into cfg stay valid: nothing is set or loaded in between. */
    *ctx_r = tls_server_ctx_new(&s, err);
    return *ctx_r != NULL ? 1 : -1;
}

SSL_CTX *tls_client_ctx_from_config(struct config *cfg, strbuf *err)
{
    struct tls_client_settings s;
    memset(&s, 0, sizeof(s));
    if (get(cfg, "smtp_tls_protocols", &s.protocols, err) < 0 ||
        get(cfg, "smtp_tls_cipherlist", &s.cipherlist, err) < 0 ||
        get(cfg, "smtp_tls_ciphersuites", &s.ciphersuites, err) < 0 ||
        get(cfg, "smtp_tls_CAfile", &s.ca_file, err) < 0 ||
        get(cfg, "smtp_tls_CApath", &s.ca_path, err) < 0)
        return NULL;
    return tls_client_ctx_new(&s, err);
}
