/*
 * testdir.h - scratch directories for unit tests: one shared way to make
 * and remove the tree a test works in, instead of a copy in every file.
 */
#ifndef PETREL_TEST_TESTDIR_H
#define PETREL_TEST_TESTDIR_H

/* Removes path and everything below it, never following symlinks (a test
 * that planted one must not make the cleanup delete its target). */
void test_rm_tree(const char *path);

#include "util/strbuf.h"

/* The fixture of the mailbox tests: a fresh directory from mkdtemp, the
 * path of one entry in it (a Maildir or an mbox file, not created) and an
 * error buffer. */
struct test_scratch {
    char dir[64];
    char path[128]; /* <dir>/<name> */
    strbuf err;
};

/* cmocka setup/teardown bodies: *state gets a new test_scratch whose
 * directory starts with prefix (e.g. "/tmp/petrel-maildir-"). */
int test_scratch_setup(void **state, const char *prefix, const char *name);
int test_scratch_teardown(void **state);

#endif
