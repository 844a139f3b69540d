/*
 * local.h - local-delivery: the delivery agent for local domains
 * (mydestination). qmgr connects to private/local and sends `deliver`
 * requests (lib/mail/delivery.h), several on one connection; for each recipient this program expands
 * aliases and ~/.forward into final destinations (a mailbox, a /file, a
 * |command, a remote address), delivers each one in a child process that
 * runs as the user whose rights apply, and answers one result per
 * recipient. It runs as root only to switch users; no user's file is ever
 * touched as root. docs/local-delivery.md describes the behaviour.
 *
 * Files: main.c (skeleton wiring), settings.c (parameters), request.c (one
 * request: queue file, recipients, results), message.c (headers scan and
 * the message stream with Return-Path/Delivered-To), resolve_local.c
 * (aliases, .forward, :include: expansion), child.c (run a job as a user in
 * a forked child), runner.c (mailbox deliveries in a long-lived child per
 * user), mailbox.c (Maildir, mbox), file.c (/file), pipe.c
 * (|command), requeue.c (remote targets: a new queue file).
 */
#ifndef PETREL_LOCAL_H
#define PETREL_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mail/delivery.h"
#include "util/strbuf.h"

struct config;
struct resolver;
struct map_list;
struct queue_file;

/* Expansion limits: nesting of aliases/.forward/includes, and addresses
 * visited for one recipient (a fan-out bomb of includes stops here). */
#define LOCAL_MAX_DEPTH 20
#define LOCAL_MAX_NODES 1000
/* The longest reason text sent back to qmgr. */
#define LOCAL_REASON_MAX 1000

/* Where a target came from: decides which rights apply and whether
 * commands and files are allowed (allow_mail_to_commands/_files). */
enum local_origin {
    ORIGIN_ALIAS = 0x1,
    ORIGIN_FORWARD = 0x2,
    ORIGIN_INCLUDE = 0x4,
};

struct local_settings {
    char *queue_dir;
    char *home_mailbox;       /* "Maildir/" (trailing '/': Maildir), "" = mbox */
    char *spool_dir;          /* mail_spool_directory */
    char *myhostname;
    long long command_time_limit;
    uint64_t mailbox_size_limit;
    long long hopcount_limit;
    long long max_use;        /* requests this process serves before it ends */
    int *listen_fds;          /* the skeleton's listeners and the client being */
    int nlisten;              /* served: closed in long-lived children */
    int client_fd;            /* -1 between clients */
    unsigned commands_allowed; /* enum local_origin bits */
    unsigned files_allowed;
    char *default_privs;       /* user name */
    char *mail_owner;          /* owner of forwarded queue files */
    struct resolver *resolver;
    struct map_list *aliases;  /* NULL when alias_maps could not be opened */
    strbuf alias_error;        /* why, then: every lookup defers */
    /* Virtual domains: virtual_alias_maps rewrite any address of ours;
     * virtual_mailbox_maps give the mailbox (relative to
     * virtual_mailbox_base) of addresses in virtual_mailbox_domains, all
     * owned by mail_store_owner. NULL tables: the error in virtual_error. */
    struct map_list *virtual_alias, *virtual_mailbox;
    strbuf virtual_error;
    char *virtual_base;
    char *store_owner;
};

/* A user whose rights a job runs with (copied strings). */
struct local_who {
    uid_t uid;
    gid_t gid;
    char *name;
    char *home;
};
void local_who_copy(struct local_who *dst, const struct local_who *src);
void local_who_free(struct local_who *w);

/* The outcome of one delivery or of a whole recipient. */
struct local_result {
    enum delivery_status status;
    char dsn[16];
    strbuf reason;
};
void local_result_init(struct local_result *r);
void local_result_free(struct local_result *r);
/* Sets status, dsn and reason (printf-style; control characters in the
 * result are replaced, the text is cut at LOCAL_REASON_MAX). */
