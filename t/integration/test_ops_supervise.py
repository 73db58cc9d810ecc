#!/usr/bin/python3
"""Supervision under load (issue #5): kill -9 of each worker in turn while
keep-alive clients run.  Each time the service recovers within a second (a
replacement worker runs and a new connection is served), the death is logged
with its signal, and the failed requests are at most the connections the
killed worker held (the request in flight on each, or the one sent next on
it)."""

import os
import re
import signal
import subprocess
import threading
import time
import unittest

import harness as h
import opslib as ops

LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "
WORKERS = 2
CLIENTS = 12


class KeepAliveClients:
    """CLIENTS threads, each with one keep-alive connection doing requests
    back to back; a failed request is recorded and the connection reopened."""

    def __init__(self, port):
        self.port = port
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def run(self, n):
        conn, i = None, 0
        while not self.stop_flag.is_set():
            i += 1
            path = "/k%d/%d" % (n, i)
            try:
                if conn is None:
                    conn = h.Conn(self.port, timeout=10)
                conn.send(h.build_request("GET", path))
                r = conn.read_response()
                if r.status != 200:
                    raise AssertionError("status %d" % r.status)
                with self.lock:
                    self.ok += 1
                if r.closes:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.errors.append("%s: %s: %s" % (path, type(e).__name__, e))
                if conn:
                    conn.close()
                conn = None
            time.sleep(0.002)
        if conn:
            conn.close()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(15)


class SuperviseTest(unittest.TestCase):

    def test_kill_each_worker_in_turn(self):
        a = h.Backend("alpha")
        self.addCleanup(a.stop)
        tmp = h.make_tmpdir()
        port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port,
                      "routes": [{"path_prefix": "/", "backend": "a"}]}]
        pc = h.Portcullis(h.base_config(tmp, listeners, {"a": h.backend_block(a.address)},
                                        workers=WORKERS), tmp=tmp)
        self.addCleanup(pc.stop)
        pc.start()
        load = KeepAliveClients(port)
        self.addCleanup(load.stop)
        time.sleep(1.0)
        allowed = 0
        queue = sorted(pc.workers())   # every worker, then every replacement
        for round_ in range(2 * WORKERS):
            victim = queue.pop(0)
            rc, out, err = ops.ctl(pc, "status")
            self.assertEqual(rc, 0, err)
            held = ops.worker_conns(out).get(victim)
            self.assertIsNotNone(held, out)
            allowed += held
            start = pc.log_size()
            before = pc.workers()
            os.kill(victim, signal.SIGKILL)
            t0 = time.monotonic()
            now = pc.wait_workers(WORKERS, timeout=1.0, exclude=[victim])
            self.assertIsNotNone(now, "no replacement within 1 s: %r" % pc.workers())
            queue += [p for p in now if p not in queue and p not in before]
            r = h.request(port, "GET", "/after-kill/%d" % round_, timeout=1.0)
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertIsNotNone(
                pc.wait_log(LOG_PREFIX + r"worker %d \(generation 1\) killed by signal 9 "
                            r"\(Killed\)$" % victim, 5, start), pc.error_log()[-2000:])
            # clients that lost their connection reconnect; the replacement
            # lives past the 2 s that would count its death as a crash loop
            time.sleep(1.1)
        load.stop()
        self.assertGreater(load.ok, 500)
        self.assertLessEqual(len(load.errors), allowed,
                             "%d failures, killed workers held %d connections: %r"
                             % (len(load.errors), allowed, load.errors[:20]))
        self.assertNotRegex(pc.error_log(), r"died \d+ times in a row")


class WatchdogTest(unittest.TestCase):
    def test_stopped_worker_is_replaced(self):
        """watchdog: 1s.  SIGSTOP of a worker (its loop no longer turns):
        within a few seconds the master logs it, kills it and starts a
        replacement in its slot; requests keep being served and `status`
        lists two live workers again (issue #14 item 7: a stopped worker
        stalled its connections while status said "accepting")."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        pc, port = h.one_route_proxy(self, h.backend_block(web.address), workers=2,
                                     watchdog="1s")
        time.sleep(1.5)     # idle: the heartbeat must not trip on its own
        self.assertNotIn("watchdog", pc.error_log())
        victim = pc.workers()[0]
        os.kill(victim, signal.SIGSTOP)
        m = pc.wait_log(r"\[error\] \d+: worker %d \(generation 1\) has not turned its event "
                        r"loop for \d+ms \(watchdog 1000ms\): killing it" % victim, 5)
        self.assertIsNotNone(m, pc.describe())
        self.assertIsNotNone(pc.wait_workers(2, 5, exclude=[victim]), pc.describe())
        for i in range(10):
            self.assertEqual(h.request(port, "GET", "/w/%d" % i).status, 200)


def client_connections(pid, port):
    """Established connections on port that process pid holds (its fds
    matched against /proc/net/tcp by socket inode)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port and cols[3] == "01" and cols[9] in inodes:
                n += 1
    return n


