"""Helpers for the test_ops_*.py tests (issue #5, zero-downtime operations):
the control-socket CLI, wrk with a Lua script that counts non-2xx answers,
an sd_notify listener, /proc probes, and cleanup of masters started by a
binary upgrade (which the harness does not know about).

Everything here only adds to harness.py; every process started is killed
at exit."""

import atexit
import os
import re
import signal
import socket
import subprocess
import threading
import time

import harness as h

WRK_LUA = r"""
-- counts every answer that is not 2xx, per thread, summed in done()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; good = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 else good = good + 1 end
end
function done(summary, latency, requests)
  local b, g = 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); g = g + t:get("good") end
  io.write(string.format("LUA non2xx=%d ok=%d\n", b, g))
end
"""


# ---------------------------------------------------------------------------
# the CLI and the raw protocol
# ---------------------------------------------------------------------------

def ctl(pc, cmd, timeout=60, user=None, config_path=None):
    """Run `portcullis -c CONFIG cmd` (as user, via runuser, if given).
    Returns (rc, stdout, stderr)."""
    args = [h.binary(), "-c", config_path or pc.config_path, cmd]
    if user:
        args = ["runuser", "-u", user, "--"] + args
    p = h.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        return None, out, err + "\n(timed out after %ss)" % timeout
    return p.returncode, out, err


def ctl_async(pc, cmd):
    """Start the CLI in the background; returns the Popen (use finish())."""
    return h.spawn([h.binary(), "-c", pc.config_path, cmd],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def ctl_raw(sock_path, line, timeout=30.0):
    """Send one command line over the control socket; the whole answer text."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        return buf.decode(errors="replace")
    finally:
        s.close()


def verdict(answer):
    """The last line of an answer ("OK ..." or "ERR ...")."""
    lines = [l for l in answer.splitlines() if not l.startswith("|")]
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------

def parse_wrk(out):
    res = {"requests": None, "connect": 0, "read": 0, "write": 0, "timeout": 0,
           "non2xx3xx": 0, "lua_non2xx": None, "lua_ok": None}
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res.update(connect=int(m.group(1)), read=int(m.group(2)), write=int(m.group(3)),
                   timeout=int(m.group(4)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx3xx"] = int(m.group(1))
    m = re.search(r"LUA non2xx=(\d+) ok=(\d+)", out)
    if m:
        res["lua_non2xx"], res["lua_ok"] = int(m.group(1)), int(m.group(2))
    return res


def failures(res):
    """Every failed request wrk saw: socket errors plus non-2xx answers."""
    return (res["connect"] + res["read"] + res["write"] + res["timeout"]
            + (res["lua_non2xx"] if res["lua_non2xx"] is not None else res["non2xx3xx"]))


class Wrk:
    """wrk in the background with the counting Lua script."""

    def __init__(self, tmp, url, threads=1, conns=64, duration=10, close=False, timeout=5):
        script = os.path.join(tmp, "count.lua")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(WRK_LUA)
        args = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration,
                "--timeout", "%ds" % timeout, "-s", script]
        if close:
            args += ["-H", "Connection: close"]
        self.duration = duration
        self.proc = h.spawn(args + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)

    def wait(self):
        self.out, _ = self.proc.communicate(timeout=self.duration + 60)
        self.rc = self.proc.returncode
        self.res = parse_wrk(self.out)
        return self.res


# ---------------------------------------------------------------------------
# sd_notify
# ---------------------------------------------------------------------------

class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET.
    Every datagram received is kept, in order, as a dict of its KEY=VALUE lines
    (with the raw text under "_raw")."""

    def __init__(self, path=None, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "pc-notify-%d-%d" % (os.getpid(), int(time.monotonic() * 1e6))
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            d = {"_raw": text}
            for line in text.split("\n"):
                k, sep, v = line.partition("=")
                if sep:
                    d[k] = v
            with self.lock:
                self.msgs.append(d)

    def snapshot(self):
        with self.lock:
            return list(self.msgs)

    def wait_for(self, pred, timeout=10.0, start=0):
        """The index of the first message from `start` on for which pred(msg) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.snapshot()
            for i in range(start, len(msgs)):
                if pred(msgs[i]):
                    return i
            time.sleep(0.02)
        return None

    def close(self):
        self.stop_flag.set()
        self.thread.join(2)
        self.sock.close()


# ---------------------------------------------------------------------------
# /proc probes and cleanup
# ---------------------------------------------------------------------------

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_list(pid):
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            out.append("%s -> %s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def read_pid(path, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    return None


_masters = set()


def adopt_master(pid):
    """Register a master the harness did not start (a binary upgrade's new
    master): it and its workers are killed at exit."""
    _masters.add(pid)


def kill_master_tree(pid, sig=signal.SIGKILL):
    exe = h.binary()
    for p in h.children(pid) + [pid]:
        if h._exe_is(p, exe):
            try:
                os.kill(p, sig)
            except OSError:
                pass


def _cleanup():
    for pid in list(_masters):
        kill_master_tree(pid)


atexit.register(_cleanup)


def stop_master(pid, sig=signal.SIGTERM, timeout=15.0):
    """Stop a master that is not our child: signal it and wait until it and
    its workers are gone.  True if they all went in time."""
    workers = h.children(pid)
    try:
        os.kill(pid, sig)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not h.pid_alive(pid) and not any(h.pid_alive(w) for w in workers):
            return True
        time.sleep(0.05)
    kill_master_tree(pid)
    return False


def gen_workers(status_text):
    """{generation: [worker pids]} from the output of `portcullis status`."""
    gens, cur = {}, None
    for line in status_text.splitlines():
        line = line[2:] if line.startswith("| ") else line
        m = re.match(r"generation (\d+) ", line)
        if m:
            cur = int(m.group(1))
            gens[cur] = []
            continue
        m = re.match(r"\s+worker pid=(\d+) .*connections=(\d+)", line)
        if m and cur is not None:
            gens[cur].append(int(m.group(1)))
    return gens


def worker_conns(status_text):
    """{worker pid: connections} from `portcullis status`."""
    out = {}
    for m in re.finditer(r"worker pid=(\d+) slot=\d+ state=\S+ connections=(\d+)", status_text):
        out[int(m.group(1))] = int(m.group(2))
    return out
