/*
 * test_queue_file.c - unit tests for the queue file (lib/mail/queue_file*):
 * directory tree, writer round trip and commit, abort, in-place updates,
 * quarantine, and a reader that must refuse every kind of damaged or
 * hostile file (BAD-INPUT.md row 7): truncation at every byte, flipped type
 * bytes, huge lengths, CR/LF/NUL in metadata, broken structure, trailing
 * garbage, symlinks and hard links.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mail/queue_file.h"
#include "util/strbuf.h"

/* ---- fixture: a fresh queue directory per test ---- */

struct fx {
    char dir[64];
    strbuf err;
};

static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d == NULL)
            return -1;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/queue-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    strbuf_init(&f->err);
    if (queue_dirs_create(f->dir, &f->err) != 0) {
        fprintf(stderr, "%s\n", f->err.data);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->dir);
    strbuf_free(&f->err);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static char *path_of(struct fx *f, const char *sub, const char *name)
{
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 512, "%s/%s/%s", f->dir, sub, name);
    return p;
}

/* Names in a directory, excluding . and .. */
static int count_entries(const char *dir, char *first, size_t first_size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == 0 && first != NULL)
            snprintf(first, first_size, "%s", de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *p, size_t n)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static void read_whole(const char *path, strbuf *out)
{
    strbuf_reset(out);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        strbuf_append(out, buf, (size_t)r);
    assert_int_equal(r, 0);
    close(fd);
}

#define S(x) (x), strlen(x)

static const char small_body[] = "Subject: hi\r\n\r\nbody \xe9\xff\r\n";

/* Writes and commits a message with every envelope record present. The
 * values are chosen so that no text value starts with a recipient status
 * letter (P, W, D, B): see test_reader_flipped_type_bytes. */
static void make_full_message(struct fx *f, char id[QUEUE_ID_SIZE], const void *body,
                              size_t body_len)
{
    struct queue_writer *w;
    strbuf *err = &f->err;
    assert_int_equal(queue_file_create(f->dir, id, &w, err), 0);
    struct timeval tv = {.tv_sec = 1700000000, .tv_usec = 123456};
    assert_int_equal(queue_file_set_arrival(w, &tv, err), 0);
    assert_int_equal(queue_file_set_sender(w, S("alice@a.org"), err), 0);
    assert_int_equal(queue_file_set_attr(w, QUEUE_ATTR_CLIENT_NAME, S("mx.a.org"), err), 0);
    assert_int_equal(queue_file_set_attr(w, QUEUE_ATTR_CLIENT_ADDR, S("192.0.2.1"), err), 0);
    assert_int_equal(queue_file_set_attr(w, QUEUE_ATTR_HELO, S("helo.a.org"), err), 0);
    assert_int_equal(queue_file_set_attr(w, QUEUE_ATTR_PROTOCOL, S("ESMTPSA"), err), 0);
    assert_int_equal(queue_file_set_attr(w, QUEUE_ATTR_AUTH_USER, S("alice"), err), 0);
    assert_int_equal(queue_file_set_attr(w, QUEUE_ATTR_ENVID, S("env-42"), err), 0);
    assert_int_equal(queue_file_set_ret(w, QUEUE_RET_HDRS, err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("bob@b.org"), S("rfc822;bob@b.org"),
                                              QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE, err),
                     0);
    assert_int_equal(queue_file_add_recipient(w, S("carol@c.org"), NULL, 0, 0, err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("dave@d.org"), "", 0, QUEUE_NOTIFY_NEVER,
                                              err),
                     0);
    assert_int_equal(queue_file_write_content(w, body, body_len, err), 0);
    assert_int_equal(queue_file_commit(&w, err), 0);
    assert_null(w);
}

