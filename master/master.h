/*
 * master.h - state shared by the supervisor's files.
 *
 * master keeps one `struct msvc` per service of the table and one `struct
 * mchild` per running process. A reload builds a new set of services; the
 * old ones are "retired" and live on, without spawning, until their last
 * process has exited. Listening sockets whose endpoint did not change move
 * from the old service to the new one, so no connection is refused during a
 * reload.
 */
#ifndef PETREL_MASTER_H
#define PETREL_MASTER_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "mail/service_table.h"

struct config;

struct msvc {
    struct service_def def;   /* copied from the table; owned */
    char *program;            /* daemon_directory/command */
    uid_t uid;
    gid_t gid;
    bool drop_in_child;       /* switch user before exec (no chroot) */
    int limit;
    int *listen_fds;          /* def.nendpoints, -1 where not open */
    int status_rd, status_wr; /* the status pipe */
    int nproc, nidle;
    int backoff;              /* seconds of the next restart delay, 0 = none */
    time_t throttle_until;
    time_t mute_until;        /* at the limit: stop watching the listener until then */
    time_t limit_logged;
    bool retired;
    unsigned long spawned;    /* total processes started, for status */
    struct msvc *next;
};

struct mchild {
    pid_t pid;
    struct msvc *svc;
    bool idle;
    time_t started;
    struct mchild *next;
};

struct master {
    char *config_dir;
    char *queue_dir;
    char *daemon_dir;
    char *mail_owner;
    char *setgid_group;
    char *log_destination;
    int grace;                /* seconds between SIGTERM and SIGKILL at stop */
    bool can_switch;          /* running as root */
    struct msvc *services;    /* current and retired */
    struct mchild *children;
    int control_fd;           /* listening socket for `petrel status` */
    int lock_fd;
    int config_fd;            /* sealed copy of the validated petrel.conf */
    bool stopping;
};

/* listeners.c: open every endpoint of svc not already open; 0 or -1 with err. */
struct strbuf;
int listeners_open(struct master *m, struct msvc *svc, struct strbuf *err);
void listeners_close(struct msvc *svc);
/* Moves still-valid listeners from retired services to the new ones. */
void listeners_inherit(struct msvc *newsvc, struct msvc *old);

/* services.c: load config + table into a fresh service list. */
int services_load(struct master *m, struct msvc **list_r, struct strbuf *err);
void service_free(struct msvc *svc);

/* children.c */
int child_spawn(struct master *m, struct msvc *svc);
void children_reap(struct master *m);
void children_read_status(struct master *m, struct msvc *svc);
void children_signal(struct master *m, struct msvc *svc_or_null, int sig);
int children_count(const struct master *m);

/* control.c: the status socket used by `petrel status`. */
int control_open(struct master *m, struct strbuf *err);
void control_serve(struct master *m);

/* queue layout lives in lib/mail/queue_layout.h (shared with `petrel check`). */

#endif
