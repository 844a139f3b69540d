"""Integration tests of the smtp-client features added after the basic
delivery of test_smtp_client.py: connection reuse (a connection cache
inside each smtp-client process), transport_maps, smtp_tls_policy_maps and
SASL AUTH to a next hop (smtp_sasl_password_maps). Same setup: master +
qmgr + smtp-client, a dnsmasq on a loopback port and fake receiving SMTP
servers written here that count connections and check credentials."""
import base64
import email
import email.policy
import os
import re
import shutil
import socket
import ssl
import tempfile
import time
import unittest

import test_smtp_client as base
from petrel_instance import is_root

TLS_DIR = base.TLS_DIR
HOST = base.HOST


def msg(n):
    return ("From: alice@localhost\r\nTo: bob@b.test\r\nSubject: message %d\r\n\r\n"
            "body of message %d\r\n" % (n, n))


def server_tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(TLS_DIR, "server.pem"),
                        os.path.join(TLS_DIR, "server.test-only.key"))
    return ctx


class FeatureSMTP(base.FakeSMTP):
    """The fake server of test_smtp_client with more knobs:
    auth (None, or dict mechs=[...], user=, password=): offer AUTH and check
    the credentials; close_after_data: close the connection (no 421) right
    after answering a message's final '.'; busy_second_mail: answer 421 to
    the second MAIL FROM of a connection (as a server that timed it out).
    Each session records every message it accepted in "messages"."""

    def __init__(self):
        self.auth = None
        self.close_after_data = False
        self.busy_second_mail = False
        super().__init__()

    def all_messages(self):
        with self.lock:
            return [m for s in self.sessions for m in s.get("messages", [])]

    def wait_messages(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.all_messages()) >= n:
                return self.all_messages()
            time.sleep(0.05)
        raise AssertionError("fake server got %d messages, expected %d"
                             % (len(self.all_messages()), n))

    def _serve(self, c):
        sess = dict(commands=[], messages=[], tls=False, closed=False, auth=None,
                    pipelined=False, data=None)
        with self.lock:
            self.sessions.append(sess)
        conn = c
        buf = b""

        def readline(wait=30):
            nonlocal buf
            conn.settimeout(wait)
            while b"\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    raise EOFError
                buf += d
            line, buf = buf.split(b"\r\n", 1)
            return line

        def send(b):
            conn.sendall(b + b"\r\n")

        def check(user, password, mech):
            a = self.auth
            ok = user == a["user"] and password == a["password"]
            sess["auth"] = (mech, user, password, ok)
            send(b"235 2.7.0 ok" if ok else b"535 5.7.8 bad credentials for you")

        mails = rcpts = 0
        mail_ok = False
        try:
            c.sendall(self.greeting)
            while True:
                line = readline()
                sess["commands"].append(line.decode("utf-8", "replace"))
                verb = line.split(b" ", 1)[0].upper()
                if verb == b"EHLO":
                    ext = list(self.ext)
                    if self.tls and not sess["tls"]:
                        ext.append("STARTTLS")
                    if self.auth:
                        ext.append("AUTH " + " ".join(self.auth["mechs"]))
                    out = [b"250-fake.b.test"] + [b"250-" + e.encode() for e in ext]
                    out[-1] = b"250 " + out[-1][4:]
                    conn.sendall(b"\r\n".join(out) + b"\r\n")
                elif verb == b"STARTTLS":
                    send(b"220 2.0.0 go ahead")
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    sess["tls"] = True
                    buf = b""
                elif verb == b"AUTH":
                    parts = line.decode().split(" ")
                    if parts[1].upper() == "PLAIN":
                        if len(parts) > 2:
                            raw = parts[2]
                        else:
                            send(b"334 ")
                            raw = readline().decode()
                        _, user, password = base64.b64decode(raw).decode().split("\0")
                        check(user, password, "PLAIN")
                    elif parts[1].upper() == "LOGIN":
                        send(b"334 VXNlcm5hbWU6")
                        user = base64.b64decode(readline()).decode()
                        send(b"334 UGFzc3dvcmQ6")
                        password = base64.b64decode(readline()).decode()
                        check(user, password, "LOGIN")
                    else:
                        send(b"504 5.5.4 unknown mechanism")
                elif verb == b"MAIL":
                    mails += 1
                    if self.busy_second_mail and mails == 2:
                        send(b"421 4.4.2 fake.b.test idle too long, closing")
                        return
                    mail_ok = not line.upper().startswith(b"MAIL FROM:<BAD@")
                    send(b"250 2.1.0 ok" if mail_ok else b"550 5.7.1 sender refused")
                elif verb == b"RCPT" and not mail_ok:
                    send(b"503 5.5.1 need MAIL first")
                elif verb == b"RCPT":
                    addr = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                    reply = self.rcpt(addr)
                    rcpts += reply.startswith(b"2")
                    send(reply)
                elif verb == b"DATA" and rcpts == 0:
                    send(b"554 5.5.1 no valid recipients")
                elif verb == b"DATA":
                    rcpts = 0
                    send(b"354 go ahead")
                    raw = b""
                    while True:
                        l = readline()
                        if l == b".":
                            break
                        raw += (l[1:] if l.startswith(b".") else l) + b"\r\n"
                    sess["messages"].append(raw)
                    mail_ok = False
                    sess["data"] = raw
                    send(self.data_reply)
                    if self.close_after_data:
                        time.sleep(0.1)
                        return
                elif verb == b"QUIT":
                    send(b"221 2.0.0 bye")
                    return
                elif verb in (b"RSET", b"NOOP"):
                    rcpts = 0
                    mail_ok = False
                    send(b"250 2.0.0 ok")
                else:
                    send(b"502 5.5.2 what")
        except (OSError, EOFError, ssl.SSLError, ValueError, IndexError):
            pass
        finally:
            sess["closed"] = True
            try:
                conn.close()
            except OSError:
                pass


