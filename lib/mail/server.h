/*
 * server.h - the one server skeleton every Petrel service runs inside.
 *
 * master forks a service with its listening sockets and a status pipe on
 * fixed descriptors (below) and execs the program; the program's main() is a
 * single call to server_main() with a few callbacks. The skeleton owns what
 * every daemon would otherwise write again: option parsing, loading the
 * configuration, opening the log, signals, the accept loop, use and idle
 * limits, busy/idle reports to master, noticing that master went away, and
 * (for chrooted services) the privilege drop after initialisation.
 *
 * Descriptors handed over by master (documented in docs/architecture.md):
 *   3                      petrel.conf as master validated it at its last
 *                          (re)load: a sealed in-memory copy, so a file edited
 *                          but not yet reloaded (or broken) never reaches a
 *                          new process (absent when run by hand: the file
 *                          in the -c directory is read instead)
 *   4                      status pipe, write end (absent when run by hand)
 *   5 .. 5+nlisten-1       listening sockets, in the order of the service table
 *
 * Two kinds of service:
 *   SERVER_ACCEPT  one client at a time: the skeleton accepts a connection,
 *                  reports busy, calls serve(), closes the client, reports
 *                  idle; it exits after max_use clients or max_idle seconds
 *                  without one. master starts more processes on demand.
 *   SERVER_DAEMON  one long-lived process (qmgr, pickup): run() owns its own
 *                  loop over the listeners and polls server_stopping().
 */
#ifndef PETREL_SERVER_H
#define PETREL_SERVER_H

#include <stdbool.h>

#define SERVER_CONFIG_FD 3
#define SERVER_STATUS_FD 4
#define SERVER_LISTEN_FD0 5

/* What a child tells master through the status pipe; one write each, far
 * below PIPE_BUF, so reports from many children never interleave. */
enum server_status {
    SERVER_STATUS_IDLE = 1,
    SERVER_STATUS_BUSY = 2,
};
struct server_report {
    int pid;
    int status; /* enum server_status */
};

enum server_kind {
    SERVER_ACCEPT,
    SERVER_DAEMON,
};

struct config;

/* What the callbacks can see. */
struct server_ctx {
    const char *service;     /* the service name from the table (-n) */
    const char *config_dir;  /* -c, default PETREL_CONFIG_DIR */
    struct config *config;   /* petrel.conf with this service's -o overrides */
    int *listen_fds;         /* nlisten descriptors */
    int nlisten;
    void *app;               /* for the service's own state */
};

struct server_ops {
    enum server_kind kind;
    /* Called once, before any client, still with the privileges master gave
     * (root only for chrooted services, which are dropped right after). May be
     * NULL. Open here what must be opened before a chroot. */
    void (*init)(struct server_ctx *ctx);
    /* SERVER_ACCEPT: serve one connected client. The skeleton closes fd. */
    void (*serve)(struct server_ctx *ctx, int fd);
    /* SERVER_DAEMON: run until server_stopping() says stop. */
    void (*run)(struct server_ctx *ctx);
    /* SERVER_ACCEPT, optional (NULL): called before each wait for a client;
     * returns how many ms the service wants to wait at most before it is
     * called again (-1: no wish). smtp-client closes its cached connections
     * this way when they expire while no client comes. */
    int (*wakeup)(struct server_ctx *ctx);
};

/*
 * server_main: parses the options master passes, then runs the service.
 * Options:
 *   -n NAME      service name (for logs)        -c DIR   configuration directory
 *   -l N         number of listening sockets    -u N     max_use (clients per process)
 *   -i SECONDS   max_idle                        -o K=V   parameter override (repeatable)
 *   -U USER      drop to USER after init (chrooted services; master drops others)
 *   -R DIR       chroot to DIR after init (with -U)
 *   -v           verbose (debug) logging
 * Returns the process exit status.
 */
int server_main(int argc, char **argv, const struct server_ops *ops);

/* True once master asked this process to finish (SIGTERM, or SIGUSR1 after a
 * reload): a daemon's run() loop returns, an accept service exits after the
 * current client. */
bool server_stopping(void);

#endif
