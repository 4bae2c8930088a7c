"""The benchmark's reports: medians and ratios, then JSON, a markdown table, the reStructuredText
table the docs include, and a PNG chart.

Ratios pair each target's run with the baseline's run of the same repeat (they ran one after the
other, so they saw the same machine) and report the median of those per-repeat ratios. A run
that failed is left out of medians and ratios, and the table says how many failed.

The chart needs matplotlib; without it (the test environment) it is skipped with a note.

``python -m bench.report --merge NEW.json`` puts a later, partial run (some scenarios, some
targets) into the committed results instead of running everything again: each scenario of the
new run gets the new run's rows for its targets; the rows of targets that the new run left out
stay, marked "(earlier run)" in the tables (their ratios are to the raw app of *their* run); the
JSON keeps every merged run's command and environment under ``merged``, and the docs' sentence
above the table names them.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Scenario

Summary = dict[str, dict[str, dict[str, Any]]]
Runs = Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]

#: Cost figures get a ratio to raw too; for them lower is better.
COST = "server_us_per_op"
TIMES = "\u00d7"  # the multiplication sign, as in "0.93x raw"


def summarize(chosen: Sequence[Scenario], runs: Runs, baseline: str) -> Summary:
    """``summary[scenario][target]``: ``ok``/``failed`` counts, the ``median`` of every numeric
    figure, and ``ratio``: the median per-repeat ratio to ``baseline`` of the headline figure
    and of the server CPU per op."""
    summary: Summary = {}
    for scenario in chosen:
        by_target = runs.get(scenario.name, {})
        base = by_target.get(baseline, [])
        summary[scenario.name] = {}
        for target, results in by_target.items():
            ok = [r for r in results if "error" not in r]
            ratio: dict[str, float | None] = {}
            for key in (scenario.metric, COST):
                pairs = [
                    r[key] / b[key]
                    for r, b in zip(results, base, strict=False)
                    if "error" not in r and "error" not in b and _number(r.get(key))
                    if _number(b.get(key)) and b[key]
                ]
                ratio[key] = statistics.median(pairs) if pairs else None
            summary[scenario.name][target] = {
                "ok": len(ok),
                "failed": len(results) - len(ok),
                "median": _medians(ok),
                "ratio": ratio,
                "errors": sorted({str(r["error"]) for r in results if "error" in r}),
            }
    return summary


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _medians(results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    keys = {k for r in results for k, v in r.items() if _number(v)}
    medians = {}
    for key in sorted(keys):
        values = [r[key] for r in results if _number(r.get(key))]
        if len(values) == len(results):
            medians[key] = statistics.median(values)
    return medians


# Formatting ------------------------------------------------------------------------------------


def fmt_number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_time(microseconds: float | None) -> str:
    if microseconds is None:
        return "—"
    if microseconds < 1000:
        return f"{microseconds:.0f} µs"
    if microseconds < 1_000_000:
        return f"{microseconds / 1000:.1f} ms"
    return f"{microseconds / 1e6:.2f} s"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}{TIMES}"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def one_line(scenario: Scenario, result: Mapping[str, Any]) -> str:
    """A run's result in a line of progress output."""
    if "error" in result:
        return f"FAILED: {result['error']}"
    line = f"{fmt_number(result.get(scenario.metric))} {scenario.unit}"
    for key, unit in scenario.extra:
        line += f", {fmt_number(result.get(key))} {unit}"
    if scenario.per_op is not None:
        line += f", {fmt_number(result.get(COST))} µs/{scenario.per_op}"
    if "server_log" in result:
        line += " [the server logged something: see results.json]"
    return (
        f"{line} (server {fmt_pct(result.get('server_cpu_pct'))},"
        f" client {fmt_pct(result.get('client_cpu_pct'))} CPU;"
        f" others {fmt_pct(result.get('other_cpu_pct'))})"
    )


HEADER = (
    "Scenario",
    "Target",
    "Result",
    f"{TIMES} raw",
    "p50",
    "p99",
    "Server CPU/op",
    f"{TIMES} raw",
    "Server CPU",
    "Client CPU",
)


def rows(chosen: Sequence[Scenario], summary: Summary) -> list[list[str]]:
    """The table's rows: one per (scenario, target), the scenario named on its first row."""
    table = []
    for scenario in chosen:
        for i, (target, entry) in enumerate(summary.get(scenario.name, {}).items()):
            median, ratio = entry["median"], entry["ratio"]
            name = scenario.name if i == 0 else ""
            if entry.get("earlier"):
                target = f"{target} (earlier run)"
            if not entry["ok"]:
                table.append([name, target, "failed", *[""] * (len(HEADER) - 3)])
                continue
            result = f"{fmt_number(median.get(scenario.metric))} {scenario.unit}"
            for key, unit in scenario.extra:
                result += f"; {fmt_number(median.get(key))} {unit}"
            if entry["failed"]:
                result += f" ({entry['failed']} failed)"
            p50, p99 = scenario.latency or (None, None)
            cost = median.get(COST) if scenario.per_op else None
            table.append(
                [
                    name,
                    target,
                    result,
                    fmt_ratio(ratio.get(scenario.metric)),
                    fmt_time(median.get(p50)) if p50 else "—",
                    fmt_time(median.get(p99)) if p99 else "—",
                    "—" if cost is None else f"{fmt_number(cost)} µs/{scenario.per_op}",
                    fmt_ratio(ratio.get(COST)) if cost is not None else "—",
                    fmt_pct(median.get("server_cpu_pct")),
                    fmt_pct(median.get("client_cpu_pct")),
                ]
            )
    return table


