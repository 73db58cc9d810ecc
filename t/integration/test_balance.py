#!/usr/bin/python3
"""Load balancing (issue #4): round_robin weights, least_conn and random_two
on the machine-wide connection counts, consistent hash, backup servers,
max_connections, and the fast 503 when no server is usable.

Every backend here is backend.py; the server that answered is its X-Backend
header, and what a server received is asked from it directly (/__requests).
Backends use `keepalive: 0` upstream unless said otherwise: backend.py writes
a response head and body in two segments without TCP_NODELAY, so a reused
upstream connection waits for a delayed ACK (~40 ms) on every request, and
10,000 requests would take minutes.
"""

import collections
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness as h

HC_UA = "portcullis-health-check"


# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------

def backend_cfg(*servers, **extra):
    """h.backend_block with keepalive 0 and a long response_timeout."""
    extra.setdefault("keepalive", 0)
    extra.setdefault("response_timeout", "30s")
    return h.backend_block(*servers, **extra)


def start_backends(tc, *names):
    """backend.py processes, stopped when the test (class) ends."""
    out = []
    for n in names:
        b = h.Backend(n)
        (tc.addClassCleanup if isinstance(tc, type) else tc.addCleanup)(b.stop)
        out.append(b)
    return out


def restart_backend(tc, old, name=None):
    """A new backend.py on the port of old (which must be dead by now)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            b = h.Backend(name or old.name, port=old.port)
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    (tc.addClassCleanup if isinstance(tc, type) else tc.addCleanup)(b.stop)
    return b


def kill_backend(b):
    b.proc.kill()
    b.proc.wait(10)


def proxy_config(tmp, port, backends, workers=2):
    """One listener; backend NAME is reached with Host: NAME.test."""
    routes = [{"host": ["%s.test" % name], "backend": name} for name in backends]
    listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port, "routes": routes}]
    return h.base_config(tmp, listeners, backends, workers=workers)


def start_proxy(tc, backends, workers=2):
    """(Portcullis, port, config dict); stopped (and checked) at the end."""
    tmp = h.make_tmpdir()
    port = h.free_port()
    cfg = proxy_config(tmp, port, backends, workers)
    pc = h.Portcullis(cfg, tmp=tmp)
    pc.start()
    (tc.addClassCleanup if isinstance(tc, type) else tc.addCleanup)(pc.stop)
    return pc, port, cfg


def get(port, backend, path="/", headers=(), timeout=10.0):
    """One GET on a fresh connection: (Response, seconds)."""
    t0 = time.monotonic()
    r = h.request(port, "GET", path, host="%s.test" % backend, headers=headers,
                  timeout=timeout)
    return r, time.monotonic() - t0


def run_many(port, backend, reqs, threads=4, timeout=10.0):
    """Send reqs [(path, headers)] over `threads` keep-alive connections.
    Returns [(status, X-Backend)] in the order of reqs; a failure is
    ("error", text)."""
    results = [None] * len(reqs)
    host = "%s.test" % backend

    def worker(k):
        conn = None
        for i in range(k, len(reqs), threads):
            path, headers = reqs[i]
            try:
                if conn is None:
                    conn = h.Conn(port, timeout=timeout)
                conn.send(h.build_request("GET", path, host=host, headers=headers))
                r = conn.read_response()
                results[i] = (r.status, r.header("X-Backend"))
                if r.closes:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is a result
                results[i] = ("error", "%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    return results


def proxied(b):
    """Requests b received from clients through the proxy (health checks excluded)."""
    out = []
    for r in b.requests()["requests"]:
        ua = [v for k, v in r["headers"] if k.lower() == "user-agent"]
        if HC_UA not in ua:
            out.append(r)
    return out


def where(backends, marker, timeout=8.0):
    """Name of the backend that has received a request whose path contains
    marker (polled; the request may still be running there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [b.name for b in backends
                 if any(marker in r["path"] for r in b.requests()["requests"])]
        if found:
            assert len(found) == 1, "%s reached several servers: %r" % (marker, found)
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no server received %s within %.0fs" % (marker, timeout))


def send_slow(port, backend, ms, marker, conn=None):
    """Send GET /sleep?ms=ms (not read yet); the connection."""
    c = conn or h.Conn(port, timeout=60)
    c.send(h.build_request("GET", "/sleep?ms=%d&id=%s" % (ms, marker),
                           host="%s.test" % backend))
    return c


def conn_owner(pc, port, conn, timeout=5.0):
    """pid of the worker that accepted conn (its socket is in the worker's
    fd table; the socket is found by its ports with ss)."""
    lport = conn.sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["ss", "-tneH", "state", "established",
             "( sport = :%d and dport = :%d )" % (port, lport)],
            capture_output=True, text=True, timeout=20).stdout
        inodes = {"socket:[%s]" % i for i in re.findall(r"ino:(\d+)", out) if i != "0"}
        for pid in pc.workers():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                        return pid
                except OSError:
                    pass
        if time.monotonic() > deadline:
            raise AssertionError("no worker owns the connection from port %d" % lport)
        time.sleep(0.05)


