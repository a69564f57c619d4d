"""The only module of fusionbus that touches ``cryptography.hazmat``.

A small, hard-to-misuse API over pyca/cryptography: Ed25519 signing keys, X25519
encryption keys, PKCS#8 PEM import and export, the RFC 7518 ``ECDH-ES+A256KW`` key
wrap composed from library primitives (X25519 → Concat KDF → AES key wrap), and
AES-256-GCM, and ECDSA P-256 keys that sign and hold the X.509 certificates of the
cluster's mutual TLS (:class:`TlsKey`). Nothing here is hand-rolled; the composition
follows RFC 7518 §4.6 exactly and is tested against joserfc, jwcrypto and Node's ``jose``.

Failures of verification and decryption are returned, not raised (``False`` or ``None``),
so callers translate them into their own error with a reason; misuse (a wrong key size, an
unreadable PEM) raises :class:`ValueError` or :class:`TypeError`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from broker._sodium import is_valid_ed25519_key, verify_ed25519

__all__ = [
    "CEK_BYTES",
    "IV_BYTES",
    "ContentKey",
    "DecryptionKey",
    "EncryptionKey",
    "RandomBytes",
    "SigningKey",
    "TlsKey",
    "VerifyKey",
    "certificate_pem",
    "certificate_sha256",
    "content_commitment",
    "ecdh_es_a256kw_unwrap",
    "ecdh_es_a256kw_wrap",
    "load_private_pem",
    "sha256",
    "tls_key_sha256",
]

RandomBytes = Callable[[int], bytes]
"""Where randomness comes from: ``os.urandom`` unless a test injects a deterministic one."""

CEK_BYTES = 32
IV_BYTES = 12
_ALG_ECDH_ES_A256KW = b"ECDH-ES+A256KW"


def sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def content_commitment(cek: bytes, iv: bytes, payload: bytes, label: bytes) -> tuple[bytes, bytes]:
    """``(salt, commitment)`` binding ``payload`` to the content key that decrypts it:
    ``salt = HMAC-SHA256(cek, label || iv)``, ``commitment = SHA-256(salt || payload)``.

    AES-GCM is not key-committing: one ciphertext can decrypt, under two keys, to two
    plaintexts. A signed commitment makes that useless — a recipient holding another key
    computes another commitment. The salt is a PRF output: revealing it (as evidence, with
    the payload) opens nothing, and no commitment is an unsalted hash of a payload."""
    salt = hmac.digest(cek, label + iv, "sha256")
    return salt, hashlib.sha256(salt + payload).digest()


def _pem(private: Ed25519PrivateKey | X25519PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


class VerifyKey:
    """An Ed25519 public key."""

    __slots__ = ("_key", "raw")

    def __init__(self, raw: bytes) -> None:
        if not is_valid_ed25519_key(raw):
            raise ValueError(
                "not a usable Ed25519 public key: it must be the canonical encoding of a point "
                "of the prime-order subgroup (a small-order key would 'sign' any message)"
            )
        self._key = Ed25519PublicKey.from_public_bytes(raw)
        self.raw = raw

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Strict RFC 8032 verification by libsodium (``broker._sodium``): 1.6x faster here
        than OpenSSL's, and it refuses small-order and non-canonical ``R`` that OpenSSL
        accepts."""
        return verify_ed25519(self.raw, signature, data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(("Ed25519", self.raw))


class SigningKey:
    """An Ed25519 private key."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = VerifyKey(key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, random: RandomBytes = os.urandom) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(random(32)))

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        return _pem(self._key, passphrase)


class EncryptionKey:
    """An X25519 public key (a recipient's)."""

    __slots__ = ("_key", "raw")

    def __init__(self, raw: bytes) -> None:
        self._key = X25519PublicKey.from_public_bytes(raw)
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncryptionKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(("X25519", self.raw))


class DecryptionKey:
    """An X25519 private key (mine)."""

    __slots__ = ("_key", "public")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.public = EncryptionKey(key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, random: RandomBytes = os.urandom) -> DecryptionKey:
        return cls(X25519PrivateKey.from_private_bytes(random(32)))

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        return _pem(self._key, passphrase)


def load_private_pem(data: bytes, passphrase: bytes | None = None) -> SigningKey | DecryptionKey:
    """Load a PKCS#8 PEM private key; raises :class:`ValueError` for anything else."""
    try:
        key = serialization.load_pem_private_key(data, passphrase)
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a readable PKCS#8 PEM private key: {exc}") from exc
    if isinstance(key, Ed25519PrivateKey):
        return SigningKey(key)
    if isinstance(key, X25519PrivateKey):
        return DecryptionKey(key)
    raise ValueError(f"expected an Ed25519 or X25519 private key, got {type(key).__name__}")


def _concat_kdf(shared: bytes, apu: bytes, apv: bytes) -> bytes:
    """RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A) for ``ECDH-ES+A256KW``."""

    def lp(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    other_info = lp(_ALG_ECDH_ES_A256KW) + lp(apu) + lp(apv) + struct.pack(">I", 256)
    return ConcatKDFHash(hashes.SHA256(), 32, other_info).derive(shared)


def ecdh_es_a256kw_wrap(
    recipient: EncryptionKey,
    cek: bytes,
    random: RandomBytes = os.urandom,
    *,
    apu: bytes = b"",
    apv: bytes = b"",
) -> tuple[bytes, bytes]:
    """Wrap ``cek`` for ``recipient``: returns (ephemeral public key, encrypted key).

    The ephemeral private key lives only inside this call.
    """
    ephemeral = X25519PrivateKey.from_private_bytes(random(32))
    kek = _concat_kdf(ephemeral.exchange(recipient._key), apu, apv)
    return ephemeral.public_key().public_bytes_raw(), aes_key_wrap(kek, cek)


def ecdh_es_a256kw_unwrap(
    mine: DecryptionKey, epk: bytes, encrypted_key: bytes, *, apu: bytes = b"", apv: bytes = b""
) -> bytes | None:
    """Unwrap a content key; ``None`` if the ephemeral key or the wrapped key is bad."""
    try:
        shared = mine._key.exchange(X25519PublicKey.from_public_bytes(epk))
        cek = aes_key_unwrap(_concat_kdf(shared, apu, apv), encrypted_key)
    except (ValueError, InvalidUnwrap):
        return None
    return cek if len(cek) == CEK_BYTES else None


class ContentKey:
    """An AES-256-GCM content key; the tag is returned and taken separately, as JWE does."""

    __slots__ = ("_aead", "raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != CEK_BYTES:
            raise ValueError(f"an A256GCM key is {CEK_BYTES} bytes, got {len(raw)}")
        self._aead = AESGCM(raw)
        self.raw = raw

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        sealed = self._aead.encrypt(iv, plaintext, aad)
        return sealed[:-16], sealed[-16:]

    def decrypt(self, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes | None:
        if len(iv) != IV_BYTES or len(tag) != 16:
            return None
        try:
            return self._aead.decrypt(iv, ciphertext + tag, aad)
        except InvalidTag:
            return None


class TlsKey:
    """An ECDSA P-256 private key for mutual TLS: what Java's and OpenSSL's TLS stacks both
    handle everywhere. It signs certificates (the cluster CA's) or holds one (a node's, an
    agency's); the certificates themselves are built with ``cryptography.x509``."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise TypeError(f"expected an ECDSA P-256 key, got curve {key.curve.name}")
        self._key = key

    @classmethod
    def generate(cls) -> TlsKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> TlsKey:
        try:
            key = serialization.load_pem_private_key(data, passphrase)
        except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"not a readable PKCS#8 PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError(f"expected an ECDSA P-256 private key, got {type(key).__name__}")  # noqa: TRY004 - a bad file, not a bad argument
        return cls(key)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def subject_key_identifier(self) -> x509.SubjectKeyIdentifier:
        return x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())

    def holds(self, certificate: x509.Certificate | x509.CertificateSigningRequest) -> bool:
        """Whether ``certificate`` (or a certificate request) names this key's public half."""
        return certificate.public_key() == self._key.public_key()

    def fingerprint(self) -> str:
        """SHA-256 of the public key's SubjectPublicKeyInfo, as :func:`tls_key_sha256`."""
        return _colon_hex(sha256(_spki(self._key.public_key())))

    def with_public_key(self, builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
        return builder.public_key(self._key.public_key())

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign a certificate (ECDSA with SHA-256) as its issuer."""
        return builder.sign(self._key, hashes.SHA256())

    def sign_request(
        self, builder: x509.CertificateSigningRequestBuilder
    ) -> x509.CertificateSigningRequest:
        """Sign a PKCS#10 certificate request for this key (ECDSA with SHA-256): the proof
        that whoever asks for the certificate holds the key."""
        return builder.sign(self._key, hashes.SHA256())


def certificate_pem(certificate: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_sha256(certificate: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as ``openssl x509 -fingerprint -sha256`` shows
    it (colon-separated upper-case hex)."""
    return _colon_hex(certificate.fingerprint(hashes.SHA256()))


def tls_key_sha256(holder: x509.Certificate | x509.CertificateSigningRequest) -> str:
    """SHA-256 of the ECDSA P-256 public key ``holder`` names (its SubjectPublicKeyInfo, as
    :meth:`TlsKey.fingerprint`); :class:`ValueError` for any other kind of key."""
    key = holder.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"expected an ECDSA P-256 public key, got {type(key).__name__}")  # noqa: TRY004 - a bad file, not a bad argument
    return _colon_hex(sha256(_spki(key)))
