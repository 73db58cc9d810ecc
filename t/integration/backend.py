#!/usr/bin/python3
"""A small HTTP/1.1 server to stand behind portcullis in tests and demos.

Run it as:

    backend.py --port 8081 --name web1            # IPv4 loopback
    backend.py --bind ::1 --port 0 --name v6      # port 0: pick one, print it

It prints one line "READY HOST PORT" on stdout once it accepts connections.

Endpoints (any method unless noted):

    /                    200, body "NAME PATH\\n", headers X-Backend: NAME,
                         Server: secret-backend/1.0, X-Powered-By: secret
                         (every path not listed below behaves the same way)
    /echo                200, JSON: backend, method, path, version, the request
                         headers as received (a list of [name, value] pairs),
                         body_length, body_sha256, body (when <= 64 KiB) and
                         peer.  ?delay_ms=N waits N ms before reading the body.
    /big?size=N          N bytes of a deterministic pattern, Content-Length,
                         written in 64 KiB pieces
    /bigchunked?size=N   the same bytes, Transfer-Encoding: chunked
                         (close-delimited for an HTTP/1.0 request)
    /sleep?ms=N          sleeps N ms, then 200
    /status?code=N       answers with status N
    /stall?bytes=N&ms=M  200 with Content-Length 2N: N bytes, a pause of M ms,
                         then N more bytes
    /close               200 without Content-Length, delimited by closing
    /raw?hex=HEX         writes exactly the bytes HEX encodes (a hand-made,
                         possibly malformed response), then closes
    /reset               closes the connection without answering
                         (?rst=1: abortive close, the peer gets a TCP RST)
    /__requests          JSON {"connections": N, "requests": [...]}: what
                         this server has received so far (?clear=1 resets)

The pattern served by /big is pattern_chunks(size); tests import this module
to compute the expected bytes or their SHA-256 without holding them.
"""

import argparse
import collections
import hashlib
import http.server
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

PIECE = 64 * 1024
# The pattern repeats with a prime period, so a piece that is lost,
# repeated or reordered on the way always changes the bytes.
_PERIOD = 65521
_BASE = bytes(((i * 131) ^ (i >> 7) ^ (i >> 13)) & 0xFF for i in range(_PERIOD))
_BASE3 = _BASE * 3
_sha_cache = {}
_sha_lock = threading.Lock()


def pattern_slice(offset, length):
    """The `length` bytes of the pattern that start at `offset` (length <= 2*period)."""
    start = offset % _PERIOD
    return _BASE3[start:start + length]


def pattern_chunks(size, piece=PIECE):
    """Yield the pattern of `size` bytes in pieces of at most `piece` bytes."""
    off = 0
    while off < size:
        n = min(piece, size - off)
        yield pattern_slice(off, n)
        off += n


def pattern_sha256(size):
    """Hex SHA-256 of the first `size` bytes of the pattern (cached)."""
    with _sha_lock:
        if size in _sha_cache:
            return _sha_cache[size]
    h = hashlib.sha256()
    for chunk in pattern_chunks(size):
        h.update(chunk)
    digest = h.hexdigest()
    with _sha_lock:
        _sha_cache[size] = digest
    return digest


