/*
 * queue_id.h - queue ids: the name of a message in the queue.
 *
 * A queue id names the queue file (one file per message) and keys every log
 * line about the message. Ids are unique across processes and restarts,
 * sort by creation time (byte order of two ids = order of their creation
 * times, at microsecond granularity, also across processes), are made of
 * [0-9A-V] only (safe as a file name, even on a case-insensitive file
 * system) and have a fixed length of QUEUE_ID_LEN characters.
 *
 * Layout (all fields big-endian digits in the base-32 alphabet
 * "0123456789ABCDEFGHIJKLMNOPQRSTUV", whose ASCII order is its numeric order):
 *   11 chars  microseconds since the Unix epoch (55 bits: good until year 3111)
 *    5 chars  process id (25 bits; Linux pids stop at 2^22)
 *    2 chars  per-process sequence number within one microsecond (10 bits)
 *    4 chars  random bits from getrandom() (20 bits)
 * See docs/queue.md for why each part is there.
 */
#ifndef PETREL_QUEUE_ID_H
#define PETREL_QUEUE_ID_H

#include <stdbool.h>
#include <sys/time.h>

#define QUEUE_ID_LEN 22
#define QUEUE_ID_SIZE (QUEUE_ID_LEN + 1) /* with the terminating NUL */

/* Writes a new, NUL-terminated id into out. Never fails: if the kernel's
 * random source is unavailable the random part is derived from the clock and
 * counter, which keeps ids unique within this host (the time, pid and
 * sequence parts alone are unique as long as the clock does not step back
 * across a pid reuse). Safe to use in a child after fork(); not thread-safe
 * (Petrel daemons are single-threaded). */
void queue_id_new(char out[QUEUE_ID_SIZE]);

/* True when s is exactly QUEUE_ID_LEN characters of the id alphabet followed
 * by a NUL. This is the strict check every caller applies before a name from
 * outside (a directory listing, an IPC request, a command line) is used as a
 * path component: it rejects "", ".", "..", "../x", slashes, lower case,
 * overlong and short names. s may be NULL (false). */
bool queue_id_valid(const char *s);

/* Decodes the creation time of a valid id into tv. Returns 0, or -1 (tv
 * untouched) if id is not valid. */
int queue_id_time(const char *id, struct timeval *tv);

#endif
