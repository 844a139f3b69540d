/*
 * petrel_check.c - `petrel check`: every problem master would refuse or
 * trip over, each on one line as `file:line: message` (or `path: message`
 * for the queue directory), and exit status 0 only for a usable
 * configuration. master runs the same parsers, so the two never disagree
 * about the syntax.
 */
#include "petrel.h"
#include "mail/queue_layout.h"
#include "mail/service_table.h"
#include "tls/tls.h"
#include "util/config.h"
#include "util/privilege.h"
#include "util/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One problem of a TLS parameter: "petrel.conf:7: parameter name: text\n". */
static void tls_problem(struct petrel_cli *cli, const char *name, const char *text, strbuf *out)
{
    petrel_where(cli, name, out);
    strbuf_printf(out, ": parameter %s: %s\n", name, text);
}

/* smtpd reads the files as mail_owner (master switches users before exec),
 * with its primary group only: say so when that user could not read them. */
static int check_owner_can_read(struct petrel_cli *cli, const char *name, const char *path,
                                strbuf *out)
{
    if (!privilege_can_switch())
        return 0; /* not root: the daemons run as this very user */
    const char *owner = config_get(cli->cfg, "mail_owner");
    struct priv_user u;
    strbuf why;
    strbuf_init(&why);
    struct stat st;
    int n = 0;
    if (owner != NULL && privilege_lookup_user(owner, &u, &why) == PRIV_LOOKUP_FOUND &&
        stat(path, &st) == 0) {
        bool readable = st.st_uid == u.uid   ? (st.st_mode & S_IRUSR) != 0
                        : st.st_gid == u.gid ? (st.st_mode & S_IRGRP) != 0
                                             : (st.st_mode & S_IROTH) != 0;
        if (!readable && u.uid != 0) {
            strbuf_reset(&why);
            strbuf_printf(&why, "%s is not readable by %s, the user smtpd runs as (make it "
                                "owned by root, group %s, mode 0640)", path, owner, owner);
            tls_problem(cli, name, why.data, out);
            n = 1;
        }
        privilege_user_free(&u);
    }
    strbuf_free(&why);
    return n;
}

/* TLS: the certificate and key load and match (the code smtpd uses), the
 * protocol and cipher settings are valid, and the daemons can read the files. */
static int check_tls(struct petrel_cli *cli, strbuf *out)
{
    int n = 0;
    strbuf why;
    strbuf_init(&why);
    static const char *const protocol_params[] = {"smtpd_tls_protocols", "smtp_tls_protocols"};
    for (size_t i = 0; i < 2; i++) {
        int min, max;
        strbuf_reset(&why);
        const char *spec = config_get(cli->cfg, protocol_params[i]);
        if (spec != NULL && tls_parse_protocols(spec, &min, &max, &why) < 0) {
            tls_problem(cli, protocol_params[i], why.data, out);
            n++;
        }
    }
    const char *cert = config_get(cli->cfg, "smtpd_tls_cert_file");
    const char *key = config_get(cli->cfg, "smtpd_tls_key_file");
    bool have_cert = cert != NULL && *cert != '\0', have_key = key != NULL && *key != '\0';
    if (have_cert != have_key) {
        tls_problem(cli, have_cert ? "smtpd_tls_cert_file" : "smtpd_tls_key_file",
                    have_cert ? "set, but smtpd_tls_key_file is empty: set both or neither"
                              : "set, but smtpd_tls_cert_file is empty: set both or neither",
                    out);
        n++;
    } else if (have_cert) {
        strbuf_reset(&why);
        int bad = tls_check_files(cert, key, &why);
        /* One line per problem, named after the file it is about. */
        for (char *line = why.data, *nl; *line != '\0'; line = nl + 1) {
            nl = strchr(line, '\n');
            if (nl == NULL)
                break;
            *nl = '\0';
            tls_problem(cli, strncmp(line, "key file", 8) == 0 ? "smtpd_tls_key_file"
                                                                : "smtpd_tls_cert_file",
                        line, out);
        }
        n += bad;
        if (bad == 0) {
            n += check_owner_can_read(cli, "smtpd_tls_cert_file", cert, out);
            n += check_owner_can_read(cli, "smtpd_tls_key_file", key, out);
            /* Cipher settings only fail when a context is built. */
            SSL_CTX *ctx = NULL;
            strbuf_reset(&why);
            if (n == 0 && tls_server_ctx_from_config(cli->cfg, &ctx, &why) < 0) {
                tls_problem(cli, "smtpd_tls_cipherlist", why.data, out);
                n++;
            }
            tls_ctx_free(&ctx);
        }
    }
    strbuf_reset(&why);
    SSL_CTX *client = n == 0 ? tls_client_ctx_from_config(cli->cfg, &why) : NULL;
    if (n == 0 && client == NULL) {
        tls_problem(cli, "smtp_tls_CAfile", why.data, out);
        n++;
    }
    tls_ctx_free(&client);
    strbuf_free(&why);
    return n;
}

