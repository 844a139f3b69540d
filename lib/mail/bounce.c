/*
 * bounce.c - RFC 3464 delivery status notifications; see bounce.h.
 *
 * Everything that comes from outside (addresses, diagnostics from a peer,
 * the original message) is copied through a cleaner or into a part whose
 * boundary is checked not to occur in it, so no input can add a header line
 * or end a MIME part early.
 */
#include "mail/bounce.h"
#include "util/utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void bounce_format_date(time_t t, strbuf *out)
{
    struct tm tm;
    char buf[64];
    localtime_r(&t, &tm);
    /* %a and %b are English in the C locale, which daemons never change. */
    if (strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        buf[0] = '\0';
    strbuf_appends(out, buf);
}

static bool has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* Appends s made safe for one header or text line: control bytes become a
 * space, invalid UTF-8 '?', and at most max bytes (cut on a character). */
static void append_clean(strbuf *out, const char *s, size_t max)
{
    size_t n = strlen(s), i = 0, used = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (used + 1 > max)
                break;
            strbuf_appendc(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
            i++;
            used++;
            continue;
        }
        uint32_t cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0 || utf8_is_c1(cp)) {
            if (used + 1 > max)
                break;
            strbuf_appendc(out, '?');
            i += len ? len : 1;
            used++;
            continue;
        }
        if (used + len > max)
            break;
        strbuf_append(out, s + i, len);
        i += len;
        used += len;
    }
}

static bool status_valid(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
        return false;
    const char *p = s + 1;
    for (int part = 0; part < 2; part++) {
        if (*p++ != '.')
            return false;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
        if (digits < 1 || digits > 3)
            return false;
    }
    return *p == '\0';
}

/* Length of the header section of the original (up to and including the
 * empty line, or everything we have when there is none in it). */
static size_t header_length(const char *c, size_t n)
{
    if (n >= 2 && c[0] == '\r' && c[1] == '\n')
        return 2;
    for (size_t i = 0; i + 3 < n; i++)
        if (c[i] == '\r' && c[i + 1] == '\n' && c[i + 2] == '\r' && c[i + 3] == '\n')
            return i + 4;
    return n;
}

/* Cuts n down to limit at the end of a line (after a LF), so a returned
 * header section never ends in the middle of a header; `whole` says that
 * the n bytes end where the header section ends. */
static size_t cut_at_line(const char *c, size_t n, size_t limit, bool whole)
{
    if (n <= limit && whole)
        return n;
    if (limit > n)
        limit = n;
    for (size_t i = limit; i > 0; i--)
        if (c[i - 1] == '\n')
            return i;
    return 0;
}

static const char *subject_of(const struct bounce_request *req)
{
    if (req->to_postmaster)
        return "Postmaster Copy: Undelivered Mail";
    switch (req->kind) {
    case BOUNCE_DELAYED: return "Delayed Mail (still being retried)";
    case BOUNCE_DELIVERED: return "Successful Mail Delivery Report";
    default: return "Undelivered Mail Returned to Sender";
    }
}

static const char *action_of(enum bounce_kind k)
{
    return k == BOUNCE_DELAYED ? "delayed" : k == BOUNCE_DELIVERED ? "delivered" : "failed";
}

static void human_part(const struct bounce_request *req, strbuf *t)
{
    if (req->notice_text && *req->notice_text) {
        append_clean(t, req->notice_text, 4096);
        strbuf_appends(t, "\r\n\r\n");
    }
    switch (req->kind) {
    case BOUNCE_DELAYED:
        strbuf_appends(t, "Your message could not be delivered yet to the recipients below.\r\n"
                          "The mail system will keep trying");
        if (req->retry_until) {
            strbuf_appends(t, " until ");
            bounce_format_date(req->retry_until, t);
        }
        strbuf_appends(t, ";\r\nyou do not need to send it again.\r\n");
        break;
    case BOUNCE_DELIVERED:
        strbuf_appends(t, "Your message was delivered to the recipients below, as you asked\r\n"
                          "with a delivery status notification request.\r\n");
        break;
    default:
        if (req->to_postmaster)
            strbuf_appends(t, "A message from the null sender (usually itself a delivery\r\n"
                              "status notification) could not be delivered to the\r\n"
                              "recipients below. It is not returned to its sender, to\r\n"
                              "avoid a loop of notifications.\r\n");
        else
            strbuf_appends(t, "Your message could not be delivered to the recipients below.\r\n"
                              "The reasons follow; the message or its header is attached.\r\n");
    }
    strbuf_appends(t, "\r\n");
    for (size_t i = 0; i < req->nrcpt; i++) {
        const struct bounce_rcpt *r = &req->rcpts[i];
        strbuf_appendc(t, '<');
        append_clean(t, r->address, 4096);
        strbuf_appends(t, ">: ");
        if (r->text && *r->text)
            append_clean(t, r->text, BOUNCE_MAX_DIAGNOSTIC);
        else if (r->diagnostic && *r->diagnostic)
            append_clean(t, r->diagnostic, BOUNCE_MAX_DIAGNOSTIC);
        else
            strbuf_appends(t, action_of(req->kind));
        strbuf_appends(t, "\r\n");
    }
}

