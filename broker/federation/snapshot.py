"""The directory read model: :class:`DirectorySnapshot`, one frozen view of whom to trust.

A snapshot holds the verified agency records by id, the kid index of their public keys
(:class:`SigningKeyRecord`, :class:`EncryptionKeyRecord`: the owning agency, the key and
its lifecycle), the signed records and the newest root-signed head, and answers every
read question: ``signing_key(kid)``, ``encryption_key(kid)``, ``agency(id)``,
``agencies()``, ``recipients_for(...)`` and ``entitled(...)`` (the rules are
:mod:`broker.federation.policy`'s). It never changes: the file store
(:attr:`Federation.snapshot <broker.federation.Federation.snapshot>`) and the live
follower (:attr:`LiveDirectory.snapshot <broker.federation.LiveDirectory.snapshot>`)
replace theirs with a new one when the directory changes.

A :class:`Directory` is anything that yields the current snapshot: the file store, the
live follower, or a snapshot itself (which yields itself). Sealing and opening take one
and read ``directory.snapshot`` for every message, so a long-running subscriber sees a
revocation as soon as the follower accepts it.

Lifecycle rules (``problem()`` of each key record), the same for sealing and opening:

* **revoked** (``revoked_at <= now``): refused for everything from then on, whatever time
  a message claims — a thief of the key can backdate ``created_at``.
* **expired / not yet valid**: the key must have been valid when the message was made
  (``valid_from <= created_at < valid_until``). Rotation sets ``valid_until`` on the old
  key, so reports made just before it stay readable until they expire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, TypeVar

from broker._crypto import EncryptionKey, VerifyKey
from broker.errors import ConfigError
from broker.federation import policy
from broker.keys import kid_of

if TYPE_CHECKING:
    from broker.federation.head import DirectoryHead
    from broker.federation.records import AgencyRecord, KeyEntry

__all__ = [
    "Directory",
    "DirectorySnapshot",
    "EncryptionKeyRecord",
    "KeyProblem",
    "SigningKeyRecord",
    "agency_keys",
]

KeyProblem = tuple[str, str]
"""(``revoked_key`` or ``expired_key``, a sentence for the log)."""


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """An agency's public signing key and its lifecycle."""

    kid: str
    agency: str
    key: VerifyKey
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None

    def problem(self, *, now: datetime, made_at: datetime) -> KeyProblem | None:
        """Why this key must not verify a message made at ``made_at``, at ``now``; or
        ``None`` (the rules are in the module docstring)."""
        return _problem(self, now=now, made_at=made_at)


@dataclass(frozen=True, slots=True)
class EncryptionKeyRecord:
    """An agency's public encryption key and its lifecycle."""

    kid: str
    agency: str
    key: EncryptionKey
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None

    def problem(self, *, now: datetime, made_at: datetime) -> KeyProblem | None:
        """Why nothing made at ``made_at`` may be sealed to this key at ``now``; or
        ``None`` (the rules are in the module docstring)."""
        return _problem(self, now=now, made_at=made_at)


def _problem(
    record: SigningKeyRecord | EncryptionKeyRecord, *, now: datetime, made_at: datetime
) -> KeyProblem | None:
    if record.revoked_at is not None and record.revoked_at <= now:
        return (
            "revoked_key",
            f"key {record.kid} of {record.agency} was revoked at {record.revoked_at.isoformat()}",
        )
    if made_at < record.valid_from:
        return (
            "expired_key",
            (
                f"key {record.kid} of {record.agency} is valid only from "
                f"{record.valid_from.isoformat()}; the message is from {made_at.isoformat()}"
            ),
        )
    if record.valid_until is not None and made_at >= record.valid_until:
        return (
            "expired_key",
            (
                f"key {record.kid} of {record.agency} expired at "
                f"{record.valid_until.isoformat()}; the message is from {made_at.isoformat()}"
            ),
        )
    return None


def agency_keys(
    agency: str,
    signing: VerifyKey,
    encryption: EncryptionKey,
    *,
    valid_from: datetime,
    valid_until: datetime | None = None,
) -> tuple[SigningKeyRecord, EncryptionKeyRecord]:
    """The key records of an agency's public signing and encryption keys, for
    :meth:`DirectorySnapshot.of_keys` (tools and tests that need no signed records)."""
    return (
        SigningKeyRecord(kid_of(signing), agency, signing, valid_from, valid_until),
        EncryptionKeyRecord(kid_of(encryption), agency, encryption, valid_from, valid_until),
    )


class Directory(Protocol):
    """Anything that yields the directory's current snapshot: the file store, the live
    follower, or a :class:`DirectorySnapshot` (which yields itself)."""

    @property
    def snapshot(self) -> DirectorySnapshot: ...


K = TypeVar("K")
V = TypeVar("V")