static void expect_open_fails(struct fx *f, const char *path, const char *needle)
{
    struct queue_file *qf = (void *)1;
    strbuf_reset(&f->err);
    int rc = queue_file_open(path, &qf, &f->err);
    if (rc == 0)
        fail_msg("%s: opened, expected an error containing \"%s\"", path, needle);
    assert_null(qf);
    /* The message names the file and the problem. */
    if (strstr(f->err.data, path) == NULL || strstr(f->err.data, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or the path", f->err.data, needle);
}

/* Writes bytes as incoming/<fresh id> and expects the reader to refuse them. */
static void expect_bytes_rejected(struct fx *f, const void *p, size_t n, const char *needle)
{
    char id[QUEUE_ID_SIZE];
    queue_id_new(id);
    const char *path = path_of(f, "incoming", id);
    write_file(path, p, n);
    expect_open_fails(f, path, needle);
    unlink(path);
}

/* ---- a hand-made file, record by record, to test the reader alone ---- */

#define MAX_RECS 32

struct spec {
    int n;
    char type[MAX_RECS];
    strbuf payload[MAX_RECS];
};

static void spec_add(struct spec *s, char type, const void *p, size_t n)
{
    assert_true(s->n < MAX_RECS);
    s->type[s->n] = type;
    strbuf_init(&s->payload[s->n]);
    strbuf_append(&s->payload[s->n], p, n);
    s->n++;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static void spec_add_rcpt(struct spec *s, char status, unsigned notify, const char *addr,
                          size_t alen, const char *orcpt, size_t olen)
{
    strbuf b;
    strbuf_init(&b);
    unsigned char h[5] = {(unsigned char)status, (unsigned char)notify, orcpt != NULL, 0, 0};
    put_be(h + 3, alen, 2);
    strbuf_append(&b, h, 5);
    strbuf_append(&b, addr, alen);
    unsigned char l[2];
    put_be(l, orcpt ? olen : 0, 2);
    strbuf_append(&b, l, 2);
    if (orcpt)
        strbuf_append(&b, orcpt, olen);
    spec_add(s, 'R', b.data, b.len);
    strbuf_free(&b);
}

static const char spec_body[] = "Subject: x\r\n\r\nhello\r\n";

/* A valid minimal file written by hand from docs/queue.md. */
static void spec_valid(struct spec *s)
{
    s->n = 0;
    unsigned char v[4], t[12], q[12], z[8];
    put_be(v, 1, 4);
    put_be(t, 1700000000, 8);
    put_be(t + 8, 5, 4);
    memset(q, 0, sizeof(q));
    put_be(z, sizeof(spec_body) - 1, 8);
    spec_add(s, 'V', v, 4);
    spec_add(s, 'T', t, 12);
    spec_add(s, 'Q', q, 12);
    spec_add(s, 'Z', z, 8);
    spec_add(s, 'S', S("alice@a.org"));
    spec_add_rcpt(s, 'P', 0, S("bob@b.org"), NULL, 0);
    spec_add(s, 'M', spec_body, sizeof(spec_body) - 1);
    spec_add(s, 'X', NULL, 0);
}

static int spec_find(const struct spec *s, char type)
{
    for (int i = 0; i < s->n; i++) {
        if (s->type[i] == type)
            return i;
    }
    return -1;
}

static void spec_remove_at(struct spec *s, int i)
{
    strbuf_free(&s->payload[i]);
    memmove(&s->type[i], &s->type[i + 1], (size_t)(s->n - i - 1));
    memmove(&s->payload[i], &s->payload[i + 1], (size_t)(s->n - i - 1) * sizeof(strbuf));
    s->n--;
}

static void spec_insert_at(struct spec *s, int i, char type, const void *p, size_t n)
{
    spec_add(s, type, p, n); /* at the end, then rotate into place */
    char t = s->type[s->n - 1];
    strbuf pb = s->payload[s->n - 1];
    memmove(&s->type[i + 1], &s->type[i], (size_t)(s->n - 1 - i));
    memmove(&s->payload[i + 1], &s->payload[i], (size_t)(s->n - 1 - i) * sizeof(strbuf));
    s->type[i] = t;
    s->payload[i] = pb;
}

static void spec_set(struct spec *s, int i, const void *p, size_t n)
{
    strbuf_set(&s->payload[i], p, n);
}

static void spec_free(struct spec *s)
{
    for (int i = 0; i < s->n; i++)
        strbuf_free(&s->payload[i]);
    s->n = 0;
}

static void spec_serialize(const struct spec *s, strbuf *out)
{
    strbuf_reset(out);
    for (int i = 0; i < s->n; i++) {
        unsigned char h[5];
        h[0] = (unsigned char)s->type[i];
        put_be(h + 1, s->payload[i].len, 4);
        strbuf_append(out, h, 5);
        strbuf_append_sb(out, &s->payload[i]);
    }
}

static void spec_expect_rejected(struct fx *f, struct spec *s, const char *needle)
{
    strbuf b;
    strbuf_init(&b);
    spec_serialize(s, &b);
    expect_bytes_rejected(f, b.data, b.len, needle);
    strbuf_free(&b);
    spec_free(s);
}

/* ---- directory tree ---- */

static void test_dirs_create(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"maildrop", "incoming", "active", "deferred", "hold",
                           "corrupt",  "private",  "public", "pid"};
    const mode_t modes[] = {01733, 0700, 0700, 0700, 0700, 0700, 0700, 0711, 0755};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct stat st;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, modes[i]);
    }
    /* Running it again on a complete tree is fine. */
    assert_int_equal(queue_dirs_create(f->dir, &f->err), 0);

    /* A symlink in place of a subdirectory is refused. */
    char p[512];
    snprintf(p, sizeof(p), "%s/hold", f->dir);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(symlink("/tmp", p), 0);
    assert_int_equal(queue_dirs_create(f->dir, &f->err), -1);
    assert_non_null(strstr(f->err.data, "symbolic link"));
    assert_non_null(strstr(f->err.data, p));
}

/* ---- writer and reader together ---- */

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    char id[QUEUE_ID_SIZE];
    make_full_message(f, id, small_body, sizeof(small_body) - 1);
    assert_true(queue_id_valid(id));

    struct queue_file *qf;
    assert_int_equal(queue_file_open(path_of(f, "incoming", id), &qf, &f->err), 0);
    assert_string_equal(qf->id, id);
    assert_int_equal(qf->version, 1);
    assert_int_equal(qf->arrival.tv_sec, 1700000000);
    assert_int_equal(qf->arrival.tv_usec, 123456);
    assert_int_equal(qf->attempts, 0);
    assert_int_equal(qf->next_retry, 0);
    assert_string_equal(qf->sender, "alice@a.org");
    assert_string_equal(qf->client_name, "mx.a.org");
    assert_string_equal(qf->client_addr, "192.0.2.1");
    assert_string_equal(qf->helo, "helo.a.org");
    assert_string_equal(qf->protocol, "ESMTPSA");
    assert_string_equal(qf->auth_user, "alice");
    assert_string_equal(qf->envid, "env-42");
    assert_int_equal(qf->ret, QUEUE_RET_HDRS);
    assert_int_equal(qf->rcpt_count, 3);
    assert_string_equal(qf->rcpts[0].address, "bob@b.org");
    assert_string_equal(qf->rcpts[0].orcpt, "rfc822;bob@b.org");
    assert_int_equal(qf->rcpts[0].notify, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE);
    assert_int_equal(qf->rcpts[0].status, QUEUE_RCPT_PENDING);
    assert_string_equal(qf->rcpts[1].address, "carol@c.org");
    assert_null(qf->rcpts[1].orcpt);
    assert_int_equal(qf->rcpts[1].notify, 0);
    assert_string_equal(qf->rcpts[2].address, "dave@d.org");
    assert_non_null(qf->rcpts[2].orcpt);
    assert_string_equal(qf->rcpts[2].orcpt, "");
    assert_int_equal(qf->rcpts[2].notify, QUEUE_NOTIFY_NEVER);
    assert_int_equal(queue_file_unfinished(qf), 3);

    assert_int_equal(qf->content_length, sizeof(small_body) - 1);
    char buf[256];
    assert_int_equal(queue_file_read_content(qf, 0, buf, sizeof(buf), &f->err),
                     (ssize_t)(sizeof(small_body) - 1));
    assert_memory_equal(buf, small_body, sizeof(small_body) - 1);
    /* partial reads and reading at the end */
    assert_int_equal(queue_file_read_content(qf, 5, buf, 3, &f->err), 3);
    assert_memory_equal(buf, small_body + 5, 3);
    assert_int_equal(queue_file_read_content(qf, qf->content_length, buf, 10, &f->err), 0);
    assert_int_equal(queue_file_read_content(qf, UINT64_MAX, buf, 10, &f->err), 0);
    queue_file_close(&qf);
    assert_null(qf);

    /* read-only open for listers sees the same and refuses updates */
    assert_int_equal(queue_file_open_readonly(path_of(f, "incoming", id), &qf, &f->err), 0);
    assert_string_equal(qf->sender, "alice@a.org");
    assert_int_equal(queue_file_set_recipient_status(qf, 0, QUEUE_RCPT_DONE, &f->err), -1);
    assert_non_null(strstr(f->err.data, "read-only"));
    queue_file_close(&qf);
}

