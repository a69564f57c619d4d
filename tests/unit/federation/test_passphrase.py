"""Private keys encrypted with a configured passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from broker.errors import ConfigError
from broker.federation import Federation, KeySettings
from broker.home import HomeLayout
from tests.unit.federation.conftest import NOW

SECRET = KeySettings(passphrase=SecretStr("correct horse battery staple"))


def test_keys_are_written_encrypted_and_load_with_the_passphrase(home: Path) -> None:
    fed = Federation.init(home, now=NOW, settings=SECRET)
    fed.add_agency("anf", "ANF", now=NOW)
    layout = HomeLayout(home)
    for path in (layout.root_private, layout.signing_key("anf"), layout.encryption_key("anf")):
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    identity = Federation.load(home, settings=SECRET).identity("anf")
    assert identity.signing_kid == fed.snapshot.agency("anf").signing_kid


def test_the_passphrase_comes_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUSIONBUS_PASSPHRASE", "from-env")
    Federation.init(home, now=NOW).add_agency("anf", "ANF", now=NOW)
    assert HomeLayout(home).signing_key("anf").read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    assert Federation.load(home).identity("anf").agency == "anf"
    monkeypatch.delenv("FUSIONBUS_PASSPHRASE")
    with pytest.raises(ConfigError, match="FUSIONBUS_PASSPHRASE"):
        Federation.load(home).identity("anf")


def test_without_the_passphrase_the_error_says_how_to_give_it(home: Path) -> None:
    Federation.init(home, now=NOW, settings=SECRET).add_agency("anf", "ANF", now=NOW)
    with pytest.raises(ConfigError) as info:
        Federation.load(home).identity("anf")
    assert "is encrypted; set the passphrase in FUSIONBUS_PASSPHRASE" in str(info.value)
    assert str(HomeLayout(home).signing_key("anf")) in str(info.value)
    with pytest.raises(ConfigError, match="is encrypted"):
        Federation.load(home).grant("anf", categories=["arms"], jurisdictions=["PK"], now=NOW)


def test_a_wrong_passphrase_is_named(home: Path) -> None:
    Federation.init(home, now=NOW, settings=SECRET).add_agency("anf", "ANF", now=NOW)
    wrong = KeySettings(passphrase=SecretStr("wrong"))
    with pytest.raises(ConfigError, match="wrong passphrase"):
        Federation.load(home, settings=wrong).identity("anf")


def test_an_empty_passphrase_means_none(home: Path) -> None:
    Federation.init(home, now=NOW, settings=KeySettings(passphrase=SecretStr("")))
    assert HomeLayout(home).root_private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_the_passphrase_never_shows_in_repr() -> None:
    assert "correct horse" not in repr(SECRET)
