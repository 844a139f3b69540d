/*
 * test_delivery.c - unit tests for the qmgr <-> delivery agent protocol
 * (lib/mail/delivery): round trips over a socketpair, and every malformed
 * record a broken or hostile peer could send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mail/delivery.h"
#include "mail/queue_file.h"
#include "util/attr.h"

static const char *ID = "0123456789ABCDEFGHIJKL";

static void test_round_trip(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct delivery_request req;
    delivery_request_init(&req);
    memcpy(req.queue_id, ID, QUEUE_ID_SIZE);
    strbuf_sets(&req.sender, "alice@example.org");
    req.arrival = 1795930305;
    delivery_request_add(&req, 0, "bob@petrel.test", "rfc822;Bob@petrel.test",
                         QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE);
    delivery_request_add(&req, 7, "carol@petrel.test", NULL, 0);
    assert_int_equal(delivery_request_write(sv[0], &req), 0);

    struct delivery_request got;
    delivery_request_init(&got);
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(delivery_request_read(sv[1], &got, &err), 0);
    assert_string_equal(got.queue_id, ID);
    assert_string_equal(got.sender.data, "alice@example.org");
    assert_int_equal(got.arrival, 1795930305);
    assert_int_equal(got.nrcpt, 2);
    assert_int_equal(got.rcpts[0].index, 0);
    assert_string_equal(got.rcpts[0].address.data, "bob@petrel.test");
    assert_string_equal(got.rcpts[0].orcpt.data, "rfc822;Bob@petrel.test");
    assert_int_equal(got.rcpts[0].notify, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE);
    assert_int_equal(got.rcpts[1].index, 7);
    assert_string_equal(got.rcpts[1].orcpt.data, "");

    struct delivery_result res;
    delivery_result_init(&res);
    delivery_result_set(&res, 7, DELIVERY_BOUNCED, "5.1.1", "no such user: %s", "carol\r\nx");
    assert_int_equal(delivery_result_write(sv[1], &res), 0);
    delivery_result_set(&res, 0, DELIVERY_SENT, "2.0.0", "delivered to maildir");
    assert_int_equal(delivery_result_write(sv[1], &res), 0);
    assert_int_equal(delivery_done_write(sv[1]), 0);

    struct delivery_result r;
    delivery_result_init(&r);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 1);
    assert_int_equal(r.index, 7);
    assert_int_equal(r.status, DELIVERY_BOUNCED);
    assert_string_equal(r.dsn, "5.1.1");
    assert_string_equal(r.reason.data, "no such user: carol  x"); /* controls blanked */
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 1);
    assert_int_equal(r.status, DELIVERY_SENT);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 0);
    /* The peer closing without an end record is an error, not "done". */
    close(sv[1]);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), -1);
    assert_non_null(strstr(err.data, "before the end record"));
    close(sv[0]);
    delivery_result_free(&r);
    delivery_result_free(&res);
    delivery_request_free(&req);
    delivery_request_free(&got);
    strbuf_free(&err);
}

/* Sends hand-made records and expects the reader to refuse them. */
static void expect_request_error(struct attr_list *head, struct attr_list *rcpt, const char *want)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(attr_write(sv[0], head, 1000), 0);
    if (rcpt)
        assert_int_equal(attr_write(sv[0], rcpt, 1000), 0);
    close(sv[0]);
    struct delivery_request got;
    delivery_request_init(&got);
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(delivery_request_read(sv[1], &got, &err), -1);
    if (strstr(err.data, want) == NULL)
        fail_msg("expected \"%s\", got \"%s\"", want, err.data);
    delivery_request_free(&got);
    strbuf_free(&err);
    close(sv[1]);
}

static struct attr_list *head(const char *id, const char *nrcpt)
{
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "protocol", "deliver");
    attr_add_str(l, "queue_id", id);
    attr_add_str(l, "sender", "a@b.org");
    attr_add_str(l, "nrcpt", nrcpt);
    attr_add_str(l, "arrival", "0");
    return l;
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct attr_list *h, *r;
    h = head("../../etc/passwd", "1");
    expect_request_error(h, NULL, "invalid queue id");
    attr_list_free(&h);
    h = head(ID, "0");
    expect_request_error(h, NULL, "nrcpt");
    attr_list_free(&h);
    h = head(ID, "1001");
    expect_request_error(h, NULL, "nrcpt");
    attr_list_free(&h);
    h = head(ID, "1");
    expect_request_error(h, NULL, "closed inside a request");
    r = attr_list_new();
    attr_add_str(r, "index", "0");
    attr_add_str(r, "address", "bob@x\r\nDATA");
    attr_add_str(r, "notify", "0");
    expect_request_error(h, r, "\"address\" holds CR, LF, NUL");
    attr_list_free(&r);
    r = attr_list_new();
    attr_add_str(r, "index", "0");
    attr_add_str(r, "address", "bob@x");
    attr_add_str(r, "notify", "0");
    attr_add_str(r, "command", "rm -rf /");
    expect_request_error(h, r, "command");
    attr_list_free(&r);
    r = attr_list_new();
    attr_add_str(r, "index", "-1");
    attr_add_str(r, "address", "bob@x");
    attr_add_str(r, "notify", "0");
    expect_request_error(h, r, "index");
    attr_list_free(&r);
    attr_list_free(&h);
    h = attr_list_new();
    attr_add_str(h, "protocol", "something-else");
    expect_request_error(h, NULL, "protocol");
    attr_list_free(&h);
}