/* A 1 MB body of every byte value, written in pieces of odd sizes (some
 * larger than the writer's block), null sender, no optional records. */
static void test_round_trip_large_body(void **state)
{
    struct fx *f = *state;
    size_t size = 1024 * 1024 + 17;
    unsigned char *body = malloc(size);
    assert_non_null(body);
    for (size_t i = 0; i < size; i++)
        body[i] = (unsigned char)((i * 7 + i / 256) & 0xff);

    struct queue_writer *w;
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_file_create(f->dir, id, &w, &f->err), 0);
    assert_string_equal(queue_writer_id(w), id);
    assert_int_equal(queue_file_set_sender(w, "", 0, &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("postmaster@b.org"), NULL, 0, 0, &f->err), 0);
    const size_t pieces[] = {1, 77, 1000, 65536, 70000, 3, 200000, 4095};
    size_t off = 0;
    for (int i = 0; off < size; i++) {
        size_t n = pieces[i % 8];
        if (n > size - off)
            n = size - off;
        assert_int_equal(queue_file_write_content(w, body + off, n, &f->err), 0);
        off += n;
    }
    assert_int_equal(queue_file_commit(&w, &f->err), 0);

    struct queue_file *qf;
    assert_int_equal(queue_file_open(path_of(f, "incoming", id), &qf, &f->err), 0);
    assert_string_equal(qf->sender, "");
    assert_null(qf->client_name);
    assert_null(qf->client_addr);
    assert_null(qf->helo);
    assert_null(qf->protocol);
    assert_null(qf->auth_user);
    assert_null(qf->envid);
    assert_int_equal(qf->ret, QUEUE_RET_NONE);
    assert_int_equal(qf->rcpt_count, 1);
    assert_int_equal(qf->content_length, size);
    unsigned char *back = malloc(size);
    assert_non_null(back);
    size_t got = 0;
    while (got < size) {
        ssize_t r = queue_file_read_content(qf, got, back + got, 4096, &f->err);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(back, body, size);
    /* The arrival time defaults to the creation time. */
    struct timeval idt;
    assert_int_equal(queue_id_time(id, &idt), 0);
    assert_true(qf->arrival.tv_sec - idt.tv_sec <= 1 && qf->arrival.tv_sec >= idt.tv_sec);
    queue_file_close(&qf);
    free(back);
    free(body);
}

/* An empty message (DATA followed at once by ".") is a valid queue file. */
static void test_empty_content(void **state)
{
    struct fx *f = *state;
    struct queue_writer *w;
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_file_create(f->dir, id, &w, &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("b@b.org"), NULL, 0, 0, &f->err), 0);
    assert_int_equal(queue_file_commit(&w, &f->err), 0);
    struct queue_file *qf;
    assert_int_equal(queue_file_open(path_of(f, "incoming", id), &qf, &f->err), 0);
    assert_int_equal(qf->content_length, 0);
    queue_file_close(&qf);
}

static void test_commit_renames(void **state)
{
    struct fx *f = *state;
    char incoming[512], name[256];
    snprintf(incoming, sizeof(incoming), "%s/incoming", f->dir);
    struct queue_writer *w;
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_file_create(f->dir, id, &w, &f->err), 0);
    /* Before commit: only the hidden temporary name, never <id>. */
    assert_int_equal(count_entries(incoming, name, sizeof(name)), 1);
    assert_int_equal(name[0], '.');
    assert_string_equal(name + 1, id);
    assert_false(queue_id_valid(name));
    struct stat st;
    assert_int_equal(lstat(path_of(f, "incoming", name), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(lstat(path_of(f, "incoming", id), &st), -1);

    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("b@b.org"), NULL, 0, 0, &f->err), 0);
    assert_int_equal(queue_file_write_content(w, S("x\r\n"), &f->err), 0);
    assert_int_equal(queue_file_commit(&w, &f->err), 0);
    /* After: exactly <id>, no temporary left. */
    assert_int_equal(count_entries(incoming, name, sizeof(name)), 1);
    assert_string_equal(name, id);
    assert_int_equal(lstat(path_of(f, "incoming", id), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_nlink, 1);
}

