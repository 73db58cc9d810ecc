#!/usr/bin/python3
"""Proxying HTTP/1.1: methods, bodies, framing, forwarded headers, keep-alive,
pipelining, IPv6, routing and weighted round robin."""

import collections
import hashlib
import json
import os
import time
import unittest

import harness as h
from backend import pattern_sha256


class ProxyTest(unittest.TestCase):
    """One portcullis (2 workers) in front of several backends."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.backends = {}
        for name in ("web1", "api1", "static1", "w1", "w3"):
            b = h.Backend(name)
            cls.addClassCleanup(b.stop)
            cls.backends[name] = b
        cls.port = h.free_port(ipv6=True)
        B = cls.backends
        listeners = [{
            "name": "web",
            "bind": ["127.0.0.1:%d" % cls.port, "[::1]:%d" % cls.port],
            # clients on ::1 play the trusted proxy in front of us
            "trusted_proxies": ["::1/128"],
            "routes": [
                {"host": ["a.test", "*.b.test"], "path_prefix": "/api", "backend": "api"},
                {"path_prefix": "/static", "backend": "static"},
                {"path_prefix": "/wrr", "backend": "wrr"},
                {"path_prefix": "/", "backend": "web"},
            ],
        }]
        backends = {
            "web": h.backend_block(B["web1"].address),
            "api": h.backend_block(B["api1"].address),
            "static": h.backend_block(B["static1"].address),
            "wrr": h.backend_block((B["w1"].address, 1), (B["w3"].address, 3)),
        }
        cls.pc = h.Portcullis(h.base_config(cls.tmp, listeners, backends, workers=2))
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def get(self, path="/", host="test.local", **kw):
        return h.request(self.port, "GET", path, host=host, **kw)

    def test_get(self):
        """GET is forwarded and the backend's answer returned (RFC 9110 §9.3.1)."""
        r = h.curl("http://127.0.0.1:%d/hello?x=1" % self.port)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"web1 /hello?x=1\n")
        self.assertEqual(r.header("X-Backend"), "web1")

    def test_head(self):
        """HEAD gets the GET headers and no body; the connection stays usable
        for the next response (RFC 9110 §9.3.2, RFC 9112 §6.3 rule 1)."""
        with h.Conn(self.port) as c:
            c.send(h.build_request("HEAD", "/big?size=5000"))
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Length"), "5000")
            c.send(h.build_request("GET", "/after-head", close=True))
            r2 = c.read_response()
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.body, b"web1 /after-head\n")

    def test_post_content_length(self):
        """A Content-Length request body reaches the backend intact (RFC 9112 §6.2)."""
        body = os.urandom(1 << 20)
        r = h.request(self.port, "POST", "/echo", body=body)
        self.assertEqual(r.status, 200)
        d = r.json()
        self.assertEqual(d["method"], "POST")
        self.assertEqual(d["body_length"], len(body))
        self.assertEqual(d["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_post_content_length_curl(self):
        """curl --data-binary: the body reaches the backend intact (RFC 9112 §6.2)."""
        path = os.path.join(self.tmp, "post.bin")
        data = os.urandom(300000)
        with open(path, "wb") as f:
            f.write(data)
        r = h.curl("http://127.0.0.1:%d/echo" % self.port, "--data-binary", "@" + path,
                   "-H", "Expect:")
        self.assertEqual(r.status, 200, r.stderr)
        d = json.loads(r.body)
        self.assertEqual((d["body_length"], d["body_sha256"]),
                         (len(data), hashlib.sha256(data).hexdigest()))

    def test_post_chunked(self):
        """A chunked request body (odd chunk sizes, a chunk extension, a trailer)
        reaches the backend intact (RFC 9112 §7.1, §7.1.1, §7.1.2)."""
        body = os.urandom(200000)
        sizes = [1, 7, 100, 65536, 3000, 17]
        pieces, off = [], 0
        for i, n in enumerate(sizes + [len(body)]):
            n = min(n, len(body) - off)
            if n <= 0:
                break
            ext = ";name=value" if i == 2 else ""
            pieces.append(b"%x%s\r\n%s\r\n" % (n, ext.encode(), body[off:off + n]))
            off += n
        self.assertEqual(off, len(body))
        raw = (b"PUT /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" + b"".join(pieces) + b"0\r\nX-Trailer: t\r\n\r\n")
        with h.Conn(self.port) as c:
            c.send(raw)
            r = c.read_response()
        self.assertEqual(r.status, 200, r.body)
        d = r.json()
        self.assertEqual(d["method"], "PUT")
        self.assertEqual(d["body_length"], len(body))
        self.assertEqual(d["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_post_chunked_then_next_request(self):
        """After a chunked request body, the next request on the connection is
        parsed at the right place (RFC 9112 §7.1, §9.3)."""
        with h.Conn(self.port) as c:
            c.send(h.build_request("POST", "/echo", body=b"hello world", chunked=[5, 6]))
            r = c.read_response()
            self.assertEqual(r.json()["body"], "hello world")
            c.send(h.build_request("GET", "/second", close=True))
            self.assertEqual(c.read_response().body, b"web1 /second\n")

    def test_chunked_response(self):
        """A chunked response body arrives complete and in order (RFC 9112 §7.1)."""
        size = 1000003
        r = self.get("/bigchunked?size=%d" % size, keep_body=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body_length, size)
        self.assertEqual(r.body_sha256, pattern_sha256(size))

    def test_content_length_response(self):
        """A Content-Length response body arrives complete (RFC 9112 §6.2)."""
        size = 777777
        r = self.get("/big?size=%d" % size, keep_body=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.framing, "length")
        self.assertEqual(r.header("Content-Length"), str(size))
        self.assertEqual(r.body_sha256, pattern_sha256(size))

    def test_close_delimited_response(self):
        """A backend response delimited by close reaches the client complete
        (RFC 9112 §6.3 rule 8)."""
        r = self.get("/close")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"web1 close-delimited body\n")

    def xheaders(self, r, name):
        return [v for k, v in r.json()["headers"] if k.lower() == name.lower()]

    def test_forwarded_headers(self):
        """The backend sees X-Forwarded-For: client address, X-Forwarded-Proto: http,
        and the Host header unchanged (RFC 9110 §7.2)."""
        r = h.request(self.port, "GET", "/echo", host="Example.TEST:8080")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.xheaders(r, "Host"), ["Example.TEST:8080"])
        self.assertEqual(self.xheaders(r, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(self.xheaders(r, "X-Forwarded-Proto"), ["http"])

    def test_forwarded_for_appended(self):
        """From a peer in trusted_proxies, a client-sent X-Forwarded-For
        gets the peer address appended and X-Forwarded-Proto/-Host are
        kept (portcullis.yaml(5), X-Forwarded-For)."""
        r = h.request(self.port, "GET", "/echo", host_addr="::1",
                      headers=[("X-Forwarded-For", "203.0.113.7"),
                               ("X-Forwarded-Proto", "https"),
                               ("X-Forwarded-Host", "public.example")])
        self.assertEqual(r.status, 200)
        xff = ", ".join(self.xheaders(r, "X-Forwarded-For"))
        self.assertRegex(xff, r"^203\.0\.113\.7\s*,\s*::1$")
        self.assertEqual(self.xheaders(r, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(self.xheaders(r, "X-Forwarded-Host"), ["public.example"])

    def test_forwarded_for_untrusted_replaced(self):
        """From any other peer, client-sent X-Forwarded-* are not believed:
        the server sees only what the proxy knows (issue #3)."""
        r = h.request(self.port, "GET", "/echo",
                      headers=[("X-Forwarded-For", "203.0.113.7"),
                               ("X-Forwarded-Proto", "https"),
                               ("X-Forwarded-Host", "evil.example")])
        self.assertEqual(r.status, 200)
        self.assertEqual(self.xheaders(r, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(self.xheaders(r, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(self.xheaders(r, "X-Forwarded-Host"), ["test.local"])

    def test_request_id(self):
        """X-Request-Id: generated (32 hex digits) when absent, kept when
        the client sent a plain one."""
        r = h.request(self.port, "GET", "/echo")
        rid = self.xheaders(r, "X-Request-Id")
        self.assertEqual(len(rid), 1)
        self.assertRegex(rid[0], r"^[0-9a-f]{32}$")
        r2 = h.request(self.port, "GET", "/echo")
        self.assertNotEqual(self.xheaders(r2, "X-Request-Id"), rid)
        r = h.request(self.port, "GET", "/echo", headers=[("X-Request-Id", "abc-123")])
        self.assertEqual(self.xheaders(r, "X-Request-Id"), ["abc-123"])

    def test_hop_by_hop_removed(self):
        """Connection and the headers it names are not forwarded (RFC 9110 §7.6.1)."""
        r = h.request(self.port, "GET", "/echo",
                      headers=[("Connection", "X-Private"), ("X-Private", "secret"),
                               ("X-Kept", "yes")])
        names = [k.lower() for k, v in r.json()["headers"]]
        self.assertNotIn("x-private", names)
        self.assertIn("x-kept", names)

    def test_server_headers_hidden(self):
        """Server and X-Powered-By from the backend do not reach the client."""
        r = self.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Backend"), "web1")
        self.assertEqual(r.header_all("X-Powered-By"), [])
        for v in r.header_all("Server"):
            self.assertNotIn("secret", v)

    def raw_response(self, raw):
        return self.get("/raw?hex=" + raw.hex())

    def test_response_hop_by_hop_removed(self):
        """Response headers named by the backend's Connection header are not
        forwarded to the client (RFC 9110 §7.6.1)."""
        r = self.raw_response(b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\n"
                              b"X-Internal: secret\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertEqual(r.header_all("X-Internal"), [])
        self.assertEqual(r.header("X-Public"), "yes")

    def test_repeated_response_fields_kept(self):
        """Several Set-Cookie fields reach the client, in order (RFC 9110 §5.3)."""
        r = self.raw_response(b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                              b"Set-Cookie: c=3\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1", "b=2", "c=3"])

    def test_empty_reason_phrase(self):
        """A status line with an empty reason phrase is valid (RFC 9112 §4)."""
        r = self.raw_response(b"HTTP/1.1 201 \r\nContent-Length: 2\r\n\r\nok")
        self.assertEqual((r.status, r.body), (201, b"ok"))

    def test_upstream_keepalive_reuse(self):
        """The proxy keeps idle connections to the server (keepalive: 32) and
        reuses them: 30 requests cost the backend only a few connections
        (RFC 9112 §9.3)."""
        b = self.backends["static1"]
        b.requests(clear=True)
        with h.Conn(self.port) as c:    # one client connection: one worker
            for i in range(30):
                c.send(h.build_request("GET", "/static/reuse/%d" % i))
                r = c.read_response()
                self.assertEqual(r.header("X-Backend"), "static1")
        self.assertLessEqual(b.requests()["connections"], 3)

    def test_keepalive(self):
        """Several requests on one client connection (RFC 9112 §9.3)."""
        with h.Conn(self.port) as c:
            for i in range(6):
                c.send(h.build_request("GET", "/ka/%d" % i))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"web1 /ka/%d\n" % i)
                self.assertFalse(r.closes, r.headers)
            c.send(h.build_request("GET", "/ka/last", close=True))
            r = c.read_response()
            self.assertEqual(r.body, b"web1 /ka/last\n")
            self.assertTrue(c.wait_closed(5), "connection not closed after Connection: close")

    def test_pipelining(self):
        """Three requests sent at once are answered in order, even when the
        first is the slowest (RFC 9112 §9.3.2)."""
        with h.Conn(self.port) as c:
            c.send(h.build_request("GET", "/sleep?ms=300") + h.build_request("GET", "/p2")
                   + h.build_request("POST", "/echo", body=b"third") )
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        self.assertEqual(r1.body, b"web1 slept 300\n")
        self.assertEqual(r2.body, b"web1 /p2\n")
        self.assertEqual(r3.json()["body"], "third")

    def test_no_body_statuses_keep_connection(self):
        """204 and 304 responses have no body; the next response on the same
        connection is read correctly (RFC 9112 §6.3 rule 1)."""
        with h.Conn(self.port) as c:
            for code in (204, 304):
                c.send(h.build_request("GET", "/status?code=%d" % code))
                r = c.read_response()
                self.assertEqual((r.status, r.body), (code, b""))
            c.send(h.build_request("GET", "/after-204", close=True))
            self.assertEqual(c.read_response().body, b"web1 /after-204\n")

    def test_http10_client(self):
        """An HTTP/1.0 client never gets a chunked response (RFC 9112 §7.1: only
        for HTTP/1.1 requests), gets the whole body, and the connection closes
        after it (RFC 9112 §9.3)."""
        size = 300007
        with h.Conn(self.port) as c:
            c.send(h.build_request("GET", "/bigchunked?size=%d" % size, version="HTTP/1.0"))
            r = c.read_response(keep_body=False)
            self.assertEqual(r.status, 200)
            self.assertNotIn("chunked", ",".join(r.header_all("Transfer-Encoding")).lower())
            self.assertEqual((r.body_length, r.body_sha256), (size, pattern_sha256(size)))
            self.assertTrue(c.wait_closed(5), "HTTP/1.0 connection left open")

    def test_expect_100_continue(self):
        """A request with Expect: 100-continue gets 100 (Continue) before it
        sends its body, then the final response (RFC 9110 §10.1.1)."""
        with h.Conn(self.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 11\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            r = c._read_one("POST", True)   # the interim response itself
            self.assertEqual(r.status, 100)
            c.send(b"hello world")
            r = c.read_response("POST")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["body"], "hello world")

    def test_absolute_form_target(self):
        """An absolute-form request target is accepted, routed by its authority,
        and forwarded in origin-form (RFC 9112 §3.2.2, §3.2.1)."""
        with h.Conn(self.port) as c:
            c.send(b"GET http://a.test/api/abs?q=1 HTTP/1.1\r\nHost: a.test\r\n"
                   b"Connection: close\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"api1 /api/abs?q=1\n")

    def test_ipv6_listener(self):
        """The [::1] address of the listener serves, and the backend sees ::1 as
        the client (RFC 9110 §7.2: Host passed through)."""
        r = h.request(self.port, "GET", "/echo", host="[::1]:%d" % self.port, host_addr="::1")
        self.assertEqual(r.status, 200)
        hdrs = r.json()["headers"]
        self.assertEqual([v for k, v in hdrs if k.lower() == "x-forwarded-for"], ["::1"])
        self.assertEqual([v for k, v in hdrs if k.lower() == "host"], ["[::1]:%d" % self.port])
        r = h.curl("http://[::1]:%d/v6" % self.port)
        self.assertEqual((r.status, r.body), (200, b"web1 /v6\n"), r.stderr)

    def test_route_by_host(self):
        """Host routing: exact and *.suffix, case-insensitive, port ignored
        (RFC 9110 §4.2.3: host is case-insensitive)."""
        cases = [
            ("a.test", "/api/x", "api1"),
            ("A.TEST:8080", "/api/x", "api1"),
            ("foo.b.test", "/api", "api1"),
            ("x.y.B.Test", "/api/deep", "api1"),
            ("c.test", "/api/x", "web1"),       # host does not match
            ("a.test", "/other", "web1"),       # path does not match
            ("a.test.evil", "/api/x", "web1"),  # not a suffix match
        ]
        for host, path, want in cases:
            with self.subTest(host=host, path=path):
                r = self.get(path, host=host)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("X-Backend"), want)

    def test_route_by_path_prefix(self):
        """First route whose path_prefix is a prefix of the path wins."""
        for path, want in [("/static/app.css", "static1"), ("/static", "static1"),
                           ("/stat", "web1"), ("/", "web1"), ("/x/static", "web1")]:
            with self.subTest(path=path):
                self.assertEqual(self.get(path, host="a.test").header("X-Backend"), want)

    def test_weighted_two_workers(self):
        """Weights 1:3 with two workers: each server gets traffic, roughly 1:3."""
        counts = collections.Counter()
        n = 200
        for i in range(n):
            r = self.get("/wrr/%d" % i)
            self.assertEqual(r.status, 200)
            counts[r.header("X-Backend")] += 1
        self.assertEqual(set(counts), {"w1", "w3"}, counts)
        # Each worker alternates exactly, so w1 is within a few of n/4.
        self.assertGreaterEqual(counts["w1"], n // 4 - 15, counts)
        self.assertLessEqual(counts["w1"], n // 4 + 15, counts)


class WeightedOneWorkerTest(unittest.TestCase):
    """workers: 1: smooth weighted round robin is exact."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.w1 = h.Backend("w1")
        cls.addClassCleanup(cls.w1.stop)
        cls.w3 = h.Backend("w3")
        cls.addClassCleanup(cls.w3.stop)
        cls.port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port,
                      "routes": [{"path_prefix": "/", "backend": "wrr"}]}]
        backends = {"wrr": h.backend_block((cls.w1.address, 1), (cls.w3.address, 3))}
        cls.pc = h.Portcullis(h.base_config(cls.tmp, listeners, backends, workers=1))
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)

    def test_exact_ratio(self):
        """400 requests: exactly 100 to the weight-1 server, 300 to the weight-3
        one, and every 4 consecutive requests contain exactly one w1."""
        seq = []
        with h.Conn(self.port) as c:   # keep-alive: fast, and it is one worker anyway
            for i in range(200):
                c.send(h.build_request("GET", "/k/%d" % i))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                seq.append(r.header("X-Backend"))
        for i in range(200):           # and fresh connections
            seq.append(h.request(self.port, "GET", "/f/%d" % i).header("X-Backend"))
        counts = collections.Counter(seq)
        self.assertEqual(counts, {"w1": 100, "w3": 300})
        for i in range(len(seq) - 3):
            self.assertEqual(seq[i:i + 4].count("w1"), 1, "not smooth at %d: %r" % (i, seq[i:i + 8]))


if __name__ == "__main__":
    h.main()
