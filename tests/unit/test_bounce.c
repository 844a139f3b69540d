/*
 * test_bounce.c - the RFC 3464 notice builder (lib/mail/bounce.c): every
 * notice is parsed back with a small independent MIME reader below and each
 * field is checked, for failures, delays and successes, RET=FULL and HDRS,
 * the size cap, notices to postmaster, UTF-8 originals and hostile text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/bounce.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

/* ---- a minimal MIME reader for the checks ---- */

struct part {
    char *head; /* header section, unfolded, "\r\n" separated */
    char *body;
    size_t body_len;
};

struct report {
    char *head;
    struct part parts[8];
    int nparts;
    char *raw;
};

static char *dupn(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Splits "head\r\n\r\nbody"; unfolds continuation lines into one line. */
static void split(const char *s, size_t n, char **head_r, char **body_r, size_t *blen_r)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
            sep = s + i;
            break;
        }
    assert_non_null(sep);
    strbuf h;
    strbuf_init(&h);
    for (const char *p = s; p < sep + 2; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == '\t' || p[2] == ' ') && p + 2 < sep) {
            p++;
            continue;
        }
        strbuf_appendc(&h, *p);
    }
    *head_r = strbuf_detach(&h, NULL);
    *body_r = dupn(sep + 4, n - (size_t)(sep + 4 - s));
    *blen_r = n - (size_t)(sep + 4 - s);
}

/* The value of header `name` (first match) in a head, or NULL; caller frees. */
static char *header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = head;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            eol = p + strlen(p);
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            return dupn(v, (size_t)(eol - v));
        }
        p = *eol ? eol + 2 : eol;
    }
    return NULL;
}

static void parse_report(const char *msg, size_t n, struct report *r)
{
    memset(r, 0, sizeof(*r));
    r->raw = dupn(msg, n);
    /* Every line ends in CRLF: no bare LF anywhere. */
    for (size_t i = 0; i < n; i++)
        if (msg[i] == '\n')
            assert_true(i > 0 && msg[i - 1] == '\r');
    char *body;
    size_t blen;
    split(msg, n, &r->head, &body, &blen);
    char *ct = header(r->head, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "multipart/report"));
    assert_non_null(strstr(ct, "report-type=delivery-status"));
    char *b = strstr(ct, "boundary=\"");
    assert_non_null(b);
    b += 10;
    char *bend = strchr(b, '"');
    assert_non_null(bend);
    strbuf delim;
    strbuf_init(&delim);
    strbuf_appends(&delim, "\r\n--");
    strbuf_append(&delim, b, (size_t)(bend - b));
    free(ct);
    /* Parts lie between "\r\n--boundary\r\n" lines; the last delimiter has "--". */
    const char *p = body;
    const char *end = body + blen;
    const char *d = strstr(p, delim.data + 2); /* the first one starts a line */
    assert_non_null(d);
    p = d + delim.len - 2;
    for (;;) {
        assert_true(p + 2 <= end);
        if (p[0] == '-' && p[1] == '-')
            break; /* closing delimiter */
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
        const char *next = NULL;
        for (const char *q = p; q + delim.len <= end; q++)
            if (memcmp(q, delim.data, delim.len) == 0) {
                next = q;
                break;
            }
        assert_non_null(next);
        assert_true(r->nparts < 8);
        struct part *pt = &r->parts[r->nparts++];
        split(p, (size_t)(next - p), &pt->head, &pt->body, &pt->body_len);
        p = next + delim.len;
    }
    strbuf_free(&delim);
    free(body);
}

static void free_report(struct report *r)
{
    free(r->head);
    free(r->raw);
    for (int i = 0; i < r->nparts; i++) {
        free(r->parts[i].head);
        free(r->parts[i].body);
    }
}

/* Field groups of a delivery-status body: group 0 is per-message, then one
 * group per recipient. */
