"""EmbeddedKafka's network-namespace option, checked without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.kafka import EmbeddedKafka, namespace_hosts
from broker.kafka._netns import in_netns, netns_command


def test_namespace_hosts_take_any_distinct_ipv4_address() -> None:
    assert namespace_hosts(["10.231.0.2", "192.168.7.2"], 2) == ("10.231.0.2", "192.168.7.2")


@pytest.mark.parametrize(
    ("hosts", "nodes", "said"),
    [
        (["kafka.local"], 1, "is not an IPv4 address"),
        (["10.231.0.2", "10.231.0.2"], 2, "repeat one"),
        (["10.231.0.2"], 2, "need 2 address(es)"),
    ],
)
def test_namespace_hosts_say_what_is_wrong(hosts: list[str], nodes: int, said: str) -> None:
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        namespace_hosts(hosts, nodes)


def test_a_namespace_needs_the_nodes_addresses_in_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass hosts, one per node"):
        EmbeddedKafka(tmp_path, netns="fb-test")


def test_without_a_namespace_the_addresses_stay_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        EmbeddedKafka(tmp_path, hosts=["10.231.0.2"])
    cluster = EmbeddedKafka(tmp_path, hosts=["10.231.0.2"], netns="fb-test")
    assert cluster.hosts == ("10.231.0.2",)


def test_a_missing_namespace_is_named_with_the_command_to_make_it() -> None:
    with pytest.raises(ConfigError, match=r"ip netns add fb-missing-0"):
        netns_command("fb-missing-0")
    with pytest.raises(ConfigError, match="no network namespace"):
        in_netns("fb-missing-0", lambda: None)


def test_no_namespace_runs_the_work_here() -> None:
    assert in_netns(None, lambda: 42) == 42
