"""Integration tests of local-delivery on a running instance (master and two
local-delivery services, run as root: one delivering to Maildir, one -o
home_mailbox= to mbox). Two throwaway system users with homes in the
instance's directory are created and removed again. Messages are written
with bin/queue-inject and moved into active/ by hand (no qmgr runs); the
test speaks the `deliver` protocol of docs/ipc.md itself (netstring
records) on <queue>/private/local and checks the answers and the files.
Root only: user switching is what is being tested."""
import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from petrel_instance import BIN, Instance, ensure_users, is_root
from queuefile import QueueFile

USERS = ("pltalice", "pltbob")
DOMAIN = "petrel.test"
SENDER = "carol@example.org"


# -- the netstring record format of docs/ipc.md -------------------------------
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


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("peer closed")
            self.buf += data

    def _netstring(self):
        while b":" not in self.buf:
            self._need(len(self.buf) + 1)
        length, _ = self.buf.split(b":", 1)
        n = int(length)
        head = len(length) + 1
        self._need(head + n + 1)
        value = self.buf[head:head + n]
        assert self.buf[head + n:head + n + 1] == b",", "framing"
        self.buf = self.buf[head + n + 1:]
        return value

    def record(self):
        rec = {}
        while True:
            name = self._netstring()
            if name == b"":
                return rec
            rec[name.decode()] = self._netstring().decode("utf-8", "replace")


