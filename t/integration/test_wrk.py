#!/usr/bin/python3
"""wrk -t2 -c64 -d6s through portcullis (in front of nginx) with a SIGHUP every
second: the keep-alive load sees no error (portcullis(8), RELOADS)."""

import signal
import subprocess
import sys
import threading
import time
import unittest

import harness as h
from opslib import parse_wrk

LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "
RELOADS = 6


class WrkReloadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.ngx = h.Nginx(cls.tmp)
        cls.addClassCleanup(cls.ngx.stop)
        cls.port = h.free_port()
        cls.pc = h.Portcullis(cls.config(cls.tmp, cls.port, cls.ngx.address, "/"), tmp=cls.tmp)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

        stop = threading.Event()

        def reloader():
            time.sleep(0.5)
            for i in range(RELOADS):
                # alternate between two equivalent configs, so each reload is real
                prefix = "/" if i % 2 else "/x"
                cls.pc.write_config(cls.config(cls.tmp, cls.port, cls.ngx.address, prefix))
                cls.pc.send_signal(signal.SIGHUP)
                if stop.wait(1.0):
                    return

        p = h.spawn(["wrk", "-t2", "-c64", "-d6s", "--timeout", "5s",
                     "http://127.0.0.1:%d/" % cls.port],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t = threading.Thread(target=reloader, daemon=True)
        t.start()
        try:
            cls.out, _ = p.communicate(timeout=60)
            cls.rc = p.returncode
        finally:
            stop.set()
            t.join(10)
        cls.res = parse_wrk(cls.out)
        sys.stderr.write("wrk output:\n%s\n" % cls.out)

    @staticmethod
    def config(tmp, port, upstream, prefix):
        routes = [{"path_prefix": prefix, "backend": "ngx"}]
        if prefix != "/":
            routes.append({"path_prefix": "/", "backend": "ngx"})
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port, "routes": routes}]
        return h.base_config(tmp, listeners, {"ngx": h.backend_block(upstream)}, workers=2)

    def test_no_connect_errors_and_only_2xx(self):
        """No connect errors and no non-2xx response under reloads."""
        self.assertEqual(self.rc, 0, self.out)
        self.assertIsNotNone(self.res["requests"], self.out)
        self.assertGreater(self.res["requests"], 1000, self.out)
        self.assertEqual(self.res["connect"], 0, self.out)
        self.assertEqual(self.res["non2xx3xx"], 0, self.out)

    def test_no_read_write_or_timeout_errors(self):
        """Keep-alive connections are closed only after a response with
        Connection: close (RFC 9112 §9.6), so wrk sees no read, write or
        timeout error."""
        self.assertEqual((self.res["read"], self.res["write"], self.res["timeout"]), (0, 0, 0),
                         self.out)

    def test_every_reload_served(self):
        """All six reloads completed (generation 7 serving) and the old
        generations exited."""
        self.assertIsNotNone(
            self.pc.wait_log(LOG_PREFIX + r"reload: generation %d serving\b" % (RELOADS + 1), 10),
            self.pc.error_log()[-3000:])
        self.assertIsNotNone(self.pc.wait_workers(2, timeout=10), self.pc.workers())


if __name__ == "__main__":
    h.main()
