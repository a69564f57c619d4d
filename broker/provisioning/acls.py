"""Kafka ACLs from the federation directory: compute what each agency may do, apply the diff.

The directory decides who may read what (grants); Kafka's authorizer enforces it at the
topic, before a single byte of ciphertext is fetched (``docs/security.md``). Per agency with
a usable encryption key, principal ``User:<id>`` (the CN of its TLS certificate) gets::

    WRITE  topics prefixed fusionbus.reports.<id>.   publish its own reports, nobody else's
    READ   each literal report topic its grants cover, of every sender (report_topics)
    READ   groups prefixed fusionbus.<id>.           its own consumer groups
    READ   topics prefixed fusionbus.inbox.<id>.     the notices sealed to it alone
    WRITE  topic fusionbus.inbox.<other>.<id>        its notices to each other agency
    READ, WRITE  topic fusionbus.quarantine.<id>     its consumers' rejects
    READ   topic fusionbus.directory                 the signed directory
    WRITE  topic fusionbus.audit.<id>                its own audit chain, nobody else's
    READ   topics prefixed fusionbus.audit.          every agency's audit chain (no content)
    READ   topics fusionbus.audit-anchors, fusionbus.audit-root   the root's anchors and acts

No DESCRIBE is granted: Kafka implies it from READ and WRITE, so an agency can list the
offsets and timestamps of the topics it reads or writes and of no other (no traffic analysis
of reports it is not entitled to). An idempotent producer needs no IDEMPOTENT_WRITE since
Kafka 3.0 (KIP-679: WRITE on any topic suffices). An agency whose encryption keys are all
revoked (or ended) gets nothing, and its topics are no longer read: ``agency revoke`` removes
its access. No agency gets CREATE or ALTER: the admin creates topics at grant time
(:func:`platform_topics`). :func:`desired_acls` is pure; :func:`sync_acls` reads the
cluster's ACLs of the directory's principals and creates or deletes only the difference, so
running it again changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

import structlog
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from broker.config import KafkaSettings, confluent_config
from broker.errors import AuthorizationError
from broker.federation.records import AgencyRecord
from broker.provisioning.topics import ensure_topics
from broker.topics import (
    AUDIT_ANCHOR_TOPIC,
    AUDIT_PREFIX,
    DIRECTORY_TOPIC,
    INBOX_RETENTION_MS,
    ROOT_AUDIT_TOPIC,
    audit_topic,
    inbox_prefix,
    inbox_topic,
    quarantine_topic,
    report_topics,
    sender_prefix,
)
from broker.transport import map_confluent_errors

__all__ = [
    "Acl",
    "AclChanges",
    "PlatformTopics",
    "apply_directory",
    "audit_topics",
    "desired_acls",
    "in_good_standing",
    "platform_topics",
    "sync_acls",
]

log = structlog.get_logger(__name__)

Resource = Literal["topic", "group"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["READ", "WRITE", "DESCRIBE"]


@dataclass(frozen=True, order=True, slots=True)
class Acl:
    """One ALLOW rule for any host: ``principal`` may ``operation`` on the resource."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation

    def __str__(self) -> str:
        return f"{self.principal} {self.operation} {self.resource}:{self.pattern}:{self.name}"


@dataclass(frozen=True, slots=True)
class AclChanges:
    created: tuple[Acl, ...]
    deleted: tuple[Acl, ...]


def principal(agency: str) -> str:
    return f"User:{agency}"


def in_good_standing(records: Iterable[AgencyRecord], now: datetime) -> list[AgencyRecord]:
    """The agencies with access at ``now``: those with a usable encryption key. The others
    (revoked, or their keys ended) get no ACL and no TLS trust."""
    return [r for r in records if r.encryption_key_at(now) is not None]


def _granted_topics(record: AgencyRecord, senders: list[str]) -> list[str]:
    topics: set[str] = set()
    for grant in record.grants:
        topics.update(report_topics([grant.jurisdiction], [grant.category], senders))
    return sorted(topics)