static void test_abort_leaves_nothing(void **state)
{
    struct fx *f = *state;
    char incoming[512];
    snprintf(incoming, sizeof(incoming), "%s/incoming", f->dir);
    struct queue_writer *w;
    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("b@b.org"), NULL, 0, 0, &f->err), 0);
    char big[100000];
    memset(big, 'a', sizeof(big));
    assert_int_equal(queue_file_write_content(w, big, sizeof(big), &f->err), 0);
    assert_int_equal(count_entries(incoming, NULL, 0), 1);
    queue_file_abort(&w);
    assert_null(w);
    assert_int_equal(count_entries(incoming, NULL, 0), 0);
    queue_file_abort(&w); /* no-op */
    queue_file_abort(NULL);

    /* A commit that cannot succeed (no recipient) also leaves nothing. */
    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_commit(&w, &f->err), -1);
    assert_null(w);
    assert_non_null(strstr(f->err.data, "recipient"));
    assert_int_equal(count_entries(incoming, NULL, 0), 0);
}

static void test_status_in_place(void **state)
{
    struct fx *f = *state;
    char id[QUEUE_ID_SIZE];
    make_full_message(f, id, small_body, sizeof(small_body) - 1);
    const char *path = path_of(f, "incoming", id);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    struct queue_file *qf;
    assert_int_equal(queue_file_open(path, &qf, &f->err), 0);
    assert_int_equal(queue_file_set_recipient_status(qf, 0, QUEUE_RCPT_DONE, &f->err), 0);
    assert_int_equal(queue_file_set_recipient_status(qf, 2, QUEUE_RCPT_BOUNCED, &f->err), 0);
    assert_int_equal(queue_file_set_recipient_status(qf, 1, QUEUE_RCPT_DEFERRED, &f->err), 0);
    assert_int_equal(queue_file_set_schedule(qf, 3, 1700003600, &f->err), 0);
    assert_int_equal(queue_file_unfinished(qf), 1);
    /* bad index, bad status, bad time: errors, nothing written */
    assert_int_equal(queue_file_set_recipient_status(qf, 3, QUEUE_RCPT_DONE, &f->err), -1);
    assert_non_null(strstr(f->err.data, "no recipient number 3"));
    assert_int_equal(queue_file_set_recipient_status(qf, 0, (enum queue_rcpt_status)'Z',
                                                     &f->err), -1);
    assert_non_null(strstr(f->err.data, "invalid recipient status"));
    assert_int_equal(queue_file_set_schedule(qf, 1, -5, &f->err), -1);
    queue_file_close(&qf);

    /* Same inode, same size: updated in place, not rewritten. */
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_size, after.st_size);

    assert_int_equal(queue_file_open(path, &qf, &f->err), 0);
    assert_int_equal(qf->rcpts[0].status, QUEUE_RCPT_DONE);
    assert_int_equal(qf->rcpts[1].status, QUEUE_RCPT_DEFERRED);
    assert_int_equal(qf->rcpts[2].status, QUEUE_RCPT_BOUNCED);
    assert_int_equal(qf->attempts, 3);
    assert_int_equal(qf->next_retry, 1700003600);
    assert_int_equal(queue_file_set_recipient_status(qf, 1, QUEUE_RCPT_DONE, &f->err), 0);
    assert_int_equal(queue_file_unfinished(qf), 0);
    /* The delay-warning flag rides in the top bit of the attempt count. */
    assert_int_equal(queue_file_set_schedule(qf, 4 | QUEUE_ATTEMPTS_DELAY_WARNED, 1700007200,
                                             &f->err), 0);
    queue_file_close(&qf);
    assert_int_equal(queue_file_open(path, &qf, &f->err), 0);
    assert_int_equal(queue_file_unfinished(qf), 0);
    assert_true(qf->attempts & QUEUE_ATTEMPTS_DELAY_WARNED);
    assert_int_equal(QUEUE_ATTEMPTS_COUNT(qf->attempts), 4);
    queue_file_close(&qf);
}

static void test_quarantine(void **state)
{
    struct fx *f = *state;
    char id[QUEUE_ID_SIZE];
    make_full_message(f, id, small_body, sizeof(small_body) - 1);
    assert_int_equal(queue_file_quarantine(f->dir, id, &f->err), 0);
    struct stat st;
    assert_int_equal(lstat(path_of(f, "incoming", id), &st), -1);
    assert_int_equal(lstat(path_of(f, "corrupt", id), &st), 0);

    /* gone now: not found */
    assert_int_equal(queue_file_quarantine(f->dir, id, &f->err), -1);
    assert_non_null(strstr(f->err.data, "not found"));
    /* ids are checked before they become path components */
    assert_int_equal(queue_file_quarantine(f->dir, "../x", &f->err), -1);
    assert_non_null(strstr(f->err.data, "not a valid queue id"));
    assert_int_equal(queue_file_quarantine(f->dir, "", &f->err), -1);
    assert_int_equal(queue_file_quarantine_from(f->dir, "../etc", id, &f->err), -1);
    assert_int_equal(queue_file_quarantine_from(f->dir, "corrupt", id, &f->err), -1);

    /* explicit source directory */
    char id2[QUEUE_ID_SIZE];
    make_full_message(f, id2, small_body, sizeof(small_body) - 1);
    char to[512];
    snprintf(to, sizeof(to), "%s", path_of(f, "deferred", id2));
    assert_int_equal(rename(path_of(f, "incoming", id2), to), 0);
    assert_int_equal(queue_file_quarantine_from(f->dir, "deferred", id2, &f->err), 0);
    assert_int_equal(lstat(path_of(f, "corrupt", id2), &st), 0);
    assert_int_equal(queue_file_quarantine_from(f->dir, "deferred", id2, &f->err), -1);
}

/* ---- writer refuses bad envelope values ---- */

