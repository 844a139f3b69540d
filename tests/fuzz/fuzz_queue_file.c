/*
 * fuzz_queue_file.c - the queue file reader: any bytes on disk in the place
 * of a queue file must be refused with a message or read consistently.
 * libFuzzer target (tests/fuzz/run.sh, `make fuzz`): hostile input must give a
 * clean error, never a crash, a leak or undefined behaviour.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mail/queue_file.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/petrel-fuzz-qf.%ld", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, d, n) != (ssize_t)n)
        abort();
    close(fd);
    struct queue_file *qf;
    strbuf err;
    strbuf_init(&err);
    if (queue_file_open_readonly(path, &qf, &err) == 0) {
        if (qf->rcpt_count == 0)
            abort();
        char buf[512];
        for (uint64_t pos = 0; pos < qf->content_length;) {
            ssize_t r = queue_file_read_content(qf, pos, buf, sizeof(buf), &err);
            if (r <= 0)
                abort();
            pos += (uint64_t)r;
        }
        queue_file_close(&qf);
    }
    strbuf_free(&err);
    unlink(path);
    return 0;
}
