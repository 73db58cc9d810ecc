#!/usr/bin/python3
"""The access log (portcullis(8), "Access log"): one line per request, combined
(Apache/nginx) or JSON with the fields portcullis(8) lists, requests refused
before forwarding logged too, X-Request-Id the same in the log and at the
server, and SIGUSR1 after a rotation writing to a new file the workers own."""

import json
import os
import pwd
import re
import subprocess
import signal
import time
import unittest

import harness as h


class AccessLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)

    def start(self, fmt):
        tmp = h.make_tmpdir()
        port = h.free_port()
        path = os.path.join(tmp, "access.log")
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port,
                      "routes": [{"path_prefix": "/", "backend": "web"}]}]
        cfg = h.base_config(tmp, listeners, {"web": h.backend_block(self.web.address)},
                            workers=2)
        cfg.setdefault("log", {})["access"] = {"path": path, "format": fmt}
        os.chmod(tmp, 0o755)   # the workers (nobody) re-create the file
        pc = h.Portcullis(cfg, tmp=tmp)
        pc.start()
        self.addCleanup(pc.stop)
        return pc, port, path

    def lines(self, path, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    got = f.read().splitlines()
            except OSError:
                got = []
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def test_json_fields(self):
        """JSON: every field portcullis(8) lists, the request id the server
        saw, and a 400 that never reached a server logged with null upstream
        fields."""
        pc, port, path = self.start("json")
        r = h.request(port, "GET", "/echo?q=1", headers=[("User-Agent", "ua/1")])
        self.assertEqual(r.status, 200)
        rid = [v for k, v in r.json()["headers"] if k.lower() == "x-request-id"][0]
        with h.Conn(port) as c:
            c.send(b"GET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        got = [json.loads(l) for l in self.lines(path, 2)]
        self.assertEqual(len(got), 2, got)
        ok = [g for g in got if g["status"] == 200][0]
        for key in ("time", "client", "method", "uri", "status", "bytes_in", "bytes_out",
                    "duration_ms", "route", "backend", "server", "upstream_status",
                    "upstream_connect_ms", "upstream_response_ms", "request_id"):
            self.assertIn(key, ok)
        self.assertEqual((ok["client"], ok["method"], ok["uri"]), ("127.0.0.1", "GET", "/echo?q=1"))
        self.assertEqual((ok["route"], ok["backend"], ok["server"]),
                         ("web#1", "web", self.web.address))
        self.assertEqual(ok["upstream_status"], 200)
        self.assertEqual(ok["request_id"], rid)
        self.assertEqual(ok["user_agent"], "ua/1")
        self.assertGreater(ok["bytes_out"], 0)
        bad = [g for g in got if g["status"] == 400][0]
        self.assertIsNone(bad["upstream_status"])
        self.assertIsNone(bad["backend"])

    def test_combined_and_rotation(self):
        """combined: the Apache/nginx line; after mv + SIGUSR1 the next
        request goes to a new file owned by the workers' user."""
        pc, port, path = self.start("combined")
        self.assertEqual(h.request(port, "GET", "/a", headers=[("Referer", "http://r/")]).status, 200)
        got = self.lines(path, 1)
        self.assertRegex(got[0], r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                                 r'"GET /a HTTP/1\.1" 200 \d+ "http://r/" "[^"]*"$')
        os.rename(path, path + ".1")
        os.kill(pc.pid, signal.SIGUSR1)
        self.assertIsNotNone(pc.wait_log(r"error log reopened", 5))
        time.sleep(0.3)
        self.assertEqual(h.request(port, "GET", "/b").status, 200)
        new = self.lines(path, 1)
        self.assertEqual(len(new), 1, "the request after rotation is in the new file")
        self.assertIn('"GET /b HTTP/1.1" 200', new[0])
        self.assertEqual(os.stat(path).st_uid, pwd.getpwnam("nobody").pw_uid)
        with open(path + ".1") as f:
            self.assertNotIn("/b ", f.read())


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs")
class AccessLogLossTest(unittest.TestCase):
    def test_lost_lines_are_reported(self):
        """Lines that cannot be written (the access log's file system, a
        16 KiB tmpfs, is full) are dropped without stalling the worker, and
        reported: once with the reason and a count, and again when writing
        works again (issue #14 item 9)."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        tmp = h.make_tmpdir()
        logdir = os.path.join(tmp, "full")
        os.mkdir(logdir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0777", "tmpfs", logdir],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", logdir])
        path = os.path.join(logdir, "access.log")
        cfg, tmp, port = h.one_route_config(h.backend_block(web.address), tmp=tmp)
        cfg["log"]["access"] = {"path": path, "format": "combined"}
        pc = h.Portcullis(cfg, tmp=tmp)
        pc.start()
        self.addCleanup(pc.stop)
        with h.Conn(port) as c:
            for i in range(400):
                c.send(h.build_request("GET", "/fill/%d" % i, "t"))
                self.assertEqual(c.read_response().status, 200)
        m = pc.wait_log(r"\[error\] \d+: access log %s: No space left on device: (\d+) "
                        r"lines lost so far" % re.escape(path), 5)
        self.assertIsNotNone(m, pc.error_log()[-2000:])
        os.truncate(path, 0)
        self.assertEqual(h.request(port, "GET", "/again").status, 200)
        m = pc.wait_log(r"\[notice\] \d+: access log %s: writing again; (\d+) lines were "
                        r"lost" % re.escape(path), 5)
        self.assertIsNotNone(m, pc.error_log()[-2000:])
        self.assertGreater(int(m.group(1)), 100)
        with open(path) as f:
            self.assertIn("/again", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
