#!/usr/bin/python3
"""Health checking (issue #4): active tcp and http checks and what they log,
one check per server per interval whatever the number of workers, failover
under a steady load, passive checks, and health state that survives a
reload and a worker crash.

Every backend is backend.py (nginx where a server must answer 200 on any
path).  What a server received is asked from it directly (/__requests);
health checks are told apart by their User-Agent.  Error-log lines are
timestamped by a thread that tails the log (the log's own timestamps have
a resolution of one second).
"""

import collections
import os
import re
import signal
import threading
import time
import unittest

import harness as h

HC_UA = "portcullis-health-check"


# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------

def backend_cfg(*servers, **extra):
    """h.backend_block with keepalive 0 (see test_balance.py: backend.py and
    delayed ACKs) and passive checks off unless given."""
    extra.setdefault("keepalive", 0)
    extra.setdefault("passive", {"max_fails": 0})
    return h.backend_block(*servers, **extra)


def cleanup(tc, fn):
    (tc.addClassCleanup if isinstance(tc, type) else tc.addCleanup)(fn)


def start_backend(tc, name, port=0):
    deadline = time.monotonic() + 10
    while True:
        try:
            b = h.Backend(name, port=port)
            break
        except RuntimeError:
            if not port or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    cleanup(tc, b.stop)
    return b


def kill_backend(b):
    b.proc.kill()
    b.proc.wait(10)


def start_proxy(tc, backends, workers=2):
    """(Portcullis, port, config); backend NAME answers Host: NAME.test."""
    tmp = h.make_tmpdir()
    port = h.free_port()
    routes = [{"host": ["%s.test" % n], "backend": n} for n in backends]
    listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port, "routes": routes}]
    cfg = h.base_config(tmp, listeners, backends, workers=workers)
    pc = h.Portcullis(cfg, tmp=tmp)
    pc.start()
    cleanup(tc, pc.stop)
    return pc, port, cfg


def get(port, backend, path="/", timeout=10.0):
    return h.request(port, "GET", path, host="%s.test" % backend, timeout=timeout)


def served_by(port, backend, n, tag):
    """n requests on fresh connections: Counter of (status, X-Backend)."""
    c = collections.Counter()
    for i in range(n):
        r = get(port, backend, "/%s/%d" % (tag, i))
        c[(r.status, r.header("X-Backend"))] += 1
    return c


def split_requests(b):
    """(checks, proxied): what b received, health checks apart."""
    checks, proxied = [], []
    for r in b.requests()["requests"]:
        ua = [v for k, v in r["headers"] if k.lower() == "user-agent"]
        (checks if HC_UA in ua else proxied).append(r)
    return checks, proxied


def count_lines(pc, pattern, start=0):
    return len(re.findall(pattern, pc.error_log()[start:], re.M))


def down_re(backend, addr, reason=""):
    return r"backend %s: server %s is down: %s" % (backend, re.escape(addr), reason)


def up_re(backend, addr):
    return r"backend %s: server %s is up" % (backend, re.escape(addr))


