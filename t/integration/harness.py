"""Helpers for the portcullis integration tests.

Everything here runs the real binary (PORTCULLIS_BIN) against real servers
(backend.py, nginx) over loopback and talks to it with raw sockets, curl or
wrk.  Every process started here is registered and killed at exit, even
when a test fails or the interpreter is stopped by a signal.
"""

import atexit
import ctypes
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import backend as backend_mod  # noqa: E402  (pattern helpers)

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
LOG_LINE_RE = re.compile(
    r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(debug|info|notice|warn|error|crit|alert|emerg)\] (\d+): (.*)$")
SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
    r"SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)|"
    r"LeakSanitizer has encountered a fatal error")


# ---------------------------------------------------------------------------
# the binary
# ---------------------------------------------------------------------------

def binary():
    """Path of the portcullis binary under test (PORTCULLIS_BIN, else a build dir)."""
    path = os.environ.get("PORTCULLIS_BIN")
    if not path:
        for d in ("build-it", "build"):
            cand = os.path.join(SRC, d, "portcullis")
            if os.access(cand, os.X_OK):
                path = cand
                break
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("portcullis binary not found: set PORTCULLIS_BIN (got %r)" % path)
    return path


_asan = None


def asan_enabled():
    """Was the binary built with AddressSanitizer?  PORTCULLIS_ASAN=0/1 overrides."""
    global _asan
    if _asan is not None:
        return _asan
    env = os.environ.get("PORTCULLIS_ASAN")
    if env in ("0", "1"):
        _asan = env == "1"
        return _asan
    b = binary()
    found = False
    try:
        out = subprocess.run(["ldd", b], capture_output=True, text=True, timeout=20).stdout
        found = "libasan" in out
    except (OSError, subprocess.TimeoutExpired):
        pass
    if not found:
        for args in (["nm", "-D", b], ["nm", b]):
            try:
                out = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
            except (OSError, subprocess.TimeoutExpired):
                continue
            if "__asan_init" in out:
                found = True
                break
    _asan = found
    return _asan


def project_version():
    """The version in the top-level CMakeLists.txt project() call."""
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*portcullis\s+VERSION\s+([0-9][0-9.]*)", f.read())
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

_procs = []          # every Popen we started
_extra_pids = set()  # worker pids seen (children of a master we started)
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the test runner dies,
    # the child is killed too, so nothing outlives a crashed test.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(args, rlimits=None, **kw):
    """Popen() that registers the process for cleanup at exit.  rlimits:
    {resource.RLIMIT_*: (soft, hard)} set in the child only."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("env", clean_env())

    def preexec():
        _die_with_parent()
        for res, lim in (rlimits or {}).items():
            resource.setrlimit(res, lim)

    p = subprocess.Popen(args, preexec_fn=preexec, **kw)
    _procs.append(p)
    return p


def _exe_is(pid, exe):
    try:
        return os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(exe)
    except OSError:
        return False


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
    try:
        exe = binary()
    except Exception:
        exe = None
    for pid in list(_extra_pids):
        if exe and _exe_is(pid, exe):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


atexit.register(_kill_all)


def _on_term(signum, frame):
    _kill_all()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def clean_env():
    """The environment for child processes: no proxies, sanitizers set up."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def children(pid):
    """Child pids of pid (the workers, for a portcullis master)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        pass
    except OSError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return sorted(out)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def vm_hwm_kib(pid):
    """Peak resident set size (VmHWM) of pid in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


# ---------------------------------------------------------------------------
# ports and temp dirs
# ---------------------------------------------------------------------------

_used_ports = set()


def free_port(ipv6=False):
    """A TCP port free on 127.0.0.1 (and on ::1 if ipv6).

    Picked below the ephemeral range (32768+) so that outgoing connections
    and port-0 listeners never take it between now and the bind."""
    for _ in range(500):
        port = random.randrange(20000, 32000)
        if port in _used_ports:
            continue
        fams = [(socket.AF_INET, "127.0.0.1")]
        if ipv6:
            fams.append((socket.AF_INET6, "::1"))
        ok = True
        for fam, host in fams:
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port found")