static void expect_writer_refuses(struct fx *f, int which, const char *v, size_t n,
                                  const char *needle)
{
    char incoming[512];
    snprintf(incoming, sizeof(incoming), "%s/incoming", f->dir);
    struct queue_writer *w;
    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    int rc;
    switch (which) {
    case -1: rc = queue_file_set_sender(w, v, n, &f->err); break;
    case -2: rc = queue_file_add_recipient(w, v, n, NULL, 0, 0, &f->err); break;
    case -3: rc = queue_file_add_recipient(w, S("b@b.org"), v, n, 0, &f->err); break;
    default: rc = queue_file_set_attr(w, (enum queue_attr)which, v, n, &f->err); break;
    }
    assert_int_equal(rc, -1);
    if (strstr(f->err.data, needle) == NULL)
        fail_msg("writer error \"%s\" lacks \"%s\"", f->err.data, needle);
    /* The writer is broken now: later calls and the commit fail with the
     * same error, and nothing is left in incoming/. */
    strbuf first;
    strbuf_init(&first);
    strbuf_append_sb(&first, &f->err);
    assert_int_equal(queue_file_write_content(w, "x", 1, &f->err), -1);
    assert_true(strbuf_eq(&f->err, first.data));
    assert_int_equal(queue_file_commit(&w, &f->err), -1);
    assert_true(strbuf_eq(&f->err, first.data));
    strbuf_free(&first);
    assert_int_equal(count_entries(incoming, NULL, 0), 0);
}

static void test_writer_rejects_bad_values(void **state)
{
    struct fx *f = *state;
    const struct {
        const char *v;
        size_t n;
    } bad[] = {
        {"a@a.org\r\nRCPT TO:<x@evil>", 25},
        {"a@a.org\n", 8},
        {"a@a.org\r", 8},
        {"a@a\0.org", 8},
        {"\n", 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_writer_refuses(f, -1, bad[i].v, bad[i].n, "sender contains a CR, LF or NUL");
        expect_writer_refuses(f, -2, bad[i].v, bad[i].n, "recipient address contains");
        expect_writer_refuses(f, -3, bad[i].v, bad[i].n, "ORCPT contains");
        for (int a = QUEUE_ATTR_CLIENT_NAME; a <= QUEUE_ATTR_ENVID; a++)
            expect_writer_refuses(f, a, bad[i].v, bad[i].n, "contains a CR, LF or NUL");
    }
    char *longv = malloc(QUEUE_MAX_VALUE + 1);
    assert_non_null(longv);
    memset(longv, 'a', QUEUE_MAX_VALUE + 1);
    expect_writer_refuses(f, -1, longv, QUEUE_MAX_VALUE + 1, "longer than");
    expect_writer_refuses(f, -2, longv, QUEUE_MAX_VALUE + 1, "longer than");
    expect_writer_refuses(f, QUEUE_ATTR_HELO, longv, QUEUE_MAX_VALUE + 1, "longer than");
    free(longv);
    expect_writer_refuses(f, -2, "", 0, "empty recipient");
}

static void test_writer_rejects_misuse(void **state)
{
    struct fx *f = *state;
    char incoming[512];
    snprintf(incoming, sizeof(incoming), "%s/incoming", f->dir);
    struct queue_writer *w;

    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("b@a.org"), &f->err), -1);
    assert_non_null(strstr(f->err.data, "sender set twice"));
    queue_file_abort(&w);

    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("b@b.org"), NULL, 0,
                                              QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_DELAY, &f->err),
                     -1);
    assert_non_null(strstr(f->err.data, "NOTIFY"));
    queue_file_abort(&w);

    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_write_content(w, "x", 1, &f->err), -1);
    assert_non_null(strstr(f->err.data, "before a sender"));
    queue_file_abort(&w);

    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_set_sender(w, S("a@a.org"), &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("b@b.org"), NULL, 0, 0, &f->err), 0);
    assert_int_equal(queue_file_write_content(w, "x", 1, &f->err), 0);
    assert_int_equal(queue_file_add_recipient(w, S("c@b.org"), NULL, 0, 0, &f->err), -1);
    assert_non_null(strstr(f->err.data, "after the message content"));
    queue_file_abort(&w);

    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    assert_int_equal(queue_file_set_ret(w, (enum queue_ret)'X', &f->err), -1);
    queue_file_abort(&w);

    assert_int_equal(queue_file_create(f->dir, NULL, &w, &f->err), 0);
    struct timeval tv = {.tv_sec = 1, .tv_usec = 1000000};
    assert_int_equal(queue_file_set_arrival(w, &tv, &f->err), -1);
    queue_file_abort(&w);
    assert_int_equal(count_entries(incoming, NULL, 0), 0);

    /* No incoming/ at all: a clear error naming the directory. */
    char nodir[512];
    snprintf(nodir, sizeof(nodir), "%s/nonexistent", f->dir);
    assert_int_equal(queue_file_create(nodir, NULL, &w, &f->err), -1);
    assert_null(w);
    assert_non_null(strstr(f->err.data, nodir));
}

/* A write error (here EFBIG from a file size limit, standing in for ENOSPC
 * or EIO) is reported and leaves nothing behind. Runs in a child so that
 * the limit does not outlive the test. */
static void test_write_error_reported(void **state)
{
    struct fx *f = *state;
    char incoming[512];
    snprintf(incoming, sizeof(incoming), "%s/incoming", f->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = 100000, .rlim_max = RLIM_INFINITY};
        if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(10);
        rl.rlim_cur = 100000;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        struct queue_writer *w;
        strbuf err;
        strbuf_init(&err);
        if (queue_file_create(f->dir, NULL, &w, &err) != 0)
            _exit(12);
        queue_file_set_sender(w, S("a@a.org"), &err);
        queue_file_add_recipient(w, S("b@b.org"), NULL, 0, 0, &err);
        static char chunk[8192];
        memset(chunk, 'x', sizeof(chunk));
        int failed = 0;
        for (int i = 0; i < 100 && !failed; i++)
            failed = queue_file_write_content(w, chunk, sizeof(chunk), &err) != 0;
        if (!failed)
            _exit(13);
        if (strstr(err.data, "write failed") == NULL || strstr(err.data, "incoming") == NULL)
            _exit(14);
        if (queue_file_commit(&w, &err) != -1 || w != NULL)
            _exit(15);
        strbuf_free(&err);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(count_entries(incoming, NULL, 0), 0);
}