class LogWatch:
    """Tails the error log; every line gets the monotonic time it was seen."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.pos = 0
        self.partial = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.pos)
                    data = f.read()
            except OSError:
                data = b""
            if data:
                now = time.monotonic()
                self.pos += len(data)
                data = self.partial + data
                parts = data.split(b"\n")
                self.partial = parts.pop()
                with self.lock:
                    self.lines.extend((now, p.decode(errors="replace")) for p in parts)
            time.sleep(0.02)

    def find(self, pattern, after=0.0):
        rx = re.compile(pattern)
        with self.lock:
            return [(t, line) for t, line in self.lines if t >= after and rx.search(line)]

    def wait(self, pattern, timeout, after=0.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(pattern, after)
            if found:
                return found[0][0]
            time.sleep(0.02)
        return None

    def stop(self):
        self.stop_flag.set()
        self.thread.join(5)


# ---------------------------------------------------------------------------
# active checks: reasons, logged once, no traffic
# ---------------------------------------------------------------------------

class ActiveChecksTest(unittest.TestCase):
    """One portcullis (2 workers), one backend per kind of failing check,
    each with a healthy server next to the failing one."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.live = start_backend(cls, "tcp-live")
        cls.refused = "127.0.0.1:%d" % h.free_port()      # nothing listens there
        cls.s500 = start_backend(cls, "s500")
        cls.nginx = h.Nginx(cls.tmp)
        cls.addClassCleanup(cls.nginx.stop)
        cls.plain = start_backend(cls, "plain")
        cls.good = start_backend(cls, "healthy-marker")
        cls.slow = start_backend(cls, "slow")
        fast = {"interval": "300ms", "timeout": "200ms", "rise": 2, "fall": 2}
        cls.pc, cls.port, _ = start_proxy(cls, {
            "tcpb": backend_cfg(cls.live.address, cls.refused,
                                health_check=dict(fast, type="tcp")),
            "st": backend_cfg(cls.s500.address, cls.nginx.address,
                              health_check=dict(fast, type="http", path="/status?code=500",
                                                expect_status=[200])),
            "body": backend_cfg(cls.plain.address, cls.good.address,
                                health_check=dict(fast, type="http", path="/",
                                                  body="healthy-marker")),
            "to": backend_cfg(cls.slow.address, cls.nginx.address,
                              health_check={"type": "http", "path": "/sleep?ms=2000",
                                            "interval": "500ms", "timeout": "300ms",
                                            "rise": 2, "fall": 2}),
        })

    def assert_down_once(self, backend, addr, reason, healthy):
        pc = self.pc
        self.assertTrue(pc.wait_log(down_re(backend, addr, re.escape(reason)), 10),
                        pc.describe())
        time.sleep(1.2)   # several more intervals: nobody else logs it again
        self.assertEqual(count_lines(pc, down_re(backend, addr)), 1, pc.error_log())
        self.assertEqual(count_lines(pc, up_re(backend, addr)), 0, pc.error_log())
        self.assertEqual(count_lines(pc, r"backend %s: server %s is (down|up)"
                                     % (backend, re.escape(healthy))), 0, pc.error_log())

    def test_tcp_connection_refused(self):
        """tcp check: a server that refuses connections is logged down once
        across 2 workers ("is down: connect: Connection refused") and gets
        no connect attempt from client traffic; the live one serves all."""
        self.assert_down_once("tcpb", self.refused, "connect: Connection refused",
                              self.live.address)
        self.assertEqual(served_by(self.port, "tcpb", 20, "t"), {(200, "tcp-live"): 20})
        self.assertEqual(count_lines(self.pc, r"backend tcpb: connect %s"
                                     % re.escape(self.refused)), 0, self.pc.error_log())

    def test_http_status(self):
        """http check with expect_status [200] on a path that answers 500:
        "is down: status 500", once; the server gets no client request; the
        check is a GET of the path with Host = the server address."""
        self.assert_down_once("st", self.s500.address, "status 500", self.nginx.address)
        self.assertEqual(served_by(self.port, "st", 20, "s"), {(200, "nginx"): 20})
        checks, proxied = split_requests(self.s500)
        self.assertEqual(proxied, [])
        self.assertTrue(checks)
        c = checks[-1]
        self.assertEqual((c["method"], c["path"]), ("GET", "/status?code=500"))
        hosts = [v for k, v in c["headers"] if k.lower() == "host"]
        self.assertEqual(hosts, [self.s500.address])

    def test_http_body(self):
        """http check with a body substring: the server whose body lacks it
        goes down with "body does not match", once; the one whose body has
        it stays up and takes all the traffic."""
        self.assert_down_once("body", self.plain.address, "body does not match",
                              self.good.address)
        self.assertEqual(served_by(self.port, "body", 20, "b"), {(200, "healthy-marker"): 20})
        self.assertEqual(split_requests(self.plain)[1], [])

    def test_http_timeout(self):
        """http check of /sleep?ms=2000 with timeout 300ms: "is down:
        timeout after 300ms", once; the slow server gets no client request."""
        self.assert_down_once("to", self.slow.address, "timeout after 300ms",
                              self.nginx.address)
        self.assertEqual(served_by(self.port, "to", 20, "o"), {(200, "nginx"): 20})
        self.assertEqual(split_requests(self.slow)[1], [])


# ---------------------------------------------------------------------------
# one check per server per interval
# ---------------------------------------------------------------------------