static void test_bad_results(void **state)
{
    (void)state;
    static const char *cases[][4] = {
        /* status, dsn, reason, expected error */
        { "sent", "5.0.0", "x", "not matching the status" },
        { "bounced", "5.x.0", "x", "malformed" },
        { "lost", "4.0.0", "x", "unknown status word" },
        { "deferred", "4.0.0", "a\nb", "holds CR, LF, NUL" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct attr_list *l = attr_list_new();
        attr_add_str(l, "index", "0");
        attr_add_str(l, "status", cases[i][0]);
        attr_add_str(l, "dsn", cases[i][1]);
        attr_add_str(l, "reason", cases[i][2]);
        assert_int_equal(attr_write(sv[0], l, 1000), 0);
        attr_list_free(&l);
        struct delivery_result r;
        delivery_result_init(&r);
        strbuf err;
        strbuf_init(&err);
        assert_int_equal(delivery_result_read(sv[1], &r, &err), -1);
        if (strstr(err.data, cases[i][3]) == NULL)
            fail_msg("case %zu: expected \"%s\", got \"%s\"", i, cases[i][3], err.data);
        delivery_result_free(&r);
        strbuf_free(&err);
        close(sv[0]);
        close(sv[1]);
    }
    assert_true(delivery_dsn_valid("2.0.0"));
    assert_true(delivery_dsn_valid("5.1.10"));
    assert_false(delivery_dsn_valid("3.0.0"));
    assert_false(delivery_dsn_valid("5.1"));
    assert_false(delivery_dsn_valid("5.1.1 "));
    assert_false(delivery_dsn_valid("5.1111.1"));
}

/* The optional mta= and diag= of a result: they round trip, are cleaned
 * and cut, come only as a pair, a record without them (an older agent)
 * reads with both empty, and one read after another does not keep them. */
static void test_remote_attributes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct delivery_result res;
    delivery_result_init(&res);
    delivery_result_set(&res, 3, DELIVERY_BOUNCED, "5.1.1", "host mx.p.org[10.78.0.40] said: "
                        "550 5.1.1 no such user (in reply to RCPT TO command)");
    delivery_result_set_remote(&res, "mx.p.org", "550 5.1.1 no\x7f such\tuser");
    assert_int_equal(delivery_result_write(sv[1], &res), 0);
    char longdiag[3000];
    memset(longdiag, 'x', sizeof(longdiag) - 1);
    longdiag[sizeof(longdiag) - 1] = '\0';
    delivery_result_set(&res, 4, DELIVERY_DEFERRED, "4.2.2", "mailbox full");
    delivery_result_set_remote(&res, "mx.p.org", longdiag);
    assert_int_equal(delivery_result_write(sv[1], &res), 0);
    delivery_result_set(&res, 5, DELIVERY_BOUNCED, "5.0.0", "local");
    delivery_result_set_remote(&res, "", "550 only a reply"); /* no host: neither */
    assert_int_equal(delivery_result_write(sv[1], &res), 0);
    /* An older agent's record: no mta=, no diag=. */
    struct attr_list *l = attr_list_new();
    attr_add_str(l, "index", "6");
    attr_add_str(l, "status", "bounced");
    attr_add_str(l, "dsn", "5.1.1");
    attr_add_str(l, "reason", "unknown user");
    assert_int_equal(attr_write(sv[1], l, 1000), 0);
    attr_list_free(&l);
    /* A hostile one: a CR in diag= is refused like in reason=. */
    l = attr_list_new();
    attr_add_str(l, "index", "7");
    attr_add_str(l, "status", "bounced");
    attr_add_str(l, "dsn", "5.1.1");
    attr_add_str(l, "reason", "x");
    attr_add_str(l, "mta", "mx.p.org");
    attr_add_str(l, "diag", "550 a\r\nX-Injected: 1");
    assert_int_equal(attr_write(sv[1], l, 1000), 0);
    attr_list_free(&l);

    struct delivery_result r;
    delivery_result_init(&r);
    strbuf err;
    strbuf_init(&err);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 1);
    assert_int_equal(r.index, 3);
    assert_string_equal(r.mta.data, "mx.p.org");
    assert_string_equal(r.diag.data, "550 5.1.1 no  such user");
    assert_non_null(strstr(r.reason.data, "(in reply to RCPT TO command)"));
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 1);
    assert_int_equal(r.index, 4);
    assert_int_equal(r.diag.len, DELIVERY_DIAG_MAX);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 1);
    assert_int_equal(r.index, 5);
    assert_int_equal(r.mta.len, 0);
    assert_int_equal(r.diag.len, 0);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), 1);
    assert_int_equal(r.index, 6);
    assert_string_equal(r.reason.data, "unknown user");
    assert_int_equal(r.mta.len, 0);
    assert_int_equal(r.diag.len, 0);
    assert_int_equal(delivery_result_read(sv[0], &r, &err), -1);
    assert_non_null(strstr(err.data, "\"diag\" holds CR, LF, NUL"));
    close(sv[0]);
    close(sv[1]);
    delivery_result_free(&r);
    delivery_result_free(&res);
    strbuf_free(&err);
}

