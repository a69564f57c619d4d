"""The text ``bench.gateway`` prints: medians of the ingest rounds, one line per fan-out burst,
and the feed gateway's resident set through the run."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.gateway import Measured

__all__ = ["render"]

_PATHS = {  # path: (label, the Publisher path it is compared with)
    "publisher": ("Publisher, batches", "publisher"),
    "batch": ("POST /v1/reports:batch", "publisher"),
    "publisher-single": ("Publisher, 1 per call", "publisher-single"),
    "single": ("POST /v1/reports", "publisher-single"),
}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _ingest(measured: Measured) -> list[str]:
    o = measured.options
    rounds = measured.ingest
    lines = [
        (
            f"# ingest: 1 KB reports, 3 recipients; {o.repeats} round(s), medians; {o.count} "
            f"per round in batches of {o.batch} (one at a time), {o.singles} per round one per "
            f"call from {o.concurrency} concurrent tasks or clients"
        ),
        (
            f"{'path':<24}{'reports/s':>11}{'vs Publisher':>14}{'gateway CPU ms/report':>23}"
            f"{'client CPU ms/report':>22}"
        ),
    ]
    for name, (label, against) in _PATHS.items():
        got, base = rounds[name], rounds[against]
        ratio = statistics.median(
            r["reports_per_s"] / b["reports_per_s"] for r, b in zip(got, base, strict=True)
        )
        gateway_ms = statistics.median(r["gateway_cpu_ms"] for r in got)
        gateway = "-" if name == against else f"{gateway_ms:.3f}"
        lines.append(
            f"{label:<24}{statistics.median(r['reports_per_s'] for r in got):>11,.0f}"
            f"{ratio:>14.3f}{gateway:>23}"
            f"{statistics.median(r['own_cpu_ms'] for r in got):>22.3f}"
        )
    for name, against in (("batch", "publisher"), ("single", "publisher-single")):
        per_round = ", ".join(
            f"{h['reports_per_s'] / p['reports_per_s']:.3f}"
            for h, p in zip(rounds[name], rounds[against], strict=True)
        )
        lines.append(f"{_PATHS[name][0]} / {_PATHS[against][0]}, per round: {per_round}")
    lines.append(f"ingest gateway RSS at the end: {measured.ingest_rss_mb:.1f} MB")
    return lines


def _burst_line(b: dict[str, Any]) -> str:
    events = b["clients"] * b["reports"]
    lat = b["latencies_ms"]
    label = "warm-up" if b["burst"] == 0 else "paced" if b.get("paced") else str(b["burst"])
    return (
        f"{label:<8}{b['reports']:>8}{b['clients']:>8}{b['received']:>10}{b['missing']:>8}"
        f"{b['duplicates']:>11}{b['reconnects']:>11}{events / b['deliver_s']:>10,.0f}"
        f"{_quantile(lat, 0.5):>9.1f}{_quantile(lat, 0.99):>9.1f}{max(lat, default=0):>9.1f}"
        f"{b['gateway_cpu_us']:>12.1f}{b['cpu'] * 1e6 / events:>11.1f}{b['peak_rss_mb']:>10.1f}"
    )


def _fanout(measured: Measured) -> list[str]:
    o = measured.options
    rate = f"{o.rate:,.0f}/s" if o.rate > 0 else "as fast as the publisher goes"
    lines = [
        (
            f"# SSE fan-out: {o.clients} clients on GET /v1/feed; {o.bursts} burst(s) of "
            f"{o.reports} reports offered at {rate}, then {o.paced_reports} paced at "
            f"{o.paced_rate:,.0f}/s"
        ),
        (
            f"{'burst':<8}{'reports':>8}{'clients':>8}{'received':>10}{'missing':>8}"
            f"{'duplicates':>11}{'reconnects':>11}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'gw µs/event':>12}{'cl µs/ev':>11}{'peak MB':>10}"
        ),
        *(_burst_line(b) for b in measured.bursts),
        (
            "(received: reports delivered, summed over readers; latency: created_at -> "
            "parsed by a reader; gw/cl: gateway/client CPU per delivered event)"
        ),
        "# feed gateway RSS (VmRSS, MB)",
        *(f"{label:<32}{mb:>8.1f}" for label, mb in measured.rss),
    ]
    rss = dict(measured.rss)
    idle, ready = rss[f"{o.clients} clients connected, idle"], rss["ready, no feed clients"]
    lines.append(f"per connected client: {(idle - ready) * 1024 / o.clients:+.1f} KB")
    cut = sum(b["cut_off"] for b in measured.bursts)
    lines.append(f"streams cut off by the gateway's send timeout (of the reconnects): {cut}")
    measured_bursts = [b for b in measured.bursts if b["burst"] > 0 and not b.get("paced")]
    if len(measured_bursts) >= 2:
        first, last = measured_bursts[0]["burst"], measured_bursts[-1]["burst"]
        after = rss[f"after burst {last}"] - rss[f"after burst {first}"]
        peak = measured_bursts[-1]["peak_rss_mb"] - measured_bursts[0]["peak_rss_mb"]
        lines.append(f"burst {last} vs burst {first}: after {after:+.1f} MB, peak {peak:+.1f} MB")
    return lines


def render(measured: Measured, *, seconds: float) -> str:
    return "\n".join([*_ingest(measured), "", *_fanout(measured), "", f"run took {seconds:.0f} s"])
