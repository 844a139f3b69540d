/*
 * sendmail_msg.c - reads the message a local program pipes to sendmail and
 * makes it a proper Internet message: CRLF line ends (the queue's form),
 * classic "." end of input unless -i, a size limit, and the headers a mail
 * program may leave out (From:, Date:, Message-ID:). With -t the recipients
 * come from To:, Cc: and Bcc:, and Bcc: is removed.
 */
#include "sendmail.h"
#include "mail/header.h"
#include "mail/received.h"
#include "util/config.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int read_stdin(struct sendmail_ctx *sc, strbuf *raw)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(0, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            sendmail_error("error reading the message: %s", strerror(errno));
            return EXIT_TEMPFAIL;
        }
        if (r == 0)
            return 0;
        strbuf_append(raw, buf, (size_t)r);
        if (sc->size_limit > 0 && raw->len > (size_t)sc->size_limit) {
            sendmail_error("message is larger than message_size_limit (%lld bytes); not sent",
                           sc->size_limit);
            return EXIT_DATAERR;
        }
    }
}

/* LF or CRLF line ends -> CRLF; a line holding only "." ends the input
 * unless -i was given. */
static void to_crlf(const strbuf *raw, bool ignore_dots, strbuf *out)
{
    size_t pos = 0;
    while (pos < raw->len) {
        const char *line = raw->data + pos;
        const char *nl = memchr(line, '\n', raw->len - pos);
        size_t n = nl ? (size_t)(nl - line) : raw->len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (!ignore_dots && n == 1 && line[0] == '.')
            return;
        strbuf_append(out, line, n);
        strbuf_append(out, "\r\n", 2);
    }
}

/* From: "Full Name" <user@myorigin>; the name from -F or the passwd entry. */
static void add_from(struct sendmail_ctx *sc, strbuf *hdrs)
{
    const char *name = sc->opts.full_name ? sc->opts.full_name : sc->gecos;
    strbuf_appends(hdrs, "From: ");
    if (name && *name) {
        strbuf_appendc(hdrs, '"');
        for (const char *p = name; *p && p - name < 256; p++)
            if ((unsigned char)*p >= 0x20 && *p != '"' && *p != '\\')
                strbuf_appendc(hdrs, *p);
        strbuf_appends(hdrs, "\" ");
    }
    strbuf_printf(hdrs, "<%s@%s>\r\n", sc->user, sc->myorigin);
}

int sendmail_read_message(struct sendmail_ctx *sc, strbuf *msg, strbuf *rcpts_nul)
{
    strbuf raw, body, added, err;
    strbuf_init(&raw);
    strbuf_init(&body);
    strbuf_init(&added);
    strbuf_init(&err);
    int rc = read_stdin(sc, &raw);
    if (rc)
        goto out;
    to_crlf(&raw, sc->opts.ignore_dots, &body);

    for (int i = 0; i < sc->opts.nrcpts; i++)
        strbuf_append(rcpts_nul, sc->opts.rcpts[i], strlen(sc->opts.rcpts[i]) + 1);

    /* A leading mbox "From sender date" line is not part of the message. */
    if (body.len >= 5 && memcmp(body.data, "From ", 5) == 0) {
        const char *nl = memchr(body.data, '\n', body.len);
        strbuf_consume(&body, nl ? (size_t)(nl - body.data) + 1 : body.len);
    }

    /* Walk the header section: note what is there, collect -t recipients,
     * and copy every field except Bcc:. */
    bool has_from = false, has_date = false, has_msgid = false;
    size_t pos = 0, copied = 0;
    struct header_field f;
    header_field_init(&f);
    int hr;
    while ((hr = header_next(body.data, body.len, &pos, &f, &err)) == 1) {
        has_from |= header_name_is(&f, "From");
        has_date |= header_name_is(&f, "Date");
        has_msgid |= header_name_is(&f, "Message-ID");
        bool bcc = header_name_is(&f, "Bcc");
        if (sc->opts.extract && (header_name_is(&f, "To") || header_name_is(&f, "Cc") || bcc)) {
            struct header_address *list = NULL;
            size_t n = 0;
            if (header_parse_addresses(f.value.data, f.value.len, &list, &n, &err) < 0) {
                sendmail_error("bad address in the %.*s: header: %s", (int)f.name_len, f.name,
                               err.data);
                rc = EXIT_DATAERR;
                break;
            }
            for (size_t k = 0; k < n; k++)
                strbuf_append(rcpts_nul, list[k].addr.data, list[k].addr.len + 1);
            header_addresses_free(&list, n);
        }
        if (bcc) {
            strbuf_append(msg, body.data + copied, f.start - copied);
            copied = f.end;
        }
    }
    header_field_free(&f);
    size_t fields_end = 0, body_start = 0;
    if (rc == 0 && (hr < 0 || header_section_end(body.data, body.len, &fields_end, &body_start, &err) < 0)) {
        sendmail_error("malformed header section: %s", err.data);
        rc = EXIT_DATAERR;
    }
    if (rc)
        goto out;
    /* Missing headers go after the ones the program wrote. */
    if (!has_from)
        add_from(sc, &added);
    if (!has_date) {
        strbuf_appends(&added, "Date: ");
        rfc5322_date(&added, time(NULL));
        strbuf_appends(&added, "\r\n");
    }
    if (!has_msgid) {
        strbuf_appends(&added, "Message-ID: ");
        if (header_make_message_id(&added, sc->myhostname) < 0) {
            sendmail_error("cannot make a Message-ID for host name \"%s\"", sc->myhostname);
            rc = EXIT_CONFIG;
            goto out;
        }
        strbuf_appends(&added, "\r\n");
    }
    strbuf_append(msg, body.data + copied, fields_end - copied);
    strbuf_append_sb(msg, &added);
    /* No empty line between header and body in the input: make one. */
    if (body_start == fields_end)
        strbuf_appends(msg, "\r\n");
    strbuf_append(msg, body.data + fields_end, body.len - fields_end);
    if (sc->size_limit > 0 && msg->len > (size_t)sc->size_limit) {
        sendmail_error("message is larger than message_size_limit (%lld bytes); not sent",
                       sc->size_limit);
        rc = EXIT_DATAERR;
    }
out:
    strbuf_free(&raw);
    strbuf_free(&body);
    strbuf_free(&added);
    strbuf_free(&err);
    return rc;
}