/* The buffer forms qmgr uses: the serialized request reads back like a
 * written one, results parse from a buffer in pieces, and the end record
 * says whether the agent takes another request. */
static void test_serialize_and_parse(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct delivery_request req, got;
    delivery_request_init(&req);
    delivery_request_init(&got);
    memcpy(req.queue_id, ID, QUEUE_ID_SIZE);
    strbuf_sets(&req.sender, "");
    req.arrival = 1;
    delivery_request_add(&req, 3, "bob@petrel.test", NULL, 0);
    strbuf buf, err;
    strbuf_init(&buf);
    strbuf_init(&err);
    delivery_request_serialize(&req, &buf);
    assert_int_equal(write(sv[0], buf.data, buf.len), (ssize_t)buf.len);
    assert_int_equal(delivery_request_read(sv[1], &got, &err), 0);
    assert_int_equal(got.nrcpt, 1);
    assert_int_equal(got.rcpts[0].index, 3);
    assert_string_equal(got.rcpts[0].address.data, "bob@petrel.test");

    struct delivery_result res;
    delivery_result_init(&res);
    delivery_result_set(&res, 3, DELIVERY_SENT, "2.0.0", "ok");
    assert_int_equal(delivery_result_write(sv[1], &res), 0);
    assert_int_equal(delivery_done_write_reuse(sv[1], true), 0);
    assert_int_equal(delivery_done_write(sv[1]), 0);
    char wire[512];
    ssize_t n = read(sv[0], wire, sizeof(wire));
    assert_true(n > 0);
    size_t used;
    bool reuse = true;
    delivery_result_free(&res);
    delivery_result_init(&res);
    /* Every proper prefix of the first record is incomplete. */
    assert_int_equal(delivery_result_parse(wire, 5, &used, &res, &reuse, &err),
                     DELIVERY_PARSE_INCOMPLETE);
    assert_int_equal(delivery_result_parse(wire, (size_t)n, &used, &res, &reuse, &err),
                     DELIVERY_PARSE_RESULT);
    assert_int_equal(res.index, 3);
    assert_int_equal(res.status, DELIVERY_SENT);
    size_t pos = used;
    assert_int_equal(delivery_result_parse(wire + pos, (size_t)n - pos, &used, &res, &reuse, &err),
                     DELIVERY_PARSE_DONE);
    assert_true(reuse);
    pos += used;
    assert_int_equal(delivery_result_parse(wire + pos, (size_t)n - pos, &used, &res, &reuse, &err),
                     DELIVERY_PARSE_DONE);
    assert_false(reuse);
    assert_int_equal(pos + used, (size_t)n);

    /* An end record with anything else in it is refused. */
    static const char bad[] = "6:status,4:done,5:reuse,2:no,0:,";
    assert_int_equal(delivery_result_parse(bad, sizeof(bad) - 1, &used, &res, &reuse, &err),
                     DELIVERY_PARSE_ERROR);
    delivery_result_free(&res);
    delivery_request_free(&req);
    delivery_request_free(&got);
    strbuf_free(&buf);
    strbuf_free(&err);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_bad_results),
        cmocka_unit_test(test_remote_attributes),
        cmocka_unit_test(test_serialize_and_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