def make_tmpdir(prefix="pc-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)  # workers run as nobody
    atexit.register(shutil.rmtree, d, True)
    return d


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:-]*")


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and not s.endswith(":"):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def _emit(obj, indent, out):
    pad = " " * indent
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                _emit(v, indent + 2, out)
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                sub = []
                _emit(item, indent + 2, sub)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            elif isinstance(item, list) and item:
                if all(not isinstance(x, (dict, list)) for x in item):
                    out.append("%s- [%s]" % (pad, ", ".join(_scalar(x) for x in item)))
                else:
                    raise ValueError("nested lists are not supported")
            else:
                out.append("%s- %s" % (pad, _scalar(item)))
    else:
        out.append(pad + _scalar(obj))


def to_yaml(obj):
    """Block-style YAML for a dict of dicts/lists/scalars (enough for configs)."""
    out = []
    _emit(obj, 0, out)
    return "\n".join(out) + "\n"


def base_config(tmp, listeners, backends, workers=2, **top):
    """A complete config dict writing pid/socket/logs into tmp."""
    cfg = {
        "workers": workers,
        "user": "nobody",
        "group": "nogroup",
        "pid_file": os.path.join(tmp, "pc.pid"),
        "control_socket": os.path.join(tmp, "pc.sock"),
        "shutdown_timeout": "5s",
        "log": {"error": {"path": os.path.join(tmp, "error.log"), "level": "info"}},
        "defaults": {"client_header_timeout": "10s", "keepalive_timeout": "75s",
                     "max_header_size": "32k"},
        "listeners": listeners,
        "backends": backends,
    }
    cfg.update(top)
    return cfg


def one_route_config(backend, workers=1, tmp=None, **top):
    """(config dict, tmp, port): one listener on 127.0.0.1 whose single
    route sends everything to backend "web" (a backend_block dict)."""
    tmp = tmp or make_tmpdir()
    port = free_port()
    listeners = [{"name": "web", "bind": "127.0.0.1:%d" % port,
                  "routes": [{"path_prefix": "/", "backend": "web"}]}]
    return base_config(tmp, listeners, {"web": backend}, workers=workers, **top), tmp, port


def one_route_proxy(tc, backend, workers=1, rlimits=None, **top):
    """(Portcullis, port): one_route_config started, stopped (and checked)
    when the test tc ends."""
    cfg, tmp, port = one_route_config(backend, workers, **top)
    pc = Portcullis(cfg, tmp=tmp, rlimits=rlimits)
    pc.start()
    tc.addCleanup(pc.stop)
    return pc, port


def backend_block(*servers, connect_timeout="1s", response_timeout="5s", keepalive=32, **extra):
    """A backends: entry; servers are "host:port" or (addr, weight) pairs."""
    srv = []
    for s in servers:
        if isinstance(s, tuple):
            srv.append({"address": s[0], "weight": s[1]})
        else:
            srv.append({"address": s, "weight": 1})
    b = {"connect_timeout": connect_timeout, "response_timeout": response_timeout,
         "keepalive": keepalive, "servers": srv}
    b.update(extra)
    return b


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------

