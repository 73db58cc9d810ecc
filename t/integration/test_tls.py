#!/usr/bin/python3
"""TLS (issue #11) seen from real clients: curl, openssl s_client, wrk and
python's ssl module against TLS listeners (SNI, ECDSA and RSA for the same
names, TLS 1.2/1.3 only, ALPN http/1.1, session resumption across workers
and reloads, mTLS with the client certificate passed to the server, the
handshake timeout, plain HTTP on a TLS port and the reverse, 100 MiB bodies,
WebSocket, redirect routes and HSTS, TLS tcp listeners), TLS to the servers
(verification, SNI, session reuse, health checks), `portcullis -t` on broken
certificates and reloads under TLS load.

Certificates are made at test time by tlscerts.py with the openssl CLI; the
keys are mode 0600 root, read by the master before the workers drop to
nobody."""

import base64
import hashlib
import json
import os
import re
import resource
import select
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import unittest

import harness as h
import opslib as ops
import tlscerts
from backend import pattern_sha256

MIB = 1 << 20
LOG_PREFIX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+: "

_certs = None


def certs():
    """The certificates of this run (made once, in a tmp dir readable by nobody)."""
    global _certs
    if _certs is None:
        _certs = tlscerts.make(h.make_tmpdir("pc-tls-certs-"))
    return _certs


def cert_pair(cert, key):
    return {"cert": cert, "key": key}


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

def s_client(port, *args, data=b"", timeout=30):
    """openssl s_client to 127.0.0.1:port with the test CA; (rc, output)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-CAfile", certs().ca] + list(args)
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout,
                       env=h.clean_env())
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def http_get(host="a.example.test", path="/"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
            % (path, host)).encode()


def served_cert(out):
    """The leaf certificate in s_client output, as the fingerprint tlscerts uses."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    if not m:
        return None
    p = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                       input=m.group(0).encode(), capture_output=True, timeout=20)
    return p.stdout.decode().strip().split("=", 1)[1].replace(":", "").lower()


def session_lines(out):
    """The "New, TLSv1.x, Cipher is ..." / "Reused, ..." lines of s_client."""
    return re.findall(r"^(New|Reused), (TLSv1\.\d)", out, re.M)


