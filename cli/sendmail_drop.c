/*
 * sendmail_drop.c - writes a message into maildrop/ for pickup.
 *
 * The maildrop file uses the queue file format (docs/queue.md), written and
 * committed (fsync, rename, directory fsync) by the same writer the daemons
 * use, with mode 0644 so that pickup, running as the mail owner, can read a
 * file owned by the caller. pickup trusts nothing in it: it validates every
 * record and takes the caller's identity from the file's owner.
 */
#include "sendmail.h"
#include "mail/address.h"
#include "mail/queue_file.h"
#include "mail/trigger.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* An envelope address from the command line or a header: validated, and
 * completed with @myorigin when it has no domain. */
static int envelope_address(struct sendmail_ctx *sc, const char *text, strbuf *out, bool sender)
{
    strbuf_reset(out);
    if (sender && (*text == '\0' || strcmp(text, "<>") == 0))
        return 0; /* the null sender */
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '<' && text[n - 1] == '>') {
        text++;
        n -= 2;
    }
    struct address a;
    struct address_error e;
    address_init(&a);
    if (address_parse_mailbox(text, n, ADDRESS_ALLOW_NO_DOMAIN | ADDRESS_ALLOW_UTF8, &a, &e) < 0) {
        sendmail_error("bad %s address \"%.*s\": %s", sender ? "sender" : "recipient",
                       (int)(n > 200 ? 200 : n), text, e.text);
        address_free(&a);
        return -1;
    }
    address_format(out, &a);
    if (a.domain.len == 0)
        strbuf_printf(out, "@%s", sc->myorigin);
    address_free(&a);
    return 0;
}

int sendmail_drop(struct sendmail_ctx *sc, const char *sender, const strbuf *rcpts_nul,
                  const strbuf *msg)
{
    const struct sendmail_opts *o = &sc->opts;
    strbuf dir, err, addr;
    strbuf_init(&dir);
    strbuf_init(&err);
    strbuf_init(&addr);
    int rc = 0;
    struct queue_writer *w = NULL;

    if (envelope_address(sc, sender, &addr, true) < 0) {
        rc = EXIT_NOUSER;
        goto out;
    }
    strbuf_printf(&dir, "%s/maildrop", sc->queue_dir);
    mode_t old = umask(022);
    char id[QUEUE_ID_SIZE];
    int created = queue_file_create_in(dir.data, 0644, id, &w, &err);
    umask(old);
    if (created < 0) {
        sendmail_error("cannot create a file in %s: %s", dir.data, err.data);
        rc = errno == ENOENT ? EXIT_TEMPFAIL : EXIT_CANTCREAT;
        goto out;
    }
    if (queue_file_set_sender(w, addr.data, addr.len, &err) < 0)
        goto fail;
    if (o->envid && queue_file_set_attr(w, QUEUE_ATTR_ENVID, o->envid, strlen(o->envid), &err) < 0)
        goto fail;
    if (o->ret && queue_file_set_ret(w, o->ret == 'F' ? QUEUE_RET_FULL : QUEUE_RET_HDRS, &err) < 0)
        goto fail;
    size_t nrcpt = 0;
    for (size_t off = 0; off < rcpts_nul->len;) {
        const char *r = rcpts_nul->data + off;
        off += strlen(r) + 1;
        if (envelope_address(sc, r, &addr, false) < 0) {
            rc = EXIT_NOUSER;
            queue_file_abort(&w);
            goto out;
        }
        if (queue_file_add_recipient(w, addr.data, addr.len, NULL, 0, o->notify, &err) < 0)
            goto fail;
        nrcpt++;
    }
    if (nrcpt == 0) {
        sendmail_error("no recipients given (name them as arguments, or use -t to take them "
                       "from To:, Cc: and Bcc:)");
        queue_file_abort(&w);
        rc = EXIT_USAGE;
        goto out;
    }
    if (queue_file_write_content(w, msg->data, msg->len, &err) < 0)
        goto fail;
    if (queue_file_commit(&w, &err) < 0) {
        sendmail_error("cannot queue the message: %s", err.data);
        rc = EXIT_TEMPFAIL;
        goto out;
    }
    trigger_send(sc->queue_dir, "public/pickup", TRIGGER_SCAN);
    if (o->verbose)
        fprintf(stderr, "sendmail: queued as %s in %s\n", id, dir.data);
    goto out;
fail:
    sendmail_error("cannot write the message: %s", err.data);
    queue_file_abort(&w);
    rc = EXIT_TEMPFAIL;
out:
    strbuf_free(&dir);
    strbuf_free(&err);
    strbuf_free(&addr);
    return rc;
}
