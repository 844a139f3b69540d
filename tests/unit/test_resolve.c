/*
 * test_resolve.c - unit tests for destination classes and recipient
 * existence (lib/mail/resolve) with real tables (texthash) and the passwd
 * database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/aliases.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "util/config.h"
#include "util/strbuf.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct resolver *make(const char *extra)
{
    struct config *cfg = params_config_new();
    strbuf text, err;
    strbuf_init(&text);
    strbuf_init(&err);
    strbuf_printf(&text,
                  "myhostname = mx.petrel.test\n"
                  "mydestination = petrel.test, $myhostname, localhost, .sub.test\n"
                  "virtual_mailbox_domains = v.test v2.test\n"
                  "relay_domains = relay.test\n"
                  "alias_maps = hash:%s/aliases\n"
                  "virtual_alias_maps = texthash:%s/valias\n"
                  "virtual_mailbox_maps = texthash:%s/vmailbox\n%s",
                  dir, dir, dir, extra);
    assert_int_equal(config_load_string(cfg, "petrel.conf", text.data, text.len, &err), 0);
    strbuf_reset(&err);
    struct resolver *r = resolver_new(cfg, &err);
    config_free(&cfg);
    strbuf_free(&text);
    strbuf_free(&err);
    return r;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/petrel-resolve.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    write_file("aliases", "alice: root\nteam: alice, root\npostmaster: root\n");
    char src[128], spec[140];
    snprintf(src, sizeof(src), "%s/aliases", dir);
    snprintf(spec, sizeof(spec), "hash:%s/aliases", dir);
    strbuf err;
    strbuf_init(&err);
    int n = aliases_build(src, spec, &err);
    strbuf_free(&err);
    if (n != 0)
        return -1;
    write_file("valias", "info@petrel.test root\n@v2.test root\n");
    write_file("vmailbox", "bob@v.test v.test/bob/\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_classes(void **state)
{
    (void)state;
    struct resolver *r = make("");
    assert_int_equal(resolver_class(r, "petrel.test"), RESOLVE_LOCAL);
    assert_int_equal(resolver_class(r, "mx.petrel.test"), RESOLVE_LOCAL);
    assert_int_equal(resolver_class(r, "a.sub.test"), RESOLVE_LOCAL);
    assert_int_equal(resolver_class(r, "sub.test"), RESOLVE_REMOTE);
    assert_int_equal(resolver_class(r, "v.test"), RESOLVE_VIRTUAL);
    assert_int_equal(resolver_class(r, "relay.test"), RESOLVE_RELAY);
    assert_int_equal(resolver_class(r, "elsewhere.example"), RESOLVE_REMOTE);
    assert_int_equal(resolver_class(r, "xpetrel.test"), RESOLVE_REMOTE);
    resolver_free(&r);
    assert_null(r);
}

static void test_exists(void **state)
{
    (void)state;
    struct resolver *r = make("");
    strbuf why;
    strbuf_init(&why);
    assert_int_equal(resolver_exists(r, "root", "petrel.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "ROOT", "petrel.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "root+tag", "petrel.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "alice", "petrel.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "alice+x", "localhost", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "Postmaster", "petrel.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "info", "petrel.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "no-such-user-q", "petrel.test", &why),
                     RESOLVE_NO_SUCH_USER);
    assert_int_equal(resolver_exists(r, "+tag", "petrel.test", &why), RESOLVE_NO_SUCH_USER);
    assert_int_equal(resolver_exists(r, "a/b", "petrel.test", &why), RESOLVE_NO_SUCH_USER);
    assert_int_equal(resolver_exists(r, "bob", "v.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "bob+x", "v.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "root", "v.test", &why), RESOLVE_NO_SUCH_USER);
    assert_int_equal(resolver_exists(r, "anyone", "v2.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "whoever", "relay.test", &why), RESOLVE_EXISTS);
    assert_int_equal(resolver_exists(r, "whoever", "elsewhere.example", &why), RESOLVE_EXISTS);
    strbuf tmp;
    strbuf_init(&tmp);
    assert_true(resolver_strip_extension(r, "Bob+Tag+More", &tmp));
    assert_string_equal(tmp.data, "bob");
    assert_false(resolver_strip_extension(r, "bob", &tmp));
    strbuf_free(&tmp);
    strbuf_free(&why);
    resolver_free(&r);
}

static void test_broken_table_defers(void **state)
{
    (void)state;
    struct resolver *r = make("alias_maps = hash:/nonexistent/aliases\n");
    strbuf why;
    strbuf_init(&why);
    assert_int_equal(resolver_exists(r, "root", "petrel.test", &why), RESOLVE_LOOKUP_ERROR);
    assert_non_null(strstr(why.data, "alias_maps"));
    /* Other domains are not affected. */
    assert_int_equal(resolver_exists(r, "x", "elsewhere.example", &why), RESOLVE_EXISTS);
    strbuf_free(&why);
    resolver_free(&r);
}

static void test_table_fixed_later(void **state)
{
    (void)state;
    char db[128], away[140];
    snprintf(db, sizeof(db), "%s/aliases.db", dir);
    snprintf(away, sizeof(away), "%s/aliases.db.away", dir);
    assert_int_equal(rename(db, away), 0);
    struct resolver *r = make("");
    strbuf why;
    strbuf_init(&why);
    assert_int_equal(resolver_exists(r, "alice", "petrel.test", &why), RESOLVE_LOOKUP_ERROR);
    /* Fixed while the process runs: the next lookup reopens the table. */
    assert_int_equal(rename(away, db), 0);
    assert_int_equal(resolver_exists(r, "alice", "petrel.test", &why), RESOLVE_EXISTS);
    strbuf_free(&why);
    resolver_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_exists),
        cmocka_unit_test(test_broken_table_defers),
        cmocka_unit_test(test_table_fixed_later),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
