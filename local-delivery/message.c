#define _GNU_SOURCE /* memmem */
/*
 * message.c - what local-delivery needs from the message itself: the
 * Delivered-To: values and the Received: count of its header (loop
 * detection), and the message stream handed to every destination, with
 * Return-Path: and Delivered-To: in front, read from the queue file in
 * pieces so that a large message is never held in memory.
 */
#include "local.h"
#include "mail/queue_file.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The header is read at most this far; a longer header is scanned up to
 * here only (the loop checks then see what is there). */
#define HEADER_SCAN_MAX (1024 * 1024)
#define COPY_CHUNK (64 * 1024)

static void add_delivered_to(struct local_message *m, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
        v++, n -= 2;
    if (n == 0)
        return;
    char *s = xmemdup(v, n);
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    m->delivered_to = xreallocarray(m->delivered_to, m->n_delivered_to + 1, sizeof(char *));
    m->delivered_to[m->n_delivered_to++] = s;
}

/* One logical header line (continuations joined, CRLF removed). */
static void header_line(struct local_message *m, const char *l, size_t n)
{
    static const char dt[] = "delivered-to:";
    static const char rcv[] = "received:";
    if (n >= sizeof(dt) - 1 && strncasecmp(l, dt, sizeof(dt) - 1) == 0)
        add_delivered_to(m, l + sizeof(dt) - 1, n - (sizeof(dt) - 1));
    else if (n >= sizeof(rcv) - 1 && strncasecmp(l, rcv, sizeof(rcv) - 1) == 0)
        m->received++;
}

int local_message_scan(struct local_message *m, strbuf *err)
{
    strbuf head, cur;
    strbuf_init(&head);
    strbuf_init(&cur);
    uint64_t len = m->qf->content_length < HEADER_SCAN_MAX ? m->qf->content_length
                                                           : HEADER_SCAN_MAX;
    char buf[8192];
    /* Read until the empty line that ends the header, or the limit. */
    while (head.len < len) {
        size_t want = len - head.len < sizeof(buf) ? (size_t)(len - head.len) : sizeof(buf);
        ssize_t r = queue_file_read_content(m->qf, head.len, buf, want, err);
        if (r < 0) {
            strbuf_free(&head);
            strbuf_free(&cur);
            return -1;
        }
        if (r == 0)
            break;
        strbuf_append(&head, buf, (size_t)r);
        if (memmem(head.data, head.len, "\r\n\r\n", 4) != NULL || strncmp(head.data, "\r\n", 2) == 0)
            break;
    }
    size_t pos = 0;
    while (pos < head.len) {
        const char *nl = memchr(head.data + pos, '\n', head.len - pos);
        size_t end = nl ? (size_t)(nl - head.data) : head.len;
        size_t n = end - pos;
        if (n > 0 && head.data[pos + n - 1] == '\r')
            n--;
        const char *l = head.data + pos;
        pos = nl ? end + 1 : head.len;
        if (n == 0)
            break; /* end of the header */
        if (l[0] == ' ' || l[0] == '\t') {
            strbuf_append(&cur, l, n);
            continue;
        }
        if (cur.len)
            header_line(m, cur.data, cur.len);
        strbuf_set(&cur, l, n);
    }
    if (cur.len)
        header_line(m, cur.data, cur.len);
    strbuf_free(&head);
    strbuf_free(&cur);
    return 0;
}

void local_message_free(struct local_message *m)
{
    for (size_t i = 0; i < m->n_delivered_to; i++)
        free(m->delivered_to[i]);
    free(m->delivered_to);
    m->delivered_to = NULL;
    m->n_delivered_to = 0;
}

bool local_message_delivered_to(const struct local_message *m, const char *addr)
{
    for (size_t i = 0; i < m->n_delivered_to; i++)
        if (strcasecmp(m->delivered_to[i], addr) == 0)
            return true;
    return false;
}

int local_message_copy(const struct local_message *m, const char *recipient, bool return_path,
                       local_sink_fn sink, void *arg, strbuf *err)
{
    strbuf pre;
    strbuf_init(&pre);
    if (return_path)
        strbuf_printf(&pre, "Return-Path: <%s>\r\n", m->sender);
    strbuf_printf(&pre, "Delivered-To: %s\r\n", recipient);
    int rc = sink(arg, pre.data, pre.len, err);
    strbuf_free(&pre);
    char *buf = xmalloc(COPY_CHUNK);
    uint64_t pos = 0;
    while (rc == 0 && pos < m->qf->content_length) {
        ssize_t r = queue_file_read_content(m->qf, pos, buf, COPY_CHUNK, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0) {
            strbuf_sets(err, "queue file: content shorter than recorded");
            rc = -1;
            break;
        }
        pos += (uint64_t)r;
        rc = sink(arg, buf, (size_t)r, err);
    }
    free(buf);
    return rc;
}
