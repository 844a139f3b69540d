"""Integration tests of qmgr on a running instance (master + qmgr) with a
FAKE local delivery agent: a UNIX socket server at <queue>/private/local,
written here from docs/ipc.md (netstring records, the `deliver` protocol),
that answers sent / deferred / bounced as each test wants, or crashes.
Messages are put into the queue with bin/queue-inject; queue files are read
with the independent reader in queuefile.py."""
import email
import email.policy
import glob
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

from petrel_instance import Instance, ensure_users, is_root, pid_alive
from queuefile import QueueFile

HOST = "mx.petrel.test"
BODY = "From: alice@localhost\nTo: bob@localhost\nSubject: qmgr test\n\nhello\n"


# -- the netstring record format of docs/ipc.md --------------------------------
def encode_record(pairs):
    out = b""
    for name, value in pairs:
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        n = name.encode()
        out += b"%d:%s,%d:%s," % (len(n), n, len(value), value)
    return out + b"0:,"


class RecordReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _netstring(self):
        while b":" not in self.buf:
            self._fill()
        length, rest = self.buf.split(b":", 1)
        n = int(length)
        while len(rest) < n + 1:
            self._fill()
            length, rest = self.buf.split(b":", 1)
        if rest[n:n + 1] != b",":
            raise ValueError("bad netstring")
        self.buf = rest[n + 1:]
        return rest[:n]

    def record(self):
        rec = {}
        while True:
            name = self._netstring()
            if name == b"":
                return rec
            rec[name.decode()] = self._netstring().decode("utf-8", "replace")


