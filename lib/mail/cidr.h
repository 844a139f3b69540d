/*
 * cidr.h - lists of IP networks (mynetworks and friends) and matching client
 * addresses against them.
 *
 * Entries are written as Postfix writes them: `192.0.2.0/24`, `10.1.2.3`
 * (a single host), `[2001:db8::]/32` or `2001:db8::/32`, `[::1]` — separated
 * by commas and/or whitespace. An IPv4 client seen on an IPv6 socket
 * (::ffff:192.0.2.1) matches IPv4 entries.
 */
#ifndef PETREL_CIDR_H
#define PETREL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct strbuf;

struct cidr_entry {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char addr[16];    /* network address, host bits cleared */
    unsigned prefix;           /* 0..32 or 0..128 */
};

struct cidr_list {
    struct cidr_entry *entries;
    size_t count;
};

/* cidr_list_parse: parses text into list (appending). Each bad entry is
 * reported as "<where>: invalid network 'x': reason\n" in err (where names
 * the parameter); returns the number of bad entries. Host bits set below the
 * prefix (192.0.2.1/24) are an error, as they usually hide a typo. */
int cidr_list_parse(struct cidr_list *list, const char *text, const char *where,
                    struct strbuf *err);
void cidr_list_free(struct cidr_list *list);

/* cidr_match: true when the address is inside any entry of the list. */
bool cidr_match(const struct cidr_list *list, const struct sockaddr *sa);
/* cidr_match_text: the same for an address in text form ("192.0.2.1", "::1"). */
bool cidr_match_text(const struct cidr_list *list, const char *addr);

#endif
