"""The directory, the identities and the policy fit the envelope: seal, open, refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.envelope import Opener, Reason, Sealer, open_report, seal_report
from broker.errors import VerificationError
from broker.federation import DirectorySnapshot, Federation, agency_keys
from schemas import Report, example_report
from tests.unit.federation.conftest import NOW


def test_a_report_sealed_with_the_directory_opens_for_exactly_its_recipients(
    federation: Federation, home: Path
) -> None:
    publisher = Federation.load(home)  # customs' machine
    report = example_report(now=NOW)
    recipients = publisher.snapshot.recipients_for(
        sender=report.sender,
        category=report.category,
        jurisdiction=report.jurisdiction,
        tlp=report.handling.tlp,
        named_recipients=report.handling.named_recipients,
        now=NOW,
    )
    assert [r.id for r in recipients] == ["anf", "customs"]
    sealer = Sealer(publisher.identity("customs"), publisher.snapshot, clock=lambda: NOW)
    envelope = seal_report(sealer, report, [r.encryption_kid for r in recipients])

    for agency in ("anf", "customs"):
        subscriber = Federation.load(home)  # each agency's machine
        opener = Opener(subscriber.identity(agency), subscriber.snapshot)
        message = open_report(opener, envelope, NOW, parse=Report.model_validate_json)
        assert message.content == report
        assert message.sender_key.agency == "customs"

    fia = Federation.load(home)
    with pytest.raises(VerificationError) as info:
        open_report(
            Opener(fia.identity("fia"), fia.snapshot),
            envelope,
            NOW,
            parse=Report.model_validate_json,
        )
    assert info.value.reason == Reason.NOT_RECIPIENT


def test_an_envelope_from_a_key_outside_the_directory_is_refused(
    federation: Federation, home: Path, tmp_path: Path
) -> None:
    rogue = Federation.init(tmp_path / "rogue", now=NOW)
    rogue.add_agency("customs", "Not Customs", now=NOW)
    impostor = rogue.identity("customs")
    anf = federation.snapshot.encryption_key(federation.snapshot.agency("anf").encryption_kid)
    assert anf is not None
    believed = DirectorySnapshot.of_keys([anf]).with_keys(  # the impostor knows ANF's key ...
        *agency_keys(  # ... and trusts itself
            "customs", impostor.signing_key.public, impostor.encryption_key, valid_from=NOW
        )
    )
    report = example_report(now=NOW)
    sealer = Sealer(impostor, believed, clock=lambda: NOW)
    envelope = seal_report(sealer, report, [federation.snapshot.agency("anf").encryption_kid])
    opener = Opener(federation.identity("anf"), federation.snapshot)
    with pytest.raises(VerificationError) as info:
        open_report(opener, envelope, NOW, parse=Report.model_validate_json)
    assert info.value.reason == Reason.UNKNOWN_KEY
