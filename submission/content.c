/*
 * content.c - what submission does to message content on its way into the
 * queue file: the header section is held in memory (up to
 * SUBMISSION_HEADER_MAX) until it is complete, then
 *   - every address of From: and Sender: must belong to the authenticated
 *     user (sender_owned), else 553 5.7.1 and the message is not queued;
 *   - missing Date: and Message-ID: are added (RFC 6409 §8.2, §8.3), and a
 *     missing From: is made from the envelope sender (RFC 5322 requires
 *     one), at the end of the header fields;
 *   - the header and everything after it are streamed to the queue sink.
 * The queue sink has written the Received: header already.
 *
 * The header section ends at the first empty line or at the first line that
 * is not a field (lib/mail/header decides, the same parser the rest of
 * Petrel uses); in the latter case an empty line is written before that
 * line, so the added fields do not turn it into header text.
 */
#include "submission.h"
#include "mail/header.h"
#include "mail/received.h"
#include "util/log.h"

#include <string.h>
#include <strings.h>
#include <time.h>

void submission_content_begin(struct submission_session *ss)
{
    strbuf_reset(&ss->head);
    ss->head_done = false;
    ss->head_failed = false;
}

/* The queue id for log lines: the file being written, or NULL (NOQUEUE). */
static const char *queue_id_of(const struct submission_session *ss)
{
    return ss->conn.sink.w != NULL ? ss->conn.sink.id : NULL;
}

void submission_reject_sender(struct submission_session *ss, const char *addr, const char *login,
                              const char *where, struct smtp_reply *r)
{
    smtp_reply_set(r, 553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s", addr,
                   login);
    log_event(queue_id_of(ss),
              "reject: %s from %s: 553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
              where, ss->conn.client_log, addr, login);
}

/* Checks one address of From:/Sender:. Returns 0 or -1 with r set. */
static int check_address(struct submission_session *ss, const struct header_address *ha,
                         const char *login, const char *field, struct smtp_reply *r)
{
    strbuf text, why;
    strbuf_init(&text);
    strbuf_init(&why);
    strbuf_append_sb(&text, &ha->addr);
    if (!ha->has_domain)
        strbuf_printf(&text, "@%s", ss->settings->myorigin);
    struct address a;
    address_init(&a);
    int rc = 0;
    if (address_parse_mailbox(text.data, text.len, ADDRESS_ALLOW_UTF8, &a, NULL) < 0) {
        submission_reject_sender(ss, text.data, login, field, r);
        rc = -1;
    } else {
        switch (sender_owned(ss->settings, login, a.local.data, a.domain.data, &why)) {
        case SENDER_OWNED:
            break;
        case SENDER_NOT_OWNED:
            submission_reject_sender(ss, text.data, login, field, r);
            rc = -1;
            break;
        case SENDER_LOOKUP_ERROR:
            log_warning("sender login lookup for <%s> failed: %s", text.data, why.data);
            smtp_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure", text.data);
            rc = -1;
            break;
        }
    }
    address_free(&a);
    strbuf_free(&text);
    strbuf_free(&why);
    return rc;
}

