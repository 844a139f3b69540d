/*
 * login_handoff.c - both ends of the login -> mailbox hand-off (login.h):
 * the login process connects to <login sockets>/private/<service> and sends
 * the client's descriptor and the record; the mailbox process receives
 * them, acknowledges, redeems the one-time token with auth, and reads the
 * client through a netio that first replays what the client had pipelined
 * behind its login command.
 */
#include "login/login.h"
#include "util/attr.h"
#include "util/fdpass.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HANDOFF_TIMEOUT_MS 10000

static const struct attr_limits handoff_limits = {
    .max_attrs = 16,
    .max_value = 64 * 1024,
    .max_total = 160 * 1024,
};

int login_handoff_send(struct login_conn *c, int fd, const char *token, const strbuf *pending,
                       const char *proto_data, strbuf *err)
{
    const struct login_settings *s = c->settings;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strbuf path;
    strbuf_init(&path);
    login_socket_base(s, &path);
    strbuf_printf(&path, "/private/%s", s->service);
    if (path.len >= sizeof(sun.sun_path)) {
        strbuf_printf(err, "socket path %s is too long", path.data);
        strbuf_free(&path);
        return -1;
    }
    memcpy(sun.sun_path, path.data, path.len + 1);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        strbuf_printf(err, "cannot connect to %s: %s", path.data, strerror(errno));
        if (sock >= 0)
            close(sock);
        strbuf_free(&path);
        return -1;
    }
    strbuf_free(&path);
    int rc = -1;
    struct attr_list *rec = attr_list_new();
    attr_add_str(rec, "protocol", "login");
    attr_add_str(rec, "service", s->service);
    attr_add_str(rec, "token", token);
    attr_add_str(rec, "client", c->client_addr);
    attr_add_int(rec, "local_port", c->local_port);
    attr_add_str(rec, "tls", c->tls_desc.len ? c->tls_desc.data : "");
    attr_add_bytes(rec, "pending", pending->data ? pending->data : "", pending->len);
    attr_add_str(rec, "proto_data", proto_data ? proto_data : "");
    if (fdpass_send(sock, fd, "L", 1, HANDOFF_TIMEOUT_MS) < 0) {
        strbuf_printf(err, "cannot pass the client: %s", strerror(errno));
    } else if (attr_write(sock, rec, HANDOFF_TIMEOUT_MS) < 0) {
        strbuf_printf(err, "cannot send the hand-off record: %s", strerror(errno));
    } else {
        struct attr_list *reply = attr_list_new();
        strbuf rerr;
        strbuf_init(&rerr);
        int r = attr_read(sock, reply, &handoff_limits, HANDOFF_TIMEOUT_MS, &rerr);
        const char *status = r == 1 ? attr_get(reply, "status") : NULL;
        if (status != NULL && strcmp(status, "ok") == 0)
            rc = 0;
        else
            strbuf_printf(err, "mailbox service did not accept the session: %s",
                          r < 0 ? rerr.data : r == 0 ? "closed" : "bad reply");
        strbuf_free(&rerr);
        attr_list_free(&reply);
    }
    attr_list_free(&rec);
    close(sock);
    return rc;
}

static const char *const known_attrs[] = {
    "service", "token", "client", "local_port", "tls", "pending", "proto_data", NULL,
};

