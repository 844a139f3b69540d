/*
 * test_auth_backend.c - unit tests of the auth service's internals (auth/):
 * the passwd-file reader and hash schemes, the constant-time comparison,
 * domain lists, the shared failure counters and the one-time token store.
 * Built by auth/CMakeLists.txt (it links auth's own objects, which
 * tests/unit/test_*.c programs do not), run by CTest as unit/test_auth_backend.
 */
#define _GNU_SOURCE /* crypt_gensalt_rn */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "util/strbuf.h"

struct fixture {
    char dir[64];
    char passwd[128];
    struct auth_settings s;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_auth_backend.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->passwd, sizeof(f->passwd), "%s/passwd", f->dir);
    char tokens[128];
    snprintf(tokens, sizeof(tokens), "%s/tokens", f->dir);
    mkdir(tokens, 0700);
    f->s.state_dir = f->dir;
    f->s.failure_limit = 3;
    f->s.failure_window = 300;
    f->s.failure_delay_ms = 500;
    f->s.failure_max_delay_ms = 1200;
    f->s.token_lifetime = 60;
    struct passwd *pw = getpwuid(geteuid());
    f->s.store_owner = pw ? pw->pw_name : "root";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static char *hash(const char *prefix, const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)) == NULL)
        return NULL;
    struct crypt_data cd;
    memset(&cd, 0, sizeof(cd));
    const char *h = crypt_rn(password, salt, &cd, sizeof(cd));
    return h && h[0] != '*' ? strdup(h) : NULL;
}

static void test_secret_equal(void **state)
{
    (void)state;
    assert_true(auth_secret_equal("abc", 3, "abc", 3));
    assert_true(auth_secret_equal("", 0, "", 0));
    assert_false(auth_secret_equal("abc", 3, "abd", 3));
    assert_false(auth_secret_equal("abc", 3, "abc\0", 4));
    assert_false(auth_secret_equal("abc", 3, "ab", 2));
    assert_false(auth_secret_equal("", 0, "a", 1));
}

static void test_domain_in(void **state)
{
    (void)state;
    struct config_list l;
    config_split_list("example.org, .sub.test", &l);
    assert_true(auth_domain_in(&l, "example.org"));
    assert_true(auth_domain_in(&l, "EXAMPLE.Org"));
    assert_false(auth_domain_in(&l, "a.example.org"));
    assert_true(auth_domain_in(&l, "a.sub.test"));
    assert_false(auth_domain_in(&l, "sub.test"));
    assert_false(auth_domain_in(&l, "xsub.test"));
    config_list_free(&l);
}

static void test_passwd_lookup(void **state)
{
    struct fixture *f = *state;
    write_file(f->passwd, "# comment\n"
                          "\n"
                          "alice@Example.org:{SHA512-CRYPT}$6$x$y:1001:1002::/home/a::mail=/m/a/\r\n"
                          "short@example.org:$6$x$y\n"
                          "baduid@example.org:x:12a:1::/h::\n"
                          "ctl@example.org:x\x01y:1:1::/h::\n"
                          "bare:{PLAIN}x\n");
    struct passwd_entry e;
    strbuf err;
    strbuf_init(&err);

    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup(f->passwd, "alice@EXAMPLE.ORG", &e, &err), 1);
    assert_string_equal(e.user.data, "alice@Example.org");
    assert_string_equal(e.password.data, "{SHA512-CRYPT}$6$x$y");
    assert_int_equal(e.uid, 1001);
    assert_int_equal(e.gid, 1002);
    assert_string_equal(e.home.data, "/home/a");
    assert_string_equal(e.extra.data, "mail=/m/a/"); /* CR stripped */
    assert_int_equal(e.line, 3);
    passwd_entry_free(&e);

    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup(f->passwd, "short@example.org", &e, &err), 1);
    assert_int_equal(e.uid, -1);
    assert_int_equal(e.home.len, 0);
    passwd_entry_free(&e);

    /* local parts are exact; other users' entries are not looked at */
    const char *absent[] = {"Alice@example.org", "alice", "alice@example", "bare@x", "", "@"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        passwd_entry_init(&e);
        assert_int_equal(passwd_file_lookup(f->passwd, absent[i], &e, &err), 0);
        passwd_entry_free(&e);
    }
    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup(f->passwd, "bare", &e, &err), 1);
    passwd_entry_free(&e);

    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup(f->passwd, "baduid@example.org", &e, &err), -1);
    assert_non_null(strstr(err.data, "/passwd:5: uid and gid must be decimal"));
    passwd_entry_free(&e);
    strbuf_reset(&err);
    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup(f->passwd, "ctl@example.org", &e, &err), -1);
    assert_non_null(strstr(err.data, ":6: control character"));
    passwd_entry_free(&e);

    strbuf_reset(&err);
    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup("/nonexistent/passwd", "a@b", &e, &err), -1);
    assert_non_null(strstr(err.data, "auth_passwd_file /nonexistent/passwd"));
    passwd_entry_free(&e);
    strbuf_reset(&err);
    passwd_entry_init(&e);
    assert_int_equal(passwd_file_lookup(f->dir, "a@b", &e, &err), -1); /* a directory */
    passwd_entry_free(&e);
    strbuf_free(&err);
}

