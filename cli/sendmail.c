/*
 * sendmail.c - the sendmail-compatible command local programs hand mail to
 * (cron, scripts, mail(1), monitoring). It runs as its caller, with no
 * privilege: the message is written into the world-writable, sticky
 * maildrop/ directory, where pickup finds it (and learns the caller from the
 * file's owner). It works while the daemons are stopped.
 *
 * Run as `mailq` it lists the queue (-bp); run as `newaliases` it rebuilds
 * the alias database (-bi). Options follow sendmail and Postfix; see usage().
 * Exit statuses are those of sysexits.h: 64 usage, 65 bad message, 67 bad
 * address, 73 cannot create the queue file, 75 temporary failure, 78 bad
 * configuration.
 */
#include "sendmail.h"
#include "mail/address.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "util/config.h"
#include "util/log.h"
#include "util/privilege.h"
#include "util/xalloc.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PETREL_CONFIG_DIR
#define PETREL_CONFIG_DIR "/etc/petrel"
#endif

int sendmail_list_queue(struct sendmail_ctx *sc);
int sendmail_newaliases(struct sendmail_ctx *sc);
int sendmail_flush(struct sendmail_ctx *sc);
int sendmail_smtp(struct sendmail_ctx *sc);

void sendmail_error(const char *fmt, ...)
{
    va_list ap;
    fputs("sendmail: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: sendmail [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret] [-V envid]\n"
            "                [-B body] [-C confdir] [-v] [-o...] [--] [recipient...]\n"
            "       sendmail -bs | -bp | -bi | -q          (SMTP on stdin, mailq, newaliases, flush)\n");
}

/* -N never | success,failure,delay */
static int parse_notify(const char *s, unsigned *out)
{
    *out = 0;
    char *copy = xstrdup(s), *save = NULL;
    int rc = 0;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (strcasecmp(w, "never") == 0)
            *out |= QUEUE_NOTIFY_NEVER;
        else if (strcasecmp(w, "success") == 0)
            *out |= QUEUE_NOTIFY_SUCCESS;
        else if (strcasecmp(w, "failure") == 0)
            *out |= QUEUE_NOTIFY_FAILURE;
        else if (strcasecmp(w, "delay") == 0)
            *out |= QUEUE_NOTIFY_DELAY;
        else
            rc = -1;
    }
    free(copy);
    if ((*out & QUEUE_NOTIFY_NEVER) && *out != QUEUE_NOTIFY_NEVER)
        rc = -1;
    return rc;
}

