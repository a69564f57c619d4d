"""The embedded Apache Kafka: fetch the official jars, run a KRaft cluster on loopback.

For a laptop, a test run or a single border post. Beyond one machine, run a real Kafka
cluster (``deploy/kafka/README.md``) and point fusionbus at it with ``--bootstrap``.
"""

from broker.kafka._cluster import DEFAULT_PORT, ClusterState, EmbeddedKafka, NodeState
from broker.kafka._distribution import (
    KafkaDistribution,
    cache_root,
    ensure_distribution,
    find_java,
    kafka_version,
)
from broker.kafka._security import PRINCIPAL_RULES, ClusterTls, NodeTls

__all__ = [
    "DEFAULT_PORT",
    "PRINCIPAL_RULES",
    "ClusterState",
    "ClusterTls",
    "EmbeddedKafka",
    "KafkaDistribution",
    "NodeState",
    "NodeTls",
    "cache_root",
    "ensure_distribution",
    "find_java",
    "kafka_version",
]
