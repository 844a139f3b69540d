/*
 * readfile.c - whole-file reads with a size limit; see readfile.h.
 */
#include "util/readfile.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int read_file_limited(const char *path, size_t max, strbuf *out, strbuf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        strbuf_printf(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        strbuf_printf(err, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t start = out->len;
    char buf[8192];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            strbuf_printf(err, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (r == 0) {
            close(fd);
            return 0;
        }
        if (out->len - start + (size_t)r > max) {
            strbuf_printf(err, "%s: larger than %zu bytes", path, max);
            break;
        }
        strbuf_append(out, buf, (size_t)r);
    }
    strbuf_truncate(out, start);
    close(fd);
    return -1;
}
