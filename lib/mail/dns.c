/*
 * dns.c - the c-ares channel of the mail programs: creation, running one
 * query to its deadline, and the host name check for names from answers;
 * see dns.h. Moved here from smtp-client so that the SMTP servers share it.
 */
#include "mail/dns.h"
#include "util/netio.h"
#include "util/xalloc.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static bool lib_ready;

struct dns *dns_new(const char *servers_csv, const char *lookups, int try_ms, int tries,
                    strbuf *err)
{
    if (!lib_ready) {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            strbuf_printf(err, "c-ares: %s", ares_strerror(rc));
            return NULL;
        }
        lib_ready = true;
    }
    struct dns *d = xcalloc(1, sizeof(*d));
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.timeout = try_ms;
    o.tries = tries;
    o.lookups = (char *)lookups;
    int rc = ares_init_options(&d->ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS) {
        strbuf_printf(err, "c-ares initialisation: %s", ares_strerror(rc));
        free(d);
        return NULL;
    }
    if (servers_csv && *servers_csv) {
        rc = ares_set_servers_ports_csv(d->ch, servers_csv);
        if (rc != ARES_SUCCESS) {
            strbuf_printf(err, "dns_servers = %s: %s", servers_csv, ares_strerror(rc));
            ares_destroy(d->ch);
            free(d);
            return NULL;
        }
    }
    return d;
}

void dns_free(struct dns **dp)
{
    if (*dp == NULL)
        return;
    ares_destroy((*dp)->ch);
    free(*dp);
    *dp = NULL;
}

void dns_wait(struct dns *d, bool *done, int *status, long long deadline)
{
    while (!*done) {
        int left = netio_remaining_ms(deadline);
        if (left <= 0) {
            ares_cancel(d->ch); /* the callback runs with ARES_ECANCELLED */
            if (!*done) {
                *done = true;
                *status = ARES_ETIMEOUT;
            }
            break;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        int n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            /* c-ares's ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign
             * bit for the last slot (undefined behaviour): test unsigned. */
            if ((unsigned)bits & (1u << i))
                ev |= POLLIN;
            if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
                ev |= POLLOUT;
            if (!ev)
                continue;
            pfd[n].fd = socks[i];
            pfd[n].events = ev;
            pfd[n].revents = 0;
            n++;
        }
        struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);
        int ms = tvp ? (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000) + 1 : 100;
        if (ms > left)
            ms = left;
        int r = poll(pfd, (nfds_t)n, ms);
        if (r <= 0) {
            ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            ares_socket_t rd = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd
                                                                               : ARES_SOCKET_BAD;
            ares_socket_t wr = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_process_fd(d->ch, rd, wr);
        }
    }
}

bool dns_valid_hostname(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || (c == '-' && label == 0) || ++label > 63)
            return false;
    }
    return name[len - 1] != '-';
}
