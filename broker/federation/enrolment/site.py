"""The agency's side of enrolment by request: :class:`AgencySite`, its own home.

The home has the layout of any fusionbus home (``docs/federation.md``), holding the keys of
this agency only::

    agencies/<id>/signing.key.pem, encryption.key.pem    made here, 0600, never sent
    agencies/<id>/signing.<kid>.key.pem, ...             a rotation's new keys, staged
    agencies/<id>/tls/key.pem (next.key.pem staged)      the Kafka client key, made here
    agencies/<id>/tls/cert.pem, ca.pem                   from the admin's bundle
    enrolment/<id>.request.jws                           the request to hand to the admin
    federation/root.pub.jwk, directory/*.jws             from the bundle

:meth:`AgencySite.request` makes the keys (or reuses those made before) and the request;
:meth:`AgencySite.import_bundle` installs the admin's answer after checking that it is for
the keys this home made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from broker._crypto import SigningKey, certificate_pem
from broker.errors import ConfigError
from broker.federation._home import (
    PUBLIC_FILE_MODE,
    KeySettings,
    read_limited,
    read_private_key,
    read_root_public,
    write_file,
    write_root_public,
)
from broker.federation._keyfiles import AgencyKeyFiles, Usage
from broker.federation.enrolment._shared import Fingerprints
from broker.federation.enrolment.bundle import MAX_BUNDLE_BYTES, Bundle, KafkaHint, read_bundle
from broker.federation.enrolment.request import (
    MAX_REQUEST_BYTES,
    EnrolmentRequest,
    RequestClaims,
    make_request,
    read_request,
)
from broker.federation.records import MAX_RECORD_BYTES, AgencyRecord, PublicJwk, verify_record
from broker.home import HomeLayout
from broker.keys import DecryptionKey, VerifyKey
from broker.provisioning.pki import ClusterPki

__all__ = ["AgencySite", "Imported", "Requested"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Requested:
    """The request :meth:`AgencySite.request` wrote, and what to read out to the admin."""

    path: Path
    fingerprints: Fingerprints
    rotation: bool


@dataclass(frozen=True, slots=True)
class Imported:
    """What :meth:`AgencySite.import_bundle` installed."""

    record: AgencyRecord
    fingerprints: Fingerprints
    kafka: KafkaHint | None
    rotated: bool
    directory: int
    """How many records of other agencies the home now holds from the bundle."""


class AgencySite:
    """One agency's own home: where its keys are made and stay."""

    def __init__(self, home: Path, *, settings: KeySettings | None = None) -> None:
        self.home = home
        self._layout = HomeLayout(home)
        self._settings = settings or KeySettings()
        self._keys = AgencyKeyFiles(self._layout, self._settings)
        self._pki = ClusterPki(home, settings=self._settings)

    def _refuse_admin_home(self, doing: str) -> None:
        if self._layout.root_private.exists():
            raise ConfigError(
                f"{self.home} holds the federation root key: it is the admin's home, and an "
                f"agency's keys must not be there. {doing} in the agency's own home (--home "
                "DIR on the agency's machine)"
            )

    def _own_record(self, agency: str) -> AgencyRecord | None:
        path = self._layout.record(agency)
        if not path.exists():
            return None
        root = read_root_public(self._layout.root_public, self.home)
        return verify_record(read_limited(path, MAX_RECORD_BYTES), root, source=str(path))

    # -- the request ---------------------------------------------------------------------

    def request(
        self, agency: str, *, name: str | None, now: datetime, rotate: bool = False
    ) -> Requested:
        """Write ``enrolment/<agency>.request.jws``: an enrolment request, or with
        ``rotate`` a rotation request endorsed by the current signing key. Keys are made
        first if this home has none (for a rotation: staged next to the keys in use);
        keys made by an earlier run are reused, so running it again only re-signs."""
        self._refuse_admin_home(f"Run `fusionbus agency init {agency}`")
        record = self._own_record(agency)
        if rotate:
            if record is None:
                raise ConfigError(
                    f"{agency!r} is not enrolled in {self.home} (no directory/{agency}.jws): "
                    f"enrol it first with `fusionbus agency init {agency} --name NAME`"
                )
            return self._rotation(record, now)
        if record is not None:
            raise ConfigError(
                f"{agency!r} is already enrolled in {self.home} (revision {record.revision}); "
                f"to replace its keys run `fusionbus agency init {agency} --rotate`"
            )
        pending = self._pending(agency, now)
        name = name or (pending.claims.name if pending else None)
        if name is None:
            raise ConfigError(
                f"the first enrolment request of {agency!r} needs its full name: "
                f"`fusionbus agency init {agency} --name NAME`"
            )
        if self._keys.holds(agency):
            signing, decryption = self._made_here(agency)
        else:
            signing, decryption = SigningKey.generate(), DecryptionKey.generate()
            self._keys.create(agency, signing, decryption)
        csr = self._pki.agency_request(agency)
        claims = RequestClaims(
            id=agency, name=name, signing_key=PublicJwk.of(signing.public),
            encryption_key=PublicJwk.of(decryption.public),
            csr=certificate_pem(csr).decode("ascii"), created_at=now,
        )  # fmt: skip
        return self._write(agency, make_request(claims, signing), now, rotation=False)

    def _rotation(self, record: AgencyRecord, now: datetime) -> Requested:
        agency = record.id
        current, _ = self._keys.current(agency, "signing", record.signing_kid)
        if not isinstance(current, SigningKey):
            raise ConfigError("unreachable: AgencyKeyFiles checks the kind of every key")
        pending = self._pending(agency, now)
        staged = None
        rotates = pending.claims.rotates if pending is not None else None
        if pending is not None and rotates is not None and rotates.kid == record.signing_kid:
            staged = self._staged(pending)
        if staged is None:
            staged = SigningKey.generate(), DecryptionKey.generate()
            self._keys.stage(agency, *staged)
        signing, decryption = staged
        csr = self._pki.agency_request(agency, pending=True)
        claims = RequestClaims(
            id=agency, name=record.name, signing_key=PublicJwk.of(signing.public),
            encryption_key=PublicJwk.of(decryption.public),
            csr=certificate_pem(csr).decode("ascii"), created_at=now,
            rotates=PublicJwk.of(current.public),
        )  # fmt: skip
        token = make_request(claims, signing, endorse=current)
        return self._write(agency, token, now, rotation=True)

    def _pending(self, agency: str, now: datetime) -> EnrolmentRequest | None:
        path = self._layout.request(agency)
        if not path.exists():
            return None
        data = read_limited(path, MAX_REQUEST_BYTES)
        return read_request(data, source=str(path), now=now, max_age=None)

    def _staged(self, request: EnrolmentRequest) -> tuple[SigningKey, DecryptionKey] | None:
        signing = self._keys.staged(request.id, "signing", request.claims.signing_key.kid)
        decryption = self._keys.staged(request.id, "encryption", request.claims.encryption_key.kid)
        if isinstance(signing, SigningKey) and isinstance(decryption, DecryptionKey):
            return signing, decryption
        return None

    def _made_here(self, agency: str) -> tuple[SigningKey, DecryptionKey]:
        signing = read_private_key(self._layout.signing_key(agency), self._settings)
        decryption = read_private_key(self._layout.encryption_key(agency), self._settings)
        if not isinstance(signing, SigningKey) or not isinstance(decryption, DecryptionKey):
            raise ConfigError(
                f"{self._layout.agency_dir(agency)} holds keys of the wrong kinds (signing must "
                "be Ed25519, encryption X25519); restore them"
            )
        return signing, decryption

    def _write(self, agency: str, token: bytes, now: datetime, *, rotation: bool) -> Requested:
        path = self._layout.request(agency)
        self._layout.enrolment_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_file(path, token + b"\n", mode=PUBLIC_FILE_MODE)
        request = read_request(token, source=str(path), now=now)  # what the admin will see
        log.info("enrolment.requested", agency=agency, rotation=rotation, path=str(path))
        return Requested(path, request.fingerprints(), rotation)

    # -- the bundle ----------------------------------------------------------------------

    def import_bundle(self, data: bytes, *, source: str, now: datetime) -> Imported:
        """Verify the bundle, check it is for the keys this home made (signing, encryption
        and TLS), then install the record, the directory, the certificate, the CA and the
        root key. Nothing is written unless every check passes."""
        self._refuse_admin_home("Import the bundle")
        if len(data) > MAX_BUNDLE_BYTES:
            raise ConfigError(f"{source}: over {MAX_BUNDLE_BYTES} bytes; no bundle is that large")
        layout = self._layout
        trusted = None
        if layout.root_public.exists():
            trusted = read_root_public(layout.root_public, self.home)
        bundle = read_bundle(data, source=source, now=now, trusted_root=trusted)
        agency, record = bundle.id, bundle.record
        self._check_keys(bundle, source)
        existing = self._own_record(agency) if trusted is not None else None
        if existing is not None:
            _not_older(existing, record, source)
        if trusted is None:
            layout.directory_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            layout.federation_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_root_public(layout.root_public, bundle.root)
        held = self.install_directory((token for _, token in bundle.directory), root=bundle.root)

        def publish() -> None:
            write_file(layout.record(agency), bundle.record_token + b"\n", mode=PUBLIC_FILE_MODE)

        rotated = existing is not None and existing.signing_kid != record.signing_kid
        if existing is not None and rotated:
            self._keys.promote(existing, record.signing_kid, record.encryption_kid, publish)
        else:
            publish()
            self._keys.settle(agency, record.signing_kid, record.encryption_kid)
        self._pki.install_agency_certificate(agency, bundle.certificate, bundle.ca)
        layout.request(agency).unlink(missing_ok=True)  # answered
        log.info(
            "enrolment.imported", agency=agency, revision=record.revision, rotated=rotated,
            signing_kid=record.signing_kid, encryption_kid=record.encryption_kid,
        )  # fmt: skip
        return Imported(record, bundle.fingerprints(), bundle.claims.kafka, rotated, held)

    def _check_keys(self, bundle: Bundle, source: str) -> None:
        agency, record = bundle.id, bundle.record
        wanted: tuple[tuple[Usage, str], ...] = (
            ("signing", record.signing_kid),
            ("encryption", record.encryption_kid),
        )
        for usage, kid in wanted:
            if not self._holds(agency, usage, kid):
                raise ConfigError(
                    f"{source}: the record lists {usage} key {kid} for {agency!r}, but this "
                    f"home ({self.home}) holds no such private key: the bundle answers another "
                    "home's request (or other keys); refusing it"
                )
        if not self._pki.holds_agency_key(agency, bundle.certificate):
            raise ConfigError(
                f"{source}: the certificate certifies a TLS key this home ({self.home}) does "
                "not hold: the bundle answers another home's request; refusing it"
            )

    def _holds(self, agency: str, usage: Usage, kid: str) -> bool:
        try:
            self._keys.current(agency, usage, kid)
        except ConfigError:
            return False
        return True

    def install_directory(self, tokens: Iterable[bytes], *, root: VerifyKey | None = None) -> int:
        """Write each root-signed record of ``tokens`` into ``directory/``, except where this
        home holds the same or a newer revision (never rolled back). Returns how many
        records of the given ones the home now holds."""
        root = root or read_root_public(self._layout.root_public, self.home)
        count = 0
        for token in tokens:
            record = verify_record(token, root, source="a directory record from the admin")
            path = self._layout.record(record.id)
            if path.exists():
                held = verify_record(read_limited(path, MAX_RECORD_BYTES), root, source=str(path))
                if held.revision >= record.revision:
                    count += 1
                    continue
                if self._keys.holds(record.id) and held.signing_kid != record.signing_kid:
                    log.warning("enrolment.own_rotation_skipped", agency=record.id)
                    continue  # this home's own new keys come with their bundle
            write_file(path, token.strip() + b"\n", mode=PUBLIC_FILE_MODE)
            count += 1
        return count


def _not_older(existing: AgencyRecord, record: AgencyRecord, source: str) -> None:
    if record.revision == existing.revision and record != existing:
        raise ConfigError(
            f"{source}: holds another revision {record.revision} of {record.id!r} than this "
            "home; refusing it"
        )
    if record.revision < existing.revision:
        raise ConfigError(
            f"{source}: holds revision {record.revision} of {record.id!r}, older than the "
            f"revision {existing.revision} this home holds; refusing a rollback"
        )
