"""Property tests for parsing directory records: round trips, and nothing but ConfigError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import ConfigError
from broker.federation import (
    AgencyRecord,
    Grant,
    KeyEntry,
    PublicJwk,
    canonical_json,
    sign_record,
    verify_record,
)
from broker.keys import DecryptionKey, SigningKey
from tests.unit.federation.conftest import forge

ROOT = SigningKey.generate()
SOURCE = "prop.jws"
CATEGORIES = ["narcotics", "arms", "human_trafficking", "contraband"]
JURISDICTIONS = ["PK", "PK-SD", "PK-PB", "PKKHI", "PKBQM", "AF", "IR-07"]

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
raw32 = st.binary(min_size=32, max_size=32)


@st.composite
def records(draw: st.DrawFn) -> AgencyRecord:
    start = draw(times)
    life = draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)))

    def entry(key: PublicJwk) -> KeyEntry:
        return KeyEntry(
            jwk=key, valid_from=start, valid_until=start + life, revoked_at=draw(st.none() | times)
        )

    signing = SigningKey.generate(lambda n: draw(raw32)).public
    encryption = DecryptionKey.generate(lambda n: draw(raw32)).public
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(CATEGORIES), st.sampled_from(JURISDICTIONS)), max_size=8)
    )
    return AgencyRecord(
        id=draw(st.from_regex(r"[a-z][a-z0-9-]{1,31}", fullmatch=True)),
        name=draw(
            st.text(
                st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
                min_size=1,
                max_size=200,
            )
        ),
        revision=draw(st.integers(1, 2**53)),
        issued_at=draw(times),
        signing_keys=(entry(PublicJwk.of(signing)),),
        encryption_keys=(entry(PublicJwk.of(encryption)),),
        grants=tuple(Grant(category=c, jurisdiction=j) for c, j in pairs),
    )


@settings(deadline=None)
@given(records())
def test_sign_then_verify_returns_the_record(record: AgencyRecord) -> None:
    assert verify_record(sign_record(record, ROOT), ROOT.public, source=SOURCE) == record


def outcome(token: bytes) -> AgencyRecord | str:
    """The verified record, or the message of the ConfigError (any other error fails)."""
    try:
        return verify_record(token, ROOT.public, source=SOURCE)
    except ConfigError as exc:
        return str(exc)


@settings(deadline=None)
@given(records(), st.data())
def test_any_alteration_is_refused_with_config_error(
    record: AgencyRecord, data: st.DataObject
) -> None:
    token = bytearray(sign_record(record, ROOT))
    at = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != token[at]))
    token[at] = replacement
    result = outcome(bytes(token))
    if isinstance(result, str):
        assert SOURCE in result
    else:  # only whitespace at the ends may change without changing the meaning
        assert result == record
        assert chr(replacement).isspace()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS: list[tuple[str | int, ...]] = [
    ("id",),
    ("name",),
    ("revision",),
    ("grants",),
    ("signing_keys",),
    ("encryption_keys", 0, "jwk"),
    ("signing_keys", 0, "valid_until"),
    ("grants", 0),
    ("v",),
]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.sampled_from(FIELDS), json_values)
def test_root_signed_garbage_is_config_error_or_a_valid_record(
    record: AgencyRecord, path: tuple[str | int, ...], garbage: object
) -> None:
    value: Any = record.model_dump(mode="json")
    if path[0] == "grants" and not value["grants"]:
        value["grants"] = [None]
    target = value
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = garbage
    result = outcome(forge(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), ROOT))
    if isinstance(result, str):
        assert SOURCE in result
    else:
        assert canonical_json(result) == orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@settings(deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_config_error(data: bytes) -> None:
    with pytest.raises(ConfigError):
        verify_record(data, ROOT.public, source=SOURCE)


@settings(deadline=None)
@given(st.lists(st.text(st.sampled_from('abcAB-_=+/.{}"0'), max_size=40), min_size=1, max_size=4))
def test_jws_shaped_text_is_config_error(parts: list[str]) -> None:
    with pytest.raises(ConfigError):
        verify_record(".".join(parts).encode(), ROOT.public, source=SOURCE)