def conns_on_each_worker(pc, port, need, rounds=20):
    """{worker pid: [Conn, ...]} with at least `need` connections accepted by
    every worker.  Connections are opened in concurrent bursts: with
    EPOLLEXCLUSIVE an idle worker that registered first takes most
    sequential connections."""
    workers = pc.workers()
    got = {w: [] for w in workers}
    spare = []
    for _ in range(rounds):
        if all(len(got[w]) >= need for w in workers):
            break
        burst = []
        lock = threading.Lock()

        def opener():
            for _ in range(4):
                c = h.Conn(port, timeout=60)
                with lock:
                    burst.append(c)

        ts = [threading.Thread(target=opener) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        for c in burst:
            w = conn_owner(pc, port, c)
            if w in got and len(got[w]) < need:
                got[w].append(c)
            else:
                spare.append(c)
    for c in spare:
        c.close()
    if not all(len(got[w]) >= need for w in workers):
        raise AssertionError("could not get %d connections on each worker: %r"
                             % (need, {w: len(v) for w, v in got.items()}))
    return got


def count_lines(pc, pattern, start=0):
    return len(re.findall(pattern, pc.error_log()[start:], re.M))


def hc(**kw):
    """A health_check block."""
    d = {"type": "tcp", "interval": "200ms", "timeout": "100ms", "rise": 2, "fall": 1}
    d.update(kw)
    return d


# ---------------------------------------------------------------------------
# round_robin
# ---------------------------------------------------------------------------

class RoundRobinTest(unittest.TestCase):
    def test_weights_over_10000_requests(self):
        """Weights 1,2,3,4 with 2 workers over 10,000 requests: each server's
        share is within ±5% of its expected share, relative to that share
        (|observed - expected| <= 0.05 * expected; e.g. 950..1050 of the
        1,000 the weight-1 server should get).  Every request succeeds."""
        bs = start_backends(self, "w1", "w2", "w3", "w4")
        _, port, _ = start_proxy(self, {
            "rr": backend_cfg(*[(b.address, i + 1) for i, b in enumerate(bs)])})
        n = 10000
        t0 = time.monotonic()
        res = run_many(port, "rr", [("/rr/%d" % i, ()) for i in range(n)], threads=4)
        took = time.monotonic() - t0
        bad = [r for r in res if r[0] != 200]
        self.assertEqual(bad, [], "%d failed requests, first: %r" % (len(bad), bad[:5]))
        counts = collections.Counter(r[1] for r in res)
        print("\nround_robin 1:2:3:4 over %d requests in %.1fs: %s"
              % (n, took, dict(sorted(counts.items()))))
        for i, b in enumerate(bs):
            expected = n * (i + 1) / 10.0
            self.assertLessEqual(abs(counts[b.name] - expected), 0.05 * expected,
                                 "%s (weight %d): %d requests, expected %d ±5%%: %r"
                                 % (b.name, i + 1, counts[b.name], expected, counts))


# ---------------------------------------------------------------------------
# least_conn, random_two: machine-wide counts
# ---------------------------------------------------------------------------

class LeastConnTest(unittest.TestCase):
    def test_slow_requests_through_other_worker_are_counted(self):
        """workers: 2, least_conn over A and B.  Slow requests (8 s) are
        opened alternately through connections that worker 1 and worker 2
        accepted; each goes to a server holding the fewest of them
        machine-wide, so the second (worker 2) avoids the server that holds
        the first (worker 1).  Then quick requests through both workers all
        go to the server holding fewer slow requests."""
        A, B = start_backends(self, "A", "B")
        pc, port, _ = start_proxy(self, {
            "lc": backend_cfg(A.address, B.address, balance="least_conn")})
        conns = conns_on_each_worker(pc, port, 3)
        w1, w2 = sorted(conns)
        load = {"A": 0, "B": 0}
        slow = []
        t_first = time.monotonic()
        for i, (w, ci) in enumerate([(w1, 0), (w2, 0), (w1, 1)]):
            least = min(load.values())
            lightest = sorted(s for s, v in load.items() if v == least)
            marker = "slow%d" % i
            send_slow(port, "lc", 8000, marker, conn=conns[w][ci])
            got = where((A, B), marker)
            self.assertIn(got, lightest,
                          "slow request %d through worker %d went to %s, which held %d "
                          "slow requests (worker %d holds one); loads: %r"
                          % (i + 1, w, got, load[got], w1 if w == w2 else w2, load))
            load[got] += 1
            slow.append((conns[w][ci], got))
        target = min(load, key=load.get)
        self.assertNotEqual(load["A"], load["B"])
        seen = collections.Counter()
        for k in range(10):
            for w in (w1, w2):
                # a short gap: the count of the previous quick request is
                # released just after its last byte is written
                time.sleep(0.02)
                c = conns[w][2]
                c.send(h.build_request("GET", "/quick/%d/%d" % (w, k), host="lc.test"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                seen[(w, r.header("X-Backend"))] += 1
        held = time.monotonic() - t_first
        self.assertLess(held, 7.0, "the slow requests may have ended before the quick "
                        "ones were sent (%.1fs): inconclusive" % held)
        print("\nleast_conn: slow requests held %r; quick requests (worker, server): %r "
              "(%.1fs after the first slow request)" % (load, dict(seen), held))
        self.assertEqual(set(s for _, s in seen), {target},
                         "quick requests should all go to %s (slow loads %r): %r"
                         % (target, load, dict(seen)))
        for c, server in slow:
            r = c.read_response()
            self.assertEqual((r.status, r.header("X-Backend")), (200, server))
        for cs in conns.values():
            for c in cs:
                c.close()


class RandomTwoTest(unittest.TestCase):
    def test_loaded_server_avoided(self):
        """random_two over A, B, C with 2 workers: while one server holds a
        slow request opened through worker 1, at least 90% of new requests
        through each worker go to the two others (with two distinct
        candidates per pick the loaded one should never win), and both of
        them get some."""
        bs = start_backends(self, "A", "B", "C")
        pc, port, _ = start_proxy(self, {
            "r2": backend_cfg(*[b.address for b in bs], balance="random_two")})
        conns = conns_on_each_worker(pc, port, 2)
        w1, w2 = sorted(conns)
        c = send_slow(port, "r2", 6000, "slow", conn=conns[w1][0])
        t0 = time.monotonic()
        loaded = where(bs, "slow")
        counts = collections.Counter()
        for i in range(60):
            time.sleep(0.02)
            w = w2 if i % 3 else w1       # 40 through worker 2, 20 through worker 1
            q = conns[w][1]
            q.send(h.build_request("GET", "/quick/%d" % i, host="r2.test"))
            r = q.read_response()
            self.assertEqual(r.status, 200)
            counts[(w, r.header("X-Backend"))] += 1
        self.assertLess(time.monotonic() - t0, 5.0, "inconclusive: slow request may be over")
        print("\nrandom_two: %s holds a slow request (worker %d); quick requests "
              "(worker, server): %r" % (loaded, w1, dict(counts)))
        for w, n in ((w1, 20), (w2, 40)):
            self.assertLessEqual(counts[(w, loaded)], n // 10,
                                 "worker %d sent %d of %d to the loaded server: %r"
                                 % (w, counts[(w, loaded)], n, dict(counts)))
        for o in [b.name for b in bs if b.name != loaded]:
            self.assertGreater(counts[(w1, o)] + counts[(w2, o)], 0,
                               "%s got nothing: %r" % (o, dict(counts)))
        r = c.read_response()
        self.assertEqual((r.status, r.header("X-Backend")), (200, loaded))
        for cs in conns.values():
            for x in cs:
                x.close()


# ---------------------------------------------------------------------------
# hash
# ---------------------------------------------------------------------------

class HashHeaderTest(unittest.TestCase):
    def test_consistent_hash_header(self):
        """hash_key: header:X-User over 10 servers, 2,000 users.  While
        nothing changes a user always reaches the same server; when one
        server goes down (killed, found by a tcp check) >= 95% of the users
        of the other servers stay where they were and the dead server's
        users spread over several servers; when it comes back its users
        return; after a reload without it >= 95% of the others' users
        still stay where they were."""
        bs = start_backends(self, *["s%d" % i for i in range(10)])
        block = backend_cfg(*[b.address for b in bs], balance="hash",
                            hash_key="header:X-User", health_check=hc(rise=1),
                            passive={"max_fails": 0})
        pc, port, cfg = start_proxy(self, {"hh": block})
        users = ["user-%d" % i for i in range(2000)]

        def mapping(order=None):
            order = order or users
            res = run_many(port, "hh", [("/u/%s" % u, (("X-User", u),)) for u in order])
            bad = [(u, r) for u, r in zip(order, res) if r[0] != 200]
            self.assertEqual(bad, [], "failed: %r" % bad[:5])
            return {u: r[1] for u, r in zip(order, res)}

        def kept(before, after, skip=None):
            keys = [u for u in users if before[u] != skip]
            same = sum(1 for u in keys if before[u] == after[u])
            return same, len(keys)

        m1 = mapping()
        per = collections.Counter(m1.values())
        print("\nhash: users per server: %s" % dict(sorted(per.items())))
        self.assertEqual(set(per), {b.name for b in bs}, per)
        for name, n in per.items():
            self.assertGreaterEqual(n, 50, "server %s got only %d of 2000 users" % (name, n))

        shuffled = users[:]
        random.Random(4).shuffle(shuffled)
        m2 = mapping(shuffled)
        moved = [u for u in users if m1[u] != m2[u]]
        self.assertEqual(moved, [], "nothing changed, yet %d users moved: %r"
                         % (len(moved), [(u, m1[u], m2[u]) for u in moved[:5]]))
        for u in users[:50]:   # and on fresh connections
            r, _ = get(port, "hh", "/fresh", headers=(("X-User", u),))
            self.assertEqual(r.header("X-Backend"), m1[u], u)

        victim = bs[3]
        off = len(pc.error_log())
        kill_backend(victim)
        self.assertTrue(pc.wait_log(r"backend hh: server %s is down"
                                    % re.escape(victim.address), 10, off), pc.describe())
        m3 = mapping()
        same, total = kept(m1, m3, skip=victim.name)
        print("hash: %s down: %d of %d other users kept their server" % (victim.name, same, total))
        self.assertGreaterEqual(same, 0.95 * total)
        orphans = collections.Counter(m3[u] for u in users if m1[u] == victim.name)
        self.assertNotIn(victim.name, orphans)
        print("hash: %s's users went to %s" % (victim.name, dict(orphans)))
        self.assertGreaterEqual(len(orphans), 3, "the dead server's users should spread "
                                "over several servers: %r" % orphans)

        off = len(pc.error_log())
        victim2 = restart_backend(self, victim)
        self.assertTrue(pc.wait_log(r"backend hh: server %s is up"
                                    % re.escape(victim2.address), 10, off), pc.describe())
        m4 = mapping()
        same_all, _ = kept(m1, m4)
        print("hash: %s back: %d of %d users on their first server" % (victim.name, same_all, len(users)))
        self.assertGreaterEqual(same_all, 0.95 * len(users))

        # remove it from the config and reload
        off = len(pc.error_log())
        cfg["backends"]["hh"]["servers"] = [s for s in cfg["backends"]["hh"]["servers"]
                                            if s["address"] != victim.address]
        pc.write_config(cfg)
        pc.send_signal(signal.SIGHUP)
        self.assertTrue(pc.wait_log(r"generation 2 serving", 15, off), pc.describe())
        m5 = mapping()
        same, total = kept(m1, m5, skip=victim.name)
        print("hash: %s removed by a reload: %d of %d other users kept their server"
              % (victim.name, same, total))
        self.assertGreaterEqual(same, 0.95 * total)
        self.assertNotIn(victim.name, set(m5.values()))


class HashUriAndClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bs = start_backends(cls, *["s%d" % i for i in range(5)])
        addrs = [b.address for b in cls.bs]
        cls.pc, cls.port, _ = start_proxy(cls, {
            "hu": backend_cfg(*addrs, balance="hash", hash_key="uri"),
            "hc": backend_cfg(*addrs, balance="hash", hash_key="client_ip"),
        })

    def test_uri(self):
        """hash_key: uri: the same URI always reaches the same server
        (keep-alive or fresh connection); different URIs spread."""
        paths = ["/item/%d?v=%d" % (i, i % 3) for i in range(100)]
        first = run_many(self.port, "hu", [(p, ()) for p in paths])
        again = run_many(self.port, "hu", [(p, ()) for p in reversed(paths)], threads=3)
        again.reverse()
        self.assertEqual(first, again)
        self.assertTrue(all(s == 200 for s, _ in first), first)
        for i in range(0, 100, 10):
            r, _ = get(self.port, "hu", paths[i])
            self.assertEqual(r.header("X-Backend"), first[i][1], paths[i])
        spread = collections.Counter(b for _, b in first)
        self.assertGreaterEqual(len(spread), 3, spread)

    def test_client_ip(self):
        """hash_key: client_ip: every connection from one client address
        (whatever its source port) reaches the same server; 20 client
        addresses (127.0.0.10..29) spread over several servers."""
        chosen = {}
        for i in range(10, 30):
            src = "127.0.0.%d" % i
            seen = set()
            for k in range(3):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(10)
                s.bind((src, 0))
                s.connect(("127.0.0.1", self.port))
                c = h.Conn.__new__(h.Conn)
                c.sock, c.timeout, c.buf, c.eof = s, 10.0, bytearray(), False
                try:
                    c.send(h.build_request("GET", "/ip/%d" % k, host="hc.test", close=True))
                    r = c.read_response()
                finally:
                    c.close()
                self.assertEqual(r.status, 200)
                seen.add(r.header("X-Backend"))
            self.assertEqual(len(seen), 1, "%s reached %r" % (src, seen))
            chosen[src] = seen.pop()
        spread = collections.Counter(chosen.values())
        self.assertGreaterEqual(len(spread), 2, spread)


# ---------------------------------------------------------------------------
# backup servers
# ---------------------------------------------------------------------------

class BackupTest(unittest.TestCase):
    def test_backup_only_when_all_primaries_down(self):
        """Primaries A, B and backup C (tcp check every 200ms, fall 1, rise 2):
        C gets nothing while A or B is up; with A and B killed, C serves
        everything; when A comes back, traffic returns to A."""
        A, B, C = start_backends(self, "A", "B", "C")
        block = backend_cfg(A.address, B.address, C.address, health_check=hc(),
                            passive={"max_fails": 0})
        block["servers"][2]["backup"] = True
        pc, port, _ = start_proxy(self, {"bk": block})

        def burst(n, tag):
            res = run_many(port, "bk", [("/%s/%d" % (tag, i), ()) for i in range(n)], threads=2)
            bad = [r for r in res if r[0] != 200]
            self.assertEqual(bad, [], tag)
            return collections.Counter(b for _, b in res)

        def down(b):
            off = len(pc.error_log())
            kill_backend(b)
            self.assertTrue(pc.wait_log(r"backend bk: server %s is down" % re.escape(b.address),
                                        10, off), pc.describe())

        c = burst(40, "all-up")
        self.assertEqual(c["C"], 0, c)
        self.assertGreater(c["A"], 0, c)
        self.assertGreater(c["B"], 0, c)

        down(A)
        c = burst(20, "a-down")
        self.assertEqual(c, {"B": 20})

        down(B)
        c = burst(20, "a-b-down")
        self.assertEqual(c, {"C": 20})

        off = len(pc.error_log())
        A2 = restart_backend(self, A)
        self.assertTrue(pc.wait_log(r"backend bk: server %s is up" % re.escape(A2.address),
                                    10, off), pc.describe())
        c = burst(20, "a-back")
        self.assertEqual(c, {"A": 20})
        print("\nbackup: served by C only while A and B were down; A took over when back")


# ---------------------------------------------------------------------------
# max_connections, 503
# ---------------------------------------------------------------------------

class MaxConnectionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.A, cls.B, cls.S = start_backends(cls, "A", "B", "S")
        mc = backend_cfg(cls.A.address, cls.B.address)
        mc["servers"][0]["max_connections"] = 1
        one = backend_cfg(cls.S.address, connect_timeout="5s")
        one["servers"][0]["max_connections"] = 1
        cls.pc, cls.port, _ = start_proxy(cls, {"mc": mc, "one": one})

    def test_full_server_skipped(self):
        """A has max_connections: 1, B none.  While a slow request holds A,
        every new request goes to B (through either worker) and succeeds."""
        held = []
        for i in range(8):
            t_sent = time.monotonic()
            c = send_slow(self.port, "mc", 6000, "mcslow%d" % i)
            got = where((self.A, self.B), "mcslow%d" % i)
            held.append((c, got))
            if got == "A":
                break
        self.assertEqual(held[-1][1], "A", "no slow request reached A")
        counts = collections.Counter()
        for i in range(20):
            r, _ = get(self.port, "mc", "/quick/%d" % i)
            counts[(r.status, r.header("X-Backend"))] += 1
        self.assertLess(time.monotonic() - t_sent, 5.0,
                        "inconclusive: the slow request on A may be over")
        self.assertEqual(counts, {(200, "B"): 20})
        for c, server in held:
            r = c.read_response()
            self.assertEqual((r.status, r.header("X-Backend")), (200, server))
            c.close()
        # A is usable again once its connection is released
        counts = collections.Counter(get(self.port, "mc", "/after/%d" % i)[0].header("X-Backend")
                                     for i in range(10))
        self.assertGreater(counts["A"], 0, counts)

    def test_all_full_503_at_once(self):
        """A backend whose only server has max_connections: 1: a second
        concurrent request is answered 503 at once (well under the 5 s
        connect_timeout), and once the first ends requests succeed again."""
        t_sent = time.monotonic()
        c = send_slow(self.port, "one", 4000, "oneslow")
        self.assertEqual(where((self.S,), "oneslow"), "S")
        answers = [get(self.port, "one", "/second/%d" % i) for i in range(3)]
        self.assertLess(time.monotonic() - t_sent, 3.5,
                        "inconclusive: the slow request may be over")
        print("\nmax_connections full: %s" % ", ".join("%d in %.0f ms" % (r.status, t * 1000)
                                                      for r, t in answers))
        for r, took in answers:
            self.assertEqual(r.status, 503, r)
            self.assertLess(took, 1.0)
            self.assertNotIn(self.S.address.encode(), r.body)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        c.close()
        r, _ = get(self.port, "one", "/third")
        self.assertEqual((r.status, r.header("X-Backend")), (200, "S"))
        self.assertFalse(any("/second/" in q["path"] for q in proxied(self.S)))


class NoServerUpTest(unittest.TestCase):
    def test_503_fast_without_connect(self):
        """A backend whose only server is down by its health check answers
        503 in < 0.5 s, with no connect attempt (no new "backend dead:
        connect" line in the error log) and no server address in the body.
        panic_threshold 0%: with the default 50% a lone server down would
        be tried anyway (panic mode, test_passive.py)."""
        dead_port = h.free_port()
        addr = "127.0.0.1:%d" % dead_port
        pc, port, _ = start_proxy(self, {"dead": backend_cfg(addr, health_check=hc(),
                                                              connect_timeout="5s",
                                                              panic_threshold="0%")})
        self.assertTrue(pc.wait_log(r"backend dead: server %s is down: connect: Connection refused"
                                    % re.escape(addr), 10), pc.describe())
        off = len(pc.error_log())
        worst = 0.0
        for i in range(10):
            r, took = get(port, "dead", "/x/%d" % i)
            self.assertEqual(r.status, 503)
            self.assertNotIn(str(dead_port).encode(), r.body)
            worst = max(worst, took)
        print("\n503 with no server up: slowest of 10 answers %.0f ms" % (worst * 1000))
        self.assertLess(worst, 0.5)
        time.sleep(0.3)
        self.assertEqual(count_lines(pc, r"backend dead: connect ", off), 0,
                         pc.error_log()[off:])


if __name__ == "__main__":
    h.main()
