/*
 * aliases_targets.c - splitting an alias value into typed targets and
 * writing the normalized form back; see aliases.h for the syntax. The file
 * reader and builder (aliases.c) and local-delivery both use these, so what
 * newaliases accepts is exactly what delivery understands.
 */
#include "mail/aliases.h"
#include "mail/address.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INCLUDE_PREFIX ":include:"
#define INCLUDE_PREFIX_LEN (sizeof(INCLUDE_PREFIX) - 1)
/* How much of a bad target a message shows. */
#define SHOWN_MAX 80

struct targets {
    struct alias_target *v;
    size_t n, cap;
};

static void targets_add(struct targets *t, enum alias_target_type type, const char *text,
                        size_t len, bool no_expand)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->v = xreallocarray(t->v, t->cap, sizeof(t->v[0]));
    }
    t->v[t->n].type = type;
    t->v[t->n].text = xmemdup(text, len);
    t->v[t->n].no_expand = no_expand;
    t->n++;
}

void aliases_free_targets(struct alias_target *list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i].text);
    free(list);
}

/* "'<text>'" for messages: escaped and shortened. */
static void show(strbuf *err, const char *s, size_t n)
{
    strbuf_appendc(err, '\'');
    log_sanitize(err, s, n > SHOWN_MAX ? SHOWN_MAX : n);
    if (n > SHOWN_MAX)
        strbuf_appends(err, "...");
    strbuf_appendc(err, '\'');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes no target may hold, checked once for the whole value. */
static int check_bytes(const char *s, size_t n, strbuf *err)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0') {
            strbuf_printf(err, "NUL byte in the target list (at byte %zu)", i + 1);
            return -1;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            strbuf_printf(err, "control character 0x%02x in the target list (at byte %zu)", c,
                          i + 1);
            return -1;
        }
    }
    size_t bad = utf8_invalid_at(s, n);
    if (bad != n) {
        strbuf_printf(err, "invalid UTF-8 in the target list (byte 0x%02x at byte %zu)",
                      (unsigned char)s[bad], bad + 1);
        return -1;
    }
    return 0;
}

/* A path after "/" or ":include:" checks. */
static int add_path(struct targets *t, enum alias_target_type type, const char *p, size_t n,
                    strbuf *err)
{
    if (n == 0 || p[0] != '/') {
        strbuf_appends(err, type == ALIAS_TARGET_INCLUDE ? "include file " : "file ");
        show(err, p, n);
        strbuf_appends(err, " is not an absolute path");
        return -1;
    }
    targets_add(t, type, p, n, false);
    return 0;
}

/* Classifies one target. s[0..n) is its content (unquoted when the whole
 * target was quoted, quoted says so); raw[0..rawn) the target as written. */
static int classify(struct targets *t, const char *s, size_t n, bool quoted, const char *raw,
                    size_t rawn, strbuf *err)
{
    if (n > 0 && s[0] == '|') {
        size_t i = 1;
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n) {
            strbuf_appends(err, "empty command in ");
            show(err, raw, rawn);
            return -1;
        }
        targets_add(t, ALIAS_TARGET_COMMAND, s + 1, n - 1, false);
        return 0;
    }
    if (n > 0 && s[0] == '/')
        return add_path(t, ALIAS_TARGET_FILE, s, n, err);
    if (n >= INCLUDE_PREFIX_LEN && strncasecmp(s, INCLUDE_PREFIX, INCLUDE_PREFIX_LEN) == 0) {
        size_t i = INCLUDE_PREFIX_LEN;
        while (i < n && is_blank(s[i]))
            i++;
        return add_path(t, ALIAS_TARGET_INCLUDE, s + i, n - i, err);
    }
    /* An address: parse it as written, so that a quoted local part such as
     * "john smith"@example.org keeps its quotes. */
    const char *a = quoted ? raw : s;
    size_t an = quoted ? rawn : n;
    bool no_expand = false;
    if (!quoted && an > 0 && a[0] == '\\') {
        no_expand = true;
        a++;
        an--;
    }
    /* A '/' in a local user name is a file name that lacks its leading
     * '/' ("mail/box", "~/mbox"), not a user: refuse it as such. Remote
     * addresses may hold one ("/C=US/O=x/"@gateway.example). */
    struct address addr;
    struct address_error aerr;
    address_init(&addr);
    int rc = address_parse_mailbox(a, an, ADDRESS_ALLOW_NO_DOMAIN | ADDRESS_ALLOW_UTF8, &addr,
                                   &aerr);
    bool has_slash = rc == 0 ? (addr.domain.len == 0 && memchr(addr.local.data, '/',
                                                                 addr.local.len) != NULL)
                             : memchr(a, '/', an) != NULL;
    if (has_slash) {
        strbuf_appends(err, "relative file path ");
        show(err, raw, rawn);
        strbuf_appends(err, ": file destinations must be absolute paths");
        address_free(&addr);
        return -1;
    }
    if (rc != 0) {
        strbuf_appends(err, "invalid address ");
        show(err, raw, rawn);
        strbuf_printf(err, ": %s", aerr.text);
        address_free(&addr);
        return -1;
    }
    strbuf canon;
    strbuf_init(&canon);
    address_format(&canon, &addr);
    targets_add(t, ALIAS_TARGET_ADDRESS, canon.data, canon.len, no_expand);
    strbuf_free(&canon);
    address_free(&addr);
    return 0;
}

/* Parses the target starting at s[*pos] up to the next comma outside
 * quotes (or the end); *pos is left after that comma. */
