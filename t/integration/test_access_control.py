#!/usr/bin/python3
"""Access control and abuse protection (issue #12): allow/deny lists inline,
from files and changed by reload, per listener (closed at accept) and per
route (403), on tcp listeners and IPv6; the real client from
X-Forwarded-For (trusted_proxies) and from PROXY v1/v2 headers; PROXY v1/v2
sent to servers; rate limits shared by 2 workers (accuracy, 429 with
Retry-After, state across reload); connection caps per client and per
listener; path normalisation against every bypass form; methods;
underscores in header names; ambiguous requests; HTTP Basic auth.

Clients get their source address by binding to 127.0.0.N before connecting.
Until the issue #12 branches are merged, the binary refuses these keys ("not
supported"): every class then fails in setUpClass with a message saying so."""

import base64
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import unittest

import harness as h
import opslib as ops
import tlscerts

DENIED = "127.0.0.5"
ALLOWED = "127.0.0.6"
OTHER = "127.0.0.7"
TRUSTED = "127.0.0.9"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def start(pc, feature):
    """pc.start(), with a clear message when the binary does not know the
    keys of issue #12 yet."""
    try:
        pc.start()
    except AssertionError as e:
        if re.search(r"not supported|unknown key|did you mean|stub", str(e)):
            raise AssertionError(
                "NOT YET: this portcullis does not have %s (issue #12 branches not merged "
                "into main yet?):\n%s" % (feature, str(e)[-2500:])) from None
        raise
    return pc


def start_proxy(cls, listeners, backends, feature, workers=2, access_log=True, **top):
    tmp = getattr(cls, "tmp", None) or h.make_tmpdir()
    cfg = h.base_config(tmp, listeners, backends, workers=workers, **top)
    if access_log:
        cfg["log"]["access"] = {"path": os.path.join(tmp, "access.log"), "format": "json"}
    pc = h.Portcullis(cfg, tmp=tmp)
    start(pc, feature)
    cls.addClassCleanup(pc.stop)
    return pc, cfg