class CheckOwnershipTest(unittest.TestCase):
    def test_one_check_per_interval_with_4_workers(self):
        """workers: 4, 10 servers, interval 500ms: over 4 s each server gets
        about 8 checks (4..12 accepted), not 4 workers x 8.  After a worker
        is killed with SIGKILL, the replacement takes its checks over: every
        server is still checked about once per interval (none lost, none
        doubled)."""
        bs = [start_backend(self, "c%d" % i) for i in range(10)]
        pc, port, _ = start_proxy(self, {
            "own": backend_cfg(*[b.address for b in bs],
                               health_check={"type": "http", "path": "/health",
                                             "interval": "500ms", "timeout": "400ms"})},
            workers=4)

        def checks_per_server(t0, t1):
            out = {}
            for b in bs:
                checks, _ = split_requests(b)
                out[b.name] = sum(1 for c in checks if t0 <= c["time"] < t1)
            return out

        def measure(what):
            time.sleep(1.0)
            t0 = time.time()
            time.sleep(4.0)
            got = checks_per_server(t0, time.time())
            print("\n%s: checks per server in 4 s: %s" % (what, got))
            for name, n in got.items():
                self.assertGreaterEqual(n, 4, "%s: %s checked %d times: %r" % (what, name, n, got))
                self.assertLessEqual(n, 12, "%s: %s checked %d times: %r" % (what, name, n, got))

        measure("4 workers")
        victim = pc.workers()[0]
        off = len(pc.error_log())
        os.kill(victim, signal.SIGKILL)
        self.assertIsNotNone(pc.wait_workers(4, 10, exclude=[victim]), pc.describe())
        self.assertTrue(pc.wait_log(r"worker %d .*killed by signal 9" % victim, 5, off),
                        pc.describe())
        measure("after kill -9 of worker %d" % victim)
        self.assertEqual(count_lines(pc, r"backend own: server .* is (down|up)"), 0,
                         pc.error_log())
        c = served_by(port, "own", 10, "x")
        self.assertEqual(sum(n for (st, _), n in c.items() if st == 200), 10, c)


# ---------------------------------------------------------------------------
# failover under a steady load
# ---------------------------------------------------------------------------

class Load:
    """Threads sending GETs on fresh connections; every request is recorded
    as (start, end, status or error, X-Backend), monotonic times."""

    def __init__(self, port, backend, threads=3):
        self.port, self.backend = port, backend
        self.records = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)

    def _run(self, k):
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            t0 = time.monotonic()
            try:
                r = get(self.port, self.backend, "/load/%d/%d" % (k, i), timeout=10)
                rec = (t0, time.monotonic(), r.status, r.header("X-Backend"))
            except Exception as e:  # noqa: BLE001 - every failure counts
                rec = (t0, time.monotonic(), "%s: %s" % (type(e).__name__, e), None)
            with self.lock:
                self.records.append(rec)

    def snapshot(self):
        with self.lock:
            return list(self.records)


