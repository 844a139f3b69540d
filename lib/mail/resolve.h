/*
 * resolve.h - what kind of destination an address has: delivered here
 * (mydestination), a virtual mailbox domain, a domain we relay for, or
 * somewhere else — and, for local and virtual domains, whether the
 * recipient exists.
 *
 * smtpd asks at RCPT time (unknown users are refused there, so we never
 * accept mail we would have to bounce: no backscatter) and qmgr asks when it
 * picks the transport; both use this one module so they cannot disagree.
 *
 * Domain lists (mydestination, virtual_mailbox_domains, relay_domains)
 * hold names; an entry starting with '.' also matches every subdomain
 * (".example.org" matches "a.example.org"), as in Postfix's
 * parent_domain_matches_subdomains.
 */
#ifndef PETREL_RESOLVE_H
#define PETREL_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct strbuf;
struct map_list;

enum resolve_class {
    RESOLVE_LOCAL,   /* mydestination: system users and aliases */
    RESOLVE_VIRTUAL, /* virtual_mailbox_domains */
    RESOLVE_RELAY,   /* relay_domains: accepted from anyone, sent onward */
    RESOLVE_REMOTE,  /* anything else: only trusted clients may send there */
};

enum resolve_exists {
    RESOLVE_EXISTS,
    RESOLVE_NO_SUCH_USER,
    RESOLVE_LOOKUP_ERROR, /* tables unreadable: answer 4xx, never 5xx */
};

struct resolver;

/* resolver_new: reads the domain lists and tables from cfg (which must
 * outlive nothing: values are copied). Table problems are reported in err
 * and make later lookups answer RESOLVE_LOOKUP_ERROR. */
struct resolver *resolver_new(struct config *cfg, struct strbuf *err);
void resolver_free(struct resolver **rp);

/* The class of a domain (already lowercased by the address parser). */
enum resolve_class resolver_class(struct resolver *r, const char *domain);

/* Whether local_part@domain exists for its class: for LOCAL, the local part
 * (lowercased, without an extension after recipient_delimiter) is an alias
 * or a system user (postmaster always exists, RFC 5321 §4.5.1); for
 * VIRTUAL, the address (or its extension-less form) is in
 * virtual_mailbox_maps or virtual_alias_maps; RELAY and REMOTE always
 * "exist" here (the next hop decides). why (may be NULL) gets a message for
 * errors. */
enum resolve_exists resolver_exists(struct resolver *r, const char *local_part,
                                    const char *domain, struct strbuf *why);

/* The local part without its extension: "bob+tag" -> "bob" (with "+" as
 * delimiter), lowercased, into out. Returns true when there was an
 * extension. */
bool resolver_strip_extension(struct resolver *r, const char *local_part, struct strbuf *out);

#endif
