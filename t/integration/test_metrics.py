#!/usr/bin/python3
"""The admin endpoint and /metrics (issue #13; portcullis(8), ADMIN
ENDPOINT): promtool accepts the text, counters match what wrk sent through
2 workers, never go back across a reload or a worker's kill -9, admin.allow
refuses other sources, the endpoint is never on a proxied listener, and a
slow admin client does not hold the master up."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

import harness as h
import opslib as ops
from opslib import ctl, parse_wrk

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')

# each wrk thread has one connection and stops at its N-th answer: no
# request is in flight when wrk ends, so its total is exact
WRK_STOP_LUA = r"""
local n = 0
function response(status, headers, body)
  n = n + 1
  if n >= %d then wrk.thread:stop() end
end
"""


def parse(text):
    """{(name, labels): float} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def requests_total(samples, route="3"):
    """portcullis_requests_total of listener web and route, every class."""
    return sum(v for (n, l), v in samples.items()
               if n == "portcullis_requests_total" and 'route="%s"' % route in l)


class MetricsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.ngx = h.Nginx(cls.tmp)
        cls.addClassCleanup(cls.ngx.stop)
        cls.port = h.free_port()
        cls.admin_port = h.free_port()
        cls.pc = h.Portcullis(cls.config(), tmp=cls.tmp,
                              listen=[("127.0.0.1", cls.port),
                                      ("127.0.0.1", cls.admin_port)])
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    @classmethod
    def config(cls, **admin):
        # route 1 refuses everyone (403), route 2 allows 1 request a second
        # (429), route 3 takes the rest
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port,
                      "routes": [{"path_prefix": "/denied", "backend": "ngx",
                                  "deny": ["0.0.0.0/0"]},
                                 {"path_prefix": "/limited", "backend": "ngx",
                                  "rate_limit": {"requests_per_second": 1}},
                                 {"path_prefix": "/", "backend": "ngx"}]}]
        cfg = h.base_config(cls.tmp, listeners,
                            {"ngx": h.backend_block(cls.ngx.address)}, workers=2)
        cfg["admin"] = {"bind": "127.0.0.1:%d" % cls.admin_port}
        cfg["admin"].update(admin)
        return cfg

    def reload(self, cfg):
        self.pc.write_config(cfg)
        rc, out, err = ctl(self.pc, "reload")
        self.assertEqual(rc, 0, out + err)

    def scrape(self, path="/metrics"):
        r = h.curl("http://127.0.0.1:%d%s" % (self.admin_port, path), timeout=10)
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def get(self, n=1):
        for _ in range(n):
            r = h.request(self.port, path="/")
            self.assertEqual(r.status, 200)

    def test_promtool_accepts_the_text(self):
        """promtool check metrics (Debian prometheus) finds nothing wrong."""
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        self.get(3)
        text = self.scrape()
        p = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout + p.stderr, "")

    def test_content_type_and_families(self):
        """Text format 0.0.4, and the families portcullis(8) lists."""
        r = h.curl("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=10)
        self.assertIn("text/plain; version=0.0.4", r.header("Content-Type"))
        text = r.body.decode()
        for name in ("portcullis_build_info", "portcullis_generation",
                     "portcullis_reloads_total", "portcullis_worker_restarts_total",
                     "portcullis_requests_total", "portcullis_received_bytes_total",
                     "portcullis_sent_bytes_total", "portcullis_request_duration_seconds",
                     "portcullis_denied_total", "portcullis_rate_limited_total",
                     "portcullis_auth_failures_total", "portcullis_tls_handshakes_total",
                     "portcullis_client_connections", "portcullis_server_up",
                     "portcullis_server_draining", "portcullis_server_active_connections",
                     "portcullis_server_idle_connections", "portcullis_server_checks_total",
                     "portcullis_server_last_transition_timestamp_seconds",
                     "portcullis_server_connect_duration_seconds",
                     "portcullis_server_response_duration_seconds"):
            self.assertIn("# TYPE %s " % name, text)
        s = parse(text)
        self.assertEqual(s[("portcullis_build_info", 'version="%s"' % h.project_version())], 1)
        self.assertEqual(s[("portcullis_server_up",
                            'backend="ngx",server="%s"' % self.ngx.address)], 1)

    def test_sum_matches_wrk_through_two_workers(self):
        """wrk's total equals the growth of the summed counters (2 workers,
        2 connections, each stopping at its 2000th answer)."""
        script = os.path.join(self.tmp, "stop.lua")
        with open(script, "w") as f:
            f.write(WRK_STOP_LUA % 2000)
        before = parse(self.scrape())
        p = subprocess.run(["wrk", "-t2", "-c2", "-d20s", "-s", script,
                            "http://127.0.0.1:%d/" % self.port],
                           capture_output=True, text=True, timeout=60)
        res = parse_wrk(p.stdout)
        self.assertIsNotNone(res["requests"], p.stdout + p.stderr)
        self.assertEqual(res["non2xx3xx"], 0, p.stdout)
        after = parse(self.scrape())
        sent = requests_total(after) - requests_total(before)
        self.assertEqual(sent, res["requests"], p.stdout)
        key = ("portcullis_requests_total", 'listener="web",route="3",code="2xx"')
        self.assertEqual(after[key] - before[key], res["requests"])
        srv = ("portcullis_server_requests_total",
               'backend="ngx",server="%s"' % self.ngx.address)
        self.assertEqual(after[srv] - before[srv], res["requests"])
        hist = ("portcullis_request_duration_seconds_count",
                'listener="web",route="3"')
        self.assertEqual(after[hist] - before[hist], res["requests"])

    def test_counter_never_goes_back_across_reload_and_kill(self):
        """A reload (new workers) and a worker's kill -9 keep every count."""
        self.get(5)
        before = requests_total(parse(self.scrape()))
        self.assertGreaterEqual(before, 5)
        self.reload(self.config(allow=["127.0.0.0/8"]))
        after_reload = requests_total(parse(self.scrape()))
        self.assertEqual(after_reload, before)
        self.get(3)
        self.assertEqual(requests_total(parse(self.scrape())), before + 3)
        victim = self.pc.workers()[0]
        restarts = parse(self.scrape())[("portcullis_worker_restarts_total", "")]
        os.kill(victim, signal.SIGKILL)
        self.pc.wait_workers(2, exclude=(victim,))
        s = parse(self.scrape())
        self.assertEqual(requests_total(s), before + 3)
        self.assertEqual(s[("portcullis_worker_restarts_total", "")], restarts + 1)
        self.assertGreaterEqual(s[("portcullis_reloads_total", 'result="ok"')], 1)
        self.get(2)
        self.assertEqual(requests_total(parse(self.scrape())), before + 5)

    def test_allow_refuses_other_sources(self):
        """allow: [127.0.0.1/32]: a client from 127.0.0.2 is closed without an
        answer; 127.0.0.1 is served.  Reloaded back to the default (loopback)."""
        self.reload(self.config(allow=["127.0.0.1/32"]))
        try:
            r = h.curl("http://127.0.0.1:%d/metrics" % self.admin_port,
                       "--interface", "127.0.0.2", timeout=10)
            self.assertNotEqual(r.status, 200, r)
            self.assertNotIn(b"portcullis_", r.body)
            self.scrape()
            self.pc.wait_log(r"admin 127\.0\.0\.1:\d+: \d+ connection\(s\) refused: "
                             r"client not in admin\.allow")
        finally:
            self.reload(self.config())
        r = h.curl("http://127.0.0.1:%d/metrics" % self.admin_port,
                   "--interface", "127.0.0.2", timeout=10)
        self.assertEqual(r.status, 200)

    def test_status_json(self):
        """/status.json and `portcullis status --json`: version 1, the
        documented keys, and the counts /metrics has."""
        import json
        self.get(2)
        doc = json.loads(self.scrape("/status.json"))
        p = subprocess.run([h.binary(), "-c", self.pc.config_path, "status", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        cli = json.loads(p.stdout)
        metrics = parse(self.scrape())
        for d in (doc, cli):
            self.assertEqual(d["version"], 1)
            self.assertEqual(d["master"]["pid"], self.pc.pid)
            self.assertEqual(set(d), {"version", "master", "reloads", "worker_restarts", "bans",
                                      "generations", "listeners", "client_connections",
                                      "backends"})
            serving = [g for g in d["generations"] if g["role"] == "serving"]
            self.assertEqual(len(serving), 1)
            self.assertEqual(len(serving[0]["workers"]), 2)
            route = d["listeners"][0]["routes"][2]
            self.assertEqual((route["route"], route["backend"]), (3, "ngx"))
            srv = d["backends"][0]["servers"][0]
            self.assertEqual(srv["address"], self.ngx.address)
            self.assertEqual(srv["health"], "up")
            self.assertEqual(len(srv["last_300s"]["requests"]), 300)
        # the CLI's document was read before the last scrape: no request since
        self.assertEqual(cli["listeners"][0]["routes"][2]["requests"]["2xx"],
                         metrics[("portcullis_requests_total",
                                  'listener="web",route="3",code="2xx"')])
        p = subprocess.run([h.binary(), "-c", self.pc.config_path, "reload", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_refusals_by_reason(self):
        """403 by a route's deny, 429 by its rate limit, 400 before routing
        (route=""), each counted where it happened."""
        key = lambda n, l: (n, 'listener="web",%s' % l)
        before = parse(self.scrape())
        self.assertEqual(h.request(self.port, path="/denied").status, 403)
        codes = [h.request(self.port, path="/limited").status for _ in range(5)]
        self.assertIn(429, codes)
        r = h.request(self.port, path="/x", headers=[("Transfer-Encoding", "chunked"),
                                                     ("Content-Length", "3")], body=b"abc")
        after = parse(self.scrape())
        d = lambda k: after[k] - before[k]
        self.assertEqual(d(key("portcullis_denied_total", 'route="1",reason="route_acl"')), 1)
        self.assertEqual(d(key("portcullis_requests_total", 'route="1",code="4xx"')), 1)
        self.assertEqual(d(key("portcullis_rate_limited_total", 'route="2"')), codes.count(429))
        self.assertEqual(d(key("portcullis_requests_total", 'route="",code="4xx"')), 1, r)

    def test_not_on_a_proxied_listener(self):
        """/metrics on the proxied port goes to the backend like any path."""
        r = h.request(self.port, path="/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Backend"), "nginx")
        self.assertNotIn(b"portcullis_", r.body)

    def test_methods_paths_and_bad_heads(self):
        """GET and HEAD only (405 with Allow), 404 elsewhere, 431 for a head
        over 8 KiB; every answer closes."""
        base = "http://127.0.0.1:%d" % self.admin_port
        r = h.curl(base + "/metrics", "-X", "POST", timeout=10)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.assertEqual(h.curl(base + "/nope", timeout=10).status, 404)
        r = h.curl(base + "/metrics", "-I", timeout=10)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection"), "close")
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 431 "))

    def test_slow_clients_do_not_hold_the_master(self):
        """20 connections that never send a byte (more than the 16 served at
        once): each is dropped after 1 s, a scrape behind them is answered,
        and proxied traffic and the control socket go on meanwhile."""
        idle = [socket.create_connection(("127.0.0.1", self.admin_port), timeout=5)
                for _ in range(20)]
        try:
            t0 = time.monotonic()
            self.get(3)
            rc, out, err = ctl(self.pc, "status")
            self.assertEqual(rc, 0, err)
            # a master that waited on them would take 1 s each, 20 s in all
            self.assertLess(time.monotonic() - t0, 5.0)
            self.scrape()
            self.assertLess(time.monotonic() - t0, 8.0)
            idle[0].settimeout(3)
            self.assertEqual(idle[0].recv(10), b"")  # closed, no answer
        finally:
            for s in idle:
                s.close()


class MetricsUpgradeTest(unittest.TestCase):
    """The zone goes to the new master of a binary upgrade, with the counts."""

    def test_counts_survive_a_binary_upgrade(self):
        tmp = h.make_tmpdir()
        ngx = h.Nginx(tmp)
        self.addCleanup(ngx.stop)
        port, admin = h.free_port(), h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port,
                      "routes": [{"path_prefix": "/", "backend": "ngx"}]}]
        cfg = h.base_config(tmp, listeners, {"ngx": h.backend_block(ngx.address)},
                            workers=2, admin={"bind": "127.0.0.1:%d" % admin})
        pc = h.Portcullis(cfg, tmp=tmp, listen=[("127.0.0.1", port), ("127.0.0.1", admin)])
        pc.start()
        self.addCleanup(pc.stop)
        self.assertIsNotNone(pc.wait_log(r"generation 1 serving", 15))
        for _ in range(10):
            self.assertEqual(h.request(port).status, 200)
        url = "http://127.0.0.1:%d/metrics" % admin
        self.assertEqual(requests_total(parse(h.curl(url, timeout=10).body.decode()), "1"), 10)
        old = pc.pid
        rc, out, err = ctl(pc, "upgrade")
        self.assertEqual(rc, 0, out + err)
        new = ops.read_pid(os.path.join(tmp, "pc.pid"), 5)
        self.assertNotEqual(new, old)
        ops.adopt_master(new)
        self.addCleanup(ops.stop_master, new)
        # the socket went along: answered while both masters run, and after
        r = h.curl(url, timeout=5)
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(requests_total(parse(r.body.decode()), "1"), 10)
        self.assertEqual(pc.wait_exit(15), 0)
        r = h.curl(url, timeout=5)
        self.assertEqual(r.status, 200)
        self.assertNotIn("Address already in use", pc.error_log())
        s = parse(r.body.decode())
        self.assertEqual(requests_total(s, "1"), 10)
        self.assertEqual(s[("portcullis_generation", "")], 1)
        for _ in range(3):
            self.assertEqual(h.request(port).status, 200)
        self.assertEqual(requests_total(parse(h.curl(url, timeout=10).body.decode()), "1"), 13)


class MetricsTlsTest(unittest.TestCase):
    """TLS handshakes, resumptions and failures, by listener."""

    def test_tls_counters(self):
        import ssl
        import tlscerts
        tmp = h.make_tmpdir()
        os.makedirs(os.path.join(tmp, "certs"))
        certs = tlscerts.make(os.path.join(tmp, "certs"))
        ngx = h.Nginx(tmp)
        self.addCleanup(ngx.stop)
        port, admin = h.free_port(), h.free_port()
        listeners = [{"name": "tls", "bind": "127.0.0.1:%d" % port,
                      "tls": {"certificates": [{"cert": certs.a_ecdsa,
                                                "key": certs.a_ecdsa_key}]},
                      "routes": [{"path_prefix": "/", "backend": "ngx"}]}]
        cfg = h.base_config(tmp, listeners, {"ngx": h.backend_block(ngx.address)},
                            workers=2, admin={"bind": "127.0.0.1:%d" % admin})
        pc = h.Portcullis(cfg, tmp=tmp, listen=[("127.0.0.1", port), ("127.0.0.1", admin)])
        pc.start()
        self.addCleanup(pc.stop)
        names = ("portcullis_tls_handshakes_total", "portcullis_tls_resumptions_total",
                 "portcullis_tls_handshake_failures_total",
                 "portcullis_connections_accepted_total")
        url = "http://127.0.0.1:%d/metrics" % admin

        def counts():
            m = parse(h.curl(url, timeout=10).body.decode())
            return [m[(n, 'listener="tls"')] for n in names]

        before = counts()  # the harness's port probe is one connection
        ctx = ssl.create_default_context(cafile=certs.ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the session at once
        sess = None
        for i in range(2):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname="a.example.test", session=sess) as s:
                s.sendall(h.build_request("GET", "/", close=True))
                while s.recv(65536):
                    pass
                self.assertEqual(s.session_reused, i == 1)
                sess = s.session
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # a record, not a ClientHello
            self.assertEqual(s.recv(100)[:1], b"\x15")  # an alert, then closed
        deadline = time.monotonic() + 5
        while True:
            got = [a - b for a, b in zip(counts(), before)]
            if got == [2, 1, 1, 3] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(got, [2, 1, 1, 3])


if __name__ == "__main__":
    unittest.main(verbosity=2)