static int check_services(struct petrel_cli *cli, strbuf *out)
{
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/services.conf", cli->config_dir);
    struct service_table t;
    int n = service_table_load(path.data, &t, out);
    const char *ddir = config_get(cli->cfg, "daemon_directory");
    const char *owner = config_get(cli->cfg, "mail_owner");
    for (int i = 0; i < t.nservices; i++) {
        const struct service_def *d = &t.services[i];
        strbuf prog;
        strbuf_init(&prog);
        strbuf_printf(&prog, "%s/%s", ddir ? ddir : "", d->command);
        if (access(prog.data, X_OK) < 0) {
            strbuf_printf(out, "%s:%d: service %s: cannot execute %s: %s\n", path.data, d->line,
                          d->name, prog.data, strerror(errno));
            n++;
        }
        strbuf_free(&prog);
        if (privilege_can_switch()) {
            struct priv_user u;
            strbuf why;
            strbuf_init(&why);
            if (privilege_lookup_user(d->user ? d->user : owner, &u, &why) != PRIV_LOOKUP_FOUND) {
                strbuf_printf(out, "%s:%d: service %s: %s\n", path.data, d->line, d->name,
                              why.data);
                n++;
            }
            privilege_user_free(&u);
            strbuf_free(&why);
        }
        if (d->chroot) {
            struct stat st;
            if (stat(d->chroot, &st) < 0 || !S_ISDIR(st.st_mode)) {
                strbuf_printf(out, "%s:%d: service %s: chroot %s is not a directory\n", path.data,
                              d->line, d->name, d->chroot);
                n++;
            }
        }
    }
    service_table_free(&t);
    strbuf_free(&path);
    return n;
}

static int check_queue(struct petrel_cli *cli, strbuf *out)
{
    const char *q = config_get(cli->cfg, "queue_directory");
    struct stat st;
    if (q == NULL || stat(q, &st) < 0)
        return 0; /* master creates it at the first start */
    struct queue_owners o;
    strbuf why;
    strbuf_init(&why);
    int n = 0;
    if (queue_layout_owners(config_get(cli->cfg, "mail_owner"),
                            config_get(cli->cfg, "setgid_group"), &o, &why) < 0) {
        strbuf_printf(out, "%s\n", why.data);
        n = 1;
    } else {
        n = queue_layout_apply(q, &o, QUEUE_LAYOUT_CHECK, out);
    }
    strbuf_free(&why);
    return n;
}

int cmd_check(struct petrel_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: petrel check\n");
        return 64;
    }
    strbuf out;
    strbuf_init(&out);
    petrel_load(cli, &out);
    int n = cli->load_errors;
    n += config_validate(cli->cfg, &out);
    n += check_tls(cli, &out);
    n += check_services(cli, &out);
    n += check_queue(cli, &out);
    fputs(out.data, stderr);
    strbuf_free(&out);
    if (n) {
        fprintf(stderr, "petrel check: %d problem%s found\n", n, n == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
