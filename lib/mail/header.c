/*
 * header.c - scanning the header section of a message (RFC 5322 §2.2) field
 * by field, and making a Message-ID. See header.h for the contracts and the
 * choices made (line ends, what ends the header, limits); address lists are
 * parsed in header_addr.c.
 *
 * The scanner looks at each byte of the header section once, so a 10 MB
 * header or 10k fields cost linear time; a field is copied only to unfold
 * its value.
 */
#define _GNU_SOURCE /* getrandom() in <sys/random.h> on older glibc */
#include "mail/header.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/utf8.h"

/* How much of a field name is quoted in an error message. */
#define NAME_QUOTE_MAX 64

void header_field_init(struct header_field *f)
{
    memset(f, 0, sizeof(*f));
    strbuf_init(&f->value);
}

void header_field_free(struct header_field *f)
{
    strbuf_free(&f->value);
    f->name = NULL;
    f->name_len = 0;
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 5322 ftext: printable US-ASCII except ':'. */
static bool is_ftext(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

/* Appends the field name to err, quoted, shortened and made printable. */
static void quote_name(strbuf *err, const char *name, size_t n)
{
    strbuf_appendc(err, '"');
    log_sanitize(err, name, n > NAME_QUOTE_MAX ? NAME_QUOTE_MAX : n);
    if (n > NAME_QUOTE_MAX)
        strbuf_appends(err, "...");
    strbuf_appendc(err, '"');
}

static int fail(strbuf *err, const char *what, const char *name, size_t name_len, size_t off)
{
    if (err == NULL)
        return -1;
    strbuf_reset(err);
    strbuf_appends(err, what);
    if (name != NULL) {
        strbuf_appends(err, " in header field ");
        quote_name(err, name, name_len);
    }
    strbuf_printf(err, " (at byte %zu of the message)", off);
    return -1;
}

/* Copies the raw value msg[from..to) into out, unfolded (every line end
 * before a continuation removed, the WSP kept), then trims WSP at both ends.
 * Inside a field every CR is followed by LF (header_next checked it). */
static void unfold(strbuf *out, const char *msg, size_t from, size_t to)
{
    strbuf_reset(out);
    size_t chunk = from;
    for (size_t i = from; i < to; i++) {
        if (msg[i] == '\n' || msg[i] == '\r') {
            strbuf_append(out, msg + chunk, i - chunk);
            chunk = i + 1;
        }
    }
    strbuf_append(out, msg + chunk, to - chunk);
    size_t n = out->len;
    while (n > 0 && is_wsp(out->data[n - 1]))
        n--;
    strbuf_truncate(out, n);
    size_t lead = 0;
    while (lead < out->len && is_wsp(out->data[lead]))
        lead++;
    strbuf_consume(out, lead);
}

int header_next(const char *msg, size_t len, size_t *pos, struct header_field *f, strbuf *err)
{
    size_t p = *pos;
    if (p >= len)
        return 0;
    if (p > HEADER_SECTION_MAX)
        return fail(err, "header section longer than 10485760 bytes", NULL, 0, p);

    /* The empty line that separates header and body. */
    if (msg[p] == '\n' || (msg[p] == '\r' && p + 1 < len && msg[p + 1] == '\n'))
        return 0;
    /* Continuation lines are consumed with their field, so one here can
     * only be the first line of the message. */
    if (is_wsp(msg[p]))
        return fail(err, "the message starts with a folded (space- or tab-indented) line "
                    "instead of a header field", NULL, 0, p);

    size_t q = p;
    while (q < len && is_ftext((unsigned char)msg[q]))
        q++;
    size_t name_len = q - p;
    while (q < len && is_wsp(msg[q]))
        q++;
    if (name_len == 0 || q >= len || msg[q] != ':')
        return 0; /* not a field: the body starts here, as in Postfix */

    size_t value_start = q + 1;
    size_t i = value_start;
    size_t line_end = len, content_end = len;
    for (;;) {
        /* One line: find its end, refusing NUL and bare CR on the way. */
        while (i < len && msg[i] != '\n') {
            if (i - p >= HEADER_FIELD_MAX)
                return fail(err, "field longer than 1048576 bytes", msg + p, name_len, p);
            if (msg[i] == '\0')
                return fail(err, "NUL byte", msg + p, name_len, i);
            if (msg[i] == '\r' && (i + 1 >= len || msg[i + 1] != '\n'))
                return fail(err, "CR not followed by LF", msg + p, name_len, i);
            i++;
        }
        if (i >= len) {
            line_end = content_end = len; /* last line without a line end */
            break;
        }
        content_end = (i > value_start && msg[i - 1] == '\r') ? i - 1 : i;
        line_end = i + 1;
        if (line_end - p > HEADER_FIELD_MAX)
            return fail(err, "field longer than 1048576 bytes", msg + p, name_len, p);
        if (line_end >= len || !is_wsp(msg[line_end]))
            break;
        i = line_end; /* a continuation line */
    }
    if (line_end > HEADER_SECTION_MAX)
        return fail(err, "header section longer than 10485760 bytes", NULL, 0, p);

    f->name = msg + p;
    f->name_len = name_len;
    f->start = p;
    f->end = line_end;
    f->raw_value_start = value_start;
    f->raw_value_end = content_end;
    unfold(&f->value, msg, value_start, content_end);
    *pos = line_end;
    return 1;
}

int header_section_end(const char *msg, size_t len, size_t *fields_end_r, size_t *body_r,
                       strbuf *err)
{
    struct header_field f;
    header_field_init(&f);
    size_t pos = 0;
    int r;
    while ((r = header_next(msg, len, &pos, &f, err)) == 1)
        ;
    header_field_free(&f);
    if (r < 0)
        return -1;
    size_t body = pos;
    if (pos < len && msg[pos] == '\n')
        body = pos + 1;
    else if (pos + 1 < len && msg[pos] == '\r' && msg[pos + 1] == '\n')
        body = pos + 2;
    if (fields_end_r != NULL)
        *fields_end_r = pos;
    if (body_r != NULL)
        *body_r = body;
    return 0;
}

bool header_name_is(const struct header_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

int header_find(const char *msg, size_t len, const char *name, struct header_field *f,
                strbuf *err)
{
    size_t pos = 0;
    int r;
    while ((r = header_next(msg, len, &pos, f, err)) == 1) {
        if (header_name_is(f, name))
            return 1;
    }
    return r;
}

/* A host name fit for the right side of a Message-ID: labels of letters,
 * digits, '-' or UTF-8 non-ASCII, separated by single dots. */
static bool message_id_domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 255 || d[0] == '.' || d[n - 1] == '.' || !utf8_valid(d, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (d[i + 1] == '.')
                return false;
        } else if (!(c >= 0x80 || c == '-' || (c >= '0' && c <= '9') ||
                     (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return true;
}

/* splitmix64 finaliser: only for the fallback when getrandom() fails. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int header_make_message_id(strbuf *out, const char *domain)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    static uint64_t counter;
    if (domain == NULL || !message_id_domain_ok(domain))
        return -1;

    unsigned char rnd[10]; /* 80 bits = 16 base-32 digits */
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = mix64(((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec);
        uint64_t b = mix64(((uint64_t)getpid() << 32) ^ ++counter ^ a);
        memcpy(rnd, &a, 8);
        memcpy(rnd + 8, &b, 2);
        /* Pid and counter in the clear keep it unique even if mixing collides. */
        rnd[8] = (unsigned char)getpid();
        rnd[9] = (unsigned char)counter;
    }

    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    if (gmtime_r(&now, &tm) == NULL ||
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
        stamp[0] = '\0';

    char id[17];
    unsigned acc = 0, bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            id[k++] = alphabet[(acc >> bits) & 31];
        }
    }
    id[k] = '\0';
    strbuf_printf(out, "<%s.%s@%s>", stamp, id, domain);
    return 0;
}
