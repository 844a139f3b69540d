"""Integration tests of client naming in smtpd (forward-confirmed reverse
DNS, lib/mail/dns_client.c): a dnsmasq started here on a loopback port
(dns_servers) holds PTR and A records for 127.0.0.x source addresses; the
tests connect from each address (the client socket is bound to it) and
check the "connect from NAME[ADDR]" log line and the Received: header of
the queued message. A DNS server that never answers must not hold the
client up for longer than smtpd_client_dns_timeout."""
import glob
import os
import pwd
import signal
import socket
import subprocess
import time
import unittest

from petrel_instance import Instance, ensure_users, free_port, is_root
from queuefile import QueueFile
from test_smtp_client import dnsmasq_path

DOMAIN = "petrel.test"

DNSMASQ_RECORDS = [
    # 127.0.0.2: PTR good.example.test, whose A is 127.0.0.2 (confirmed);
    # --host-record makes both the A and the PTR record
    "--host-record=good.example.test,127.0.0.2",
    # 127.0.0.3: PTR liar.example.test, whose A is 127.0.0.9 (not confirmed)
    "--ptr-record=3.0.0.127.in-addr.arpa,liar.example.test",
    "--host-record=liar.example.test,127.0.0.9",
    # 127.0.0.5: a confirmed name that is no valid host name ('_')
    "--ptr-record=5.0.0.127.in-addr.arpa,bad_name.example.test",
    "--host-record=bad_name.example.test,127.0.0.5",
    # 127.0.0.4 has no PTR record at all
    "--local=/test/",
    "--local=/0.0.127.in-addr.arpa/",
]


def hosts_first_name(addr):
    try:
        with open("/etc/hosts") as f:
            for line in f:
                fields = line.split("#")[0].split()
                if len(fields) >= 2 and fields[0] == addr:
                    return fields[1]
    except OSError:
        pass
    return None


