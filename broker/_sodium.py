"""Ed25519 verification by libsodium (through PyNaCl): strict where OpenSSL is lenient.

RFC 8032 (§5.1.7) lets a verifier accept signatures no honest signer makes; libsodium's
``crypto_sign_verify_detached`` (1.0.18 to 1.0.21 and the ``stable`` branch, which PyNaCl
1.6 bundles) refuses them all, where OpenSSL under pyca/cryptography accepts some:

* ``S >= L`` (a malleated copy of a genuine signature): both refuse;
* a small-order public key or ``R`` (with ``S = 0``, a small-order key "signs" any
  message): libsodium refuses, OpenSSL accepts;
* a non-canonical encoding of the public key (``y + p``, or ``x = 0`` with its sign bit
  set): libsodium refuses it, OpenSSL accepted each one tested;
* a non-canonical ``R``: both refuse (each compares ``R`` with the canonical encoding of
  ``[S]B - [k]A``).

``tests/unit/test_ed25519_strictness.py`` shows each case for both libraries. Because a
PyNaCl built against another libsodium (``SODIUM_INSTALL=system``) may behave otherwise,
importing this module verifies a genuine signature and refuses a malleated one and a
small-order key's forgery first, and raises :class:`~broker.errors.ConfigError` if the
linked libsodium does not.
"""

from __future__ import annotations

from nacl.bindings import (
    crypto_core_ed25519_is_valid_point,
    crypto_sign,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import BadSignatureError

from broker.errors import ConfigError

__all__ = ["is_valid_ed25519_key", "verify_ed25519"]

_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_L = 2**252 + 27742317777372353535851937790883648493
"""The order of the Ed25519 base point."""


def verify_ed25519(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public_raw``'s strict Ed25519 signature of ``message``.

    A key or signature of the wrong length is ``False``, never an error: PyNaCl checks
    neither length itself, and a short signature would shift into the message.
    """
    if len(public_raw) != _KEY_BYTES or len(signature) != _SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_raw)
    except BadSignatureError:
        return False
    return True


def is_valid_ed25519_key(public_raw: bytes) -> bool:
    """Whether ``public_raw`` can be an honest Ed25519 public key: 32 bytes encoding, in
    canonical form, a point of the prime-order subgroup other than the neutral one (no
    small-order component), as libsodium's ``crypto_core_ed25519_is_valid_point`` checks."""
    return len(public_raw) == _KEY_BYTES and bool(crypto_core_ed25519_is_valid_point(public_raw))


def _self_test() -> None:
    """Refuse to load if the linked libsodium is not strict (see the module docstring)."""
    public, secret = crypto_sign_seed_keypair(bytes(range(32)))
    message = b"fusionbus strict Ed25519 self-test"
    signature = crypto_sign(message, secret)[:_SIGNATURE_BYTES]
    r, s = signature[:32], int.from_bytes(signature[32:], "little")
    malleated = r + (s + _L).to_bytes(32, "little")
    identity = (1).to_bytes(32, "little")  # the neutral point: order 1
    forged = identity + bytes(32)  # R = identity, S = 0: "valid" under the identity key
    if (
        not verify_ed25519(public, signature, message)
        or verify_ed25519(public, malleated, message)
        or verify_ed25519(identity, forged, message)
    ):
        raise ConfigError(
            "the libsodium PyNaCl is linked against does not verify Ed25519 strictly "
            "(it accepts S >= L or a small-order key); install PyNaCl's own wheel, which "
            "bundles libsodium 1.0.20-stable: pip install --force-reinstall pynacl"
        )


_self_test()