def _frozen(items: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(items))


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """The verified directory at one moment; build it with :meth:`of` or :meth:`of_keys`.

    ``records`` maps agency ids to their records; ``tokens`` holds the root-signed bytes
    of those records where known; ``head`` is the newest root-signed head accepted, if
    any; ``origin`` names where the records came from, for messages ("the directory of
    HOME", "the directory topic 'fusionbus.directory'").
    """

    records: Mapping[str, AgencyRecord] = field(default_factory=lambda: _frozen({}))
    tokens: Mapping[str, bytes] = field(default_factory=lambda: _frozen({}))
    head: DirectoryHead | None = None
    origin: str = "the directory"
    _signing: Mapping[str, SigningKeyRecord] = field(
        default_factory=lambda: _frozen({}), repr=False
    )
    _encryption: Mapping[str, EncryptionKeyRecord] = field(
        default_factory=lambda: _frozen({}), repr=False
    )

    @classmethod
    def of(
        cls,
        records: Iterable[AgencyRecord],
        *,
        tokens: Mapping[str, bytes] | None = None,
        head: DirectoryHead | None = None,
        origin: str = "the directory",
    ) -> DirectorySnapshot:
        """The snapshot of ``records`` (only records that
        :func:`~broker.federation.records.verify_record` returned).

        ConfigError if a kid is listed by two agencies: one key must never speak for two.
        """
        by_id = {record.id: record for record in records}
        signing: dict[str, SigningKeyRecord] = {}
        encryption: dict[str, EncryptionKeyRecord] = {}
        owners: dict[str, str] = {}
        for record in by_id.values():
            for entry in (*record.signing_keys, *record.encryption_keys):
                owner = owners.setdefault(entry.kid, record.id)
                if owner != record.id:
                    raise ConfigError(
                        f"key {entry.kid} is listed for both {owner!r} and {record.id!r}; "
                        "the directory is inconsistent: re-enrol one of them with new keys"
                    )
            for entry in record.signing_keys:
                signing[entry.kid] = SigningKeyRecord(
                    entry.kid, record.id, _verify_key(entry), *_life(entry)
                )
            for entry in record.encryption_keys:
                encryption[entry.kid] = EncryptionKeyRecord(
                    entry.kid, record.id, _encryption_key(entry), *_life(entry)
                )
        held = tokens or {}
        return cls(
            records=_frozen(by_id),
            tokens=_frozen({agency: held[agency] for agency in by_id if agency in held}),
            head=head,
            origin=origin,
            _signing=_frozen(signing),
            _encryption=_frozen(encryption),
        )

    @classmethod
    def of_keys(cls, keys: Iterable[SigningKeyRecord | EncryptionKeyRecord]) -> DirectorySnapshot:
        """A snapshot of bare public keys and no agency records (so no recipients): for
        tools and tests that seal and open without a signed directory."""
        return cls()._with(keys)

    def with_keys(self, *keys: SigningKeyRecord | EncryptionKeyRecord) -> DirectorySnapshot:
        """A copy that also holds ``keys``, each replacing any record of the same kid (a
        changed lifecycle, say); the agency records stay as they are."""
        return self._with(keys)

    def _with(self, keys: Iterable[SigningKeyRecord | EncryptionKeyRecord]) -> DirectorySnapshot:
        signing, encryption = dict(self._signing), dict(self._encryption)
        for record in keys:
            if record.kid != kid_of(record.key):
                raise ValueError(f"record kid {record.kid!r} is not the key's thumbprint")
            if isinstance(record, SigningKeyRecord):
                signing[record.kid] = record
            else:
                encryption[record.kid] = record
        return DirectorySnapshot(
            self.records,
            self.tokens,
            self.head,
            self.origin,
            _frozen(signing),
            _frozen(encryption),
        )

    @property
    def snapshot(self) -> DirectorySnapshot:
        """The snapshot itself: a fixed :class:`Directory`."""
        return self

    def signing_key(self, kid: str, /) -> SigningKeyRecord | None:
        """The signing key ``kid`` and its owner, or ``None`` if unknown."""
        return self._signing.get(kid)

    def encryption_key(self, kid: str, /) -> EncryptionKeyRecord | None:
        """The encryption key ``kid`` and its owner, or ``None`` if unknown."""
        return self._encryption.get(kid)

    def agencies(self) -> list[AgencyRecord]:
        """Every agency record, sorted by id."""
        return [self.records[name] for name in sorted(self.records)]

    def agency(self, agency_id: str) -> AgencyRecord:
        """The record of ``agency_id``; ConfigError listing the known ids if unknown."""
        record = self.records.get(agency_id)
        if record is None:
            known = ", ".join(sorted(self.records)) or "none yet"
            raise ConfigError(
                f"agency {agency_id!r} is not in {self.origin} (known: {known}); enrol it "
                f"with `fusionbus agency add {agency_id} --name NAME`"
            )
        return record

    def signed_records(self) -> dict[str, bytes]:
        """The root-signed record of each agency held, as compact JWS bytes, by id."""
        return {agency: self.tokens[agency] for agency in sorted(self.tokens)}

    def recipients_for(
        self,
        *,
        sender: str,
        category: str,
        jurisdiction: str,
        tlp: str,
        named_recipients: Sequence[str],
        now: datetime,
    ) -> list[AgencyRecord]:
        """The agencies to encrypt a report to, by the rules of
        :mod:`broker.federation.policy`."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime (e.g. datetime.now(UTC))")
        return policy.recipients_for(
            self.records,
            sender=sender,
            category=category,
            jurisdiction=jurisdiction,
            tlp=tlp,
            named_recipients=named_recipients,
            now=now,
        )

    def entitled(self, agency_id: str, *, category: str, jurisdiction: str) -> bool:
        """Whether ``agency_id`` may receive ``category`` reports about ``jurisdiction``."""
        return policy.entitled(
            self.records, agency_id, category=category, jurisdiction=jurisdiction
        )


def _life(entry: KeyEntry) -> tuple[datetime, datetime | None, datetime | None]:
    return entry.valid_from, entry.valid_until, entry.revoked_at


def _verify_key(entry: KeyEntry) -> VerifyKey:
    key = entry.jwk.key()
    if not isinstance(key, VerifyKey):
        raise ConfigError(f"signing key {entry.kid} is not an Ed25519 key")
    return key


def _encryption_key(entry: KeyEntry) -> EncryptionKey:
    key = entry.jwk.key()
    if not isinstance(key, EncryptionKey):
        raise ConfigError(f"encryption key {entry.kid} is not an X25519 key")
    return key
