#!/usr/bin/python3
"""`portcullis check` (issue #16, portcullis(8) COMMANDS), the health command
keepalived's track_script runs: exit 0 and no output while the serving
generation accepts, including across reloads and binary upgrades; exit 1 with one line saying
why when the master was killed, is stopped, is stopping, when no worker of
the serving generation turns its loop (all SIGSTOPped) and when nothing
listens on the control socket; always within its bound (0.7 s, plus the
start of its process)."""

import os
import signal
import subprocess
import threading
import time
import unittest

import harness as h
import opslib as ops

CHECK_MAX_S = 1.5   # 0.7 s of the command's, and its process start


class CheckTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = h.Backend("alpha")
        cls.addClassCleanup(cls.a.stop)

    def start(self, workers=2):
        backend = h.backend_block(self.a.address, response_timeout="15s")
        cfg, self.tmp, self.port = h.one_route_config(backend, workers=workers)
        self.pc = h.Portcullis(cfg, tmp=self.tmp)
        self.addCleanup(self.pc.stop)
        self.pc.start()
        # start() sees the workers and the port; the control socket answers
        # once generation 1 serves
        self.assertTrue(self.pc.wait_log(r"generation 1 serving", timeout=10), self.pc.describe())
        return self.pc

    def check(self, pc=None):
        """(rc, stdout, stderr, seconds) of one `portcullis check`."""
        t0 = time.monotonic()
        rc, out, err = ops.ctl(pc or self.pc, "check", timeout=10)
        took = time.monotonic() - t0
        # the command's own bound, 0.7 s, is asserted in t/unit/test_cli.c;
        # here a process starts (with ASan, on a busy machine) around it
        self.assertLess(took, CHECK_MAX_S, "check took %.3fs (%r)" % (took, err))
        return rc, out, err, took

    def assert_fails(self, reason, pc=None):
        rc, out, err, _ = self.check(pc)
        self.assertEqual(rc, 1, (out, err))
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)  # one line
        self.assertIn(reason, err)
        return err

    def test_serving_is_silent(self):
        """A serving node: exit 0, nothing on stdout or stderr, and the
        master does not log each check at info level (keepalived asks every
        second)."""
        pc = self.start()
        for _ in range(5):
            rc, out, err, _ = self.check()
            self.assertEqual((rc, out, err), (0, "", ""))
        self.assertEqual(h.request(self.port).status, 200)
        self.assertNotIn("control socket: check", pc.error_log())

    def test_ok_across_reloads(self):
        """A reload is not an outage: checks run back to back during five
        reloads all pass (a failure would move the address for nothing)."""
        pc = self.start()

        def reloads():
            for _ in range(5):
                rc, out, err = ops.ctl(pc, "reload")
                self.assertEqual(rc, 0, err)

        self.assertEqual(self.checks_during(pc, reloads), [], "checks failed during reloads")

    def checks_during(self, pc, action):
        """Run checks back to back while action() runs; the failed ones."""
        results, stop = [], threading.Event()

        def loop():
            while not stop.is_set():
                t0 = time.monotonic()
                results.append((t0, ops.ctl(pc, "check", timeout=10)))

        t = threading.Thread(target=loop)
        t.start()
        try:
            time.sleep(0.3)
            start = time.monotonic()
            action()
            end = time.monotonic()
        finally:
            stop.set()
            t.join(15)
        during = [r for t0, r in results if start <= t0 <= end]
        self.assertGreaterEqual(len(during), 2, "too few checks ran during it")
        return [r for _, r in results if r[0] != 0]

    def test_ok_across_upgrade(self):
        """A binary upgrade is not an outage either: the new master takes
        the control socket over once it serves, and every check passes."""
        pc = self.start()
        pidfile = os.path.join(self.tmp, "pc.pid")

        def upgrade():
            rc, out, err = ops.ctl(pc, "upgrade")
            new = ops.read_pid(pidfile, 5)
            if new and new != pc.pid:
                ops.adopt_master(new)
                self.addCleanup(ops.stop_master, new)
            self.assertEqual(rc, 0, (out, err, pc.describe()))
            self.assertEqual(pc.wait_exit(15), 0, pc.describe())
            time.sleep(0.5)

        self.assertEqual(self.checks_during(pc, upgrade), [], "checks failed during the upgrade")

    def test_master_killed(self):
        """kill -9 of the master (its workers follow it): exit 1, no master
        is running."""
        pc = self.start()
        workers = pc.workers()
        pc.proc.kill()
        pc.proc.wait(5)
        deadline = time.monotonic() + 5
        while any(h.pid_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assert_fails("portcullis: no master is running")

    def test_master_stopped(self):
        """A master that does not answer (SIGSTOP): exit 1 within the
        command's own bound, not keepalived's script timeout."""
        pc = self.start()
        pc.send_signal(signal.SIGSTOP)
        try:
            err = self.assert_fails("portcullis: check: no answer from the master in time")
        finally:
            pc.send_signal(signal.SIGCONT)
        self.assertEqual(self.check()[0], 0, err)

    def test_workers_stopped(self):
        """Every worker of the serving generation SIGSTOPped: still ready
        to the master, but their heartbeats go stale and check fails within
        about 2 s; SIGCONT and it passes again."""
        pc = self.start()
        workers = pc.workers()
        self.assertEqual(len(workers), 2)
        for p in workers:
            os.kill(p, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            rc = 0
            while rc == 0 and time.monotonic() - t0 < 5:
                rc, out, err, _ = self.check()
                time.sleep(0.1)
            self.assertEqual(rc, 1, "check still passes with every worker stopped")
            self.assertLess(time.monotonic() - t0, 3.5)
            self.assertEqual(err, "portcullis: check failed: generation 1: no worker has "
                             "turned its event loop for 2000ms (2 ready: stopped or hung)\n")
            # one worker back is enough
            os.kill(workers[0], signal.SIGCONT)
            time.sleep(0.3)
            self.assertEqual(self.check()[0], 0)
        finally:
            for p in workers:
                os.kill(p, signal.SIGCONT)

    def test_stopping(self):
        """During `portcullis quit` (a request still in flight), check
        fails: the address must not stay on a node that is going away."""
        pc = self.start()
        slow = threading.Thread(target=lambda: h.request(self.port, path="/sleep?ms=3000",
                                                         timeout=10))
        slow.start()
        time.sleep(0.3)
        quit_ = ops.ctl_async(pc, "quit")
        try:
            # once the master has the quit (its CLI takes a moment to start)
            self.assertTrue(pc.wait_log(r"graceful stop requested", timeout=5), pc.describe())
            self.assert_fails("portcullis: check failed: the master is stopping")
        finally:
            ops.finish(quit_, timeout=20)
            slow.join(10)

    def test_no_control_socket(self):
        """Nothing at control_socket (never started, or removed): exit 1."""
        tmp = h.make_tmpdir()
        cfg = os.path.join(tmp, "pc.yaml")
        with open(cfg, "w") as f:
            f.write("control_socket: %s/none.sock\npid_file: %s/none.pid\n" % (tmp, tmp))
        t0 = time.monotonic()
        rc, out, err = ops.ctl(None, "check", config_path=cfg, timeout=10)
        self.assertLess(time.monotonic() - t0, CHECK_MAX_S)
        self.assertEqual((rc, out), (1, ""))
        self.assertRegex(err, r"^portcullis: no master is running \(control socket "
                         r"\S+/none.sock: No such file or directory\)\n$")

    def test_usage(self):
        """check takes no argument: a usage error, exit 2."""
        pc = self.start(workers=1)
        p = h.spawn([h.binary(), "-c", pc.config_path, "check", "now"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command or wrong arguments: 'check'", err)


if __name__ == "__main__":
    h.main()
