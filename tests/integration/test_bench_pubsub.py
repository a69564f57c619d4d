"""``python -m bench.pubsub --quick`` runs against the session's Kafka and prints figures.

Checks that the output is well formed (every figure present and positive), never speed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

from bench.pubsub import VARIATIONS
from broker.kafka import ClusterState

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
PNG = b"\x89PNG\r\n\x1a\n"


def test_quick_run_prints_table_json_and_chart(kafka: ClusterState, tmp_path: Path) -> None:
    out, chart = tmp_path / "figures.json", tmp_path / "chart.png"
    argv = [sys.executable, "-m", "bench.pubsub", "--quick", "--bootstrap", kafka.bootstrap]
    done = subprocess.run(
        [*argv, "--json", str(out), "--chart", str(chart)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "headline (1KB-3r-3p): throughput fusionbus/raw" in done.stdout
    assert re.search(r" ([0-9]+)/\1 ", done.stderr), done.stderr  # the progress bar, at its end
    for variation in VARIATIONS:
        for system in ("fusionbus", "raw"):
            cells = rf"\s+({NUMBER})" * (9 if system == "fusionbus" else 8)
            row = re.search(rf"^{variation.name}\s+{system}{cells}$", done.stdout, re.M)
            assert row is not None, f"no row {variation.name} {system} in:\n{done.stdout}"
            assert all(float(cell.replace(",", "")) > 0 for cell in row.groups())
            for offered in ("saturation", *(("500", "2000") if variation is VARIATIONS[0] else ())):
                lat = re.search(
                    rf"^{variation.name} {system}\s+{offered}((?:\s+{NUMBER}){{4}})$",
                    done.stdout, re.M,
                )  # fmt: skip
                assert lat is not None, f"no latency {variation.name} {system} {offered}"
                p50, p95, p99, worst = (float(cell) for cell in lat.group(1).split())
                assert 0 < p50 <= p95 <= p99 <= worst

    figures = orjson.loads(out.read_bytes())
    assert [v["name"] for v in figures["variations"]] == [v.name for v in VARIATIONS]
    assert figures["headline"]["ratio_e2e"] > 0
    for v in figures["variations"]:
        assert v["quarantined"] == 0
        assert v["envelope_bytes"] > v["report_bytes"] > 0
        assert v["envelope_keys"] == v["recipients"] + 1  # the sender keeps a key
        for system in ("fusionbus", "raw"):
            s = v[system]
            for spread in (s["mb_per_s"], *s["reports_per_s"].values()):
                assert 0 < spread["min"] <= spread["median"] <= spread["max"]
            assert s["cpu_s_per_1000"]["total"] > 0
            assert s["peak_rss_mb"]["pub"] > 0
            assert s["peak_rss_mb"]["sub"] > 0
    paced = figures["variations"][0]["fusionbus"]["latency_ms"]["500"]
    assert paced["reports"] == 500 * figures["options"]["seconds"]
    assert chart.read_bytes().startswith(PNG)