int login_handoff_receive(int sock, const char *queue_dir, const char *service,
                          struct login_handoff *h, strbuf *err)
{
    memset(h, 0, sizeof(*h));
    h->client_fd = -1;
    strbuf_init(&h->client_addr);
    strbuf_init(&h->tls);
    strbuf_init(&h->pending);
    strbuf_init(&h->proto_data);
    auth_result_init(&h->auth);
    char tag;
    if (fdpass_recv(sock, &h->client_fd, &tag, 1, HANDOFF_TIMEOUT_MS, err) < 0)
        return -1;
    struct attr_list *rec = attr_list_new();
    int rc = -1;
    int r = attr_read(sock, rec, &handoff_limits, HANDOFF_TIMEOUT_MS, err);
    if (r <= 0) {
        if (r == 0)
            strbuf_appends(err, "peer closed before the hand-off record");
        goto fail;
    }
    if (tag != 'L' || attr_expect_protocol(rec, "login", err) < 0 ||
        attr_check_known(rec, known_attrs, err) < 0)
        goto fail;
    const char *svc = attr_require(rec, "service", err);
    const char *token = svc ? attr_require(rec, "token", err) : NULL;
    const char *client = token ? attr_require(rec, "client", err) : NULL;
    const char *tls = client ? attr_require(rec, "tls", err) : NULL;
    size_t plen = 0, dlen = 0;
    const char *pend = attr_get_bytes(rec, "pending", &plen);
    const char *pdata = attr_get_bytes(rec, "proto_data", &dlen);
    if (tls == NULL || attr_get_int(rec, "local_port", 0, 65535, &h->local_port, err) < 0)
        goto fail;
    if (strcmp(svc, service) != 0) {
        strbuf_printf(err, "hand-off for service \"%s\" on the %s socket", svc, service);
        goto fail;
    }
    strbuf_sets(&h->client_addr, client);
    strbuf_sets(&h->tls, tls);
    if (pend)
        strbuf_set(&h->pending, pend, plen);
    if (pdata)
        strbuf_set(&h->proto_data, pdata, dlen);
    struct attr_list *ack = attr_list_new();
    attr_add_str(ack, "protocol", "login");
    attr_add_str(ack, "status", "ok");
    /* A login process that went away meanwhile is no reason to drop the
     * client: it may still be there (plain socket). */
    attr_write(sock, ack, HANDOFF_TIMEOUT_MS);
    attr_list_free(&ack);
    if (auth_redeem_token(queue_dir, service, token, &h->auth) < 0 ||
        h->auth.status != AUTH_OK) {
        strbuf_printf(err, "token not redeemed: %s",
                      h->auth.reason.len ? h->auth.reason.data : "refused");
        rc = 1;
        goto out;
    }
    rc = 0;
    goto out;
fail:
    if (h->client_fd >= 0)
        close(h->client_fd);
    h->client_fd = -1;
out:
    attr_list_free(&rec);
    return rc;
}

/* ---- a netio backend that replays the pending bytes first ---- */

struct replay {
    int fd;
    const strbuf *pending;
    size_t off;
};

static ssize_t replay_read(void *vctx, void *buf, size_t n, int timeout_ms)
{
    struct replay *r = vctx;
    if (r->off < r->pending->len) {
        size_t k = r->pending->len - r->off;
        if (k > n)
            k = n;
        memcpy(buf, r->pending->data + r->off, k);
        r->off += k;
        return (ssize_t)k;
    }
    for (;;) {
        if (netio_wait_fd(r->fd, POLLIN, timeout_ms) < 0)
            return -1;
        ssize_t got = recv(r->fd, buf, n, MSG_DONTWAIT);
        if (got >= 0)
            return got;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
    }
}

static ssize_t replay_write(void *vctx, const void *buf, size_t n, int timeout_ms)
{
    struct replay *r = vctx;
    for (;;) {
        if (netio_wait_fd(r->fd, POLLOUT, timeout_ms) < 0)
            return -1;
        ssize_t put = send(r->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (put > 0)
            return put;
        if (put < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
    }
}

static const struct netio_backend replay_backend = {
    .name = "handoff",
    .read = replay_read,
    .write = replay_write,
};

struct netio *login_handoff_netio(struct login_handoff *h)
{
    struct replay *r = xcalloc(1, sizeof(*r));
    r->fd = h->client_fd;
    r->pending = &h->pending;
    free(h->backend_ctx);
    h->backend_ctx = r;
    struct netio *io = netio_new(h->client_fd);
    netio_set_backend(io, &replay_backend, r);
    return io;
}

void login_handoff_free(struct login_handoff *h)
{
    if (h->client_fd >= 0)
        close(h->client_fd);
    h->client_fd = -1;
    strbuf_free(&h->client_addr);
    strbuf_free(&h->tls);
    memset(h->pending.data, 0, h->pending.cap);
    strbuf_free(&h->pending);
    strbuf_free(&h->proto_data);
    auth_result_free(&h->auth);
    free(h->backend_ctx);
    h->backend_ctx = NULL;
}
