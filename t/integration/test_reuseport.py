#!/usr/bin/python3
"""Listener `reuseport: true` (portcullis.yaml(5), LISTENERS): every worker
accepts from a socket of its own, bound with SO_REUSEPORT, so the kernel
spreads new connections over the workers without a shared accept queue. The
sockets are the master's: a reload keeps them (and binds or closes one per
worker added or removed), a binary upgrade hands them over, and switching a
bound address between shared and per-worker sockets is refused until a
restart."""

import os
import socket
import time
import unittest

import harness as h
import opslib as ops


def tcp_inodes(port, state):
    """Inodes of 127.0.0.1:port's IPv4 sockets in state (/proc/net/tcp):
    "0A" listening, "01" established (the server side of connections)."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fl = line.split()
            if fl[3] == state and fl[1] == "0100007F:%04X" % port:
                out.add(fl[9])
    return out


def listening_inodes(port):
    return tcp_inodes(port, "0A")


def socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out  # exited meanwhile (an old generation's worker)
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


class ReuseportTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.backend = h.Backend("rp")
        cls.addClassCleanup(cls.backend.stop)

    def config(self, workers, reuseport=True):
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % self.port,
                      "reuseport": reuseport,
                      "routes": [{"path_prefix": "/", "backend": "web"}]}]
        return h.base_config(self.tmp, listeners, {"web": h.backend_block(self.backend.address)},
                             workers=workers)

    def start(self, workers):
        self.tmp = h.make_tmpdir()
        self.port = h.free_port()
        self.pc = h.Portcullis(self.config(workers), tmp=self.tmp)
        self.addCleanup(self.pc.stop)
        self.pc.start()
        self.pc.wait_workers(workers)
        return self.pc

    def reload(self, workers, reuseport=True):
        self.pc.write_config(self.config(workers, reuseport))
        return ops.ctl(self.pc, "reload")

    def assert_own_sockets(self, workers):
        """One LISTEN socket per worker, each held by exactly one worker."""
        deadline = time.monotonic() + 10
        while True:
            pids = self.pc.workers()
            lsn = listening_inodes(self.port)
            held = {pid: socket_inodes(pid) & lsn for pid in pids}
            ok = (len(pids) == workers and len(lsn) == workers and
                  all(len(v) == 1 for v in held.values()) and
                  len(set().union(*held.values())) == workers)
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(ok, "workers %s, listening sockets %s, held %s:\n%s"
                        % (pids, lsn, held, self.pc.describe()))

    def assert_serves(self, n=40):
        for i in range(n):
            r = h.request(self.port, "GET", "/n%d" % i)
            self.assertEqual(r.status, 200, r)

    def test_each_worker_accepts_from_its_own_socket(self):
        """3 workers, 3 listening sockets, one each; 30 connections held open
        land on every worker (the kernel hashes them over the group); status
        lists the per-worker descriptors."""
        pc = self.start(3)
        self.assert_own_sockets(3)
        conns = []
        try:
            for i in range(30):
                c = h.Conn(self.port)
                conns.append(c)
                c.send(h.build_request("GET", "/k%d" % i))
                self.assertEqual(c.read_response().status, 200)
            est = tcp_inodes(self.port, "01")
            per_worker = {pid: len(socket_inodes(pid) & est) for pid in pc.workers()}
            self.assertEqual(sum(per_worker.values()), 30, per_worker)
            self.assertTrue(all(v > 0 for v in per_worker.values()), per_worker)
        finally:
            for c in conns:
                c.close()
        rc, out, err = ops.ctl(pc, "status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^  bind 127\.0\.0\.1:%d reuseport fds=\d+,\d+,\d+$"
                         % self.port)

    def test_reload_keeps_and_resizes_the_sockets(self):
        """A reload keeps every worker slot's socket (same inodes) and binds or
        closes one per worker added or removed; requests succeed after each."""
        self.start(2)
        self.assert_own_sockets(2)
        before = listening_inodes(self.port)
        for workers in (2, 4, 1, 3):
            rc, out, err = self.reload(workers)
            self.assertEqual(rc, 0, (out, err, self.pc.describe()))
            self.assert_own_sockets(workers)
            now = listening_inodes(self.port)
            if workers == 2:
                self.assertEqual(now, before)
            self.assert_serves()

    def test_switching_mode_needs_a_restart(self):
        """Turning reuseport off (or on) for a bound address fails the reload
        with a clear message; the running generation keeps serving."""
        pc = self.start(2)
        rc, out, err = self.reload(2, reuseport=False)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("listen on 127.0.0.1:%d: turning reuseport off needs a restart"
                      % self.port, out + err)
        self.assert_own_sockets(2)
        self.assert_serves(10)
        # and the other way round, from a shared socket
        pc.stop()
        self.tmp = h.make_tmpdir()
        self.pc = h.Portcullis(self.config(2, reuseport=False), tmp=self.tmp)
        self.addCleanup(self.pc.stop)
        self.pc.start()
        rc, out, err = self.reload(2, reuseport=True)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("turning reuseport on needs a restart", out + err)
        self.assertEqual(len(listening_inodes(self.port)), 1)
        self.assert_serves(10)

    def test_upgrade_hands_the_sockets_over(self):
        """`portcullis upgrade`: the new master adopts the per-worker sockets
        (same inodes, still one per worker) and keeps serving."""
        pc = self.start(2)
        self.assert_own_sockets(2)
        before = listening_inodes(self.port)
        old = pc.pid
        rc, out, err = ops.ctl(pc, "upgrade")
        self.assertEqual(rc, 0, (out, err, pc.describe()))
        pidfile = os.path.join(self.tmp, "pc.pid")
        new = ops.read_pid(pidfile)
        self.assertNotEqual(new, old)
        ops.adopt_master(new)
        self.addCleanup(ops.stop_master, new)
        self.assertEqual(pc.wait_exit(15), 0, pc.describe())
        deadline = time.monotonic() + 10
        while len(h.children(new)) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        kids = h.children(new)
        self.assertEqual(len(kids), 2)
        self.assertEqual(listening_inodes(self.port), before)
        held = [socket_inodes(pid) & before for pid in kids]
        self.assertEqual(sorted(len(x) for x in held), [1, 1])
        self.assertEqual(held[0] | held[1], before)
        self.assert_serves()


if __name__ == "__main__":
    h.main()