/* An address field value: "rfc822;addr" or, for a non-ASCII address,
 * "utf-8;addr" (RFC 6533 section 3). */
static void address_field(strbuf *o, const char *name, const char *addr)
{
    strbuf_printf(o, "%s: %s; ", name, has_8bit(addr, strlen(addr)) ? "utf-8" : "rfc822");
    append_clean(o, addr, 4096);
    strbuf_appends(o, "\r\n");
}

/* Appends "name: value\r\n" with value cleaned (cut at max) and folded
 * before a space wherever a line would pass FOLD_WIDTH bytes (RFC 5322
 * 2.2.3): a reader that unfolds gets the value back unchanged, and no
 * continuation line is blank. A word longer than a line stays whole (the
 * cap keeps every line under 998 bytes). */
#define FOLD_WIDTH 78
static void folded_field(strbuf *o, const char *name, const char *value, size_t max)
{
    strbuf v;
    strbuf_init(&v);
    append_clean(&v, value, max);
    size_t start = o->len;
    strbuf_printf(o, "%s: ", name);
    size_t col = o->len - start;
    size_t i = 0;
    while (i < v.len) {
        /* The next segment: the spaces before a word, then the word. */
        size_t j = i;
        while (j < v.len && v.data[j] == ' ')
            j++;
        size_t k = j;
        while (k < v.len && v.data[k] != ' ')
            k++;
        if (j > i && k > j && col + (k - i) > FOLD_WIDTH) {
            /* Fold before the last space of the run, so the continuation
             * line starts with white space and holds the word. */
            strbuf_append(o, v.data + i, j - i - 1);
            strbuf_appends(o, "\r\n");
            strbuf_append(o, v.data + j - 1, k - j + 1);
            col = k - j + 1;
        } else {
            strbuf_append(o, v.data + i, k - i);
            col += k - i;
        }
        i = k;
    }
    strbuf_appends(o, "\r\n");
    strbuf_free(&v);
}

