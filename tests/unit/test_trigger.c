/*
 * test_trigger.c - unit tests for lib/mail/trigger: the byte arrives when a
 * daemon listens; nothing blocks or crashes when none does.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/trigger.h"

static void test_trigger_delivered_and_missing(void **state)
{
    (void)state;
    char dir[] = "/tmp/petrel-trigger.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64];
    snprintf(sub, sizeof(sub), "%s/public", dir);
    assert_int_equal(mkdir(sub, 0700), 0);

    /* No listener: -1, quickly, no crash. */
    assert_int_equal(trigger_send(dir, "public/qmgr", TRIGGER_NEW_MAIL), -1);

    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/public/qmgr", dir);
    assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(trigger_send(dir, "public/qmgr", TRIGGER_NEW_MAIL), 0);
    int c = accept(l, NULL, NULL);
    char b = 0;
    assert_int_equal(read(c, &b, 1), 1);
    assert_int_equal(b, TRIGGER_NEW_MAIL);
    close(c);
    close(l);
    unlink(sun.sun_path);

    /* A path too long for a UNIX socket is refused, not truncated. */
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(trigger_send(dir, longname, TRIGGER_SCAN), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trigger_delivered_and_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