static char *status_field(const struct part *p, int group, const char *name)
{
    const char *s = p->body;
    for (int g = 0; g < group; g++) {
        s = strstr(s, "\r\n\r\n");
        if (s == NULL)
            return NULL;
        s += 4;
    }
    const char *gend = strstr(s, "\r\n\r\n");
    char *grp = gend ? dupn(s, (size_t)(gend - s) + 2) : xstrdup(s);
    /* Unfold: CRLF before a space or tab goes (RFC 5322 2.2.3). */
    size_t w = 0;
    for (size_t i = 0; grp[i]; i++) {
        if (grp[i] == '\r' && grp[i + 1] == '\n' && (grp[i + 2] == ' ' || grp[i + 2] == '\t')) {
            i++;
            continue;
        }
        grp[w++] = grp[i];
    }
    grp[w] = '\0';
    char *v = header(grp, name);
    free(grp);
    return v;
}

static void assert_field(const struct part *p, int group, const char *name, const char *want)
{
    char *v = status_field(p, group, name);
    if (want == NULL) {
        if (v != NULL)
            fail_msg("field %s present: %s", name, v);
        return;
    }
    if (v == NULL)
        fail_msg("field %s missing in group %d", name, group);
    if (strcmp(v, want) != 0)
        fail_msg("field %s is '%s', expected '%s'", name, v, want);
    free(v);
}

static void assert_header(const char *head, const char *name, const char *want)
{
    char *v = header(head, name);
    if (v == NULL)
        fail_msg("header %s missing", name);
    if (strcmp(v, want) != 0)
        fail_msg("header %s is '%s', expected '%s'", name, v, want);
    free(v);
}

/* ---- fixtures ---- */

static const char ORIGINAL[] = "From: alice@a.org\r\n"
                               "To: bob@b.org\r\n"
                               "Subject: hello\r\n"
                               "\r\n"
                               "the body\r\n"
                               "second line\r\n";

static struct bounce_rcpt two_rcpts[] = {
    { "bob@b.org", "rfc822;Bob@B.org", "5.1.1", NULL, "no such user", NULL, NULL },
    { "carol@b.org", NULL, "5.2.2", "smtp", "552 mailbox full", NULL, NULL },
};

static void base_request(struct bounce_request *req)
{
    memset(req, 0, sizeof(*req));
    req->kind = BOUNCE_FAILED;
    req->queue_id = "0123456789ABCDEFGHIJKL";
    req->new_id = "0123456789ABCDEFGHIJKM";
    req->hostname = "mx.a.org";
    req->notice_text = "This is the mail system at host mx.a.org.";
    req->to = "alice@a.org";
    req->sender = "alice@a.org";
    req->arrival = 1700000000;
    req->now = 1700000100;
    req->rcpts = two_rcpts;
    req->nrcpt = 2;
    req->content = ORIGINAL;
    req->content_len = sizeof(ORIGINAL) - 1;
    req->content_total = sizeof(ORIGINAL) - 1;
    req->size_limit = 50000;
}

static void build(const struct bounce_request *req, struct report *r)
{
    strbuf out, err;
    strbuf_init(&out);
    strbuf_init(&err);
    if (bounce_build(req, &out, &err) != 0)
        fail_msg("bounce_build failed: %s", err.data);
    parse_report(out.data, out.len, r);
    strbuf_free(&out);
    strbuf_free(&err);
}

/* ---- tests ---- */