/* verify() with one password field. */
static enum auth_verdict verify(struct fixture *f, const char *field, const char *password,
                                strbuf *reason)
{
    struct passwd_entry e;
    passwd_entry_init(&e);
    strbuf_sets(&e.user, "u@example.org");
    strbuf_sets(&e.password, field);
    e.line = 1;
    strbuf_reset(reason);
    enum auth_verdict v = passwd_verify(&f->s, f->passwd, &e, password, reason);
    passwd_entry_free(&e);
    return v;
}

static void test_schemes(void **state)
{
    struct fixture *f = *state;
    strbuf reason, field;
    strbuf_init(&reason);
    strbuf_init(&field);
    const struct {
        const char *scheme, *prefix;
    } ok[] = {{"{SHA512-CRYPT}", "$6$"}, {"{SHA256-CRYPT}", "$5$"}, {"{YESCRYPT}", "$y$"},
              {"{BLF-CRYPT}", "$2b$"},   {"{CRYPT}", "$y$"},        {"", "$6$"},
              {"{sha512-crypt}", "$6$"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *h = hash(ok[i].prefix, "s3cret pass");
        if (h == NULL)
            continue; /* method not built into this libcrypt */
        strbuf_reset(&field);
        strbuf_printf(&field, "%s%s", ok[i].scheme, h);
        assert_int_equal(verify(f, field.data, "s3cret pass", &reason), VERDICT_OK);
        assert_int_equal(verify(f, field.data, "s3cret pas", &reason), VERDICT_FAIL);
        assert_string_equal(reason.data, "password mismatch");
        assert_int_equal(verify(f, field.data, "", &reason), VERDICT_FAIL);
        free(h);
    }
    /* a scheme that does not match its hash, unknown schemes, legacy hashes */
    char *y = hash("$y$", "pw");
    assert_non_null(y);
    strbuf_reset(&field);
    strbuf_printf(&field, "{SHA512-CRYPT}%s", y);
    assert_int_equal(verify(f, field.data, "pw", &reason), VERDICT_TEMPFAIL);
    strbuf_reset(&field);
    strbuf_printf(&field, "{MD5}%s", y);
    assert_int_equal(verify(f, field.data, "pw", &reason), VERDICT_TEMPFAIL);
    strbuf_reset(&field);
    strbuf_printf(&field, "{SHA512-CRYPT%s", y);
    assert_int_equal(verify(f, field.data, "pw", &reason), VERDICT_TEMPFAIL);
    free(y);
    assert_int_equal(verify(f, "{CRYPT}$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "pw", &reason),
                     VERDICT_TEMPFAIL);
    assert_int_equal(verify(f, "abcdefghijklm", "pw", &reason), VERDICT_TEMPFAIL); /* DES */
    assert_int_equal(verify(f, "{CRYPT}garbage", "pw", &reason), VERDICT_TEMPFAIL);
    assert_string_equal(reason.data, "unusable password hash");
    /* disabled accounts */
    const char *disabled[] = {"", "!", "*", "!$6$x$y"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(verify(f, disabled[i], "", &reason), VERDICT_FAIL);
        assert_string_equal(reason.data, "account disabled");
    }
    /* {PLAIN} only when allowed */
    assert_int_equal(verify(f, "{PLAIN}open sesame", "open sesame", &reason), VERDICT_TEMPFAIL);
    f->s.allow_plain = true;
    assert_int_equal(verify(f, "{PLAIN}open sesame", "open sesame", &reason), VERDICT_OK);
    assert_int_equal(verify(f, "{PLAIN}open sesame", "open sesam", &reason), VERDICT_FAIL);
    assert_int_equal(verify(f, "{plain}", "", &reason), VERDICT_OK);
    f->s.allow_plain = false;
    passwd_waste_time("anything");
    strbuf_free(&reason);
    strbuf_free(&field);
}

static void test_identity(void **state)
{
    struct fixture *f = *state;
    struct passwd_entry e;
    struct auth_identity id;
    strbuf reason;
    strbuf_init(&reason);
    const struct {
        const char *home, *extra;
        long long uid;
        enum auth_verdict v;
        const char *mailbox;
    } cases[] = {
        {"/v/a", "", 5000, VERDICT_OK, "/v/a/Maildir/"},
        {"/v/a", "quota=1G mail=maildir:~/m/", 5000, VERDICT_OK, "/v/a/m/"},
        {"/v/a", "userdb_mail=/srv/a", 5000, VERDICT_OK, "/srv/a"},
        {"", "mail=/srv/a/", 5000, VERDICT_TEMPFAIL, NULL},       /* no home */
        {"/v/a", "mail=rel/path", 5000, VERDICT_TEMPFAIL, NULL},  /* relative */
        {"/v/a", "mail=/x/../etc", 5000, VERDICT_TEMPFAIL, NULL}, /* .. */
        {"relative", "", 5000, VERDICT_TEMPFAIL, NULL},
        {"/v/a", "", 0, VERDICT_TEMPFAIL, NULL},                  /* uid 0 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        passwd_entry_init(&e);
        auth_identity_init(&id);
        strbuf_sets(&e.user, "a@example.org");
        strbuf_sets(&e.home, cases[i].home);
        strbuf_sets(&e.extra, cases[i].extra);
        e.uid = cases[i].uid;
        e.gid = 77;
        assert_int_equal(passwd_identity(&f->s, &e, &id, &reason), cases[i].v);
        if (cases[i].mailbox) {
            assert_string_equal(id.mailbox.data, cases[i].mailbox);
            assert_int_equal(id.uid, cases[i].uid);
            assert_int_equal(id.gid, 77);
        }
        passwd_entry_free(&e);
        auth_identity_free(&id);
    }
    /* empty uid/gid: mail_store_owner's (here: ourselves) */
    if (geteuid() != 0) {
        passwd_entry_init(&e);
        auth_identity_init(&id);
        strbuf_sets(&e.user, "a@example.org");
        strbuf_sets(&e.home, "/v/a");
        assert_int_equal(passwd_identity(&f->s, &e, &id, &reason), VERDICT_OK);
        assert_int_equal(id.uid, geteuid());
        assert_int_equal(id.gid, getegid());
        passwd_entry_free(&e);
        auth_identity_free(&id);
    }
    strbuf_free(&reason);
}

static void test_throttle(void **state)
{
    struct fixture *f = *state;
    const char *c = "192.0.2.1";
    time_t t = 1000000;
    assert_int_equal(throttle_check(&f->s, c, t), 0);
    assert_int_equal(throttle_failure(&f->s, c, t), 500);
    assert_int_equal(throttle_failure(&f->s, c, t + 1), 1000);
    assert_int_equal(throttle_check(&f->s, c, t + 1), 0);
    assert_int_equal(throttle_failure(&f->s, c, t + 2), 1200); /* capped */
    assert_int_equal(throttle_check(&f->s, c, t + 2), 300);    /* the limit (3) reached */
    assert_int_equal(throttle_check(&f->s, c, t + 100), 202);
    assert_int_equal(throttle_check(&f->s, "192.0.2.2", t + 100), 0);
    assert_int_equal(throttle_check(&f->s, c, t + 302), 0);    /* over */
    /* a new window starts from zero */
    assert_int_equal(throttle_failure(&f->s, c, t + 400), 500);

    /* a success forgets */
    const char *d = "2001:db8::7";
    throttle_failure(&f->s, d, t);
    throttle_failure(&f->s, d, t);
    throttle_success(&f->s, d);
    assert_int_equal(throttle_failure(&f->s, d, t), 500);

    /* damaged lines are dropped, good ones kept */
    char path[128];
    snprintf(path, sizeof(path), "%s/failures", f->dir);
    write_file(path, "garbage\n198.51.100.1 5 1000000 1000300\nx 1 2\n"
                     "198.51.100.2 -4 1 1\n198.51.100.3 1 1000000 0 extra\n");
    assert_int_equal(throttle_check(&f->s, "198.51.100.1", t), 300);
    assert_int_equal(throttle_check(&f->s, "garbage", t), 0);
    throttle_failure(&f->s, "198.51.100.9", t);
    FILE *fp = fopen(path, "r");
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    assert_null(strstr(buf, "garbage"));
    assert_non_null(strstr(buf, "198.51.100.1 5 1000000 1000300\n"));
    assert_non_null(strstr(buf, "198.51.100.9 1 1000000 0\n"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* no state directory: nobody is throttled, failures still delayed */
    struct auth_settings broken = f->s;
    broken.state_dir = "/nonexistent/auth";
    assert_int_equal(throttle_check(&broken, c, t), 0);
    assert_int_equal(throttle_failure(&broken, c, t), 500);
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id, got;
    auth_identity_init(&id);
    strbuf_sets(&id.user, "bob");
    strbuf_sets(&id.home, "/home/bob");
    strbuf_sets(&id.mailbox, "/home/bob/Maildir/");
    id.uid = 1001;
    id.gid = 100;
    strbuf tok, tok2, err;
    strbuf_init(&tok);
    strbuf_init(&tok2);
    strbuf_init(&err);
    assert_int_equal(token_issue(&f->s, &id, "imap", &tok, &err), 0);
    assert_int_equal(tok.len, 40);
    assert_true(token_syntax_ok(tok.data));
    assert_int_equal(token_issue(&f->s, &id, "imap", &tok2, &err), 0);
    assert_string_not_equal(tok.data, tok2.data);

    auth_identity_init(&got);
    assert_int_equal(token_redeem(&f->s, tok.data, "imap", &got, &err), 1);
    assert_string_equal(got.user.data, "bob");
    assert_string_equal(got.mailbox.data, "/home/bob/Maildir/");
    assert_int_equal(got.uid, 1001);
    assert_int_equal(got.gid, 100);
    auth_identity_free(&got);
    auth_identity_init(&got);
    strbuf_reset(&err);
    assert_int_equal(token_redeem(&f->s, tok.data, "imap", &got, &err), 0);
    assert_string_equal(err.data, "unknown or already used token");
    /* another service's token, then an expired one */
    strbuf_reset(&err);
    assert_int_equal(token_redeem(&f->s, tok2.data, "pop3", &got, &err), 0);
    assert_non_null(strstr(err.data, "issued for imap"));
    assert_int_equal(token_issue(&f->s, &id, "pop3", &tok, &err), 0);
    f->s.token_lifetime = -1;
    strbuf_reset(&err);
    assert_int_equal(token_redeem(&f->s, tok.data, "pop3", &got, &err), 0);
    assert_non_null(strstr(err.data, "expired token"));
    f->s.token_lifetime = 60;
    /* shapes that are never looked up */
    const char *bad[] = {"", "../x", "0123456789abcdef0123456789abcdef0123456X",
                         "0123456789ABCDEF0123456789ABCDEF01234567", "abc"};
    for (size_t i = 0; i < 5; i++) {
        strbuf_reset(&err);
        assert_int_equal(token_redeem(&f->s, bad[i], "pop3", &got, &err), 0);
    }
    /* a damaged token file */
    char path[256];
    const char *t = "00112233445566778899aabbccddeeff00112233";
    snprintf(path, sizeof(path), "%s/tokens/%s", f->dir, t);
    write_file(path, "8:protocol,10:auth-token,0:,");
    strbuf_reset(&err);
    assert_int_equal(token_redeem(&f->s, t, "pop3", &got, &err), -1);
    assert_string_equal(err.data, "damaged token");
    write_file(path, "8:protocol,10:auth-token,7:service,4:pop3,0:,trailing");
    strbuf_reset(&err);
    assert_int_equal(token_redeem(&f->s, t, "pop3", &got, &err), -1);
    assert_int_equal(access(path, F_OK), -1); /* gone either way */
    auth_identity_free(&got);
    auth_identity_free(&id);
    strbuf_free(&tok);
    strbuf_free(&tok2);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_domain_in),
        cmocka_unit_test_setup_teardown(test_passwd_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schemes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
