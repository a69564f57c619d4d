"""Key rotation and revocation through the directory, down to sealing and opening."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from broker.envelope import Opener, Reason, Sealer, open_report, seal_report, verify_envelope
from broker.errors import AuthorizationError, ConfigError, DisseminationError, VerificationError
from broker.federation import DirectorySnapshot, Federation
from broker.federation import _home as home_files
from broker.federation.lifecycle import CLOCK_SKEW, KEEP_ENDED_KEYS
from broker.home import HomeLayout
from broker.keys import kid_of
from schemas import Report, example_report
from tests.unit.federation.conftest import NOW

BEFORE = NOW - timedelta(hours=1)
LATER = NOW + timedelta(minutes=10)


def recipients(fed: Federation, report: Report, now: datetime) -> list[str]:
    chosen = fed.snapshot.recipients_for(
        sender=report.sender,
        category=report.category,
        jurisdiction=report.jurisdiction,
        tlp=report.handling.tlp,
        named_recipients=report.handling.named_recipients,
        now=now,
    )
    return [r.encryption_kid for r in chosen]


def seal(fed: Federation, report: Report, now: datetime, kids: list[str] | None = None) -> bytes:
    sealer = Sealer(fed.identity("customs"), fed.snapshot, clock=lambda: now)
    return seal_report(sealer, report, kids if kids is not None else recipients(fed, report, now))


def open_as(fed: Federation, agency: str, envelope: bytes, now: datetime) -> Report:
    opener = Opener(fed.identity(agency), fed.snapshot)
    return open_report(opener, envelope, now, parse=Report.model_validate_json).content


def refusal(fed: Federation, agency: str, envelope: bytes, now: datetime) -> str:
    with pytest.raises(VerificationError) as info:
        open_as(fed, agency, envelope, now)
    return str(info.value.reason)


class Switchable:
    """A directory whose snapshot the test swaps, as a live directory's is replaced."""

    def __init__(self, snapshot: DirectorySnapshot) -> None:
        self.snapshot = snapshot


def test_after_a_rotation_old_reports_still_open_and_new_ones_use_the_new_keys(
    federation: Federation, home: Path
) -> None:
    old_report = example_report(now=BEFORE)
    old_envelope = seal(federation, old_report, BEFORE)
    old_anf, old_customs = federation.snapshot.agency("anf"), federation.snapshot.agency("customs")
    old_identity, old_trust = federation.identity("customs"), Switchable(federation.snapshot)

    anf = federation.rotate_keys("anf", now=NOW)
    customs = federation.rotate_keys("customs", now=NOW)

    assert anf.revision == old_anf.revision + 1
    assert anf.encryption_kid != old_anf.encryption_kid
    assert anf.signing_kid != old_anf.signing_kid
    assert [e.valid_until for e in anf.encryption_keys[:-1]] == [NOW]
    assert anf.encryption_keys[-1].valid_from == NOW - CLOCK_SKEW

    layout = HomeLayout(home)
    kept = layout.kept_key("anf", "encryption", old_anf.encryption_kid)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sorted(p.name for p in layout.agency_dir("anf").glob("*.pem")) == sorted(
        ["signing.key.pem", "encryption.key.pem", kept.name]
    )  # the old signing key is gone: nothing may sign with it any more

    reader = Federation.load(home)  # an agency's machine, after the new directory arrived
    identity = reader.identity("anf")
    assert list(identity.decryption_keys) == [old_anf.encryption_kid, anf.encryption_kid]
    assert open_as(reader, "anf", old_envelope, NOW) == old_report  # signed by the old key

    new_report = example_report(now=NOW)
    new_envelope = seal(reader, new_report, NOW)
    header = verify_envelope(new_envelope, reader.snapshot, NOW)
    assert header.sender_kid == customs.signing_kid != old_customs.signing_kid
    assert set(header.recipients) == {anf.encryption_kid, customs.encryption_kid}
    assert open_as(reader, "anf", new_envelope, NOW) == new_report

    # A report the old key signs after the rotation is refused by its recipients.
    late = example_report(now=NOW + timedelta(seconds=1))
    stale = Sealer(old_identity, old_trust, clock=lambda: late.created_at)
    envelope = seal_report(stale, late, [old_anf.encryption_kid])
    assert refusal(reader, "anf", envelope, LATER) == Reason.EXPIRED_KEY


def test_the_sealer_starts_a_new_epoch_when_a_recipient_record_changes(
    federation: Federation, home: Path
) -> None:
    trust = Switchable(federation.snapshot)
    sealer = Sealer(federation.identity("customs"), trust, clock=lambda: NOW)
    queued = example_report(now=NOW - timedelta(minutes=1))  # made before the rotation
    kids = recipients(federation, queued, NOW)
    seal_report(sealer, queued, kids)
    seal_report(sealer, queued.model_copy(update={"message_id": example_report().message_id}), kids)
    assert sealer.epochs_started == 1

    federation.rotate_keys("anf", now=NOW)
    trust.snapshot = Federation.load(home).snapshot
    seal_report(sealer, queued, kids)  # same kids, but ANF's old key record changed
    assert sealer.epochs_started == 2

    fresh = example_report(now=NOW + timedelta(seconds=1))
    with pytest.raises(AuthorizationError, match="expired"):
        seal_report(sealer, fresh, kids)  # the old key takes no new reports
    seal_report(sealer, fresh, recipients(Federation.load(home), fresh, NOW))
    assert sealer.epochs_started == 3