def markdown_table(chosen: Sequence[Scenario], summary: Summary) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(chosen, summary)]
    return "\n".join(lines)


def rst_table(chosen: Sequence[Scenario], data: Mapping[str, Any]) -> str:
    """The generated docs page fragment: where it was measured, then a list-table."""
    env, settings = data["environment"], data["settings"]
    versions = env["versions"]
    pinned = "pinned to core 0 and core 1 with taskset" if env["taskset"] else "not pinned"
    quick = " This was a ``--quick`` run: small counts, not for comparison." * settings["quick"]
    others = data.get("other_cpu_pct") or _others(data["runs"])
    if others:
        quick += (
            f" Other processes on the machine used a median of {others['median']:.0f}% of a"
            f" core (at most {others['max']:.0f}%) while measuring."
        )
    intro = (
        f"Measured on {env['cpu']} ({env['cpus']} cores), Python {env['python']},"
        f" Hypercorn {versions['hypercorn']}, Trio {versions['trio']}, trioweb"
        f" {versions['trioweb']}, quart-trio {versions['quart-trio']}, Quart {versions['quart']},"
        f" Starlette"
        f" {versions['starlette']}; load generator: {env['client']}; server and load generator"
        f" {pinned}. {_repeats(settings['repeats'])}; the whole run took"
        f" {_duration(data['duration_s'])}.{quick}"
    )
    later = []
    for merged in data.get("merged", ()):
        repeats = _repeats(merged["settings"]["repeats"]).lower()
        busy = merged.get("other_cpu_pct")
        load = (
            f"; other processes used a median of {busy['median']:.0f}% of a core, at most"
            f" {busy['max']:.0f}%"
            if busy
            else ""
        )
        later.append(
            f"{', '.join(merged['scenarios'])} (``{_shown(merged['settings']['command'])}``,"
            f" {repeats}, {_duration(merged['duration_s'])}{load})"
        )
    if later:
        intro += (
            f" Later runs, merged in with ``python -m bench.report --merge``, measured"
            f" {'; '.join(later)}. Rows marked (earlier run) are from the first run, with ratios"
            " to its raw app."
        )
    lines = [
        ".. Generated by ``python -m bench.run``: do not edit; run the benchmark again.",
        "",
        intro,
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
    ]
    for row in [list(HEADER), *rows(chosen, data["summary"])]:
        lines.append(f"   * - {_rst_cell(row[0])}")
        lines += [f"     - {_rst_cell(cell)}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def _others(runs: Runs) -> dict[str, float] | None:
    """Median and maximum of the CPU that other processes took during the runs, % of a core."""
    values = [
        r["other_cpu_pct"]
        for by_target in runs.values()
        for results in by_target.values()
        for r in results
        if _number(r.get("other_cpu_pct"))
    ]
    return {"median": statistics.median(values), "max": max(values)} if values else None


def _shown(command: str) -> str:
    """``command`` without where it wrote its files (``--out``, ``--docs``, ``--no-docs``)."""
    words, shown = iter(command.split()), []
    for word in words:
        if word in ("--out", "--docs"):
            next(words, None)
        elif word != "--no-docs":
            shown.append(word)
    return " ".join(shown)


def _repeats(n: int) -> str:
    return "One run per figure, no repeats" if n == 1 else f"Medians of {n} repeats"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} seconds" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _rst_cell(text: str) -> str:
    return text.replace("*", r"\*") if text else ".."


# Chart -----------------------------------------------------------------------------------------


