"""The federation directory on disk: :class:`Federation`.

Every party holds the root public key (``federation/root.pub.jwk``, its trust anchor) and
a copy of the directory (``directory/<agency>.jws``). :meth:`Federation.load` verifies the
root signature of every record before any of it is used, and :attr:`Federation.snapshot`
is what they say (a :class:`~broker.federation.snapshot.DirectorySnapshot`, replaced on
every write). Only the admin's machine holds ``federation/root.key.pem`` and can enrol
agencies and change grants.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from pydantic import ValidationError

from broker._crypto import EncryptionKey, VerifyKey
from broker.errors import ConfigError
from broker.federation import lifecycle
from broker.federation._highwater import RevisionGuard
from broker.federation._home import (
    PUBLIC_FILE_MODE,
    KeySettings,
    read_limited,
    read_private_key,
    read_root_public,
    write_file,
    write_private_key,
    write_root_public,
)
from broker.federation._keyfiles import AgencyKeyFiles
from broker.federation.head import sign_head
from broker.federation.records import (
    MAX_RECORD_BYTES,
    AgencyRecord,
    Grant,
    KeyEntry,
    PublicJwk,
    sign_record,
    validation_problems,
    verify_record,
)
from broker.federation.snapshot import DirectorySnapshot
from broker.home import HomeLayout
from broker.keys import (
    DecryptionKey,
    Identity,
    SigningKey,
    kid_of,
)
from schemas._base import AGENCY_ID_PATTERN

__all__ = ["Federation", "read_root_public"]

log = structlog.get_logger(__name__)

_AGENCY_ID = re.compile(AGENCY_ID_PATTERN)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime (e.g. datetime.now(UTC))")
    return now


def _revoked(record: AgencyRecord, kid: str) -> bool:
    return any(
        e.kid == kid and e.revoked_at is not None
        for e in (*record.signing_keys, *record.encryption_keys)
    )


class Federation:
    """A federation directory whose every record the root signature vouches for.

    Build one with :meth:`load` or :meth:`init`. The passphrase for private keys comes
    from ``settings`` (default: :class:`KeySettings` from the environment).
    """

    def __init__(
        self,
        home: Path,
        root: VerifyKey,
        records: Mapping[str, AgencyRecord],
        settings: KeySettings,
        *,
        tokens: Mapping[str, bytes] | None = None,
    ) -> None:
        self._layout = HomeLayout(home)
        self._root = root
        self._settings = settings
        self._keys = AgencyKeyFiles(self._layout, settings)
        # Refuses a kid listed for two agencies.
        self._snapshot = DirectorySnapshot.of(
            records.values(), tokens=tokens, origin=f"the directory of {home}"
        )

    @property
    def snapshot(self) -> DirectorySnapshot:
        """The directory as this home holds it now (replaced by every write here)."""
        return self._snapshot

    @property
    def home(self) -> Path:
        return self._layout.home

    @property
    def root_kid(self) -> str:
        """The RFC 7638 thumbprint of the root key: compare it out of band."""
        return kid_of(self._root)

    @classmethod
    def load(cls, home: Path, *, settings: KeySettings | None = None) -> Federation:
        """Read the root public key and every directory record, verifying each signature.

        Raises :class:`ConfigError`, naming the file, for anything unsigned, signed by
        another key, altered, malformed or filed under another agency's name.
        """
        layout = HomeLayout(home)
        root = read_root_public(layout.root_public, home)
        guard = RevisionGuard(layout.accepted_revisions)
        records: dict[str, AgencyRecord] = {}
        tokens: dict[str, bytes] = {}
        files = sorted(layout.directory_dir.glob("*.jws")) if layout.directory_dir.is_dir() else []
        for path in files:
            if path.name.startswith("."):
                continue
            token = read_limited(path, MAX_RECORD_BYTES).strip()
            record = verify_record(token, root, source=str(path))
            if record.id != path.stem:
                raise ConfigError(
                    f"{path}: holds the record of agency {record.id!r}, but its file name "
                    f"says {path.stem!r}; a record must be filed as directory/<id>.jws"
                )
            guard.check(record, source=str(path))
            records[record.id], tokens[record.id] = record, token
        if layout.directory_dir.is_dir():
            guard.accept(records.values())
        return cls(home, root, records, settings or KeySettings(), tokens=tokens)

    @classmethod
    def init(cls, home: Path, *, now: datetime, settings: KeySettings | None = None) -> Federation:
        """Create a root signing key and an empty directory in ``home``."""
        _aware(now)
        layout = HomeLayout(home)
        settings = settings or KeySettings()
        for path in (layout.root_public, layout.root_private):
            if path.exists():
                raise ConfigError(
                    f"a federation already exists in {home} ({path} is there); use it, or "
                    "choose another --home"
                )
        if layout.directory_dir.is_dir() and any(layout.directory_dir.glob("*.jws")):
            raise ConfigError(
                f"{layout.directory_dir} already holds records; choose another --home"
            )
        root = SigningKey.generate()
        write_private_key(layout.root_private, root, settings)
        write_root_public(layout.root_public, root.public)
        try:
            layout.directory_dir.mkdir(mode=0o755, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {layout.directory_dir}: {exc}") from exc
        log.info("federation.init", home=str(home), root_kid=kid_of(root), at=now.isoformat())
        return cls(home, root.public, {}, settings)

    def root_key(self) -> SigningKey:
        """The federation root's private key: only on the admin's machine."""
        path = self._layout.root_private
        if not path.exists():
            raise ConfigError(
                f"the federation root key {path} is not on this machine; enrolling agencies "
                "and granting happen on the admin's machine that ran `fusionbus federation init`"
            )
        key = read_private_key(path, self._settings)
        if not isinstance(key, SigningKey) or key.public != self._root:
            raise ConfigError(
                f"{path} is not the private half of {self._layout.root_public} "
                f"(root kid {self.root_kid}); restore the matching file"
            )
        return key

    def store(self, record: AgencyRecord, root: SigningKey, *, new: bool) -> bytes:
        """Sign ``record`` with ``root`` and write it as ``directory/<id>.jws`` (``new``:
        refusing to replace a file); the signed record (Ed25519 signs deterministically,
        so signing the same record again gives the same bytes)."""
        token = sign_record(record, root)
        write_file(
            self._layout.record(record.id), token + b"\n", mode=PUBLIC_FILE_MODE, exclusive=new
        )
        snapshot = self._snapshot
        self._snapshot = DirectorySnapshot.of(
            [*(r for r in snapshot.records.values() if r.id != record.id), record],
            tokens={**snapshot.tokens, record.id: token},
            origin=snapshot.origin,
        )
        RevisionGuard(self._layout.accepted_revisions).accept([record])
        return token

    def check_free(self, agency_id: str) -> None:
        """ConfigError unless ``agency_id`` is a valid id no record or folder here uses."""
        if _AGENCY_ID.fullmatch(agency_id) is None:
            raise ConfigError(
                f"agency id {agency_id!r} is not valid: expected a lowercase letter, then 1 to "
                "31 lowercase letters, digits or hyphens (e.g. customs, anf, fia)"
            )
        if agency_id in self._snapshot.records or self._layout.record(agency_id).exists():
            raise ConfigError(
                f"agency {agency_id!r} is already enrolled; see `fusionbus agency list "
                f"--home {self.home}`"
            )
        folder = self._layout.agency_dir(agency_id)
        if folder.exists():
            raise ConfigError(
                f"{folder} already exists but {agency_id!r} has no directory record (an "
                "interrupted enrolment?); remove that folder and run the command again"
            )

    def new_record(
        self, agency_id: str, name: str, signing: VerifyKey, encryption: EncryptionKey, *,
        now: datetime, valid_for: timedelta,
    ) -> AgencyRecord:  # fmt: skip
        """The first record of a new agency with these public keys (nothing is written);
        ConfigError if it is invalid or lists a key another agency holds."""
        _aware(now)
        if valid_for <= timedelta(0):
            raise ConfigError(f"valid_for must be positive, got {valid_for}")
        try:
            record = AgencyRecord(
                id=agency_id,
                name=name,
                revision=1,
                issued_at=now,
                signing_keys=(self._entry(signing, now, valid_for),),
                encryption_keys=(self._entry(encryption, now, valid_for),),
            )
        except ValidationError as exc:
            raise ConfigError(f"agency {agency_id!r}: {validation_problems(exc)}") from None
        self.check_keys(record)
        return record

    def check_keys(self, record: AgencyRecord) -> None:
        """ConfigError if ``record`` lists a key that another agency's record lists."""
        others = [r for r in self._snapshot.records.values() if r.id != record.id]
        DirectorySnapshot.of([*others, record])

    def holds_keys(self, agency_id: str) -> bool:
        """Whether this home holds ``agency_id``'s private keys (``agency add ID --name``
        made them here, as on a one-machine lab)."""
        return self._keys.holds(agency_id)

    def add_agency(
        self,
        agency_id: str,
        name: str,
        *,
        now: datetime,
        valid_for: timedelta = timedelta(days=365),
    ) -> AgencyRecord:
        """Enrol ``agency_id`` with keys made here: private files and a root-signed record.

        For tests and one-machine labs: this home then holds the agency's private keys. A
        real agency makes its own and sends a request (:mod:`broker.federation.enrolment`).
        """
        _aware(now)
        self.check_free(agency_id)
        root = self.root_key()
        signing, decryption = SigningKey.generate(), DecryptionKey.generate()
        record = self.new_record(
            agency_id, name, signing.public, decryption.public, now=now, valid_for=valid_for
        )
        self._keys.create(agency_id, signing, decryption)
        self.store(record, root, new=True)
        log.info(
            "federation.agency_added",
            agency=agency_id,
            signing_kid=record.signing_kid,
            encryption_kid=record.encryption_kid,
            revision=record.revision,
            keys="made here",
        )
        return record

    @staticmethod
    def _entry(key: VerifyKey | EncryptionKey, now: datetime, valid_for: timedelta) -> KeyEntry:
        return KeyEntry(jwk=PublicJwk.of(key), valid_from=now, valid_until=now + valid_for)

    def grant(
        self,
        agency_id: str,
        *,
        categories: Sequence[str],
        jurisdictions: Sequence[str],
        now: datetime,
    ) -> AgencyRecord:
        """Entitle ``agency_id`` to every category-by-jurisdiction pair given.

        Grants accumulate. The record is re-signed with ``revision + 1``; if every pair is
        already granted, nothing is written and the current record is returned.
        """
        return self._change_grants(agency_id, categories, jurisdictions, now, take_back=False)

    def ungrant(
        self,
        agency_id: str,
        *,
        categories: Sequence[str],
        jurisdictions: Sequence[str],
        now: datetime,
    ) -> AgencyRecord:
        """Take back every category-by-jurisdiction grant given (exactly those pairs; a
        grant of a wider jurisdiction stays). Re-signed with ``revision + 1``; nothing is
        written if the agency held none of them. Reports already delivered stay delivered:
        the originator's notices on them still reach the agency (docs/cycle.md)."""
        return self._change_grants(agency_id, categories, jurisdictions, now, take_back=True)

    def _change_grants(
        self,
        agency_id: str,
        categories: Sequence[str],
        jurisdictions: Sequence[str],
        now: datetime,
        *,
        take_back: bool,
    ) -> AgencyRecord:
        _aware(now)
        record = self._snapshot.agency(agency_id)
        if not categories or not jurisdictions:
            raise ConfigError("a grant needs at least one category and one jurisdiction")
        try:
            grants = [
                Grant(category=c, jurisdiction=j)
                for c, j in itertools.product(categories, jurisdictions)
            ]
            change = record.without_grants if take_back else record.with_grants
            updated = change(grants, now=now)
        except ValidationError as exc:
            raise ConfigError(f"grant for {agency_id!r}: {validation_problems(exc)}") from None
        if updated is record:
            return record
        self.store(updated, self.root_key(), new=False)
        log.info(
            "federation.ungranted" if take_back else "federation.granted",
            agency=agency_id,
            grants=[str(g) for g in updated.grants],
            revision=updated.revision,
        )
        return updated

    def identity(self, agency_id: str, *, record: AgencyRecord | None = None) -> Identity:
        """``agency_id``'s private keys from this home, checked against its record: this
        home's, or ``record`` (the agency's current one, from a live directory, say).

        Besides the current keys it holds every older decryption key still listed whose
        file (``encryption.<kid>.key.pem``) is here, to open envelopes sealed before a
        rotation.
        """
        if record is not None and record.id != agency_id:
            raise ConfigError(f"the record given for {agency_id!r} is {record.id!r}'s")
        return self._keys.identity(
            record if record is not None else self._snapshot.agency(agency_id)
        )

    def rotate_keys(
        self, agency_id: str, *, now: datetime, valid_for: timedelta = timedelta(days=365)
    ) -> AgencyRecord:
        """New signing and encryption keys for ``agency_id``; the old ones end at ``now``.

        The old decryption key is kept as ``encryption.<old kid>.key.pem``, the old signing
        key destroyed; the files change in an order a crash cannot break
        (:meth:`AgencyKeyFiles.rotate <broker.federation._keyfiles.AgencyKeyFiles.rotate>`).
        """
        _aware(now)
        record = self._snapshot.agency(agency_id)
        if not self.holds_keys(agency_id):
            raise ConfigError(
                f"this home ({self.home}) does not hold {agency_id!r}'s private keys: it was "
                f"enrolled by request, so its keys live on its machine. There, run `fusionbus "
                f"agency init {agency_id} --rotate`; here, `fusionbus agency rotate-keys "
                "--request FILE` with the request it writes"
            )
        root = self.root_key()
        signing, decryption = SigningKey.generate(), DecryptionKey.generate()
        updated = lifecycle.rotated(
            record, signing.public, decryption.public, now=now, valid_for=valid_for
        )
        self.check_keys(updated)
        self._keys.rotate(record, signing, decryption, lambda: self.store(updated, root, new=False))
        log.info(
            "federation.keys_rotated",
            agency=agency_id,
            signing_kid=updated.signing_kid,
            encryption_kid=updated.encryption_kid,
            ended=[record.signing_kid, record.encryption_kid],
            revision=updated.revision,
        )
        return updated

    def revoke(
        self, agency_id: str, *, reason: str, now: datetime, kid: str | None = None
    ) -> AgencyRecord:
        """Revoke ``agency_id``'s key ``kid``, or every key of it not yet revoked.

        A revoked signing key signs no acceptable report from then on; an agency without a
        usable encryption key stops being a recipient. ``reason`` goes to the log (the
        administrative audit event). To let the agency take part again, rotate its keys.
        """
        _aware(now)
        if not reason.strip():
            raise ConfigError("a revocation needs a reason (--reason TEXT), for the audit trail")
        record = self._snapshot.agency(agency_id)
        updated = lifecycle.revoked(record, None if kid is None else [kid], now=now)
        if updated is record:
            return record
        self.store(updated, self.root_key(), new=False)
        before = {e.kid: e.revoked_at for e in (*record.signing_keys, *record.encryption_keys)}
        log.warning(
            "federation.keys_revoked",
            agency=agency_id,
            kids=sorted(k for k, at in before.items() if at is None and _revoked(updated, k)),
            reason=reason,
            revision=updated.revision,
        )
        return updated

    def signed_head(self, *, now: datetime) -> bytes:
        """The root-signed head naming every agency's current revision at ``now`` (admin
        only): published after the records, it lets a reader with no state detect a
        rolled-back directory topic (:mod:`broker.federation.head`)."""
        revisions = {record.id: record.revision for record in self._snapshot.records.values()}
        return sign_head(revisions, self.root_key(), now=_aware(now))
