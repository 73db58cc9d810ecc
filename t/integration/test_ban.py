#!/usr/bin/python3
"""Bans through nftables (issue #12 item 7, portcullis.yaml(5) "ban"): a
client refused `after` times within `within` (403, 429, a wrong password,
closed at admission) is added by the master to the operator's nftables set
with a timeout, so that the kernel drops it; it expires by itself.

The test runs as root in a network namespace it makes (ip netns), where it
creates the table, the sets and the rule that drops their members, as an
operator would; the host's firewall is never touched.  The outer process
makes the namespace and runs this file again inside it ("inner"), so that
every client, server and portcullis below live in it.  Without root or
without `ip netns`/`nft` the test is skipped with the reason.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness as h
import opslib as ops
from test_access_control import SrcConn, req, silent_close

BAD = "127.0.0.5"      # refused by a route deny
GOOD = "127.0.0.6"
GREEDY = "127.0.0.7"   # over a rate limit
GUESSER = "127.0.0.8"  # wrong passwords
NOAUTH = "127.0.0.10"  # no credentials at all: challenged, never banned
TCPBAD = "127.0.0.11"  # closed at admission on a tcp listener
TRUSTED = "127.0.0.9"  # a trusted proxy speaking for a denied client

RULESET = """
table inet portcullis {
    set banned { type ipv4_addr; flags timeout; }
    set banned6 { type ipv6_addr; flags timeout; }
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr @banned drop
        ip6 saddr @banned6 drop
    }
}
"""


def nft(*args):
    return subprocess.run(["nft"] + list(args), capture_output=True, text=True)


def banned(set_name="banned"):
    """The elements of set_name, as text ("" when empty)."""
    r = nft("list", "set", "inet", "portcullis", set_name)
    assert r.returncode == 0, r.stderr
    return r.stdout


def dropped(port, src, host="127.0.0.1"):
    """True when a connect from src gets no answer at all (SYN dropped)."""
    try:
        c = SrcConn(port, src, host, timeout=1.0)
    except socket.timeout:
        return True
    except OSError:
        return False
    c.close()
    return False


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class BanTest(unittest.TestCase):
    """One portcullis (2 workers) with ban: {after: 3, within: 60s, for: 4s}
    in front of one backend: a route /admin that denies BAD, a route
    /limited at 1 request/s, a route /private with basic auth, a tcp
    listener that denies TCPBAD at admission, and a v6 listener."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        r = subprocess.run(["nft", "-f", "-"], input=RULESET, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        pw = subprocess.run(["htpasswd", "-nbB", "alice", "wonder"],
                            capture_output=True, text=True, check=True).stdout
        users = os.path.join(cls.tmp, "htpasswd")
        with open(users, "w") as f:
            f.write(pw)
        cls.port = h.free_port()
        cls.tcp_port = h.free_port()
        cls.v6_port = h.free_port(ipv6=True)
        cls.admin_port = h.free_port()
        web = "127.0.0.1:%d" % cls.port
        routes = [
            {"path_prefix": "/admin", "backend": "app",
             "deny": [BAD, "127.0.1.0/24", "2001:db8::/32"]},
            {"path_prefix": "/limited", "backend": "app",
             "rate_limit": {"requests_per_second": 1, "burst": 0}},
            {"path_prefix": "/private", "backend": "app",
             "auth": {"realm": "ops", "users_file": users}},
            {"path_prefix": "/", "backend": "app"},
        ]
        listeners = [
            {"name": "web", "bind": web, "trusted_proxies": [TRUSTED], "routes": routes},
            {"name": "v6", "bind": "[::1]:%d" % cls.v6_port,
             "routes": [{"path_prefix": "/admin", "backend": "app", "deny": ["::1"]},
                        {"path_prefix": "/", "backend": "app"}]},
            {"name": "raw", "protocol": "tcp", "bind": "127.0.0.1:%d" % cls.tcp_port,
             "deny": [TCPBAD], "backend": "app"},
        ]
        backends = {"app": h.backend_block(cls.web.address)}
        cls.cfg = h.base_config(
            cls.tmp, listeners, backends, workers=2,
            admin={"bind": "127.0.0.1:%d" % cls.admin_port},
            ban={"after": 3, "within": "60s", "for": "4s",
                 "nft_set": "inet portcullis banned",
                 "nft_set6": "inet portcullis banned6"})
        cls.pc = h.Portcullis(cls.cfg, tmp=cls.tmp)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def refuse(self, src, path, want, n=3, headers=()):
        for i in range(n):
            r = req(self.port, path, src=src, headers=headers, timeout=5)
            self.assertEqual(r.status, want, "refusal %d from %s" % (i + 1, src))

    def limited_429s(self, src, want, most=20):
        """Requests to /limited (1/s) from src until `want` 429s; how many."""
        got = 0
        for _ in range(most):
            if req(self.port, "/limited", src=src, timeout=5).status == 429:
                got += 1
                if got == want:
                    break
        return got

    # -- the ban itself ----------------------------------------------------

    def test_403s_ban_then_expire(self):
        """Three 403s within the window: the third puts BAD into the set
        with the configured timeout; the kernel drops BAD's connections
        while GOOD is served; after `for` the element is gone, BAD gets
        its 403 again, and is counted from zero (one refusal: no ban)."""
        self.assertNotIn(BAD, banned())
        self.refuse(BAD, "/admin", 403)
        self.assertTrue(wait_until(lambda: BAD in banned(), 3), banned())
        self.pc.wait_log(r"ban: client %s: added to inet portcullis banned for 4 s"
                         % BAD.replace(".", r"\."))
        self.assertRegex(banned(), r"%s timeout 4s" % BAD.replace(".", r"\."))
        self.assertTrue(dropped(self.port, BAD), "a banned client still connects")
        self.assertEqual(req(self.port, "/", src=GOOD).status, 200)
        self.assertEqual(req(self.port, "/admin", src=GOOD).status, 200)
        # the timeout is the kernel's: the element expires by itself
        self.assertTrue(wait_until(lambda: BAD not in banned(), 8), banned())
        self.assertEqual(req(self.port, "/admin", src=BAD).status, 403)
        time.sleep(0.3)
        self.assertNotIn(BAD, banned(), "banned again at the first refusal")
        self.assertFalse(dropped(self.port, BAD))

    def test_many_at_once(self):
        """40 clients refused at the same moment (threads): every one of
        them is banned (the master adds them in batches)."""
        srcs = ["127.0.1.%d" % i for i in range(1, 41)]

        def hammer(src):
            for _ in range(3):
                req(self.port, "/admin", src=src)

        threads = [threading.Thread(target=hammer, args=(src,)) for src in srcs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertTrue(wait_until(lambda: all(src in banned() for src in srcs), 5),
                        banned())

    def test_429s_ban(self):
        """Over a rate limit: 200, then 429s; the third 429 bans."""
        self.assertEqual(req(self.port, "/limited", src=GREEDY).status, 200)
        self.refuse(GREEDY, "/limited", 429)
        self.assertTrue(wait_until(lambda: GREEDY in banned(), 3), banned())
        rc, out, err = ops.ctl(self.pc, "status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"bans added=[1-9]\d* failed=0 set=inet portcullis banned")
        p = subprocess.run([h.binary(), "-c", self.pc.config_path, "status", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreaterEqual(json.loads(p.stdout)["bans"]["added"], 1)
        self.assertEqual(json.loads(p.stdout)["bans"]["failed"], 0)
        m = h.request(self.admin_port, path="/metrics")
        self.assertEqual(m.status, 200)
        self.assertRegex(m.body.decode(), r"(?m)^portcullis_bans_total [1-9]\d*$")
        self.assertRegex(m.body.decode(), r"(?m)^portcullis_ban_failures_total 0$")

    def test_wrong_passwords_ban_challenges_do_not(self):
        """A 401 without credentials is the normal challenge: never counted.
        Three wrong passwords are."""
        self.refuse(NOAUTH, "/private", 401, n=6)
        ok = req(self.port, "/private", src=NOAUTH,
                 headers=[("Authorization", "Basic YWxpY2U6d29uZGVy")])
        self.assertEqual(ok.status, 200)
        self.refuse(GUESSER, "/private", 401,
                    headers=[("Authorization", "Basic YWxpY2U6bm9wZQ==")])
        self.assertTrue(wait_until(lambda: GUESSER in banned(), 3), banned())
        time.sleep(0.3)
        self.assertNotIn(NOAUTH, banned())

    def test_admission_refusals_ban(self):
        """A tcp listener's deny closes at accept: those count too."""
        for _ in range(3):
            closed, data, _ = silent_close(self.tcp_port, TCPBAD)
            self.assertTrue(closed)
            self.assertEqual(data, b"")
        self.assertTrue(wait_until(lambda: TCPBAD in banned(), 3), banned())

    def test_trusted_proxy_never_banned(self):
        """403s for a client named by X-Forwarded-For: the proxy that
        carries it is not banned (everyone behind it would be cut off)."""
        for _ in range(5):
            r = req(self.port, "/admin", src=TRUSTED,
                    headers=[("X-Forwarded-For", "192.0.2.77")])
            self.assertEqual(r.status, 200)
            r = req(self.port, "/admin", src=TRUSTED,
                    headers=[("X-Forwarded-For", "2001:db8::7")])
            self.assertEqual(r.status, 403)
        time.sleep(0.3)
        self.assertNotIn(TRUSTED, banned())
        self.assertNotIn("2001:db8::7", banned("banned6"))
        self.assertEqual(req(self.port, "/", src=TRUSTED).status, 200)

    def test_ipv6_into_set6(self):
        """An IPv6 client goes into nft_set6."""
        for _ in range(3):
            self.assertEqual(req(self.v6_port, "/admin", host="::1").status, 403)
        self.assertTrue(wait_until(lambda: "::1" in banned("banned6"), 3),
                        banned("banned6"))
        nft("delete", "element", "inet", "portcullis", "banned6", "{ ::1 }")

    # -- the set must be usable ---------------------------------------------

    def test_missing_set_refused(self):
        """`-t` (as root) and a reload refuse a set that does not exist,
        with the ban: key's position; the running config keeps serving."""
        bad = dict(self.cfg)
        bad["ban"] = dict(self.cfg["ban"], nft_set="inet portcullis nosuchset")
        path = os.path.join(self.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write(h.to_yaml(bad))
        t = subprocess.run([h.binary(), "-t", "-c", path], capture_output=True, text=True)
        self.assertEqual(t.returncode, 1, t.stdout + t.stderr)
        self.assertRegex(t.stderr, r"bad\.yaml:\d+:\d+: ban: nft_set \"inet portcullis "
                                   r"nosuchset\": No such file or directory")
        # a reload reads the running config's file
        with open(self.pc.config_path) as f:
            good = f.read()
        try:
            with open(self.pc.config_path, "w") as f:
                f.write(h.to_yaml(bad))
            rc, out, err = ops.ctl(self.pc, "reload")
            self.assertEqual(rc, 1, out + err)
            self.assertIn("nft_set \"inet portcullis nosuchset\": No such file", out + err)
        finally:
            with open(self.pc.config_path, "w") as f:
                f.write(good)
        self.assertEqual(req(self.port, "/", src=GOOD).status, 200)

    # -- the set went away under a running master (last: it reloads the set)

    def test_zz_set_gone_is_counted_and_retried(self):
        """The operator deleted the table: the master logs why the client
        could not be added and counts it; once the table is back, the
        next `after` refusals ban."""
        who = "127.0.0.12"
        r = nft("delete", "table", "inet", "portcullis")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            self.assertEqual(self.limited_429s(who, 3), 3)
            self.pc.wait_log(r"ban: client 127\.0\.0\.12: adding it to inet portcullis "
                             r"banned: No such file or directory")
            m = h.request(self.admin_port, path="/metrics").body.decode()
            self.assertRegex(m, r"(?m)^portcullis_ban_failures_total [1-9]\d*$")
        finally:
            r = subprocess.run(["nft", "-f", "-"], input=RULESET, capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.limited_429s(who, 3), 3)
        self.assertTrue(wait_until(lambda: who in banned(), 3), banned())


def outer():
    if os.geteuid() != 0:
        print("SKIP: bans need root (a network namespace and nftables)")
        return 0
    for tool in ("ip", "nft"):
        if subprocess.run(["sh", "-c", "command -v " + tool],
                          capture_output=True).returncode != 0:
            print("SKIP: %s is not installed (nftables, iproute2)" % tool)
            return 0
    ns = "pcban%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: cannot make a network namespace: %s" % r.stderr.strip())
        return 0
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        env = dict(os.environ, PORTCULLIS_BAN_INNER="1")
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                               os.path.abspath(__file__)] + sys.argv[1:],
                              env=env).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    if os.environ.get("PORTCULLIS_BAN_INNER") == "1":
        h.main()
    else:
        sys.exit(outer())
