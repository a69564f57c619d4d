"""Key generation, kids, public JWKs and PKCS#8 PEM, checked against jwcrypto."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from jwcrypto import jwk as jwcrypto_jwk

from broker.errors import ConfigError
from broker.federation import DirectorySnapshot, SigningKeyRecord
from broker.keys import (
    DecryptionKey,
    EncryptionKey,
    Identity,
    SigningKey,
    VerifyKey,
    kid_of,
    load_private_pem,
    public_jwk,
    public_key_from_jwk,
)

from .conftest import NOW


@pytest.mark.parametrize("factory", [SigningKey.generate, DecryptionKey.generate])
def test_kid_is_the_rfc7638_thumbprint_jwcrypto_computes(factory: object) -> None:
    key = factory()  # type: ignore[operator]
    jwk = public_jwk(key)
    assert set(jwk) == {"kty", "crv", "x", "kid"}
    assert jwcrypto_jwk.JWK(**jwk).thumbprint() == jwk["kid"] == kid_of(key)


def test_public_jwk_round_trips_and_checks_its_kid() -> None:
    signing, decryption = SigningKey.generate(), DecryptionKey.generate()
    assert public_key_from_jwk(public_jwk(signing)) == signing.public
    assert isinstance(public_key_from_jwk(public_jwk(decryption)), EncryptionKey)
    with pytest.raises(ConfigError, match="thumbprint"):
        public_key_from_jwk({**public_jwk(signing), "kid": "someone-else"})
    with pytest.raises(ConfigError, match="public OKP JWK"):
        public_key_from_jwk({**public_jwk(signing), "d": "secret"})
    with pytest.raises(ConfigError, match="not a usable"):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"})


@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_pkcs8_pem_round_trip(passphrase: bytes | None) -> None:
    signing, decryption = SigningKey.generate(), DecryptionKey.generate()
    pem = signing.to_pem(passphrase)
    assert pem.startswith(b"-----BEGIN ENCRYPTED" if passphrase else b"-----BEGIN PRIVATE KEY")
    loaded = load_private_pem(pem, passphrase)
    assert isinstance(loaded, SigningKey)
    assert loaded.public == signing.public
    assert load_private_pem(decryption.to_pem(passphrase), passphrase).public == decryption.public
    # jwcrypto reads what we write.
    assert jwcrypto_jwk.JWK.from_pem(pem, passphrase).thumbprint() == kid_of(signing)


def test_pem_errors_say_what_was_expected() -> None:
    pem = SigningKey.generate().to_pem(b"pw")
    with pytest.raises(ConfigError, match="PKCS#8"):
        load_private_pem(pem, b"wrong")
    with pytest.raises(ConfigError, match="PKCS#8"):
        load_private_pem(b"not a key")


def test_signatures_verify_only_for_the_signed_bytes() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"abc")
    assert key.public.verify(sig, b"abc")
    assert not key.public.verify(sig, b"abd")
    assert not VerifyKey(SigningKey.generate().public.raw).verify(sig, b"abc")


def test_identity_keeps_old_decryption_keys_and_uses_the_last_as_current() -> None:
    old, new = DecryptionKey.generate(), DecryptionKey.generate()
    identity = Identity.create("anf", SigningKey.generate(), old, new)
    assert identity.encryption_kid == kid_of(new)
    assert set(identity.decryption_keys) == {kid_of(old), kid_of(new)}
    with pytest.raises(ConfigError):
        Identity("anf", SigningKey.generate(), {})
    with pytest.raises(ConfigError):
        Identity("anf", SigningKey.generate(), {"wrong-kid": old})


def test_key_lifecycle_rules() -> None:
    key = SigningKey.generate().public
    day = timedelta(days=1)
    record = SigningKeyRecord(kid_of(key), "anf", key, NOW - day, NOW + day)
    assert record.problem(now=NOW, made_at=NOW) is None
    assert record.problem(now=NOW, made_at=NOW - 2 * day) is not None
    assert record.problem(now=NOW, made_at=NOW + day)[0] == "expired_key"  # type: ignore[index]
    store = DirectorySnapshot.of_keys([record])
    revoked = store.with_keys(replace(record, revoked_at=NOW)).signing_key(record.kid)
    assert revoked is not None
    assert revoked.problem(now=NOW, made_at=NOW - day / 2)[0] == "revoked_key"  # type: ignore[index]
    assert store.signing_key(record.kid) == record  # a snapshot never changes
    with pytest.raises(ValueError, match="thumbprint"):
        store.with_keys(replace(record, kid="nope"))
