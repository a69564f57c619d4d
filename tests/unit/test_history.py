"""The fault tests' history checker finds each kind of wrong run (a checker that cannot fail
would prove nothing)."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.integration.history import History


def _run(order: list[str], *, acked: list[str] | None = None, thread: str = "t") -> History:
    history = History()
    for report in ["a", "b", "c"]:
        history.sent(report, thread=thread)
    for report in acked if acked is not None else ["a", "b", "c"]:
        history.acked(report)
    for report in order:
        history.delivered(report, reader="app")
    return history


def test_a_clean_run_passes_and_is_counted() -> None:
    verdict = _run(["a", "b", "c"]).check()
    assert verdict.ok, verdict.explain()
    assert (verdict.sent, verdict.acked, verdict.delivered) == (3, 3, {"app": 3})


def test_an_acknowledged_report_never_delivered_is_lost() -> None:
    verdict = _run(["a", "c"]).check()
    assert not verdict.ok
    assert verdict.lost == {"app": ["b"]}
    assert "1 lost" in verdict.explain()


def test_an_unacknowledged_report_may_be_missing() -> None:
    assert _run(["a", "c"], acked=["a", "c"]).check().ok


def test_a_report_delivered_twice_is_a_duplicate() -> None:
    verdict = _run(["a", "b", "b", "c"]).check()
    assert verdict.duplicates == {"app": ["b"]}
    assert not verdict.ok


def test_reports_of_one_thread_out_of_order_are_found() -> None:
    verdict = _run(["b", "a", "c"]).check()
    assert verdict.out_of_order == {"app": [("a", "b")]}
    assert not verdict.ok


def test_reports_of_different_threads_may_interleave() -> None:
    history = History()
    for report in "abcd":
        history.sent(report, thread="x" if report in "ab" else "y")
        history.acked(report)
    for report in "cadb":
        history.delivered(report, reader="app")
    assert history.check().ok


def test_a_reader_that_got_nothing_loses_everything() -> None:
    verdict = _run([]).check(readers=["app", "dashboard"])
    assert verdict.lost["dashboard"] == ["a", "b", "c"]
    assert verdict.delivered["dashboard"] == 0


def test_a_delivery_never_sent_is_reported() -> None:
    history = _run(["a", "b", "c", "z"])
    verdict = history.check()
    assert verdict.unknown == {"app": ["z"]}


def test_marks_time_recovery_and_the_history_dumps(tmp_path: Path) -> None:
    history = History()
    history.sent("a")
    kill = history.mark("kill")
    history.acked("a")
    assert history.marks("kill") == [kill]
    after = history.first_after("acked", kill)
    assert after is not None
    assert after >= kill
    lines = history.dump(tmp_path / "h.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["kind"] for line in lines] == ["sent", "mark", "acked"]
