from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.topics import (
    QUARANTINE_HEADERS,
    ROUTING_HEADERS,
    Header,
    area_of,
    expected_topic,
    quarantine_topic,
    report_topic,
    report_topics,
    sender_of_topic,
    sender_prefix,
    subscription_pattern,
)
from schemas import AgencyId, example_report
from schemas._base import AGENCY_ID_PATTERN


def test_places_and_subdivisions_share_their_province_topic() -> None:
    assert report_topic("customs", "PKKHI", "narcotics") == (
        "fusionbus.reports.customs.pk-sd.narcotics"
    )
    assert report_topic("customs", "pk-sd", "narcotics") == (
        "fusionbus.reports.customs.pk-sd.narcotics"
    )
    assert report_topic("fia", "PK", "human_trafficking") == (
        "fusionbus.reports.fia.pk.human_trafficking"
    )


def test_each_sender_has_its_own_topics_under_its_own_prefix() -> None:
    customs = report_topic("customs", "PKKHI", "narcotics")
    anf = report_topic("anf", "PKKHI", "narcotics")
    assert customs != anf
    assert customs.startswith(sender_prefix("customs"))
    assert not anf.startswith(sender_prefix("customs"))
    # The prefix ends with the separator: one agency's id may start another's.
    assert not report_topic("customs-2", "PK", "arms").startswith(sender_prefix("customs"))


def test_nested_subdivisions_use_the_first_level_below_the_country() -> None:
    assert area_of("GB-KEN") == "gb-eng"


@pytest.mark.parametrize(
    ("scope", "topic", "matches"),
    [
        ("PK", "fusionbus.reports.customs.pk.narcotics", True),
        ("PK", "fusionbus.reports.customs.pk-sd.narcotics", True),
        ("PK", "fusionbus.reports.anf.pk-sd.narcotics", True),  # every sender
        ("PK", "fusionbus.reports.customs.pk-bala.narcotics", False),  # not a 1-3 char code
        ("PK", "fusionbus.reports.customs.pkx.narcotics", False),
        ("PK", "fusionbus.reports.customs.af.narcotics", False),
        ("PK", "fusionbus.reports.customs.pk-sd.arms", False),
        ("PK", "fusionbus.reports.pk-sd.narcotics", False),  # no sender: not a report topic
        ("PK", "fusionbus.reports.Customs.pk-sd.narcotics", False),  # not an agency id
        ("PK", "fusionbus.reports.a.pk-sd.narcotics", False),  # too short for an agency id
        ("PK", "fusionbus.reports.c_s.pk-sd.narcotics", False),  # agency ids have no '_'
        ("PK-SD", "fusionbus.reports.customs.pk-sd.narcotics", True),
        ("PK-SD", "fusionbus.reports.customs.pk.narcotics", False),  # a national report is wider
        ("PK-SD", "fusionbus.reports.customs.pk-pb.narcotics", False),
        ("PKKHI", "fusionbus.reports.customs.pk-sd.narcotics", True),  # consumers filter places
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
        "fusionbus.reports.customs.pk-sd.narcotics",
        "fusionbus.reports.anf.pk-ba.arms",
        "fusionbus.reports.fia.pk-sd.arms",
    ]:
        assert re.fullmatch(pattern, topic)
    assert not re.fullmatch(pattern, "fusionbus.reports.customs.pk-pb.arms")


def test_the_literal_topics_are_those_the_pattern_matches_for_each_sender() -> None:
    senders = ["customs", "anf", "fia"]
    topics = report_topics(["PK"], ["narcotics", "arms"], senders)
    assert len(topics) == len(set(topics)) == 3 * 2 * 8  # senders x categories x (7 + 1)
    assert topics == sorted(topics)
    pattern = subscription_pattern(["PK"], ["narcotics", "arms"])
    assert all(re.fullmatch(pattern, t) for t in topics)
    assert {sender_of_topic(t) for t in topics} == set(senders)
    assert report_topics(["PKKHI", "PK-SD"], ["narcotics"], ["customs"]) == [
        "fusionbus.reports.customs.pk-sd.narcotics"
    ]
    assert report_topics(["PK"], ["narcotics"], []) == []  # nobody can send


def test_the_sender_of_a_topic_is_its_second_segment() -> None:
    assert sender_of_topic("fusionbus.reports.customs.pk-sd.narcotics") == "customs"
    assert sender_of_topic("fusionbus.reports.pk-ba.pk.arms") == "pk-ba"  # an id like an area
    for other in [
        "fusionbus.reports.pk-sd.narcotics",  # the scheme without senders
        "fusionbus.reports.customs.pk-sd.narcotics.extra",
        "fusionbus.reports.customs..narcotics",
        "fusionbus.quarantine.customs",
        "fusionbus.directory",
        "fusionbus.reports.customs.pk-sd.narcotics\n",
    ]:
        assert sender_of_topic(other) is None, other


def test_the_expected_topic_is_the_report_topic_or_none() -> None:
    report = example_report("narcotics", "PKKHI")
    assert expected_topic(report.sender, report.jurisdiction, report.category) == report_topic(
        report.sender, report.jurisdiction, report.category
    )
    assert expected_topic("customs", "XX-QQ", "narcotics") is None  # an unknown jurisdiction
    assert expected_topic("Customs", "PK", "narcotics") is None
    assert expected_topic("customs", "PK", "Narcotics") is None


@given(st.from_regex(AGENCY_ID_PATTERN, fullmatch=True))
def test_every_agency_id_names_a_sender_and_reads_back(agency: AgencyId) -> None:
    topic = report_topic(agency, "PK-SD", "narcotics")
    assert sender_of_topic(topic) == agency
    assert re.fullmatch(subscription_pattern(["PK"], ["narcotics"]), topic)


@given(st.text(max_size=40))
def test_a_topic_names_only_what_an_agency_id_may_be(text: str) -> None:
    if re.fullmatch(AGENCY_ID_PATTERN, text):
        assert sender_of_topic(report_topic(text, "PK", "arms")) == text
    else:
        with pytest.raises(ValueError, match="agency id"):
            report_topic(text, "PK", "arms")


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
        report_topic("customs", "XX-QQ", "narcotics")


def test_quarantine_topics_are_per_agency() -> None:
    assert quarantine_topic("anf") == "fusionbus.quarantine.anf"
    with pytest.raises(ValueError, match="agency id"):
        quarantine_topic("ANF; drop")


@pytest.mark.parametrize("bad", ["ANF", "a", "anf_x", "anf.x", "-anf", "x" * 33, "anf\n"])
def test_malformed_senders_are_refused_with_the_expected_form(bad: str) -> None:
    with pytest.raises(ValueError, match=r"agency id .*like 'customs'"):
        report_topic(bad, "PK", "narcotics")
    with pytest.raises(ValueError, match="agency id"):
        report_topics(["PK"], ["narcotics"], [bad])


def test_header_names_are_defined_once_and_distinct() -> None:
    assert Header.CATEGORY == "fb-category"
    assert Header.SOURCE_TOPIC == "fb-source-topic"
    names = [*ROUTING_HEADERS, *QUARANTINE_HEADERS]
    assert len(names) == len(set(names)) == 15
    assert all(name.startswith("fb-") for name in names)
