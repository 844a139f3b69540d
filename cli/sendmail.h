/*
 * sendmail.h - the sendmail-compatible command (also run as mailq and
 * newaliases): shared state of its files.
 */
#ifndef PETREL_CLI_SENDMAIL_H
#define PETREL_CLI_SENDMAIL_H

#include <stdbool.h>

#include "util/strbuf.h"

/* sysexits.h values, named here so the code says what it means. */
#define EXIT_USAGE 64     /* EX_USAGE */
#define EXIT_DATAERR 65   /* EX_DATAERR */
#define EXIT_NOUSER 67    /* EX_NOUSER: a bad address */
#define EXIT_SOFTWARE 70  /* EX_SOFTWARE */
#define EXIT_CANTCREAT 73 /* EX_CANTCREAT */
#define EXIT_TEMPFAIL 75  /* EX_TEMPFAIL */
#define EXIT_CONFIG 78    /* EX_CONFIG */

struct config;

struct sendmail_opts {
    const char *config_dir;
    const char *sender;     /* -f / -r; NULL = the caller */
    const char *full_name;  /* -F */
    bool extract;           /* -t */
    bool ignore_dots;       /* -i, -oi */
    bool verbose;           /* -v */
    unsigned notify;        /* -N, QUEUE_NOTIFY_* */
    int ret;                /* -R: 0, 'F' or 'H' */
    const char *envid;      /* -V */
    char **rcpts;           /* operands */
    int nrcpts;
};

struct sendmail_ctx {
    struct sendmail_opts opts;
    struct config *cfg;
    const char *queue_dir;
    const char *myorigin;
    const char *myhostname;
    char *user;             /* the caller's login name */
    char *gecos;            /* the caller's full name from passwd */
    long long size_limit;
};

/* sendmail_msg.c: reads the message from stdin (CRLF in the result),
 * completes its headers and collects -t recipients into rcpts (as
 * envelope addresses). Returns 0 or an exit status after printing why. */
int sendmail_read_message(struct sendmail_ctx *sc, strbuf *msg, strbuf *rcpts_nul);

/* sendmail_drop.c: writes the message into maildrop/ durably and wakes
 * pickup. Returns 0 or an exit status after printing why. */
int sendmail_drop(struct sendmail_ctx *sc, const char *sender, const strbuf *rcpts_nul,
                  const strbuf *msg);

/* Prints "sendmail: " and the message to stderr. */
void sendmail_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
