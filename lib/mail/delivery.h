/*
 * delivery.h - the protocol between qmgr and the delivery agents
 * (local-delivery for local and virtual domains, smtp-client for the rest), over a UNIX stream
 * connection to the agent's socket `private/<transport>`.
 *
 * qmgr writes a request record and one record per recipient; the agent
 * delivers and answers one result record per recipient (in any order, each
 * naming the recipient's index), then a final `status=done` record. An
 * agent that adds `reuse=yes` to that record reads the next request on the
 * same connection (local-delivery does, so qmgr keeps its connections);
 * without it the agent closes after one request. The agent opens `<queue_directory>/active/<id>`
 * itself, read-only, and never writes it: qmgr records the results in the
 * queue file (in place), so a crashed agent changes nothing on disk and the
 * recipients it did not answer for are simply retried. Records are attribute
 * lists (lib/util/attr, docs/ipc.md); every field is checked on both sides.
 * mta= and diag= are optional (older agents never send them): when a remote
 * server's reply decided the result, the server's host name and its raw
 * reply ("550 5.1.1 no such user"), for the Remote-MTA and the
 * "Diagnostic-Code: smtp;" of a delivery status notification.
 *
 *   request:   protocol=deliver queue_id=ID sender=ADDR nrcpt=N arrival=EPOCH
 *   recipient: index=I address=ADDR [orcpt=TEXT] notify=BITS     (N times)
 *   result:    index=I status=sent|deferred|bounced dsn=X.Y.Z reason=TEXT
 *              [mta=HOST diag=TEXT]
 *   end:       status=done [reuse=yes]
 */
#ifndef PETREL_DELIVERY_H
#define PETREL_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/queue_id.h"
#include "util/strbuf.h"

/* At most this many recipients in one request (qmgr splits larger sets). */
#define DELIVERY_MAX_RCPTS 1000
/* Most bytes of a result's mta= and diag= (longer values are cut). */
#define DELIVERY_MTA_MAX 255
#define DELIVERY_DIAG_MAX 1000
/* Timeout for one record on the wire. */
#define DELIVERY_IO_TIMEOUT_MS 30000
/* How long qmgr's worker waits for the next result: an agent may spend
 * command_time_limit (default 1000 s) on a |command delivery, and bounds its
 * own work; this only catches an agent that hangs. */
#define DELIVERY_RESULT_TIMEOUT_MS (3600 * 1000)

struct delivery_rcpt {
    unsigned index;   /* position among the queue file's recipients */
    strbuf address;
    strbuf orcpt;     /* empty when not given */
    unsigned notify;  /* QUEUE_NOTIFY_* bits */
};

struct delivery_request {
    char queue_id[QUEUE_ID_SIZE];
    strbuf sender;    /* empty = null sender */
    int64_t arrival;  /* epoch seconds, for delay= in logs */
    struct delivery_rcpt *rcpts;
    size_t nrcpt;
};

enum delivery_status {
    DELIVERY_SENT,
    DELIVERY_DEFERRED,
    DELIVERY_BOUNCED,
};

struct delivery_result {
    unsigned index;
    enum delivery_status status;
    char dsn[16];     /* "2.0.0", "4.2.2", "5.1.1" */
    strbuf reason;    /* human text: "delivered to maildir", "mailbox full" */
    strbuf mta;       /* remote server's host name, or empty */
    strbuf diag;      /* remote server's raw reply, or empty (then mta is empty) */
};

void delivery_request_init(struct delivery_request *req);
void delivery_request_free(struct delivery_request *req);
/* Adds a recipient (copies the strings). */
void delivery_request_add(struct delivery_request *req, unsigned index, const char *address,
                          const char *orcpt, unsigned notify);

/* Write/read a whole request (the request record and its recipient records).
 * Readers check every field (queue id syntax, index range, status words,
 * DSN code syntax, no CR/LF/NUL in addresses) and return -1 with a message
 * in err on anything else; 0 on success. delivery_request_read returns 1
 * when the peer closed before sending anything. */
int delivery_request_write(int fd, const struct delivery_request *req);
int delivery_request_read(int fd, struct delivery_request *req, strbuf *err);
/* The same records as delivery_request_write, appended to out (for a
 * writer that does not block, qmgr). */
void delivery_request_serialize(const struct delivery_request *req, strbuf *out);

void delivery_result_init(struct delivery_result *res);
void delivery_result_free(struct delivery_result *res);
/* Sets a result; dsn must look like "2.0.0" (class 2, 4 or 5 matching status). */
void delivery_result_set(struct delivery_result *res, unsigned index, enum delivery_status st,
                         const char *dsn, const char *reason_fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* After delivery_result_set (which empties both): the remote server that
 * decided the result and its raw reply. Control bytes become spaces, the
 * host name is cut at DELIVERY_MTA_MAX and the reply at DELIVERY_DIAG_MAX
 * bytes; an empty host or reply leaves both empty. */
void delivery_result_set_remote(struct delivery_result *res, const char *mta, const char *diag);
int delivery_result_write(int fd, const struct delivery_result *res);
/* The end record after the last result: the agent closes the connection. */
int delivery_done_write(int fd);
/* The end record; with reuse, the agent promises to read another request
 * on this connection. */
int delivery_done_write_reuse(int fd, bool reuse);
/* Reads the next result: 1 = a result in *res, 0 = the end record, -1 =
 * error (err says why; includes the peer closing before the end record). */
int delivery_result_read(int fd, struct delivery_result *res, strbuf *err);

enum delivery_parse {
    DELIVERY_PARSE_RESULT,     /* a result in *res */
    DELIVERY_PARSE_DONE,       /* the end record; *reuse_r says if the agent takes more */
    DELIVERY_PARSE_INCOMPLETE, /* buf holds only the start of a record: read more */
    DELIVERY_PARSE_ERROR,      /* malformed (err says why): drop the connection */
};
/* Parses the next record an agent sent from buf[0..len), with the checks of
 * delivery_result_read; *used_r bytes are consumed (RESULT and DONE). */
enum delivery_parse delivery_result_parse(const char *buf, size_t len, size_t *used_r,
                                          struct delivery_result *res, bool *reuse_r,
                                          strbuf *err);

/* "sent", "deferred", "bounced". */
const char *delivery_status_name(enum delivery_status st);
/* True for "X.Y.Z" with X in 2,4,5 and Y, Z of 1-3 digits. */
bool delivery_dsn_valid(const char *dsn);

#endif
