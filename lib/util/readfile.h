/*
 * readfile.h - read a whole (small) file into a strbuf, with a size limit.
 *
 * For configuration-sized files that a program reads once: it refuses
 * anything but a regular file and anything larger than the limit, so a
 * misplaced device or a huge file cannot stall or exhaust the reader.
 */
#ifndef PETREL_READFILE_H
#define PETREL_READFILE_H

#include <stddef.h>

struct strbuf;

/* Appends the contents of path to out. Returns 0, or -1 with one message
 * ("path: cannot open: ...", "path: larger than N bytes", ...) appended to
 * err. */
int read_file_limited(const char *path, size_t max, struct strbuf *out, struct strbuf *err);

#endif
