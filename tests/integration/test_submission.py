"""Integration tests of the submission service (587 STARTTLS, 465 implicit
TLS, AUTH) on a running instance: the primer's openssl s_client dialogues,
swaks, Python's smtplib, and the attacks of BAD-INPUT.md rows 4 and 5 (SASL
decoders, AUTH before TLS, plaintext pipelined behind STARTTLS), sender
spoofing, brute force throttling; after every refusal nothing is queued.

Passwords are checked by the auth service. When the build has one
(bin/auth), the instance runs it with a passwd-file of virtual users;
otherwise a small fake speaking the same protocol (docs/ipc.md "auth",
lib/mail/auth_client.h) listens on private/auth, so that submission can be
tested on its own."""
import base64
import glob
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

from petrel_instance import BIN, REPO, Instance, ensure_users, free_port, is_root
from queuefile import QueueFile

DOMAIN = "petrel.test"
VDOMAIN = "virt.test"
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tls")
CA = os.path.join(FIXTURES, "ca.pem")

# The users: a virtual user (login with '@') and a system user (login
# without '@'). With the real auth service, the system user is created by
# the test (root only) and checked through PAM.
ALICE = "alice@%s" % VDOMAIN
ALICE_PW = "Wonder land!"
BOB = "petrelsub"
BOB_PW = "b0b-secret"
USERS = {ALICE: ALICE_PW, BOB: BOB_PW}
REAL_AUTH = os.path.exists(os.path.join(BIN, "auth"))
FAKE_THROTTLE_AFTER = 20  # failures per client address before "throttled"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def client_context():
    return ssl.create_default_context(cafile=CA)


# -- a fake auth service (used only when bin/auth is not built) --------------
def _netstring(b):
    return str(len(b)).encode() + b":" + b + b","


