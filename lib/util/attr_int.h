/*
 * attr_int.h - what attr.c (the list) shares with attr_wire.c (the parser);
 * not for use outside lib/util/attr*.c.
 */
#ifndef PETREL_ATTR_INT_H
#define PETREL_ATTR_INT_H

#include <stdbool.h>
#include <stddef.h>

struct attr_list;

/* Appends name[0..name_len) = p[0..n) without validating: the parser has
 * already checked the name and that it is not a duplicate. */
void attr_list_append_raw(struct attr_list *l, const char *name, size_t name_len,
                          const void *p, size_t n);
/* True when the list already holds that name. */
bool attr_list_has(const struct attr_list *l, const char *name, size_t name_len);

#endif
