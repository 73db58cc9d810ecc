#!/usr/bin/python3
"""Raw-bytes HTTP/1.1 conformance of portcullis (RFC 9110 / RFC 9112).

Every vector is one row of VECTORS: a name, the RFC section it checks, the
exact bytes a client sends, what the client must see (status, or CUT for a
connection cut without a complete response; whether the connection is
closed), and what the backend must have received:

  * NOFWD: not one byte reached any backend connection;
  * F(...): exactly this request - request line, end-to-end header fields
    in order, framing header, body bytes - plus the forwarded headers
    (X-Forwarded-For/-Proto/-Host, X-Request-Id), with every hop-by-hop
    field removed and nothing else on that backend connection.

The backend is recorder.Recorder (the exact byte stream of every backend
connection); response-side vectors configure it to answer with canned,
often malformed, bytes.  The proxy runs one worker with `keepalive: 32`
to the recorder, so successive vectors share backend connections and any
stray byte left on one would show up in the next vector.

Each vector is its own test method (test_NNN_name).  A vector asserts what
the RFC requires (or, where it lets the recipient choose, what the product
contract in portcullis.yaml(5) says); a failing vector is a proxy bug to fix,
not a test to relax.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from recorder import Client, Incomplete, Recorder  # noqa: E402

CUT = "cut"      # connection closed without a complete response
NOFWD = None     # nothing may reach the backend
PROXY_ERRORS = (400, 404, 408, 413, 414, 431, 501, 502, 503, 504, 505)
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding",
       b"upgrade"}
ADDED = {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id"}


class F:
    """What one forwarded request must look like on the backend side.

    line     exact request line ({P} = the vector's path)
    body     exact body bytes on the wire (chunk framing included)
    e2e      exact end-to-end header fields in order [(name, value)], without
             the forwarded headers and Transfer-Encoding; default: the
             client's fields minus hop-by-hop ones and those Connection names
    te       the forwarded request carries "Transfer-Encoding: chunked"
    present  [(name, value)] that must appear exactly once with that value
    absent   names that must not appear
    upgrade  "Connection: upgrade" + Upgrade expected
    xfh      expected X-Forwarded-Host (default: the Host value; False: unchecked)
    closes   an ambiguous request (issue #12, ambiguous_requests: close): the
             server gets "Connection: close", and the client connection closes
    """

    def __init__(self, line=b"GET {P} HTTP/1.1", body=b"", e2e=None, te=None, present=(),
                 absent=(), upgrade=False, xfh=None, request_id=None, te_trailers=False,
                 closes=False):
        self.closes = closes
        self.line, self.body, self.e2e, self.te = line, body, e2e, te
        self.te_trailers = te_trailers
        self.present, self.absent, self.upgrade = present, absent, upgrade
        self.xfh, self.request_id = xfh, request_id


class V:
    """One conformance vector (see the module docstring).

    status   int, tuple of acceptable outcomes (ints or CUT), or a list (one
             entry per response, for pipelined requests)
    close    True: closed after the response(s); False: kept alive (checked
             with a follow-up request); None: either
    fwd      NOFWD, F, or a list of F (in the order the backend gets them)
    resp     Recorder.on() keywords for this vector's path
    steps    [(op, arg)] instead of "send req, read responses": ("send", bytes),
             ("interim", status), ("resp", method), ("echo", bytes)
    client   callable(test, responses, client) for extra client-side checks
    method   the request method (for reading the response)
    tunnel   bytes flow after the response (101): skip the stream-exactness check
    retry_ok the backend may get this idempotent request twice (RFC 9110 §9.2.2)
    resps    {path suffix: Recorder.on() keywords} for further paths ({P}/a ...)
    """

    def __init__(self, name, rfc, req, status, close, fwd=NOFWD, resp=None, steps=None,
                 client=None, method=b"GET", tunnel=False, retry_ok=False, resps=None):
        self.name, self.rfc, self.req, self.status, self.close = name, rfc, req, status, close
        self.fwd, self.resp, self.steps, self.client = fwd, resp, steps, client
        self.method, self.tunnel, self.retry_ok = method, tunnel, retry_ok
        self.resps = resps or {}   # {path suffix: Recorder.on() keywords}


def R(line, *fields, body=b""):
    """Request bytes: line, field lines, blank line, body."""
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


H = b"Host: h.test"
GET = b"GET {P} HTTP/1.1"
POST = b"POST {P} HTTP/1.1"
OK = F()


def resp_raw(raw, close=True, **kw):
    return dict(raw=raw, close=close, **kw)


# -- client-side extra checks --------------------------------------------------

def body_is(expected):
    def check(t, rs, c):
        t.assertEqual(rs[-1].body, expected)
    return check


def no_interim(t, rs, c):
    t.assertEqual([r.status for r in rs[-1].interim], [],
                  "1xx relayed to an HTTP/1.0 client (RFC 9110 §15.2)")


def interim_is(*statuses):
    def check(t, rs, c):
        t.assertEqual([r.status for r in rs[-1].interim], list(statuses))
    return check


def hdr_absent(*names):
    def check(t, rs, c):
        for n in names:
            t.assertIsNone(rs[-1].header(n), "%s reached the client" % n)
    return check


def hdr_equal(name, value):
    def check(t, rs, c):
        t.assertEqual(rs[-1].header_all(name), [value])
    return check


def no_transfer_coding_lost(t, rs, c):
    r = rs[-1]
    if r.status == 502:
        return
    codings = b",".join(r.header_all("Transfer-Encoding")).lower()
    t.assertIn(b"gzip", codings,
               "the gzip transfer coding was dropped: the client gets gzip bytes as identity")


def one_cl_or_502(t, rs, c):
    r = rs[-1]
    if r.status == 502:
        return
    t.assertEqual(r.header_all("Content-Length"), [b"5"],
                  "an invalid Content-Length list was forwarded (RFC 9110 §8.6)")


def v10_no_chunked(t, rs, c):
    r = rs[-1]
    t.assertEqual(r.header_all("Transfer-Encoding"), [],
                  "chunked response sent to an HTTP/1.0 client (RFC 9112 §6.1)")
    t.assertEqual(r.body, b"hello")


def all_of(*checks):
    def check(t, rs, c):
        for ch in checks:
            ch(t, rs, c)
    return check


# -- the vectors ---------------------------------------------------------------

BIG = b"a" * 9000
MANY_OK = tuple(b"X-H%d: %d" % (i, i) for i in range(99))       # + Host = 100
MANY_BAD = tuple(b"X-H%d: %d" % (i, i) for i in range(100))     # + Host = 101
HUGE = tuple(b"X-Big%d: %s" % (i, b"b" * 4000) for i in range(9))  # > 32k
WS_REQ = R(GET, H, b"Connection: Upgrade", b"Upgrade: websocket",
           b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
WS_101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
CH = b"5\r\nhello\r\n0\r\n\r\n"
TAIL = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

VECTORS = [
    # ---- request line (RFC 9112 §3) ----
    V("rl_simple_get", "RFC 9112 §3", R(GET, H), 200, False, OK),
    V("rl_lowercase_method_is_another_method", "RFC 9110 §9.1 (case-sensitive)",
      R(b"get {P} HTTP/1.1", H), 200, False, F(line=b"get {P} HTTP/1.1")),
    V("rl_extension_method", "RFC 9110 §9.1 / §16.1", R(b"PURGE {P} HTTP/1.1", H), 200, False,
      F(line=b"PURGE {P} HTTP/1.1")),
    V("rl_method_bad_tchar", "RFC 9112 §3.1 (method = token)", R(b"GE(T {P} HTTP/1.1", H),
      400, True),
    V("rl_method_slash", "RFC 9112 §3.1", R(b"GE/T {P} HTTP/1.1", H), 400, True),
    V("rl_method_non_ascii", "RFC 9112 §3.1", R(b"G\xc9T {P} HTTP/1.1", H), 400, True),
    V("rl_double_sp_before_target", "RFC 9112 §3 (single SP)", R(b"GET  {P} HTTP/1.1", H),
      400, True),
    V("rl_double_sp_before_version", "RFC 9112 §3", R(b"GET {P}  HTTP/1.1", H), 400, True),
    V("rl_trailing_sp", "RFC 9112 §3", R(b"GET {P} HTTP/1.1 ", H), 400, True),
    V("rl_htab_separator", "RFC 9112 §3", R(b"GET\t{P} HTTP/1.1", H), 400, True),
    V("rl_missing_version", "RFC 9112 §3 / §2.3", R(b"GET {P}", H), 400, True),
    V("rl_lowercase_version", "RFC 9112 §2.3 (case-sensitive)", R(b"GET {P} http/1.1", H),
      400, True),
    V("rl_version_2_0", "RFC 9110 §15.6.6 (505)", R(b"GET {P} HTTP/2.0", H), 505, True),
    V("rl_version_3_0", "RFC 9110 §15.6.6", R(b"GET {P} HTTP/3.0", H), 505, True),
    V("rl_version_0_9", "RFC 9110 §15.6.6", R(b"GET {P} HTTP/0.9", H), 505, True),
    V("rl_version_1_2_is_1_1", "RFC 9110 §2.5 (higher minor: process as 1.1)",
      R(b"GET {P} HTTP/1.2", H), 200, False, OK),
    V("rl_version_two_digit_minor", "RFC 9112 §2.3 (DIGIT.DIGIT)", R(b"GET {P} HTTP/1.10", H),
      400, True),
    V("rl_version_no_minor", "RFC 9112 §2.3", R(b"GET {P} HTTP/1", H), 400, True),
    V("rl_bare_lf_line_ends", "RFC 9112 §2.2 (strict: CRLF)",
      b"GET {P} HTTP/1.1\nHost: h.test\n\n", 400, True),
    V("rl_leading_empty_line_ignored", "RFC 9112 §2.2 (SHOULD ignore CRLF)",
      b"\r\n" + R(GET, H), 200, False, OK),
    V("rl_leading_bare_lf", "RFC 9112 §2.2", b"\n" + R(GET, H), 400, True),
    V("rl_target_del", "RFC 9112 §3.2", R(b"GET {P}/a\x7fb HTTP/1.1", H), 400, True),
    V("rl_target_ctl", "RFC 9112 §3.2", R(b"GET {P}/a\x01b HTTP/1.1", H), 400, True),
    V("rl_target_space_inside", "RFC 9112 §3", R(b"GET {P}/a b HTTP/1.1", H), 400, True),
    V("rl_target_obs_text_forwarded_verbatim", "RFC 9112 §3.2 (tolerated, never rewritten)",
      R(b"GET {P}/caf\xe9 HTTP/1.1", H), 200, False, F(line=b"GET {P}/caf\xe9 HTTP/1.1")),
    V("rl_query_forwarded_verbatim", "RFC 9112 §3.2.1", R(b"GET {P}?a=1&b=%20 HTTP/1.1", H),
      200, False, F(line=b"GET {P}?a=1&b=%20 HTTP/1.1")),
    V("rl_request_line_too_long", "RFC 9112 §3 (414)", R(b"GET {P}/" + BIG + b" HTTP/1.1", H),
      414, True),
    V("rl_request_line_endless", "RFC 9112 §3 (414)", b"GET {P}/" + b"a" * 40000, 414, True),

    # ---- request-target forms (RFC 9112 §3.2) ----
    V("tf_absolute_form", "RFC 9112 §3.2.2", R(b"GET http://h.test{P}?q=1 HTTP/1.1", H),
      200, False, F(line=b"GET {P}?q=1 HTTP/1.1")),
    V("tf_absolute_form_empty_path", "RFC 9112 §3.2.1 (empty path is /)",
      R(b"GET http://h.test HTTP/1.1", H), 200, False, F(line=b"GET / HTTP/1.1")),
    V("tf_absolute_form_query_without_path", "RFC 9112 §3.2.1 (empty path is /)",
      R(b"GET http://h.test?x=1 HTTP/1.1", H), 200, False, F(line=b"GET /?x=1 HTTP/1.1")),
    V("tf_absolute_form_host_case", "RFC 9110 §4.2.3 (host is case-insensitive)",
      R(b"GET http://H.TEST{P} HTTP/1.1", H), 200, False, OK),
    V("tf_absolute_form_host_mismatch", "RFC 9110 §7.2 / §15.5.1 (deceptive routing: 400)",
      R(b"GET http://h.test{P} HTTP/1.1", b"Host: other.test"), 400, True),
    V("tf_absolute_form_userinfo", "RFC 9110 §4.2.4 (userinfo is an error)",
      R(b"GET http://user@h.test{P} HTTP/1.1", H), 400, True),
    V("tf_absolute_form_without_host_1_1", "RFC 9112 §3.2 (1.1 needs Host)",
      R(b"GET http://h.test{P} HTTP/1.1"), 400, True),
    V("tf_absolute_form_1_0_adds_host", "RFC 9112 §3.2.2 / RFC 9110 §7.2",
      R(b"GET http://h.test{P} HTTP/1.0"), 200, True,
      F(line=b"GET {P} HTTP/1.1", e2e=[(b"Host", b"h.test")], xfh=False)),
    V("tf_absolute_form_other_scheme", "RFC 9112 §3.2.2", R(b"GET ftp://h.test{P} HTTP/1.1", H),
      400, True),
    V("tf_asterisk_options", "RFC 9112 §3.2.4", R(b"OPTIONS * HTTP/1.1", H), 200, False,
      F(line=b"OPTIONS * HTTP/1.1")),
    V("tf_asterisk_get", "RFC 9112 §3.2.4 (OPTIONS only)", R(b"GET * HTTP/1.1", H), 400, True),
    V("tf_connect", "RFC 9110 §9.3.6 / §15.6.2 (501)",
      R(b"CONNECT h.test:443 HTTP/1.1", b"Host: h.test:443"), 501, True),
    V("tf_authority_form_not_connect", "RFC 9112 §3.2.3", R(b"GET h.test:80 HTTP/1.1", H),
      400, True),
    V("tf_relative_target", "RFC 9112 §3.2.1", R(b"GET c001 HTTP/1.1", H), 400, True),

    # ---- field syntax (RFC 9112 §5, RFC 9110 §5) ----
    V("hs_space_before_colon", "RFC 9112 §5.1 (MUST 400)", R(GET, H, b"X-A : b"), 400, True),
    V("hs_htab_before_colon", "RFC 9112 §5.1", R(GET, H, b"X-A\t: b"), 400, True),
    V("hs_obs_fold_sp", "RFC 9112 §5.2", R(GET, H, b"X-A: one", b" two"), 400, True),
    V("hs_obs_fold_htab", "RFC 9112 §5.2", R(GET, H, b"X-A: one", b"\ttwo"), 400, True),
    V("hs_whitespace_after_request_line", "RFC 9112 §2.2",
      R(GET, b" X-A: b", H), 400, True),
    V("hs_bare_cr_in_value", "RFC 9112 §2.2", R(GET, H, b"X-A: a\rb"), 400, True),
    V("hs_bare_cr_in_name", "RFC 9112 §2.2", R(GET, H, b"X\r-A: b"), 400, True),
    V("hs_bare_lf_between_fields", "RFC 9112 §2.2", b"GET {P} HTTP/1.1\r\nHost: h.test\nX-A: b\r\n\r\n",
      400, True),
    V("hs_nul_in_value", "RFC 9110 §5.5 (NUL)", R(GET, H, b"X-A: a\x00b"), 400, True),
    V("hs_nul_in_name", "RFC 9110 §5.1", R(GET, H, b"X-\x00A: b"), 400, True),
    V("hs_ctl_in_value", "RFC 9110 §5.5", R(GET, H, b"X-A: a\x01b"), 400, True),
    V("hs_vt_in_value", "RFC 9110 §5.5", R(GET, H, b"X-A: a\x0bb"), 400, True),
    V("hs_del_in_value", "RFC 9110 §5.5", R(GET, H, b"X-A: a\x7fb"), 400, True),
    V("hs_htab_in_value", "RFC 9110 §5.5 (HTAB allowed)", R(GET, H, b"X-A: a\tb"), 200, False,
      F(present=[(b"X-A", b"a\tb")])),
    V("hs_obs_text_in_value", "RFC 9110 §5.5 (obs-text)", R(GET, H, b"X-A: caf\xe9"), 200, False,
      F(present=[(b"X-A", b"caf\xe9")])),
    V("hs_empty_name", "RFC 9112 §5 (field-name = token)", R(GET, H, b": b"), 400, True),
    V("hs_name_with_at", "RFC 9110 §5.1", R(GET, H, b"X@A: b"), 400, True),
    V("hs_name_with_space", "RFC 9110 §5.1", R(GET, H, b"X A: b"), 400, True),
    V("hs_line_without_colon", "RFC 9112 §5", R(GET, H, b"X-A"), 400, True),
    V("hs_ows_trimmed", "RFC 9112 §5.1 (OWS is not part of the value)",
      R(GET, H, b"X-A: \t v \t "), 200, False, F(present=[(b"X-A", b"v")])),
    V("hs_empty_value", "RFC 9110 §5.5 (empty value is valid)", R(GET, H, b"X-E:"), 200, False,
      F(present=[(b"X-E", b"")])),
    V("hs_underscore_in_name", "RFC 9110 §5.6.2 (_ is a tchar; not forwarded: "
      "underscores_in_headers: drop, servers may read X_A as X-A)", R(GET, H, b"X_A: b"), 200,
      False, F(e2e=[(b"Host", b"h.test")], absent=[b"X_A"])),
    V("hs_100_fields_ok", "RFC 6585 §5 (limit is 100 fields)", R(GET, H, *MANY_OK), 200, False,
      OK),
    V("hs_101_fields", "RFC 6585 §5 (431)", R(GET, H, *MANY_BAD), 431, True),
    V("hs_fields_too_large", "RFC 6585 §5 (431)", R(GET, H, *HUGE), 431, True),

    # ---- Host (RFC 9112 §3.2, RFC 9110 §7.2) ----
    V("ho_missing_1_1", "RFC 9112 §3.2 (MUST 400)", R(GET, b"X-A: b"), 400, True),
    V("ho_missing_1_0_ok", "RFC 9112 §3.2 (1.0 may omit Host; forwarded as 1.1 it gets an "
      "empty one)", R(b"GET {P} HTTP/1.0"), 200,
      True, F(line=b"GET {P} HTTP/1.1", e2e=[(b"Host", b"")])),
    V("ho_duplicate_same", "RFC 9112 §3.2 (MUST 400)", R(GET, H, H), 400, True),
    V("ho_duplicate_different", "RFC 9112 §3.2", R(GET, H, b"Host: evil.test"), 400, True),
    V("ho_empty_value_ok", "RFC 9112 §3.2 (empty Host is valid)", R(GET, b"Host:"), 200, False,
      OK),
    V("ho_with_port", "RFC 9110 §7.2", R(GET, b"Host: h.test:8080"), 200, False, OK),
    V("ho_ipv6_literal", "RFC 9110 §7.2 / RFC 3986 §3.2.2", R(GET, b"Host: [::1]:8080"), 200,
      False, OK),
    V("ho_case_kept", "RFC 9110 §7.2 (Host forwarded unchanged)", R(GET, b"Host: H.Test"), 200,
      False, OK),
    V("ho_space_inside", "RFC 9112 §3.2 (invalid Host: 400)", R(GET, b"Host: h test"), 400, True),
    V("ho_slash", "RFC 9112 §3.2", R(GET, b"Host: h.test/x"), 400, True),
    V("ho_userinfo", "RFC 9112 §3.2", R(GET, b"Host: u@h.test"), 400, True),

    # ---- Content-Length (RFC 9110 §8.6, RFC 9112 §6.3) ----
    V("cl_body", "RFC 9112 §6.2", R(POST, H, b"Content-Length: 5", body=b"hello"), 200, False,
      F(line=POST, body=b"hello")),
    V("cl_zero", "RFC 9112 §6.2", R(POST, H, b"Content-Length: 0"), 200, False, F(line=POST)),
    V("cl_on_get", "RFC 9110 §9.3.1 (a body on GET has no defined semantics: forwarded, "
      "then both sides closed: ambiguous_requests: close)",
      R(GET, H, b"Content-Length: 3", body=b"abc"), 200, True,
      F(body=b"abc", e2e=[(b"Host", b"h.test"), (b"Content-Length", b"3")], closes=True)),
    V("cl_leading_zeros", "RFC 9110 §8.6 (1*DIGIT)",
      R(POST, H, b"Content-Length: 005", body=b"hello"), 200, False, F(line=POST, body=b"hello")),
    V("cl_plus_sign", "RFC 9112 §6.3 rule 5 (invalid: 400)",
      R(POST, H, b"Content-Length: +5", body=b"hello"), 400, True),
    V("cl_negative", "RFC 9112 §6.3 rule 5", R(POST, H, b"Content-Length: -1"), 400, True),
    V("cl_space_inside", "RFC 9112 §6.3 rule 5", R(POST, H, b"Content-Length: 1 0",
                                                    body=b"x" * 10), 400, True),
    V("cl_hex", "RFC 9112 §6.3 rule 5", R(POST, H, b"Content-Length: 0x5", body=b"hello"),
      400, True),
    V("cl_empty", "RFC 9112 §6.3 rule 5", R(POST, H, b"Content-Length:"), 400, True),
    V("cl_trailing_comma", "RFC 9110 §8.6", R(POST, H, b"Content-Length: 5,", body=b"hello"),
      400, True),
    V("cl_overflow", "RFC 9110 §8.6 (overflow is an error)",
      R(POST, H, b"Content-Length: 99999999999999999999999", body=b"x"), (400, 413), True),
    V("cl_list_same_collapsed", "RFC 9110 §8.6 (same value repeated: one value forwarded)",
      R(POST, H, b"Content-Length: 5, 5", body=b"hello"), 200, True,
      F(line=POST, body=b"hello", e2e=[(b"Host", b"h.test"), (b"Content-Length", b"5")],
        closes=True)),
    V("cl_list_different", "RFC 9112 §6.3 rule 5", R(POST, H, b"Content-Length: 5, 6",
                                                     body=b"hello!"), 400, True),
    V("cl_two_fields_same_collapsed", "RFC 9110 §8.6 (exactly one framing header)",
      R(POST, H, b"Content-Length: 5", b"Content-Length: 5", body=b"hello"), 200, True,
      F(line=POST, body=b"hello", e2e=[(b"Host", b"h.test"), (b"Content-Length", b"5")],
        closes=True)),
    V("cl_two_fields_different", "RFC 9112 §6.3 rule 5",
      R(POST, H, b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"), 400, True),
    V("cl_over_max_body_size", "RFC 9110 §15.5.14 (413)",
      R(POST, b"Host: small.test", b"Content-Length: 17", body=b"x" * 17), 413, True),

    # ---- Transfer-Encoding (RFC 9112 §6.1, §6.3) ----
    V("te_chunked", "RFC 9112 §7.1", R(POST, H, b"Transfer-Encoding: chunked", body=CH), 200,
      False, F(line=POST, body=CH)),
    V("te_chunked_mixed_case", "RFC 9112 §7 (coding names are case-insensitive)",
      R(POST, H, b"Transfer-Encoding: Chunked", body=CH), 200, False, F(line=POST, body=CH)),
    V("te_chunked_empty_list_element", "RFC 9110 §5.6.1 (empty elements ignored)",
      R(POST, H, b"Transfer-Encoding: , chunked", body=CH), 200, False, F(line=POST, body=CH)),
    V("te_chunked_htab_ows", "RFC 9110 §5.6.3 (HTAB is OWS)",
      R(POST, H, b"Transfer-Encoding:\tchunked", body=CH), 200, False, F(line=POST, body=CH)),
    V("te_chunked_twice_list", "RFC 9112 §6.1 (chunked only once)",
      R(POST, H, b"Transfer-Encoding: chunked, chunked", body=CH), 400, True),
    V("te_chunked_twice_fields", "RFC 9112 §6.1",
      R(POST, H, b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked", body=CH),
      400, True),
    V("te_gzip_only", "RFC 9112 §6.3 rule 4 (chunked not final: 400)",
      R(POST, H, b"Transfer-Encoding: gzip", body=b"xxxx"), 400, True),
    V("te_chunked_then_gzip", "RFC 9112 §6.3 rule 4",
      R(POST, H, b"Transfer-Encoding: chunked, gzip", body=CH), 400, True),
    V("te_gzip_chunked", "RFC 9112 §6.1 (unknown coding: 501)",
      R(POST, H, b"Transfer-Encoding: gzip, chunked", body=CH), 501, True),
    V("te_gzip_then_chunked_fields", "RFC 9112 §6.1",
      R(POST, H, b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked", body=CH), 501, True),
    V("te_identity", "RFC 9112 §6.3 rule 4 (identity is not a coding)",
      R(POST, H, b"Transfer-Encoding: identity", body=b"xx"), 400, True),
    V("te_xchunked", "RFC 9112 §6.3 rule 4", R(POST, H, b"Transfer-Encoding: xchunked", body=CH),
      400, True),
    V("te_chunked_with_parameter", "RFC 9112 §7 (chunked takes no parameters)",
      R(POST, H, b"Transfer-Encoding: chunked;q=1", body=CH), (400, 501), True),
    V("te_empty_value", "RFC 9112 §6.3 rule 4", R(POST, H, b"Transfer-Encoding:", body=CH),
      400, True),
    V("te_in_http_1_0", "RFC 9112 §6.1 (1.0 + TE: faulty framing)",
      R(b"POST {P} HTTP/1.0", H, b"Transfer-Encoding: chunked", body=CH), 400, True),
    V("te_and_cl", "RFC 9112 §6.1 / §6.3 rule 3 (reject, close)",
      R(POST, H, b"Content-Length: 4", b"Transfer-Encoding: chunked", body=CH), 400, True),
    V("te_and_cl_after", "RFC 9112 §6.3 rule 3",
      R(POST, H, b"Transfer-Encoding: chunked", b"Content-Length: 15", body=CH), 400, True),

    # ---- chunked bodies (RFC 9112 §7.1) ----
    V("ch_extension_forwarded", "RFC 9112 §7.1.1 (extensions ignored, passed on)",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"5;ext=1\r\nhello\r\n0\r\n\r\n"), 200,
      False, F(line=POST, body=b"5;ext=1\r\nhello\r\n0\r\n\r\n")),
    V("ch_extension_quoted", "RFC 9112 §7.1.1",
      R(POST, H, b"Transfer-Encoding: chunked", body=b'5;a="b c"\r\nhello\r\n0\r\n\r\n'), 200,
      False, F(line=POST, body=b'5;a="b c"\r\nhello\r\n0\r\n\r\n')),
    V("ch_bws_before_extension", "RFC 9112 §7.1.1 (BWS)",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"5 ;a=b\r\nhello\r\n0\r\n\r\n"), 200,
      False, F(line=POST, body=b"5 ;a=b\r\nhello\r\n0\r\n\r\n")),
    V("ch_trailers_forwarded", "RFC 9112 §7.1.2",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), 200,
      False, F(line=POST, body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")),
    V("ch_empty_body", "RFC 9112 §7.1 (last-chunk only)",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 200, False,
      F(line=POST, body=b"0\r\n\r\n")),
    V("ch_one_byte_chunks", "RFC 9112 §7.1",
      R(POST, H, b"Transfer-Encoding: chunked",
        body=b"".join(b"1\r\n%c\r\n" % c for c in b"hello") + b"0\r\n\r\n"), 200, False,
      F(line=POST, body=b"".join(b"1\r\n%c\r\n" % c for c in b"hello") + b"0\r\n\r\n")),
    V("ch_leading_zeros_uppercase", "RFC 9112 §7.1 (1*HEXDIG)",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"000A\r\n0123456789\r\n0\r\n\r\n"), 200,
      False, F(line=POST, body=b"000A\r\n0123456789\r\n0\r\n\r\n")),
    V("ch_bad_hex", "RFC 9112 §7.1", R(POST, H, b"Transfer-Encoding: chunked",
                                       body=b"zz\r\nhello\r\n0\r\n\r\n"), 400, True),
    V("ch_size_overflow", "RFC 9112 §7.1 (overflow is an error)",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
      400, True),
    V("ch_negative_size", "RFC 9112 §7.1", R(POST, H, b"Transfer-Encoding: chunked",
                                             body=b"-5\r\nhello\r\n0\r\n\r\n"), 400, True),
    V("ch_0x_size", "RFC 9112 §7.1", R(POST, H, b"Transfer-Encoding: chunked",
                                       body=b"0x5\r\nhello\r\n0\r\n\r\n"), 400, True),
    V("ch_space_inside_size", "RFC 9112 §7.1", R(POST, H, b"Transfer-Encoding: chunked",
                                                 body=b"5 5\r\nhello\r\n0\r\n\r\n"), 400, True),
    V("ch_missing_crlf_after_data", "RFC 9112 §7.1",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"5\r\nhelloXX0\r\n\r\n"), 400, True),
    V("ch_bare_lf_size_line", "RFC 9112 §7.1 / §2.2",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"5\nhello\r\n0\r\n\r\n"), 400, True),
    V("ch_bare_lf_last_chunk", "RFC 9112 §7.1 / §2.2",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\n\n"), 400, True),
    V("ch_trailer_obs_fold", "RFC 9112 §7.1.2 / §5.2",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"0\r\nX-T: 1\r\n 2\r\n\r\n"), 400, True),
    V("ch_trailer_without_colon", "RFC 9112 §7.1.2",
      R(POST, H, b"Transfer-Encoding: chunked", body=b"0\r\nX-T\r\n\r\n"), 400, True),

    # ---- hop-by-hop fields (RFC 9110 §7.6.1) ----
    V("hb_connection_close", "RFC 9112 §9.6", R(GET, H, b"Connection: close"), 200, True, OK,
      client=hdr_equal("Connection", b"close")),
    V("hb_connection_keep_alive", "RFC 9110 §7.6.1", R(GET, H, b"Connection: keep-alive"), 200,
      False, OK),
    V("hb_connection_names_field", "RFC 9110 §7.6.1 (named fields removed)",
      R(GET, H, b"Connection: X-Custom", b"X-Custom: secret", b"X-Other: kept"), 200, False,
      F(absent=[b"X-Custom"], present=[(b"X-Other", b"kept")])),
    V("hb_connection_two_fields", "RFC 9110 §7.6.1",
      R(GET, H, b"Connection: X-A", b"X-A: 1", b"Connection: x-b, close", b"X-B: 2"), 200, True,
      F(absent=[b"X-A", b"X-B"])),
    V("hb_keep_alive_field", "RFC 9110 §7.6.1", R(GET, H, b"Keep-Alive: timeout=5"), 200, False,
      F(absent=[b"Keep-Alive"])),
    V("hb_proxy_connection", "RFC 9112 §C.2.2 / RFC 9110 §7.6.1",
      R(GET, H, b"Proxy-Connection: keep-alive"), 200, False, F(absent=[b"Proxy-Connection"])),
    V("hb_te_trailers", "RFC 9110 §10.1.4 (TE is hop-by-hop; trailers is re-announced with "
      "its Connection option)", R(GET, H, b"TE: trailers"), 200, False, F(te_trailers=True)),
    V("hb_te_gzip_trailers", "RFC 9110 §10.1.4", R(GET, H, b"TE: gzip, trailers;q=1"), 200,
      False, F(te_trailers=True)),
    V("hb_te_gzip", "RFC 9110 §10.1.4", R(GET, H, b"TE: gzip"), 200, False, F(absent=[b"TE"])),
    V("hb_upgrade_without_connection_option", "RFC 9110 §7.8 (Upgrade needs Connection: upgrade)",
      R(GET, H, b"Upgrade: websocket"), 200, False, F(absent=[b"Upgrade"])),
    V("hb_upgrade_in_http_1_0_ignored", "RFC 9110 §7.8 (ignored in 1.0)",
      R(b"GET {P} HTTP/1.0", H, b"Connection: upgrade", b"Upgrade: websocket"), 200, True,
      F(line=b"GET {P} HTTP/1.1", absent=[b"Upgrade"])),
    V("hb_connection_names_content_length", "RFC 9110 §7.6.1 (framing never stripped)",
      R(POST, H, b"Connection: Content-Length", b"Content-Length: 5", body=b"hello"), 200, False,
      F(line=POST, body=b"hello", e2e=[(b"Host", b"h.test"), (b"Content-Length", b"5")])),
    V("hb_connection_names_host", "RFC 9110 §7.6.1 / §7.2 (Host kept)",
      R(GET, H, b"Connection: Host"), 200, False, F(e2e=[(b"Host", b"h.test")])),
    V("hb_trailer_field_is_end_to_end", "RFC 9110 §6.6.2 (Trailer is not hop-by-hop)",
      R(POST, H, b"Trailer: X-T", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), 200, False,
      F(line=POST, body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", present=[(b"Trailer", b"X-T")])),
    V("hb_forwarded_headers_replaced",
      "portcullis.yaml(5) forwarded_headers (untrusted client)",
      R(GET, H, b"X-Forwarded-For: 6.6.6.6", b"X-Forwarded-Proto: https",
        b"X-Forwarded-Host: evil.test"), 200, False, OK),
    V("hb_request_id_kept", "portcullis.yaml(5) X-Request-Id",
      R(GET, H, b"X-Request-Id: abc-123"), 200,
      False, F(request_id=b"abc-123")),
    V("hb_request_id_invalid_replaced", "portcullis.yaml(5) X-Request-Id",
      R(GET, H, b"X-Request-Id: a,b"), 200, False, F(request_id=b"generated")),

    # ---- Expect (RFC 9110 §10.1.1) ----
    V("ex_100_continue_from_backend", "RFC 9110 §10.1.1 / §15.2.1",
      None, 200, False, F(line=POST, body=b"hello"),
      steps=[("send", R(POST, H, b"Expect: 100-continue", b"Content-Length: 5")),
             ("interim", 100), ("send", b"hello"), ("resp", b"POST")]),
    V("ex_final_status_without_100", "RFC 9110 §10.1.1 (final answer, body never sent)",
      None, 417, True, F(line=POST),
      resp=dict(status=417, headers=[("Content-Length", "0")], expect100=False,
                read_body=False),
      steps=[("send", R(POST, H, b"Expect: 100-continue", b"Content-Length: 5")),
             ("resp", b"POST")]),
    V("ex_no_1xx_to_http_1_0_client", "RFC 9110 §15.2 (no 1xx to 1.0 clients)",
      R(b"POST {P} HTTP/1.0", H, b"Expect: 100-continue", b"Content-Length: 5", body=b"hello"),
      200, True, F(line=b"POST {P} HTTP/1.1", body=b"hello"),
      resp=dict(interim=b"HTTP/1.1 100 Continue\r\n\r\n", keep=True), client=no_interim,
      method=b"POST"),

    # ---- bodiless responses, interim responses (RFC 9112 §6.3, RFC 9110 §15.2) ----
    V("nb_head", "RFC 9110 §9.3.2 (no body)", R(b"HEAD {P} HTTP/1.1", H), 200, False,
      F(line=b"HEAD {P} HTTP/1.1"), method=b"HEAD",
      client=lambda t, rs, c: t.assertIsNotNone(rs[-1].header("Content-Length"))),
    V("nb_head_with_stray_body", "RFC 9112 §6.3 rule 1 (HEAD response has no body)",
      R(b"HEAD {P} HTTP/1.1", H), 200, False, F(line=b"HEAD {P} HTTP/1.1"), method=b"HEAD",
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled", close=False)),
    V("nb_204_with_tail", "RFC 9112 §6.3 rule 1 (204 ends at the head)", R(GET, H), 204, False,
      OK, resp=resp_raw(b"HTTP/1.1 204 No Content\r\n\r\n" + TAIL, close=False),
      client=body_is(b"")),
    V("nb_304_with_tail", "RFC 9112 §6.3 rule 1 (304 ends at the head)", R(GET, H), 304, False,
      OK, resp=resp_raw(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n" + TAIL, close=False),
      client=body_is(b"")),
    V("nb_103_before_final", "RFC 9110 §15.2 (1xx forwarded)", R(GET, H), 200, False, OK,
      resp=resp_raw(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close=False),
      client=all_of(interim_is(103), body_is(b"ok"))),
    V("nb_two_1xx_before_final", "RFC 9110 §15.2", R(GET, H), 200, False, OK,
      resp=resp_raw([b"HTTP/1.1 100 Continue\r\n\r\n",
                     b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], close=False),
      client=all_of(interim_is(100, 103), body_is(b"ok"))),
    V("nb_1xx_not_to_http_1_0", "RFC 9110 §15.2 (no 1xx to 1.0 clients)",
      R(b"GET {P} HTTP/1.0", H), 200, True, F(line=b"GET {P} HTTP/1.1"),
      resp=resp_raw(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close=False, keep=True),
      client=no_interim),
    V("nb_1xx_then_final_then_close", "RFC 9110 §15.2 / RFC 9112 §9.6", R(GET, H), 200, None, OK,
      resp=resp_raw(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", cork=True),
      client=all_of(interim_is(103), body_is(b"ok"))),
    V("nb_101_without_upgrade_request", "RFC 9110 §15.2.2 (101 only after Upgrade)",
      R(GET, H), 502, True, OK, resp=resp_raw(WS_101)),

    # ---- pipelining (RFC 9112 §9.3.2) ----
    V("pl_three_gets", "RFC 9112 §9.3.2 (responses in order)",
      R(b"GET {P}/1 HTTP/1.1", H) + R(b"GET {P}/2 HTTP/1.1", H) + R(b"GET {P}/3 HTTP/1.1", H),
      [200, 200, 200], False,
      [F(line=b"GET {P}/%d HTTP/1.1" % i, e2e=[(b"Host", b"h.test")], te=False)
       for i in (1, 2, 3)],
      client=lambda t, rs, c: [t.assertRegex(r.body, rb" GET /c\d+/%d\n$" % (i + 1))
                               for i, r in enumerate(rs)]),
    V("pl_post_then_get", "RFC 9112 §9.3.2",
      R(POST, H, b"Content-Length: 5", body=b"hello") + R(b"GET {P}/2 HTTP/1.1", H),
      [200, 200], False,
      [F(line=POST, body=b"hello", e2e=[(b"Host", b"h.test"), (b"Content-Length", b"5")]),
       F(line=b"GET {P}/2 HTTP/1.1", e2e=[(b"Host", b"h.test")], te=False)]),
    V("pl_chunked_then_get", "RFC 9112 §9.3.2 / §7.1",
      R(POST, H, b"Transfer-Encoding: chunked", body=CH) + R(b"GET {P}/2 HTTP/1.1", H),
      [200, 200], False,
      [F(line=POST, body=CH, e2e=[(b"Host", b"h.test")], te=True),
       F(line=b"GET {P}/2 HTTP/1.1", e2e=[(b"Host", b"h.test")], te=False)]),
    V("pl_second_invalid", "RFC 9112 §9.3.2 / §5.1",
      R(GET, H) + R(b"GET {P}/2 HTTP/1.1", H, b"X-A : b") + R(b"GET {P}/3 HTTP/1.1", H),
      [200, 400], True, [F(e2e=[(b"Host", b"h.test")], te=False)]),

    V("pl_after_connection_close", "RFC 9112 §9.6 (nothing after close is read; the "
      "close is staged, so the response is not lost to a reset)",
      R(GET, H, b"Connection: close") + R(b"GET {P}/2 HTTP/1.1", H),
      200, True, F(e2e=[(b"Host", b"h.test")], te=False)),

    # ---- HTTP/1.0 clients (RFC 9112 §9.3, §6.1; forwarded as HTTP/1.1, RFC 9110 §2.5:
    # an intermediary sends its own version) ----
    V("v10_get", "RFC 9112 §9.3 (1.0: close by default)", R(b"GET {P} HTTP/1.0", H), 200, True,
      F(line=b"GET {P} HTTP/1.1")),
    V("v10_keep_alive", "RFC 9112 §9.3 / Appendix C.2.2 (1.0 keep-alive)",
      R(b"GET {P} HTTP/1.0", H, b"Connection: keep-alive"), 200, False,
      F(line=b"GET {P} HTTP/1.1"), client=hdr_equal("Connection", b"keep-alive")),
    V("v10_post_body", "RFC 9112 §6.2", R(b"POST {P} HTTP/1.0", H, b"Content-Length: 5",
                                          body=b"hello"), 200, True,
      F(line=b"POST {P} HTTP/1.1", body=b"hello"), method=b"POST"),
    V("v10_never_gets_chunked", "RFC 9112 §6.1, §7.1 (no Transfer-Encoding to 1.0: the "
      "chunked body is decoded and delimited by the close)",
      R(b"GET {P} HTTP/1.0", H), 200, True, F(line=b"GET {P} HTTP/1.1"),
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + CH),
      client=v10_no_chunked),

    # ---- persistence (RFC 9112 §9.3, §9.6) ----
    V("cc_backend_connection_close", "RFC 9112 §9.6", R(GET, H), 200, None, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
      client=body_is(b"ok")),
    V("cc_closed_backend_connection_not_reused", "RFC 9112 §9.6 / §9.3.1 (server closed: "
      "the connection is not reused, the POST is not lost)",
      None, [200, 200], False,
      [F(line=b"GET {P}/a HTTP/1.1", e2e=[(b"Host", b"h.test")], te=False),
       F(line=b"POST {P}/b HTTP/1.1", body=b"hello", te=False,
         e2e=[(b"Host", b"h.test"), (b"Content-Length", b"5")])],
      resps={b"/a": resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", cork=True)},
      steps=[("send", R(b"GET {P}/a HTTP/1.1", H)), ("resp", b"GET"),
             ("send", R(b"POST {P}/b HTTP/1.1", H, b"Content-Length: 5", body=b"hello")),
             ("resp", b"POST")]),
    V("cc_close_delimited_response", "RFC 9112 §6.3 rule 8", R(GET, H), 200, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"),
      client=body_is(b"until close")),

    # ---- responses the proxy must not pass on (RFC 9112 §4, §5, §6) ----
    V("rs_cl_and_te", "RFC 9112 §6.3 rule 3", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + CH)),
    V("rs_obs_fold", "RFC 9112 §5.2 (proxy: 502 or unfold)", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_status_not_digits", "RFC 9112 §4", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_status_two_digits", "RFC 9112 §4", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_status_600", "RFC 9110 §15 (100..599)", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_not_http", "RFC 9112 §4", R(GET, H), 502, True, OK,
      resp=resp_raw(b"ICY 200 OK\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_http_2_status_line", "RFC 9112 §2.3", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_bare_lf", "RFC 9112 §2.2 (strict)", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")),
    V("rs_space_before_colon", "RFC 9112 §5.1 (proxy: strip it, or 502)", R(GET, H), (502, 200),
      None, OK, resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok")),
    V("rs_nul_in_field", "RFC 9110 §5.5", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok")),
    V("rs_cl_list_different", "RFC 9112 §6.3 rule 5", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok!")),
    V("rs_cl_two_fields_different", "RFC 9112 §6.3 rule 5", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!")),
    V("rs_cl_list_same_not_forwarded_as_list", "RFC 9110 §8.6 (one value, or reject)",
      R(GET, H), (200, 502), None, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", close=False),
      client=one_cl_or_502),
    V("rs_te_in_http_1_0_response", "RFC 9112 §6.1", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + CH)),
    V("rs_bad_chunk_size", "RFC 9112 §7.1", R(GET, H), (502, CUT), True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")),
    V("rs_bad_chunk_later", "RFC 9112 §7.1", R(GET, H), (502, CUT), True, OK,
      resp=resp_raw([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                     b"5\r\nworldXX0\r\n\r\n"], gap=0.2)),
    V("rs_truncated_cl_body", "RFC 9112 §6.3 rule 7 (incomplete: cut)", R(GET, H), (502, CUT),
      True, OK, resp=resp_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 10],
                              gap=0.2)),
    V("rs_truncated_chunked_body", "RFC 9112 §7.1 (incomplete: cut)", R(GET, H), (502, CUT),
      True, OK, resp=resp_raw([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                               b"5\r\nhello\r\n"], gap=0.2)),
    V("rs_truncated_head", "RFC 9112 §6.3 (502)", R(GET, H), 502, True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nContent-Len")),
    V("rs_empty_response", "RFC 9110 §15.6.3 (502)", R(GET, H), 502, True, OK,
      resp=resp_raw(b""), retry_ok=True),
    V("rs_no_retry_of_post", "RFC 9112 §9.3.1 (a proxy MUST NOT retry non-idempotent requests)",
      None, [200, 502], True,
      [F(line=b"GET {P}/warm HTTP/1.1", e2e=[(b"Host", b"h.test")], te=False),
       F(line=POST, e2e=[(b"Host", b"h.test"), (b"Content-Length", b"0")], te=False)],
      resp=resp_raw(b""),
      steps=[("send", R(b"GET {P}/warm HTTP/1.1", H)), ("resp", b"GET"),
             ("send", R(POST, H, b"Content-Length: 0")), ("resp", b"POST")]),
    V("rs_gzip_chunked_coding_kept", "RFC 9112 §6.1 (codings are not dropped silently)",
      R(GET, H), (200, 502), None, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + CH,
                    close=False),
      client=no_transfer_coding_lost),
    V("rs_gzip_close_delimited_coding_kept", "RFC 9112 §6.1 / §6.3 rule 4",
      R(GET, H), (200, 502), True, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8bnot-identity"),
      client=no_transfer_coding_lost),
    V("rs_hidden_headers", "portcullis.yaml(5) hide_response_headers",
      R(GET, H), 200, False, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nServer: nginx/1.2.3\r\nX-Powered-By: PHP/5\r\n"
                    b"X-Kept: yes\r\nContent-Length: 2\r\n\r\nok", close=False),
      client=all_of(hdr_absent("Server", "X-Powered-By"), hdr_equal("X-Kept", b"yes"))),
    V("rs_hop_by_hop_removed", "RFC 9110 §7.6.1 (response side)", R(GET, H), 200, False, OK,
      resp=resp_raw(b"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\n"
                    b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nContent-Length: 2"
                    b"\r\n\r\nok", close=False),
      client=hdr_absent("X-Secret", "Keep-Alive", "Proxy-Connection")),

    # ---- upgrade (RFC 9110 §7.8) ----
    V("ws_upgrade_tunnel", "RFC 9110 §7.8 / RFC 6455 §4", None, 101, None,
      F(upgrade=True), resp=resp_raw(WS_101, close=False, tunnel=True), tunnel=True,
      steps=[("send", WS_REQ), ("resp", b"GET"), ("echo", b"\x81\x05hello"),
             ("echo", b"x" * 70000)]),
]


# -- the test case ------------------------------------------------------------

class ConformanceTest(unittest.TestCase):
    """One portcullis (1 worker, keepalive 32) in front of a Recorder."""

    @classmethod
    def setUpClass(cls):
        cls.rec = Recorder()
        cls.addClassCleanup(cls.rec.stop)
        cls.tmp = h.make_tmpdir()
        cls.port = h.free_port()
        listeners = [{"name": "web", "bind": "127.0.0.1:%d" % cls.port, "routes": [
            {"host": ["small.test"], "path_prefix": "/", "backend": "rec",
             "max_body_size": 16},
            {"path_prefix": "/", "backend": "rec"},
        ]}]
        # broken responses are the point here: no passive marking down (503)
        backends = {"rec": h.backend_block(cls.rec.address, keepalive=32,
                                           response_timeout="3s",
                                           passive={"max_fails": 0})}
        cfg = h.base_config(cls.tmp, listeners, backends, workers=1)
        cfg["defaults"].update(client_header_timeout="2s", keepalive_timeout="10s")
        cls.pc = h.Portcullis(cfg)
        cls.pc.start()
        cls.addClassCleanup(cls.pc.stop)
        cls.version = (h.project_version() or "0.0.0").encode()

    # -- helpers -----------------------------------------------------------
    def run_vector(self, i, v):
        path = b"/c%03d" % i

        def sub(b):
            return b.replace(b"{P}", path)
        if v.resp:
            self.rec.on(path, **v.resp)
        for suffix, spec in v.resps.items():
            self.rec.on(path + suffix, **spec)
        errors_before = set(self.rec.errors())
        mark = self.rec.mark()
        steps = v.steps or ([("send", v.req)] + [("resp", v.method)] *
                            (len(v.status) if isinstance(v.status, list) else 1))
        statuses = v.status if isinstance(v.status, list) else [v.status]
        responses = []
        outcomes = []
        cut = None
        c = Client(self.port, timeout=5)
        try:
            for op, arg in steps:
                if op == "send":
                    c.send(sub(arg))
                elif op == "interim":
                    r = c._read_one(b"GET")
                    self.assertEqual(r.status, arg, "expected a %d interim response" % arg)
                elif op == "resp":
                    try:
                        r = c.read_response(arg)
                    except Incomplete as e:
                        outcomes.append(CUT)
                        cut = e
                        break
                    responses.append(r)
                    outcomes.append(r.status)
                elif op == "echo":
                    c.send(arg)
                    got = bytearray()
                    deadline = time.monotonic() + 5
                    while len(got) < len(arg) and time.monotonic() < deadline:
                        got += bytes(c.buf)
                        c.buf.clear()
                        if len(got) < len(arg) and not c._fill():
                            break
                    got += bytes(c.buf)
                    c.buf.clear()
                    self.assertEqual(bytes(got), arg, "tunnelled bytes differ")
            # -- the client's view
            self.check_outcomes(v, statuses, outcomes)
            for r in responses:
                self.check_client_response(v, r)
            if v.client:
                v.client(self, responses, c)
            if v.close is True:
                self.assertTrue(c.wait_closed(3.0), "the connection was not closed")
                if cut is None:
                    self.assertEqual(bytes(c.buf), b"", "bytes after the last response")
            if v.close is None and cut is None and \
                    any(r.has_token("Connection", "close") for r in responses):
                # RFC 9112 §9.6: a sender of "close" closes after that response
                self.assertTrue(c.wait_closed(3.0), "Connection: close, but not closed")
            if v.close is False:
                for r in responses:
                    self.assertFalse(r.has_token("Connection", "close"),
                                     "Connection: close on a connection that should persist")
            # -- the backend's view
            self.check_backend(v, mark, sub)
            self.assertEqual([e for e in self.rec.errors() if e not in errors_before], [],
                             "the recorder could not parse what it received")
            # -- persistence: the same connection serves another request
            if v.close is False and not v.tunnel:
                c.send(b"GET /alive HTTP/1.1\r\nHost: h.test\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200, "follow-up request on the same connection")
                self.assertTrue(r.body.startswith(b"rec ") and r.body.endswith(b"GET /alive\n"),
                                "follow-up got a foreign response: %r" % r.body)
        finally:
            c.close()

    def check_outcomes(self, v, statuses, outcomes):
        for want, got in zip(statuses, outcomes + [None] * len(statuses)):
            ok = want == got or (isinstance(want, tuple) and got in want)
            self.assertTrue(ok, "client got %r, expected %r (all: %r)" % (got, want, outcomes))
        if len(outcomes) > len(statuses):
            self.fail("more responses than expected: %r" % outcomes)

    def check_client_response(self, v, r):
        self.assertEqual(r.version, b"HTTP/1.1", "response version")
        self.assertEqual(r.problems, [], "malformed response from the proxy")
        for n in ("Server", "X-Powered-By"):
            self.assertIsNone(r.header(n), "%s must be hidden" % n)
        if v.req and re.match(rb"^[^\r\n]* HTTP/1\.0\r?\n", (v.req or b"").lstrip(b"\r\n")):
            self.assertEqual(r.header_all("Transfer-Encoding"), [],
                             "Transfer-Encoding sent to an HTTP/1.0 client")
        spec_status = (v.resp or {}).get("status")
        if r.status in PROXY_ERRORS and r.status != spec_status and not (v.resp or {}).get("raw"):
            self.check_neutral(r)
        elif r.status == 502:
            self.check_neutral(r)

    def check_neutral(self, r):
        body = r.body.lower()
        for bad in (b"portcullis", b"127.0.0.1", b"%d" % self.rec.port, self.version,
                    b"recorder"):
            self.assertNotIn(bad, body, "error body is not neutral: %r" % r.body)
        self.assertLess(len(r.body), 200, "error body is not short")

    def check_backend(self, v, mark, sub):
        expected = v.fwd if isinstance(v.fwd, list) else ([] if v.fwd is None else [v.fwd])
        if expected:
            reqs = self.rec.wait_requests(mark, len(expected), timeout=3)
        else:
            time.sleep(0.03)
        data, reqs = self.rec.since(mark)
        if not expected:
            self.assertEqual(data, {}, "bytes reached the backend: %r" % data)
            return
        if v.retry_ok:
            # an idempotent request may be sent again after the server closed
            # without answering (RFC 9110 §9.2.2): count it once
            uniq = []
            for r in reqs:
                if uniq and uniq[-1].wire == r.wire:
                    uniq[-1] = r
                else:
                    uniq.append(r)
            reqs = uniq
        self.assertEqual(len(reqs), len(expected),
                         "backend got %d requests, expected %d: %r"
                         % (len(reqs), len(expected), [r.line for r in reqs]))
        for r, f in zip(reqs, expected):
            self.check_forwarded(v, r, f, sub)
        # nothing else on those connections: every new byte belongs to a request
        if not v.tunnel:
            conns = {c.id: c for c in self.rec.connections()}
            for cid, new in data.items():
                late = late_bytes(conns[cid], mark, new)
                if late:
                    new = new[:-len(late)]
                    self.check_late(late, reqs)
                mine = b"".join(r.wire for r in reqs if r.conn.id == cid)
                if v.retry_ok:
                    new = new.replace(mine, b"")
                    mine = b""
                self.assertEqual(new, mine, "backend connection %d got bytes that are not "
                                 "part of the forwarded request(s)" % cid)

    def check_late(self, late, reqs):
        """Bytes written to a backend connection after the server closed it
        (a stale pooled connection): they must be a copy of a request that
        was then retried elsewhere, and only an idempotent one may be
        retried (RFC 9110 §9.2.2, RFC 9112 §9.3.1)."""
        for r in reqs:
            if r.wire.startswith(late) or late.startswith(r.wire):
                self.assertIn(r.method, (b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE",
                                         b"TRACE"),
                              "non-idempotent request retried after the server closed "
                              "a pooled connection: %r" % r.line)
                return
        self.fail("bytes sent after the server closed the connection: %r" % late[:300])

    def check_forwarded(self, v, r, f, sub):
        self.assertIsNone(r.error, "recorder: %s" % r.error)
        self.assertEqual(r.line, sub(f.line), "forwarded request line")
        client = client_head(sub(v.req if v.req is not None else v.steps[0][1]))
        # Host unchanged (or the absolute-form authority for a 1.0 request without one)
        host = [val for n, val in client if n.lower() == b"host"]
        if f.e2e is None:
            self.assertEqual(r.header_all("Host"), host[:1], "Host must be forwarded unchanged")
        # forwarded headers
        self.assertEqual(r.header_all("X-Forwarded-For"), [b"127.0.0.1"])
        self.assertEqual(r.header_all("X-Forwarded-Proto"), [b"http"])
        if f.xfh is not False:
            # an empty Host says nothing: no empty X-Forwarded-Host either
            self.assertEqual(r.header_all("X-Forwarded-Host"),
                             [v for v in host[:1] if v != b""])
        rid = r.header_all("X-Request-Id")
        self.assertEqual(len(rid), 1, "exactly one X-Request-Id")
        if f.request_id and f.request_id != b"generated":
            self.assertEqual(rid[0], f.request_id)
        else:
            self.assertRegex(rid[0], rb"^[0-9a-f]{32}$")
        # hop-by-hop
        for n in (b"Keep-Alive", b"Proxy-Connection"):
            self.assertEqual(r.header_all(n), [], "%s forwarded" % n.decode())
        if f.te_trailers:
            self.assertEqual(r.header_all("TE"), [b"trailers"])
            self.assertEqual(r.header_all("Connection"), [b"te"])
        else:
            self.assertEqual(r.header_all("TE"), [], "TE forwarded")
        if f.te_trailers:
            pass
        elif f.upgrade:
            self.assertEqual(r.header_all("Connection"), [b"upgrade"])
            self.assertEqual(r.header_all("Upgrade"), [b"websocket"])
        elif f.closes:
            self.assertEqual(r.header_all("Connection"), [b"close"],
                             "an ambiguous request closes the server connection")
        else:
            self.assertEqual(r.header_all("Connection"), [], "Connection forwarded")
            self.assertEqual(r.header_all("Upgrade"), [], "Upgrade forwarded")
        # framing: exactly one framing header, re-framed chunked
        te, cl = r.header_all("Transfer-Encoding"), r.header_all("Content-Length")
        self.assertFalse(te and cl, "both Transfer-Encoding and Content-Length forwarded")
        self.assertLessEqual(len(cl), 1, "more than one Content-Length forwarded")
        want_te = f.te if f.te is not None else any(
            n.lower() == b"transfer-encoding" for n, _ in client)
        self.assertEqual(te, [b"chunked"] if want_te else [], "Transfer-Encoding")
        # end-to-end fields exactly, in order
        skip = ADDED | {b"transfer-encoding"} | ({b"connection", b"upgrade"} if f.upgrade else set())
        skip |= {b"te", b"connection"} if f.te_trailers else set()
        skip |= {b"connection"} if f.closes else set()
        got = [(n, val) for n, val in r.headers if n.lower() not in skip]
        want = f.e2e if f.e2e is not None else expected_e2e(client)
        self.assertEqual(got, want, "end-to-end header fields forwarded")
        for n, val in f.present:
            self.assertEqual(r.header_all(n), [val], "%s" % n.decode())
        for n in f.absent:
            self.assertEqual(r.header_all(n), [], "%s must not be forwarded" % n.decode())
        # body bytes exact
        if (v.resp or {}).get("read_body") is not False:
            self.assertTrue(r.complete, "the backend did not get a complete request")
        self.assertEqual(r.body_raw, sub(f.body), "forwarded body bytes")


def late_bytes(conn, mark, new):
    """The part of new (bytes received since mark) that arrived after our FIN."""
    if conn.fin_at is None:
        return b""
    start = mark["sizes"].get(conn.id, 0)
    cut = max(conn.fin_at - start, 0)
    return new[cut:]


def client_head(raw):
    """[(name, value)] of the first request head in raw (a valid request)."""
    raw = raw.lstrip(b"\r\n")
    head = raw.split(b"\r\n\r\n", 1)[0]
    out = []
    for ln in head.split(b"\r\n")[1:]:
        n, _, val = ln.partition(b":")
        out.append((n, val.strip(b" \t")))
    return out


def expected_e2e(fields):
    """The client's fields a proxy forwards (RFC 9110 §7.6.1), in order."""
    named = set()
    for n, val in fields:
        if n.lower() == b"connection":
            named |= {t.strip().lower() for t in val.split(b",") if t.strip()}
    named -= {b"host", b"content-length"}
    return [(n, val) for n, val in fields
            if n.lower() not in HOP | ADDED | named]


def _make(i, v):
    def test(self):
        self.run_vector(i, v)
    test.__doc__ = "%s [%s]" % (v.name, v.rfc)
    return test


for _i, _v in enumerate(VECTORS):
    setattr(ConformanceTest, "test_%03d_%s" % (_i, _v.name), _make(_i, _v))


class SuiteShapeTest(unittest.TestCase):
    def test_enough_vectors(self):
        """The issue asks for at least 80 vectors, each naming its RFC section
        (or the man page section, for what the RFCs leave to the proxy)."""
        self.assertGreaterEqual(len(VECTORS), 80)
        names = [v.name for v in VECTORS]
        self.assertEqual(len(names), len(set(names)), "duplicate vector names")
        for v in VECTORS:
            self.assertRegex(v.rfc, r"RFC \d+|portcullis\.yaml\(5\)")


if __name__ == "__main__":
    h.main()