class FailoverTest(unittest.TestCase):
    def test_failover_under_load(self):
        """3 servers, http check {interval 500ms, timeout 300ms, rise 2,
        fall 2}, passive off, retries 1, upstream keep-alive on, 2 workers,
        3 client threads on fresh connections.  One server is killed: no
        request is sent to it (no connect attempt, no request on a pooled
        connection, as the error log shows) later than fall x interval +
        timeout + 1.5 s after the kill, and only requests in flight at the
        kill may fail.  Restarted on the same port, it gets traffic again
        within rise x interval + 1.5 s."""
        interval, timeout, rise, fall = 0.5, 0.3, 2, 2
        A, B, C = [start_backend(self, n) for n in ("A", "B", "C")]
        pc, port, _ = start_proxy(self, {"fo": h.backend_block(
            A.address, B.address, C.address, response_timeout="5s",
            health_check={"type": "http", "path": "/", "interval": "500ms",
                          "timeout": "300ms", "rise": rise, "fall": fall},
            passive={"max_fails": 0})})
        watch = LogWatch(pc.error_log_path)
        self.addCleanup(watch.stop)
        load = Load(port, "fo", threads=3).start()
        self.addCleanup(load.stop)
        time.sleep(1.5)
        warm = collections.Counter(r[3] for r in load.snapshot())
        self.assertTrue(set(warm) >= {"A", "B", "C"}, warm)

        t_kill = time.monotonic()
        kill_backend(A)
        t_dead = time.monotonic()   # A is reaped: nothing can be in flight on it
        t_down = watch.wait(down_re("fo", A.address), 10, t_kill)
        self.assertIsNotNone(t_down, pc.describe())
        time.sleep(1.0)
        A2 = start_backend(self, "A", port=A.port)
        t_back = time.monotonic()
        t_up = watch.wait(up_re("fo", A.address), 10, t_back)
        self.assertIsNotNone(t_up, pc.describe())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(r[3] == "A" and r[0] >= t_back for r in load.snapshot()):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        load.stop()
        recs = load.snapshot()

        attempts = watch.find(r"backend fo: (connect %s:|server %s: )"
                              % (re.escape(A.address), re.escape(A.address)), t_kill)
        failed = [r for r in recs if r[2] != 200]
        after_kill = [r for r in recs if r[0] >= t_kill]
        first_a = min((r[0] for r in recs if r[3] == "A" and r[0] >= t_back), default=None)
        bound_down = fall * interval + timeout + 1.5
        bound_up = rise * interval + 1.5
        last_attempt = max((t for t, _ in attempts), default=t_kill)
        hits = collections.Counter(r[3] for r in recs if r[2] == 200)
        print("\nfailover: %d requests (%s), %d failed; after the kill: server logged down "
              "after %.2fs, last request sent to it %.2fs after the kill (%d logged attempts), "
              "bound %.1fs; restarted: logged up after %.2fs, first request to it after "
              "%.2fs, bound %.1fs"
              % (len(recs), dict(hits), len(failed), t_down - t_kill, last_attempt - t_kill,
                 len(attempts), bound_down, t_up - t_back,
                 (first_a - t_back) if first_a else -1, bound_up))
        for r in failed:
            print("  failed: start %+.2fs end %+.2fs: %s" % (r[0] - t_kill, r[1] - t_kill, r[2]))
        self.assertGreater(len(after_kill), 30, "too little load to tell")
        self.assertLessEqual(last_attempt - t_kill, bound_down,
                             "a request went to the dead server %.2fs after the kill: %r"
                             % (last_attempt - t_kill, attempts[-3:]))
        # with retries: 1 only what was in flight on A at the kill may fail
        # (one request per client thread at most)
        late = [r for r in failed if r[0] > t_dead]
        self.assertEqual(late, [], "requests started after the kill failed")
        self.assertLessEqual(len(failed), 3)
        self.assertFalse(any(r[3] == "A" for r in recs if t_dead < r[0] < t_back))
        self.assertIsNotNone(first_a, "the restarted server got no traffic")
        self.assertLessEqual(first_a - t_back, bound_up)
        self.assertTrue(split_requests(A2)[1])


# ---------------------------------------------------------------------------
# passive checks
# ---------------------------------------------------------------------------

class PassiveTest(unittest.TestCase):
    def test_passive_down_for_fail_timeout(self):
        """No active check, passive {max_fails: 2, fail_timeout: 2s},
        retries 1: a killed server is marked down after 2 failures, logged
        once ("is down for 2000ms (passive)"), clients see no error at all
        (each failed connect is retried on the other server), and no request
        goes to it for fail_timeout, even once it runs again; then it is
        tried again and gets traffic."""
        A = start_backend(self, "A")
        B = start_backend(self, "B")
        pc, port, _ = start_proxy(self, {"p": backend_cfg(
            A.address, B.address, passive={"max_fails": 2, "fail_timeout": "2s"})})
        warm = served_by(port, "p", 10, "warm")
        self.assertEqual(set(warm), {(200, "A"), (200, "B")}, warm)

        off = len(pc.error_log())
        kill_backend(A)
        down = r"backend p: server %s is down for 2000ms \(passive\)" % re.escape(A.address)
        recs = []
        marked = None
        for i in range(40):
            t0 = time.time()
            r = get(port, "p", "/k/%d" % i)
            recs.append((t0, time.time(), r.status, r.header("X-Backend")))
            if re.search(down, pc.error_log()[off:]):
                marked = (t0, time.time())
                break
        self.assertIsNotNone(marked, pc.describe())
        log = pc.error_log()[off:]
        before = log[:re.search(down, log).start()]
        self.assertEqual(len(re.findall(r"backend p: connect %s:" % re.escape(A.address), before)),
                         2, log)
        A2 = start_backend(self, "A", port=A.port)
        while time.time() < marked[1] + 2.0 + 3.0:
            t0 = time.time()
            r = get(port, "p", "/after/%d" % len(recs))
            recs.append((t0, time.time(), r.status, r.header("X-Backend")))
            if r.header("X-Backend") == "A":
                break
            time.sleep(0.02)
        errors = [r for r in recs if r[2] != 200]
        self.assertEqual(errors, [])
        log = pc.error_log()[off:]
        self.assertEqual(len(re.findall(down, log)), 1, log)
        first = min((r["time"] for r in split_requests(A2)[1]), default=None)
        self.assertIsNotNone(first, "A never got traffic again")
        print("\npassive: down after %d requests; A back in service %.2fs after it was "
              "marked down (fail_timeout 2s)" % (i + 1, first - marked[0]))
        self.assertGreaterEqual(first, marked[0] + 2.0 - 0.25)
        self.assertLessEqual(first, marked[1] + 2.0 + 2.0)


