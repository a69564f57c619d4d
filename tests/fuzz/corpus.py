"""A deterministic federation and the signed records the fuzzer starts from.

:func:`make_world` builds, from one seed, a dozen agencies in a directory snapshot, an intake for
``anf`` (narcotics and human trafficking in Pakistan) and a raw intake with the same scope,
and a list of :class:`Base` records as they sit on their topics:

* **genuine** reports sealed by the real :class:`broker.envelope.Sealer`: to ``anf`` and
  others, to others only, outside the subscription, to ten recipients, a 20,000-character
  narrative, two envelopes of one epoch on one topic (so swapping their parts is interesting);
* **signed oddities**, correctly signed by a trusted key but hostile inside, the way a
  careless or compromised peer could send them: routing values that map to no topic
  (``XX``, ``PK-ZZ``, a one-letter category), payloads that are not reports or disagree with
  the header, inner JWS that are not Ed25519 or not JWS at all, a revoked or unknown sender.

Nothing here imports pytest: ``bench/fuzz_intake.py`` uses it too.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from broker._crypto import ContentKey, SigningKey, ecdh_es_a256kw_wrap
from broker.envelope import Opener, Sealer, header_for
from broker.envelope._wire import b64e
from broker.federation import DirectorySnapshot, agency_keys
from broker.keys import Identity
from broker.topics import report_topic
from consumers.delivered import MemoryDelivered
from consumers.intake import Intake, RawIntake, Record, Source
from producers.publisher import routing_headers
from schemas import Report, example_report
from schemas.envelope import RoutingHeader

__all__ = [
    "CATEGORIES",
    "JURISDICTIONS",
    "ME",
    "NOW",
    "NOW_MS",
    "Base",
    "World",
    "make_world",
]

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
ME = "anf"
"""The agency whose intake is fuzzed."""
CATEGORIES = ("narcotics", "human_trafficking")
JURISDICTIONS = ("PK",)
AGENCIES = (
    "customs",
    "anf",
    "fia",
    "asf",
    "fbr",
    "mss",
    "pcg",
    "kp-police",
    "sindh-police",
    "punjab-police",
)
REVOKED = "nab"
"""An agency in the directory whose signing key was revoked an hour before NOW."""
UNKNOWN = "isi"
"""An agency with keys, absent from the directory."""
FALLBACK_TOPIC = "fusionbus.reports.customs.pk.narcotics"
"""Where a signed oddity whose header maps to no topic is put."""


@dataclass(frozen=True, slots=True)
class Base:
    """A signed record as it sits on its topic, with what the intakes should say of it:
    ``intake`` and ``raw`` are verdict names as the intakes count them (``accepted``,
    ``verified``, a ``Reason`` or ``SkipReason`` value)."""

    name: str
    record: Record
    header: RoutingHeader
    report: Report | None
    intake: str
    raw: str

    @property
    def value(self) -> bytes:
        assert self.record.value is not None
        return self.record.value

    @property
    def topic(self) -> str:
        return self.record.source.topic

    @property
    def genuine(self) -> bool:
        """Whether ``anf``'s intake accepts it: an authentic report to ``anf`` in scope."""
        return self.intake == "accepted"


@dataclass(frozen=True, slots=True)
class World:
    ids: dict[str, Identity]
    trust: DirectorySnapshot
    bases: tuple[Base, ...]

    def clock(self) -> datetime:
        return NOW

    def intake(self) -> Intake:
        """A fresh intake for ``anf``: its own content-key cache and delivery store."""
        return Intake(
            Opener(self.ids[ME], self.trust),
            categories=CATEGORIES,
            jurisdictions=JURISDICTIONS,
            delivered=MemoryDelivered(),
            clock=self.clock,
        )

    def raw_intake(self) -> RawIntake:
        return RawIntake(
            self.trust, categories=CATEGORIES, jurisdictions=JURISDICTIONS, clock=self.clock
        )

    @property
    def genuine(self) -> tuple[Base, ...]:
        return tuple(b for b in self.bases if b.genuine)

    def topics(self) -> list[str]:
        return sorted({b.topic for b in self.bases})


