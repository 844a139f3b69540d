"""The seed scenario across hosts: network namespaces made by this test — a
DNS server (dnsmasq, authoritative for a.org and b.org with MX records), host
a (Petrel for a.org), host b (Petrel for b.org) and a client — joined by a
bridge in a hub namespace. alice submits on a.org:587 with STARTTLS and AUTH
LOGIN; a.org finds b.org's MX by DNS (the preferred one is down, the second
answers) and relays with STARTTLS to port 25; b.org delivers into bob's
Maildir, one copy with both Received: headers. Also the reply back, an
unknown user at b.org bouncing into alice's mailbox, a temporary refusal at
b.org retried and delivered once it is fixed, and relaying through a.org from
outside refused. Root only (namespaces, ports 25/587, system
users). Every namespace, process and user is removed again.

Addresses are 10.77.0.0/24 inside the test's own namespaces: no traffic
leaves them."""
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

from netns import delete_namespaces, have_netns, make_network, sh, start_dnsmasq
from petrel_instance import REPO, Instance, ensure_users

TLS = os.path.join(REPO, "tests", "fixtures", "tls")
ALICE_PW = "alice-pw-2"

NET = "10.77.0."
HOSTS = {"dns": 53, "a": 10, "b": 20, "client": 30}
USERS = ("ptdalice", "ptdbob")


