"""Petrel and a real Postfix (the Debian package) exchanging mail across
network namespaces, both directions: a DNS namespace (dnsmasq, authoritative
for a.org and p.org with MX records), host a (Petrel for a.org), host p (an
isolated Postfix instance for p.org: its own config, queue and data
directories, listening only on its namespace address, delivering into a
throwaway user's Maildir) and a client namespace that submits on port 25.

Checked: Petrel -> Postfix and Postfix -> Petrel each deliver exactly one
copy, over STARTTLS in both directions (Received: headers, Postfix's log);
an unknown user at either side is refused at RCPT with 550 and the sender's
own system returns an RFC 3464 bounce into the sender's Maildir.

Root only (namespaces, port 25, system users); skipped when the Postfix
programs are missing (scripts/install-deps.sh installs them). The system's
own Postfix configuration is not used or touched. Postfix resolves through
dnsmasq by /etc/netns/<namespace>/resolv.conf, which `ip netns exec`
bind-mounts over /etc/resolv.conf; the test creates it and removes it again,
with every namespace, process and user it made.

Addresses are 10.78.0.0/24 inside the test's own namespaces: no traffic
leaves them."""
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from netns import delete_namespaces, have_netns, make_network, sh, start_dnsmasq
from petrel_instance import REPO, Instance, ensure_users

TLS = os.path.join(REPO, "tests", "fixtures", "tls")
NET = "10.78.0."
HOSTS = {"dns": 53, "a": 10, "p": 40, "client": 30}
USERS = {"alice": "ppialice", "bob": "ppibob", "carol": "ppicarol"}
SBIN_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def postfix_cmd(name):
    return shutil.which(name, path=SBIN_PATH)


def have_postfix():
    return all(postfix_cmd(n) for n in ("postfix", "postalias"))


def postfix_main_cf(etc, top):
    return "\n".join([
        "# written by tests/integration/test_postfix_interop.py",
        "compatibility_level = 3.6",
        "queue_directory = " + os.path.join(top, "pf-spool"),
        "data_directory = " + os.path.join(top, "pf-data"),
        "maillog_file = " + os.path.join(top, "postfix.log"),
        "maillog_file_prefixes = " + top,
        "inet_interfaces = %s%d" % (NET, HOSTS["p"]), "inet_protocols = ipv4",
        "myhostname = mx.p.org", "mydomain = p.org", "myorigin = p.org",
        "mydestination = p.org", "relayhost =",
        "mynetworks = 127.0.0.0/8, %s%d/32" % (NET, HOSTS["client"]),
        "alias_maps = hash:%s/aliases" % etc, "alias_database = hash:%s/aliases" % etc,
        "home_mailbox = Maildir/", "biff = no", "append_dot_mydomain = no",
        "smtpd_tls_cert_file = %s/server.pem" % etc,
        "smtpd_tls_key_file = %s/server.key" % etc,
        "smtpd_tls_security_level = may", "smtpd_tls_received_header = yes",
        "smtpd_tls_loglevel = 1",
        "smtp_tls_security_level = may", "smtp_tls_CAfile = %s/ca.pem" % etc,
        "smtp_tls_loglevel = 1", "smtp_connect_timeout = 5s", ""])