def desired_acls(records: Iterable[AgencyRecord], *, now: datetime) -> frozenset[Acl]:
    """Every ACL the directory calls for at ``now`` (see the module docstring)."""
    active = in_good_standing(records, now)  # revoked or ended: no access at all
    senders = [r.id for r in active]
    acls: set[Acl] = set()
    for record in active:
        who = principal(record.id)
        acls.add(Acl(who, "topic", "prefixed", sender_prefix(record.id), "WRITE"))
        for topic in _granted_topics(record, senders):
            acls.add(Acl(who, "topic", "literal", topic, "READ"))
        acls.add(Acl(who, "group", "prefixed", f"fusionbus.{record.id}.", "READ"))
        acls.add(Acl(who, "topic", "literal", quarantine_topic(record.id), "READ"))
        acls.add(Acl(who, "topic", "literal", quarantine_topic(record.id), "WRITE"))
        acls.add(Acl(who, "topic", "literal", DIRECTORY_TOPIC, "READ"))
        acls.add(Acl(who, "topic", "prefixed", inbox_prefix(record.id), "READ"))
        acls.add(Acl(who, "topic", "literal", audit_topic(record.id), "WRITE"))
        acls.add(Acl(who, "topic", "prefixed", AUDIT_PREFIX, "READ"))
        acls.add(Acl(who, "topic", "literal", AUDIT_ANCHOR_TOPIC, "READ"))
        acls.add(Acl(who, "topic", "literal", ROOT_AUDIT_TOPIC, "READ"))
        for recipient in senders:
            if recipient != record.id:
                acls.add(Acl(who, "topic", "literal", inbox_topic(recipient, record.id), "WRITE"))
    return frozenset(acls)


class PlatformTopics(NamedTuple):
    """What the admin creates, since agencies may not."""

    reports: list[str]
    """The report topics :func:`desired_acls` names: every sender's topics in every grant."""
    quarantines: list[str]
    """The quarantine topic of every agency."""
    inboxes: list[str]
    """An inbox topic per ordered pair of agencies in good standing."""


def platform_topics(records: Iterable[AgencyRecord], *, now: datetime) -> PlatformTopics:
    """The topics the directory calls for at ``now`` (see :class:`PlatformTopics`)."""
    records = list(records)
    active = in_good_standing(records, now)
    senders = [r.id for r in active]
    reports: set[str] = set()
    for record in active:
        reports.update(_granted_topics(record, senders))
    inboxes = [inbox_topic(r, s) for r in senders for s in senders if r != s]
    return PlatformTopics(
        sorted(reports), sorted(quarantine_topic(r.id) for r in records), sorted(inboxes)
    )


def audit_topics(records: Iterable[AgencyRecord]) -> list[str]:
    """The audit topic of every agency in the directory, the root's and the anchors' topic,
    which the admin creates (kept for ever: ``docs/audit.md``)."""
    return sorted([*(audit_topic(r.id) for r in records), ROOT_AUDIT_TOPIC, AUDIT_ANCHOR_TOPIC])


# -- applying (confluent-kafka's AdminClient: aiokafka has no ACL calls) -----------------------

_RESOURCE: dict[Resource, ResourceType] = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
}
_PATTERN: dict[Pattern, ResourcePatternType] = {
    "literal": ResourcePatternType.LITERAL,
    "prefixed": ResourcePatternType.PREFIXED,
}
_OPERATION: dict[Operation, AclOperation] = {
    "READ": AclOperation.READ,
    "WRITE": AclOperation.WRITE,
    "DESCRIBE": AclOperation.DESCRIBE,
}
_RESOURCE_OF = {v: k for k, v in _RESOURCE.items()}
_PATTERN_OF = {v: k for k, v in _PATTERN.items()}
_OPERATION_OF = {v: k for k, v in _OPERATION.items()}
_TIMEOUT_S = 30.0


