#!/usr/bin/python3
"""The Debian package (issue #15), as an operator meets it: built once with
dpkg-buildpackage from a copy of the tree (the worktree stays clean), lintian
with no E: or W: tag, installed with dpkg -i, the shipped configuration
checked (-t) and started by hand the way the unit starts it (no systemd as
PID 1 here: the unit's capability bounding set through setpriv, its UMask,
LimitNOFILE and NOTIFY_SOCKET) binding no port and connecting nowhere, then
an operator's configuration serving through it with log files 0640
portcullis:adm across a `portcullis reopen`; the package upgraded to a newer
version (the same build, repacked with a higher Version) under wrk load with
0 failed requests, the postinst replacing the master by a binary upgrade
that hands MAINPID over; `dpkg -r` stopping a master started with -d; and
`dpkg -P` leaving nothing behind (files, user, group, processes).

It installs into the real system (/usr/sbin, /etc/portcullis, /run/portcullis,
/var/log/portcullis, the portcullis user), so it needs root and the packaging
tools, skips otherwise, refuses to run where a portcullis package is already
installed, and purges everything again even when it fails.  The other
integration tests use the build tree's binary and their own sockets, so they
are not disturbed; ctest gives it a RESOURCE_LOCK with test_cli, whose one
test looks at /etc/portcullis/portcullis.yaml."""

import grp
import os
import pwd
import re
import resource
import shutil
import signal
import stat
import subprocess
import time
import unittest

import harness as h
import opslib as ops

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SBIN = "/usr/sbin/portcullis"
CONF = "/etc/portcullis/portcullis.yaml"
TOOLS = ["dpkg-buildpackage", "dpkg-deb", "dpkg", "lintian", "fakeroot", "dh", "setpriv",
         "wrk", "curl"]
# The unit's CapabilityBoundingSet= and NoNewPrivileges=, for a start by hand.
UNIT_CAPS = "-all,+net_bind_service,+setuid,+setgid,+kill,+net_admin"
UPGRADE_VERSION_SUFFIX = "+pkgtest1"


def missing_tools():
    return [t for t in TOOLS if shutil.which(t) is None]


def run(args, timeout=300, check=True, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(args), p.returncode,
                                                     p.stdout[-3000:], p.stderr[-3000:]))
    return p