/* Checks a From:/Sender: field's addresses. Returns 0 or -1 with r set. */
static int check_field(struct submission_session *ss, const struct header_field *f,
                       const char *login, const char *field, struct smtp_reply *r)
{
    struct header_address *list = NULL;
    size_t n = 0;
    strbuf err;
    strbuf_init(&err);
    int rc = 0;
    if (header_parse_addresses(f->value.data, f->value.len, &list, &n, &err) < 0) {
        log_event(queue_id_of(ss), "reject: %s from %s: 554 5.6.0 bad %s header: %s", field,
                  ss->conn.client_log, field, err.data);
        smtp_reply_set(r, 554, "5.6.0", "Error: malformed %s header", field);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_address(ss, &list[i], login, field, r);
    header_addresses_free(&list, n);
    strbuf_free(&err);
    return rc;
}

/* The header section is complete in ss->head[0..len) (what follows is body).
 * Checks it and writes it out with the added fields, then whatever of the
 * buffer follows. Returns 0 or -1 with r set. */
static int flush_header(struct submission_session *ss, const struct smtp_envelope *env,
                        const char *login, size_t len, struct smtp_reply *r)
{
    const char *msg = ss->head.data;
    size_t fields_end = 0, body = 0;
    strbuf err;
    strbuf_init(&err);
    if (header_section_end(msg, len, &fields_end, &body, &err) < 0) {
        log_event(queue_id_of(ss), "reject: END-OF-MESSAGE from %s: 554 5.6.0 malformed header: %s",
                  ss->conn.client_log, err.data);
        smtp_reply_set(r, 554, "5.6.0", "Error: malformed message header");
        strbuf_free(&err);
        return -1;
    }
    bool has_date = false, has_msgid = false, has_from = false;
    struct header_field f;
    header_field_init(&f);
    int rc = 0;
    size_t pos = 0;
    while (rc == 0 && pos < fields_end && header_next(msg, fields_end, &pos, &f, &err) == 1) {
        if (header_name_is(&f, "Date"))
            has_date = true;
        else if (header_name_is(&f, "Message-ID"))
            has_msgid = true;
        else if (header_name_is(&f, "From")) {
            has_from = true;
            rc = check_field(ss, &f, login, "From:", r);
        } else if (header_name_is(&f, "Sender"))
            rc = check_field(ss, &f, login, "Sender:", r);
    }
    header_field_free(&f);
    strbuf_free(&err);
    if (rc < 0)
        return -1;

    strbuf add;
    strbuf_init(&add);
    if (!has_from && !env->sender.is_null) {
        strbuf_appends(&add, "From: ");
        address_format(&add, &env->sender);
        strbuf_appends(&add, "\r\n");
    }
    if (!has_date) {
        strbuf_appends(&add, "Date: ");
        rfc5322_date(&add, time(NULL));
        strbuf_appends(&add, "\r\n");
    }
    if (!has_msgid) {
        strbuf_appends(&add, "Message-ID: ");
        if (header_make_message_id(&add, ss->settings->base.myhostname) < 0)
            header_make_message_id(&add, "localhost");
        strbuf_appends(&add, "\r\n");
    }
    /* A body that starts without the empty line needs one now. */
    if (body == fields_end && body < ss->head.len)
        strbuf_appends(&add, "\r\n");
    rc = queue_sink_write(&ss->conn.sink, msg, fields_end, r);
    if (rc == 0 && add.len > 0)
        rc = queue_sink_write(&ss->conn.sink, add.data, add.len, r);
    if (rc == 0 && ss->head.len > fields_end)
        rc = queue_sink_write(&ss->conn.sink, msg + fields_end, ss->head.len - fields_end, r);
    strbuf_free(&add);
    ss->head_done = true;
    strbuf_free(&ss->head); /* give the memory back for the rest */
    strbuf_init(&ss->head);
    return rc;
}

/* Where the header section ends for sure: an empty line (CRLF CRLF, or CRLF
 * at the very start). Searches from `from` (bytes before were searched). */
static bool blank_line_seen(const strbuf *h, size_t from)
{
    if (h->len >= 2 && h->data[0] == '\r' && h->data[1] == '\n')
        return true;
    size_t i = from > 3 ? from - 3 : 0;
    for (; i + 4 <= h->len; i++)
        if (memcmp(h->data + i, "\r\n\r\n", 4) == 0)
            return true;
    return false;
}

/* The end of the last complete line in h, or 0. */
static size_t last_line_end(const strbuf *h)
{
    for (size_t i = h->len; i >= 2; i--)
        if (h->data[i - 2] == '\r' && h->data[i - 1] == '\n')
            return i;
    return 0;
}

int submission_content_write(struct submission_session *ss, const struct smtp_envelope *env,
                             const char *login, const char *p, size_t n, struct smtp_reply *r)
{
    if (ss->head_failed)
        return -1;
    if (ss->head_done)
        return queue_sink_write(&ss->conn.sink, p, n, r);
    size_t old = ss->head.len;
    strbuf_append(&ss->head, p, n);
    int rc = 0;
    if (blank_line_seen(&ss->head, old)) {
        rc = flush_header(ss, env, login, ss->head.len, r);
    } else if (ss->head.len > SUBMISSION_HEADER_MAX) {
        /* No empty line yet: the header may still have ended at a line that
         * is not a field. Otherwise it is too long. */
        size_t upto = last_line_end(&ss->head);
        size_t fields_end = 0, body = 0;
        if (upto > 0 && header_section_end(ss->head.data, upto, &fields_end, &body, NULL) == 0 &&
            body < upto) {
            rc = flush_header(ss, env, login, ss->head.len, r);
        } else {
            log_event(queue_id_of(ss), "reject: END-OF-MESSAGE from %s: 552 5.3.4 header section "
                      "longer than %u bytes", ss->conn.client_log, SUBMISSION_HEADER_MAX);
            smtp_reply_set(r, 552, "5.3.4", "Error: message header section exceeds %u bytes",
                           SUBMISSION_HEADER_MAX);
            rc = -1;
        }
    }
    if (rc < 0)
        ss->head_failed = true;
    return rc;
}

int submission_content_end(struct submission_session *ss, const struct smtp_envelope *env,
                           const char *login, struct smtp_reply *r)
{
    if (ss->head_failed)
        return -1;
    if (ss->head_done)
        return 0;
    int rc = flush_header(ss, env, login, ss->head.len, r);
    if (rc < 0)
        ss->head_failed = true;
    return rc;
}
