"""Certificates for the TLS integration tests, made at test time with the
openssl CLI into a directory (one CA per directory, nothing shared between
runs).

    certs = tlscerts.make(tmp)        # a Certs; every path is absolute
    certs.ca, certs.a_ecdsa, certs.a_ecdsa_key, certs.client, ...

What it makes (all leaf certificates valid for 30 days unless noted):

    ca            "Portcullis Test CA" (ECDSA P-256), signs everything below
                  unless noted
    inter         an intermediate CA signed by ca
    a_ecdsa       ECDSA P-256, SAN a.example.test and *.w.example.test
    a_rsa         RSA-2048, the same names
    b             ECDSA P-256, SAN b.example.test
    client        client certificate, CN=client.example.test, O=Portcullis Tests
    backend       server certificate, SAN backend.example.test and IP 127.0.0.1
    other_ca      a second CA that signed nothing of the above
    chained       leaf (SAN chain.example.test) signed by inter; the file
                  holds leaf then inter (the right order)
    chain_bad     the same leaf in a file with leaf, ca, inter (wrong order)
    expired       SAN expired.example.test, valid 2020-01-01 to 2020-02-01
    soon          SAN soon.example.test, expires in 10 days

Every key file is mode 0600 (owned by whoever runs the tests: root for the
integration tests, so the master must read them before dropping privileges).
"""

import datetime
import os
import subprocess

CA_NAME = "Portcullis Test CA"
CLIENT_CN = "client.example.test"
CLIENT_O = "Portcullis Tests"


def _run(*args, cwd=None, stdin=None):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       input=stdin, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                           p.stderr))
    return p.stdout


def _newkey_args(kind):
    if kind == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    return ["-newkey", "rsa:2048"]


def _serial():
    return "0x" + os.urandom(8).hex()


class Certs:
    def __init__(self, d):
        self.dir = d

    def path(self, name):
        return os.path.join(self.dir, name)


def _ca(d, name, cn, kind="ec"):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    _run("req", "-x509", "-new", *_newkey_args(kind), "-nodes", "-keyout", key, "-out", pem,
         "-days", "60", "-subj", "/CN=" + cn,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key, 0o600)
    return pem, key


def _leaf(d, name, ca, ca_key, subj, ext, kind="ec", days=30):
    """A key and a certificate signed by (ca, ca_key); ext: extension lines."""
    key, csr = os.path.join(d, name + ".key"), os.path.join(d, name + ".csr")
    pem, extfile = os.path.join(d, name + ".pem"), os.path.join(d, name + ".ext")
    _run("req", "-new", *_newkey_args(kind), "-nodes", "-keyout", key, "-out", csr,
         "-subj", subj)
    os.chmod(key, 0o600)
    with open(extfile, "w") as f:
        f.write("\n".join(ext) + "\n")
    _run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", _serial(),
         "-days", str(days), "-sha256", "-extfile", extfile, "-out", pem)
    return pem, key


def _server_ext(*names):
    san = ",".join(("IP:" + n) if n[0].isdigit() else ("DNS:" + n) for n in names)
    return ["basicConstraints=CA:FALSE", "subjectAltName=" + san,
            "extendedKeyUsage=serverAuth"]


