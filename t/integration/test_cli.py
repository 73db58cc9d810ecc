#!/usr/bin/python3
"""The command line: -V, -h, -t (configuration check) and its error format."""

import os
import re
import signal
import subprocess
import time
import unittest

import harness as h


def run(*args, timeout=20):
    return subprocess.run([h.binary()] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=h.clean_env(), stdin=subprocess.DEVNULL)


VALID = """\
workers: 2
user: nobody
group: nogroup
pid_file: {tmp}/pc.pid
control_socket: {tmp}/pc.sock
shutdown_timeout: 5s
log:
  error: {{ path: {tmp}/error.log, level: info }}
defaults: {{ client_header_timeout: 10s, keepalive_timeout: 75s, max_header_size: 32k }}
listeners:
  - name: web
    bind: ["127.0.0.1:{p}", "[::1]:{p}"]
    routes:
      - {{ host: ["a.test", "*.b.test"], path_prefix: /api, backend: api }}
      - {{ path_prefix: /, backend: web }}
backends:
  api:
    servers:
      - {{ address: "127.0.0.1:{p1}" }}
  web:
    connect_timeout: 1s
    response_timeout: 2s
    keepalive: 32
    servers:
      - {{ address: "127.0.0.1:{p1}", weight: 1 }}
      - {{ address: "127.0.0.1:{p2}", weight: 3 }}
"""

# Five mistakes, one per marked line.  Each entry: line number, the tokens
# whose column the error may point at (the key, the value or the item), and
# a word the message must contain.
BAD = """\
workers: 1
user: nobody
group: nogroup
pid_file: {tmp}/pc.pid
control_socket: {tmp}/pc.sock
log:
  error:
    path: {tmp}/error.log
listeners:
  - name: web
    bind: "127.0.0.1:{p}"
    routes:
      - {{ path_prefix: /api, backend: nosuch }}
      - {{ path_prefix: /, backend: web }}
  - name: web
    bind: "127.0.0.1:{q}"
    routes:
      - {{ path_prefix: /, backend: web }}
backends:
  web:
    conect_timeout: 1s
    servers:
      - {{ address: "127.0.0.1:{p1}", weight: 0 }}
      - {{ address: "127.0.0.1:99999", weight: 1 }}
"""
BAD_ERRORS = [
    (13, ["-", "{", "backend", "nosuch"], "nosuch"),          # undefined backend
    (15, ["-", "name", "web"], "web"),                        # duplicate listener name
    (21, ["conect_timeout"], "connect_timeout"),              # typo, "did you mean"
    (23, ["-", "{", "weight", "0 }"], None),                  # weight out of range
    (24, ["-", "{", "address", '"127.0.0.1:99999"', "127.0.0.1:99999"], None),  # bad port
]


class CliTest(unittest.TestCase):

    def setUp(self):
        self.tmp = h.make_tmpdir()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version(self):
        """-V prints the version of the project and exits 0."""
        p = run("-V")
        self.assertEqual(p.returncode, 0, p.stderr)
        version = h.project_version()
        self.assertTrue(version)
        self.assertIn(version, p.stdout + p.stderr)

    def test_help(self):
        """-h prints a usage text naming the options and exits 0."""
        p = run("-h")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        self.assertRegex(out.lower(), r"usage")
        for opt in ("-c", "-t", "-V", "-h"):
            self.assertIn(opt, out)

    def test_unknown_option_fails(self):
        """An unknown option is refused with a non-zero exit."""
        p = run("--no-such-option")
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_check_valid_config(self):
        """-t on a valid config prints 'configuration OK' and exits 0."""
        cfg = self.write("ok.yaml", VALID.format(tmp=self.tmp, p=h.free_port(ipv6=True),
                                                 p1=h.free_port(), p2=h.free_port()))
        p = run("-t", "-c", cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("configuration OK", p.stdout + p.stderr)

    def test_check_reports_every_error(self):
        """-t on a config with five mistakes: one FILE:LINE:COL line each, exit 1."""
        text = BAD.format(tmp=self.tmp, p=h.free_port(), q=h.free_port(), p1=h.free_port())
        cfg = self.write("bad.yaml", text)
        lines = text.splitlines()
        p = run("-t", "-c", cfg)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assertNotIn("configuration OK", out)
        rx = re.compile(r"^%s:(\d+):(\d+): (.+)$" % re.escape(cfg))
        found = [rx.match(l) for l in p.stderr.splitlines()]
        found = [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in found if m]
        self.assertEqual(sorted(f[0] for f in found), [e[0] for e in BAD_ERRORS],
                         "expected one error per mistake, got:\n" + p.stderr)
        for line, toks, word in BAD_ERRORS:
            (col, msg), = [(c, m) for l, c, m in found if l == line]
            src = lines[line - 1]
            cols = {src.find(t) + 1 for t in toks if src.find(t) >= 0}
            self.assertIn(col, cols, "line %d %r: column %d points at none of %r\n%s"
                          % (line, src, col, toks, p.stderr))
            if word:
                self.assertIn(word, msg, "line %d" % line)

    def test_check_missing_file(self):
        """-t on a file that does not exist: exit 1, naming the file."""
        path = os.path.join(self.tmp, "nope.yaml")
        p = run("-t", "-c", path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(path, p.stderr)
        self.assertNotIn("configuration OK", p.stdout + p.stderr)

    def test_check_default_path(self):
        """Without -c, -t checks /etc/portcullis/portcullis.yaml."""
        default = "/etc/portcullis/portcullis.yaml"
        p = run("-t")
        q = run("-t", "-c", default)
        self.assertEqual(p.returncode, q.returncode, p.stderr + q.stderr)
        if not os.path.exists(default):
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn(default, p.stderr)


    def test_daemon_mode(self):
        """-d detaches (the command exits 0), writes pid_file with the master's
        pid, serves, and stops on SIGTERM (removing its pid_file)."""
        be = h.Backend("daemon1")
        self.addCleanup(be.stop)
        port = h.free_port()
        cfg = h.base_config(self.tmp, [{"name": "web", "bind": "127.0.0.1:%d" % port,
                                        "routes": [{"path_prefix": "/", "backend": "web"}]}],
                            {"web": h.backend_block(be.address)}, workers=1)
        path = self.write("daemon.yaml", h.to_yaml(cfg))
        pid_file = cfg["pid_file"]
        pid = None

        def cleanup():
            if pid and h.pid_alive(pid) and h._exe_is(pid, h.binary()):
                for w in h.children(pid):
                    os.kill(w, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(cleanup)
        p = subprocess.run([h.binary(), "-d", "-c", path], capture_output=True, text=True,
                           timeout=20, env=h.clean_env(), stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        deadline = time.monotonic() + 5
        while not os.path.exists(pid_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(pid_file) as f:
            pid = int(f.read().strip())
        h._extra_pids.add(pid)
        self.assertTrue(h.pid_alive(pid))
        self.assertTrue(h._exe_is(pid, h.binary()))
        self.assertTrue(h.wait_port(port, timeout=10))
        r = h.request(port, "GET", "/daemon")
        self.assertEqual((r.status, r.body), (200, b"daemon1 /daemon\n"))
        workers = h.children(pid)
        h._extra_pids.update(workers)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (h.pid_alive(pid) or any(h.pid_alive(w) for w in workers)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(h.pid_alive(pid), "daemon did not stop on SIGTERM")
        self.assertEqual([w for w in workers if h.pid_alive(w)], [])
        self.assertFalse(os.path.exists(pid_file), "pid_file left behind")

if __name__ == "__main__":
    h.main()
