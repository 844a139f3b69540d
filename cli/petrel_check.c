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
#include "util/config.h"
#include "util/privilege.h"
#include "util/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* TLS files: readable when set (whether they match is checked with TLS). */
static int check_readable(struct petrel_cli *cli, const char *name, strbuf *out)
{
    const char *v = config_get(cli->cfg, name);
    if (v == NULL || *v == '\0')
        return 0;
    if (access(v, R_OK) == 0)
        return 0;
    petrel_where(cli, name, out);
    strbuf_printf(out, ": parameter %s: cannot read %s: %s\n", name, v, strerror(errno));
    return 1;
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
    n += check_readable(cli, "smtpd_tls_cert_file", &out);
    n += check_readable(cli, "smtpd_tls_key_file", &out);
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
