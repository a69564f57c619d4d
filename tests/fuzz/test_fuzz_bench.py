"""``python -m bench.fuzz_intake`` runs and reports well-formed figures (not its speed)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.fuzz_intake import main


def test_a_short_run_prints_the_figures_and_writes_them_as_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "fuzz.json"
    assert main(["--records", "300", "--seed", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("# 300 hostile records, seed 4")
    assert "internal errors: 0; escaped exceptions: 0; unsound verdicts: 0" in printed.out
    assert "records/s" in printed.out
    figures = orjson.loads(out.read_bytes())
    assert figures["records"] == 300
    assert sum(figures["intake_verdicts"].values()) == sum(figures["raw_verdicts"].values()) == 300
    assert figures["intake"]["records_per_s"] > 0
    assert figures["peak_rss_mib"] > 0


def test_show_prints_one_mutant_and_both_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--show", "7", "--seed", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mutant #7 of seed 4: ")
    assert lines[1].startswith("Record(source=Source(")
    assert lines[2].startswith("Intake:")
    assert lines[3].startswith("RawIntake:")