class FakeAgent:
    """private/local. `behave(request, queue_file)` returns a list of
    (index, status, dsn, reason), or "crash" to close without answering;
    it may block (a threading.Event) to simulate a slow delivery."""

    def __init__(self, queue, behave, reuse=False):
        self.path = os.path.join(queue, "private", "local")
        self.behave = behave
        self.reuse = reuse
        self.connections = 0
        self.active_by = {}   # recipient address -> requests in progress
        self.max_by = {}
        self.requests = []   # (request dict, recipients list, QueueFile or None)
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(50)
        self.queue = queue
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with self.lock:
            self.connections += 1
        r = RecordReader(c)
        c.settimeout(30)
        try:
            # With reuse, the end record says reuse=yes and the next request
            # comes on the same connection (docs/ipc.md).
            while self._serve_one(c, r) and self.reuse:
                pass
        finally:
            c.close()

    def _serve_one(self, c, r):
        """One request; True when it was answered completely."""
        try:
            req = r.record()
        except (OSError, EOFError, ValueError):
            return False
        rcpts = []
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        counted = True
        try:
            rcpts = [r.record() for _ in range(int(req["nrcpt"]))]
            with self.lock:
                for rc in rcpts:
                    a = rc["address"]
                    self.active_by[a] = self.active_by.get(a, 0) + 1
                    self.max_by[a] = max(self.max_by.get(a, 0), self.active_by[a])
            qf = None
            try:
                qf = QueueFile(os.path.join(self.queue, "active", req["queue_id"]))
            except OSError:
                pass
            with self.lock:
                self.requests.append((req, rcpts, qf))
            answers = self.behave(req, rcpts, qf)
            if answers == "crash":
                return False
            out = b""
            for idx, status, dsn, reason in answers:
                out += encode_record([("index", idx), ("status", status), ("dsn", dsn),
                                      ("reason", reason)])
            end = [("status", "done")] + ([("reuse", "yes")] if self.reuse else [])
            out += encode_record(end)
            # The request is over once the end record is sent: qmgr may
            # start the next one at once, before this thread gets further.
            with self.lock:
                self.active -= 1
                for rc in rcpts:
                    self.active_by[rc["address"]] -= 1
            counted = False
            c.sendall(out)
            return True
        except (OSError, EOFError, ValueError):
            return False
        finally:
            if counted:
                with self.lock:
                    self.active -= 1
                    for rc in rcpts:
                        self.active_by[rc["address"]] -= 1

    def wait_requests(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError("agent got %d requests, expected %d" % (len(self.requests), n))

    def close(self):
        self.stopped = True
        self.sock.close()


def answer_all(status, dsn, reason):
    return lambda req, rcpts, qf: [(int(r["index"]), status, dsn, reason) for r in rcpts]


def parse_dsn(qf):
    return email.message_from_bytes(qf.content, policy=email.policy.compat32)


def dsn_fields(msg):
    """(per-message fields, [per-recipient fields]) of the delivery-status part."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            groups = part.get_payload()
            return groups[0], groups[1:]
    raise AssertionError("no message/delivery-status part")


class QmgrCase(unittest.TestCase):
    """An instance with master and qmgr; the fake agent starts with start()."""
    params = []

    def setUp(self):
        if is_root():
            ensure_users()
        self.inst = Instance(
            ["qmgr daemon unix:public/qmgr - - 1 qmgr"],
            params=["myhostname = " + HOST,
                    "mydestination = localhost, $myhostname",
                    "alias_maps =",
                    "minimal_backoff_time = 60s",
                    "maximal_backoff_time = 120s",
                    "queue_run_delay = 60s"] + self.params)
        self.agent = None

    def tearDown(self):
        if self.agent:
            self.agent.close()
        self.inst.cleanup()

    # -- helpers ------------------------------------------------------------
    def start(self, behave, reuse=False):
        self.inst.start()
        self.agent = FakeAgent(self.inst.queue, behave, reuse)
        self.inst.wait_log(r"qmgr\[\d+\]: queue manager started")

    def inject(self, sender, *rcpts, notify=None, ret=None, body=BODY, orcpt=None):
        cmd = [os.path.join(self.inst.libexec, "queue-inject"), "-c", self.inst.conf,
               "-f", sender]
        if notify:
            cmd += ["-N", notify]
        if ret:
            cmd += ["-R", ret]
        if orcpt:
            cmd += ["-O", orcpt]
        cmd += list(rcpts)
        if is_root():
            # Queue files belong to the mail owner, as smtpd would write them.
            pw = pwd.getpwnam("petrel")
            cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                   "--clear-groups", "--"] + cmd
        r = subprocess.run(cmd, input=body.encode(), capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        qid = r.stdout.decode().strip()
        self.assertRegex(qid, r"^[0-9A-V]{22}$")
        return qid

    def where(self, qid):
        for d in ("incoming", "active", "deferred", "corrupt"):
            if os.path.exists(os.path.join(self.inst.queue, d, qid)):
                return d
        return None

    def wait_where(self, qid, want, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.where(qid) == want:
                return
            time.sleep(0.05)
        self.fail("%s is in %s, expected %s; log:\n%s" % (qid, self.where(qid), want,
                                                          self.inst.read_log()))

    def queue_files(self, sub):
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.inst.queue, sub, "*")))

    def trigger(self, what):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.path.join(self.inst.queue, "public", "qmgr"))
        s.send(what)
        s.close()

    def qmgr_pid(self):
        pids = re.findall(r"qmgr\[(\d+)\]: queue manager started", self.inst.read_log())
        return int(pids[-1])



class QmgrTest(QmgrCase):
    def test_sent_removes_file(self):
        self.start(answer_all("sent", "2.0.0", "delivered to maildir"))
        t0 = int(time.time())
        qid = self.inject("alice@localhost", "bob@localhost", "Carol@MX.petrel.test",
                          notify="FAILURE,DELAY", orcpt="rfc822;bob@localhost")
        self.wait_where(qid, None)
        reqs = self.agent.wait_requests(2)
        # local_destination_recipient_limit = 1: one request per recipient.
        seen = sorted((r[1][0]["index"], r[1][0]["address"]) for r in reqs)
        self.assertEqual(seen, [("0", "bob@localhost"), ("1", "Carol@MX.petrel.test")])
        for req, rcpts, qf in reqs:
            self.assertEqual(req["protocol"], "deliver")
            self.assertEqual(req["queue_id"], qid)
            self.assertEqual(req["sender"], "alice@localhost")
            self.assertEqual(req["nrcpt"], "1")
            self.assertLessEqual(abs(int(req["arrival"]) - t0), 2)
            self.assertEqual(rcpts[0]["notify"], str(0x04 | 0x08))
            self.assertEqual(rcpts[0]["orcpt"], "rfc822;bob@localhost")
            self.assertIsNotNone(qf, "agent could not open active/<id>")
        log = self.inst.wait_log(r"%s: removed" % qid) and self.inst.read_log()
        self.assertRegex(log, r"%s: from=<alice@localhost>, size=\d+, nrcpt=2 \(queue active\)" % qid)
        self.assertRegex(log, r"%s: to=<bob@localhost>, relay=local, delay=\d+\.\d, dsn=2\.0\.0, "
                              r"status=sent \(delivered to maildir\)" % qid)
        self.assertEqual(self.queue_files("incoming"), [])

    def test_deferred_then_flush(self):
        answers = {"n": 0}

        def behave(req, rcpts, qf):
            answers["n"] += 1
            if answers["n"] == 1:
                return [(int(r["index"]), "deferred", "4.2.2", "mailbox full") for r in rcpts]
            return [(int(r["index"]), "sent", "2.0.0", "ok") for r in rcpts]

        self.start(behave)
        qid = self.inject("alice@localhost", "bob@localhost")
        self.wait_where(qid, "deferred")
        now = time.time()
        qf = QueueFile(os.path.join(self.inst.queue, "deferred", qid))
        self.assertEqual(qf.attempts, 1)
        self.assertEqual(qf.recipients[0]["status"], "W")
        # minimal_backoff_time = 60s after the first attempt
        self.assertGreaterEqual(qf.next_retry, now + 60 - 3)
        self.assertLessEqual(qf.next_retry, now + 60 + 1)
        self.inst.wait_log(r"%s: to=<bob@localhost>, relay=local, delay=[\d.]+, dsn=4\.2\.2, "
                           r"status=deferred \(mailbox full\)" % qid)
        time.sleep(0.5)
        self.assertEqual(len(self.agent.requests), 1, "retried before its time")
        self.trigger(b"F")
        self.wait_where(qid, None)
        self.assertEqual(len(self.agent.requests), 2)
        self.inst.wait_log(r"%s: removed" % qid)

    def test_bounce_goes_to_sender(self):
        def behave(req, rcpts, qf):
            if req["sender"] == "":
                return [(int(r["index"]), "sent", "2.0.0", "ok") for r in rcpts]
            return [(int(r["index"]), "bounced", "5.1.1", "no such user here") for r in rcpts]

        self.start(behave)
        qid = self.inject("alice@localhost", "nobody@localhost", ret="HDRS")
        reqs = self.agent.wait_requests(2)
        self.wait_where(qid, None)
        req, rcpts, qf = reqs[1]
        self.assertEqual(req["sender"], "")
        self.assertEqual([r["address"] for r in rcpts], ["alice@localhost"])
        self.assertEqual(qf.sender, "")
        self.assertEqual(qf.attrs.get("protocol"), "bounce")
        log = self.inst.read_log()
        self.assertRegex(log, r"%s: sender non-delivery notification: %s" % (qid, req["queue_id"]))
        msg = parse_dsn(qf)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["From"], "MAILER-DAEMON@%s (Mail Delivery System)" % HOST)
        self.assertEqual(msg["To"], "<alice@localhost>")
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to Sender")
        top, per = dsn_fields(msg)
        self.assertEqual(top["Reporting-MTA"], "dns; " + HOST)
        self.assertEqual(top["X-Petrel-Queue-ID"], qid)
        self.assertIsNotNone(top["Arrival-Date"])
        self.assertEqual(len(per), 1)
        self.assertEqual(per[0]["Final-Recipient"], "rfc822; nobody@localhost")
        self.assertEqual(per[0]["Action"], "failed")
        self.assertEqual(per[0]["Status"], "5.1.1")
        self.assertEqual(per[0]["Diagnostic-Code"], "x-petrel; no such user here")
        types = [p.get_content_type() for p in msg.walk()]
        # RET=HDRS: the original's header only
        self.assertIn("text/rfc822-headers", types)
        self.assertNotIn("message/rfc822", types)
        self.assertIn(b"Subject: qmgr test", qf.content)

    def test_bounce_of_bounce_goes_to_postmaster_once(self):
        self.start(answer_all("bounced", "5.1.1", "no such user"))
        qid = self.inject("", "nobody@localhost")
        reqs = self.agent.wait_requests(2)
        req, rcpts, qf = reqs[1]
        self.assertEqual([r["address"] for r in rcpts], ["postmaster@localhost"])
        self.assertEqual(qf.attrs.get("protocol"), "postmaster-bounce")
        msg = parse_dsn(qf)
        self.assertEqual(msg["Subject"], "Postmaster Copy: Undelivered Mail")
        self.inst.wait_log(r"%s: undeliverable postmaster notification discarded"
                           % req["queue_id"])
        self.wait_where(qid, None)
        self.wait_where(req["queue_id"], None)
        time.sleep(1)
        self.assertEqual(len(self.agent.requests), 2, "notification loop")
        self.assertEqual(self.queue_files("incoming") + self.queue_files("deferred"), [])

    def test_agent_crash_defers(self):
        self.start(lambda req, rcpts, qf: "crash")
        qid = self.inject("alice@localhost", "bob@localhost")
        self.wait_where(qid, "deferred")
        qf = QueueFile(os.path.join(self.inst.queue, "deferred", qid))
        self.assertEqual(qf.attempts, 1)
        self.assertEqual([r["status"] for r in qf.recipients], ["W"])
        self.inst.wait_log(r"%s: to=<bob@localhost>, relay=local, .*dsn=4\.3\.0, status=deferred "
                           r"\(delivery agent local failed" % qid)
        self.assertNotIn("non-delivery notification", self.inst.read_log())

    def test_missing_agent_defers(self):
        self.inst.start()
        self.inst.wait_log(r"qmgr\[\d+\]: queue manager started")
        qid = self.inject("alice@localhost", "bob@localhost")
        self.wait_where(qid, "deferred")
        self.inst.wait_log(r"%s: to=<bob@localhost>, relay=local, .*dsn=4\.4\.1, status=deferred "
                           r"\(delivery agent local unavailable: connect to private/local" % qid)

    def test_remote_recipient_goes_to_smtp(self):
        # No smtp-client runs here: the remote recipient waits, the local
        # one is delivered by the (fake) local agent alone.
        self.start(answer_all("sent", "2.0.0", "ok"))
        qid = self.inject("alice@localhost", "bob@localhost", "carol@remote.example")
        self.wait_where(qid, "deferred")
        qf = QueueFile(os.path.join(self.inst.queue, "deferred", qid))
        self.assertEqual([r["status"] for r in qf.recipients], ["D", "W"])
        self.inst.wait_log(r"%s: to=<carol@remote.example>, relay=smtp, .*dsn=4\.4\.1, "
                           r"status=deferred \(delivery agent smtp unavailable: "
                           r"connect to private/smtp" % qid)
        reqs = self.agent.wait_requests(1)
        time.sleep(0.5)
        self.assertEqual(len(self.agent.requests), 1)
        self.assertEqual(reqs[0][1][0]["address"], "bob@localhost")
        self.assertNotIn("notification", self.inst.read_log())

    def test_kill_9_mid_delivery(self):
        release = threading.Event()

        def behave(req, rcpts, qf):
            if len(self.agent.requests) == 1:
                release.wait(20)  # the first attempt hangs in the agent
            return [(int(r["index"]), "sent", "2.0.0", "ok") for r in rcpts]

        self.start(behave)
        qid = self.inject("alice@localhost", "bob@localhost")
        self.agent.wait_requests(1)
        self.assertEqual(self.where(qid), "active")
        old = self.qmgr_pid()
        os.kill(old, signal.SIGKILL)
        self.inst.wait_log(r"moved 1 message left in active/ back to incoming/")
        reqs = self.agent.wait_requests(2)
        self.assertNotEqual(self.qmgr_pid(), old)
        self.assertEqual(reqs[1][0]["queue_id"], qid)
        self.wait_where(qid, None)
        release.set()
        # At-least-once: the first attempt was answered too late for anyone
        # to record it, the second one removed the file; nothing was lost.
        self.inst.wait_log(r"%s: removed" % qid)
        self.assertEqual(self.queue_files("incoming") + self.queue_files("active") +
                         self.queue_files("deferred"), [])

    def test_concurrency_limit(self):
        def behave(req, rcpts, qf):
            time.sleep(1.0)  # long enough for all three messages to be queued
            return [(int(r["index"]), "sent", "2.0.0", "ok") for r in rcpts]

        self.start(behave)
        ids = [self.inject("alice@localhost", "bob@localhost", "carol@localhost")
               for _ in range(3)]
        for qid in ids:
            self.wait_where(qid, None)
        self.assertEqual(len(self.agent.requests), 6)
        # local_destination_concurrency_limit counts per recipient (one
        # recipient per batch, local_destination_recipient_limit): 2 for bob
        # and 2 for carol at the same time, never 3 for one of them.
        self.assertEqual(self.agent.max_by, {"bob@localhost": 2, "carol@localhost": 2})
        self.assertEqual(self.agent.max_active, 4)
        for req, rcpts, qf in self.agent.requests:
            self.assertEqual(len(rcpts), 1)  # local_destination_recipient_limit

    def deliver_six(self, reuse):
        self.start(answer_all("sent", "2.0.0", "ok"), reuse=reuse)
        ids = [self.inject("alice@localhost", "bob@localhost") for _ in range(6)]
        for qid in ids:
            self.wait_where(qid, None)
        self.assertEqual(len(self.agent.requests), 6)
        self.assertEqual(len(re.findall(r"status=sent", self.inst.read_log())), 6)

    def test_connection_reuse(self):
        # An agent that ends with reuse=yes gets the next requests on the
        # same connections: at most the concurrency limit of them.
        self.deliver_six(reuse=True)
        self.assertLessEqual(self.agent.connections, 2)

    def test_one_request_per_connection_without_reuse(self):
        self.deliver_six(reuse=False)
        self.assertEqual(self.agent.connections, 6)

    def test_bad_files_are_not_trusted(self):
        self.start(answer_all("sent", "2.0.0", "ok"))
        incoming = os.path.join(self.inst.queue, "incoming")
        bad_id = "0" * 21 + "1"
        temp = "." + "0" * 21 + "2"
        for name, data in ((bad_id, b"V\x00\x00\x00\x04garbage"), ("not-an-id", b"x"),
                           (temp, b"half written")):
            with open(os.path.join(incoming, name), "wb") as f:
                f.write(data)
            if is_root():
                pw = pwd.getpwnam("petrel")
                os.chown(os.path.join(incoming, name), pw.pw_uid, pw.pw_gid)
        self.trigger(b"N")
        self.wait_where(bad_id, "corrupt")
        self.inst.wait_log(r"%s: refusing queue file: .*moving it to corrupt/" % bad_id)
        # A name that is not a queue id and a fresh temporary file stay untouched.
        self.assertTrue(os.path.exists(os.path.join(incoming, "not-an-id")))
        self.assertTrue(os.path.exists(os.path.join(incoming, temp)))
        # A stale temporary file (older than a day) is removed.
        old = time.time() - 2 * 86400
        os.utime(os.path.join(incoming, temp), (old, old))
        self.trigger(b"N")
        deadline = time.time() + 10
        while os.path.exists(os.path.join(incoming, temp)) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(os.path.join(incoming, temp)))
        self.assertEqual(self.agent.requests, [])

    def test_success_notice(self):
        def behave(req, rcpts, qf):
            return [(int(r["index"]), "sent", "2.0.0", "delivered to maildir") for r in rcpts]

        self.start(behave)
        qid = self.inject("alice@localhost", "bob@localhost", notify="SUCCESS")
        reqs = self.agent.wait_requests(2)
        req, rcpts, qf = reqs[1]
        self.assertEqual(req["sender"], "")
        self.assertEqual(rcpts[0]["address"], "alice@localhost")
        msg = parse_dsn(qf)
        self.assertEqual(msg["Subject"], "Successful Mail Delivery Report")
        top, per = dsn_fields(msg)
        self.assertEqual(per[0]["Action"], "delivered")
        self.assertEqual(per[0]["Status"], "2.0.0")
        self.inst.wait_log(r"%s: sender delivery status notification: " % qid)


class QmgrBatchTest(QmgrCase):
    """Several recipients per request, answered out of order with mixed results."""
    params = ["local_destination_recipient_limit = 2"]

    def test_mixed_results_in_one_batch(self):
        outcome = {"bob@localhost": ("deferred", "4.2.2", "mailbox full"),
                   "carol@localhost": ("sent", "2.0.0", "ok"),
                   "dave@localhost": ("bounced", "5.1.1", "no such user"),
                   "alice@localhost": ("sent", "2.0.0", "ok")}

        def behave(req, rcpts, qf):
            return [(int(r["index"]),) + outcome[r["address"]] for r in reversed(rcpts)]

        self.start(behave)
        qid = self.inject("alice@localhost", "bob@localhost", "carol@localhost",
                          "dave@localhost")
        self.wait_where(qid, "deferred")
        mine = [r for r in self.agent.wait_requests(3) if r[0]["queue_id"] == qid]
        self.assertEqual(sorted(len(r[1]) for r in mine), [1, 2])
        qf = QueueFile(os.path.join(self.inst.queue, "deferred", qid))
        self.assertEqual([r["status"] for r in qf.recipients], ["W", "D", "B"])
        notice = [r for r in self.agent.requests if r[0]["sender"] == ""][0]
        top, per = dsn_fields(parse_dsn(notice[2]))
        self.assertEqual([p["Final-Recipient"] for p in per], ["rfc822; dave@localhost"])

    def test_notify_never_suppresses_bounce(self):
        self.start(answer_all("bounced", "5.1.1", "no such user"))
        qid = self.inject("alice@localhost", "bob@localhost", "carol@localhost",
                          notify="NEVER")
        self.wait_where(qid, None)
        self.inst.wait_log(r"%s: removed" % qid)
        time.sleep(0.3)
        self.assertEqual(len(self.agent.requests), 1)  # both in one request, no notice
        self.assertNotIn("notification", self.inst.read_log())


class QmgrExpiryTest(QmgrCase):
    """Short lifetimes: deferred mail expires and bounces; one delay warning."""
    params = ["maximal_queue_lifetime = 3s", "delay_warning_time = 1s"]

    def setUp(self):
        super().setUp()
        self.inst.append_conf("minimal_backoff_time = 1s")
        self.inst.append_conf("maximal_backoff_time = 1s")
        self.inst.append_conf("queue_run_delay = 1s")

    def test_expiry_bounces(self):
        def behave(req, rcpts, qf):
            if req["sender"] == "":
                return [(int(r["index"]), "sent", "2.0.0", "ok") for r in rcpts]
            return [(int(r["index"]), "deferred", "4.2.1", "mailbox busy") for r in rcpts]

        self.start(behave)
        qid = self.inject("alice@localhost", "bob@localhost")
        self.wait_where(qid, None, timeout=20)
        # The bounce is queued before the message is removed, but delivered to
        # the agent a moment later: wait for it (slow under sanitizers).
        deadline = time.time() + 15
        while time.time() < deadline:
            notices = [r for r in self.agent.requests if r[0]["sender"] == ""]
            if len(notices) >= 2:
                break
            time.sleep(0.1)
        kinds = [parse_dsn(n[2])["Subject"] for n in notices]
        # one delay warning (after 1 s), then the bounce at expiry (3 s)
        self.assertEqual(kinds, ["Delayed Mail (still being retried)",
                                 "Undelivered Mail Returned to Sender"])
        top, per = dsn_fields(parse_dsn(notices[0][2]))
        self.assertEqual(per[0]["Action"], "delayed")
        self.assertEqual(per[0]["Status"], "4.2.1")
        top, per = dsn_fields(parse_dsn(notices[1][2]))
        self.assertEqual(per[0]["Action"], "failed")
        self.assertEqual(per[0]["Diagnostic-Code"], "x-petrel; message expired: mailbox busy")
        self.inst.wait_log(r"%s: from=<alice@localhost>, status=expired, returned to sender" % qid)
        tries = [r for r in self.agent.requests if r[0]["queue_id"] == qid]
        self.assertGreaterEqual(len(tries), 2)  # retried with back-off before expiring



if __name__ == "__main__":
    unittest.main()
