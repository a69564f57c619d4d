"""Provisioning a secured cluster: the PKI, topics, ACLs and TLS trust, from the directory.

- :mod:`broker.provisioning.pki`: the root, node and per-agency CAs and the certificates;
- :mod:`broker.provisioning.topics`: idempotent topic creation with durable defaults;
- :mod:`broker.provisioning.acls`: the ACLs the directory calls for, and applying the diff;
- :mod:`broker.provisioning.truststore`: which agencies' certificates the brokers accept;
- :mod:`broker.provisioning.cluster`: :func:`provision`, all of it in order.

Everything here runs with the platform admin's certificate, on the admin's machine.
"""

from broker.provisioning.acls import Acl, AclChanges, desired_acls, in_good_standing
from broker.provisioning.cluster import Provisioned, provision, sync_home
from broker.provisioning.pki import ADMIN_PRINCIPAL, ClusterPki
from broker.provisioning.topics import ensure_topics
from broker.provisioning.truststore import sync_client_trust

__all__ = [
    "ADMIN_PRINCIPAL",
    "Acl",
    "AclChanges",
    "ClusterPki",
    "Provisioned",
    "desired_acls",
    "ensure_topics",
    "in_good_standing",
    "provision",
    "sync_client_trust",
    "sync_home",
]