# ---------------------------------------------------------------------------
# reload and worker crash
# ---------------------------------------------------------------------------

class StateSurvivesReloadTest(unittest.TestCase):
    def test_down_state_survives_reload_and_kill(self):
        """http check (body "good", interval 300ms, fall 2, rise 2) over
        good-1, good-2 and "bad", which fails it but runs, so any request it
        gets is seen.  Once bad is down: a SIGHUP with the same server set;
        right after "generation 2 serving", and for a second, bad gets no
        request and no new down/up line is logged.  Then each worker is
        killed with SIGKILL in turn: still no request to bad.  Then bad is
        replaced by a passing server on the same port: exactly one "is up"
        line is logged (one owner of its checks) and it gets traffic."""
        G1, G2, BAD = [start_backend(self, n) for n in ("good-1", "good-2", "bad")]
        block = backend_cfg(G1.address, G2.address, BAD.address, connect_timeout="1s",
                            health_check={"type": "http", "path": "/", "body": "good",
                                          "interval": "300ms", "timeout": "200ms",
                                          "rise": 2, "fall": 2})
        pc, port, cfg = start_proxy(self, {"rl": block})
        self.assertTrue(pc.wait_log(down_re("rl", BAD.address, "body does not match"), 10),
                        pc.describe())
        c = served_by(port, "rl", 10, "before")
        self.assertNotIn((200, "bad"), c)
        self.assertEqual(split_requests(BAD)[1], [])

        gen1 = pc.workers()
        off = len(pc.error_log())
        cfg["backends"]["rl"]["connect_timeout"] = "2s"   # same servers
        pc.write_config(cfg)
        pc.send_signal(signal.SIGHUP)
        self.assertTrue(pc.wait_log(r"generation 2 serving", 15, off), pc.describe())
        t_end = time.monotonic() + 1.0
        n = 0
        while time.monotonic() < t_end:
            r = get(port, "rl", "/reloaded/%d" % n)
            n += 1
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.header("X-Backend"), "bad")
        self.assertEqual(split_requests(BAD)[1], [], "bad got requests after the reload")
        print("\nreload: %d requests in the first second, none to the down server" % n)
        gen2 = pc.wait_workers(2, 15, exclude=gen1)
        self.assertIsNotNone(gen2, "old workers did not leave: %r" % pc.workers())

        for victim in gen2:
            os.kill(victim, signal.SIGKILL)
            self.assertIsNotNone(pc.wait_workers(2, 10, exclude=[victim]), pc.describe())
            c = served_by(port, "rl", 10, "killed-%d" % victim)
            self.assertEqual(sum(c.values()), c[(200, "good-1")] + c[(200, "good-2")], c)
        time.sleep(1.0)
        self.assertEqual(split_requests(BAD)[1], [], "bad got requests after a worker kill")
        self.assertEqual(count_lines(pc, r"backend rl: server %s is (down|up)"
                                     % re.escape(BAD.address), off), 0, pc.error_log())

        kill_backend(BAD)
        back = start_backend(self, "good-3", port=BAD.port)
        self.assertTrue(pc.wait_log(up_re("rl", BAD.address), 10, off), pc.describe())
        time.sleep(1.5)
        self.assertEqual(count_lines(pc, up_re("rl", BAD.address), off), 1, pc.error_log())
        c = served_by(port, "rl", 12, "back")
        self.assertGreater(c[(200, "good-3")], 0, c)
        self.assertTrue(split_requests(back)[1])


if __name__ == "__main__":
    h.main()
