"""recorder.py: a recording HTTP/1.1 backend and a strict raw client.

Recorder is a threaded raw TCP server (not http.server: it must see the
exact bytes).  It keeps, for every connection the proxy opens to it, the
full byte stream received, and parses that stream just enough to answer:
request line, header fields, Content-Length or chunked bodies (with
extensions and trailers kept verbatim).  Every request is recorded with
the exact slices of the stream it came from (head, raw body), so a test can
assert precisely what the proxy forwarded, and that nothing else was sent.

Answers are configured per path (the request-target's path, without the
query): a well-formed default response, or canned raw bytes, which may be
deliberately malformed (the response-side conformance vectors), sent in
pieces, followed by a close, or by an echo tunnel (101 / WebSocket).

Client is a small raw-socket HTTP/1.1 client that reads responses strictly
(CRLF line ends, one framing) and keeps the 1xx interim responses, so the
tests can check what the client's side of the proxy looks like.

Standard library only; usable on its own:
    python3 recorder.py [--port N]     # prints "READY <port>", logs requests
"""

import re
import socket
import threading
import time

TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class ParseError(Exception):
    pass


# ---------------------------------------------------------------------------
# what the recorder received
# ---------------------------------------------------------------------------

class Request:
    """One request as received on a backend connection."""

    def __init__(self, conn, index, start):
        self.conn = conn            # RecConn
        self.index = index          # 0-based position on its connection
        self.start = start          # offset of its first byte in conn.raw
        self.head_end = None        # offset just past the blank line
        self.end = None             # offset just past the body
        self.line = b""             # request line without CRLF
        self.method = b""
        self.target = b""
        self.version = b""
        self.headers = []           # [(name bytes, value bytes)] value OWS-trimmed
        self.body = b""             # decoded body (chunk data joined)
        self.trailers = []          # [(name, value)]
        self.chunk_exts = []        # raw chunk-ext strings seen (b";a=b")
        self.framing = "none"       # none | length | chunked
        self.complete = False
        self.error = None
        self.seq = None             # global order in which it completed

    @property
    def head(self):
        return bytes(self.conn.raw[self.start:self.head_end]) if self.head_end else b""

    @property
    def body_raw(self):
        """The body exactly as it was on the wire (chunk framing included)."""
        if self.head_end is None:
            return b""
        end = self.end if self.end is not None else len(self.conn.raw)
        return bytes(self.conn.raw[self.head_end:end])

    @property
    def wire(self):
        end = self.end if self.end is not None else len(self.conn.raw)
        return bytes(self.conn.raw[self.start:end])

    @property
    def path(self):
        return self.target.split(b"?", 1)[0]

    def header(self, name):
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        n = name.lower().encode() if isinstance(name, str) else name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def count(self, name):
        return len(self.header_all(name))

    def __repr__(self):
        return "<Request c%d#%d %r complete=%s>" % (self.conn.id, self.index, self.line,
                                                    self.complete)


class RecConn:
    """One connection from the proxy."""

    def __init__(self, cid, sock, peer):
        self.id = cid
        self.sock = sock
        self.peer = peer
        self.raw = bytearray()
        self.requests = []
        self.errors = []
        self.consumed = 0           # bytes of raw that belong to parsed requests
        self.eof = False            # the proxy closed (or reset) its side
        self.closed_by_us = False
        self.fin_at = None          # len(raw) when we sent our FIN (bytes after it: late)
        self.opened = time.monotonic()

    @property
    def pending(self):
        """Bytes received that are not (yet) part of a complete request."""
        return bytes(self.raw[self.consumed:])

    def __repr__(self):
        return "<RecConn %d %d bytes %d requests eof=%s>" % (
            self.id, len(self.raw), len(self.requests), self.eof)


class Spec:
    """How to answer one path.

    raw       bytes, list of bytes (sent with `gap` seconds between), or
              callable(Request) -> bytes / list: the whole response, verbatim
    status/headers/body   a well-formed response instead of raw
    close     close after answering (default: True for raw, else False)
    interim   bytes sent right after the head, before the body is read
    expect100 answer "Expect: 100-continue" with 100 Continue (default True)
    delay     seconds to wait before answering
    tunnel    after answering, echo every byte received until EOF
    read_body read the request body before answering (default True)
    keep      never close after answering, whatever the request asks
    cork      send the whole answer and the FIN (if close) in one segment
              (TCP_CORK), so the proxy reads data and EOF together
    """

    def __init__(self, raw=None, status=None, headers=None, body=None, close=None,
                 interim=None, expect100=True, delay=0.0, tunnel=False, gap=0.05,
                 read_body=True, cork=False, keep=False):
        self.raw = raw
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close if close is not None else raw is not None
        self.interim = interim
        self.expect100 = expect100
        self.delay = delay
        self.tunnel = tunnel
        self.gap = gap
        self.read_body = read_body
        self.cork = cork
        self.keep = keep


