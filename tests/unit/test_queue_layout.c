/*
 * test_queue_layout.c - unit tests for lib/mail/queue_layout: the queue tree
 * is created with the modes of the table, differences are reported, repairs
 * work, and a symlink in the tree is refused rather than followed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/queue_layout.h"
#include "util/strbuf.h"

static char top[64];
static char qdir[96];

static int setup(void **state)
{
    (void)state;
    snprintf(top, sizeof(top), "/tmp/petrel-test-layout.XXXXXX");
    if (mkdtemp(top) == NULL)
        return -1;
    snprintf(qdir, sizeof(qdir), "%s/queue", top);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

static mode_t mode_of(const char *sub)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", qdir, sub);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    return st.st_mode & 07777;
}

static void test_create_check_fix(void **state)
{
    (void)state;
    struct queue_owners o;
    queue_layout_owners_self(&o);
    strbuf pr;
    strbuf_init(&pr);

    /* Nothing there yet: CHECK reports every directory as missing. */
    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_CHECK, &pr), 13);
    assert_non_null(strstr(pr.data, "/queue/incoming: missing"));
    strbuf_reset(&pr);

    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_CREATE, &pr), 0);
    assert_string_equal(pr.data, "");
    assert_int_equal(mode_of("incoming"), 0700);
    assert_int_equal(mode_of("maildrop"), 01733);
    assert_int_equal(mode_of("public"), 0711);
    assert_int_equal(mode_of("pid"), 0755);
    assert_int_equal(mode_of("login"), 0755);         /* the login processes' chroot */
    assert_int_equal(mode_of("login/private"), 0700);
    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_CHECK, &pr), 0);

    /* A wrong mode is reported, not silently changed, then repaired by FIX. */
    char p[160];
    snprintf(p, sizeof(p), "%s/deferred", qdir);
    assert_int_equal(chmod(p, 0777), 0);
    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_CREATE, &pr), 1);
    assert_non_null(strstr(pr.data, "deferred: mode 0777, should be 0700 (run petrel set-permissions)"));
    assert_int_equal(mode_of("deferred"), 0777);
    strbuf_reset(&pr);
    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_FIX, &pr), 0);
    assert_int_equal(mode_of("deferred"), 0700);

    /* A symlink where a directory belongs is refused in every mode. */
    snprintf(p, sizeof(p), "%s/hold", qdir);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(symlink("/tmp", p), 0);
    strbuf_reset(&pr);
    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_FIX, &pr), 1);
    assert_non_null(strstr(pr.data, "hold: is not a directory (a symbolic link: refusing to follow it)"));
    strbuf_free(&pr);
}

static void test_owner_mismatch_reported(void **state)
{
    (void)state;
    struct queue_owners o;
    queue_layout_owners_self(&o);
    strbuf pr;
    strbuf_init(&pr);
    assert_int_equal(queue_layout_apply(qdir, &o, QUEUE_LAYOUT_CREATE, &pr), 1); /* the hold symlink */
    strbuf_reset(&pr);
    /* Ask for another owner: every owner-held directory is reported. */
    o.owner_uid = o.owner_uid + 4242;
    int n = queue_layout_apply(qdir, &o, QUEUE_LAYOUT_CHECK, &pr);
    assert_int_equal(n, 10); /* 9 owner-held dirs (hold is a symlink) + the symlink itself */
    assert_non_null(strstr(pr.data, "incoming: owned by"));
    strbuf_free(&pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_check_fix),
        cmocka_unit_test(test_owner_mismatch_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
