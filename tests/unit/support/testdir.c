/*
 * testdir.c - see testdir.h.
 */
#include "testdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void test_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *dh = opendir(path);
    if (dh != NULL) {
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            char sub[4096];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
            test_rm_tree(sub);
        }
        closedir(dh);
    }
    rmdir(path);
}

int test_scratch_setup(void **state, const char *prefix, const char *name)
{
    struct test_scratch *f = calloc(1, sizeof(*f));
    if (f == NULL || snprintf(f->dir, sizeof(f->dir), "%sXXXXXX", prefix) >= (int)sizeof(f->dir) ||
        mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
    strbuf_init(&f->err);
    *state = f;
    return 0;
}

int test_scratch_teardown(void **state)
{
    struct test_scratch *f = *state;
    test_rm_tree(f->dir);
    strbuf_free(&f->err);
    free(f);
    return 0;
}
