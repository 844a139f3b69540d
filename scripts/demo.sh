#!/bin/sh
# demo.sh - `make demo`: will start a complete local Petrel instance on
# loopback with a demo domain and users. The supervisor (master) and the
# daemons do not exist yet, so this says exactly that instead of pretending.
echo "make demo: the Petrel libraries are built in ${1:-build}/, but there is no mail"
echo "system to start yet: master (the supervisor), smtpd, qmgr, local-delivery,"
echo "pop3d and imapd have not been written. See README.md, 'What works today'."
exit 1
