/*
 * throttle.c - failed logins per client address, shared by all auth
 * processes.
 *
 * auth runs as several pre-forked processes (one client each), so the
 * counters live in one small text file, <state_dir>/failures, read and
 * rewritten under flock(): a shared lock to check, an exclusive one to
 * count. One line per client that failed recently:
 *
 *   ADDRESS FAILURES WINDOW_START THROTTLED_UNTIL
 *
 * A failure starts a window of auth_failure_window seconds; failures in
 * it add up; the auth_failure_limit-th one throttles the client until
 * now + auth_failure_window. Each failure answer waits failures ×
 * auth_failure_delay ms, at most auth_failure_max_delay. Expired lines are
 * dropped on every rewrite, and the file never holds more than
 * THROTTLE_MAX_ENTRIES clients (the oldest go first), so a flood of
 * addresses cannot grow it without bound. The file is state, not
 * configuration: a line that does not parse is dropped, and any error
 * (logged) lets the request through rather than locking everyone out.
 */
#include "auth.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define THROTTLE_MAX_ENTRIES 10000
#define THROTTLE_FILE_MAX (4 * 1024 * 1024)

struct entry {
    char addr[AUTH_CLIENT_MAX + 1];
    long long failures;
    long long window_start;
    long long throttled_until;
};

struct table {
    struct entry *e;
    size_t n;
};

static int open_locked(const struct auth_settings *s, int how)
{
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/failures", s->state_dir);
    int fd = open(path.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warning("cannot open %s: %m (failed logins are not counted)", path.data);
    } else if (flock(fd, how) < 0) {
        log_warning("cannot lock %s: %m (failed logins are not counted)", path.data);
        close(fd);
        fd = -1;
    }
    strbuf_free(&path);
    return fd;
}

static void load(int fd, struct table *t)
{
    t->e = NULL;
    t->n = 0;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
        return;
    size_t size = (size_t)st.st_size;
    if (size > THROTTLE_FILE_MAX) {
        log_warning("failed-login table is %zu bytes, more than %d: starting afresh", size,
                    THROTTLE_FILE_MAX);
        return;
    }
    char *buf = xmalloc(size + 1);
    ssize_t got = pread(fd, buf, size, 0);
    if (got < 0)
        got = 0;
    buf[got] = '\0';
    t->e = xcalloc(THROTTLE_MAX_ENTRIES, sizeof(*t->e));
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && t->n < THROTTLE_MAX_ENTRIES;
         line = strtok_r(NULL, "\n", &save)) {
        struct entry *e = &t->e[t->n];
        char addr[AUTH_CLIENT_MAX + 2];
        int used = 0;
        if (sscanf(line, "%129s %lld %lld %lld%n", addr, &e->failures, &e->window_start,
                   &e->throttled_until, &used) != 4 ||
            line[used] != '\0' || strlen(addr) > AUTH_CLIENT_MAX || e->failures < 0)
            continue; /* damaged line: forget it */
        memcpy(e->addr, addr, strlen(addr) + 1);
        t->n++;
    }
    free(buf);
}

static struct entry *find(struct table *t, const char *addr)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].addr, addr) == 0)
            return &t->e[i];
    return NULL;
}

static bool expired(const struct auth_settings *s, const struct entry *e, time_t now)
{
    return e->window_start + s->failure_window <= now && e->throttled_until <= now;
}

/* Writes the live entries back (file locked exclusively). */
static void store(const struct auth_settings *s, int fd, struct table *t, time_t now)
{
    strbuf out;
    strbuf_init(&out);
    for (size_t i = 0; i < t->n; i++) {
        const struct entry *e = &t->e[i];
        if (e->failures == 0 || expired(s, e, now))
            continue;
        strbuf_printf(&out, "%s %lld %lld %lld\n", e->addr, e->failures, e->window_start,
                      e->throttled_until);
    }
    if (pwrite(fd, out.data, out.len, 0) != (ssize_t)out.len || ftruncate(fd, (off_t)out.len) < 0)
        log_warning("cannot update the failed-login table: %m");
    strbuf_free(&out);
}

long long throttle_check(const struct auth_settings *s, const char *client, time_t now)
{
    int fd = open_locked(s, LOCK_SH);
    if (fd < 0)
        return 0;
    struct table t;
    load(fd, &t);
    close(fd);
    const struct entry *e = find(&t, client);
    long long left = e && e->throttled_until > now ? e->throttled_until - now : 0;
    free(t.e);
    return left;
}

long long throttle_failure(const struct auth_settings *s, const char *client, time_t now)
{
    int fd = open_locked(s, LOCK_EX);
    if (fd < 0)
        return s->failure_delay_ms;
    struct table t;
    load(fd, &t);
    if (t.e == NULL)
        t.e = xcalloc(THROTTLE_MAX_ENTRIES, sizeof(*t.e));
    struct entry *e = find(&t, client);
    if (e && expired(s, e, now))
        e->failures = 0;
    if (e == NULL) {
        if (t.n == THROTTLE_MAX_ENTRIES) {
            /* Full: the client whose window began first makes room. */
            size_t oldest = 0;
            for (size_t i = 1; i < t.n; i++)
                if (t.e[i].window_start < t.e[oldest].window_start)
                    oldest = i;
            e = &t.e[oldest];
        } else {
            e = &t.e[t.n++];
        }
        memset(e, 0, sizeof(*e));
        snprintf(e->addr, sizeof(e->addr), "%s", client);
    }
    if (e->failures == 0)
        e->window_start = now;
    e->failures++;
    if (e->failures >= s->failure_limit && e->throttled_until <= now) {
        e->throttled_until = now + s->failure_window;
        log_warning("client %s: %lld failed logins within %lld s: throttled for %lld s", client,
                    e->failures, s->failure_window, s->failure_window);
    }
    long long delay = e->failures * s->failure_delay_ms;
    if (delay > s->failure_max_delay_ms)
        delay = s->failure_max_delay_ms;
    store(s, fd, &t, now);
    close(fd);
    free(t.e);
    return delay;
}

void throttle_success(const struct auth_settings *s, const char *client)
{
    int fd = open_locked(s, LOCK_EX);
    if (fd < 0)
        return;
    struct table t;
    load(fd, &t);
    struct entry *e = find(&t, client);
    if (e) {
        e->failures = 0;
        store(s, fd, &t, time(NULL));
    }
    close(fd);
    free(t.e);
}
