"""A federation of three agencies in a temporary home, and tools to forge records."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from broker.federation import JWS_TYP, AgencyRecord, Federation, sign_record
from broker.home import HomeLayout
from broker.keys import SigningKey, kid_of, load_private_pem

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
ENROLLED = NOW - timedelta(days=1)


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSIONBUS_PASSPHRASE", raising=False)
    monkeypatch.delenv("FUSIONBUS_HOME", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def federation(home: Path) -> Federation:
    """customs, anf (narcotics in PK) and fia (human trafficking in PK-SD)."""
    fed = Federation.init(home, now=ENROLLED)
    fed.add_agency("customs", "Pakistan Customs", now=ENROLLED)
    fed.add_agency("anf", "Anti Narcotics Force", now=ENROLLED)
    fed.add_agency("fia", "Federal Investigation Agency", now=ENROLLED)
    fed.grant("customs", categories=["contraband"], jurisdictions=["PK"], now=ENROLLED)
    fed.grant(
        "anf", categories=["narcotics", "precursor_chemicals"], jurisdictions=["PK"], now=ENROLLED
    )
    fed.grant("fia", categories=["human_trafficking"], jurisdictions=["PK-SD"], now=ENROLLED)
    return fed


def root_key(home: Path) -> SigningKey:
    key = load_private_pem(HomeLayout(home).root_private.read_bytes())
    assert isinstance(key, SigningKey)
    return key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload: bytes, key: SigningKey, header: dict[str, Any] | None = None) -> bytes:
    """A compact JWS over ``payload`` signed by ``key`` with ``header`` (default: ours)."""
    head = header if header is not None else {"alg": "Ed25519", "kid": kid_of(key), "typ": JWS_TYP}
    signing_input = f"{b64(orjson.dumps(head))}.{b64(payload)}".encode()
    return signing_input + b"." + b64(key.sign(signing_input)).encode()


def publish(home: Path, record: AgencyRecord, *, name: str | None = None) -> Path:
    """Write ``record`` into the directory, signed by the real root (as the admin could)."""
    path = HomeLayout(home).record(name or record.id)
    path.write_bytes(sign_record(record, root_key(home)))
    return path


def record_dict(record: AgencyRecord) -> dict[str, Any]:
    value: dict[str, Any] = record.model_dump(mode="json")
    return value
