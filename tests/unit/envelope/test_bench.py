"""The benchmark script runs and prints well-formed output (its speed is not tested)."""

from __future__ import annotations

import orjson
import pytest

from bench.envelope import COLUMNS, main


def test_tiny_run_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# envelope benchmark")
    assert lines[1].split()[:2] == ["payload", "rcpts"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [
        (size, n) for size in ("1024", "16384") for n in ("1", "3", "10")
    ]
    assert all(len(r) == len(COLUMNS) and all(float(v) > 0 for v in r) for r in rows)


def test_tiny_run_prints_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tiny", "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 6
    assert all(set(row) == {name for name, _ in COLUMNS} for row in rows)
    assert all(row["ratio"] > 0 for row in rows)