def _expired(d, ca, ca_key):
    """A certificate valid 2020-01-01 .. 2020-02-01: python's cryptography if
    installed (the openssl CLI cannot backdate with x509 -days), else
    `openssl ca` with -startdate/-enddate."""
    pem, key = os.path.join(d, "expired.pem"), os.path.join(d, "expired.key")
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        x509 = None
    if x509 is not None:
        with open(ca, "rb") as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        with open(ca_key, "rb") as f:
            ca_k = serialization.load_pem_private_key(f.read(), None)
        k = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                            "expired.example.test")]))
                .issuer_name(ca_cert.subject)
                .public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
                .not_valid_after(datetime.datetime(2020, 2, 1, tzinfo=datetime.timezone.utc))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName("expired.example.test")]), critical=False)
                .sign(ca_k, hashes.SHA256()))
        with open(key, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        with open(pem, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        os.chmod(key, 0o600)
        return pem, key
    cadir = os.path.join(d, "expired-ca")
    os.makedirs(os.path.join(cadir, "new"), exist_ok=True)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(cadir, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = c\n[c]\ndir = %s\ndatabase = $dir/index.txt\n"
                "new_certs_dir = $dir/new\nserial = $dir/serial\ncertificate = %s\n"
                "private_key = %s\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                "copy_extensions = copy\n[p]\ncommonName = supplied\n" % (cadir, ca, ca_key))
    csr = os.path.join(d, "expired.csr")
    _run("req", "-new", *_newkey_args("ec"), "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=expired.example.test",
         "-addext", "subjectAltName=DNS:expired.example.test")
    os.chmod(key, 0o600)
    _run("ca", "-batch", "-config", cnf, "-in", csr, "-out", pem, "-notext",
         "-startdate", "20200101000000Z", "-enddate", "20200201000000Z")
    return pem, key


def make(d):
    """Make every certificate of the module docstring in directory d."""
    c = Certs(d)
    c.ca, c.ca_key = _ca(d, "ca", CA_NAME)
    c.other_ca, c.other_ca_key = _ca(d, "other-ca", "Some Other CA")
    c.a_ecdsa, c.a_ecdsa_key = _leaf(d, "a-ecdsa", c.ca, c.ca_key, "/CN=a.example.test",
                                     _server_ext("a.example.test", "*.w.example.test"))
    c.a_rsa, c.a_rsa_key = _leaf(d, "a-rsa", c.ca, c.ca_key, "/CN=a.example.test",
                                 _server_ext("a.example.test", "*.w.example.test"), kind="rsa")
    c.b, c.b_key = _leaf(d, "b", c.ca, c.ca_key, "/CN=b.example.test",
                         _server_ext("b.example.test"))
    c.client, c.client_key = _leaf(d, "client", c.ca, c.ca_key,
                                   "/O=%s/CN=%s" % (CLIENT_O, CLIENT_CN),
                                   ["basicConstraints=CA:FALSE",
                                    "extendedKeyUsage=clientAuth"])
    c.backend, c.backend_key = _leaf(d, "backend", c.ca, c.ca_key, "/CN=backend.example.test",
                                     _server_ext("backend.example.test", "127.0.0.1"))
    c.soon, c.soon_key = _leaf(d, "soon", c.ca, c.ca_key, "/CN=soon.example.test",
                               _server_ext("soon.example.test"), days=10)
    # an intermediate, a leaf it signed, and that leaf's chain in both orders
    c.inter, c.inter_key = _leaf(d, "inter", c.ca, c.ca_key, "/CN=Portcullis Test Intermediate",
                                 ["basicConstraints=critical,CA:TRUE",
                                  "keyUsage=critical,keyCertSign,cRLSign"])
    leaf, c.chained_key = _leaf(d, "chain-leaf", c.inter, c.inter_key,
                                "/CN=chain.example.test", _server_ext("chain.example.test"))
    c.chained, c.chain_bad = os.path.join(d, "chained.pem"), os.path.join(d, "chain-bad.pem")
    for out, parts in ((c.chained, (leaf, c.inter)), (c.chain_bad, (leaf, c.ca, c.inter))):
        with open(out, "w") as f:
            for p in parts:
                with open(p) as src:
                    f.write(src.read())
    c.expired, c.expired_key = _expired(d, c.ca, c.ca_key)
    return c


def fingerprint(pem):
    """SHA-256 fingerprint of a certificate: lowercase hex, no colons."""
    out = _run("x509", "-noout", "-fingerprint", "-sha256", "-in", pem)
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def subject(pem):
    return _run("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", pem).strip()
