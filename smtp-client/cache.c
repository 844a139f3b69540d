/*
 * cache.c - open SMTP connections kept for the next message to the same
 * next hop (Postfix's connection cache, inside one smtp-client process).
 *
 * qmgr sends one request per message to private/smtp and each process
 * serves requests one after the other, so a connection that ended its
 * transaction cleanly is kept here, keyed by the address it goes to and by
 * what was negotiated on it (TLS policy, SASL user), and the next request
 * (or the next domain of the same request) for that next hop sends MAIL
 * FROM on it straight away. A kept connection is closed with QUIT once it
 * was idle for smtp_connection_cache_time_limit (the server skeleton's
 * wakeup hook calls smtpc_cache_expire while no request comes), when the
 * cache is full, and when the process exits. Before reuse it must be
 * quiet: any pending input or EOF means the server gave up on it.
 */
#include "smtpc.h"
#include "util/log.h"

#include <poll.h>
#include <string.h>

static struct smtpc_sess *cache[SMTPC_CACHE_MAX];
static size_t ncache;

/* Closing a cached connection: QUIT, but its reply is not worth a long
 * wait (the process may be idle and expected to accept a request). */
#define CACHE_QUIT_MS 1000

void smtpc_cache_key(const struct smtpc_target *t, const struct smtpc_dest *dest, strbuf *key)
{
    strbuf_printf(key, "%s[", t->host);
    smtpc_addr_text(&t->addr, key);
    strbuf_printf(key, "]:%d tls=%s match=%s user=%s", smtpc_addr_port(&t->addr),
                  tls_level_str(dest->tls_level), dest->tls_match.data,
                  dest->sasl_user.data);
}

static void drop(size_t i)
{
    memmove(&cache[i], &cache[i + 1], (ncache - i - 1) * sizeof(cache[0]));
    ncache--;
}

/* Usable: nothing buffered, and the socket has nothing to read (a server
 * that timed the connection out sent 421 or closed it). */
static bool quiet(struct smtpc_sess *x)
{
    if (netio_pending(x->io) > 0)
        return false;
    struct pollfd p = { .fd = x->fd, .events = POLLIN };
    return poll(&p, 1, 0) == 0;
}

struct smtpc_sess *smtpc_cache_take(const char *key)
{
    smtpc_cache_expire();
    for (size_t i = 0; i < ncache; i++) {
        struct smtpc_sess *x = cache[i];
        if (strcmp(x->key.data, key) != 0)
            continue;
        drop(i);
        if (quiet(x))
            return x;
        log_info("cached connection to %s:%d was closed by the server", x->peer.data,
                 smtpc_addr_port(&x->t.addr));
        smtpc_sess_end(x, false, 0);
        return NULL;
    }
    return NULL;
}

void smtpc_cache_put(struct smtpc_sess *x)
{
    if (ncache == SMTPC_CACHE_MAX) {
        smtpc_sess_end(cache[0], true, CACHE_QUIT_MS);
        drop(0);
    }
    x->idle_since_ms = netio_now_ms();
    cache[ncache++] = x;
}

int smtpc_cache_expire(void)
{
    long long now = netio_now_ms();
    int next = -1;
    for (size_t i = 0; i < ncache;) {
        struct smtpc_sess *x = cache[i];
        long long left = x->idle_since_ms + x->s->cache_ms - now;
        if (left <= 0) {
            drop(i);
            smtpc_sess_end(x, quiet(x), CACHE_QUIT_MS);
            continue;
        }
        if (next < 0 || left < next)
            next = (int)left;
        i++;
    }
    return next;
}

void smtpc_cache_close_all(void)
{
    while (ncache > 0) {
        struct smtpc_sess *x = cache[ncache - 1];
        ncache--;
        smtpc_sess_end(x, quiet(x), CACHE_QUIT_MS);
    }
}
