/*
 * trigger.h - wake a daemon (qmgr, pickup) through its UNIX socket.
 *
 * A trigger is a hint, never the only way work is found: qmgr and pickup
 * also rescan the queue on a timer, so a trigger that cannot be delivered
 * (daemon not running, socket full) costs latency, never mail. The call
 * therefore never blocks and never fails loudly.
 */
#ifndef PETREL_TRIGGER_H
#define PETREL_TRIGGER_H

/* trigger_send: connects to <queue_dir>/<endpoint> (e.g. "public/qmgr")
 * without blocking, writes the one-byte request `what`, and closes. Returns
 * 0 when the byte was handed over, -1 otherwise (errno set; logged at debug
 * level only). */
int trigger_send(const char *queue_dir, const char *endpoint, char what);

/* The requests a trigger can carry. */
#define TRIGGER_NEW_MAIL 'N'  /* a message arrived in incoming/ */
#define TRIGGER_FLUSH 'F'     /* retry deferred mail now */
#define TRIGGER_SCAN 'S'      /* rescan the queue (pickup: maildrop/) */

#endif