def installed_pids():
    """Every process running /usr/sbin/portcullis (or its deleted file)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % d)
        except OSError:
            continue
        if exe == SBIN or exe.startswith(SBIN + " "):
            pids.append(int(d))
    return pids


def kill_installed():
    for pid in installed_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_gone(timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not installed_pids():
            return True
        time.sleep(0.05)
    return False


def inet_sockets(pids):
    """The TCP/UDP sockets (ss lines) of the given processes."""
    out = run(["ss", "-tuanpH"]).stdout
    return [line for line in out.splitlines()
            if any("pid=%d," % p in line for p in pids)]


def tree_copy(dst):
    """The source tree into dst: the files git knows (committed or not) when
    this is a checkout, else everything but build directories."""
    os.makedirs(dst)
    if os.path.exists(os.path.join(TOP, ".git")) and shutil.which("git"):
        files = run(["git", "-C", TOP, "ls-files", "-z", "--cached", "--others",
                     "--exclude-standard"]).stdout.split("\0")
        for rel in filter(None, files):
            src = os.path.join(TOP, rel)
            if not os.path.isfile(src):
                continue  # deleted, not yet committed
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, rel))
        return
    ignore = shutil.ignore_patterns("build*", ".git", "obj-*")
    for name in os.listdir(TOP):
        if name.startswith("build") or name in (".git",):
            continue
        src = os.path.join(TOP, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, name), ignore=ignore)
        else:
            shutil.copy2(src, dst)


@unittest.skipUnless(os.geteuid() == 0, "needs root: installs the package into this system")
@unittest.skipIf(missing_tools(), "packaging tools missing (tools/deps installs them): %s"
                 % " ".join(missing_tools()))
class PackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if run(["dpkg-query", "-W", "-f=${Status}", "portcullis"], check=False).stdout \
                .endswith("installed"):
            raise unittest.SkipTest("a portcullis package is installed here: not touching it")
        cls.tmp = h.make_tmpdir("pc-pkg-")
        cls.build_packages()

    @classmethod
    def build_packages(cls):
        """One build; the "newer" package is the same one with a higher
        Version (dpkg-deb -R, edit DEBIAN/control, dpkg-deb -b)."""
        src = os.path.join(cls.tmp, "portcullis-src")
        tree_copy(src)
        # one compiler at a time: ctest runs other, timing-sensitive tests
        # beside this one
        env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=1")
        t0 = time.monotonic()
        run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, timeout=900)
        cls.build_s = time.monotonic() - t0
        debs = [f for f in os.listdir(cls.tmp) if re.match(r"portcullis_.*\.deb$", f)]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(cls.tmp, debs[0])
        cls.changes = [os.path.join(cls.tmp, f) for f in os.listdir(cls.tmp)
                       if f.endswith(".changes")][0]
        cls.version = run(["dpkg-deb", "-f", cls.deb, "Version"]).stdout.strip()
        cls.new_version = cls.version + UPGRADE_VERSION_SUFFIX
        unpacked = os.path.join(cls.tmp, "repack")
        run(["dpkg-deb", "-R", cls.deb, unpacked])
        control = os.path.join(unpacked, "DEBIAN", "control")
        with open(control) as f:
            text = f.read()
        text = re.sub(r"^Version: .*$", "Version: " + cls.new_version, text, flags=re.M)
        with open(control, "w") as f:
            f.write(text)
        cls.new_deb = os.path.join(cls.tmp, "portcullis_%s_repack.deb" % cls.new_version)
        run(["dpkg-deb", "-b", unpacked, cls.new_deb])

    def setUp(self):
        self.addCleanup(self.purge_everything)
        self.be = h.Backend("pkg")
        self.addCleanup(self.be.stop)
        self.notify = None

    def purge_everything(self):
        """Whatever happened: no master, no package, no user, no files."""
        if self.notify is not None:
            self.notify.close()
        kill_installed()
        wait_gone(5)
        run(["dpkg", "--purge", "portcullis"], check=False, timeout=120)
        for args in (["userdel", "portcullis"], ["groupdel", "portcullis"]):
            if subprocess.run(["getent", "passwd" if args[0] == "userdel" else "group",
                               "portcullis"], capture_output=True).returncode == 0:
                run(args, check=False)
        for path in ("/etc/portcullis", "/var/log/portcullis", "/run/portcullis"):
            shutil.rmtree(path, ignore_errors=True)

    # ---- the steps ---------------------------------------------------------

    def start_like_the_unit(self, *extra):
        """ExecStart= by hand: RuntimeDirectory=, UMask=0027, LimitNOFILE=65536,
        CapabilityBoundingSet=, NoNewPrivileges=, NOTIFY_SOCKET (Type=notify)."""
        os.makedirs("/run/portcullis", mode=0o755, exist_ok=True)

        def preexec():
            os.setsid()
            os.umask(0o027)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
            except (ValueError, OSError):  # a container's lower ceiling
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        env = h.clean_env()
        env["NOTIFY_SOCKET"] = self.notify.env
        args = ["setpriv", "--bounding-set=" + UNIT_CAPS, "--no-new-privs", "--",
                SBIN, "-c", CONF] + list(extra)
        self.log = open(os.path.join(self.tmp, "master-%d.log" % time.monotonic_ns()), "w+")
        self.addCleanup(self.log.close)
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                             stderr=subprocess.STDOUT, env=env, preexec_fn=preexec)
        i = self.notify.wait_for(lambda m: m.get("READY") == "1", 20,
                                 start=len(self.notify.snapshot()))
        self.assertIsNotNone(i, "no READY=1 from %s:\n%s" % (" ".join(args), self.output()))
        return p

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def ctl(self, *cmd, timeout=90):
        return run([SBIN] + list(cmd), check=False, timeout=timeout)

    def check_install(self):
        """dpkg -i: the user, the conffile, the log directory.  Where an init
        system may start services (no policy-rc.d refusal), the init script
        has started the shipped configuration: stop it with the script."""
        p = run(["dpkg", "-i", self.deb], timeout=300)
        self.assertNotIn("warning", p.stderr.lower(), p.stderr)
        pw = pwd.getpwnam("portcullis")
        self.assertEqual(pw.pw_shell, "/usr/sbin/nologin")
        st = os.stat("/var/log/portcullis")
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                         (0o2750, pw.pw_uid, grp.getgrnam("adm").gr_gid))
        self.assertTrue(os.path.isdir("/usr/share/doc/portcullis/examples"))
        for ex in ("portcullis.yaml", "demo.yaml", "keepalived.conf", "README.keepalived"):
            path = "/usr/share/doc/portcullis/examples/" + ex
            self.assertTrue(os.path.exists(path), path)
            if ex == "portcullis.yaml":  # the annotated example is a valid file
                q = self.ctl("-t", "-c", path)
                self.assertEqual(q.returncode, 0, q.stderr)
        q = self.ctl("-t")
        self.assertEqual((q.returncode, q.stdout.strip()), (0, "configuration OK"), q.stderr)
        if self.ctl("status").returncode == 0:
            q = run(["/etc/init.d/portcullis", "stop"], check=False, timeout=90)
            self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
            self.assertTrue(wait_gone(), "the init script's stop left %s" % installed_pids())

    def check_shipped_config_is_inert(self):
        """The shipped file: a master and workers with no TCP/UDP socket at
        all (no listener, no backend, no health check), answering status."""
        p = self.start_like_the_unit()
        self.assertTrue(p.pid)
        time.sleep(1.0)  # a health check or a connect would have happened by now
        pids = installed_pids()
        self.assertGreaterEqual(len(pids), 2, pids)
        self.assertEqual(inet_sockets(pids), [], "the shipped configuration opened sockets")
        q = self.ctl("status")
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertIn("generation 1 serving", q.stdout)
        self.assertIn("has no listeners", self.output())
        st = os.stat("/run/portcullis/portcullis.sock")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        q = self.ctl("quit")
        self.assertEqual(q.returncode, 0, q.stderr)
        p.wait(30)
        self.assertTrue(wait_gone())

    def check_init_script(self):
        """Without systemd: /etc/init.d/portcullis start (portcullis -d),
        status, reload, stop (portcullis quit), status 3 once stopped."""
        script = "/etc/init.d/portcullis"
        env = dict(h.clean_env(), _SYSTEMCTL_SKIP_REDIRECT="1")
        for action, want in (("start", 0), ("status", 0), ("reload", 0), ("stop", 0),
                             ("status", 3)):
            q = run([script, action], check=False, timeout=90, env=env)
            self.assertEqual(q.returncode, want, "%s %s: %s" % (script, action,
                                                               q.stdout + q.stderr))
            if action == "start":
                self.assertTrue(installed_pids())
            if action == "stop":
                self.assertTrue(wait_gone(), "after stop: %s" % installed_pids())

    def operator_config(self):
        """What an operator writes: a listener on loopback before the test
        backend, logs in /var/log/portcullis."""
        self.port = h.free_port()
        cfg = {
            "workers": 2,
            "shutdown_timeout": "5s",
            "log": {"error": {"path": "/var/log/portcullis/error.log", "level": "info"},
                    "access": {"path": "/var/log/portcullis/access.log", "format": "combined"}},
            "listeners": [{"name": "web", "bind": "127.0.0.1:%d" % self.port,
                           "routes": [{"path_prefix": "/", "backend": "app"}]}],
            "backends": {"app": h.backend_block(self.be.address)},
        }
        with open(CONF, "w") as f:
            f.write(h.to_yaml(cfg))

    def check_log_file(self, path):
        st = os.stat(path)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                         (0o640, pwd.getpwnam("portcullis").pw_uid,
                          grp.getgrnam("adm").gr_gid), path)

    def check_serving_and_logs(self):
        r = h.request(self.port, path="/pkg")
        self.assertEqual(r.status, 200)
        for name in ("error.log", "access.log"):
            self.check_log_file("/var/log/portcullis/" + name)
        # logrotate's postrotate: the files moved away, portcullis reopen
        for name in ("error.log", "access.log"):
            os.rename("/var/log/portcullis/" + name, "/var/log/portcullis/%s.1" % name)
        q = self.ctl("reopen")
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        self.assertEqual(h.request(self.port, path="/after-reopen").status, 200)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open("/var/log/portcullis/access.log") as f:
                    if "/after-reopen" in f.read():
                        break
            except OSError:
                pass
            time.sleep(0.1)
        with open("/var/log/portcullis/access.log") as f:
            self.assertIn("GET /after-reopen", f.read())
        for name in ("error.log", "access.log"):
            self.check_log_file("/var/log/portcullis/" + name)

    def check_upgrade_under_load(self, old_pid):
        """dpkg -i of the newer package while wrk runs: the postinst's
        `portcullis upgrade` replaces the master, no request fails, and the
        new master tells the service manager its pid (MAINPID=)."""
        start = len(self.notify.snapshot())
        wrk = ops.Wrk(self.tmp, "http://127.0.0.1:%d/load" % self.port, threads=1, conns=16,
                      duration=8)
        time.sleep(2)
        p = run(["dpkg", "-i", "--force-confold", self.new_deb], timeout=300)
        res = wrk.wait()
        self.assertIn("running master replaced by the new binary", p.stderr, p.stderr)
        self.assertGreater(res["requests"] or 0, 100, wrk.out)
        self.assertEqual(ops.failures(res), 0, wrk.out)
        self.assertEqual(res["non2xx3xx"], 0, wrk.out)
        print("\npackage built in %.0f s; upgrade under wrk: %d requests, %d failed"
              % (self.build_s, res["requests"], ops.failures(res)), flush=True)
        self.assertEqual(run(["dpkg-query", "-W", "-f=${Version}", "portcullis"]).stdout,
                         self.new_version)
        new_pid = ops.read_pid("/run/portcullis/portcullis.pid")
        self.assertNotEqual(new_pid, old_pid)
        ops.adopt_master(new_pid)
        i = self.notify.wait_for(lambda m: m.get("MAINPID") == str(new_pid)
                                 and m.get("READY") == "1", 15, start=start)
        self.assertIsNotNone(i, self.notify.snapshot()[start:])
        self.assertEqual(os.readlink("/proc/%d/exe" % new_pid), SBIN)
        deadline = time.monotonic() + 15
        while h.pid_alive(old_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(h.pid_alive(old_pid), "the old master did not leave")
        self.assertEqual(h.request(self.port, path="/after-upgrade").status, 200)
        return new_pid

    def check_remove_stops_daemon(self):
        """dpkg -r with a master started by hand with -d: the prerm stops it,
        so nothing runs on the deleted binary."""
        q = self.ctl("-d")
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(self.ctl("status").returncode, 0)
        p = run(["dpkg", "-r", "portcullis"], timeout=120)
        self.assertIn("stopping the running master", p.stderr)
        self.assertTrue(wait_gone(), "still running after dpkg -r: %s" % installed_pids())
        self.assertFalse(os.path.exists(SBIN))
        self.assertTrue(os.path.exists(CONF), "dpkg -r keeps the conffile")

    def check_purge_leaves_nothing(self):
        run(["dpkg", "-P", "portcullis"], timeout=120)
        for path in ("/etc/portcullis", "/var/log/portcullis", "/run/portcullis", SBIN,
                     "/lib/systemd/system/portcullis.service", "/etc/init.d/portcullis",
                     "/etc/logrotate.d/portcullis", "/usr/share/doc/portcullis"):
            self.assertFalse(os.path.exists(path), path)
        for db in ("passwd", "group"):
            self.assertNotEqual(subprocess.run(["getent", db, "portcullis"],
                                               capture_output=True).returncode, 0, db)
        self.assertEqual(installed_pids(), [])
        self.assertNotEqual(run(["dpkg-query", "-W", "-f=${Status}", "portcullis"],
                                check=False).stdout, "install ok installed")

    # ---- the test ----------------------------------------------------------

    def test_lintian(self):
        """No error and no warning (info and pedantic tags are shown, not
        counted)."""
        p = run(["lintian", "--pedantic", "-I", self.changes], check=False, timeout=300)
        tags = [l for l in p.stdout.splitlines() if re.match(r"[EW]: ", l)]
        self.assertEqual(tags, [], p.stdout)

    @unittest.skipIf(shutil.which("hardening-check") is None, "hardening-check (devscripts) missing")
    def test_hardening_flags(self):
        """The binary was built with dpkg-buildflags' hardening (CMake took
        CFLAGS/LDFLAGS from the environment): PIE, stack protector, fortify,
        read-only relocations, immediate binding."""
        root = os.path.join(self.tmp, "x")
        run(["dpkg-deb", "-x", self.deb, root])
        p = run(["hardening-check", os.path.join(root, "usr/sbin/portcullis")], check=False)
        for what in ("Position Independent Executable", "Stack protected",
                     "Fortify Source functions", "Read-only relocations", "Immediate binding"):
            self.assertRegex(p.stdout, re.escape(what) + r": yes", p.stdout)

    def test_install_serve_upgrade_remove_purge(self):
        """The whole life of the package on one machine, in order."""
        self.check_install()
        self.notify = ops.NotifySocket(abstract=True)
        self.check_shipped_config_is_inert()
        self.check_init_script()
        self.operator_config()
        self.assertEqual(self.ctl("-t").returncode, 0)
        master = self.start_like_the_unit()
        self.check_serving_and_logs()
        new_pid = self.check_upgrade_under_load(master.pid)
        master.wait(10)  # the old master, our child, has exited
        q = self.ctl("quit")
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        self.assertTrue(wait_gone(), "after quit: %s" % installed_pids())
        deadline = time.monotonic() + 10  # "OK stopped" comes just before its exit
        while h.pid_alive(new_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(h.pid_alive(new_pid))
        self.check_remove_stops_daemon()
        self.check_purge_leaves_nothing()


if __name__ == "__main__":
    unittest.main()