static void test_failure_full(void **state)
{
    (void)state;
    struct bounce_request req;
    base_request(&req);
    struct report r;
    build(&req, &r);
    assert_header(r.head, "From", "MAILER-DAEMON@mx.a.org (Mail Delivery System)");
    assert_header(r.head, "To", "<alice@a.org>");
    assert_header(r.head, "Subject", "Undelivered Mail Returned to Sender");
    assert_header(r.head, "Message-ID", "<0123456789ABCDEFGHIJKM@mx.a.org>");
    assert_header(r.head, "Auto-Submitted", "auto-replied");
    assert_header(r.head, "MIME-Version", "1.0");
    assert_header(r.head, "Content-Transfer-Encoding", "7bit");
    strbuf date;
    strbuf_init(&date);
    bounce_format_date(req.now, &date);
    assert_header(r.head, "Date", date.data);
    assert_int_equal(r.nparts, 3);

    /* 1: human part */
    assert_header(r.parts[0].head, "Content-Type", "text/plain; charset=us-ascii");
    assert_non_null(strstr(r.parts[0].body, "This is the mail system at host mx.a.org."));
    assert_non_null(strstr(r.parts[0].body, "<bob@b.org>: no such user"));
    assert_non_null(strstr(r.parts[0].body, "<carol@b.org>: 552 mailbox full"));

    /* 2: delivery-status */
    struct part *ds = &r.parts[1];
    assert_header(ds->head, "Content-Type", "message/delivery-status");
    assert_field(ds, 0, "Reporting-MTA", "dns; mx.a.org");
    assert_field(ds, 0, "X-Petrel-Queue-ID", "0123456789ABCDEFGHIJKL");
    strbuf_reset(&date);
    bounce_format_date(req.arrival, &date);
    assert_field(ds, 0, "Arrival-Date", date.data);
    assert_field(ds, 0, "Original-Envelope-Id", NULL);
    assert_field(ds, 0, "X-Petrel-Sender", "rfc822; alice@a.org");
    assert_field(ds, 1, "Original-Recipient", "rfc822;Bob@B.org");
    assert_field(ds, 1, "Final-Recipient", "rfc822; bob@b.org");
    assert_field(ds, 1, "Action", "failed");
    assert_field(ds, 1, "Status", "5.1.1");
    assert_field(ds, 1, "Diagnostic-Code", "x-petrel; no such user");
    assert_field(ds, 2, "Original-Recipient", NULL);
    assert_field(ds, 2, "Final-Recipient", "rfc822; carol@b.org");
    assert_field(ds, 2, "Action", "failed");
    assert_field(ds, 2, "Status", "5.2.2");
    assert_field(ds, 2, "Diagnostic-Code", "smtp; 552 mailbox full");
    assert_null(status_field(ds, 3, "Final-Recipient"));

    /* 3: the whole original */
    assert_header(r.parts[2].head, "Content-Type", "message/rfc822");
    assert_int_equal(r.parts[2].body_len, sizeof(ORIGINAL) - 1);
    assert_memory_equal(r.parts[2].body, ORIGINAL, sizeof(ORIGINAL) - 1);
    strbuf_free(&date);
    free_report(&r);
}

static void test_ret_hdrs_returns_headers_only(void **state)
{
    (void)state;
    struct bounce_request req;
    base_request(&req);
    req.ret_hdrs = true;
    req.envid = "env-42";
    struct report r;
    build(&req, &r);
    assert_int_equal(r.nparts, 3);
    assert_header(r.parts[2].head, "Content-Type", "text/rfc822-headers");
    assert_non_null(strstr(r.parts[2].body, "Subject: hello\r\n"));
    assert_null(strstr(r.parts[2].body, "the body"));
    assert_field(&r.parts[1], 0, "Original-Envelope-Id", "env-42");
    free_report(&r);
}

