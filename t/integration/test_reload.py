#!/usr/bin/python3
"""Process management: SIGHUP reloads (good, broken, under load, with requests
in flight), a killed worker, SIGQUIT graceful stop, SIGTERM fast stop and
SIGUSR1 log reopening.  Each test runs its own portcullis."""

import os
import re
import signal
import threading
import time
import unittest

import harness as h
import opslib as ops

LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "


class ReloadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = h.Backend("alpha")
        cls.addClassCleanup(cls.a.stop)
        cls.b = h.Backend("beta")
        cls.addClassCleanup(cls.b.stop)

    def config(self, backend="a", workers=2):
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % self.port,
                      "routes": [{"path_prefix": "/", "backend": backend}]}]
        backends = {"a": h.backend_block(self.a.address),
                    "b": h.backend_block(self.b.address)}
        return h.base_config(self.tmp, listeners, backends, workers=workers)

    def start(self, workers=2):
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        self.pc = h.Portcullis(self.config(workers=workers), tmp=self.tmp)
        self.addCleanup(self.pc.stop)
        self.pc.start()
        return self.pc

    def backend_of(self, path="/"):
        r = h.request(self.port, "GET", path)
        self.assertEqual(r.status, 200)
        return r.header("X-Backend")

    def wait_backend(self, want, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.backend_of() == want:
                return True
            time.sleep(0.05)
        return False

    def wait_in_backend(self, backend, path, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(q["path"] == path for q in backend.requests()["requests"]):
                return True
            time.sleep(0.02)
        return False

    # -- reloads -------------------------------------------------------------
    def test_reload_changes_route(self):
        """SIGHUP with a new route: the new route serves within 5 s, the log says
        'reload: generation 2 serving', and new connections all get the new route."""
        pc = self.start()
        self.assertEqual(self.backend_of(), "alpha")
        pc.write_config(self.config(backend="b"))
        pc.send_signal(signal.SIGHUP)
        self.assertTrue(self.wait_backend("beta"), "new route not served:\n" + pc.describe())
        self.assertIsNotNone(pc.wait_log(LOG_PREFIX + r"reload: generation 2 serving\b", 5),
                             pc.error_log()[-2000:])
        for i in range(10):
            self.assertEqual(self.backend_of("/after/%d" % i), "beta")

    def test_reload_broken_config_keeps_old(self):
        """SIGHUP with a broken config: 'reload failed, generation 1 keeps serving'
        then the FILE:LINE:COL error; the old config and workers keep serving.
        A fixed config then reloads fine."""
        pc = self.start()
        workers = pc.workers()
        text = h.to_yaml(self.config(backend="b"))
        lines = text.splitlines()
        bad = next(i for i, l in enumerate(lines) if l.strip() == "weight: 1")
        lines[bad] = lines[bad].replace("weight: 1", "weight: 0")
        pc.write_config("\n".join(lines) + "\n")
        pc.send_signal(signal.SIGHUP)
        m = pc.wait_log(LOG_PREFIX + r"reload failed, generation 1 keeps serving\b", 5)
        self.assertIsNotNone(m, pc.error_log()[-2000:])
        err = pc.wait_log(re.escape(pc.config_path) + r":%d:\d+: \S" % (bad + 1), 5, m.end())
        self.assertIsNotNone(err, "no FILE:LINE:COL line after the failure:\n"
                             + pc.error_log()[-2000:])
        for i in range(10):
            self.assertEqual(self.backend_of("/old/%d" % i), "alpha")
        self.assertEqual(pc.workers(), workers, "workers changed after a failed reload")

        pc.write_config(self.config(backend="b"))
        pc.send_signal(signal.SIGHUP)
        self.assertTrue(self.wait_backend("beta"), pc.describe())
        self.assertIsNotNone(pc.wait_log(LOG_PREFIX + r"reload: generation \d+ serving\b", 5))

    def test_reload_alias_bomb_keeps_master(self):
        """SIGHUP with a 1.1 MB file in which a 1 MiB scalar anchor is used
        14,000 times (14 GB once expanded; it used to kill the master): the
        reload fails at once with the located error, and the same master
        and workers keep serving (issue #14 item 4)."""
        pc = self.start()
        workers = pc.workers()
        cfg = self.config(backend="b")
        del cfg["defaults"]
        bomb = "defaults:\n  hide_response_headers: [&a %s, %s]\n" % (
            "X" * (1 << 20), ", ".join(["*a"] * 14000))
        pc.write_config(bomb + h.to_yaml(cfg))
        t0 = time.monotonic()
        pc.send_signal(signal.SIGHUP)
        m = pc.wait_log(LOG_PREFIX + r"reload failed, generation 1 keeps serving\b", 10)
        self.assertIsNotNone(m, pc.error_log()[-2000:])
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIsNotNone(pc.wait_log(
            re.escape(pc.config_path) + r":2:\d+: this scalar of 1048576 bytes is used "
            r"14001 times through aliases: the configuration would expand past 8 MiB",
            5, m.end()), pc.error_log()[-2000:])
        self.assertIsNone(pc.proc.poll(), "the master died")
        self.assertEqual(self.backend_of(), "alpha")
        self.assertEqual(pc.workers(), workers)

    def test_reload_under_load(self):
        """A SIGHUP every second during 6 s of keep-alive and fresh-connection load:
        no refused or reset connection, no incomplete response, no non-2xx
        (portcullis(8) RELOADS: no keep-alive client sees an error)."""
        pc = self.start()
        load = h.LoadGen(self.port, duration=6.5, keepalive_threads=2, fresh_threads=2)
        self.addCleanup(load.stop)
        load.start()
        for i in range(6):
            time.sleep(1.0)
            pc.write_config(self.config(backend="b" if i % 2 == 0 else "a"))
            pc.send_signal(signal.SIGHUP)
        load.join()
        self.assertEqual(load.errors[:20], [], "%d errors, %d ok" % (len(load.errors), load.ok))
        self.assertGreater(load.ok, 100)
        self.assertIsNotNone(pc.wait_log(LOG_PREFIX + r"reload: generation 7 serving\b", 10),
                             "6 reloads did not all happen:\n" + pc.error_log()[-3000:])
        # The old generations finish and exit: back to 2 workers.
        self.assertIsNotNone(pc.wait_workers(2, timeout=10),
                             "old generations still running: %r" % pc.workers())

    def test_reload_changes_bind(self):
        """A reload that moves the listener: the new address serves and the old
        one is closed (portcullis(8) RELOADS: addresses no longer configured
        are closed)."""
        pc = self.start()
        old = self.port
        cfg = self.config()
        new = h.free_port()
        cfg["listeners"][0]["bind"] = "127.0.0.1:%d" % new
        pc.write_config(cfg)
        pc.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_port(new, timeout=5), pc.describe())
        r = h.request(new, "GET", "/moved")
        self.assertEqual((r.status, r.body), (200, b"alpha /moved\n"))
        deadline = time.monotonic() + 10
        while h.wait_port(old, timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.1)
        with self.assertRaises(ConnectionRefusedError):
            h.request(old, "GET", "/old-address")

    def test_reload_changes_worker_count(self):
        """A reload from 2 to 3 workers: once the old generation is gone the
        master has exactly 3 workers, all new."""
        pc = self.start()
        old = pc.workers()
        pc.write_config(self.config(workers=3))
        pc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(pc.wait_log(r"reload: generation 2 serving", 5), pc.describe())
        self.assertIsNotNone(pc.wait_workers(3, timeout=10, exclude=old),
                             "workers: %r (old %r)" % (pc.workers(), old))
        self.assertEqual(self.backend_of("/three"), "alpha")

    def test_reload_inflight_request_finishes(self):
        """A request in flight during a reload completes with 200 and
        Connection: close, then the connection closes (RFC 9112 §9.6)."""
        pc = self.start()
        with h.Conn(self.port, timeout=15) as c:
            c.send(h.build_request("GET", "/sleep?ms=1500"))
            self.assertTrue(self.wait_in_backend(self.a, "/sleep?ms=1500"))
            pc.write_config(self.config(backend="b"))
            pc.send_signal(signal.SIGHUP)
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"alpha slept 1500\n"))
            self.assertIn("close", (r.header("Connection") or "").lower(), r.headers)
            self.assertTrue(c.wait_closed(5))
        self.assertTrue(self.wait_backend("beta"))

    def test_reload_idle_keepalive_connection(self):
        """An idle keep-alive connection opened before a reload: its next request
        is still answered (with Connection: close) or it was closed cleanly
        without a request lost (RFC 9112 §9.3, §9.6)."""
        pc = self.start()
        with h.Conn(self.port) as c:
            c.send(h.build_request("GET", "/before"))
            self.assertEqual(c.read_response().status, 200)
            pc.write_config(self.config(backend="b"))
            pc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(pc.wait_log(r"reload: generation 2 serving", 5))
            if not c.peer_closed():
                c.send(h.build_request("GET", "/idle-next"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertTrue(r.closes, "old generation answered without Connection: close")
        self.assertEqual(self.backend_of("/new-conn"), "beta")

    # -- worker supervision ------------------------------------------------
    def test_killed_worker_replaced(self):
        """kill -9 of a worker: a new worker within ~1.5 s, the death is logged
        with its signal, and requests keep succeeding."""
        pc = self.start()
        workers = pc.workers()
        victim = workers[0]
        start = pc.log_size()
        results = []

        def hammer():
            for i in range(30):
                try:
                    results.append(h.request(self.port, "GET", "/k/%d" % i).status)
                except Exception as e:  # noqa: BLE001
                    results.append(repr(e))

        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        new = pc.wait_workers(2, timeout=5, exclude=[victim])
        elapsed = time.monotonic() - t0
        t.join(60)
        self.assertIsNotNone(new, "no replacement worker: %r" % pc.workers())
        self.assertLess(elapsed, 2.0, "replacement took %.2fs" % elapsed)
        self.assertIn(workers[1], new)
        self.assertIsNotNone(
            pc.wait_log(LOG_PREFIX + r"worker %d \(generation 1\) killed by signal 9 \(Killed\)$"
                        % victim, 5, start), pc.error_log()[-2000:])
        self.assertEqual(results, [200] * 30)
        for i in range(10):
            self.assertEqual(h.request(self.port, "GET", "/after-kill").status, 200)

    # -- stopping ------------------------------------------------------------
    def test_quit_graceful(self):
        """SIGQUIT: the in-flight request still gets its 200, then the master
        exits 0 and every worker is gone."""
        pc = self.start()
        workers = pc.workers()
        with h.Conn(self.port, timeout=15) as c:
            c.send(h.build_request("GET", "/sleep?ms=1000"))
            self.assertTrue(self.wait_in_backend(self.a, "/sleep?ms=1000"))
            pc.send_signal(signal.SIGQUIT)
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"alpha slept 1000\n"))
        self.assertEqual(pc.wait_exit(10), 0, pc.describe())
        time.sleep(0.5)
        self.assertEqual([p for p in workers if h.pid_alive(p)], [])

    def test_quit_bounded_by_shutdown_timeout(self):
        """SIGQUIT with a request that would take 20 s: shutdown_timeout (2s)
        bounds the stop; the master and its workers are gone within a few
        seconds."""
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        cfg = self.config()
        cfg["shutdown_timeout"] = "2s"
        pc = h.Portcullis(cfg, tmp=self.tmp)
        self.addCleanup(pc.stop)
        pc.start()
        workers = pc.workers()
        with h.Conn(self.port, timeout=30) as c:
            c.send(h.build_request("GET", "/sleep?ms=20000"))
            self.assertTrue(self.wait_in_backend(self.a, "/sleep?ms=20000"))
            t0 = time.monotonic()
            pc.send_signal(signal.SIGQUIT)
            self.assertIsNotNone(pc.wait_exit(15), "master still running after 15 s")
            elapsed = time.monotonic() - t0
            self.assertLess(elapsed, 8.0)
            self.assertGreater(elapsed, 1.0)
            self.assertTrue(c.wait_closed(3), "client connection not closed")
        self.assertEqual([p for p in workers if h.pid_alive(p)], [])

    def test_term_fast_stop(self):
        """SIGTERM: the master and all workers exit promptly, status 0."""
        pc = self.start()
        workers = pc.workers()
        pc.send_signal(signal.SIGTERM)
        self.assertEqual(pc.wait_exit(10), 0, pc.describe())
        deadline = time.monotonic() + 5
        while any(h.pid_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p for p in workers if h.pid_alive(p)], [])
        self.assertFalse(h.wait_port(self.port, timeout=0.5), "port still accepting")

    def test_usr1_reopens_error_log(self):
        """SIGUSR1: after the log file is moved away, a new one is opened and
        later lines go there."""
        pc = self.start()
        path = pc.error_log_path
        os.rename(path, path + ".1")
        pc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(path), "error log not reopened")
        pc.write_config(self.config(backend="b"))
        pc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(pc.wait_log(r"reload: generation 2 serving", 5), pc.describe())
        with open(path + ".1") as f:
            self.assertNotIn("generation 2 serving", f.read())

    def test_reopen_command(self):
        """`portcullis reopen` (logrotate's postrotate): the same as
        SIGUSR1, answered by the master: exit 0 and "log files reopened",
        and the next lines go to the new file."""
        pc = self.start()
        path = pc.error_log_path
        os.rename(path, path + ".1")
        rc, out, err = ops.ctl(pc, "reopen")
        self.assertEqual((rc, out.strip()), (0, "log files reopened"), err)
        self.assertTrue(os.path.exists(path))
        pc.write_config(self.config(backend="b"))
        pc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(pc.wait_log(r"reload: generation 2 serving", 5), pc.describe())


if __name__ == "__main__":
    h.main()
