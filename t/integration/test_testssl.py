#!/usr/bin/python3
"""testssl.sh (Debian's testssl.sh 3.0) against a TLS listener with the
default TLS settings: no finding above LOW (portcullis.yaml(5), TLS).

The certificate is the test's own: self-signed, so testssl's chain-of-trust
finding is set aside, and nothing else.  To keep the other certificate
findings about the defaults and not about a test fixture, the certificate
names 127.0.0.1, lives a year and names a CRL distribution point.  The
listener sets hsts, and the server's page carries the security headers an
application would send (X-Frame-Options and the like): testssl rates their
absence MEDIUM, and they are HTTP, not TLS, settings.

testssl.sh takes several minutes (it is a shell script that runs openssl
some hundreds of times): this is the slowest test, labelled slow in ctest.
"""

import json
import os
import shutil
import subprocess
import unittest

import harness as h

# set aside: the test's certificate is self-signed, by design
IGNORED = {"cert_chain_of_trust"}
ABOVE_LOW = {"MEDIUM", "HIGH", "CRITICAL"}


def make_cert(tmp):
    key = os.path.join(tmp, "server.key")
    crt = os.path.join(tmp, "server.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
         "-days", "365", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "crlDistributionPoints=URI:http://127.0.0.1/ca.crl"],
        check=True, capture_output=True)
    os.chmod(key, 0o600)
    return crt, key


class TestsslTest(unittest.TestCase):

    def test_defaults_have_no_finding_above_low(self):
        """Every testssl finding at MEDIUM, HIGH or CRITICAL is listed on
        failure (id, severity, finding)."""
        testssl = shutil.which("testssl") or shutil.which("testssl.sh")
        self.assertIsNotNone(testssl, "testssl.sh is not installed (tools/deps installs it)")
        backend = h.Backend("ts1")
        self.addCleanup(backend.stop)
        cfg, tmp, port = h.one_route_config(h.backend_block(backend.address))
        crt, key = make_cert(tmp)
        cfg["listeners"][0]["tls"] = {
            "certificates": [{"cert": crt, "key": key}],
            "hsts": 31536000,
        }
        pc = h.Portcullis(cfg, tmp=tmp)
        pc.start()
        self.addCleanup(pc.stop)

        out = os.path.join(tmp, "testssl.json")
        page = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                "Content-Length: 3\r\nX-Frame-Options: DENY\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                "Content-Security-Policy: default-src 'none'\r\n"
                "Referrer-Policy: no-referrer\r\n\r\nok\n")
        url = "https://127.0.0.1:%d/raw?hex=%s" % (port, page.encode().hex())
        run = subprocess.run(
            [testssl, "--quiet", "--color", "0", "--warnings", "off",
             "--jsonfile", out, url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=900)
        self.assertTrue(os.path.exists(out),
                        "testssl wrote no JSON (exit %d):\n%s"
                        % (run.returncode, run.stdout[-3000:]))
        with open(out) as f:
            findings = json.load(f)
        # it did test the server: protocols and ciphers were looked at
        ids = {f["id"] for f in findings}
        for must in ("TLS1_2", "TLS1_3", "cipher_order", "BEAST", "heartbleed"):
            self.assertIn(must, ids, "testssl did not report %s" % must)
        bad = ["%s %s: %s" % (f["id"], f["severity"], f["finding"])
               for f in findings
               if f["severity"] in ABOVE_LOW and f["id"] not in IGNORED]
        self.assertEqual(bad, [], "testssl findings above LOW:\n" + "\n".join(bad))
        self.assertEqual(pc.sanitizer_report(), "")


if __name__ == "__main__":
    unittest.main()
