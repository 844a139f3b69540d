/*
 * sendmail_admin.c - the sendmail modes that are not message submission:
 * -bp (mailq), -bi (newaliases), -q (flush the deferred queue).
 */
#include "sendmail.h"
#include "aliases_db.h"
#include "queue_list.h"
#include "mail/trigger.h"

#include <stdio.h>

int sendmail_list_queue(struct sendmail_ctx *sc)
{
    return queue_list(sc->queue_dir, stdout, false);
}

int sendmail_newaliases(struct sendmail_ctx *sc)
{
    return aliases_db_rebuild(sc->cfg, "newaliases");
}

int sendmail_flush(struct sendmail_ctx *sc)
{
    if (trigger_send(sc->queue_dir, "public/qmgr", TRIGGER_FLUSH) < 0) {
        sendmail_error("cannot reach the queue manager (is the mail system running?)");
        return EXIT_TEMPFAIL;
    }
    return 0;
}
