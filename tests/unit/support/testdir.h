/*
 * testdir.h - scratch directories for unit tests: one shared way to remove
 * a tree the test made, instead of a copy in every test file.
 */
#ifndef PETREL_TEST_TESTDIR_H
#define PETREL_TEST_TESTDIR_H

/* Removes path and everything below it, never following symlinks (a test
 * that planted one must not make the cleanup delete its target). */
void test_rm_tree(const char *path);

#endif
