#!/usr/bin/python3
"""Proxy-generated errors (502, 504, 400) and strict request framing.

Every case checks that the error is short and neutral (no backend address,
no version string), that nothing ambiguous reaches the backend, and that
the proxy keeps serving with the same workers afterwards."""

import re
import time
import unittest

import harness as h

MARK = "/smuggle-marker"

# (name, raw request, RFC section).  Each must get 400 and a closed connection,
# and must never be forwarded (portcullis.yaml(5), HTTP PARSING).
MALFORMED = [
    ("content-length and transfer-encoding",
     b"GET " + MARK.encode() + b"1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n", "RFC 9112 §6.1"),
    ("two different content-lengths",
     b"POST " + MARK.encode() + b"2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
     b"Content-Length: 2\r\n\r\nxx", "RFC 9112 §6.3 rule 5"),
    ("content-length list with different values",
     b"POST " + MARK.encode() + b"3 HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nxx",
     "RFC 9110 §8.6"),
    ("chunked not the final coding",
     b"POST " + MARK.encode() + b"4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
     b"0\r\n\r\n", "RFC 9112 §6.3 rule 4"),
    ("obs-fold",
     b"GET " + MARK.encode() + b"5 HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
     "RFC 9112 §5.2"),
    ("bare CR in a header",
     b"GET " + MARK.encode() + b"6 HTTP/1.1\r\nHost: a\r\nX-Bad: a\rb\r\n\r\n", "RFC 9112 §2.2"),
    ("NUL in a header value",
     b"GET " + MARK.encode() + b"7 HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n", "RFC 9110 §5.5"),
    ("whitespace before the colon",
     b"GET " + MARK.encode() + b"8 HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n",
     "RFC 9112 §5.1"),
    ("missing Host",
     b"GET " + MARK.encode() + b"9 HTTP/1.1\r\nX-Other: a\r\n\r\n", "RFC 9112 §3.2"),
    ("duplicate Host",
     b"GET " + MARK.encode() + b"10 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "RFC 9112 §3.2"),
    ("garbage request line",
     b"GET" + MARK.encode() + b"11HTTP/1.1\r\nHost: a\r\n\r\n", "RFC 9112 §3"),
]


class ErrorsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.rb = h.Backend("restart1")
        cls.addClassCleanup(lambda: cls.rb.stop())
        cls.port = h.free_port()
        cls.dead_port = h.free_port()   # nothing listens there
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port, "routes": [
            {"path_prefix": "/dead", "backend": "dead"},
            {"host": ["slow.test"], "path_prefix": "/", "backend": "slow"},
            {"host": ["restart.test"], "path_prefix": "/", "backend": "restart"},
            {"host": ["half.test"], "path_prefix": "/", "backend": "half"},
            {"host": ["small.test"], "path_prefix": "/", "backend": "web", "max_body_size": "1k"},
            {"path_prefix": "/", "backend": "web"},
        ]}]
        # These tests break servers on purpose, again and again: passive
        # checks (default max_fails: 3) would take them out of
        # rotation and turn the 502/504s under test into 503s.
        off = {"max_fails": 0}
        backends = {
            "web": h.backend_block(cls.web.address, passive=off),
            "dead": h.backend_block("127.0.0.1:%d" % cls.dead_port, passive=off),
            "slow": h.backend_block(cls.web.address, response_timeout="1s", passive=off),
            "restart": h.backend_block(cls.rb.address, response_timeout="5s", passive=off),
            "half": h.backend_block("127.0.0.1:%d" % cls.dead_port, cls.web.address,
                                    retries=1, passive=off),
        }
        cfg = h.base_config(cls.tmp, listeners, backends, workers=2)
        cfg["defaults"].update(client_header_timeout="2s", keepalive_timeout="3s")
        cls.pc = h.Portcullis(cfg)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)
        cls.workers = cls.pc.workers()

    def assert_neutral(self, r, *secrets):
        """A short proxy-generated body that reveals no address or version."""
        blob = r.raw_head + r.body
        self.assertLess(len(r.body), 1024, r.body)
        for s in ("127.0.0.1", "secret", h.project_version()) + secrets:
            self.assertNotIn(str(s).encode(), blob, "error response reveals %r" % s)

    def assert_still_serving(self):
        r = h.request(self.port, "GET", "/still-here")
        self.assertEqual((r.status, r.body), (200, b"web1 /still-here\n"))
        self.assertEqual(self.pc.workers(), self.workers, "a worker died:\n" + self.pc.describe())

    def test_502_connect_refused(self):
        """Nothing listens at the server: 502 (RFC 9110 §15.6.3), neutral body,
        and the error log names backend and address."""
        start = self.pc.log_size()
        r = h.request(self.port, "GET", "/dead/x")
        self.assertEqual(r.status, 502)
        self.assert_neutral(r, self.dead_port)
        m = self.pc.wait_log(r"backend dead: connect 127\.0\.0\.1:%d: \S.*$" % self.dead_port,
                             timeout=5, start=start)
        self.assertIsNotNone(m, self.pc.error_log()[-2000:])
        self.assert_still_serving()

    def test_connect_failure_retried_on_other_server(self):
        """retries: 1: when one server refuses, the request goes to the other
        one, so every request of a half-dead pool succeeds (portcullis.yaml(5),
        retries)."""
        for i in range(12):
            r = h.request(self.port, "GET", "/half/%d" % i, host="half.test")
            self.assertEqual((r.status, r.body), (200, b"web1 /half/%d\n" % i))

    def test_502_connect_refused_keepalive(self):
        """A 502 on a keep-alive connection leaves the connection usable or closes
        it cleanly; a later request on a new connection works (RFC 9110 §15.6.3)."""
        with h.Conn(self.port) as c:
            c.send(h.build_request("GET", "/dead/1"))
            r = c.read_response()
            self.assertEqual(r.status, 502)
            if not r.closes:
                c.send(h.build_request("GET", "/after-502", close=True))
                self.assertEqual(c.read_response().body, b"web1 /after-502\n")
        self.assert_still_serving()

    def test_504_response_timeout(self):
        """Backend slower than response_timeout (1s): 504 (RFC 9110 §15.6.5),
        well before the backend would answer."""
        t0 = time.monotonic()
        r = h.request(self.port, "GET", "/sleep?ms=6000", host="slow.test", timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 504)
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 5.0)
        self.assert_neutral(r, self.web.port)
        self.assert_still_serving()

    def test_response_stalls_midway(self):
        """response_timeout also bounds the wait between two reads: a backend that
        stops sending in the middle of a body makes the proxy cut the client
        connection (the body is then visibly incomplete, RFC 9112 §6.3 rule 6;
        portcullis.yaml(5): response_timeout)."""
        t0 = time.monotonic()
        with h.Conn(self.port, timeout=15) as c:
            c.send(h.build_request("GET", "/stall?bytes=1000&ms=8000", host="slow.test"))
            with self.assertRaises((h.IncompleteResponse, ConnectionResetError)):
                c.read_response()
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 6.0)
        self.assert_still_serving()

    def test_fast_enough_is_not_504(self):
        """A response within response_timeout is passed through (RFC 9110 §15.3.1)."""
        r = h.request(self.port, "GET", "/sleep?ms=200", host="slow.test")
        self.assertEqual((r.status, r.body), (200, b"web1 slept 200\n"))

    def test_502_backend_closes(self):
        """Backend closes the connection without answering: 502 (RFC 9110 §15.6.3)."""
        for q in ("/reset", "/reset?rst=1"):
            with self.subTest(q=q):
                r = h.request(self.port, "GET", q)
                self.assertEqual(r.status, 502)
                self.assert_neutral(r, self.web.port)
        self.assert_still_serving()

    def raw_response(self, raw):
        return h.request(self.port, "GET", "/raw?hex=" + raw.hex())

    def test_502_malformed_responses(self):
        """A response whose framing is invalid is discarded and the client gets
        502 (RFC 9112 §6.3 rule 5; §4 status-line; §5 field syntax)."""
        cases = [
            ("bad status line", b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"),
            ("not HTTP", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
            ("differing content-lengths",
             b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
            ("invalid content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok"),
            ("whitespace before colon", b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
            ("head never ends", b"HTTP/1.1 200 OK\r\nX-A: b\r\n"),
        ]
        for name, raw in cases:
            with self.subTest(case=name):
                r = self.raw_response(raw)
                self.assertEqual(r.status, 502, "%s: %r" % (name, r))
                self.assert_neutral(r, self.web.port)
        self.assert_still_serving()

    def test_response_cl_and_te(self):
        """A response with both Transfer-Encoding: chunked and Content-Length:
        either 502, or forwarded with chunked framing only (RFC 9112 §6.3 rule 3)."""
        r = self.raw_response(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        if r.status != 502:
            self.assertEqual(r.status, 200)
            self.assertFalse(r.header("Content-Length") and r.header("Transfer-Encoding"),
                             "both framings forwarded: %r" % r.headers)
            self.assertEqual(r.body, b"ok")
        self.assert_still_serving()

    def test_close_delimited_raw_response(self):
        """A response without Content-Length or chunked framing ends at close
        and reaches the client whole (RFC 9112 §6.3 rule 8)."""
        r = self.raw_response(b"HTTP/1.1 200 OK\r\nX-Backend: raw\r\n\r\nuntil the end")
        self.assertEqual((r.status, r.body), (200, b"until the end"))

    def test_backend_restart(self):
        """After a backend restarts, idle upstream connections the proxy pooled
        are dead; the next GETs are still answered 200 by the new process,
        not 502 (RFC 9112 §9.3.1: idempotent requests may be retried on a new
        connection)."""
        for i in range(4):   # fill the upstream keep-alive pools of both workers
            self.assertEqual(h.request(self.port, "GET", "/r%d" % i, host="restart.test").status, 200)
        port = self.rb.port
        self.rb.stop()
        type(self).rb = h.Backend("restart2", port=port)
        for i in range(6):
            r = h.request(self.port, "GET", "/after/%d" % i, host="restart.test")
            self.assertEqual((r.status, r.body), (200, b"restart2 /after/%d\n" % i))

    def test_backend_status_passed_through(self):
        """Backend statuses (including 5xx) are the backend's, not rewritten
        (RFC 9110 §15)."""
        for code in (201, 204, 404, 500, 503):
            with self.subTest(code=code):
                r = h.request(self.port, "GET", "/status?code=%d" % code)
                self.assertEqual(r.status, code)
                self.assertEqual(r.header("X-Backend"), "web1")

    def test_malformed_requests(self):
        """Ambiguous or malformed framing: 400, connection closed, never forwarded."""
        self.web.requests(clear=True)
        for name, raw, rfc in MALFORMED:
            with self.subTest(case=name, rfc=rfc):
                with h.Conn(self.port) as c:
                    c.send(raw)
                    try:
                        r = c.read_response()
                    except (h.IncompleteResponse, ConnectionResetError) as e:
                        self.fail("%s (%s): no response: %s" % (name, rfc, e))
                    self.assertEqual(r.status, 400, "%s (%s)" % (name, rfc))
                    self.assert_neutral(r)
                    self.assertTrue(c.wait_closed(5), "%s: connection left open" % name)
        seen = [q["path"] for q in self.web.requests()["requests"]]
        self.assertEqual([p for p in seen if p.startswith(MARK)], [],
                         "malformed requests reached the backend")
        self.assert_still_serving()

    def test_malformed_after_good_request(self):
        """A bad request pipelined after a good one: the good one is answered,
        then 400 and close; the bad one never reaches the backend (RFC 9112 §6.1)."""
        self.web.requests(clear=True)
        with h.Conn(self.port) as c:
            c.send(h.build_request("GET", "/good") + MALFORMED[0][1])
            r1 = c.read_response()
            self.assertEqual((r1.status, r1.body), (200, b"web1 /good\n"))
            r2 = c.read_response()
            self.assertEqual(r2.status, 400)
            self.assertTrue(c.wait_closed(5))
        seen = [q["path"] for q in self.web.requests()["requests"]]
        self.assertIn("/good", seen)
        self.assertEqual([p for p in seen if p.startswith(MARK)], [])
        self.assert_still_serving()

    def test_408_idle_head(self):
        """A request head that stops arriving gets 408 after client_header_timeout
        (2s) and the connection is closed (RFC 9110 §15.5.9)."""
        with h.Conn(self.port) as c:
            c.send(b"GET /never-finished HTTP/1.1\r\nHost: a\r\n")
            t0 = time.monotonic()
            r = c.read_response()
            elapsed = time.monotonic() - t0
            self.assertEqual(r.status, 408)
            self.assertGreater(elapsed, 1.5)
            self.assertLess(elapsed, 6.0)
            self.assert_neutral(r)
            self.assertTrue(c.wait_closed(5))
        self.assert_still_serving()

    def test_408_slow_sender(self):
        """client_header_timeout bounds the whole head: a client dribbling one
        byte every 300 ms still gets 408 after ~2s (RFC 9110 §15.5.9)."""
        head = b"GET /dribble HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"s" * 100
        with h.Conn(self.port) as c:
            t0 = time.monotonic()
            for i in range(len(head)):
                if c.peer_closed() or time.monotonic() - t0 > 8:
                    break
                try:
                    c.send(head[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    break
                time.sleep(0.3)
            r = c.read_response()
            self.assertEqual(r.status, 408)
            self.assertLess(time.monotonic() - t0, 6.0)
        self.assert_still_serving()

    def test_keepalive_timeout(self):
        """An idle keep-alive connection is closed after keepalive_timeout (3s),
        not before (RFC 9112 §9.5)."""
        with h.Conn(self.port) as c:
            c.send(h.build_request("GET", "/idle"))
            self.assertEqual(c.read_response().status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(10), "idle connection never closed")
            elapsed = time.monotonic() - t0
            self.assertGreater(elapsed, 2.0)
            self.assertLess(elapsed, 7.0)

    def test_413_body_too_large(self):
        """A Content-Length over the route's max_body_size (1k) gets 413
        (RFC 9110 §15.5.14) and is not forwarded; within the limit it is."""
        self.web.requests(clear=True)
        r = h.request(self.port, "POST", MARK + "-413", host="small.test", body=b"x" * 2000)
        self.assertEqual(r.status, 413)
        self.assert_neutral(r)
        r = h.request(self.port, "POST", "/echo", host="small.test", body=b"x" * 1000)
        self.assertEqual((r.status, r.json()["body_length"]), (200, 1000))
        seen = [q["path"] for q in self.web.requests()["requests"]]
        self.assertNotIn(MARK + "-413", seen)
        self.assert_still_serving()

    def test_header_too_large(self):
        """A request head over max_header_size (32k) in its header fields gets
        431 (RFC 6585 §5) and the connection is closed."""
        raw = b"GET /big-head HTTP/1.1\r\nHost: a\r\n" + \
            b"".join(b"X-Fill-%d: %s\r\n" % (i, b"x" * 1000) for i in range(40)) + b"\r\n"
        self.assert_refused_head(raw, 431)

    def test_uri_too_long(self):
        """A request line over max_header_size (32k) gets 414 (RFC 9110 §15.5.15)
        and the connection is closed."""
        raw = b"GET /" + b"u" * 40000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        self.assert_refused_head(raw, 414)

    def assert_refused_head(self, raw, status):
        with h.Conn(self.port) as c:
            try:
                c.send(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.read_response()
            self.assertEqual(r.status, status)
            self.assert_neutral(r)
            self.assertTrue(c.wait_closed(5))
        self.assert_still_serving()

if __name__ == "__main__":
    h.main()