@unittest.skipUnless(have_netns(), "needs root, ip netns and dnsmasq")
class TwoDomainTest(unittest.TestCase):
    def setUp(self):
        ensure_users()
        self.tag = "%d" % (os.getpid() % 100000)
        self.ns = {h: "ptd%s-%s" % (self.tag, h) for h in list(HOSTS) + ["hub"]}
        self.procs = []
        self.instances = {}
        self.addCleanup(self.cleanup)
        self.make_network()
        self.start_dns()
        self.homes = os.path.join("/tmp", "ptd-homes-" + self.tag)
        os.makedirs(self.homes, exist_ok=True)
        os.chmod(self.homes, 0o755)
        for u in USERS:
            subprocess.run(["userdel", "-r", u], capture_output=True)
            sh("useradd", "--home-dir", os.path.join(self.homes, u), "--create-home", u)
        self.start_petrel("a", "a.org", USERS[0])
        self.start_petrel("b", "b.org", USERS[1])

    def make_network(self):
        make_network(self.ns, HOSTS, NET)

    def start_dns(self):
        records = []
        for dom, host in (("a.org", "a"), ("b.org", "b")):
            records += ["--mx-host=%s,mx.%s,10" % (dom, dom),
                        "--host-record=mx.%s,%s%d" % (dom, NET, HOSTS[host])]
        # b.org's preferred MX is a host that does not answer.
        records += ["--mx-host=b.org,mx0.b.org,5", "--host-record=mx0.b.org,%s99" % NET]
        p = start_dnsmasq(self.ns["dns"], NET + "53", records)
        self.procs.append(p)
        self.assertIsNone(p.poll(), "dnsmasq did not start")

    def start_petrel(self, host, domain, user):
        addr = NET + "%d" % HOSTS[host]
        inst = Instance(
            ["smtp accept %s:25 - - 10 smtpd" % addr,
             "submission accept %s:587 - - 10 submission" % addr,
             "auth accept unix:private/auth root - 4 auth",
             "qmgr daemon unix:public/qmgr - - 1 qmgr",
             "local accept unix:private/local root - 4 local-delivery",
             "relay accept unix:private/smtp - - 10 smtp-client"],
            params=["myhostname = mx." + domain, "myorigin = " + domain,
                    "mydestination = " + domain, "mynetworks = 127.0.0.0/8, %s%d/32"
                    % (NET, HOSTS["client"]),
                    "dns_servers = " + NET + "53", "alias_maps = hash:$config_directory/aliases",
                    "alias_database = $alias_maps", "smtp_connect_timeout = 5s",
                    "smtpd_tls_cert_file = $config_directory/server.pem",
                    "smtpd_tls_key_file = $config_directory/server.key",
                    "smtp_tls_security_level = may",
                    "auth_passwd_file = $config_directory/passwd",
                    "minimal_backoff_time = 60s"])
        petrel = pwd.getpwnam("petrel")
        for src, dst, mode in (("server-chain.pem", "server.pem", 0o644),
                               ("server.test-only.key", "server.key", 0o640)):
            path = os.path.join(inst.conf, dst)
            shutil.copyfile(os.path.join(TLS, src), path)
            os.chown(path, 0, petrel.pw_gid)
            os.chmod(path, mode)
        hashed = subprocess.run(["openssl", "passwd", "-6", ALICE_PW], capture_output=True,
                                text=True, check=True).stdout.strip()
        inst.write_file("passwd", "alice@%s:{SHA512-CRYPT}%s\n" % (domain, hashed))
        inst.write_file("aliases", "postmaster: %s\n%s: %s\n" % (user, user.replace("ptd", ""), user))
        inst.petrel("newaliases")
        cmd = ["ip", "netns", "exec", self.ns[host], os.path.join(inst.libexec, "petrel"), "-c",
               inst.conf, "start"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr + inst.read_log())
        self.instances[host] = inst

    def cleanup(self):
        for inst in self.instances.values():
            inst.cleanup()
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        delete_namespaces(self.ns)
        for u in USERS:
            subprocess.run(["userdel", "-r", u], capture_output=True)
        shutil.rmtree(getattr(self, "homes", "/nonexistent-ptd"), ignore_errors=True)

    def in_client(self, code):
        """Runs Python code in the client namespace."""
        r = subprocess.run(["ip", "netns", "exec", self.ns["client"], "python3", "-c", code],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def maildir(self, user, n, timeout=30):
        new = os.path.join(self.homes, user, "Maildir", "new")
        deadline = time.time() + timeout
        while time.time() < deadline:
            files = glob.glob(os.path.join(new, "*"))
            if len(files) >= n:
                return sorted(files)
            time.sleep(0.2)
        logs = "\n".join("--- %s:\n%s" % (h, i.read_log()) for h, i in self.instances.items())
        raise AssertionError("no mail for %s; logs:\n%s" % (user, logs))

    def test_submission_starttls_auth_then_mx_relay_with_starttls(self):
        self.in_client(
            "import smtplib\n"
            "c = smtplib.SMTP('%s10', 587, timeout=30)\n"
            "c.ehlo('client.a.org'); c.starttls(); c.ehlo('client.a.org')\n"
            "c.login('alice@a.org', '%s')\n"
            "c.sendmail('alice@a.org', ['bob@b.org'], b'From: alice@a.org\\r\\nTo: bob@b.org\\r\\n"
            "Subject: submitted\\r\\n\\r\\nvia 587\\r\\n')\n"
            "c.quit()\n" % (NET, ALICE_PW))
        files = self.maildir(USERS[1], 1, timeout=60)
        time.sleep(1)
        self.assertEqual(len(glob.glob(os.path.join(self.homes, USERS[1], "Maildir", "new", "*"))), 1)
        data = open(files[0], "rb").read()
        received = re.findall(rb"\nReceived: ", b"\n" + data)
        self.assertEqual(len(received), 2, data[:800])
        self.assertIn(b"by mx.a.org (Petrel) with ESMTPSA", data)  # submission: TLS + AUTH
        self.assertIn(b"by mx.b.org (Petrel) with ESMTPS", data)   # relay hop over STARTTLS
        self.assertIn(b"Subject: submitted", data)
        # The preferred MX of b.org does not answer: delivered through the second.
        self.instances["a"].wait_log(r"to=<bob@b\.org>, relay=smtp, .*status=sent .*mx\.b\.org")

    def test_unknown_user_bounces_into_senders_mailbox(self):
        self.in_client(
            "import smtplib\n"
            "c = smtplib.SMTP('%s10', 587, timeout=30)\n"
            "c.starttls(); c.login('alice@a.org', '%s')\n"
            "c.sendmail('alice@a.org', ['nobody-here@b.org'], b'Subject: lost\\r\\n\\r\\nx\\r\\n')\n"
            "c.quit()\n" % (NET, ALICE_PW))
        data = open(self.maildir(USERS[0], 1, timeout=60)[0], "rb").read()
        self.assertIn(b"multipart/report", data)
        self.assertRegex(data, rb"Status: 5\.1\.1")
        self.assertIn(b"nobody-here@b.org", data)
        self.assertIn(b"Subject: lost", data)

    def test_temporary_refusal_retried_later(self):
        # b.org cannot read its alias table for a while: it answers 451 4.3.0.
        b = self.instances["b"]
        db = os.path.join(b.conf, "aliases.db")
        os.rename(db, db + ".away")
        self.in_client(
            "import smtplib\n"
            "c = smtplib.SMTP('%s10', 587, timeout=30)\n"
            "c.starttls(); c.login('alice@a.org', '%s')\n"
            "c.sendmail('alice@a.org', ['bob@b.org'], b'Subject: later\\r\\n\\r\\nx\\r\\n')\n"
            "c.quit()\n" % (NET, ALICE_PW))
        a = self.instances["a"]
        a.wait_log(r"to=<bob@b\.org>, relay=smtp, .*dsn=4\.3\.0, status=deferred", timeout=60)
        self.assertEqual(glob.glob(os.path.join(self.homes, USERS[1], "Maildir", "new", "*")), [])
        os.rename(db + ".away", db)  # fixed
        a.petrel("queue", "flush")
        data = open(self.maildir(USERS[1], 1, timeout=60)[0], "rb").read()
        self.assertIn(b"Subject: later", data)

    def test_mail_crosses_domains_by_mx_and_back(self):
        self.in_client(
            "import smtplib\n"
            "c = smtplib.SMTP('%s10', 25, timeout=30)\n"
            "c.sendmail('alice@a.org', ['bob@b.org'], b'From: alice@a.org\\r\\nTo: bob@b.org\\r\\n"
            "Subject: across\\r\\n\\r\\nhello b.org\\r\\n')\n"
            "c.quit()\n" % NET)
        data = open(self.maildir(USERS[1], 1)[0], "rb").read()
        self.assertIn(b"Subject: across", data)
        self.assertIn(b"Return-Path: <alice@a.org>", data)
        self.assertIn(b"by mx.b.org (Petrel)", data)   # b's smtpd received it
        self.assertIn(b"by mx.a.org (Petrel)", data)   # after a's smtpd
        self.instances["a"].wait_log(r"to=<bob@b\.org>, relay=smtp, .*status=sent .*mx\.b\.org")
        # The reply: bob's host sends back to a.org by MX.
        self.in_client(
            "import smtplib\n"
            "c = smtplib.SMTP('%s20', 25, timeout=30)\n"
            "c.sendmail('bob@b.org', ['alice@a.org'], b'Subject: re: across\\r\\n\\r\\nhi a.org\\r\\n')\n"
            "c.quit()\n" % NET)
        data = open(self.maildir(USERS[0], 1)[0], "rb").read()
        self.assertIn(b"Subject: re: across", data)

    def test_relay_refused_from_outside_mynetworks(self):
        # Host b is not in a.org's mynetworks: it may deliver to a.org, not relay through it.
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns["b"], "python3", "-c",
             "import smtplib\n"
             "c = smtplib.SMTP('%s10', 25, timeout=30)\n"
             "c.ehlo('mx.b.org'); c.mail('x@b.org')\n"
             "print(c.rcpt('victim@elsewhere.example'))\n" % NET],
            capture_output=True, text=True, timeout=60)
        self.assertIn("554", out.stdout, out.stderr)
        self.assertIn("Relay access denied", out.stdout)


if __name__ == "__main__":
    unittest.main()
