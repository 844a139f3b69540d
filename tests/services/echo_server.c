/*
 * echo_server.c - a test service served through master (tests/integration).
 *
 * It exists to test the supervisor and the server skeleton without any mail
 * protocol in the way: it greets with its pid, uid and gid (so a test can
 * check the user switch from the client side as well as in /proc), echoes
 * lines, and answers a few commands:
 *   QUIT          close the connection
 *   SLEEP <ms>    wait, then answer (holds the process busy)
 *   CONFIG <key>  print the value of a petrel.conf parameter as this process sees it
 *   CRASH         abort() (for restart tests)
 * Lines are read with a timeout and a length limit like any network input.
 */
#include "util/config.h"
#include "util/log.h"
#include "mail/server.h"
#include "util/strbuf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ECHO_MAX_LINE 1024
#define ECHO_TIMEOUT_MS 30000

static void say(int fd, const char *text, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, text, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        text += w;
        n -= (size_t)w;
    }
}

static void sayf(int fd, strbuf *sb)
{
    say(fd, sb->data, sb->len);
    strbuf_reset(sb);
}

/* Reads one line into line (without the newline); false on EOF/timeout/overflow. */
static bool read_line(int fd, strbuf *in, strbuf *line)
{
    for (;;) {
        char *nl = memchr(in->data, '\n', in->len);
        if (nl) {
            size_t n = (size_t)(nl - in->data);
            strbuf_set(line, in->data, n);
            strbuf_rtrim(line);
            strbuf_consume(in, n + 1);
            return true;
        }
        if (in->len > ECHO_MAX_LINE)
            return false;
        /* A stop request from master (a signal) interrupts poll: the session
         * still finishes, so retry. */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll(&p, 1, ECHO_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        char buf[512];
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        strbuf_append(in, buf, (size_t)r);
    }
}

static void echo_serve(struct server_ctx *ctx, int fd)
{
    strbuf in, line, out;
    strbuf_init(&in);
    strbuf_init(&line);
    strbuf_init(&out);
    strbuf_printf(&out, "200 echo ready service=%s pid=%ld uid=%ld gid=%ld\n", ctx->service,
                  (long)getpid(), (long)getuid(), (long)getgid());
    sayf(fd, &out);
    while (read_line(fd, &in, &line)) {
        if (strcmp(line.data, "QUIT") == 0) {
            say(fd, "221 bye\n", 8);
            break;
        } else if (strncmp(line.data, "SLEEP ", 6) == 0) {
            long ms = strtol(line.data + 6, NULL, 10);
            if (ms < 0 || ms > 60000)
                ms = 0;
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
            strbuf_printf(&out, "250 slept %ld pid=%ld\n", ms, (long)getpid());
        } else if (strncmp(line.data, "CONFIG ", 7) == 0) {
            const char *v = config_get(ctx->config, line.data + 7);
            strbuf_printf(&out, "250 %s=%s\n", line.data + 7, v ? v : "(unknown)");
        } else if (strcmp(line.data, "CRASH") == 0) {
            abort();
        } else {
            strbuf_appends(&out, "250 ");
            strbuf_append_sb(&out, &line);
            strbuf_appendc(&out, '\n');
        }
        sayf(fd, &out);
    }
    strbuf_free(&in);
    strbuf_free(&line);
    strbuf_free(&out);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .kind = SERVER_ACCEPT,
        .serve = echo_serve,
    };
    return server_main(argc, argv, &ops);
}