# Only the services this test needs, none chrooted (a chrooted daemon would
# not see the namespace's resolv.conf nor the test's directories).
POSTFIX_MASTER_CF = """\
# written by tests/integration/test_postfix_interop.py
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@unittest.skipUnless(have_netns(), "needs root, ip netns and dnsmasq")
@unittest.skipUnless(have_postfix(), "needs the Postfix programs (Debian package postfix; "
                     "scripts/install-deps.sh installs it)")
class PostfixInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_users()
        cls.tag = "%d" % (os.getpid() % 100000)
        cls.ns = {h: "ppi%s-%s" % (cls.tag, h) for h in list(HOSTS) + ["hub"]}
        cls.procs = []
        cls.petrel = None
        cls.pf_etc = None
        cls.netns_dir = None
        cls.homes = os.path.join("/tmp", "ppi-homes-" + cls.tag)
        cls.addClassCleanup(cls.cleanup)
        make_network(cls.ns, HOSTS, NET)
        cls.start_dns()
        os.makedirs(cls.homes, exist_ok=True)
        os.chmod(cls.homes, 0o755)
        for u in USERS.values():
            subprocess.run(["userdel", "-r", u], capture_output=True)
            sh("useradd", "--home-dir", os.path.join(cls.homes, u), "--create-home", u)
        cls.start_petrel()
        cls.start_postfix()

    @classmethod
    def start_dns(cls):
        records = []
        for dom, host in (("a.org", "a"), ("p.org", "p")):
            records += ["--mx-host=%s,mx.%s,10" % (dom, dom),
                        "--host-record=mx.%s,%s%d" % (dom, NET, HOSTS[host])]
        records.append("--host-record=client.a.org,%s%d" % (NET, HOSTS["client"]))
        p = start_dnsmasq(cls.ns["dns"], NET + "53", records)
        cls.procs.append(p)
        if p.poll() is not None:
            raise RuntimeError("dnsmasq did not start")

    @classmethod
    def start_petrel(cls):
        addr = NET + "%d" % HOSTS["a"]
        inst = Instance(
            ["smtp accept %s:25 - - 10 smtpd" % addr,
             "qmgr daemon unix:public/qmgr - - 1 qmgr",
             "local accept unix:private/local root - 4 local-delivery",
             "relay accept unix:private/smtp - - 10 smtp-client"],
            params=["myhostname = mx.a.org", "myorigin = a.org", "mydestination = a.org",
                    "mynetworks = 127.0.0.0/8, %s%d/32" % (NET, HOSTS["client"]),
                    "dns_servers = " + NET + "53", "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps", "smtp_connect_timeout = 5s",
                    "smtpd_tls_cert_file = $config_directory/server.pem",
                    "smtpd_tls_key_file = $config_directory/server.key",
                    "smtp_tls_security_level = may", "minimal_backoff_time = 60s"])
        cls.petrel = inst
        petrel = pwd.getpwnam("petrel")
        for src, dst, mode in (("server-chain.pem", "server.pem", 0o644),
                               ("server.test-only.key", "server.key", 0o640)):
            path = os.path.join(inst.conf, dst)
            shutil.copyfile(os.path.join(TLS, src), path)
            os.chown(path, 0, petrel.pw_gid)
            os.chmod(path, mode)
        # postmaster is bob, so that no copy of a bounce can land in alice's box.
        inst.write_file("aliases", "postmaster: %s\nalice: %s\nbob: %s\n" % (
            USERS["bob"], USERS["alice"], USERS["bob"]))
        inst.petrel("newaliases")
        r = subprocess.run(["ip", "netns", "exec", cls.ns["a"],
                            os.path.join(inst.libexec, "petrel"), "-c", inst.conf, "start"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("petrel start failed: " + r.stderr + inst.read_log())

    @classmethod
    def postfix(cls, *args, check=True):
        """A Postfix command run inside namespace p on this instance's config."""
        cmd = ["ip", "netns", "exec", cls.ns["p"], postfix_cmd(args[0]), "-c", cls.pf_etc] + list(
            args[1:])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout,
                                                         r.stderr))
        return r

    @classmethod
    def start_postfix(cls):
        # Postfix resolves through /etc/resolv.conf; ip netns exec mounts this over it.
        cls.netns_dir = os.path.join("/etc/netns", cls.ns["p"])
        os.makedirs(cls.netns_dir)
        with open(os.path.join(cls.netns_dir, "resolv.conf"), "w") as f:
            f.write("nameserver %s53\n" % NET)
        cls.pf_top = tempfile.mkdtemp(prefix="ppi-postfix-")
        os.chmod(cls.pf_top, 0o755)
        etc = cls.pf_etc = os.path.join(cls.pf_top, "etc")
        os.mkdir(etc, 0o755)
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(postfix_main_cf(etc, cls.pf_top))
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF)
        for src, dst, mode in (("server-chain.pem", "server.pem", 0o644),
                               ("server.test-only.key", "server.key", 0o600),
                               ("ca.pem", "ca.pem", 0o644)):
            path = os.path.join(etc, dst)
            shutil.copyfile(os.path.join(TLS, src), path)
            os.chmod(path, mode)
        with open(os.path.join(etc, "aliases"), "w") as f:
            f.write("postmaster: %s\ncarol: %s\n" % (USERS["carol"], USERS["carol"]))
        os.mkdir(os.path.join(cls.pf_top, "pf-spool"), 0o755)
        data = os.path.join(cls.pf_top, "pf-data")
        os.mkdir(data, 0o700)
        pf = pwd.getpwnam("postfix")
        os.chown(data, pf.pw_uid, pf.pw_gid)
        cls.postfix("postalias", "hash:%s/aliases" % etc)
        cls.postfix("postfix", "check")  # also creates the queue's subdirectories
        cls.postfix("postfix", "start")

    @classmethod
    def stop_postfix(cls):
        """Stops this test's Postfix; returns the PIDs that were still left in
        namespace p afterwards (then killed), which should be none."""
        if os.path.exists(os.path.join(cls.pf_top, "pf-spool", "pid", "master.pid")):
            cls.postfix("postfix", "stop", check=False)
        deadline = time.time() + 10
        pids = []
        while time.time() < deadline:
            r = subprocess.run(["ip", "netns", "pids", cls.ns["p"]], capture_output=True,
                               text=True)
            pids = [int(x) for x in r.stdout.split()]
            if not pids:
                return []
            time.sleep(0.2)
        for pid in pids:  # processes inside our own namespace: ours
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return pids

    @classmethod
    def cleanup(cls):
        left = []
        if cls.pf_etc:
            left = cls.stop_postfix()
            shutil.rmtree(cls.pf_top, ignore_errors=True)
        if cls.netns_dir:
            shutil.rmtree(cls.netns_dir, ignore_errors=True)
            try:
                os.rmdir("/etc/netns")  # only when nothing else is in it
            except OSError:
                pass
        if cls.petrel:
            cls.petrel.cleanup()
        for p in cls.procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        delete_namespaces(cls.ns)
        for u in USERS.values():
            subprocess.run(["userdel", "-r", u], capture_output=True)
        shutil.rmtree(cls.homes, ignore_errors=True)
        if left:
            raise AssertionError("postfix stop left processes %s running" % left)

    def tearDown(self):
        # A daemon that crashed or died on either side fails the test, even
        # when the mail got through anyway (a restart, a retry).
        self.assertNotRegex(self.petrel.read_log(), r"killed by signal|exit status \d+;|fatal:")
        self.assertNotRegex(self.postfix_log(), r"(fatal|panic):")

    # -- helpers --

    def send(self, host, sender, rcpt, subject):
        """Submits one message on port 25 of host from the client namespace.
        Its body has lines that start with dots (stuffed on every hop)."""
        code = ("import smtplib\n"
                "c = smtplib.SMTP('%s%d', 25, timeout=30)\n"
                "c.sendmail(%r, [%r], b'From: %s\\r\\nTo: %s\\r\\nSubject: %s\\r\\n\\r\\n"
                "interop body\\r\\n.leading dot\\r\\n..two dots\\r\\n.\\r\\nend\\r\\n')\n"
                "c.quit()\n" % (NET, HOSTS[host], sender, rcpt, sender, rcpt, subject))
        r = subprocess.run(["ip", "netns", "exec", self.ns["client"], "python3", "-c", code],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def mails(self, who, marker):
        """The files of who's Maildir (new and cur) that contain marker."""
        top = os.path.join(self.homes, USERS[who], "Maildir")
        found = []
        for f in sorted(glob.glob(os.path.join(top, "new", "*")) +
                        glob.glob(os.path.join(top, "cur", "*"))):
            try:
                with open(f, "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(f)
            except OSError:
                pass
        return found

    def wait_one_mail(self, who, marker, timeout=30):
        """Waits for a message with marker in who's Maildir; a second later
        there must still be exactly one. Returns its content."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.mails(who, marker):
                break
            time.sleep(0.1)
        else:
            self.fail("no mail with %r for %s; Petrel log:\n%s\n--- Postfix log:\n%s" % (
                marker, who, self.petrel.read_log(), self.postfix_log()))
        time.sleep(1)
        files = self.mails(who, marker)
        self.assertEqual(len(files), 1, files)
        with open(files[0], "rb") as f:
            return f.read()

    def postfix_log(self):
        try:
            with open(os.path.join(self.pf_top, "postfix.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_postfix_log(self, pattern, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.postfix_log())
            if m:
                return m
            time.sleep(0.1)
        self.fail("Postfix log never matched %r:\n%s" % (pattern, self.postfix_log()))

    BODY = b"\n\ninterop body\n.leading dot\n..two dots\n.\nend\n"

    @staticmethod
    def headers(data):
        return data.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")

    # -- tests --

    def test_petrel_to_postfix_over_starttls(self):
        self.send("a", "alice@a.org", "carol@p.org", "interop-pt2pf")
        data = self.wait_one_mail("carol", "interop-pt2pf")
        head = self.headers(data)
        self.assertEqual(len(re.findall(rb"(?m)^Received: ", head)), 2, head)
        self.assertIn(b"by mx.a.org (Petrel) with ESMTP", head)  # from the client
        # Postfix received it from Petrel over STARTTLS.
        self.assertRegex(head, rb"from mx\.a\.org \(mx\.a\.org \[10\.78\.0\.10\]\)\n\s+"
                               rb"\(using TLSv1\.[23] with cipher ")
        self.assertIn(b"by mx.p.org (Postfix) with ESMTPS", head)
        self.assertIn(b"Return-Path: <alice@a.org>", head)
        self.assertIn(b"Delivered-To: carol@p.org", head)
        self.assertTrue(data.replace(b"\r\n", b"\n").endswith(self.BODY), data)
        sent = self.petrel.wait_log(
            r"(\w+): to=<carol@p\.org>, relay=smtp, .*status=sent \(delivered to "
            r"mx\.p\.org\[10\.78\.0\.40\]:25: 250 2\.0\.0 Ok: queued as (\w+)\)")
        self.petrel.wait_log(r"smtp-client\[\d+\]: %s: \w+ TLS connection established to "
                             r"mx\.p\.org\[10\.78\.0\.40\]:25: TLSv1\.[23]" % sent.group(1))
        # The queue ID Postfix answered is the message that reached carol's box.
        self.wait_postfix_log(r"%s: to=<%s@p\.org>, orig_to=<carol@p\.org>, relay=local, "
                              r".*status=sent \(delivered to maildir\)"
                              % (sent.group(2), USERS["carol"]))

    def test_postfix_to_petrel_over_starttls(self):
        self.send("p", "carol@p.org", "bob@a.org", "interop-pf2pt")
        data = self.wait_one_mail("bob", "interop-pf2pt")
        head = self.headers(data)
        self.assertEqual(len(re.findall(rb"(?m)^Received: ", head)), 2, head)
        self.assertIn(b"by mx.p.org (Postfix) with ESMTP", head)  # from the client
        self.assertRegex(head, rb"from mx\.p\.org .*\n?.*by mx\.a\.org \(Petrel\) with ESMTPS ")
        self.assertIn(b"Return-Path: <carol@p.org>", head)
        self.assertTrue(data.replace(b"\r\n", b"\n").endswith(self.BODY), data)
        sent = self.wait_postfix_log(r"to=<bob@a\.org>, relay=mx\.a\.org\[10\.78\.0\.10\]:25, "
                                     r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)")
        # The queue ID Petrel answered is the message it delivered to bob.
        self.petrel.wait_log(r"%s: to=<bob@a\.org>, relay=local, .*status=sent" % sent.group(1))
        self.wait_postfix_log(r"TLS connection established to mx\.a\.org\[10\.78\.0\.10\]:25")

    def test_unknown_user_at_postfix_bounces_to_petrel_sender(self):
        self.send("a", "alice@a.org", "no-such-user@p.org", "interop-bounce-pf")
        data = self.wait_one_mail("alice", "interop-bounce-pf")
        self.assertIn(b"multipart/report", data)
        self.assertIn(b"report-type=delivery-status", data)
        self.assertRegex(data, rb"Final-Recipient: rfc822; ?no-such-user@p\.org")
        self.assertRegex(data, rb"Status: 5\.1\.1")
        self.assertIn(b"User unknown in local recipient table", data)  # Postfix's words
        self.assertIn(b"Subject: interop-bounce-pf", data)
        self.petrel.wait_log(r"to=<no-such-user@p\.org>, relay=smtp, .*status=bounced")
        self.wait_postfix_log(r"NOQUEUE: reject: RCPT from mx\.a\.org\[10\.78\.0\.10\]: "
                              r"550 5\.1\.1 <no-such-user@p\.org>")

    def test_unknown_user_at_petrel_bounces_to_postfix_sender(self):
        self.send("p", "carol@p.org", "no-such-user@a.org", "interop-bounce-pt")
        self.wait_postfix_log(r"to=<no-such-user@a\.org>, relay=mx\.a\.org\[10\.78\.0\.10\]:25, "
                              r".*status=bounced \(host mx\.a\.org\[10\.78\.0\.10\] said: 550 ")
        data = self.wait_one_mail("carol", "interop-bounce-pt")
        self.assertIn(b"Return-Path: <>", data)
        self.assertIn(b"From: Mail Delivery System <MAILER-DAEMON@p.org>", data)
        self.assertIn(b"multipart/report", data)
        self.assertIn(b"report-type=delivery-status", data)
        self.assertRegex(data, rb"Final-Recipient: rfc822; ?no-such-user@a\.org")
        self.assertRegex(data, rb"Status: 5\.1\.1")
        self.assertIn(b"Subject: interop-bounce-pt", data)


if __name__ == "__main__":
    unittest.main()
