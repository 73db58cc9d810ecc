#!/usr/bin/python3
"""100 MiB bodies both ways, with checksums, while worker memory stays bounded:
bodies are streamed with backpressure, never buffered whole (portcullis.yaml(5),
WHAT CLIENTS AND SERVERS SEE)."""

import hashlib
import json
import os
import time
import unittest

import harness as h
from backend import pattern_sha256
from opslib import fd_count

MIB = 1 << 20
SIZE = 100 * MIB
# Peak RSS bound for one worker.  A release build must stay under 64 MiB
# whatever the body size.  AddressSanitizer adds shadow memory, allocator
# metadata and its quarantine (freed blocks held back, 256 MiB by default) to
# the RSS of every process, so an ASan build gets 160 MiB.  160 MiB alone
# would not catch a worker that holds one whole 100 MiB body, so the growth of
# the peak during the transfers is bounded too (64 MiB), with the quarantine
# capped at 16 MiB for this test so that it cannot pass for growth.
RSS_LIMIT_KIB = (160 if h.asan_enabled() else 64) * 1024
RSS_GROWTH_KIB = 64 * 1024


class BigBodyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.backend = h.Backend("big1")
        cls.addClassCleanup(cls.backend.stop)
        cls.port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port,
                      "routes": [{"path_prefix": "/", "backend": "web"}]}]
        backends = {"web": h.backend_block(cls.backend.address, response_timeout="30s")}
        cfg = h.base_config(cls.tmp, listeners, backends, workers=2)
        cfg["defaults"]["client_body_timeout"] = "30s"
        asan = h.clean_env()["ASAN_OPTIONS"] + ":quarantine_size_mb=16"
        cls.pc = h.Portcullis(cfg, env={"ASAN_OPTIONS": asan})
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)
        cls.workers = cls.pc.workers()
        cls.hwm0 = {pid: h.vm_hwm_kib(pid) for pid in cls.workers}

        # 100 MiB of incompressible data, each MiB different.
        cls.upload = os.path.join(cls.tmp, "upload.bin")
        block = bytearray(os.urandom(MIB))
        sha = hashlib.sha256()
        with open(cls.upload, "wb") as f:
            for i in range(SIZE // MIB):
                block[:8] = i.to_bytes(8, "big")
                f.write(block)
                sha.update(block)
        cls.upload_sha = sha.hexdigest()

    def assert_memory_bounded(self):
        self.assertEqual(self.pc.workers(), self.workers, "a worker died:\n" + self.pc.describe())
        for pid in self.workers:
            hwm = h.vm_hwm_kib(pid)
            self.assertLess(hwm, RSS_LIMIT_KIB,
                            "worker %d peak RSS %d KiB >= %d KiB (asan=%s)"
                            % (pid, hwm, RSS_LIMIT_KIB, h.asan_enabled()))
            self.assertLess(hwm - self.hwm0[pid], RSS_GROWTH_KIB,
                            "worker %d peak RSS grew from %d to %d KiB"
                            % (pid, self.hwm0[pid], hwm))

    def test_upload_content_length(self):
        """100 MiB POST with Content-Length (curl), backend slow to start reading:
        arrives intact (RFC 9112 §6.2) and is not buffered by the worker."""
        r = h.curl("http://127.0.0.1:%d/echo?delay_ms=2000" % self.port,
                   "--data-binary", "@" + self.upload, "-H", "Expect:", timeout=120)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.status, 200, r.body[:300])
        d = json.loads(r.body)
        self.assertEqual(d["body_length"], SIZE)
        self.assertEqual(d["body_sha256"], self.upload_sha)
        self.assert_memory_bounded()

    def test_upload_chunked_streaming(self):
        """100 MiB chunked upload from a raw socket, streamed in 64 KiB chunks to
        a backend that waits 2 s before reading (RFC 9112 §7.1)."""
        with h.Conn(self.port, timeout=60) as c, open(self.upload, "rb") as f:
            c.send(b"POST /echo?delay_ms=2000 HTTP/1.1\r\nHost: big.test\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            while True:
                data = f.read(64 * 1024)
                if not data:
                    break
                c.send(b"%x\r\n%s\r\n" % (len(data), data))
            c.send(b"0\r\n\r\n")
            r = c.read_response(deadline=time.monotonic() + 60)
        self.assertEqual(r.status, 200, r.body[:300])
        d = r.json()
        self.assertEqual(d["body_length"], SIZE)
        self.assertEqual(d["body_sha256"], self.upload_sha)
        self.assert_memory_bounded()

    def test_download_content_length(self):
        """100 MiB download with Content-Length via curl: every byte arrives
        (RFC 9112 §6.2)."""
        out = os.path.join(self.tmp, "download.bin")
        r = h.curl("http://127.0.0.1:%d/big?size=%d" % (self.port, SIZE), timeout=120,
                   body_file=out)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.status, 200)
        self.assertEqual(os.path.getsize(out), SIZE)
        self.assertEqual(h.file_sha256(out), pattern_sha256(SIZE))
        os.unlink(out)
        self.assert_memory_bounded()

    def test_download_chunked_slow_reader(self):
        """100 MiB chunked download to a client that waits 2 s before reading:
        the worker holds the backend back instead of buffering (RFC 9112 §7.1)."""
        with h.Conn(self.port, timeout=60) as c:
            c.send(h.build_request("GET", "/bigchunked?size=%d" % SIZE))
            time.sleep(2.0)
            r = c.read_response(keep_body=False, deadline=time.monotonic() + 90)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body_length, SIZE)
        self.assertEqual(r.body_sha256, pattern_sha256(SIZE))
        self.assert_memory_bounded()

    def test_download_sizes_keepalive(self):
        """Content-Length bodies on either side of the first-read (8 KiB) and
        splice (16 KiB left) thresholds, one after another and pipelined on
        one keep-alive connection, then HEAD for a large one: every body is
        byte-exact and framed by its Content-Length (RFC 9112 §6.3), HEAD
        gets none (RFC 9110 §9.3.2), and the connection stays open."""
        sizes = [0, 1, 8000, 8191, 8192, 8193, 16383, 16384, 16385, 24576,
                 65535, 65536, 65537, 200000, 3 * MIB + 7]
        with h.Conn(self.port, timeout=30) as c:
            for rnd in range(2):
                for size in sizes:
                    c.send(h.build_request("GET", "/big?size=%d" % size))
                    r = c.read_response(keep_body=False)
                    self.assertEqual(r.status, 200)
                    self.assertEqual((r.framing, r.body_length), ("length", size))
                    self.assertEqual(r.body_sha256, pattern_sha256(size), size)
            c.send(b"".join(h.build_request("GET", "/big?size=%d" % size)
                            for size in sizes))
            for size in sizes:
                r = c.read_response(keep_body=False)
                self.assertEqual((r.status, r.body_length), (200, size))
                self.assertEqual(r.body_sha256, pattern_sha256(size), size)
            c.send(h.build_request("HEAD", "/big?size=%d" % (5 * MIB)))
            r = c.read_response(method="HEAD")
            self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, str(5 * MIB), b""))
            c.send(h.build_request("GET", "/big?size=70000"))
            r = c.read_response(keep_body=False)
            self.assertEqual(r.body_sha256, pattern_sha256(70000))
            self.assertFalse(c.peer_closed())
        self.assert_memory_bounded()

    def test_close_slow_reader(self):
        """A client that sends "Connection: close" is served without entering
        the epoll set unless it has to be waited for: here it reads nothing for
        a second, so the worker must wait for it to become writable (48 MiB
        is more than the socket buffers hold).  Content-Length (spliced) and
        chunked (buffered) bodies both arrive whole, then the connection
        closes (RFC 9112 §9.6)."""
        size = 48 * MIB
        for path in ("/big", "/bigchunked"):
            with h.Conn(self.port, timeout=30) as c:
                c.send(h.build_request("GET", "%s?size=%d" % (path, size), close=True))
                time.sleep(1.0)
                r = c.read_response(keep_body=False)
                self.assertEqual((r.status, r.body_length), (200, size), path)
                self.assertEqual(r.body_sha256, pattern_sha256(size), path)
                self.assertTrue(c.wait_closed(5.0), path)

    def test_close_slow_body(self):
        """A "Connection: close" POST whose body comes in two parts 300 ms apart:
        the worker waits for the rest of the body, forwards it whole, answers
        and closes."""
        body = b"x" * 5000
        with h.Conn(self.port, timeout=30) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: big.test\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body) + body[:1000])
            time.sleep(0.3)
            c.send(body[1000:])
            r = c.read_response()
            self.assertEqual(r.status, 200, r.body[:300])
            self.assertEqual(r.json()["body_length"], len(body))
            self.assertEqual(r.json()["body_sha256"], hashlib.sha256(body).hexdigest())
            self.assertTrue(c.wait_closed(5.0))

    def test_splice_pipes_bounded(self):
        """300 connections, 64 KiB each: the pipes used for splicing are reused,
        so a worker's descriptors stay bounded (64 cached pipes at most)."""
        before = {pid: fd_count(pid) for pid in self.workers}
        for _ in range(300):
            with h.Conn(self.port, timeout=30) as c:
                c.send(h.build_request("GET", "/big?size=65536"))
                r = c.read_response(keep_body=False)
                self.assertEqual(r.body_sha256, pattern_sha256(65536))
        time.sleep(0.3)
        for pid in self.workers:
            self.assertLessEqual(fd_count(pid), before[pid] + 2 * 64 + 8,
                                 "worker %d descriptors" % pid)


if __name__ == "__main__":
    h.main()