def test_a_report_signed_with_a_revoked_key_is_rejected_whatever_time_it_claims(
    federation: Federation, home: Path
) -> None:
    customs_kid = federation.snapshot.agency("customs").signing_kid
    envelope = seal(federation, example_report(now=BEFORE), BEFORE)  # before the revocation
    record = federation.revoke("customs", kid=customs_kid, reason="laptop stolen", now=NOW)
    assert record.revision == 3
    assert record.signing_keys[-1].revoked_at == NOW
    assert record.encryption_keys[-1].revoked_at is None  # only the key named

    reader = Federation.load(home)
    assert refusal(reader, "anf", envelope, NOW) == Reason.REVOKED_KEY
    with pytest.raises(VerificationError) as info:
        verify_envelope(envelope, reader.snapshot, NOW)  # the platform, too
    assert info.value.reason == Reason.REVOKED_KEY
    # Before the revocation time (by the receiver's clock) the same record still accepts it:
    assert open_as(reader, "anf", envelope, NOW - timedelta(seconds=1)).created_at == BEFORE
    with pytest.raises(AuthorizationError, match="revoked"):
        seal(reader, example_report(now=NOW), NOW)  # customs cannot sign any more

    assert federation.revoke("customs", kid=customs_kid, reason="again", now=LATER) is record


def test_a_revoked_agency_cannot_open_reports_published_after_the_revocation(
    federation: Federation, home: Path
) -> None:
    anf_kid = federation.snapshot.agency("anf").encryption_kid
    federation.revoke("anf", reason="compromised", now=NOW)
    reader = Federation.load(home)
    assert all(e.revoked_at == NOW for e in reader.snapshot.agency("anf").encryption_keys)
    assert all(e.revoked_at == NOW for e in reader.snapshot.agency("anf").signing_keys)

    named = example_report(now=NOW)  # narcotics: ANF is entitled, but unreachable
    with pytest.raises(DisseminationError, match="'anf' has no encryption key valid"):
        recipients(reader, named, NOW)  # naming it is refused, not a silent drop
    handling = named.handling.model_copy(update={"named_recipients": ()})
    report = named.model_copy(update={"handling": handling})
    assert recipients(reader, report, NOW) == [reader.snapshot.agency("customs").encryption_kid]
    envelope = seal(reader, report, NOW)
    assert refusal(reader, "anf", envelope, NOW) == Reason.NOT_RECIPIENT  # holds its keys
    with pytest.raises(AuthorizationError, match="revoked"):
        seal(reader, report, NOW, kids=[anf_kid])  # a stale policy cannot reach it either

    readmitted = federation.rotate_keys("anf", now=LATER)  # re-keying re-admits it
    assert readmitted.encryption_key_at(LATER) is not None
    again = Federation.load(home)
    assert anf_kid not in recipients(again, example_report(now=LATER), LATER)
    assert readmitted.encryption_kid in recipients(again, example_report(now=LATER), LATER)


def test_clock_skew_within_the_bound_is_tolerated_and_the_directory_decides(
    federation: Federation, home: Path
) -> None:
    federation.rotate_keys("customs", now=NOW)
    reader = Federation.load(home)
    slow = example_report(now=NOW - CLOCK_SKEW + timedelta(seconds=30))  # sender clock behind
    assert open_as(reader, "anf", seal(reader, slow, NOW), NOW) == slow
    fast = example_report(now=NOW + CLOCK_SKEW - timedelta(seconds=30))  # sender clock ahead
    assert open_as(reader, "anf", seal(reader, fast, fast.created_at), NOW) == fast
    too_fast = example_report(now=NOW + CLOCK_SKEW + timedelta(minutes=1))
    envelope = seal(reader, too_fast, too_fast.created_at)
    assert refusal(reader, "anf", envelope, NOW) == Reason.NOT_YET_VALID


def test_an_interrupted_rotation_leaves_usable_keys(
    federation: Federation, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(source: Path, target: Path) -> None:
        raise ConfigError("power cut")

    monkeypatch.setattr("broker.federation._keyfiles.replace_file", crash)
    with pytest.raises(ConfigError, match="power cut"):
        federation.rotate_keys("anf", now=NOW)  # the record is signed, the files not renamed
    monkeypatch.setattr("broker.federation._keyfiles.replace_file", home_files.replace_file)
    reader = Federation.load(home)
    identity = reader.identity("anf")
    assert identity.signing_kid == reader.snapshot.agency("anf").signing_kid
    assert identity.encryption_kid == reader.snapshot.agency("anf").encryption_kid
    assert len(identity.decryption_keys) == 2

    record = reader.rotate_keys("anf", now=LATER)  # and the next rotation tidies up
    identity = Federation.load(home).identity("anf")
    assert identity.signing_kid == record.signing_kid
    assert len(identity.decryption_keys) == 3
    signing_files = sorted(HomeLayout(home).agency_dir("anf").glob("signing*.pem"))
    assert [p.name for p in signing_files] == ["signing.key.pem"]


def test_keys_that_ended_long_ago_are_dropped_and_wrong_input_is_refused(
    federation: Federation,
) -> None:
    first = federation.snapshot.agency("fia")
    federation.rotate_keys("fia", now=NOW)
    record = federation.rotate_keys("fia", now=NOW + KEEP_ENDED_KEYS + timedelta(days=1))
    assert first.signing_kid not in {e.kid for e in record.signing_keys}
    assert len(record.signing_keys) == 2
    assert kid_of(federation.identity("fia").signing_key) == record.signing_kid
    with pytest.raises(ConfigError, match="lists no key 'nope'"):
        federation.revoke("fia", kid="nope", reason="x", now=NOW)
    with pytest.raises(ConfigError, match="needs a reason"):
        federation.revoke("fia", reason=" ", now=NOW)
    with pytest.raises(ConfigError, match="not in the directory"):
        federation.rotate_keys("fbr", now=NOW)
