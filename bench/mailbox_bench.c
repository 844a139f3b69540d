/*
 * mailbox_bench.c - by-hand benchmark of the mailbox reader (not part of
 * make test): how long mailbox_open + listing take on a big Maildir.
 *
 * Builds Maildirs of N messages (default 50,000) in a scratch directory
 * and times mailbox_open (exclusive, as pop3d does) plus a walk over the
 * list (what STAT/LIST/UIDL need):
 *   1. names with ,S=/,W= (as maildir.c and Dovecot deliver) already in
 *      cur/: the first open (each W= checked once, size cache written) and
 *      the next ones (readdir + cache only);
 *   2. the same messages arriving in new/: the open that moves them;
 *   3. names without S=/W=: the first open (every file read, cache
 *      filled) and the next ones (a stat per message + cache).
 * Files are written directly in the delivery name format (no fsync), so
 * building the test data stays fast.
 *
 * Run: build-<dir>/bin/mailbox-bench [-n count] [-r repeats] [-k] [dir]
 * (-k keeps the scratch directory), or mailbox-bench -o <mailbox> to time
 * opening an existing Maildir or mbox (nothing is created or deleted). Figures depend on the page cache: they
 * are warm-cache figures, the usual case for a mailbox read repeatedly.
 */
#include "mail/mailbox.h"
#include "mail/maildir.h"
#include "support/testdir.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "mailbox-bench: %s: %s\n", what, detail);
    exit(1);
}

/* Writes one message; the name as maildir.c makes it. */
static void make_msg(const char *dir, const char *sub, long i, bool sizes, const char *info)
{
    char text[512], path[1024];
    int n = snprintf(text, sizeof(text),
                     "Return-Path: <load@source.test>\nDelivered-To: user@bench.test\n"
                     "From: load@source.test\nTo: user@bench.test\n"
                     "Subject: message %ld\nMessage-ID: <%ld@source.test>\n\n"
                     "This is message %ld of the mailbox benchmark.\n",
                     i, i, i);
    long lines = 0;
    for (int k = 0; k < n; k++)
        lines += text[k] == '\n';
    long sec = 1700000000 + i / 10, usec = (i % 10) * 1000 + 17;
    if (sizes)
        snprintf(path, sizeof(path), "%s/%s/%ld.M%ldP4242Q%ld.bench.test,S=%d,W=%ld%s", dir, sub,
                 sec, usec, i, n, n + lines, info);
    else
        snprintf(path, sizeof(path), "%s/%s/%ld.M%ldP4242Q%ld.bench.test%s", dir, sub, sec,
                 usec, i, info);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) != 0)
        die(path, strerror(errno));
}

/* One timed open + walk; returns seconds. want < 0: any count. */
static double timed_open(const char *md, long want)
{
    struct mailbox *mb = NULL;
    strbuf err;
    uint64_t total = 0;
    strbuf_init(&err);
    double t0 = now();
    if (mailbox_open(md, MAILBOX_EXCLUSIVE, &mb, &err) != MAILBOX_OK)
        die(md, err.data);
    size_t n = mailbox_count(mb);
    for (size_t i = 0; i < n; i++) {
        const struct mailbox_msg *m = mailbox_msg(mb, i);
        total += m->size + strlen(m->uid);
    }
    double t = now() - t0;
    mailbox_close(&mb);
    if (want >= 0 && (long)n != want)
        die(md, "wrong message count");
    strbuf_free(&err);
    return t + (double)(total == 0); /* keep the walk */
}

static void series(const char *label, const char *md, long count, int repeats)
{
    double first = timed_open(md, count), best = 1e9, sum = 0;
    for (int r = 0; r < repeats; r++) {
        double t = timed_open(md, count);
        sum += t;
        if (t < best)
            best = t;
    }
    printf("%-34s first open %8.3f s | next opens: best %.3f s, mean %.3f s (%d runs)\n", label,
           first, best, sum / repeats, repeats);
}

int main(int argc, char **argv)
{
    long count = 50000;
    int repeats = 5, opt;
    bool keep = false;
    char base[256], md[300];
    strbuf err;

    const char *existing = NULL;
    while ((opt = getopt(argc, argv, "n:r:ko:")) != -1) {
        switch (opt) {
        case 'o': existing = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'r': repeats = atoi(optarg); break;
        case 'k': keep = true; break;
        default:
            fprintf(stderr, "usage: mailbox-bench [-n count] [-r repeats] [-k] [dir]\n"
                            "       mailbox-bench [-r repeats] -o mailbox\n");
            return 2;
        }
    }
    if (count < 1 || repeats < 1)
        die("arguments", "count and repeats must be positive");
    if (existing != NULL) {
        series("existing mailbox:", existing, -1, repeats);
        return 0;
    }
    snprintf(base, sizeof(base), "%s/petrel-mailbox-bench-XXXXXX",
             optind < argc ? argv[optind] : "/var/tmp");
    if (mkdtemp(base) == NULL)
        die(base, strerror(errno));
    strbuf_init(&err);
    printf("mailbox-bench: %ld messages in %s\n", count, base);

    /* 1. S=/W= names in cur/. */
    snprintf(md, sizeof(md), "%s/Wcur", base);
    if (maildir_create(md, 0700, &err) != 0)
        die(md, err.data);
    double t0 = now();
    for (long i = 0; i < count; i++)
        make_msg(md, "cur", i, true, ":2,S");
    printf("(created in %.1f s)\n", now() - t0);
    series("S=/W= names in cur/:", md, count, repeats);

    /* 2. S=/W= names arriving in new/. */
    snprintf(md, sizeof(md), "%s/Wnew", base);
    if (maildir_create(md, 0700, &err) != 0)
        die(md, err.data);
    for (long i = 0; i < count; i++)
        make_msg(md, "new", i, true, "");
    series("S=/W= names in new/ (moved):", md, count, repeats);

    /* 3. Names without sizes. */
    snprintf(md, sizeof(md), "%s/plain", base);
    if (maildir_create(md, 0700, &err) != 0)
        die(md, err.data);
    for (long i = 0; i < count; i++)
        make_msg(md, "cur", i, false, ":2,");
    series("names without S=/W= in cur/:", md, count, repeats);

    if (keep)
        printf("kept %s\n", base);
    else
        test_rm_tree(base);
    strbuf_free(&err);
    return 0;
}
