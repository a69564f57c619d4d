"""Enrolment by request in temporary homes: the admin's, and one per agency."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

from broker.federation import Federation
from broker.federation.enrolment import (
    Admission,
    AgencySite,
    Imported,
    RequestClaims,
    admit,
    make_request,
    read_request,
)
from broker.keys import SigningKey
from tests.unit.federation.conftest import NOW


def request(
    site: Path, agency: str, name: str | None = "Anti Narcotics Force", *, rotate: bool = False,
    now: datetime = NOW,
) -> bytes:  # fmt: skip
    """``agency init`` in ``site``: the request's bytes."""
    made = AgencySite(site).request(agency, name=name, now=now, rotate=rotate)
    return made.path.read_bytes()


def admitted(admin: Path, token: bytes, *, now: datetime = NOW) -> Admission:
    """``agency add --request`` (or ``rotate-keys --request``) in ``admin``."""
    parsed = read_request(token, source="request", now=now)
    return admit(Federation.load(admin), parsed, now=now)


def imported(site: Path, admission: Admission, *, now: datetime = NOW) -> Imported:
    """``agency import`` in ``site``."""
    data = admission.bundle.read_bytes()
    return AgencySite(site).import_bundle(data, source="bundle", now=now)


def enrolled(admin: Path, site: Path, agency: str, *, now: datetime = NOW) -> Imported:
    """The whole round: request in ``site``, admitted in ``admin``, imported in ``site``."""
    return imported(site, admitted(admin, request(site, agency, agency.upper(), now=now)))


def claims_of(token: bytes) -> RequestClaims:
    """The claims of a (plain) request, unverified: a starting point to forge from."""
    payload = token.strip().split(b".")[1]
    return RequestClaims.model_validate_json(_b64d(payload))


def _b64d(segment: bytes) -> bytes:
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def signed(claims: RequestClaims, key: SigningKey) -> bytes:
    """``claims`` as a request signed by ``key`` (the forger's tool)."""
    return make_request(claims, key)


__all__ = [
    "admitted",
    "claims_of",
    "enrolled",
    "imported",
    "request",
    "signed",
]
