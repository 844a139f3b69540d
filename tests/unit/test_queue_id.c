/*
 * test_queue_id.c - unit tests for queue ids (lib/mail/queue_id): format,
 * strict validation, uniqueness in one process and across forked processes,
 * and that byte order of ids follows creation time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail/queue_id.h"

#define LOOP_IDS 100000
#define CHILDREN 4
#define CHILD_IDS 20000

static int cmp_ids(const void *a, const void *b)
{
    return memcmp(a, b, QUEUE_ID_SIZE);
}

static long long tv_usec(const struct timeval *tv)
{
    return (long long)tv->tv_sec * 1000000LL + tv->tv_usec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_format(void **state)
{
    (void)state;
    char id[QUEUE_ID_SIZE];
    queue_id_new(id);
    assert_int_equal(strlen(id), QUEUE_ID_LEN);
    for (size_t i = 0; i < QUEUE_ID_LEN; i++)
        assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUV", id[i]));
    assert_true(queue_id_valid(id));

    /* Characters 11..15 carry the pid in base 32. */
    unsigned long pid = 0;
    for (int i = 11; i < 16; i++) {
        char c = id[i];
        pid = pid * 32 + (unsigned long)(c <= '9' ? c - '0' : c - 'A' + 10);
    }
    assert_int_equal(pid, (unsigned long)getpid());
}

static void test_valid_rejects(void **state)
{
    (void)state;
    char id[QUEUE_ID_SIZE];
    queue_id_new(id);
    assert_true(queue_id_valid(id));

    assert_false(queue_id_valid(NULL));
    assert_false(queue_id_valid(""));
    assert_false(queue_id_valid("."));
    assert_false(queue_id_valid(".."));
    assert_false(queue_id_valid("../x"));
    assert_false(queue_id_valid("../../../../etc/passwd"));

    char buf[64];
    /* overlong: one more valid character */
    snprintf(buf, sizeof(buf), "%s0", id);
    assert_false(queue_id_valid(buf));
    /* short */
    memcpy(buf, id, QUEUE_ID_LEN - 1);
    buf[QUEUE_ID_LEN - 1] = '\0';
    assert_false(queue_id_valid(buf));
    /* each position with a character outside the alphabet */
    const char bad[] = "/.-_ aWZz\t\n\xff";
    for (size_t pos = 0; pos < QUEUE_ID_LEN; pos++) {
        for (size_t b = 0; b < sizeof(bad) - 1; b++) {
            memcpy(buf, id, QUEUE_ID_SIZE);
            buf[pos] = bad[b];
            assert_false(queue_id_valid(buf));
        }
    }
    /* a leading dot: the writer's temporary name */
    snprintf(buf, sizeof(buf), ".%s", id);
    assert_false(queue_id_valid(buf));
    /* lower case of a valid id */
    memcpy(buf, id, QUEUE_ID_SIZE);
    buf[0] = 'a';
    assert_false(queue_id_valid(buf));
}

static void test_time(void **state)
{
    (void)state;
    struct timeval before, after, got;
    char id[QUEUE_ID_SIZE];
    gettimeofday(&before, NULL);
    queue_id_new(id);
    gettimeofday(&after, NULL);
    assert_int_equal(queue_id_time(id, &got), 0);
    assert_true(tv_usec(&got) >= tv_usec(&before));
    assert_true(tv_usec(&got) <= tv_usec(&after));

    got.tv_sec = 12345;
    assert_int_equal(queue_id_time("../x", &got), -1);
    assert_int_equal(queue_id_time("", &got), -1);
    assert_int_equal(got.tv_sec, 12345);
}

