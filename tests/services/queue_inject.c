/*
 * queue_inject.c - test tool (bin/queue-inject): writes a message straight
 * into <queue>/incoming/ with the queue file writer and wakes qmgr, so qmgr
 * and the delivery agents can be tested before pickup and sendmail exist.
 *
 *   queue-inject -c confdir -f sender [-N notify] [-R ret] [-E envid]
 *                [-O orcpt] rcpt... < message
 *
 * sender "" is the null sender. -N takes NEVER or a comma list of SUCCESS,
 * FAILURE, DELAY (for every recipient); -R FULL or HDRS; -O an ORCPT given
 * to every recipient ("rfc822;addr"). The message is read from standard
 * input; bare LF line ends become CRLF, as in the queue. Prints the queue id.
 */
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/trigger.h"
#include "util/config.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: queue-inject -c confdir -f sender [-N notify] [-R FULL|HDRS] "
                    "[-E envid] [-O orcpt] rcpt... < message\n");
    exit(2);
}

static unsigned parse_notify(const char *s)
{
    if (strcasecmp(s, "NEVER") == 0)
        return QUEUE_NOTIFY_NEVER;
    unsigned bits = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcasecmp(t, "SUCCESS") == 0)
            bits |= QUEUE_NOTIFY_SUCCESS;
        else if (strcasecmp(t, "FAILURE") == 0)
            bits |= QUEUE_NOTIFY_FAILURE;
        else if (strcasecmp(t, "DELAY") == 0)
            bits |= QUEUE_NOTIFY_DELAY;
        else {
            fprintf(stderr, "queue-inject: bad NOTIFY value '%s'\n", t);
            exit(2);
        }
    }
    free(copy);
    return bits;
}

static void die(const char *what, strbuf *err)
{
    fprintf(stderr, "queue-inject: %s: %s\n", what, err->data);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *confdir = NULL, *sender = NULL, *envid = NULL, *orcpt = NULL;
    unsigned notify = 0;
    enum queue_ret ret = QUEUE_RET_NONE;
    int opt;
    log_init("queue-inject");
    while ((opt = getopt(argc, argv, "c:f:N:R:E:O:")) != -1) {
        switch (opt) {
        case 'c': confdir = optarg; break;
        case 'f': sender = optarg; break;
        case 'N': notify = parse_notify(optarg); break;
        case 'R':
            if (strcasecmp(optarg, "FULL") == 0)
                ret = QUEUE_RET_FULL;
            else if (strcasecmp(optarg, "HDRS") == 0)
                ret = QUEUE_RET_HDRS;
            else
                usage();
            break;
        case 'E': envid = optarg; break;
        case 'O': orcpt = optarg; break;
        default: usage();
        }
    }
    if (confdir == NULL || sender == NULL || optind >= argc)
        usage();

    strbuf err, path;
    strbuf_init(&err);
    strbuf_init(&path);
    struct config *cfg = params_config_new();
    strbuf_printf(&path, "%s/petrel.conf", confdir);
    if (config_load_file(cfg, path.data, &err) > 0)
        die("configuration", &err);
    const char *queue_dir = config_get(cfg, "queue_directory");
    if (queue_dir == NULL)
        usage();

    char id[QUEUE_ID_SIZE];
    struct queue_writer *w;
    if (queue_file_create(queue_dir, id, &w, &err) < 0)
        die("create", &err);
    if (queue_file_set_sender(w, sender, strlen(sender), &err) < 0 ||
        queue_file_set_attr(w, QUEUE_ATTR_PROTOCOL, "test", 4, &err) < 0 ||
        (envid && queue_file_set_attr(w, QUEUE_ATTR_ENVID, envid, strlen(envid), &err) < 0) ||
        (ret != QUEUE_RET_NONE && queue_file_set_ret(w, ret, &err) < 0))
        die("envelope", &err);
    for (int i = optind; i < argc; i++)
        if (queue_file_add_recipient(w, argv[i], strlen(argv[i]), orcpt,
                                     orcpt ? strlen(orcpt) : 0, notify, &err) < 0)
            die("recipient", &err);

    /* Content with CRLF line ends: a LF not preceded by CR gets one. */
    strbuf chunk;
    strbuf_init(&chunk);
    char buf[8192];
    size_t n;
    bool last_cr = false;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        strbuf_reset(&chunk);
        for (size_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && !last_cr)
                strbuf_appendc(&chunk, '\r');
            strbuf_appendc(&chunk, buf[i]);
            last_cr = buf[i] == '\r';
        }
        if (queue_file_write_content(w, chunk.data, chunk.len, &err) < 0)
            die("content", &err);
    }
    if (queue_file_commit(&w, &err) < 0)
        die("commit", &err);
    printf("%s\n", id);
    fflush(stdout);
    trigger_send(queue_dir, "public/qmgr", TRIGGER_NEW_MAIL);
    strbuf_free(&chunk);
    strbuf_free(&err);
    strbuf_free(&path);
    config_free(&cfg);
    return 0;
}
