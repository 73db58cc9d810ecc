#!/usr/bin/python3
"""HTTP/1.0 clients (issue #14, item 8): portcullis always speaks HTTP/1.1
to the servers (RFC 9110 §2.5: an intermediary sends its own version), so
an HTTP/1.0 keep-alive client costs no server connection per request, and a
chunked response is decoded for it and delimited by the close (RFC 9112
§6.1, §6.3, §7.1).  `ab -k` (ApacheBench, HTTP/1.0 keep-alive) is the
client the issue measured."""

import shutil
import subprocess
import unittest

import backend as be
import harness as h


class Http10Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cfg, tmp, cls.port = h.one_route_config(h.backend_block(cls.web.address))
        cls.pc = h.Portcullis(cfg, tmp=tmp)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def connections(self):
        """Connections the server has accepted, this query's own included."""
        return self.web.requests()["connections"]

    def test_ab_keepalive_reuses_server_connections(self):
        """ab -k -n 20000 -c 16 through one worker: every request answered,
        and 16 server connections opened, not 20,000."""
        self.assertIsNotNone(shutil.which("ab"), "ab missing: tools/deps installs apache2-utils")
        before = self.connections()
        out = subprocess.run(["ab", "-k", "-n", "20000", "-c", "16", "-q",
                              "http://127.0.0.1:%d/ab" % self.port],
                             capture_output=True, text=True, timeout=300).stdout
        self.assertRegex(out, r"Complete requests:\s+20000\b", out)
        self.assertRegex(out, r"Failed requests:\s+0\b", out)
        self.assertRegex(out, r"Keep-Alive requests:\s+20000\b", out)
        opened = self.connections() - before - 1   # the second query's own
        print("\nab -k -n 20000 -c 16: %d server connections" % opened)
        self.assertLessEqual(opened, 16, out)

    def test_chunked_response_decoded(self):
        """A chunked 3 MiB response to an HTTP/1.0 request (the server now
        gets HTTP/1.1 and chunks it): the client gets the same bytes with no
        Transfer-Encoding and no Content-Length, and the connection closes
        after them; a keep-alive 1.0 client gets the same."""
        size = 3 << 20
        for extra in (b"", b"Connection: keep-alive\r\n"):
            with h.Conn(self.port) as c:
                c.send(b"GET /bigchunked?size=%d HTTP/1.0\r\nHost: t\r\n%s\r\n" % (size, extra))
                r = c.read_response(keep_body=False)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header_all("Transfer-Encoding"), [])
                self.assertEqual(r.header_all("Content-Length"), [])
                self.assertEqual(r.header("Connection"), "close")
                self.assertEqual((r.body_length, r.body_sha256),
                                 (size, be.pattern_sha256(size)))
                self.assertTrue(c.wait_closed(5))

    def test_server_sees_http11(self):
        """The request line the server gets says HTTP/1.1, and a 1.0
        request without Host gets an empty one (RFC 9112 §3.2)."""
        with h.Conn(self.port) as c:
            c.send(b"GET /echo HTTP/1.0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        got = r.json()
        self.assertEqual(got["version"], "HTTP/1.1")
        self.assertEqual([v for k, v in got["headers"] if k.lower() == "host"], [""])


if __name__ == "__main__":
    unittest.main(verbosity=2)