static int one_target(struct targets *t, const char *s, size_t n, size_t *pos, strbuf *err)
{
    size_t i = *pos;
    while (i < n && is_blank(s[i]))
        i++;
    size_t start = i, end = i; /* end: after the last non-blank byte */
    size_t blank_at = 0;       /* 1 + offset of a blank outside quotes, inside the target */
    size_t quote_open = 0, quote_close = 0; /* 1 + offsets of the first quoted part */
    bool in_quote = false;
    for (; i < n; i++) {
        char c = s[i];
        if (in_quote) {
            if (c == '\\' && i + 1 < n) {
                i++;
            } else if (c == '"') {
                in_quote = false;
                if (quote_close == 0)
                    quote_close = i + 1;
            }
            end = i + 1;
            continue;
        }
        if (c == ',')
            break;
        if (is_blank(c))
            continue;
        if (end != i && end > start && blank_at == 0)
            blank_at = end + 1;
        if (c == '"') {
            in_quote = true;
            if (quote_open == 0)
                quote_open = i + 1;
        }
        end = i + 1;
    }
    *pos = i < n ? i + 1 : n;
    if (in_quote) {
        strbuf_appends(err, "unterminated quote in ");
        show(err, s + start, n - start);
        return -1;
    }
    if (end == start) {
        strbuf_appends(err, i < n ? "empty target (two commas in a row, or a comma first)"
                                  : "empty target after the last comma");
        return -1;
    }
    const char *raw = s + start;
    size_t rawn = end - start;
    if (blank_at != 0) {
        strbuf_appends(err, "target ");
        show(err, raw, rawn);
        strbuf_appends(err, " contains whitespace: separate targets with commas, and put "
                            "commands and file names with spaces in double quotes");
        return -1;
    }
    /* Wholly quoted: "..." with the closing quote last. */
    if (quote_open == start + 1 && quote_close == end) {
        strbuf content;
        strbuf_init(&content);
        for (size_t k = start + 1; k + 1 < end; k++) {
            if (s[k] == '\\')
                k++;
            strbuf_appendc(&content, s[k]);
        }
        int rc = classify(t, content.data, content.len, true, raw, rawn, err);
        strbuf_free(&content);
        return rc;
    }
    if (quote_open != 0 && (quote_close == end || s[quote_close] != '@')) {
        /* Quotes are only for a whole target or a quoted local part. */
        strbuf_appends(err, "text after a closing quote in ");
        show(err, raw, rawn);
        return -1;
    }
    return classify(t, raw, rawn, false, raw, rawn, err);
}

int aliases_parse_targets(const char *value, size_t len, struct alias_target **list_r, size_t *n_r,
                          strbuf *err)
{
    *list_r = NULL;
    *n_r = 0;
    strbuf msg;
    strbuf_init(&msg);
    struct targets t = {0};
    int rc = check_bytes(value, len, &msg);
    size_t first = 0;
    while (first < len && is_blank(value[first]))
        first++;
    if (rc == 0 && first == len) {
        strbuf_appends(&msg, "no targets");
        rc = -1;
    }
    for (size_t pos = first; rc == 0 && pos < len;) {
        bool comma_last = false;
        rc = one_target(&t, value, len, &pos, &msg);
        if (rc == 0 && pos == len && len > 0 && value[len - 1] == ',')
            comma_last = true;
        if (comma_last) {
            strbuf_appends(&msg, "empty target after the last comma");
            rc = -1;
        }
    }
    if (rc != 0) {
        aliases_free_targets(t.v, t.n);
        if (err != NULL)
            strbuf_append_sb(err, &msg);
        strbuf_free(&msg);
        return -1;
    }
    strbuf_free(&msg);
    *list_r = t.v;
    *n_r = t.n;
    return 0;
}

/* Appends s, in double quotes with '"' and '\' escaped when it holds
 * anything the target syntax treats specially. */
static void append_quoted_if_needed(strbuf *out, const char *prefix, const char *s)
{
    bool quote = false;
    for (const char *p = s; *p != '\0'; p++) {
        if (is_blank(*p) || *p == ',' || *p == '"' || *p == '\\')
            quote = true;
    }
    if (!quote) {
        strbuf_appends(out, prefix);
        strbuf_appends(out, s);
        return;
    }
    strbuf_appendc(out, '"');
    strbuf_appends(out, prefix);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_appendc(out, '\\');
        strbuf_appendc(out, *p);
    }
    strbuf_appendc(out, '"');
}

void aliases_format_targets(strbuf *out, const struct alias_target *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strbuf_appends(out, ", ");
        switch (list[i].type) {
        case ALIAS_TARGET_ADDRESS: {
            /* Canonical already (address_format): quoted local parts keep
             * their quotes. A dot-atom local part may still begin with '/'
             * or '|' (both are atext), which would read back as a file or
             * a command: such a local part is written quoted. */
            const char *text = list[i].text;
            if (list[i].no_expand)
                strbuf_appendc(out, '\\');
            const char *at = strchr(text, '@');
            if ((text[0] == '/' || text[0] == '|') && at != NULL) {
                strbuf_appendc(out, '"');
                strbuf_append(out, text, (size_t)(at - text));
                strbuf_appendc(out, '"');
                strbuf_appends(out, at);
            } else {
                strbuf_appends(out, text);
            }
            break;
        }
        case ALIAS_TARGET_FILE:
            append_quoted_if_needed(out, "", list[i].text);
            break;
        case ALIAS_TARGET_COMMAND:
            append_quoted_if_needed(out, "|", list[i].text);
            break;
        case ALIAS_TARGET_INCLUDE:
            append_quoted_if_needed(out, INCLUDE_PREFIX, list[i].text);
            break;
        }
    }
}
