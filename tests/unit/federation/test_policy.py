"""The dissemination policy: who a report is encrypted to."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from broker.errors import (
    AuthorizationError,
    ConfigError,
    DisseminationError,
    SchemaValidationError,
)
from broker.federation import AgencyRecord, Federation
from tests.unit.federation.conftest import NOW, publish, record_dict


def to(
    fed: Federation,
    category: str = "narcotics",
    *,
    jurisdiction: str = "PKKHI",
    tlp: str = "TLP:AMBER",
    named: tuple[str, ...] = (),
    sender: str = "customs",
) -> list[str]:
    return [
        r.id
        for r in fed.snapshot.recipients_for(
            sender=sender,
            category=category,
            jurisdiction=jurisdiction,
            tlp=tlp,
            named_recipients=named,
            now=NOW,
        )
    ]


def test_a_country_grant_covers_its_ports(federation: Federation) -> None:
    assert to(federation, jurisdiction="PKKHI") == ["anf", "customs"]
    assert to(federation, jurisdiction="PK-BA") == ["anf", "customs"]
    assert federation.snapshot.entitled("anf", category="narcotics", jurisdiction="pkkhi")


def test_a_subdivision_grant_covers_only_its_subtree(federation: Federation) -> None:
    assert to(federation, "human_trafficking", jurisdiction="PKKHI") == ["customs", "fia"]
    assert to(federation, "human_trafficking", jurisdiction="PK-PB") == ["customs"]
    assert to(federation, "human_trafficking", jurisdiction="PK") == ["customs"]
    assert not federation.snapshot.entitled(
        "fia", category="human_trafficking", jurisdiction="PK-PB"
    )


def test_fia_granted_only_human_trafficking_gets_no_narcotics(federation: Federation) -> None:
    assert "fia" not in to(federation, "narcotics", jurisdiction="PK-SD")
    assert not federation.snapshot.entitled("fia", category="narcotics", jurisdiction="PK-SD")


def test_the_sender_is_always_included(federation: Federation) -> None:
    assert to(federation, "arms", jurisdiction="PK", sender="fia") == ["fia"]
    assert to(federation, "narcotics", jurisdiction="PK", sender="fia") == ["anf", "fia"]


@pytest.mark.parametrize("tlp", ["TLP:AMBER+STRICT", "TLP:AMBER", "TLP:GREEN", "TLP:CLEAR"])
def test_other_labels_go_to_every_entitled_agency(federation: Federation, tlp: str) -> None:
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PK-SD"], now=NOW)
    assert to(federation, tlp=tlp, named=("anf",)) == ["anf", "customs", "fia"]


def test_tlp_red_goes_only_to_named_recipients_and_the_sender(federation: Federation) -> None:
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PK-SD"], now=NOW)
    assert to(federation, tlp="TLP:RED", named=("fia",)) == ["customs", "fia"]
    assert to(federation, tlp="TLP:RED", named=("anf", "customs")) == ["anf", "customs"]


ALL_LABELS = ["TLP:RED", "TLP:AMBER+STRICT", "TLP:AMBER", "TLP:GREEN", "TLP:CLEAR"]


@pytest.mark.parametrize("tlp", ALL_LABELS)
def test_a_named_recipient_that_is_not_entitled_is_refused(
    federation: Federation, tlp: str
) -> None:
    with pytest.raises(DisseminationError, match="'fia' is not entitled") as info:
        to(federation, tlp=tlp, named=("anf", "fia"))
    message = str(info.value)
    assert "fusionbus agency grant fia --category narcotics --jurisdiction PKKHI" in message
    assert "remove it from named_recipients" in message
    assert isinstance(info.value, AuthorizationError)


@pytest.mark.parametrize("tlp", ALL_LABELS)
def test_an_unknown_named_recipient_is_refused(federation: Federation, tlp: str) -> None:
    with pytest.raises(DisseminationError, match="'fbr' is not in the federation") as info:
        to(federation, tlp=tlp, named=("fbr",))
    assert "known: anf, customs, fia" in str(info.value)
    assert "remove it from named_recipients" in str(info.value)


@pytest.mark.parametrize("tlp", ALL_LABELS)
def test_an_entitled_named_recipient_receives_it(federation: Federation, tlp: str) -> None:
    assert "anf" in to(federation, tlp=tlp, named=("anf",))
    assert "fia" in to(
        federation, "human_trafficking", jurisdiction="PKKHI", tlp=tlp, named=("fia",)
    )


@pytest.mark.parametrize("tlp", ALL_LABELS)
def test_the_sender_may_name_itself(federation: Federation, tlp: str) -> None:
    assert "customs" in to(federation, tlp=tlp, named=("customs",))


def test_a_subdivision_grant_does_not_entitle_a_named_recipient_elsewhere(
    federation: Federation,
) -> None:
    with pytest.raises(DisseminationError, match="--jurisdiction PK-PB"):
        to(federation, "human_trafficking", jurisdiction="PK-PB", named=("fia",))


def test_agencies_with_expired_keys_are_left_out(federation: Federation) -> None:
    federation.add_agency(
        "asf", "Airports Security Force", now=NOW - timedelta(days=40), valid_for=timedelta(days=30)
    )
    federation.grant("asf", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    assert to(federation) == ["anf", "customs"]
    for tlp in ALL_LABELS:
        with pytest.raises(DisseminationError, match="'asf' has no encryption key valid"):
            to(federation, tlp=tlp, named=("asf",))


def test_agencies_with_not_yet_valid_keys_are_left_out(federation: Federation) -> None:
    federation.add_agency("asf", "Airports Security Force", now=NOW + timedelta(days=1))
    federation.grant("asf", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    assert to(federation) == ["anf", "customs"]


def test_agencies_with_revoked_keys_are_left_out(federation: Federation, home: Path) -> None:
    value = record_dict(federation.snapshot.agency("anf"))
    value["encryption_keys"][0]["revoked_at"] = (NOW - timedelta(hours=1)).isoformat()
    value["revision"] += 1
    publish(home, AgencyRecord.model_validate(value))
    reloaded = Federation.load(home)
    assert to(reloaded) == ["customs"]
    assert federation.snapshot.agency("anf").encryption_key_at(NOW) is not None
    assert reloaded.snapshot.agency("anf").encryption_key_at(NOW) is None


def test_a_sender_that_cannot_read_its_own_report_is_refused(federation: Federation) -> None:
    federation.add_agency("asf", "ASF", now=NOW - timedelta(days=40), valid_for=timedelta(days=30))
    with pytest.raises(AuthorizationError, match="sender 'asf'"):
        to(federation, sender="asf")
    with pytest.raises(ConfigError, match="sender 'fbr' is not in the federation directory"):
        to(federation, sender="fbr")


def test_bad_inputs_are_validation_errors(federation: Federation) -> None:
    with pytest.raises(SchemaValidationError, match="category"):
        to(federation, category="fuel")
    with pytest.raises(SchemaValidationError, match="jurisdiction"):
        to(federation, jurisdiction="PKZZZ")
    with pytest.raises(SchemaValidationError, match=r"TLP 2\.0"):
        to(federation, tlp="TLP:WHITE")
    with pytest.raises(ConfigError, match="known"):
        federation.snapshot.entitled("fbr", category="narcotics", jurisdiction="PK")
