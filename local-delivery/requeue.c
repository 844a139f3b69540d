/*
 * requeue.c - alias and .forward targets in other domains: the message is
 * forwarded as a new queue file (same sender, those recipients, a
 * Delivered-To: header for the local address that forwarded it, so a
 * forwarding loop back to us is seen) and qmgr is woken. The file is
 * written by a child running as mail_owner, so it has the owner qmgr
 * expects without any chown, and the child has no root rights while it
 * writes into the queue. The original recipient counts as delivered
 * ("forwarded as NEWID") once the new file is committed.
 */
#include "local.h"
#include "mail/queue_file.h"
#include "mail/trigger.h"
#include "util/log.h"
#include "util/privilege.h"

#include <string.h>

struct job {
    struct local_settings *s;
    const struct local_message *m;
    const char *recipient;
    const char *const *addrs;
    size_t n;
};

static int queue_sink(void *arg, const char *p, size_t n, strbuf *err)
{
    return queue_file_write_content(arg, p, n, err);
}

static void write_copy(void *arg, struct local_result *res, strbuf *data)
{
    const struct job *j = arg;
    char id[QUEUE_ID_SIZE];
    struct queue_writer *w = NULL;
    strbuf err;
    strbuf_init(&err);
    int rc = queue_file_create(j->s->queue_dir, id, &w, &err);
    if (rc == 0)
        rc = queue_file_set_sender(w, j->m->sender, strlen(j->m->sender), &err);
    if (rc == 0)
        rc = queue_file_set_attr(w, QUEUE_ATTR_PROTOCOL, "local", 5, &err);
    for (size_t i = 0; rc == 0 && i < j->n; i++)
        rc = queue_file_add_recipient(w, j->addrs[i], strlen(j->addrs[i]), NULL, 0, 0, &err);
    if (rc == 0)
        rc = local_message_copy(j->m, j->recipient, false, queue_sink, w, &err) == 0 ? 0 : -1;
    if (rc == 0) {
        rc = queue_file_commit(&w, &err);
    } else {
        queue_file_abort(&w);
    }
    if (rc < 0) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "cannot forward the message: %s",
                         err.data);
    } else {
        trigger_send(j->s->queue_dir, "public/qmgr", TRIGGER_NEW_MAIL);
        local_result_set(res, DELIVERY_SENT, "2.0.0", "forwarded as %s", id);
        strbuf_sets(data, id);
    }
    strbuf_free(&err);
}

void local_requeue(struct local_settings *s, const struct local_message *m,
                   const char *recipient, const char *const *addrs, size_t n,
                   struct local_result *res)
{
    struct priv_user pu;
    strbuf err;
    strbuf_init(&err);
    enum priv_lookup lk = privilege_lookup_user(s->mail_owner, &pu, &err);
    if (lk != PRIV_LOOKUP_FOUND) {
        local_result_set(res, DELIVERY_DEFERRED, "4.3.0", "mail_owner: %s", err.data);
        strbuf_free(&err);
        return;
    }
    struct local_who who = {pu.uid, pu.gid, pu.name, pu.home};
    struct job j = {s, m, recipient, addrs, n};
    strbuf data;
    strbuf_init(&data);
    local_run_as(&who, 60, write_copy, &j, res, &data);
    if (res->status == DELIVERY_SENT)
        log_info("%s: forwarded for <%s> as %s (%zu recipient%s)", m->id, recipient, data.data,
                 n, n == 1 ? "" : "s");
    privilege_user_free(&pu);
    strbuf_free(&data);
    strbuf_free(&err);
}
