#!/usr/bin/python3
"""Privilege boundaries between the root master and its workers (issue #14,
items 1 and 2), with `user: nobody` as the package runs them:

- the log directory belongs to the workers' user (the package's
  /var/log/portcullis), so that user can plant a symbolic link where a log
  file should be.  Neither start nor USR1 (logrotate) may open, write or
  chown what the link points to (the CVE-2016-1247 class);
- `kill -9` of the master must not leave workers serving unsupervised on the
  ports: they follow it within 2 s and a new master can start.

Needs root (to run workers as nobody); CI runs as root."""

import os
import pwd
import re
import signal
import subprocess
import time
import unittest

import harness as h

SECRET = b"root:secret-hash:19000:0:99999:7:::\n"


def as_nobody(*argv):
    """Run a command as the workers' user, as an attacker holding it would."""
    subprocess.run(list(argv), check=True, user="nobody", group="nogroup")


@unittest.skipUnless(os.geteuid() == 0, "needs root to run workers as nobody")
class LogSymlinkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)

    def setUp(self):
        self.tmp = h.make_tmpdir()
        self.logdir = os.path.join(self.tmp, "log")
        os.mkdir(self.logdir, 0o750)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.logdir, nobody.pw_uid, nobody.pw_gid)
        # a root-only file, like /etc/shadow, outside the log directory
        self.victim = os.path.join(self.tmp, "shadow")
        with open(self.victim, "wb") as f:
            f.write(SECRET)
        os.chmod(self.victim, 0o600)
        self.error_log = os.path.join(self.logdir, "error.log")
        self.access_log = os.path.join(self.logdir, "access.log")
        self.port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % self.port,
                      "routes": [{"path_prefix": "/", "backend": "web"}]}]
        self.cfg = h.base_config(self.tmp, listeners,
                                 {"web": h.backend_block(self.web.address)}, workers=2)
        self.cfg["log"] = {"error": {"path": self.error_log, "level": "info"},
                           "access": {"path": self.access_log, "format": "combined"}}

    def assert_victim_untouched(self):
        st = os.lstat(self.victim)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0), "the root-only file was chowned")
        self.assertEqual(st.st_mode & 0o7777, 0o600)
        with open(self.victim, "rb") as f:
            self.assertEqual(f.read(), SECRET, "the root-only file was written to")

    def read(self, path):
        with open(path, errors="replace") as f:
            return f.read()

    def test_usr1_after_planted_symlinks(self):
        """The workers' user replaces error.log and access.log with links to
        a root-only file, then logrotate's USR1 arrives: the file keeps its
        owner, mode and content; the refusal is logged; requests are still
        served and logged to the files already open."""
        pc = h.Portcullis(self.cfg, tmp=self.tmp)
        pc.start()
        self.addCleanup(pc.stop)
        self.assertEqual(h.request(self.port, "GET", "/before").status, 200)
        for path in (self.error_log, self.access_log):
            self.assertEqual(os.stat(path).st_uid, pwd.getpwnam("nobody").pw_uid)
            as_nobody("mv", path, path + ".1")
            as_nobody("ln", "-s", self.victim, path)
        pc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while "error log reopened" not in self.read(self.error_log + ".1"):
            self.assertLess(time.monotonic(), deadline, self.read(self.error_log + ".1"))
            time.sleep(0.05)
        time.sleep(0.3)     # the workers' own reopen
        self.assertEqual(h.request(self.port, "GET", "/after").status, 200)
        self.assert_victim_untouched()
        log = self.read(self.error_log + ".1")
        self.assertRegex(log, r"reopening the error log: is a symbolic link: refused")
        self.assertRegex(log, r"access log %s: is a symbolic link: refused" % self.access_log)
        deadline = time.monotonic() + 5
        while "GET /after" not in self.read(self.access_log + ".1"):
            self.assertLess(time.monotonic(), deadline, "the request after USR1 was not logged")
            time.sleep(0.05)
        os.unlink(self.error_log)   # so that stop() reads the real log
        pc.error_log_path = self.error_log + ".1"

    def test_start_with_planted_symlink(self):
        """A link already in place at start: the master refuses to start
        with the reason on stderr, and the file it points to is untouched."""
        as_nobody("ln", "-s", self.victim, self.error_log)
        pc = h.Portcullis(self.cfg, tmp=self.tmp)
        pc.error_log_path = None
        pc._stderr = open(pc.stderr_path, "wb")
        self.addCleanup(pc._stderr.close)
        proc = subprocess.run([h.binary(), "-c", pc.config_path], stdout=subprocess.DEVNULL,
                              stderr=pc._stderr, env=pc.env, timeout=15)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("error log %s: is a symbolic link: refused" % self.error_log, pc.stderr())
        self.assert_victim_untouched()

    def test_hard_link_refused(self):
        """A hard link to a file of the workers' own is refused too (a hard
        link to root's file needs fs.protected_hardlinks off): a log file
        has exactly one name."""
        own = os.path.join(self.logdir, "mine")
        as_nobody("touch", own)
        as_nobody("ln", own, self.access_log)
        pc = h.Portcullis(self.cfg, tmp=self.tmp)
        pc._stderr = open(pc.stderr_path, "wb")
        self.addCleanup(pc._stderr.close)
        proc = subprocess.run([h.binary(), "-c", pc.config_path], stdout=subprocess.DEVNULL,
                              stderr=pc._stderr, env=pc.env, timeout=15)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("access log %s: has 2 hard links: refused" % self.access_log,
                      pc.stderr())