class SrcConn(h.Conn):
    """h.Conn whose socket is bound to src (127.0.0.N) before connecting."""

    def __init__(self, port, src=None, host="127.0.0.1", timeout=10.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        try:
            if src:
                self.sock.bind((src, 0))
            self.sock.connect((host, port))
        except Exception:
            self.sock.close()
            raise

    @property
    def sport(self):
        return self.sock.getsockname()[1]


def req(port, path="/", src=None, method="GET", headers=(), body=None, host="127.0.0.1",
        prefix=b"", timeout=10.0, host_hdr="test.local"):
    """One request (Connection: close) from src; the Response."""
    with SrcConn(port, src, host, timeout) as c:
        c.send(prefix + h.build_request(method, path, host_hdr, headers, body, close=True))
        return c.read_response(method)


def silent_close(port, src=None, host="127.0.0.1", send=b"", within=2.0):
    """Connect from src (send `send`), then read: (closed, bytes read, seconds).
    closed: EOF or RST within `within` seconds (a refused connect counts)."""
    t0 = time.monotonic()
    try:
        c = SrcConn(port, src, host, timeout=within)
    except (ConnectionRefusedError, ConnectionResetError):
        return True, b"", time.monotonic() - t0
    data = b""
    try:
        if send:
            try:
                c.send(send)
            except (BrokenPipeError, ConnectionResetError):
                return True, data, time.monotonic() - t0
        deadline = t0 + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, data, time.monotonic() - t0
            c.sock.settimeout(left)
            try:
                d = c.sock.recv(65536)
            except socket.timeout:
                return False, data, time.monotonic() - t0
            except (ConnectionResetError, BrokenPipeError):
                return True, data, time.monotonic() - t0
            if not d:
                return True, data, time.monotonic() - t0
            data += d
    finally:
        c.close()


def xheaders(r, name):
    """The values of header name as the server's /echo saw it."""
    if r.status != 200:
        raise AssertionError("expected the server's 200 /echo answer, got %d %r"
                             % (r.status, r.body[:200]))
    return [v for k, v in r.json()["headers"] if k.lower() == name.lower()]


def backend_paths(backend):
    return [q["path"] for q in backend.requests()["requests"]]


def access_entries(path, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                got = [json.loads(l) for l in f if l.strip()]
        except (OSError, ValueError):
            got = []
        found = [g for g in got if pred(g)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def proxy_v1(src, dst, sport, dport):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def tlv(typ, value):
    return struct.pack("!BH", typ, len(value)) + value


def proxy_v2(src=None, dst=None, sport=0, dport=0, tlvs=b"", local=False):
    """A PROXY v2 header built by hand: PROXY (or LOCAL) over TCP4/TCP6."""
    if local:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    if ":" in src:
        fam = 0x21
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam = 0x11
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def decode_v2(buf):
    """(command, family, src, dst, sport, dport, total length) of a v2 header."""
    if buf[:12] != V2_SIG:
        raise AssertionError("the server's first bytes are not a PROXY v2 header: %r" % buf[:40])
    ver_cmd, fam = buf[12], buf[13]
    (n,) = struct.unpack("!H", buf[14:16])
    body = buf[16:16 + n]
    if fam == 0x11:
        src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
        sport, dport = struct.unpack("!HH", body[8:12])
    elif fam == 0x21:
        src = socket.inet_ntop(socket.AF_INET6, body[0:16])
        dst = socket.inet_ntop(socket.AF_INET6, body[16:32])
        sport, dport = struct.unpack("!HH", body[32:36])
    else:
        src = dst = sport = dport = None
    return ver_cmd, fam, src, dst, sport, dport, 16 + n


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def status_conns(pc):
    rc, out, err = ops.ctl(pc, "status", timeout=30)
    return ops.worker_conns(out)


def retry_after_ok(r):
    v = r.header("Retry-After")
    return v is not None and re.fullmatch(r"\d+", v) is not None and int(v) >= 1


class Recorder:
    """A TCP server that records what each connection sends up to the end of
    an HTTP request head (after any PROXY header), then answers 200 "ok" and
    closes."""

    def __init__(self, bind="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.address = "%s:%d" % (bind, self.port)
        self.lock = threading.Lock()
        self.records = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        conn.settimeout(5)
        try:
            while True:
                i = buf.find(b" HTTP/1.1\r\n")
                if i >= 0 and buf.find(b"\r\n\r\n", i) >= 0:
                    break
                d = conn.recv(65536)
                if not d:
                    break
                buf += d
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.records.append(buf)
            conn.close()

    def find(self, marker, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = [r for r in self.records if marker in r]
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def stop(self):
        self.stopped = True
        self.sock.close()


# ---------------------------------------------------------------------------
# 1, 2. allow / deny, X-Forwarded-For
# ---------------------------------------------------------------------------

class AclTest(unittest.TestCase):
    """One portcullis (2 workers): web (route deny from a file and inline,
    route allow, trusted proxy 127.0.0.9), gate (listener deny from a file),
    allowfile (listener allow from a file), v6 and v6deny on [::1], and a
    tcp listener with a deny."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        t = cls.tmp
        write(os.path.join(t, "route-deny.txt"), "# the bad one\n%s\n\n" % DENIED)
        write(os.path.join(t, "gate-deny.txt"), "%s   # comment after\n10.0.0.0/8\n" % DENIED)
        write(os.path.join(t, "allow.txt"), "# admitted\n%s\n127.0.0.7/32\n" % ALLOWED)
        names = ("web", "gate", "allowfile", "tcp")
        cls.ports = {n: h.free_port() for n in names}
        cls.ports["v6"] = h.free_port(ipv6=True)
        cls.ports["v6deny"] = h.free_port(ipv6=True)
        P = cls.ports
        web = [{"path_prefix": "/", "backend": "web"}]
        listeners = [
            {"name": "web", "bind": "127.0.0.1:%d" % P["web"],
             "trusted_proxies": ["%s/32" % TRUSTED],
             "routes": [
                 {"path_prefix": "/admin", "deny": ["file:" + os.path.join(t, "route-deny.txt")],
                  "backend": "web"},
                 {"path_prefix": "/inline", "deny": ["127.0.0.5/32"], "backend": "web"},
                 {"path_prefix": "/only6", "allow": [ALLOWED], "backend": "web"},
                 {"path_prefix": "/", "backend": "web"}]},
            {"name": "gate", "bind": "127.0.0.1:%d" % P["gate"],
             "allow": ["127.0.0.0/8"], "deny": ["file:" + os.path.join(t, "gate-deny.txt")],
             "routes": web},
            {"name": "allowfile", "bind": "127.0.0.1:%d" % P["allowfile"],
             "allow": ["file:" + os.path.join(t, "allow.txt")], "routes": web},
            {"name": "v6", "bind": ["[::1]:%d" % P["v6"], "127.0.0.1:%d" % P["v6"]],
             "allow": ["::1/128", ALLOWED],
             "routes": [{"path_prefix": "/admin", "deny": ["::1"], "backend": "web"},
                        {"path_prefix": "/", "backend": "web"}]},
            {"name": "v6deny", "bind": "[::1]:%d" % P["v6deny"], "deny": ["::1/128"],
             "routes": web},
            {"name": "tcp", "bind": "127.0.0.1:%d" % P["tcp"], "protocol": "tcp",
             "deny": [DENIED], "backend": "web"},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "allow/deny and trusted X-Forwarded-For")
        cls.access_log = cls.cfg["log"]["access"]["path"]

    def assert_closed_at_accept(self, port, src, host="127.0.0.1"):
        closed, data, secs = silent_close(port, src, host, within=2.0)
        self.assertTrue(closed, "from %s to port %d: not closed within 2 s of connecting"
                        % (src or host, port))
        self.assertEqual(data, b"", "from %s: closed at accept means no HTTP response" % src)

    def assert_not_forwarded(self, marker):
        self.assertFalse([p for p in backend_paths(self.web) if marker in p],
                         "%s reached the server" % marker)

    # -- route deny: 403 ------------------------------------------------------
    def test_route_deny_from_file(self):
        """/admin denied to 127.0.0.5 by a deny file (with # comments):
        403 with a neutral body, never forwarded; 127.0.0.6 gets 200."""
        r = req(self.port_("web"), "/admin/f1", src=DENIED)
        self.assertEqual(r.status, 403, r)
        self.assertNotIn(DENIED.encode(), r.body, "a neutral 403 does not echo the address")
        self.assertNotIn(b"deny", r.body.lower())
        self.assert_not_forwarded("/admin/f1")
        r = req(self.port_("web"), "/admin/f2", src=ALLOWED)
        self.assertEqual((r.status, r.body), (200, b"web1 /admin/f2\n"))
        r = req(self.port_("web"), "/other", src=DENIED)
        self.assertEqual(r.status, 200, "the deny is for /admin only")

    def test_route_deny_and_allow_inline(self):
        """Inline deny 127.0.0.5/32 on /inline: 403 from .5, 200 from .6;
        allow [127.0.0.6] on /only6: 200 from .6, 403 from .5 and from 127.0.0.1."""
        P = self.port_("web")
        self.assertEqual(req(P, "/inline", src=DENIED).status, 403)
        self.assertEqual(req(P, "/inline", src=ALLOWED).status, 200)
        self.assertEqual(req(P, "/only6", src=ALLOWED).status, 200)
        self.assertEqual(req(P, "/only6", src=DENIED).status, 403)
        self.assertEqual(req(P, "/only6", src="127.0.0.1").status, 403)

    def test_route_deny_keeps_connection_usable(self):
        """A 403 on a keep-alive connection is an HTTP answer like another:
        the next request on it is routed normally."""
        with SrcConn(self.port_("web"), DENIED) as c:
            c.send(h.build_request("GET", "/admin/ka"))
            r = c.read_response()
            self.assertEqual(r.status, 403)
            if not r.closes:
                c.send(h.build_request("GET", "/after-403", close=True))
                self.assertEqual(c.read_response().status, 200)

    # -- listener deny/allow: closed at accept --------------------------------
    def test_listener_deny_closes_at_accept(self):
        """gate: deny from a file: 127.0.0.5 is closed at accept (EOF/RST
        without a byte, before it sends anything); 127.0.0.6 gets 200."""
        self.assert_closed_at_accept(self.port_("gate"), DENIED)
        closed, data, _ = silent_close(self.port_("gate"), DENIED,
                                       send=h.build_request("GET", "/gate-denied", close=True))
        self.assertTrue(closed)
        self.assertNotIn(b"HTTP/1.1 200", data)
        self.assert_not_forwarded("/gate-denied")
        self.assertEqual(req(self.port_("gate"), "/gate-ok", src=ALLOWED).status, 200)

    def test_listener_allow_file(self):
        """allowfile: allow from a file listing 127.0.0.6 and 127.0.0.7/32:
        those get 200; 127.0.0.5 and 127.0.0.1 are closed at accept."""
        P = self.port_("allowfile")
        self.assertEqual(req(P, "/", src=ALLOWED).status, 200)
        self.assertEqual(req(P, "/", src=OTHER).status, 200)
        self.assert_closed_at_accept(P, DENIED)
        self.assert_closed_at_accept(P, "127.0.0.1")

    def test_ipv6_allow_deny(self):
        """v6 (allow ::1/128 and 127.0.0.6): ::1 gets 200, 127.0.0.1 is closed
        at accept, ::1 on /admin (route deny ::1) gets 403; v6deny (deny
        ::1/128): ::1 is closed at accept."""
        P = self.port_("v6")
        self.assertEqual(req(P, "/v6", host="::1").status, 200)
        self.assertEqual(req(P, "/v6", src=ALLOWED).status, 200)
        self.assert_closed_at_accept(P, "127.0.0.1")
        self.assertEqual(req(P, "/admin", host="::1").status, 403)
        self.assert_closed_at_accept(self.port_("v6deny"), None, host="::1")

    def test_tcp_listener_deny(self):
        """protocol tcp with deny [127.0.0.5]: .5 is closed at accept (the
        server never sees a connection), .6 is forwarded (HTTP through it)."""
        before = self.web.requests()["connections"]
        self.assert_closed_at_accept(self.port_("tcp"), DENIED)
        closed, data, _ = silent_close(self.port_("tcp"), DENIED,
                                       send=b"GET /tcp-denied HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(closed)
        self.assertEqual(data, b"")
        # the only new server connection is this /__requests call itself
        self.assertEqual(self.web.requests()["connections"], before + 1,
                         "a denied client's tcp connection reached the server")
        self.assert_not_forwarded("/tcp-denied")
        r = req(self.port_("tcp"), "/tcp-ok", src=ALLOWED)
        self.assertEqual((r.status, r.body), (200, b"web1 /tcp-ok\n"))

    # -- X-Forwarded-For -------------------------------------------------------
    def test_xff_from_trusted_peer(self):
        """From 127.0.0.9 (trusted), X-Forwarded-For: 127.0.0.5 makes the
        request 127.0.0.5's: /admin denied (403), access log client 127.0.0.5."""
        r = req(self.port_("web"), "/admin/xff1", src=TRUSTED,
                headers=[("X-Forwarded-For", DENIED), ("User-Agent", "xff1")])
        self.assertEqual(r.status, 403, r)
        got = self.logged("/admin/xff1")
        self.assertTrue(got, "no access log line for the request")
        self.assertEqual((got[0]["client"], got[0]["status"]), (DENIED, 403))
        r = req(self.port_("web"), "/admin/xff2", src=TRUSTED,
                headers=[("X-Forwarded-For", ALLOWED), ("User-Agent", "xff2")])
        self.assertEqual(r.status, 200)
        got = self.logged("/admin/xff2")
        self.assertEqual(got[0]["client"], ALLOWED)

    def test_xff_rightmost_untrusted(self):
        """"1.2.3.4, 127.0.0.5, 127.0.0.9" from 127.0.0.9: the rightmost
        address that is not trusted, 127.0.0.5, is the client (403, logged);
        "127.0.0.5, 127.0.0.6": 127.0.0.6 (200), not the leftmost."""
        r = req(self.port_("web"), "/admin/xff3", src=TRUSTED,
                headers=[("X-Forwarded-For", "1.2.3.4, 127.0.0.5, 127.0.0.9"),
                         ("User-Agent", "xff3")])
        self.assertEqual(r.status, 403)
        got = self.logged("/admin/xff3")
        self.assertEqual(got[0]["client"], DENIED)
        r = req(self.port_("web"), "/admin/xff4", src=TRUSTED,
                headers=[("X-Forwarded-For", "127.0.0.5, 127.0.0.6"), ("User-Agent", "xff4")])
        self.assertEqual(r.status, 200)
        got = self.logged("/admin/xff4")
        self.assertEqual(got[0]["client"], ALLOWED)
        # two header lines are one list
        r = req(self.port_("web"), "/admin/xff5", src=TRUSTED,
                headers=[("X-Forwarded-For", "1.2.3.4, 127.0.0.5"),
                         ("X-Forwarded-For", "127.0.0.9")])
        self.assertEqual(r.status, 403)

    def test_xff_from_untrusted_peer(self):
        """From 127.0.0.6 (not trusted), X-Forwarded-For: 127.0.0.6... is not
        believed: 127.0.0.5 claiming to be .6 is still denied, .6 claiming
        to be .5 is admitted; the log says the peer."""
        r = req(self.port_("web"), "/admin/xff6", src=DENIED,
                headers=[("X-Forwarded-For", ALLOWED), ("User-Agent", "xff6")])
        self.assertEqual(r.status, 403)
        r = req(self.port_("web"), "/admin/xff7", src=ALLOWED,
                headers=[("X-Forwarded-For", DENIED), ("User-Agent", "xff7")])
        self.assertEqual(r.status, 200)
        got = self.logged("/admin/xff7")
        self.assertEqual(got[0]["client"], ALLOWED)

    def test_xff_ipv4_mapped(self):
        """X-Forwarded-For: ::ffff:127.0.0.5 from the trusted peer is
        127.0.0.5 (IPv4-mapped IPv6 treated as IPv4): 403."""
        r = req(self.port_("web"), "/admin/xff8", src=TRUSTED,
                headers=[("X-Forwarded-For", "::ffff:127.0.0.5")])
        self.assertEqual(r.status, 403)

    def port_(self, name):
        return self.ports[name]

    def logged(self, path):
        """The access log lines of the request for path."""
        return access_entries(self.access_log, lambda g: path in (g.get("uri") or ""))

    def test_route_403_logged_as_a_request(self):
        """A route's 403 is logged with the request's fields like any other
        answer: method GET, uri the path, the User-Agent, status 403."""
        r = req(self.port_("web"), "/admin/logged", src=DENIED, headers=[("User-Agent", "ua403")])
        self.assertEqual(r.status, 403)
        got = self.logged("/admin/logged")
        self.assertTrue(got, "no access log line for the 403")
        g = got[0]
        self.assertEqual((g["client"], g["status"]), (DENIED, 403))
        self.assertEqual((g["method"], g["uri"], g["user_agent"]),
                         ("GET", "/admin/logged", "ua403"),
                         "the 403 line lacks the parsed request: %r" % g)


class AclReloadTest(unittest.TestCase):
    """The issue's must-show: 127.0.0.5 denied (403) and 127.0.0.6 allowed by
    a file-based deny list, flipped by changing the file and `portcullis
    reload`; a listener deny file re-read the same way; `-t` naming
    FILE:LINE of a bad list file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.deny = os.path.join(cls.tmp, "deny.txt")
        cls.gate_deny = os.path.join(cls.tmp, "gate-deny.txt")
        write(cls.deny, "# ops list\n%s\n" % DENIED)
        write(cls.gate_deny, "%s\n" % DENIED)
        cls.port, cls.gate = h.free_port(), h.free_port()
        listeners = [
            {"name": "web", "bind": "127.0.0.1:%d" % cls.port,
             "routes": [{"path_prefix": "/admin", "deny": ["file:" + cls.deny], "backend": "web"},
                        {"path_prefix": "/", "backend": "web"}]},
            {"name": "gate", "bind": "127.0.0.1:%d" % cls.gate,
             "deny": ["file:" + cls.gate_deny], "routes": [{"path_prefix": "/", "backend": "web"}]},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "file-based allow/deny lists")

    def test_deny_file_changed_by_reload(self):
        """Before: /admin from 127.0.0.5 -> 403, from 127.0.0.6 -> 200; the
        deny file now lists 127.0.0.6; `portcullis reload` exits 0; after:
        127.0.0.5 -> 200, 127.0.0.6 -> 403.  The gate listener's deny file
        flips the same way (closed at accept)."""
        self.assertEqual(req(self.port, "/admin", src=DENIED).status, 403)
        self.assertEqual(req(self.port, "/admin", src=ALLOWED).status, 200)
        self.assertTrue(silent_close(self.gate, DENIED)[0])
        self.assertEqual(req(self.gate, "/", src=ALLOWED).status, 200)
        write(self.deny, "# ops list, changed\n%s\n" % ALLOWED)
        write(self.gate_deny, "%s\n" % ALLOWED)
        rc, out, err = ops.ctl(self.pc, "reload")
        self.assertEqual(rc, 0, "portcullis reload: %s %s" % (out, err))
        self.assertEqual(req(self.port, "/admin", src=DENIED).status, 200,
                         "127.0.0.5 is no longer in the deny file after reload")
        self.assertEqual(req(self.port, "/admin", src=ALLOWED).status, 403,
                         "127.0.0.6 is in the deny file after reload")
        self.assertEqual(req(self.gate, "/", src=DENIED).status, 200)
        closed, data, _ = silent_close(self.gate, ALLOWED)
        self.assertTrue(closed and data == b"", "gate: 127.0.0.6 not closed at accept after reload")

    def test_check_reports_list_file_line(self):
        """`portcullis -t` on a config whose deny file has a bad third line
        (127.0.0.300) fails (exit 1) and names that FILE:LINE."""
        bad = os.path.join(self.tmp, "bad-deny.txt")
        write(bad, "127.0.0.1\n# comment\n127.0.0.300\n10.0.0.0/8\n")
        cfg = json.loads(json.dumps(self.cfg))
        cfg["listeners"][0]["routes"][0]["deny"] = ["file:" + bad]
        cfg["control_socket"] = os.path.join(self.tmp, "other.sock")
        cfg["pid_file"] = os.path.join(self.tmp, "other.pid")
        path = os.path.join(self.tmp, "bad.yaml")
        write(path, h.to_yaml(cfg))
        p = subprocess.run([h.binary(), "-t", "-c", path], capture_output=True, text=True,
                           timeout=30, env=h.clean_env())
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("%s:3" % bad, p.stderr + p.stdout,
                      "-t does not name the list file and line 3")
        good = os.path.join(self.tmp, "good.yaml")
        cfg["listeners"][0]["routes"][0]["deny"] = ["file:" + self.deny]
        write(good, h.to_yaml(cfg))
        p = subprocess.run([h.binary(), "-t", "-c", good], capture_output=True, text=True,
                           timeout=30, env=h.clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)


# ---------------------------------------------------------------------------
# 3. PROXY protocol in
# ---------------------------------------------------------------------------

class ProxyProtocolInTest(unittest.TestCase):
    """pp (proxy_protocol, client_header_timeout 1s), ppslow (the same
    with 10s), pptls (PROXY then TLS).  Allow/deny by the header's source:
    ProxyProtocolAclTest."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.certs = tlscerts.make(h.make_tmpdir("pc-acl-certs-"))
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.ports = {n: h.free_port() for n in ("pp", "ppslow", "pptls")}
        routes = [{"path_prefix": "/", "backend": "web"}]
        c = cls.certs
        listeners = [
            {"name": "pp", "bind": "127.0.0.1:%d" % cls.ports["pp"], "proxy_protocol": True,
             "client_header_timeout": "1s", "routes": routes},
            {"name": "ppslow", "bind": "127.0.0.1:%d" % cls.ports["ppslow"],
             "proxy_protocol": True, "client_header_timeout": "10s", "routes": routes},
            {"name": "pptls", "bind": "127.0.0.1:%d" % cls.ports["pptls"], "proxy_protocol": True,
             "tls": {"certificates": [{"cert": c.a_ecdsa, "key": c.a_ecdsa_key}]},
             "routes": routes},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "PROXY protocol on listeners")
        cls.access_log = cls.cfg["log"]["access"]["path"]

    def pp(self, header, path="/echo", port=None, ua=None):
        headers = [("User-Agent", ua)] if ua else []
        r = req(port or self.ports["pp"], path, headers=headers, prefix=header)
        self.assertNotEqual(r.status, 400, "the PROXY header %r was not taken (400)" % header)
        return r

    def test_v1(self):
        """PROXY TCP4 127.0.0.5 ...: the backend's X-Forwarded-For is
        127.0.0.5, the access log's client too."""
        P = self.ports["pp"]
        r = self.pp(proxy_v1(DENIED, "127.0.0.1", 40001, P), ua="ppv1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(xheaders(r, "X-Forwarded-For"), [DENIED])
        got = access_entries(self.access_log, lambda g: g.get("user_agent") == "ppv1")
        self.assertTrue(got)
        self.assertEqual(got[0]["client"], DENIED)

    def test_v1_tcp6_and_unknown(self):
        """PROXY TCP6 2001:db8::7 ...: X-Forwarded-For 2001:db8::7; PROXY
        UNKNOWN: the connection's own peer (127.0.0.1)."""
        P = self.ports["pp"]
        r = self.pp(proxy_v1("2001:db8::7", "2001:db8::1", 40004, P))
        self.assertEqual((r.status, xheaders(r, "X-Forwarded-For")), (200, ["2001:db8::7"]))
        r = self.pp(b"PROXY UNKNOWN\r\n")
        self.assertEqual((r.status, xheaders(r, "X-Forwarded-For")), (200, ["127.0.0.1"]))

    def test_v2(self):
        """A v2 header built by hand (TCP4, with ALPN and NOOP TLVs): the
        source is the client (X-Forwarded-For, access log); TCP6 too; LOCAL:
        the connection's own peer."""
        P = self.ports["pp"]
        tl = tlv(0x01, b"http/1.1") + tlv(0x04, b"\x00" * 5)
        r = self.pp(proxy_v2(DENIED, "127.0.0.1", 40010, P, tlvs=tl), ua="ppv2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(xheaders(r, "X-Forwarded-For"), [DENIED])
        got = access_entries(self.access_log, lambda g: g.get("user_agent") == "ppv2")
        self.assertTrue(got)
        self.assertEqual(got[0]["client"], DENIED)
        r = self.pp(proxy_v2("2001:db8::9", "2001:db8::1", 40013, P))
        self.assertEqual((r.status, xheaders(r, "X-Forwarded-For")), (200, ["2001:db8::9"]))
        r = self.pp(proxy_v2(local=True))
        self.assertEqual((r.status, xheaders(r, "X-Forwarded-For")), (200, ["127.0.0.1"]))

    def test_keepalive_after_header(self):
        """One PROXY header, then several requests on the connection: each
        is the header's client."""
        P = self.ports["pp"]
        with SrcConn(P) as c:
            c.send(proxy_v1(ALLOWED, "127.0.0.1", 40020, P))
            for i in range(3):
                c.send(h.build_request("GET", "/echo?ka=%d" % i))
                r = c.read_response()
                self.assertEqual((r.status, xheaders(r, "X-Forwarded-For")), (200, [ALLOWED]))

    def assert_closed(self, send, lo, hi, what, port=None):
        closed, data, secs = silent_close(port or self.ports["pp"], send=send, within=hi + 1)
        self.assertTrue(closed, "%s: not closed within %.1f s" % (what, hi + 1))
        self.assertEqual(data, b"", "%s: closed without any response bytes" % what)
        self.assertGreaterEqual(secs, lo, "%s: closed after %.2f s" % (what, secs))
        self.assertLessEqual(secs, hi, "%s: closed after %.2f s" % (what, secs))

    def test_truncated_header_times_out(self):
        """A truncated v1 header ("PROXY TCP4 127.0.0.5") or v2 header (the
        16-byte head announcing 12 bytes, 4 sent), then silence: closed after
        client_header_timeout (1s), without a byte."""
        self.assert_closed(b"PROXY TCP4 127.0.0.5", 0.7, 2.5, "truncated v1")
        self.assert_closed(proxy_v2(DENIED, "127.0.0.1", 1, 2)[:20], 0.7, 2.5, "truncated v2")

    def test_garbage_closed_at_once(self):
        """Garbage ("HELLO\\r\\n", a v1 line with a bad address, a v2
        signature with version 3) is closed at once, well before the 1s
        timeout, without a byte."""
        self.assert_closed(b"HELLO WORLD\r\n\r\n", 0, 0.6, "garbage")
        self.assert_closed(b"PROXY TCP4 127.0.0.300 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\n\r\n",
                           0, 0.6, "v1 with a bad address")
        bad = bytearray(proxy_v2(DENIED, "127.0.0.1", 1, 2))
        bad[12] = 0x31
        self.assert_closed(bytes(bad), 0, 0.6, "v2 with version 3")
        self.assert_closed(b"PROXY TCP4 127.0.0.5 127.0.0.1 1 2\n", 0, 0.6, "v1 ending in LF only")

    def test_plain_http_without_header(self):
        """A plain HTTP request without a PROXY header is closed, unanswered
        and not forwarded."""
        self.assert_closed(h.build_request("GET", "/noheader", close=True), 0, 1.0,
                           "plain HTTP on a PROXY listener")
        self.assertNotIn("/noheader", backend_paths(self.web))

    def test_slow_header_within_timeout(self):
        """A v1 header sent one byte every 100 ms (about 4 s, inside the 10s
        client_header_timeout of ppslow), then a request: 200, the header's
        client."""
        P = self.ports["ppslow"]
        hdr = proxy_v1(ALLOWED, "127.0.0.1", 1, P)
        with SrcConn(P) as c:
            for b in hdr:
                c.send(bytes([b]))
                time.sleep(0.1)
            c.send(h.build_request("GET", "/echo?slow=1", close=True))
            r = c.read_response()
        self.assertEqual((r.status, xheaders(r, "X-Forwarded-For")), (200, [ALLOWED]))

    def test_tls_behind_proxy_header(self):
        """pptls: the PROXY header written raw, then a TLS handshake (python
        ssl over the same socket) and a request: 200, the header's client
        at the server."""
        P = self.ports["pptls"]
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        for src, path, want in ((ALLOWED, "/echo", 200), (DENIED, "/echo", 200)):
            c = SrcConn(P)
            try:
                c.send(proxy_v1(src, "127.0.0.1", 40030, P))
                c.sock = ctx.wrap_socket(c.sock, server_hostname="a.example.test")
                c.send(h.build_request("GET", path, close=True))
                r = c.read_response()
            finally:
                c.close()
            self.assertEqual(r.status, want, (src, path))
            if want == 200:
                self.assertEqual(xheaders(r, "X-Forwarded-For"), [src])


class ProxyProtocolAclTest(unittest.TestCase):
    """The PROXY header's source is what allow/deny use: pp (route /admin
    denied to 127.0.0.5), ppgate (listener deny 127.0.0.5: closed once the
    header is read)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.ports = {n: h.free_port() for n in ("pp", "ppgate")}
        listeners = [
            {"name": "pp", "bind": "127.0.0.1:%d" % cls.ports["pp"], "proxy_protocol": True,
             "routes": [{"path_prefix": "/admin", "deny": [DENIED], "backend": "web"},
                        {"path_prefix": "/", "backend": "web"}]},
            {"name": "ppgate", "bind": "127.0.0.1:%d" % cls.ports["ppgate"],
             "proxy_protocol": True, "deny": [DENIED],
             "routes": [{"path_prefix": "/", "backend": "web"}]},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "PROXY protocol with allow/deny", access_log=False)

    def pp(self, header, path, port=None):
        return req(port or self.ports["pp"], path, prefix=header)

    def test_route_deny_by_header_source(self):
        """v1 and v2 from 127.0.0.5: /admin 403; from 127.0.0.6: 200;
        TCP6 ::ffff:127.0.0.5 is 127.0.0.5 (IPv4-mapped): 403."""
        P = self.ports["pp"]
        self.assertEqual(self.pp(proxy_v1(DENIED, "127.0.0.1", 40002, P), "/admin").status, 403)
        self.assertEqual(self.pp(proxy_v1(ALLOWED, "127.0.0.1", 40003, P), "/admin").status, 200)
        self.assertEqual(self.pp(proxy_v2(DENIED, "127.0.0.1", 40011, P), "/admin").status, 403)
        self.assertEqual(self.pp(proxy_v2(ALLOWED, "127.0.0.1", 40012, P), "/admin").status, 200)
        r = self.pp(proxy_v1("::ffff:127.0.0.5", "::ffff:127.0.0.1", 40005, P), "/admin")
        self.assertEqual(r.status, 403)

    def test_listener_deny_by_header_source(self):
        """ppgate: a header from 127.0.0.5 (v1 or v2) and a request: closed
        without a byte, not forwarded; from 127.0.0.6: 200."""
        P = self.ports["ppgate"]
        for hdr in (proxy_v1(DENIED, "127.0.0.1", 1, P), proxy_v2(DENIED, "127.0.0.1", 1, P)):
            closed, data, _ = silent_close(P, send=hdr + h.build_request("GET", "/ppgate-denied"))
            self.assertTrue(closed and data == b"", "denied PROXY source answered: %r" % data[:80])
        self.assertNotIn("/ppgate-denied", backend_paths(self.web))
        self.assertEqual(self.pp(proxy_v1(ALLOWED, "127.0.0.1", 1, P), "/", port=P).status, 200)


# ---------------------------------------------------------------------------
# 4. PROXY protocol out
# ---------------------------------------------------------------------------

class ProxyProtocolOutTest(unittest.TestCase):
    """Backends with proxy_protocol v1 and v2 in front of a recording
    server, from http and tcp listeners (h1, h2, t1, t2), and a listener
    taking PROXY in (pin) passing the header's client on."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.rec1, cls.rec2 = Recorder(), Recorder()
        cls.addClassCleanup(cls.rec1.stop)
        cls.addClassCleanup(cls.rec2.stop)
        cls.ports = {"h1": h.free_port(ipv6=True)}
        for n in ("h2", "t1", "t2", "pin"):
            cls.ports[n] = h.free_port()
        P = cls.ports
        listeners = [
            {"name": "h1", "bind": ["127.0.0.1:%d" % P["h1"], "[::1]:%d" % P["h1"]],
             "routes": [{"path_prefix": "/", "backend": "pp1"}]},
            {"name": "h2", "bind": "127.0.0.1:%d" % P["h2"],
             "routes": [{"path_prefix": "/", "backend": "pp2"}]},
            {"name": "t1", "bind": "127.0.0.1:%d" % P["t1"], "protocol": "tcp", "backend": "pp1"},
            {"name": "t2", "bind": "127.0.0.1:%d" % P["t2"], "protocol": "tcp", "backend": "pp2"},
            {"name": "pin", "bind": "127.0.0.1:%d" % P["pin"], "proxy_protocol": True,
             "routes": [{"path_prefix": "/", "backend": "pp2"}]},
        ]
        backends = {"pp1": h.backend_block(cls.rec1.address, proxy_protocol="v1"),
                    "pp2": h.backend_block(cls.rec2.address, proxy_protocol="v2")}
        cls.pc, cls.cfg = start_proxy(cls, listeners, backends, "PROXY protocol to servers")

    def recorded(self, rec, marker):
        got = rec.find(marker.encode())
        self.assertEqual(len(got), 1, "the recording server saw %r %d times" % (marker, len(got)))
        return got[0]

    def send(self, port, path, src=None, host="127.0.0.1", raw=False):
        """A request through port from src; (response, client port)."""
        with SrcConn(port, src, host) as c:
            if raw:
                c.send(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
            else:
                c.send(h.build_request("GET", path, close=True))
            r = c.read_response()
            return r, c.sport

    def test_v1_http(self):
        """http listener, backend v1: the server's first bytes are exactly
        "PROXY TCP4 127.0.0.6 127.0.0.1 SPORT DPORT\\r\\n" (the client's
        address and port, the listener's), then the request."""
        P = self.ports["h1"]
        r, sport = self.send(P, "/v1http", src=ALLOWED)
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        buf = self.recorded(self.rec1, "/v1http")
        line = "PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (ALLOWED, sport, P)
        self.assertEqual(buf[:len(line)], line.encode(),
                         "the server's first bytes are not the PROXY v1 line")
        self.assertTrue(buf[len(line):].startswith(b"GET /v1http HTTP/1.1\r\n"), buf[:200])

    def test_v1_http_ipv6(self):
        """From ::1: "PROXY TCP6 ::1 ::1 SPORT DPORT\\r\\n"."""
        P = self.ports["h1"]
        r, sport = self.send(P, "/v1six", host="::1")
        self.assertEqual(r.status, 200)
        buf = self.recorded(self.rec1, "/v1six")
        line = "PROXY TCP6 ::1 ::1 %d %d\r\n" % (sport, P)
        self.assertEqual(buf[:len(line)], line.encode(),
                         "the server's first bytes are not the PROXY v1 line")

    def test_v2_http(self):
        """http listener, backend v2: a v2 PROXY command, TCP over IPv4,
        source 127.0.0.6:SPORT, destination 127.0.0.1:listener port; the
        request follows the header's announced length exactly."""
        P = self.ports["h2"]
        r, sport = self.send(P, "/v2http", src=ALLOWED)
        self.assertEqual(r.status, 200)
        buf = self.recorded(self.rec2, "/v2http")
        cmd, fam, src, dst, sp, dp, n = decode_v2(buf)
        self.assertEqual((cmd, fam, src, dst, sp, dp), (0x21, 0x11, ALLOWED, "127.0.0.1", sport, P))
        self.assertTrue(buf[n:].startswith(b"GET /v2http HTTP/1.1\r\n"), buf[:80])

    def test_tcp_listener_v1_v2(self):
        """tcp listeners: the same headers before the client's unread bytes."""
        P = self.ports["t1"]
        r, sport = self.send(P, "/t1", src=OTHER, raw=True)
        self.assertEqual(r.status, 200)
        buf = self.recorded(self.rec1, "/t1 ")
        line = "PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (OTHER, sport, P)
        self.assertEqual(buf, line.encode() + b"GET /t1 HTTP/1.1\r\nHost: t\r\n\r\n")
        P = self.ports["t2"]
        r, sport = self.send(P, "/t2", src=OTHER, raw=True)
        self.assertEqual(r.status, 200)
        buf = self.recorded(self.rec2, "/t2 ")
        cmd, fam, src, dst, sp, dp, n = decode_v2(buf)
        self.assertEqual((cmd, fam, src, dst, sp, dp), (0x21, 0x11, OTHER, "127.0.0.1", sport, P))
        self.assertEqual(buf[n:], b"GET /t2 HTTP/1.1\r\nHost: t\r\n\r\n")

    def test_proxy_in_to_proxy_out(self):
        """pin takes a PROXY v1 header from 192.0.2.7:4000: the v2 header sent
        to the server has that source address and port."""
        P = self.ports["pin"]
        with SrcConn(P) as c:
            c.send(proxy_v1("192.0.2.7", "127.0.0.1", 4000, P)
                   + h.build_request("GET", "/pin", close=True))
            self.assertEqual(c.read_response().status, 200)
        buf = self.recorded(self.rec2, "/pin ")
        cmd, fam, src, dst, sp, dp, n = decode_v2(buf)
        self.assertEqual((cmd, fam, src, sp), (0x21, 0x11, "192.0.2.7", 4000))


# ---------------------------------------------------------------------------
# 5. rate limits
# ---------------------------------------------------------------------------

class RateLimitTest(unittest.TestCase):
    """2 workers in front of nginx: rl (20 rps, burst 5 per /32; reuseport,
    so that the kernel spreads one client's connections over both workers),
    rr (route /tight: 1 rps, burst 10), rp (1 rps, burst 3, key_prefix_v4
    24)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.nginx = h.Nginx(cls.tmp)
        cls.addClassCleanup(cls.nginx.stop)
        cls.ports = {n: h.free_port() for n in ("rl", "rr", "rp")}
        P = cls.ports
        web = [{"path_prefix": "/", "backend": "web"}]
        listeners = [
            {"name": "rl", "bind": "127.0.0.1:%d" % P["rl"], "reuseport": True,
             "rate_limit": {"requests_per_second": 20, "burst": 5,
                            "key_prefix_v4": 32, "key_prefix_v6": 64}, "routes": web},
            {"name": "rr", "bind": "127.0.0.1:%d" % P["rr"],
             "routes": [{"path_prefix": "/tight",
                         "rate_limit": {"requests_per_second": 1, "burst": 10},
                         "backend": "web"}] + web},
            {"name": "rp", "bind": "127.0.0.1:%d" % P["rp"],
             "rate_limit": {"requests_per_second": 1, "burst": 3, "key_prefix_v4": 24},
             "routes": web},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.nginx.address)},
                                      "rate limits", access_log=False,
                                      rate_limit_table=100000)

    def spread_connections(self, port, src, want_min=6, most=24):
        """Keep-alive connections from src until both workers hold some
        (`portcullis status`); nothing is sent on them yet."""
        conns = []
        seen = {}
        while len(conns) < most:
            for _ in range(want_min if not conns else 2):
                conns.append(SrcConn(port, src))
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                seen = status_conns(self.pc)
                if sum(seen.values()) >= len(conns):
                    break
                time.sleep(0.1)
            if len(seen) >= 2 and all(v > 0 for v in seen.values()):
                return conns, seen
        return conns, seen

    def test_accuracy_two_workers(self):
        """127.0.0.5 at 60 rps (3x its 20 rps limit, burst 5) for 10 s over
        keep-alive connections on both workers: admitted within +-5% of
        20 * 10 + 5, every other answer 429 with an integer Retry-After >= 1;
        127.0.0.7 at 5 rps meanwhile: every request 200."""
        P = self.ports["rl"]
        conns, seen = self.spread_connections(P, DENIED)
        for c in conns:
            self.addCleanup(c.close)
        self.assertTrue(len(seen) >= 2 and all(v > 0 for v in seen.values()),
                        "connections not on both workers: %r" % seen)
        duration, rate = 10.0, 60.0
        lock = threading.Lock()
        results, other, errors = [], [], []
        t0 = time.monotonic() + 0.2
        k = len(conns)

        def run(j):
            c = conns[j]
            i = 0
            while True:
                at = t0 + (i * k + j) / rate
                if at >= t0 + duration:
                    break
                i += 1
                d = at - time.monotonic()
                if d > 0:
                    time.sleep(d)
                try:
                    c.send(h.build_request("GET", "/rl"))
                    r = c.read_response()
                    with lock:
                        results.append((r.status, r.header("Retry-After"), retry_after_ok(r)))
                    if r.closes:
                        c.close()
                        c = conns[j] = SrcConn(P, DENIED)
                except Exception as e:  # noqa: BLE001
                    with lock:
                        errors.append("%s: %s" % (type(e).__name__, e))
                    c.close()
                    c = conns[j] = SrcConn(P, DENIED)

        def run_other():
            i = 0
            with SrcConn(P, OTHER) as c:
                while time.monotonic() < t0 + duration:
                    d = t0 + i * 0.2 - time.monotonic()
                    i += 1
                    if d > 0:
                        time.sleep(d)
                    try:
                        c.send(h.build_request("GET", "/other"))
                        other.append(c.read_response().status)
                    except Exception as e:  # noqa: BLE001
                        other.append(repr(e))
                        return

        threads = [threading.Thread(target=run, args=(j,)) for j in range(k)]
        threads.append(threading.Thread(target=run_other))
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration + 30)
        for c in conns:
            c.close()
        self.assertEqual(errors, [])
        admitted = sum(1 for s, _, _ in results if s == 200)
        limited = [x for x in results if x[0] != 200]
        expect = 20 * duration + 5
        sys_msg = "admitted %d of %d (expected %d +-5%%), statuses %r" % (
            admitted, len(results), expect, sorted(set(s for s, _, _ in results)))
        self.assertGreater(len(results), 0.9 * rate * duration, sys_msg)
        self.assertGreaterEqual(admitted, expect * 0.95, sys_msg)
        self.assertLessEqual(admitted, expect * 1.05, sys_msg)
        self.assertEqual(set(s for s, _, _ in limited), {429}, sys_msg)
        bad = [ra for s, ra, ok in limited if not ok]
        self.assertEqual(bad, [], "429 without an integer Retry-After >= 1")
        self.assertTrue(other and all(s == 200 for s in other),
                        "127.0.0.7 was limited too: %r" % other)

    def test_route_limit_survives_reload(self):
        """/tight (1 rps, burst 10): 127.0.0.8 exhausts it (429 with
        Retry-After), `portcullis reload` (a changed config), then at most
        what the elapsed time refills is admitted, not a fresh burst."""
        P = self.ports["rr"]
        src = "127.0.0.8"
        first = []
        with SrcConn(P, src) as c:
            for i in range(16):
                c.send(h.build_request("GET", "/tight/%d" % i))
                r = c.read_response()
                first.append(r.status)
                if r.status == 429:
                    self.assertTrue(retry_after_ok(r), r.headers)
                if r.closes:
                    break
        t_ex = time.monotonic()
        self.assertIn(429, first, "16 requests at once, burst 10: never limited: %r" % first)
        self.assertGreaterEqual(first.count(200), 10, first)
        self.assertEqual(req(P, "/tight/x", src=OTHER).status, 200, "another client is not limited")
        cfg = json.loads(json.dumps(self.cfg))
        cfg["listeners"][1]["routes"].insert(1, {"path_prefix": "/reload-marker", "backend": "web"})
        self.pc.write_config(cfg)
        rc, out, err = ops.ctl(self.pc, "reload")
        self.assertEqual(rc, 0, err)
        after = [req(P, "/tight/after%d" % i, src=src).status for i in range(11)]
        elapsed = time.monotonic() - t_ex
        self.assertLessEqual(after.count(200), int(elapsed * 1) + 1,
                             "after the reload (%.1f s later) the bucket was refilled: %r"
                             % (elapsed, after))
        self.assertIn(429, after)

    def test_key_prefix(self):
        """key_prefix_v4 24: 127.0.0.5 and 127.0.0.6 share one bucket (1 rps,
        burst 3): after .5 spends it, .6 is limited too."""
        P = self.ports["rp"]
        got = [req(P, "/kp%d" % i, src=DENIED).status for i in range(6)]
        self.assertIn(429, got, "127.0.0.5 never limited: %r" % got)
        r = req(P, "/kp-other", src=ALLOWED)
        self.assertEqual(r.status, 429, "127.0.0.6 is in 127.0.0.5's /24 bucket")
        self.assertTrue(retry_after_ok(r))


# ---------------------------------------------------------------------------
# 6. connection caps
# ---------------------------------------------------------------------------

class ConnectionCapTest(unittest.TestCase):
    """2 workers: pc (max_connections_per_client 3), mc (max_connections 5),
    both with reuseport so that connections land on both workers."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.ports = {n: h.free_port() for n in ("pc", "mc")}
        web = [{"path_prefix": "/", "backend": "web"}]
        listeners = [
            {"name": "pc", "bind": "127.0.0.1:%d" % cls.ports["pc"],
             "max_connections_per_client": 3, "reuseport": True, "routes": web},
            {"name": "mc", "bind": "127.0.0.1:%d" % cls.ports["mc"], "max_connections": 5,
             "reuseport": True, "routes": web},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "connection caps", access_log=False)

    def served(self, c, path):
        c.send(h.build_request("GET", path))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertFalse(r.closes)

    def open_served(self, port, src, n, tag):
        conns = []
        for i in range(n):
            c = SrcConn(port, src)
            self.addCleanup(c.close)
            self.served(c, "/%s/%d" % (tag, i))
            conns.append(c)
        return conns

    def wait_idle(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(status_conns(self.pc).values()) == 0:
                return
            time.sleep(0.1)

    def let_in_after_close(self, port, src, tag):
        deadline = time.monotonic() + 3
        while True:
            try:
                with SrcConn(port, src, timeout=3) as c:
                    c.send(h.build_request("GET", "/" + tag, close=True))
                    return c.read_response().status
            except (h.IncompleteResponse, ConnectionError, socket.timeout):
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.1)

    def test_per_client_cap(self):
        """3 connections from 127.0.0.5 served (spread over both workers
        when the kernel allows); every further one from .5 is closed at
        accept (6 tries) while 127.0.0.6 gets in; closing one lets a new
        one from .5 in."""
        P = self.ports["pc"]
        spread = {}
        for attempt in range(5):
            self.wait_idle()
            conns = self.open_served(P, DENIED, 3, "cap%d" % attempt)
            spread = status_conns(self.pc)
            if len([v for v in spread.values() if v > 0]) >= 2:
                break
            for c in conns:
                c.close()
        self.assertGreaterEqual(len([v for v in spread.values() if v > 0]), 2,
                                "could not get the 3 connections onto both workers: %r" % spread)
        for i in range(6):
            closed, data, _ = silent_close(P, DENIED)
            self.assertTrue(closed and data == b"",
                            "connection %d from 127.0.0.5 over the cap of 3 was not closed at "
                            "accept: %r" % (4 + i, data[:100]))
        with SrcConn(P, ALLOWED) as c:
            self.served(c, "/cap-other")
        conns[0].close()
        self.assertEqual(self.let_in_after_close(P, DENIED, "cap-again"), 200,
                         "after closing one, a new connection from 127.0.0.5 was not let in")

    def test_listener_cap(self):
        """max_connections 5: 5 connections served; a 6th (from anyone) is
        closed at accept; closing one lets a new one in."""
        P = self.ports["mc"]
        conns = self.open_served(P, "127.0.0.1", 3, "mc-a") + self.open_served(P, OTHER, 2, "mc-b")
        for src in (DENIED, ALLOWED, "127.0.0.1"):
            closed, data, _ = silent_close(P, src)
            self.assertTrue(closed and data == b"", "a 6th connection from %s got in" % src)
        conns[0].close()
        self.assertEqual(self.let_in_after_close(P, ALLOWED, "mc-again"), 200)


# ---------------------------------------------------------------------------
# 7. path normalisation
# ---------------------------------------------------------------------------

class PathNormalisationTest(unittest.TestCase):
    """np (normalize_path default: match) and nf (forward): /admin and /a/b
    denied to every local address."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.ports = {n: h.free_port() for n in ("np", "nf")}
        routes = [{"path_prefix": "/admin", "deny": ["127.0.0.0/8"], "backend": "web"},
                  {"path_prefix": "/a/b", "deny": ["127.0.0.0/8"], "backend": "web"},
                  {"path_prefix": "/", "backend": "web"}]
        listeners = [
            {"name": "np", "bind": "127.0.0.1:%d" % cls.ports["np"], "routes": routes},
            {"name": "nf", "bind": "127.0.0.1:%d" % cls.ports["nf"], "normalize_path": "forward",
             "routes": routes},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "path normalisation and route deny", access_log=False)

    def status(self, path, port=None):
        return req(port or self.ports["np"], path).status

    def test_bypass_forms_refused(self):
        """With /admin denied: /admin, /%61dmin, /%61%64%6D%69%6E, //admin,
        /x/../admin, /./admin, /admin/, /x/%2e%2e/admin, /x/%2E%2E/admin,
        /%2e/admin, /x/./../admin/y, ///admin//y and /admin?q all get 403,
        and none reaches the server."""
        forms = ["/admin", "/%61dmin", "/%61%64%6D%69%6E", "//admin", "/x/../admin", "/./admin",
                 "/admin/", "/x/%2e%2e/admin", "/x/%2E%2E/admin", "/%2e/admin",
                 "/x/./../admin/y", "///admin//y", "/admin?q=1", "/x/y/../../admin"]
        self.web.requests(clear=True)
        got = {p: self.status(p) for p in forms}
        self.assertEqual({p: s for p, s in got.items() if s != 403}, {},
                         "bypass forms not refused (want 403)")
        self.assertEqual(backend_paths(self.web), [], "a bypass form reached the server")

    def test_above_root(self):
        """.. above the root: /.., /%2e%2e/admin, /x/../../admin -> 400."""
        for p in ("/..", "/%2e%2e/admin", "/x/../../admin", "/../admin"):
            self.assertEqual(self.status(p), 400, p)

    def test_encoded_slash_kept(self):
        """%2F stays encoded: /a%2Fb and /a%2fb do not match /a/b (200,
        forwarded as sent); /a/b does (403)."""
        self.assertEqual(self.status("/a/b"), 403)
        for p in ("/a%2Fb", "/a%2fb"):
            r = req(self.ports["np"], p)
            self.assertEqual((r.status, r.body), (200, ("web1 %s\n" % p).encode()))

    def test_forwarded_bytes(self):
        """normalize_path match: the server gets the client's bytes
        (/x/../pub/%61 as sent); forward: the normalised path (/pub/a)."""
        r = req(self.ports["np"], "/x/../pub/%61")
        self.assertEqual((r.status, r.body), (200, b"web1 /x/../pub/%61\n"))
        r = req(self.ports["nf"], "/x/../pub/%61")
        self.assertEqual((r.status, r.body), (200, b"web1 /pub/a\n"))
        self.assertEqual(self.status("/%61dmin", self.ports["nf"]), 403)


# ---------------------------------------------------------------------------
# 8, 9, 10. methods, underscores, ambiguous requests
# ---------------------------------------------------------------------------

class HygieneTest(unittest.TestCase):
    """hy (underscores drop, ambiguous close, routes with methods), hd (the
    defaults), ur (underscores reject), ua (allow), ar (ambiguous reject)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.amb = h.Backend("amb")
        cls.addClassCleanup(cls.amb.stop)
        cls.ports = {n: h.free_port() for n in ("hy", "hd", "ur", "ua", "ar")}
        P = cls.ports
        web = [{"host": ["amb.test"], "path_prefix": "/", "backend": "amb"},
               {"path_prefix": "/", "backend": "web"}]
        listeners = [
            {"name": "hy", "bind": "127.0.0.1:%d" % P["hy"], "underscores_in_headers": "drop",
             "ambiguous_requests": "close",
             "routes": [{"path_prefix": "/m1", "methods": ["GET"], "backend": "web"},
                        {"path_prefix": "/m2", "methods": ["GET", "POST"], "backend": "web"}]
             + web},
            {"name": "hd", "bind": "127.0.0.1:%d" % P["hd"], "routes": web},
            {"name": "ur", "bind": "127.0.0.1:%d" % P["ur"], "underscores_in_headers": "reject",
             "routes": web},
            {"name": "ua", "bind": "127.0.0.1:%d" % P["ua"], "underscores_in_headers": "allow",
             "routes": web},
            {"name": "ar", "bind": "127.0.0.1:%d" % P["ar"], "ambiguous_requests": "reject",
             "routes": web},
        ]
        cls.pc, cls.cfg = start_proxy(cls, listeners,
                                      {"web": h.backend_block(cls.web.address),
                                       "amb": h.backend_block(cls.amb.address)},
                                      "methods, underscores_in_headers, ambiguous_requests",
                                      access_log=False)

    # -- methods ---------------------------------------------------------------
    def test_methods(self):
        """methods [GET]: POST -> 405 with Allow listing GET (HEAD may
        follow), not forwarded; GET -> 200.  methods [GET, POST]: DELETE ->
        405, Allow lists both; POST -> 200."""
        P = self.ports["hy"]
        r = req(P, "/m1/post", method="POST", body=b"x")
        self.assertEqual(r.status, 405)
        allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
        self.assertIn("GET", allow)
        self.assertTrue(set(allow) <= {"GET", "HEAD"}, allow)
        self.assertNotIn("/m1/post", backend_paths(self.web))
        self.assertEqual(req(P, "/m1/get").status, 200)
        r = req(P, "/m2/del", method="DELETE")
        self.assertEqual(r.status, 405)
        allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
        self.assertTrue({"GET", "POST"} <= set(allow), allow)
        self.assertEqual(req(P, "/m2/post", method="POST", body=b"x").status, 200)

    # -- underscores -----------------------------------------------------------
    def spoof(self, port):
        return req(port, "/echo", headers=[("X_Forwarded_User", "admin"), ("X-Normal", "1")])

    def test_underscores_drop(self):
        """drop (explicit and by default): X_Forwarded_User is not at the
        server, X-Normal is; the request is answered 200."""
        for name in ("hy", "hd"):
            r = self.spoof(self.ports[name])
            self.assertEqual(r.status, 200, name)
            self.assertEqual(xheaders(r, "X_Forwarded_User"), [], name)
            self.assertEqual(xheaders(r, "X-Normal"), ["1"], name)

    def test_underscores_reject(self):
        """reject: 400, not forwarded."""
        self.web.requests(clear=True)
        r = req(self.ports["ur"], "/echo?us=reject", headers=[("X_Forwarded_User", "admin")])
        self.assertEqual(r.status, 400)
        self.assertEqual(backend_paths(self.web), [])

    def test_underscores_allow(self):
        """allow: the header reaches the server."""
        r = self.spoof(self.ports["ua"])
        self.assertEqual(r.status, 200)
        self.assertEqual(xheaders(r, "X_Forwarded_User"), ["admin"])

    # -- ambiguous requests ------------------------------------------------------
    def ambiguous(self, port, raw):
        """Send raw on a keep-alive connection: (response, closed after it)."""
        with h.Conn(port) as c:
            c.send(raw)
            r = c.read_response()
            return r, r.closes or c.wait_closed(3)

    def test_ambiguous_close(self):
        """close (explicit and by default): GET with a 5-byte Content-Length
        body is forwarded (the server gets the body), then the client
        connection is closed (Connection: close or EOF)."""
        for name in ("hy", "hd"):
            r, closed = self.ambiguous(self.ports[name], b"GET /echo?amb=%s HTTP/1.1\r\n"
                                       b"Host: t\r\nContent-Length: 5\r\n\r\nhello"
                                       % name.encode())
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.json()["body_length"], 5, name)
            self.assertTrue(closed, "%s: the client connection stays open after a GET with a "
                            "body" % name)

    def test_ambiguous_server_side_closed(self):
        """The server connection that carried an ambiguous request is closed
        too: 8 later requests to the same server (a backend of its own,
        keepalive on) never come from its server-side port."""
        P = self.ports["hy"]
        r, closed = self.ambiguous(P, b"GET /echo?amb=srv HTTP/1.1\r\nHost: amb.test\r\n"
                                      b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual((r.status, r.json()["backend"]), (200, "amb"))
        self.assertTrue(closed)
        amb_port = r.json()["peer"][1]
        later = []
        for i in range(8):
            r = req(P, "/echo?after=%d" % i, host_hdr="amb.test")
            self.assertEqual((r.status, r.json()["backend"]), (200, "amb"))
            later.append(r.json()["peer"][1])
        self.assertNotIn(amb_port, later, "the server connection of the ambiguous request was "
                         "reused: %d in %r" % (amb_port, later))

    def test_ambiguous_repeated_content_length_and_head(self):
        """Repeated identical Content-Length and HEAD with a body: forwarded,
        then closed."""
        P = self.ports["hy"]
        r, closed = self.ambiguous(P, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                      b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_length"], 5)
        self.assertTrue(closed, "repeated Content-Length: connection kept")
        with h.Conn(P) as c:
            c.send(b"HEAD /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.closes or c.wait_closed(3), "HEAD with a body: connection kept")

    def test_ambiguous_reject(self):
        """reject: GET with a body -> 400, never forwarded."""
        self.web.requests(clear=True)
        r, closed = self.ambiguous(self.ports["ar"], b"GET /echo?amb=rej HTTP/1.1\r\nHost: t\r\n"
                                                     b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual(r.status, 400)
        self.assertEqual(backend_paths(self.web), [])


# ---------------------------------------------------------------------------
# 11. Basic auth
# ---------------------------------------------------------------------------

def basic(user, password):
    return ("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, password))
                                                         .encode()).decode())


class BasicAuthTest(unittest.TestCase):
    """Routes for hosts ops.test (realm ops) and fwd.test (forward: true);
    users alice (bcrypt, htpasswd -nbB) and bob (SHA-512-crypt, openssl
    passwd -6).  A route with auth and rate_limit: BasicAuthRateLimitTest."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        alice = subprocess.run(["htpasswd", "-nbB", "alice", "wonder"], capture_output=True,
                               text=True, check=True).stdout.strip()
        bob = subprocess.run(["openssl", "passwd", "-6", "builder"], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert alice.startswith("alice:$2y$"), alice
        assert bob.startswith("$6$"), bob
        cls.users = os.path.join(cls.tmp, "htpasswd")
        write(cls.users, "# users\n%s\nbob:%s\n" % (alice, bob))
        cls.port = h.free_port()
        auth = {"realm": "ops", "users_file": cls.users}
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port, "routes": [
            {"host": ["ops.test"], "path_prefix": "/", "auth": auth, "backend": "web"},
            {"host": ["fwd.test"], "path_prefix": "/", "auth": dict(auth, forward=True),
             "backend": "web"},
            {"path_prefix": "/", "backend": "web"}]}]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "HTTP Basic auth", access_log=False)

    def assert_challenge(self, r):
        self.assertEqual(r.status, 401, "no Basic auth challenge (auth not enforced?)")
        self.assertRegex(r.header("WWW-Authenticate") or "",
                         r'^Basic realm="ops"(\s*,\s*charset="?UTF-8"?)?$')

    def test_no_credentials(self):
        """No Authorization: 401 with WWW-Authenticate: Basic realm="ops",
        not forwarded."""
        self.web.requests(clear=True)
        self.assert_challenge(req(self.port, "/none", host_hdr="ops.test"))
        self.assertEqual(backend_paths(self.web), [])

    def test_wrong_password_and_user(self):
        """A wrong password, an unknown user, a malformed header: 401."""
        for cred in (basic("alice", "nope"), basic("bob", "wonder"), basic("carol", "x"),
                     ("Authorization", "Basic !!")):
            self.assert_challenge(req(self.port, "/x", host_hdr="ops.test", headers=[cred]))

    def test_right_password(self):
        """bcrypt and SHA-512-crypt users: 200, twice (the second from the
        cache); the server does not see Authorization."""
        for user, pw in (("alice", "wonder"), ("bob", "builder"), ("alice", "wonder")):
            r = req(self.port, "/echo", host_hdr="ops.test", headers=[basic(user, pw)])
            self.assertEqual(r.status, 200, user)
            self.assertEqual(xheaders(r, "Authorization"), [], "Authorization forwarded")

    def test_forward(self):
        """forward: true: the server sees Authorization."""
        cred = basic("alice", "wonder")
        r = req(self.port, "/echo", host_hdr="fwd.test", headers=[cred])
        self.assertEqual(r.status, 200)
        self.assertEqual(xheaders(r, "Authorization"), [cred[1]])


class BasicAuthRateLimitTest(unittest.TestCase):
    """/rl: auth (realm ops) and rate_limit 1 rps, burst 3."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        alice = subprocess.run(["htpasswd", "-nbB", "alice", "wonder"], capture_output=True,
                               text=True, check=True).stdout.strip()
        cls.users = os.path.join(cls.tmp, "htpasswd")
        write(cls.users, "%s\n" % alice)
        cls.port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port, "routes": [
            {"path_prefix": "/rl", "auth": {"realm": "ops", "users_file": cls.users},
             "rate_limit": {"requests_per_second": 1, "burst": 3}, "backend": "web"},
            {"path_prefix": "/", "backend": "web"}]}]
        cls.pc, cls.cfg = start_proxy(cls, listeners, {"web": h.backend_block(cls.web.address)},
                                      "HTTP Basic auth with a route rate limit", access_log=False)

    def test_failures_count_toward_rate_limit(self):
        """/rl (1 rps, burst 3): wrong passwords from 127.0.0.5 give 401
        then 429 (with Retry-After) within 8 quick attempts."""
        got = []
        for i in range(8):
            r = req(self.port, "/rl/%d" % i, src=DENIED, headers=[basic("alice", "bad%d" % i)])
            got.append(r.status)
            if r.status == 429:
                self.assertTrue(retry_after_ok(r))
        self.assertIn(401, got)
        self.assertIn(429, got, "failed attempts never rate limited: %r" % got)
        self.assertEqual(set(got), {401, 429}, got)


if __name__ == "__main__":
    h.main()
