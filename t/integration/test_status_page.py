#!/usr/bin/python3
"""/status in headless Chromium (issue #13; portcullis(8), ADMIN ENDPOINT):
two backends, one server down (its health check fails) and one drained
(`portcullis drain`); the rendered page names every server with its state
and draws a sparkline for each.  The screenshot is kept as a test artefact
next to the binary (test-artefacts/status.png; its path is printed)."""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest

import harness as h

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp, *args):
    """Run headless Chromium with a private profile; its stdout."""
    profile = os.path.join(tmp, "chromium-profile")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync",
           "--user-data-dir=" + profile] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       env=dict(h.clean_env(), HOME=tmp))
    if p.returncode != 0:
        raise AssertionError("chromium failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return p.stdout


@unittest.skipIf(CHROMIUM is None, "chromium is not installed (Debian package chromium)")
class StatusPageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir()
        cls.ngx = [h.Nginx(cls.tmp) for _ in range(3)]
        for n in cls.ngx:
            cls.addClassCleanup(n.stop)
        cls.dead = "127.0.0.1:%d" % h.free_port()  # nothing listens there
        cls.port = h.free_port()
        cls.admin_port = h.free_port()
        check = {"type": "tcp", "interval": "200ms", "timeout": "100ms", "rise": 1, "fall": 1}
        backends = {
            "shop": h.backend_block(cls.ngx[0].address, cls.dead, health_check=check),
            "api": h.backend_block(cls.ngx[1].address, cls.ngx[2].address,
                                   health_check=check),
        }
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port,
                      "routes": [{"path_prefix": "/api", "backend": "api"},
                                 {"path_prefix": "/", "backend": "shop"}]}]
        cfg = h.base_config(cls.tmp, listeners, backends, workers=2,
                            admin={"bind": "127.0.0.1:%d" % cls.admin_port})
        cls.pc = h.Portcullis(cfg, tmp=cls.tmp, listen=[("127.0.0.1", cls.port),
                                                        ("127.0.0.1", cls.admin_port)])
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)
        p = subprocess.run([h.binary(), "-c", cls.pc.config_path, "drain", "api",
                            cls.ngx[2].address], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        cls.pc.wait_log(r"backend shop: server %s is down" % re.escape(cls.dead), timeout=10)
        # traffic for the sparklines: a few seconds of requests on both backends
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            for path in ("/", "/api/x"):
                h.request(cls.port, path=path)
            time.sleep(0.02)
        time.sleep(1.2)  # the master samples once a second
        url = "http://127.0.0.1:%d/status" % cls.admin_port
        cls.dom = chromium(cls.tmp, "--dump-dom", url)
        artefacts = os.path.join(os.path.dirname(os.path.abspath(h.binary())), "test-artefacts")
        os.makedirs(artefacts, exist_ok=True)
        cls.shot = os.path.join(artefacts, "status.png")
        if os.path.exists(cls.shot):
            os.unlink(cls.shot)
        chromium(cls.tmp, "--screenshot=" + cls.shot, "--window-size=1280,2000", url)
        sys.stderr.write("status page screenshot: %s\n" % cls.shot)

    def server_row(self, address):
        """The text of the table row of server address (tags stripped)."""
        for row in re.findall(r'<tr class="server">(.*?)</tr>', self.dom, re.S):
            if address in row:
                return re.sub(r"<[^>]+>", " ", row)
        self.fail("no row for %s in the page" % address)

    def test_every_server_and_its_state(self):
        """The down server reads down with its reason, the drained one
        draining, the others up."""
        self.assertRegex(self.server_row(self.dead), r"\bdown\b")
        self.assertIn("connect", self.server_row(self.dead))  # the check's reason
        self.assertRegex(self.server_row(self.ngx[2].address), r"\bup\b.*\bdraining\b")
        for n in self.ngx[:2]:
            row = self.server_row(n.address)
            self.assertRegex(row, r"\bup\b")
            self.assertNotIn("draining", row)

    def test_backends_routes_and_workers(self):
        text = re.sub(r"<[^>]+>", " ", self.dom)
        for name in ("shop", "api", "/api", "Generations and workers"):
            self.assertIn(name, text)
        for pid in self.pc.workers():
            self.assertIn(str(pid), text)

    def test_a_sparkline_per_server_with_traffic(self):
        """Four inline SVG sparklines; the served servers' show requests
        (a polyline that leaves the baseline)."""
        sparks = re.findall(r'<svg class="spark".*?</svg>', self.dom, re.S)
        self.assertEqual(len(sparks), 4)
        row = re.search(r'<tr class="server">(?:(?!</tr>).)*%s.*?</tr>'
                        % re.escape(self.ngx[0].address), self.dom, re.S).group(0)
        points = re.search(r'points="([^"]*)"', row).group(1).split()
        ys = {float(p.split(",")[1]) for p in points}
        self.assertGreater(len(ys), 1, "a flat sparkline for a served server")

    def test_no_external_asset_no_script(self):
        self.assertNotRegex(self.dom, r"<script|src=\"http|href=\"http")

    def test_screenshot_kept(self):
        self.assertTrue(os.path.getsize(self.shot) > 10000, self.shot)


if __name__ == "__main__":
    unittest.main(verbosity=2)
