#!/bin/sh
# create-users.sh - creates the system accounts Petrel runs under, when they
# are missing, exactly as the Debian package will: `petrel` (the daemons),
# `petrel-mail` (owner of virtual mailboxes) and the group `petreldrop` (may
# write into the maildrop). Needs root; does nothing for accounts that exist.
set -eu
if ! getent group petrel >/dev/null; then
    groupadd --system petrel
fi
if ! getent passwd petrel >/dev/null; then
    useradd --system --gid petrel --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Petrel mail system" petrel
fi
if ! getent group petrel-mail >/dev/null; then
    groupadd --system petrel-mail
fi
if ! getent passwd petrel-mail >/dev/null; then
    useradd --system --gid petrel-mail --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Petrel mail store" petrel-mail
fi
if ! getent group petreldrop >/dev/null; then
    groupadd --system petreldrop
fi
