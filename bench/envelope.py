"""Envelope cost against the raw primitives it is built from.

For each payload size and recipient count: seal and open µs per message with a warm epoch,
the first message of an epoch (new content key, one key agreement per recipient), and in
the same run the raw cost of one Ed25519 sign + verify and one AES-256-GCM encryption of
the same payload. ``ratio`` = (seal + open) / (sign + verify + AES-GCM); target ≤ 2.

Run: ``.venv/bin/python -m bench.envelope`` (``--tiny`` for a smoke run, ``--json``).
Figures are medians over ``--repeats`` rounds of ``--number`` messages each, in CPU time
of this process; each round times the envelope and the raw primitives back to back, and
the ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import orjson

from broker._crypto import ContentKey, SigningKey
from broker.envelope import Opener, Sealer
from broker.federation import DirectorySnapshot, agency_keys
from broker.keys import Identity
from schemas.envelope import RoutingHeader

NOW = datetime(2026, 11, 28, tzinfo=UTC)
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    payload_bytes: int
    recipients: int
    seal_us: float
    open_us: float
    first_seal_us: float
    first_open_us: float
    raw_sign_verify_us: float
    raw_aes_gcm_us: float
    ratio: float


def _us(action: Callable[[], object], number: int) -> float:
    """CPU time of this process per call, in µs (robust to other load on a shared box)."""
    start = time.process_time_ns()
    for _ in range(number):
        action()
    return (time.process_time_ns() - start) / number / 1000


def _feeder(items: Sequence[T], action: Callable[[T], object]) -> Callable[[], object]:
    """A call that applies ``action`` to the next of ``items`` each time."""
    it = iter(items)
    return lambda: action(next(it))


def _payload(size: int) -> bytes:
    body = os.urandom(size).hex()[: max(0, size - 12)]
    return orjson.dumps({"n": body})[:size].ljust(size, b" ")


class _Scenario:
    def __init__(self, recipients: int) -> None:
        self.sender = Identity.generate("customs")
        self.peers = [Identity.generate(f"agency{i}") for i in range(recipients)]
        self.trust = DirectorySnapshot.of_keys(
            key
            for identity in (self.sender, *self.peers)
            for key in agency_keys(
                identity.agency,
                identity.signing_key.public,
                identity.encryption_key,
                valid_from=NOW - timedelta(days=1),
            )
        )
        self.kids = tuple(p.encryption_kid for p in self.peers)

    def header(self) -> RoutingHeader:
        return RoutingHeader(
            message_id=uuid.uuid4(),
            sender="customs",
            sender_kid=self.sender.signing_kid,
            category="narcotics",
            jurisdiction="PK-SD",
            precedence="IMMEDIATE",
            tlp="TLP:AMBER",
            created_at=NOW,
            expires_at=NOW + timedelta(hours=12),
            recipients=self.kids,
            schema_version="1.0",
        )

    def sealer(self) -> Sealer:
        return Sealer(self.sender, self.trust, clock=lambda: NOW)

    def opener(self) -> Opener:
        return Opener(self.peers[-1], self.trust)


def measure(size: int, recipients: int, *, number: int, repeats: int) -> Row:
    """Median figures; each repeat times envelope and raw primitives back to back."""
    scenario = _Scenario(recipients)
    payload = _payload(size)
    headers = [scenario.header() for _ in range(number)]
    sealer = scenario.sealer()
    envelopes = [sealer.seal(h, payload) for h in headers]  # also warms the epoch
    opener = scenario.opener()
    opener.open(envelopes[0], NOW)  # warms the content-key cache
    key = SigningKey.generate()
    signature = key.sign(payload)
    aead, iv = ContentKey(os.urandom(32)), os.urandom(12)
    samples: dict[str, list[float]] = {}

    def sample(name: str, action: Callable[[], object], n: int = number) -> None:
        samples.setdefault(name, []).append(_us(action, n))

    for _ in range(repeats):
        sample("seal", _feeder(headers, lambda h: sealer.seal(h, payload)))
        sample("open", _feeder(envelopes, lambda e: opener.open(e, NOW)))
        sample("sign_verify", lambda: key.public.verify(signature, payload) and key.sign(payload))
        sample("aes", lambda: aead.encrypt(iv, payload, b""))
        first = max(1, number // 8)
        sample("first_seal", lambda: scenario.sealer().seal(headers[0], payload), first)
        sample("first_open", lambda: scenario.opener().open(envelopes[0], NOW), first)
        ratio = (samples["seal"][-1] + samples["open"][-1]) / (
            samples["sign_verify"][-1] + samples["aes"][-1]
        )
        samples.setdefault("ratio", []).append(ratio)
    med = {name: statistics.median(values) for name, values in samples.items()}
    return Row(
        size,
        recipients,
        round(med["seal"], 1),
        round(med["open"], 1),
        round(med["first_seal"], 1),
        round(med["first_open"], 1),
        round(med["sign_verify"], 1),
        round(med["aes"], 2),
        round(med["ratio"], 2),
    )


COLUMNS = (
    ("payload_bytes", "payload"),
    ("recipients", "rcpts"),
    ("seal_us", "seal µs"),
    ("open_us", "open µs"),
    ("first_seal_us", "1st seal µs"),
    ("first_open_us", "1st open µs"),
    ("raw_sign_verify_us", "sign+verify µs"),
    ("raw_aes_gcm_us", "AES-GCM µs"),
    ("ratio", "ratio"),
)


def render(rows: Sequence[Row]) -> str:
    widths = [max(len(title), 8) for _, title in COLUMNS]
    lines = ["  ".join(title.rjust(w) for (_, title), w in zip(COLUMNS, widths, strict=True))]
    for row in rows:
        values = asdict(row)
        cells = [str(values[name]).rjust(w) for (name, _), w in zip(COLUMNS, widths, strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tiny", action="store_true", help="a smoke run: few messages")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--number", type=int, default=400, help="messages per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs; the median counts")
    args = parser.parse_args(argv)
    number, repeats = (4, 1) if args.tiny else (args.number, args.repeats)
    rows = [
        measure(size, recipients, number=number, repeats=repeats)
        for size in (1024, 16384)
        for recipients in (1, 3, 10)
    ]
    if args.json:
        for row in rows:
            print(orjson.dumps(asdict(row)).decode())
    else:
        print(
            f"# envelope benchmark, medians of {repeats} x {number} messages, "
            f"python {sys.version.split()[0]}"
        )
        print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