class FeatureBase(base.SmtpClientTest):
    """SmtpClientTest's instance and helpers with FeatureSMTP servers; tables
    go to a world-readable temporary directory (the service user must read
    them, the checkout may be private)."""

    def setUp(self):
        super().setUp()
        self.fake.close()
        self.fake = FeatureSMTP()
        self.fakes = [self.fake]
        self.tabdir = tempfile.mkdtemp(prefix="petrel-smtpc-")
        os.chmod(self.tabdir, 0o755)

    def tearDown(self):
        for f in self.fakes[1:]:
            f.close()
        shutil.rmtree(self.tabdir, ignore_errors=True)
        super().tearDown()

    def new_fake(self):
        f = FeatureSMTP()
        self.fakes.append(f)
        return f

    def table(self, name, text):
        path = os.path.join(self.tabdir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return "texthash:" + path

    def log_has_no(self, text):
        self.assertNotIn(text, self.inst.read_log())


# The tests of SmtpClientTest stay in test_smtp_client.py: not run again here.
for _name in dir(base.SmtpClientTest):
    if _name.startswith("test_"):
        setattr(FeatureBase, _name, None)


@unittest.skipIf(base.dnsmasq_path() is None, "dnsmasq is not installed")
class ConnectionReuseTest(FeatureBase):
    def extra_dns(self):
        # another domain with the same MX host: same next hop
        return ["--mx-host=c.test,mx.b.test,10"]

    def start_serial(self, extra=()):
        self.start(extra=["default_destination_concurrency_limit = 1"] + list(extra))

    def subjects(self, messages):
        return sorted(email.message_from_bytes(m, policy=email.policy.default)["Subject"]
                      for m in messages)

    def test_five_messages_one_connection(self):
        self.start_serial()
        qids = [self.inject("alice@localhost", "bob@b.test", body=msg(i)) for i in range(5)]
        for q in qids:
            self.wait_where(q, None)
        got = self.fake.wait_messages(5)
        self.assertEqual(self.subjects(got), ["message %d" % i for i in range(5)],
                         "every message exactly once")
        conns = len(self.fake.sessions)
        self.assertLess(conns, 5, "no connection was reused")
        self.inst.wait_log(r"reusing the connection to mx\.b\.test\[127\.0\.0\.1\]:%d "
                           r"\(conn_use=2\)" % self.fake.port)
        # idle longer than smtp_connection_cache_time_limit (2s): closed with QUIT
        closed = self.fake.wait_sessions(conns, timeout=10)
        for s in closed:
            self.assertEqual(s["commands"][-1], "QUIT")
            self.assertEqual(sum(c.startswith("EHLO") for c in s["commands"]), 1)

    def test_reuse_over_tls(self):
        self.fake.tls = server_tls()
        self.start_serial(extra=["smtp_tls_security_level = encrypt"])
        qids = [self.inject("alice@localhost", "bob@b.test", body=msg(i)) for i in range(3)]
        for q in qids:
            self.wait_where(q, None)
        self.assertEqual(self.subjects(self.fake.wait_messages(3)),
                         ["message 0", "message 1", "message 2"])
        self.assertLess(len(self.fake.sessions), 3, "no TLS connection was reused")
        self.assertTrue(all(s["tls"] for s in self.fake.sessions))

    def test_quit_when_the_process_exits(self):
        self.start_serial(extra=["smtp_connection_cache_time_limit = 60s"])
        qid = self.inject("alice@localhost", "bob@b.test", body=msg(1))
        self.wait_where(qid, None)
        self.fake.wait_messages(1)
        time.sleep(0.5)
        self.assertFalse(self.fake.sessions[0]["closed"], "the connection was not kept")
        self.inst.stop()
        s = self.fake.wait_sessions(1, timeout=10)[0]
        self.assertEqual(s["commands"][-1], "QUIT")

    def test_reuse_count_limit(self):
        self.start_serial(extra=["smtp_connection_reuse_count_limit = 2"])
        qids = [self.inject("alice@localhost", "bob@b.test", body=msg(i)) for i in range(4)]
        for q in qids:
            self.wait_where(q, None)
        self.assertEqual(len(self.fake.wait_messages(4)), 4)
        for s in self.fake.wait_sessions(len(self.fake.sessions), timeout=10):
            self.assertLessEqual(len(s["messages"]), 2, s["commands"])

    def test_cache_off(self):
        self.start_serial(extra=["smtp_connection_cache_time_limit = 0"])
        qids = [self.inject("alice@localhost", "bob@b.test", body=msg(i)) for i in range(3)]
        for q in qids:
            self.wait_where(q, None)
        self.fake.wait_messages(3)
        self.assertEqual(len(self.fake.sessions), 3)

    def test_two_domains_same_next_hop_one_connection(self):
        self.start_serial()
        qid = self.inject("alice@localhost", "bob@b.test", "carol@c.test")
        self.wait_where(qid, None)
        self.status_line(qid, "bob@b.test", "sent", "2.0.0")
        self.status_line(qid, "carol@c.test", "sent", "2.0.0")
        self.assertEqual(len(self.fake.wait_messages(2)), 2)
        self.assertEqual(len(self.fake.sessions), 1)
        cmds = self.fake.sessions[0]["commands"]
        self.assertEqual(sum(c.startswith("MAIL FROM") for c in cmds), 2, cmds)

    def test_server_closed_cached_connection(self):
        self.fake.close_after_data = True
        self.start_serial()
        for i in range(3):
            qid = self.inject("alice@localhost", "bob@b.test", body=msg(i))
            self.wait_where(qid, None)
            time.sleep(0.3)  # the server has closed the kept connection by now
        got = self.fake.wait_messages(3)
        self.assertEqual(self.subjects(got), ["message 0", "message 1", "message 2"])
        self.assertEqual(len(self.fake.sessions), 3)
        self.log_has_no("status=deferred")

    def test_421_on_reused_connection_resends_once(self):
        self.fake.busy_second_mail = True
        self.start_serial()
        for i in range(3):
            qid = self.inject("alice@localhost", "bob@b.test", body=msg(i))
            self.wait_where(qid, None)
            self.status_line(qid, "bob@b.test", "sent", "2.0.0")
        got = self.fake.wait_messages(3)
        self.assertEqual(self.subjects(got), ["message 0", "message 1", "message 2"])
        self.inst.wait_log(r"cached connection to mx\.b\.test\[127\.0\.0\.1\]:\d+ is no longer "
                           r"usable \(421\); using a new connection")
        self.log_has_no("status=deferred")

    def test_refused_sender_pipelined_then_reuse(self):
        self.start_serial()
        q1 = self.inject("bad@localhost", "bob@b.test", "carol@b.test", body=msg(1))
        self.assertIn("550 5.7.1 sender refused",
                      self.status_line(q1, "bob@b.test", "bounced", r"5\.7\.1"))
        q2 = self.inject("alice@localhost", "bob@b.test", body=msg(2))
        self.status_line(q2, "bob@b.test", "sent", "2.0.0")
        self.assertEqual(self.subjects(self.fake.wait_messages(1)), ["message 2"])
        self.assertEqual(len(self.fake.sessions), 1)
        cmds = self.fake.sessions[0]["commands"]
        self.assertTrue(cmds[1].startswith("MAIL FROM:<bad@localhost>"), cmds)
        self.assertEqual(cmds[4:6], ["DATA", "RSET"])
        self.assertTrue(cmds[6].startswith("MAIL FROM:<alice@localhost>"), cmds)

    def test_rejected_transaction_rset_before_reuse(self):
        self.fake.rcpt = lambda a: (b"550 5.1.1 no such user" if a.startswith("nobody")
                                    else b"250 2.1.5 ok")
        self.start_serial()
        q1 = self.inject("alice@localhost", "nobody@b.test", body=msg(1))
        self.status_line(q1, "nobody@b.test", "bounced", "5.1.1")
        q2 = self.inject("alice@localhost", "bob@b.test", body=msg(2))
        self.status_line(q2, "bob@b.test", "sent", "2.0.0")
        self.assertEqual(self.subjects(self.fake.wait_messages(1)), ["message 2"])
        first = self.fake.sessions[0]["commands"]
        self.assertIn("RSET", first)
        self.assertLess(first.index("RSET"),
                        [i for i, c in enumerate(first) if c.startswith("MAIL")][1])


@unittest.skipIf(base.dnsmasq_path() is None, "dnsmasq is not installed")
class TransportMapTest(FeatureBase):
    def extra_dns(self):
        return ["--mx-host=viamx.test,mx.b.test,10"]

    def test_transport_map(self):
        other = self.new_fake()
        p2 = other.port
        spec = self.table("transport", (
            "t1.test      smtp:[127.0.0.1]:%d\n"
            ".sub.test    relay:[127.0.0.1]:%d\n"
            "mx.test      smtp:viamx.test:%d\n"
            "err.test     error:5.7.1 we do not take mail for err.test\n"
            "err2.test    error:no such domain here\n"
            "later.test   retry:4.3.2 not now\n"
            "gone.test    discard:\n"
            "odd.test     local:\n"
            "broken.test  smtp:[127.0.0.1]:99999\n" % (p2, p2, p2)))
        self.start(extra=["transport_maps = " + spec])
        qid = self.inject("alice@localhost", "a@t1.test", "b@x.sub.test", "c@mx.test",
                          "d@err.test", "e@err2.test", "f@later.test", "g@gone.test",
                          "h@odd.test", "i@broken.test", "j@b.test", "k@sub.test")
        self.status_line(qid, "a@t1.test", "sent", "2.0.0")
        self.assertIn("127.0.0.1[127.0.0.1]:%d" % p2,
                      self.status_line(qid, "b@x.sub.test", "sent", "2.0.0"))
        self.assertIn("mx.b.test[127.0.0.1]:%d" % p2,
                      self.status_line(qid, "c@mx.test", "sent", "2.0.0"))
        self.assertEqual(self.status_line(qid, "d@err.test", "bounced", r"5\.7\.1"),
                         "we do not take mail for err.test")
        self.assertEqual(self.status_line(qid, "e@err2.test", "bounced", r"5\.0\.0"),
                         "no such domain here")
        self.assertEqual(self.status_line(qid, "f@later.test", "deferred", r"4\.3\.2"),
                         "not now")
        self.assertEqual(self.status_line(qid, "g@gone.test", "sent", r"2\.0\.0"), "discarded")
        self.assertIn('unsupported transport "local"',
                      self.status_line(qid, "h@odd.test", "deferred", r"4\.3\.5"))
        self.assertIn("malformed next hop",
                      self.status_line(qid, "i@broken.test", "deferred", r"4\.3\.5"))
        # not in the table (".sub.test" is for subdomains only): the MX, port smtp_port
        self.assertIn("mx.b.test[127.0.0.1]:%d" % self.fake.port,
                      self.status_line(qid, "j@b.test", "sent", "2.0.0"))
        self.assertIn("Host or domain name not found",
                      self.status_line(qid, "k@sub.test", "bounced", r"5\.1\.2"))
        rcpts = lambda f: sorted(c[9:-1] for s in f.sessions for c in s["commands"]
                                 if c.startswith("RCPT TO:"))
        self.assertEqual(rcpts(other), ["a@t1.test", "b@x.sub.test", "c@mx.test"])
        self.assertEqual(rcpts(self.fake), ["j@b.test"])

    def test_missing_table_defers(self):
        self.start(extra=["transport_maps = texthash:%s/nonexistent" % self.tabdir])
        qid = self.inject("alice@localhost", "bob@b.test")
        reason = self.status_line(qid, "bob@b.test", "deferred", r"4\.3\.0")
        self.assertIn("transport_maps lookup error", reason)
        self.assertEqual(self.fake.sessions, [])


@unittest.skipIf(base.dnsmasq_path() is None, "dnsmasq is not installed")
class TlsPolicyTest(FeatureBase):
    def extra_dns(self):
        # MX mx.b.test: a name that is not in the test certificate
        return ["--mx-host=%s.test,mx.b.test,10" % d
                for d in ("wrong", "match", "nomatch", "bad", "sub.parent")]

    def test_policy_table(self):
        self.fake.tls = server_tls()
        plain = self.new_fake()  # no STARTTLS
        spec = self.table("policy", (
            "b.test         none\n"
            "tls.test       verify\n"
            "wrong.test     verify\n"
            "match.test     verify match=nope.test:mx.petrel.test\n"
            "nomatch.test   verify match=nope.test:hostname\n"
            "bad.test       dane\n"
            ".parent.test   encrypt\n"
            "[127.0.0.1]:%d encrypt\n" % plain.port))
        transport = self.table("transport", "plain.test smtp:[127.0.0.1]:%d\n" % plain.port)
        self.start(extra=["smtp_tls_policy_maps = " + spec, "transport_maps = " + transport])
        qid = self.inject("alice@localhost", "a@b.test", "b@tls.test", "c@wrong.test",
                          "d@match.test", "e@nomatch.test", "f@bad.test", "g@sub.parent.test",
                          "h@plain.test")
        self.status_line(qid, "a@b.test", "sent", "2.0.0")
        self.status_line(qid, "b@tls.test", "sent", "2.0.0")
        self.assertIn("certificate verification failed",
                      self.status_line(qid, "c@wrong.test", "deferred", r"4\.7\.5"))
        self.status_line(qid, "d@match.test", "sent", "2.0.0")
        self.assertIn("matches none of match=nope.test:hostname",
                      self.status_line(qid, "e@nomatch.test", "deferred", r"4\.7\.5"))
        reason = self.status_line(qid, "f@bad.test", "deferred", r"4\.7\.5")
        self.assertIn('smtp_tls_policy_maps (%s): unsupported policy "dane"' % spec, reason)
        self.status_line(qid, "g@sub.parent.test", "sent", "2.0.0")
        self.assertIn("TLS is required, but was not offered",
                      self.status_line(qid, "h@plain.test", "deferred", r"4\.7\.4"))
        self.inst.wait_log(r"%s: Verified TLS connection established to mx\.petrel\.test" % qid)
        self.inst.wait_log(r"%s: Verified TLS connection established to mx\.b\.test" % qid)

        def sess_of(rcpt):
            for s in self.fake.sessions:
                if "RCPT TO:<%s>" % rcpt in s["commands"]:
                    return s
            self.fail("no session for %s" % rcpt)
        s = sess_of("a@b.test")
        self.assertFalse(s["tls"])
        self.assertNotIn("STARTTLS", s["commands"])
        for r in ("b@tls.test", "d@match.test", "g@sub.parent.test"):
            self.assertTrue(sess_of(r)["tls"], r)
        # never in the clear: neither the bad policy's nor the plain server's mail
        for f in (self.fake, plain):
            for s in f.sessions:
                self.assertFalse([c for c in s["commands"] if c.startswith("RCPT")
                                  and ("bad.test" in c or "plain.test" in c)])


@unittest.skipIf(base.dnsmasq_path() is None, "dnsmasq is not installed")
class SaslAuthTest(FeatureBase):
    def extra_dns(self):
        return ["--host-record=relay1.test,127.0.0.1", "--host-record=relay2.test,127.0.0.1"]

    def test_auth(self):
        tls_plain = self.fake                 # STARTTLS, AUTH PLAIN LOGIN
        tls_plain.tls = server_tls()
        tls_plain.auth = dict(mechs=["PLAIN", "LOGIN"], user="joe", password="s3cret:x")
        tls_login = self.new_fake()           # STARTTLS, AUTH LOGIN only
        tls_login.tls = server_tls()
        tls_login.auth = dict(mechs=["LOGIN"], user="joe", password="s3cret:x")
        cleartext = self.new_fake()           # AUTH offered, no STARTTLS
        cleartext.auth = dict(mechs=["PLAIN", "LOGIN"], user="joe", password="s3cret:x")
        p1, p2, p3 = tls_plain.port, tls_login.port, cleartext.port
        transport = self.table("transport", (
            "ok.test     smtp:[relay1.test]:%d\n"
            "bad.test    smtp:[relay2.test]:%d\n"
            "login.test  smtp:[relay1.test]:%d\n"
            "clear.test  smtp:[relay1.test]:%d\n"
            "noauth.test smtp:[127.0.0.1]:%d\n" % (p1, p1, p2, p3, p1)))
        passwords = self.table("passwords", (
            "[relay1.test]:%d joe:s3cret:x\n"
            "[relay2.test]:%d joe:WRONGPASS\n"
            "relay1.test      joe:s3cret:x\n" % (p1, p1)))
        self.start(extra=["transport_maps = " + transport,
                          "smtp_sasl_auth_enable = yes",
                          "smtp_sasl_password_maps = " + passwords])
        qid = self.inject("alice@localhost", "a@ok.test", "b@bad.test", "c@login.test",
                          "d@clear.test", "e@noauth.test")
        self.status_line(qid, "a@ok.test", "sent", "2.0.0")
        reason = self.status_line(qid, "b@bad.test", "deferred", r"4\.7\.0")
        self.assertIn("SASL authentication failed; server relay2.test[127.0.0.1] said: "
                      "535 5.7.8 bad credentials for you", reason)
        self.status_line(qid, "c@login.test", "sent", "2.0.0")
        reason = self.status_line(qid, "d@clear.test", "deferred", r"4\.7\.0")
        self.assertIn("needs TLS", reason)
        self.assertIn("no password sent", reason)
        # no entry for [127.0.0.1]:p1, 127.0.0.1 or noauth.test: sent without AUTH
        self.status_line(qid, "e@noauth.test", "sent", "2.0.0")

        auths = sorted(s["auth"][:2] + (s["auth"][3], s["tls"])
                       for f in (tls_plain, tls_login) for s in f.sessions if s["auth"])
        self.assertEqual(auths, [("LOGIN", "joe", True, True), ("PLAIN", "joe", False, True),
                                 ("PLAIN", "joe", True, True)])
        self.assertFalse([c for s in cleartext.sessions for c in s["commands"]
                          if c.upper().startswith("AUTH")], "AUTH sent without TLS")
        log = self.inst.read_log()
        self.assertNotIn("s3cret", log)
        self.assertNotIn("WRONGPASS", log)
        self.assertNotIn(base64.b64encode(b"\0joe\0s3cret:x").decode(), log)

    def test_tls_only_off_sends_in_clear(self):
        self.fake.auth = dict(mechs=["PLAIN"], user="joe", password="pw")
        passwords = self.table("passwords", "[127.0.0.1]:%d joe:pw\n" % self.fake.port)
        self.start(extra=["relayhost = [127.0.0.1]:%d" % self.fake.port,
                          "smtp_sasl_auth_enable = yes", "smtp_sasl_tls_only = no",
                          "smtp_sasl_password_maps = " + passwords])
        qid = self.inject("alice@localhost", "bob@b.test")
        self.status_line(qid, "bob@b.test", "sent", "2.0.0")
        self.assertEqual(self.fake.sessions[0]["auth"], ("PLAIN", "joe", "pw", True))


LONG = "Zeile mit Umlauten: " + "\u00e4\u00f6\u00fc\u00df " * 30
TEXT = ("Gr\u00fc\u00dfe aus K\u00f6ln!\n.a line with a leading dot\n"
        "trailing spaces   \nequals = sign and =3D literal\n" + LONG + "\n\tend\n")

SINGLE = ("From: alice@localhost\nTo: bob@b.test\nSubject: single\nMIME-Version: 1.0\n"
          "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
          + TEXT)

MULTI = ("From: alice@localhost\nTo: bob@b.test\nSubject: multi\nMIME-Version: 1.0\n"
         "Content-Type: multipart/mixed;\n boundary=\"=-outer\"\n\n"
         "preamble\n--=-outer\nContent-Type: text/plain; charset=utf-8\n\n" + TEXT +
         "\n--=-outer\nContent-Type: application/octet-stream\n"
         "Content-Transfer-Encoding: base64\n\nAAEC/w==\n"
         "--=-outer\nContent-Type: message/rfc822\n\n"
         "Subject: inner\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: 8bit\n\ncaf\u00e9 cr\u00e8me\n\n--=-outer--\nepilogue\n")

PLAIN8 = ("From: alice@localhost\nTo: bob@b.test\nSubject: no mime\n\n"
          "d\u00e9j\u00e0 vu\nsecond line\n")


@unittest.skipIf(base.dnsmasq_path() is None, "dnsmasq is not installed")
class MimeDowngradeTest(FeatureBase):
    """A server without 8BITMIME gets 7-bit content that decodes to the
    original; one with it gets the message as it is."""

    def test_downgrade(self):
        self.fake.ext = ["PIPELINING", "SIZE 10000000"]   # no 8BITMIME
        eight = self.new_fake()                            # with 8BITMIME
        transport = self.table("transport", "eight.test smtp:[127.0.0.1]:%d\n" % eight.port)
        self.start(extra=["transport_maps = " + transport,
                          "default_destination_concurrency_limit = 1"])
        bodies = {"single": SINGLE, "multi": MULTI, "plain8": PLAIN8}
        for name in ("single", "multi", "plain8"):
            body = bodies[name]
            self.inject("alice@localhost", "bob@b.test", body=body)
        self.inject("alice@localhost", "bob@eight.test", body=SINGLE)
        got = self.fake.wait_messages(3)
        for raw in got:
            self.assertFalse(any(b >= 0x80 for b in raw), raw)
            for line in raw.split(b"\r\n"):
                self.assertLessEqual(len(line), 998)
            m = email.message_from_bytes(raw, policy=email.policy.default)
            subj = m["Subject"]
            if subj == "single":
                self.assertEqual(m["Content-Transfer-Encoding"], "quoted-printable")
                self.assertEqual(m.get_content().replace("\r\n", "\n"), TEXT)
                for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"):
                    self.assertLessEqual(len(line), 76, line)
            elif subj == "multi":
                parts = list(m.iter_parts())
                self.assertEqual(parts[0].get_content().replace("\r\n", "\n"), TEXT)
                self.assertEqual(parts[1].get_content(), b"\x00\x01\x02\xff")
                self.assertEqual(parts[1]["Content-Transfer-Encoding"], "base64")
                inner = parts[2].get_content()
                self.assertEqual(inner["Subject"], "inner")
                self.assertEqual(inner.get_content().replace("\r\n", "\n"),
                                 "caf\u00e9 cr\u00e8me\n")
                self.assertIn(b"preamble\r\n--=-outer\r\n", raw)
                self.assertIn(b"--=-outer--\r\nepilogue\r\n", raw)
            else:
                self.assertEqual(subj, "no mime")
                self.assertEqual(m["MIME-Version"], "1.0")
                self.assertEqual(m.get_content_type(), "text/plain")
                self.assertEqual(m.get_param("charset"), "unknown-8bit")
                self.assertEqual(m.get_payload(decode=True).replace(b"\r\n", b"\n"),
                                 "d\u00e9j\u00e0 vu\nsecond line\n".encode())
        self.assertEqual(sorted(email.message_from_bytes(r)["Subject"] for r in got),
                         ["multi", "no mime", "single"])
        # the server with 8BITMIME: BODY=8BITMIME and the bytes unchanged
        raw = eight.wait_messages(1)[0]
        self.assertEqual(raw, SINGLE.replace("\n", "\r\n").encode())
        mail = [c for s in eight.sessions for c in s["commands"] if c.startswith("MAIL")]
        self.assertIn("BODY=8BITMIME", mail[0])


if __name__ == "__main__":
    unittest.main()
