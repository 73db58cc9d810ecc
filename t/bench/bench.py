#!/usr/bin/python3
"""t/bench/bench.py: the benchmark harness behind tools/bench (issue #6).

One origin (nginx serving /12, /64k and /10m from a temp dir, access log
off) and three proxies in front of it with the same number of workers and
keep-alive to the origin: portcullis, nginx and HAProxy.  Everything runs on
127.0.0.1 with distinct ports; every load is bounded in time.  The proxies
are alternated run by run (A B C A B C ...) and every figure is reported as
the median over the runs, with the medians of the per-run ratios
portcullis/nginx and portcullis/haproxy.

--acl (issue #12) runs portcullis alone instead, with access control off
and on (a deny list file of a million random prefixes on the listener, the
same on the route, a rate limit that is never reached), alternated the same
way, and reports on/off per figure, plus instructions per request under
callgrind, which a shared host's CPU noise does not hide.

Progress goes to stderr; the Markdown report goes to stdout (and to -o FILE).
Every process started here runs in its own session and is killed at exit,
on Ctrl-C, on SIGTERM/SIGHUP and on failure.  Run it through tools/bench,
which installs the tools and builds portcullis first.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import resource
import select
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
WRK_LUA = os.path.join(HERE, "wrk.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOFILE = 200000          # RLIMIT_NOFILE for us and every child (inherited)
PROXIES = ("portcullis", "nginx", "haproxy")


def which(name, *fallbacks):
    p = shutil.which(name)
    if p:
        return p
    for f in fallbacks:
        if os.access(f, os.X_OK):
            return f
    return None


NGINX = which("nginx", "/usr/sbin/nginx")
HAPROXY = which("haproxy", "/usr/sbin/haproxy")
WRK = which("wrk", "/usr/bin/wrk")
STRACE = which("strace", "/usr/bin/strace")
VALGRIND = which("valgrind", "/usr/bin/valgrind")
CG_CONTROL = which("callgrind_control", "/usr/bin/callgrind_control")
CG_ANNOTATE = which("callgrind_annotate", "/usr/bin/callgrind_annotate")
PERF = which("perf", "/usr/bin/perf")
# --reuseport: portcullis and the nginx proxy get one SO_REUSEPORT listening
# socket per worker (HAProxy 2.6 has no per-thread sockets)
REUSEPORT = False
# --tls: {"cert", "key", "pem" (cert+key, for HAProxy)} of the certificate
# every proxy's listener serves; None for plain listeners
TLS = None
TLSLOAD_C = os.path.join(HERE, "tlsload.c")
# TLS 1.2 cipher list of all three proxies (portcullis's default) and their
# key exchange groups; TLS 1.3 suites are OpenSSL's defaults everywhere
TLS_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
               "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
TLS_GROUPS = "X25519:P-256:P-384"
# --acl: the deny list file (made at start by make_acl_list) and the rate
# limit of the "rate" variant: the schema's maxima, never reached by one
# client at loopback speed, so every request pays the bucket and none is 429
ACL_LIST = None
ACL_RATE = 1000000
ACL_SEED = 12
# a /32 in the list that the harness connects from to check the list is in
# force (127.0.0.1, wrk's source, is covered by no entry)
ACL_SENTINEL = "127.0.0.2"


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# processes: every child is a session leader; cleanup kills whole sessions
# ---------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_started = []            # (Popen, starttime) of every session we created
_cleaning = False


def _child_setup():
    # between fork and exec: die with the harness even if it is SIGKILLed
    _libc.prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG


def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def spawn(args, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(args, start_new_session=True, preexec_fn=_child_setup, **kw)
    try:
        start = int(proc_stat(p.pid)[19])
    except OSError:
        start = 0
    _started.append((p, start))
    return p


def session_members(sid, min_start):
    """Live pids in session sid that started no earlier than its leader."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = proc_stat(int(d))
        except (OSError, ValueError, IndexError):
            continue
        if int(f[3]) == sid and int(f[19]) >= min_start and f[0] != "Z":
            out.append(int(d))
    return out


def stop_session(p, start, sig=signal.SIGTERM, grace=5.0):
    """Signal p's session, wait for the leader, then SIGKILL stragglers."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except OSError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    # workers of a master (nginx workers have no parent-death signal)
    deadline = time.monotonic() + grace
    while True:
        left = session_members(p.pid, start)
        if not left:
            return
        if time.monotonic() > deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            return
        time.sleep(0.05)


def cleanup_all():
    global _cleaning
    if _cleaning:
        return
    _cleaning = True
    for p, start in reversed(_started):
        stop_session(p, start, grace=3.0)
    _started.clear()
    _cleaning = False


def forget(p):
    for i, (q, _) in enumerate(_started):
        if q is p:
            del _started[i]
            return


def _on_signal(signum, frame):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    raise KeyboardInterrupt("signal %d" % signum)


def children(pid):
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return sorted(set(out))


def tree(pid):
    out = [pid]
    i = 0
    while i < len(out):
        out.extend(children(out[i]))
        i += 1
    return out


def cpu_ticks(pids):
    """(user, system) time, with reaped children, summed over pids, in ticks."""
    user = system = 0
    for pid in pids:
        try:
            f = proc_stat(pid)
        except OSError:
            continue
        user += int(f[11]) + int(f[13])
        system += int(f[12]) + int(f[14])
    return user, system


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        s = socket.socket()
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


def http_get(port, path, timeout=5.0, tls=False):
    """One HTTP/1.1 GET with Connection: close; returns (status, body length)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            try:
                d = s.recv(1 << 20)
            except ssl.SSLEOFError:
                d = b""
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, len(body)


def run_out(args, timeout=30):
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "(%s)" % e


# ---------------------------------------------------------------------------
# origin and proxies
# ---------------------------------------------------------------------------

NGINX_COMMON = """
daemon off;
master_process on;
user nobody nogroup;
worker_rlimit_nofile %(nofile)d;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections %(wconn)d; }
"""

NGINX_HTTP_COMMON = """
    access_log off;
    client_body_temp_path %(d)s/tmp-body;
    proxy_temp_path %(d)s/tmp-proxy;
    fastcgi_temp_path %(d)s/tmp-fastcgi;
    uwsgi_temp_path %(d)s/tmp-uwsgi;
    scgi_temp_path %(d)s/tmp-scgi;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    tcp_nodelay on;
"""


class Service:
    name = "?"

    def __init__(self, tmp, name):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        self.start_time = 0
        self.start_timeout = 15.0     # seconds to listen and have its workers

    def _start(self, args, workers=None):
        errpath = os.path.join(self.dir, "stderr.log")
        self.errf = open(errpath, "ab")
        self.proc = spawn(args, stdout=self.errf, stderr=subprocess.STDOUT, cwd=self.dir)
        self.start_time = _started[-1][1]
        if not wait_port(self.port, self.proc, self.start_timeout):
            self.stop()
            with open(errpath, errors="replace") as f:
                raise BenchError("%s did not start:\n%s" % (self.name, f.read()[-3000:]))
        if workers:
            deadline = time.monotonic() + self.start_timeout
            while len(self.worker_pids()) < workers:
                if time.monotonic() > deadline:
                    raise BenchError("%s: only %d of %d workers" %
                                     (self.name, len(self.worker_pids()), workers))
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            stop_session(self.proc, self.start_time)
            forget(self.proc)
            self.proc = None
            self.errf.close()

    def pids(self):
        """Every process of the proxy (master and workers)."""
        return tree(self.proc.pid)

    def worker_pids(self):
        return children(self.proc.pid)


class Origin(Service):
    name = "origin"
    SIZES = {"/12": 12, "/64k": 64 * 1024, "/10m": 10 * 1024 * 1024}

    def start(self, workers):
        www = os.path.join(self.dir, "www")
        os.makedirs(www, exist_ok=True)
        os.chmod(www, 0o755)
        rnd = os.urandom(1 << 20)
        for path, size in self.SIZES.items():
            with open(os.path.join(www, path[1:]), "wb") as f:
                if size == 12:
                    f.write(b"hello world\n")
                else:
                    for i in range(0, size, len(rnd)):
                        f.write(rnd[:min(len(rnd), size - i)])
            os.chmod(os.path.join(www, path[1:]), 0o644)
        conf = os.path.join(self.dir, "nginx.conf")
        v = {"d": self.dir, "nofile": NOFILE, "wconn": min(30000, NOFILE - 100), "port": self.port,
             "workers": workers}
        with open(conf, "w") as f:
            f.write("worker_processes %(workers)s;\n" % v + NGINX_COMMON % v + "http {\n" +
                    NGINX_HTTP_COMMON % v + """
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16 inactive=1h;
    open_file_cache_valid 1h;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        root %(d)s/www;
        location / { }
    }
}
""" % v)
        self._start([NGINX, "-p", self.dir, "-c", conf])
        for path, size in self.SIZES.items():
            st, n = http_get(self.port, path)
            if st != 200 or n != size:
                raise BenchError("origin: GET %s gave %d with %d bytes" % (path, st, n))