def _report(
    rng: random.Random, sender: str, category: str, jurisdiction: str, **changes: Any
) -> Report:
    message_id = uuid.UUID(bytes=rng.randbytes(16), version=4)
    base = example_report(category, jurisdiction, message_id=message_id, now=NOW).model_dump()
    base.update(sender=sender, **changes)
    return Report.model_validate(base)


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = {a: Identity.generate(a, self.rng.randbytes) for a in (*AGENCIES, REVOKED)}
        self.ids[UNKNOWN] = Identity.generate(UNKNOWN, self.rng.randbytes)
        trust = DirectorySnapshot.of_keys(
            key
            for agency in (*AGENCIES, REVOKED)
            for key in agency_keys(
                agency,
                self.ids[agency].signing_key.public,
                self.ids[agency].encryption_key,
                valid_from=NOW - timedelta(days=30),
            )
        )
        revoked = trust.signing_key(self.ids[REVOKED].signing_kid)
        assert revoked is not None
        self.trust = trust.with_keys(replace(revoked, revoked_at=NOW - timedelta(hours=1)))
        self.sealers: dict[tuple[str, int], Sealer] = {}
        self.bases: list[Base] = []
        self.offset = 0

    def kids(self, agencies: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.ids[a].encryption_kid for a in agencies)

    def sealer(self, sender: str, version: int = 1) -> Sealer:
        if (sender, version) not in self.sealers:
            self.sealers[sender, version] = Sealer(
                self.ids[sender], self.trust, clock=lambda: NOW, random=self.rng.randbytes,
                version=version,
            )  # fmt: skip
        return self.sealers[sender, version]

    def add(
        self,
        name: str,
        value: bytes,
        header: RoutingHeader,
        report: Report | None,
        *,
        intake: str,
        raw: str,
    ) -> None:
        try:
            topic = report_topic(header.sender, header.jurisdiction, header.category)
        except ValueError:
            topic = FALLBACK_TOPIC
        headers = tuple(routing_headers(report)) if report is not None else ()
        self.offset += 1
        source = Source(topic, 0, self.offset, NOW_MS)
        self.bases.append(
            Base(name, Record(source, value, None, headers), header, report, intake, raw)
        )

    def genuine(
        self,
        name: str,
        sender: str,
        to: Sequence[str],
        category: str,
        jurisdiction: str,
        *,
        intake: str,
        raw: str,
        **changes: Any,
    ) -> None:
        report = _report(self.rng, sender, category, jurisdiction, **changes)
        for version, called in ((1, name), (2, f"{name}-v2")):  # both formats are in use
            sealer = self.sealer(sender, version)
            header = header_for(report, sealer.signing_kid, self.kids(to))
            value = sealer.seal(header, report.model_dump_json().encode())
            opened = header.model_copy(update={"version": version})
            self.add(called, value, opened, report, intake=intake, raw=raw)

    def header(self, sender: str, to: Sequence[str], **values: Any) -> RoutingHeader:
        fields: dict[str, Any] = {
            "message_id": uuid.UUID(bytes=self.rng.randbytes(16), version=4),
            "sender": sender,
            "sender_kid": self.ids[sender].signing_kid,
            "category": "narcotics",
            "jurisdiction": "PK-SD",
            "precedence": "IMMEDIATE",
            "tlp": "TLP:AMBER",
            "created_at": NOW,
            "expires_at": NOW + timedelta(hours=12),
            "recipients": self.kids(to),
            "schema_version": "1.0",
            "version": 1,  # the forgeries built here have version 1's shape
        }
        fields.update(values)
        return RoutingHeader.model_validate(fields)

    def sealed_oddity(
        self, name: str, header: RoutingHeader, payload: bytes, *, intake: str, raw: str
    ) -> None:
        """Sealed by the real Sealer: a trusted sender's signature over a hostile header."""
        value = self.sealer(header.sender).seal(header, payload)
        self.add(name, value, header, None, intake=intake, raw=raw)

    def forged(
        self,
        name: str,
        header: RoutingHeader,
        *,
        signer: str | None = None,
        jws: Callable[[bytes, SigningKey], bytes] | None = None,
        signed: dict[str, Any] | None = None,
        inner_alg: str = "Ed25519",
        payload: bytes = b"{}",
        intake: str,
        raw: str,
    ) -> None:
        """Built part by part (deterministically), as a peer's broken sealer could."""
        key = self.ids[signer or header.sender].signing_key
        clear = header.model_dump(mode="json")
        inner_header = b64e(
            orjson.dumps(
                {
                    "alg": inner_alg,
                    "kid": header.sender_kid,
                    "typ": "fusionbus-report+jws",
                    "fusionbus": clear if signed is None else signed,
                }
            )
        )
        signing_input = inner_header + b"." + b64e(payload)
        inner = signing_input + b"." + b64e(key.sign(signing_input))
        if jws is not None:
            inner = jws(inner_header, key)
        value = _seal_parts(self.rng, header, clear=clear, jws=inner, key=key, trust=self.trust)
        self.add(name, value, header, None, intake=intake, raw=raw)


