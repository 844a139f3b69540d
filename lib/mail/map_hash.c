/*
 * map_hash.c - the "hash:" table type: a Berkeley DB hash file, <path>.db.
 *
 * The DB_CONFIG problem (CVE-2017-10140, BAD-INPUT.md row 8): Berkeley DB
 * reads configuration directives from a file named DB_CONFIG in its
 * environment's home directory. A DB opened without an environment, or in
 * one opened with a NULL home, takes the current working directory as home
 * (stock 5.3; some distributions patch this) and with DB_USE_ENVIRON also
 * takes $DB_HOME. A user who runs a program that opens tables from a
 * directory they control could thereby steer the library (data and log
 * directories, sizes, flags). So every table here is opened inside its own
 * private environment (DB_PRIVATE: the regions live in this process's
 * memory, no files) with:
 *  - an explicit home, HASH_ENV_HOME, that cannot contain any file: opening
 *    "/dev/null/DB_CONFIG" fails with ENOTDIR, which the library treats as
 *    "no config file". The table's own directory would not do: a DB_CONFIG
 *    dropped beside a table in a writable directory would be read;
 *  - never DB_USE_ENVIRON or DB_USE_ENVIRON_ROOT, so $DB_HOME is ignored;
 *  - absolute file names only, so no home or data directory takes part in
 *    finding the file.
 * tests/unit/test_map.c plants hostile DB_CONFIG files in the working
 * directory, beside the table and under $DB_HOME and checks that none is
 * read.
 *
 * Records are written as Postfix's postmap and sendmail's newaliases write
 * them: key and value each followed by a NUL byte. Lookups try the key with
 * the NUL and then without, so .db files built by either tool read too.
 */
#include "mail/map_int.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_ENV_HOME "/dev/null"
/* Cache for building: large tables are written much faster with it. The
 * default (256 KiB) is enough for lookups. */
#define HASH_BUILD_CACHE (16 * 1024 * 1024)
/* Longest library message kept for our error text. */
#define HASH_MSG_MAX 300

struct hash_priv {
    DB_ENV *env;
    DB *db;
    strbuf bdb_msg; /* the library's last message, for our errors */
};

/* The library reports details (which check failed on which page) through
 * this callback rather than through return codes; keep the last one. */
static void hash_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void)prefix;
    struct hash_priv *p = env->app_private;
    if (p == NULL || msg == NULL)
        return;
    strbuf_reset(&p->bdb_msg);
    size_t n = strlen(msg);
    strbuf_append(&p->bdb_msg, msg, n > HASH_MSG_MAX ? HASH_MSG_MAX : n);
}

/* "<strerror>" or "<strerror> (<library detail>)". */
static void describe(strbuf *err, const struct hash_priv *p, int ret)
{
    strbuf_appends(err, db_strerror(ret));
    if (p->bdb_msg.len > 0) {
        strbuf_appends(err, " (");
        log_sanitize(err, p->bdb_msg.data, p->bdb_msg.len);
        strbuf_appends(err, ")");
    }
}

static void env_close(struct hash_priv *p)
{
    if (p->db != NULL)
        p->db->close(p->db, 0);
    p->db = NULL;
    if (p->env != NULL)
        p->env->close(p->env, 0);
    p->env = NULL;
}

/* Creates and opens the private environment (see the top of this file). */
static int env_open(struct hash_priv *p, u_int32_t cache, strbuf *err)
{
    int ret = db_env_create(&p->env, 0);
    if (ret != 0) {
        p->env = NULL;
        strbuf_printf(err, "cannot create a Berkeley DB environment: %s", db_strerror(ret));
        return -1;
    }
    p->env->app_private = p;
    p->env->set_errcall(p->env, hash_errcall);
    if (cache != 0 && (ret = p->env->set_cachesize(p->env, 0, cache, 1)) != 0) {
        strbuf_appends(err, "cannot set the Berkeley DB cache size: ");
        describe(err, p, ret);
        env_close(p);
        return -1;
    }
    /* No DB_USE_ENVIRON / DB_USE_ENVIRON_ROOT: $DB_HOME must not count. */
    ret = p->env->open(p->env, HASH_ENV_HOME, DB_CREATE | DB_INIT_MPOOL | DB_PRIVATE, 0);
    if (ret != 0) {
        strbuf_appends(err, "cannot open a Berkeley DB environment: ");
        describe(err, p, ret);
        env_close(p);
        return -1;
    }
    return 0;
}

