"""``python -m bench.pubsub --quick`` runs against the session's Kafka and prints figures.

Checks that the output is well formed (every figure present and positive), never speed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

from broker.kafka import ClusterState

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def test_quick_run_prints_positive_figures(kafka: ClusterState, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = [sys.executable, "-m", "bench.pubsub", "--quick", "--bootstrap", kafka.bootstrap]
    done = subprocess.run(
        [*argv, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for title in (
        "fusionbus end to end", "fusionbus publisher", "fusionbus subscriber",
        "raw aiokafka end to end", "raw aiokafka publisher", "raw aiokafka subscriber",
    ):  # fmt: skip
        row = re.search(rf"^{title}\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})$", done.stdout, re.M)
        assert row is not None, f"no row {title!r} in:\n{done.stdout}"
        assert all(float(cell.replace(",", "")) > 0 for cell in row.groups())
    for title in (r"ratio fusionbus/raw \(e2e\)", r"CPU fusionbus/raw \(pub\+sub\)"):
        ratio = re.search(rf"^{title}\s+({NUMBER})\s", done.stdout, re.M)
        assert ratio is not None, f"no row {title!r} in:\n{done.stdout}"
        assert float(ratio.group(1)) > 0
    latency = re.search(rf"^created_at -> handler \(ms\)((?:\s+{NUMBER}){{4}})$", done.stdout, re.M)
    assert latency is not None, done.stdout
    p50, p95, p99, worst = (float(cell) for cell in latency.group(1).split())
    assert 0 < p50 <= p95 <= p99 <= worst

    figures = orjson.loads(out.read_bytes())
    assert figures["quarantined"] == 0
    assert figures["envelope_bytes"] > figures["report_bytes"] > 0
    for spread in (*figures["throughput_per_s"].values(), *figures["cpu_us_per_report"].values()):
        assert 0 < spread["min"] <= spread["median"] <= spread["max"]
    assert figures["ratio_e2e"]["median"] > 0
    assert figures["latency_ms"]["reports"] == figures["options"]["rate"] * 3