/* ---- reader: damaged files ---- */

static void test_reader_accepts_hand_made_file(void **state)
{
    struct fx *f = *state;
    struct spec s;
    spec_valid(&s);
    strbuf b;
    strbuf_init(&b);
    spec_serialize(&s, &b);
    char id[QUEUE_ID_SIZE];
    queue_id_new(id);
    write_file(path_of(f, "incoming", id), b.data, b.len);
    struct queue_file *qf;
    assert_int_equal(queue_file_open(path_of(f, "incoming", id), &qf, &f->err), 0);
    assert_string_equal(qf->sender, "alice@a.org");
    assert_int_equal(qf->rcpt_count, 1);
    assert_string_equal(qf->rcpts[0].address, "bob@b.org");
    assert_int_equal(qf->arrival.tv_usec, 5);
    assert_int_equal(qf->content_length, sizeof(spec_body) - 1);
    /* The status byte is the first payload byte of the recipient record. */
    assert_int_equal(b.data[qf->rcpts[0].status_offset], 'P');
    queue_file_close(&qf);
    strbuf_free(&b);
    spec_free(&s);
}

/* Every proper prefix of a valid file is refused, with a clear error. */
static void test_reader_truncated_everywhere(void **state)
{
    struct fx *f = *state;
    char id[QUEUE_ID_SIZE];
    make_full_message(f, id, small_body, sizeof(small_body) - 1);
    strbuf whole;
    strbuf_init(&whole);
    read_whole(path_of(f, "incoming", id), &whole);
    assert_true(whole.len > 100);

    char tid[QUEUE_ID_SIZE];
    queue_id_new(tid);
    const char *tpath = path_of(f, "incoming", tid);
    int seen_header = 0, seen_past_eof = 0, seen_no_end = 0;
    for (size_t len = 0; len < whole.len; len++) {
        write_file(tpath, whole.data, len);
        struct queue_file *qf = NULL;
        if (queue_file_open(tpath, &qf, &f->err) == 0)
            fail_msg("file truncated to %zu of %zu bytes was accepted", len, whole.len);
        assert_null(qf);
        assert_non_null(strstr(f->err.data, tpath));
        seen_header += strstr(f->err.data, "truncated record header") != NULL;
        seen_past_eof += strstr(f->err.data, "runs past the end of the file") != NULL;
        seen_no_end += strstr(f->err.data, "without an end record") != NULL;
    }
    assert_true(seen_header > 0 && seen_past_eof > 0 && seen_no_end > 0);
    /* The whole file is fine. */
    write_file(tpath, whole.data, whole.len);
    struct queue_file *qf;
    assert_int_equal(queue_file_open(tpath, &qf, &f->err), 0);
    queue_file_close(&qf);
    strbuf_free(&whole);
}

/* Every record's type byte replaced by every other byte value is refused.
 * With every optional record present, a text record turned into another
 * text type is a duplicate; anything turned into a recipient fails its
 * status byte; fixed-width records carry NUL bytes that no text allows. */
static void test_reader_flipped_type_bytes(void **state)
{
    struct fx *f = *state;
    char id[QUEUE_ID_SIZE];
    make_full_message(f, id, small_body, sizeof(small_body) - 1);
    strbuf whole, copy;
    strbuf_init(&whole);
    strbuf_init(&copy);
    read_whole(path_of(f, "incoming", id), &whole);

    char tid[QUEUE_ID_SIZE];
    queue_id_new(tid);
    const char *tpath = path_of(f, "incoming", tid);
    size_t off = 0;
    int records = 0;
    while (off < whole.len) {
        const unsigned char *h = (const unsigned char *)whole.data + off;
        size_t len = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
        for (int b = 0; b < 256; b++) {
            if (b == h[0])
                continue;
            strbuf_set(&copy, whole.data, whole.len);
            copy.data[off] = (char)b;
            write_file(tpath, copy.data, copy.len);
            struct queue_file *qf = NULL;
            if (queue_file_open(tpath, &qf, &f->err) == 0)
                fail_msg("record %d type '%c' changed to 0x%02x was accepted", records, h[0], b);
            assert_non_null(strstr(f->err.data, tpath));
        }
        off += 5 + len;
        records++;
    }
    assert_int_equal(off, whole.len);
    assert_int_equal(records, 17);
    strbuf_free(&whole);
    strbuf_free(&copy);
}

