"""A throw-away PKI for the TLS tests, made with the ``openssl`` CLI.

A CA, a server and a client certificate it signed (SAN localhost and
127.0.0.1), and a rogue CA with a certificate of its own that nobody trusts.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

_LEAF_EXTENSIONS = """\
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_key: Path
    server_cert: Path
    client_key: Path
    client_cert: Path
    rogue_ca: Path
    rogue_key: Path
    rogue_cert: Path


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return key, cert


def _make_leaf(directory: Path, name: str, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    extensions = directory / "leaf.ext"
    extensions.write_text(_LEAF_EXTENSIONS)
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}"
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-out", cert,
        "-extfile", extensions,
    )  # fmt: skip
    return key, cert


def make_pki(directory: Path) -> Pki:
    """CA, server and client certificates (SAN localhost and 127.0.0.1), and a rogue pair."""
    ca_key, ca = _make_ca(directory, "ca")
    server_key, server_cert = _make_leaf(directory, "server", ca_key, ca)
    client_key, client_cert = _make_leaf(directory, "client", ca_key, ca)
    rogue_ca_key, rogue_ca = _make_ca(directory, "rogue-ca")
    rogue_key, rogue_cert = _make_leaf(directory, "rogue", rogue_ca_key, rogue_ca)
    return Pki(
        ca, server_key, server_cert, client_key, client_cert, rogue_ca, rogue_key, rogue_cert
    )
