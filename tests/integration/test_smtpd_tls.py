"""Integration tests of STARTTLS in smtpd on a running instance: real TLS
clients (openssl s_client as in the primer, Python's smtplib, swaks) against
master + smtpd on loopback with the TEST-ONLY certificates of
tests/fixtures/tls, and the STARTTLS attacks of BAD-INPUT.md row 5
(plaintext pipelined behind STARTTLS, STARTTLS twice, garbage instead of a
handshake), plus `petrel check` on broken certificate settings."""
import glob
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from petrel_instance import REPO, Instance, ensure_users, free_port, is_root
from queuefile import QueueFile

DOMAIN = "petrel.test"
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tls")
CA = os.path.join(FIXTURES, "ca.pem")


def client_context():
    """A client context that trusts only the test CA."""
    ctx = ssl.create_default_context(cafile=CA)
    return ctx


class SmtpdTlsTest(unittest.TestCase):
    with_cert = True

    def setUp(self):
        if is_root():
            ensure_users()
        self.port = free_port()
        self.inst = Instance(
            ["smtp accept 127.0.0.1:%d - - 20 smtpd" % self.port],
            params=["myhostname = mx.%s" % DOMAIN,
                    "mydestination = %s, $myhostname, localhost" % DOMAIN,
                    "mynetworks = 192.0.2.0/24",
                    "smtpd_pregreet_wait = 0",
                    "smtpd_starttls_timeout = 5s",
                    "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps"])
        self.inst.write_file("aliases", "postmaster: root\n")
        if self.with_cert:
            self.cert = self.install("server-chain.pem", "cert.pem")
            self.key = self.install("server.test-only.key", "key.test-only.pem", secret=True)
            self.inst.append_conf("smtpd_tls_cert_file = " + self.cert)
            self.inst.append_conf("smtpd_tls_key_file = " + self.key)
        self.inst.petrel("newaliases")
        self.inst.start()

    def tearDown(self):
        self.inst.cleanup()

    # -- helpers --------------------------------------------------------
    def install(self, fixture, name, secret=False):
        """Copies a fixture into the instance's configuration directory the
        way docs/configuration.md tells administrators to: the key readable
        by root and the daemons' group only."""
        path = os.path.join(self.inst.conf, name)
        shutil.copyfile(os.path.join(FIXTURES, fixture), path)
        os.chmod(path, 0o640 if secret else 0o644)
        if is_root():
            import grp
            os.chown(path, 0, grp.getgrnam("petrel").gr_gid)
        return path

    def queued(self):
        return sorted(os.path.basename(p)
                      for p in glob.glob(os.path.join(self.inst.queue, "incoming", "*")))

    def queue_file(self, qid):
        return QueueFile(os.path.join(self.inst.queue, "incoming", qid))

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    @staticmethod
    def reply(s):
        """Reads one (possibly multi-line) reply byte by byte, so that nothing
        after it is consumed (a TLS handshake follows); returns its lines."""
        lines = []
        while True:
            line = b""
            while not line.endswith(b"\n"):
                ch = s.recv(1)
                if not ch:
                    break
                line += ch
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                break
        return lines

    def ehlo_keywords(self, use_tls):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("client.example.org")
            before = c.esmtp_features
            if use_tls:
                c.starttls(context=client_context())
                c.ehlo("client.example.org")
            return before, c.esmtp_features

    # -- the happy paths ------------------------------------------------
    def test_smtplib_starttls_received_and_log(self):
        before, after = self.ehlo_keywords(use_tls=False)
        self.assertIn("starttls", before)
        msg = b"From: alice@example.org\r\nTo: root@petrel.test\r\nSubject: tls\r\n\r\nsecret\r\n"
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("client.example.org")
            code, _ = c.starttls(context=client_context())  # verifies 127.0.0.1 IP SAN
            self.assertEqual(code, 220)
            c.ehlo("client.example.org")
            self.assertNotIn("starttls", c.esmtp_features)  # not again under TLS
            version = c.sock.version()
            cipher = c.sock.cipher()[0]
            self.assertEqual(c.sendmail("alice@example.org", ["root@%s" % DOMAIN], msg), {})
        q = self.queued()
        self.assertEqual(len(q), 1)
        head = self.queue_file(q[0]).headers()
        self.assertIn("with ESMTPS id %s" % q[0], head)
        self.assertIn("(%s %s)" % (version, cipher), head)
        self.inst.wait_log(r"TLS connection established from unknown\[127\.0\.0\.1\]: %s %s"
                           % (re.escape(version), re.escape(cipher)))

    def test_openssl_s_client_primer_dialogue(self):
        if shutil.which("openssl") is None:
            self.skipTest("openssl not installed")
        script = "\n".join(["HELO client.example.org",
                            "MAIL FROM: <alice@example.org>",
                            "RCPT TO: <root@%s>" % DOMAIN,
                            "DATA", "Subject: test", "", "test test", ".", "quit", ""])
        r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                            "127.0.0.1:%d" % self.port, "-crlf", "-ign_eof",
                            "-CAfile", CA, "-verify_return_error",
                            "-verify_hostname", "mx.%s" % DOMAIN],
                           input=script, capture_output=True, text=True, timeout=60)
        self.assertIn("Verify return code: 0 (ok)", r.stdout, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"250 2\.0\.0 Ok: queued as [0-9A-V]{22}")
        self.assertRegex(r.stdout, r"221 2\.0\.0")
        q = self.queued()
        self.assertEqual(len(q), 1)
        head = self.queue_file(q[0]).headers()
        self.assertIn("with ESMTPS", head)
        self.assertRegex(head, r"\(TLSv1\.[23] [A-Z0-9_-]+\)")

    def test_swaks_tls(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port),
                            "--from", "sender@example.org", "--to", "root@%s" % DOMAIN,
                            "--helo", "swaks.example.org", "--tls",
                            "--tls-verify", "--tls-ca-path", CA,
                            "--header", "Subject: via swaks over TLS"],
                           capture_output=True, text=True, timeout=60)
        if "not available" in r.stdout + r.stderr and "TLS" in r.stdout + r.stderr:
            self.skipTest("swaks without TLS support (Net::SSLeay)")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("TLS started", r.stdout)
        self.assertRegex(r.stdout, r"<~ +250 2\.0\.0 Ok: queued as")
        q = self.queued()
        self.assertEqual(len(q), 1)
        head = self.queue_file(q[0]).headers()
        self.assertIn("with ESMTPS", head)
        self.assertIn("Subject: via swaks over TLS", head)

    def test_no_starttls_without_certificate(self):
        # A second instance, no certificate: STARTTLS is neither offered nor
        # accepted.
        port = free_port()
        other = Instance(["smtp accept 127.0.0.1:%d - - 5 smtpd" % port],
                         params=["myhostname = mx.%s" % DOMAIN])
        try:
            other.start()
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                c.ehlo("client.example.org")
                self.assertNotIn("starttls", c.esmtp_features)
                code, text = c.docmd("STARTTLS")
                self.assertEqual(code, 500, text)
        finally:
            other.cleanup()

    # -- attacks (BAD-INPUT.md row 5) -----------------------------------
    def test_plaintext_pipelined_after_starttls_is_not_answered(self):
        s = self.connect()
        self.assertTrue(self.reply(s)[0].startswith("220 "))
        s.sendall(b"EHLO client.example.org\r\n")
        self.assertIn("250-STARTTLS", self.reply(s))
        # CVE-2011-0411: the RSET travels in the same segment as STARTTLS.
        s.sendall(b"STARTTLS\r\nRSET\r\n")
        self.assertEqual(self.reply(s)[0][:3], "220")
        tls = client_context().wrap_socket(s, server_hostname="mx.%s" % DOMAIN)
        tf = tls.makefile("rb")
        tls.sendall(b"QUIT\r\n")
        replies = []
        while True:
            line = tf.readline()
            if not line:
                break
            replies.append(line.decode().rstrip("\r\n"))
        # The first and only reply over TLS is QUIT's, never RSET's 250.
        self.assertEqual(len(replies), 1, replies)
        self.assertTrue(replies[0].startswith("221 "), replies)
        tls.close()
        self.inst.wait_log(r"discarded 6 bytes of plaintext pipelined after STARTTLS")

    def test_starttls_twice(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("client.example.org")
            c.starttls(context=client_context())
            c.ehlo("client.example.org")
            code, text = c.docmd("STARTTLS")
            self.assertEqual(code, 503, text)
            self.assertIn(b"5.5.1", text)
            # The session goes on over the first TLS layer.
            self.assertEqual(c.noop()[0], 250)

    def test_garbage_instead_of_handshake(self):
        s = self.connect()
        self.reply(s)
        s.sendall(b"EHLO client.example.org\r\n")
        self.reply(s)
        s.sendall(b"STARTTLS\r\n")
        self.assertEqual(self.reply(s)[0][:3], "220")
        s.sendall(b"MAIL FROM:<evil@example.org>\r\n" + b"\x00\xff" * 100 + b"\r\n")
        s.settimeout(10)
        rest = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        self.assertNotIn(b"250", rest)
        self.inst.wait_log(r"TLS handshake error from unknown\[127\.0\.0\.1\]: ")
        self.assertEqual(self.queued(), [])
        # The service still works.
        before, after = self.ehlo_keywords(use_tls=True)
        self.assertIn("starttls", before)

    def test_client_that_never_handshakes_times_out(self):
        s = self.connect()
        self.reply(s)
        s.sendall(b"STARTTLS\r\n")
        self.assertEqual(self.reply(s)[0][:3], "220")
        start = time.time()
        s.settimeout(30)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")  # closed by the server, nothing said
        self.assertLess(time.time() - start, 20)
        s.close()
        self.inst.wait_log(r"TLS handshake error from unknown\[127\.0\.0\.1\]: "
                           r"TLS handshake timed out after 5000 ms")

    # -- petrel check ---------------------------------------------------
    def test_petrel_check_reports_tls_problems(self):
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        mismatch = self.install("mismatch.test-only.key", "other.test-only.pem", secret=True)
        self.inst.append_conf("smtpd_tls_key_file = " + mismatch)
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"petrel\.conf:\d+: parameter smtpd_tls_key_file: key file "
                                   r"\S+other\.test-only\.pem does not match the certificate in "
                                   r"\S+cert\.pem")
        self.inst.append_conf("smtpd_tls_key_file = " + self.key)
        self.inst.append_conf("smtpd_tls_cert_file = /nonexistent/cert.pem")
        self.inst.append_conf("smtpd_tls_protocols = >=TLSv1.4")
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("parameter smtpd_tls_cert_file: certificate file /nonexistent/cert.pem: "
                      "cannot open: No such file or directory", r.stderr)
        self.assertIn("parameter smtpd_tls_protocols: unknown TLS protocol 'TLSv1.4'", r.stderr)
        self.assertIn("petrel check: 2 problems found", r.stderr)

    def test_petrel_check_key_unreadable_by_daemons(self):
        if not is_root():
            self.skipTest("needs root to own a file the daemons cannot read")
        os.chown(self.key, 0, 0)
        os.chmod(self.key, 0o600)
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not readable by petrel, the user smtpd runs as", r.stderr)
        # smtpd itself keeps taking mail without STARTTLS and says why.
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("client.example.org")
            self.assertNotIn("starttls", c.esmtp_features)
        self.inst.wait_log(r"TLS is not available, STARTTLS will not be offered: key file "
                           r"\S+: cannot open: Permission denied")


if __name__ == "__main__":
    unittest.main()