static void test_size_cap(void **state)
{
    (void)state;
    /* A message larger than the limit: only the header comes back. */
    struct bounce_request req;
    base_request(&req);
    req.size_limit = 60;
    req.content_len = 60; /* qmgr reads at most the limit */
    req.content_total = sizeof(ORIGINAL) - 1;
    struct report r;
    build(&req, &r);
    assert_header(r.parts[2].head, "Content-Type", "text/rfc822-headers");
    assert_non_null(strstr(r.parts[2].body, "Subject: hello\r\n"));
    assert_null(strstr(r.parts[2].body, "the body"));
    free_report(&r);

    /* A header section itself over the limit is cut at a line end. */
    base_request(&req);
    req.size_limit = 25;
    req.content_len = 25;
    build(&req, &r);
    assert_header(r.parts[2].head, "Content-Type", "text/rfc822-headers");
    assert_string_equal(r.parts[2].body, "From: alice@a.org\r\n");
    assert_null(strstr(r.raw, "To: bob@b.org"));
    free_report(&r);

    /* Limit 0: no third part at all. */
    base_request(&req);
    req.size_limit = 0;
    req.content_len = 0;
    build(&req, &r);
    assert_int_equal(r.nparts, 2);
    free_report(&r);
}

static void test_null_sender_to_postmaster(void **state)
{
    (void)state;
    struct bounce_request req;
    base_request(&req);
    req.to_postmaster = true;
    req.sender = "";
    req.to = "postmaster@a.org";
    struct report r;
    build(&req, &r);
    assert_header(r.head, "To", "<postmaster@a.org>");
    assert_header(r.head, "Subject", "Postmaster Copy: Undelivered Mail");
    assert_non_null(strstr(r.parts[0].body, "null sender"));
    assert_field(&r.parts[1], 0, "X-Petrel-Sender", NULL);
    free_report(&r);
}

static void test_delay_and_success(void **state)
{
    (void)state;
    struct bounce_rcpt d[] = {
        { "bob@b.org", NULL, "4.4.1", NULL, "connection refused", NULL, NULL },
    };
    struct bounce_request req;
    base_request(&req);
    req.kind = BOUNCE_DELAYED;
    req.rcpts = d;
    req.nrcpt = 1;
    req.retry_until = 1700432000;
    struct report r;
    build(&req, &r);
    assert_header(r.head, "Subject", "Delayed Mail (still being retried)");
    assert_field(&r.parts[1], 1, "Action", "delayed");
    assert_field(&r.parts[1], 1, "Status", "4.4.1");
    strbuf date;
    strbuf_init(&date);
    bounce_format_date(req.retry_until, &date);
    assert_field(&r.parts[1], 1, "Will-Retry-Until", date.data);
    /* Delay notices return the header only, even with RET=FULL. */
    assert_header(r.parts[2].head, "Content-Type", "text/rfc822-headers");
    free_report(&r);

    struct bounce_rcpt s[] = { { "bob@b.org", "rfc822;bob@b.org", "2.0.0", NULL,
                                 "delivered to maildir", NULL, NULL } };
    base_request(&req);
    req.kind = BOUNCE_DELIVERED;
    req.rcpts = s;
    req.nrcpt = 1;
    build(&req, &r);
    assert_header(r.head, "Subject", "Successful Mail Delivery Report");
    assert_field(&r.parts[1], 1, "Action", "delivered");
    assert_field(&r.parts[1], 1, "Status", "2.0.0");
    assert_field(&r.parts[1], 1, "Will-Retry-Until", NULL);
    strbuf_free(&date);
    free_report(&r);
}

