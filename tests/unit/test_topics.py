from __future__ import annotations

import re

import pytest

from broker.topics import area_of, quarantine_topic, report_topic, subscription_pattern


def test_places_and_subdivisions_share_their_province_topic() -> None:
    assert report_topic("PKKHI", "narcotics") == "fusionbus.reports.pk-sd.narcotics"
    assert report_topic("pk-sd", "narcotics") == "fusionbus.reports.pk-sd.narcotics"
    assert report_topic("PK", "human_trafficking") == "fusionbus.reports.pk.human_trafficking"


def test_nested_subdivisions_use_the_first_level_below_the_country() -> None:
    assert area_of("GB-KEN") == "gb-eng"


@pytest.mark.parametrize(
    ("scope", "topic", "matches"),
    [
        ("PK", "fusionbus.reports.pk.narcotics", True),
        ("PK", "fusionbus.reports.pk-sd.narcotics", True),
        ("PK", "fusionbus.reports.pk-bala.narcotics", False),  # not a 1-3 char subdivision
        ("PK", "fusionbus.reports.pkx.narcotics", False),
        ("PK", "fusionbus.reports.af.narcotics", False),
        ("PK", "fusionbus.reports.pk-sd.arms", False),
        ("PK-SD", "fusionbus.reports.pk-sd.narcotics", True),
        ("PK-SD", "fusionbus.reports.pk.narcotics", False),  # a national report is wider
        ("PK-SD", "fusionbus.reports.pk-pb.narcotics", False),
        ("PKKHI", "fusionbus.reports.pk-sd.narcotics", True),  # the consumer filters places
    ],
)
def test_subscriptions_read_exactly_the_topics_that_can_hold_covered_reports(
    scope: str, topic: str, matches: bool
) -> None:
    pattern = subscription_pattern([scope], ["narcotics"])
    assert bool(re.fullmatch(pattern, topic)) is matches


def test_a_subscription_combines_jurisdictions_and_categories() -> None:
    pattern = subscription_pattern(["PK-SD", "PK-BA"], ["narcotics", "arms"])
    for topic in [
        "fusionbus.reports.pk-sd.narcotics",
        "fusionbus.reports.pk-ba.arms",
        "fusionbus.reports.pk-sd.arms",
    ]:
        assert re.fullmatch(pattern, topic)
    assert not re.fullmatch(pattern, "fusionbus.reports.pk-pb.arms")


@pytest.mark.parametrize(
    ("jurisdictions", "categories"), [([], ["narcotics"]), (["PK"], []), (["PK"], ["Bad Code"])]
)
def test_impossible_subscriptions_are_refused(
    jurisdictions: list[str], categories: list[str]
) -> None:
    with pytest.raises(ValueError, match=r"subscription|category"):
        subscription_pattern(jurisdictions, categories)


def test_unknown_jurisdictions_are_refused() -> None:
    with pytest.raises(ValueError, match="ISO 3166"):
        report_topic("XX-QQ", "narcotics")


def test_quarantine_topics_are_per_agency() -> None:
    assert quarantine_topic("anf") == "fusionbus.quarantine.anf"
    with pytest.raises(ValueError, match="agency id"):
        quarantine_topic("ANF; drop")
