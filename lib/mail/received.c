/*
 * received.c - the Received: trace header and RFC 5322 dates; see received.h.
 */
#include "mail/received.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

void rfc5322_date(strbuf *out, time_t t)
{
    static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    strbuf_printf(out, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
                  off / 60, off % 60);
}

const char *received_protocol(const char *base, bool smtputf8, bool tls, bool auth)
{
    if (strcmp(base, "ESMTP") != 0 && strcmp(base, "SMTP") != 0)
        return base;
    if (smtputf8) {
        static const char *u[] = { "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" };
        return u[(tls ? 2 : 0) + (auth ? 1 : 0)];
    }
    if (strcmp(base, "SMTP") == 0 && !tls && !auth)
        return "SMTP";
    static const char *e[] = { "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" };
    return e[(tls ? 2 : 0) + (auth ? 1 : 0)];
}

/* Client-supplied text inside a header comment: printable, no parentheses
 * or backslashes that could end the comment early, no line breaks. */
static void append_safe(strbuf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '(' || c == ')' || c == '\\')
            strbuf_appendc(out, '?');
        else
            strbuf_appendc(out, (char)c);
    }
}

void received_header(strbuf *out, const struct received_info *ri)
{
    strbuf_appends(out, "Received: ");
    if (ri->client_addr) {
        strbuf_appends(out, "from ");
        append_safe(out, ri->helo && *ri->helo ? ri->helo : ri->client_addr);
        strbuf_appends(out, " (");
        append_safe(out, ri->client_name ? ri->client_name : "unknown");
        strbuf_printf(out, " [%s])\r\n\t", ri->client_addr);
    }
    strbuf_printf(out, "by %s (%s) with %s", ri->by, ri->mail_name ? ri->mail_name : "Petrel",
                  received_protocol(ri->protocol, ri->smtputf8, ri->tls, ri->auth));
    if (ri->queue_id)
        strbuf_printf(out, " id %s", ri->queue_id);
    if (ri->tls && ri->tls_details) {
        strbuf_appends(out, "\r\n\t(");
        append_safe(out, ri->tls_details);
        strbuf_appendc(out, ')');
    }
    if (ri->for_rcpt) {
        strbuf_appends(out, "\r\n\tfor <");
        /* An envelope address has no CR/LF/controls (the parser refuses
         * them); '>' cannot appear unquoted, but keep the header sane. */
        for (const char *p = ri->for_rcpt; *p; p++)
            strbuf_appendc(out, (unsigned char)*p < 0x20 || *p == '>' ? '?' : *p);
        strbuf_appendc(out, '>');
    }
    strbuf_appends(out, "; ");
    rfc5322_date(out, ri->when);
    strbuf_appends(out, "\r\n");
}