def _read_record(conn):
    """Reads one attribute record (docs/ipc.md) from conn; returns a dict."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError
            buf += chunk

    def netstring():
        nonlocal buf
        while b":" not in buf:
            need(len(buf) + 1)
        length, _, rest = buf.partition(b":")
        n = int(length)
        need(len(length) + 1 + n + 1)
        value = buf[len(length) + 1:len(length) + 1 + n]
        buf = buf[len(length) + 1 + n + 1:]
        return value

    rec = {}
    while True:
        name = netstring()
        if name == b"":
            return rec
        rec[name.decode()] = netstring()


class FakeAuth(threading.Thread):
    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.failures = {}
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(16)
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self.answer(conn)
                except (EOFError, OSError, ValueError):
                    pass

    def answer(self, conn):
        req = _read_record(conn)
        self.requests.append(req)
        user = req.get("user", b"").decode("utf-8", "replace")
        client = req.get("client", b"").decode()
        if self.failures.get(client, 0) >= FAKE_THROTTLE_AFTER:
            reply = [("status", "throttled"), ("reason", "too many failures")]
        elif USERS.get(user, "").encode() == req.get("password") and user in USERS:
            reply = [("status", "ok"), ("user", user), ("reason", "ok")]
        else:
            self.failures[client] = self.failures.get(client, 0) + 1
            reply = [("status", "fail"), ("reason", "bad password")]
        out = _netstring(b"protocol") + _netstring(b"auth")
        for k, v in reply:
            out += _netstring(k.encode()) + _netstring(v.encode())
        conn.sendall(out + b"0:,")

    def stop(self):
        self.stopped = True
        self.sock.close()


class SubmissionTest(unittest.TestCase):
    created_user = False

    @classmethod
    def setUpClass(cls):
        # The system user for PAM (real auth service only).
        if REAL_AUTH and is_root():
            import pwd
            try:
                pwd.getpwnam(BOB)
            except KeyError:
                subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                                BOB], check=True)
                cls.created_user = True
            subprocess.run(["chpasswd"], input="%s:%s\n" % (BOB, BOB_PW), text=True, check=True)

    @classmethod
    def tearDownClass(cls):
        if cls.created_user:
            subprocess.run(["userdel", BOB], check=False)

    def need_system_user(self):
        if REAL_AUTH and not is_root():
            self.skipTest("the system user for PAM can only be created as root")

    def setUp(self):
        if is_root():
            ensure_users()
        self.port = free_port()    # 587-like
        self.sport = free_port()   # 465-like
        self.real_auth = REAL_AUTH
        services = ["submission accept 127.0.0.1:%d - - 10 submission" % self.port,
                    "submissions accept 127.0.0.1:%d - - 10 submission -o tls_mode=implicit"
                    % self.sport]
        if self.real_auth:
            services.append("auth accept unix:private/auth root - 10 auth")
        self.inst = Instance(
            services,
            params=["myhostname = mx.%s" % DOMAIN,
                    "mydestination = %s, $myhostname, localhost" % DOMAIN,
                    "virtual_mailbox_domains = %s" % VDOMAIN,
                    "virtual_mailbox_maps = texthash:$config_directory/vmailbox",
                    "mynetworks = 192.0.2.0/24",
                    "smtpd_pregreet_wait = 0",
                    "smtpd_starttls_timeout = 5s",
                    "smtpd_error_sleep_time = 0",
                    "smtpd_sender_login_maps = texthash:$config_directory/sender_logins",
                    "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps"])
        self.inst.write_file("aliases", "postmaster: root\n")
        self.inst.write_file("vmailbox", "%s %s/alice/\n" % (ALICE, VDOMAIN))
        self.inst.write_file("sender_logins",
                             "shared@%s %s, %s\n@lists.%s %s\n" % (DOMAIN, ALICE, BOB, DOMAIN, BOB))
        self.cert = self.install("server-chain.pem", "cert.pem")
        self.key = self.install("server.test-only.key", "key.test-only.pem", secret=True)
        self.inst.append_conf("smtpd_tls_cert_file = " + self.cert)
        self.inst.append_conf("smtpd_tls_key_file = " + self.key)
        if self.real_auth:
            self.setup_real_auth()
        self.inst.petrel("newaliases")
        self.inst.start()
        self.fake = None
        if not self.real_auth:
            path = os.path.join(self.inst.queue, "private", "auth")
            deadline = time.time() + 10
            while not os.path.isdir(os.path.dirname(path)) and time.time() < deadline:
                time.sleep(0.05)
            self.fake = FakeAuth(path)
            self.fake.start()

    def setup_real_auth(self):
        """Virtual users in a passwd-file (docs/auth.md)."""
        lines = []
        for user, pw in USERS.items():
            if "@" not in user:
                continue
            # SHA512-CRYPT made by openssl (Python's crypt module is gone in 3.13).
            h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=pw + "\n",
                               capture_output=True, text=True, check=True).stdout.strip()
            lines.append("%s:{SHA512-CRYPT}%s" % (user, h))
        path = self.inst.write_file("passwd", "\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        self.inst.append_conf("auth_passwd_file = " + path)
        # Throttle after as many failures as the fake does, without long waits.
        self.inst.append_conf("auth_failure_limit = %d" % FAKE_THROTTLE_AFTER)
        self.inst.append_conf("auth_failure_delay = 10")
        self.inst.append_conf("auth_failure_max_delay = 100")

    def tearDown(self):
        if self.fake:
            self.fake.stop()
        self.inst.cleanup()

    # -- helpers --------------------------------------------------------
    def install(self, fixture, name, secret=False):
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

    def only_message(self):
        q = self.queued()
        self.assertEqual(len(q), 1, q)
        return q[0], self.queue_file(q[0])

    def smtp(self, login=None):
        """An smtplib session on 587 after STARTTLS (and AUTH when login)."""
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        c.ehlo("client.example.org")
        c.starttls(context=client_context())
        c.ehlo("client.example.org")
        if login:
            c.login(login, USERS[login])
        return c

    def s_client(self, script, implicit):
        if shutil.which("openssl") is None:
            self.skipTest("openssl not installed")
        if implicit:
            cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.sport]
        else:
            cmd = ["openssl", "s_client", "-starttls", "smtp", "-connect",
                   "127.0.0.1:%d" % self.port]
        cmd += ["-crlf", "-ign_eof", "-CAfile", CA, "-verify_return_error"]
        r = subprocess.run(cmd, input="\n".join(script) + "\n", capture_output=True,
                           text=True, timeout=60)
        self.assertIn("Verify return code: 0 (ok)", r.stdout, r.stdout + r.stderr)
        return r.stdout

    def tls_raw(self, implicit=True):
        """A raw TLS socket after the banner (465) or after STARTTLS (587);
        returns (socket, file)."""
        s = socket.create_connection(("127.0.0.1", self.sport if implicit else self.port),
                                     timeout=20)
        if not implicit:
            f = s.makefile("rb")
            assert f.readline().startswith(b"220")
            s.sendall(b"EHLO client.example.org\r\n")
            self.read_reply(f)
            s.sendall(b"STARTTLS\r\n")
            assert self.read_reply(f)[0].startswith("220")
            f.close()
        t = client_context().wrap_socket(s, server_hostname="mx.%s" % DOMAIN)
        tf = t.makefile("rb")
        if implicit:
            self.assertTrue(self.read_reply(tf)[0].startswith("220 mx.%s" % DOMAIN))
        return t, tf

    @staticmethod
    def read_reply(f):
        lines = []
        while True:
            line = f.readline().decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                break
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        return lines

    def cmd(self, t, tf, line):
        t.sendall(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.read_reply(tf)

    @staticmethod
    def head(qf):
        """The header section with LF line ends (for ^...$ patterns)."""
        return qf.headers().replace("\r\n", "\n")

    def check_authenticated_message(self, qf, qid, user):
        self.assertEqual(qf.attrs.get("auth_user"), user)
        head = self.head(qf)
        self.assertIn("with ESMTPSA id %s" % qid, head)
        self.assertRegex(head, r"\(TLSv1\.[23] [A-Z0-9_-]+\)")
        self.assertRegex(head, r"(?m)^Message-ID: <\d{14}\.[0-9A-V]{16}@mx\.petrel\.test>$")
        self.assertRegex(head, r"(?m)^Date: \w{3}, \d{1,2} \w{3} \d{4} ")

    # -- the primer's dialogues -----------------------------------------
    def primer_script(self):
        return ["HELO client.example.org", "AUTH LOGIN", b64(ALICE), b64(ALICE_PW),
                "MAIL FROM: <%s>" % ALICE, "RCPT TO: <root@%s>" % DOMAIN, "DATA",
                "Subject: test", "", "test test", ".", "quit"]

    def test_primer_465_openssl(self):
        out = self.s_client(self.primer_script(), implicit=True)
        self.assertIn("334 VXNlcm5hbWU6", out)
        self.assertIn("334 UGFzc3dvcmQ6", out)
        self.assertIn("235 2.7.0 Authentication successful", out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as [0-9A-V]{22}")
        self.assertIn("221 2.0.0", out)
        qid, qf = self.only_message()
        self.check_authenticated_message(qf, qid, ALICE)
        self.assertEqual(qf.sender, ALICE)
        self.assertEqual([r["address"] for r in qf.recipients], ["root@%s" % DOMAIN])
        self.assertIn(b"\r\n\r\ntest test\r\n", qf.content)
        self.inst.wait_log(r"unknown\[127\.0\.0\.1\]: sasl_method=LOGIN, sasl_username=%s"
                           % re.escape(ALICE))
        self.inst.wait_log(r"%s: client=unknown\[127\.0\.0\.1\], sasl_username=%s"
                           % (qid, re.escape(ALICE)))

    def test_primer_587_openssl_starttls(self):
        out = self.s_client(self.primer_script(), implicit=False)
        self.assertIn("235 2.7.0 Authentication successful", out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as [0-9A-V]{22}")
        qid, qf = self.only_message()
        self.check_authenticated_message(qf, qid, ALICE)

    # -- swaks ----------------------------------------------------------
    def swaks(self, tls_flag, port, mech, user=ALICE, password=ALICE_PW, sender=ALICE,
              extra=()):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                            tls_flag, "--tls-verify", "--tls-ca-path", CA,
                            "--auth", mech, "--auth-user", user, "--auth-password", password,
                            "--from", sender, "--to", "root@%s" % DOMAIN,
                            "--helo", "swaks.example.org",
                            "--header", "Subject: swaks %s %s" % (tls_flag, mech)] + list(extra),
                           capture_output=True, text=True, timeout=60)
        if "not available" in r.stdout + r.stderr and "TLS" in r.stdout + r.stderr:
            self.skipTest("swaks without TLS support (Net::SSLeay)")
        return r

    def test_swaks_starttls_and_implicit_plain_and_login(self):
        n = 0
        for flag, port in (("--tls", self.port), ("--tlsc", self.sport)):
            for mech in ("PLAIN", "LOGIN"):
                r = self.swaks(flag, port, mech)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("235 2.7.0 Authentication successful", r.stdout)
                self.assertRegex(r.stdout, r"<~ +250 2\.0\.0 Ok: queued as")
                n += 1
                self.assertEqual(len(self.queued()), n)
        for qid in self.queued():
            qf = self.queue_file(qid)
            self.assertEqual(qf.attrs.get("auth_user"), ALICE)
            self.assertIn("with ESMTPSA", qf.headers())
            # swaks writes its own Date: and Message-Id:; none is added twice.
            self.assertEqual(len(re.findall(r"(?mi)^Message-ID:", qf.headers())), 1)
            self.assertEqual(len(re.findall(r"(?mi)^Date:", qf.headers())), 1)

    def test_swaks_wrong_password(self):
        r = self.swaks("--tls", self.port, "LOGIN", password="wrong")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("535 5.7.8 Error: authentication failed", r.stdout)
        self.assertEqual(self.queued(), [])
        self.inst.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication "
                           r"failed: .*sasl_username=%s" % re.escape(ALICE))
        self.assertNotIn("wrong", self.inst.read_log())  # never the password

    # -- msmtp ----------------------------------------------------------
    def msmtp(self, port, starttls, password=ALICE_PW):
        if shutil.which("msmtp") is None:
            self.skipTest("msmtp not installed (scripts/install-deps.sh)")
        home = os.path.join(self.inst.top, "home-alice")
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, ".msmtprc")
        with open(rc, "w") as f:
            f.write("defaults\n"
                    "tls on\n"
                    "tls_starttls %s\n"
                    "tls_trust_file %s\n"
                    "tls_host_override mx.%s\n"
                    "logfile %s/msmtp.log\n"
                    "account petrel\n"
                    "host 127.0.0.1\n"
                    "port %d\n"
                    "from %s\n"
                    "auth on\n"
                    "user %s\n"
                    "password %s\n"
                    "account default : petrel\n"
                    % ("on" if starttls else "off", CA, DOMAIN, home, port, ALICE, ALICE,
                       password))
        os.chmod(rc, 0o600)
        msg = ("To: root@%s\nSubject: from msmtp\n\nsent by a mail program\n" % DOMAIN)
        env = dict(os.environ, HOME=home)
        return subprocess.run(["msmtp", "-t"], input=msg, capture_output=True, text=True,
                              env=env, timeout=60)

    def test_msmtp_as_mail_program(self):
        r = self.msmtp(self.port, starttls=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.msmtp(self.sport, starttls=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        q = self.queued()
        self.assertEqual(len(q), 2)
        for qid in q:
            qf = self.queue_file(qid)
            self.assertEqual(qf.attrs.get("auth_user"), ALICE)
            self.assertEqual(qf.sender, ALICE)
            self.assertIn("with ESMTPSA id %s" % qid, qf.headers())
            self.assertIn("Subject: from msmtp", qf.headers())
            # msmtp writes its own Date:/Message-ID:; nothing is doubled.
            self.assertEqual(len(re.findall(r"(?mi)^Message-ID:", qf.headers())), 1)
        r = self.msmtp(self.port, starttls=True, password="not it")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("535", r.stdout + r.stderr)
        self.assertEqual(len(self.queued()), 2)

    # -- smtplib --------------------------------------------------------
    def test_smtplib_starttls_login_and_ssl(self):
        self.need_system_user()
        msg = ("From: Alice <%s>\r\nTo: root@%s\r\nSubject: smtplib\r\n\r\nhello\r\n"
               % (ALICE, DOMAIN))
        with self.smtp(ALICE) as c:
            self.assertIn("auth", c.esmtp_features)
            self.assertEqual(c.sendmail(ALICE, ["root@%s" % DOMAIN], msg), {})
        with smtplib.SMTP_SSL("127.0.0.1", self.sport, timeout=20,
                              context=client_context()) as c:
            c.ehlo("client.example.org")
            self.assertNotIn("starttls", c.esmtp_features)
            c.login(BOB, BOB_PW)
            self.assertEqual(c.sendmail("%s@%s" % (BOB, DOMAIN), ["someone@example.com"],
                                        "Subject: relayed\r\n\r\nout\r\n"), {})
        q = self.queued()
        self.assertEqual(len(q), 2)
        users = sorted(self.queue_file(x).attrs.get("auth_user") for x in q)
        self.assertEqual(users, sorted([ALICE, BOB]))
        for x in q:
            qf = self.queue_file(x)
            if qf.attrs["auth_user"] == BOB:
                # Relayed anywhere; From: made from the envelope sender.
                self.assertEqual(qf.recipients[0]["address"], "someone@example.com")
                self.assertRegex(self.head(qf), r"(?m)^From: %s@petrel\.test$" % BOB)
            else:
                self.assertIn("From: Alice <%s>" % ALICE, qf.headers())

    def test_existing_date_and_message_id_kept(self):
        msg = ("From: %s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               "Message-ID: <keep.me@client>\r\nSubject: x\r\n\r\nbody\r\n" % ALICE)
        with self.smtp(ALICE) as c:
            c.sendmail(ALICE, ["root@%s" % DOMAIN], msg)
        qid, qf = self.only_message()
        head = self.head(qf)
        self.assertEqual(re.findall(r"(?m)^Message-ID: .*$", head), ["Message-ID: <keep.me@client>"])
        self.assertEqual(re.findall(r"(?m)^Date: .*$", head), ["Date: Mon, 1 Jan 2024 00:00:00 +0000"])

    def test_headers_only_and_body_without_blank_line(self):
        with self.smtp(ALICE) as c:
            c.sendmail(ALICE, ["root@%s" % DOMAIN], "Subject: only a header\r\n")
            c.sendmail(ALICE, ["root@%s" % DOMAIN], "Subject: x\r\nnot a field line\r\nmore\r\n")
        contents = sorted(self.queue_file(q).content for q in self.queued())
        self.assertEqual(len(contents), 2)
        for content in contents:
            head, sep, body = content.partition(b"\r\n\r\n")
            self.assertIn(b"Message-ID: <", head)
            if b"not a field line" in content:
                self.assertEqual(body, b"not a field line\r\nmore\r\n")

    # -- refusals -------------------------------------------------------
    def test_auth_and_mail_before_starttls(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as c:
            c.ehlo("client.example.org")
            self.assertIn("starttls", c.esmtp_features)
            self.assertNotIn("auth", c.esmtp_features)
            code, text = c.docmd("AUTH", "PLAIN " + b64("\0%s\0%s" % (ALICE, ALICE_PW)))
            self.assertEqual((code, text), (530, b"5.7.0 Must issue a STARTTLS command first"))
            code, text = c.docmd("MAIL", "FROM:<%s>" % ALICE)
            self.assertEqual((code, text), (530, b"5.7.0 Must issue a STARTTLS command first"))
        self.assertEqual(self.queued(), [])
        if self.fake:
            self.assertEqual(self.fake.requests, [])  # the password never travelled

    def test_mail_before_auth(self):
        with self.smtp() as c:
            self.assertIn("auth", c.esmtp_features)
            self.assertEqual(c.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
            code, text = c.docmd("MAIL", "FROM:<%s>" % ALICE)
            self.assertEqual((code, text), (530, b"5.7.0 Authentication required"))
            code, _ = c.docmd("RCPT", "TO:<root@%s>" % DOMAIN)
            self.assertEqual(code, 503)
        self.assertEqual(self.queued(), [])

    def test_plaintext_pipelined_after_starttls_is_not_executed(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220"))
        s.sendall(b"EHLO client.example.org\r\n")
        self.read_reply(f)
        # CVE-2011-0411: AUTH rides in the same segment as STARTTLS.
        s.sendall(b"STARTTLS\r\nAUTH PLAIN " + b64("\0%s\0%s" % (ALICE, ALICE_PW)).encode()
                  + b"\r\n")
        self.assertTrue(self.read_reply(f)[0].startswith("220"))
        f.close()
        t = client_context().wrap_socket(s, server_hostname="mx.%s" % DOMAIN)
        tf = t.makefile("rb")
        self.assertTrue(self.cmd(t, tf, "EHLO client.example.org")[0].startswith("250"))
        # Not authenticated: the injected AUTH was thrown away.
        self.assertEqual(self.cmd(t, tf, "MAIL FROM:<%s>" % ALICE),
                         ["530 5.7.0 Authentication required"])
        t.close()
        self.inst.wait_log(r"discarded \d+ bytes of plaintext pipelined after STARTTLS")
        if self.fake:
            self.assertEqual(self.fake.requests, [])

    def test_sender_spoofing_refused(self):
        with self.smtp(ALICE) as c:
            code, text = c.docmd("MAIL", "FROM:<root@%s>" % DOMAIN)
            self.assertEqual(code, 553)
            self.assertEqual(text.decode(), "5.7.1 <root@%s>: Sender address rejected: not owned "
                             "by user %s" % (DOMAIN, ALICE))
            code, _ = c.docmd("MAIL", "FROM:<alice@other.%s>" % VDOMAIN)
            self.assertEqual(code, 553)
            # Own address (with an extension) is fine; From: of someone else is not.
            self.assertEqual(c.docmd("MAIL", "FROM:<alice+tag@%s>" % VDOMAIN)[0], 250)
            self.assertEqual(c.docmd("RCPT", "TO:<root@%s>" % DOMAIN)[0], 250)
            self.assertEqual(c.docmd("DATA")[0], 354)
            c.send(("From: The Boss <boss@%s>\r\nSubject: pay this\r\n\r\nnow\r\n.\r\n"
                    % DOMAIN).encode())
            code, text = c.getreply()
            self.assertEqual(code, 553)
            self.assertEqual(text.decode(), "5.7.1 <boss@%s>: Sender address rejected: not owned "
                             "by user %s" % (DOMAIN, ALICE))
            # A second From: address hidden in a list is found too.
            c.rset()
            self.assertEqual(c.docmd("MAIL", "FROM:<%s>" % ALICE)[0], 250)
            self.assertEqual(c.docmd("RCPT", "TO:<root@%s>" % DOMAIN)[0], 250)
            self.assertEqual(c.docmd("DATA")[0], 354)
            c.send(("From: %s, \"x\" <root@%s>\r\n\r\nhi\r\n.\r\n" % (ALICE, DOMAIN)).encode())
            self.assertEqual(c.getreply()[0], 553)
            # Sender: is checked like From:.
            self.assertEqual(c.docmd("MAIL", "FROM:<%s>" % ALICE)[0], 250)
            self.assertEqual(c.docmd("RCPT", "TO:<root@%s>" % DOMAIN)[0], 250)
            self.assertEqual(c.docmd("DATA")[0], 354)
            c.send(("From: %s\r\nSender: root@%s\r\n\r\nhi\r\n.\r\n" % (ALICE, DOMAIN)).encode())
            self.assertEqual(c.getreply()[0], 553)
            self.assertEqual(c.noop()[0], 250)  # the session goes on
        self.assertEqual(self.queued(), [])
        self.inst.wait_log(r"reject: MAIL from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 "
                           r"<root@petrel\.test>: Sender address rejected")
        self.inst.wait_log(r"reject: From: from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 <boss@")

    def test_bad_header_sections(self):
        def send(c, content):
            self.assertEqual(c.docmd("MAIL", "FROM:<%s>" % ALICE)[0], 250)
            self.assertEqual(c.docmd("RCPT", "TO:<root@%s>" % DOMAIN)[0], 250)
            self.assertEqual(c.docmd("DATA")[0], 354)
            c.send(content + b".\r\n")
            return c.getreply()
        with self.smtp(ALICE) as c:
            # BAD-INPUT row 6: a first line that starts with whitespace.
            code, text = send(c, b" Subject: folded\r\nFrom: x@y\r\n\r\nb\r\n")
            self.assertEqual((code, text), (554, b"5.6.0 Error: malformed message header"))
            code, text = send(c, b"From: <unterminated@\r\n\r\nb\r\n")
            self.assertEqual((code, text), (554, b"5.6.0 Error: malformed From: header"))
            # A header section over 1 MiB (10k address headers and more).
            big = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 100) for i in range(11000))
            code, text = send(c, big + b"\r\nbody\r\n")
            self.assertEqual((code, text),
                             (552, b"5.3.4 Error: message header section exceeds 1048576 bytes"))
            self.assertEqual(c.noop()[0], 250)
        self.assertEqual(self.queued(), [])

    def test_system_user_default_rule_and_login_map(self):
        self.need_system_user()
        with self.smtp(BOB) as c:
            # bob owns bob@ every mydestination domain, not bob@ elsewhere.
            self.assertEqual(c.docmd("MAIL", "FROM:<%s@mx.%s>" % (BOB, DOMAIN))[0], 250)
            c.rset()
            self.assertEqual(c.docmd("MAIL", "FROM:<%s@example.com>" % BOB)[0], 553)
            # The table: shared@ for alice and bob, @lists. for bob.
            self.assertEqual(c.docmd("MAIL", "FROM:<shared@%s>" % DOMAIN)[0], 250)
            c.rset()
            self.assertEqual(c.docmd("MAIL", "FROM:<announce@lists.%s>" % DOMAIN)[0], 250)
            c.rset()
            self.assertEqual(c.docmd("MAIL", "FROM:<>")[0], 250)  # the null sender
        with self.smtp(ALICE) as c:
            self.assertEqual(c.docmd("MAIL", "FROM:<shared@%s>" % DOMAIN)[0], 250)
            c.rset()
            self.assertEqual(c.docmd("MAIL", "FROM:<announce@lists.%s>" % DOMAIN)[0], 553)

    def test_recipients(self):
        with self.smtp(ALICE) as c:
            c.docmd("MAIL", "FROM:<%s>" % ALICE)
            self.assertEqual(c.docmd("RCPT", "TO:<anyone@example.com>")[0], 250)  # relay
            self.assertEqual(c.docmd("RCPT", "TO:<%s>" % ALICE)[0], 250)
            code, text = c.docmd("RCPT", "TO:<nobody-here@%s>" % DOMAIN)
            self.assertEqual(code, 550)
            self.assertIn(b"5.1.1", text)
            self.assertEqual(c.docmd("RCPT", "TO:<ghost@%s>" % VDOMAIN)[0], 550)

    def test_mail_auth_parameter(self):
        # BAD-INPUT row 3: xtext that decodes to a newline never reaches the
        # queue file; a claimed AUTH= identity never replaces the real one.
        with self.smtp(ALICE) as c:
            code, text = c.docmd("MAIL", "FROM:<%s> AUTH=x+0AX-Injected:+20yes" % ALICE)
            self.assertEqual(code, 501, text)
            self.assertEqual(c.docmd("MAIL", "FROM:<%s> AUTH=mallory@example.com" % ALICE)[0],
                             250)
            self.assertEqual(c.docmd("RCPT", "TO:<root@%s>" % DOMAIN)[0], 250)
            self.assertEqual(c.docmd("DATA")[0], 354)
            c.send(b"Subject: a\r\n\r\nb\r\n.\r\n")
            self.assertEqual(c.getreply()[0], 250)
        qid, qf = self.only_message()
        self.assertEqual(qf.attrs.get("auth_user"), ALICE)
        self.assertNotIn(b"Injected", qf.content)
        self.assertNotIn(b"mallory", qf.content)

    def test_sasl_bad_input(self):
        t, tf = self.tls_raw(implicit=True)
        self.assertEqual(self.cmd(t, tf, "AUTH PLAIN x")[0][:3], "503")  # before HELO
        self.assertTrue(self.cmd(t, tf, "EHLO client.example.org")[0].startswith("250"))
        cases = [
            ("AUTH", "501 5.5.4 Syntax: AUTH mechanism [initial-response]"),
            ("AUTH CRAM-MD5", "504 5.5.4 Error: unsupported authentication mechanism"),
            ("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWF", "501 5.5.2 Error: invalid base64 data"),
            ("AUTH PLAIN AHRp bQB0YW5zdGFhZnRhbnN0YWFm", "501 5.5.2 Error: invalid base64 data"),
            ("AUTH PLAIN *", "501 5.7.0 Authentication aborted"),
            ("AUTH PLAIN =", "501 5.5.2 Error: malformed authentication response: malformed "
                             "PLAIN response: expected authzid NUL user NUL password"),
            ("AUTH PLAIN " + b64("\0bob\0pw\0x"),
             "501 5.5.2 Error: malformed authentication response: NUL byte in password"),
            ("AUTH PLAIN " + b64("root\0%s\0%s" % (ALICE, ALICE_PW)),
             "501 5.5.2 Error: malformed authentication response: authorization identity "
             "differs from the user name (proxy authorization is not supported)"),
        ]
        for line, want in cases:
            self.assertEqual(self.cmd(t, tf, line), [want], line)
        # Cancelling LOGIN halfway, and empty/garbage answers.
        self.assertEqual(self.cmd(t, tf, "AUTH LOGIN"), ["334 VXNlcm5hbWU6"])
        self.assertEqual(self.cmd(t, tf, b64(ALICE)), ["334 UGFzc3dvcmQ6"])
        self.assertEqual(self.cmd(t, tf, "*"), ["501 5.7.0 Authentication aborted"])
        self.assertEqual(self.cmd(t, tf, "AUTH PLAIN"), ["334 "])
        self.assertEqual(self.cmd(t, tf, "!!!!"), ["501 5.5.2 Error: invalid base64 data"])
        # A huge initial response is bounded by the engine's line limit.
        self.assertEqual(self.cmd(t, tf, "AUTH PLAIN " + "QUFB" * 100000),
                         ["500 5.5.2 Error: line too long"])
        # Still usable: a good AUTH, then re-AUTH is refused.
        self.assertEqual(self.cmd(t, tf, "AUTH PLAIN " + b64("\0%s\0%s" % (ALICE, ALICE_PW))),
                         ["235 2.7.0 Authentication successful"])
        self.assertEqual(self.cmd(t, tf, "AUTH PLAIN " + b64("\0%s\0%s" % (BOB, BOB_PW))),
                         ["503 5.5.1 Error: already authenticated"])
        self.assertEqual(self.cmd(t, tf, "QUIT")[0][:3], "221")
        t.close()
        self.assertEqual(self.queued(), [])

    def test_switching_mechanism_after_failure(self):
        t, tf = self.tls_raw(implicit=False)
        self.cmd(t, tf, "EHLO client.example.org")
        self.assertEqual(self.cmd(t, tf, "AUTH PLAIN " + b64("\0%s\0nope" % ALICE)),
                         ["535 5.7.8 Error: authentication failed"])
        self.assertEqual(self.cmd(t, tf, "AUTH LOGIN " + b64(ALICE)), ["334 UGFzc3dvcmQ6"])
        self.assertEqual(self.cmd(t, tf, b64(ALICE_PW)), ["235 2.7.0 Authentication successful"])
        t.close()

    def test_implicit_tls_garbage_handshake(self):
        s = socket.create_connection(("127.0.0.1", self.sport), timeout=20)
        s.sendall(b"EHLO plaintext.example.org\r\nAUTH PLAIN AGJvYgBwdw==\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        self.assertNotIn(b"220", data)  # no banner in plaintext
        self.inst.wait_log(r"TLS handshake error from unknown\[127\.0\.0\.1\]")
        if self.fake:
            self.assertEqual(self.fake.requests, [])

    def test_rapid_failures_are_throttled(self):
        codes = []
        for attempt in range(12):
            try:
                t, tf = self.tls_raw(implicit=True)
            except (OSError, AssertionError):
                break
            self.cmd(t, tf, "EHLO client.example.org")
            for _ in range(5):
                r = self.cmd(t, tf, "AUTH PLAIN " + b64("\0%s\0guess%d" % (ALICE, len(codes))))
                if not r:
                    break
                codes.append(r[0][:3])
                if r[0].startswith("421"):
                    break
            t.close()
            if "421" in codes or "454" in codes:
                break
        self.assertIn("535", codes)
        self.assertTrue("421" in codes or "454" in codes, codes)
        self.assertLessEqual(len(codes), 51)
        # Once throttled, even the right password is refused for a while.
        t, tf = self.tls_raw(implicit=True)
        self.cmd(t, tf, "EHLO client.example.org")
        r = self.cmd(t, tf, "AUTH PLAIN " + b64("\0%s\0%s" % (ALICE, ALICE_PW)))
        self.assertIn(r[0][:3], ("421", "454"), r)
        t.close()
        self.assertEqual(self.queued(), [])
        self.inst.wait_log(r"SASL PLAIN authentication refused: too many failures")


if __name__ == "__main__":
    unittest.main()
