"""End-to-end mail flow on one host: a message enters through smtpd (port
25-style, from another server) or through the local sendmail command, is
queued, scheduled by qmgr and delivered by local-delivery into the Maildir
of a real system user, with every daemon under master. Root only: it
creates two throwaway system users (removed again) and checks ownership."""
import glob
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import time
import unittest

from petrel_instance import Instance, ensure_users, free_port, is_root

DOMAIN = "petrel.test"
USERS = ("pmfalice", "pmfbob")


@unittest.skipUnless(is_root(), "creates system users and checks delivery as them")
class MailFlowTest(unittest.TestCase):
    def setUp(self):
        ensure_users()
        self.port = free_port()
        self.inst = Instance(
            ["smtp accept 127.0.0.1:%d - - 10 smtpd" % self.port,
             "pickup daemon unix:public/pickup - - 1 pickup",
             "qmgr daemon unix:public/qmgr - - 1 qmgr",
             "local accept unix:private/local root - 4 local-delivery"],
            params=["myhostname = mx.%s" % DOMAIN, "myorigin = %s" % DOMAIN,
                    "mydestination = %s, $myhostname, localhost" % DOMAIN,
                    "mynetworks = 192.0.2.0/24", "pickup_interval = 1s",
                    "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps",
                    "virtual_mailbox_domains = v.test",
                    "virtual_mailbox_maps = texthash:$config_directory/vmailbox",
                    "virtual_alias_maps = texthash:$config_directory/valias",
                    "virtual_mailbox_base = $config_directory/../vmail"])
        self.inst.write_file("vmailbox", "carol@v.test v.test/carol/\ndave@v.test v.test/dave.mbox\n")
        self.inst.write_file("valias", "info@%s %s\nsales@v.test carol@v.test, %s@%s\n"
                             % (DOMAIN, USERS[0], USERS[1], DOMAIN))
        vmail = os.path.join(self.inst.top, "vmail")
        os.mkdir(vmail, 0o700)
        store = pwd.getpwnam("petrel-mail")
        os.chown(vmail, store.pw_uid, store.pw_gid)
        self.homes = os.path.join(self.inst.top, "home")
        os.mkdir(self.homes)
        os.chmod(self.homes, 0o755)
        for u in USERS:
            subprocess.run(["userdel", "-r", u], capture_output=True)
            subprocess.run(["useradd", "--home-dir", os.path.join(self.homes, u), "--create-home",
                            "--shell", "/bin/sh", u], check=True)
        self.inst.write_file("aliases", "postmaster: %s\nroot: %s\nalice: %s\nteam: %s, %s\n"
                             "broken: %s, no-such-user-pmf\n"
                             % (USERS[0], USERS[0], USERS[0], USERS[0], USERS[1], USERS[1]))
        self.inst.petrel("newaliases")
        self.inst.start()

    def tearDown(self):
        self.inst.cleanup()
        for u in USERS:
            subprocess.run(["userdel", "-r", u], capture_output=True)

    def maildir(self, user, count, timeout=20):
        new = os.path.join(self.homes, user, "Maildir", "new")
        deadline = time.time() + timeout
        while time.time() < deadline:
            files = sorted(glob.glob(os.path.join(new, "*")))
            if len(files) >= count:
                return files
            time.sleep(0.1)
        raise AssertionError("%s got %d of %d messages; log:\n%s" % (
            user, len(glob.glob(os.path.join(new, "*"))), count, self.inst.read_log()))

    def queue_empty(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            left = [p for d in ("incoming", "active", "deferred", "maildrop")
                    for p in glob.glob(os.path.join(self.inst.queue, d, "[0-9A-V]*"))]
            if not left:
                return
            time.sleep(0.1)
        raise AssertionError("queue not empty: %s\n%s" % (left, self.inst.read_log()))

    def test_smtp_to_maildir(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.sendmail("sender@example.org", ["%s@%s" % (USERS[0], DOMAIN)],
                       b"From: sender@example.org\r\nSubject: end to end\r\n\r\nhello\r\n")
        f = self.maildir(USERS[0], 1)[0]
        st = os.stat(f)
        self.assertEqual(st.st_uid, pwd.getpwnam(USERS[0]).pw_uid)
        data = open(f, "rb").read()
        self.assertNotIn(b"\r\n", data)  # Maildir files use LF
        self.assertTrue(data.startswith(b"Return-Path: <sender@example.org>\n"), data[:200])
        self.assertIn(b"Delivered-To: %s@%s\n" % (USERS[0].encode(), DOMAIN.encode()), data)
        self.assertIn(b"Received: from ", data)
        self.assertTrue(data.endswith(b"\n\nhello\n"))
        self.queue_empty()
        self.inst.wait_log(r"to=<%s@%s>, relay=local, .*status=sent" % (USERS[0], DOMAIN))

    def test_alias_fanout_and_unknown_user(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("peer.example.org")
            c.mail("sender@example.org")
            self.assertEqual(c.rcpt("team@%s" % DOMAIN)[0], 250)
            self.assertEqual(c.rcpt("nosuchuser@%s" % DOMAIN)[0], 550)
            code, _ = c.data(b"Subject: to the team\r\n\r\nhi all\r\n")
            self.assertEqual(code, 250)
        self.maildir(USERS[0], 1)
        self.maildir(USERS[1], 1)
        self.queue_empty()

    def test_swaks_to_maildir_once(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port),
                            "--from", "peer@example.org", "--to", "%s@%s" % (USERS[1], DOMAIN),
                            "--header", "Subject: swaks end to end"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        files = self.maildir(USERS[1], 1)
        self.queue_empty()
        time.sleep(0.5)
        self.assertEqual(len(glob.glob(os.path.join(self.homes, USERS[1], "Maildir", "new", "*"))), 1)
        with open(files[0], "rb") as fh:
            data = fh.read()
        for h in (b"Return-Path: <peer@example.org>", b"Delivered-To: ", b"Received: ",
                  b"Subject: swaks end to end"):
            self.assertIn(h, data)

    def test_unknown_alias_member_bounces_to_sender(self):
        sender = "%s@%s" % (USERS[0], DOMAIN)
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.sendmail(sender, ["broken@%s" % DOMAIN], b"Subject: to a broken alias\r\n\r\nx\r\n")
        self.maildir(USERS[1], 1)  # the good member got it
        bounce = open(self.maildir(USERS[0], 1)[0], "rb").read()
        self.assertIn(b"Return-Path: <>", bounce)
        self.assertIn(b"multipart/report", bounce)
        self.assertIn(b"report-type=delivery-status", bounce)
        self.assertRegex(bounce, rb"Status: 5\.1\.1")
        self.assertIn(b"Subject: to a broken alias", bounce)
        self.queue_empty()

    def test_temporary_failure_then_flush(self):
        pw = pwd.getpwnam(USERS[1])
        md = os.path.join(self.homes, USERS[1], "Maildir")
        for sub in ("", "tmp", "new", "cur"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
            os.chown(os.path.join(md, sub), pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(md, "tmp"), 0o500)  # the user cannot create files
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.sendmail("peer@example.org", ["%s@%s" % (USERS[1], DOMAIN)], b"Subject: later\r\n\r\nx\r\n")
        deadline = time.time() + 15
        while not glob.glob(os.path.join(self.inst.queue, "deferred", "*")) and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(glob.glob(os.path.join(self.inst.queue, "deferred", "*")), self.inst.read_log())
        self.assertEqual(glob.glob(os.path.join(md, "new", "*")), [])
        os.chmod(os.path.join(md, "tmp"), 0o700)
        self.inst.petrel("queue", "flush")
        self.maildir(USERS[1], 1)
        self.queue_empty()

    def test_kill_9_during_500_messages(self):
        """qmgr and local-delivery are killed with SIGKILL while 500 messages
        flow; afterwards every message is in the Maildir at least once. The
        number delivered twice is printed (at-least-once delivery)."""
        import threading

        def send_all():
            with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as c:
                for i in range(500):
                    c.sendmail("peer@example.org", ["%s@%s" % (USERS[0], DOMAIN)],
                               b"Subject: load %d\r\n\r\nbody %d\r\n" % (i, i))

        t = threading.Thread(target=send_all)
        t.start()
        kills = 0
        for round_ in range(4):
            time.sleep(0.7)
            for prog in ("qmgr", "local-delivery"):
                for pid in self.pids_of(prog):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
        t.join(120)
        self.assertFalse(t.is_alive())
        files = self.maildir(USERS[0], 500, timeout=120)
        self.queue_empty(timeout=60)
        subjects = {}
        for f in glob.glob(os.path.join(self.homes, USERS[0], "Maildir", "new", "*")):
            with open(f, "rb") as fh:
                m = re.search(rb"\nSubject: load (\d+)\n", fh.read())
            subjects[int(m.group(1))] = subjects.get(int(m.group(1)), 0) + 1
        self.assertEqual(sorted(subjects), list(range(500)))
        twice = sum(1 for n in subjects.values() if n > 1)
        print("\nkill -9 test: %d processes killed, 500 messages, %d delivered more than once"
              % (kills, twice))

    def test_virtual_mailboxes_and_aliases(self):
        vmail = os.path.join(self.inst.top, "vmail")
        store = pwd.getpwnam("petrel-mail")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            c.ehlo("peer.example.org")
            c.mail("peer@example.org")
            for rcpt in ("carol@v.test", "Carol+tag@v.test", "dave@v.test", "info@%s" % DOMAIN,
                         "sales@v.test"):
                self.assertEqual(c.rcpt(rcpt)[0], 250, rcpt)
            self.assertEqual(c.rcpt("nobody-here@v.test")[0], 550)
            self.assertEqual(c.data(b"Subject: virtual\r\n\r\nx\r\n")[0], 250)
        self.queue_empty()
        carol = glob.glob(os.path.join(vmail, "v.test", "carol", "new", "*"))
        # carol@, carol+tag@ and sales@ are three recipients: one copy each.
        self.assertEqual(len(carol), 3)
        self.assertEqual(os.stat(carol[0]).st_uid, store.pw_uid)
        mbox = open(os.path.join(vmail, "v.test", "dave.mbox"), "rb").read()
        self.assertTrue(mbox.startswith(b"From peer@example.org "))
        self.assertIn(b"Delivered-To: dave@v.test", mbox)
        self.maildir(USERS[0], 1)  # info@ -> first user
        self.maildir(USERS[1], 1)  # sales@ -> second user too

    def test_mail_client_sends_through_sendmail(self):
        """A real mail program (GNU mailutils' mail, which runs
        `sendmail -oi -f user -t`) pointed at our sendmail."""
        if shutil.which("mail") is None:
            self.skipTest("mailutils not installed")
        wrapper = os.path.join(self.inst.top, "sendmail-wrapper")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s -C %s \"$@\"\n" % (os.path.join(self.inst.libexec, "sendmail"), self.inst.conf))
        os.chmod(wrapper, 0o755)
        pw = pwd.getpwnam(USERS[0])
        r = subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                            "--init-groups", "--", "env", "HOME=" + pw.pw_dir,
                            "mail", "-E", "set sendmail=sendmail://" + wrapper,
                            "-s", "from a mail client", USERS[1]],
                           input=b"written with mail(1)\n", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.maildir(USERS[1], 1)[0], "rb").read()
        self.assertIn(b"Subject: from a mail client", data)
        self.assertIn(b"written with mail(1)", data)
        self.queue_empty()

    def pids_of(self, prog):
        """Children of this instance's master running prog."""
        master = self.inst.master_pid()
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                comm = st[st.index("(") + 1:st.rindex(")")]
                ppid = int(st[st.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                continue
            if comm == prog[:15] and ppid == master:
                out.append(int(d))
        return out

    def test_sendmail_t_as_user(self):
        """The issue's example: printf 'To: bob\\nSubject: hi\\n\\nbody\\n' | sendmail -t."""
        exe = os.path.join(self.inst.libexec, "sendmail")
        pw = pwd.getpwnam(USERS[0])
        r = subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                            "--init-groups", "--", exe, "-C", self.inst.conf, "-t"],
                           input=b"To: %s\nSubject: hi\n\nbody\n" % USERS[1].encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        f = self.maildir(USERS[1], 1)[0]
        data = open(f, "rb").read()
        self.assertTrue(data.startswith(b"Return-Path: <%s@%s>\n" % (USERS[0].encode(), DOMAIN.encode())), data[:300])
        self.assertIn(b"\nFrom: ", data)
        self.assertIn(b"<%s@%s>" % (USERS[0].encode(), DOMAIN.encode()), data)
        self.assertRegex(data, rb"\nDate: \w{3}, ")
        self.assertRegex(data, rb"\nMessage-ID: <[^>]+@mx\.petrel\.test>")
        self.assertIn(b"(Petrel, from userid %d)" % pw.pw_uid, data)
        self.queue_empty()

    def test_stopped_then_started(self):
        self.inst.stop()
        exe = os.path.join(self.inst.libexec, "sendmail")
        for i in range(5):
            r = subprocess.run([exe, "-C", self.inst.conf, "%s@%s" % (USERS[1], DOMAIN)],
                               input=b"Subject: while stopped %d\n\nx\n" % i, capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(0.5)
        self.assertEqual(len(glob.glob(os.path.join(self.homes, USERS[1], "Maildir", "new", "*"))), 0)
        self.inst.start()
        self.assertEqual(len(self.maildir(USERS[1], 5)), 5)
        self.queue_empty()


@unittest.skipUnless(is_root(), "creates system users and checks delivery as them")
class MboxFlowTest(unittest.TestCase):
    """home_mailbox empty: mbox files in mail_spool_directory, read back with
    a real mail client."""

    def setUp(self):
        ensure_users()
        self.port = free_port()
        self.inst = Instance(
            ["smtp accept 127.0.0.1:%d - - 10 smtpd" % self.port,
             "qmgr daemon unix:public/qmgr - - 1 qmgr",
             "local accept unix:private/local root - 4 local-delivery"],
            params=["myhostname = mx.%s" % DOMAIN, "mydestination = %s" % DOMAIN,
                    "alias_maps =", "home_mailbox =",
                    "mail_spool_directory = $config_directory/../spool"])
        self.spool = os.path.join(self.inst.top, "spool")
        os.mkdir(self.spool)
        os.chmod(self.spool, 0o1777)
        subprocess.run(["userdel", "-r", USERS[1]], capture_output=True)
        subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", USERS[1]], check=True)
        self.inst.start()

    def tearDown(self):
        self.inst.cleanup()
        subprocess.run(["userdel", USERS[1]], capture_output=True)

    def test_mbox_read_back_by_mail_client(self):
        if shutil.which("mail") is None:
            self.skipTest("mailutils not installed")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
            for i in range(2):
                c.sendmail("peer@example.org", ["%s@%s" % (USERS[1], DOMAIN)],
                           b"Subject: mbox %d\r\n\r\nFrom the start of a line\r\nbody %d\r\n" % (i, i))
        mbox = os.path.join(self.spool, USERS[1])
        deadline = time.time() + 20
        def count():
            if not os.path.exists(mbox):
                return 0
            with open(mbox, "rb") as f:
                return f.read().count(b"From peer@example.org ")
        while time.time() < deadline and count() < 2:
            time.sleep(0.1)
        with open(mbox, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.startswith(b"From peer@example.org "), raw[:100])
        self.assertIn(b"\n>From the start of a line\n", raw)
        self.assertEqual(os.stat(mbox).st_uid, pwd.getpwnam(USERS[1]).pw_uid)
        # Two local deliveries may run at once: the order in the mbox is free.
        r = subprocess.run(["mail", "-N", "-f", mbox], input=b"p 1\np 2\nq\n", capture_output=True,
                           timeout=30, env={"HOME": self.inst.top, "PATH": os.environ.get("PATH", "")})
        out = r.stdout.decode(errors="replace")
        for i in range(2):
            self.assertIn("Subject: mbox %d" % i, out)
            self.assertIn("body %d" % i, out)
        r = subprocess.run(["mail", "-H", "-f", mbox], capture_output=True, timeout=30,
                           env={"HOME": self.inst.top, "PATH": os.environ.get("PATH", "")})
        self.assertEqual(len([l for l in r.stdout.decode().splitlines() if "mbox" in l]), 2, r.stdout)


if __name__ == "__main__":
    unittest.main()
