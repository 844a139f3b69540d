"""Integration tests of smtpd on a running instance: real clients (Python's
smtplib, swaks, raw dialogues as in the primer) against master + smtpd on
loopback, checking the replies and the queue files left in incoming/
(there is no qmgr yet to move them)."""
import concurrent.futures
import glob
import os
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from petrel_instance import Instance, ensure_users, free_port, is_root
from queuefile import QueueFile

DOMAIN = "petrel.test"


class SmtpdTest(unittest.TestCase):
    params = []

    def setUp(self):
        if is_root():
            ensure_users()
        self.port = free_port()
        self.inst = Instance(
            ["smtp accept 127.0.0.1:%d - - 20 smtpd" % self.port],
            params=["myhostname = mx.%s" % DOMAIN,
                    "mydestination = %s, $myhostname, localhost" % DOMAIN,
                    # 127.0.0.1 is NOT trusted here, so relay control is visible.
                    "mynetworks = 192.0.2.0/24",
                    "relay_domains = relay.test",
                    "message_size_limit = 100000",
                    "smtpd_recipient_limit = 50",
                    "smtpd_pregreet_wait = 0",
                    "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps"] + self.params)
        self.inst.write_file("aliases", "alice: root\ninfo: root, daemon\npostmaster: root\n")
        self.inst.petrel("newaliases")
        self.inst.start()

    def tearDown(self):
        self.inst.cleanup()

    # -- helpers --------------------------------------------------------
    def queued(self):
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.inst.queue, "incoming", "*")))

    def queue_file(self, qid):
        return QueueFile(os.path.join(self.inst.queue, "incoming", qid))

    def dialogue(self, lines, read_greeting=True, timeout=10):
        """Sends raw lines (bytes, CRLF added unless already ended), returns the
        server's whole output as text after the connection closes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        out = b""
        if read_greeting:
            out += s.recv(4096)
        for line in lines:
            if isinstance(line, str):
                line = line.encode()
            if not line.endswith(b"\n"):
                line += b"\r\n"
            s.sendall(line)
            time.sleep(0.05)
        s.settimeout(timeout)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        s.close()
        return out.decode("utf-8", "replace")

    # -- the happy path -------------------------------------------------
    def test_smtplib_send_and_queue_file(self):
        body = ("From: alice@example.org\r\nTo: root@%s\r\nSubject: hello\r\n\r\n"
                "caf\xc3\xa9 8-bit body\r\n.leading dot\r\n" % DOMAIN).encode("latin-1")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            code, ehlo = c.ehlo("client.example.org")
            self.assertEqual(code, 250)
            for kw in (b"PIPELINING", b"SIZE 100000", b"8BITMIME", b"SMTPUTF8",
                       b"ENHANCEDSTATUSCODES", b"CHUNKING", b"DSN"):
                self.assertIn(kw, ehlo)
            self.assertNotIn(b"STARTTLS", ehlo)  # no certificate configured
            refused = c.sendmail("alice@example.org", ["root@%s" % DOMAIN], body,
                                 mail_options=["BODY=8BITMIME"])
            self.assertEqual(refused, {})
            reply = c.noop()
        q = self.queued()
        self.assertEqual(len(q), 1)
        qf = self.queue_file(q[0])
        self.assertEqual(qf.sender, "alice@example.org")
        self.assertEqual([r["address"] for r in qf.recipients], ["root@%s" % DOMAIN])
        self.assertEqual(qf.recipients[0]["status"], "P")
        self.assertEqual(qf.attrs.get("helo"), "client.example.org")
        self.assertEqual(qf.attrs.get("client_addr"), "127.0.0.1")
        self.assertEqual(qf.attrs.get("protocol"), "ESMTP")
        head = qf.headers()
        self.assertTrue(head.startswith("Received: from client.example.org (unknown [127.0.0.1])"), head)
        self.assertIn("by mx.%s (Petrel) with ESMTP id %s" % (DOMAIN, q[0]), head)
        self.assertIn("for <root@%s>;" % DOMAIN, head)
        # The content after Received: is exactly what was sent (dot-unstuffed, 8-bit kept).
        self.assertTrue(qf.content.endswith(body), qf.content)
        self.assertEqual(qf.size, len(qf.content))
        self.inst.wait_log(r"%s: client=unknown\[127\.0\.0\.1\]" % q[0])
        self.inst.wait_log(r"%s: from=<alice@example\.org>, size=\d+, nrcpt=1" % q[0])

    def test_primer_dialogue(self):
        out = self.dialogue(["HELO client.example.org",
                             "MAIL FROM: <alice@example.org>",
                             "RCPT TO: <root@%s>" % DOMAIN,
                             "DATA", "Subject: test", "", "test test", ".", "quit"])
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("220 mx.%s ESMTP" % DOMAIN), out)
        self.assertRegex(out, r"250 .*\r?\n250 2\.1\.0.*\r?\n250 2\.1\.5.*\r?\n354 .*\r?\n"
                              r"250 2\.0\.0 Ok: queued as [0-9A-V]{22}\r?\n221 2\.0\.0")
        self.assertEqual(len(self.queued()), 1)

    def test_swaks(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port),
                            "--from", "sender@example.org", "--to", "root@%s" % DOMAIN,
                            "--helo", "swaks.example.org", "--header", "Subject: via swaks",
                            "--body", "hello from swaks", "--pipeline"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<- +250 2\.0\.0 Ok: queued as")
        q = self.queued()
        self.assertEqual(len(q), 1)
        self.assertIn("Subject: via swaks", self.queue_file(q[0]).headers())

    def test_dsn_parameters_stored(self):
        out = self.dialogue(["EHLO c.example.org",
                             "MAIL FROM:<a@example.org> RET=HDRS ENVID=env+2Bid+3D1",
                             "RCPT TO:<root@%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Root+40%s" % (DOMAIN, DOMAIN),
                             "RCPT TO:<daemon@%s> NOTIFY=NEVER" % DOMAIN,
                             "DATA", "Subject: dsn", "", "x", ".", "QUIT"])
        self.assertIn("250 2.0.0 Ok: queued as", out)
        qf = self.queue_file(self.queued()[0])
        self.assertEqual(qf.attrs.get("ret"), "H")
        self.assertEqual(qf.attrs.get("envid"), "env+id=1")
        self.assertEqual(qf.recipients[0]["notify"], 0x02 | 0x04)
        self.assertEqual(qf.recipients[0]["orcpt"], "rfc822;Root@%s" % DOMAIN)
        self.assertEqual(qf.recipients[1]["notify"], 0x01)
        self.assertIsNone(qf.recipients[1]["orcpt"])

    def test_bdat(self):
        msg = b"Subject: chunked\r\n\r\nline one\r\n.not stuffed\r\n"
        out = self.dialogue([b"EHLO c.example.org", b"MAIL FROM:<a@example.org>",
                             b"RCPT TO:<root@" + DOMAIN.encode() + b">",
                             b"BDAT %d\r\n" % 20 + msg[:20],
                             b"BDAT %d LAST\r\n" % (len(msg) - 20) + msg[20:], b"QUIT"])
        self.assertIn("250 2.0.0 20 octets received", out)
        self.assertIn("250 2.0.0 Ok: queued as", out)
        qf = self.queue_file(self.queued()[0])
        self.assertTrue(qf.content.endswith(msg))

    def test_no_process_per_message_or_session(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            for i in range(20):
                c.sendmail("a@example.org", ["root@%s" % DOMAIN], b"Subject: %d\r\n\r\nx\r\n" % i)
        self.assertEqual(self.inst.status()["smtp"]["started"], 1)  # 20 messages, one process
        for i in range(10):
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
                c.sendmail("a@example.org", ["root@%s" % DOMAIN], b"Subject: %d\r\n\r\nx\r\n" % i)
        self.assertEqual(len(self.queued()), 30)
        # Sequential sessions reuse idle processes (a second one may start when a
        # client connects in the instant before the first reports itself idle).
        self.assertLessEqual(self.inst.status()["smtp"]["started"], 3)

    # -- policy -------------------------------------------------------------
    def rcpt_reply(self, rcpt, sender="a@example.org"):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("c.example.org")
            c.mail(sender)
            return c.rcpt(rcpt)

    def test_unknown_local_user_refused(self):
        code, text = self.rcpt_reply("no-such-user-xyz@%s" % DOMAIN)
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.1.1"), text)
        code, _ = self.rcpt_reply("root@localhost")
        self.assertEqual(code, 250)
        code, _ = self.rcpt_reply("Postmaster")
        self.assertEqual(code, 250)
        code, _ = self.rcpt_reply("root+tag@%s" % DOMAIN)  # recipient_delimiter
        self.assertEqual(code, 250)
        code, _ = self.rcpt_reply("ROOT@%s" % DOMAIN.upper())
        self.assertEqual(code, 250)
        code, _ = self.rcpt_reply("alice@%s" % DOMAIN)  # an alias, not a system user
        self.assertEqual(code, 250)
        code, _ = self.rcpt_reply("Alice+news@%s" % DOMAIN)
        self.assertEqual(code, 250)

    def test_broken_alias_table_defers(self):
        os.unlink(os.path.join(self.inst.conf, "aliases.db"))
        code, text = self.rcpt_reply("root@%s" % DOMAIN)
        self.assertEqual(code, 451, text)
        self.assertTrue(text.startswith(b"4.3.0"), text)

    def test_relay_denied_and_tricks(self):
        for rcpt in ["victim@elsewhere.example",
                     '"victim@elsewhere.example"@%s' % DOMAIN,
                     "victim%%elsewhere.example@%s" % DOMAIN,
                     "elsewhere.example!victim@%s" % DOMAIN,
                     "@%s:victim@elsewhere.example" % DOMAIN]:
            code, text = self.rcpt_reply(rcpt)
            self.assertIn(code, (550, 553, 554, 501), (rcpt, code, text))
            if code == 554:
                self.assertIn(b"5.7.1", text)
        code, text = self.rcpt_reply("victim@elsewhere.example")
        self.assertEqual((code, text[:5]), (554, b"5.7.1"))
        self.assertIn(b"Relay access denied", text)
        # Trailing dot is a syntax error, never a way around the domain check.
        code, _ = self.rcpt_reply("victim@elsewhere.example.")
        self.assertEqual(code, 501)
        # relay_domains are accepted from anyone.
        code, _ = self.rcpt_reply("anyone@relay.test")
        self.assertEqual(code, 250)
        self.assertEqual(self.queued(), [])

    # -- limits -------------------------------------------------------------
    def test_size_limit(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("c.example.org")
            code, _ = c.mail("a@example.org", ["SIZE=200000"])
            self.assertEqual(code, 552)
            c.rset()
            c.mail("a@example.org")
            c.rcpt("root@%s" % DOMAIN)
            code, text = c.data(b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" * 1)
            self.assertEqual(code, 250)
            c.mail("a@example.org")
            c.rcpt("root@%s" % DOMAIN)
            code, text = c.data(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 200)
            self.assertEqual(code, 552, text)
            self.assertTrue(text.startswith(b"5.3.4"), text)
        self.assertEqual(len(self.queued()), 1)  # only the small one

    def test_recipient_limit(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("c.example.org")
            c.mail("a@example.org")
            codes = [c.rcpt("root@%s" % DOMAIN)[0] for _ in range(55)]
        self.assertEqual(codes[:50], [250] * 50)
        self.assertEqual(codes[50:], [452] * 5)

    def test_pregreet_talker_refused(self):
        self.inst.append_conf("smtpd_pregreet_wait = 300")
        self.inst.petrel("reload")
        time.sleep(0.5)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"EHLO impatient.example\r\n")
        out = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        self.assertTrue(out.startswith(b"554 5.5.1"), out)
        self.inst.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] \(.*greet")

    # -- hostile input ------------------------------------------------------
    def test_smuggling_bare_lf_rejected(self):
        payloads = [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n", b"\r\n.\r"]
        for p in payloads:
            out = self.dialogue([b"EHLO c.example.org", b"MAIL FROM:<a@example.org>",
                                 b"RCPT TO:<root@" + DOMAIN.encode() + b">", b"DATA",
                                 b"Subject: first\r\n\r\nbody" + p +
                                 b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<root@" +
                                 DOMAIN.encode() + b">\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n"])
            self.assertRegex(out, r"\n5\d\d 5\.5\.2", (p, out))
            self.assertNotIn("queued as", out, p)
        self.assertEqual(self.queued(), [])

    def test_bad_commands(self):
        out = self.dialogue([b"EHLO c.example.org", b"MAIL FROM:<a@exa\x00mple.org>",
                             b"X" * 100000, b"RCPT TO:<root@" + DOMAIN.encode() + b">",
                             b"DATA", b"FOO", b"QUIT"])
        self.assertRegex(out, r"\n50[01] 5\.5\.\d")         # NUL
        self.assertRegex(out, r"\n500 5\.5\.2 .*too long")  # overlong line
        self.assertRegex(out, r"\n503 5\.5\.1")              # RCPT/DATA out of order
        self.assertRegex(out, r"\n500 5\.5\.2")              # unknown command
        self.assertIn("221 2.0.0", out)

    def test_abrupt_disconnects_leave_nothing(self):
        rcpt = b"RCPT TO:<root@" + DOMAIN.encode() + b">"
        states = [[], [b"EHLO c"], [b"EHLO c", b"MAIL FROM:<a@b.org>"],
                  [b"EHLO c", b"MAIL FROM:<a@b.org>", rcpt],
                  [b"EHLO c", b"MAIL FROM:<a@b.org>", rcpt, b"DATA", b"Subject: cut"],
                  [b"EHLO c", b"MAIL FROM:<a@b.org>", rcpt, b"BDAT 100\r\nonly part"]]
        for lines in states:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.recv(4096)
            for line in lines:
                s.sendall(line if line.endswith(b"part") else line + b"\r\n")
            time.sleep(0.1)
            s.close()
        time.sleep(0.5)
        self.assertEqual(os.listdir(os.path.join(self.inst.queue, "incoming")), [])

    def test_concurrent_sessions(self):
        def one(i):
            with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as c:
                c.sendmail("a@example.org", ["root@%s" % DOMAIN],
                           b"Subject: concurrent %d\r\n\r\nbody\r\n" % i)
            return True

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(one, range(200)))
        self.assertEqual(results, [True] * 200)
        self.assertEqual(len(self.queued()), 200)
        self.assertLessEqual(self.inst.status()["smtp"]["procs"], 20)


if __name__ == "__main__":
    unittest.main()
