/*
 * delivery.c - the qmgr <-> delivery agent protocol; see delivery.h and
 * docs/ipc.md.
 */
#include "mail/delivery.h"
#include "mail/queue_file.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct attr_limits delivery_limits = {
    .max_attrs = 16,
    .max_value = 8192,
    .max_total = 32768,
};

void delivery_request_init(struct delivery_request *req)
{
    memset(req, 0, sizeof(*req));
    strbuf_init(&req->sender);
}

void delivery_request_free(struct delivery_request *req)
{
    for (size_t i = 0; i < req->nrcpt; i++) {
        strbuf_free(&req->rcpts[i].address);
        strbuf_free(&req->rcpts[i].orcpt);
    }
    free(req->rcpts);
    strbuf_free(&req->sender);
    memset(req, 0, sizeof(*req));
}

void delivery_request_add(struct delivery_request *req, unsigned index, const char *address,
                          const char *orcpt, unsigned notify)
{
    req->rcpts = xreallocarray(req->rcpts, req->nrcpt + 1, sizeof(*req->rcpts));
    struct delivery_rcpt *r = &req->rcpts[req->nrcpt++];
    r->index = index;
    strbuf_init(&r->address);
    strbuf_init(&r->orcpt);
    strbuf_sets(&r->address, address);
    if (orcpt)
        strbuf_sets(&r->orcpt, orcpt);
    r->notify = notify;
}

static int write_list(int fd, struct attr_list *l)
{
    int rc = attr_write(fd, l, DELIVERY_IO_TIMEOUT_MS);
    attr_list_free(&l);
    return rc;
}

/* Builds the request record and its recipient records: write_one gets each
 * record in turn and stops the walk by returning -1. */
static int request_records(const struct delivery_request *req,
                           int (*write_one)(void *arg, struct attr_list *l), void *arg)
{
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "protocol", "deliver");
    attr_add_str(l, "queue_id", req->queue_id);
    attr_add_bytes(l, "sender", req->sender.data, req->sender.len);
    attr_add_int(l, "nrcpt", (long long)req->nrcpt);
    attr_add_int(l, "arrival", (long long)req->arrival);
    if (write_one(arg, l) < 0)
        return -1;
    for (size_t i = 0; i < req->nrcpt; i++) {
        const struct delivery_rcpt *r = &req->rcpts[i];
        l = attr_list_new();
        attr_add_int(l, "index", r->index);
        attr_add_bytes(l, "address", r->address.data, r->address.len);
        if (r->orcpt.len)
            attr_add_bytes(l, "orcpt", r->orcpt.data, r->orcpt.len);
        attr_add_int(l, "notify", r->notify);
        if (write_one(arg, l) < 0)
            return -1;
    }
    return 0;
}

static int write_to_fd(void *arg, struct attr_list *l)
{
    return write_list(*(int *)arg, l);
}

static int append_to_buf(void *arg, struct attr_list *l)
{
    attr_serialize(l, arg);
    attr_list_free(&l);
    return 0;
}

int delivery_request_write(int fd, const struct delivery_request *req)
{
    return request_records(req, write_to_fd, &fd);
}

void delivery_request_serialize(const struct delivery_request *req, strbuf *out)
{
    request_records(req, append_to_buf, out);
}

/* A text value that may go into a queue file or a log: no CR, LF or NUL. */
static const char *get_text(const struct attr_list *l, const char *name, bool required,
                            strbuf *err)
{
    size_t n;
    const char *v = attr_get_bytes(l, name, &n);
    if (v == NULL) {
        if (required) {
            strbuf_reset(err);
            strbuf_printf(err, "delivery protocol: missing attribute \"%s\"", name);
        }
        return required ? NULL : "";
    }
    if (!queue_value_ok(v, n)) {
        strbuf_reset(err);
        strbuf_printf(err, "delivery protocol: attribute \"%s\" holds CR, LF, NUL or is too long",
                      name);
        return NULL;
    }
    return v;
}

