"""Walk fusionbus homes for private keys, by file and by key material.

Every private key found in a file (PEM files, and PEM blocks inside other files) is loaded
and named by what it is the private half of: an Ed25519 or X25519 key by its kid (RFC 7638
thumbprint), an ECDSA P-256 TLS key by the SHA-256 of its public key, so a key is
recognised wherever it was copied to and whatever it is called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from broker._crypto import TlsKey, tls_key_sha256
from broker.errors import ConfigError
from broker.federation import AgencyRecord, Federation
from broker.keys import kid_of, load_private_pem


@dataclass(frozen=True)
class PrivateKey:
    path: Path
    public: str
    """The kid of an Ed25519/X25519 key, the public-key SHA-256 of a TLS key."""


_PEM = re.compile(
    rb"-----BEGIN (?:ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:ENCRYPTED )?PRIVATE KEY-----",
    re.DOTALL,
)


def private_keys(home: Path, *, skip: Iterable[str] = ()) -> list[PrivateKey]:
    """Every private key in any file under ``home`` (a PEM file, or a PEM block inside a
    file such as a Kafka node's ``server.properties``), except under the top-level folders
    ``skip``. A block that is no Ed25519, X25519 or P-256 key fails the walk."""
    skipped = {home / name for name in skip}
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file() and not p.is_symlink()):
        if any(parent in skipped for parent in path.parents):
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a running Kafka's temporary file, renamed since listed
            continue
        for block in _PEM.findall(data.replace(b"\\n", b"\n")):
            found.append(PrivateKey(path, _public(block, path)))
    return found


def _public(block: bytes, path: Path) -> str:
    try:
        return kid_of(load_private_pem(block))
    except ConfigError:
        pass
    try:
        return TlsKey.from_pem(block).fingerprint()
    except ValueError as exc:
        raise AssertionError(f"{path} holds a private key the walk cannot identify") from exc


def agency_public_keys(record: AgencyRecord, home: Path) -> set[str]:
    """Every public key of ``record`` (each kid it lists) and of its TLS certificate in
    ``home``, as :func:`private_keys` names them."""
    keys = {e.kid for e in (*record.signing_keys, *record.encryption_keys)}
    cert = home / "agencies" / record.id / "tls" / "cert.pem"
    if cert.is_file():
        keys.add(tls_key_sha256(x509.load_pem_x509_certificate(cert.read_bytes())))
    return keys


def agency_keys_of(admin: Path, sites: dict[str, Path]) -> dict[str, set[str]]:
    """Each agency's public keys: its records' kids (from the admin's directory) and its
    TLS certificate's key (from its own home)."""
    federation = Federation.load(admin)
    return {
        agency: agency_public_keys(federation.snapshot.agency(agency), site)
        for agency, site in sites.items()
    }
