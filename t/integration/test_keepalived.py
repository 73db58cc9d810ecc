#!/usr/bin/python3
"""Two portcullis gateways behind a floating address (issue #16): keepalived
(VRRP) with config/examples/keepalived.conf, tracking `portcullis check`.

Everything lives in network namespaces this test makes and deletes (root
only; skipped with a reason where `ip netns`, keepalived or nft is missing):

    client 192.0.2.100 --+
    gw1    192.0.2.11  --+-- bridge br0 (in a namespace of its own)
    gw2    192.0.2.12  --+     floating address 192.0.2.10 on gw1 or gw2
    srv1   192.0.2.21  --+     (portcullis on both gateways binds it,
    srv2   192.0.2.22  --+      with ip_nonlocal_bind=1)

A client of our own in the client namespace loops over short requests to
192.0.2.10:8080 in four threads (two open a connection per request, two
keep theirs alive), each with a timeout, and logs when each request started
and ended, whether it succeeded and which gateway it came through: exact
counts and times, which wrk does not give.
Each case takes the serving gateway down while that runs, prints the time
until requests flow again through the standby and the failed requests, and
asserts: (a) kill -9 of the master, (b) `portcullis stop`, (c) the gateway's
link down: requests flow again through the standby within 3 s; the node
restored, the address stays where it is (nopreempt, as in the example) and
no request fails; (d) planned, the procedure of portcullis(8) HIGH
AVAILABILITY: new connections held (nft drops their SYN), `portcullis
reload` so that the requests in flight finish and keep-alive connections
close, keepalived stopped so that the address moves, then `portcullis
quit`: no request fails.

Run by hand (as root): PORTCULLIS_BIN=build/portcullis python3 test_keepalived.py"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

import harness as h
import opslib as ops

# ip, keepalived, nft and sysctl live in /usr/sbin, which a runner's PATH may lack
for _d in ("/usr/sbin", "/sbin"):
    if _d not in os.environ.get("PATH", "").split(":"):
        os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":" + _d

TAG = "pcka%d" % os.getpid()          # unique names: several runs may overlap
NS = {n: "%s-%s" % (TAG, n) for n in ("br", "cl", "gw1", "gw2", "s1", "s2")}
ADDR = {"cl": "192.0.2.100", "gw1": "192.0.2.11", "gw2": "192.0.2.12",
        "s1": "192.0.2.21", "s2": "192.0.2.22"}
VIP, PORT = "192.0.2.10", 8080
NODE_ID = {"gw1": "a", "gw2": "b"}   # keepalived -i: the example's @a / @b lines
EXAMPLE = os.path.join(h.SRC, "config", "examples", "keepalived.conf")
UNPLANNED_MAX_S = 3.0
# The planned failover's first step (README.keepalived): new connections to
# the floating address are dropped, not refused, so that clients send their
# SYN again (1 s later), by when the address has moved.
DRAIN_NFT = """table inet portcullis_drain {
	chain input {
		type filter hook input priority -10; policy accept;
		ip daddr %s tcp dport %d tcp flags & (syn | ack) == syn drop
	}
}
""" % (VIP, PORT)

# The client, run in the client namespace.  argv: out_file stop_file
# threads timeout.  Half the threads open a connection per request, half
# keep theirs alive (and open a new one when the server closes it, as HTTP
# clients do: after "Connection: close", or when it is found closed before
# a request is sent).  Each request is one line "start end ok gateway kind
# error" (monotonic seconds: the clock the test reads).
CLIENT = r"""
import json, select, socket, sys, threading, time, os
out, stop, nthreads, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
lock = threading.Lock()
f = open(out, "w", buffering=1)
REQ = b"GET /echo HTTP/1.1\r\nHost: vip\r\n%%s\r\n"

def read_response(s, t0):
    buf = b""
    while b"\r\n\r\n" not in buf or len(buf) < need(buf):
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        s.settimeout(left)
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed after %%d bytes" %% len(buf))
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("answer %%r" %% head[:40])
    peer = json.loads(body)["peer"]
    gw = peer[0] if isinstance(peer, list) else peer.rsplit(":", 1)[0]
    return gw, b"\r\nconnection: close" in head.lower()