def _seal_parts(
    rng: random.Random,
    header: RoutingHeader,
    *,
    clear: dict[str, Any],
    jws: bytes,
    key: SigningKey,
    trust: DirectorySnapshot,
) -> bytes:
    cek = rng.randbytes(32)
    protected = b64e(
        orjson.dumps(
            {"enc": "A256GCM", "typ": "fusionbus-envelope+jwe", "cty": "JOSE", "fusionbus": clear}
        )
    )
    recipients: list[dict[str, Any]] = []
    for kid in header.recipients:
        record = trust.encryption_key(kid)
        assert record is not None
        epk, wrapped = ecdh_es_a256kw_wrap(record.key, cek, rng.randbytes)
        recipients.append(
            {
                "header": {
                    "alg": "ECDH-ES+A256KW",
                    "kid": kid,
                    "epk": {"kty": "OKP", "crv": "X25519", "x": b64e(epk).decode()},
                },
                "encrypted_key": b64e(wrapped).decode(),
            }
        )
    iv = rng.randbytes(12)
    ciphertext, tag = ContentKey(cek).encrypt(iv, jws, protected)
    parts = [protected.decode(), b64e(iv).decode(), b64e(ciphertext).decode(), b64e(tag).decode()]
    tail = "".join(
        f".{r['header']['kid']}.{r['header']['epk']['x']}.{r['encrypted_key']}" for r in recipients
    )
    digest = hashlib.sha256((".".join(parts) + tail).encode()).digest()
    sig_header = b64e(
        orjson.dumps(
            {"alg": "Ed25519", "kid": header.sender_kid, "typ": "fusionbus-envelope-sig+jws"}
        )
    )
    signature = b64e(key.sign(sig_header + b"." + b64e(digest)))
    return orjson.dumps(
        {
            "protected": parts[0],
            "unprotected": {"fusionbus_sig": f"{sig_header.decode()}..{signature.decode()}"},
            "recipients": recipients,
            "iv": parts[1],
            "ciphertext": parts[2],
            "tag": parts[3],
        }
    )