int delivery_request_read(int fd, struct delivery_request *req, strbuf *err)
{
    static const char *const head_known[] = { "queue_id", "sender", "nrcpt", "arrival", NULL };
    static const char *const rcpt_known[] = { "index", "address", "orcpt", "notify", NULL };
    struct attr_list *l = attr_list_new();
    int rc = attr_read(fd, l, &delivery_limits, DELIVERY_IO_TIMEOUT_MS, err);
    if (rc <= 0) {
        attr_list_free(&l);
        return rc == 0 ? 1 : -1;
    }
    long long nrcpt, arrival;
    const char *id, *sender;
    if (attr_expect_protocol(l, "deliver", err) < 0 || attr_check_known(l, head_known, err) < 0 ||
        (id = attr_require(l, "queue_id", err)) == NULL ||
        (sender = get_text(l, "sender", true, err)) == NULL ||
        attr_get_int(l, "nrcpt", 1, DELIVERY_MAX_RCPTS, &nrcpt, err) < 0 ||
        attr_get_int(l, "arrival", 0, INT64_MAX, &arrival, err) < 0)
        goto fail;
    if (!queue_id_valid(id)) {
        strbuf_reset(err);
        strbuf_appends(err, "delivery protocol: invalid queue id");
        goto fail;
    }
    memcpy(req->queue_id, id, QUEUE_ID_SIZE);
    strbuf_sets(&req->sender, sender);
    req->arrival = arrival;
    for (long long i = 0; i < nrcpt; i++) {
        rc = attr_read(fd, l, &delivery_limits, DELIVERY_IO_TIMEOUT_MS, err);
        if (rc <= 0) {
            if (rc == 0) {
                strbuf_reset(err);
                strbuf_appends(err, "delivery protocol: connection closed inside a request");
            }
            goto fail;
        }
        long long index, notify;
        const char *addr, *orcpt;
        if (attr_check_known(l, rcpt_known, err) < 0 ||
            attr_get_int(l, "index", 0, QUEUE_MAX_RCPTS - 1, &index, err) < 0 ||
            attr_get_int(l, "notify", 0, 15, &notify, err) < 0 ||
            (addr = get_text(l, "address", true, err)) == NULL ||
            (orcpt = get_text(l, "orcpt", false, err)) == NULL)
            goto fail;
        if (*addr == '\0') {
            strbuf_reset(err);
            strbuf_appends(err, "delivery protocol: empty recipient address");
            goto fail;
        }
        delivery_request_add(req, (unsigned)index, addr, orcpt, (unsigned)notify);
    }
    attr_list_free(&l);
    return 0;
fail:
    attr_list_free(&l);
    return -1;
}

void delivery_result_init(struct delivery_result *res)
{
    memset(res, 0, sizeof(*res));
    strbuf_init(&res->reason);
    strbuf_init(&res->mta);
    strbuf_init(&res->diag);
}

void delivery_result_free(struct delivery_result *res)
{
    strbuf_free(&res->reason);
    strbuf_free(&res->mta);
    strbuf_free(&res->diag);
}

const char *delivery_status_name(enum delivery_status st)
{
    switch (st) {
    case DELIVERY_SENT: return "sent";
    case DELIVERY_DEFERRED: return "deferred";
    default: return "bounced";
    }
}

bool delivery_dsn_valid(const char *dsn)
{
    if (dsn[0] != '2' && dsn[0] != '4' && dsn[0] != '5')
        return false;
    const char *p = dsn + 1;
    for (int part = 0; part < 2; part++) {
        if (*p++ != '.')
            return false;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 4) {
            p++;
            digits++;
        }
        if (digits < 1 || digits > 3)
            return false;
    }
    return *p == '\0';
}

static char dsn_class(enum delivery_status st)
{
    return st == DELIVERY_SENT ? '2' : st == DELIVERY_DEFERRED ? '4' : '5';
}

void delivery_result_set(struct delivery_result *res, unsigned index, enum delivery_status st,
                         const char *dsn, const char *fmt, ...)
{
    res->index = index;
    res->status = st;
    if (!delivery_dsn_valid(dsn) || dsn[0] != dsn_class(st) || strlen(dsn) >= sizeof(res->dsn))
        log_panic("delivery_result_set: DSN code \"%s\" does not fit status %s", dsn,
                  delivery_status_name(st));
    snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
    strbuf_reset(&res->reason);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&res->reason, fmt, ap);
    va_end(ap);
    /* The reason goes into a queue-file-bound bounce and a log line. */
    for (size_t i = 0; i < res->reason.len; i++)
        if ((unsigned char)res->reason.data[i] < 0x20)
            res->reason.data[i] = ' ';
    if (res->reason.len > 1000)
        strbuf_truncate(&res->reason, 1000);
    strbuf_reset(&res->mta);
    strbuf_reset(&res->diag);
}

/* Copies s into out with control bytes as spaces, at most max bytes. */
static void set_clean(strbuf *out, const char *s, size_t max)
{
    strbuf_reset(out);
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        strbuf_appendc(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
    }
}

void delivery_result_set_remote(struct delivery_result *res, const char *mta, const char *diag)
{
    strbuf_reset(&res->mta);
    strbuf_reset(&res->diag);
    if (mta == NULL || diag == NULL || *mta == '\0' || *diag == '\0')
        return;
    set_clean(&res->mta, mta, DELIVERY_MTA_MAX);
    set_clean(&res->diag, diag, DELIVERY_DIAG_MAX);
}