void local_result_set(struct local_result *r, enum delivery_status st, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The message being delivered: the queue file and what its header says. */
struct local_message {
    struct queue_file *qf;
    const char *id;
    const char *sender;        /* "" = null sender */
    const char *client;        /* not used yet */
    char **delivered_to;       /* lowercased Delivered-To: values */
    size_t n_delivered_to;
    long received;             /* number of Received: headers */
    double arrival;            /* for delay= */
};

/* A final destination found by the expansion. */
enum action_kind {
    ACT_MAILBOX, /* text: the user name */
    ACT_FILE,    /* text: absolute path */
    ACT_COMMAND, /* text: the command line for /bin/sh -c */
    ACT_REMOTE,  /* text: an address of another domain, forwarded */
    ACT_VIRTUAL, /* text: absolute mailbox path under virtual_mailbox_base;
                  * a trailing '/' means Maildir, else mbox */
};

struct action {
    enum action_kind kind;
    char *text;
    struct local_who who;      /* rights to deliver with */
    char *recipient;           /* the local address whose expansion led here
                                * (Delivered-To:, RECIPIENT) */
    char *local, *extension, *domain; /* parts of recipient, for commands */
    enum local_origin origin;
};

/* What one recipient expands to. */
struct expansion {
    struct action *acts;
    size_t n, cap;
    size_t nodes;              /* addresses visited */
    int depth;
    bool failed;               /* fail holds the worst failure */
    struct local_result fail;
};
void expansion_init(struct expansion *e);
void expansion_free(struct expansion *e);

/* settings.c */
void local_settings_load(struct local_settings *s, struct config *cfg);
/* Closes the tables and frees everything (at exit, so that leak checkers
 * see the Berkeley DB handles closed). */
void local_settings_free(struct local_settings *s);

/* mailbox.c: a virtual mailbox (ACT_VIRTUAL), as mail_store_owner. */
void local_deliver_virtual(struct local_settings *s, const struct local_message *m,
                           const struct action *a, struct local_result *res);

/* request.c: serves one connection from qmgr (requests until qmgr closes
 * it or this process has served max_use requests). */
void local_serve(struct local_settings *s, int fd);

/* message.c */
/* Reads the header of the message: Delivered-To: values and the number of
 * Received: headers. Returns 0 or -1 with err set. */
int local_message_scan(struct local_message *m, strbuf *err);
void local_message_free(struct local_message *m);
/* True when the header carries Delivered-To: addr (compared lowercased). */
bool local_message_delivered_to(const struct local_message *m, const char *addr);
/* Sink for the message stream: returns 0, or -1 to stop (err set), or 1
 * to stop quietly (the reader went away). */
typedef int (*local_sink_fn)(void *arg, const char *p, size_t n, strbuf *err);
/* Streams "Return-Path: <sender>" (when return_path), "Delivered-To:
 * recipient" and the message content, all CRLF as in the queue, to sink.
 * Returns 0, 1 (the sink stopped quietly) or -1 with err set. */
int local_message_copy(const struct local_message *m, const char *recipient, bool return_path,
                       local_sink_fn sink, void *arg, strbuf *err);

/* resolve_local.c: expands one recipient address (as qmgr gave it). */
void local_expand(struct local_settings *s, const struct local_message *m, const char *address,
                  struct expansion *e);

/* child.c: runs fn in a forked child switched to who (never root), with a
 * time limit; the child's result and optional data come back through a
 * socket. A child that fails to switch, dies or times out gives a
 * deferred result. */
typedef void (*local_child_fn)(void *arg, struct local_result *res, strbuf *data);
void local_run_as(const struct local_who *who, long long timeout_s, local_child_fn fn,
                  void *arg, struct local_result *res, strbuf *data);

/* runner.c: runs a mailbox delivery (local_mailbox_job) in the long-lived
 * child of who (forked on first use, switched to who for good), with the
 * queue file's descriptor passed to it. Failures defer, as in child.c. */
void local_runner_deliver(struct local_settings *s, const struct local_message *m,
                          const struct action *a, const struct local_who *who, bool maildir,
                          struct local_result *res, strbuf *data);
/* Ends every runner (at exit). */
void local_runners_end(void);
/* In a forked child: closes the runners' sockets (they are the parent's). */
void local_runners_forget(void);
/* mailbox.c: the delivery itself, already running as the user. */
void local_mailbox_job(struct local_settings *s, const struct local_message *m,
                       const struct action *a, bool maildir, struct local_result *res,
                       strbuf *data);

/* mailbox.c, file.c, pipe.c, requeue.c: deliver one action. */
void local_deliver_mailbox(struct local_settings *s, const struct local_message *m,
                           const struct action *a, struct local_result *res);
void local_deliver_file(struct local_settings *s, const struct local_message *m,
                        const struct action *a, struct local_result *res);
void local_deliver_command(struct local_settings *s, const struct local_message *m,
                           const struct action *a, const char *orig_rcpt,
                           struct local_result *res);
/* Appends the message mbox-style to path (already running as the user):
 * mailbox.c for the spool, file.c for /file targets. what names the
 * destination in the reason ("mailbox", "file /x"). */
struct mbox_options;
void local_mbox_append(const struct local_message *m, const char *recipient, const char *path,
                       const struct mbox_options *o, struct local_result *res, const char *what);
/* Forwards the addresses (all ACT_REMOTE actions with the same recipient)
 * as one new queue file. */
void local_requeue(struct local_settings *s, const struct local_message *m,
                   const char *recipient, const char *const *addrs, size_t n,
                   struct local_result *res);

#endif