static void test_utf8_original_and_addresses(void **state)
{
    (void)state;
    static const char orig[] = "From: j\xc3\xb6rg@a.org\r\nSubject: gr\xc3\xbc\xc3\x9f"
                               "e\r\n\r\nK\xc3\xa4se\r\n";
    struct bounce_rcpt rc[] = {
        { "j\xc3\xbcrgen@b.org", NULL, "5.1.1", NULL, "unknown", NULL, NULL },
    };
    struct bounce_request req;
    base_request(&req);
    req.content = orig;
    req.content_len = req.content_total = sizeof(orig) - 1;
    req.rcpts = rc;
    req.nrcpt = 1;
    struct report r;
    build(&req, &r);
    assert_header(r.head, "Content-Transfer-Encoding", "8bit");
    assert_header(r.parts[1].head, "Content-Type", "message/global-delivery-status");
    assert_field(&r.parts[1], 1, "Final-Recipient", "utf-8; j\xc3\xbcrgen@b.org");
    assert_header(r.parts[2].head, "Content-Type", "message/global");
    assert_header(r.parts[2].head, "Content-Transfer-Encoding", "8bit");
    assert_memory_equal(r.parts[2].body, orig, sizeof(orig) - 1);
    free_report(&r);

    /* 8-bit only in the body: still message/rfc822, labelled 8bit. */
    static const char body8[] = "Subject: x\r\n\r\nK\xc3\xa4se\r\n";
    base_request(&req);
    req.content = body8;
    req.content_len = req.content_total = sizeof(body8) - 1;
    build(&req, &r);
    assert_header(r.parts[1].head, "Content-Type", "message/delivery-status");
    assert_header(r.parts[2].head, "Content-Type", "message/rfc822");
    assert_header(r.parts[2].head, "Content-Transfer-Encoding", "8bit");
    free_report(&r);
}

static void test_hostile_text_is_contained(void **state)
{
    (void)state;
    /* CR/LF, invalid UTF-8 and an overlong diagnostic cannot add lines. */
    static char longdiag[3000];
    memset(longdiag, 'x', sizeof(longdiag) - 1);
    struct bounce_rcpt rc[] = {
        { "bob@b.org", NULL, "5.0.0", NULL, "bad\r\nX-Injected: yes\xff\xfe", NULL, NULL },
        { "eve@b.org", NULL, "5.0.0", NULL, longdiag, NULL, NULL },
    };
    /* The original contains our own boundary text. */
    static const char orig[] = "Subject: x\r\n\r\n--=_petrel_0123456789ABCDEFGHIJKL_0--\r\n";
    struct bounce_request req;
    base_request(&req);
    req.rcpts = rc;
    req.nrcpt = 2;
    req.content = orig;
    req.content_len = req.content_total = sizeof(orig) - 1;
    struct report r;
    build(&req, &r);
    assert_int_equal(r.nparts, 3);
    assert_null(strstr(r.raw, "\r\nX-Injected"));
    assert_field(&r.parts[1], 1, "Diagnostic-Code", "x-petrel; bad  X-Injected: yes??");
    char *v = status_field(&r.parts[1], 2, "Diagnostic-Code");
    assert_non_null(v);
    assert_int_equal(strlen(v), strlen("x-petrel; ") + BOUNCE_MAX_DIAGNOSTIC);
    free(v);
    assert_memory_equal(r.parts[2].body, orig, sizeof(orig) - 1);
    free_report(&r);
}

/* A remote server's reply: Remote-MTA and "Diagnostic-Code: smtp;" with the
 * raw reply, folded at spaces, while the human part keeps the explanation;
 * a local failure next to it keeps x-petrel and its Original-Recipient. The
 * peer's text tries to add header lines. */
