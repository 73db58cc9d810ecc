#!/usr/bin/python3
"""control_socket_group (issue #15, portcullis(8) CONTROL SOCKET): the socket
becomes mode 0660 with that group; a member (a real system user, made here
with groupadd/useradd and removed afterwards) runs `portcullis status`, and
is answered "permission denied" for reload, stop, quit, drain, upgrade and
reopen, each refusal logged with its uid, while the master keeps serving; a
user outside the group cannot connect; a reload that drops the key makes the
socket 0600 again.  Needs root (skipped otherwise)."""

import grp
import os
import pwd
import re
import stat
import subprocess
import unittest

import harness as h
import opslib as ops

LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "


def run_root(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@unittest.skipUnless(os.geteuid() == 0, "needs root: creates a system user and group")
class ControlGroupTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        tag = "%d" % os.getpid()
        cls.group = "pc-mon%s" % tag
        cls.member = "pc-mon%s-in" % tag
        cls.outsider = "pc-mon%s-out" % tag
        cls.addClassCleanup(cls.remove_accounts)
        run_root("groupadd", "--system", cls.group)
        run_root("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 "--groups", cls.group, cls.member)
        run_root("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 cls.outsider)
        cls.be = h.Backend("mon")
        cls.addClassCleanup(cls.be.stop)

    @classmethod
    def remove_accounts(cls):
        for user in (cls.member, cls.outsider):
            subprocess.run(["userdel", user], capture_output=True, timeout=60)
        subprocess.run(["groupdel", cls.group], capture_output=True, timeout=60)

    def config(self, group):
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % self.port,
                      "routes": [{"path_prefix": "/", "backend": "a"}]}]
        cfg = h.base_config(self.tmp, listeners, {"a": h.backend_block(self.be.address)},
                            workers=1)
        cfg["control_socket"] = self.sock
        if group:
            cfg["control_socket_group"] = group
        return cfg

    def setUp(self):
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        self.sock = os.path.join(self.tmp, "run", "pc.sock")
        self.pc = h.Portcullis(self.config(self.group), tmp=self.tmp)
        self.addCleanup(self.pc.stop)
        self.pc.start()
        os.chmod(self.pc.config_path, 0o644)  # the members' CLI reads it

    def test_member_reads_only(self):
        """0660 root:GROUP; a member's status works; every other command is
        "permission denied", logged with the uid, and changes nothing."""
        st = os.stat(self.sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam(self.group).gr_gid)
        rc, out, err = ops.ctl(self.pc, "status", user=self.member)
        self.assertEqual(rc, 0, (out, err))
        self.assertIn("master pid=%d" % self.pc.pid, out)
        uid = pwd.getpwnam(self.member).pw_uid
        for cmd in ("reload", "stop", "quit", "upgrade", "reopen"):
            rc, out, err = ops.ctl(self.pc, cmd, user=self.member)
            self.assertEqual(rc, 1, (cmd, out, err))
            self.assertIn("permission denied", out + err, cmd)
        # the same through the raw protocol, with arguments
        ans = subprocess.run(
            ["runuser", "-u", self.member, "--", h.PYTHON, "-c",
             "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
             "s.sendall(b'drain a %s\\n'); print(s.makefile().read(), end='')" % self.be.address,
             self.sock], capture_output=True, text=True, timeout=30, env=h.clean_env())
        self.assertEqual(ans.stdout, "ERR permission denied\n", ans.stderr)
        # logged once (rate-limited), naming the uid and the command
        self.assertIsNotNone(self.pc.wait_log(
            LOG_PREFIX + r"control socket: refused 1 connection\(s\) since the last report, "
            r"the last one: uid %d \(pid \d+\): 'reload' is not a read-only command" % uid, 5),
            self.pc.error_log()[-2000:])
        self.assertNotRegex(self.pc.error_log(), r"control socket: (reload|stop|quit|upgrade)\n")
        # still serving the first generation, undrained
        self.assertEqual(h.request(self.port).status, 200)
        rc, out, _ = ops.ctl(self.pc, "status")
        self.assertEqual(rc, 0)
        self.assertIn("reloads ok=0", out)
        self.assertIn("drain=no", out)

    def test_outsider_refused(self):
        """A user outside the group cannot connect (the file mode); exit 1."""
        rc, out, err = ops.ctl(self.pc, "status", user=self.outsider)
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("Permission denied", err)

    def test_reload_drops_group(self):
        """A reload without the key: 0600 again, and the member is out."""
        self.pc.write_config(self.config(None))
        os.chmod(self.pc.config_path, 0o644)
        rc, out, err = ops.ctl(self.pc, "reload")
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o600)
        rc, out, err = ops.ctl(self.pc, "status", user=self.member)
        self.assertEqual(rc, 1, (out, err))
        # and back: the group is given to the same socket by a reload
        self.pc.write_config(self.config(self.group))
        os.chmod(self.pc.config_path, 0o644)
        self.assertEqual(ops.ctl(self.pc, "reload")[0], 0)
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o660)
        self.assertEqual(ops.ctl(self.pc, "status", user=self.member)[0], 0)

    def test_unknown_group(self):
        """-t names the line of a group that does not exist."""
        path = os.path.join(self.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write("control_socket_group: %s-none\n" % self.group)
            f.write(h.to_yaml(self.config(None)))
        p = subprocess.run([h.binary(), "-t", "-c", path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, re.escape(path) + r":1:23: 'control_socket_group': no group "
                         r"'%s-none' on this system" % re.escape(self.group))


if __name__ == "__main__":
    unittest.main()
