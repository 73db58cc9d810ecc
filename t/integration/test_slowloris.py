#!/usr/bin/python3
"""Slowloris: a client that sends its request head one byte every 500 ms.

portcullis.yaml(5) DEFAULTS: no slow client can stall a worker, every wait has
a timeout; `client_header_timeout` bounds the whole request head, then 408 and
close.
With client_header_timeout: 3s, such a client must be answered 408 (or
closed) within 3 + 1 s of its first byte, and not long before 3 s either
(it is the header timeout that fires, not something else).  Meanwhile a
normal client on the same single worker is served promptly.
"""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from recorder import Client, Incomplete, Recorder  # noqa: E402

HEADER_TIMEOUT = 3.0
SLACK = 1.0
BYTE_EVERY = 0.5
SLOW_HEAD = (b"GET /slow HTTP/1.1\r\nHost: h.test\r\nUser-Agent: slowloris\r\nX-Slow: "
             + b"a" * 200 + b"\r\n\r\n")


class SlowSender:
    """Sends `data` one byte every BYTE_EVERY seconds on its own thread, and
    records when the proxy answered / closed, relative to the first byte."""

    def __init__(self, port, data=SLOW_HEAD, prefix=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.data = data
        self.prefix = prefix         # sent at once before the slow bytes
        self.first_byte = None
        self.answered = None         # seconds after the first slow byte
        self.closed = None
        self.received = b""
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        s = self.sock
        try:
            if self.prefix:
                s.sendall(self.prefix)
                # read the response to the complete request first
                self.prefix_response = self._read_until(b"\r\n\r\n", 5)
            s.setblocking(False)
            self.first_byte = time.monotonic()
            deadline = self.first_byte + HEADER_TIMEOUT + SLACK + 3
            next_send = self.first_byte
            while time.monotonic() < deadline and self.closed is None:
                now = time.monotonic()
                if now >= next_send and self.sent < len(self.data):
                    try:
                        s.send(self.data[self.sent:self.sent + 1])
                        self.sent += 1
                    except (BrokenPipeError, ConnectionResetError):
                        self._mark_closed()
                        break
                    except BlockingIOError:
                        pass
                    next_send += BYTE_EVERY
                try:
                    d = s.recv(65536)
                    if d:
                        if self.answered is None:
                            self.answered = time.monotonic() - self.first_byte
                        self.received += d
                    else:
                        self._mark_closed()
                except BlockingIOError:
                    time.sleep(0.02)
                except ConnectionResetError:
                    self._mark_closed()
        finally:
            s.close()

    def _read_until(self, marker, timeout):
        """One whole response (head and Content-Length body)."""
        self.sock.settimeout(timeout)
        buf = b""
        while marker not in buf:
            d = self.sock.recv(65536)
            if not d:
                return buf
            buf += d
        head = buf.split(marker, 1)[0].lower()
        n = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                n = int(line.split(b":", 1)[1])
        while len(buf) < len(head) + len(marker) + n:
            d = self.sock.recv(65536)
            if not d:
                break
            buf += d
        return buf

    def _mark_closed(self):
        if self.closed is None:
            self.closed = time.monotonic() - self.first_byte
        if self.answered is None:
            self.answered = self.closed

    def join(self, timeout):
        self.thread.join(timeout)


class SlowlorisTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.rec = Recorder()
        cls.addClassCleanup(cls.rec.stop)
        cls.tmp = h.make_tmpdir()
        cls.port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port,
                      "routes": [{"path_prefix": "/", "backend": "rec"}]}]
        cfg = h.base_config(cls.tmp, listeners,
                            {"rec": h.backend_block(cls.rec.address, keepalive=32,
                                                   passive={"max_fails": 0})}, workers=1)
        cfg["defaults"].update(client_header_timeout="3s", keepalive_timeout="10s")
        cls.pc = h.Portcullis(cfg)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def normal_client(self, stop, latencies, errors):
        """Keep-alive GETs every 100 ms until stop is set."""
        c = None
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if c is None:
                    c = Client(self.port, timeout=5)
                t0 = time.monotonic()
                c.send(b"GET /normal/%d HTTP/1.1\r\nHost: h.test\r\n\r\n" % i)
                r = c.read_response()
                latencies.append(time.monotonic() - t0)
                if r.status != 200:
                    errors.append("status %d" % r.status)
            except (OSError, Incomplete, ValueError) as e:
                errors.append(repr(e))
                if c:
                    c.close()
                c = None
            stop.wait(0.1)
        if c:
            c.close()

    def check_slow(self, s, what):
        self.assertIsNotNone(s.answered, "%s: never answered nor closed" % what)
        self.assertLessEqual(s.answered, HEADER_TIMEOUT + SLACK,
                             "%s: answered %.2fs after its first byte" % (what, s.answered))
        self.assertGreaterEqual(s.answered, HEADER_TIMEOUT - 0.6,
                                "%s: cut at %.2fs, before client_header_timeout"
                                % (what, s.answered))
        self.assertIsNotNone(s.closed, "%s: connection left open after the answer" % what)
        self.assertLessEqual(s.closed, HEADER_TIMEOUT + SLACK,
                             "%s: closed %.2fs after its first byte" % (what, s.closed))
        if s.received:
            self.assertTrue(s.received.startswith(b"HTTP/1.1 408 "),
                            "%s: got %r" % (what, s.received[:100]))
            self.assertIn(b"\r\nConnection: close\r\n", s.received)
        self.assertLess(s.sent, len(s.data), "%s: the whole head went through" % what)

    def test_slow_head_gets_408_while_others_are_served(self):
        """One byte every 500 ms: 408 within client_header_timeout + 1 s."""
        mark = self.rec.mark()
        stop, lat, errs = threading.Event(), [], []
        normal = threading.Thread(target=self.normal_client, args=(stop, lat, errs), daemon=True)
        normal.start()
        s = SlowSender(self.port).start()
        s.join(HEADER_TIMEOUT + SLACK + 6)
        stop.set()
        normal.join(10)
        self.check_slow(s, "slow client")
        self.assertEqual(errs, [], "the normal client failed meanwhile")
        self.assertGreater(len(lat), 10, "the normal client was not served")
        self.assertLess(max(lat), 1.0, "the normal client waited %.2fs" % max(lat))
        _, reqs = self.rec.since(mark)
        self.assertNotIn(b"/slow", [r.target for r in reqs], "the slow head was forwarded")

    def test_slow_second_request_on_keepalive_connection(self):
        """After a complete request, a slowly sent next head is timed from its first byte."""
        s = SlowSender(self.port, prefix=b"GET /first HTTP/1.1\r\nHost: h.test\r\n\r\n").start()
        s.join(HEADER_TIMEOUT + SLACK + 10)
        self.assertTrue(s.prefix_response.startswith(b"HTTP/1.1 200 "), s.prefix_response[:80])
        self.check_slow(s, "slow second head")

    def test_many_slow_clients(self):
        """50 slow clients at once: all cut in time, a normal client unaffected."""
        stop, lat, errs = threading.Event(), [], []
        normal = threading.Thread(target=self.normal_client, args=(stop, lat, errs), daemon=True)
        normal.start()
        slow = [SlowSender(self.port).start() for _ in range(50)]
        for s in slow:
            s.join(HEADER_TIMEOUT + SLACK + 6)
        stop.set()
        normal.join(10)
        for i, s in enumerate(slow):
            self.check_slow(s, "slow client %d" % i)
        self.assertEqual(errs, [])
        self.assertGreater(len(lat), 10)
        self.assertLess(max(lat), 1.0, "the normal client waited %.2fs" % max(lat))

    def test_silent_connection(self):
        """A connection that sends nothing at all is closed by the header timeout too."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t0 = time.monotonic()
        try:
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except ConnectionResetError:
            pass
        finally:
            s.close()
        took = time.monotonic() - t0
        self.assertLessEqual(took, HEADER_TIMEOUT + SLACK, "closed after %.2fs" % took)
        self.assertGreaterEqual(took, HEADER_TIMEOUT - 0.6, "closed after %.2fs" % took)
        if data:
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:80])


if __name__ == "__main__":
    h.main()
