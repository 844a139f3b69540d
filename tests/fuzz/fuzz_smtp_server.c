/*
 * fuzz_smtp_server.c - the SMTP server engine fed a whole client session:
 * commands, ESMTP parameters, DATA and BDAT framing, pipelining. Replies go
 * to /dev/null; the input arrives on a pipe that ends where the input does.
 * libFuzzer target (tests/fuzz/run.sh, `make fuzz`): hostile input must give a
 * clean error, never a crash, a leak or undefined behaviour.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "smtp/server.h"
#include "util/log.h"
#include "util/netio.h"

static int sink(void *ctx, struct smtp_session *s, const char *p, size_t n, struct smtp_reply *r)
{
    (void)ctx;
    (void)s;
    (void)p;
    (void)r;
    return n > 0 && p == NULL ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static int devnull = -1;
    if (devnull < 0) {
        devnull = open("/dev/null", O_WRONLY);
        log_set_level(LOG_LEVEL_FATAL);
    }
    int p[2];
    if (n > 60000 || pipe(p) < 0)
        return 0;
    if (write(p[1], d, n) != (ssize_t)n)
        abort();
    close(p[1]);
    static const struct smtp_server_ops ops = { .on_data_chunk = sink };
    struct smtp_server_config cfg = {
        .hostname = "fuzz.test", .size_limit = 20000, .max_rcpt = 20, .cmd_timeout_ms = 1000,
        .data_timeout_ms = 1000, .soft_errors = -1, .hard_errors = 50, .error_delay_ms = -1,
        .pregreet_ms = -1, .pipelining = true, .eightbitmime = true, .smtputf8 = true,
        .dsn = true, .chunking = true,
    };
    struct netio *io = netio_new_fds(p[0], devnull);
    smtp_server_run(io, &cfg, &ops, NULL);
    netio_free(&io);
    close(p[0]);
    return 0;
}
