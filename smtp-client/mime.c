/*
 * mime.c - 8-bit to 7-bit MIME downgrade (RFC 6152 section 3: a message
 * with 8-bit content must be converted or returned when the server does not
 * offer 8BITMIME; Postfix converts, and so does this file).
 *
 * The message is read into memory (this path is rare and the size is
 * bounded by message_size_limit) and rewritten entity by entity:
 *
 *  - multipart/ (with a boundary): the headers are kept, each body part is
 *    converted on its own, preamble and epilogue are kept;
 *  - message/rfc822 (7bit, 8bit or no encoding): the inner message is
 *    converted (RFC 2046 5.2.1 forbids encoding message/rfc822 itself);
 *  - any other part whose body has 8-bit bytes and whose encoding is none,
 *    7bit, 8bit or binary: the body becomes quoted-printable (RFC 2045 6.7)
 *    and its Content-Transfer-Encoding header says so.
 *
 * A top-level message without MIME headers is text/plain: it gets
 * "MIME-Version: 1.0" and, without a Content-Type, "Content-Type:
 * text/plain; charset=unknown-8bit" (RFC 1428: the charset is not known).
 * 8-bit bytes in header fields are left as they are (as Postfix does): the
 * charset is unknown, so no RFC 2047 encoded word can be made honestly.
 * Nesting deeper than MIME_MAX_DEPTH is copied as it is.
 */
#include "smtpc.h"
#include "mail/queue_file.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIME_MAX_DEPTH 20
#define QP_LINE_MAX 76

/* One header field (with its continuation lines): [p, p+len). */
struct field {
    const char *p;
    size_t len;
};

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl + 1 : end;
}

/* True for an empty line ("\n", "\r\n"). */
static bool blank(const char *p, const char *e)
{
    return e - p == 0 || (e - p == 1 && p[0] == '\n') ||
           (e - p == 2 && p[0] == '\r' && p[1] == '\n');
}

static bool has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] & 0x80)
            return true;
    return false;
}

/* Is field f named name (case-insensitive)? */
static bool named(const struct field *f, const char *name)
{
    size_t n = strlen(name);
    return f->len > n && strncasecmp(f->p, name, n) == 0 && f->p[n] == ':';
}

/* The field's value, unfolded, lowercased, into v. */
static void value_of(const struct field *f, strbuf *v)
{
    strbuf_reset(v);
    const char *p = memchr(f->p, ':', f->len) + 1;
    for (; p < f->p + f->len; p++)
        if (*p != '\r' && *p != '\n')
            strbuf_appendc(v, (char)tolower((unsigned char)*p));
}

/* A parameter of a (lowercased) Content-Type value; the boundary's case is
 * taken from the original field. Returns false when absent. */
static bool ct_param(const struct field *f, const char *name, strbuf *out)
{
    strbuf orig;
    strbuf_init(&orig);
    const char *p = memchr(f->p, ':', f->len) + 1;
    for (; p < f->p + f->len; p++)
        if (*p != '\r' && *p != '\n')
            strbuf_appendc(&orig, *p);
    bool found = false;
    size_t n = strlen(name);
    for (const char *s = strchr(orig.data, ';'); s && !found; s = strchr(s + 1, ';')) {
        const char *k = s + 1;
        while (*k == ' ' || *k == '\t')
            k++;
        if (strncasecmp(k, name, n) != 0)
            continue;
        const char *e = k + n;
        while (*e == ' ' || *e == '\t')
            e++;
        if (*e != '=')
            continue;
        e++;
        while (*e == ' ' || *e == '\t')
            e++;
        strbuf_reset(out);
        if (*e == '"') {
            for (e++; *e && *e != '"'; e++) {
                if (*e == '\\' && e[1])
                    e++;
                strbuf_appendc(out, *e);
            }
        } else {
            while (*e && *e != ';' && *e != ' ' && *e != '\t')
                strbuf_appendc(out, *e++);
        }
        found = out->len > 0;
    }
    strbuf_free(&orig);
    return found;
}

/* Quoted-printable of body[0..n): hard line breaks become CRLF, lines are
 * kept under 76 characters with soft breaks, spaces and tabs before a line
 * end are encoded. */
static void qp_encode(const char *body, size_t n, strbuf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *p = body, *end = body + n;
    while (p < end) {
        const char *e = line_end(p, end);
        bool eol = e > p && e[-1] == '\n';
        const char *t = eol ? e - 1 : e; /* the line's text ends here */
        if (eol && t > p && t[-1] == '\r')
            t--;
        size_t col = 0;
        for (const char *c = p; c < t; c++) {
            unsigned char ch = (unsigned char)*c;
            char enc[4];
            size_t len;
            bool last = c + 1 == t;
            if ((ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !last)) {
                enc[0] = (char)ch;
                len = 1;
            } else {
                enc[0] = '=';
                enc[1] = hex[ch >> 4];
                enc[2] = hex[ch & 15];
                len = 3;
            }
            /* Leave room for a soft break "=" within the limit. */
            if (col + len > QP_LINE_MAX - 1) {
                strbuf_appends(out, "=\r\n");
                col = 0;
            }
            strbuf_append(out, enc, len);
            col += len;
        }
        if (eol)
            strbuf_appends(out, "\r\n");
        p = e;
    }
}

static void convert(const char *p, size_t n, strbuf *out, int depth, bool top);