/* The value of an option written either as -xVALUE or -x VALUE. */
static const char *optval(int argc, char **argv, int *i, size_t skip)
{
    if (argv[*i][skip] != '\0')
        return argv[*i] + skip;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct sendmail_ctx sc;
    memset(&sc, 0, sizeof(sc));
    struct sendmail_opts *o = &sc.opts;
    o->config_dir = PETREL_CONFIG_DIR;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    log_init("sendmail");
    char mode = 'm'; /* -bm */
    if (strcmp(prog, "mailq") == 0)
        mode = 'p';
    else if (strcmp(prog, "newaliases") == 0)
        mode = 'i';

    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strlen(a) > 4096) {
            sendmail_error("option too long");
            return EXIT_USAGE;
        }
        const char *v;
        switch (a[1]) {
        case 't': o->extract = true; break;
        case 'i': o->ignore_dots = true; break;
        case 'v': o->verbose = true; break;
        case 'f':
        case 'r':
            if ((v = optval(argc, argv, &i, 2)) == NULL)
                goto usage;
            o->sender = v;
            break;
        case 'F':
            if ((v = optval(argc, argv, &i, 2)) == NULL)
                goto usage;
            o->full_name = v;
            break;
        case 'C':
            if ((v = optval(argc, argv, &i, 2)) == NULL)
                goto usage;
            o->config_dir = v;
            break;
        case 'N':
            if ((v = optval(argc, argv, &i, 2)) == NULL || parse_notify(v, &o->notify) < 0) {
                sendmail_error("bad -N value (expected never, or success,failure,delay)");
                return EXIT_USAGE;
            }
            break;
        case 'R':
            if ((v = optval(argc, argv, &i, 2)) == NULL)
                goto usage;
            if (strcasecmp(v, "full") == 0)
                o->ret = 'F';
            else if (strcasecmp(v, "hdrs") == 0)
                o->ret = 'H';
            else {
                sendmail_error("bad -R value \"%s\" (expected full or hdrs)", v);
                return EXIT_USAGE;
            }
            break;
        case 'V':
            if ((v = optval(argc, argv, &i, 2)) == NULL)
                goto usage;
            o->envid = v;
            break;
        case 'B': /* 7BIT / 8BITMIME: content is stored as given either way */
        case 'h': /* hop count */
        case 'L': /* syslog label */
            if (optval(argc, argv, &i, 2) == NULL)
                goto usage;
            break;
        case 'U': /* initial user submission */
        case 'n': /* no aliasing: aliases are the MTA's business */
        case 'm': /* send to me too */
            break;
        case 'o':
            /* -oi is -i; the other sendmail -o options (delivery mode,
             * error mode...) do not apply and are ignored, as Postfix does. */
            if (strcmp(a, "-oi") == 0)
                o->ignore_dots = true;
            else if (a[2] == '\0' && i + 1 < argc)
                i++;
            break;
        case 'b':
            if (a[2] == '\0' || a[3] != '\0' || strchr("mspiDd", a[2]) == NULL) {
                sendmail_error("unsupported mode \"%s\" (supported: -bm -bs -bp -bi)", a);
                return EXIT_USAGE;
            }
            mode = a[2] == 'D' || a[2] == 'd' ? 'm' : a[2];
            break;
        case 'q':
            mode = 'q';
            break;
        default:
            sendmail_error("unknown option \"%s\"", a);
            goto usage;
        }
    }
    o->rcpts = argv + i;
    o->nrcpts = argc - i;

    /* The configuration: a non-root caller may choose another one (-C), but
     * only the installed queue accepts its mail, which pickup validates. */
    sc.cfg = params_config_new();
    strbuf err, path;
    strbuf_init(&err);
    strbuf_init(&path);
    strbuf_printf(&path, "%s/petrel.conf", o->config_dir);
    if (config_load_file(sc.cfg, path.data, &err) > 0) {
        fprintf(stderr, "%s", err.data);
        sendmail_error("the configuration has errors");
        return EXIT_CONFIG;
    }
    params_host_defaults(sc.cfg, NULL);
    sc.queue_dir = config_get(sc.cfg, "queue_directory");
    sc.myorigin = config_get(sc.cfg, "myorigin");
    sc.myhostname = config_get(sc.cfg, "myhostname");
    if (config_get_size(sc.cfg, "message_size_limit", &sc.size_limit, &err) < 0) {
        fprintf(stderr, "%s", err.data);
        return EXIT_CONFIG;
    }
    struct priv_user me;
    strbuf_reset(&err);
    if (privilege_lookup_uid(getuid(), &me, &err) != PRIV_LOOKUP_FOUND) {
        sendmail_error("cannot find who you are (uid %ld): %s", (long)getuid(), err.data);
        return EXIT_TEMPFAIL;
    }
    sc.user = xstrdup(me.name);
    privilege_user_free(&me);
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_gecos) /* the full name is the first comma-separated field */
        sc.gecos = xstrndup(pw->pw_gecos, strcspn(pw->pw_gecos, ","));
    if (!o->verbose)
        log_set_level(LOG_LEVEL_WARNING); /* -bs: keep the dialogue's stderr quiet */

    int rc;
    switch (mode) {
    case 'p': rc = sendmail_list_queue(&sc); break;
    case 'i': rc = sendmail_newaliases(&sc); break;
    case 'q': rc = sendmail_flush(&sc); break;
    case 's': rc = sendmail_smtp(&sc); break;
    default: {
        strbuf msg, rcpts;
        strbuf_init(&msg);
        strbuf_init(&rcpts);
        rc = sendmail_read_message(&sc, &msg, &rcpts);
        if (rc == 0) {
            strbuf sender;
            strbuf_init(&sender);
            if (o->sender == NULL)
                strbuf_printf(&sender, "%s@%s", sc.user, sc.myorigin);
            else
                strbuf_sets(&sender, o->sender);
            rc = sendmail_drop(&sc, sender.data, &rcpts, &msg);
            strbuf_free(&sender);
        }
        strbuf_free(&msg);
        strbuf_free(&rcpts);
    }
    }
    config_free(&sc.cfg);
    free(sc.user);
    free(sc.gecos);
    strbuf_free(&err);
    strbuf_free(&path);
    return rc;
usage:
    usage();
    return EXIT_USAGE;
}
