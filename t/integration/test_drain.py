#!/usr/bin/python3
"""Runtime control of servers (issue #4 item 6, portcullis(8) COMMANDS):
`portcullis drain BACKEND SERVER` takes a server out of rotation without
cutting its in-flight requests, `enable` puts it back, both are refused for
a server that does not exist, `status` shows it, and the drain state
survives a reload that keeps the server."""

import re
import threading
import time
import unittest

import harness as h


class DrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.a = h.Backend("a")
        cls.addClassCleanup(cls.a.stop)
        cls.b = h.Backend("b")
        cls.addClassCleanup(cls.b.stop)
        cls.port = h.free_port()
        cls.listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port,
                          "routes": [{"path_prefix": "/", "backend": "app"}]}]
        cls.backends = {"app": h.backend_block(cls.a.address, cls.b.address)}
        cls.cfg = h.base_config(cls.tmp, cls.listeners, cls.backends, workers=2)
        cls.pc = h.Portcullis(cls.cfg, tmp=cls.tmp)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def _ctl(self, args):
        p = h.spawn([h.binary(), "-c", self.pc.config_path] + args,
                    stdout=h.subprocess.PIPE, stderr=h.subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=30)
        return p.returncode, out, err

    def hits(self, n=20):
        seen = {}
        for _ in range(n):
            r = h.request(self.port, "GET", "/")
            self.assertEqual(r.status, 200)
            name = r.body.split()[0].decode()
            seen[name] = seen.get(name, 0) + 1
        return seen

    def server_line(self, addr):
        rc, out, err = self._ctl(["status"])
        self.assertEqual(rc, 0, err)
        for line in out.splitlines():
            if ("server %s " % addr) in line:
                return line
        self.fail("no status line for %s in:\n%s" % (addr, out))

    def test_1_drain_and_enable(self):
        """drain: no new request reaches the server, on any worker; status
        says drain=yes; enable: it gets traffic again."""
        self.assertEqual(set(self.hits()), {"a", "b"})
        rc, out, err = self._ctl(["drain", "app", self.a.address])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("drain=yes", self.server_line(self.a.address))
        self.assertEqual(self.hits(40), {"b": 40})
        self.assertIsNotNone(self.pc.wait_log(
            r"backend app: server %s drained by the operator" % re.escape(self.a.address)))
        rc, out, err = self._ctl(["enable", "app", self.a.address])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("drain=no", self.server_line(self.a.address))
        self.assertEqual(set(self.hits()), {"a", "b"})

    def test_2_in_flight_request_finishes(self):
        """A request in flight on a server that gets drained completes with 200."""
        result = {}

        def slow():
            result["r"] = h.request(self.port, "GET", "/sleep?ms=1500", timeout=10)

        # make sure the slow one lands on a: drain b for the moment
        self.assertEqual(self._ctl(["drain", "app", self.b.address])[0], 0)
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        self.assertEqual(self._ctl(["enable", "app", self.b.address])[0], 0)
        self.assertEqual(self._ctl(["drain", "app", self.a.address])[0], 0)
        t.join(10)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(result["r"].body.split()[0], b"a")
        self.assertEqual(self._ctl(["enable", "app", self.a.address])[0], 0)

    def test_3_unknown_server_refused(self):
        """drain/enable of a server or backend that does not exist: exit 1,
        a clear message, nothing changes."""
        rc, out, err = self._ctl(["drain", "app", "192.0.2.1:80"])
        self.assertEqual(rc, 1)
        self.assertIn("no server 192.0.2.1:80 in backend app", out + err)
        rc, out, err = self._ctl(["drain", "nope", self.a.address])
        self.assertEqual(rc, 1)
        rc, out, err = self._ctl(["drain", "app"])
        self.assertEqual(rc, 2, "a missing argument is a usage error")
        self.assertEqual(set(self.hits()), {"a", "b"})

    def test_4_drain_survives_reload(self):
        """The drain flag lives in shared memory: a reload that keeps the
        server keeps it drained (portcullis.yaml(5), STATE ACROSS RELOADS)."""
        self.assertEqual(self._ctl(["drain", "app", self.b.address])[0], 0)
        rc, out, err = self._ctl(["reload"])
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.hits(30), {"a": 30})
        self.assertIn("drain=yes", self.server_line(self.b.address))
        self.assertEqual(self._ctl(["enable", "app", self.b.address])[0], 0)
        self.assertEqual(set(self.hits()), {"a", "b"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
