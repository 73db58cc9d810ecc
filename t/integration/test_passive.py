#!/usr/bin/python3
"""Passive health checks blame a server only for what the server did
(issue #14, item 3), and a backend never fails every request because its
servers look unhealthy (panic mode):

- clients that stop reading large responses until response_timeout take
  no server out;
- a server that sends malformed responses on one URL keeps serving the
  others (each malformed response is a 502, not a passive failure);
- below panic_threshold healthy servers, the backend balances over all of
  them, and says so in the error log, entering and leaving;
- a server that answers no response head within response_timeout still
  counts (the rule is not switched off)."""

import re
import socket
import time
import unittest

import harness as h


def down_lines(pc):
    return re.findall(r"server \S+ is down for \d+ms \(passive\)", pc.error_log())


class BlameTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)

    def test_clients_that_stop_reading(self):
        """8 clients ask for 64 MiB each and read nothing: after
        response_timeout (1 s) their connections are cut, the lone server
        is not marked down (max_fails 3, panic off) and answers 200."""
        pc, port = h.one_route_proxy(self, h.backend_block(self.web.address, response_timeout="1s",
                                               panic_threshold="0%",
                                               passive={"max_fails": 3,
                                                        "fail_timeout": "30s"}))
        stalled = []
        for i in range(8):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(h.build_request("GET", "/big?size=%d" % (64 << 20), "t"))
            stalled.append(s)
        try:
            self.assertIsNotNone(pc.wait_log(r"read nothing of the response for 1000ms; "
                                             r"closing \(not counted against server", 10),
                                 pc.describe())
            time.sleep(1.5)     # every stalled connection has timed out by now
            for i in range(5):
                self.assertEqual(h.request(port, "GET", "/after/%d" % i).status, 200,
                                 pc.describe())
        finally:
            for s in stalled:
                s.close()
        self.assertEqual(down_lines(pc), [], pc.error_log()[-3000:])

    def test_malformed_response_on_one_url(self):
        """One URL answers a malformed head: 502 each time, three times in
        a row (max_fails 3), and the server still answers 200 on the
        others -- not 503 for 30 s."""
        pc, port = h.one_route_proxy(self, h.backend_block(self.web.address, panic_threshold="0%",
                                               passive={"max_fails": 3,
                                                        "fail_timeout": "30s"}))
        bad = "/raw?hex=" + b"HTTP/1.1 2OO OK\r\n\r\n".hex()
        for _ in range(3):
            self.assertEqual(h.request(port, "GET", bad).status, 502)
        self.assertIsNotNone(pc.wait_log(r"invalid response head", 5))
        for i in range(5):
            self.assertEqual(h.request(port, "GET", "/ok/%d" % i).status, 200, pc.describe())
        self.assertEqual(down_lines(pc), [])

    def test_no_response_head_still_counts(self):
        """A server that sends no response head within response_timeout is
        failing: max_fails 2 such requests mark it down (with panic off,
        the next request is a fast 503)."""
        pc, port = h.one_route_proxy(self, h.backend_block(self.web.address, response_timeout="300ms",
                                               panic_threshold="0%",
                                               passive={"max_fails": 2,
                                                        "fail_timeout": "30s"}))
        for _ in range(2):
            self.assertEqual(h.request(port, "GET", "/sleep?ms=2000").status, 504)
        self.assertIsNotNone(pc.wait_log(r"is down for 30000ms \(passive\): 2 failures in a "
                                         r"row, last: response timeout", 5), pc.describe())
        self.assertEqual(h.request(port, "GET", "/").status, 503)


class PanicTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)

    def test_panic_enter_and_leave(self):
        """A lone server marked down (passive, fail_timeout 2 s): with the
        default panic_threshold (50%) the next request is served by it
        anyway (200, not 503) and the panic is logged; once fail_timeout
        has passed, the next request logs its end."""
        pc, port = h.one_route_proxy(self, h.backend_block(self.web.address, response_timeout="300ms",
                                               passive={"max_fails": 1,
                                                        "fail_timeout": "2s"}))
        self.assertEqual(h.request(port, "GET", "/sleep?ms=1000").status, 504)
        self.assertIsNotNone(pc.wait_log(r"is down for 2000ms \(passive\)", 5))
        r = h.request(port, "GET", "/during")
        self.assertEqual((r.status, r.header("X-Backend")), (200, "web1"))
        self.assertIsNotNone(pc.wait_log(r"\[warn\] \d+: backend web: 0 of 1 servers healthy, "
                                         r"below panic_threshold 50%: balancing over all of "
                                         r"them", 5), pc.describe())
        time.sleep(2.2)
        self.assertEqual(h.request(port, "GET", "/after").status, 200)
        self.assertIsNotNone(pc.wait_log(r"backend web: 1 of 1 servers healthy: panic over", 5),
                             pc.describe())

    def test_backup_before_panic(self):
        """The primary is down and a backup is up: the backup serves, and
        there is no panic (backups are there for exactly this)."""
        backup = h.Backend("backup")
        self.addCleanup(backup.stop)
        pc, port = h.one_route_proxy(self, {"response_timeout": "300ms", "keepalive": 0,
                                "passive": {"max_fails": 1, "fail_timeout": "30s"},
                                "servers": [{"address": self.web.address},
                                            {"address": backup.address, "backup": True}]})
        self.assertEqual(h.request(port, "GET", "/sleep?ms=1000").status, 504)
        self.assertIsNotNone(pc.wait_log(r"is down for 30000ms \(passive\)", 5))
        for i in range(4):
            r = h.request(port, "GET", "/b/%d" % i)
            self.assertEqual((r.status, r.header("X-Backend")), (200, "backup"))
        self.assertNotIn("panic", pc.error_log())


class TotalTimeoutTest(unittest.TestCase):
    def test_response_total_timeout(self):
        """response_total_timeout 500ms with response_timeout 5s: a server
        that sends nothing gets the client a 504 after about 0.5 s, one
        that pauses mid-body gets the client's connection cut after the
        first part; neither counts against the server (issue #14 item 9)."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        pc, port = h.one_route_proxy(self, h.backend_block(web.address, response_timeout="5s",
                                               response_total_timeout="500ms",
                                               panic_threshold="0%",
                                               passive={"max_fails": 1,
                                                        "fail_timeout": "30s"}))
        t0 = time.monotonic()
        self.assertEqual(h.request(port, "GET", "/sleep?ms=3000").status, 504)
        self.assertLess(time.monotonic() - t0, 2.5)
        with h.Conn(port) as c:
            c.send(h.build_request("GET", "/stall?bytes=1000&ms=3000", "t"))
            with self.assertRaises(h.IncompleteResponse):
                c.read_response()
        self.assertIsNotNone(pc.wait_log(r"response not complete within "
                                         r"response_total_timeout 500ms", 5))
        self.assertEqual(h.request(port, "GET", "/ok").status, 200)
        self.assertEqual(down_lines(pc), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
