"""A Petrel instance for integration tests: a temporary directory with its
own configuration, queue and log, the built programs copied in (so that
service users can execute them wherever the build tree lives), started and
stopped with the real `petrel` command.

PETREL_BIN (set by CTest) names the build's bin/ directory.
"""
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time

BIN = os.environ.get("PETREL_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def is_root():
    return os.geteuid() == 0


def ensure_users():
    """Create the system accounts as the package does (root only)."""
    subprocess.run(["sh", os.path.join(REPO, "scripts", "create-users.sh")], check=True)


def free_port(low=None, high=None):
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    if low is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in range(low, high):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in %d..%d" % (low, high))


class Instance:
    def __init__(self, services, params=None, run_as=None):
        """services: lines of services.conf; params: extra petrel.conf lines;
        run_as: a user name to run the whole instance as (root only)."""
        self.top = tempfile.mkdtemp(prefix="petrel-it-")
        os.chmod(self.top, 0o755)
        self.conf = os.path.join(self.top, "etc")
        self.queue = os.path.join(self.top, "queue")
        self.libexec = os.path.join(self.top, "libexec")
        self.log = os.path.join(self.top, "mail.log")
        self.run_as = run_as
        os.mkdir(self.conf)
        shutil.copytree(BIN, self.libexec, ignore=shutil.ignore_patterns("test_*"))
        for root, dirs, files in os.walk(self.libexec):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o755)
        lines = [
            "# written by tests/integration/petrel_instance.py",
            "config_version = 1",
            "config_directory = " + self.conf,
            "queue_directory = " + self.queue,
            "daemon_directory = " + self.libexec,
            "log_destination = " + self.log,
            "master_stop_timeout = 5s",
            # hermetic: no reverse DNS of test clients through the machine's
            # resolver (test_smtpd_rdns.py turns it on with its own dnsmasq)
            "smtpd_peername_lookup = no",
        ]
        if not is_root() or run_as:
            owner = run_as or pwd.getpwuid(os.geteuid()).pw_name
            lines.append("mail_owner = " + owner)
        lines += list(params or [])
        self.write_conf(lines)
        self.write_services(services)
        if run_as:
            pw = pwd.getpwnam(run_as)
            for root, dirs, files in os.walk(self.top):
                for n in dirs + files:
                    os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
            os.lchown(self.top, pw.pw_uid, pw.pw_gid)
            open(self.log, "a").close()
            os.lchown(self.log, pw.pw_uid, pw.pw_gid)

    def write_conf(self, lines):
        with open(os.path.join(self.conf, "petrel.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self._fix_owner(os.path.join(self.conf, "petrel.conf"))

    def append_conf(self, line):
        with open(os.path.join(self.conf, "petrel.conf"), "a") as f:
            f.write(line + "\n")

    def write_file(self, name, text):
        """A file in the configuration directory (tables, aliases)."""
        path = os.path.join(self.conf, name)
        with open(path, "w") as f:
            f.write(text)
        self._fix_owner(path)
        return path

    def write_services(self, lines):
        with open(os.path.join(self.conf, "services.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self._fix_owner(os.path.join(self.conf, "services.conf"))

    def _fix_owner(self, path):
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.lchown(path, pw.pw_uid, pw.pw_gid)

    def _prefix(self):
        if not self.run_as:
            return []
        pw = pwd.getpwnam(self.run_as)
        return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--clear-groups", "--"]

    def petrel(self, *args, check=True, timeout=60):
        cmd = self._prefix() + [os.path.join(self.libexec, "petrel"), "-c", self.conf] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("petrel %s failed (%d):\n%s%s\n--- log:\n%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr, self.read_log()))
        return r

    def master(self, *args, timeout=30):
        cmd = self._prefix() + [os.path.join(self.libexec, "master"), "-c", self.conf] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start(self):
        self.petrel("start")

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def stop(self):
        return self.petrel("stop", check=False)

    def status(self):
        """petrel status as a dict: service name -> row fields."""
        r = self.petrel("status")
        rows = {}
        for line in r.stdout.splitlines()[2:]:
            f = line.split()
            rows[f[0]] = dict(type=f[1], procs=int(f[2]), idle=int(f[3]), limit=int(f[4]),
                              started=int(f[5]), state=f[6], listen=f[7])
        return rows

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.read_log())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError("log never matched %r; log:\n%s" % (pattern, self.read_log()))

    def cleanup(self):
        pid = self.master_pid()
        if pid and self.petrel("stop", check=False).returncode != 0:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        shutil.rmtree(self.top, ignore_errors=True)


def pid_alive(pid):
    """True while pid runs; a zombie (exited, not yet reaped by its parent,
    which for a detached master is init) counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def proc_ids(pid):
    """(real uid, real gid, groups) of a process, from /proc."""
    uid = gid = None
    groups = []
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:]]
            elif line.startswith("Gid:"):
                gid = [int(x) for x in line.split()[1:]]
            elif line.startswith("Groups:"):
                groups = [int(x) for x in line.split()[1:]]
    return uid, gid, groups


class Client:
    """A line client for the echo test service."""

    def __init__(self, port, host="127.0.0.1", timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rwb")
        self.greeting = self.readline()
        m = re.search(r"pid=(\d+) uid=(\d+) gid=(\d+)", self.greeting)
        self.pid, self.uid, self.gid = (int(x) for x in m.groups()) if m else (0, 0, 0)

    def readline(self):
        return self.file.readline().decode(errors="replace").rstrip("\r\n")

    def cmd(self, line):
        self.file.write(line.encode() + b"\n")
        self.file.flush()
        return self.readline()

    def close(self):
        try:
            self.cmd("QUIT")
        except OSError:
            pass
        self.sock.close()
