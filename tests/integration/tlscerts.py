"""Test certificates made with the openssl command line, and a TLS client
connection with the same reading helpers as client.Conn.

    pki = make_pki(tmpdir)          # CA -> intermediate -> leaves, see below
    c = TLSConn(port, server_hostname="a.test", cafile=pki.ca)
    r = c.request("GET", "/")

make_pki() builds, in `d`:
  ca.pem              a root CA (ECDSA P-256); clients trust only this
  int.pem             an intermediate CA signed by the root
  a.pem, a.key        ECDSA P-256 leaf for a.test, chain file (leaf + intermediate)
  b.pem, b.key        RSA 2048 leaf for b.test (same chain)
  w.pem, w.key        ECDSA leaf for *.w.test (wildcard)
Leaves are signed by the intermediate, so a handshake verifies only when
accel sends the chain.
"""

import os
import socket
import ssl
import subprocess

from client import Conn

OPENSSL = "openssl"


def _run(*args, cwd):
    subprocess.run([OPENSSL] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def _keyargs(kind):
    if kind == "rsa":
        return ["-newkey", "rsa:2048"]
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


def _verified(d, crt, host=None):
    """Check what was just made: the chain verifies against the test root
    (and names host); a broken fixture fails here, not as a puzzling
    handshake error in some test."""
    args = ["verify", "-CAfile", "ca.pem"]
    if crt != "int.pem":
        args += ["-untrusted", "int.pem"]
    if host and not host.startswith("*"):
        args += ["-verify_hostname", host]
    r = subprocess.run([OPENSSL] + args + [crt], cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or not out.rstrip().endswith(": OK"):
        raise AssertionError("test certificate %s does not verify: %s" % (crt, out))


def make_leaf(d, name, dns, kind="ec", serial=None):
    """A leaf certificate `name`.pem (leaf + intermediate) and `name`.key for
    the DNS names in `dns`, signed by the intermediate in d."""
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % ",".join("DNS:" + n for n in dns))
    _run("req", *_keyargs(kind), "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
         "-subj", "/CN=" + dns[0], cwd=d)
    _run("x509", "-req", "-in", name + ".csr", "-CA", "int.pem", "-CAkey", "int.key",
         "-set_serial", str(serial or int.from_bytes(os.urandom(8), "big")), "-days", "2",
         "-out", name + ".crt", "-extfile", name + ".ext", cwd=d)
    _verified(d, name + ".crt", dns[0].split(",")[0])
    with open(os.path.join(d, name + ".pem"), "wb") as out:
        for part in (name + ".crt", "int.pem"):
            with open(os.path.join(d, part), "rb") as f:
                out.write(f.read())
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


class PKI:
    def __init__(self, d):
        self.dir = d
        self.ca = os.path.join(d, "ca.pem")

    def cert(self, name):
        return os.path.join(self.dir, name + ".pem")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def spec(self, name):
        """The -c argument for leaf `name`."""
        return "%s,%s" % (self.cert(name), self.key(name))


def make_pki(d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "ca.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    _run("req", "-x509", *_keyargs("ec"), "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=accel test root", "-addext",
         "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         cwd=d)
    _run("req", *_keyargs("ec"), "-nodes", "-keyout", "int.key", "-out", "int.csr",
         "-subj", "/CN=accel test intermediate", cwd=d)
    _run("x509", "-req", "-in", "int.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
         "2", "-days", "2", "-out", "int.pem", "-extfile", "ca.ext", cwd=d)
    _verified(d, "int.pem")
    make_leaf(d, "a", ["a.test"], "ec")
    make_leaf(d, "b", ["b.test"], "rsa")
    make_leaf(d, "w", ["*.w.test"], "ec")
    return PKI(d)


def client_context(cafile=None, verify=True, minv=None, maxv=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if minv is not None:
        ctx.minimum_version = minv
    if maxv is not None:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TLSConn(Conn):
    """client.Conn over TLS.  server_hostname=None sends no SNI (then the
    name is not checked, the chain still is)."""

    def __init__(self, port, server_hostname="a.test", cafile=None, ctx=None, host="127.0.0.1",
                 timeout=10.0):
        if ctx is None:
            ctx = client_context(cafile)
            if server_hostname is None:
                ctx.check_hostname = False
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except Exception:
            raw.close()
            raise
        self.buf = b""
        self.eof = False

    def peer_names(self):
        """DNS names of the certificate the server sent."""
        cert = self.sock.getpeercert()
        return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)


def s_client(port, *args, stdin=b"", timeout=20):
    """Run `openssl s_client -connect 127.0.0.1:port -ign_eof args...` (it reads
    the answer to what stdin sends); its stdout+stderr."""
    p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-ign_eof"]
                       + list(args),
                       input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.stdout.decode("latin-1")