def client_ctx(cert=None, key=None, ca=None):
    ctx = ssl.create_default_context(cafile=ca or certs().ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class TlsConn(h.Conn):
    """h.Conn over TLS (python ssl), verified against the test CA."""

    def __init__(self, port, sni="a.example.test", timeout=10.0, ctx=None):
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock = (ctx or client_ctx()).wrap_socket(raw, server_hostname=sni)
        except Exception:
            raw.close()
            raise


def https(port, path="/", *args, host="a.example.test", timeout=60.0, body_file=None):
    """curl https://host:port/path resolved to 127.0.0.1, verified with the test CA."""
    return h.curl("https://%s:%d%s" % (host, port, path), "--cacert", certs().ca,
                  "--resolve", "%s:%d:127.0.0.1" % (host, port), *args,
                  timeout=timeout, body_file=body_file)


def echo_headers(body):
    """{lower-case name: [values]} of the request backend.py's /echo saw."""
    out = {}
    for k, v in json.loads(body)["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def client_hello():
    """The bytes of a real ClientHello (python ssl over memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.example.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_within(sock, timeout):
    """Seconds until the peer closes sock (EOF or reset), or None after timeout."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - t0
    except socket.timeout:
        return None
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0


# ---------------------------------------------------------------------------
# servers the proxy forwards to
# ---------------------------------------------------------------------------

class _ThreadedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LineEcho:
    """A plain TCP server: answers every line with "echo: LINE", closes after "bye"."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(b"echo: " + line)
                self.wfile.flush()
                if line.strip() == b"bye":
                    return

    def __init__(self):
        self.srv = _ThreadedServer(("127.0.0.1", 0), self.Handler)
        self.port = self.srv.server_address[1]
        self.address = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class UpgradeEcho(LineEcho):
    """An HTTP server answering an Upgrade: websocket request with 101, then
    "hello from upgrade\\n" and an echo of every byte it gets (upper-cased,
    so that the reply is not the client's own bytes)."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            key = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", head)
            if not re.search(rb"(?im)^upgrade:\s*websocket", head) or not key:
                self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                return
            accept = base64.b64encode(hashlib.sha1(
                key.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                             b"\r\n\r\nhello from upgrade\n")
            self.wfile.flush()
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data.upper())


class NginxTls:
    """nginx with `listen ... ssl` as a TLS server: 200 "tls-backend sni=SNI
    reused=r|." on every path ($ssl_session_reused), 200 "ok" for /ok, and
    the files in DIR/files/ under /files/."""

    def __init__(self, tmp, cert, key, port=None):
        self.port = port or h.free_port()
        self.dir = os.path.join(tmp, "nginx-tls-%d" % self.port)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
user nobody nogroup;
worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    keepalive_requests 100000;
    ssl_session_cache shared:S:1m;
    server {
        listen 127.0.0.1:%(port)d ssl;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        location = /ok { return 200 "ok\\n"; }
        location /files/ { alias %(d)s/files/; }
        location / {
            add_header X-Backend nginx-tls;
            return 200 "tls-backend sni=$ssl_server_name reused=$ssl_session_reused\\n";
        }
    }
}
""" % {"d": self.dir, "port": self.port, "cert": cert, "key": key})
        os.makedirs(os.path.join(self.dir, "files"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "files"), 0o755)
        self.proc = h.spawn(["/usr/sbin/nginx", "-p", self.dir, "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not h.wait_port(self.port, timeout=10, proc=self.proc):
            err = self.proc.stderr.read().decode(errors="replace") \
                if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("nginx (TLS) did not start: " + err)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        h.Nginx.stop(self)


def tls_block(*pairs, **extra):
    t = {"certificates": [cert_pair(c, k) for c, k in pairs]}
    t.update(extra)
    return t


def start_proxy(tc, listeners, backends, workers=2, tmp=None, access_log=True, **top):
    """A started Portcullis (stopped and checked at class cleanup), and its tmp."""
    tmp = tmp or h.make_tmpdir()
    cfg = h.base_config(tmp, listeners, backends, workers=workers, **top)
    if access_log:
        cfg["log"]["access"] = {"path": os.path.join(tmp, "access.log"), "format": "json"}
    pc = h.Portcullis(cfg, tmp=tmp)
    start(pc)
    tc.addClassCleanup(pc.stop)
    return pc, tmp, cfg


def start(pc):
    """pc.start(), with a clear message when this binary has no TLS yet (the
    config parser or the OpenSSL contexts of issue #11 not merged)."""
    try:
        pc.start()
    except AssertionError as e:
        if re.search(r"not supported|stub", str(e)):
            raise AssertionError("this portcullis binary does not have TLS yet (tls-config / "
                                 "tls-ctx not merged?):\n%s" % e) from None
        raise
    return pc


# ---------------------------------------------------------------------------
# TLS listeners: one portcullis with every kind of listener
# ---------------------------------------------------------------------------

class TlsListenerTest(unittest.TestCase):
    """One portcullis (2 workers): https (ECDSA, RSA and b certificates, HSTS),
    tls13 (min_version TLSv1.3), hs1 (handshake_timeout 1s), mtls (client_ca,
    verify required), mtlsopt (verify optional), plain (http), plain80
    (redirect to https) and tcps (protocol tcp with TLS, to a line echo)."""

    @classmethod
    def setUpClass(cls):
        c = cls.c = certs()
        cls.web = h.Backend("web1")
        cls.addClassCleanup(cls.web.stop)
        cls.ws = UpgradeEcho()
        cls.addClassCleanup(cls.ws.stop)
        cls.echo = LineEcho()
        cls.addClassCleanup(cls.echo.stop)
        names = ("https", "tls13", "hs1", "mtls", "mtlsopt", "plain", "plain80", "tcps")
        cls.ports = {n: h.free_port() for n in names}
        a = (c.a_ecdsa, c.a_ecdsa_key)
        web = [{"path_prefix": "/ws", "backend": "ws"}, {"path_prefix": "/", "backend": "web"}]

        def lst(name, tls=None, routes=None, **kw):
            d = {"name": name, "bind": "127.0.0.1:%d" % cls.ports[name]}
            d.update(kw)
            if tls is not None:
                d["tls"] = tls
            if routes is not None:
                d["routes"] = routes
            return d

        headers = {"subject": "X-Client-Subject", "fingerprint": "X-Client-Fingerprint"}
        listeners = [
            lst("https", tls_block(a, (c.a_rsa, c.a_rsa_key), (c.b, c.b_key),
                                   min_version="TLSv1.2", ticket_rotation="12h",
                                   handshake_timeout="10s", hsts=31536000), web),
            lst("tls13", tls_block(a, (c.a_rsa, c.a_rsa_key), min_version="TLSv1.3"), web),
            lst("hs1", tls_block(a, handshake_timeout="1s"), web),
            lst("mtls", tls_block(a, client_ca=c.ca, verify="required", verify_depth=4,
                                  client_cert_headers=headers), web),
            lst("mtlsopt", tls_block(a, client_ca=c.ca, verify="optional"), web),
            lst("plain", None, web),
            lst("plain80", None, [{"path_prefix": "/", "redirect": {"scheme": "https",
                                                                   "status": 308}}]),
            lst("tcps", tls_block(a), None, protocol="tcp", backend="echo"),
        ]
        backends = {"web": h.backend_block(cls.web.address, response_timeout="30s"),
                    "ws": h.backend_block(cls.ws.address),
                    "echo": h.backend_block(cls.echo.address)}
        cls.pc, cls.tmp, cls.cfg = start_proxy(cls, listeners, backends,
                                               defaults={"client_header_timeout": "10s",
                                                         "keepalive_timeout": "75s",
                                                         "max_header_size": "32k",
                                                         "client_body_timeout": "30s"})
        cls.access_log = cls.cfg["log"]["access"]["path"]

    def port(self, name):
        return self.ports[name]

    def access_entries(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.access_log) as f:
                    got = [json.loads(l) for l in f if l.strip()]
            except OSError:
                got = []
            found = [g for g in got if pred(g)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    # -- 1. curl, X-Forwarded-Proto, ALPN, keys read as root -------------------
    def test_curl_https_forwarded_proto(self):
        """curl --cacert ca.pem https://a.example.test:PORT/echo: verified,
        200, the server sees X-Forwarded-Proto: https (and http from the plain
        listener); the keys are 0600 root while the workers run as nobody."""
        r = https(self.port("https"), "/echo")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(echo_headers(r.body).get("x-forwarded-proto"), ["https"], r.body)
        r = h.request(self.port("plain"), "GET", "/echo")
        self.assertEqual(echo_headers(r.body).get("x-forwarded-proto"), ["http"], r.body)
        st = os.stat(self.c.a_ecdsa_key)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        for pid in self.pc.workers():
            self.assertNotEqual(os.stat("/proc/%d" % pid).st_uid, 0, "worker %d is root" % pid)

    def test_alpn_http11(self):
        """ALPN: offered h2,http/1.1 -> "ALPN protocol: http/1.1"; offered only
        h2 -> no ALPN, and the handshake (and a request) still succeeds."""
        rc, out = s_client(self.port("https"), "-servername", "a.example.test",
                           "-alpn", "h2,http/1.1", "-ign_eof", data=http_get())
        self.assertIn("ALPN protocol: http/1.1", out)
        self.assertIn("HTTP/1.1 200", out)
        rc, out = s_client(self.port("https"), "-servername", "a.example.test",
                           "-alpn", "h2", "-ign_eof", data=http_get())
        self.assertIn("No ALPN negotiated", out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("HTTP/1.1 200", out)

    def test_pipelined_and_keepalive_over_tls(self):
        """Three requests written in one TLS record, then two more on the same
        connection one at a time: five responses in order (plaintext the TLS
        layer holds is served without waiting for another socket event)."""
        with TlsConn(self.port("https")) as conn:
            conn.send(b"".join(h.build_request("GET", "/p%d" % i, "a.example.test")
                               for i in range(3)))
            for i in range(3):
                r = conn.read_response(deadline=time.monotonic() + 5)
                self.assertEqual((r.status, r.body), (200, b"web1 /p%d\n" % i))
            for i in range(3, 5):
                conn.send(h.build_request("GET", "/p%d" % i, "a.example.test"))
                r = conn.read_response(deadline=time.monotonic() + 5)
                self.assertEqual((r.status, r.body), (200, b"web1 /p%d\n" % i))

    # -- 2. SNI --------------------------------------------------------------
    def test_sni(self):
        """SNI picks by subjectAltName: b.example.test -> the b certificate
        (exact), x.w.example.test -> the a certificate (wildcard), both in any
        letter case (RFC 6066: DNS names); an unknown name, names the wildcard
        does not cover (w.example.test, y.x.w.example.test) and no SNI at all
        -> the first (default) certificate."""
        c = self.c
        cases = [("-servername", "b.example.test", c.b),
                 ("-servername", "x.w.example.test", c.a_ecdsa),
                 ("-servername", "a.example.test", c.a_ecdsa),
                 ("-servername", "B.Example.TEST", c.b),
                 ("-servername", "X.W.EXAMPLE.TEST", c.a_ecdsa),
                 ("-servername", "nomatch.example.test", c.a_ecdsa),
                 ("-servername", "w.example.test", c.a_ecdsa),
                 ("-servername", "y.x.w.example.test", c.a_ecdsa),
                 ("-noservername", None, c.a_ecdsa)]
        for opt, name, want in cases:
            args = [opt] + ([name] if name else [])
            rc, out = s_client(self.port("https"), *args, "-showcerts")
            self.assertEqual(served_cert(out), tlscerts.fingerprint(want),
                             "SNI %r: expected %s\n%s" % (name, want, out[-2000:]))
        r = https(self.port("https"), "/", host="x.w.example.test")
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)

    def test_status_lists_certificates(self):
        """portcullis status: each certificate of a TLS listener with the
        names it serves and its expiry."""
        rc, out, err = ops.ctl(self.pc, "status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^  cert %s: names a\.example\.test, \*\.w\.example\.test; "
                              r"expires \d{4}-\d\d-\d\d \(in (29|30) days\)$"
                         % re.escape(self.c.a_rsa), out)
        self.assertRegex(out, r"(?m)^  cert %s: names b\.example\.test; " % re.escape(self.c.b),
                         out)

    # -- 3. ECDSA and RSA -----------------------------------------------------
    def test_ecdsa_and_rsa_for_the_same_names(self):
        """A client that only takes ECDSA signatures gets the ECDSA
        certificate (256 bit), one that only takes RSA gets the RSA one
        (2048 bit), in TLS 1.2 and in TLS 1.3."""
        c = self.c
        cases = [("-tls1_2", "ECDSA+SHA256", c.a_ecdsa, 256),
                 ("-tls1_3", "ECDSA+SHA256", c.a_ecdsa, 256),
                 ("-tls1_2", "RSA-PSS+SHA256:RSA+SHA256", c.a_rsa, 2048),
                 ("-tls1_3", "rsa_pss_rsae_sha256", c.a_rsa, 2048)]
        for ver, sigalgs, want, bits in cases:
            rc, out = s_client(self.port("https"), ver, "-servername", "a.example.test",
                               "-sigalgs", sigalgs)
            self.assertIn("Server public key is %d bit" % bits, out,
                          "%s -sigalgs %s\n%s" % (ver, sigalgs, out[-2000:]))
            self.assertEqual(served_cert(out), tlscerts.fingerprint(want), (ver, sigalgs))
            self.assertIn("Verify return code: 0 (ok)", out)

    # -- 4. versions ---------------------------------------------------------
    def test_versions(self):
        """TLS 1.1 is refused (by the server: "TLS handshake failed" in the
        log), TLS 1.2 and 1.3 accepted; the TLSv1.3-only listener refuses
        TLS 1.2 and accepts TLS 1.3."""
        start = self.pc.log_size()
        rc, out = s_client(self.port("https"), "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
                           "-servername", "a.example.test")
        self.assertNotEqual(rc, 0, out)
        self.assertNotRegex(out, r"(?m)^(New|Reused), TLSv1\.1", out)
        self.assertIsNotNone(self.pc.wait_log(LOG_PREFIX + r"listener https: client 127\.0\.0\.1"
                                              r"(:\d+)?: TLS handshake failed: ", 5, start),
                             self.pc.error_log()[-2000:])
        for port, ver, ok in ((self.port("https"), "-tls1_2", True),
                              (self.port("https"), "-tls1_3", True),
                              (self.port("tls13"), "-tls1_2", False),
                              (self.port("tls13"), "-tls1_3", True)):
            rc, out = s_client(port, ver, "-servername", "a.example.test", "-ign_eof",
                               data=http_get())
            want = "TLSv1.%s" % ver[-1]
            if ok:
                self.assertIn(("New", want), session_lines(out), out[-2000:])
                self.assertIn("HTTP/1.1 200", out)
            else:
                self.assertNotEqual(rc, 0, out[-2000:])
                self.assertEqual(session_lines(out), [], out[-2000:])
                self.assertNotIn("HTTP/1.1 200", out)

    # -- 5. resumption -------------------------------------------------------
    def resume(self, ver, runs):
        sess = os.path.join(self.tmp, "sess%s-%f" % (ver, time.monotonic()))
        rc, out = s_client(self.port("https"), ver, "-servername", "a.example.test",
                           "-sess_out", sess, "-ign_eof", data=http_get())
        self.assertIn("HTTP/1.1 200", out)
        self.assertTrue(os.path.getsize(sess) > 0)
        for i in range(runs):
            rc, out = s_client(self.port("https"), ver, "-servername", "a.example.test",
                               "-sess_in", sess, "-ign_eof", data=http_get())
            self.assertIn("HTTP/1.1 200", out)
            lines = set(session_lines(out))
            self.assertEqual(lines, {("Reused", "TLSv1.%s" % ver[-1])},
                             "run %d of -sess_in %s\n%s" % (i, ver, out[-2000:]))
        return sess

    def resume_held_open(self, proto, n=40):
        """n connections resuming one session (python ssl), all held open:
        every one reused, and `portcullis status` shows them on both workers."""
        ctx = client_ctx()
        ctx.minimum_version = ctx.maximum_version = proto
        with TlsConn(self.port("https"), ctx=ctx) as first:
            first.send(h.build_request("GET", "/first"))
            self.assertEqual(first.read_response().status, 200)
            sess = first.sock.session
        conns = []
        try:
            for i in range(n):
                raw = socket.create_connection(("127.0.0.1", self.port("https")), timeout=10)
                conns.append(ctx.wrap_socket(raw, server_hostname="a.example.test",
                                             session=sess))
            self.assertEqual([s.session_reused for s in conns], [True] * n, proto)
            rc, out, err = ops.ctl(self.pc, "status")
            per_worker = ops.worker_conns(out)
            self.assertEqual(len(per_worker), 2, out)
            self.assertTrue(all(v > 0 for v in per_worker.values()),
                            "the resumed connections are all on one worker, so this does not "
                            "show tickets shared across workers: %r" % per_worker)
            for s in conns:
                s.sendall(h.build_request("GET", "/resumed", close=True))
            for s in conns:
                self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
        finally:
            for s in conns:
                s.close()

    def test_resumption_across_workers(self):
        """A session saved once (-sess_out) is resumed by 12 later connections
        (-sess_in), whichever of the 2 workers takes them, in TLS 1.2 and 1.3
        (session tickets sealed with keys the workers share); -reconnect
        (TLS 1.2: five reconnects) reports Reused every time; 40 connections held
        open at once (python ssl), spread over both workers, all resume one
        session."""
        self.resume("-tls1_2", 12)
        self.resume("-tls1_3", 12)
        for proto in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            self.resume_held_open(proto)
        rc, out = s_client(self.port("https"), "-tls1_2", "-servername", "a.example.test",
                           "-reconnect")
        lines = session_lines(out)
        self.assertEqual(lines[0], ("New", "TLSv1.2"), out[-3000:])
        self.assertEqual(lines[1:], [("Reused", "TLSv1.2")] * 5, out[-3000:])

    def test_resumption_across_reload(self):
        """Sessions saved before `portcullis reload` (TLS 1.2 and 1.3) are
        resumed by the new generation's workers."""
        s12 = self.resume("-tls1_2", 1)
        s13 = self.resume("-tls1_3", 1)
        old = self.pc.workers()
        rc, out, err = ops.ctl(self.pc, "reload")
        self.assertEqual(rc, 0, err)
        self.assertIsNotNone(self.pc.wait_workers(2, exclude=old, timeout=15),
                             self.pc.workers())
        for ver, sess in (("-tls1_2", s12), ("-tls1_3", s13)):
            for i in range(4):
                rc, out = s_client(self.port("https"), ver, "-servername", "a.example.test",
                                   "-sess_in", sess, "-ign_eof", data=http_get())
                self.assertIn("HTTP/1.1 200", out)
                self.assertEqual(set(session_lines(out)),
                                 {("Reused", "TLSv1.%s" % ver[-1])},
                                 "after reload, %s run %d\n%s" % (ver, i, out[-2000:]))

    # -- 6. mTLS ---------------------------------------------------------------
    def test_mtls_required(self):
        """verify: required: without a client certificate the request fails
        and never reaches the server; with the CA-signed one, 200 and the
        server sees X-Client-Subject (RFC 2253, CN=client.example.test) and
        X-Client-Fingerprint (sha256, lowercase hex, no colons); the client's
        own X-Client-* headers are replaced, not passed on."""
        c = self.c
        self.web.requests(clear=True)
        r = https(self.port("mtls"), "/echo?nocert=1")
        self.assertNotEqual(r.rc, 0, "a request without a client certificate succeeded")
        self.assertIsNone(r.status)
        seen = [q["path"] for q in self.web.requests()["requests"]]
        self.assertNotIn("/echo?nocert=1", seen)
        r = https(self.port("mtls"), "/echo?cert=1", "--cert", c.client, "--key", c.client_key,
                  "-H", "X-Client-Subject: CN=admin", "-H", "X-Client-Fingerprint: 00ff",
                  "-H", "x-client-subject: CN=root")
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        hd = echo_headers(r.body)
        self.assertEqual(len(hd.get("x-client-subject", [])), 1, hd)
        self.assertIn("CN=client.example.test", hd["x-client-subject"][0])
        self.assertIn("O=Portcullis Tests", hd["x-client-subject"][0])
        self.assertEqual(hd.get("x-client-fingerprint"), [tlscerts.fingerprint(c.client)])

    def test_resumption_keeps_client_certificate_rules(self):
        """Sessions and mTLS: a session made on a listener without client
        certificates (https), or on the verify: optional listener without
        one, does not let a client without a certificate into the verify:
        required listener (no 200, the server never sees the request); a
        session made on mtls with the client certificate is resumed there
        and the server still gets X-Client-Fingerprint. TLS 1.2 and 1.3."""
        c = self.c
        fp = tlscerts.fingerprint(c.client)
        for ver in ("-tls1_2", "-tls1_3"):
            for src, extra in (("https", []), ("mtlsopt", [])):
                sess = os.path.join(self.tmp, "x-%s%s" % (src, ver))
                rc, out = s_client(self.port(src), ver, "-servername", "a.example.test",
                                   "-sess_out", sess, "-ign_eof", *extra, data=http_get())
                self.assertIn("HTTP/1.1 200", out)
                path = "/echo?from=%s%s" % (src, ver)
                rc, out = s_client(self.port("mtls"), ver, "-servername", "a.example.test",
                                   "-sess_in", sess, "-ign_eof", data=http_get(path=path))
                self.assertNotIn("HTTP/1.1 200", out,
                                 "a %s session from listener %s let a client without a "
                                 "certificate into the verify: required listener:\n%s"
                                 % (ver, src, out[-2500:]))
                seen = [q["path"] for q in self.web.requests()["requests"]]
                self.assertNotIn(path, seen)
            sess = os.path.join(self.tmp, "mtls%s" % ver)
            rc, out = s_client(self.port("mtls"), ver, "-servername", "a.example.test",
                               "-cert", c.client, "-key", c.client_key, "-sess_out", sess,
                               "-ign_eof", data=http_get(path="/echo"))
            self.assertIn("HTTP/1.1 200", out)
            self.assertIn(fp, out)
            rc, out = s_client(self.port("mtls"), ver, "-servername", "a.example.test",
                               "-sess_in", sess, "-ign_eof", data=http_get(path="/echo"))
            self.assertIn(("Reused", "TLSv1.%s" % ver[-1]), session_lines(out), out[-2500:])
            self.assertIn("HTTP/1.1 200", out)
            self.assertRegex(out, r'"X-Client-Fingerprint",\s*"%s"' % fp,
                          "resumed %s mTLS session: no client certificate headers\n%s"
                          % (ver, out[-2500:]))

    def test_mtls_wrong_ca_refused(self):
        """A client certificate no CA of ours signed (self-made, same subject
        as the real one): refused by verify: required; on verify: optional
        either refused or served without any X-Client-* header, never with
        the unverified subject."""
        c = self.c
        other = os.path.join(self.tmp, "selfsigned.pem")
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", c.client_key, "-out", other,
                        "-days", "5", "-subj", "/O=%s/CN=%s" % (tlscerts.CLIENT_O,
                                                                tlscerts.CLIENT_CN)],
                       check=True, capture_output=True)
        r = https(self.port("mtls"), "/echo?wrongca=1", "--cert", other, "--key", c.client_key)
        self.assertNotEqual(r.rc, 0, "a certificate from an unknown CA was accepted: %r"
                            % (r.body[:300],))
        r = https(self.port("mtlsopt"), "/echo?wrongca=2", "--cert", other, "--key",
                  c.client_key)
        if r.rc == 0:
            hd = echo_headers(r.body)
            self.assertNotIn("x-client-subject", hd, "unverified certificate passed on")
            self.assertNotIn("x-client-fingerprint", hd, "unverified certificate passed on")

    def test_mtls_optional(self):
        """verify: optional: without a certificate, 200 and no X-Client-*
        headers at the server (a client's own are dropped); with one, the
        headers are there."""
        c = self.c
        r = https(self.port("mtlsopt"), "/echo", "-H", "X-Client-Subject: CN=admin",
                  "-H", "X-Client-Fingerprint: 00ff")
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        hd = echo_headers(r.body)
        self.assertNotIn("x-client-subject", hd)
        self.assertNotIn("x-client-fingerprint", hd)
        r = https(self.port("mtlsopt"), "/echo", "--cert", c.client, "--key", c.client_key)
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        self.assertEqual(echo_headers(r.body).get("x-client-fingerprint"),
                         [tlscerts.fingerprint(c.client)])

    def test_access_log_tls_fields(self):
        """JSON access log: tls_version and tls_cipher on TLS listeners,
        client_subject and client_fingerprint with a client certificate, null
        on a plain listener."""
        c = self.c
        r = https(self.port("mtls"), "/logged-mtls", "--cert", c.client, "--key", c.client_key,
                  "--tlsv1.3")
        self.assertEqual(r.status, 200, r.stderr)
        r = https(self.port("https"), "/logged-tls12", "--tlsv1.2", "--tls-max", "1.2")
        self.assertEqual(r.status, 200, r.stderr)
        self.assertEqual(h.request(self.port("plain"), "GET", "/logged-plain").status, 200)
        m, = self.access_entries(lambda g: g.get("uri") == "/logged-mtls")
        self.assertEqual(m["tls_version"], "TLSv1.3", m)
        self.assertTrue(m["tls_cipher"], m)
        self.assertIn("CN=client.example.test", m["client_subject"] or "", m)
        self.assertEqual(m["client_fingerprint"], tlscerts.fingerprint(c.client), m)
        t, = self.access_entries(lambda g: g.get("uri") == "/logged-tls12")
        self.assertEqual(t["tls_version"], "TLSv1.2", t)
        self.assertRegex(t["tls_cipher"] or "", r"GCM|CHACHA20", t)
        self.assertIsNone(t["client_subject"], t)
        p, = self.access_entries(lambda g: g.get("uri") == "/logged-plain")
        self.assertEqual((p["tls_version"], p["tls_cipher"], p["client_subject"],
                          p["client_fingerprint"]), (None, None, None, None), p)

    # -- 7. handshake timeout --------------------------------------------------
    def test_handshake_timeout(self):
        """handshake_timeout 1s: a client that sends nothing, and one that
        sends the first 50 bytes of a ClientHello, are closed after about 1 s
        (not before 0.8 s, within 3 s), each logged "TLS handshake timed
        out"; meanwhile a normal client on the same listener is served."""
        start = self.pc.log_size()
        hello = client_hello()
        self.assertGreater(len(hello), 100)
        silent = socket.create_connection(("127.0.0.1", self.port("hs1")))
        partial = socket.create_connection(("127.0.0.1", self.port("hs1")))
        partial.sendall(hello[:50])
        results = {}

        def wait(name, s):
            results[name] = closed_within(s, 5)

        ts = [threading.Thread(target=wait, args=(n, s))
              for n, s in (("silent", silent), ("partial", partial))]
        for t in ts:
            t.start()
        r = https(self.port("hs1"), "/during")
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        for t in ts:
            t.join(10)
        silent.close()
        partial.close()
        for name in ("silent", "partial"):
            took = results.get(name)
            self.assertIsNotNone(took, "%s client not closed within 5 s" % name)
            self.assertGreater(took, 0.8, "%s client closed too early" % name)
            self.assertLess(took, 3.0, "%s client closed after %.2fs" % (name, took))
        for _ in range(20):
            n = len(re.findall(r"listener hs1: client 127\.0\.0\.1(:\d+)?: TLS handshake "
                               r"timed out", self.pc.error_log()[start:]))
            if n >= 2:
                break
            time.sleep(0.1)
        self.assertEqual(n, 2, self.pc.error_log()[start:][-2000:])

    # -- 8. 1,000 idle handshakes ----------------------------------------------
    def test_idle_handshakes_do_not_slow_others(self):
        """1,000 connections in the handshake state (500 silent, 500 with half
        a ClientHello) held open: a curl request still completes in under
        2 s, and they are still open (waiting, not refused) when it does."""
        need = 1000 + 200
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < need + 256:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need + 1024), hard))
        hello = client_hello()[:50]
        socks = []
        try:
            for i in range(1000):
                s = socket.create_connection(("127.0.0.1", self.port("https")), timeout=5)
                if i % 2:
                    s.sendall(hello)
                socks.append(s)
            t0 = time.monotonic()
            r = https(self.port("https"), "/under-idle", timeout=10)
            took = time.monotonic() - t0
            self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
            self.assertLess(took, 2.0, "a request took %.2fs with 1,000 idle handshakes" % took)
            r, _, _ = select.select(socks, [], [], 0)
            self.assertLess(len(r), 10, "%d of the idle handshakes were closed already" % len(r))
        finally:
            for s in socks:
                s.close()
        self.assertEqual(https(self.port("https"), "/after-idle").status, 200)

    # -- 9. plain HTTP on a TLS port and the reverse ---------------------------
    def test_plain_http_on_tls_port(self):
        """A plain HTTP request to the TLS port: a 400 in plain text, then
        the connection is closed; logged "plain HTTP on a TLS port"."""
        start = self.pc.log_size()
        with h.Conn(self.port("https")) as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n")
            r = conn.read_response()
            self.assertEqual(r.status, 400, r)
            self.assertTrue(conn.wait_closed(3), "connection left open after the 400")
        self.assertIsNotNone(self.pc.wait_log(r"listener https: client 127\.0\.0\.1(:\d+)?: "
                                              r"plain HTTP on a TLS port", 5, start))

    def test_tls_on_plain_port_fails_fast(self):
        """curl https:// to the plain HTTP port fails within 2 s (closed at
        once, no hang until client_header_timeout); logged "TLS on a plain
        HTTP port"."""
        start = self.pc.log_size()
        t0 = time.monotonic()
        r = https(self.port("plain"), "/", timeout=10)
        took = time.monotonic() - t0
        self.assertNotEqual(r.rc, 0)
        self.assertLess(took, 2.0, "https:// to a plain port took %.2fs (rc %d)" % (took, r.rc))
        self.assertIsNotNone(self.pc.wait_log(r"listener plain: client 127\.0\.0\.1(:\d+)?: "
                                              r"TLS on a plain HTTP port", 5, start))

    # -- 10. 100 MiB both ways -------------------------------------------------
    def test_100mib_both_ways(self):
        """100 MiB up (curl --data-binary @file to /echo) and down (curl -o
        from /big) over TLS, checksums equal at both ends."""
        size = 100 * MIB
        upload = os.path.join(self.tmp, "upload.bin")
        block = bytearray(os.urandom(MIB))
        sha = hashlib.sha256()
        with open(upload, "wb") as f:
            for i in range(size // MIB):
                block[:8] = i.to_bytes(8, "big")
                f.write(block)
                sha.update(block)
        r = https(self.port("https"), "/echo", "--data-binary", "@" + upload, "-H", "Expect:",
                  timeout=180)
        os.unlink(upload)
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        d = json.loads(r.body)
        self.assertEqual((d["body_length"], d["body_sha256"]), (size, sha.hexdigest()))
        out = os.path.join(self.tmp, "download.bin")
        r = https(self.port("https"), "/big?size=%d" % size, timeout=180, body_file=out)
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        self.assertEqual(os.path.getsize(out), size)
        self.assertEqual(h.file_sha256(out), pattern_sha256(size))
        os.unlink(out)

    # -- 11. WebSocket -------------------------------------------------------
    def test_websocket_over_tls(self):
        """An Upgrade: websocket request through the TLS listener gets the
        server's 101; then bytes flow both ways (the server's greeting, 1 MiB
        echoed back upper-cased)."""
        with TlsConn(self.port("https")) as conn:
            conn.send(b"GET /ws HTTP/1.1\r\nHost: a.example.test\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            r = conn.read_response()
            self.assertEqual(r.status, 101, r)
            self.assertEqual(r.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            got = bytearray(conn.buf)
            conn.buf.clear()
            while not got.endswith(b"hello from upgrade\n"):
                data = conn.sock.recv(65536)
                self.assertTrue(data, "EOF before the server's greeting")
                got += data
            payload = bytes(range(97, 123)) * (MIB // 26 + 1)
            payload = payload[:MIB]
            # one thread: an SSL object must not be read and written from
            # two threads at once (a second thread sending made python's
            # ssl see a spurious EOF now and then).  At most 64 KiB are in
            # flight, far below what the socket buffers hold.
            got, sent = bytearray(), 0
            while len(got) < len(payload):
                if sent < len(payload):
                    conn.sock.sendall(payload[sent:sent + 16384])
                    sent = min(sent + 16384, len(payload))
                while len(got) < len(payload) and (
                        sent - len(got) > 65536 or sent == len(payload)):
                    data = conn.sock.recv(262144)
                    self.assertTrue(data, "EOF after %d of %d echoed bytes"
                                    % (len(got), MIB))
                    got += data
            self.assertEqual(bytes(got), payload.upper())

    # -- 12. redirect and HSTS ---------------------------------------------------
    def test_redirect_route(self):
        """The plain listener's redirect route: 308 with Location
        https://a.example.test/x?y=1, without a Strict-Transport-Security
        header."""
        r = h.curl("http://127.0.0.1:%d/x?y=1" % self.port("plain80"), "-I",
                   "-H", "Host: a.example.test")
        self.assertEqual((r.rc, r.status), (0, 308), r.stderr)
        self.assertEqual(r.header("Location"), "https://a.example.test/x?y=1")
        self.assertIsNone(r.header("Strict-Transport-Security"))

    def test_hsts(self):
        """hsts: 31536000: every response of the TLS listener carries
        Strict-Transport-Security: max-age=31536000 (200 and 404 from the
        server alike); the plain listener's and the listener without hsts
        carry none."""
        for path in ("/", "/status?code=404"):
            r = https(self.port("https"), path)
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertEqual(r.header("Strict-Transport-Security"), "max-age=31536000",
                             (path, r.headers))
        r = h.curl("http://127.0.0.1:%d/" % self.port("plain"))
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Strict-Transport-Security"), r.headers)
        r = https(self.port("tls13"), "/")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Strict-Transport-Security"), r.headers)

    # -- 13. TLS tcp listener --------------------------------------------------
    def test_tcp_listener_with_tls(self):
        """protocol: tcp with tls in front of a plain TCP line echo: openssl
        s_client -quiet sends two lines and gets both echoed; plain bytes to
        that port are not passed to the server."""
        rc, out = s_client(self.port("tcps"), "-quiet", "-servername", "a.example.test",
                           data=b"hello\nbye\n")
        self.assertIn("echo: hello\necho: bye\n", out)
        with h.Conn(self.port("tcps")) as conn:
            conn.send(b"hello\n")
            self.assertTrue(conn.wait_closed(12), "plain bytes on a TLS tcp port: not closed")
            self.assertNotIn(b"echo", bytes(conn.buf))


# ---------------------------------------------------------------------------
# TLS to the servers
# ---------------------------------------------------------------------------

class UpstreamTlsTest(unittest.TestCase):
    """One portcullis: /good to an nginx TLS server verified with the test
    CA and SNI backend.example.test, /ip to the same server verified by its
    IP subjectAltName (no SNI), /bad verified against a CA that did not sign
    it, /reuse with keepalive 0 (a new TLS connection per request), a
    health-checked TLS server that starts late and a health-checked one that
    fails verification."""

    @classmethod
    def setUpClass(cls):
        c = cls.c = certs()
        cls.tmp = h.make_tmpdir()
        cls.ngx = NginxTls(cls.tmp, c.backend, c.backend_key)
        cls.addClassCleanup(cls.ngx.stop)
        cls.hc_port = h.free_port()
        cls.hc_addr = "127.0.0.1:%d" % cls.hc_port
        cls.port = h.free_port()
        routes = [{"path_prefix": p, "backend": b} for p, b in
                  (("/good", "good"), ("/ip", "ip"), ("/bad", "bad"), ("/reuse", "reuse"),
                   ("/hc", "hc"), ("/files", "good"))]
        hc = {"type": "http", "path": "/ok", "interval": "300ms", "timeout": "300ms",
              "rise": 1, "fall": 1}
        backends = {
            "good": h.backend_block(cls.ngx.address, tls={"verify": True, "ca_file": c.ca,
                                                          "sni": "backend.example.test"}),
            "ip": h.backend_block(cls.ngx.address, tls={"verify": True, "ca_file": c.ca}),
            "bad": h.backend_block(cls.ngx.address, retries=0,
                                   tls={"verify": True, "ca_file": c.other_ca,
                                        "sni": "backend.example.test"}),
            "reuse": h.backend_block(cls.ngx.address, keepalive=0,
                                     tls={"ca_file": c.ca, "sni": "backend.example.test"}),
            "hc": h.backend_block(cls.hc_addr, health_check=hc,
                                  tls={"ca_file": c.ca, "sni": "backend.example.test"}),
            "hcbad": h.backend_block(cls.ngx.address, health_check=hc,
                                     tls={"ca_file": c.other_ca, "sni": "backend.example.test"}),
        }
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port, "routes": routes}]
        cls.pc, _, _ = start_proxy(cls, listeners, backends, workers=1, tmp=cls.tmp)

    def test_verified_upstream(self):
        """ca_file = the test CA: 200 from the TLS server, which saw SNI
        backend.example.test; an IP address server is verified by its IP
        subjectAltName and gets no SNI."""
        r = h.request(self.port, "GET", "/good/1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"tls-backend sni=backend.example.test reused=.\n")
        r = h.request(self.port, "GET", "/ip/1")
        self.assertEqual(r.status, 200, (r, self.pc.error_log()[-1500:]))
        self.assertIn(b"tls-backend sni= ", r.body)

    def test_big_response_from_tls_server(self):
        """A 64 MiB file from the TLS server through portcullis, read by a
        raw client: every byte, checksum equal."""
        size = 64 * MIB
        path = os.path.join(self.ngx.dir, "files", "big.bin")
        sha = hashlib.sha256()
        with open(path, "wb") as f:
            for i in range(size // MIB):
                block = hashlib.sha256(b"%d" % i).digest() * (MIB // 32)
                f.write(block)
                sha.update(block)
        os.chmod(path, 0o644)
        try:
            r = h.curl("http://127.0.0.1:%d/files/big.bin" % self.port, timeout=120,
                       body_file=path + ".out")
            self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
            self.assertEqual(h.file_sha256(path + ".out"), sha.hexdigest())
        finally:
            for p in (path, path + ".out"):
                if os.path.exists(p):
                    os.unlink(p)

    def test_unverified_upstream_502(self):
        """ca_file = a CA that did not sign the server's certificate: 502, and
        the error log says why (certificate verify failed)."""
        start = self.pc.log_size()
        r = h.request(self.port, "GET", "/bad/1")
        self.assertEqual(r.status, 502, r)
        self.assertIsNotNone(
            self.pc.wait_log(r"backend bad: .*%s.*TLS handshake: .*certificate verify failed"
                             % re.escape(self.ngx.address), 5, start),
            self.pc.error_log()[start:][-2000:])

    def test_session_reuse(self):
        """keepalive 0 (a new TLS connection per request): after the first,
        the server reports resumed sessions ($ssl_session_reused = r)."""
        bodies = [h.request(self.port, "GET", "/reuse/%d" % i).body for i in range(4)]
        self.assertEqual(bodies[0], b"tls-backend sni=backend.example.test reused=.\n")
        self.assertEqual(bodies[1:], [b"tls-backend sni=backend.example.test reused=r\n"] * 3,
                         bodies)

    def test_health_check_over_tls(self):
        """An http health check of a TLS server: down while nothing listens,
        "is up" once the TLS server starts (a plain check would get nginx's
        400 for plain HTTP on its TLS port), then requests are served."""
        self.assertIsNotNone(self.pc.wait_log(r"backend hc: server %s is down: connect: "
                                              % re.escape(self.hc_addr), 10),
                             self.pc.error_log()[-2000:])
        start = self.pc.log_size()
        ngx = NginxTls(self.tmp, self.c.backend, self.c.backend_key, port=self.hc_port)
        self.addCleanup(ngx.stop)
        self.assertIsNotNone(self.pc.wait_log(r"backend hc: server %s is up: status 200"
                                              % re.escape(self.hc_addr), 10, start),
                             self.pc.error_log()[start:][-2000:])
        rc, out, err = ops.ctl(self.pc, "status")
        self.assertRegex(out, r"(?m)^  server %s .*health=up" % re.escape(self.hc_addr), out)
        r = h.request(self.port, "GET", "/hc/1")
        self.assertEqual(r.status, 200, r)

    def test_health_check_verification_failure(self):
        """A health check of a TLS server whose certificate the backend's
        ca_file did not sign: "is down: TLS handshake: ... certificate verify
        failed", and status shows it down."""
        self.assertIsNotNone(self.pc.wait_log(r"backend hcbad: server %s is down: TLS "
                                              r"handshake: .*certificate verify failed"
                                              % re.escape(self.ngx.address), 10),
                             self.pc.error_log()[-2000:])
        rc, out, err = ops.ctl(self.pc, "status")
        self.assertRegex(out, r"(?m)^backend hcbad .*\n  server %s .*health=down"
                         % re.escape(self.ngx.address), out)


# ---------------------------------------------------------------------------
# portcullis -t and reloads with certificates
# ---------------------------------------------------------------------------

CHECK_CONFIG = """\
workers: 1
user: nobody
group: nogroup
pid_file: {tmp}/pc.pid
control_socket: {tmp}/pc.sock
log:
  error: {{ path: {tmp}/error.log, level: info }}
listeners:
  - name: https
    bind: 127.0.0.1:{port}
    tls:
      certificates:
        - {{ cert: {cert}, key: {key} }}
    routes:
      - {{ path_prefix: /, backend: web }}
backends:
  web:
    servers:
      - {{ address: "127.0.0.1:{bport}" }}
"""
CERT_LINE = 13   # the line of the certificates item above


def run_check(path):
    return subprocess.run([h.binary(), "-t", "-c", path], capture_output=True, text=True,
                          timeout=30, env=h.clean_env(), stdin=subprocess.DEVNULL)


class CertificateCheckTest(unittest.TestCase):
    """`portcullis -t` on certificate mistakes, and a reload with one."""

    @classmethod
    def setUpClass(cls):
        cls.c = certs()
        cls.tmp = h.make_tmpdir()

    def write(self, name, cert, key, port=None, bport=None):
        text = CHECK_CONFIG.format(tmp=self.tmp, port=port or h.free_port(),
                                   bport=bport or h.free_port(), cert=cert, key=key)
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        self.assertIn("cert: %s," % cert, text.splitlines()[CERT_LINE - 1])
        return path

    def assert_located(self, path, p, *words):
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assertNotIn("configuration OK", out)
        rx = re.compile(r"^%s:(\d+):(\d+): (.+)$" % re.escape(path), re.M)
        found = [(int(m.group(1)), m.group(3)) for m in rx.finditer(p.stderr)]
        self.assertTrue(found, "no FILE:LINE:COL: error:\n" + out)
        line, msg = found[0]
        self.assertEqual(line, CERT_LINE, out)
        for w in words:
            self.assertIn(w, msg, out)
        return msg

    def test_key_mismatch(self):
        """A key that is not its certificate's: exit 1, FILE:LINE:COL naming
        the key ("does not match")."""
        path = self.write("mismatch.yaml", self.c.a_ecdsa, self.c.b_key)
        self.assert_located(path, run_check(path), self.c.b_key, "does not match")

    def test_expired(self):
        """An expired certificate: exit 1, "expired on" its date."""
        path = self.write("expired.yaml", self.c.expired, self.c.expired_key)
        self.assert_located(path, run_check(path), self.c.expired, "expired")

    def test_chain_out_of_order(self):
        """leaf, root, intermediate: exit 1, "chain out of order"; the same
        leaf with leaf, intermediate is OK."""
        path = self.write("chain.yaml", self.c.chain_bad, self.c.chained_key)
        self.assert_located(path, run_check(path), self.c.chain_bad, "out of order")
        path = self.write("chain-ok.yaml", self.c.chained, self.c.chained_key)
        p = run_check(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_unreadable_key(self):
        """A key path that does not exist: exit 1, "cannot read key"."""
        missing = os.path.join(self.tmp, "no-such.key")
        path = self.write("nokey.yaml", self.c.a_ecdsa, missing)
        self.assert_located(path, run_check(path), missing, "cannot read key")

    def test_expiring_soon_warns(self):
        """A certificate that expires in 10 days: exit 0 ("configuration
        OK") and a warning on stderr naming it and its expiry."""
        path = self.write("soon.yaml", self.c.soon, self.c.soon_key)
        p = run_check(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("configuration OK", p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"%s:%d:\d+: certificate %s expires on .*\(in (9|10) days\)"
                         % (re.escape(path), CERT_LINE, re.escape(self.c.soon)))

    def test_reload_with_bad_certificate(self):
        """`portcullis reload` after the certificate was replaced by an expired
        one: exit 1 with the located error; the old generation keeps serving
        TLS with the old certificate."""
        web = h.Backend("web1")
        self.addCleanup(web.stop)
        port = h.free_port()
        path = self.write("reload.yaml", self.c.a_ecdsa, self.c.a_ecdsa_key, port=port,
                          bport=web.port)
        with open(path) as f:
            pc = h.Portcullis(f.read(), tmp=self.tmp, listen=[("127.0.0.1", port)], workers=1)
        pc.error_log_path = os.path.join(self.tmp, "error.log")
        start(pc)
        self.addCleanup(pc.stop)
        self.assertEqual(https(port, "/before").status, 200)
        workers = pc.workers()
        self.write("reload.yaml", self.c.expired, self.c.expired_key, port=port, bport=web.port)
        with open(path) as f:
            pc.write_config(f.read())
        rc, out, err = ops.ctl(pc, "reload", config_path=pc.config_path)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r"%s:%d:\d+: certificate %s expired"
                         % (re.escape(pc.config_path), CERT_LINE, re.escape(self.c.expired)))
        self.assertEqual(pc.workers(), workers)
        r = https(port, "/after")
        self.assertEqual((r.rc, r.status), (0, 200), r.stderr)
        rc, out = s_client(port, "-servername", "a.example.test")
        self.assertEqual(served_cert(out), tlscerts.fingerprint(self.c.a_ecdsa))


# ---------------------------------------------------------------------------
# reloads under TLS keep-alive load
# ---------------------------------------------------------------------------

class TlsReloadUnderLoadTest(unittest.TestCase):
    """A TLS listener (ECDSA and RSA) in front of nginx, 2 workers."""

    def setUp(self):
        self.c = certs()
        self.tmp = h.make_tmpdir()
        self.ngx = h.Nginx(self.tmp)
        self.addCleanup(self.ngx.stop)
        self.port = h.free_port()
        self.pc = start(h.Portcullis(self.config(0), tmp=self.tmp))
        self.addCleanup(self.pc.stop)
        self.url = "https://127.0.0.1:%d/" % self.port

    def config(self, i):
        c = self.c
        routes = [{"path_prefix": "/x%d" % (i % 2), "backend": "ngx"},
                  {"path_prefix": "/", "backend": "ngx"}]
        listeners = [{"name": "https", "bind": "127.0.0.1:%d" % self.port,
                      "tls": tls_block((c.a_ecdsa, c.a_ecdsa_key), (c.a_rsa, c.a_rsa_key)),
                      "routes": routes}]
        return h.base_config(self.tmp, listeners, {"ngx": h.backend_block(self.ngx.address)},
                             workers=2)

    def save_session(self, ver):
        sess = os.path.join(self.tmp, "sess" + ver)
        rc, out = s_client(self.port, ver, "-servername", "a.example.test", "-sess_out", sess,
                           "-ign_eof", data=http_get())
        self.assertIn("HTTP/1.1 200", out)
        return sess

    def assert_resumed(self, ver, sess, when):
        rc, out = s_client(self.port, ver, "-servername", "a.example.test", "-sess_in", sess,
                           "-ign_eof", data=http_get())
        self.assertIn("HTTP/1.1 200", out)
        self.assertEqual(set(session_lines(out)), {("Reused", "TLSv1.%s" % ver[-1])},
                         "%s, %s\n%s" % (when, ver, out[-2000:]))

    def test_wrk_https_with_reloads(self):
        """wrk over https (64 keep-alive connections, and 4 with a new TLS
        handshake per request, 8 s) while `portcullis reload` runs 5 times:
        every reload exits 0, no failed request."""
        # --timeout 15s: a request counts as failed when it is lost, not when a
        # machine shared with other ASan builds is slow (a run under a load
        # average of 11 on 2 CPUs had an average latency of 1.5 s)
        keep = ops.Wrk(self.tmp, self.url, threads=2, conns=64, duration=8, timeout=15)
        fresh = ops.Wrk(self.tmp, self.url, threads=1, conns=4, duration=8, close=True,
                        timeout=15)
        reloads = []
        time.sleep(1.0)
        for i in range(1, 6):
            self.pc.write_config(self.config(i))
            reloads.append(ops.ctl(self.pc, "reload", timeout=45))
            time.sleep(1.0)
        rk, rf = keep.wait(), fresh.wait()
        sys.stderr.write("wrk over https, keep-alive:\n%s\nnew connections:\n%s\n"
                         % (keep.out, fresh.out))
        self.assertEqual([r[0] for r in reloads], [0] * 5, reloads)
        self.assertGreater(rk["lua_ok"] or 0, 100, keep.out)
        self.assertEqual(ops.failures(rk), 0, keep.out)
        self.assertGreater(rf["lua_ok"] or 0, 10, fresh.out)
        self.assertEqual(ops.failures(rf), 0, fresh.out)

    def test_upgrade_keeps_sessions(self):
        """`portcullis upgrade` (a new master from the binary) during a wrk
        load over https: no failed request, and TLS 1.2 and 1.3 sessions saved
        before it are resumed by the new master's workers (the ticket keys
        live in the shared zone the new master adopts)."""
        pc = self.pc
        self.assertIsNotNone(pc.wait_log(r"generation 1 serving", 15), pc.describe())
        sessions = {ver: self.save_session(ver) for ver in ("-tls1_2", "-tls1_3")}
        keep = ops.Wrk(self.tmp, self.url, threads=1, conns=32, duration=5, timeout=15)
        time.sleep(1.0)
        old = pc.pid
        rc, out, err = ops.ctl(pc, "upgrade")
        pidfile = os.path.join(self.tmp, "pc.pid")
        new = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = ops.read_pid(pidfile, 1)
            if pid and pid != old:
                new = pid
                ops.adopt_master(pid)
                self.addCleanup(ops.stop_master, pid)
                break
            time.sleep(0.05)
        self.assertEqual(rc, 0, (out, err, pc.describe()))
        self.assertIsNotNone(new, pc.describe())
        self.assertEqual(pc.wait_exit(15), 0, "old master did not exit:\n" + pc.describe())
        rk = keep.wait()
        sys.stderr.write("wrk over https across the upgrade:\n%s\n" % keep.out)
        self.assertEqual(ops.failures(rk), 0, keep.out)
        for ver, sess in sessions.items():
            self.assert_resumed(ver, sess, "after the upgrade")


if __name__ == "__main__":
    h.main()
