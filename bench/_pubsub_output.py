"""Figures of ``bench.pubsub``: what the processes measured, as a summary, a table, a chart."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.pubsub import Measured, Options

__all__ = ["render", "summary", "write_chart"]

SYSTEMS = ("fusionbus", "raw")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _spread(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "reports": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
    }


def _system(measured: Measured, report_bytes: int) -> dict[str, Any]:
    e2e, pub_rate, sub_rate, pub_cpu, sub_cpu, saturated = [], [], [], [], [], []
    for pub, sub in measured.rounds:
        if pub["errors"]:
            raise RuntimeError(f"{pub['errors']} of {pub['count']} sends failed")
        count = sub["count"]
        e2e.append(count / (sub["last"] - pub["first"]))
        pub_rate.append(count / (pub["last"] - pub["first"]))
        sub_rate.append(count / max(sub["last"] - sub["first"], 1e-9))
        pub_cpu.append(pub["cpu"] / count * 1000)
        sub_cpu.append(sub["cpu"] / count * 1000)
        saturated += sub["latencies_ms"]
    latency = {"saturation": _latency(saturated)}
    for rate, (pub, sub) in measured.paced.items():
        if pub["errors"]:
            raise RuntimeError(f"{pub['errors']} of {pub['count']} paced sends failed")
        latency[f"{rate:g}"] = {
            **_latency(sub["latencies_ms"]),
            "achieved_per_s": round(pub["count"] / (pub["last"] - pub["first"]), 1),
            "publisher_behind_max_ms": round(pub["behind_max_ms"], 2),
        }
    return {
        "reports_per_s": {"e2e": _spread(e2e), "pub": _spread(pub_rate), "sub": _spread(sub_rate)},
        "mb_per_s": _spread([r * report_bytes / 1e6 for r in e2e], 2),
        "cpu_s_per_1000": {
            "pub": _spread(pub_cpu, 3),
            "sub": _spread(sub_cpu, 3),
            "total": round(
                statistics.median(p + s for p, s in zip(pub_cpu, sub_cpu, strict=True)), 3
            ),
        },
        "latency_ms": latency,
        "peak_rss_mb": {side: round(end["peak_rss_mb"], 1) for side, end in measured.ends.items()},
        "_e2e": e2e,
        "_cpu": [p + s for p, s in zip(pub_cpu, sub_cpu, strict=True)],
    }


def summary(options: Options, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    variations = []
    for result in results:
        systems = {
            name: _system(result["measured"][name], result["report_bytes"]) for name in SYSTEMS
        }
        fb, raw = systems["fusionbus"], systems["raw"]
        ratios = [f / r for f, r in zip(fb.pop("_e2e"), raw.pop("_e2e"), strict=True)]
        cpu = [f / r for f, r in zip(fb.pop("_cpu"), raw.pop("_cpu"), strict=True)]
        variations.append(
            {
                **result["variation"],
                "report_bytes": result["report_bytes"],
                "envelope_bytes": result["envelope_bytes"],
                "envelope_keys": result["envelope_keys"],
                "ratio_e2e": {"median": round(statistics.median(ratios), 3), "rounds": ratios},
                "cpu_ratio": {"median": round(statistics.median(cpu), 2), "rounds": cpu},
                "quarantined": result["measured"]["fusionbus"].ends["sub"]["quarantined"],
                **systems,
            }
        )
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "options": asdict(options),
        "headline": {
            "variation": variations[0]["name"],
            "ratio_e2e": variations[0]["ratio_e2e"]["median"],
            "cpu_ratio": variations[0]["cpu_ratio"]["median"],
        },
        "variations": variations,
    }


def render(figures: dict[str, Any]) -> str:
    opts = figures["options"]
    head = figures["headline"]
    lines = [
        (
            f"# bench.pubsub: envelope v{opts.get('envelope_version', 1)}, {opts['repeats']} "
            f"round(s) of {opts['count']} reports per system "
            f"and variation, batches of {opts['batch']}; {figures['machine']['cpus']} cpus, "
            f"python {figures['machine']['python']}"
        ),
        (
            f"headline ({head['variation']}): throughput fusionbus/raw {head['ratio_e2e']:.3f}, "
            f"CPU fusionbus/raw {head['cpu_ratio']:.2f}"
        ),
        "",
        (
            f"{'variation':<12}{'system':<11}{'report B':>9}{'envel. B':>9}{'reports/s':>10}"
            f"{'MB/s':>7}{'ratio':>7}{'CPU s/1k pub':>13}{'sub':>7}"
            f"{'RSS MB pub':>11}{'sub':>6}"
        ),
    ]
    for v in figures["variations"]:
        for system in SYSTEMS:
            s = v[system]
            cpu, rss = s["cpu_s_per_1000"], s["peak_rss_mb"]
            ratio = f"{v['ratio_e2e']['median']:.3f}" if system == "fusionbus" else ""
            lines.append(
                f"{v['name']:<12}{system:<11}{v['report_bytes']:>9}{v['envelope_bytes']:>9}"
                f"{s['reports_per_s']['e2e']['median']:>10,.0f}{s['mb_per_s']['median']:>7.2f}"
                f"{ratio:>7}{cpu['pub']['median']:>13.3f}{cpu['sub']['median']:>7.3f}"
                f"{rss['pub']:>11.0f}{rss['sub']:>6.0f}"
            )
    lines += [
        "",
        (
            f"{'latency send -> handler (ms)':<30}{'offered':>10}{'p50':>9}{'p95':>9}"
            f"{'p99':>9}{'max':>9}"
        ),
    ]
    for v in figures["variations"]:
        for system in SYSTEMS:
            for offered, lat in v[system]["latency_ms"].items():
                lines.append(
                    f"{v['name'] + ' ' + system:<30}{offered:>10}{lat['p50']:>9.2f}"
                    f"{lat['p95']:>9.2f}{lat['p99']:>9.2f}{lat['max']:>9.2f}"
                )
    return "\n".join(lines)


def write_chart(figures: dict[str, Any], path: Path) -> None:
    """Throughput per variation and latency of the first variation, fusionbus beside raw."""
    import matplotlib  # noqa: PLC0415 - a bench-only dependency, loaded only for --chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    variations = figures["variations"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.38
    xs = range(len(variations))
    for k, (system, colour) in enumerate((("fusionbus", "tab:blue"), ("raw", "tab:grey"))):
        rates = [v[system]["reports_per_s"]["e2e"]["median"] for v in variations]
        bars = left.bar(
            [x + (k - 0.5) * width for x in xs], rates, width, label=system, color=colour
        )
        if system == "fusionbus":
            labels = [f"{v['ratio_e2e']['median']:.2f}x" for v in variations]
            left.bar_label(bars, labels=labels, fontsize=8)
    left.set_xticks(list(xs), [v["name"] for v in variations], rotation=20, fontsize=8)
    left.set_ylabel("reports/s end to end (median)")
    left.set_title("Throughput (label: fusionbus/raw)")
    left.legend()

    first = variations[0]
    phases = list(first["fusionbus"]["latency_ms"])
    for k, (system, colour) in enumerate((("fusionbus", "tab:blue"), ("raw", "tab:grey"))):
        lat = first[system]["latency_ms"]
        x = [p + (k - 0.5) * width for p in range(len(phases))]
        right.bar(x, [lat[p]["p50"] for p in phases], width, color=colour, label=f"{system} p50")
        right.scatter(x, [lat[p]["p99"] for p in phases], color=colour, marker="_", s=300,
                      label=f"{system} p99")  # fmt: skip
    right.set_xticks(range(len(phases)), [f"{p}/s" if p != "saturation" else p for p in phases])
    right.set_yscale("log")
    right.set_ylabel("send -> handler latency, ms (log)")
    right.set_title(f"Latency, {first['name']}")
    right.legend(fontsize=8)
    version = figures["options"].get("envelope_version", 1)
    fig.suptitle(
        f"fusionbus (envelope v{version}) vs raw aiokafka, {figures['machine']['cpus']} cpus"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
