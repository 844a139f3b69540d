"""Integration tests of POP3 (pop3-login + pop3d, lib/login) on a running
instance with smtpd, qmgr, local-delivery and auth: the primer's openssl
s_client dialogue on 995, Python's poplib over STLS (110) and implicit TLS
(995), the AUTHORIZATION rules (plaintext only under TLS or from loopback,
SASL PLAIN, throttling), the TRANSACTION commands, the UPDATE state (no
deletion without QUIT, also when the session process is killed), the
session lock, UIDL across a restart, a virtual user, and the privilege
split: the login process runs as petrel in <queue>/login and cannot read
the mail it serves.

Run as root: system users are created and the processes switch users."""
import base64
import glob
import os
import poplib
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from petrel_instance import REPO, Instance, ensure_users, free_port, is_root

DOMAIN = "petrel.test"
VDOMAIN = "v.test"
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tls")
USERS = {"pp3alice": "Alice pw 1!", "pp3bob": "b0b-pop-secret", "pp3carl": "carl-pw"}
CAROL = "carol@%s" % VDOMAIN
CAROL_PW = "Carol's secret"


def ctx_for(ca):
    c = ssl.create_default_context(cafile=ca)
    return c


@unittest.skipUnless(is_root(), "creates system users and switches users: run as root")
class Pop3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_users()
        cls.smtp_port = free_port()
        cls.pop3_port = free_port()
        cls.pop3s_port = free_port()
        cls.strict_port = free_port()
        inst = cls.inst = Instance([], params=[])
        login_root = os.path.join(inst.queue, "login")
        inst.write_services([
            "smtp accept 127.0.0.1:%d - - 10 smtpd" % cls.smtp_port,
            "qmgr daemon unix:public/qmgr - - 1 qmgr",
            "local accept unix:private/local root - 4 local-delivery",
            "auth accept unix:private/auth,unix:login/private/auth root - 10 auth",
            "pop3 accept 127.0.0.1:%d - %s 20 pop3-login" % (cls.pop3_port, login_root),
            "pop3s accept 127.0.0.1:%d - %s 20 pop3-login -o tls_mode=implicit"
            % (cls.pop3s_port, login_root),
            # As a client on another network sees 110: no plaintext before STLS.
            "pop3strict accept 127.0.0.1:%d - %s 5 pop3-login -o login_plaintext_loopback=no"
            % (cls.strict_port, login_root),
            "pop3-mailbox accept unix:login/private/pop3 root - 20 pop3d",
        ])
        cls.homes = os.path.join(inst.top, "home")
        os.mkdir(cls.homes)
        os.chmod(cls.homes, 0o755)
        cls.pw = {}
        for u, p in USERS.items():
            subprocess.run(["userdel", "-r", u], capture_output=True)
            subprocess.run(["useradd", "--home-dir", os.path.join(cls.homes, u), "--create-home",
                            "--shell", "/usr/sbin/nologin", u], check=True)
            subprocess.run(["chpasswd"], input="%s:%s\n" % (u, p), text=True, check=True)
            cls.pw[u] = pwd.getpwnam(u)
        # The virtual user: mailbox under virtual_mailbox_base, owned by petrel-mail.
        cls.vmail = os.path.join(inst.top, "vmail")
        os.mkdir(cls.vmail, 0o700)
        cls.store = pwd.getpwnam("petrel-mail")
        os.chown(cls.vmail, cls.store.pw_uid, cls.store.pw_gid)
        cls.carol_md = os.path.join(cls.vmail, VDOMAIN, "carol")
        h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=CAROL_PW + "\n",
                           capture_output=True, text=True, check=True).stdout.strip()
        passwd = inst.write_file("passwd", "%s:{SHA512-CRYPT}%s::::%s::mail=%s/\n"
                                 % (CAROL, h, cls.carol_md, cls.carol_md))
        os.chmod(passwd, 0o600)
        inst.write_file("vmailbox", "%s %s/carol/\n" % (CAROL, VDOMAIN))
        inst.write_file("aliases", "postmaster: root\n")
        cls.ca = cls.install("ca.pem", "ca.pem")
        cert = cls.install("server-chain.pem", "cert.pem")
        key = cls.install("server.test-only.key", "key.test-only.pem", secret=True)
        for line in ("myhostname = mx.%s" % DOMAIN,
                     "mydestination = %s, $myhostname, localhost" % DOMAIN,
                     "home_mailbox = Maildir/",
                     "virtual_mailbox_domains = " + VDOMAIN,
                     "virtual_mailbox_maps = texthash:$config_directory/vmailbox",
                     "virtual_mailbox_base = " + cls.vmail,
                     "alias_maps = hash:$config_directory/aliases",
                     "alias_database = $alias_maps",
                     "smtpd_pregreet_wait = 0",
                     "smtpd_error_sleep_time = 0",
                     "smtpd_tls_cert_file = " + cert,
                     "smtpd_tls_key_file = " + key,
                     "auth_passwd_file = " + passwd,
                     "auth_failure_limit = 10",
                     "auth_failure_delay = 10",
                     "auth_failure_max_delay = 50",
                     "login_timeout = 20s",
                     "pop3_timeout = 30s"):
            inst.append_conf(line)
        inst.petrel("newaliases")
        inst.start()

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()
        for u in USERS:
            subprocess.run(["userdel", "-r", u], capture_output=True)

    @classmethod
    def install(cls, fixture, name, secret=False):
        path = os.path.join(cls.inst.conf, name)
        shutil.copyfile(os.path.join(FIXTURES, fixture), path)
        os.chmod(path, 0o640 if secret else 0o644)
        return path

    # -- mailboxes -------------------------------------------------------
    def maildir(self, user):
        if user == CAROL:
            return self.carol_md
        return os.path.join(self.pw[user].pw_dir, "Maildir")

    def owner(self, user):
        return self.store if user == CAROL else self.pw[user]

    def clear(self, user):
        md = self.maildir(user)
        for sub in ("new", "cur", "tmp"):
            for p in glob.glob(os.path.join(md, sub, "*")):
                os.unlink(p)
        for p in glob.glob(os.path.join(md, "*")):
            if os.path.isfile(p):
                os.unlink(p)

    def put(self, user, data):
        """Writes one message straight into the Maildir (as delivery would)."""
        md = self.maildir(user)
        pw = self.owner(user)
        for sub in ("", "new", "cur", "tmp"):
            d = os.path.join(md, sub)
            if not os.path.isdir(d):
                os.makedirs(d, 0o700)
                os.chown(d, pw.pw_uid, pw.pw_gid)
        self._seq = getattr(self, "_seq", 0) + 1
        # One clock reading: seconds and microseconds of the same instant, so
        # two messages put in one second keep their order (as delivery names do).
        ns = time.time_ns()
        name = "%d.M%dP%dQ%d.test" % (ns // 10**9, (ns // 1000) % 10**6, os.getpid(), self._seq)
        path = os.path.join(md, "new", name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o600)
        return path

    def messages(self, user):
        md = self.maildir(user)
        return sorted(glob.glob(os.path.join(md, "new", "*")) +
                      glob.glob(os.path.join(md, "cur", "*")))

    def deliver_smtp(self, rcpt, bodies, timeout=60):
        """Sends messages through smtpd; waits until local delivery wrote them."""
        before = len(self.messages(rcpt))
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            for b in bodies:
                s.sendmail("sender@example.org", [rcpt if "@" in rcpt else rcpt + "@" + DOMAIN],
                           b)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.messages(rcpt)) >= before + len(bodies):
                return
            time.sleep(0.1)
        raise AssertionError("delivered %d of %d; log:\n%s" % (
            len(self.messages(rcpt)) - before, len(bodies), self.inst.read_log()[-4000:]))

    @staticmethod
    def body(i, extra=b""):
        return (b"From: sender@example.org\r\nTo: someone\r\nSubject: test %d\r\n\r\n"
                b"Hello %d\r\n.starts with a dot\r\n..two dots\r\n" % (i, i) + extra)

    # -- clients ---------------------------------------------------------
    def pop(self, user, tls="stls", port=None):
        if tls == "ssl":
            p = poplib.POP3_SSL("127.0.0.1", port or self.pop3s_port, timeout=20,
                                context=ctx_for(self.ca))
        else:
            p = poplib.POP3("127.0.0.1", port or self.pop3_port, timeout=20)
            if tls == "stls":
                p.stls(context=ctx_for(self.ca))
        pw = CAROL_PW if user == CAROL else USERS[user]
        p.user(user)
        p.pass_(pw)
        return p

    def raw(self, port=None, src=None):
        s = socket.create_connection(("127.0.0.1", port or self.pop3_port), timeout=20,
                                     source_address=(src, 0) if src else None)
        f = s.makefile("rb")
        greeting = f.readline()
        self.assertTrue(greeting.startswith(b"+OK"), greeting)
        return s, f

    def cmd(self, s, f, line):
        s.sendall(line + b"\r\n")
        return f.readline()

    def multi(self, f):
        lines = []
        while True:
            l = f.readline()
            if l in (b".\r\n", b""):
                return lines
            lines.append(l)

    def octets(self, lines):
        return sum(len(l) + 2 for l in lines)

    # -- the primer ------------------------------------------------------
    def test_primer_s_client_dialogue(self):
        """openssl s_client -connect HOST:995 -crlf: USER, PASS, STAT, LIST,
        RETR 1, DELE 1, QUIT; after reconnecting the message is gone."""
        user = "pp3alice"
        self.clear(user)
        self.deliver_smtp(user, [b"Subject: primer\r\n\r\nHello from the primer\r\n"])
        script = ("USER %s\nPASS %s\nSTAT\nLIST\nRETR 1\nDELE 1\nQUIT\n"
                  % (user, USERS[user]))
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.pop3s_port,
                            "-crlf", "-quiet", "-CAfile", self.ca, "-verify_return_error"],
                           input=script, capture_output=True, text=True, timeout=30)
        out = r.stdout
        self.assertIn("+OK Petrel POP3 server ready", out)
        self.assertIn("+OK Logged in, 1 messages", out)
        self.assertRegex(out, r"\+OK 1 \d+\r?\n")
        self.assertIn("Hello from the primer", out)
        self.assertIn("+OK Message 1 deleted", out)
        self.assertIn("(1 messages deleted)", out)
        self.assertNotIn("-ERR", out)
        self.assertEqual(self.messages(user), [])
        p = self.pop(user, "ssl")
        self.assertEqual(p.stat(), (0, 0))
        p.quit()
        # One line at login, one at logout.
        self.inst.wait_log(r"pop3-login\[\d+\]: login: user=<pp3alice>, method=USER, "
                           r"client=127\.0\.0\.1, tls=TLSv1\.[23] ")
        self.inst.wait_log(r"pop3d\[\d+\]: logout: user=<pp3alice>, client=127\.0\.0\.1, "
                           r"retr=1, dele=1, bytes=\d+ \(quit\)")

    # -- clients ---------------------------------------------------------
    def check_retrieval(self, p, user):
        files = self.messages(user)
        count, size = p.stat()
        self.assertEqual(count, len(files))
        resp, listing, _ = p.list()
        self.assertEqual(len(listing), count)
        total = 0
        for entry in listing:
            n, sz = entry.split()
            resp, lines, octets = p.retr(int(n))
            # Exact size: what LIST says is what RETR sends (CRLF, stuffed).
            # (poplib counts the octets of the lines as sent, unstuffed)
            self.assertEqual(octets, int(sz))
            self.assertEqual(self.octets(lines), int(sz))
            total += int(sz)
        self.assertEqual(total, size)

    def test_poplib_stls_and_ssl(self):
        user = "pp3bob"
        self.clear(user)
        self.deliver_smtp(user, [self.body(i) for i in range(3)])
        for mode in ("stls", "ssl"):
            p = self.pop(user, mode)
            self.check_retrieval(p, user)
            resp, lines, _ = p.retr(1)
            self.assertIn(b".starts with a dot", lines)  # poplib undid the stuffing
            self.assertIn(b"..two dots", lines)
            p.quit()
        # Messages were moved from new/ to cur/, nothing deleted.
        md = self.maildir(user)
        self.assertEqual(os.listdir(os.path.join(md, "new")), [])
        self.assertEqual(len(os.listdir(os.path.join(md, "cur"))), 3)

    def test_capa_and_plaintext_rules(self):
        s, f = self.raw(self.strict_port)
        s.sendall(b"CAPA\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        capa = [l.strip() for l in self.multi(f)]
        for c in (b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING", b"STLS",
                  b"IMPLEMENTATION Petrel"):
            self.assertIn(c, capa)
        self.assertNotIn(b"USER", capa)
        self.assertNotIn(b"SASL PLAIN", capa)
        r = self.cmd(s, f, b"USER pp3alice")
        self.assertTrue(r.startswith(b"-ERR [AUTH] Plaintext authentication disallowed"), r)
        r = self.cmd(s, f, b"AUTH PLAIN " + base64.b64encode(b"\0pp3alice\0x"))
        self.assertTrue(r.startswith(b"-ERR [AUTH]"), r)
        s.close()
        # After STLS the same service offers USER and SASL PLAIN.
        p = poplib.POP3("127.0.0.1", self.strict_port, timeout=20)
        p.stls(context=ctx_for(self.ca))
        caps = p.capa()
        self.assertIn("USER", caps)
        self.assertEqual(caps.get("SASL"), ["PLAIN"])
        self.assertNotIn("STLS", caps)
        p.user("pp3alice")
        p.pass_(USERS["pp3alice"])
        p.quit()
        # From loopback, 110 allows plaintext (login_plaintext_loopback = yes).
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=20)
        caps = p.capa()
        self.assertIn("USER", caps)
        self.assertIn("STLS", caps)
        p.user("pp3alice")
        p.pass_(USERS["pp3alice"])
        caps = p.capa()  # TRANSACTION state: no USER, SASL or STLS
        self.assertNotIn("USER", caps)
        self.assertNotIn("STLS", caps)
        p.quit()

    def test_auth_plain(self):
        user = "pp3carl"
        self.clear(user)
        self.put(user, self.body(1))
        s, f = self.raw()
        r = self.cmd(s, f, b"AUTH PLAIN " + base64.b64encode(b"\0pp3carl\0" +
                                                           USERS[user].encode()))
        self.assertTrue(r.startswith(b"+OK Logged in"), r)
        self.assertTrue(self.cmd(s, f, b"STAT").startswith(b"+OK 1 "))
        self.assertTrue(self.cmd(s, f, b"QUIT").startswith(b"+OK"))
        s.close()
        # Without initial response: "+ " then the response.
        s, f = self.raw()
        self.assertEqual(self.cmd(s, f, b"AUTH PLAIN"), b"+ \r\n")
        r = self.cmd(s, f, base64.b64encode(b"\0pp3carl\0" + USERS[user].encode()))
        self.assertTrue(r.startswith(b"+OK Logged in"), r)
        s.close()

    def test_pipelined_login_and_commands(self):
        """Commands pipelined behind PASS travel with the hand-off."""
        user = "pp3carl"
        self.clear(user)
        self.put(user, self.body(1))
        self.put(user, self.body(2))
        s, f = self.raw()
        s.sendall(b"USER pp3carl\r\nPASS " + USERS[user].encode() +
                  b"\r\nSTAT\r\nUIDL\r\nNOOP\r\nQUIT\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))          # USER
        self.assertTrue(f.readline().startswith(b"+OK Logged in"))
        self.assertTrue(f.readline().startswith(b"+OK 2 "))
        self.assertTrue(f.readline().startswith(b"+OK"))
        self.assertEqual(len(self.multi(f)), 2)
        self.assertEqual(f.readline(), b"+OK\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        self.assertEqual(f.readline(), b"")
        s.close()
        # The same over TLS (the relay carries what was pipelined).
        ctx = ctx_for(self.ca)
        with socket.create_connection(("127.0.0.1", self.pop3s_port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                tf = t.makefile("rb")
                self.assertTrue(tf.readline().startswith(b"+OK"))
                t.sendall(b"USER pp3carl\r\nPASS " + USERS[user].encode() +
                          b"\r\nSTAT\r\nQUIT\r\n")
                self.assertTrue(tf.readline().startswith(b"+OK"))
                self.assertTrue(tf.readline().startswith(b"+OK Logged in"))
                self.assertTrue(tf.readline().startswith(b"+OK 2 "))
                self.assertTrue(tf.readline().startswith(b"+OK"))

    def test_top_uidl_sizes(self):
        user = "pp3carl"
        self.clear(user)
        # Bare LF line ends, a dot line, no final newline: sizes count CRLF.
        self.put(user, b"Subject: one\nX-A: b\n\nline1\n.\nline3\nline4")
        self.put(user, b"Subject: two\r\n\r\nbody\r\n")
        p = self.pop(user, "stls")
        resp, listing, _ = p.list()
        sizes = [int(x.split()[1]) for x in listing]
        self.assertEqual(sizes[0], len(b"Subject: one\r\nX-A: b\r\n\r\nline1\r\n.\r\nline3\r\nline4\r\n"))
        self.assertEqual(sizes[1], len(b"Subject: two\r\n\r\nbody\r\n"))
        resp, lines, _ = p.top(1, 0)
        self.assertEqual(lines, [b"Subject: one", b"X-A: b", b""])
        resp, lines, _ = p.top(1, 2)
        self.assertEqual(lines, [b"Subject: one", b"X-A: b", b"", b"line1", b"."])
        resp, lines, _ = p.retr(1)
        self.assertEqual(lines[-3:], [b".", b"line3", b"line4"])
        uidl1 = p.uidl()[1]
        self.assertEqual(len(uidl1), 2)
        self.assertEqual(p.uidl(2).split()[1:], uidl1[1].split())
        p.quit()
        # Stable across sessions and across a restart of the whole instance.
        p = self.pop(user, "ssl")
        self.assertEqual(p.uidl()[1], uidl1)
        p.quit()
        self.inst.petrel("stop")
        self.inst.start()
        p = None
        deadline = time.time() + 10
        while p is None:
            try:
                p = self.pop(user, "ssl")
            except (OSError, poplib.error_proto):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.assertEqual(p.uidl()[1], uidl1)
        p.quit()

    def test_deletion_only_at_quit(self):
        user = "pp3carl"
        self.clear(user)
        for i in range(3):
            self.put(user, self.body(i))
        # DELE then the connection drops: nothing deleted.
        p = self.pop(user, "stls")
        p.dele(1)
        p.dele(2)
        self.assertEqual(p.stat()[0], 1)
        p.sock.shutdown(socket.SHUT_RDWR)
        p.sock.close()
        time.sleep(0.5)
        self.assertEqual(len(self.messages(user)), 3)
        # DELE then the session process is killed: nothing deleted.
        p = self.pop(user, "plain")
        p.dele(1)
        pid = self.session_pid(self.pw[user].pw_uid)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        self.assertEqual(len(self.messages(user)), 3)
        # RSET undoes, QUIT applies.
        p = self.pop(user, "plain")
        p.dele(1)
        p.rset()
        p.dele(3)
        with self.assertRaises(poplib.error_proto):
            p.retr(3)
        with self.assertRaises(poplib.error_proto):
            p.dele(3)
        p.quit()
        self.assertEqual(len(self.messages(user)), 2)

    def session_pid(self, uid):
        """The pop3d child serving uid."""
        deadline = time.time() + 5
        while time.time() < deadline:
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        cmd = f.read().split(b"\0")[0]
                    st = os.stat("/proc/" + d)
                except OSError:
                    continue
                if os.path.basename(cmd) == b"pop3d" and st.st_uid == uid:
                    return int(d)
            time.sleep(0.05)
        raise AssertionError("no pop3d process for uid %d" % uid)

    def test_mailbox_in_use(self):
        user = "pp3carl"
        self.clear(user)
        self.put(user, self.body(1))
        p1 = self.pop(user, "stls")
        with self.assertRaises(poplib.error_proto) as cm:
            self.pop(user, "ssl")
        self.assertIn(b"-ERR [IN-USE]", cm.exception.args[0])
        p1.quit()
        p2 = self.pop(user, "ssl")
        self.assertEqual(p2.stat()[0], 1)
        p2.quit()

    def test_virtual_user(self):
        self.clear(CAROL) if os.path.isdir(self.carol_md) else None
        self.deliver_smtp(CAROL, [self.body(7)])
        for f in self.messages(CAROL):
            self.assertEqual(os.stat(f).st_uid, self.store.pw_uid)
        p = self.pop(CAROL, "ssl")
        self.assertEqual(p.stat()[0], 1)
        resp, lines, _ = p.retr(1)
        self.assertIn(b"Hello 7", lines)
        pid = self.session_pid(self.store.pw_uid)
        self.assertEqual(os.stat("/proc/%d" % pid).st_uid, self.store.pw_uid)
        p.quit()

    def test_login_process_cannot_read_mail(self):
        user = "pp3alice"
        self.clear(user)
        path = self.put(user, self.body(1))
        petrel = pwd.getpwnam("petrel")
        login_root = os.path.realpath(os.path.join(self.inst.queue, "login"))
        # A TLS session: the login process stays (relay) during the session.
        p = self.pop(user, "ssl")
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as fh:
                    cmd = fh.read().split(b"\0")
                root = os.readlink("/proc/%s/root" % d)
            except OSError:
                continue
            if os.path.basename(cmd[0]) == b"pop3-login" and self.inst.conf.encode() in cmd:
                pids.append((int(d), root))
        self.assertTrue(pids)
        for pid, root in pids:
            self.assertEqual(os.stat("/proc/%d" % pid).st_uid, petrel.pw_uid)
            with open("/proc/%d/status" % pid) as fh:
                status = fh.read()
            uids = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
            self.assertEqual(set(uids), {str(petrel.pw_uid)})
            self.assertEqual(root, login_root)
            self.assertEqual(sorted(os.listdir(login_root)), ["private"])
            # Inside its root the mail does not even exist.
            self.assertFalse(os.path.exists("/proc/%d/root%s" % (pid, self.maildir(user))))
        # The login process's user cannot read the Maildir or the message.
        for target in (self.maildir(user), path.replace("/new/", "/cur/")):
            r = subprocess.run(["setpriv", "--reuid=%d" % petrel.pw_uid,
                                "--regid=%d" % petrel.pw_gid, "--clear-groups", "--",
                                "cat" if target.endswith(".test") else "ls", target],
                               capture_output=True)
            self.assertNotEqual(r.returncode, 0, target)
            self.assertIn(b"Permission denied", r.stderr)
        p.quit()

    # -- real clients: 200 messages ----------------------------------------
    def originals(self, user):
        """The messages as stored, CRLF-normalised, by content."""
        out = []
        for path in self.messages(user):
            with open(path, "rb") as fh:
                out.append(fh.read().replace(b"\r\n", b"\n"))
        return sorted(out)

    def check_downloaded(self, originals, directory, extra_headers):
        def strip(data):
            # The trace headers a client itself puts on top (getmail replaces
            # Return-Path with its own), on both sides.
            while data.split(b":", 1)[0].lower() in extra_headers:
                first, data = data.split(b"\n", 1)
                while data[:1] in (b" ", b"\t"):
                    data = data.split(b"\n", 1)[1]
            return data
        got = []
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), "rb") as fh:
                got.append(strip(fh.read().replace(b"\r\n", b"\n")))
        self.assertEqual(len(got), len(originals))
        self.maxDiff = 2000
        self.assertEqual(sorted(got), sorted(strip(o) for o in originals))

    def test_fetchmail_and_getmail_200_messages(self):
        user = "pp3bob"
        self.clear(user)
        bodies = [self.body(i, b"line with trailing space \r\n\tTab\r\n" +
                            b"x" * (i * 37 % 3000) + b"\r\n.\r\n") for i in range(200)]
        self.deliver_smtp(user, bodies, timeout=120)
        originals = self.originals(user)
        self.assertEqual(len(originals), 200)
        for i in (0, 57, 199):
            self.assertTrue(any((b"Hello %d\n" % i) in o for o in originals))
        work = os.path.join(self.inst.top, "clients")
        os.makedirs(work, exist_ok=True)
        # getmail6 over 995, messages kept on the server. Each message goes
        # to a command that waits a moment before it ends: getmail (6.18)
        # installs its SIGCHLD handler only after fork(), so a delivery
        # child that exits at once can leave it waiting for 60 s.
        gdir = os.path.join(work, "getmail")
        gout = os.path.join(gdir, "out")
        os.makedirs(gout)
        rc = os.path.join(gdir, "getmailrc")
        with open(rc, "w") as fh:
            fh.write("[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
                     "port = %d\nusername = %s\npassword = %s\nca_certs = %s\n"
                     "[destination]\ntype = MDA_external\npath = /bin/sh\n"
                     "arguments = (\"-c\", \"sleep 0.02; exec cat > %s/$$\")\n"
                     "[options]\nread_all = true\ndelete = false\nreceived = false\n"
                     "delivered_to = false\nverbose = 0\n"
                     % (self.pop3s_port, user, USERS[user], self.ca, gout))
        # getmail refuses to deliver as root: run it as nobody.
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(gdir):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, nobody.pw_uid, nobody.pw_gid)
        r = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid,
                            "--regid=%d" % nobody.pw_gid, "--clear-groups", "--",
                            "getmail", "--getmaildir", gdir, "--rcfile", rc],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, HOME=gdir))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_downloaded(originals, gout, (b"return-path",))
        # fetchmail over STLS on 110, each message to an MDA; this time deleted.
        fdir = os.path.join(work, "fetchmail")
        out = os.path.join(fdir, "out")
        os.makedirs(out)
        mda = os.path.join(fdir, "mda.sh")
        with open(mda, "w") as fh:
            fh.write('#!/bin/sh\nexec cat > "%s/$(date +%%s%%N).$$"\n' % out)
        os.chmod(mda, 0o755)
        frc = os.path.join(fdir, "fetchmailrc")
        with open(frc, "w") as fh:
            fh.write('set no syslog\nset no bouncemail\n'
                     'poll 127.0.0.1 with proto POP3 port %d\n'
                     '  user "%s" there with password "%s" is root here\n'
                     '  options sslproto "tls1.2+" sslcertck sslcommonname "mx.petrel.test" sslcertfile "%s" fetchall no rewrite\n'
                     '  mda "%s"\n' % (self.pop3_port, user, USERS[user], self.ca, mda))
        os.chmod(frc, 0o600)
        env = dict(os.environ, HOME=fdir, FETCHMAILHOME=fdir)
        r = subprocess.run(["fetchmail", "-f", frc, "--invisible", "--nokeep"], env=env,
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_downloaded(originals, out, ())
        # fetchmail deleted them (at QUIT).
        self.assertEqual(self.messages(user), [])

    # -- bad input ---------------------------------------------------------
    def test_bad_input(self):
        user = "pp3carl"
        self.clear(user)
        for i in range(3):
            self.put(user, self.body(i))
        s, f = self.raw()
        self.assertTrue(self.cmd(s, f, b"X" * 5000).startswith(b"-ERR Line too long"))
        self.assertTrue(self.cmd(s, f, b"FOO bar").startswith(b"-ERR Unknown command"))
        self.assertTrue(self.cmd(s, f, b"STAT").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"PASS x").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"AUTH CRAM-MD5").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"AUTH PLAIN !!!notbase64").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"AUTH PLAIN " + base64.b64encode(b"garbage"))
                        .startswith(b"-ERR"))
        self.assertEqual(self.cmd(s, f, b"AUTH PLAIN"), b"+ \r\n")
        self.assertTrue(self.cmd(s, f, b"*").startswith(b"-ERR Authentication cancelled"))
        # Still usable: log in, then bad commands in TRANSACTION.
        self.assertTrue(self.cmd(s, f, b"USER pp3carl").startswith(b"+OK"))
        self.assertTrue(self.cmd(s, f, b"PASS " + USERS[user].encode()).startswith(b"+OK"))
        self.assertTrue(self.cmd(s, f, b"RETR " + b"9" * 600).startswith(b"-ERR Line too long"))
        self.assertTrue(self.cmd(s, f, b"RETR 4").startswith(b"-ERR No such message"))
        self.assertTrue(self.cmd(s, f, b"RETR 0").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"RETR -1").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"RETR 99999999999999999999").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"RETR").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"TOP 1").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"TOP 1 x").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"DELE 2").startswith(b"+OK"))
        self.assertTrue(self.cmd(s, f, b"RETR 2").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"LIST 2").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"XYZZY").startswith(b"-ERR Unknown command"))
        self.assertTrue(self.cmd(s, f, b"USER x").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"STAT").startswith(b"+OK 2 "))
        s.shutdown(socket.SHUT_RDWR)  # no QUIT: nothing lost
        s.close()
        f.close()
        time.sleep(0.3)
        self.assertEqual(len(self.messages(user)), 3)
        p = self.pop(user, "stls")
        self.check_retrieval(p, user)
        p.quit()

    def test_bad_input_catalogue(self):
        """BAD-INPUT.md rows 4, 5, 13 and 15 as they apply to POP3."""
        user = "pp3carl"
        self.clear(user)
        for i in range(3):
            self.put(user, self.body(i))
        # Row 5: plaintext pipelined behind STLS is dropped, not executed
        # after the handshake; STLS twice is refused.
        s, f = self.raw()
        s.sendall(b"STLS\r\nUSER pp3carl\r\n")
        self.assertTrue(f.readline().startswith(b"+OK Begin TLS"))
        t = ctx_for(self.ca).wrap_socket(s, server_hostname="127.0.0.1")
        tf = t.makefile("rb")
        t.sendall(b"PASS " + USERS[user].encode() + b"\r\n")
        self.assertTrue(tf.readline().startswith(b"-ERR USER first"))
        t.sendall(b"STLS\r\n")
        self.assertTrue(tf.readline().startswith(b"-ERR"))
        t.close()
        # Row 4: huge initial response, whitespace in base64, NUL in a line.
        s, f = self.raw()
        self.assertTrue(self.cmd(s, f, b"AUTH PLAIN " + b"A" * 10000)
                        .startswith(b"-ERR Line too long"))
        self.assertTrue(self.cmd(s, f, b"AUTH PLAIN AHBwM2NhcmwAeA =").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"USER pp3\0carl").startswith(b"-ERR"))
        # Row 15: control characters in a logged user name are escaped.
        r = self.cmd(s, f, b"USER evil\x1b[31m\rX")
        self.assertTrue(r.startswith(b"+OK"), r)
        self.assertTrue(self.cmd(s, f, b"PASS nope").startswith(b"-ERR [AUTH]"))
        s.close()
        f.close()
        log = self.inst.read_log()
        self.assertNotIn("\x1b[31m", log)
        # Row 13: TOP and UIDL out of range; re-login and commands after QUIT.
        s, f = self.raw()
        self.cmd(s, f, b"USER pp3carl")
        self.assertTrue(self.cmd(s, f, b"PASS " + USERS[user].encode()).startswith(b"+OK"))
        for bad in (b"TOP 4 1", b"TOP 0 1", b"TOP 1 -1", b"TOP 99999999999999999999 1",
                    b"UIDL 4", b"UIDL 0", b"UIDL x", b"LIST 999", b"DELE 4",
                    b"AUTH PLAIN AHBwM2NhcmwAeA==", b"PASS x", b"STLS"):
            self.assertTrue(self.cmd(s, f, bad).startswith(b"-ERR"), bad)
        s.sendall(b"QUIT\r\nDELE 1\r\nSTAT\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        self.assertEqual(f.readline(), b"")  # nothing answered after QUIT
        s.close()
        f.close()
        self.assertEqual(len(self.messages(user)), 3)

    def test_megabyte_line_closes(self):
        """A line past the 64 KiB discard limit: -ERR, then the connection
        ends (the stream is no longer at a line boundary)."""
        for login in (False, True):
            s, f = self.raw()
            if login:
                self.cmd(s, f, b"USER pp3carl")
                self.assertTrue(self.cmd(s, f, b"PASS " + USERS["pp3carl"].encode())
                                .startswith(b"+OK"))
            try:
                s.sendall(b"NOOP " + b"x" * (1024 * 1024) + b"\r\nNOOP\r\n")
            except OSError:
                pass
            r = f.readline()
            self.assertTrue(r.startswith(b"-ERR Line too long"), (login, r))
            try:
                self.assertEqual(f.readline(), b"")
            except ConnectionResetError:
                pass  # closed with our unread bytes in its buffer: a reset
            s.close()
            f.close()

    def test_too_many_bad_commands_closes(self):
        s, f = self.raw()
        for i in range(9):
            self.assertTrue(self.cmd(s, f, b"BAD").startswith(b"-ERR"))
        self.assertTrue(self.cmd(s, f, b"BAD").startswith(b"-ERR"))
        self.assertTrue(f.readline().startswith(b"-ERR Too many bad commands"))
        self.assertEqual(f.readline(), b"")
        s.close()

    def test_wrong_passwords_throttled(self):
        """20 wrong passwords from one address: each -ERR, later ones
        throttled by auth; other clients and the mailbox are unaffected."""
        user = "pp3carl"
        self.clear(user)
        self.put(user, self.body(1))
        answers = []
        for i in range(20):
            s, f = self.raw(src="127.0.0.2")
            self.assertTrue(self.cmd(s, f, b"USER pp3carl").startswith(b"+OK"))
            answers.append(self.cmd(s, f, b"PASS wrong%d" % i))
            s.close()
        self.assertTrue(all(a.startswith(b"-ERR") for a in answers), answers)
        self.assertTrue(answers[0].startswith(b"-ERR [AUTH] Authentication failed"))
        self.assertTrue(any(b"Too many failed logins" in a for a in answers[10:]), answers)
        # Even the right password is refused from there now...
        s, f = self.raw(src="127.0.0.2")
        self.cmd(s, f, b"USER pp3carl")
        self.assertTrue(self.cmd(s, f, b"PASS " + USERS[user].encode()).startswith(b"-ERR"))
        s.close()
        # ...but not from another address, and nothing was lost.
        p = self.pop(user, "stls")
        self.assertEqual(p.stat()[0], 1)
        p.quit()


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(is_root(), "creates system users and switches users: run as root")
class Pop3MboxTest(unittest.TestCase):
    """The same server on an mbox mailbox (home_mailbox empty: auth names
    mail_spool_directory/USER), without chroot."""
    USER = "pp3mbox"
    PW = "mbox-pw-1"

    def setUp(self):
        ensure_users()
        self.port = free_port()
        self.inst = Instance([
            "auth accept unix:private/auth,unix:login/private/auth root - 4 auth",
            "pop3 accept 127.0.0.1:%d - - 4 pop3-login" % self.port,
            "pop3-mailbox accept unix:login/private/pop3 root - 4 pop3d",
        ])
        self.spool = os.path.join(self.inst.top, "spool")
        os.mkdir(self.spool, 0o1777)
        os.chmod(self.spool, 0o1777)
        subprocess.run(["userdel", self.USER], capture_output=True)
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                        self.USER], check=True)
        subprocess.run(["chpasswd"], input="%s:%s\n" % (self.USER, self.PW), text=True,
                       check=True)
        self.inst.append_conf("home_mailbox =")
        self.inst.append_conf("mail_spool_directory = " + self.spool)
        self.inst.start()

    def tearDown(self):
        self.inst.cleanup()
        subprocess.run(["userdel", self.USER], capture_output=True)

    def test_mbox(self):
        pw = pwd.getpwnam(self.USER)
        path = os.path.join(self.spool, self.USER)
        with open(path, "wb") as f:
            f.write(b"From a@example.org Mon Nov  2 10:00:00 2026\n"
                    b"Subject: one\n\n>From the start\n..dots\n\n"
                    b"From b@example.org Mon Nov  2 10:01:00 2026\n"
                    b"Subject: two\n\nsecond\n")
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o600)
        p = poplib.POP3("127.0.0.1", self.port, timeout=20)
        p.user(self.USER)
        p.pass_(self.PW)
        self.assertEqual(p.stat()[0], 2)
        resp, lines, octets = p.retr(1)
        self.assertEqual(lines[0], b"Subject: one")
        self.assertIn(b"..dots", lines)
        self.assertEqual(octets, int(p.list(1).split()[2]))
        p.dele(1)
        p.quit()
        with open(path, "rb") as f:
            data = f.read()
        self.assertNotIn(b"Subject: one", data)
        self.assertIn(b"Subject: two", data)
