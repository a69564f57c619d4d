"""The federation: who the agencies are, which keys speak for them, what they may receive.

A federation root key signs one directory record per agency (:class:`AgencyRecord`:
id, name, public signing and encryption keys with their validity, grants). Every party
holds the root public key and verifies each record's signature before trusting it
(:meth:`Federation.load`). The directory then provides what sealing and opening need: a
:class:`~broker.trust.TrustStore` (:meth:`Federation.trust_store`), an agency's own
:class:`~broker.keys.Identity` (:meth:`Federation.identity`) and the dissemination policy
(:meth:`Federation.recipients_for`). :class:`LiveDirectory` reads the same records from the
log-compacted Kafka topic and keeps a live, rollback-protected view
(:class:`DirectoryView`) with the same questions answered. Agencies enrol by request
(:mod:`broker.federation.enrolment`): their keys are made and kept in their own homes, and
the admin signs records and certificates from public keys and CSRs. Layout, record format,
enrolment and policy: ``docs/federation.md``.
"""

from broker.federation._home import HomeLayout, KeySettings
from broker.federation.directory import Federation
from broker.federation.live import LiveDirectory, publish_directory
from broker.federation.policy import Directory, entitled, recipient_policy, recipients_for
from broker.federation.records import (
    FORMAT_VERSION,
    JWS_TYP,
    MAX_RECORD_BYTES,
    AgencyRecord,
    Grant,
    KeyEntry,
    PublicJwk,
    canonical_json,
    sign_record,
    verify_record,
)
from broker.federation.trust import DirectoryTrustStore
from broker.federation.view import DirectoryView

__all__ = [
    "FORMAT_VERSION",
    "JWS_TYP",
    "MAX_RECORD_BYTES",
    "AgencyRecord",
    "Directory",
    "DirectoryTrustStore",
    "DirectoryView",
    "Federation",
    "Grant",
    "HomeLayout",
    "KeyEntry",
    "KeySettings",
    "LiveDirectory",
    "PublicJwk",
    "canonical_json",
    "entitled",
    "publish_directory",
    "recipient_policy",
    "recipients_for",
    "sign_record",
    "verify_record",
]
