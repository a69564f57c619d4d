"""Property tests for the enrolment documents: whatever the bytes, a verified document or
exactly one ConfigError, never another exception."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import ConfigError
from broker.federation import Federation
from broker.federation.enrolment import (
    BUNDLE_TYP,
    REQUEST_TYP,
    ROTATION_TYP,
    read_bundle,
    read_request,
)
from broker.keys import SigningKey, kid_of
from tests.unit.federation.conftest import NOW, forge
from tests.unit.federation.enrol import admitted, enrolled, request

KEY = SigningKey.generate()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A genuine request, rotation request and bundle to mutate."""
    base = tmp_path_factory.mktemp("enrolment-properties")
    admin, site = base / "admin", base / "anf"
    Federation.init(admin, now=NOW)
    plain = request(base / "fia", "fia", "FIA")
    bundle = admitted(admin, request(base / "pcg", "pcg", "PCG")).bundle.read_bytes()
    enrolled(admin, site, "anf")
    return {"request": plain, "rotation": request(site, "anf", rotate=True), "bundle": bundle}


def outcome(data: bytes) -> None:
    """Read ``data`` as a request and as a bundle: each either verifies or says why not."""
    messages = []
    for read in (read_request, read_bundle):
        try:
            read(data, source="prop", now=NOW)
        except ConfigError as exc:
            messages.append(str(exc))
    assert all(message.startswith("prop") for message in messages), messages


@settings(deadline=None)
@given(st.binary(max_size=800))
def test_arbitrary_bytes_give_only_config_errors(data: bytes) -> None:
    outcome(data)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["request", "rotation", "bundle"]), st.data())
def test_mutated_documents_give_only_config_errors(
    tokens: dict[str, bytes], which: str, data: st.DataObject
) -> None:
    token = bytearray(tokens[which].strip())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
        token[at] = data.draw(st.integers(min_value=0, max_value=255))
    outcome(bytes(token))


@settings(deadline=None)
@given(st.sampled_from([REQUEST_TYP, ROTATION_TYP, BUNDLE_TYP]), json_values)
def test_any_signed_json_gives_only_config_errors(typ: str, payload: object) -> None:
    header = {"alg": "Ed25519", "kid": kid_of(KEY), "typ": typ}
    outcome(forge(orjson.dumps(payload), KEY, header))


def test_the_genuine_documents_verify(tokens: dict[str, bytes]) -> None:
    assert read_request(tokens["request"], source="r", now=NOW).id == "fia"
    assert read_request(tokens["rotation"], source="r", now=NOW).endorsed
    assert read_bundle(tokens["bundle"], source="b", now=NOW).id == "pcg"
