"""Network namespaces for the cross-host integration tests (test_two_domains,
test_postfix_interop): one namespace per host, each with an eth0 on a private
/24, joined by a bridge in a "hub" namespace, and a dnsmasq authoritative for
the test's domains in the "dns" namespace. Root only. Nothing here leaves the
test's own namespaces; the caller removes them (delete_namespaces) and stops
dnsmasq (the Popen returned by start_dnsmasq)."""
import os
import shutil
import subprocess
import time

from petrel_instance import is_root


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def have_netns():
    """True when this process may create namespaces and dnsmasq is there."""
    if not is_root() or shutil.which("ip") is None or shutil.which("dnsmasq") is None:
        return False
    probe = "ptd-probe-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return r.returncode == 0


def make_network(ns, hosts, net):
    """ns: host -> namespace name, with a "hub" entry; hosts: host -> last
    octet; net: the first three octets with a trailing dot ("10.77.0.")."""
    hub = ns["hub"]
    sh("ip", "netns", "add", hub)
    sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", hub, "link", "set", "br0", "up")
    for host, last in hosts.items():
        name = ns[host]
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "p-" + host,
           "netns", hub)
        sh("ip", "-n", name, "addr", "add", net + "%d/24" % last, "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", hub, "link", "set", "p-" + host, "master", "br0")
        sh("ip", "-n", hub, "link", "set", "p-" + host, "up")


def start_dnsmasq(namespace, addr, records):
    """dnsmasq in the foreground inside namespace, listening on addr,
    answering only from records (--mx-host=..., --host-record=...) for .org.
    Returns the Popen; the caller checks that it still runs (poll() is None)."""
    p = subprocess.Popen(
        ["ip", "netns", "exec", namespace, "dnsmasq", "--no-daemon",
         "--listen-address=" + addr, "--bind-interfaces", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", "--local=/org/", "--pid-file=", "--user=root"] + records,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def delete_namespaces(ns):
    for name in ns.values():
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
