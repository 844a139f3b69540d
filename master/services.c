/*
 * services.c - turns petrel.conf and services.conf into master's service
 * list, checking everything master needs before it changes anything: a
 * reload with a broken configuration keeps the running one.
 */
#define _GNU_SOURCE
#include "master.h"
#include "mail/params.h"
#include "util/config.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/readfile.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void service_free(struct msvc *svc)
{
    listeners_close(svc);
    if (svc->status_rd >= 0)
        close(svc->status_rd);
    if (svc->status_wr >= 0)
        close(svc->status_wr);
    free(svc->listen_fds);
    free(svc->program);
    service_def_free(&svc->def);
    free(svc);
}

static int resolve_user(struct master *m, const char *name, uid_t *uid, gid_t *gid,
                        struct strbuf *err)
{
    if (!m->can_switch) {
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    struct priv_user u;
    strbuf why;
    strbuf_init(&why);
    enum priv_lookup r = privilege_lookup_user(name, &u, &why);
    if (r != PRIV_LOOKUP_FOUND) {
        strbuf_printf(err, "%s\n", why.data);
        strbuf_free(&why);
        return -1;
    }
    *uid = u.uid;
    *gid = u.gid;
    privilege_user_free(&u);
    strbuf_free(&why);
    return 0;
}

/* An in-memory, sealed (unchangeable) copy of the configuration text that
 * every process started from now on reads on SERVER_CONFIG_FD. */
static int sealed_copy(const char *text, size_t len, struct strbuf *err)
{
    int fd = memfd_create("petrel.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        strbuf_printf(err, "memfd_create: %s\n", strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            strbuf_printf(err, "writing the configuration copy: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        strbuf_printf(err, "sealing the configuration copy: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int services_load(struct master *m, struct msvc **list_r, struct strbuf *err)
{
    *list_r = NULL;
    int nerr = 0;
    strbuf path;
    strbuf_init(&path);
    struct config *cfg = params_config_new();
    strbuf_printf(&path, "%s/petrel.conf", m->config_dir);
    /* The text validated here is exactly what new processes get (config_fd). */
    strbuf text;
    strbuf_init(&text);
    if (read_file_limited(path.data, CONFIG_MAX_FILE, &text, err) < 0) {
        strbuf_appendc(err, '\n');
        nerr++;
    } else {
        nerr += config_load_string(cfg, path.data, text.data, text.len, err);
    }
    if (nerr == 0)
        nerr += config_validate(cfg, err);
    long long limit_default = 100, grace = 10;
    if (nerr == 0) {
        const char *q = config_get(cfg, "queue_directory");
        const char *d = config_get(cfg, "daemon_directory");
        const char *o = config_get(cfg, "mail_owner");
        if (m->queue_dir && strcmp(m->queue_dir, q) != 0) {
            log_warning("queue_directory changed from %s to %s: restart master (petrel stop; "
                        "petrel start) to move it; keeping %s",
                        m->queue_dir, q, m->queue_dir);
        } else if (m->queue_dir == NULL) {
            m->queue_dir = xstrdup(q);
        }
        free(m->daemon_dir);
        m->daemon_dir = xstrdup(d);
        free(m->mail_owner);
        m->mail_owner = xstrdup(o);
        free(m->setgid_group);
        m->setgid_group = xstrdup(config_get(cfg, "setgid_group"));
        free(m->log_destination);
        m->log_destination = xstrdup(config_get(cfg, "log_destination"));
        nerr += config_get_int(cfg, "default_process_limit", &limit_default, err) < 0;
        nerr += config_get_time(cfg, "master_stop_timeout", &grace, err) < 0;
        m->grace = (int)grace;
    }
    config_free(&cfg);
    if (nerr) {
        strbuf_free(&path);
        strbuf_free(&text);
        return nerr;
    }

    struct service_table table;
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/services.conf", m->config_dir);
    nerr += service_table_load(path.data, &table, err);
    struct msvc *list = NULL, **tail = &list;
    for (int i = 0; i < table.nservices && nerr == 0; i++) {
        struct service_def *def = &table.services[i];
        struct msvc *svc = xcalloc(1, sizeof(*svc));
        svc->status_rd = svc->status_wr = -1;
        svc->program = xmalloc(strlen(m->daemon_dir) + strlen(def->command) + 2);
        sprintf(svc->program, "%s/%s", m->daemon_dir, def->command);
        if (access(svc->program, X_OK) < 0) {
            strbuf_printf(err, "%s:%d: service %s: cannot execute %s: %m\n", path.data, def->line,
                          def->name, svc->program);
            nerr++;
        }
        if (resolve_user(m, def->user ? def->user : m->mail_owner, &svc->uid, &svc->gid, err) < 0)
            nerr++;
        svc->limit = def->kind == SERVICE_DAEMON ? 1 : def->limit ? def->limit : (int)limit_default;
        svc->drop_in_child = def->chroot == NULL;
        /* Move the definition out of the table. */
        svc->def = *def;
        memset(def, 0, sizeof(*def));
        svc->listen_fds = xmalloc(sizeof(int) * (size_t)(svc->def.nendpoints + 1));
        for (int j = 0; j < svc->def.nendpoints; j++)
            svc->listen_fds[j] = -1;
        *tail = svc;
        tail = &svc->next;
    }
    service_table_free(&table);
    strbuf_free(&path);
    int fd = -1;
    if (nerr == 0 && (fd = sealed_copy(text.data, text.len, err)) < 0)
        nerr++;
    strbuf_free(&text);
    if (nerr) {
        while (list) {
            struct msvc *next = list->next;
            service_free(list);
            list = next;
        }
        return nerr;
    }
    if (m->config_fd >= 0)
        close(m->config_fd);
    m->config_fd = fd;
    *list_r = list;
    return 0;
}