def _binding(acl: Acl) -> AclBinding:
    return AclBinding(
        _RESOURCE[acl.resource], acl.name, _PATTERN[acl.pattern], acl.principal, "*",
        _OPERATION[acl.operation], AclPermissionType.ALLOW,
    )  # fmt: skip


def _from_binding(binding: Any) -> Acl | None:
    """Our :class:`Acl` for a binding of the kinds we manage; ``None`` for any other."""
    resource = _RESOURCE_OF.get(binding.restype)
    pattern = _PATTERN_OF.get(binding.resource_pattern_type)
    operation = _OPERATION_OF.get(binding.operation)
    if (
        resource is None
        or pattern is None
        or operation is None
        or binding.permission_type != AclPermissionType.ALLOW
        or binding.host != "*"
    ):
        return None
    return Acl(binding.principal, resource, pattern, binding.name, operation)


@contextlib.contextmanager
def _admin_call(action: str) -> Iterator[None]:
    """confluent-kafka's errors, translated by the one table (``broker.transport``), with the
    hint an ACL refusal needs: only the platform admin's certificate may change ACLs."""
    try:
        with map_confluent_errors(action):
            yield
    except AuthorizationError as exc:
        raise AuthorizationError(
            f"{exc} ACLs are changed with the admin's certificate (CN=fusionbus-admin, "
            "<home>/tls/admin/), on the admin's machine."
        ) from exc.__cause__


def _current(admin: AdminClient, principals: set[str]) -> set[Acl]:
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]  # None = any
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    with _admin_call("listing ACLs"):
        bindings = admin.describe_acls(everything, request_timeout=_TIMEOUT_S).result()
    found = (_from_binding(b) for b in bindings)
    return {acl for acl in found if acl is not None and acl.principal in principals}


def sync_acls(
    settings: KafkaSettings, records: Iterable[AgencyRecord], *, now: datetime
) -> AclChanges:
    """Make the cluster's ACLs of the directory's agencies exactly :func:`desired_acls`.

    Blocking (librdkafka); ACLs of other principals are left alone.
    """
    records = list(records)
    wanted = desired_acls(records, now=now)
    admin = AdminClient(confluent_config(settings))
    current = _current(admin, {principal(r.id) for r in records})
    create = sorted(wanted - current)
    delete = sorted(current - wanted)
    if create:
        futures = admin.create_acls([_binding(a) for a in create], request_timeout=_TIMEOUT_S)
        for future in futures.values():
            with _admin_call("creating ACLs"):
                future.result()
    if delete:
        filters = [
            AclBindingFilter(
                _RESOURCE[a.resource], a.name, _PATTERN[a.pattern], a.principal, "*",
                _OPERATION[a.operation], AclPermissionType.ALLOW,
            )
            for a in delete
        ]  # fmt: skip
        for future in admin.delete_acls(filters, request_timeout=_TIMEOUT_S).values():
            with _admin_call("deleting ACLs"):
                future.result()
    if create or delete:
        log.info("acls.synced", created=[str(a) for a in create], deleted=[str(a) for a in delete])
    return AclChanges(tuple(create), tuple(delete))


async def apply_directory(
    settings: KafkaSettings, records: Iterable[AgencyRecord], *, now: datetime
) -> AclChanges:
    """Create the topics the directory needs, then sync the ACLs (with admin settings)."""
    records = list(records)
    topics = platform_topics(records, now=now)
    await ensure_topics(settings, topics.reports)
    await ensure_topics(settings, topics.quarantines, partitions=1)
    await ensure_topics(settings, topics.inboxes, partitions=1, retention_ms=INBOX_RETENTION_MS)
    await ensure_topics(settings, audit_topics(records), partitions=1, retained=True)
    await ensure_topics(settings, [DIRECTORY_TOPIC], partitions=1, compacted=True)
    return await asyncio.to_thread(sync_acls, settings, records, now=now)
