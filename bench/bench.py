#!/usr/bin/env python3
"""Petrel against Postfix, side by side, in one run on this machine.

Two isolated instances (nothing of the system's own mail setup is used or
touched): Postfix with its own config and queue under /var/tmp/petrel-bench
on 127.0.0.1:2525, Petrel likewise on 127.0.0.1:2526. Both deliver into the
Maildir of one benchmark user and both fsync a message before answering 250
(their defaults). Loads, alternating between the two, each repeated:

  1. SMTP accept rate with Postfix's smtp-source (one message per
     connection, its default): 1 and 20 sessions, 1 KB and 100 KB messages;
  2. delivery rate: from the first connection until every message is in the
     Maildir and the queue is empty (measured in the same runs);
  3. local submission: N sendmail invocations in a row, until delivered;
  4. memory: summed RSS of each suite's processes when idle and at the peak
     of load 1.

Also the disk's fsync rate (the ceiling for durable acceptance). Prints the
median of the repetitions for each figure, Petrel/Postfix ratios, and writes
bench/results/<timestamp>.csv and .json. Bounded in count and time.
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ROOT = "/var/tmp/petrel-bench"
USER = "petrelbench"
DOMAIN = "bench.test"
RCPT = "%s@%s" % (USER, DOMAIN)
SENDER = "load@source.test"
PF_PORT, PT_PORT = 2525, 2526
TIME_LIMIT = 600  # seconds for any single wait
BIN = os.path.join(REPO, "build", "bin")  # Petrel's binaries; --bin changes it


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def ensure_user():
    home = os.path.join(ROOT, "home", USER)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        os.makedirs(os.path.dirname(home), exist_ok=True)
        run(["useradd", "--home-dir", home, "--create-home", "--shell", "/usr/sbin/nologin", USER])
    os.makedirs(home, exist_ok=True)
    pw = pwd.getpwnam(USER)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(os.path.join(ROOT, "home"), 0o755)
    return os.path.join(home, "Maildir", "new")


def count_files(top):
    n = 0
    for _, _, files in os.walk(top):
        n += sum(1 for f in files if not f.startswith("."))
    return n


def proc_tree_rss(root_pid):
    """Summed RSS (kB) of root_pid and all its descendants."""
    children, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            with open("/proc/%s/status" % d) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss[int(d)] = int(line.split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


class Postfix:
    name = "Postfix"
    port = PF_PORT

    def __init__(self):
        self.etc = os.path.join(ROOT, "postfix-etc")
        self.spool = os.path.join(ROOT, "postfix-spool")
        self.data = os.path.join(ROOT, "postfix-data")

    def setup(self):
        self.stop(quiet=True)
        for d in (self.etc, self.spool, self.data):
            shutil.rmtree(d, ignore_errors=True)
        shutil.copytree("/etc/postfix", self.etc)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join([
                "compatibility_level = 3.6",
                "queue_directory = " + self.spool,
                "data_directory = " + self.data,
                "inet_interfaces = 127.0.0.1", "inet_protocols = ipv4",
                "myhostname = mx." + DOMAIN, "mydomain = " + DOMAIN,
                "mydestination = " + DOMAIN, "mynetworks = 127.0.0.0/8",
                "home_mailbox = Maildir/", "alias_maps =", "alias_database =",
                "maillog_file = " + os.path.join(ROOT, "postfix.log"),
                "biff = no", "append_dot_mydomain = no", ""]))
        master = []
        for line in open("/etc/postfix/master.cf"):
            if line.startswith("smtp ") and " inet " in line:
                line = "127.0.0.1:%d inet n - n - - smtpd\n" % PF_PORT
            master.append(line)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.writelines(master)
        os.makedirs(self.spool, 0o755)
        os.makedirs(self.data, 0o700)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        run(["postfix", "-c", self.etc, "check"])

    def start(self):
        run(["postfix", "-c", self.etc, "start"])
        time.sleep(1)

    def stop(self, quiet=False):
        r = subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, text=True)
        if r.returncode != 0 and not quiet:
            print("postfix stop: " + r.stderr, file=sys.stderr)
        time.sleep(0.5)

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def queued(self):
        return sum(count_files(os.path.join(self.spool, d))
                   for d in ("maildrop", "incoming", "active", "deferred"))

    def sendmail(self):
        return ["/usr/sbin/sendmail", "-C", self.etc, "-i", RCPT]


class Petrel:
    name = "Petrel"
    port = PT_PORT

    def __init__(self):
        self.top = os.path.join(ROOT, "petrel")
        self.conf = os.path.join(self.top, "etc")
        self.queue = os.path.join(self.top, "queue")
        self.libexec = os.path.join(self.top, "libexec")

    def setup(self):
        self.stop(quiet=True)
        shutil.rmtree(self.top, ignore_errors=True)
        os.makedirs(self.conf)
        shutil.copytree(BIN, self.libexec,
                        ignore=shutil.ignore_patterns("test_*"))
        for d in (self.top, self.conf, self.libexec):
            os.chmod(d, 0o755)
        with open(os.path.join(self.conf, "petrel.conf"), "w") as f:
            f.write("\n".join([
                "config_version = 1", "queue_directory = " + self.queue,
                "daemon_directory = " + self.libexec,
                "log_destination = " + os.path.join(ROOT, "petrel.log"),
                "myhostname = mx." + DOMAIN, "myorigin = " + DOMAIN,
                "mydestination = " + DOMAIN, "mynetworks = 127.0.0.0/8",
                "home_mailbox = Maildir/", "alias_maps =", "alias_database =", ""]))
        with open(os.path.join(self.conf, "services.conf"), "w") as f:
            f.write("smtp accept 127.0.0.1:%d - - 100 smtpd\n" % PT_PORT +
                    "pickup daemon unix:public/pickup - - 1 pickup\n"
                    "qmgr daemon unix:public/qmgr - - 1 qmgr\n"
                    "local accept unix:private/local root - 20 local-delivery\n")
        subprocess.run(["sh", os.path.join(REPO, "scripts", "create-users.sh")], check=True)

    def petrel(self, *args):
        return subprocess.run([os.path.join(self.libexec, "petrel"), "-c", self.conf] + list(args),
                              capture_output=True, text=True)

    def start(self):
        r = self.petrel("start")
        if r.returncode != 0:
            raise RuntimeError("petrel start: " + r.stderr)
        time.sleep(1)

    def stop(self, quiet=False):
        if os.path.exists(os.path.join(self.libexec, "petrel")):
            r = self.petrel("stop")
            if r.returncode != 0 and not quiet:
                print("petrel stop: " + r.stderr, file=sys.stderr)

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def queued(self):
        return sum(count_files(os.path.join(self.queue, d))
                   for d in ("maildrop", "incoming", "active", "deferred"))

    def sendmail(self):
        return [os.path.join(self.libexec, "sendmail"), "-C", self.conf, "-i", RCPT]


def clear_maildir(new):
    for d in (new, os.path.join(os.path.dirname(new), "cur")):
        if os.path.isdir(d):
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))


def wait_delivered(srv, new, count, t0):
    deadline = time.time() + TIME_LIMIT
    while time.time() < deadline:
        n = len(os.listdir(new)) if os.path.isdir(new) else 0
        if n >= count and srv.queued() == 0:
            return time.time() - t0
        time.sleep(0.05)
    raise RuntimeError("%s: only %d of %d delivered in %d s" % (
        srv.name, len(os.listdir(new)) if os.path.isdir(new) else 0, count, TIME_LIMIT))


def smtp_load(srv, new, sessions, count, size):
    """Returns (accept seconds, delivery seconds, peak RSS kB)."""
    clear_maildir(new)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc_tree_rss(srv.master_pid()))
            time.sleep(0.1)

    th = threading.Thread(target=sample)
    th.start()
    t0 = time.time()
    r = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(size),
                        "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % srv.port],
                       capture_output=True, text=True, timeout=TIME_LIMIT)
    accepted = time.time() - t0
    if r.returncode != 0:
        stop.set()
        th.join()
        raise RuntimeError("%s: smtp-source failed: %s" % (srv.name, r.stderr.strip()[-300:]))
    delivered = wait_delivered(srv, new, count, t0)
    stop.set()
    th.join()
    return accepted, delivered, peak[0]


def sendmail_load(srv, new, count):
    clear_maildir(new)
    t0 = time.time()
    body = b"Subject: local submission\n\nx\n"
    for _ in range(count):
        subprocess.run(srv.sendmail(), input=body, check=True, capture_output=True, timeout=60)
    submitted = time.time() - t0
    delivered = wait_delivered(srv, new, count, t0)
    return submitted, delivered


def fsync_rate(seconds=2.0):
    path = os.path.join(ROOT, "fsync-test")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        n += 1
    os.close(fd)
    os.unlink(path)
    return n / (time.time() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller counts, one repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--bin", help="Petrel's binaries (default: build/bin)")
    ap.add_argument("--load", action="append", metavar="SESSIONSxCOUNTxKB",
                    help="run only this SMTP load, e.g. 20x5000x1 (repeatable); "
                         "skips the sendmail load unless --sendmail")
    ap.add_argument("--sendmail", action="store_true",
                    help="with --load: run the sendmail load as well")
    args = ap.parse_args()
    global BIN
    if args.bin:
        BIN = os.path.abspath(args.bin)
    reps = 1 if args.quick else args.reps
    small = 500 if args.quick else 5000
    big = 100 if args.quick else 1000
    nsend = 100 if args.quick else 1000
    os.makedirs(ROOT, exist_ok=True)
    os.chmod(ROOT, 0o755)
    new = ensure_user()
    servers = [Postfix(), Petrel()]
    for s in servers:
        s.setup()
    results = {s.name: {} for s in servers}

    def record(server, key, value):
        results[server][key] = results[server].get(key, []) + [value]

    try:
        for s in servers:
            s.start()
        time.sleep(2)
        for s in servers:
            record(s.name, "idle RSS (MB)", proc_tree_rss(s.master_pid()) / 1024)
        loads = [(1, small, 1024), (20, small, 1024), (1, big, 102400), (20, big, 102400)]
        if args.load:
            loads = []
            for spec in args.load:
                try:
                    sessions, count, kb = (int(x) for x in spec.lower().split("x"))
                except ValueError:
                    ap.error("--load wants SESSIONSxCOUNTxKB, e.g. 20x5000x1")
                loads.append((sessions, count, kb * 1024))
        for rep in range(reps):
            for sessions, count, size in loads:
                for s in servers:  # alternate between the two
                    acc, dlv, peak = smtp_load(s, new, sessions, count, size)
                    label = "%d x %d KB, %d session%s" % (count, size // 1024, sessions,
                                                          "s" if sessions > 1 else "")
                    record(s.name, "accept msg/s: " + label, count / acc)
                    record(s.name, "deliver msg/s: " + label, count / dlv)
                    record(s.name, "peak RSS (MB): " + label, peak / 1024)
                    print("  %-8s %-32s accept %7.1f/s  deliver %7.1f/s  peak %6.1f MB" % (
                        s.name, label, count / acc, count / dlv, peak / 1024), flush=True)
            for s in (servers if not args.load or args.sendmail else []):
                sub, dlv = sendmail_load(s, new, nsend)
                record(s.name, "sendmail calls/s (%d)" % nsend, nsend / sub)
                record(s.name, "sendmail delivered msg/s (%d)" % nsend, nsend / dlv)
                print("  %-8s %d sendmail calls: %.1f/s, delivered %.1f/s" % (
                    s.name, nsend, nsend / sub, nsend / dlv), flush=True)
        disk = fsync_rate()
    finally:
        for s in servers:
            s.stop(quiet=True)

    keys = list(results["Postfix"].keys())
    rows = []
    print("\nPetrel vs Postfix on this machine (median of %d; fsync rate of the disk: %.0f/s)"
          % (reps, disk))
    print("%-48s %10s %10s %8s" % ("figure", "Postfix", "Petrel", "ratio"))
    for k in keys:
        pf = statistics.median(results["Postfix"][k])
        pt = statistics.median(results["Petrel"][k])
        ratio = pt / pf if pf else float("nan")
        rows.append({"figure": k, "postfix": round(pf, 2), "petrel": round(pt, 2),
                     "ratio": round(ratio, 3)})
        print("%-48s %10.1f %10.1f %7.2fx" % (k, pf, pt, ratio))
    out = os.path.join(REPO, "bench", "results")
    os.makedirs(out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(out, stamp + ".json"), "w") as f:
        json.dump({"when": stamp, "reps": reps, "fsync_per_s": round(disk, 1), "rows": rows}, f,
                  indent=1)
    with open(os.path.join(out, stamp + ".csv"), "w") as f:
        f.write("figure,postfix,petrel,ratio\n")
        for r in rows:
            f.write('"%s",%s,%s,%s\n' % (r["figure"], r["postfix"], r["petrel"], r["ratio"]))
    print("\nwritten: bench/results/%s.csv and .json" % stamp)


if __name__ == "__main__":
    main()