class Portcullis(Service):
    name = "portcullis"

    def __init__(self, tmp, binary, origin_port, workers, user="nobody", group="nogroup",
                 acl=None):
        # acl (--acl): None, or "ldeny" (ACL_LIST as the listener's deny),
        # "rdeny" (as the route's deny) or "rate" (a never-reached rate limit)
        super().__init__(tmp, "portcullis" if acl is None else "portcullis-" + acl)
        self.acl = acl
        if acl is not None:
            self.name = "portcullis-" + acl
        self.bin = binary
        self.workers = workers
        self.conf = os.path.join(self.dir, "portcullis.yaml")
        with open(self.conf, "w") as f:
            f.write("""# generated by tools/bench
workers: %(workers)d
user: %(user)s
group: %(group)s
allow_root_workers: %(root)s
pid_file: %(d)s/portcullis.pid
control_socket: %(d)s/portcullis.sock
shutdown_timeout: 2s
log:
  error: { path: %(d)s/error.log, level: warn }
defaults:
  keepalive_timeout: 75s
listeners:
  - name: bench
    bind: 127.0.0.1:%(port)d
    reuseport: %(reuseport)s
%(tls)s%(lacl)s    routes:
      - path_prefix: /
        backend: origin
%(racl)sbackends:
  origin:
    keepalive: 64
    servers:
      - address: 127.0.0.1:%(oport)d
""" % {"workers": workers, "d": self.dir, "port": self.port, "oport": origin_port,
                "user": user, "group": group, "reuseport": "true" if REUSEPORT else "false",
                "root": "true" if user == "root" else "false",
                "lacl": {"ldeny": '    deny: [ "file:%s" ]\n' % ACL_LIST,
                         "rate": "    rate_limit: { requests_per_second: %d, burst: %d }\n"
                                 % (ACL_RATE, ACL_RATE)}.get(acl, ""),
                "racl": '        deny: [ "file:%s" ]\n' % ACL_LIST if acl == "rdeny" else "",
                "tls": ("    tls:\n      certificates: [ { cert: %s, key: %s } ]\n"
                        % (TLS["cert"], TLS["key"])) if TLS else ""})
        t0 = time.monotonic()
        out = subprocess.run([self.bin, "-t", "-c", self.conf], capture_output=True,
                             text=True, timeout=30)
        self.check_s = time.monotonic() - t0     # wall time of portcullis -t
        if out.returncode != 0:
            raise BenchError("portcullis -t rejects the generated config:\n%s%s"
                             % (out.stdout, out.stderr))

    def start(self, prefix=()):
        self._start(list(prefix) + [self.bin, "-c", self.conf], self.workers)


class NginxProxy(Service):
    name = "nginx"

    def __init__(self, tmp, origin_port, workers):
        super().__init__(tmp, "nginx-proxy")
        self.workers = workers
        self.conf = os.path.join(self.dir, "nginx.conf")
        v = {"d": self.dir, "nofile": NOFILE, "wconn": min(30000, NOFILE - 100), "port": self.port,
             "oport": origin_port, "workers": workers,
             "reuseport": " reuseport" if REUSEPORT else "",
             "ssl": " ssl" if TLS else "", "ssl_conf": ""}
        if TLS:
            # TLS 1.2 and 1.3 (nginx 1.22's default has no 1.3), tickets on
            # with OpenSSL's per-context key (one master, shared by the
            # workers), session cache off like portcullis's
            v["ssl_conf"] = """
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers %s;
        ssl_ecdh_curve %s;
        ssl_session_tickets on;
        ssl_session_cache off;""" % (TLS["cert"], TLS["key"], TLS_CIPHERS,
                                         TLS_GROUPS.replace("P-256", "prime256v1")
                                         .replace("P-384", "secp384r1"))
        with open(self.conf, "w") as f:
            f.write("worker_processes %(workers)d;\n" % v + NGINX_COMMON % v + "http {\n" +
                    NGINX_HTTP_COMMON % v + """
    upstream origin {
        server 127.0.0.1:%(oport)d;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:%(port)d%(ssl)s backlog=4096%(reuseport)s;%(ssl_conf)s
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # the same forwarding work portcullis does by default
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_hide_header X-Powered-By;
            # stream through memory like the others: no temp files, and
            # 16 KiB buffers (portcullis: 16k+4k, HAProxy: tune.bufsize 16k)
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
            proxy_busy_buffers_size 32k;
            proxy_max_temp_file_size 0;
        }
    }
}
""" % v)

    def start(self):
        self._start([NGINX, "-p", self.dir, "-c", self.conf], self.workers)