class AcceptShareTest(unittest.TestCase):
    def test_burst_is_shared(self):
        """wrk opens 200 keep-alive connections at once on one shared
        listening socket: each of the 2 workers takes at least a fifth of
        them (issue #14 item 7: 91/9 was seen; a worker past 3/2 of the
        busiest other plus 32 now lets the other accept)."""
        ngx = h.Nginx(h.make_tmpdir())
        self.addCleanup(ngx.stop)
        pc, port = h.one_route_proxy(self, h.backend_block(ngx.address), workers=2)
        workers = pc.workers()
        splits = []
        for _ in range(3):
            p = subprocess.Popen(["wrk", "-t2", "-c200", "-d3", "http://127.0.0.1:%d/" % port],
                                 stdout=subprocess.DEVNULL)
            time.sleep(1.5)
            splits.append([client_connections(w, port) for w in workers])
            p.wait(30)
            time.sleep(0.5)
        print("\nclient connections per worker, 3 bursts of 200: %r" % splits)
        for got in splits:
            self.assertGreaterEqual(sum(got), 150, splits)
            self.assertGreaterEqual(min(got), sum(got) // 5, splits)


class CtrlCTest(unittest.TestCase):
    def test_ctrl_c_logs_no_error(self):
        """Ctrl-C in a terminal sends SIGINT to the master and its workers
        at once: the workers may exit before the master acts on its own;
        that is a stop, not an error (issue #14 item 9).  Exit status 0, no
        [error] line."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        pc, port = h.one_route_proxy(self, h.backend_block(web.address), workers=2)
        self.assertEqual(h.request(port, "GET", "/").status, 200)
        for pid in pc.workers() + [pc.pid]:
            os.kill(pid, signal.SIGINT)
        self.assertEqual(pc.wait_exit(15), 0, pc.describe())
        self.assertNotRegex(pc.error_log(), r"\[error\]")


class DeadWorkerSharesTest(unittest.TestCase):
    def test_killed_workers_connections_are_given_back(self):
        """max_connections: 4 and 4 slow requests in flight fill the server;
        kill -9 of the workers that hold them: the master takes their share
        off the machine-wide count (logged), so that the replacements serve
        new requests with 200 instead of 503 for ever (issue #14 item 5:
        after 6 kills a server stayed at 17 of 20 with no traffic)."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        backend = h.backend_block(web.address, keepalive=0, response_timeout="60s")
        backend["servers"][0]["max_connections"] = 4
        pc, port = h.one_route_proxy(self, backend, workers=2)
        slow = []
        for i in range(4):
            c = h.Conn(port, timeout=60)
            c.send(h.build_request("GET", "/sleep?ms=30000&n=%d" % i, "t"))
            slow.append(c)
        self.addCleanup(lambda: [c.close() for c in slow])
        deadline = time.monotonic() + 5
        while len([q for q in web.requests()["requests"] if q["path"].startswith("/sleep")]) < 4:
            self.assertLess(time.monotonic(), deadline, "the slow requests did not arrive")
            time.sleep(0.05)
        self.assertEqual(h.request(port, "GET", "/full").status, 503)
        old = pc.workers()
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(pc.wait_workers(2, 10, exclude=old), pc.describe())
        self.assertIsNotNone(pc.wait_log(r"worker \d+ held \d+ server connections; no longer "
                                         r"counted", 5), pc.describe())
        time.sleep(0.3)
        for i in range(4):
            self.assertEqual(h.request(port, "GET", "/after/%d" % i).status, 200,
                             pc.error_log()[-2000:])


if __name__ == "__main__":
    h.main()
