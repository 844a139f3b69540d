"""Integration tests of local submission: the sendmail command (also as
mailq and newaliases) and the pickup service, on a real instance. As root,
sendmail runs as the ordinary user `nobody`, as a local program would."""
import glob
import os
import pwd
import stat
import subprocess
import time
import unittest

from petrel_instance import Instance, ensure_users, free_port, is_root
from queuefile import QueueFile

DOMAIN = "petrel.test"


class SendmailTest(unittest.TestCase):
    def setUp(self):
        if is_root():
            ensure_users()
        self.port = free_port()
        self.inst = Instance(
            ["pickup daemon unix:public/pickup - - 1 pickup",
             "smtp accept 127.0.0.1:%d - - 5 smtpd" % self.port],
            params=["myhostname = mx.%s" % DOMAIN, "myorigin = %s" % DOMAIN,
                    "mydestination = %s, $myhostname, localhost" % DOMAIN,
                    "message_size_limit = 200000", "pickup_interval = 1s",
                    "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps"])
        self.inst.write_file("aliases", "postmaster: root\n")
        os.chmod(self.inst.conf, 0o755)
        self.user = "nobody" if is_root() else pwd.getpwuid(os.getuid()).pw_name
        self.uid = pwd.getpwnam(self.user).pw_uid

    def tearDown(self):
        self.inst.cleanup()

    def sendmail(self, args, stdin, prog="sendmail"):
        exe = os.path.join(self.inst.libexec, "sendmail")
        cmd = [exe, "-C", self.inst.conf] + list(args)
        if prog != "sendmail":
            link = os.path.join(self.inst.libexec, prog)
            if not os.path.exists(link):
                os.symlink("sendmail", link)
            cmd[0] = link
        if is_root():
            cmd = ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % pwd.getpwnam(self.user).pw_gid,
                   "--clear-groups", "--"] + cmd
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=30)

    def incoming(self, count, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            files = sorted(glob.glob(os.path.join(self.inst.queue, "incoming", "[0-9A-V]*")))
            if len(files) >= count:
                return [QueueFile(f) for f in files]
            time.sleep(0.05)
        raise AssertionError("expected %d queued messages; log:\n%s" % (count, self.inst.read_log()))

    def test_plain_submission_adds_headers(self):
        self.inst.start()
        r = self.sendmail(["root"], b"Subject: hi\n\nbody line\n.leading dot\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        qf = self.incoming(1)[0]
        self.assertEqual(qf.sender, "%s@%s" % (self.user, DOMAIN))
        self.assertEqual([x["address"] for x in qf.recipients], ["root@%s" % DOMAIN])
        self.assertEqual(qf.attrs.get("protocol"), "local")
        head = qf.headers()
        self.assertIn("Received: by mx.%s (Petrel, from userid %d)" % (DOMAIN, self.uid), head)
        self.assertRegex(head, r"\r\nFrom: .*<%s@%s>\r\n" % (self.user, DOMAIN))
        self.assertRegex(head, r"\r\nDate: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n")
        self.assertRegex(head, r"\r\nMessage-ID: <[^>]+@mx\.%s>(\r\n|$)" % DOMAIN)
        self.assertTrue(qf.content.endswith(b"\r\n\r\nbody line\r\n.leading dot\r\n"), qf.content)
        self.assertEqual(os.listdir(os.path.join(self.inst.queue, "maildrop")), [])
        self.inst.wait_log(r"uid=%d from=<%s@%s>" % (self.uid, self.user, DOMAIN))

    def test_extract_recipients_and_remove_bcc(self):
        self.inst.start()
        msg = (b"From: Someone <someone@example.org>\nTo: Bob <bob@example.org>, carol\n"
               b"Cc: \"Dave, Jr.\" <dave@example.org> (a comment)\nBcc: secret@example.org\n"
               b"Subject: t\n\nbody\n.\nnot part of the message\n")
        r = self.sendmail(["-t", "-f", "sender@example.org"], msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        qf = self.incoming(1)[0]
        self.assertEqual(qf.sender, "sender@example.org")
        self.assertEqual(sorted(x["address"] for x in qf.recipients),
                         ["bob@example.org", "carol@%s" % DOMAIN, "dave@example.org",
                          "secret@example.org"])
        head = qf.headers()
        self.assertNotIn("Bcc", head)
        self.assertNotIn("secret", qf.content.decode())
        self.assertIn("From: Someone <someone@example.org>", head)  # kept as written
        self.assertNotIn(b"not part of the message", qf.content)  # "." ended input (no -i)

    def test_works_while_stopped(self):
        for i in range(5):
            r = self.sendmail(["-oi", "root"], b"Subject: %d\n\n.\nbody\n" % i)
            if r.returncode == 75 and b"maildrop" in r.stderr:
                # The queue does not exist before the first start: create it.
                self.inst.petrel("set-permissions")
                r = self.sendmail(["-oi", "root"], b"Subject: %d\n\n.\nbody\n" % i)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(os.listdir(os.path.join(self.inst.queue, "maildrop"))), 5)
        self.inst.start()
        files = self.incoming(5)
        self.assertEqual(len(files), 5)
        self.assertTrue(all(b"\r\n.\r\nbody\r\n" in q.content for q in files))  # -oi kept "."

    def test_bad_input_exit_codes(self):
        self.inst.start()
        r = self.sendmail(["root"], b"x" * 300000)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"message_size_limit", r.stderr)
        r = self.sendmail(["bad address@"], b"Subject: x\n\nx\n")
        self.assertEqual(r.returncode, 67, r.stderr)
        r = self.sendmail([], b"Subject: x\n\nx\n")
        self.assertEqual(r.returncode, 64, r.stderr)
        r = self.sendmail(["-N", "sometimes", "root"], b"x\n")
        self.assertEqual(r.returncode, 64)
        r = self.sendmail(["-F", "A" * 70000, "root"], b"Subject: long name\n\nx\n")
        self.assertIn(r.returncode, (0, 64), r.stderr)  # bounded either way, never a crash
        time.sleep(1.5)
        files = glob.glob(os.path.join(self.inst.queue, "incoming", "[0-9A-V]*"))
        self.assertLessEqual(len(files), 1)
        self.assertEqual(os.listdir(os.path.join(self.inst.queue, "maildrop")), [])

    def test_planted_and_truncated_files_quarantined(self):
        self.inst.start()
        r = self.sendmail(["root"], b"Subject: good\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.incoming(1)
        maildrop = os.path.join(self.inst.queue, "maildrop")
        # A truncated drop file and a garbage file with valid queue-id names.
        self.inst.stop()
        r = self.sendmail(["root"], b"Subject: to be cut\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        name = os.listdir(maildrop)[0]
        path = os.path.join(maildrop, name)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 7)
        with open(os.path.join(maildrop, "0" * 22), "wb") as f:
            f.write(b"MAIL FROM:<evil@example.org>\r\n")
        os.symlink("/etc/passwd", os.path.join(maildrop, "1" * 22))
        self.inst.start()
        r = self.sendmail(["root"], b"Subject: after\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.incoming(2)
        deadline = time.time() + 10
        corrupt = os.path.join(self.inst.queue, "corrupt")
        while len(os.listdir(corrupt)) < 3 and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(sorted(os.listdir(corrupt)), sorted([name, "0" * 22, "1" * 22]))
        self.assertEqual(os.listdir(maildrop), [])
        self.inst.wait_log(r"maildrop/%s: .*; moved to corrupt/" % name)

    def test_bs_smtp_dialogue(self):
        self.inst.start()
        dialogue = (b"EHLO localhost\r\nMAIL FROM:<%s@%s>\r\nRCPT TO:<root@%s>\r\nDATA\r\n"
                    b"Subject: via -bs\r\n\r\nhello\r\n.\r\nQUIT\r\n" % (self.user.encode(), DOMAIN.encode(), DOMAIN.encode()))
        r = self.sendmail(["-bs"], dialogue)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertTrue(out.startswith("220 mx.%s" % DOMAIN), out)
        self.assertIn("250 2.0.0 Ok: queued as", out)
        self.assertIn("221 2.0.0", out)
        qf = self.incoming(1)[0]
        self.assertIn("Subject: via -bs", qf.headers())

    def test_mailq_and_newaliases(self):
        self.inst.start()
        self.inst.stop()  # keep messages where mailq can see them
        r = self.sendmail(["-oi", "root", "daemon"], b"Subject: q\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        if is_root():
            r = subprocess.run([os.path.join(self.inst.libexec, "sendmail"), "-C", self.inst.conf, "-bp"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("-Queue ID-", r.stdout)
            self.assertRegex(r.stdout, r"[0-9A-V]{22}  +\d+ \w{3} \w{3} +\d+ \d\d:\d\d:\d\d  %s@%s" % (self.user, DOMAIN))
            self.assertIn("root@%s" % DOMAIN, r.stdout)
            self.assertIn("-- 1 Kbytes in 1 Request.", r.stdout)
            # As an ordinary user: a clear refusal.
            r = self.sendmail([], b"", prog="mailq")
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"run it as root or as the mail owner", r.stderr)
        aliases = os.path.join(self.inst.conf, "aliases")
        with open(aliases, "a") as f:
            f.write("team: root, daemon\n")
        r = subprocess.run([os.path.join(self.inst.libexec, "sendmail"), "-C", self.inst.conf, "-bi"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(aliases + ".db"))
        with open(aliases, "a") as f:
            f.write("broken line without colon\n")
        r = subprocess.run([os.path.join(self.inst.libexec, "sendmail"), "-C", self.inst.conf, "-bi"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"aliases:\d+: ")


if __name__ == "__main__":
    unittest.main()