def need(buf):
    head, _, _ = buf.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(head) + 4 + int(v)
    raise OSError("no content-length")

def connect(t0):
    s = socket.socket()
    s.settimeout(timeout)
    s.connect(("%(vip)s", %(port)d))
    return s

def usable(s):
    # an idle connection the server closed reads EOF at once
    return s is not None and not select.select([s], [], [], 0)[0]

def loop(keep):
    s = None
    while not os.path.exists(stop):
        t0 = time.monotonic()
        try:
            if not keep or not usable(s):
                if s is not None:
                    s.close()
                s = connect(t0)
            s.sendall(REQ %% (b"" if keep else b"Connection: close\r\n"))
            gw, closes = read_response(s, t0)
            r = (t0, time.monotonic(), 1, gw, "keep" if keep else "close", "-")
            if closes or not keep:
                s.close()
                s = None
        except (OSError, ValueError, KeyError) as e:
            r = (t0, time.monotonic(), 0, "-", "keep" if keep else "close",
                 type(e).__name__ + ":" + str(e).replace(" ", "_"))
            if s is not None:
                s.close()
            s = None
        with lock:
            f.write("%%.4f %%.4f %%d %%s %%s %%s\n" %% r)
        if not r[2]:
            time.sleep(0.05)

ts = [threading.Thread(target=loop, args=(i %% 2 == 1,)) for i in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
""" % {"vip": VIP, "port": PORT}


def run(*args, check=True, timeout=20):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


def nsx(ns, *args, **kw):
    return run("ip", "netns", "exec", NS[ns], *args, **kw)


def remove_stale():
    """Namespaces left by an earlier run that was killed (SIGKILL skips
    every finally): pcka<pid>-* whose pid is gone."""
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in p.stdout.splitlines():
        m = re.match(r"(pcka(\d+)-\w+)", line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            for pid in subprocess.run(["ip", "netns", "pids", m.group(1)], capture_output=True,
                                      text=True).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True)


def why_skip():
    if os.geteuid() != 0:
        return "needs root (ip netns, keepalived)"
    for tool, pkg in (("ip", "iproute2"), ("keepalived", "keepalived"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return "%s is not installed (apt-get install %s)" % (tool, pkg)
    probe = TAG + "-probe"
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        return "cannot make a network namespace: " + p.stderr.strip()
    p = subprocess.run(["ip", "-n", probe, "link", "add", "br0", "type", "bridge"],
                       capture_output=True, text=True)
    q = subprocess.run(["ip", "netns", "exec", probe, "true"], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if p.returncode != 0:
        return "cannot make a bridge in a network namespace: " + p.stderr.strip()
    if q.returncode != 0:
        return "cannot run a command in a network namespace: " + q.stderr.strip()
    return None


class Client:
    """CLIENT in the client namespace until stop()."""

    def __init__(self, tmp, name, threads=4, timeout=0.5):
        self.out = os.path.join(tmp, "client-%s.log" % name)
        self.stopfile = os.path.join(tmp, "client-%s.stop" % name)
        self.proc = h.spawn(["ip", "netns", "exec", NS["cl"], h.PYTHON, "-c", CLIENT,
                             self.out, self.stopfile, str(threads), str(timeout)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.timeout = timeout

    def wait_flowing(self, n=20, limit=10.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if sum(r[2] for r in self.records()) >= n:
                return
            time.sleep(0.05)
        raise AssertionError("the client gets no answer through %s: %r"
                             % (VIP, self.records()[-5:]))

    def records(self):
        try:
            with open(self.out) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            p = line.split(" ")
            if len(p) == 6:   # start end ok gateway kind error
                out.append((float(p[0]), float(p[1]), int(p[2]), p[3], p[5], p[4]))
        return out

    def stop(self):
        with open(self.stopfile, "w"):
            pass
        try:
            _, err = self.proc.communicate(timeout=self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode != 0:
            raise AssertionError("client failed: %s" % err)
        return self.records()


class Pair:
    """The namespaces, the servers, and portcullis + keepalived on each gateway."""

    def __init__(self):
        self.tmp = h.make_tmpdir("pc-ka-")
        self.pc = {}   # gw -> Popen of the master
        self.ka = {}   # gw -> Popen of keepalived
        self.servers = []

    # -- building -----------------------------------------------------------
    def build(self):
        for n in NS.values():
            run("ip", "netns", "add", n)
        run("ip", "-n", NS["br"], "link", "add", "br0", "type", "bridge",
            "mcast_snooping", "0")
        run("ip", "-n", NS["br"], "link", "set", "br0", "up")
        for node, addr in ADDR.items():
            # the bridge's end is named after the node; the node's is eth0
            run("ip", "-n", NS["br"], "link", "add", node, "type", "veth", "peer", "name",
                "eth0", "netns", NS[node])
            run("ip", "-n", NS["br"], "link", "set", node, "master", "br0", "up")
            run("ip", "-n", NS[node], "addr", "add", addr + "/24", "dev", "eth0")
            run("ip", "-n", NS[node], "link", "set", "eth0", "up")
            run("ip", "-n", NS[node], "link", "set", "lo", "up")
        for gw in ("gw1", "gw2"):
            # portcullis binds the floating address before it holds it
            nsx(gw, "sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1")
            os.makedirs(os.path.join(self.tmp, gw), mode=0o755)
            self.write_configs(gw)
        for s in ("s1", "s2"):
            p = h.spawn(["ip", "netns", "exec", NS[s], h.PYTHON,
                         os.path.join(h.HERE, "backend.py"), "--bind", ADDR[s], "--port",
                         "8000", "--name", s], stdout=subprocess.PIPE, text=True)
            line = h._readline_timeout(p.stdout, 15) or ""
            if not line.startswith("READY"):
                raise RuntimeError("backend %s did not start: %r" % (s, line))
            self.servers.append(p)

    def write_configs(self, gw):
        d = os.path.join(self.tmp, gw)
        cfg = h.base_config(
            d, [{"name": "web", "bind": "%s:%d" % (VIP, PORT),
                 "routes": [{"path_prefix": "/", "backend": "web"}]}],
            {"web": h.backend_block("%s:8000" % ADDR["s1"], "%s:8000" % ADDR["s2"])},
            workers=2)
        cfg["pid_file"] = os.path.join(d, "pc.pid")
        cfg["control_socket"] = os.path.join(d, "pc.sock")
        cfg["log"]["error"]["path"] = os.path.join(d, "error.log")
        with open(os.path.join(d, "portcullis.yaml"), "w") as f:
            f.write(h.to_yaml(cfg))
        with open(EXAMPLE) as f:
            ka = f.read()
        # the example, as shipped, but for where portcullis and its config are
        script = '"%s -c %s check"' % (h.binary(), os.path.join(d, "portcullis.yaml"))
        ka, n = re.subn(r'"/usr/sbin/portcullis check"', script, ka)
        assert n == 1, "the example's script line moved"
        with open(os.path.join(d, "keepalived.conf"), "w") as f:
            f.write(ka)

    # -- processes ----------------------------------------------------------
    def cfg(self, gw):
        return os.path.join(self.tmp, gw, "portcullis.yaml")

    def start_portcullis(self, gw):
        d = os.path.join(self.tmp, gw)
        err = open(os.path.join(d, "stderr.log"), "ab")
        self.pc[gw] = h.spawn(["ip", "netns", "exec", NS[gw], h.binary(), "-c", self.cfg(gw)],
                              stdout=err, stderr=err)
        err.close()
        deadline = time.monotonic() + 15
        while self.check(gw)[0] != 0:
            if time.monotonic() > deadline or self.pc[gw].poll() is not None:
                raise AssertionError("portcullis on %s does not start: %s" % (gw, self.log(gw)))
            time.sleep(0.1)

    def start_keepalived(self, gw):
        d = os.path.join(self.tmp, gw)
        log = open(os.path.join(d, "keepalived.log"), "ab")
        self.ka[gw] = h.spawn(
            ["ip", "netns", "exec", NS[gw], "keepalived", "-n", "-l", "-D", "-G", "-P",
             "-i", NODE_ID[gw], "-f", os.path.join(d, "keepalived.conf"),
             "-p", os.path.join(d, "keepalived.pid"), "-r", os.path.join(d, "vrrp.pid"),
             "-c", os.path.join(d, "checkers.pid"), "-b", os.path.join(d, "bfd.pid")],
            stdout=log, stderr=log)
        log.close()

    def stop_keepalived(self, gw):
        p = self.ka.pop(gw)
        p.send_signal(signal.SIGTERM)
        p.wait(10)

    def check(self, gw):
        p = nsx(gw, h.binary(), "-c", self.cfg(gw), "check", check=False)
        return p.returncode, p.stderr.strip()

    def ctl(self, gw, cmd, timeout=30):
        return nsx(gw, h.binary(), "-c", self.cfg(gw), cmd, check=False, timeout=timeout)

    def holder(self):
        """The gateway that holds the floating address, None, or 'both'."""
        have = [gw for gw in ("gw1", "gw2")
                if VIP + "/" in run("ip", "-n", NS[gw], "-4", "-o", "addr", "show", "dev",
                                    "eth0", check=False).stdout]
        return "both" if len(have) == 2 else (have[0] if have else None)

    def wait_holder(self, want=None, limit=15.0):
        """Wait until one gateway (want, if given) holds the address."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            gw = self.holder()
            if gw in (("gw1", "gw2") if want is None else (want,)):
                return gw
            time.sleep(0.05)
        raise AssertionError("address %s on %r, wanted %s\n%s" % (
            VIP, self.holder(), want or "one gateway", self.describe()))

    def wait_stable(self, hold=1.5, limit=15.0):
        """Wait until one gateway has held the address for hold seconds (three
        adverts: an election in progress has settled); that gateway."""
        deadline = time.monotonic() + limit
        gw, since = None, time.monotonic()
        while time.monotonic() < deadline:
            now = self.holder()
            if now != gw:
                gw, since = now, time.monotonic()
            elif gw in ("gw1", "gw2") and time.monotonic() - since >= hold:
                return gw
            time.sleep(0.05)
        raise AssertionError("address %s on %r, not settled\n%s"
                             % (VIP, self.holder(), self.describe()))

    def wait_ka_state(self, gw, state, seen=0, limit=10.0):
        """Wait until keepalived on gw logs that it enters state."""
        deadline = time.monotonic() + limit
        while "Entering %s STATE" % state not in self.ka_log(gw)[seen:]:
            if time.monotonic() > deadline:
                raise AssertionError("keepalived on %s not %s:\n%s"
                                     % (gw, state, self.ka_log(gw)[-2000:]))
            time.sleep(0.05)

    def log(self, gw):
        out = []
        for name in ("error.log", "stderr.log"):
            try:
                with open(os.path.join(self.tmp, gw, name), errors="replace") as f:
                    out.append("%s %s:\n%s" % (gw, name, f.read()[-3000:]))
            except OSError:
                pass
        return "\n".join(out)

    def ka_log(self, gw):
        try:
            with open(os.path.join(self.tmp, gw, "keepalived.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def describe(self):
        return "\n".join("%s\nkeepalived %s:\n%s" % (self.log(gw), gw, self.ka_log(gw)[-3000:])
                         for gw in ("gw1", "gw2"))

    def sanitizer_reports(self):
        found = []
        for gw in ("gw1", "gw2"):
            text = self.log(gw)
            if h.SANITIZER_RE.search(text):
                found.append(text)
        return found

    def heal(self):
        """Both gateways up: links, portcullis, keepalived, no drain rule."""
        for gw in ("gw1", "gw2"):
            run("ip", "-n", NS["br"], "link", "set", gw, "up")
            nsx(gw, "nft", "delete", "table", "inet", "portcullis_drain", check=False)
            if gw not in self.pc or self.pc[gw].poll() is not None:
                self.start_portcullis(gw)
            if gw not in self.ka or self.ka[gw].poll() is not None:
                self.start_keepalived(gw)

    # -- tearing down -------------------------------------------------------
    def teardown(self):
        for p in list(self.ka.values()) + list(self.pc.values()) + self.servers:
            if p.poll() is None:
                p.kill()
        for n in NS.values():
            pids = subprocess.run(["ip", "netns", "pids", n], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for p in list(self.ka.values()) + list(self.pc.values()) + self.servers:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for n in NS.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def summarize(records, t_fault, standby_addr):
    """(seconds until requests flowed through the standby, failed requests,
    the failures' kinds)."""
    after = [r for r in records if r[0] >= t_fault and r[2] and r[3] == standby_addr]
    resumed = min(r[1] for r in after) - t_fault if after else None
    failed = [r for r in records if not r[2]]
    kinds = {}
    for r in failed:
        k = r[4].split(":")[0]
        kinds[k] = kinds.get(k, 0) + 1
    return resumed, len(failed), kinds


SKIP = why_skip()


@unittest.skipIf(SKIP is not None, SKIP)
class KeepalivedTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        remove_stale()
        cls.pair = Pair()
        try:
            cls.pair.build()
            for gw in ("gw1", "gw2"):
                cls.pair.start_portcullis(gw)
            # gw1 first, so that the election is not a race
            cls.pair.start_keepalived("gw1")
            cls.pair.wait_holder("gw1")
            cls.pair.start_keepalived("gw2")
            cls.pair.wait_ka_state("gw2", "BACKUP")
        except BaseException:
            print(cls.pair.describe(), file=sys.stderr)
            cls.pair.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        problems = cls.pair.sanitizer_reports()
        cls.pair.teardown()
        if problems:
            raise AssertionError("sanitizer reports:\n" + "\n".join(problems))

    def setUp(self):
        # each case starts from a healthy pair with the address on one node,
        # whatever a failed case before it left behind
        self.pair.heal()
        self.active = self.pair.wait_stable()
        self.standby = "gw2" if self.active == "gw1" else "gw1"
        for gw in ("gw1", "gw2"):
            self.assertEqual(self.pair.check(gw), (0, ""), self.pair.describe())

    def client(self, name, timeout=0.5):
        c = Client(self.pair.tmp, name, timeout=timeout)
        self.addCleanup(lambda: c.proc.poll() is None and c.proc.kill())
        c.wait_flowing()
        return c

    def unplanned(self, name, fault, restore):
        """Take the active gateway down with fault() under the client's load,
        measure the failover; restore() it and check that nothing fails and
        the address stays on the standby."""
        c = self.client(name)
        time.sleep(0.5)
        t_fault = time.monotonic()
        fault()
        self.pair.wait_holder(self.standby, limit=10)
        # run on until requests have flowed through the standby for a while
        time.sleep(1.5)
        records = c.stop()
        resumed, failed, kinds = summarize(records, t_fault, ADDR[self.standby])
        print("\n%s: %s -> %s: requests flow again through %s %.2fs after the fault; "
              "%d of %d requests failed %r (client timeout %.1fs, 2 threads with a "
              "connection per request, 2 with keep-alive)"
              % (name, self.active, self.standby, self.standby,
                 resumed if resumed is not None else -1, failed, len(records), kinds,
                 c.timeout), file=sys.stderr)
        self.assertIsNotNone(resumed, "no request went through %s" % self.standby)
        self.assertLess(resumed, UNPLANNED_MAX_S, self.pair.describe())

        # restore the node under load: nopreempt keeps the address where it is
        c = self.client(name + "-restore", timeout=2.0)
        seen = len(self.pair.ka_log(self.active))
        seen_standby = len(self.pair.ka_log(self.standby))
        t_restore = time.monotonic()
        restore()
        self.assertEqual(self.pair.check(self.active), (0, ""))
        time.sleep(3.0)   # rise 2 at interval 1: the node is BACKUP again
        self.assertEqual(self.pair.holder(), self.standby)
        self.assertIn("Entering BACKUP STATE", self.pair.ka_log(self.active)[seen:],
                      self.pair.describe())
        records = c.stop()
        _, failed, kinds = summarize(records, 0, ADDR[self.standby])
        print("%s: %s restored, address stays on %s; %d of %d requests failed %r"
              % (name, self.active, self.standby, failed, len(records), kinds), file=sys.stderr)
        self.assertEqual(failed, 0, "%r\nfailed (start, duration, error) from the restore:\n%s"
                         "\nkeepalived %s:\n%s\nkeepalived %s:\n%s" % (
                             kinds, "\n".join("%.2f %.2f %s" % (r[0] - t_restore, r[1] - r[0], r[4])
                                              for r in records if not r[2]),
                             self.active, self.pair.ka_log(self.active)[seen:],
                             self.standby, self.pair.ka_log(self.standby)[seen_standby:]))
        self.assertTrue(all(r[3] == ADDR[self.standby] for r in records))

    def test_a_master_killed(self):
        """kill -9 of the active master (its workers die with it)."""
        gw = self.active

        def fault():
            self.pair.pc[gw].kill()

        def restore():
            self.pair.pc[gw].wait(5)
            self.pair.start_portcullis(gw)

        self.unplanned("kill -9", fault, restore)

    def test_b_portcullis_stop(self):
        """`portcullis stop` on the active node: the command as the CLI
        sends it, straight to the control socket, so that the time counts
        from the stop rather than from the start of a process (the socket
        is a file: no need to enter the namespace)."""
        gw = self.active

        def fault():
            answer = ops.ctl_raw(os.path.join(self.pair.tmp, gw, "pc.sock"), "stop")
            self.assertEqual(ops.verdict(answer), "OK stopped", answer)

        def restore():
            self.pair.pc[gw].wait(5)
            self.pair.start_portcullis(gw)

        self.unplanned("portcullis stop", fault, restore)

    def test_c_link_down(self):
        """The active node's link goes down (its cable, at the bridge)."""
        gw = self.active

        def fault():
            run("ip", "-n", NS["br"], "link", "set", gw, "down")

        def restore():
            run("ip", "-n", NS["br"], "link", "set", gw, "up")

        self.unplanned("link down", fault, restore)

    def connections(self, gw):
        """Client connections the gateway's generations hold, all told."""
        p = self.pair.ctl(gw, "status")
        counts = re.findall(r"^generation \d+ .*connections=(\d+)", p.stdout, re.M)
        self.assertTrue(counts, p.stdout + p.stderr)
        return sum(int(n) for n in counts)

    def test_d_planned(self):
        """Planned (portcullis(8), HIGH AVAILABILITY): hold new connections
        on the active node (nft drops their SYN: clients send it again a
        second later), `portcullis reload` so that the requests in flight
        finish and keep-alive connections close, wait for no connection,
        stop keepalived there so that the address moves, then `portcullis
        quit`: no request fails, keep-alive clients included."""
        gw = self.active
        c = self.client("planned", timeout=3.0)
        time.sleep(0.5)
        t0 = time.monotonic()
        p = subprocess.run(["ip", "netns", "exec", NS[gw], "nft", "-f", "-"],
                           input=DRAIN_NFT, capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.pair.ctl(gw, "reload")
        self.assertEqual(p.returncode, 0, p.stderr)
        deadline = time.monotonic() + 10
        while self.connections(gw) != 0:
            self.assertLess(time.monotonic(), deadline, "the connections do not drain")
            time.sleep(0.05)
        drained = time.monotonic() - t0
        self.pair.stop_keepalived(gw)
        self.pair.wait_holder(self.standby, limit=10)
        moved = time.monotonic() - t0
        p = self.pair.ctl(gw, "quit")
        self.assertEqual(p.returncode, 0, p.stderr)
        nsx(gw, "nft", "delete", "table", "inet", "portcullis_drain")
        time.sleep(1.0)
        records = c.stop()
        resumed, failed, kinds = summarize(records, t0, ADDR[self.standby])
        slowest = max((r[1] - r[0] for r in records if r[0] >= t0), default=0)
        print("\nplanned: %s drained %.2fs after new connections were held, address on %s "
              "after %.2fs, requests through it after %.2fs (slowest request %.2fs); "
              "%d of %d requests failed %r (client timeout %.1fs, 2 threads with a "
              "connection per request, 2 with keep-alive)"
              % (gw, drained, self.standby, moved, resumed if resumed is not None else -1,
                 slowest, failed, len(records), kinds, c.timeout), file=sys.stderr)
        self.assertEqual(failed, 0, kinds)
        # put the node back: portcullis first, then keepalived (BACKUP)
        self.pair.pc[gw].wait(10)
        self.pair.start_portcullis(gw)
        seen = len(self.pair.ka_log(gw))
        self.pair.start_keepalived(gw)
        self.pair.wait_ka_state(gw, "BACKUP", seen)
        self.assertEqual(self.pair.holder(), self.standby)

if __name__ == "__main__":
    h.main()
