/*
 * file.c - delivery to a /file target of an alias, a .forward or an
 * include: appended mbox-style, as the user whose rights apply (the
 * recipient for .forward, default_privs for aliases and their includes).
 * The kernel decides whether that user may write the file; the mbox module
 * adds the refusals (symlink, hard links, executable, not a regular file).
 * The file need not belong to that user (a shared log file is a common
 * target), and no dot-lock is taken (its directory is often not writable:
 * the fcntl lock serializes writers). /dev/null is accepted and discards.
 */
#include "local.h"
#include "mail/mbox.h"
#include "util/log.h"

#include <string.h>

struct job {
    struct local_settings *s;
    const struct local_message *m;
    const struct action *a;
};

static void append_file(void *arg, struct local_result *res, strbuf *data)
{
    (void)data;
    const struct job *j = arg;
    struct mbox_options o;
    mbox_options_default(&o);
    o.dotlock = false;
    o.require_owner = false;
    o.size_limit = j->s->mailbox_size_limit;
    strbuf what;
    strbuf_init(&what);
    strbuf_printf(&what, "file %s", j->a->text);
    local_mbox_append(j->m, j->a->recipient, j->a->text, &o, res, what.data);
    strbuf_free(&what);
}

void local_deliver_file(struct local_settings *s, const struct local_message *m,
                        const struct action *a, struct local_result *res)
{
    if (strcmp(a->text, "/dev/null") == 0) {
        local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to file /dev/null");
        return;
    }
    struct job j = {s, m, a};
    local_run_as(&a->who, s->command_time_limit, append_file, &j, res, NULL);
}
