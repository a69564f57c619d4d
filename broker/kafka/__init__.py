"""The embedded Apache Kafka: fetch the official jars, run a KRaft cluster on loopback; and
the secured configuration of a cluster on real machines.

The embedded cluster is for a laptop, a test run or a single border post; its nodes may sit
on distinct loopback addresses, as separate hosts would. Beyond one machine,
:class:`Deployment` gives each node's secured ``server.properties`` (``fusionbus kafka
config``, ``docs/deploy.md``), and fusionbus points at it with ``--bootstrap``.
"""

from broker.kafka._cluster import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ClusterState,
    EmbeddedKafka,
    NodeState,
    endpoint,
    loopback_hosts,
    namespace_hosts,
    new_cluster_id,
)
from broker.kafka._deploy import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_LOG_DIR,
    MAX_NODES,
    Deployment,
    bind_address,
    cluster_id,
    host_name,
    log_dir,
)
from broker.kafka._distribution import (
    KafkaDistribution,
    cache_root,
    ensure_distribution,
    find_java,
    kafka_version,
    recipe_dir,
)
from broker.kafka._security import CLIENT_TRUST_CONFIG, PRINCIPAL_RULES, ClusterTls, NodeTls

__all__ = [
    "CLIENT_TRUST_CONFIG",
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_HOST",
    "DEFAULT_LOG_DIR",
    "DEFAULT_PORT",
    "MAX_NODES",
    "PRINCIPAL_RULES",
    "ClusterState",
    "ClusterTls",
    "Deployment",
    "EmbeddedKafka",
    "KafkaDistribution",
    "NodeState",
    "NodeTls",
    "bind_address",
    "cache_root",
    "cluster_id",
    "endpoint",
    "ensure_distribution",
    "find_java",
    "host_name",
    "kafka_version",
    "log_dir",
    "loopback_hosts",
    "namespace_hosts",
    "new_cluster_id",
    "recipe_dir",
]