def default_response(req, status=200, headers=None, body=None):
    """A well-formed response naming the connection and request it answers."""
    if body is None:
        body = b"rec %d/%d %s %s\n" % (req.conn.id, req.index, req.method, req.target)
    hdrs = [(b"Content-Type", b"text/plain"),
            (b"Server", b"recorder/1.0"),
            (b"X-Powered-By", b"recorder"),
            (b"X-Rec", b"%d/%d" % (req.conn.id, req.index))]
    if headers:
        hdrs += [(k.encode() if isinstance(k, str) else k,
                  v.encode() if isinstance(v, str) else v) for k, v in headers]
    bodiless = req.method == b"HEAD" or status in (204, 304) or status < 200
    if not any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in hdrs) \
            and status not in (204, 304) and status >= 200:
        hdrs.append((b"Content-Length", b"%d" % len(body)))
    out = b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Status"))
    out += b"".join(k + b": " + v + b"\r\n" for k, v in hdrs)
    out += b"\r\n"
    if not bodiless:
        out += body
    return out


REASONS = {100: b"Continue", 101: b"Switching Protocols", 103: b"Early Hints",
           200: b"OK", 204: b"No Content", 304: b"Not Modified", 400: b"Bad Request",
           401: b"Unauthorized", 404: b"Not Found", 417: b"Expectation Failed",
           500: b"Internal Server Error"}


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------

