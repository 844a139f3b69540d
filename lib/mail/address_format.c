/*
 * address_format.c - what is done with a parsed address: writing it back in
 * canonical form, the safety predicates that smtpd and local delivery apply,
 * and the mapping of parse errors to SMTP reply and enhanced status codes.
 * See address.h for the contracts; parsing itself is in address.c.
 */
#include "mail/address.h"
#include "mail/address_int.h"

#include <string.h>

/* True when the unquoted local part can be written as a Dot-string. */
static bool local_is_dot_string(const strbuf *local)
{
    const unsigned char *s = (const unsigned char *)local->data;
    size_t n = local->len;
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '.') {
            if (s[k + 1] == '.') /* k + 1 < n: the last byte is not a dot */
                return false;
        } else if (s[k] < 0x80 && !address_is_atext(s[k])) {
            return false;
        }
    }
    return true;
}

void address_format(strbuf *out, const struct address *a)
{
    if (a->is_null)
        return;
    if (local_is_dot_string(&a->local)) {
        strbuf_append_sb(out, &a->local);
    } else {
        /* Only '"' and '\' need a quoted-pair (RFC 5321 §4.1.2: a sender
         * SHOULD NOT quote anything else); the parser let nothing else in
         * that would need one. */
        strbuf_appendc(out, '"');
        for (size_t k = 0; k < a->local.len; k++) {
            char c = a->local.data[k];
            if (c == '"' || c == '\\')
                strbuf_appendc(out, '\\');
            strbuf_appendc(out, c);
        }
        strbuf_appendc(out, '"');
    }
    if (a->domain.len > 0) {
        strbuf_appendc(out, '@');
        strbuf_append_sb(out, &a->domain);
    }
}

void address_format_path(strbuf *out, const struct address *a)
{
    strbuf_appendc(out, '<');
    address_format(out, a);
    strbuf_appendc(out, '>');
}

bool address_text_has_unsafe_chars(const char *s, size_t n)
{
    if (n > 0 && s[0] == '-')
        return true; /* would be taken for an option */
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        /* Non-ASCII bytes have no meaning to a shell; the parser admits only
         * well-formed UTF-8 without C1 controls. */
        if (c >= 0x80)
            continue;
        if (c == '.' || c == '_' || c == '+' || c == '-' || c == '=' || c == '@')
            continue;
        return true;
    }
    return false;
}

bool address_has_unsafe_chars(const struct address *a)
{
    if (a->is_null)
        return false;
    return address_text_has_unsafe_chars(a->local.data, a->local.len) ||
           address_text_has_unsafe_chars(a->domain.data, a->domain.len);
}

bool address_has_routing_chars(const struct address *a)
{
    for (size_t k = 0; k < a->local.len; k++) {
        char c = a->local.data[k];
        if (c == '%' || c == '!' || c == '@')
            return true;
    }
    return false;
}

const char *address_status_text(enum address_status st)
{
    switch (st) {
    case ADDRESS_OK:
        return "address accepted";
    case ADDRESS_ERR_EMPTY:
        return "empty address";
    case ADDRESS_ERR_COMMAND_SYNTAX:
        return "syntax error in MAIL FROM: or RCPT TO: argument";
    case ADDRESS_ERR_NO_BRACKETS:
        return "address must be enclosed in <>";
    case ADDRESS_ERR_UNBALANCED_BRACKETS:
        return "unbalanced '<': missing closing '>'";
    case ADDRESS_ERR_TRAILING_JUNK:
        return "unexpected text after '>'";
    case ADDRESS_ERR_NULL_NOT_ALLOWED:
        return "null address <> is not allowed here";
    case ADDRESS_ERR_ROUTE_SYNTAX:
        return "invalid source route";
    case ADDRESS_ERR_NUL_BYTE:
        return "NUL byte in address";
    case ADDRESS_ERR_CONTROL_CHAR:
        return "control character in address";
    case ADDRESS_ERR_BAD_CHAR:
        return "invalid character in address";
    case ADDRESS_ERR_NO_DOMAIN:
        return "address has no domain";
    case ADDRESS_ERR_LOCAL_EMPTY:
        return "empty local part";
    case ADDRESS_ERR_LOCAL_DOTS:
        return "misplaced dot in local part";
    case ADDRESS_ERR_UNBALANCED_QUOTES:
        return "unbalanced quotes in local part";
    case ADDRESS_ERR_LOCAL_TOO_LONG:
        return "local part too long";
    case ADDRESS_ERR_DOMAIN_EMPTY:
        return "missing domain";
    case ADDRESS_ERR_DOMAIN_SYNTAX:
        return "invalid domain syntax";
    case ADDRESS_ERR_LABEL_TOO_LONG:
        return "domain label too long";
    case ADDRESS_ERR_DOMAIN_TOO_LONG:
        return "domain too long";
    case ADDRESS_ERR_PATH_TOO_LONG:
        return "address too long";
    case ADDRESS_ERR_LITERAL_SYNTAX:
        return "malformed address literal";
    case ADDRESS_ERR_LITERAL_IPV4:
        return "invalid IPv4 address literal";
    case ADDRESS_ERR_LITERAL_IPV6:
        return "invalid IPv6 address literal";
    case ADDRESS_ERR_LITERAL_UNSUPPORTED:
        return "unsupported address literal";
    case ADDRESS_ERR_UTF8_INVALID:
        return "invalid UTF-8 in address";
    case ADDRESS_ERR_UTF8_NOT_ALLOWED:
        return "non-ASCII address requires SMTPUTF8";
    }
    return "invalid address";
}

int address_status_reply(enum address_status st)
{
    switch (st) {
    case ADDRESS_OK:
        return 250;
    case ADDRESS_ERR_UTF8_NOT_ALLOWED:
        return 553;
    default:
        return 501;
    }
}

const char *address_status_dsn(enum address_status st, enum address_role role)
{
    bool sender = role == ADDRESS_ROLE_SENDER;
    switch (st) {
    case ADDRESS_OK:
        return sender ? "2.1.0" : "2.1.5";
    case ADDRESS_ERR_UTF8_NOT_ALLOWED:
        return "5.6.7";
    case ADDRESS_ERR_COMMAND_SYNTAX:
        return "5.5.4";
    default:
        return sender ? "5.1.7" : "5.1.3";
    }
}