def start_dnsmasq(port):
    return subprocess.Popen(
        [dnsmasq_path(), "--no-daemon", "--port=%d" % port,
         "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", "--user=" + pwd.getpwuid(os.geteuid()).pw_name,
         "--pid-file="] + DNSMASQ_RECORDS,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@unittest.skipIf(dnsmasq_path() is None, "dnsmasq is not installed (scripts/install-deps.sh)")
class SmtpdRdnsTest(unittest.TestCase):
    def setUp(self):
        if is_root():
            ensure_users()
        self.dnsmasq = None
        self.silent = None
        self.inst = None

    def start(self, dns_servers, extra=(), daemon="smtpd"):
        self.port = free_port()
        self.inst = Instance(
            ["smtp accept 127.0.0.1:%d - - 20 %s" % (self.port, daemon)],
            params=["myhostname = mx.%s" % DOMAIN,
                    "mydestination = %s, $myhostname, localhost" % DOMAIN,
                    "alias_maps =",
                    "smtpd_pregreet_wait = 0",
                    "smtpd_peername_lookup = yes",
                    "dns_servers = " + dns_servers] + list(extra))
        self.inst.start()

    def start_with_dnsmasq(self):
        dns_port = free_port()
        self.dnsmasq = start_dnsmasq(dns_port)
        time.sleep(0.3)
        self.assertIsNone(self.dnsmasq.poll(), "dnsmasq did not start")
        self.start("127.0.0.1:%d" % dns_port)

    def tearDown(self):
        if self.inst:
            log = self.inst.read_log()
            self.inst.cleanup()
            self.assertNotRegex(log, r"smtpd pid \d+ (killed by signal|exit status)",
                                "smtpd crashed")
        if self.dnsmasq:
            self.dnsmasq.send_signal(signal.SIGTERM)
            try:
                self.dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait()
        if self.silent:
            self.silent.close()

    def send_from(self, source):
        """One message from source (a 127.0.0.x address); returns the time
        the greeting took and the Received: line of the queued message."""
        before = set(glob.glob(os.path.join(self.inst.queue, "incoming", "*")))
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20,
                                     source_address=(source, 0))
        f = s.makefile("rb")
        t0 = time.monotonic()
        greeting = f.readline()
        took = time.monotonic() - t0
        self.assertTrue(greeting.startswith(b"220 "), greeting)
        for line, code in ((b"EHLO helo.example.org", b"250 "),
                           (b"MAIL FROM:<a@example.org>", b"250 "),
                           (b"RCPT TO:<root@%s>" % DOMAIN.encode(), b"250 "),
                           (b"DATA", b"354 ")):
            s.sendall(line + b"\r\n")
            while True:
                reply = f.readline()
                if reply[3:4] != b"-":
                    break
            self.assertTrue(reply.startswith(code), (line, reply))
        s.sendall(b"Subject: rdns\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        self.assertTrue(f.readline().startswith(b"250 "))
        f.close()
        s.close()
        new = set(glob.glob(os.path.join(self.inst.queue, "incoming", "*"))) - before
        self.assertEqual(len(new), 1)
        head = QueueFile(new.pop()).headers()
        return took, head.split("\r\n")[0] if "\r\n" in head else head.split("\n")[0]

    def assert_named(self, source, name):
        took, received = self.send_from(source)
        self.inst.wait_log(r"connect from %s\[%s\]" % (name.replace(".", r"\."),
                                                      source.replace(".", r"\.")))
        self.assertEqual(received, "Received: from helo.example.org (%s [%s])" % (name, source))
        return took

    def test_confirmed_name(self):
        self.start_with_dnsmasq()
        self.assert_named("127.0.0.2", "good.example.test")

    def test_submission_names_clients_too(self):
        dns_port = free_port()
        self.dnsmasq = start_dnsmasq(dns_port)
        time.sleep(0.3)
        self.start("127.0.0.1:%d" % dns_port, daemon="submission")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20,
                                     source_address=("127.0.0.2", 0))
        f = s.makefile("rb")
        f.readline()  # a 220, or a 421 from submission without TLS: either way
        f.close()     # it has named the client first
        s.close()
        self.inst.wait_log(r"submission\[\d+\]: connect from good\.example\.test\[127\.0\.0\.2\]")

    def test_unconfirmed_name_is_unknown(self):
        self.start_with_dnsmasq()
        self.assert_named("127.0.0.3", "unknown")
        self.assertNotIn("liar.example.test", self.inst.read_log())

    def test_no_ptr_is_unknown(self):
        self.start_with_dnsmasq()
        self.assert_named("127.0.0.4", "unknown")

    def test_invalid_ptr_name_is_unknown(self):
        self.start_with_dnsmasq()
        self.assert_named("127.0.0.5", "unknown")
        self.assertNotIn("bad_name", self.inst.read_log())

    @unittest.skipUnless(hosts_first_name("127.0.0.1") == "localhost",
                         "/etc/hosts does not name 127.0.0.1 localhost first")
    def test_loopback_named_from_hosts_file(self):
        # the hosts file is read first (as c-ares and the system resolver do):
        # 127.0.0.1 is localhost even though dnsmasq knows nothing of it
        self.start_with_dnsmasq()
        self.assert_named("127.0.0.1", "localhost")

    def test_lookup_off(self):
        dns_port = free_port()
        self.dnsmasq = start_dnsmasq(dns_port)
        time.sleep(0.3)
        self.start("127.0.0.1:%d" % dns_port, ["smtpd_peername_lookup = no"])
        self.assert_named("127.0.0.2", "unknown")

    def test_silent_dns_server_times_out_to_unknown(self):
        # a UDP socket that is bound (no ICMP "port unreachable") but never read
        self.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.silent.bind(("127.0.0.1", 0))
        self.start("127.0.0.1:%d" % self.silent.getsockname()[1],
                   ["smtpd_client_dns_timeout = 1s"])
        took = self.assert_named("127.0.0.2", "unknown")
        self.assertGreaterEqual(took, 0.8)  # it did wait for the DNS
        self.assertLess(took, 4.0)          # but no longer than the limit (and slack)


if __name__ == "__main__":
    unittest.main()