class Recorder:
    """A recording backend on host:port (port 0 = any)."""

    def __init__(self, host="127.0.0.1", port=0, verbose=False):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(fam, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(512)
        self.host = host
        self.port = self.lsock.getsockname()[1]
        self.verbose = verbose
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.conns = []
        self.specs = {}
        self.default = Spec()
        self.seq = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def address(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    # -- configuration ---------------------------------------------------------
    def on(self, path, **kw):
        """Answer requests for path (bytes or str, no query) as Spec(**kw) says."""
        if isinstance(path, str):
            path = path.encode()
        with self.lock:
            self.specs[path] = Spec(**kw)

    def spec_for(self, req):
        with self.lock:
            return self.specs.get(req.path, self.default)

    # -- observation -----------------------------------------------------------
    def connections(self):
        with self.lock:
            return list(self.conns)

    def requests(self):
        """Every request (complete or not) in the order it was started."""
        with self.lock:
            out = [r for c in self.conns for r in c.requests]
        return sorted(out, key=lambda r: (r.seq if r.seq is not None else 1 << 60,
                                          r.conn.id, r.index))

    def total_bytes(self):
        with self.lock:
            return sum(len(c.raw) for c in self.conns)

    def mark(self):
        """A snapshot to compare with later (see since())."""
        with self.lock:
            return {"sizes": {c.id: len(c.raw) for c in self.conns},
                    "nreq": {c.id: len(c.requests) for c in self.conns},
                    "nconns": len(self.conns)}

    def since(self, mark):
        """(new bytes per connection id, new requests) since mark."""
        with self.lock:
            data = {}
            reqs = []
            for c in self.conns:
                before = mark["sizes"].get(c.id, 0)
                if len(c.raw) > before:
                    data[c.id] = bytes(c.raw[before:])
                reqs += c.requests[mark["nreq"].get(c.id, 0):]
        reqs.sort(key=lambda r: (r.seq if r.seq is not None else 1 << 60, r.conn.id, r.index))
        return data, reqs

    def wait(self, pred, timeout=5.0):
        """Wait until pred() (called with the lock held) is true; its value or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.1))

    def wait_requests(self, mark, n, timeout=5.0):
        """Wait for n complete requests after mark; the new requests."""
        def pred():
            reqs = [r for c in self.conns for r in c.requests[mark["nreq"].get(c.id, 0):]
                    if r.complete]
            return reqs if len(reqs) >= n else None
        self.wait(pred, timeout)
        return self.since(mark)[1]

    def errors(self):
        with self.lock:
            return [(c.id, e) for c in self.conns for e in c.errors]

    # -- life cycle ------------------------------------------------------------
    def stop(self):
        self.stopped = True
        try:
            self.lsock.close()
        except OSError:
            pass
        for c in self.connections():
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.sock.close()
            except OSError:
                pass
        self.thread.join(2)

    def _accept_loop(self):
        while not self.stopped:
            try:
                s, peer = self.lsock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                c = RecConn(len(self.conns), s, peer)
                self.conns.append(c)
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    # -- one connection --------------------------------------------------------
    def _recv(self, c):
        try:
            data = c.sock.recv(65536)
        except OSError:
            data = b""
        with self.cond:
            if data:
                c.raw += data
            else:
                c.eof = True
            self.cond.notify_all()
        return bool(data)

    def _send(self, c, data):
        try:
            c.sock.sendall(data)
            return True
        except OSError:
            return False

    def _close(self, c):
        with self.cond:
            c.closed_by_us = True
            c.fin_at = len(c.raw)
            self.cond.notify_all()
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # wait briefly for the proxy's FIN so that what it sent is recorded
        deadline = time.monotonic() + 2
        c.sock.settimeout(0.2)
        while time.monotonic() < deadline and not c.eof:
            try:
                data = c.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            with self.cond:
                if data:
                    c.raw += data
                else:
                    c.eof = True
                self.cond.notify_all()
        try:
            c.sock.close()
        except OSError:
            pass

    def _serve(self, c):
        try:
            self._serve_loop(c)
        except Exception as e:  # noqa: BLE001 - record, never crash the server
            with self.cond:
                c.errors.append("recorder exception: %r" % e)
                self.cond.notify_all()
            try:
                c.sock.close()
            except OSError:
                pass

    def _serve_loop(self, c):
        cur = 0
        while not self.stopped:
            # ---- head
            while True:
                with self.lock:
                    buf = bytes(c.raw[cur:])
                m = re.search(rb"\r?\n\r?\n", buf)
                if m:
                    break
                if len(buf) > 1 << 20:
                    return self._fail(c, None, "head larger than 1 MiB")
                if not self._recv(c):
                    if buf:
                        with self.cond:
                            c.errors.append("EOF in a request head: %r" % buf[:200])
                    return
            req = Request(c, len(c.requests), cur)
            req.head_end = cur + m.end()
            with self.cond:
                c.requests.append(req)
            try:
                self._parse_head(req, buf[:m.end()], m.group(0))
            except ParseError as e:
                return self._fail(c, req, "bad head: %s" % e)
            spec = self.spec_for(req)
            # ---- interim responses
            if spec.interim is not None:
                self._send(c, spec.interim)
            elif spec.expect100 and req.version == b"HTTP/1.1" and any(
                    v.lower() == b"100-continue" for v in req.header_all("Expect")):
                self._send(c, b"HTTP/1.1 100 Continue\r\n\r\n")
            # ---- body
            pos = req.head_end
            if spec.read_body:
                try:
                    pos = self._read_body(c, req)
                except ParseError as e:
                    return self._fail(c, req, "bad body: %s" % e)
                except EOFError:
                    with self.cond:
                        req.end = len(c.raw)
                        c.errors.append("EOF in the body of %r" % req.line)
                        self.cond.notify_all()
                    return
            with self.cond:
                req.end = pos
                req.complete = True
                req.seq = self.seq
                self.seq += 1
                c.consumed = pos
                self.cond.notify_all()
            cur = pos
            if self.verbose:
                print("recorder: c%d %r" % (c.id, req.line), flush=True)
            # ---- response
            if spec.delay:
                time.sleep(spec.delay)
            close = not spec.keep and (spec.close or self._client_wants_close(req))
            if spec.cork:
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            if spec.raw is not None:
                raw = spec.raw(req) if callable(spec.raw) else spec.raw
                pieces = raw if isinstance(raw, list) else [raw]
                for i, p in enumerate(pieces):
                    if i:
                        time.sleep(spec.gap)
                    if not self._send(c, p):
                        break
            else:
                status = spec.status or 200
                headers = list(spec.headers or [])
                if close and not spec.close:
                    headers.append(("Connection", "close"))
                self._send(c, default_response(req, status, headers, spec.body))
            if spec.cork and not close:
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            if spec.tunnel:
                return self._tunnel(c, cur)
            if close:
                return self._close(c)

    @staticmethod
    def _client_wants_close(req):
        conn = b",".join(req.header_all("Connection")).lower()
        toks = [t.strip() for t in conn.split(b",")]
        if b"close" in toks:
            return True
        return req.version != b"HTTP/1.1" and b"keep-alive" not in toks

    def _tunnel(self, c, cur):
        """Echo every byte received after the upgrade back to the proxy."""
        while True:
            with self.lock:
                data = bytes(c.raw[cur:])
            if data:
                cur += len(data)
                if not self._send(c, data):
                    break
                continue
            if not self._recv(c):
                break
        self._close(c)

    def _fail(self, c, req, why):
        with self.cond:
            c.errors.append(why)
            if req is not None:
                req.error = why
            self.cond.notify_all()
        self._send(c, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
        self._close(c)

    @staticmethod
    def _parse_head(req, head, ending):
        if ending != b"\r\n\r\n" or re.search(rb"(?<!\r)\n", head) or \
                re.search(rb"\r(?!\n)", head):
            raise ParseError("line ends are not CRLF")
        lines = head[:-4].split(b"\r\n")
        req.line = lines[0]
        parts = req.line.split(b" ")
        if len(parts) != 3:
            raise ParseError("request line %r" % req.line)
        req.method, req.target, req.version = parts
        if not TOKEN_RE.match(req.method) or not re.match(rb"^HTTP/\d\.\d$", req.version):
            raise ParseError("request line %r" % req.line)
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            if not sep or not TOKEN_RE.match(name):
                raise ParseError("field line %r" % ln)
            if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value):
                raise ParseError("CTL in field %r" % ln)
            req.headers.append((name, value.strip(b" \t")))
        te = req.header_all("Transfer-Encoding")
        cl = req.header_all("Content-Length")
        if te and cl:
            raise ParseError("both Transfer-Encoding and Content-Length")
        if te:
            codings = [t.strip().lower() for t in b",".join(te).split(b",") if t.strip()]
            if codings != [b"chunked"]:
                raise ParseError("Transfer-Encoding %r" % te)
            req.framing = "chunked"
        elif cl:
            vals = set(v.strip() for v in b",".join(cl).split(b","))
            if len(vals) != 1 or not all(re.match(rb"^\d+$", v) for v in vals):
                raise ParseError("Content-Length %r" % cl)
            req.framing = "length"
            req.cl = int(vals.pop())

    def _need(self, c, upto):
        while True:
            with self.lock:
                if len(c.raw) >= upto:
                    return
            if not self._recv(c):
                raise EOFError

    def _line(self, c, pos, limit=16384):
        while True:
            with self.lock:
                i = c.raw.find(b"\n", pos)
                if i >= 0:
                    return bytes(c.raw[pos:i + 1]), i + 1
                if len(c.raw) - pos > limit:
                    raise ParseError("line too long")
            if not self._recv(c):
                raise EOFError

    def _read_body(self, c, req):
        pos = req.head_end
        if req.framing == "length":
            self._need(c, pos + req.cl)
            with self.lock:
                req.body = bytes(c.raw[pos:pos + req.cl])
            return pos + req.cl
        if req.framing != "chunked":
            return pos
        parts = []
        while True:
            line, pos = self._line(c, pos)
            m = re.match(rb"^([0-9A-Fa-f]{1,16})([ \t]*;[^\r\n]*)?\r\n$", line)
            if not m:
                raise ParseError("chunk-size line %r" % line)
            if m.group(2):
                req.chunk_exts.append(m.group(2))
            size = int(m.group(1), 16)
            if size == 0:
                break
            self._need(c, pos + size + 2)
            with self.lock:
                parts.append(bytes(c.raw[pos:pos + size]))
                crlf = bytes(c.raw[pos + size:pos + size + 2])
            if crlf != b"\r\n":
                raise ParseError("chunk data not followed by CRLF")
            pos += size + 2
        while True:
            line, pos = self._line(c, pos)
            if line == b"\r\n":
                break
            name, sep, value = line[:-2].partition(b":")
            if not line.endswith(b"\r\n") or not sep or not TOKEN_RE.match(name):
                raise ParseError("trailer line %r" % line)
            req.trailers.append((name, value.strip(b" \t")))
        req.body = b"".join(parts)
        return pos


# ---------------------------------------------------------------------------
# a strict raw client
# ---------------------------------------------------------------------------

class Incomplete(Exception):
    """EOF before a complete response; .partial holds what arrived."""

    def __init__(self, msg, partial=None):
        super().__init__(msg)
        self.partial = partial


class Resp:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = b""
        self.headers = []        # [(name bytes, value bytes)]
        self.raw_head = b""
        self.body = b""
        self.framing = None      # none | length | chunked | close
        self.interim = []        # 1xx responses received before this one
        self.problems = []       # wire-format violations noticed while reading

    def header(self, name):
        v = self.header_all(name)
        return v[0] if v else None

    def header_all(self, name):
        n = name.lower().encode() if isinstance(name, str) else name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_token(self, name, token):
        toks = [t.strip().lower() for t in b",".join(self.header_all(name)).split(b",")]
        return token.lower().encode() in toks

    def __repr__(self):
        return "<Resp %s %r %d body bytes, %d interim>" % (
            self.status, self.headers, len(self.body), len(self.interim))


class Client:
    """One raw connection to the proxy."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        try:
            self.sock.connect((host, port))
        except Exception:
            self.sock.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        """Send; False if the proxy already closed (reset / broken pipe)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.reset = True
            return False

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self, r):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                    r.problems.append("line not ended by CRLF: %r" % line[:80])
                return line
            if len(self.buf) > 1 << 20:
                raise ValueError("line longer than 1 MiB")
            if not self._fill():
                raise Incomplete("EOF in a line after %r" % bytes(self.buf[:120]), r)

    def _exact(self, n, r):
        while len(self.buf) < n:
            if not self._fill():
                r.body += bytes(self.buf)
                self.buf.clear()
                raise Incomplete("EOF with %d body bytes missing" % (n - len(r.body)), r)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_response(self, method=b"GET", timeout=None):
        """One final response (1xx interim ones are kept in .interim)."""
        if isinstance(method, str):
            method = method.encode()
        self.sock.settimeout(timeout or self.timeout)
        interim = []
        try:
            while True:
                r = self._read_one(method)
                if 100 <= r.status < 200 and r.status != 101:
                    interim.append(r)
                    continue
                r.interim = interim
                return r
        finally:
            self.sock.settimeout(self.timeout)

    def _read_one(self, method):
        r = Resp()
        if not self.buf and not self._fill():
            raise Incomplete("EOF before any response byte", None)
        line = self._line(r)
        r.raw_head = line
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ([^\r\n]*)\r\n$", line)
        if not m:
            raise ValueError("bad status line %r" % line)
        r.version, r.status, r.reason = m.group(1), int(m.group(2)), m.group(3)
        while True:
            line = self._line(r)
            r.raw_head += line
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.rstrip(b"\r\n").partition(b":")
            if not sep or not TOKEN_RE.match(name):
                r.problems.append("bad field line %r" % line)
            r.headers.append((name, value.strip(b" \t")))
        te = r.header_all("Transfer-Encoding")
        cl = r.header_all("Content-Length")
        if te and cl:
            r.problems.append("both Transfer-Encoding and Content-Length")
        if len(cl) > 1:
            r.problems.append("%d Content-Length fields" % len(cl))
        if method == b"HEAD" or r.status < 200 or r.status in (204, 304):
            r.framing = "none"
        elif te:
            codings = [t.strip().lower() for t in b",".join(te).split(b",")]
            if codings[-1] != b"chunked":
                r.framing = "close"
                self._read_close(r)
                return r
            r.framing = "chunked"
            parts = []
            while True:
                sl = self._line(r)
                mm = re.match(rb"^([0-9A-Fa-f]+)(;[^\r\n]*)?\r\n$", sl)
                if not mm:
                    raise ValueError("bad chunk-size line %r" % sl)
                n = int(mm.group(1), 16)
                if n == 0:
                    while self._line(r) != b"\r\n":
                        pass
                    break
                parts.append(self._exact(n, r))
                r.body = b"".join(parts)
                if self._exact(2, r) != b"\r\n":
                    raise ValueError("chunk data not followed by CRLF")
            r.body = b"".join(parts)
        elif cl:
            r.framing = "length"
            vals = set(v.strip() for v in b",".join(cl).split(b","))
            if len(vals) != 1 or not vals or not all(v.isdigit() for v in vals):
                raise ValueError("bad Content-Length %r" % cl)
            if len(cl) > 1 or b"," in cl[0]:
                r.problems.append("Content-Length is not a single value: %r" % cl)
            r.body = self._exact(int(vals.pop()), r)
        else:
            r.framing = "close"
            self._read_close(r)
        return r

    def _read_close(self, r):
        while self._fill():
            pass
        r.body = bytes(self.buf)
        self.buf.clear()

    def wait_closed(self, timeout=3.0):
        """True if the proxy closes (EOF or reset) within timeout.  Bytes
        that arrive meanwhile are kept in .buf (a test may check them)."""
        deadline = time.monotonic() + timeout
        try:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    if not self._fill():
                        return True
                except socket.timeout:
                    return False
            return True
        finally:
            self.sock.settimeout(self.timeout)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    rec = Recorder(a.host, a.port, verbose=True)
    print("READY %d" % rec.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        rec.stop()


if __name__ == "__main__":
    main()