static void test_reader_huge_lengths(void **state)
{
    struct fx *f = *state;
    strbuf b;
    strbuf_init(&b);
    struct spec s;

    /* a sender record claiming 4 GiB - 1 bytes */
    spec_valid(&s);
    spec_serialize(&s, &b);
    int si = spec_find(&s, 'S');
    size_t soff = 0;
    for (int i = 0; i < si; i++)
        soff += 5 + s.payload[i].len;
    memset(b.data + soff + 1, 0xff, 4);
    expect_bytes_rejected(f, b.data, b.len, "runs past the end of the file");
    spec_free(&s);

    /* a sender of QUEUE_MAX_VALUE + 1 bytes that is really there */
    spec_valid(&s);
    char *longv = malloc(QUEUE_MAX_VALUE + 1);
    memset(longv, 'a', QUEUE_MAX_VALUE + 1);
    spec_set(&s, spec_find(&s, 'S'), longv, QUEUE_MAX_VALUE + 1);
    spec_expect_rejected(f, &s, "exceeds the limit");
    /* a recipient record beyond its limit */
    spec_valid(&s);
    strbuf big;
    strbuf_init(&big);
    strbuf_append(&big, "P\0\0\0\0", 5);
    for (int i = 0; i < 3; i++)
        strbuf_append(&big, longv, QUEUE_MAX_VALUE);
    spec_set(&s, spec_find(&s, 'R'), big.data, big.len);
    spec_expect_rejected(f, &s, "exceeds the limit");
    strbuf_free(&big);
    free(longv);

    /* content length past the end of the file */
    spec_valid(&s);
    spec_serialize(&s, &b);
    size_t moff = 0;
    for (int i = 0; i < spec_find(&s, 'M'); i++)
        moff += 5 + s.payload[i].len;
    b.data[moff + 1] = 0x7f;
    expect_bytes_rejected(f, b.data, b.len, "runs past the end of the file");
    spec_free(&s);

    /* fixed-width records one byte too long or too short */
    const char fixed[] = "VTQZF";
    for (const char *t = fixed; *t; t++) {
        spec_valid(&s);
        if (*t == 'F')
            spec_insert_at(&s, 4, 'F', "FF", 2);
        else
            strbuf_appendc(&s.payload[spec_find(&s, *t)], 0);
        spec_expect_rejected(f, &s, "exceeds the limit");
        spec_valid(&s);
        if (*t == 'F')
            spec_insert_at(&s, 4, 'F', "", 0);
        else
            strbuf_truncate(&s.payload[spec_find(&s, *t)], s.payload[spec_find(&s, *t)].len - 1);
        spec_expect_rejected(f, &s, "record has length");
    }
    /* an end record with a payload */
    spec_valid(&s);
    spec_set(&s, s.n - 1, "x", 1);
    spec_expect_rejected(f, &s, "exceeds the limit of 0");

    /* recipient sub-lengths that do not add up */
    spec_valid(&s);
    int ri = spec_find(&s, 'R');
    s.payload[ri].data[4] = 100; /* address length 100 > what is there */
    spec_expect_rejected(f, &s, "runs past the record");
    spec_valid(&s);
    ri = spec_find(&s, 'R');
    strbuf_appendc(&s.payload[ri], 'x');
    spec_expect_rejected(f, &s, "do not match");
    spec_valid(&s);
    spec_set(&s, spec_find(&s, 'R'), "P\0\0\0", 4);
    spec_expect_rejected(f, &s, "too short");
    strbuf_free(&b);
}

static void test_reader_bad_metadata(void **state)
{
    struct fx *f = *state;
    struct spec s;
    const struct {
        const char *v;
        size_t n;
    } bad[] = {
        {"a@a.org\r\nR", 10},
        {"a@a.org\n", 8},
        {"\ra@a.org", 8},
        {"a@a\0.org", 8},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spec_valid(&s);
        spec_set(&s, spec_find(&s, 'S'), bad[i].v, bad[i].n);
        spec_expect_rejected(f, &s, "sender contains a CR, LF or NUL byte");

        const char texts[] = "CAHPUI";
        for (const char *t = texts; *t; t++) {
            spec_valid(&s);
            spec_insert_at(&s, 5, *t, bad[i].v, bad[i].n);
            spec_expect_rejected(f, &s, "contains a CR, LF or NUL byte");
        }

        spec_valid(&s);
        spec_remove_at(&s, spec_find(&s, 'R'));
        spec_add_rcpt(&s, 'P', 0, bad[i].v, bad[i].n, NULL, 0);
        spec_insert_at(&s, 5, 'R', s.payload[s.n - 1].data, s.payload[s.n - 1].len);
        spec_remove_at(&s, s.n - 1);
        spec_expect_rejected(f, &s, "recipient address contains");

        spec_valid(&s);
        spec_add_rcpt(&s, 'P', 0, S("c@c.org"), bad[i].v, bad[i].n);
        spec_insert_at(&s, 5, 'R', s.payload[s.n - 1].data, s.payload[s.n - 1].len);
        spec_remove_at(&s, s.n - 1);
        spec_expect_rejected(f, &s, "ORCPT contains");
    }

    /* bad values in fixed fields */
    spec_valid(&s);
    s.payload[spec_find(&s, 'R')].data[0] = 'Z';
    spec_expect_rejected(f, &s, "invalid status byte");
    spec_valid(&s);
    s.payload[spec_find(&s, 'R')].data[1] = (char)(QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_SUCCESS);
    spec_expect_rejected(f, &s, "invalid NOTIFY");
    spec_valid(&s);
    s.payload[spec_find(&s, 'R')].data[1] = 0x10;
    spec_expect_rejected(f, &s, "invalid NOTIFY");
    spec_valid(&s);
    s.payload[spec_find(&s, 'R')].data[2] = 2;
    spec_expect_rejected(f, &s, "invalid ORCPT flag");
    spec_valid(&s);
    spec_remove_at(&s, spec_find(&s, 'R'));
    spec_add_rcpt(&s, 'P', 0, "", 0, NULL, 0);
    spec_insert_at(&s, 5, 'R', s.payload[s.n - 1].data, s.payload[s.n - 1].len);
    spec_remove_at(&s, s.n - 1);
    spec_expect_rejected(f, &s, "empty address");
    spec_valid(&s);
    spec_insert_at(&s, 4, 'F', "x", 1);
    spec_expect_rejected(f, &s, "invalid DSN RET");
    spec_valid(&s);
    s.payload[spec_find(&s, 'T')].data[9] = 0x0f; /* usec = 1000000 */
    s.payload[spec_find(&s, 'T')].data[10] = 0x42;
    s.payload[spec_find(&s, 'T')].data[11] = 0x40;
    spec_expect_rejected(f, &s, "arrival time out of range");
    spec_valid(&s);
    s.payload[spec_find(&s, 'T')].data[0] = (char)0x80;
    spec_expect_rejected(f, &s, "arrival time out of range");
    spec_valid(&s);
    s.payload[spec_find(&s, 'Q')].data[4] = (char)0x80;
    spec_expect_rejected(f, &s, "next retry time out of range");
}

