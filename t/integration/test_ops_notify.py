#!/usr/bin/python3
"""systemd notification (issue #5, portcullis(8) SYSTEMD): with NOTIFY_SOCKET
set, the master sends READY=1 once serving, RELOADING=1 + MONOTONIC_USEC=
then READY=1 around each reload, STATUS= with the generation and the last
reload error, and STOPPING=1.  A Python datagram socket stands in for
systemd (a path, and an abstract '@' name)."""

import os
import re
import signal
import time
import unittest

import harness as h
import opslib as ops


class NotifyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = h.Backend("alpha")
        cls.addClassCleanup(cls.a.stop)
        cls.b = h.Backend("beta")
        cls.addClassCleanup(cls.b.stop)

    def config(self, backend="a"):
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % self.port,
                      "routes": [{"path_prefix": "/", "backend": backend}]}]
        backends = {"a": h.backend_block(self.a.address), "b": h.backend_block(self.b.address)}
        return h.base_config(self.tmp, listeners, backends, workers=2)

    def start(self, abstract):
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        self.ns = ops.NotifySocket(os.path.join(self.tmp, "notify.sock"), abstract=abstract)
        self.addCleanup(self.ns.close)
        self.pc = h.Portcullis(self.config(), tmp=self.tmp, env={"NOTIFY_SOCKET": self.ns.env})
        self.addCleanup(self.pc.stop)
        # not pc.start(): READY=1 itself must tell us that it serves
        self.pc._stdout = open(self.pc.stdout_path, "wb")
        self.pc._stderr = open(self.pc.stderr_path, "wb")
        self.pc.proc = h.spawn([h.binary(), "-c", self.pc.config_path],
                               stdout=self.pc._stdout, stderr=self.pc._stderr, env=self.pc.env)
        return self.pc

    def wait(self, pred, start=0, timeout=10, what=""):
        i = self.ns.wait_for(pred, timeout, start)
        self.assertIsNotNone(i, "no %s notification; got %r\n%s"
                             % (what, self.ns.snapshot(), self.pc.describe()))
        return i

    def check_cycle(self, abstract):
        pc = self.start(abstract)
        i = self.wait(lambda m: m.get("READY") == "1", what="READY=1")
        ready = self.ns.snapshot()[i]
        # READY=1 means serving: the very next request is answered
        self.assertEqual(h.request(self.port, "GET", "/").status, 200)
        self.assertEqual(ready.get("STATUS"), "generation 1 serving", ready)

        # a good reload: RELOADING=1 with a current MONOTONIC_USEC, then READY=1
        pc.write_config(self.config("b"))
        rc, out, err = ops.ctl(pc, "reload")
        self.assertEqual(rc, 0, err)
        j = self.wait(lambda m: m.get("RELOADING") == "1", i + 1, what="RELOADING=1")
        rel = self.ns.snapshot()[j]
        usec = int(rel["MONOTONIC_USEC"])
        self.assertLess(abs(usec / 1e6 - time.monotonic()), 30, rel)
        k = self.wait(lambda m: m.get("READY") == "1", j + 1, what="READY=1 after reload")
        self.assertEqual(self.ns.snapshot()[k].get("STATUS"), "generation 2 serving")

        # a broken reload: RELOADING=1, READY=1, STATUS= with the error
        pc.write_config("bogus_key: 1\n" + h.to_yaml(self.config("a")))
        rc, out, err = ops.ctl(pc, "reload")
        self.assertEqual(rc, 1, (out, err))
        j = self.wait(lambda m: m.get("RELOADING") == "1", k + 1, what="RELOADING=1 (bad)")
        k = self.wait(lambda m: m.get("READY") == "1", j + 1, what="READY=1 after bad reload")
        status = self.ns.snapshot()[k].get("STATUS", "")
        self.assertRegex(status, r"^generation 2 serving; last reload failed: %s:1:1: .*bogus_key"
                         % re.escape(pc.config_path))

        # SIGHUP with a good file again: the error is gone from STATUS=
        pc.write_config(self.config("a"))
        pc.send_signal(signal.SIGHUP)
        j = self.wait(lambda m: m.get("RELOADING") == "1", k + 1, what="RELOADING=1 (HUP)")
        k = self.wait(lambda m: m.get("READY") == "1", j + 1, what="READY=1 after HUP")
        self.assertEqual(self.ns.snapshot()[k].get("STATUS"), "generation 3 serving")

        # stop: STOPPING=1
        rc, out, err = ops.ctl(pc, "stop")
        self.assertEqual(rc, 0, err)
        self.wait(lambda m: m.get("STOPPING") == "1", k + 1, what="STOPPING=1")
        self.assertEqual(pc.wait_exit(10), 0)

    def test_path_socket(self):
        """NOTIFY_SOCKET=/path: READY, RELOADING/READY around good and bad
        reloads with STATUS=, STOPPING on stop."""
        self.check_cycle(abstract=False)

    def test_abstract_socket(self):
        """NOTIFY_SOCKET=@name (abstract namespace): the same messages."""
        self.check_cycle(abstract=True)

    def test_no_notify_socket(self):
        """Without NOTIFY_SOCKET nothing is sent and nothing fails."""
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        pc = h.Portcullis(self.config(), tmp=self.tmp)
        pc.env.pop("NOTIFY_SOCKET", None)
        self.addCleanup(pc.stop)
        pc.start()
        self.assertEqual(ops.ctl(pc, "reload")[0], 0)
        self.assertEqual(h.request(self.port, "GET", "/").status, 200)


if __name__ == "__main__":
    h.main()
