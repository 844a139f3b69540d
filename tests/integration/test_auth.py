"""Integration tests of the auth service (auth/, docs/auth.md) on a running
instance: master plus two auth services (the normal one, and one whose
tokens live 1 s, to test expiry). The test speaks the `auth` protocol of
docs/ipc.md itself (netstring records) on <queue>/private/auth.

Covered: passwd-file users with SHA512-CRYPT and yescrypt hashes, wrong
passwords, unknown users, malformed requests (missing fields, NUL and
control bytes, a 1 MB password), one-time tokens (issue, redeem once,
second redeem, wrong service, expiry), throttling after repeated failures,
PAM for real with a throwaway system user (root only), and PAM failure
paths through pam_wrapper (when Debian's libpam-wrapper is installed)
with the auth program started by hand, so /etc is never touched."""
import concurrent.futures
import ctypes
import ctypes.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from petrel_instance import BIN, Instance, ensure_users, is_root

VDOMAIN = "virt.test"
PAM_USER = "pltauth1"
PAM_WRAPPER_LIB = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
PAM_MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"


# -- password hashes through libcrypt (Python's crypt module is going away) --
_libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
_libcrypt.crypt_gensalt.restype = ctypes.c_char_p
_libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]


def hash_password(password, prefix):
    """crypt(3) hash of password with a fresh salt of the given method."""
    salt = _libcrypt.crypt_gensalt(prefix.encode(), 0, None, 0)
    if not salt:
        raise unittest.SkipTest("libcrypt cannot make %s salts" % prefix)
    return _libcrypt.crypt(password.encode(), salt).decode()


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


def read_record(sock):
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            data = sock.recv(65536)
            if not data:
                raise EOFError("peer closed")
            buf += data

    def netstring():
        nonlocal buf
        while b":" not in buf:
            need(len(buf) + 1)
        length, _ = buf.split(b":", 1)
        n = int(length)
        head = len(length) + 1
        need(head + n + 1)
        value = buf[head:head + n]
        assert buf[head + n:head + n + 1] == b",", "framing"
        buf = buf[head + n + 1:]
        return value

    rec = {}
    while True:
        name = netstring()
        if name == b"":
            return rec
        rec[name.decode()] = netstring().decode("utf-8", "replace")