@unittest.skipUnless(is_root(), "local-delivery switches users: run as root")
class LocalDeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_users()
        cls.inst = inst = Instance(
            ["local accept unix:private/local root - 4 local-delivery",
             "localmbox accept unix:private/localmbox root - 2 local-delivery "
             "-o home_mailbox="],
            params=[])
        top = inst.top
        cls.out = os.path.join(top, "out")       # where commands write
        cls.spool = os.path.join(top, "spool")   # mail_spool_directory
        cls.homes = os.path.join(top, "home")
        for d, mode in ((cls.out, 0o1777), (cls.spool, 0o1777), (cls.homes, 0o755)):
            os.mkdir(d)
            os.chmod(d, mode)
        cls.users = {}
        for u in USERS:
            subprocess.run(["userdel", u], capture_output=True)
            home = os.path.join(cls.homes, u)
            subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-U", u], check=True)
            pw = pwd.getpwnam(u)
            os.mkdir(home, 0o755)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            cls.users[u] = pw
        cls.nobody = pwd.getpwnam("nobody")
        aliases = inst.write_file("aliases", """\
# test aliases
team: pltalice, pltbob
pipe: "|env > {out}/pipe.env; id -u > {out}/pipe.uid; printf %s \\"$EXTENSION\\" > {out}/pipe.ext; cat > {out}/pipe.msg"
fdcheck: "|echo $$ > {out}/fd.pid; exec sleep 1"
tempfail: "|exit 75"
permfail: "|echo oops, no such mailbox >&2; exit 1"
slow: "|sleep 30"
ghost: nosuch-user-xyz
loopa: loopb
loopb: loopa
fwd: someone@remote.example, pltbob
self: pltbob
pltbob: \\pltbob, {out}/bob-copy
""".format(out=cls.out))
        os.chmod(aliases, 0o644)
        for line in (
            "myhostname = mx.petrel.test",
            "mydestination = %s, $myhostname, localhost" % DOMAIN,
            "alias_maps = hash:" + aliases,
            "alias_database = hash:" + aliases,
            "home_mailbox = Maildir/",
            "mail_spool_directory = " + cls.spool,
            "default_privs = nobody",
            "command_time_limit = 2s",
            "allow_mail_to_files = alias, forward",
        ):
            inst.append_conf(line)
        inst.petrel("newaliases")
        inst.start()
        # bob-copy is written as default_privs (nobody): it must exist and
        # be writable by nobody.
        copy = os.path.join(cls.out, "bob-copy")
        open(copy, "w").close()
        os.chown(copy, cls.nobody.pw_uid, cls.nobody.pw_gid)
        os.chmod(copy, 0o600)

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()
        for u in USERS:
            subprocess.run(["userdel", u], capture_output=True)

    # -- helpers -----------------------------------------------------------
    def queue_message(self, rcpts, body, sender=SENDER, orcpt=None):
        args = [os.path.join(BIN, "queue-inject"), "-c", self.inst.conf, "-f", sender]
        if orcpt:
            args += ["-O", orcpt]
        r = subprocess.run(args + ["--"] + list(rcpts), input=body.encode(), capture_output=True,
                           check=True)
        qid = r.stdout.decode().strip()
        os.rename(os.path.join(self.inst.queue, "incoming", qid),
                  os.path.join(self.inst.queue, "active", qid))
        return qid

    def deliver(self, rcpts, body, service="local", sender=SENDER, during=None, orcpt=None):
        """Queues a message to rcpts and asks the agent; returns the results
        (dicts) in recipient order."""
        qid = self.queue_message(rcpts, body, sender, orcpt)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(os.path.join(self.inst.queue, "private", service))
        req = encode_record([("protocol", "deliver"), ("queue_id", qid), ("sender", sender),
                             ("nrcpt", len(rcpts)), ("arrival", int(time.time()))])
        for i, r in enumerate(rcpts):
            req += encode_record([("index", i), ("address", r), ("notify", 0)])
        s.sendall(req)
        if during:
            during()
        rd = Reader(s)
        results = {}
        while True:
            rec = rd.record()
            if rec.get("status") == "done" and "index" not in rec:
                break
            results[int(rec["index"])] = rec
        s.close()
        self.assertEqual(sorted(results), list(range(len(rcpts))))
        self.last_id = qid
        # The agent never writes the queue file: every recipient still pending.
        qf = QueueFile(os.path.join(self.inst.queue, "active", qid))
        self.assertTrue(all(r["status"] == "P" for r in qf.recipients))
        return [results[i] for i in range(len(rcpts))]

    def deliver_one(self, rcpt, body, **kw):
        return self.deliver([rcpt], body, **kw)[0]

    def maildir_files(self, user, marker):
        home = self.users[user].pw_dir
        found = []
        for p in glob.glob(os.path.join(home, "Maildir", "new", "*")):
            with open(p, "rb") as f:
                data = f.read()
            if marker.encode() in data:
                found.append((p, data))
        return found

    @staticmethod
    def body(marker, extra=""):
        return ("From: %s\nTo: someone\nSubject: %s\n%s\nhello %s\nFrom the body\n"
                % (SENDER, marker, extra, marker))

    # -- mailboxes ---------------------------------------------------------
    def request_on(self, s, rd, user, marker):
        """One request on an open connection; returns (result, end record)."""
        qid = self.queue_message(["%s@localhost" % user], self.body(marker))
        s.sendall(encode_record([("protocol", "deliver"), ("queue_id", qid),
                                 ("sender", SENDER), ("nrcpt", 1),
                                 ("arrival", int(time.time()))]) +
                  encode_record([("index", 0), ("address", "%s@localhost" % user),
                                 ("notify", 0)]))
        return rd.record(), rd.record()

    def connect_local(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(os.path.join(self.inst.queue, "private", "local"))
        return s, Reader(s)

    def test_many_requests_on_one_connection(self):
        # qmgr keeps its connection: every end record says reuse=yes and the
        # agent serves the next request on the same connection.
        s, rd = self.connect_local()
        user = USERS[0]
        markers = ["reuse-%d-%s" % (i, time.time()) for i in range(3)]
        for marker in markers:
            res, end = self.request_on(s, rd, user, marker)
            self.assertEqual((res["index"], res["status"]), ("0", "sent"), res)
            self.assertEqual(end, {"status": "done", "reuse": "yes"})
        s.close()
        for marker in markers:
            self.assertEqual(len(self.maildir_files(user, marker)), 1, marker)

    def runner_pids(self, user):
        """Live processes of user whose parent is a local-delivery process."""
        uid = self.users[user].pw_uid
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/status" % d) as f:
                    st = f.read()
                ppid = int(re.search(r"^PPid:\s+(\d+)", st, re.M).group(1))
                ruid = int(re.search(r"^Uid:\s+(\d+)", st, re.M).group(1))
                with open("/proc/%d/cmdline" % ppid, "rb") as f:
                    parent = os.path.basename(f.read().split(b"\0")[0])
            except (OSError, AttributeError, ValueError):
                continue
            zombie = re.search(r"^State:\s+Z", st, re.M) is not None
            if ruid == uid and parent == b"local-delivery" and not zombie:
                found.append(int(d))
        return found

    def test_runner_serves_many_and_is_replaced_when_it_dies(self):
        # Mailbox deliveries of one user share a long-lived child that runs
        # as that user (never as root); one that dies is replaced.
        user = USERS[1]
        for pid in self.runner_pids(user):  # left by earlier tests in other processes
            os.kill(pid, 9)
        s, rd = self.connect_local()
        for i in range(2):
            res, _ = self.request_on(s, rd, user, "runner-%d" % i)
            self.assertEqual(res["status"], "sent", res)
        pids = self.runner_pids(user)
        self.assertEqual(len(pids), 1, pids)
        with open("/proc/%d/status" % pids[0]) as f:
            uids = re.search(r"^Uid:\s+(.*)$", f.read(), re.M).group(1).split()
        self.assertEqual(set(uids), {str(self.users[user].pw_uid)})  # real, effective, saved
        os.kill(pids[0], 9)
        res, _ = self.request_on(s, rd, user, "runner-after-kill")
        s.close()
        self.assertEqual(res["status"], "sent", res)
        self.assertEqual(len(self.maildir_files(user, "runner-after-kill")), 1)
        self.assertNotIn(pids[0], self.runner_pids(user))

    def test_maildir_delivery(self):
        r = self.deliver_one("pltalice@%s" % DOMAIN, self.body("maildir-1"))
        self.assertEqual((r["status"], r["dsn"]), ("sent", "2.0.0"), r)
        self.assertEqual(r["reason"], "delivered to maildir")
        files = self.maildir_files("pltalice", "maildir-1")
        self.assertEqual(len(files), 1)
        path, data = files[0]
        st = os.stat(path)
        self.assertEqual(st.st_uid, self.users["pltalice"].pw_uid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertNotIn(b"\r", data)
        self.assertTrue(data.startswith(b"Return-Path: <%s>\nDelivered-To: pltalice@%s\n"
                                        % (SENDER.encode(), DOMAIN.encode())), data[:200])
        self.assertIn(b"\nFrom the body\n", data)  # no quoting in Maildir
        md = os.path.join(self.users["pltalice"].pw_dir, "Maildir")
        self.assertEqual(os.stat(md).st_uid, self.users["pltalice"].pw_uid)
        self.assertRegex(self.inst.read_log(), r"local: to=<pltalice@petrel\.test>, delay=")

    def test_extension_and_case(self):
        r = self.deliver_one("PltAlice+Lists@%s" % DOMAIN.upper(), self.body("ext-1"))
        self.assertEqual(r["status"], "sent", r)
        files = self.maildir_files("pltalice", "ext-1")
        self.assertEqual(len(files), 1)
        self.assertIn(b"Delivered-To: pltalice+lists@petrel.test\n", files[0][1])

    def test_mbox_delivery(self):
        r = self.deliver_one("pltalice@%s" % DOMAIN, self.body("mbox-1"), service="localmbox")
        self.assertEqual((r["status"], r["reason"]), ("sent", "delivered to mailbox"), r)
        r = self.deliver_one("pltalice@%s" % DOMAIN, self.body("mbox-2"), service="localmbox")
        self.assertEqual(r["status"], "sent", r)
        path = os.path.join(self.spool, "pltalice")
        st = os.lstat(path)
        self.assertEqual(st.st_uid, self.users["pltalice"].pw_uid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"From carol@example.org "), data[:80])
        self.assertEqual(len(re.findall(rb"^From carol@example\.org ", data, re.M)), 2)
        self.assertIn(b"\nReturn-Path: <carol@example.org>\nDelivered-To: pltalice@petrel.test\n",
                      data)
        self.assertIn(b"\n>From the body\n", data)
        self.assertNotIn(b"\r", data)
        self.assertTrue(data.endswith(b"hello mbox-2\n>From the body\n\n"))
        self.assertFalse(os.path.exists(path + ".lock"))

    def test_mbox_refuses_hardlink_and_symlink(self):
        user = "pltbob"
        pw = self.users[user]
        path = os.path.join(self.spool, user)
        victim = os.path.join(self.out, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.chown(victim, pw.pw_uid, pw.pw_gid)
        try:
            os.link(victim, path)
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("hard-1"),
                                 service="localmbox")
            self.assertEqual(r["status"], "deferred", r)
            self.assertIn("hard links", r["reason"])
            os.unlink(path)
            os.symlink(victim, path)
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("sym-1"),
                                 service="localmbox")
            self.assertEqual(r["status"], "deferred", r)
            self.assertIn("symbolic link", r["reason"])
            with open(victim) as f:
                self.assertEqual(f.read(), "precious\n")
        finally:
            if os.path.lexists(path):
                os.unlink(path)

    def test_symlinked_maildir_new(self):
        user = "pltbob"
        pw = self.users[user]
        md = os.path.join(pw.pw_dir, "Maildir")
        elsewhere = os.path.join(self.out, "elsewhere")
        os.makedirs(elsewhere, exist_ok=True)
        os.chown(elsewhere, pw.pw_uid, pw.pw_gid)
        # A complete Maildir first, then new/ replaced by a symlink.
        r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("pre-sym"))
        self.assertEqual(r["status"], "sent", r)
        saved = md + ".saved"
        os.rename(md, saved)
        try:
            os.mkdir(md, 0o700)
            for sub in ("tmp", "cur"):
                os.mkdir(os.path.join(md, sub), 0o700)
                os.chown(os.path.join(md, sub), pw.pw_uid, pw.pw_gid)
            os.symlink(elsewhere, os.path.join(md, "new"))
            os.chown(md, pw.pw_uid, pw.pw_gid)
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("sym-maildir"))
            self.assertIn(r["status"], ("deferred", "bounced"), r)
            self.assertRegex(r["reason"].lower(), "symlink|symbolic link")
            self.assertEqual(os.listdir(elsewhere), [])
            self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
        finally:
            subprocess.run(["rm", "-rf", md])
            os.rename(saved, md)

    # -- aliases -----------------------------------------------------------
    def test_alias_to_users(self):
        r = self.deliver_one("team@%s" % DOMAIN, self.body("team-1"))
        self.assertEqual(r["status"], "sent", r)
        self.assertEqual(r["reason"], "delivered to 3 destinations")  # + bob's file copy
        self.assertEqual(len(self.maildir_files("pltalice", "team-1")), 1)
        bob = self.maildir_files("pltbob", "team-1")
        self.assertEqual(len(bob), 1)
        self.assertIn(b"Delivered-To: pltbob@petrel.test\n", bob[0][1])
        with open(os.path.join(self.out, "bob-copy"), "rb") as f:
            self.assertIn(b"team-1", f.read())
        self.assertRegex(self.inst.read_log(),
                         r"local: to=<pltbob@petrel\.test>, orig_to=<team@petrel\.test>")

    def test_alias_pipe_runs_as_default_privs(self):
        # A short directory, so the local part stays within 64 octets.
        short = tempfile.mkdtemp(prefix="pl", dir="/tmp")
        os.chmod(short, 0o1777)
        self.addCleanup(shutil.rmtree, short, True)
        ext = "x`touch %s/a`;$(touch %s/b)" % (short, short)
        rcpt = '"pipe+%s"@%s' % (ext, DOMAIN)
        r = self.deliver_one(rcpt, self.body("pipe-1"), orcpt="rfc822;orig@example.net")
        self.assertEqual((r["status"], r["reason"]), ("sent", "delivered to command"), r)
        uid_file = os.path.join(self.out, "pipe.uid")
        self.assertEqual(os.stat(uid_file).st_uid, self.nobody.pw_uid)
        with open(uid_file) as f:
            self.assertEqual(int(f.read()), self.nobody.pw_uid)
        with open(os.path.join(self.out, "pipe.env")) as f:
            env = dict(line.split("=", 1) for line in f.read().splitlines())
        env.pop("PWD", None)  # set by the shell itself
        env.pop("SHLVL", None)
        env.pop("_", None)
        env.pop("TZ", None)  # passed on from master when set
        self.assertEqual(env, {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "SHELL": "/bin/sh",
            "HOME": self.nobody.pw_dir, "USER": "nobody", "LOGNAME": "nobody",
            "SENDER": SENDER, "RECIPIENT": "pipe+%s@%s" % (ext.lower(), DOMAIN),
            "ORIGINAL_RECIPIENT": "orig@example.net", "LOCAL": "pipe",
            "EXTENSION": ext.lower(), "DOMAIN": DOMAIN})
        with open(os.path.join(self.out, "pipe.ext")) as f:
            self.assertEqual(f.read(), ext.lower())
        # BAD-INPUT row 2: the address text reached the command only as data.
        self.assertEqual(os.listdir(short), [])
        with open(os.path.join(self.out, "pipe.msg"), "rb") as f:
            msg = f.read()
        self.assertTrue(msg.startswith(b"Return-Path: <carol@example.org>\nDelivered-To: pipe+"))
        self.assertNotIn(b"\r", msg)

    def test_pipe_gets_only_three_descriptors(self):
        pidfile = os.path.join(self.out, "fd.pid")
        seen = {}

        def look():
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    with open(pidfile) as f:
                        pid = int(f.read())
                    seen["fds"] = sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid))
                    with open("/proc/%d/status" % pid) as f:
                        seen["uid"] = [l for l in f if l.startswith("Uid:")][0].split()[1:]
                    return
                except (OSError, ValueError):
                    time.sleep(0.05)
        r = self.deliver_one("fdcheck@%s" % DOMAIN, self.body("fd-1"), during=look)
        self.assertEqual(r["status"], "sent", r)
        self.assertEqual(seen.get("fds"), [0, 1, 2])
        self.assertEqual(seen.get("uid"), [str(self.nobody.pw_uid)] * 4)

    def test_pipe_exit_codes_and_time_limit(self):
        rs = self.deliver(["tempfail@%s" % DOMAIN, "permfail@%s" % DOMAIN,
                           "slow@%s" % DOMAIN], self.body("exit-1"))
        self.assertEqual((rs[0]["status"], rs[0]["dsn"]), ("deferred", "4.3.0"), rs[0])
        self.assertIn("exit status 75", rs[0]["reason"])
        self.assertEqual((rs[1]["status"], rs[1]["dsn"]), ("bounced", "5.3.0"), rs[1])
        self.assertIn("exit status 1: oops, no such mailbox", rs[1]["reason"])
        self.assertEqual(rs[2]["status"], "deferred", rs[2])
        self.assertIn("time limit exceeded (2 s)", rs[2]["reason"])

    def test_unknown_user_bounces(self):
        r = self.deliver_one("nosuch-user-xyz@%s" % DOMAIN, self.body("unknown-1"))
        self.assertEqual((r["status"], r["dsn"]), ("bounced", "5.1.1"), r)
        self.assertIn('unknown user: "nosuch-user-xyz"', r["reason"])
        r = self.deliver_one("ghost@%s" % DOMAIN, self.body("unknown-2"))
        self.assertEqual((r["status"], r["dsn"]), ("bounced", "5.1.1"), r)

    def test_hostile_local_parts_are_only_names(self):
        # BAD-INPUT rows 2 and 10: shell, format and expansion syntax in a
        # local part is looked up as a name and nothing more.
        short = tempfile.mkdtemp(prefix="pl", dir="/tmp")
        self.addCleanup(shutil.rmtree, short, True)
        rcpts = ["$HOME@%s" % DOMAIN, "%%s%%n%%x@%s" % DOMAIN, "${root}@%s" % DOMAIN,
                 '"`touch %s/a`"@%s' % (short, DOMAIN), '"$(touch %s/b)"@%s' % (short, DOMAIN),
                 "-oQ@%s" % DOMAIN, '"a;touch %s/c"@%s' % (short, DOMAIN)]
        rs = self.deliver(rcpts, self.body("hostile-1"))
        for rcpt, r in zip(rcpts, rs):
            self.assertEqual((r["status"], r["dsn"]), ("bounced", "5.1.1"), (rcpt, r))
            self.assertIn("unknown user", r["reason"])
        self.assertIn('unknown user: "$home"', rs[0]["reason"])
        self.assertIn('unknown user: "%s%n%x"', rs[1]["reason"])
        self.assertEqual(os.listdir(short), [])

    def test_alias_loop_bounces(self):
        r = self.deliver_one("loopa@%s" % DOMAIN, self.body("loop-1"))
        self.assertEqual((r["status"], r["dsn"]), ("bounced", "5.4.6"), r)
        self.assertIn("loop", r["reason"])

    def test_root_is_deferred_not_delivered(self):
        root_md = os.path.join(pwd.getpwnam("root").pw_dir, "Maildir")
        existed = os.path.exists(root_md)
        r = self.deliver_one("root@%s" % DOMAIN, self.body("root-1"))
        self.assertEqual((r["status"], r["dsn"]), ("deferred", "4.3.0"), r)
        self.assertIn("mail for root must be aliased to a user: add root: <user> to "
                      "/etc/aliases", r["reason"])
        self.assertEqual(os.path.exists(root_md), existed)

    def test_delivered_to_loop_bounces(self):
        body = self.body("dt-loop", extra="Delivered-To: pltalice@petrel.test\n")
        # The header goes in the header section: put it first.
        body = "Delivered-To: PltAlice@petrel.test\n" + body
        r = self.deliver_one("pltalice@%s" % DOMAIN, body)
        self.assertEqual((r["status"], r["dsn"]), ("bounced", "5.4.6"), r)
        self.assertIn("mail forwarding loop for pltalice@petrel.test", r["reason"])
        self.assertEqual(self.maildir_files("pltalice", "dt-loop"), [])

    def test_too_many_received_is_a_loop(self):
        body = "Received: from x by y\n" * 51 + self.body("hops-1")
        r = self.deliver_one("pltalice@%s" % DOMAIN, body)
        self.assertEqual((r["status"], r["dsn"]), ("bounced", "5.4.6"), r)

    def test_remote_alias_target_is_requeued(self):
        incoming = os.path.join(self.inst.queue, "incoming")
        before = set(os.listdir(incoming))
        r = self.deliver_one("fwd@%s" % DOMAIN, self.body("fwd-1"))
        self.assertEqual(r["status"], "sent", r)
        new = sorted(set(os.listdir(incoming)) - before)
        self.assertEqual(len(new), 1, new)
        path = os.path.join(incoming, new[0])
        st = os.stat(path)
        owner = pwd.getpwnam("petrel")
        self.assertEqual((st.st_uid, st.st_gid), (owner.pw_uid, owner.pw_gid))
        qf = QueueFile(path)
        self.assertEqual(qf.sender, SENDER)
        self.assertEqual([x["address"] for x in qf.recipients], ["someone@remote.example"])
        self.assertTrue(qf.content.startswith(b"Delivered-To: fwd@petrel.test\r\nFrom: "))
        self.assertEqual(len(self.maildir_files("pltbob", "fwd-1")), 1)
        self.assertRegex(self.inst.read_log(), r"forwarded for <fwd@petrel\.test> as " + new[0])
        os.unlink(path)

    def test_self_alias_means_mailbox(self):
        # self -> pltbob -> (alias) \pltbob + file: the mailbox, no loop.
        r = self.deliver_one("self@%s" % DOMAIN, self.body("self-1"))
        self.assertEqual(r["status"], "sent", r)
        self.assertEqual(len(self.maildir_files("pltbob", "self-1")), 1)

    # -- .forward ----------------------------------------------------------
    def write_forward(self, user, text, mode=0o644):
        pw = self.users[user]
        path = os.path.join(pw.pw_dir, ".forward")
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)
        return path

    def test_forward_to_file_and_command(self):
        user = "pltalice"
        pw = self.users[user]
        box = os.path.join(pw.pw_dir, "forwarded.mbox")
        uidf = os.path.join(pw.pw_dir, "cmd.uid")
        fwd = self.write_forward(user, "# keep a copy\n\\%s, %s\n\"|id -u > %s\"\n"
                                 % (user, box, uidf))
        try:
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("fwd-file"))
            self.assertEqual(r["status"], "sent", r)
            self.assertEqual(r["reason"], "delivered to 3 destinations")
            self.assertEqual(len(self.maildir_files(user, "fwd-file")), 1)
            st = os.stat(box)
            self.assertEqual(st.st_uid, pw.pw_uid)
            with open(box, "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(b"From carol@example.org "))
            self.assertIn(b"Delivered-To: pltalice@petrel.test\n", data)
            self.assertEqual(os.stat(uidf).st_uid, pw.pw_uid)
            with open(uidf) as f:
                self.assertEqual(int(f.read()), pw.pw_uid)
        finally:
            os.unlink(fwd)

    def test_unsafe_forward_is_ignored(self):
        user = "pltalice"
        pw = self.users[user]
        evil = os.path.join(self.out, "evil-ran")
        fwd = self.write_forward(user, "\"|touch %s\"\n" % evil, mode=0o666)
        try:
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("unsafe-fwd"))
            self.assertEqual((r["status"], r["reason"]), ("sent", "delivered to maildir"), r)
            self.assertFalse(os.path.exists(evil))
            self.assertEqual(len(self.maildir_files(user, "unsafe-fwd")), 1)
            self.assertIn("writable by group or others", self.inst.read_log())
            # A .forward that is a symlink to a file the user owns: ignored too.
            os.unlink(fwd)
            target = os.path.join(pw.pw_dir, "real-forward")
            with open(target, "w") as f:
                f.write("\"|touch %s\"\n" % evil)
            os.chown(target, pw.pw_uid, pw.pw_gid)
            os.symlink(target, fwd)
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("unsafe-fwd2"))
            self.assertEqual(r["status"], "sent", r)
            self.assertFalse(os.path.exists(evil))
            self.assertIn("is a symbolic link: ignored", self.inst.read_log())
        finally:
            if os.path.lexists(fwd):
                os.unlink(fwd)

    def test_forward_to_executable_file_is_refused(self):
        user = "pltalice"
        pw = self.users[user]
        prog = os.path.join(pw.pw_dir, "prog.sh")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chown(prog, pw.pw_uid, pw.pw_gid)
        os.chmod(prog, 0o700)
        fwd = self.write_forward(user, prog + "\n")
        try:
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("exec-1"))
            self.assertEqual(r["status"], "deferred", r)
            self.assertIn("refusing to deliver to an executable file", r["reason"])
            with open(prog) as f:
                self.assertEqual(f.read(), "#!/bin/sh\nexit 0\n")
        finally:
            os.unlink(fwd)
            os.unlink(prog)

    def test_forward_to_own_address_is_not_a_loop(self):
        user = "pltalice"
        fwd = self.write_forward(user, "%s@%s\n" % (user, DOMAIN))
        try:
            r = self.deliver_one("%s@%s" % (user, DOMAIN), self.body("fwd-self"))
            self.assertEqual(r["status"], "sent", r)
            self.assertEqual(len(self.maildir_files(user, "fwd-self")), 1)
        finally:
            os.unlink(fwd)


if __name__ == "__main__":
    unittest.main()