static void test_reader_bad_structure(void **state)
{
    struct fx *f = *state;
    struct spec s;
    unsigned char v2[4] = {0, 0, 0, 2};

    spec_valid(&s);
    spec_remove_at(&s, spec_find(&s, 'S'));
    spec_expect_rejected(f, &s, "no sender record");

    spec_valid(&s);
    spec_remove_at(&s, spec_find(&s, 'R'));
    spec_expect_rejected(f, &s, "no recipient records");

    spec_valid(&s);
    spec_insert_at(&s, 5, 'S', S("mallory@evil.org"));
    spec_expect_rejected(f, &s, "duplicate sender");

    const char required[] = "TQZ";
    for (const char *t = required; *t; t++) {
        spec_valid(&s);
        spec_remove_at(&s, spec_find(&s, *t));
        spec_expect_rejected(f, &s, "no ");
    }

    spec_valid(&s);
    spec_insert_at(&s, 5, 'H', S("a"));
    spec_insert_at(&s, 5, 'H', S("b"));
    spec_expect_rejected(f, &s, "duplicate HELO name");

    spec_valid(&s);
    spec_remove_at(&s, spec_find(&s, 'M'));
    spec_expect_rejected(f, &s, "end record before the message content");

    spec_valid(&s);
    spec_remove_at(&s, 0);
    spec_expect_rejected(f, &s, "not the version record");

    spec_valid(&s);
    spec_set(&s, 0, v2, 4);
    spec_expect_rejected(f, &s, "unsupported queue file version 2");

    spec_valid(&s);
    spec_insert_at(&s, 3, 'V', s.payload[0].data, 4);
    spec_expect_rejected(f, &s, "duplicate version");

    spec_valid(&s);
    spec_insert_at(&s, s.n - 1, 'R', s.payload[spec_find(&s, 'R')].data,
                   s.payload[spec_find(&s, 'R')].len);
    spec_expect_rejected(f, &s, "after the message content");

    spec_valid(&s);
    spec_insert_at(&s, s.n - 1, 'M', "x", 1);
    spec_expect_rejected(f, &s, "after the message content");

    /* size record disagrees with the content */
    spec_valid(&s);
    s.payload[spec_find(&s, 'Z')].data[7]++;
    spec_expect_rejected(f, &s, "size record says");

    /* unknown record type */
    spec_valid(&s);
    spec_insert_at(&s, 5, 'x', S("future"));
    spec_expect_rejected(f, &s, "unknown record type 0x78");

    /* trailing garbage after the end record, including a second end */
    strbuf b;
    strbuf_init(&b);
    spec_valid(&s);
    spec_serialize(&s, &b);
    spec_free(&s);
    strbuf_appendc(&b, '\0');
    expect_bytes_rejected(f, b.data, b.len, "trailing data after the end record");
    strbuf_append(&b, "X\0\0\0\0", 5);
    expect_bytes_rejected(f, b.data, b.len, "trailing data after the end record");

    /* an empty file and a non-queue file */
    expect_bytes_rejected(f, "", 0, "without an end record");
    expect_bytes_rejected(f, "From alice@a.org Mon Jan 1\n", 27, "not the version record");
    expect_bytes_rejected(f, "\x01\x02\x03\x04\x05\x06", 6, "unknown record type 0x01");
    strbuf_free(&b);
}

static void test_reader_refuses_links_and_odd_files(void **state)
{
    struct fx *f = *state;
    char id[QUEUE_ID_SIZE], other[QUEUE_ID_SIZE];
    make_full_message(f, id, small_body, sizeof(small_body) - 1);
    char real[512];
    snprintf(real, sizeof(real), "%s", path_of(f, "incoming", id));

    /* symlink to a valid queue file */
    queue_id_new(other);
    const char *sl = path_of(f, "incoming", other);
    assert_int_equal(symlink(real, sl), 0);
    expect_open_fails(f, sl, "symbolic link");
    struct queue_file *qf;
    assert_int_equal(queue_file_open_readonly(sl, &qf, &f->err), -1);
    assert_non_null(strstr(f->err.data, "symbolic link"));
    unlink(sl);

    /* a second hard link: both names are refused */
    queue_id_new(other);
    const char *hl = path_of(f, "active", other);
    assert_int_equal(link(real, hl), 0);
    expect_open_fails(f, hl, "has 2 links");
    expect_open_fails(f, real, "has 2 links");
    unlink(hl);
    assert_int_equal(queue_file_open(real, &qf, &f->err), 0);
    queue_file_close(&qf);

    /* a FIFO must neither block nor be read */
    queue_id_new(other);
    const char *fifo = path_of(f, "incoming", other);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(queue_file_open_readonly(fifo, &qf, &f->err), -1);
    assert_non_null(strstr(f->err.data, "not a regular file"));
    expect_open_fails(f, fifo, "not a regular file");
    unlink(fifo);

    /* a directory */
    queue_id_new(other);
    const char *d = path_of(f, "incoming", other);
    assert_int_equal(mkdir(d, 0700), 0);
    assert_int_equal(queue_file_open_readonly(d, &qf, &f->err), -1);
    assert_non_null(strstr(f->err.data, "not a regular file"));
    assert_int_equal(queue_file_open(d, &qf, &f->err), -1);
    assert_non_null(strstr(f->err.data, d));
    rmdir(d);

    /* missing */
    expect_open_fails(f, path_of(f, "incoming", "NOSUCHFILE"), "No such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dirs_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_rejects_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_rejects_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_accepts_hand_made_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_truncated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_flipped_type_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_huge_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_bad_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_bad_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_refuses_links_and_odd_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
