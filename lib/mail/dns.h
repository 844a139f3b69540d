/*
 * dns.h - the c-ares resolver channel the mail programs share: creating it
 * (servers from /etc/resolv.conf or the `dns_servers` parameter), running it
 * until one query is answered or a deadline passes, and the host name syntax
 * check applied to names that come out of DNS answers (hostile input,
 * BAD-INPUT row 11).
 *
 * smtp-client builds its MX and A/AAAA lookups on this (smtp-client/dns.c);
 * the SMTP servers use dns_client_name (dns_client.c) to name a client by
 * forward-confirmed reverse DNS.
 */
#ifndef PETREL_MAIL_DNS_H
#define PETREL_MAIL_DNS_H

#include <ares.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

/* A resolver. The channel is visible so that callers issue their own
 * queries (ares_query, ares_getaddrinfo, ...) and then dns_wait for them. */
struct dns {
    ares_channel ch;
};

/* dns_new: a channel using servers_csv ("addr[:port],...") when not empty,
 * else /etc/resolv.conf. lookups is c-ares's order: "b" = DNS only, "fb" =
 * the hosts file, then DNS. try_ms and tries: per-server attempt timeout and
 * count. NULL with err set when c-ares cannot start or servers_csv is bad. */
struct dns *dns_new(const char *servers_csv, const char *lookups, int try_ms, int tries,
                    strbuf *err);
void dns_free(struct dns **dp);

/* dns_wait: runs the channel until *done becomes true (the caller's
 * callback sets it), at most until deadline (netio_now_ms() time). At the
 * deadline every outstanding query is cancelled and, when its callback did
 * not run, *done = true and *status = ARES_ETIMEOUT. */
void dns_wait(struct dns *d, bool *done, int *status, long long deadline);

/* True for a syntactically valid host name: labels of 1..63 letters,
 * digits, '-' (not first or last) and '_' separated by '.', at most 253
 * bytes. '_' is tolerated because real MX host names contain it. */
bool dns_valid_hostname(const char *name);

/* dns_client_name: the name of the client at addr (numeric IPv4 or IPv6
 * text) by forward-confirmed reverse DNS, as Postfix names SMTP clients:
 * the PTR name of addr (the hosts file first, then DNS), accepted only when
 * it is a strict host name (letters, digits, '-', '.'; no '_') and one of
 * its A/AAAA addresses equals addr. Writes the name, or "unknown" when there
 * is no PTR, the name is invalid or not confirmed, or a lookup fails or
 * passes timeout_ms (the whole job); out holds at least 254 bytes. */
void dns_client_name(const char *servers_csv, int timeout_ms, const char *addr, char *out,
                     size_t n);

#endif
