#!/usr/bin/python3
"""Running out of descriptors and worker_connections (issue #3 item 6):
a worker that hits EMFILE keeps serving the connections it has, says so
in the error log, and accepts again by itself once descriptors free up;
at worker_connections it leaves new connections waiting in the backlog
and serves them when a connection closes.  Nothing is refused or reset."""

import os
import resource
import socket
import time
import unittest

import harness as h


def start_with_nofile(cfg, tmp, nofile):
    """Start portcullis with RLIMIT_NOFILE lowered to nofile, the hard
    limit too (the master raises the soft one up to the hard one to cover
    worker_connections); set in the child only."""
    pc = h.Portcullis(cfg, tmp=tmp, rlimits={resource.RLIMIT_NOFILE: (nofile, nofile)})
    pc.start()
    return pc


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)

    def config(self, tmp, port, **top):
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port,
                      "routes": [{"path_prefix": "/", "backend": "web"}]}]
        backends = {"web": h.backend_block(self.web.address)}
        return h.base_config(tmp, listeners, backends, workers=1, **top)

    def get(self, conn):
        conn.send(h.build_request("GET", "/x", "t"))
        return conn.read_response()

    def exhaust(self, pc, port, idle):
        """Open 80 idle clients (into idle) until the worker hits EMFILE."""
        for _ in range(80):
            idle.append(h.Conn(port, timeout=5))
        self.assertIsNotNone(
            pc.wait_log(r"accept: Too many open files; pausing accepts", 10),
            pc.error_log()[-2000:])

    def test_emfile_keeps_serving_and_recovers(self):
        """With 48 descriptors, 80 clients exhaust them: the worker logs
        "accept: Too many open files", a keep-alive client it already has
        is still served (over its pooled upstream connection), and once
        the idle clients leave, the ones left waiting and new ones are all
        served."""
        tmp = h.make_tmpdir()
        port = h.free_port()
        pc = start_with_nofile(self.config(tmp, port), tmp, 48)
        self.addCleanup(pc.stop)
        keep = h.Conn(port)
        self.addCleanup(keep.close)
        for _ in range(3):   # leaves an idle upstream connection in the pool
            self.assertEqual(self.get(keep).status, 200)
        idle = []
        try:
            self.exhaust(pc, port, idle)
            self.assertEqual(self.get(keep).status, 200,
                             "an existing client must still be served")
            waiting = idle[-1]    # surely not accepted yet
            waiting.send(h.build_request("GET", "/late", "t"))
        finally:
            for c in idle[:-1]:
                c.close()
        r = waiting.read_response()
        self.assertEqual(r.status, 200, "a client left in the backlog is served later")
        waiting.close()
        for _ in range(5):
            self.assertEqual(h.request(port, "GET", "/after").status, 200)

    def test_emfile_is_not_the_servers_fault(self):
        """Out of descriptors when connecting to the server (keepalive 0,
        so no pooled connection to fall back on): that request gets 502,
        logged as "on this side", and the lone server is not marked down
        (max_fails 1, panic off) -- once descriptors free up it serves
        again at once (issue #14 item 3)."""
        tmp = h.make_tmpdir()
        port = h.free_port()
        cfg = self.config(tmp, port)
        cfg["backends"]["web"].update(keepalive=0, panic_threshold="0%",
                                      passive={"max_fails": 1, "fail_timeout": "30s"})
        pc = start_with_nofile(cfg, tmp, 48)
        self.addCleanup(pc.stop)
        keep = h.Conn(port)
        self.addCleanup(keep.close)
        self.assertEqual(self.get(keep).status, 200)
        idle = []
        try:
            self.exhaust(pc, port, idle)
            self.assertEqual(self.get(keep).status, 502)
            self.assertIsNotNone(pc.wait_log(r"backend web: connect \S+: Too many open files "
                                             r"\(on this side; not counted against the "
                                             r"server\)", 5), pc.error_log()[-2000:])
        finally:
            for c in idle:
                c.close()
        time.sleep(0.3)
        for _ in range(3):
            self.assertEqual(h.request(port, "GET", "/after").status, 200, pc.error_log()[-2000:])
        self.assertNotIn("(passive)", pc.error_log())

    def test_emfile_drops_cached_pipes(self):
        """Empty splice pipes are kept for reuse, two descriptors each; a
        worker that runs out of descriptors closes them, so that they serve
        clients instead."""
        tmp = h.make_tmpdir()
        port = h.free_port()
        pc = start_with_nofile(self.config(tmp, port), tmp, 64)
        self.addCleanup(pc.stop)
        worker = pc.workers()[0]

        def pipes():
            n = 0
            for fd in os.listdir("/proc/%d/fd" % worker):
                try:    # descriptors come and go while we look
                    n += os.readlink("/proc/%d/fd/%s" % (worker, fd)).startswith("pipe:")
                except FileNotFoundError:
                    pass
            return n

        base = pipes()
        conns = [h.Conn(port, timeout=10) for _ in range(5)]
        try:
            for c in conns:     # five 2 MiB bodies spliced at once
                c.send(h.build_request("GET", "/big?size=%d" % (2 << 20), "t"))
            time.sleep(0.5)
            for c in conns:
                self.assertEqual(c.read_response(keep_body=False).body_length, 2 << 20)
        finally:
            for c in conns:
                c.close()
        self.assertGreaterEqual(pipes(), base + 2, "no splice pipe was kept for reuse")
        idle = []
        try:
            self.exhaust(pc, port, idle)
            self.assertEqual(pipes(), base, "cached pipes kept at EMFILE")
        finally:
            for c in idle:
                c.close()
        self.assertEqual(h.request(port, "GET", "/after").status, 200)

    def test_silent_connections_hold_no_buffer(self):
        """Connections that have sent nothing yet hold no request buffer:
        the worker's RSS grows by well under 2 KiB for each (the buffer is
        16 KiB; issue #14 item 9 measured 8.5 KiB each on an earlier main).
        This build measured 631 B (897 B under ASan) a connection."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 8192)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        n = min(2000, want - 300)
        tmp = h.make_tmpdir()
        port = h.free_port()
        pc = h.Portcullis(self.config(tmp, port, worker_connections=n + 100), tmp=tmp)
        pc.start()
        self.addCleanup(pc.stop)
        worker = pc.workers()[0]

        def rss_kib():
            with open("/proc/%d/status" % worker) as f:
                return int([l for l in f if l.startswith("VmRSS")][0].split()[1])

        self.assertEqual(h.request(port, "GET", "/warm").status, 200)
        time.sleep(0.3)
        before = rss_kib()
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        self.addCleanup(lambda: [s.close() for s in socks])
        deadline = time.monotonic() + 10   # until the worker accepted them all
        while len(os.listdir("/proc/%d/fd" % worker)) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        per_conn = (rss_kib() - before) * 1024 / n
        print("\n%d silent connections: %.0f B each" % (n, per_conn))
        self.assertLess(per_conn, 2048)

    def nofile_of(self, pid):
        with open("/proc/%d/limits" % pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        return int(line.split()[3])

    def test_nofile_raised_for_worker_connections(self):
        """worker_connections 1000 needs about 2,256 descriptors: with a
        soft RLIMIT_NOFILE of 1024 under a hard one of 4096 the master
        raises the soft one (logged) and the workers inherit it; with the
        hard one at 1024 it warns instead (issue #14 item 9)."""
        for limits, want, log in (((1024, 4096), 2256, r"RLIMIT_NOFILE raised to 2256 "
                                   r"for worker_connections 1000"),
                                  ((1024, 1024), 1024, r"worker_connections 1000 needs about "
                                   r"2256 descriptors but RLIMIT_NOFILE is 1024")):
            tmp = h.make_tmpdir()
            port = h.free_port()
            pc = h.Portcullis(self.config(tmp, port, worker_connections=1000), tmp=tmp,
                              rlimits={resource.RLIMIT_NOFILE: limits})
            pc.start()
            self.addCleanup(pc.stop)
            self.assertIsNotNone(pc.wait_log(log, 5), pc.error_log()[-2000:])
            self.assertEqual(self.nofile_of(pc.workers()[0]), want)

    def test_worker_connections_backlog(self):
        """worker_connections: 4 -- the fifth client waits (not refused,
        not reset) and is answered as soon as one of the four closes; the
        log says why."""
        tmp = h.make_tmpdir()
        port = h.free_port()
        pc = h.Portcullis(self.config(tmp, port, worker_connections=4), tmp=tmp)
        pc.start()
        self.addCleanup(pc.stop)
        held = [h.Conn(port) for _ in range(4)]
        for c in held:
            self.assertEqual(self.get(c).status, 200)
        fifth = h.Conn(port, timeout=10)
        fifth.send(h.build_request("GET", "/fifth", "t"))
        time.sleep(0.5)
        fifth.sock.settimeout(0.5)
        with self.assertRaises(OSError):   # nothing yet: it waits in the backlog
            fifth.sock.recv(1, 0)
        fifth.sock.settimeout(10)
        self.assertIsNotNone(pc.wait_log(r"worker_connections \(4\) reached", 5))
        held[0].close()
        self.assertEqual(fifth.read_response().status, 200)
        fifth.close()
        for c in held[1:]:
            c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
