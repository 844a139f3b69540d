"""End-to-end mail flow on one host: a message enters through smtpd (port
25-style, from another server) or through the local sendmail command, is
queued, scheduled by qmgr and delivered by local-delivery into the Maildir
of a real system user, with every daemon under master. Root only: it
creates two throwaway system users (removed again) and checks ownership."""
import glob
import os
import pwd
import shutil
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
                    "alias_database = $alias_maps"])
        self.homes = os.path.join(self.inst.top, "home")
        os.mkdir(self.homes)
        os.chmod(self.homes, 0o755)
        for u in USERS:
            subprocess.run(["userdel", "-r", u], capture_output=True)
            subprocess.run(["useradd", "--home-dir", os.path.join(self.homes, u), "--create-home",
                            "--shell", "/bin/sh", u], check=True)
        self.inst.write_file("aliases", "postmaster: %s\nroot: %s\nalice: %s\nteam: %s, %s\n"
                             % (USERS[0], USERS[0], USERS[0], USERS[0], USERS[1]))
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


if __name__ == "__main__":
    unittest.main()