int delivery_result_write(int fd, const struct delivery_result *res)
{
    struct attr_list *l = attr_list_new();
    attr_add_int(l, "index", res->index);
    attr_add_str(l, "status", delivery_status_name(res->status));
    attr_add_str(l, "dsn", res->dsn);
    attr_add_bytes(l, "reason", res->reason.data, res->reason.len);
    if (res->mta.len && res->diag.len) {
        attr_add_bytes(l, "mta", res->mta.data, res->mta.len);
        attr_add_bytes(l, "diag", res->diag.data, res->diag.len);
    }
    return write_list(fd, l);
}

int delivery_done_write(int fd)
{
    return delivery_done_write_reuse(fd, false);
}

int delivery_done_write_reuse(int fd, bool reuse)
{
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "status", "done");
    if (reuse)
        attr_add_str(l, "reuse", "yes");
    return write_list(fd, l);
}

/* One record from the agent: 1 = a result in *res, 0 = the end record
 * (*reuse_r set), -1 = error (err). */
static int result_from_list(const struct attr_list *l, struct delivery_result *res,
                            bool *reuse_r, strbuf *err)
{
    static const char *const known[] = { "index", "status", "dsn", "reason", "mta", "diag",
                                          NULL };
    const char *status = attr_get(l, "status");
    if (status && strcmp(status, "done") == 0) {
        const char *reuse = attr_get(l, "reuse");
        size_t want = reuse ? 2 : 1;
        if (attr_count(l) == want && (reuse == NULL || strcmp(reuse, "yes") == 0)) {
            *reuse_r = reuse != NULL;
            return 0;
        }
        strbuf_reset(err);
        strbuf_appends(err, "delivery protocol: malformed end record");
        return -1;
    }
    long long index;
    const char *dsn, *reason, *mta, *diag;
    if (attr_check_known(l, known, err) < 0 ||
        attr_get_int(l, "index", 0, QUEUE_MAX_RCPTS - 1, &index, err) < 0 ||
        (dsn = attr_require(l, "dsn", err)) == NULL ||
        (reason = get_text(l, "reason", true, err)) == NULL ||
        (mta = get_text(l, "mta", false, err)) == NULL ||
        (diag = get_text(l, "diag", false, err)) == NULL)
        return -1;
    if (status == NULL) {
        strbuf_reset(err);
        strbuf_appends(err, "delivery protocol: missing attribute \"status\"");
        return -1;
    }
    enum delivery_status st;
    if (strcmp(status, "sent") == 0)
        st = DELIVERY_SENT;
    else if (strcmp(status, "deferred") == 0)
        st = DELIVERY_DEFERRED;
    else if (strcmp(status, "bounced") == 0)
        st = DELIVERY_BOUNCED;
    else {
        strbuf_reset(err);
        strbuf_appends(err, "delivery protocol: unknown status word");
        return -1;
    }
    if (!delivery_dsn_valid(dsn) || dsn[0] != dsn_class(st) || strlen(dsn) >= sizeof(res->dsn)) {
        strbuf_reset(err);
        strbuf_appends(err, "delivery protocol: DSN code malformed or not matching the status");
        return -1;
    }
    res->index = (unsigned)index;
    res->status = st;
    snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
    strbuf_sets(&res->reason, reason);
    /* Optional (absent from older agents); cleaned and cut like the
     * sender's side does, since the peer's text ends up in a header. */
    delivery_result_set_remote(res, mta, diag);
    return 1;
}

int delivery_result_read(int fd, struct delivery_result *res, strbuf *err)
{
    struct attr_list *l = attr_list_new();
    int rc = attr_read(fd, l, &delivery_limits, DELIVERY_RESULT_TIMEOUT_MS, err);
    if (rc <= 0) {
        if (rc == 0) {
            strbuf_reset(err);
            strbuf_appends(err, "delivery agent closed the connection before the end record");
        }
        attr_list_free(&l);
        return -1;
    }
    bool reuse;
    rc = result_from_list(l, res, &reuse, err);
    attr_list_free(&l);
    return rc;
}

enum delivery_parse delivery_result_parse(const char *buf, size_t len, size_t *used_r,
                                          struct delivery_result *res, bool *reuse_r,
                                          strbuf *err)
{
    struct attr_list *l = attr_list_new();
    enum delivery_parse out;
    *used_r = 0;
    *reuse_r = false;
    switch (attr_parse(buf, len, &delivery_limits, l, used_r, err)) {
    case ATTR_PARSE_INCOMPLETE:
        out = DELIVERY_PARSE_INCOMPLETE;
        break;
    case ATTR_PARSE_ERROR:
        out = DELIVERY_PARSE_ERROR;
        break;
    default:
        switch (result_from_list(l, res, reuse_r, err)) {
        case 1:
            out = DELIVERY_PARSE_RESULT;
            break;
        case 0:
            out = DELIVERY_PARSE_DONE;
            break;
        default:
            out = DELIVERY_PARSE_ERROR;
        }
    }
    attr_list_free(&l);
    return out;
}
