"""Provisioning a secured cluster from the directory: topics, ACLs and TLS trust, in order.

:func:`provision` is what the admin runs after every change of the directory. First, locally,
the issuing CA of every agency no longer in good standing (no usable encryption key: revoked,
or ended) is retired, so nothing can be signed under it again, even if the cluster is unreachable;
then the topics the grants need are created, the ACLs made exactly the directory's (an agency
out of standing loses them all, which also stops what its open connections may do); last, every
broker's client listener is told to trust only the node CA and the CAs of agencies in good
standing, so a revoked agency's certificate no longer completes a TLS handshake, and the
change is checked on every broker with throwaway canary certificates. Running it again
changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from broker.config import KafkaSettings
from broker.federation import Federation
from broker.federation.records import AgencyRecord
from broker.home import HomeConfig, kafka_settings
from broker.provisioning.acls import AclChanges, apply_directory, in_good_standing
from broker.provisioning.pki import Canary, ClusterPki
from broker.provisioning.truststore import TrustSync, sync_client_trust

__all__ = ["Provisioned", "provision", "sync_home"]


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What :func:`provision` did: the ACL changes, the agencies every broker now trusts (by
    their CA), the agencies whose CA was retired by this run, and the brokers told."""

    acls: AclChanges
    trusted: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    trust: TrustSync | None = None

    @property
    def brokers(self) -> tuple[int, ...]:
        return self.trust.brokers if self.trust is not None else ()

    def summary(self) -> str:
        """One sentence for the admin."""
        text = (
            f"Cluster ACLs in sync: {len(self.acls.created)} added, "
            f"{len(self.acls.deleted)} removed."
        )
        if self.trust is None:
            return text
        brokers = ", ".join(map(str, self.brokers))
        trusted = ", ".join(self.trusted) or "none"
        text += f" Brokers {brokers} accept the TLS certificates of: {trusted}."
        if self.retired:
            text += (
                f" Retired the TLS CA of {', '.join(self.retired)}: its certificates no "
                "longer complete a handshake."
            )
        if self.trust.checked_after_s is not None:
            text += (
                f" Checked by a handshake on every broker {self.trust.checked_after_s:.1f} s later."
            )
        elif self.trust.unconfirmed:
            text += (
                f" Not yet in effect everywhere: {'; '.join(self.trust.unconfirmed)}; run "
                "`fusionbus federation sync-acls` again in a minute."
            )
        return text


async def provision(
    settings: KafkaSettings,
    records: Iterable[AgencyRecord],
    *,
    now: datetime,
    pki: ClusterPki | None = None,
) -> Provisioned:
    """Topics, ACLs and (with the admin's ``pki``) the brokers' TLS trust, from ``records``
    (``settings``: the admin's). Without ``pki`` the trust is left as it is."""
    records = list(records)
    standing = [r.id for r in in_good_standing(records, now)]
    goners: list[Canary] = []
    if pki is not None:
        for record in records:
            canary = pki.canary(record.id, now=now) if record.id not in standing else None
            if canary is not None and pki.retire_agency_ca(record.id):
                goners.append(canary)  # made while the CA's key still existed
    changes = await apply_directory(settings, records, now=now)
    if pki is None:
        return Provisioned(changes)
    trusted = tuple(a for a in sorted(standing) if pki.agency_ca_certificate(a) is not None)
    canaries = [c for c in (pki.canary(a, now=now) for a in trusted) if c is not None]
    trust = await asyncio.to_thread(
        sync_client_trust, settings, pki.client_trust(trusted), trusted=canaries, retired=goners
    )
    return Provisioned(changes, trusted, tuple(c.agency for c in goners), trust)


def sync_home(federation: Federation, home: Path, *, certify: Sequence[AgencyRecord] = ()) -> str:
    """On the secured cluster ``home``'s ``config.toml`` names (the admin's home): make TLS
    certificates for those of ``certify`` whose keys the home holds (enrolled with ``agency
    add ID --name``; an agency enrolled by request got its certificate in its bundle and
    keeps its key), then :func:`provision` from the directory with the admin's certificate.
    Returns a sentence for the admin (empty on a plaintext cluster, where there are no ACLs
    and no TLS)."""
    if not HomeConfig.read(home).secure:
        return ""
    pki = ClusterPki(home)
    for record in certify:
        if federation.holds_keys(record.id):
            pki.issue_agency(record.id)
    settings = kafka_settings(home)
    now = datetime.now(UTC)
    records = federation.snapshot.agencies()
    return asyncio.run(provision(settings, records, now=now, pki=pki)).summary()