/* The body of a multipart entity: parts between "--boundary" lines. */
static void convert_multipart(const char *body, size_t n, const strbuf *boundary, strbuf *out,
                              int depth)
{
    const char *p = body, *end = body + n;
    const char *part = NULL; /* start of the current part, NULL in the preamble */
    bool closed = false;
    while (p < end) {
        const char *e = line_end(p, end);
        bool delim = false, final = false;
        if (!closed && (size_t)(e - p) >= boundary->len + 2 && p[0] == '-' && p[1] == '-' &&
            memcmp(p + 2, boundary->data, boundary->len) == 0) {
            const char *r = p + 2 + boundary->len;
            if (e - r >= 2 && r[0] == '-' && r[1] == '-') {
                final = true;
                r += 2;
            }
            delim = true;
            for (; r < e; r++) /* transport padding only */
                if (*r != ' ' && *r != '\t' && *r != '\r' && *r != '\n')
                    delim = false;
        }
        if (delim) {
            if (part != NULL)
                convert(part, (size_t)(p - part), out, depth + 1, false);
            strbuf_append(out, p, (size_t)(e - p));
            part = final ? NULL : e;
            closed = final;
        } else if (part == NULL) {
            strbuf_append(out, p, (size_t)(e - p)); /* preamble, epilogue */
        }
        p = e;
    }
    if (part != NULL) /* no closing delimiter: the last part runs to the end */
        convert(part, (size_t)(end - part), out, depth + 1, false);
}

/* One entity (headers, empty line, body). */
static void convert(const char *p, size_t n, strbuf *out, int depth, bool top)
{
    const char *end = p + n;
    if (depth > MIME_MAX_DEPTH || !has_8bit(p, n)) {
        strbuf_append(out, p, n);
        return;
    }
    /* The header fields, up to the empty line (a part may have none). */
    struct field *f = NULL;
    size_t nf = 0;
    const char *q = p;
    while (q < end) {
        const char *e = line_end(q, end);
        if (blank(q, e))
            break;
        if ((*q == ' ' || *q == '\t') && nf > 0) {
            f[nf - 1].len = (size_t)(e - f[nf - 1].p);
        } else {
            f = xrealloc(f, (nf + 1) * sizeof(*f));
            f[nf].p = q;
            f[nf].len = (size_t)(e - q);
            nf++;
        }
        q = e;
    }
    const char *hdr_end = q;                 /* the empty line */
    const char *body = q < end ? line_end(q, end) : end;
    strbuf v, boundary;
    strbuf_init(&v);
    strbuf_init(&boundary);
    const struct field *ct = NULL;
    bool mime_version = false, encodable = true;
    for (size_t i = 0; i < nf; i++) {
        if (named(&f[i], "Content-Type"))
            ct = &f[i];
        else if (named(&f[i], "MIME-Version"))
            mime_version = true;
        else if (named(&f[i], "Content-Transfer-Encoding")) {
            value_of(&f[i], &v);
            const char *s = v.data + strspn(v.data, " \t");
            size_t l = strcspn(s, " \t(");
            encodable = (l == 4 && strncmp(s, "7bit", 4) == 0) ||
                        (l == 4 && strncmp(s, "8bit", 4) == 0) ||
                        (l == 6 && strncmp(s, "binary", 6) == 0);
        }
    }
    const char *type = "text/plain";
    if (ct) {
        value_of(ct, &v);
        size_t skip = strspn(v.data, " \t");
        strbuf_consume(&v, skip);
        v.data[strcspn(v.data, "; \t(")] = '\0';
        type = v.data;
    }
    if (strncmp(type, "multipart/", 10) == 0 && ct_param(ct, "boundary", &boundary)) {
        strbuf_append(out, p, (size_t)(body - p));
        convert_multipart(body, (size_t)(end - body), &boundary, out, depth);
    } else if (strcmp(type, "message/rfc822") == 0 && encodable) {
        strbuf_append(out, p, (size_t)(body - p));
        convert(body, (size_t)(end - body), out, depth + 1, false);
    } else if (encodable && has_8bit(body, (size_t)(end - body))) {
        for (size_t i = 0; i < nf; i++)
            if (!named(&f[i], "Content-Transfer-Encoding"))
                strbuf_append(out, f[i].p, f[i].len);
        if (top && !mime_version)
            strbuf_appends(out, "MIME-Version: 1.0\r\n");
        if (top && ct == NULL)
            strbuf_appends(out, "Content-Type: text/plain; charset=unknown-8bit\r\n");
        strbuf_appends(out, "Content-Transfer-Encoding: quoted-printable\r\n");
        strbuf_append(out, hdr_end, (size_t)(body - hdr_end)); /* the empty line */
        qp_encode(body, (size_t)(end - body), out);
    } else {
        strbuf_append(out, p, n); /* 8-bit headers only, or an encoding we keep */
    }
    strbuf_free(&v);
    strbuf_free(&boundary);
    free(f);
}

int smtpc_mime_downgrade(struct queue_file *qf, strbuf *out, strbuf *err)
{
    strbuf in;
    strbuf_init(&in);
    char buf[65536];
    for (uint64_t pos = 0;;) {
        ssize_t n = queue_file_read_content(qf, pos, buf, sizeof(buf), err);
        if (n < 0) {
            strbuf_free(&in);
            return -1;
        }
        if (n == 0)
            break;
        strbuf_append(&in, buf, (size_t)n);
        pos += (uint64_t)n;
    }
    smtpc_mime_convert(in.data, in.len, out);
    strbuf_free(&in);
    return 0;
}

void smtpc_mime_convert(const char *msg, size_t n, strbuf *out)
{
    strbuf_reset(out);
    convert(msg, n, out, 0, true);
}
