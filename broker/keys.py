"""Agency key material: generation, key ids, public JWKs, PKCS#8 PEM, and :class:`Identity`.

An agency holds an Ed25519 *signing* key and an X25519 *encryption* key. Every key is
named by its **kid = RFC 7638 JWK thumbprint** (SHA-256 over the canonical public JWK,
base64url): self-certifying (anyone holding the public key can recompute it), stable
across exports, unique without a registry, and computed by every JOSE library (Node
``jose.calculateJwkThumbprint``, joserfc ``thumbprint()``). Human-readable names
(``anf/sig/3``) belong in the directory, which maps them to thumbprints.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from broker._crypto import DecryptionKey, EncryptionKey, RandomBytes, SigningKey, VerifyKey
from broker._crypto import load_private_pem as _load_private_pem
from broker._jose import b64d, b64u
from broker.errors import ConfigError

__all__ = [
    "DecryptionKey",
    "EncryptionKey",
    "Identity",
    "SigningKey",
    "VerifyKey",
    "kid_of",
    "load_private_pem",
    "public_jwk",
    "public_key_from_jwk",
]

PublicKey = VerifyKey | EncryptionKey


def _crv(key: PublicKey) -> Literal["Ed25519", "X25519"]:
    return "Ed25519" if isinstance(key, VerifyKey) else "X25519"


def kid_of(key: PublicKey | SigningKey | DecryptionKey) -> str:
    """The RFC 7638 JWK SHA-256 thumbprint of the (public half of the) key."""
    public = key.public if isinstance(key, SigningKey | DecryptionKey) else key
    canonical = orjson.dumps({"crv": _crv(public), "kty": "OKP", "x": b64u(public.raw)})
    return b64u(hashlib.sha256(canonical).digest())


def public_jwk(key: PublicKey | SigningKey | DecryptionKey) -> dict[str, str]:
    """``{"kty":"OKP","crv":...,"x":...,"kid":...}``; never any private member."""
    public = key.public if isinstance(key, SigningKey | DecryptionKey) else key
    return {"kty": "OKP", "crv": _crv(public), "x": b64u(public.raw), "kid": kid_of(public)}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Import a public OKP JWK (Ed25519 or X25519); checks ``kid`` if present."""
    crv = jwk.get("crv")
    if jwk.get("kty") != "OKP" or "d" in jwk or crv not in {"Ed25519", "X25519"}:
        raise ConfigError(
            f"expected a public OKP JWK (crv Ed25519 or X25519, no private member 'd'): "
            f"{sorted(jwk)!r} with crv {crv!r}"
        )
    try:
        x = str(jwk["x"])
        raw = b64d(x)
        key: PublicKey = VerifyKey(raw) if crv == "Ed25519" else EncryptionKey(raw)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"not a usable public {crv} JWK ({exc}): x={jwk.get('x')!r}") from exc
    if "kid" in jwk and jwk["kid"] != kid_of(key):
        raise ConfigError(
            f"JWK kid {jwk['kid']!r} is not the key's RFC 7638 thumbprint {kid_of(key)!r}"
        )
    return key


def load_private_pem(data: bytes, passphrase: bytes | None = None) -> SigningKey | DecryptionKey:
    """Load a PKCS#8 PEM private key (Ed25519 → SigningKey, X25519 → DecryptionKey)."""
    try:
        return _load_private_pem(data, passphrase)
    except ValueError as exc:
        raise ConfigError(
            f"{exc}. Expected an unencrypted or passphrase-protected PKCS#8 PEM file "
            "('-----BEGIN PRIVATE KEY-----' or '-----BEGIN ENCRYPTED PRIVATE KEY-----')."
        ) from exc


@dataclass(frozen=True, slots=True)
class Identity:
    """Who I am: my agency id, my signing key, and the decryption keys I still hold.

    ``decryption_keys`` maps kid → key; after a rotation keep the previous key here until
    every envelope encrypted to it has expired. ``encryption_kid`` is the current one.
    """

    agency: str
    signing_key: SigningKey
    decryption_keys: Mapping[str, DecryptionKey]
    signing_kid: str = field(init=False)
    encryption_kid: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.decryption_keys:
            raise ConfigError(f"identity {self.agency!r} has no decryption key")
        for kid, key in self.decryption_keys.items():
            if kid != kid_of(key):
                raise ConfigError(f"decryption key listed as {kid!r} has kid {kid_of(key)!r}")
        object.__setattr__(self, "signing_kid", kid_of(self.signing_key))
        object.__setattr__(self, "encryption_kid", list(self.decryption_keys)[-1])

    @classmethod
    def create(
        cls, agency: str, signing_key: SigningKey, *decryption_keys: DecryptionKey
    ) -> Identity:
        """Build an identity; the *last* decryption key is the current one."""
        return cls(agency, signing_key, {kid_of(k): k for k in decryption_keys})

    @classmethod
    def generate(cls, agency: str, random: RandomBytes = os.urandom) -> Identity:
        """A fresh identity with new keys (tests, enrolment)."""
        return cls.create(agency, SigningKey.generate(random), DecryptionKey.generate(random))

    @property
    def encryption_key(self) -> EncryptionKey:
        return self.decryption_keys[self.encryption_kid].public