def make_world(seed: int = 9) -> World:
    """The federation, its directory snapshot and the base records, all derived from ``seed``."""
    b = _Builder(seed)
    both = ("anf", "fia")
    b.genuine(
        "to-anf-fia", "customs", both, "narcotics", "PKKHI", intake="accepted", raw="verified"
    )
    b.genuine(
        "same-epoch", "customs", both, "narcotics", "PKKHI", intake="accepted", raw="verified"
    )
    b.genuine(
        "country-wide", "customs", ("anf",), "narcotics", "PK", intake="accepted", raw="verified"
    )
    b.genuine(
        "from-fia", "fia", ("customs", "anf"), "human_trafficking", "PK-PB",
        intake="accepted", raw="verified",
    )  # fmt: skip
    b.genuine(
        "ten-recipients", "customs", AGENCIES[:1] + AGENCIES[2:7] + ("anf",) + AGENCIES[7:],
        "narcotics", "PK-PB", intake="accepted", raw="verified",
    )  # fmt: skip
    b.genuine(
        "long-narrative", "customs", ("anf",), "narcotics", "PKKHI",
        intake="accepted", raw="verified", narrative="Container MSCU1234565. " * 869,
    )  # fmt: skip
    b.genuine(
        "to-fia-only", "customs", ("fia",), "narcotics", "PK-SD",
        intake="not_recipient", raw="verified",
    )  # fmt: skip
    b.genuine(
        "other-category", "customs", both, "arms", "PK-SD",
        intake="outside_subscription", raw="outside_subscription",
    )  # fmt: skip
    b.genuine(
        "other-country", "customs", both, "narcotics", "IN",
        intake="outside_subscription", raw="outside_subscription",
    )  # fmt: skip

    for name, values in (
        ("unassigned-country", {"jurisdiction": "XX"}),
        ("unknown-subdivision", {"jurisdiction": "PK-ZZ"}),
        ("unregistered-place", {"jurisdiction": "PKZZZ"}),
        ("one-letter-category", {"category": "n"}),
        ("long-category", {"category": "n" * 64}),
        ("unregistered-category", {"category": "fuel"}),
    ):
        # signed headers a sealer accepts although they map to no topic (or no category)
        raw = "outside_subscription" if name == "unregistered-category" else "wrong_topic"
        b.sealed_oddity(
            name, b.header("customs", both, **values), b"{}", intake="invalid_report", raw=raw
        )
    b.sealed_oddity(
        "not-a-report", b.header("customs", both), b'{"report": 1}',
        intake="invalid_report", raw="verified",
    )  # fmt: skip
    b.sealed_oddity(
        "payload-not-utf8", b.header("customs", both), b"\xff\xfe{\xed\xa0\x80}",
        intake="invalid_report", raw="verified",
    )  # fmt: skip
    b.sealed_oddity(
        "payload-deep", b.header("customs", both), b"[" * 5000 + b"]" * 5000,
        intake="invalid_report", raw="verified",
    )  # fmt: skip
    mismatched = _report(b.rng, "customs", "human_trafficking", "PK-SD")
    b.sealed_oddity(
        "report-disagrees", b.header("customs", both, message_id=mismatched.message_id),
        mismatched.model_dump_json().encode(), intake="header_mismatch", raw="verified",
    )  # fmt: skip

    header = b.header("customs", both)
    b.forged("eddsa-inner", header, inner_alg="EdDSA", intake="bad_signature", raw="verified")
    b.forged(
        "signed-header-differs", header, intake="header_mismatch", raw="verified",
        signed={**header.model_dump(mode="json"), "category": "arms"},
    )  # fmt: skip
    b.forged(
        "inner-signed-by-fia", header, intake="bad_signature", raw="verified",
        jws=lambda h, _: _sign(h, b.ids["fia"].signing_key),
    )  # fmt: skip
    for name, inner in (
        ("inner-no-dots", b"not a jws"),
        ("inner-one-dot", b"eyJ9.e30"),
        ("inner-empty-parts", b".."),
        ("inner-latin1-header", b"\xe9\xff." + b64e(b"{}") + b".AAAA"),
    ):
        b.forged(name, header, jws=_always(inner), intake="malformed", raw="verified")
    b.forged(
        "inner-huge-header", header, jws=_always(b"A" * 20_000 + b".e30.AAAA"),
        intake="oversized", raw="verified",
    )  # fmt: skip
    b.forged("revoked-sender", b.header(REVOKED, both), intake="revoked_key", raw="revoked_key")
    unknown = b.header(UNKNOWN, both)
    b.forged("unknown-sender", unknown, intake="unknown_key", raw="unknown_key")
    return World(b.ids, b.trust, tuple(b.bases))


def _always(inner: bytes) -> Callable[[bytes, SigningKey], bytes]:
    """An inner JWS maker that ignores the header and key it is given."""
    return lambda _header, _key: inner


def _sign(inner_header: bytes, key: SigningKey) -> bytes:
    signing_input = inner_header + b"." + b64e(b"{}")
    return signing_input + b"." + b64e(key.sign(signing_input))
