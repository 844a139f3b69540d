/*
 * netio_int.h - what netio.c shares with its plain backend (netio_plain.c);
 * not for use outside lib/util/netio*.c.
 */
#ifndef PETREL_NETIO_INT_H
#define PETREL_NETIO_INT_H

#include <stdbool.h>

#include "util/netio.h"

/* The plain backend's state: which descriptors, and whether each turned out
 * not to be a socket (then read()/write() replace recv()/send()). */
struct netio_plain_ctx {
    int rfd;
    int wfd;
    bool r_notsock;
    bool w_notsock;
};

extern const struct netio_backend netio_plain_backend;

#endif