def chart(chosen: Sequence[Scenario], summary: Summary, path: Path, baseline: str) -> bool:
    """Bar charts of the ratios to ``baseline``: throughput (higher is better) on the left,
    cost (server CPU per op and memory per connection, lower is better) on the right.
    Returns ``False`` (and draws nothing) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    targets = [t for t in _targets(summary) if t != baseline]
    # Each panel: (title, [(label, scenario, key), ...]).
    panels = [
        (
            "Throughput ÷ raw (higher is better)",
            # The Redis fan-out has no raw app to divide by: its figures are in the table only.
            [(s.name, s.name, s.metric) for s in chosen if s.higher_is_better and not s.redis],
        ),
        (
            "Cost ÷ raw (lower is better)",
            [
                (f"{s.name}\nCPU µs/{s.per_op}", s.name, COST)
                for s in chosen
                if s.per_op in ("msg", "req")
            ]
            + [(f"{s.name}\n{s.unit}", s.name, s.metric) for s in chosen if not s.higher_is_better],
        ),
    ]
    figure, axes = plt.subplots(
        1,
        2,
        figsize=(15, 5.5),
        gridspec_kw={"width_ratios": [max(1, len(bars)) for _, bars in panels]},
        layout="constrained",
    )
    width = 0.8 / max(1, len(targets))
    for axis, (title, groups) in zip(axes, panels, strict=True):
        for j, target in enumerate(targets):
            values = [
                summary.get(name, {}).get(target, {}).get("ratio", {}).get(key) or 0.0
                for _, name, key in groups
            ]
            positions = [i + (j - (len(targets) - 1) / 2) * width for i in range(len(groups))]
            bars = axis.bar(positions, values, width, label=target)
            axis.bar_label(bars, [f"{v:.2f}" if v else "" for v in values], fontsize=5)
        axis.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        labels = [label for label, _, _ in groups]
        axis.set_xticks(range(len(groups)), labels, fontsize=7, rotation=35, ha="right")
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(f"ratio to {baseline}")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(targets), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _targets(summary: Summary) -> list[str]:
    seen: dict[str, None] = {}
    for by_target in summary.values():
        seen.update(dict.fromkeys(by_target))
    return list(seen)


# Files -----------------------------------------------------------------------------------------


def write(
    data: Mapping[str, Any], chosen: Sequence[Scenario], out: Path, docs: Path | None
) -> list[Path]:
    """Write ``out/results.json`` and ``out/results.md``, and the docs' table and chart: into
    ``docs/performance_results.rst`` and ``docs/_static/performance.png``, or, without
    ``docs``, next to the results. Returns the paths written."""
    written = [
        _write_text(out / "results.json", json.dumps(data, indent=1) + "\n"),
        _write_text(out / "results.md", markdown_table(chosen, data["summary"]) + "\n"),
        _write_text((docs or out) / "performance_results.rst", rst_table(chosen, data)),
    ]
    png = docs / "_static" / "performance.png" if docs else out / "performance.png"
    if chart(chosen, data["summary"], png, data["settings"]["baseline"]):
        written.append(png)
    else:
        print("matplotlib is not installed: no chart", flush=True)
    return written


def merge(data: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the scenarios of the later run ``new`` merged in (see the module's
    docstring); ``data`` is changed in place and returned."""
    settings = data["settings"]
    # The first run's load, before its rows are replaced (the docs' sentence gives each run's).
    data.setdefault("other_cpu_pct", _others(data["runs"]))
    for target in new["settings"]["targets"]:
        if target not in settings["targets"]:
            settings["targets"].append(target)
    for name, by_target in new["runs"].items():
        old_summary = data["summary"].get(name, {})
        old_runs = data["runs"].get(name, {})
        summary, runs = {}, {}
        for target in settings["targets"]:
            if target in by_target:
                summary[target], runs[target] = new["summary"][name][target], by_target[target]
            elif target in old_summary:
                summary[target] = {**old_summary[target], "earlier": True}
                runs[target] = old_runs[target]
        data["summary"][name], data["runs"][name] = summary, runs
        settings["scenarios"][name] = new["settings"]["scenarios"][name]
    data.setdefault("merged", []).append(
        {
            "scenarios": list(new["runs"]),
            "targets": new["settings"]["targets"],
            "settings": new["settings"],
            "environment": new["environment"],
            "duration_s": new["duration_s"],
            "other_cpu_pct": _others(new["runs"]),
        }
    )
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.report [results.json] [--merge NEW.json] [--docs DIR | --no-docs]``:
    write the reports again from a run's JSON (after changing how they look), without measuring
    again; with ``--merge``, first merge a later partial run into it (and write it back)."""
    import argparse

    from .run import ROOT, scenarios

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    default = ROOT / "bench" / "results" / "results.json"
    parser.add_argument("results", type=Path, nargs="?", default=default)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--merge", type=Path, default=None, help="a later run's results.json")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    if args.merge is not None:
        merge(data, json.loads(args.merge.read_text()))
    targets = data["settings"]["targets"]
    for key in ("summary", "runs"):  # in the order of the run, as the table and chart want
        data[key] = {
            scenario: {t: by_target[t] for t in targets if t in by_target}
            for scenario, by_target in data[key].items()
        }
    names = data["settings"]["scenarios"]
    chosen = [s for s in scenarios(data["settings"]["quick"]) if s.name in names]
    docs = None if args.no_docs else args.docs
    for path in write(data, chosen, args.results.parent, docs):
        print(f"wrote {path}")
    return 0


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
