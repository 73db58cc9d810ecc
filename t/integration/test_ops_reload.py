#!/usr/bin/python3
"""Synchronous, lossless reload (issue #5): `portcullis reload` every 200 ms
under a keep-alive load and a connection-per-request load, reloads of broken
and good configs through the CLI, 1,000 reloads in a row without a leak, and
concurrent reloads queued instead of lost."""

import os
import re
import socket
import sys
import threading
import time
import unittest

import harness as h
import opslib as ops

LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "


def web_config(tmp, port, routes, backends, workers=2, **top):
    listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port, "routes": routes}]
    return h.base_config(tmp, listeners, backends, workers=workers, **top)


class ReloadUnderLoadTest(unittest.TestCase):
    """One run: wrk keep-alive (64 connections) and wrk with a new connection
    per request, both for 10 s, while `portcullis reload` runs every 200 ms."""

    DURATION = 10
    PERIOD = 0.2

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.ngx = h.Nginx(cls.tmp)
        cls.addClassCleanup(cls.ngx.stop)
        cls.port = h.free_port()
        cls.pc = h.Portcullis(cls.config(0), tmp=cls.tmp)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

        url = "http://127.0.0.1:%d/" % cls.port
        keep = ops.Wrk(cls.tmp, url, threads=1, conns=64, duration=cls.DURATION)
        fresh = ops.Wrk(cls.tmp, url, threads=1, conns=8, duration=cls.DURATION, close=True)
        cls.reloads = []          # (rc, elapsed, stderr) per reload
        t0 = time.monotonic()
        time.sleep(0.3)
        i = 0
        while time.monotonic() - t0 < cls.DURATION - 0.5:
            i += 1
            cls.pc.write_config(cls.config(i))
            t = time.monotonic()
            rc, out, err = ops.ctl(cls.pc, "reload", timeout=45)
            cls.reloads.append((rc, time.monotonic() - t, err))
            time.sleep(max(0.0, cls.PERIOD - (time.monotonic() - t)))
        cls.keep = keep.wait()
        cls.keep_out = keep.out
        cls.fresh = fresh.wait()
        cls.fresh_out = fresh.out
        sys.stderr.write("keep-alive wrk:\n%s\nnew-connection wrk:\n%s\n%d reloads\n"
                         % (keep.out, fresh.out, len(cls.reloads)))

    @classmethod
    def config(cls, i):
        # alternate between two equivalent route sets so that every reload is real
        routes = [{"path_prefix": "/x%d" % (i % 2), "backend": "ngx"},
                  {"path_prefix": "/", "backend": "ngx"}]
        return web_config(cls.tmp, cls.port, routes, {"ngx": h.backend_block(cls.ngx.address)})

    def test_every_reload_succeeded(self):
        """About 50 reloads, every `portcullis reload` exited 0.  How many fit
        in the load window depends on the machine (each waits until its
        generation serves), so the count is only bounded from below loosely:
        a test about losing nothing, not about speed (14 fitted on a 2-core
        machine with two other ASan builds running)."""
        self.assertGreaterEqual(len(self.reloads), 10, self.reloads)
        bad = [r for r in self.reloads if r[0] != 0]
        self.assertEqual(bad, [], self.pc.error_log()[-3000:])
        self.assertIsNotNone(
            self.pc.wait_log(LOG_PREFIX + r"reload: generation %d serving\b"
                             % (len(self.reloads) + 1), 5), self.pc.error_log()[-3000:])

    def test_keepalive_load_no_failure(self):
        """64 keep-alive connections: zero socket errors and zero non-2xx."""
        r = self.keep
        self.assertIsNotNone(r["requests"], self.keep_out)
        self.assertGreater(r["requests"], 5000, self.keep_out)
        self.assertEqual(r["lua_non2xx"], 0, self.keep_out)
        self.assertEqual(ops.failures(r), 0, self.keep_out)

    def test_new_connection_load_no_refused_or_reset(self):
        """A new connection per request: zero refused (connect), reset
        (read/write) or timed-out connections, zero non-2xx."""
        r = self.fresh
        self.assertIsNotNone(r["requests"], self.fresh_out)
        self.assertGreater(r["requests"], 500, self.fresh_out)
        self.assertEqual((r["connect"], r["read"], r["write"], r["timeout"]), (0, 0, 0, 0),
                         self.fresh_out)
        self.assertEqual(r["lua_non2xx"], 0, self.fresh_out)

    def test_old_generations_exit(self):
        """After the load, only the serving generation's 2 workers are left."""
        self.assertIsNotNone(self.pc.wait_workers(2, timeout=10), self.pc.workers())


class ReloadCliTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = h.Backend("alpha")
        cls.addClassCleanup(cls.a.stop)
        cls.b = h.Backend("beta")
        cls.addClassCleanup(cls.b.stop)

    def config(self, backend="a", workers=2, **top):
        routes = [{"path_prefix": "/", "backend": backend}]
        backends = {"a": h.backend_block(self.a.address), "b": h.backend_block(self.b.address)}
        return web_config(self.tmp, self.port, routes, backends, workers=workers, **top)

    def start(self, workers=2, env=None):
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        self.pc = h.Portcullis(self.config(workers=workers), tmp=self.tmp, env=env)
        self.addCleanup(self.pc.stop)
        self.pc.start()
        self.fds_before = ops.fd_list(self.pc.pid)
        return self.pc

    def backend_of(self, path="/"):
        r = h.request(self.port, "GET", path)
        self.assertEqual(r.status, 200)
        return r.header("X-Backend")

    def test_broken_config_exits_1_with_errors(self):
        """A broken config: exit 1, every FILE:LINE:COL error on stderr, the
        old config keeps serving with the same workers."""
        pc = self.start()
        workers = pc.workers()
        text = h.to_yaml(self.config(backend="b"))
        lines = text.splitlines()
        bad = next(i for i, l in enumerate(lines) if l.strip() == "weight: 1")
        lines[bad] = lines[bad].replace("weight: 1", "weight: 0")
        lines.insert(0, "bogus_key: 1")
        pc.write_config("\n".join(lines) + "\n")
        rc, out, err = ops.ctl(pc, "reload")
        self.assertEqual(rc, 1, (out, err))
        path = re.escape(pc.config_path)
        self.assertRegex(err, r"(?m)^%s:1:1: .*bogus_key" % path)
        self.assertRegex(err, r"(?m)^%s:%d:\d+: \S" % (path, bad + 2))
        self.assertRegex(err, r"(?m)^portcullis: reload failed, generation 1 keeps serving$")
        for i in range(10):
            self.assertEqual(self.backend_of("/old/%d" % i), "alpha")
        self.assertEqual(pc.workers(), workers)
        self.assertIsNotNone(pc.wait_log(LOG_PREFIX + r"reload failed, generation 1 keeps "
                                         r"serving:$", 2))

    def test_new_route_live_when_reload_returns(self):
        """Each `portcullis reload` exits 0 and the very next request, on a
        new connection, gets the new route (20 alternations)."""
        pc = self.start()
        self.assertEqual(self.backend_of(), "alpha")
        for i in range(20):
            want, name = ("b", "beta") if i % 2 == 0 else ("a", "alpha")
            pc.write_config(self.config(backend=want))
            rc, out, err = ops.ctl(pc, "reload")
            self.assertEqual(rc, 0, err)
            self.assertEqual(out.strip(), "generation %d serving" % (i + 2))
            self.assertEqual(self.backend_of("/right-after/%d" % i), name,
                             "reload %d returned before the new route served" % i)

    def test_bind_conflict_keeps_old(self):
        """A reload whose new bind address is taken fails before anything
        changes: exit 1 with the listen error; the old generation serves."""
        pc = self.start()
        workers = pc.workers()
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        cfg = self.config(backend="b")
        cfg["listeners"][0]["bind"] = ["127.0.0.1:%d" % self.port,
                                       "127.0.0.1:%d" % taken.getsockname()[1]]
        pc.write_config(cfg)
        rc, out, err = ops.ctl(pc, "reload")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("listen on 127.0.0.1:%d: Address already in use" % taken.getsockname()[1],
                      err)
        self.assertEqual(self.backend_of(), "alpha")
        self.assertEqual(pc.workers(), workers)
        self.assertEqual(len([l for l in ops.fd_list(pc.pid) if "socket:" in l]),
                         len([l for l in self.fds_before if "socket:" in l]))

    def test_workers_that_cannot_start(self):
        """New workers that die before they are ready (here: the master lacks
        CAP_SETUID, so the new generation's workers cannot become `nobody`):
        the reload fails with the reason, they are gone, and the old
        generation keeps serving untouched; a later good reload works."""
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        pc = h.Portcullis(self.config(user="root", group="root", allow_root_workers=True),
                          tmp=self.tmp)
        self.addCleanup(pc.stop)
        pc._stdout = open(pc.stdout_path, "wb")
        pc._stderr = open(pc.stderr_path, "wb")
        pc.proc = h.spawn(["setpriv", "--bounding-set", "-setuid", "--", h.binary(),
                           "-c", pc.config_path], stdout=pc._stdout, stderr=pc._stderr,
                          env=pc.env)
        self.assertIsNotNone(pc.wait_workers(2, timeout=15), pc.describe())
        self.assertTrue(h.wait_port(self.port, timeout=5))
        workers = pc.workers()
        pc.write_config(self.config(backend="b", user="nobody", group="nogroup"))
        rc, out, err = ops.ctl(pc, "reload")
        self.assertEqual(rc, 1, (out, err, pc.describe()))
        self.assertRegex(err, r"generation 2 did not start: worker \d+ exited with status 2 "
                         r"before it was ready")
        self.assertRegex(err, r"(?m)^portcullis: reload failed, generation 1 keeps serving$")
        self.assertIsNotNone(pc.wait_workers(2, timeout=5), pc.workers())
        self.assertEqual(pc.workers(), workers)
        for i in range(10):
            self.assertEqual(self.backend_of("/still-old/%d" % i), "alpha")
        pc.write_config(self.config(backend="b", user="root", group="root",
                                    allow_root_workers=True))
        rc, out, err = ops.ctl(pc, "reload")
        self.assertEqual((rc, out.strip()), (0, "generation 3 serving"), err)
        self.assertEqual(self.backend_of(), "beta")

    def test_concurrent_reloads_both_succeed(self):
        """Two `portcullis reload` at once: both exit 0; the second is queued
        behind the first and runs after it (never concurrently, never lost)."""
        pc = self.start()
        for rnd in range(3):
            pc.write_config(self.config(backend="b" if rnd % 2 == 0 else "a"))
            procs = [ops.ctl_async(pc, "reload") for _ in range(2)]
            results = [ops.finish(p) for p in procs]
            for rc, out, err in results:
                self.assertEqual(rc, 0, (out, err, pc.error_log()[-2000:]))
                self.assertRegex(out, r"^generation \d+ serving\n$")
        log = pc.error_log()
        # never two generations starting at once: every "reading" is followed
        # by its outcome before the next "reading"
        events = re.findall(r"reload: (reading|generation \d+ serving)", log)
        for a, b in zip(events[::2], events[1::2]):
            self.assertEqual(a, "reading")
            self.assertTrue(b.startswith("generation"), events)
        self.assertEqual(self.backend_of(), "beta")

    def test_thousand_reloads_no_leak(self):
        """1,000 reloads in a row (workers: 1): the master's descriptors at the
        end are those after the first 10, its RSS is within 1 MiB of it, and no
        old-generation worker is left.  (ASan's quarantine is switched off so
        that RSS shows leaks, not freed memory held back by the sanitizer.)"""
        env = {"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=0:"
                               "thread_local_quarantine_size_kb=0"}
        pc = self.start(workers=1, env=env)
        sock = os.path.join(self.tmp, "pc.sock")
        fds10 = rss10 = None
        for i in range(1000):
            ans = ops.ctl_raw(sock, "reload")
            self.assertTrue(ops.verdict(ans).startswith("OK generation %d serving" % (i + 2)),
                            (i, ans))
            if i == 9:
                fds10, rss10 = ops.fd_list(pc.pid), ops.rss_kib(pc.pid)
        fds, rss = ops.fd_list(pc.pid), ops.rss_kib(pc.pid)
        self.assertEqual(len(fds), len(fds10), (fds10, fds))
        self.assertLess(rss - rss10, 1024, "RSS %d KiB after 10, %d KiB after 1000" % (rss10, rss))
        self.assertIsNotNone(pc.wait_workers(1, timeout=10), pc.workers())
        rc, out, err = ops.ctl(pc, "status")
        self.assertEqual(rc, 0, err)
        self.assertEqual(list(ops.gen_workers(out)), [1001], out)
        self.assertEqual(self.backend_of(), "alpha")


if __name__ == "__main__":
    h.main()
