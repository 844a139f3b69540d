"""Integration tests of master, the server skeleton and `petrel`: a real
instance in a temporary directory serving the echo test service
(tests/services/echo_server.c) on loopback."""
import concurrent.futures
import os
import pwd
import signal
import socket
import time
import unittest

from petrel_instance import (Client, Instance, ensure_users, free_port, is_root,
                             pid_alive, proc_ids)


def echo_services(port, limit=5, extra=""):
    return ["# name type listen user chroot limit command",
            "echo accept 127.0.0.1:%d - - %d echo-server %s" % (port, limit, extra)]


class MasterTest(unittest.TestCase):
    def setUp(self):
        if is_root():
            ensure_users()
        self.port = free_port()
        self.inst = Instance(echo_services(self.port))

    def tearDown(self):
        self.inst.cleanup()

    def test_start_serve_status_stop(self):
        self.inst.start()
        c = Client(self.port)
        self.assertTrue(c.greeting.startswith("200 echo ready service=echo"), c.greeting)
        self.assertEqual(c.cmd("hello"), "250 hello")
        st = self.inst.status()
        self.assertEqual(st["echo"]["procs"], 1)
        self.assertEqual(st["echo"]["limit"], 5)
        self.assertEqual(st["echo"]["listen"], "127.0.0.1:%d" % self.port)
        c.close()
        pid = c.pid
        master = self.inst.master_pid()
        self.assertTrue(pid_alive(master))
        r = self.inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(pid_alive(master))
        self.assertFalse(pid_alive(pid))
        r = self.inst.petrel("status", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not running", r.stdout)
        self.inst.wait_log(r"master\[\d+\]: daemon started -- version")
        self.inst.wait_log(r"master\[\d+\]: stopped")

    def test_second_master_refused(self):
        self.inst.start()
        r = self.inst.master("-f")
        self.assertEqual(r.returncode, 1)
        self.assertIn("in use by another master (pid %d)" % self.inst.master_pid(), r.stderr)
        r = self.inst.petrel("start", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already running", r.stderr)

    def test_kill_9_child_is_restarted(self):
        self.inst.start()
        c = Client(self.port)
        os.kill(c.pid, signal.SIGKILL)
        self.inst.wait_log(r"service echo: process .*echo-server pid %d killed by signal 9; "
                           r"restarting in 1 s" % c.pid)
        c2 = Client(self.port)  # waits in the backlog until the back-off ends
        self.assertNotEqual(c2.pid, c.pid)
        self.assertEqual(c2.cmd("still"), "250 still")
        c2.close()

    def test_crash_on_start_is_throttled(self):
        # A program that cannot run: every start fails, master must not spin.
        self.inst.write_services(echo_services(self.port) + [
            "broken daemon - - - 1 echo-server -o max_use=notanumber"])
        self.inst.start()
        time.sleep(4)
        log = self.inst.read_log()
        failures = log.count("service broken: process")
        # 1 s, 2 s, 4 s back-off: at most 3 failures in 4 s, never a spin.
        self.assertGreaterEqual(failures, 2, log)
        self.assertLessEqual(failures, 4, log)
        self.assertIn("restarting in 2 s", log)
        # The healthy service is unaffected.
        c = Client(self.port)
        self.assertEqual(c.cmd("ok"), "250 ok")
        c.close()

    def test_reload_applies_changed_setting(self):
        self.inst.append_conf("mail_name = Before")
        self.inst.start()
        old = Client(self.port)
        self.assertEqual(old.cmd("CONFIG mail_name"), "250 mail_name=Before")
        self.inst.append_conf("mail_name = After")
        self.inst.petrel("reload")
        self.inst.wait_log(r"reload -- configuration")
        new = Client(self.port)
        self.assertEqual(new.cmd("CONFIG mail_name"), "250 mail_name=After")
        self.assertNotEqual(new.pid, old.pid)
        # The session that was open during the reload goes on and ends normally.
        self.assertEqual(old.cmd("CONFIG mail_name"), "250 mail_name=Before")
        old.close()
        deadline = time.time() + 10
        while pid_alive(old.pid) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(pid_alive(old.pid), "retired process did not exit after its client")
        new.close()

    def test_reload_with_broken_config_keeps_running(self):
        self.inst.start()
        self.inst.append_conf("max_use = lots")
        r = self.inst.petrel("reload", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"petrel\.conf:\d+: parameter max_use")
        c = Client(self.port)
        self.assertEqual(c.cmd("x"), "250 x")
        c.close()

    def test_sigterm_leaves_no_process(self):
        self.inst.start()
        clients = [Client(self.port) for _ in range(3)]
        pids = [c.pid for c in clients]
        master = self.inst.master_pid()
        t0 = time.time()
        os.kill(master, signal.SIGTERM)
        # Busy children are killed after master_stop_timeout (5 s).
        deadline = t0 + 12
        while any(pid_alive(p) for p in pids + [master]) and time.time() < deadline:
            time.sleep(0.1)
        for p in pids + [master]:
            self.assertFalse(pid_alive(p), "pid %d survived SIGTERM" % p)
        self.inst.wait_log(r"still running after 5 s; killing them")
        for c in clients:
            c.sock.close()

    def test_broken_config_check_and_start_fail(self):
        self.inst.append_conf("smtpd_timeout = 5x")
        self.inst.append_conf("no_such_parameter = 1")
        self.inst.write_services(echo_services(self.port) + ["bad accept 99999 - - 1 echo-server"])
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 1)
        conf = os.path.join(self.inst.conf, "petrel.conf")
        svc = os.path.join(self.inst.conf, "services.conf")
        self.assertRegex(r.stderr, conf + r":\d+: parameter smtpd_timeout: invalid time value")
        self.assertRegex(r.stderr, conf + r":\d+: unknown parameter 'no_such_parameter'")
        self.assertIn(svc + ":3: service bad: listen \"99999\": invalid port", r.stderr)
        r = self.inst.petrel("start", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("petrel start: the configuration has errors", r.stderr)
        self.assertRegex(r.stderr, conf + r":\d+: ")
        self.assertEqual(self.inst.master_pid(), 0)

    def test_ipv6_and_wildcard_listeners(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        p6, pall = free_port(), free_port()
        self.inst.write_services(echo_services(self.port) + [
            "echo6 accept [::1]:%d - - 2 echo-server" % p6,
            "echoall accept inet:%d - - 2 echo-server" % pall])
        self.inst.start()
        s = socket.create_connection(("::1", p6), timeout=10)
        self.assertIn(b"service=echo6", s.recv(200))
        s.close()
        for host in ("127.0.0.1", "::1"):  # the wildcard serves both families
            s = socket.create_connection((host, pall), timeout=10)
            self.assertIn(b"service=echoall", s.recv(200))
            s.close()

    def test_check_clean_config(self):
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_config_command(self):
        self.inst.append_conf("myhostname = mx.example.org")
        self.inst.append_conf("myorigin = $myhostname")
        r = self.inst.petrel("config", "-n")
        self.assertIn("myhostname = mx.example.org\n", r.stdout)
        self.assertIn("myorigin = $myhostname\n", r.stdout)
        self.assertNotIn("smtpd_timeout", r.stdout)
        r = self.inst.petrel("config", "-x", "myorigin", "smtpd_timeout")
        self.assertEqual(r.stdout, "myorigin = mx.example.org\nsmtpd_timeout = 300s\n")
        r = self.inst.petrel("config", "bogus", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bogus: unknown parameter", r.stderr)

    def test_concurrent_clients_within_process_limit(self):
        limit = 10
        self.inst.write_services(echo_services(self.port, limit, "-o max_use=100000"))
        self.inst.start()

        def session(i):
            c = Client(self.port, timeout=60)
            reply = c.cmd("SLEEP 30")
            echo = c.cmd("client %d" % i)
            c.close()
            return c.pid, reply, echo

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(session, range(200)))
        self.assertEqual(len(results), 200)
        for i, (pid, reply, echo) in enumerate(results):
            self.assertTrue(reply.startswith("250 slept 30"), reply)
            self.assertEqual(echo, "250 client %d" % i)
        pids = {r[0] for r in results}
        self.assertLessEqual(len(pids), limit)
        self.assertGreater(len(pids), 1)
        st = self.inst.status()["echo"]
        self.assertLessEqual(st["procs"], limit)
        self.inst.wait_log(r"service echo: all 10 processes are busy \(process limit reached\)")


@unittest.skipUnless(is_root(), "needs root")
class PrivilegeTest(unittest.TestCase):
    def setUp(self):
        ensure_users()
        self.inst = None

    def tearDown(self):
        if self.inst:
            self.inst.cleanup()

    def test_services_run_as_their_user_on_privileged_port(self):
        port = free_port(900, 1000)
        self.inst = Instance(echo_services(port))
        self.inst.start()
        pw = pwd.getpwnam("petrel")
        c = Client(port)
        uid, gid, groups = proc_ids(c.pid)
        self.assertEqual(uid, [pw.pw_uid] * 4)
        self.assertEqual(gid, [pw.pw_gid] * 4)
        self.assertEqual(groups, [pw.pw_gid])
        self.assertEqual((c.uid, c.gid), (pw.pw_uid, pw.pw_gid))
        # master itself stays root.
        muid, _, _ = proc_ids(self.inst.master_pid())
        self.assertEqual(muid[0], 0)
        c.close()
        # The queue tree has the owners of the design.
        st = os.stat(os.path.join(self.inst.queue, "incoming"))
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (pw.pw_uid, 0o700))
        st = os.stat(os.path.join(self.inst.queue, "pid"))
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o755))
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_per_service_user(self):
        port = free_port()
        self.inst = Instance(["echo accept 127.0.0.1:%d nobody - 2 echo-server" % port])
        self.inst.start()
        c = Client(port)
        self.assertEqual(c.uid, pwd.getpwnam("nobody").pw_uid)
        c.close()

    def test_check_reports_wrong_queue_owner(self):
        port = free_port()
        self.inst = Instance(echo_services(port))
        self.inst.start()
        self.inst.stop()
        os.chown(os.path.join(self.inst.queue, "deferred"), 0, 0)
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/deferred: owned by 0:0, should be", r.stderr)
        self.inst.petrel("set-permissions")
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_chroot_service(self):
        port = free_port()
        jail = os.path.join("/tmp", "petrel-jail-%d" % os.getpid())
        os.makedirs(jail, exist_ok=True)
        self.addCleanup(os.rmdir, jail)
        self.inst = Instance(["echo accept 127.0.0.1:%d - %s 2 echo-server" % (port, jail)])
        self.inst.start()
        c = Client(port)
        self.assertEqual(os.readlink("/proc/%d/root" % c.pid), jail)
        uid, _, _ = proc_ids(c.pid)
        self.assertEqual(uid, [pwd.getpwnam("petrel").pw_uid] * 4)
        self.assertEqual(c.cmd("in jail"), "250 in jail")
        c.close()

    def test_missing_service_user(self):
        port = free_port()
        self.inst = Instance(["echo accept 127.0.0.1:%d no-such-user-x - 2 echo-server" % port])
        r = self.inst.petrel("check", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("services.conf:1: service echo: no such user \"no-such-user-x\"", r.stderr)

    def test_non_root_instance(self):
        port = free_port()
        self.inst = Instance(echo_services(port), run_as="nobody")
        self.inst.start()
        c = Client(port)
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(c.uid, nobody.pw_uid)
        uid, _, _ = proc_ids(self.inst.master_pid())
        self.assertEqual(uid[0], nobody.pw_uid)
        c.close()
        self.inst.wait_log(r"running as non-root \(uid %d\): not switching users" % nobody.pw_uid)
        r = self.inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