static void status_part(const struct bounce_request *req, strbuf *o)
{
    strbuf_appends(o, "Reporting-MTA: dns; ");
    append_clean(o, req->hostname, 255);
    strbuf_appends(o, "\r\nX-Petrel-Queue-ID: ");
    append_clean(o, req->queue_id, 64);
    strbuf_appends(o, "\r\n");
    if (req->envid && *req->envid) {
        strbuf_appends(o, "Original-Envelope-Id: ");
        append_clean(o, req->envid, 4096);
        strbuf_appends(o, "\r\n");
    }
    if (*req->sender) {
        strbuf_appends(o, "X-Petrel-Sender: rfc822; ");
        append_clean(o, req->sender, 4096);
        strbuf_appends(o, "\r\n");
    }
    strbuf_appends(o, "Arrival-Date: ");
    bounce_format_date(req->arrival, o);
    strbuf_appends(o, "\r\n");
    for (size_t i = 0; i < req->nrcpt; i++) {
        const struct bounce_rcpt *r = &req->rcpts[i];
        strbuf_appends(o, "\r\n");
        if (r->orcpt && *r->orcpt) {
            strbuf_appends(o, "Original-Recipient: ");
            /* Stored as given: "type;address"; a bare address gets rfc822. */
            if (strchr(r->orcpt, ';') == NULL)
                strbuf_appends(o, "rfc822;");
            append_clean(o, r->orcpt, 4096);
            strbuf_appends(o, "\r\n");
        }
        address_field(o, "Final-Recipient", r->address);
        strbuf_printf(o, "Action: %s\r\nStatus: %s\r\n", action_of(req->kind), r->status);
        if (r->remote_mta && *r->remote_mta) {
            strbuf_appends(o, "Remote-MTA: dns; ");
            append_clean(o, r->remote_mta, 255);
            strbuf_appends(o, "\r\n");
        }
        if (r->diagnostic && *r->diagnostic) {
            /* The type is a fixed word of ours; only the text is foreign. */
            const char *type = r->diag_type && strcmp(r->diag_type, "smtp") == 0 ? "smtp"
                                                                                : "x-petrel";
            strbuf head;
            strbuf_init(&head);
            strbuf_printf(&head, "%s; ", type);
            append_clean(&head, r->diagnostic, BOUNCE_MAX_DIAGNOSTIC);
            folded_field(o, "Diagnostic-Code", head.data, BOUNCE_MAX_DIAGNOSTIC + 16);
            strbuf_free(&head);
        }
        if (req->kind == BOUNCE_DELAYED && req->retry_until) {
            strbuf_appends(o, "Will-Retry-Until: ");
            bounce_format_date(req->retry_until, o);
            strbuf_appends(o, "\r\n");
        }
    }
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

int bounce_build(const struct bounce_request *req, strbuf *out, strbuf *err)
{
    if (req->nrcpt == 0 || req->rcpts == NULL) {
        strbuf_sets(err, "delivery status notification without recipients");
        return -1;
    }
    if (req->hostname == NULL || *req->hostname == '\0' || req->queue_id == NULL ||
        req->to == NULL || *req->to == '\0' || req->sender == NULL) {
        strbuf_sets(err, "delivery status notification without host name, queue id or recipient");
        return -1;
    }
    bool utf8_addrs = has_8bit(req->to, strlen(req->to));
    for (size_t i = 0; i < req->nrcpt; i++) {
        const struct bounce_rcpt *r = &req->rcpts[i];
        if (r->address == NULL || *r->address == '\0') {
            strbuf_sets(err, "delivery status notification for an empty recipient address");
            return -1;
        }
        if (!status_valid(r->status)) {
            strbuf_sets(err, "delivery status notification with a malformed status code");
            return -1;
        }
        if (has_8bit(r->address, strlen(r->address)) ||
            (r->orcpt && has_8bit(r->orcpt, strlen(r->orcpt))))
            utf8_addrs = true;
    }

    /* What of the original goes back. */
    size_t have = req->content_len;
    const char *c = req->content ? req->content : "";
    size_t hlen = header_length(c, have);
    bool full = req->kind == BOUNCE_FAILED && !req->ret_hdrs &&
                req->content_total <= req->size_limit && req->content_total == have;
    bool whole = hlen < have || have == req->content_total;
    size_t rlen = full ? have : cut_at_line(c, hlen, req->size_limit, whole);
    bool return_part = req->size_limit > 0 && (full || rlen > 0);
    bool hdr8 = has_8bit(c, full ? hlen : rlen);
    bool body8 = full && has_8bit(c + hlen, have - hlen);

    strbuf human, status;
    strbuf_init(&human);
    strbuf_init(&status);
    human_part(req, &human);
    status_part(req, &status);
    bool human8 = has_8bit(human.data, human.len);

    /* A boundary that occurs in none of the parts. */
    strbuf boundary;
    strbuf_init(&boundary);
    for (unsigned n = 0;; n++) {
        strbuf_reset(&boundary);
        strbuf_printf(&boundary, "=_petrel_%s_%u", req->queue_id, n);
        if (!contains(human.data, human.len, boundary.data) &&
            !contains(status.data, status.len, boundary.data) &&
            !(return_part && contains(c, rlen, boundary.data)))
            break;
    }

    bool any8 = human8 || utf8_addrs || (return_part && (hdr8 || body8));
    strbuf_appends(out, "From: MAILER-DAEMON@");
    append_clean(out, req->hostname, 255);
    strbuf_appends(out, " (Mail Delivery System)\r\nTo: <");
    append_clean(out, req->to, 4096);
    strbuf_printf(out, ">\r\nSubject: %s\r\nDate: ", subject_of(req));
    bounce_format_date(req->now, out);
    strbuf_appends(out, "\r\nMessage-ID: <");
    append_clean(out, req->new_id ? req->new_id : req->queue_id, 64);
    strbuf_appendc(out, '@');
    append_clean(out, req->hostname, 255);
    strbuf_appends(out, ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    strbuf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                       "\tboundary=\"%s\"\r\n", boundary.data);
    strbuf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", any8 ? "8bit" : "7bit");
    strbuf_appends(out, "This is a MIME-encapsulated message.\r\n\r\n");

    strbuf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
                       "Content-Type: text/plain; charset=%s\r\n"
                       "Content-Transfer-Encoding: %s\r\n\r\n",
                  boundary.data, human8 ? "utf-8" : "us-ascii", human8 ? "8bit" : "7bit");
    strbuf_append_sb(out, &human);

    strbuf_printf(out, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
                       "Content-Type: %s\r\n",
                  boundary.data,
                  utf8_addrs ? "message/global-delivery-status" : "message/delivery-status");
    if (utf8_addrs)
        strbuf_appends(out, "Content-Transfer-Encoding: 8bit\r\n");
    strbuf_appends(out, "\r\n");
    strbuf_append_sb(out, &status);

    if (return_part) {
        const char *type = full ? (hdr8 ? "message/global" : "message/rfc822")
                                : (hdr8 ? "message/global-headers" : "text/rfc822-headers");
        strbuf_printf(out, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n",
                      boundary.data, full ? "Undelivered Message" : "Message Headers", type);
        if (hdr8 || body8)
            strbuf_appends(out, "Content-Transfer-Encoding: 8bit\r\n");
        strbuf_appends(out, "\r\n");
        strbuf_append(out, c, rlen);
        if (rlen < 2 || c[rlen - 2] != '\r' || c[rlen - 1] != '\n')
            strbuf_appends(out, "\r\n");
    }
    strbuf_printf(out, "\r\n--%s--\r\n", boundary.data);
    strbuf_free(&human);
    strbuf_free(&status);
    strbuf_free(&boundary);
    return 0;
}