static int hash_open(struct map *m, strbuf *err)
{
    struct hash_priv *p = xcalloc(1, sizeof(*p));
    strbuf_init(&p->bdb_msg);
    if (env_open(p, 0, err) != 0)
        goto fail;
    int ret = db_create(&p->db, p->env, 0);
    if (ret != 0) {
        p->db = NULL;
        strbuf_printf(err, "cannot create a Berkeley DB handle: %s", db_strerror(ret));
        goto fail;
    }
    ret = p->db->open(p->db, NULL, m->file, NULL, DB_HASH, DB_RDONLY, 0);
    if (ret != 0) {
        strbuf_printf(err, "cannot open database %s: ", m->file);
        if (ret == EINVAL)
            strbuf_appends(err, "not a Berkeley DB hash file, or corrupt: ");
        describe(err, p, ret);
        goto fail;
    }
    int fd;
    struct stat st;
    if (p->db->fd(p->db, &fd) != 0 || fstat(fd, &st) != 0) {
        strbuf_printf(err, "cannot examine database %s: %s", m->file, strerror(errno));
        goto fail;
    }
    /* Delivery runs commands: no table descriptor may leak into them. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        strbuf_printf(err, "database %s: cannot set close-on-exec: %s", m->file, strerror(errno));
        goto fail;
    }
    map_file_id_from_stat(&m->id, &st);
    m->priv = p;
    return 0;
fail:
    env_close(p);
    strbuf_free(&p->bdb_msg);
    free(p);
    return -1;
}

static enum map_status hash_lookup(struct map *m, const char *key, size_t keylen, strbuf *value,
                                   strbuf *err)
{
    struct hash_priv *p = m->priv;
    strbuf_reset(&p->bdb_msg);
    int ret = DB_NOTFOUND;
    DBT k, v;
    /* With the terminating NUL first (our files, postmap, newaliases), then
     * without (other tools). key[keylen] is the NUL. */
    for (int with_nul = 1; with_nul >= 0 && ret == DB_NOTFOUND; with_nul--) {
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        k.data = (void *)key;
        k.size = (u_int32_t)(keylen + (size_t)with_nul);
        ret = p->db->get(p->db, NULL, &k, &v, 0);
    }
    if (ret == DB_NOTFOUND)
        return MAP_NOTFOUND;
    if (ret != 0) {
        strbuf_printf(err, "read error in %s: ", m->file);
        describe(err, p, ret);
        return MAP_ERROR;
    }
    size_t n = v.size;
    if (n > 0 && ((const char *)v.data)[n - 1] == '\0')
        n--;
    if (memchr(v.data, '\0', n) != NULL) {
        strbuf_printf(err, "corrupt value in %s: it holds a NUL byte", m->file);
        return MAP_ERROR;
    }
    strbuf_set(value, v.data, n);
    return MAP_FOUND;
}

static void hash_close(struct map *m)
{
    struct hash_priv *p = m->priv;
    env_close(p);
    strbuf_free(&p->bdb_msg);
    free(p);
    m->priv = NULL;
}

/* Syncs the directory holding path, so that a rename into it is durable. */
static int sync_dir_of(const char *path, strbuf *err)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0) {
        strbuf_printf(err, "cannot sync directory %s: %s", dir, strerror(errno));
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Writes the entries into the (empty) file tmp. */
static int write_db(const char *tmp, const struct map_entries *e, strbuf *err)
{
    struct hash_priv p = {0};
    strbuf_init(&p.bdb_msg);
    int rc = -1;
    if (env_open(&p, HASH_BUILD_CACHE, err) != 0)
        goto out;
    int ret = db_create(&p.db, p.env, 0);
    if (ret != 0) {
        p.db = NULL;
        strbuf_printf(err, "cannot create a Berkeley DB handle: %s", db_strerror(ret));
        goto out;
    }
    if (e->n > 0 && e->n < UINT32_MAX)
        p.db->set_h_nelem(p.db, (u_int32_t)e->n);
    ret = p.db->open(p.db, NULL, tmp, NULL, DB_HASH, DB_CREATE, 0600);
    if (ret != 0) {
        strbuf_printf(err, "cannot create database %s: ", tmp);
        describe(err, &p, ret);
        goto out;
    }
    for (size_t i = 0; i < e->n; i++) {
        DBT k, v;
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        k.data = e->v[i].key;
        k.size = (u_int32_t)(e->v[i].key_len + 1);
        v.data = e->v[i].value;
        v.size = (u_int32_t)(e->v[i].value_len + 1);
        ret = p.db->put(p.db, NULL, &k, &v, DB_NOOVERWRITE);
        if (ret != 0) {
            strbuf_printf(err, "cannot write to database %s: ", tmp);
            describe(err, &p, ret);
            goto out;
        }
    }
    /* close writes every dirty page back to the file. */
    ret = p.db->close(p.db, 0);
    p.db = NULL;
    if (ret != 0) {
        strbuf_printf(err, "cannot write database %s: ", tmp);
        describe(err, &p, ret);
        goto out;
    }
    rc = 0;
out:
    env_close(&p);
    strbuf_free(&p.bdb_msg);
    return rc;
}

static int hash_build(const char *file, const struct map_entries *e, mode_t mode, uid_t uid,
                      gid_t gid, strbuf *err)
{
    /* The new table is made beside the old one and renamed over it: a
     * reader sees the old file or the complete new one, never a half. */
    size_t n = strlen(file);
    char *tmp = xmalloc(n + sizeof(".tmpXXXXXX"));
    memcpy(tmp, file, n);
    memcpy(tmp + n, ".tmpXXXXXX", sizeof(".tmpXXXXXX"));
    int fd = mkstemp(tmp);
    if (fd >= 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fd < 0) {
        strbuf_printf(err, "cannot create a temporary file beside %s: %s", file, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = -1;
    if (write_db(tmp, e, err) != 0)
        goto out;
    if (fchmod(fd, mode) != 0) {
        strbuf_printf(err, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (uid != (uid_t)-1 && geteuid() == 0 && fchown(fd, uid, gid) != 0) {
        strbuf_printf(err, "cannot set the owner of %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        strbuf_printf(err, "cannot sync %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, file) != 0) {
        strbuf_printf(err, "cannot rename %s to %s: %s", tmp, file, strerror(errno));
        goto out;
    }
    rc = 0;
    /* The new table is in place; a failed directory sync only weakens its
     * durability across a crash, which deserves a warning, not a failure. */
    strbuf msg;
    strbuf_init(&msg);
    if (sync_dir_of(file, &msg) != 0)
        log_warning("table %s: %s", file, msg.data);
    strbuf_free(&msg);
out:
    if (rc != 0)
        unlink(tmp);
    close(fd);
    free(tmp);
    return rc;
}

const struct map_type map_type_hash = {
    .name = "hash",
    .suffix = ".db",
    .open = hash_open,
    .lookup = hash_lookup,
    .close = hash_close,
    .build = hash_build,
};