class HAProxy(Service):
    name = "haproxy"

    def __init__(self, tmp, origin_port, workers):
        super().__init__(tmp, "haproxy")
        self.workers = workers
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write("""# generated by tools/bench
global
    nbthread %(workers)d
    maxconn %(maxconn)d
    # in a container RLIMIT_NOFILE may stay below 2 * maxconn: run anyway
    no strict-limits
    pidfile %(d)s/haproxy.pid

defaults
    mode http
    maxconn %(maxconn)d
    option http-keep-alive
    timeout connect 5s
    timeout client 75s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 75s

frontend bench
    bind 127.0.0.1:%(port)d%(ssl)s
    # the same forwarding work portcullis does by default
    option forwardfor
    http-request set-header X-Forwarded-Proto %(scheme)s
    http-request set-header X-Forwarded-Host %%[req.hdr(host)]
    http-response del-header Server
    http-response del-header X-Powered-By
    default_backend origin

backend origin
    # reuse idle server connections for any request, like nginx and portcullis
    http-reuse always
    server origin 127.0.0.1:%(oport)d
""" % {"workers": workers, "d": self.dir, "port": self.port, "oport": origin_port,
                "maxconn": min(40000, max(NOFILE // 2, 12000)),
                "scheme": "https" if TLS else "http",
                # TLS 1.2 (HAProxy 2.6's default minimum) and 1.3; tune.ssl
                # defaults (its session cache of 20000 and tickets on)
                "ssl": (" ssl crt %s alpn http/1.1 ciphers %s curves %s"
                        % (TLS["pem"], TLS_CIPHERS, TLS_GROUPS)) if TLS else ""})
        out = subprocess.run([HAPROXY, "-c", "-f", self.conf], capture_output=True,
                             text=True, timeout=30)
        if out.returncode != 0:
            raise BenchError("haproxy -c rejects the generated config:\n%s%s"
                             % (out.stdout, out.stderr))

    def start(self):
        self._start([HAPROXY, "-db", "-f", self.conf])
        # one process, nbthread threads
        deadline = time.monotonic() + 15
        while len(os.listdir("/proc/%d/task" % self.proc.pid)) < self.workers:
            if time.monotonic() > deadline:
                raise BenchError("haproxy: fewer threads than nbthread")
            time.sleep(0.05)

    def worker_pids(self):
        return [self.proc.pid]


# ---------------------------------------------------------------------------
# load generators
# ---------------------------------------------------------------------------

RESULT_RE = re.compile(r"^BENCH-RESULT (.*)$", re.M)


def wrk(port, path, conns, threads, duration, headers=(), limit=None, timeout_s=None):
    args = [WRK, "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency",
            "--timeout", "5s", "-s", WRK_LUA]
    for h in headers:
        args += ["-H", h]
    args.append("%s://127.0.0.1:%d%s" % ("https" if TLS else "http", port, path))
    env = dict(os.environ)
    env.pop("BENCH_LIMIT", None)
    if limit:
        env["BENCH_LIMIT"] = str(limit)
    p = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    timeout_s = timeout_s or duration + 60
    early = b""
    try:
        if limit:
            # wrk.thread:stop() ends the thread, but wrk's main thread still
            # sleeps for -d: on the script's marker, SIGINT makes it report now
            deadline = time.monotonic() + timeout_s
            while b"BENCH-LIMIT-REACHED" not in early and time.monotonic() < deadline:
                r, _, _ = select.select([p.stdout], [], [], 0.5)
                if r:
                    chunk = os.read(p.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    early += chunk
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=timeout_s)
        out = (early + out).decode(errors="replace")
    except subprocess.TimeoutExpired:
        stop_session(p, 0, sig=signal.SIGKILL)
        forget(p)
        raise BenchError("wrk did not finish: %s" % " ".join(args))
    forget(p)
    m = RESULT_RE.search(out)
    if p.returncode != 0 or not m:
        raise BenchError("wrk failed (rc %s): %s\n%s" % (p.returncode, " ".join(args), out))
    res = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    res["errors"] = sum(v for k, v in res.items() if k.startswith("err_"))
    res["cmd"] = " ".join(args[:-1] + [path])
    return res


TLSLOAD_RE = re.compile(r"^TLSLOAD-RESULT (.*)$", re.M)
TLSLOAD = None           # the built t/bench/tlsload.c (--tls)


def tls_setup(tmp):
    """The certificate every proxy serves (self-signed ECDSA P-256, made with
    the openssl CLI) and the tlsload client, built into tmp."""
    global TLS, TLSLOAD
    d = os.path.join(tmp, "tls")
    os.makedirs(d)
    os.chmod(d, 0o755)
    cert, key, pem = (os.path.join(d, n) for n in ("cert.pem", "key.pem", "combined.pem"))
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "30", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError("openssl req failed:\n%s" % r.stderr)
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    for fn in (cert, key, pem):
        os.chmod(fn, 0o644)     # nginx and HAProxy read them as root anyway
    TLS = {"cert": cert, "key": key, "pem": pem}
    TLSLOAD = os.path.join(d, "tlsload")
    cc = which("cc", "/usr/bin/cc", "/usr/bin/gcc")
    if not cc:
        raise BenchError("no C compiler for t/bench/tlsload.c")
    r = subprocess.run([cc, "-O2", "-o", TLSLOAD, TLSLOAD_C, "-lssl", "-lcrypto"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise BenchError("building tlsload failed (libssl-dev?):\n%s" % r.stderr)


def tlsload(port, procs, duration, reuse=False, path="/12"):
    """A new TLS connection per request (full handshakes, or resumed ones
    with reuse) from procs processes for duration seconds."""
    args = [TLSLOAD, "-p", str(port), "-P", path, "-n", str(procs), "-d", str(duration)]
    if reuse:
        args.append("-r")
    p = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        stop_session(p, 0, sig=signal.SIGKILL)
        forget(p)
        raise BenchError("tlsload did not finish: %s" % " ".join(args))
    forget(p)
    out = out.decode(errors="replace")
    m = TLSLOAD_RE.search(out)
    if p.returncode != 0 or not m:
        raise BenchError("tlsload failed (rc %s): %s\n%s" % (p.returncode, " ".join(args), out))
    res = {}
    for kv in m.group(1).split():
        k, v = kv.split("=", 1)
        res[k] = int(v) if v.isdigit() else v
    return res


def open_idle_tls(port, n, timeout=300.0):
    """tlsload -i: n TLS keep-alive connections, one full handshake and one
    GET /12 each, held open; returns (process, failed).  Close with
    close_idle_tls."""
    p = spawn([TLSLOAD, "-p", str(port), "-i", str(n)], stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    buf = b""
    while b"TLSLOAD-IDLE-READY" not in buf or not buf.endswith(b"\n"):
        r, _, _ = select.select([p.stdout], [], [], 1.0)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
        if time.monotonic() > deadline:
            close_idle_tls(p)
            raise BenchError("TLS idle connections: not open after %ds" % timeout)
    m = re.search(rb"TLSLOAD-IDLE-READY open=(\d+) failed=(\d+)", buf)
    if not m or int(m.group(1)) < n:
        close_idle_tls(p)
        raise BenchError("TLS idle connections: %s" % buf.decode(errors="replace")[-500:])
    return p, int(m.group(2))


def close_idle_tls(p):
    stop_session(p, 0, sig=signal.SIGKILL)
    forget(p)


def open_idle(port, n, path="/12", inflight=64, timeout=120.0):
    """Open n keep-alive connections, one GET each, read the answers, and
    return the sockets, still open.  At most `inflight` are in progress at
    a time, so the proxies see no burst beyond the warm-up's concurrency."""
    req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode()
    sel = selectors.DefaultSelector()
    done, failed = [], 0
    opened = busy = 0
    deadline = time.monotonic() + timeout
    try:
        while len(done) < n:
            if time.monotonic() > deadline:
                raise BenchError("idle connections: only %d of %d after %ds"
                                 % (len(done), n, timeout))
            while opened < n and busy < inflight:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                sel.register(s, selectors.EVENT_WRITE, {"st": "conn", "buf": b""})
                opened += 1
                busy += 1
            for key, _ in sel.select(1.0):
                s, d = key.fileobj, key.data
                ok = True
                if d["st"] == "conn":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        ok = False
                    else:
                        try:
                            s.send(req)
                            d["st"] = "read"
                            sel.modify(s, selectors.EVENT_READ, d)
                        except OSError:
                            ok = False
                else:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        ok = False
                    else:
                        d["buf"] += chunk
                        head, sep, body = d["buf"].partition(b"\r\n\r\n")
                        if sep:
                            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                            if m and len(body) >= int(m.group(1)):
                                if re.search(rb"\r\nconnection:\s*close", head, re.I):
                                    ok = False
                                else:
                                    sel.unregister(s)
                                    done.append(s)
                                    busy -= 1
                                    continue
                if not ok:
                    sel.unregister(s)
                    s.close()
                    busy -= 1
                    opened -= 1
                    failed += 1
                    if failed > n // 10 + 100:
                        raise BenchError("idle connections: %d failures" % failed)
    except BaseException:
        close_idle(done + [k.fileobj for k in list(sel.get_map().values())])
        raise
    finally:
        sel.close()
    return done, failed


def close_idle(socks):
    lin = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")   # linger on, 0 s: RST
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, lin)
        except OSError:
            pass
        s.close()


def still_open(socks):
    """How many of socks the proxy has not closed (not readable = no EOF)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(0.2))
    sel.close()
    return len(socks) - closed


def strace_count(pids, outfile, errfile, load):
    """Run load() with strace -c -f attached to pids; return (total calls, by name)."""
    args = [STRACE, "-c", "-f", "-o", outfile]
    for p in pids:
        args += ["-p", str(p)]
    with open(errfile, "wb") as ef:
        sp = spawn(args, stdout=subprocess.DEVNULL, stderr=ef)
    try:
        deadline = time.monotonic() + 15
        while True:
            with open(errfile, errors="replace") as f:
                if f.read().count(" attached") >= len(pids):
                    break
            if sp.poll() is not None or time.monotonic() > deadline:
                with open(errfile, errors="replace") as f:
                    raise BenchError("strace did not attach: %s" % f.read()[-2000:])
            time.sleep(0.05)
        time.sleep(0.2)
        res = load()
    finally:
        if sp.poll() is None:
            sp.send_signal(signal.SIGINT)
        try:
            sp.wait(30)
        except subprocess.TimeoutExpired:
            sp.kill()
            sp.wait(5)
        forget(sp)
    total, by = 0, {}
    with open(outfile) as f:
        for line in f:
            fl = line.split()
            if len(fl) in (5, 6) and re.match(r"^[\d.]+$", fl[0]) and fl[3].isdigit():
                if fl[-1] == "total":
                    total = int(fl[3])
                else:
                    by[fl[-1]] = int(fl[3])
    if total == 0:
        total = sum(by.values())
    return total, by, res


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------

# (key, label, unit); the labels are formatted with the options
FIGURES = [
    ("ka12_rps", "12 B keep-alive (wrk -c{c}): requests/s", "req/s"),
    ("ka12_p50", "12 B keep-alive: p50 latency", "ms"),
    ("ka12_p99", "12 B keep-alive: p99 latency", "ms"),
    ("ka12_cpu", "12 B keep-alive: proxy CPU per request", "µs"),
    ("ka12_user", "12 B keep-alive: of which user space", "µs"),
    ("close12_rps", "12 B new connection per request: requests/s", "req/s"),
    ("close12_p50", "12 B new connection per request: p50 latency", "ms"),
    ("close12_p99", "12 B new connection per request: p99 latency", "ms"),
    ("close12_cpu", "12 B new connection per request: proxy CPU per request", "µs"),
    ("ka64k_rps", "64 KiB keep-alive (wrk -c{c}): requests/s", "req/s"),
    ("ka64k_p50", "64 KiB keep-alive: p50 latency", "ms"),
    ("ka64k_p99", "64 KiB keep-alive: p99 latency", "ms"),
    ("ka64k_cpu", "64 KiB keep-alive: proxy CPU per request", "µs"),
    ("sys_req", "syscalls per keep-alive request ({n} req, c16, strace -c -f)", "calls"),
    ("sys_close", "syscalls per new-connection request ({nc} req, c16, strace -c -f)",
     "calls"),
    ("rss_conn", "RSS per idle keep-alive connection ({idle} conns)", "bytes"),
    ("big_cpu", "10 MiB responses (wrk -c{bc}): proxy CPU per GiB", "ms"),
    ("big_user", "10 MiB responses: of which user space", "ms"),
    ("big_gibs", "10 MiB responses: throughput", "GiB/s"),
    ("tlsnew_cpu", "TLS full handshake + 12 B request, new connection each (tlsload, "
     "{tp} procs): proxy CPU per connection", "µs"),
    ("tlsnew_user", "TLS full handshake: of which user space", "µs"),
    ("tlsnew_cps", "TLS full handshake: connections/s (client-bound)", "conn/s"),
    ("tlsres_cpu", "TLS resumed handshake (ticket) + 12 B request, new connection each: "
     "proxy CPU per connection", "µs"),
    ("tlsres_user", "TLS resumed handshake: of which user space", "µs"),
    ("tlsres_cps", "TLS resumed handshake: connections/s (client-bound)", "conn/s"),
    ("tlska_rps", "TLS 12 B keep-alive (wrk -c{c}): requests/s", "req/s"),
    ("tlska_p99", "TLS 12 B keep-alive: p99 latency", "ms"),
    ("tlska_cpu", "TLS 12 B keep-alive: proxy CPU per request", "µs"),
    ("tlska_user", "TLS 12 B keep-alive: of which user space", "µs"),
    ("tlsbig_cpu", "TLS 10 MiB responses (wrk -c{bc}): proxy CPU per GiB", "ms"),
    ("tlsbig_user", "TLS 10 MiB responses: of which user space", "ms"),
    ("tlsbig_gibs", "TLS 10 MiB responses: throughput", "GiB/s"),
    ("tlsrss_conn", "RSS per idle TLS keep-alive connection ({ti} conns)", "bytes"),
]

TLS_FIGURES = ("tls_new", "tls_resume", "tls_ka12", "tls_big", "tls_rss")

SCENARIOS = [
    # key, path, extra headers, connections option name
    ("ka12", "/12", ()),
    ("close12", "/12", ("Connection: close",)),
    ("ka64k", "/64k", ()),
]


class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.results = {}      # workers -> proxy -> key -> [per-run values]
        self.notes = []
        self.syscalls = {}     # ka|close -> workers -> proxy -> list of {name: per request}
        self.tls_params = {}   # proxy -> {"version cipher group"} seen by tlsload

    def note(self, msg):
        log("note: " + msg)
        self.notes.append(msg)

    def record(self, w, proxy, key, value):
        self.results.setdefault(w, {}).setdefault(proxy, {}).setdefault(key, []).append(value)

    def check_errors(self, w, name, what, res):
        if res["errors"]:
            self.note("workers=%d %s %s: %d wrk errors (connect %d, read %d, write %d, "
                      "non-2xx %d, timeout %d) of %d requests" %
                      (w, name, what, res["errors"], res["err_connect"], res["err_read"],
                       res["err_write"], res["err_status"], res["err_timeout"],
                       res["requests"]))

    def measured_wrk(self, w, px, what, path, conns, headers=()):
        pids = px.pids()
        t0 = cpu_ticks(pids)
        res = wrk(px.port, path, conns, min(self.a.wrk_threads, conns), self.a.duration,
                  headers)
        t1 = cpu_ticks(pids)
        if sorted(px.pids()) != sorted(pids):
            self.note("workers=%d %s %s: the process set changed during the run (a worker "
                      "died?)" % (w, px.name, what))
        self.check_errors(w, px.name, what, res)
        res["cpu_s"] = (t1[0] + t1[1] - t0[0] - t0[1]) / CLK_TCK
        res["user_s"] = (t1[0] - t0[0]) / CLK_TCK
        return res

    def warm(self, px):
        wrk(px.port, "/12", 64, 1, 1)

    def run_idle(self, w, px):
        self.warm(px)
        time.sleep(0.5)
        pids = px.pids()
        before = rss_bytes(pids)
        socks, failed = open_idle(px.port, self.a.idle_conns)
        try:
            time.sleep(1.0)
            after = rss_bytes(px.pids())
            alive = still_open(socks)
        finally:
            close_idle(socks)
        if failed:
            self.note("workers=%d %s idle test: %d connection attempts failed and were "
                      "retried" % (w, px.name, failed))
        if alive < len(socks):
            self.note("workers=%d %s idle test: the proxy closed %d of %d idle connections "
                      "before the RSS was read" % (w, px.name, len(socks) - alive, len(socks)))
        per = (after - before) / len(socks)
        log("  %-10s idle: RSS %.1f -> %.1f MiB, %.0f B/conn" %
            (px.name, before / 2**20, after / 2**20, per))
        return per

    def run_idle_tls(self, w, px):
        self.warm(px)
        time.sleep(0.5)
        before = rss_bytes(px.pids())
        p, failed = open_idle_tls(px.port, self.a.tls_idle_conns)
        try:
            time.sleep(1.0)
            after = rss_bytes(px.pids())
        finally:
            close_idle_tls(p)
        if failed:
            self.note("workers=%d %s TLS idle test: %d connection attempts failed and were "
                      "retried" % (w, px.name, failed))
        per = (after - before) / self.a.tls_idle_conns
        log("  %-10s TLS idle: RSS %.1f -> %.1f MiB, %.0f B/conn" %
            (px.name, before / 2**20, after / 2**20, per))
        return per

    def run_tlsload(self, w, px, key, reuse):
        pids = px.pids()
        t0 = cpu_ticks(pids)
        res = tlsload(px.port, self.a.tls_procs, self.a.duration, reuse=reuse)
        t1 = cpu_ticks(pids)
        if sorted(px.pids()) != sorted(pids):
            self.note("workers=%d %s %s: the process set changed during the run (a worker "
                      "died?)" % (w, px.name, key))
        n = max(res["conns"], 1)
        cpu = (t1[0] + t1[1] - t0[0] - t0[1]) / CLK_TCK / n * 1e6
        self.record(w, px.name, key + "_cpu", cpu)
        self.record(w, px.name, key + "_user", (t1[0] - t0[0]) / CLK_TCK / n * 1e6)
        self.record(w, px.name, key + "_cps", res["conns"] / (res["duration_us"] / 1e6))
        want = res["conns"] if reuse else 0
        # the first connection of each client process is a full handshake
        if abs(res["reused"] - want) > self.a.tls_procs or res["errors"]:
            self.note("workers=%d %s %s: %d of %d connections resumed, %d errors" %
                      (w, px.name, key, res["reused"], res["conns"], res["errors"]))
        self.tls_params.setdefault(px.name, set()).add(
            "%s %s %s" % (res.get("version"), res.get("cipher"), res.get("group")))
        log("  %-10s %-8s %7.0f conn/s  %d of %d resumed  %7.1f µs CPU/conn" %
            (px.name, key, res["conns"] / (res["duration_us"] / 1e6), res["reused"],
             res["conns"], cpu))

    def one_tls(self, w, pxs):
        a = self.a
        if "tls_rss" in a.only:
            for px in pxs:
                self.record(w, px.name, "tlsrss_conn", self.run_idle_tls(w, px))
                time.sleep(a.pause)
        for key, reuse in (("tls_new", False), ("tls_resume", True)):
            if key in a.only:
                for px in pxs:
                    self.run_tlsload(w, px, "tlsnew" if not reuse else "tlsres", reuse)
                    time.sleep(a.pause)
        if "tls_ka12" in a.only:
            for px in pxs:
                res = self.measured_wrk(w, px, "tls_ka12", "/12", a.conns)
                n = max(res["requests"], 1)
                self.record(w, px.name, "tlska_rps", res["requests"] / (res["duration_us"] / 1e6))
                self.record(w, px.name, "tlska_p99", res["p99_us"] / 1000)
                self.record(w, px.name, "tlska_cpu", res["cpu_s"] / n * 1e6)
                self.record(w, px.name, "tlska_user", res["user_s"] / n * 1e6)
                log("  %-10s tls_ka12 %9.0f req/s  p99 %7.2f ms  %6.2f µs CPU/req" %
                    (px.name, res["requests"] / (res["duration_us"] / 1e6),
                     res["p99_us"] / 1000, res["cpu_s"] / n * 1e6))
                time.sleep(a.pause)
        if "tls_big" in a.only:
            for px in pxs:
                res = self.measured_wrk(w, px, "tls_10m", "/10m", a.big_conns)
                gib = max(res["bytes"] / 2**30, 1e-9)
                self.record(w, px.name, "tlsbig_cpu", res["cpu_s"] * 1000 / gib)
                self.record(w, px.name, "tlsbig_user", res["user_s"] * 1000 / gib)
                self.record(w, px.name, "tlsbig_gibs", gib / (res["duration_us"] / 1e6))
                log("  %-10s tls_10m  %6.2f GiB/s  %7.1f ms CPU/GiB" %
                    (px.name, gib / (res["duration_us"] / 1e6), res["cpu_s"] * 1000 / gib))
                time.sleep(a.pause)

    def run_strace(self, w, px, run, close=False):
        """Syscalls per request of the proxy's workers: keep-alive, or (close)
        a new connection per request."""
        n = self.a.strace_requests // 4 if close else self.a.strace_requests
        headers = ("Connection: close",) if close else ()
        what = "close" if close else "ka"
        base = os.path.join(self.tmp, "strace-w%d-r%d-%s-%s" % (w, run, px.name, what))
        total, by, res = strace_count(
            px.worker_pids(), base + ".txt", base + ".err",
            lambda: wrk(px.port, "/12", 16, 1, 300, headers=headers, limit=n, timeout_s=400))
        self.check_errors(w, px.name, "strace run", res)
        reqs = res["requests"]
        if reqs < n:
            self.note("workers=%d %s strace run: only %d of %d requests" % (w, px.name, reqs, n))
        per = total / max(reqs, 1)
        self.syscalls.setdefault(what, {}).setdefault(w, {}).setdefault(px.name, []).append(
            {k: v / max(reqs, 1) for k, v in by.items()})
        log("  %-10s syscalls (%s): %d for %d requests = %.2f/req" % (px.name, what, total, reqs,
                                                                       per))
        return per

    def one_workers(self, w, origin):
        a = self.a
        for run in range(a.runs):
            log("workers=%d run %d/%d" % (w, run + 1, a.runs))
            pxs = [Portcullis(self.tmp, a.bin, origin.port, w), NginxProxy(self.tmp, origin.port, w),
                   HAProxy(self.tmp, origin.port, w)]
            try:
                for px in pxs:
                    px.start()
                    st, n = http_get(px.port, "/64k", tls=TLS is not None)
                    if st != 200 or n != 65536:
                        raise BenchError("%s: GET /64k gave %d with %d bytes" % (px.name, st, n))
                self.one_tls(w, pxs)
                if "rss" in a.only:
                    for px in pxs:
                        self.record(w, px.name, "rss_conn", self.run_idle(w, px))
                        time.sleep(a.pause)
                for key, path, headers in SCENARIOS:
                    if key not in a.only:
                        continue
                    for px in pxs:
                        res = self.measured_wrk(w, px, key, path, a.conns, headers)
                        secs = res["duration_us"] / 1e6
                        rps = res["requests"] / secs
                        cpu = res["cpu_s"] / max(res["requests"], 1) * 1e6
                        self.record(w, px.name, key + "_rps", rps)
                        self.record(w, px.name, key + "_p50", res["p50_us"] / 1000)
                        self.record(w, px.name, key + "_p99", res["p99_us"] / 1000)
                        self.record(w, px.name, key + "_cpu", cpu)
                        self.record(w, px.name, key + "_user",
                                    res["user_s"] / max(res["requests"], 1) * 1e6)
                        log("  %-10s %-8s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  "
                            "%6.2f µs CPU/req" % (px.name, key, rps, res["p50_us"] / 1000,
                                                 res["p99_us"] / 1000, cpu))
                        time.sleep(a.pause)
                if "big" in a.only:
                    for px in pxs:
                        res = self.measured_wrk(w, px, "10m", "/10m", a.big_conns)
                        gib = res["bytes"] / 2**30
                        secs = res["duration_us"] / 1e6
                        self.record(w, px.name, "big_cpu", res["cpu_s"] * 1000 / max(gib, 1e-9))
                        self.record(w, px.name, "big_user",
                                    res["user_s"] * 1000 / max(gib, 1e-9))
                        self.record(w, px.name, "big_gibs", gib / secs)
                        log("  %-10s 10m      %6.2f GiB/s  %7.1f ms CPU/GiB" %
                            (px.name, gib / secs, res["cpu_s"] * 1000 / max(gib, 1e-9)))
                        time.sleep(a.pause)
                if "strace" in a.only:
                    for px in pxs:
                        self.record(w, px.name, "sys_req", self.run_strace(w, px, run))
                        time.sleep(a.pause)
                        self.record(w, px.name, "sys_close",
                                    self.run_strace(w, px, run, close=True))
                        time.sleep(a.pause)
            finally:
                for px in pxs:
                    px.stop()


# ---------------------------------------------------------------------------
# --acl: portcullis with access control on against the same without it
# ---------------------------------------------------------------------------

def make_acl_list(path, n, seed=ACL_SEED):
    """n distinct random prefixes, half IPv4 /16-/32 outside 127.0.0.0/8, half
    IPv6 /32-/128 in 2000::/3 (as t/bench/iptree_bench.c), with a fixed seed;
    the last line is ACL_SENTINEL/32.  Returns the number of lines."""
    import random
    rnd = random.Random(seed)
    seen = set()
    with open(path, "w") as f:
        f.write("# %d prefixes, random.Random(%d) (tools/bench --acl)\n" % (n, seed))
        while len(seen) < n - 1:
            if rnd.getrandbits(1):
                plen = rnd.randint(16, 32)
                a = rnd.getrandbits(32) & ~((1 << (32 - plen)) - 1)
                if a >> 24 == 127:
                    continue
                key = (4, a, plen)
                if key in seen:
                    continue
                seen.add(key)
                f.write("%d.%d.%d.%d/%d\n" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                                             a & 255, plen))
            else:
                plen = rnd.randint(32, 128)
                a = (1 << 125) | rnd.getrandbits(125)         # 2000::/3
                a &= ~((1 << (128 - plen)) - 1)
                key = (6, a, plen)
                if key in seen:
                    continue
                seen.add(key)
                f.write("%s/%d\n" % (":".join("%x" % ((a >> (112 - 16 * i)) & 0xffff)
                                              for i in range(8)), plen))
        f.write("%s/32\n" % ACL_SENTINEL)
    os.chmod(path, 0o644)
    return n


def http_get_from(src, port, path, timeout=5.0):
    """GET path from source address src; (status, body length), status 0 when
    the proxy closed the connection without an answer."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, len(body)


def smaps_rollup(pid):
    """{field: bytes} of /proc/PID/smaps_rollup."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            fl = line.split()
            if len(fl) == 3 and fl[2] == "kB":
                out[fl[0].rstrip(":")] = int(fl[1]) * 1024
    return out


# (variant, label); None is the baseline every other is compared with
ACL_VARIANTS = [
    (None, "nothing"),
    ("ldeny", "listener deny, {n} prefixes"),
    ("rdeny", "route deny, {n} prefixes"),
    ("rate", "listener rate_limit"),
]

# (key, label, unit, variants it is reported for)
ACL_FIGURES = [
    ("ka12_cpu", "12 B keep-alive (wrk -c{c}): CPU per request", "µs",
     ("ldeny", "rdeny", "rate")),
    ("ka12_user", "12 B keep-alive: of which user space", "µs", ("ldeny", "rdeny", "rate")),
    ("ka12_rps", "12 B keep-alive: requests/s", "req/s", ("ldeny", "rdeny", "rate")),
    ("close12_cpu", "12 B new connection per request (wrk -c{c}): CPU per request", "µs",
     ("ldeny",)),
    ("close12_user", "12 B new connection per request: of which user space", "µs",
     ("ldeny",)),
    ("close12_rps", "12 B new connection per request: requests/s", "req/s", ("ldeny",)),
    ("check_s", "config load (`portcullis -t -c`, wall time)", "s", ("ldeny",)),
    ("master_rss", "master RSS", "MiB", ("ldeny",)),
    ("worker_rss", "a worker's RSS", "MiB", ("ldeny",)),
    ("worker_priv", "a worker's Private_Dirty (smaps_rollup)", "MiB", ("ldeny",)),
]


class AclBench(Bench):
    def one_variant(self, w, origin, acl):
        a = self.a
        px = Portcullis(self.tmp, a.bin, origin.port, w, acl=acl)
        name = px.name
        self.record(w, name, "check_s", px.check_s)
        try:
            px.start()
            st, n = http_get(px.port, "/12")
            if st != 200 or n != 12:
                raise BenchError("%s: GET /12 gave %d with %d bytes" % (name, st, n))
            # the list is in force: its one loopback entry is refused
            if acl in ("ldeny", "rdeny"):
                st, _ = http_get_from(ACL_SENTINEL, px.port, "/12")
                want = 0 if acl == "ldeny" else 403
                if st != want:
                    raise BenchError("%s: GET /12 from %s (in the list) gave %d, not %s"
                                     % (name, ACL_SENTINEL, st, want or "a close"))
            self.warm(px)
            time.sleep(a.pause)
            for key, path, headers in SCENARIOS:
                if key not in a.only:
                    continue
                # a connection per request only where the list is checked at accept
                if key == "close12" and acl not in (None, "ldeny"):
                    continue
                res = self.measured_wrk(w, px, key, path, a.conns, headers)
                reqs = max(res["requests"], 1)
                rps = res["requests"] / (res["duration_us"] / 1e6)
                cpu = res["cpu_s"] / reqs * 1e6
                self.record(w, name, key + "_cpu", cpu)
                self.record(w, name, key + "_user", res["user_s"] / reqs * 1e6)
                self.record(w, name, key + "_rps", rps)
                self.non2xx.setdefault((w, name, key), []).append(res["err_status"])
                log("  %-18s %-8s %9.0f req/s  %6.2f µs CPU/req (user %5.2f)  non-2xx %d" %
                    (name, key, rps, cpu, res["user_s"] / reqs * 1e6, res["err_status"]))
                time.sleep(a.pause)
            if "mem" in a.only and acl in (None, "ldeny"):
                master = px.proc.pid
                workers = px.worker_pids()
                self.record(w, name, "master_rss", rss_bytes([master]) / 2**20)
                sm = [smaps_rollup(p) for p in workers]
                self.record(w, name, "worker_rss",
                            statistics.mean(x["Rss"] for x in sm) / 2**20)
                self.record(w, name, "worker_priv",
                            statistics.mean(x["Private_Dirty"] for x in sm) / 2**20)
                log("  %-18s master RSS %.1f MiB; worker RSS %.1f MiB, Private_Dirty %.1f MiB"
                    % (name, rss_bytes([master]) / 2**20, sm[0]["Rss"] / 2**20,
                       sm[0]["Private_Dirty"] / 2**20))
        finally:
            px.stop()

    def instructions(self, origin, acl):
        """Instructions per 12 B keep-alive request in a portcullis worker
        under callgrind (1 worker; wrk -t1 -c1, after a warm-up of 500):
        exact where the CPU figures are lost in a shared host's noise.  One
        connection, so that every request makes the same system calls (with
        more, how many events one epoll_wait returns varies from run to run
        and moves the count by a few hundred instructions)."""
        a = self.a
        d = os.path.join(self.tmp, "callgrind-%s" % (acl or "off"))
        os.makedirs(d, exist_ok=True)
        # user root: the worker must keep the rights on valgrind's vgdb FIFOs
        pc = Portcullis(self.tmp, a.bin, origin.port, 1, user="root", group="root", acl=acl)
        pc.start_timeout = 600.0    # the master loads the list under valgrind too
        pc.start(prefix=[VALGRIND, "--tool=callgrind", "--trace-children=yes",
                         "--callgrind-out-file=%s/callgrind.out.%%p" % d])
        try:
            wpid = pc.worker_pids()[0]
            wrk(pc.port, "/12", 1, 1, 60, limit=500)
            r = subprocess.run([CG_CONTROL, "-z", str(wpid)], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise BenchError("callgrind_control -z: %s%s" % (r.stdout, r.stderr))
            res = wrk(pc.port, "/12", 1, 1, 600, limit=a.acl_instr_requests, timeout_s=700)
        finally:
            pc.stop()
        out = os.path.join(d, "callgrind.out.%d" % wpid)
        for _ in range(100):
            if os.path.exists(out) and os.path.getsize(out) > 0:
                break
            time.sleep(0.1)
        total, rows = callgrind_top(out, 1 << 20)
        per = (total or 0) / max(res["requests"], 1)
        fns = {}
        for ir, fn, _ in rows:
            fns[fn] = fns.get(fn, 0) + ir / max(res["requests"], 1)
        self.instr_fns[acl] = fns
        log("  %-18s callgrind: %d requests, %.0f instructions/request in the worker"
            % (pc.name, res["requests"], per))
        return per

    def __init__(self, args, tmp):
        super().__init__(args, tmp)
        self.non2xx = {}       # (workers, name, key) -> [wrk err_status per run]
        self.instr = {}        # variant -> instructions per request (callgrind)
        self.instr_fns = {}    # variant -> function -> instructions per request

    def one_workers(self, w, origin):
        for run in range(self.a.runs):
            log("workers=%d run %d/%d" % (w, run + 1, self.a.runs))
            for acl, _ in ACL_VARIANTS:
                self.one_variant(w, origin, acl)


def acl_report(bench, header):
    a = bench.a
    n = "{:,}".format(a.acl_prefixes)
    lines = list(header)
    lines += ["", "| workers | with | figure | unit | off | on | on/off | on − off |",
              "|---:|---|---|---|---:|---:|---:|---:|"]
    base = "portcullis"
    for w in sorted(bench.results):
        r = bench.results[w]
        for key, label, unit, variants in ACL_FIGURES:
            off = r.get(base, {}).get(key)
            if not off:
                continue
            for acl, vlabel in ACL_VARIANTS[1:]:
                on = r.get(base + "-" + acl, {}).get(key)
                if acl not in variants or not on:
                    continue
                ratios = [x / y for x, y in zip(on, off) if y]
                diffs = [x - y for x, y in zip(on, off)]
                d = median(diffs)
                lines.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                    w, vlabel.format(n=n), label.format(c=a.conns), unit, fmt(median(off)),
                    fmt(median(on)), fmt_ratio(median(ratios)),
                    ("+" if d >= 0 else "−") + fmt(abs(d))))
    lines += ["", "Per run, off / on (run order):", ""]
    for w in sorted(bench.results):
        r = bench.results[w]
        for key in ("ka12_cpu", "ka12_user", "close12_cpu", "close12_user"):
            for acl, _ in ACL_VARIANTS[1:]:
                on = r.get(base + "-" + acl, {}).get(key)
                off = r.get(base, {}).get(key)
                if on and off:
                    lines.append("- workers=%d %s %s: %s" % (w, acl, key, ", ".join(
                        "%.2f/%.2f" % (x, y) for x, y in zip(off, on))))
    if bench.instr.get(None):
        i0 = bench.instr[None]
        # user-space ns per instruction of the baseline, from the CPU runs
        # with one worker (or the fewest workers measured)
        ns_per = None
        if bench.results:
            u = bench.results[min(bench.results)].get(base, {}).get("ka12_user")
            if u:
                ns_per = median(u) * 1000 / i0
        lines += ["", "Instructions per 12 B keep-alive request in the worker (callgrind, "
                  "1 worker, %d requests of wrk -t1 -c1 after 500 of warm-up)%s:"
                  % (a.acl_instr_requests, "; the ns column prices the difference at the "
                     "baseline's user-space time per instruction (%.3f ns, from the "
                     "workers=%d rows)" % (ns_per, min(bench.results)) if ns_per else ""),
                  "", "| with | instructions/request | on − off | ≈ ns |", "|---|---:|---:|---:|"]
        for acl, vlabel in ACL_VARIANTS:
            if acl not in bench.instr:
                continue
            d = bench.instr[acl] - i0
            lines.append("| %s | %.0f | %s | %s |" % (
                vlabel.format(n=n), bench.instr[acl], "–" if acl is None else "%+d" % round(d),
                "–" if acl is None or ns_per is None else "%+d" % round(d * ns_per)))
    if bench.instr_fns.get(None):
        lines += ["", "Where the difference is, by function (instructions per request, on − off, "
                  "|difference| ≥ 2; self cost, callgrind_annotate --inclusive=no):", ""]
        f0 = bench.instr_fns[None]
        for acl, vlabel in ACL_VARIANTS[1:]:
            f1 = bench.instr_fns.get(acl)
            if f1 is None:
                continue
            # frames on the stack when the counters were zeroed (main,
            # worker_main, ...) carry most of the run as their own cost
            big = 0.5 * bench.instr[None]
            d = sorted(((f1.get(k, 0) - f0.get(k, 0), k) for k in set(f0) | set(f1)
                        if f0.get(k, 0) < big and f1.get(k, 0) < big),
                       key=lambda x: -abs(x[0]))
            lines.append("- %s: %s" % (vlabel.format(n=n), ", ".join(
                "%s %+.0f" % (k, v) for v, k in d if abs(v) >= 2) or "none"))
    bad = {k: v for k, v in bench.non2xx.items() if any(v)}
    lines += ["", "Non-2xx responses (wrk.lua's err_status; a 429 would count): %s" % (
        "none in any run" if not bad else "; ".join(
            "workers=%d %s %s: %s" % (k[0], k[1], k[2], ",".join(map(str, v)))
            for k, v in sorted(bad.items())))]
    if bench.notes:
        lines += ["", "Notes:", ""] + ["- " + x for x in bench.notes]
    return "\n".join(lines) + "\n"


def acl_mode(a, tmp, header):
    global ACL_LIST
    ACL_LIST = os.path.join(tmp, "deny.txt")
    t0 = time.monotonic()
    make_acl_list(ACL_LIST, a.acl_prefixes)
    log("deny list: %d prefixes in %s (%.1f MiB, %.1f s to write)" %
        (a.acl_prefixes, ACL_LIST, os.path.getsize(ACL_LIST) / 2**20, time.monotonic() - t0))
    header.append("- access control (--acl): portcullis alone, alternated run by run: no "
                  "access control; a deny list file of %s distinct random prefixes "
                  "(random.Random(%d): half IPv4 /16-/32 outside 127.0.0.0/8, half IPv6 "
                  "/32-/128 in 2000::/3, and %s/32, from which the harness checks the list "
                  "refuses), on the listener, then on the route; rate_limit {requests_per_"
                  "second: %d, burst: %d} on the listener (the schema's maxima; wrk's one "
                  "client address stays under it); wrk from 127.0.0.1, covered by no entry"
                  % ("{:,}".format(a.acl_prefixes), ACL_SEED, ACL_SENTINEL, ACL_RATE,
                     ACL_RATE))
    bench = AclBench(a, tmp)
    origin = Origin(tmp, "origin")
    origin.start("auto")
    log("origin nginx on 127.0.0.1:%d" % origin.port)
    t0 = time.monotonic()
    load0 = loadavg()
    for w in a.workers:
        bench.one_workers(w, origin)
    if "instr" in a.only:
        if not (VALGRIND and CG_CONTROL and CG_ANNOTATE):
            raise BenchError("valgrind (callgrind_control, callgrind_annotate) is missing")
        log("callgrind, 1 worker, %d requests each" % a.acl_instr_requests)
        for acl, _ in ACL_VARIANTS:
            bench.instr[acl] = bench.instructions(origin, acl)
    origin.stop()
    header.append("- wall time: %.0f s; load average before %s, after %s (other "
                  "work on the host skews the figures)"
                  % (time.monotonic() - t0, load0, loadavg()))
    return bench, acl_report(bench, header)


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(v):
    if v is None:
        return "–"
    av = abs(v)
    if av >= 1000:
        return "{:,.0f}".format(v)
    if av >= 100:
        return "%.0f" % v
    if av >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_ratio(v):
    return "–" if v is None else "%.2f" % v


def report(bench, header):
    a = bench.a
    lines = list(header)
    lines.append("")
    lines.append("| workers | figure | unit | portcullis | nginx | haproxy | "
                 "portcullis/nginx | portcullis/haproxy |")
    lines.append("|---:|---|---|---:|---:|---:|---:|---:|")
    for w in sorted(bench.results):
        r = bench.results[w]
        for key, label, unit in FIGURES:
            pc = r.get("portcullis", {}).get(key)
            if not pc:
                continue
            med = {p: median(r.get(p, {}).get(key, [])) for p in PROXIES}
            ratios = {}
            for other in ("nginx", "haproxy"):
                ov = r.get(other, {}).get(key, [])
                per_run = [x / y for x, y in zip(pc, ov) if y]
                ratios[other] = median(per_run)
            lines.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                w, label.format(c=a.conns, n=a.strace_requests, idle=a.idle_conns,
                                bc=a.big_conns, nc=a.strace_requests // 4,
                                tp=a.tls_procs, ti=a.tls_idle_conns),
                unit, fmt(med["portcullis"]), fmt(med["nginx"]), fmt(med["haproxy"]),
                fmt_ratio(ratios["nginx"]), fmt_ratio(ratios["haproxy"])))
    for what, title in (("ka", "keep-alive request"), ("close", "new-connection request")):
        by_w = bench.syscalls.get(what)
        if not by_w:
            continue
        lines.append("")
        lines.append("Syscalls per %s by name (median over runs, ≥ 0.05/req):" % title)
        lines.append("")
        for w in sorted(by_w):
            for p in PROXIES:
                runs = by_w[w].get(p)
                if not runs:
                    continue
                names = set().union(*runs)
                med = {n: statistics.median([r.get(n, 0.0) for r in runs]) for n in names}
                top = sorted(((v, n) for n, v in med.items() if v >= 0.05), reverse=True)
                lines.append("- workers=%d %s: %s" % (w, p, ", ".join(
                    "%s %.2f" % (n, v) for v, n in top)))
    if bench.tls_params:
        lines.append("")
        lines.append("TLS negotiated by tlsload (version, cipher, key exchange group):")
        lines.append("")
        for p in PROXIES:
            if p in bench.tls_params:
                lines.append("- %s: %s" % (p, "; ".join(sorted(bench.tls_params[p]))))
    if bench.notes:
        lines.append("")
        lines.append("Notes:")
        lines.append("")
        for n in bench.notes:
            lines.append("- " + n)
    return "\n".join(lines) + "\n"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def git_commit():
    """The checked-out commit, read from .git without running git."""
    g = os.path.join(TOP, ".git")
    common = g
    try:
        if os.path.isfile(g):
            # a worktree: .git says where its HEAD is, commondir where refs are
            with open(g) as f:
                g = os.path.join(TOP, f.read().split("gitdir:", 1)[1].strip())
            common = g
            if os.path.exists(os.path.join(g, "commondir")):
                with open(os.path.join(g, "commondir")) as f:
                    common = os.path.normpath(os.path.join(g, f.read().strip()))
        with open(os.path.join(g, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        p = os.path.join(common, ref)
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()[:12] + " (%s)" % ref.rsplit("/", 1)[-1]
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                if line.rstrip().endswith(" " + ref):
                    return line.split()[0][:12] + " (%s)" % ref.rsplit("/", 1)[-1]
    except OSError:
        pass
    return "unknown"


def header_lines(a):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [x for x in [
        "# portcullis benchmark (tools/bench)",
        "",
        "- date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z"),
        "- portcullis: `%s` (%s, commit %s)" % (run_out([a.bin, "-V"]), a.bin, git_commit()),
        "- nginx: `%s`" % run_out([NGINX, "-v"]),
        "- haproxy: `%s`" % run_out([HAPROXY, "-v"]).splitlines()[0],
        "- wrk: `%s`" % run_out([WRK, "-v"]).splitlines()[0].split(" Copyright")[0],
        "- host: %s, %d CPUs, Linux %s; client, origin and proxies share them" %
        (cpu, os.cpu_count(), platform.release()),
        "- settings: workers %s, %d run(s) alternated %s; "
        "wrk -t%d, %d s per load; median of runs, ratios are medians of per-run ratios%s" %
        (",".join(map(str, a.workers)), a.runs,
         "portcullis without access control, with the listener's list, the route's list, "
         "the rate limit (on/off and on − off are medians of per-run values)"
         if getattr(a, "acl", False) else "portcullis, nginx, haproxy",
         a.wrk_threads, a.duration,
         "; --reuseport: portcullis and nginx accept from a SO_REUSEPORT socket per worker"
         if getattr(a, "reuseport", False) else ""),
        "- TLS (--tls): every proxy's listener terminates TLS 1.2/1.3 with the same "
        "self-signed ECDSA P-256 certificate (openssl req, made at start), session tickets "
        "on, TLS 1.2 ciphers and groups (%s) set alike; portcullis and nginx have no "
        "session cache, HAProxy its default one (tune.ssl defaults); keep-alive to the "
        "origin as in the plain rows; handshakes by t/bench/tlsload.c (wrk resumes)"
        % TLS_GROUPS if getattr(a, "tls", False) else None,
        "- CPU = utime+stime of all the proxy's processes (/proc/PID/stat) over the run, "
        "divided by the requests (or GiB) wrk reports; \"of which user space\" is the utime "
        "part (the rest is kernel time: loopback TCP, syscalls)",
    ] if x is not None]


# ---------------------------------------------------------------------------
# callgrind profile of one portcullis worker
# ---------------------------------------------------------------------------

def callgrind_calls(path, names=("malloc", "calloc", "realloc", "free")):
    """Calls to each of names in a callgrind output file (all callers)."""
    ids, counts, cur = {}, {n: 0 for n in names}, None
    rx = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")
    with open(path, errors="replace") as f:
        for line in f:
            m = rx.match(line.rstrip("\n"))
            if m:
                kind, i, name = m.groups()
                if name is not None:
                    ids[i] = name
                if kind == "cfn":
                    cur = ids.get(i, "").split("'")[0]
                continue
            if line.startswith("calls=") and cur in counts:
                counts[cur] += int(line[6:].split()[0])
    return counts


def callgrind_top(path, n):
    out = subprocess.run([CG_ANNOTATE, "--inclusive=no", "--threshold=100", path],
                         capture_output=True, text=True, timeout=120).stdout
    total, rows = None, []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        what = m.group(3)
        if what.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        # frames on the stack when the counters were zeroed show the whole
        # run as their own cost; they are not hot spots
        if total and ir >= 0.95 * total:
            continue
        fn = what.split(" [")[0]
        fn = fn.split(":", 1)[1] if ":" in fn else fn
        obj = what.rsplit("[", 1)[-1].rstrip("]") if "[" in what else ""
        rows.append((ir, fn, os.path.basename(obj)))
    return total, rows[:n]


def callgrind_mode(a, tmp):
    if not (VALGRIND and CG_CONTROL and CG_ANNOTATE):
        raise BenchError("valgrind (callgrind_control, callgrind_annotate) is missing")
    origin = Origin(tmp, "origin")
    origin.start("auto")
    lines = header_lines(a)[:5]
    lines[0] = "# portcullis callgrind profile (tools/bench --callgrind)"
    summary = {}
    for n in a.callgrind:
        d = os.path.join(tmp, "callgrind-%d" % n)
        os.makedirs(d)
        # user root: the worker must keep the rights on valgrind's vgdb FIFOs
        pc = Portcullis(tmp, a.bin, origin.port, 1, user="root", group="root")
        pc.start(prefix=[VALGRIND, "--tool=callgrind", "--trace-children=yes",
                         "--callgrind-out-file=%s/callgrind.out.%%p" % d])
        try:
            wpid = pc.worker_pids()[0]
            # warm up (upstream keep-alive pool, buffer pool), then zero
            wrk(pc.port, "/12", 16, 1, 60, limit=500)
            r = subprocess.run([CG_CONTROL, "-z", str(wpid)], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise BenchError("callgrind_control -z: %s%s" % (r.stdout, r.stderr))
            res = wrk(pc.port, "/12", 16, 1, 600, limit=n, timeout_s=700)
        finally:
            pc.stop()
        out = os.path.join(d, "callgrind.out.%d" % wpid)
        for _ in range(100):
            if os.path.exists(out) and os.path.getsize(out) > 0:
                break
            time.sleep(0.1)
        total, top = callgrind_top(out, a.callgrind_top)
        calls = callgrind_calls(out)
        summary[n] = (res["requests"], total, calls)
        log("callgrind %d requests: %s" % (n, out))
        lines += ["", "## %d keep-alive requests (wrk -t1 -c16, GET /12, 1 worker)" % n, "",
                  "Profile: `%s` (kept when --keep-tmp is given)" % out, "",
                  "%d requests answered; %s instructions in the worker, %.0f per request" %
                  (res["requests"], "{:,}".format(total or 0),
                   (total or 0) / max(res["requests"], 1)), "",
                  "| # | Ir | % | Ir/request | function | object |",
                  "|---:|---:|---:|---:|---|---|"]
        for i, (ir, fn, obj) in enumerate(top, 1):
            lines.append("| %d | %s | %.1f | %.0f | %s | %s |" % (
                i, "{:,}".format(ir), 100.0 * ir / max(total or 1, 1),
                ir / max(res["requests"], 1), fn, obj))
    lines += ["", "## Allocator calls in the measured window", "",
              "| requests | malloc | calloc | realloc | free |", "|---:|---:|---:|---:|---:|"]
    for n, (reqs, total, c) in summary.items():
        lines.append("| %d | %d | %d | %d | %d |" % (reqs, c["malloc"], c["calloc"],
                                                     c["realloc"], c["free"]))
    if len(summary) >= 2:
        ks = sorted(summary)
        (r1, _, c1), (r2, _, c2) = summary[ks[0]], summary[ks[-1]]
        dr = max(r2 - r1, 1)
        lines += ["", "Growth per extra request: " + ", ".join(
            "%s %.3f" % (k, (c2[k] - c1[k]) / dr) for k in ("malloc", "calloc", "realloc", "free"))]
    origin.stop()
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# perf: where each proxy's CPU goes, kernel included
# ---------------------------------------------------------------------------

# (label, kernel symbols whose inclusive ("children") share add up to it)
PERF_BUCKETS = [
    ("send: sendmsg / sendto / writev", ("__sys_sendmsg", "__sys_sendto", "do_writev")),
    ("  of which delivery to the peer (softirq)", ("handle_softirqs",)),
    ("  of which waking the peer", ("sock_def_readable",)),
    ("receive: read / recvfrom", ("ksys_read", "__sys_recvfrom")),
    ("epoll_wait", ("do_epoll_wait",)),
    ("preempted on the way back to user space", ("exit_to_user_mode_loop",)),
    ("other system calls", ("__x64_sys_getsockopt", "__x64_sys_clock_gettime",
                            "__x64_sys_setsockopt", "__x64_sys_epoll_ctl")),
]


def perf_shares(data):
    """{symbol: inclusive %} and the user-space % of a perf.data file."""
    out = subprocess.run([PERF, "report", "-i", data, "--children", "--sort", "sym",
                          "--stdio", "-g", "none"], capture_output=True, text=True,
                         timeout=300).stdout
    shares = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[([k.])\]\s+(\S+)", line)
        if m:
            shares.setdefault(m.group(4), float(m.group(1)))
    out = subprocess.run([PERF, "report", "-i", data, "--sort", "dso", "--stdio", "-g", "none"],
                         capture_output=True, text=True, timeout=300).stdout
    kernel = 0.0
    for line in out.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(?:[\d.]+%\s+)?\[kernel", line)
        if m:
            kernel += float(m.group(1))
    return shares, 100.0 - kernel


def perf_table(data, sort, n):
    """[(self %, name)] of the top n entries of perf report --sort sort."""
    out = subprocess.run([PERF, "report", "-i", data, "--no-children", "--sort", sort,
                          "--stdio", "-g", "none"], capture_output=True, text=True,
                         timeout=300).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(.*\S)\s*$", line)
        if m:
            rows.append((float(m.group(1)), re.sub(r"\s+", " ", m.group(2))))
    return rows[:n]


def perf_tls_mode(a, tmp):
    """perf profile of each proxy during full TLS handshakes (tlsload):
    µs of CPU per connection by shared object and by function."""
    origin = Origin(tmp, "origin")
    origin.start("auto")
    lines = header_lines(a)[:9]
    lines[0] = "# TLS full-handshake CPU profile (tools/bench --perf --tls)"
    lines.append("- perf record -e cpu-clock -g on all of the proxy's processes (1 worker) "
                 "during %d s of tlsload -n %d (a new connection, full handshake and GET /12 "
                 "each); CPU per connection from /proc/PID/stat of the same run"
                 % (a.duration, a.tls_procs))
    cols = []
    for px in (Portcullis(tmp, a.bin, origin.port, 1), NginxProxy(tmp, origin.port, 1),
               HAProxy(tmp, origin.port, 1)):
        px.start()
        try:
            tlsload(px.port, a.tls_procs, 1)
            pids = px.pids()
            data = os.path.join(tmp, "perf-tls-%s.data" % px.name)
            rec = spawn([PERF, "record", "-q", "-e", "cpu-clock", "-g", "-o", data,
                         "-p", ",".join(map(str, pids)), "--", "sleep", str(a.duration)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = cpu_ticks(pids)
            res = tlsload(px.port, a.tls_procs, a.duration)
            t1 = cpu_ticks(pids)
            rec.wait(timeout=a.duration + 120)
            forget(rec)
        finally:
            px.stop()
        if rec.returncode != 0 or not os.path.exists(data):
            raise BenchError("perf record failed for %s (rc %s)" % (px.name, rec.returncode))
        us = (t1[0] + t1[1] - t0[0] - t0[1]) / CLK_TCK / max(res["conns"], 1) * 1e6
        dsos = perf_table(data, "dso", 8)
        syms = perf_table(data, "dso,sym", a.callgrind_top)
        log("perf --tls %s: %.1f µs CPU/conn (%d conns, %d resumed)" %
            (px.name, us, res["conns"], res["reused"]))
        cols.append((px.name, us, res, dsos, syms))
        time.sleep(a.pause)
    origin.stop()
    for name, us, res, dsos, syms in cols:
        lines += ["", "## %s: %.1f µs CPU per connection (%d connections, %d resumed)"
                  % (name, us, res["conns"], res["reused"]), "",
                  "| object | % | µs/conn |", "|---|---:|---:|"]
        for pct, what in dsos:
            lines.append("| %s | %.1f | %.1f |" % (what, pct, us * pct / 100))
        lines += ["", "| function (self) | % | µs/conn |", "|---|---:|---:|"]
        for pct, what in syms:
            lines.append("| %s | %.1f | %.1f |" % (what.replace("|", "/"), pct, us * pct / 100))
    return "\n".join(lines) + "\n"


def perf_mode(a, tmp):
    if not PERF:
        raise BenchError("perf is missing (Debian: linux-perf)")
    if a.tls:
        return perf_tls_mode(a, tmp)
    origin = Origin(tmp, "origin")
    origin.start("auto")
    lines = header_lines(a)[:8]
    lines[0] = "# portcullis kernel and user CPU profile (tools/bench --perf)"
    lines.append("- perf record -e cpu-clock -g on the proxy's one worker during wrk -c%d "
                 "-t%d for %d s of 12-byte keep-alive responses; CPU per request from "
                 "/proc/PID/stat of the same run" % (a.conns, a.wrk_threads, a.duration))
    cols = []
    for px in (Portcullis(tmp, a.bin, origin.port, 1), NginxProxy(tmp, origin.port, 1),
               HAProxy(tmp, origin.port, 1)):
        px.start()
        try:
            wrk(px.port, "/12", a.conns, a.wrk_threads, 2)
            pids = px.pids()
            data = os.path.join(tmp, "perf-%s.data" % px.name)
            rec = spawn([PERF, "record", "-q", "-e", "cpu-clock", "-g", "-o", data,
                         "-p", ",".join(map(str, pids)), "--", "sleep", str(a.duration)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = cpu_ticks(pids)
            res = wrk(px.port, "/12", a.conns, a.wrk_threads, a.duration)
            t1 = cpu_ticks(pids)
            rec.wait(timeout=a.duration + 120)
            forget(rec)
        finally:
            px.stop()
        if rec.returncode != 0 or not os.path.exists(data):
            raise BenchError("perf record failed for %s (rc %s)" % (px.name, rec.returncode))
        cpu_us = (t1[0] + t1[1] - t0[0] - t0[1]) / CLK_TCK / max(res["requests"], 1) * 1e6
        shares, user = perf_shares(data)
        log("perf %s: %.2f µs CPU/req, %.1f%% user space" % (px.name, cpu_us, user))
        cols.append((px.name, cpu_us, shares, user))
        time.sleep(a.pause)
    origin.stop()
    lines += ["", "µs of CPU per request, split by where the samples fell (a call's share "
              "includes what the kernel did inside it):", "",
              "| where | " + " | ".join(c[0] for c in cols) + " |",
              "|---|" + "---:|" * len(cols)]
    lines.append("| all (/proc/PID/stat) | " +
                 " | ".join("%.2f" % c[1] for c in cols) + " |")
    lines.append("| user space (own code and libc) | " +
                 " | ".join("%.2f" % (c[1] * c[3] / 100) for c in cols) + " |")
    for label, syms in PERF_BUCKETS:
        lines.append("| %s | " % label + " | ".join(
            "%.2f" % (c[1] * sum(c[2].get(s, 0.0) for s in syms) / 100) for c in cols) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="tools/bench",
        description="Benchmark portcullis against nginx and HAProxy in front of one nginx "
                    "origin on loopback; prints a Markdown table.")
    ap.add_argument("--workers", default=None,
                    help="worker count(s), e.g. 1 or 1,2 (default: 1 then 2)")
    ap.add_argument("--runs", type=int, default=None, help="runs per proxy (default 3)")
    ap.add_argument("--duration", type=int, default=None,
                    help="seconds per wrk load (default 10)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 run, 3 s loads")
    ap.add_argument("-o", "--output", help="also write the Markdown report to this file")
    ap.add_argument("--json", help="write the raw per-run values to this file")
    ap.add_argument("--bin", default=os.path.join(TOP, "build-bench", "portcullis"),
                    help="portcullis binary (default build-bench/portcullis)")
    ap.add_argument("--conns", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--big-conns", type=int, default=16,
                    help="wrk connections for the 10 MiB responses (default 16)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--idle-conns", type=int, default=10000,
                    help="idle keep-alive connections for the RSS figure (default 10000)")
    ap.add_argument("--strace-requests", type=int, default=20000,
                    help="requests of the strace run (default 20000)")
    ap.add_argument("--only", default="rps,rss,strace,big",
                    help="subset of figures: rps (ka12,close12,ka64k), rss, strace, big")
    ap.add_argument("--pause", type=float, default=1.0,
                    help="seconds of quiet between two loads (default 1)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temp dir (configs, logs, strace and callgrind files)")
    ap.add_argument("--callgrind", nargs="?", const="10000,20000", default=None,
                    metavar="N[,N...]",
                    help="instead of the comparison: profile one portcullis worker under "
                         "callgrind for N keep-alive requests each (default 10000,20000)")
    ap.add_argument("--callgrind-top", type=int, default=15)
    ap.add_argument("--reuseport", action="store_true",
                    help="portcullis (reuseport: true) and the nginx proxy (listen ... reuseport) "
                         "accept from one SO_REUSEPORT socket per worker; HAProxy 2.6 cannot")
    ap.add_argument("--perf", action="store_true",
                    help="instead of the comparison: perf profile (kernel included) of each "
                         "proxy's one worker under 12-byte keep-alive load, as µs per request")
    ap.add_argument("--tls", action="store_true",
                    help="instead of the plain figures: TLS termination on every proxy's "
                         "listener (one self-signed ECDSA P-256 certificate): full and "
                         "resumed handshakes (tlsload), 12 B keep-alive and 10 MiB over "
                         "TLS (wrk), RSS per idle TLS connection; --only takes tls_new, "
                         "tls_resume, tls_ka12, tls_big, tls_rss")
    ap.add_argument("--tls-procs", type=int, default=2,
                    help="tlsload client processes for the handshake figures (default 2)")
    ap.add_argument("--tls-idle-conns", type=int, default=5000,
                    help="idle TLS connections for the TLS RSS figure (default 5000)")
    ap.add_argument("--acl", action="store_true",
                    help="instead of the comparison: portcullis alone, with access control "
                         "on against off: a deny list of --acl-prefixes prefixes on the "
                         "listener and on the route, a never-reached rate_limit: CPU per "
                         "12 B request (keep-alive, and a new connection each for the "
                         "listener list), `portcullis -t` time, master and worker memory; "
                         "instructions per request (callgrind, 1 worker); "
                         "--only takes ka12, close12, mem, instr")
    ap.add_argument("--acl-prefixes", type=int, default=1000000,
                    help="prefixes in the --acl deny list (default 1000000)")
    ap.add_argument("--acl-instr-requests", type=int, default=10000,
                    help="keep-alive requests of each --acl callgrind count (default 10000)")
    a = ap.parse_args(argv)
    if a.tls and a.only == "rps,rss,strace,big":
        a.only = ",".join(TLS_FIGURES)
    if a.acl:
        if a.tls or a.perf or a.callgrind or a.reuseport:
            ap.error("--acl goes alone (no --tls, --perf, --callgrind, --reuseport)")
        if a.only == "rps,rss,strace,big":
            a.only = "ka12,close12,mem,instr"
        bad = set(a.only.split(",")) - {"ka12", "close12", "mem", "instr"}
        if bad:
            ap.error("--acl runs only ka12, close12, mem, instr: not %s"
                     % ", ".join(sorted(bad)))
        if a.acl_prefixes < 2:
            ap.error("--acl-prefixes must be at least 2")
    a.workers = [int(x) for x in (a.workers or "1,2").split(",")]
    a.runs = a.runs or (1 if a.quick else 3)
    a.duration = a.duration or (3 if a.quick else 10)
    only = set()
    for x in ([] if a.acl else a.only.split(",")):
        x = x.strip()
        if x == "rps":
            only.update(k for k, _, _ in SCENARIOS)
        elif x in ("rss", "strace", "big") or x in [k for k, _, _ in SCENARIOS]:
            if a.tls:
                ap.error("--tls runs only the TLS figures: %s" % ", ".join(TLS_FIGURES))
            only.add(x)
        elif x in TLS_FIGURES:
            if not a.tls:
                ap.error("--only %s needs --tls" % x)
            only.add(x)
        elif x:
            ap.error("--only: unknown figure %r" % x)
    a.only = set(a.only.split(",")) if a.acl else only
    if a.callgrind:
        a.callgrind = [int(x) for x in a.callgrind.split(",")]
    if any(w < 1 for w in a.workers) or a.runs < 1 or a.duration < 1:
        ap.error("workers, runs and duration must be positive")
    return a


def main(argv):
    a = parse_args(argv)
    global REUSEPORT
    REUSEPORT = a.reuseport
    if os.geteuid() != 0:
        raise BenchError("run as root (ulimits, strace, nginx/haproxy as root)")
    missing = [n for n, p in (("nginx", NGINX), ("haproxy", HAPROXY), ("wrk", WRK),
                              ("strace", STRACE)) if not p]
    if missing:
        raise BenchError("missing: %s (tools/bench installs them)" % ", ".join(missing))
    if not os.access(a.bin, os.X_OK):
        raise BenchError("no portcullis binary at %s" % a.bin)
    # descriptors for 10k idle connections, for us and (inherited) the proxies
    global NOFILE
    try:
        with open("/proc/sys/fs/nr_open") as f:
            NOFILE = min(NOFILE, int(f.read()))
    except OSError:
        pass
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        # no CAP_SYS_RESOURCE (a container): settle for the hard limit
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        NOFILE = hard
        log("note: RLIMIT_NOFILE stays at its hard limit %d" % hard)
    if NOFILE < a.idle_conns + 1000:
        raise BenchError("RLIMIT_NOFILE %d is too low for --idle-conns %d"
                         % (NOFILE, a.idle_conns))
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)

    tmp = tempfile.mkdtemp(prefix="portcullis-bench.")
    os.chmod(tmp, 0o755)
    log("temp dir %s" % tmp)
    ok = False
    try:
        if a.callgrind:
            text = callgrind_mode(a, tmp)
        elif a.acl:
            bench, text = acl_mode(a, tmp, header_lines(a))
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"results": bench.results, "notes": bench.notes,
                               "non2xx": {"%d %s %s" % k: v for k, v in bench.non2xx.items()},
                               "instructions": {str(k): v for k, v in bench.instr.items()},
                               "instructions_by_function": {
                                   str(k): v for k, v in bench.instr_fns.items()}},
                              f, indent=1)
        elif a.perf:
            if a.tls:
                tls_setup(tmp)
            text = perf_mode(a, tmp)
        else:
            if a.tls:
                tls_setup(tmp)
            header = header_lines(a)
            bench = Bench(a, tmp)
            origin = Origin(tmp, "origin")
            origin.start("auto")
            log("origin nginx on 127.0.0.1:%d" % origin.port)
            t0 = time.monotonic()
            load0 = loadavg()
            for w in a.workers:
                bench.one_workers(w, origin)
            origin.stop()
            header.append("- wall time: %.0f s; load average before %s, after %s (other "
                          "work on the host skews the figures)"
                          % (time.monotonic() - t0, load0, loadavg()))
            text = report(bench, header)
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"results": bench.results, "syscalls": bench.syscalls,
                               "notes": bench.notes}, f, indent=1)
        sys.stdout.write(text)
        sys.stdout.flush()
        if a.output:
            with open(a.output, "w") as f:
                f.write(text)
        ok = True
    except KeyboardInterrupt:
        ok = True       # nothing to debug: drop the temp dir
        raise
    finally:
        cleanup_all()
        if a.keep_tmp or not ok:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        log("error: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt as e:
        log("interrupted (%s); everything started was stopped" % (e or "Ctrl-C"))
        sys.exit(130)
