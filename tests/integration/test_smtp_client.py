"""Integration tests of smtp-client on a running instance (master + qmgr +
smtp-client): remote mail is injected with bin/queue-inject, qmgr hands it to
smtp-client at private/smtp, which finds the next hop through a dnsmasq
started here on a loopback port (dns_servers) and delivers to a FAKE
receiving SMTP server written here (smtp_port), which records what it gets
and answers as each test wants. No local delivery agent runs: notifications
to local senders simply wait in the queue, where the tests read them."""
import email
import email.policy
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from petrel_instance import Instance, ensure_users, free_port, is_root, REPO
from queuefile import QueueFile

HOST = "client.petrel.test"
TLS_DIR = os.path.join(REPO, "tests", "fixtures", "tls")
BODY = ("From: alice@localhost\r\nTo: bob@b.test\r\nSubject: smtp client test\r\n\r\n"
        "hello\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n")

DNSMASQ_RECORDS = [
    "--mx-host=b.test,mx.b.test,10",
    "--host-record=mx.b.test,127.0.0.1",
    # a dead preferred MX (nothing listens on 127.0.0.2), a live second one
    "--mx-host=prio.test,mx1.prio.test,10",
    "--mx-host=prio.test,mx2.prio.test,20",
    "--host-record=mx1.prio.test,127.0.0.2",
    "--host-record=mx2.prio.test,127.0.0.1",
    # no MX: the domain's own address (implicit MX)
    "--host-record=implicit.test,127.0.0.1",
    # an MX that points back at this host (myhostname)
    "--mx-host=loop.test,%s,10" % HOST,
    # RFC 7505 null MX: "0 ."
    "--mx-host=null.test,.,0",
    # a name that does not exist
    "--address=/nx.test/",
    # TLS: an MX whose name is in the test certificate
    "--mx-host=tls.test,mx.petrel.test,10",
    "--host-record=mx.petrel.test,127.0.0.1",
    # answer from the records above only: a known name without records of
    # the asked type gets NODATA, not REFUSED (there is no upstream server)
    "--local=/test/",
    "--local=/petrel.test/",
]


def dnsmasq_path():
    for p in ("/usr/sbin/dnsmasq", shutil.which("dnsmasq") or ""):
        if p and os.path.exists(p):
            return p
    return None


