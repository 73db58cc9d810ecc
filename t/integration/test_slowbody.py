#!/usr/bin/python3
"""Slow request bodies (issue #14, item 6): client_body_timeout bounds the
gap between two reads of a body, and client_body_min_rate bounds the whole
(Apache mod_reqtimeout's MinRate): once client_body_timeout plus one second
per client_body_min_rate bytes has been spent waiting for the client, the
request gets 408 and its server connection is given up.  A body trickled
at one byte every 0.4 s never trips a 1 s gap, and used to hold a server
connection for ever."""

import socket
import time
import unittest

import harness as h

HEAD = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"


def trickle(port, path, seconds, every=0.4):
    """Send HEAD then one body byte every `every` s for at most `seconds`.
    Returns (bytes of body sent, what came back, seconds until it came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(HEAD % path)
    t0 = time.monotonic()
    sent, got = 0, b""
    try:
        s.setblocking(False)
        while time.monotonic() - t0 < seconds and sent < 100:
            try:
                s.send(b"x")
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                break
            deadline = time.monotonic() + every
            while time.monotonic() < deadline:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    time.sleep(0.02)
                    continue
                except ConnectionResetError:
                    d = b""
                got += d
                if not d or b"\r\n\r\n" in got:
                    return sent, got, time.monotonic() - t0
        return sent, got, time.monotonic() - t0
    finally:
        s.close()


class SlowBodyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        tmp = h.make_tmpdir()
        cls.port = h.free_port()
        routes = [{"path_prefix": "/norate", "backend": "web", "client_body_min_rate": 0,
                   "client_body_timeout": "1s"},
                  {"path_prefix": "/", "backend": "web", "client_body_min_rate": 100,
                   "client_body_timeout": "1s"}]
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port, "routes": routes}]
        cfg = h.base_config(tmp, listeners, {"web": h.backend_block(cls.web.address)},
                            workers=1)
        cls.pc = h.Portcullis(cfg, tmp=tmp)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def test_trickled_body_gets_408(self):
        """client_body_min_rate 100 B/s, client_body_timeout 1 s: a byte
        every 0.4 s gets 408 after about 1 s of waiting (allowed: 1 s + 10 ms
        a byte), well before the 100 bytes are through."""
        sent, got, took = trickle(self.port, b"/echo", 8)
        self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got[:200])
        self.assertIn(b"\r\nConnection: close\r\n", got)
        self.assertLess(sent, 20, "the body went on for %d bytes, %.1f s" % (sent, took))
        self.assertEqual(h.request(self.port, "GET", "/after").status, 200)

    def test_without_min_rate_only_the_gap_counts(self):
        """The same trickle on a route with client_body_min_rate 0 is not
        cut in 3 s (no gap reaches 1 s): the rate, not the gap, ended the
        first one."""
        sent, got, took = trickle(self.port, b"/norate/echo", 3)
        self.assertEqual(got, b"", "answered %r after %.1f s" % (got[:100], took))
        self.assertGreaterEqual(sent, 6)

    def test_fast_body_passes(self):
        """A 1 MiB body sent at once is well above the rate: 200."""
        r = h.request(self.port, "POST", "/echo", body=b"y" * (1 << 20))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_length"], 1 << 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