static void test_unique_and_increasing_in_loop(void **state)
{
    (void)state;
    char(*ids)[QUEUE_ID_SIZE] = malloc((size_t)LOOP_IDS * QUEUE_ID_SIZE);
    assert_non_null(ids);
    for (int i = 0; i < LOOP_IDS; i++) {
        queue_id_new(ids[i]);
        /* made one after another: strictly increasing in byte order */
        if (i > 0)
            assert_true(memcmp(ids[i - 1], ids[i], QUEUE_ID_SIZE) < 0);
    }
    qsort(ids, LOOP_IDS, QUEUE_ID_SIZE, cmp_ids);
    for (int i = 1; i < LOOP_IDS; i++)
        assert_true(memcmp(ids[i - 1], ids[i], QUEUE_ID_SIZE) != 0);
    free(ids);
}

/* Reads exactly n bytes from fd. */
static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static void test_unique_across_processes(void **state)
{
    (void)state;
    size_t total = (size_t)(CHILDREN + 1) * CHILD_IDS;
    char(*ids)[QUEUE_ID_SIZE] = malloc(total * QUEUE_ID_SIZE);
    assert_non_null(ids);
    int fds[CHILDREN];
    pid_t pids[CHILDREN];

    /* Warm the parent's per-process state first, so the children inherit
     * it: their ids must still differ from the parent's. */
    queue_id_new(ids[0]);
    for (int c = 0; c < CHILDREN; c++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            close(p[0]);
            char id[QUEUE_ID_SIZE];
            for (int i = 0; i < CHILD_IDS; i++) {
                queue_id_new(id);
                if (write(p[1], id, QUEUE_ID_SIZE) != QUEUE_ID_SIZE)
                    _exit(1);
            }
            _exit(0);
        }
        close(p[1]);
        fds[c] = p[0];
    }
    /* The parent generates concurrently with the children. */
    for (int i = 1; i < CHILD_IDS; i++)
        queue_id_new(ids[i]);
    for (int c = 0; c < CHILDREN; c++) {
        char(*mine)[QUEUE_ID_SIZE] = ids + (size_t)(c + 1) * CHILD_IDS;
        assert_int_equal(read_all(fds[c], mine, (size_t)CHILD_IDS * QUEUE_ID_SIZE), 0);
        close(fds[c]);
        int status;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < CHILD_IDS; i++) {
            assert_true(queue_id_valid(mine[i]));
            if (i > 0)
                assert_true(memcmp(mine[i - 1], mine[i], QUEUE_ID_SIZE) < 0);
        }
    }
    qsort(ids, total, QUEUE_ID_SIZE, cmp_ids);
    for (size_t i = 1; i < total; i++)
        assert_true(memcmp(ids[i - 1], ids[i], QUEUE_ID_SIZE) != 0);
    /* Sorted ids have non-decreasing creation times. */
    struct timeval prev, cur;
    assert_int_equal(queue_id_time(ids[0], &prev), 0);
    for (size_t i = 1; i < total; i++) {
        assert_int_equal(queue_id_time(ids[i], &cur), 0);
        assert_true(tv_usec(&prev) <= tv_usec(&cur));
        prev = cur;
    }
    free(ids);
}

/* Ids made later, in another process, sort after earlier ones. */
static void test_sorted_by_time_across_processes(void **state)
{
    (void)state;
    char a[QUEUE_ID_SIZE], b[QUEUE_ID_SIZE], c[QUEUE_ID_SIZE];
    queue_id_new(a);
    sleep_ms(2);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[QUEUE_ID_SIZE];
        queue_id_new(id);
        _exit(write(p[1], id, QUEUE_ID_SIZE) == QUEUE_ID_SIZE ? 0 : 1);
    }
    close(p[1]);
    assert_int_equal(read_all(p[0], b, QUEUE_ID_SIZE), 0);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    sleep_ms(2);
    queue_id_new(c);
    assert_true(strcmp(a, b) < 0);
    assert_true(strcmp(b, c) < 0);
    struct timeval ta, tb;
    assert_int_equal(queue_id_time(a, &ta), 0);
    assert_int_equal(queue_id_time(b, &tb), 0);
    assert_true(tv_usec(&tb) - tv_usec(&ta) >= 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_valid_rejects),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_unique_and_increasing_in_loop),
        cmocka_unit_test(test_unique_across_processes),
        cmocka_unit_test(test_sorted_by_time_across_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