static void test_remote_mta_and_folding(void **state)
{
    (void)state;
    strbuf reply;
    strbuf_init(&reply);
    strbuf_appends(&reply, "550-5.1.1 The email account that you tried to reach does not exist.");
    strbuf_appends(&reply, " 550-5.1.1 Please try\r\nX-Injected: yes double-checking the");
    for (int i = 0; i < 20; i++)
        strbuf_appends(&reply, " recipient's");
    strbuf_appends(&reply, " 550 5.1.1 address\ttab \x01" "end");
    struct bounce_rcpt rc[] = {
        { "bob@p.org", NULL, "5.1.1", "smtp", reply.data, "mx.p.org\r\nX-Evil: 1",
          "host mx.p.org[10.78.0.40] said: 550 5.1.1 no such user (in reply to RCPT TO "
          "command)" },
        { "carol@a.org", "rfc822;Carol@A.org", "5.2.2", NULL, "mailbox full", "", NULL },
        { "dave@p.org", NULL, "5.0.0", "smtp\r\nX-Type: 1", "550 nope", NULL, NULL },
    };
    struct bounce_request req;
    base_request(&req);
    req.rcpts = rc;
    req.nrcpt = 3;
    struct report r;
    build(&req, &r);
    assert_int_equal(r.nparts, 3);
    assert_null(strstr(r.raw, "\r\nX-Injected"));
    assert_null(strstr(r.raw, "\r\nX-Evil"));
    assert_null(strstr(r.raw, "\r\nX-Type"));
    const struct part *ds = &r.parts[1];
    assert_field(ds, 1, "Remote-MTA", "dns; mx.p.org  X-Evil: 1");
    char *v = status_field(ds, 1, "Diagnostic-Code");
    assert_non_null(v);
    assert_int_equal(strncmp(v, "smtp; 550-5.1.1 The email account", 33), 0);
    assert_non_null(strstr(v, "Please try  X-Injected: yes double-checking"));
    if (strstr(v, " 550 5.1.1 address tab  end") == NULL)
        fail_msg("diagnostic: %s", v);
    free(v);
    /* Folded: no line over 78 bytes, every continuation starts with a
     * space and is not blank. */
    const char *line = ds->body;
    bool folded = false;
    while (*line) {
        const char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        assert_true(eol - line <= 78);
        if (*line == ' ') {
            folded = true;
            assert_true(strspn(line, " ") < (size_t)(eol - line));
        }
        line = eol + 2;
    }
    assert_true(folded);
    /* The human part explains; the machine part has the raw reply. */
    assert_non_null(strstr(r.parts[0].body, "<bob@p.org>: host mx.p.org[10.78.0.40] said: 550 "
                                            "5.1.1 no such user (in reply to RCPT TO command)"));
    assert_field(ds, 2, "Original-Recipient", "rfc822;Carol@A.org");
    assert_field(ds, 2, "Remote-MTA", NULL);
    assert_field(ds, 2, "Diagnostic-Code", "x-petrel; mailbox full");
    assert_non_null(strstr(r.parts[0].body, "<carol@a.org>: mailbox full"));
    /* An unknown diagnostic type is not copied. */
    assert_field(ds, 3, "Diagnostic-Code", "x-petrel; 550 nope");
    strbuf_free(&reply);
    free_report(&r);
}

static void test_bad_requests(void **state)
{
    (void)state;
    strbuf out, err;
    strbuf_init(&out);
    strbuf_init(&err);
    struct bounce_request req;
    base_request(&req);
    req.nrcpt = 0;
    assert_int_equal(bounce_build(&req, &out, &err), -1);
    assert_string_equal(err.data, "delivery status notification without recipients");
    struct bounce_rcpt bad[] = { { "bob@b.org", NULL, "5.1", NULL, NULL, NULL, NULL } };
    base_request(&req);
    req.rcpts = bad;
    req.nrcpt = 1;
    assert_int_equal(bounce_build(&req, &out, &err), -1);
    assert_non_null(strstr(err.data, "malformed status code"));
    struct bounce_rcpt empty[] = { { "", NULL, "5.1.1", NULL, NULL, NULL, NULL } };
    req.rcpts = empty;
    assert_int_equal(bounce_build(&req, &out, &err), -1);
    assert_non_null(strstr(err.data, "empty recipient"));
    base_request(&req);
    req.hostname = "";
    assert_int_equal(bounce_build(&req, &out, &err), -1);
    assert_int_equal(out.len, 0);
    strbuf_free(&out);
    strbuf_free(&err);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_full),
        cmocka_unit_test(test_ret_hdrs_returns_headers_only),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_null_sender_to_postmaster),
        cmocka_unit_test(test_delay_and_success),
        cmocka_unit_test(test_utf8_original_and_addresses),
        cmocka_unit_test(test_hostile_text_is_contained),
        cmocka_unit_test(test_remote_mta_and_folding),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