def ask_raw(queue, data, socket_name="auth", timeout=30):
    """Sends raw bytes, returns the reply record as a dict."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(os.path.join(queue, "private", socket_name))
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service refused early; its reply is still readable
        return read_record(s)
    finally:
        s.close()


def ask(queue, pairs, socket_name="auth"):
    return ask_raw(queue, encode_record([("protocol", "auth")] + pairs), socket_name)


def password_request(user, password, client="192.0.2.1", service="smtp", token=False):
    pairs = [("op", "password"), ("service", service), ("client", client), ("user", user),
             ("password", password)]
    if token:
        pairs.append(("token", "1"))
    return pairs


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if is_root():
            ensure_users()
        cls.inst = inst = Instance(
            ["auth accept unix:private/auth root - 10 auth",
             "authshort accept unix:private/authshort root - 2 auth "
             "-o auth_token_lifetime=1s"],
            params=["virtual_mailbox_domains = " + VDOMAIN,
                    "mydestination = localhost",
                    "auth_failure_delay = 20",
                    "auth_failure_max_delay = 100"]
            + ([] if is_root() else
               ["mail_store_owner = " + pwd.getpwuid(os.geteuid()).pw_name]))
        cls.queue = inst.queue
        me = pwd.getpwuid(os.geteuid())
        cls.owner = pwd.getpwnam("petrel-mail") if is_root() else me
        cls.sha = hash_password("alice pass", "$6$")
        cls.yes = hash_password("bob:pass,é", "$y$")
        cls.passwd = inst.write_file("users.passwd", "\n".join([
            "# virtual users",
            "alice@%s:{SHA512-CRYPT}%s:2001:2001::/var/vmail/alice::" % (VDOMAIN, cls.sha),
            "bob@%s:{YESCRYPT}%s::::/var/vmail/bob::mail=maildir:~/mail/" % (VDOMAIN, cls.yes),
            "carol@%s:%s" % (VDOMAIN, hash_password("carol", "$6$")),
            "dave@%s:{PLAIN}dave:2002:2002::/var/vmail/dave::" % VDOMAIN,
            "erin@%s:!:2003:2003::/var/vmail/erin::" % VDOMAIN,
            "frank@other.test:{SHA512-CRYPT}%s:2004:2004::/var/vmail/frank::"
            % hash_password("frank", "$6$"),
            # MD5-crypt: a legacy method, refused whatever the password
            "weak@%s:{CRYPT}$1$saltsalt$qjXMvbEw8oaL.CzflDugX/:2005:2005::/var/vmail/weak::"
            % VDOMAIN,
            "",
        ]))
        os.chmod(cls.passwd, 0o600)
        inst.append_conf("auth_passwd_file = " + cls.passwd)
        inst.start()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        crashes = [l for l in cls.inst.read_log().splitlines()
                   if re.search(r"service auth\w*: process .* (killed by signal|exit status)", l)]
        cls.inst.cleanup()
        if crashes:
            raise AssertionError("auth processes crashed:\n" + "\n".join(crashes))

    def ask(self, pairs, socket_name="auth"):
        return ask(self.queue, pairs, socket_name)

    # ---- passwd-file ----

    def test_sha512_crypt_ok(self):
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="192.0.2.11"))
        self.assertEqual(r["protocol"], "auth")
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["user"], "alice@" + VDOMAIN)
        self.assertNotIn("token", r)
        self.assertNotIn("home", r)  # identity only for the token hand-off
        self.inst.wait_log(r"auth\[\d+\]: ok for user=<alice@virt\.test> client=192\.0\.2\.11 "
                           r"service=smtp \(authenticated by passwd-file\)")

    def test_yescrypt_ok_and_domain_case(self):
        r = self.ask(password_request("bob@VIRT.Test", "bob:pass,é", client="192.0.2.12"))
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["user"], "bob@" + VDOMAIN)  # canonical: as in the file
        # no scheme: {CRYPT} is the default
        r = self.ask(password_request("carol@" + VDOMAIN, "carol", client="192.0.2.12"))
        self.assertEqual(r["status"], "ok", r)

    def test_wrong_password_unknown_user(self):
        secret = "Wr0ng-Secret-%d" % os.getpid()
        r = self.ask(password_request("alice@" + VDOMAIN, secret, client="192.0.2.13"))
        self.assertEqual(r["status"], "fail")
        self.assertEqual(r["reason"], "password mismatch")
        r = self.ask(password_request("nobody@" + VDOMAIN, secret, client="192.0.2.13"))
        self.assertEqual(r["status"], "fail")
        self.assertEqual(r["reason"], "unknown user")
        r = self.ask(password_request("x@elsewhere.example", secret, client="192.0.2.13"))
        self.assertEqual(r["status"], "fail")
        self.assertIn("not served here", r["reason"])
        # a passwd-file entry outside virtual_mailbox_domains still counts
        r = self.ask(password_request("frank@other.test", "frank", client="192.0.2.13"))
        self.assertEqual(r["status"], "ok", r)
        # case matters in the local part
        r = self.ask(password_request("Alice@" + VDOMAIN, "alice pass", client="192.0.2.13"))
        self.assertEqual(r["status"], "fail")
        # a disabled account
        r = self.ask(password_request("erin@" + VDOMAIN, "", client="192.0.2.13"))
        self.assertEqual(r["status"], "fail")
        self.assertEqual(r["reason"], "account disabled")
        # '$' and '%' are not expanded anywhere (BAD-INPUT row 10)
        for name in ("$HOME@" + VDOMAIN, "%u@" + VDOMAIN, "${mail_owner}"):
            r = self.ask(password_request(name, "x", client="192.0.2.13"))
            self.assertEqual(r["status"], "fail", name)
        self.inst.wait_log(r"failed for user=<alice@virt\.test> client=192\.0\.2\.13 "
                           r"service=smtp \(password mismatch\)")
        self.assertNotIn(secret, self.inst.read_log())

    def test_plain_and_weak_hashes_refused(self):
        r = self.ask(password_request("dave@" + VDOMAIN, "dave", client="192.0.2.14"))
        self.assertEqual(r["status"], "tempfail", r)
        self.inst.wait_log(r"password of dave@virt\.test is \{PLAIN\}, which is refused unless "
                           r"auth_allow_plain_passwords = yes")
        r = self.ask(password_request("weak@" + VDOMAIN, "weak", client="192.0.2.14"))
        self.assertEqual(r["status"], "tempfail", r)
        self.inst.wait_log(r"password of weak@virt\.test is a legacy \(weak\) hash method")

    # ---- malformed requests ----

    def test_malformed_requests(self):
        cases = [
            ([("op", "password"), ("service", "smtp"), ("client", "1.2.3.4"),
              ("password", "x")], 'missing attribute "user"'),
            ([("op", "password"), ("service", "smtp"), ("client", "1.2.3.4"),
              ("user", "alice@" + VDOMAIN)], 'missing attribute "password"'),
            ([("service", "smtp")], 'missing attribute "op"'),
            ([("op", "password")], 'missing attribute "service"'),
            ([("op", "password"), ("service", "ftp")], "service must be"),
            ([("op", "shell"), ("service", "smtp")], "op must be"),
            (password_request("alice@virt.test\0eve", "alice pass"), 'attribute "user"'),
            (password_request("alice\r\n@virt.test", "alice pass"), "malformed user name"),
            (password_request("al:ice@virt.test", "alice pass"), "malformed user name"),
            (password_request(b"\xff\xfe@virt.test", "alice pass"), "malformed user name"),
            (password_request("a" * 300, "x"), "malformed user name"),
            (password_request("alice@" + VDOMAIN, "alice pass", client="1.2.3.4 x"),
             "bad client address"),
            (password_request("alice@" + VDOMAIN, "alice pass\0", client="192.0.2.15"),
             "NUL byte"),
            (password_request("alice@" + VDOMAIN, "x" * 2000, client="192.0.2.15"),
             "longer than"),
            (password_request("alice@" + VDOMAIN, "alice pass", service="smtp", token=True),
             "tokens are issued for pop3 and imap only"),
        ]
        for pairs, why in cases:
            r = self.ask(pairs)
            self.assertEqual(r["status"], "fail", (pairs, r))
            self.assertIn(why, r["reason"], pairs)
        # not our protocol, broken framing
        r = ask_raw(self.queue, encode_record([("protocol", "verify"), ("op", "password")]))
        self.assertEqual(r["status"], "fail")
        self.assertIn('expected "auth"', r["reason"])
        r = ask_raw(self.queue, b"8:protocol,4:auth,2:op;")
        self.assertEqual(r["status"], "fail")
        self.assertIn("malformed IPC record", r["reason"])
        # a 1 MB password: refused after its length, the service lives on
        big = encode_record([("protocol", "auth")] + password_request(
            "alice@" + VDOMAIN, "p" * (1024 * 1024), client="192.0.2.15"))
        r = ask_raw(self.queue, big)
        self.assertEqual(r["status"], "fail")
        self.assertIn("exceeds the limit", r["reason"])
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="192.0.2.15"))
        self.assertEqual(r["status"], "ok", r)
        # control bytes in the log are escaped, never raw
        self.assertNotIn("alice\r\n@", self.inst.read_log())

    def test_client_disconnects(self):
        # a client that connects and leaves, or sends half a record: no crash
        for data in (b"", b"8:protocol,4:au"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(os.path.join(self.queue, "private", "auth"))
            s.sendall(data)
            s.close()
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="192.0.2.16"))
        self.assertEqual(r["status"], "ok", r)
        self.assertNotRegex(self.inst.read_log(), r"auth\[\d+\]: .*(panic|fatal)")

    def test_c_client(self):
        # lib/mail/auth_client against the real service (bin/auth-query)
        tool = os.path.join(self.inst.libexec, "auth-query")

        def query(*args, password=b""):
            r = subprocess.run([tool, self.queue] + list(args), input=password,
                               capture_output=True, timeout=60)
            out = dict(l.split("=", 1) for l in r.stdout.decode().splitlines())
            return r.returncode, out

        rc, out = query("password", "smtp", "192.0.2.40", "alice@" + VDOMAIN,
                        password=b"alice pass")
        self.assertEqual((rc, out["status"], out["user"]), (0, "ok", "alice@" + VDOMAIN))
        rc, out = query("password", "smtp", "192.0.2.40", "alice@" + VDOMAIN, password=b"nope")
        self.assertEqual((rc, out["status"], out["reason"]), (0, "fail", "password mismatch"))
        rc, out = query("password", "imap", "192.0.2.40", "alice@" + VDOMAIN, "token",
                        password=b"alice pass")
        self.assertEqual((rc, out["status"]), (0, "ok"), out)
        self.assertEqual(out["mailbox"], "/var/vmail/alice/Maildir/")
        rc, red = query("redeem", "imap", out["token"])
        self.assertEqual((rc, red["status"], red["uid"]), (0, "ok", "2001"), red)
        rc, red = query("redeem", "imap", out["token"])
        self.assertEqual((rc, red["status"]), (0, "fail"))
        # a password with a NUL byte (SASL PLAIN cannot carry one): refused
        rc, out = query("password", "smtp", "192.0.2.41", "alice@" + VDOMAIN,
                        password=b"alice\0pass")
        self.assertEqual((rc, out["status"]), (0, "fail"))
        self.assertIn("NUL", out["reason"])
        # no service at all: -1, tempfail
        r = subprocess.run([tool, os.path.join(self.inst.top, "nowhere"), "redeem", "imap",
                            "ab"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("status=tempfail", r.stdout)
        self.assertIn("cannot connect to the auth service", r.stdout)

    # ---- tokens ----

    def test_token_issue_and_redeem_once(self):
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="192.0.2.17",
                                      service="imap", token=True))
        self.assertEqual(r["status"], "ok", r)
        token = r["token"]
        self.assertRegex(token, r"^[0-9a-f]{40}$")
        self.assertEqual((r["uid"], r["gid"]), ("2001", "2001"))
        self.assertEqual(r["home"], "/var/vmail/alice")
        self.assertEqual(r["mailbox"], "/var/vmail/alice/Maildir/")
        tokdir = os.path.join(self.queue, "pid", "auth", "tokens")
        self.assertEqual(os.stat(tokdir).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(tokdir, token)).st_mode & 0o777, 0o600)
        # the wrong service cannot use it (and it is gone then: one try)
        r2 = self.ask([("op", "redeem"), ("service", "pop3"), ("token", token)])
        self.assertEqual(r2["status"], "fail")
        self.assertIn("issued for imap", r2["reason"])
        r = self.ask(password_request("bob@" + VDOMAIN, "bob:pass,é", client="192.0.2.17",
                                      service="pop3", token=True))
        self.assertEqual(r["status"], "ok", r)
        token = r["token"]
        self.assertEqual(r["mailbox"], "/var/vmail/bob/mail/")  # mail=maildir:~/mail/
        self.assertEqual(int(r["uid"]), self.owner.pw_uid)    # empty uid: mail_store_owner
        red = self.ask([("op", "redeem"), ("service", "pop3"), ("token", token)])
        self.assertEqual(red["status"], "ok", red)
        self.assertEqual(red["user"], "bob@" + VDOMAIN)
        self.assertEqual(red["mailbox"], "/var/vmail/bob/mail/")
        self.assertEqual(red["home"], "/var/vmail/bob")
        self.assertEqual(int(red["gid"]), self.owner.pw_gid)
        self.assertFalse(os.path.exists(os.path.join(tokdir, token)))
        again = self.ask([("op", "redeem"), ("service", "pop3"), ("token", token)])
        self.assertEqual(again["status"], "fail")
        self.assertIn("already used", again["reason"])
        for bad in ("../../master.pid", "", "A" * 40, token + "0", "0" * 40):
            r = self.ask([("op", "redeem"), ("service", "pop3"), ("token", bad)])
            self.assertEqual(r["status"], "fail", bad)

    def test_token_redeemed_once_under_race(self):
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="192.0.2.18",
                                      service="imap", token=True))
        token = r["token"]
        req = [("op", "redeem"), ("service", "imap"), ("token", token)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lambda _: self.ask(req), range(8)))
        self.assertEqual(sorted(x["status"] for x in results), ["fail"] * 7 + ["ok"])

    def test_token_expires(self):
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="192.0.2.19",
                                      service="imap", token=True))
        token = r["token"]
        time.sleep(2.2)
        r = self.ask([("op", "redeem"), ("service", "imap"), ("token", token)], "authshort")
        self.assertEqual(r["status"], "fail")
        self.assertIn("expired token", r["reason"])
        r = self.ask([("op", "redeem"), ("service", "imap"), ("token", token)])
        self.assertEqual(r["status"], "fail")  # an expired token is destroyed too

    # ---- throttling ----

    def test_fifty_rapid_failures_throttle(self):
        client = "203.0.113.50"
        statuses = []
        took = []
        for i in range(50):
            t0 = time.monotonic()
            r = self.ask(password_request("alice@" + VDOMAIN, "bad%d" % i, client=client))
            took.append(time.monotonic() - t0)
            statuses.append(r["status"])
        self.assertEqual(statuses[:10], ["fail"] * 10)
        self.assertEqual(statuses[10:], ["throttled"] * 40)
        # the delay grows: 20 ms per failure, at most 100 ms (loosely)
        self.assertGreater(took[9], 0.08)
        self.assertLess(sum(took[10:]) / 40, took[9])
        # even the right password is refused now, without being looked at
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client=client))
        self.assertEqual(r["status"], "throttled")
        self.assertIn("try again in", r["reason"])
        # other clients are not affected
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client="203.0.113.51"))
        self.assertEqual(r["status"], "ok")
        self.inst.wait_log(r"client 203\.0\.113\.50: 10 failed logins within 300 s: throttled")
        self.inst.wait_log(r"throttled user=<alice@virt\.test> client=203\.0\.113\.50")

    def test_parallel_failures_share_counters(self):
        # several auth processes count into one table
        client = "203.0.113.60"
        req = password_request("alice@" + VDOMAIN, "nope", client=client)
        with concurrent.futures.ThreadPoolExecutor(10) as ex:
            results = list(ex.map(lambda _: self.ask(req)["status"], range(50)))
        self.assertLessEqual(results.count("fail"), 20)
        self.assertGreaterEqual(results.count("throttled"), 30)
        self.assertEqual(set(results), {"fail", "throttled"})

    def test_success_resets_failures(self):
        client = "203.0.113.70"
        for i in range(9):
            r = self.ask(password_request("alice@" + VDOMAIN, "bad", client=client))
            self.assertEqual(r["status"], "fail")
        r = self.ask(password_request("alice@" + VDOMAIN, "alice pass", client=client))
        self.assertEqual(r["status"], "ok")
        for i in range(9):
            r = self.ask(password_request("alice@" + VDOMAIN, "bad", client=client))
            self.assertEqual(r["status"], "fail")

    # ---- PAM for real ----

    @unittest.skipUnless(is_root(), "needs root: creates a system user and reads /etc/shadow")
    def test_pam_system_user(self):
        subprocess.run(["userdel", "-r", PAM_USER], capture_output=True)
        home = os.path.join(self.inst.top, "home-" + PAM_USER)
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", PAM_USER],
                       check=True)
        self.addCleanup(subprocess.run, ["userdel", PAM_USER], capture_output=True)
        subprocess.run(["chpasswd"], input="%s:Pam Pass 1\n" % PAM_USER, text=True, check=True)
        pw = pwd.getpwnam(PAM_USER)
        r = self.ask(password_request(PAM_USER, "Pam Pass 1", client="192.0.2.30"))
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["user"], PAM_USER)
        self.assertEqual(r["reason"], "authenticated by PAM")
        # user@mydestination is the same system user
        r = self.ask(password_request(PAM_USER + "@localhost", "Pam Pass 1",
                                      client="192.0.2.30", service="imap", token=True))
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["user"], PAM_USER)
        self.assertEqual(int(r["uid"]), pw.pw_uid)
        self.assertEqual(r["home"], home)
        self.assertEqual(r["mailbox"], home + "/Maildir/")
        red = self.ask([("op", "redeem"), ("service", "imap"), ("token", r["token"])])
        self.assertEqual(red["status"], "ok", red)
        self.assertEqual(int(red["uid"]), pw.pw_uid)
        r = self.ask(password_request(PAM_USER, "wrong", client="192.0.2.31"))
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("PAM authentication", r["reason"])
        r = self.ask(password_request("pltnosuchuser", "wrong", client="192.0.2.31"))
        self.assertEqual(r["status"], "fail", r)
        self.assertNotIn("Pam Pass 1", self.inst.read_log())


def built_with_asan():
    """pam_wrapper loads libpam with RTLD_DEEPBIND, which AddressSanitizer
    refuses (google/sanitizers#611): the by-hand tests skip such builds."""
    try:
        with open(os.path.join(BIN, "auth"), "rb") as f:
            data = f.read()
        return b"libasan.so" in data or b"__asan_init" in data
    except OSError:
        return False


@unittest.skipUnless(os.path.exists(PAM_WRAPPER_LIB) and os.path.exists(PAM_MATRIX),
                     "libpam-wrapper is not installed")
@unittest.skipIf(built_with_asan(), "pam_wrapper cannot run under AddressSanitizer")
class PamWrapperTest(unittest.TestCase):
    """PAM failure paths: the auth program run by hand (no master, so the
    environment reaches it) with pam_wrapper preloaded and pam_matrix as the
    only module, configured in a temporary directory."""

    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="petrel-pamw-")
        self.addCleanup(shutil.rmtree, self.top, ignore_errors=True)
        self.queue = os.path.join(self.top, "queue")
        for d in ("queue", "queue/private", "queue/pid", "etc", "pam.d"):
            os.mkdir(os.path.join(self.top, d))
        self.log = os.path.join(self.top, "mail.log")
        passdb = os.path.join(self.top, "passdb")
        # nobody exists on every system; daemon may log in to another service only
        with open(passdb, "w") as f:
            f.write("nobody:secret:petrel\ndaemon:secret:other\n")
        for svc, module in (("petrel", PAM_MATRIX),
                            ("broken", "/nonexistent/pam_nothing.so")):
            with open(os.path.join(self.top, "pam.d", svc), "w") as f:
                f.write("auth required %s passdb=%s\n" % (module, passdb))
                f.write("account required %s passdb=%s\n" % (module, passdb))
        with open(os.path.join(self.top, "etc", "petrel.conf"), "w") as f:
            f.write("config_version = 1\nqueue_directory = %s\nlog_destination = %s\n"
                    "mydestination = localhost\nauth_failure_delay = 0\n"
                    % (self.queue, self.log))
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
            p.wait()

    def start_auth(self, sockname, *extra):
        path = os.path.join(self.queue, "private", sockname)
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        lsock.listen(16)
        env = dict(os.environ)
        env.update(LD_PRELOAD=PAM_WRAPPER_LIB, PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=os.path.join(self.top, "pam.d"))
        fd = lsock.fileno()

        def listener_on_5():
            # descriptor 5 is the first listener; 3 (config) must stay closed
            if fd != 5:
                os.dup2(fd, 5)
                os.close(fd)

        errlog = open(os.path.join(self.top, "stderr.log"), "ab")
        self.addCleanup(errlog.close)
        p = subprocess.Popen(
            [os.path.join(BIN, "auth"), "-n", sockname, "-c", os.path.join(self.top, "etc"),
             "-l", "1", "-u", "1000", "-i", "600"] + list(extra),
            pass_fds=(fd, 5), env=env, preexec_fn=listener_on_5,
            stderr=errlog)
        lsock.close()
        self.procs.append(p)
        return sockname

    def test_pam_failure_paths(self):
        name = self.start_auth("auth")
        r = ask(self.queue, password_request("nobody", "secret"), name)
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["user"], "nobody")
        r = ask(self.queue, password_request("nobody", "wrong"), name)
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("PAM authentication", r["reason"])
        r = ask(self.queue, password_request("pltnouser", "secret"), name)
        self.assertEqual(r["status"], "fail", r)
        # right password, but the account may not use this service
        r = ask(self.queue, password_request("daemon", "secret"), name)
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("PAM account check", r["reason"])
        with open(self.log) as f:
            log = f.read()
        self.assertRegex(log, r"failed for user=<nobody> client=192\.0\.2\.1 service=smtp "
                              r"\(PAM authentication: ")
        self.assertNotIn("secret", log.replace("passdb", ""))

    def test_pam_broken_configuration_is_tempfail(self):
        name = self.start_auth("authbroken", "-o", "auth_pam_service=broken")
        r = ask(self.queue, password_request("nobody", "secret"), name)
        self.assertEqual(r["status"], "tempfail", r)
        self.assertIn("PAM", r["reason"])


if __name__ == "__main__":
    unittest.main()
