"""Coverage-guided fuzzing of the envelope parser and the intake with atheris (libFuzzer).

::

    .venv/bin/pip install atheris      # not a project dependency: only this harness needs it
    .venv/bin/python -m tests.fuzz.atheris_envelope --write-seeds /tmp/fb-seeds
    .venv/bin/python -m tests.fuzz.atheris_envelope /tmp/fb-corpus /tmp/fb-seeds \\
        -max_total_time=600 -dict=/tmp/fb-seeds.dict

Each input is an envelope's bytes. ``broker.envelope._wire.parse_envelope`` must return a
``ParsedEnvelope`` or raise ``VerificationError``; so must ``verify_envelope`` and
``Opener.open`` with the directory snapshot and keys of :func:`tests.fuzz.corpus.make_world`, and
``Intake.process`` / ``RawIntake.process`` of the record on a report topic must not say
``internal_error``. Anything else is a crash: libFuzzer stops and writes the input to
``crash-<sha1>``; replay it with ``python -m tests.fuzz.atheris_envelope crash-<sha1>``.

``--write-seeds DIR`` writes the signed base records as a seed corpus, and ``DIR.dict``, a
dictionary of the envelope's JSON member names and values, then exits. Further arguments are
libFuzzer's (``-runs=N``, ``-max_len=N``, ``-jobs=N``, corpus directories). Not collected
by pytest (no ``test_`` prefix); the structure-aware fuzzing that runs in the test suite
is ``tests/fuzz/test_intake_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports(include=["broker", "schemas", "consumers"]):
    from broker.envelope import verify_envelope
    from broker.envelope._wire import Limits, parse_envelope
    from broker.errors import Reason, VerificationError
    from consumers.intake import Rejected

from .corpus import NOW, make_world

WORLD = make_world()
LIMITS = Limits()
INTAKE, RAW = WORLD.intake(), WORLD.raw_intake()
RECORD = WORLD.genuine[0].record
TOKENS = (
    "protected", "unprotected", "recipients", "header", "encrypted_key", "iv", "ciphertext",
    "tag", "fusionbus", "fusionbus_sig", "epk", "kty", "crv", "x", "alg", "kid", "enc", "typ",
    "cty", "OKP", "X25519", "ECDH-ES+A256KW", "A256GCM", "JOSE", "Ed25519",
    "fusionbus-envelope+jwe", "fusionbus-envelope-sig+jws", "version", "message_id", "sender",
    "sender_kid", "category", "jurisdiction", "precedence", "tlp", "created_at", "expires_at",
    "schema_version",
)  # fmt: skip


def one_input(data: bytes) -> None:
    """Check one envelope: a verified object or a VerificationError, and a sound verdict."""
    for check in (
        lambda: parse_envelope(data, LIMITS),
        lambda: verify_envelope(data, WORLD.trust, NOW),
    ):
        with contextlib.suppress(VerificationError):
            check()
    record = replace(RECORD, value=data)
    for intake in (INTAKE, RAW):
        verdict = intake.process(record)
        if isinstance(verdict, Rejected) and verdict.reason is Reason.INTERNAL_ERROR:
            raise AssertionError(f"{type(intake).__name__}: internal_error: {verdict.detail}")


def write_seeds(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for base in WORLD.bases:
        name = hashlib.sha1(base.value, usedforsecurity=False).hexdigest()
        (directory / name).write_bytes(base.value)
    words = [f'"\\"{token}\\""' for token in TOKENS]
    dictionary = directory.with_suffix(".dict")
    dictionary.write_text("\n".join(words) + "\n", encoding="ascii")
    print(f"wrote {len(WORLD.bases)} seeds to {directory}/ and a dictionary to {dictionary}")


def main(argv: list[str]) -> None:
    if argv[1:2] == ["--write-seeds"]:
        write_seeds(Path(argv[2]))
        return
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
