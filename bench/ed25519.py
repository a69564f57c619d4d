"""Ed25519 verification: pyca/cryptography (OpenSSL) against libsodium (PyNaCl).

Times :meth:`broker._crypto.VerifyKey.verify` and :func:`broker._sodium.verify_ed25519`
on the same genuine signatures of ``--size``-byte messages, interleaved round by round.

Run: ``.venv/bin/python -m bench.ed25519`` (``--tiny`` for a smoke run). Figures are
medians over ``--repeats`` rounds of ``--number`` verifications, in CPU time of this
process; ``ratio`` is the median of the per-round ratios pyca / libsodium.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import orjson

from broker._crypto import SigningKey
from broker._sodium import verify_ed25519


def _us(action: Callable[[], object], number: int) -> float:
    """CPU time of this process per call, in µs."""
    start = time.process_time_ns()
    for _ in range(number):
        action()
    return (time.process_time_ns() - start) / number / 1000


def measure(*, size: int, number: int, repeats: int) -> dict[str, float]:
    key = SigningKey.generate()
    message = os.urandom(size)
    signature = key.sign(message)
    public, raw = key.public, key.public.raw
    if not (public.verify(signature, message) and verify_ed25519(raw, signature, message)):
        raise SystemExit("a genuine signature does not verify")
    pyca: list[float] = []
    sodium: list[float] = []
    for _ in range(repeats):
        pyca.append(_us(lambda: public.verify(signature, message), number))
        sodium.append(_us(lambda: verify_ed25519(raw, signature, message), number))
    ratios = [a / b for a, b in zip(pyca, sodium, strict=True)]
    return {
        "message_bytes": size,
        "pyca_verify_us": round(statistics.median(pyca), 1),
        "sodium_verify_us": round(statistics.median(sodium), 1),
        "ratio": round(statistics.median(ratios), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tiny", action="store_true", help="a smoke run: few verifications")
    parser.add_argument("--size", type=int, default=1024, help="message bytes")
    parser.add_argument("--number", type=int, default=2000, help="verifications per round")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds; the median counts")
    args = parser.parse_args(argv)
    number, repeats = (5, 1) if args.tiny else (args.number, args.repeats)
    figures = measure(size=args.size, number=number, repeats=repeats)
    print(f"# Ed25519 verify, medians of {repeats} x {number}, python {sys.version.split()[0]}")
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