class BadChunked(Exception):
    pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, addr, name, verbose):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.name = name
        self.verbose = verbose
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = collections.deque(maxlen=10000)
        super().__init__(addr, Handler)

    def server_bind(self):
        # HTTPServer.server_bind() would resolve our name (getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # head and body go out as separate writes: without TCP_NODELAY a
    # reused connection waits ~40 ms for the delayed ACK (Nagle)
    disable_nagle_algorithm = True

    def version_string(self):
        return "secret-backend/1.0"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s [%s] %s\n" % (self.server.name,
                                               self.address_string(), fmt % args))

    # -- request body -------------------------------------------------------
    def body_chunks(self):
        """Yield the request body as it arrives (Content-Length or chunked)."""
        te = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(4096)
                if not line.endswith(b"\n"):
                    raise BadChunked("bad chunk size line %r" % line)
                size_txt = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_txt, 16)
                except ValueError:
                    raise BadChunked("bad chunk size %r" % size_txt)
                if size == 0:
                    while True:  # trailer section
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            return
                while size > 0:
                    data = self.rfile.read(min(size, PIECE))
                    if not data:
                        raise BadChunked("body ended inside a chunk")
                    size -= len(data)
                    yield data
                if self.rfile.readline(8) not in (b"\r\n", b"\n"):
                    raise BadChunked("chunk not followed by CRLF")
            return
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            data = self.rfile.read(min(length, PIECE))
            if not data:
                return
            length -= len(data)
            yield data

    def drain_body(self):
        n = 0
        h = hashlib.sha256()
        small = bytearray()
        for data in self.body_chunks():
            n += len(data)
            h.update(data)
            if len(small) <= 65536:
                small += data
        return n, h.hexdigest(), bytes(small) if n <= 65536 else None

    # -- responses ----------------------------------------------------------
    def common_headers(self):
        self.send_header("X-Backend", self.server.name)
        self.send_header("X-Powered-By", "secret")

    def simple(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.common_headers()
        for k, v in extra:
            self.send_header(k, v)
        if code in (204, 304) or 100 <= code < 200:
            self.end_headers()
            return
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, BrokenPipeError, socket.timeout, OSError):
            self.close_connection = True

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        route = url.path
        if route != "/__requests":
            with self.server.lock:
                self.server.requests.append({
                    "method": self.command, "path": self.path,
                    "headers": [[k, v] for k, v in self.headers.items()],
                    "time": time.time()})
        try:
            if route == "/echo":
                return self.do_echo(q)
            if route == "/reset":
                return self.do_reset(q)
            self.drain_body()
        except BadChunked as e:
            self.close_connection = True
            return self.simple(400, ("bad chunked body: %s\n" % e).encode())
        if route == "/big":
            return self.do_big(int(q.get("size", "0")), chunked=False)
        if route == "/bigchunked":
            return self.do_big(int(q.get("size", "0")), chunked=True)
        if route == "/sleep":
            ms = min(int(q.get("ms", "0")), 120000)
            time.sleep(ms / 1000.0)
            return self.simple(200, ("%s slept %d\n" % (self.server.name, ms)).encode())
        if route == "/stall":
            return self.do_stall(int(q.get("bytes", "100")), min(int(q.get("ms", "0")), 120000))
        if route == "/raw":
            self.close_connection = True
            self.wfile.write(bytes.fromhex(q.get("hex", "")))
            return
        if route == "/status":
            code = int(q.get("code", "200"))
            return self.simple(code, ("%s status %d\n" % (self.server.name, code)).encode())
        if route == "/close":
            return self.do_close()
        if route == "/__requests":
            return self.do_requests(q)
        return self.simple(200, ("%s %s\n" % (self.server.name, self.path)).encode())

    def do_echo(self, q):
        delay = min(int(q.get("delay_ms", "0")), 120000)
        if delay:
            time.sleep(delay / 1000.0)
        n, digest, small = self.drain_body()
        doc = {
            "backend": self.server.name,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": n,
            "body_sha256": digest,
            "body": small.decode("latin-1") if small is not None else None,
            "peer": list(self.client_address[:2]),
        }
        self.simple(200, (json.dumps(doc, indent=1) + "\n").encode(), "application/json")

    def do_big(self, size, chunked):
        if chunked and self.request_version == "HTTP/1.0":
            # RFC 9112 §7.1: no chunked response to an HTTP/1.0 request;
            # the body is delimited by closing the connection instead.
            chunked = None
            self.close_connection = True
        self.send_response(200)
        self.common_headers()
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif chunked is None:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        for piece in pattern_chunks(size):
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def do_stall(self, n, ms):
        self.send_response(200)
        self.common_headers()
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(2 * n))
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(pattern_slice(0, n))
        time.sleep(ms / 1000.0)
        self.wfile.write(pattern_slice(n, n))

    def do_close(self):
        self.send_response(200)
        self.common_headers()
        self.send_header("Content-Type", "text/plain")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(("%s close-delimited body\n" % self.server.name).encode())
        self.close_connection = True

    def do_reset(self, q):
        self.close_connection = True
        if q.get("rst") == "1":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_requests(self, q):
        with self.server.lock:
            doc = {"connections": self.server.connections,
                   "requests": list(self.server.requests)}
            if q.get("clear") == "1":
                self.server.requests.clear()
                self.server.connections = 0
        self.simple(200, json.dumps(doc).encode(), "application/json")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = dispatch


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True,
                    help="TCP port to listen on (0: let the kernel pick one)")
    ap.add_argument("--name", default="backend",
                    help="name shown in bodies and in the X-Backend header")
    ap.add_argument("--bind", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; ::1 for IPv6)")
    ap.add_argument("--verbose", action="store_true",
                    help="log each request on stderr")
    args = ap.parse_args(argv)
    srv = Server((args.bind, args.port), args.name, args.verbose)
    host, port = srv.server_address[:2]
    print("READY %s %d" % (host, port), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
