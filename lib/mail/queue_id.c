/*
 * queue_id.c - unique, time-sortable, file-name-safe queue ids; see
 * queue_id.h for the layout and docs/queue.md for the reasoning.
 *
 * Uniqueness comes in layers: the microsecond clock separates ids in time,
 * the pid separates processes that run at the same moment, the sequence
 * number separates ids one process makes within one microsecond (or while
 * the clock stands still or steps back: the last time used is never
 * decreased), and the random part guards the remaining case of a pid reused
 * after the clock stepped back across a restart.
 */
#include "mail/queue_id.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define TIME_DIGITS 11
#define PID_DIGITS 5
#define SEQ_DIGITS 2
#define RAND_DIGITS 4
#define SEQ_MAX ((1u << (5 * SEQ_DIGITS)) - 1)

_Static_assert(TIME_DIGITS + PID_DIGITS + SEQ_DIGITS + RAND_DIGITS == QUEUE_ID_LEN,
               "queue id layout does not add up");

/* 32 symbols in ascending ASCII order, so that digit order is byte order. */
static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/* Per-process state; inherited by a forked child, whose different pid keeps
 * its ids apart from the parent's. */
static uint64_t last_usec;
static unsigned last_seq;

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'V')
        return c - 'A' + 10;
    return -1;
}

/* Writes the low 5*n bits of v as n base-32 digits, most significant first. */
static void put_digits(char *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = alphabet[v & 31];
        v >>= 5;
    }
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A fallback mixer (splitmix64 finaliser) used only when getrandom fails. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void queue_id_new(char out[QUEUE_ID_SIZE])
{
    uint64_t now = now_usec();
    if (now > last_usec) {
        last_usec = now;
        last_seq = 0;
    } else if (++last_seq > SEQ_MAX) {
        /* More than 1024 ids in one microsecond, or a clock that stands
         * still: borrow the next microsecond rather than repeat an id. */
        last_usec++;
        last_seq = 0;
    }

    uint64_t pid = (uint64_t)getpid();
    uint32_t rnd;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)mix64(now ^ (pid << 40) ^ last_seq);

    put_digits(out, last_usec, TIME_DIGITS);
    put_digits(out + TIME_DIGITS, pid, PID_DIGITS);
    put_digits(out + TIME_DIGITS + PID_DIGITS, last_seq, SEQ_DIGITS);
    put_digits(out + TIME_DIGITS + PID_DIGITS + SEQ_DIGITS, rnd, RAND_DIGITS);
    out[QUEUE_ID_LEN] = '\0';
}

bool queue_id_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < QUEUE_ID_LEN; i++) {
        /* A NUL before QUEUE_ID_LEN fails here, so we never read past it. */
        if (digit_value(s[i]) < 0)
            return false;
    }
    return s[QUEUE_ID_LEN] == '\0';
}

int queue_id_time(const char *id, struct timeval *tv)
{
    if (!queue_id_valid(id))
        return -1;
    uint64_t usec = 0;
    for (int i = 0; i < TIME_DIGITS; i++)
        usec = (usec << 5) | (uint64_t)digit_value(id[i]);
    tv->tv_sec = (time_t)(usec / 1000000u);
    tv->tv_usec = (suseconds_t)(usec % 1000000u);
    return 0;
}