@unittest.skipUnless(os.geteuid() == 0, "needs root to run workers as nobody")
class ConfigFileTest(unittest.TestCase):
    def test_writable_config_is_warned_about(self):
        """A root master warns when its configuration is writable by
        everyone, and a config asking for root workers by uid without
        allow_root_workers is refused at start (issue #14 item 9)."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        cfg, tmp, port = h.one_route_config(h.backend_block(web.address))
        pc = h.Portcullis(cfg, tmp=tmp)
        os.chmod(pc.config_path, 0o666)
        pc.start()
        self.addCleanup(pc.stop)
        self.assertIsNotNone(pc.wait_log(r"\[warn\] \d+: %s is writable by everyone \(mode "
                                         r"0666\): whoever can write it controls what the "
                                         r"root master does" % re.escape(pc.config_path), 5),
                             pc.error_log()[-2000:])
        pc.stop()
        # "toor" style: another name for uid 0 is caught by the master
        with open("/etc/passwd") as f:
            zero = [l.split(":")[0] for l in f if l.split(":")[2:3] == ["0"]][0]
        cfg["user"] = zero
        cfg["group"] = "root"
        again = h.Portcullis(cfg, tmp=tmp)
        proc = subprocess.run([h.binary(), "-c", again.config_path], capture_output=True,
                              text=True, timeout=30, env=again.env)
        self.assertEqual(proc.returncode, 1)
        self.assertRegex(proc.stdout + proc.stderr, r"allow_root_workers: true")


@unittest.skipUnless(os.geteuid() == 0, "needs root to run workers as nobody")
class OrphanTest(unittest.TestCase):
    def test_kill_9_master_takes_workers_along(self):
        """kill -9 of the master (workers run as nobody, with an empty
        capability bounding set and no_new_privs): no worker survives 2 s,
        and a new master binds the same port and serves."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        cfg, tmp, port = h.one_route_config(h.backend_block(web.address), workers=2)
        pc = h.Portcullis(cfg, tmp=tmp)
        pc.start()
        self.addCleanup(pc.kill)
        workers = pc.workers()
        self.assertEqual(len(workers), 2)
        nobody = pwd.getpwnam("nobody").pw_uid
        for pid in workers:
            with open("/proc/%d/status" % pid) as f:
                status = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
            self.assertEqual(set(status["Uid"].split()), {str(nobody)})
            # issue #14 item 9: no capability can come back, no setuid exec
            self.assertEqual(int(status["CapBnd"], 16), 0, status["CapBnd"])
            self.assertEqual(int(status["CapEff"], 16), 0)
            self.assertEqual(status["NoNewPrivs"].strip(), "1")
        self.assertEqual(h.request(port, "GET", "/").status, 200)
        os.kill(pc.pid, signal.SIGKILL)
        pc.proc.wait(5)
        deadline = time.monotonic() + 2
        while any(h.pid_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p for p in workers if h.pid_alive(p)], [],
                         "workers outlived the master by 2 s")
        os.unlink(os.path.join(tmp, "pc.sock"))     # left behind by kill -9
        again = h.Portcullis(cfg, tmp=tmp)
        again.start()
        self.addCleanup(again.stop)
        self.assertEqual(h.request(port, "GET", "/").status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
