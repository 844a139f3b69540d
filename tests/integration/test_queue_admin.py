"""Integration tests of queue administration: mailq and `petrel queue`
(list, show, hold, release, requeue, delete, flush) on a running instance
with pickup and qmgr. Mail to another domain stays deferred (there is no
smtp transport yet), which gives the tests a deferred message to manage."""
import glob
import json
import os
import re
import subprocess
import time
import unittest

from petrel_instance import Instance, ensure_users, is_root

DOMAIN = "petrel.test"


@unittest.skipUnless(is_root(), "queue administration needs root or the mail owner")
class QueueAdminTest(unittest.TestCase):
    def setUp(self):
        ensure_users()
        self.inst = Instance(
            ["pickup daemon unix:public/pickup - - 1 pickup",
             "qmgr daemon unix:public/qmgr - - 1 qmgr"],
            params=["myhostname = mx.%s" % DOMAIN, "mydestination = %s" % DOMAIN,
                    "pickup_interval = 1s", "alias_maps ="])
        self.inst.start()

    def tearDown(self):
        self.inst.cleanup()

    def send(self, rcpt, subject="x"):
        exe = os.path.join(self.inst.libexec, "sendmail")
        r = subprocess.run([exe, "-C", self.inst.conf, rcpt],
                           input=b"Subject: %s\n\nbody\n" % subject.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def files(self, sub):
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.inst.queue, sub, "[0-9A-V]*")))

    def wait_in(self, sub, n=1, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.files(sub)) == n:
                return self.files(sub)
            time.sleep(0.1)
        raise AssertionError("%s/ never had %d files; log:\n%s" % (sub, n, self.inst.read_log()))

    def queue(self, *args, check=True):
        return self.inst.petrel("queue", *args, check=check)

    def test_deferred_listing_and_operations(self):
        self.send("remote@elsewhere.example", "first")
        qid = self.wait_in("deferred")[0]
        r = subprocess.run([os.path.join(self.inst.libexec, "sendmail"), "-C", self.inst.conf, "-bp"],
                           capture_output=True, text=True)
        self.assertIn(qid, r.stdout)
        self.assertRegex(r.stdout, r"\(4\.\d\.\d+ .+; 1 attempt\)")  # the recorded reason
        self.assertIn("remote@elsewhere.example", r.stdout)
        data = json.loads(self.queue("list", "--json").stdout)
        self.assertEqual([(m["queue_id"], m["queue_name"]) for m in data], [(qid, "deferred")])
        self.assertEqual(data[0]["recipients"][0]["status"], "deferred")
        show = self.queue("show", qid).stdout
        self.assertIn("recipient: remote@elsewhere.example (deferred)", show)
        self.assertIn("Subject: first", show)

        self.queue("hold", qid)
        self.assertEqual(self.files("hold"), [qid])
        self.assertRegex(self.queue("list").stdout, qid + r"!")
        self.queue("release", "ALL")
        self.wait_in("deferred")  # retried at once, deferred again
        self.assertEqual(self.files("hold"), [])

        before = self.queue("show", qid).stdout
        attempts = int(re.search(r"attempts: (\d+)", before).group(1))
        self.queue("flush")
        deadline = time.time() + 10
        while time.time() < deadline:
            now = int(re.search(r"attempts: (\d+)", self.queue("show", qid, check=False).stdout or "attempts: 0").group(1))
            if now > attempts:
                break
            time.sleep(0.1)
        self.assertGreater(now, attempts)

        self.send("other@elsewhere.example", "second")
        self.wait_in("deferred", 2)
        r = self.queue("delete", "--to", "other@elsewhere.example")
        self.assertIn("1 message", r.stdout)
        self.assertEqual(self.files("deferred"), [qid])
        self.queue("requeue", qid)
        self.wait_in("deferred")
        self.queue("delete", "ALL")
        self.assertEqual(self.files("deferred"), [])
        self.assertIn("Mail queue is empty", self.queue("list").stdout)

    def test_bad_arguments(self):
        r = self.queue("hold", "../../etc/passwd", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not a queue id", r.stderr)
        r = self.queue("show", "0" * 22, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such message", r.stderr)
        r = self.queue("frobnicate", "x", check=False)
        self.assertEqual(r.returncode, 64)


if __name__ == "__main__":
    unittest.main()
