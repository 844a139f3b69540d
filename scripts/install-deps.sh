#!/bin/sh
# install-deps.sh - installs the Debian packages that building and testing
# Petrel need, and only those that are missing, so a second `make test` does
# not touch apt at all. Run as root (or via sudo) on Debian 12.
set -eu

# Build: compiler, CMake, pkg-config and the four required libraries
# (OpenSSL for TLS, c-ares for DNS, Berkeley DB for lookup tables, PAM for
# authentication) plus libcrypt for passwd-file hashes and cmocka for unit tests.
# Tests: the real clients integration tests drive (mailutils' mail(1) sends
# through our sendmail and reads mbox files back; it only recommends an MTA,
# which --no-install-recommends leaves out; dnsmasq-base, the dnsmasq binary without
# its system service, serves MX records to smtp-client's tests; libpam-wrapper
# lets the auth tests drive PAM failure paths without touching /etc/pam.d;
# msmtp is the mail program a user configures to send through submission;
# fetchmail and getmail6 download mailboxes over POP3 in pop3d's tests; postfix is
# the real MTA that test_postfix_interop exchanges mail with, and bench/run's rival).
PACKAGES="
gcc make cmake pkg-config
libssl-dev libc-ares-dev libdb-dev libpam0g-dev libcrypt-dev libcmocka-dev
python3 swaks openssl
mailutils
dnsmasq-base
libpam-wrapper
msmtp
fetchmail getmail6
postfix
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
case " $missing " in
*" postfix "*)
    # "No configuration": the package writes no /etc/postfix/main.cf, so it starts no
    # system Postfix (its service needs main.cf) and nothing holds the host's port 25;
    # the tests run their own instances with their own configuration directories.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    ;;
esac
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
