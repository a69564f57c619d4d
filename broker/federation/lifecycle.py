"""Key lifecycle as pure record changes: rotation and revocation (``docs/federation.md``).

Both return a new :class:`AgencyRecord` with ``revision + 1`` for the root to sign; the
files and private keys are :class:`~broker.federation.Federation`'s business.

* :func:`rotated` ends the current keys (``valid_until = now``) and appends new ones,
  valid from ``now - clock_skew`` so that a sender whose clock is behind by up to the
  envelope's skew bound can use them at once. Ended keys stay listed, so reports signed
  before the rotation keep verifying until they expire; entries that ended more than the
  envelope's longest lifetime ago can verify nothing any more and are dropped.
* :func:`revoked` sets ``revoked_at = now`` on the chosen keys (default: every key not yet
  revoked). From then on the receiver's clock and this record decide: a revoked key is
  refused whatever ``created_at`` a message claims.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from broker.envelope import DEFAULT_LIMITS
from broker.errors import ConfigError
from broker.federation.records import AgencyRecord, KeyEntry, PublicJwk
from broker.keys import EncryptionKey, VerifyKey

__all__ = ["CLOCK_SKEW", "KEEP_ENDED_KEYS", "revoked", "rotated"]

CLOCK_SKEW = DEFAULT_LIMITS.clock_skew
"""How far a sender's clock may run behind: new keys are valid from ``now - CLOCK_SKEW``."""

KEEP_ENDED_KEYS = DEFAULT_LIMITS.max_lifetime
"""An ended key stays listed this long: no unexpired envelope can be older."""

_MAX_KEYS = 16
_MIN_LIFE = timedelta(seconds=1)


def _renewed(record: AgencyRecord, now: datetime, **changes: object) -> AgencyRecord:
    """``record`` with ``changes``, the next revision, re-validated as a whole."""
    return AgencyRecord.model_validate(
        record.model_dump() | changes | {"revision": record.revision + 1, "issued_at": now}
    )


def _end(entry: KeyEntry, now: datetime) -> KeyEntry:
    # A key enrolled in the same second it is rotated still needs valid_until > valid_from.
    until = min(entry.valid_until, max(now, entry.valid_from + _MIN_LIFE))
    return entry if until == entry.valid_until else entry.model_copy(update={"valid_until": until})


def _kept(entries: Iterable[KeyEntry], now: datetime) -> list[KeyEntry]:
    return [e for e in entries if e.valid_until > now - KEEP_ENDED_KEYS]


def rotated(
    record: AgencyRecord,
    signing: VerifyKey,
    encryption: EncryptionKey,
    *,
    now: datetime,
    valid_for: timedelta,
) -> AgencyRecord:
    """``record`` with its keys ended at ``now`` and ``signing``/``encryption`` current."""
    if valid_for <= CLOCK_SKEW:
        raise ConfigError(f"new keys must be valid for more than {CLOCK_SKEW}, got {valid_for}")
    start, until = now - CLOCK_SKEW, now + valid_for
    lists: dict[str, tuple[KeyEntry, ...]] = {}
    for usage, entries, key in (
        ("signing_keys", record.signing_keys, signing),
        ("encryption_keys", record.encryption_keys, encryption),
    ):
        kept = _kept((_end(e, now) for e in entries), now)
        if len(kept) >= _MAX_KEYS:
            raise ConfigError(
                f"agency {record.id!r} already lists {len(kept)} {usage.replace('_', ' ')} "
                f"that ended less than {KEEP_ENDED_KEYS.days} days ago; wait before "
                "rotating again"
            )
        new = KeyEntry(jwk=PublicJwk.of(key), valid_from=start, valid_until=until)
        lists[usage] = (*kept, new)
    return _renewed(record, now, **lists)


def revoked(record: AgencyRecord, kids: Iterable[str] | None, *, now: datetime) -> AgencyRecord:
    """``record`` with the keys ``kids`` (default: all not yet revoked) revoked at ``now``.

    Returns ``record`` itself when every chosen key is already revoked.
    """
    entries = (*record.signing_keys, *record.encryption_keys)
    listed = {e.kid for e in entries}
    chosen = set(listed if kids is None else kids)
    unknown = sorted(chosen - listed)
    if unknown:
        raise ConfigError(
            f"agency {record.id!r} lists no key {unknown[0]!r}; its keys are "
            f"{', '.join(sorted(listed))} (see `fusionbus agency list --json`)"
        )

    def revoke(entry: KeyEntry) -> KeyEntry:
        if entry.kid in chosen and entry.revoked_at is None:
            return entry.model_copy(update={"revoked_at": now})
        return entry

    signing = tuple(revoke(e) for e in record.signing_keys)
    encryption = tuple(revoke(e) for e in record.encryption_keys)
    if signing == record.signing_keys and encryption == record.encryption_keys:
        return record
    return _renewed(record, now, signing_keys=signing, encryption_keys=encryption)
