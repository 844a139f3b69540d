/*
 * test_log.c - unit tests for lib/util/log: destinations, the line format
 * (program, pid, queue id), level filtering, and sanitizing of hostile text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"
#include "util/strbuf.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/petrel-test-log.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/mail.log", dir);
    log_init("/usr/lib/petrel/smtpd");
    return log_open(LOG_DEST_FILE, path);
}

static int teardown(void **state)
{
    (void)state;
    log_close();
    unlink(path);
    rmdir(dir);
    return 0;
}

/* Reads the whole log file and truncates it for the next test. */
static char *slurp(void)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    strbuf sb;
    strbuf_init(&sb);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_append(&sb, buf, n);
    fclose(f);
    assert_int_equal(truncate(path, 0), 0);
    return strbuf_detach(&sb, NULL);
}

static void test_line_format(void **state)
{
    (void)state;
    log_info("connect from %s[%s]", "mx.example", "192.0.2.1");
    char *text = slurp();
    char expect[64];
    snprintf(expect, sizeof(expect), " smtpd[%ld]: connect from mx.example[192.0.2.1]\n",
             (long)getpid());
    assert_non_null(strstr(text, expect));
    /* ISO 8601 UTC timestamp first. */
    assert_int_equal(text[4], '-');
    assert_non_null(strchr(text, 'Z'));
    free(text);
}

static void test_event_has_queue_id(void **state)
{
    (void)state;
    log_event("4HxQ0abc", "to=<%s>, relay=%s, delay=%.1f, dsn=%s, status=sent (%s)", "bob@b.org",
              "mx.b.org[10.0.0.2]:25", 0.4, "2.0.0", "250 ok");
    log_event(NULL, "reject: RCPT from %s: 554 5.7.1 Relay access denied", "x[192.0.2.9]");
    char *text = slurp();
    assert_non_null(strstr(text, ": 4HxQ0abc: to=<bob@b.org>, relay=mx.b.org[10.0.0.2]:25, "
                                 "delay=0.4, dsn=2.0.0, status=sent (250 ok)\n"));
    assert_non_null(strstr(text, ": NOQUEUE: reject: RCPT from x[192.0.2.9]"));
    free(text);
}

static void test_hostile_text_sanitized(void **state)
{
    (void)state;
    /* A client trying to forge a second log line and drive a terminal. */
    log_warning("bad command from client: %s", "QUIT\r\nJan 1 smtpd[1]: fake\x1b[31m\\x");
    char *text = slurp();
    /* Exactly one line was written. */
    assert_non_null(strchr(text, '\n'));
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    assert_null(strchr(text, '\x1b'));
    assert_non_null(strstr(text, "warning: bad command from client: QUIT\\r\\nJan 1 smtpd[1]: "
                                 "fake\\x1b[31m\\\\x\n"));
    free(text);
}

static void test_levels(void **state)
{
    (void)state;
    log_debug("hidden by default");
    log_set_level(LOG_LEVEL_DEBUG);
    log_debug("shown now");
    log_set_level(LOG_LEVEL_ERROR);
    log_warning("filtered");
    log_error("errors always pass");
    log_set_level(LOG_LEVEL_INFO);
    char *text = slurp();
    assert_null(strstr(text, "hidden by default"));
    assert_non_null(strstr(text, "shown now"));
    assert_null(strstr(text, "filtered"));
    assert_non_null(strstr(text, "error: errors always pass"));
    free(text);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    errno = ENOSPC;
    log_error("write queue file: %m");
    assert_int_equal(errno, ENOSPC);
    char *text = slurp();
    assert_non_null(strstr(text, "write queue file: No space left on device"));
    free(text);
}

static void test_fatal_exits(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        log_fatal("queue directory %s: missing", "/nonexistent");
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *text = slurp();
    assert_non_null(strstr(text, "fatal: queue directory /nonexistent: missing"));
    free(text);
}

static void test_open_spec_errors(void **state)
{
    (void)state;
    assert_int_equal(log_open_spec("relative/file"), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(log_open_spec("/nonexistent-dir/x/y.log"), -1);
    assert_int_equal(errno, ENOENT);
    /* The previous destination is still in use after a failed open. */
    log_info("still here");
    char *text = slurp();
    assert_non_null(strstr(text, "still here"));
    free(text);
}

static void test_sanitize_direct(void **state)
{
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    log_sanitize(&sb, "a\0b\tc\x7f\xc3\xa9", 8);
    /* NUL, tab and DEL escaped; UTF-8 bytes kept as they are. */
    assert_string_equal(sb.data, "a\\x00b\\tc\\x7f\xc3\xa9");
    strbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_event_has_queue_id),
        cmocka_unit_test(test_hostile_text_sanitized),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_errno_preserved),
        cmocka_unit_test(test_fatal_exits),
        cmocka_unit_test(test_open_spec_errors),
        cmocka_unit_test(test_sanitize_direct),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