class Backend:
    """One backend.py process."""

    def __init__(self, name, bind="127.0.0.1", port=0, verbose=False):
        self.name = name
        args = [PYTHON, os.path.join(HERE, "backend.py"), "--port", str(port),
                "--name", name, "--bind", bind]
        if verbose:
            args.append("--verbose")
        self.proc = spawn(args, stdout=subprocess.PIPE, stderr=None, text=True)
        line = _readline_timeout(self.proc.stdout, 15)
        m = re.match(r"READY (\S+) (\d+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError("backend %s did not start: %r" % (name, line))
        self.host = bind
        self.port = int(m.group(2))

    @property
    def address(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    def requests(self, clear=False):
        """What this backend has received so far (asked directly, not via the proxy)."""
        r = request(self.port, "GET", "/__requests" + ("?clear=1" if clear else ""),
                    host_addr=self.host)
        return json.loads(r.body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def _readline_timeout(f, timeout):
    result = []
    t = threading.Thread(target=lambda: result.append(f.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else None


class Nginx:
    """nginx (nginx-light) as a fast backend answering 200 "ok" on every path."""

    def __init__(self, tmp, port=None):
        self.port = port or free_port()
        self.dir = os.path.join(tmp, "nginx-%d" % self.port)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
user nobody nogroup;
worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:%(port)d;
        location / { add_header X-Backend nginx; return 200 "ok\\n"; }
    }
}
""" % {"d": self.dir, "port": self.port})
        self.proc = spawn(["/usr/sbin/nginx", "-p", self.dir, "-c", conf],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_port(self.port, timeout=10, proc=self.proc):
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("nginx did not start: " + err)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Poll until host:port accepts a TCP connection; False on timeout or if proc died."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((host, port))
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


# ---------------------------------------------------------------------------
# portcullis
# ---------------------------------------------------------------------------

class Portcullis:
    """One portcullis master started in the foreground with a config dict or text."""

    def __init__(self, config, tmp=None, listen=None, workers=None, env=None, rlimits=None):
        """config: dict (rendered to YAML) or YAML text.
        listen: [(host, port)] to wait for; derived from the dict when possible."""
        self.tmp = tmp or make_tmpdir()
        self.config_path = os.path.join(self.tmp, "portcullis.yaml")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.error_log_path = None
        self.proc = None
        self.returncode = None
        self.listen = listen or []
        self.nworkers = workers
        self.rlimits = rlimits
        self.env = clean_env()
        self.env.update(env or {})
        self.write_config(config)
        if isinstance(config, dict):
            self.error_log_path = config.get("log", {}).get("error", {}).get("path")
            if self.nworkers is None and isinstance(config.get("workers"), int):
                self.nworkers = config["workers"]
            if not self.listen:
                for lst in config.get("listeners", []):
                    binds = lst["bind"] if isinstance(lst["bind"], list) else [lst["bind"]]
                    for b in binds:
                        host, port = b.rsplit(":", 1)
                        self.listen.append((host.strip("[]"), int(port)))

    # -- lifecycle -----------------------------------------------------------
    def write_config(self, config, path=None):
        text = to_yaml(config) if isinstance(config, dict) else config
        with open(path or self.config_path, "w") as f:
            f.write(text)

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=15.0):
        self._stderr = open(self.stderr_path, "wb")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = spawn([binary(), "-c", self.config_path], rlimits=self.rlimits,
                          stdout=self._stdout, stderr=self._stderr, env=self.env)
        deadline = time.monotonic() + timeout
        for host, port in self.listen:
            left = max(0.1, deadline - time.monotonic())
            if not wait_port(port, host, left, self.proc):
                self._start_failed("port %s:%d does not accept connections" % (host, port))
        if self.nworkers:
            while len(self.workers()) < self.nworkers:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self._start_failed("expected %d workers, have %r"
                                       % (self.nworkers, self.workers()))
                time.sleep(0.05)
        return self

    def _start_failed(self, why):
        rc = self.proc.poll()
        self.kill()
        raise AssertionError("portcullis did not start (%s; exit %r)\nstderr:\n%s\nerror log:\n%s"
                             % (why, rc, self.stderr()[-4000:], self.error_log()[-4000:]))

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Wait for the master to exit; its exit code, or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self):
        pids = self.workers() if self.proc and self.proc.poll() is None else []
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in pids + list(_extra_pids):
            if _exe_is(pid, binary()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_stderr", None), getattr(self, "_stdout", None)):
            if f and not f.closed:
                f.close()

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stop the master (TERM), kill -9 whatever is left, then fail if
        anything went wrong: master or workers surviving, sanitizer reports."""
        problems = []
        if self.proc is None:
            return
        pids = self.workers() if self.proc.poll() is None else []
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except OSError:
                pass
            if self.wait_exit(timeout) is None:
                problems.append("master %d did not exit within %.0fs of signal %d"
                                % (self.proc.pid, timeout, sig))
        self.returncode = self.proc.poll()
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in pids if pid_alive(p)]
        if left:
            problems.append("workers %r still alive after the master exited" % left)
        self.kill()
        report = self.sanitizer_report()
        if report:
            problems.append("sanitizer report:\n" + report)
        if problems:
            raise AssertionError("\n".join(problems))

    # -- observation -------------------------------------------------------
    def workers(self):
        pids = children(self.proc.pid)
        _extra_pids.update(pids)
        return pids

    def wait_workers(self, n, timeout=10.0, exclude=()):
        """Wait until there are n workers none of which is in exclude."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = self.workers()
            if len(w) == n and not set(w) & set(exclude):
                return w
            time.sleep(0.02)
        return None

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def error_log(self):
        if not self.error_log_path:
            return self.stderr()
        try:
            with open(self.error_log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_size(self):
        return len(self.error_log())

    def wait_log(self, pattern, timeout=5.0, start=0):
        """Poll the error log for a regex (from char offset start); the match or None."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.error_log(), start)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def sanitizer_report(self):
        """Sanitizer output found in stderr or the error log ('' if none)."""
        found = []
        for text in (self.stderr(), self.error_log() if self.error_log_path else ""):
            for i, line in enumerate(text.splitlines()):
                if SANITIZER_RE.search(line):
                    found.append("\n".join(text.splitlines()[i:i + 25]))
                    break
        return "\n---\n".join(found)

    def describe(self):
        return "stderr:\n%s\nerror log:\n%s" % (self.stderr()[-3000:], self.error_log()[-3000:])


# ---------------------------------------------------------------------------
# a small HTTP/1.1 client on raw sockets
# ---------------------------------------------------------------------------

class IncompleteResponse(Exception):
    """The connection ended (EOF) before a complete response arrived."""


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []     # [(name, value)] as received
        self.body = b""
        self.body_length = 0
        self.body_sha256 = None
        self.framing = None   # "length" | "chunked" | "close" | "none"
        self.raw_head = b""

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    @property
    def closes(self):
        conn = ",".join(self.header_all("Connection")).lower()
        if "close" in conn or self.framing == "close":
            return True
        return self.version == "HTTP/1.0" and "keep-alive" not in conn

    def __repr__(self):
        return "<Response %s %s %r %d bytes>" % (self.status, self.reason,
                                                  self.headers, self.body_length)


class Conn:
    """One client connection with a receive buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
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
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        data = self.sock.recv(262144)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _readline(self, limit=65536):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise ValueError("line too long")
            if not self._fill():
                raise IncompleteResponse("EOF in a line: %r" % bytes(self.buf[:200]))

    def _read_exact(self, n, sink):
        while n > 0:
            if not self.buf and not self._fill():
                raise IncompleteResponse("EOF with %d body bytes missing" % n)
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_response(self, method="GET", keep_body=True, deadline=None):
        """Read one response (skipping 1xx); the body is kept (or only hashed)."""
        if deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            while True:
                r = self._read_one(method, keep_body)
                if r.status is not None and 100 <= r.status < 200 and r.status != 101:
                    continue
                return r
        finally:
            self.sock.settimeout(self.timeout)

    def _read_one(self, method, keep_body):
        r = Response()
        if not self.buf and not self._fill():
            raise IncompleteResponse("connection closed before any response byte")
        line = self._readline()
        r.raw_head = line
        m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?\r?\n$", line)
        if not m:
            raise ValueError("bad status line %r" % line)
        r.version = m.group(1).decode()
        r.status = int(m.group(2))
        r.reason = (m.group(3) or b"").decode("latin-1")
        while True:
            line = self._readline()
            r.raw_head += line
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode("latin-1").partition(":")
            r.headers.append((k, v.strip()))
        h = hashlib.sha256()
        parts = []

        def sink(b):
            r.body_length += len(b)
            h.update(b)
            if keep_body:
                parts.append(b)

        te = ",".join(r.header_all("Transfer-Encoding")).lower()
        cl = r.header("Content-Length")
        if method == "HEAD" or 100 <= r.status < 200 or r.status in (204, 304):
            r.framing = "none"
        elif "chunked" in te:
            r.framing = "chunked"
            while True:
                size_line = self._readline()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._readline() not in (b"\r\n", b"\n"):
                        pass
                    break
                self._read_exact(size, sink)
                if self._readline() not in (b"\r\n", b"\n"):
                    raise ValueError("chunk data not followed by CRLF")
        elif cl is not None:
            r.framing = "length"
            self._read_exact(int(cl), sink)
        else:
            r.framing = "close"
            while True:
                if self.buf:
                    sink(bytes(self.buf))
                    self.buf.clear()
                if not self._fill():
                    break
        r.body = b"".join(parts)
        r.body_sha256 = h.hexdigest()
        return r

    def peer_closed(self):
        """True if the peer has already closed (EOF or reset queued); does not block."""
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, socket.timeout):
            # a socket with a timeout reports EAGAIN as a timeout
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b""

    def wait_closed(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within timeout; extra bytes are dropped."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not data:
                    return True
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)


def build_request(method="GET", path="/", host="test.local", headers=(), body=None,
                  chunked=None, version="HTTP/1.1", close=False):
    """Bytes of a request.  chunked: list of chunk sizes to cut body into."""
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: " + host)
    lines.extend("%s: %s" % kv for kv in headers)
    if close:
        lines.append("Connection: close")
    payload = b""
    if body is not None and chunked is not None:
        lines.append("Transfer-Encoding: chunked")
        off = 0
        pieces = []
        sizes = list(chunked)
        while off < len(body):
            n = sizes.pop(0) if sizes else len(body) - off
            pieces.append(b"%x\r\n%s\r\n" % (n, body[off:off + n]))
            off += n
        payload = b"".join(pieces) + b"0\r\n\r\n"
    elif body is not None:
        lines.append("Content-Length: %d" % len(body))
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def request(port, method="GET", path="/", host="test.local", headers=(), body=None,
            host_addr="127.0.0.1", timeout=10.0, chunked=None, keep_body=True):
    """One request on a fresh connection (Connection: close); the Response."""
    with Conn(port, host_addr, timeout) as c:
        c.send(build_request(method, path, host, headers, body, chunked, close=True))
        return c.read_response(method, keep_body=keep_body)


class LoadGen:
    """Background client load: one thread on fresh connections, one on keep-alive
    connections (reopened when the proxy answers Connection: close).  Every
    failure (refused, reset, EOF before a complete response, timeout, non-2xx,
    wrong body) is recorded."""

    def __init__(self, port, host="127.0.0.1", duration=6.0, keepalive_threads=1,
                 fresh_threads=1, timeout=10.0):
        self.port, self.host, self.duration, self.timeout = port, host, duration, timeout
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = []
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._fresh, args=(i,), daemon=True)
                        for i in range(fresh_threads)]
        self.threads += [threading.Thread(target=self._keepalive, args=(i,), daemon=True)
                         for i in range(keepalive_threads)]

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join(self.duration + 3 * self.timeout)
        self.stop_flag.set()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(3 * self.timeout)

    def _running(self):
        return not self.stop_flag.is_set() and time.monotonic() - self.t0 < self.duration

    def _error(self, what):
        with self.lock:
            self.errors.append("%.2fs %s" % (time.monotonic() - self.t0, what))

    def _check(self, r, path):
        if not 200 <= r.status < 300:
            self._error("status %d for %s: %r" % (r.status, path, r.body[:200]))
        elif not r.body.endswith(b" %s\n" % path.encode()):
            self._error("wrong body for %s: %r" % (path, r.body[:200]))
        else:
            with self.lock:
                self.ok += 1

    def _fresh(self, n):
        i = 0
        while self._running():
            i += 1
            path = "/load/f%d/%d" % (n, i)
            try:
                self._check(request(self.port, "GET", path, host_addr=self.host,
                                    timeout=self.timeout), path)
            except Exception as e:  # noqa: BLE001 - every failure counts
                self._error("fresh %s: %s: %s" % (path, type(e).__name__, e))

    def _keepalive(self, n):
        i = 0
        conn = None
        while self._running():
            i += 1
            path = "/load/k%d/%d" % (n, i)
            try:
                if conn is None:
                    conn = Conn(self.port, self.host, self.timeout)
                conn.send(build_request("GET", path))
                r = conn.read_response()
                self._check(r, path)
                if r.closes:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001
                self._error("keep-alive %s: %s: %s" % (path, type(e).__name__, e))
                if conn:
                    conn.close()
                conn = None
        if conn:
            conn.close()


# ---------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------

class CurlResult:
    def __init__(self, rc, status, headers, body, stderr):
        self.rc = rc
        self.status = status
        self.headers = headers
        self.body = body
        self.stderr = stderr

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def curl(url, *args, timeout=60.0, body_file=None):
    """Run curl on url; returns a CurlResult (the last response's status/headers)."""
    tmp = tempfile.mkdtemp(prefix="pc-curl-")
    try:
        hdr = os.path.join(tmp, "h")
        out = body_file or os.path.join(tmp, "b")
        cmd = ["curl", "-sS", "--noproxy", "*", "-D", hdr, "-o", out,
               "--max-time", str(int(timeout))] + list(args) + [url]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10, env=clean_env())
        headers, status = [], None
        if os.path.exists(hdr):
            with open(hdr, "rb") as f:
                for line in f.read().decode("latin-1").splitlines():
                    if line.startswith("HTTP/"):
                        status = int(line.split()[1])
                        headers = []
                    elif ":" in line:
                        k, _, v = line.partition(":")
                        headers.append((k, v.strip()))
        body = b""
        if body_file is None and os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
        return CurlResult(p.returncode, status, headers, body, p.stderr.decode(errors="replace"))
    finally:
        shutil.rmtree(tmp, True)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def main():
    """unittest.main() that exits non-zero on failure (for ctest)."""
    unittest.main(verbosity=2)
