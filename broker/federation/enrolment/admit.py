"""The federation admin's side of enrolment by request: :func:`admit`.

From a verified request (:func:`~broker.federation.enrolment.read_request`) it signs the
agency's directory record, issues its Kafka client certificate from the CSR and writes the
response bundle. It only ever handles public keys: the agency's private keys stay where
they were made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from pydantic import ValidationError

from broker._crypto import certificate_pem, certificate_sha256
from broker.errors import ConfigError
from broker.federation import lifecycle
from broker.federation._home import PUBLIC_FILE_MODE, KeySettings, write_file
from broker.federation.directory import Federation
from broker.federation.enrolment._shared import Fingerprints
from broker.federation.enrolment.bundle import (
    MAX_BUNDLE_BYTES,
    BundleClaims,
    KafkaHint,
    sign_bundle,
)
from broker.federation.enrolment.request import EnrolmentRequest
from broker.federation.records import AgencyRecord, PublicJwk, sign_record, validation_problems
from broker.home import HomeLayout
from broker.provisioning.pki import ClusterPki

__all__ = ["Admission", "admit"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Admission:
    """What :func:`admit` did: the record it signed, where the bundle is, what to compare."""

    record: AgencyRecord
    previous: AgencyRecord | None
    """The record before, for a rotation; ``None`` for a new agency."""
    bundle: Path
    fingerprints: Fingerprints


def admit(
    federation: Federation,
    request: EnrolmentRequest,
    *,
    now: datetime,
    valid_for: timedelta = timedelta(days=365),
    kafka: KafkaHint | None = None,
    settings: KeySettings | None = None,
) -> Admission:
    """Enrol the agency of ``request`` (or rotate its keys, for a rotation request): sign
    its record, sign its certificate from the CSR, write ``enrolment/<id>.bundle.jws``.

    Every check and signature happens first, in memory; then the bundle is written, then
    the record. A failure before the record leaves the directory as it was, so the command
    can simply be run again.
    """
    previous = None
    if request.claims.rotates is None:
        federation.check_free(request.id)
        record = federation.new_record(
            request.id, request.claims.name, request.signing_key, request.encryption_key,
            now=now, valid_for=valid_for,
        )  # fmt: skip
    else:
        previous = federation.snapshot.agency(request.id)
        record = _rotated(previous, request, now=now, valid_for=valid_for)
        federation.check_keys(record)
    root = federation.root_key()
    pki = ClusterPki(federation.home, settings=settings)
    certificate = pki.issue_from_request(request.id, request.csr, now=now)
    others = [
        token
        for agency, token in federation.snapshot.signed_records().items()
        if agency != record.id
    ]
    claims = BundleClaims(
        id=record.id,
        issued_at=now,
        record=sign_record(record, root).decode("ascii"),
        directory=tuple(token.decode("ascii") for token in others),
        certificate=certificate_pem(certificate).decode("ascii"),
        issuer_certificate=pki.agency_ca_cert_path(record.id).read_text(encoding="ascii"),
        ca_certificate=certificate_pem(pki.ca_certificate()).decode("ascii"),
        root_key=PublicJwk.of(root.public),
        kafka=kafka,
    )
    bundle = sign_bundle(claims, root)
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise ConfigError(
            f"the bundle for {record.id!r} would be {len(bundle)} bytes, over the "
            f"{MAX_BUNDLE_BYTES} an agency accepts (the directory is too large to carry)"
        )
    layout = HomeLayout(federation.home)
    layout.enrolment_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = layout.bundle(record.id)
    write_file(path, bundle + b"\n", mode=PUBLIC_FILE_MODE)
    federation.store(record, root, new=previous is None)
    fingerprints = request.fingerprints()
    log.info(
        "federation.keys_rotated" if previous else "federation.agency_added",
        agency=record.id,
        signing_kid=record.signing_kid,
        encryption_kid=record.encryption_kid,
        revision=record.revision,
        keys="by request",
        tls_key=fingerprints.tls_key,
    )
    return Admission(
        record,
        previous,
        path,
        Fingerprints(
            fingerprints.agency, fingerprints.signing_kid, fingerprints.encryption_kid,
            fingerprints.tls_key, certificate_sha256(certificate), federation.root_kid,
        ),
    )  # fmt: skip


def _rotated(
    previous: AgencyRecord, request: EnrolmentRequest, *, now: datetime, valid_for: timedelta
) -> AgencyRecord:
    """``previous`` with the request's keys current, if the request's endorsement is by
    the agency's current signing key (and that key is not revoked)."""
    agency, rotates = previous.id, request.claims.rotates
    current = previous.signing_keys[-1]
    if rotates is None or not request.endorsed:
        raise ConfigError("unreachable: read_request refuses an unendorsed rotation")
    listed = {e.kid for e in (*previous.signing_keys, *previous.encryption_keys)}
    if {request.claims.signing_key.kid, request.claims.encryption_key.kid} & listed:
        raise ConfigError(
            f"{agency!r} already lists the keys of this request (revision "
            f"{previous.revision}): it was applied before, or is replayed; the agency "
            "imports the bundle issued then"
        )
    if rotates.kid != current.kid:
        raise ConfigError(
            f"the rotation request is endorsed by key {rotates.kid}, but {agency!r}'s current "
            f"signing key is {current.kid} (revision {previous.revision}): it was made before "
            f"the last rotation, or is replayed. Make a fresh one with `fusionbus agency init "
            f"{agency} --rotate` on the agency's machine"
        )
    if current.revoked_at is not None and current.revoked_at <= now:
        raise ConfigError(
            f"{agency!r}'s current signing key {current.kid} is revoked, so a request it "
            "endorses proves nothing; re-admitting a revoked agency by request is not "
            "supported (docs/federation.md, Enrolment by request)"
        )
    if request.claims.name != previous.name:
        raise ConfigError(
            f"the rotation request names the agency {request.claims.name!r}, but the "
            f"directory says {previous.name!r}; a rotation keeps the name"
        )
    try:
        return lifecycle.rotated(
            previous, request.signing_key, request.encryption_key, now=now, valid_for=valid_for
        )
    except ValidationError as exc:
        raise ConfigError(f"rotation of {agency!r}: {validation_problems(exc)}") from None