class FakeSMTP:
    """A receiving SMTP server on 127.0.0.1. Options (attributes, change
    them before a test delivers): ext (EHLO keywords), rcpt(addr) -> reply
    line, data_reply, greeting (bytes sent at connect; "hostile" modes are
    callables that get the socket), tls (an SSLContext: offer STARTTLS)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(20)
        self.port = self.sock.getsockname()[1]
        self.ext = ["PIPELINING", "SIZE 10000000", "8BITMIME", "DSN"]
        self.rcpt = lambda addr: b"250 2.1.5 ok"
        self.data_reply = b"250 2.0.0 Ok: queued as FAKE1"
        self.greeting = b"220 fake.b.test ESMTP\r\n"
        self.tls = None
        self.lock = threading.Lock()
        self.sessions = []  # dicts: commands, data, pipelined, tls
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def wait_sessions(self, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                done = [s for s in self.sessions if s["closed"]]
                if len(done) >= n:
                    return done
            time.sleep(0.05)
        raise AssertionError("fake server saw %d finished sessions, expected %d"
                             % (len(self.sessions), n))

    def _serve(self, c):
        sess = dict(commands=[], data=None, pipelined=False, tls=False, closed=False)
        with self.lock:
            self.sessions.append(sess)
        conn = c
        buf = b""

        def readline(wait=30):
            nonlocal buf
            conn.settimeout(wait)
            while b"\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    raise EOFError
                buf += d
            line, buf = buf.split(b"\r\n", 1)
            return line

        try:
            if callable(self.greeting):
                self.greeting(c)
                return
            c.sendall(self.greeting)
            while True:
                line = readline()
                sess["commands"].append(line.decode("utf-8", "replace"))
                verb = line[:4].upper()
                if verb in (b"EHLO",):
                    ext = list(self.ext) + (["STARTTLS"] if self.tls and not sess["tls"] else [])
                    out = [b"250-fake.b.test"] + [b"250-" + e.encode() for e in ext[:-1]]
                    out.append(b"250 " + ext[-1].encode() if ext else b"250 fake")
                    if not ext:
                        out = [b"250 fake.b.test"]
                    conn.sendall(b"\r\n".join(out) + b"\r\n")
                elif verb == b"HELO":
                    conn.sendall(b"250 fake.b.test\r\n")
                elif verb == b"STAR":
                    conn.sendall(b"220 2.0.0 go ahead\r\n")
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    sess["tls"] = True
                    buf = b""
                elif verb == b"MAIL":
                    # Pipelining: RCPT and DATA arrive before MAIL is answered.
                    deadline = time.time() + 0.5
                    conn.settimeout(0.1)
                    while b"DATA\r\n" not in buf and time.time() < deadline:
                        try:
                            d = conn.recv(65536)
                            if not d:
                                break
                            buf += d
                        except (socket.timeout, ssl.SSLError):
                            pass
                    sess["pipelined"] = b"DATA\r\n" in buf
                    conn.sendall(b"250 2.1.0 ok\r\n")
                elif verb == b"RCPT":
                    addr = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                    conn.sendall(self.rcpt(addr) + b"\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    raw = b""
                    while True:
                        l = readline()
                        if l == b".":
                            break
                        raw += l + b"\r\n"
                    sess["raw"] = raw
                    sess["data"] = b"".join(
                        (l[1:] if l.startswith(b".") else l) + b"\r\n"
                        for l in raw.split(b"\r\n")[:-1])
                    conn.sendall(self.data_reply + b"\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 bye\r\n")
                    return
                elif verb == b"RSET" or verb == b"NOOP":
                    conn.sendall(b"250 ok\r\n")
                else:
                    conn.sendall(b"502 5.5.2 what\r\n")
        except (OSError, EOFError, ssl.SSLError):
            pass
        finally:
            sess["closed"] = True
            try:
                conn.close()
            except OSError:
                pass


@unittest.skipIf(dnsmasq_path() is None, "dnsmasq is not installed (scripts/install-deps.sh)")
class SmtpClientTest(unittest.TestCase):
    tls_level = "may"

    def setUp(self):
        if is_root():
            ensure_users()
        self.fake = FakeSMTP()
        self.dns_port = free_port()
        self.dnsmasq = subprocess.Popen(
            [dnsmasq_path(), "--no-daemon", "--port=%d" % self.dns_port,
             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--conf-file=/dev/null", "--user=" + pwd.getpwuid(os.geteuid()).pw_name,
             "--pid-file="] + DNSMASQ_RECORDS + self.extra_dns(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.inst = None
        time.sleep(0.3)
        self.assertIsNone(self.dnsmasq.poll(), "dnsmasq did not start")

    def extra_dns(self):
        return []

    def start(self, dns_servers=None, extra=()):
        self.inst = Instance(
            ["qmgr daemon unix:public/qmgr - - 1 qmgr",
             "smtp accept unix:private/smtp - - 20 smtp-client"],
            params=["myhostname = " + HOST,
                    "mydestination = localhost, $myhostname",
                    "alias_maps =",
                    "dns_servers = " + (dns_servers or "127.0.0.1:%d" % self.dns_port),
                    "smtp_port = %d" % self.fake.port,
                    "smtp_connect_timeout = 2s",
                    "smtp_helo_timeout = 3s",
                    "smtp_mail_timeout = 3s",
                    "smtp_rcpt_timeout = 3s",
                    "smtp_data_init_timeout = 3s",
                    "smtp_data_done_timeout = 3s",
                    "smtp_quit_timeout = 2s",
                    "smtp_tls_security_level = " + self.tls_level,
                    # a copy inside the instance: the checkout may not be readable
                    # by the service user (a CI clone in a 0700 directory)
                    "smtp_tls_CAfile = $config_directory/ca.pem",
                    "minimal_backoff_time = 60s",
                    "maximal_backoff_time = 120s",
                    "queue_run_delay = 60s"] + list(extra))
        shutil.copyfile(os.path.join(TLS_DIR, "ca.pem"), os.path.join(self.inst.conf, "ca.pem"))
        os.chmod(os.path.join(self.inst.conf, "ca.pem"), 0o644)
        self.inst.start()
        self.inst.wait_log(r"qmgr\[\d+\]: queue manager started")

    def tearDown(self):
        log = ""
        if self.inst:
            log = self.inst.read_log()
            self.inst.cleanup()
        self.fake.close()
        self.dnsmasq.send_signal(signal.SIGTERM)
        try:
            self.dnsmasq.wait(5)
        except subprocess.TimeoutExpired:
            self.dnsmasq.kill()
            self.dnsmasq.wait()
        self.assertNotRegex(log, r"smtp-client pid \d+ (killed by signal|exit status)",
                            "smtp-client crashed")

    # -- helpers ------------------------------------------------------------
    def inject(self, sender, *rcpts, body=BODY, args=()):
        cmd = [os.path.join(self.inst.libexec, "queue-inject"), "-c", self.inst.conf,
               "-f", sender] + list(args) + list(rcpts)
        if is_root():
            pw = pwd.getpwnam("petrel")
            cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                   "--clear-groups", "--"] + cmd
        r = subprocess.run(cmd, input=body.encode(), capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode().strip()

    def where(self, qid):
        for d in ("incoming", "active", "deferred", "corrupt", "hold"):
            if os.path.exists(os.path.join(self.inst.queue, d, qid)):
                return d
        return None

    def wait_where(self, qid, want, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.where(qid) == want:
                return
            time.sleep(0.05)
        self.fail("%s is in %s, expected %s; log:\n%s" % (qid, self.where(qid), want,
                                                          self.inst.read_log()))

    def notifications(self, timeout=15):
        """Queue files with the null sender (notifications)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = []
            for d in ("incoming", "active", "deferred"):
                for p in glob.glob(os.path.join(self.inst.queue, d, "*")):
                    try:
                        qf = QueueFile(p)
                    except (OSError, ValueError):
                        continue
                    if qf.sender == "":
                        found.append(qf)
            if found:
                return found
            time.sleep(0.1)
        self.fail("no notification queued; log:\n" + self.inst.read_log())

    def status_line(self, qid, rcpt, status, dsn, timeout=30):
        return self.inst.wait_log(r"%s: to=<%s>, relay=smtp, delay=[\d.]+, dsn=%s, status=%s "
                                  r"\((.*)\)" % (qid, rcpt.replace(".", r"\."), dsn, status),
                                  timeout=timeout).group(1)

    # -- delivery -------------------------------------------------------------
    def test_delivered_exact_message_with_pipelining(self):
        self.start()
        qid = self.inject("alice@localhost", "bob@b.test", "carol@B.TEST")
        self.wait_where(qid, None)
        sess = self.fake.wait_sessions(1)
        self.assertEqual(len(sess), 1, "both recipients of one domain in one session")
        s = sess[0]
        self.assertEqual(s["data"], BODY.encode())
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\n", s["raw"])
        self.assertTrue(s["pipelined"], "MAIL, RCPT and DATA were not pipelined")
        cmds = s["commands"]
        self.assertEqual(cmds[0], "EHLO " + HOST)
        self.assertTrue(cmds[1].startswith("MAIL FROM:<alice@localhost> SIZE="), cmds)
        self.assertEqual(cmds[2:5], ["RCPT TO:<bob@b.test>", "RCPT TO:<carol@B.TEST>", "DATA"])
        self.assertEqual(cmds[-1], "QUIT")
        reason = self.status_line(qid, "bob@b.test", "sent", "2.0.0")
        self.assertIn("mx.b.test[127.0.0.1]:%d: 250 2.0.0 Ok: queued as FAKE1" % self.fake.port,
                      reason)
        self.status_line(qid, "carol@B.TEST", "sent", "2.0.0")
        self.inst.wait_log(r"%s: removed" % qid)

    def test_no_pipelining_helo_fallback_and_implicit_mx(self):
        self.fake.ext = []
        self.start()
        qid = self.inject("alice@localhost", "dave@implicit.test")
        self.wait_where(qid, None)
        s = self.fake.wait_sessions(1)[0]
        self.assertFalse(s["pipelined"])
        self.assertEqual(s["data"], BODY.encode())
        self.assertTrue(s["commands"][1].startswith("MAIL FROM:<alice@localhost>"))
        self.assertNotIn("SIZE=", s["commands"][1])

    def test_dsn_parameters_passed_on(self):
        self.start()
        qid = self.inject("alice@localhost", "bob@b.test",
                          args=["-N", "SUCCESS,FAILURE", "-R", "HDRS", "-E", "env id+1",
                                "-O", "rfc822;x+y@b.test"])
        self.wait_where(qid, None)
        cmds = self.fake.wait_sessions(1)[0]["commands"]
        self.assertRegex(cmds[1], r"^MAIL FROM:<alice@localhost> SIZE=\d+ RET=HDRS "
                                  r"ENVID=env\+20id\+2B1$")
        self.assertEqual(cmds[2], "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE "
                                  "ORCPT=rfc822;x+2By@b.test")

    def test_dead_first_mx_second_used(self):
        self.start()
        qid = self.inject("alice@localhost", "erin@prio.test")
        self.wait_where(qid, None)
        self.inst.wait_log(r"%s: connect to mx1\.prio\.test\[127\.0\.0\.2\]:%d: "
                           r"Connection refused" % (qid, self.fake.port))
        reason = self.status_line(qid, "erin@prio.test", "sent", "2.0.0")
        self.assertIn("mx2.prio.test[127.0.0.1]", reason)

    def test_relayhost_skips_mx(self):
        self.start(extra=["relayhost = [127.0.0.1]:%d" % self.fake.port])
        qid = self.inject("alice@localhost", "bob@nx.test", "carol@b.test")
        self.wait_where(qid, None)
        reason = self.status_line(qid, "bob@nx.test", "sent", "2.0.0")
        self.assertIn("127.0.0.1[127.0.0.1]:%d" % self.fake.port, reason)
        self.status_line(qid, "carol@b.test", "sent", "2.0.0")

    # -- failures from the peer ----------------------------------------------
    def test_rcpt_550_bounces(self):
        self.fake.rcpt = lambda a: (b"550 5.1.1 <%s>: no such user" % a.encode()
                                    if a.startswith("nobody") else b"250 2.1.5 ok")
        self.start()
        qid = self.inject("alice@localhost", "nobody@b.test", "bob@b.test")
        self.wait_where(qid, None)
        reason = self.status_line(qid, "nobody@b.test", "bounced", "5.1.1")
        self.assertEqual(reason, "host mx.b.test[127.0.0.1] said: 550 5.1.1 <nobody@b.test>: "
                                 "no such user (in reply to RCPT TO command)")
        self.status_line(qid, "bob@b.test", "sent", "2.0.0")
        dsn = self.notifications()
        self.assertEqual([r["address"] for r in dsn[0].recipients], ["alice@localhost"])
        text = dsn[0].content.decode("utf-8", "replace")
        self.assertIn("nobody@b.test", text)
        self.assertIn("5.1.1", text)
        self.assertIn("said: 550 5.1.1", text)

    def test_rcpt_550_bounce_is_rfc3464(self):
        """The bounce for a remote 550 (multi-line) names the remote server in
        Remote-MTA and carries its raw reply as "Diagnostic-Code: smtp;" (the
        lines joined with spaces, as Postfix does); the human part keeps the
        explanation."""
        self.fake.rcpt = lambda a: (b"550-5.1.1 <%s>: no such user\r\n"
                                    b"550 5.1.1 check the address" % a.encode()
                                    if a.startswith("nobody") else b"250 2.1.5 ok")
        self.start()
        qid = self.inject("alice@localhost", "nobody@b.test", "bob@b.test",
                          args=["-O", "rfc822;NoBody@B.test"])
        self.wait_where(qid, None)
        self.status_line(qid, "nobody@b.test", "bounced", "5.1.1")
        dsn = self.notifications()
        msg = email.message_from_bytes(dsn[0].content)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        human, report = msg.get_payload()[0], msg.get_payload()[1]
        self.assertEqual(report.get_content_type(), "message/delivery-status")
        groups = report.get_payload()
        self.assertEqual(len(groups), 2, "per-message fields and one recipient")
        rcpt = groups[1]

        def field(name):
            v = rcpt.get(name)
            self.assertIsNotNone(v, "%s missing:\n%s" % (name, report.as_string()))
            return re.sub(r"\r?\n(?=[ \t])", "", v)  # unfold
        self.assertEqual(field("Original-Recipient"), "rfc822;NoBody@B.test")
        self.assertEqual(field("Final-Recipient"), "rfc822; nobody@b.test")
        self.assertEqual(field("Action"), "failed")
        self.assertEqual(field("Status"), "5.1.1")
        self.assertEqual(field("Remote-MTA"), "dns; mx.b.test")
        self.assertEqual(field("Diagnostic-Code"),
                         "smtp; 550-5.1.1 <nobody@b.test>: no such user "
                         "550 5.1.1 check the address")
        text = human.get_payload(decode=True).decode()
        self.assertIn("<nobody@b.test>: host mx.b.test[127.0.0.1] said: 550 5.1.1 "
                      "<nobody@b.test>: no such user 5.1.1 check the address "
                      "(in reply to RCPT TO command)", text)

    def test_rcpt_450_defers(self):
        self.fake.rcpt = lambda a: b"450 4.2.0 <%s>: greylisted, try later" % a.encode()
        self.start()
        qid = self.inject("alice@localhost", "bob@b.test")
        self.wait_where(qid, "deferred")
        reason = self.status_line(qid, "bob@b.test", "deferred", "4.2.0")
        self.assertIn("said: 450 4.2.0 <bob@b.test>: greylisted", reason)
        qf = QueueFile(os.path.join(self.inst.queue, "deferred", qid))
        self.assertEqual([r["status"] for r in qf.recipients], ["W"])

    def test_expired_450_bounce_keeps_remote_reply(self):
        """A recipient deferred by 450 until the queue lifetime ends: the
        bounce at expiry still has Remote-MTA and the last raw reply (from
        the last attempt; nothing is kept between attempts)."""
        self.fake.rcpt = lambda a: b"450 4.2.0 <%s>: greylisted, try later" % a.encode()
        self.start(extra=["maximal_queue_lifetime = 2s", "minimal_backoff_time = 1s",
                          "maximal_backoff_time = 1s", "queue_run_delay = 1s"])
        qid = self.inject("alice@localhost", "bob@b.test")
        self.inst.wait_log(r"%s: from=<alice@localhost>, status=expired" % qid, timeout=20)
        dsn = self.notifications()
        msg = email.message_from_bytes(dsn[0].content)
        human, report = msg.get_payload()[0], msg.get_payload()[1]
        rcpt = report.get_payload()[1]
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.b.test")
        self.assertEqual(rcpt["Diagnostic-Code"],
                         "smtp; 450 4.2.0 <bob@b.test>: greylisted, try later")
        self.assertIn("<bob@b.test>: message expired: host mx.b.test[127.0.0.1] said: 450",
                      human.get_payload(decode=True).decode())

    def test_size_limit_bounces(self):
        self.fake.ext = ["SIZE 50"]
        self.start()
        qid = self.inject("alice@localhost", "bob@b.test")
        self.wait_where(qid, None)
        reason = self.status_line(qid, "bob@b.test", "bounced", "5.3.4")
        self.assertIn("exceeds size limit 50 of server mx.b.test[127.0.0.1]", reason)
        s = self.fake.wait_sessions(1)[0]
        self.assertFalse(any(c.startswith("MAIL") for c in s["commands"]))

    def test_smtputf8_needed_and_missing_bounces(self):
        self.start()
        qid = self.inject("alice@localhost", "j\u00f6rg@b.test")
        self.wait_where(qid, None)
        self.status_line(qid, "j\u00f6rg@b.test", "bounced", "5.6.7")

    # -- DNS ------------------------------------------------------------------
    def test_nxdomain_bounces(self):
        self.start()
        qid = self.inject("alice@localhost", "bob@nx.test")
        self.wait_where(qid, None)
        reason = self.status_line(qid, "bob@nx.test", "bounced", "5.1.2")
        self.assertIn("Host or domain name not found", reason)
        self.notifications()

    def test_null_mx_bounces(self):
        self.start()
        qid = self.inject("alice@localhost", "bob@null.test")
        self.wait_where(qid, None)
        reason = self.status_line(qid, "bob@null.test", "bounced", "5.1.10")
        self.assertEqual(reason, "Domain null.test does not accept mail (nullMX)")
        self.assertEqual(self.fake.sessions, [])

    def test_mx_to_myself_bounces(self):
        self.start()
        qid = self.inject("alice@localhost", "bob@loop.test")
        self.wait_where(qid, None)
        reason = self.status_line(qid, "bob@loop.test", "bounced", "5.4.6")
        self.assertEqual(reason, "mail for loop.test loops back to myself")

    def test_dns_server_down_defers(self):
        self.start(dns_servers="127.0.0.1:%d" % free_port())
        qid = self.inject("alice@localhost", "bob@b.test")
        self.wait_where(qid, "deferred")
        reason = self.status_line(qid, "bob@b.test", "deferred", "4.4.3")
        self.assertIn("try again", reason)

    def test_dns_server_silent_defers(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            self.start(dns_servers="127.0.0.1:%d" % silent.getsockname()[1])
            qid = self.inject("alice@localhost", "bob@b.test")
            self.wait_where(qid, "deferred", timeout=40)
            reason = self.status_line(qid, "bob@b.test", "deferred", "4.4.3")
            self.assertIn("timeout", reason)
        finally:
            silent.close()

    # -- hostile servers (BAD-INPUT row 12) ----------------------------------
    def hostile(self, greeting, expect):
        self.fake.greeting = greeting
        self.start()
        qid = self.inject("alice@localhost", "bob@b.test")
        self.wait_where(qid, "deferred", timeout=40)
        reason = self.status_line(qid, "bob@b.test", "deferred", r"4\.\d\.\d")
        self.assertRegex(reason, expect)
        return reason

    def test_hostile_1mb_reply_line(self):
        def g(c):
            c.sendall(b"220 " + b"x" * (1 << 20) + b"\r\n")
            time.sleep(1)
        self.hostile(g, r"reply line longer than 4096 bytes")

    def test_hostile_endless_multiline_reply(self):
        def g(c):
            c.settimeout(5)
            try:
                while True:
                    c.sendall(b"220-still going \xff\xfe 8-bit\r\n" * 100)
            except OSError:
                pass
        self.hostile(g, r"reply longer than \d+ lines")

    def test_hostile_no_final_line(self):
        def g(c):
            c.sendall(b"220-first line\r\n220-second line\r\n")
            time.sleep(6)
        self.hostile(g, r"timed out while reading a reply \(no final line")

    def test_hostile_mismatched_codes(self):
        def g(c):
            c.sendall(b"220-hello\r\n550 bye\r\n")
            time.sleep(1)
        self.hostile(g, r"mismatched codes \(220 then 550\)")

    def test_greeting_421_defers(self):
        self.fake.greeting = b"421 4.3.2 too busy\r\n"
        self.start()
        qid = self.inject("alice@localhost", "bob@b.test")
        self.wait_where(qid, "deferred")
        reason = self.status_line(qid, "bob@b.test", "deferred", "4.3.2")
        self.assertIn("refused to talk to me: 421 4.3.2 too busy", reason)


@unittest.skipIf(dnsmasq_path() is None, "dnsmasq is not installed (scripts/install-deps.sh)")
class StartTlsTest(unittest.TestCase):
    """STARTTLS with the test CA: encrypt with any name, verify against the
    MX name (mx.petrel.test is in the certificate)."""

    def run_level(self, level, domain, tls_offered=True):
        t = SmtpClientTest("test_delivered_exact_message_with_pipelining")
        t.tls_level = level
        t.setUp()
        try:
            if tls_offered:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(os.path.join(TLS_DIR, "server.pem"),
                                    os.path.join(TLS_DIR, "server.test-only.key"))
                t.fake.tls = ctx
            t.start()
            qid = t.inject("alice@localhost", "bob@" + domain)
            return t, qid
        except BaseException:
            t.tearDown()
            raise

    def test_encrypt(self):
        t, qid = self.run_level("encrypt", "b.test")
        try:
            t.wait_where(qid, None)
            s = t.fake.wait_sessions(1)[0]
            self.assertTrue(s["tls"])
            self.assertEqual([c.split()[0] for c in s["commands"][:3]], ["EHLO", "STARTTLS", "EHLO"])
            self.assertEqual(s["data"], BODY.encode())
            t.inst.wait_log(r"%s: Untrusted TLS connection established to mx\.b\.test" % qid)
        finally:
            t.tearDown()

    def test_verify(self):
        t, qid = self.run_level("verify", "tls.test")
        try:
            t.wait_where(qid, None)
            self.assertTrue(t.fake.wait_sessions(1)[0]["tls"])
            t.inst.wait_log(r"%s: Verified TLS connection established to mx\.petrel\.test" % qid)
        finally:
            t.tearDown()

    def test_verify_wrong_name_defers(self):
        t, qid = self.run_level("verify", "b.test")
        try:
            t.wait_where(qid, "deferred")
            reason = t.status_line(qid, "bob@b.test", "deferred", "4.7.5")
            self.assertIn("certificate verification failed", reason)
        finally:
            t.tearDown()

    def test_encrypt_not_offered_defers(self):
        t, qid = self.run_level("encrypt", "b.test", tls_offered=False)
        try:
            t.wait_where(qid, "deferred")
            reason = t.status_line(qid, "bob@b.test", "deferred", "4.7.4")
            self.assertIn("TLS is required, but was not offered", reason)
        finally:
            t.tearDown()


if __name__ == "__main__":
    unittest.main()
