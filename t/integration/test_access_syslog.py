#!/usr/bin/python3
"""log.access.path: syslog (issue #13; portcullis.yaml(5)): one RFC 5424
message per request on the syslog socket (/dev/log; here a socket of the
test's own, named by PORTCULLIS_SYSLOG_PATH), in the configured format."""

import json
import os
import re
import socket
import unittest

import harness as h

# RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
# MSGID SP STRUCTURED-DATA SP MSG; daemon.info is <30>
HEADER = re.compile(r"^<30>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) "
                    r"(\S+) portcullis (\d+) access - (.*)$", re.S)


class AccessSyslogTest(unittest.TestCase):

    def start(self, fmt):
        tmp = h.make_tmpdir()
        path = os.path.join(tmp, "log.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        os.chmod(path, 0o666)  # the workers run as nobody
        sock.settimeout(5)
        self.addCleanup(sock.close)
        be = h.Backend("syslog")
        self.addCleanup(be.stop)
        cfg, tmp, port = h.one_route_config(h.backend_block(be.address), workers=1, tmp=tmp)
        cfg["log"]["access"] = {"path": "syslog", "format": fmt}
        pc = h.Portcullis(cfg, tmp=tmp, env={"PORTCULLIS_SYSLOG_PATH": path})
        pc.start()
        self.addCleanup(pc.stop)
        return sock, port, pc

    def test_json_lines_as_rfc5424_messages(self):
        sock, port, pc = self.start("json")
        for i in range(3):
            self.assertEqual(h.request(port, path="/s%d" % i).status, 200)
        for i in range(3):
            msg = sock.recv(65536).decode()
            m = HEADER.match(msg)
            self.assertIsNotNone(m, msg)
            self.assertIn(int(m.group(3)), pc.workers())
            rec = json.loads(m.group(4))
            self.assertEqual((rec["uri"], rec["status"], rec["route"]), ("/s%d" % i, 200, "web#1"))
            self.assertNotIn("\n", m.group(4))

    def test_combined_format(self):
        sock, port, pc = self.start("combined")
        self.assertEqual(h.request(port, path="/c").status, 200)
        m = HEADER.match(sock.recv(65536).decode())
        self.assertIsNotNone(m)
        self.assertRegex(m.group(4), r'"GET /c HTTP/1\.1" 200 ')


if __name__ == "__main__":
    unittest.main(verbosity=2)
