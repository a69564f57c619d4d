"""The federation: who the agencies are, which keys speak for them, what they may receive.

A federation root key signs one directory record per agency (:class:`AgencyRecord`:
id, name, public signing and encryption keys with their validity, grants). Every party
holds the root public key and verifies each record's signature before trusting it
(:meth:`Federation.load`). What the directory says is one read model, a frozen
:class:`DirectorySnapshot`: the records, the kid index sealing and opening look keys up
in, agency look-up and ``recipients_for``. The file store (:attr:`Federation.snapshot`)
and :class:`LiveDirectory` (which follows the log-compacted Kafka topic through a
rollback-protected :class:`DirectoryView`) both yield one, each a :class:`Directory`;
:class:`DisseminationPolicy` applies the dissemination rules to a directory's current
snapshot, and :meth:`Federation.identity` gives an agency its own
:class:`~broker.keys.Identity`. Agencies enrol by request
(:mod:`broker.federation.enrolment`): their keys are made and kept in their own homes, and
the admin signs records and certificates from public keys and CSRs. Layout, record format,
enrolment and policy: ``docs/federation.md``.
"""

from broker.federation._home import KeySettings
from broker.federation.directory import Federation
from broker.federation.live import LiveDirectory, publish_directory
from broker.federation.policy import DisseminationPolicy
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
from broker.federation.snapshot import (
    Directory,
    DirectorySnapshot,
    EncryptionKeyRecord,
    SigningKeyRecord,
    agency_keys,
)
from broker.federation.view import DirectoryView

__all__ = [
    "FORMAT_VERSION",
    "JWS_TYP",
    "MAX_RECORD_BYTES",
    "AgencyRecord",
    "Directory",
    "DirectorySnapshot",
    "DirectoryView",
    "DisseminationPolicy",
    "EncryptionKeyRecord",
    "Federation",
    "Grant",
    "KeyEntry",
    "KeySettings",
    "LiveDirectory",
    "PublicJwk",
    "SigningKeyRecord",
    "agency_keys",
    "canonical_json",
    "publish_directory",
    "sign_record",
    "verify_record",
]
