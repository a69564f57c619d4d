"""``python -m bench.gateway --quick`` runs against the session's Kafka and prints figures.

Checks that every feed reader got every report once and that every figure is printed and
positive, never speed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.gateway import FEED_WARMUP, QUICK
from broker.kafka import ClusterState

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
INGEST_PATHS = (
    "Publisher, batches",
    "POST /v1/reports:batch",
    "Publisher, 1 per call",
    "POST /v1/reports",
)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_quick_run_delivers_every_report_to_every_reader(kafka: ClusterState) -> None:
    argv = [sys.executable, "-m", "bench.gateway", "--quick", "--bootstrap", kafka.bootstrap]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    out = done.stdout

    for label in INGEST_PATHS:
        row = re.search(
            rf"^{re.escape(label)}\s+({NUMBER})\s+({NUMBER})\s+(\S+)\s+({NUMBER})$", out, re.M
        )
        assert row is not None, f"no ingest row {label!r} in:\n{out}"
        rate, ratio, gateway_cpu, client_cpu = row.groups()
        assert _number(rate) > 0
        assert _number(ratio) > 0
        assert _number(client_cpu) > 0
        if label.startswith("POST"):
            assert _number(gateway_cpu) > 0
    assert re.search(rf"^ingest gateway RSS at the end: {NUMBER} MB$", out, re.M)

    phases = {
        "warm-up": FEED_WARMUP,
        **{str(k): QUICK.reports for k in range(1, QUICK.bursts + 1)},
        "paced": QUICK.paced_reports,
    }
    for label, reports in phases.items():
        row = re.search(rf"^{label}((?:\s+{NUMBER}){{13}})$", out, re.M)
        assert row is not None, f"no fan-out row {label!r} in:\n{out}"
        cells = [_number(cell) for cell in row.group(1).split()]
        sent, clients, received, missing, duplicates, _reconnects = cells[:6]
        assert (sent, clients) == (reports, QUICK.clients)
        assert received == reports * QUICK.clients
        assert (missing, duplicates) == (0, 0)
        events_per_s, p50, p99, worst, gateway_us, client_us, peak_mb = cells[6:]
        assert events_per_s > 0
        assert 0 < p50 <= p99 <= worst
        assert gateway_us > 0
        assert client_us > 0
        assert peak_mb > 0
    for label in (
        "ready, no feed clients",
        f"{QUICK.clients} clients connected, idle",
        *(f"after burst {k}" for k in range(1, QUICK.bursts + 1)),
        "after the paced phase",
        "clients gone",
    ):
        assert re.search(rf"^{re.escape(label)}\s+{NUMBER}$", out, re.M), f"no RSS {label!r}"
    assert re.search(r"^per connected client: [+-][0-9.]+ KB$", out, re.M)
    assert re.search(
        r"^streams cut off by the gateway's send timeout \(of the reconnects\): [0-9]+$", out, re.M
    )
    assert re.search(
        rf"^burst {QUICK.bursts} vs burst 1: after [+-][0-9.]+ MB, peak [+-][0-9.]+ MB$", out, re.M
    )
