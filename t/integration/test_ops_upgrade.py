#!/usr/bin/python3
"""Binary upgrade (issue #5): `portcullis upgrade` and SIGUSR2 under a
keep-alive load lose nothing; the new master adopts the listening sockets,
rewrites pid_file, outlives the old one (which drains and exits), execs the
binary's path (a replaced file is picked up), and a new binary that fails to
start leaves the old master serving."""

import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

import harness as h
import opslib as ops

LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "


class UpgradeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp0 = h.make_tmpdir()
        cls.ngx = h.Nginx(cls.tmp0)
        cls.addClassCleanup(cls.ngx.stop)

    def config(self, prefix="/"):
        routes = [{"path_prefix": prefix, "backend": "ngx"}]
        if prefix != "/":
            routes.append({"path_prefix": "/", "backend": "ngx"})
        listeners = [{"name": "web", "bind": ["127.0.0.1:%d" % self.port, "[::1]:%d" % self.port],
                      "routes": routes}]
        return h.base_config(self.tmp, listeners, {"ngx": h.backend_block(self.ngx.address)},
                             workers=2)

    def start(self, exe=None):
        self.tmp = h.make_tmpdir()
        self.port = h.free_port(ipv6=True)
        self.pc = h.Portcullis(self.config(), tmp=self.tmp)
        self.addCleanup(self.pc.stop)
        if exe is None:
            self.pc.start()
        else:
            self.pc._stdout = open(self.pc.stdout_path, "wb")
            self.pc._stderr = open(self.pc.stderr_path, "wb")
            self.pc.proc = h.spawn([exe, "-c", self.pc.config_path], stdout=self.pc._stdout,
                                   stderr=self.pc._stderr, env=self.pc.env)
            self.assertTrue(h.wait_port(self.port, timeout=15, proc=self.pc.proc),
                            self.pc.describe())
        self.pidfile = os.path.join(self.tmp, "pc.pid")
        self.assertEqual(ops.read_pid(self.pidfile), self.pc.pid)
        # an upgrade while generation 1 is still starting is refused (a
        # reload is in progress): wait until it serves
        self.assertIsNotNone(self.pc.wait_log(r"generation 1 serving", 15),
                             self.pc.describe())
        return self.pc

    def new_master(self, old_pid, timeout=30):
        """Wait until pid_file names a new master; register it for cleanup."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = ops.read_pid(self.pidfile, 1)
            if pid and pid != old_pid:
                ops.adopt_master(pid)
                self.addCleanup(ops.stop_master, pid)
                return pid
            time.sleep(0.05)
        self.fail("pid_file still names %d:\n%s" % (old_pid, self.pc.describe()))

    def check_new_master(self, new, old):
        self.assertTrue(h.pid_alive(new))
        self.assertEqual(self.pc.wait_exit(15), 0, "old master did not exit:\n"
                         + self.pc.describe())
        deadline = time.monotonic() + 10
        while len(h.children(new)) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(h.children(new)), 2)
        rc, out, err = ops.ctl(self.pc, "status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^master pid=%d .*state=running" % new)
        for host in ("127.0.0.1", "::1"):
            self.assertEqual(h.request(self.port, "GET", "/", host_addr=host).status, 200)
        # it is the master now: reload works through it, the pid is its own
        self.pc.write_config(self.config("/x"))
        rc, out, err = ops.ctl(self.pc, "reload")
        self.assertEqual((rc, out.strip()), (0, "generation 2 serving"), err)

    def test_upgrade_under_keepalive_load(self):
        """`portcullis upgrade` during wrk -c64 keep-alive and a
        connection-per-request load: exit 0, zero failed requests, pid_file
        holds the new master, the old master is gone."""
        pc = self.start()
        old = pc.pid
        url = "http://127.0.0.1:%d/" % self.port
        keep = ops.Wrk(self.tmp, url, conns=64, duration=6)
        fresh = ops.Wrk(self.tmp, url, conns=4, duration=6, close=True)
        time.sleep(1.5)
        rc, out, err = ops.ctl(pc, "upgrade")
        new = self.new_master(old)
        self.assertEqual(rc, 0, (out, err, pc.describe()))
        self.assertRegex(out, r"^master %d serving; master %d drains its workers and exits\n$"
                         % (new, old))
        rk, rf = keep.wait(), fresh.wait()
        sys.stderr.write("keep-alive:\n%s\nnew connections:\n%s\n" % (keep.out, fresh.out))
        self.assertGreater(rk["requests"], 1000, keep.out)
        self.assertEqual(ops.failures(rk), 0, keep.out)
        self.assertEqual(rk["lua_non2xx"], 0, keep.out)
        self.assertGreater(rf["requests"], 100, fresh.out)
        self.assertEqual(ops.failures(rf), 0, fresh.out)
        self.assertEqual(ops.read_pid(self.pidfile), new)
        self.check_new_master(new, old)
        self.assertIsNotNone(pc.wait_log(LOG_PREFIX + r"upgrade: master %d took over" % new, 5))

    def test_sigusr2_upgrades(self):
        """kill -USR2: the same hand-over, asynchronously."""
        pc = self.start()
        old = pc.pid
        pc.send_signal(signal.SIGUSR2)
        new = self.new_master(old)
        self.check_new_master(new, old)

    def test_replaced_binary_is_executed(self):
        """The master execs its binary's path, not its old inode: after the
        file is replaced (as a package upgrade does), the new master runs the
        new file and the old one ran a deleted file."""
        bindir = os.path.join(h.make_tmpdir(), "sbin")
        os.makedirs(bindir)
        exe = os.path.join(bindir, "portcullis")
        shutil.copy2(h.binary(), exe)
        pc = self.start(exe=exe)
        old = pc.pid
        shutil.copy2(h.binary(), exe + ".new")
        os.rename(exe + ".new", exe)
        self.assertTrue(os.readlink("/proc/%d/exe" % old).endswith("(deleted)"))
        rc, out, err = ops.ctl(pc, "upgrade")
        new = self.new_master(old)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(os.readlink("/proc/%d/exe" % new), exe)
        self.assertEqual(os.stat("/proc/%d/exe" % new).st_ino, os.stat(exe).st_ino)
        self.assertEqual(pc.wait_exit(15), 0)
        self.assertEqual(h.request(self.port, "GET", "/").status, 200)

    def test_failed_upgrade_keeps_old_master(self):
        """The new master cannot start (its config is broken): `portcullis
        upgrade` exits 1 with the reason, the old master and its workers keep
        serving, pid_file is unchanged."""
        pc = self.start()
        workers = pc.workers()
        pc.write_config("bogus_key: 1\n" + h.to_yaml(self.config()))
        rc, out, err = ops.ctl(pc, "upgrade")
        self.assertEqual(rc, 1, (out, err))
        self.assertRegex(err, r"upgrade failed: new master \d+ exited with status 1 .*master %d "
                         r"keeps serving" % pc.pid)
        self.assertEqual(ops.read_pid(self.pidfile), pc.pid)
        self.assertEqual(pc.workers(), workers)
        for _ in range(5):
            self.assertEqual(h.request(self.port, "GET", "/").status, 200)
        pc.write_config(self.config())
        rc, out, err = ops.ctl(pc, "status")
        self.assertRegex(out, r"(?m)^master pid=%d .*state=running" % pc.pid)


if __name__ == "__main__":
    h.main()
