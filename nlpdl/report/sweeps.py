"""A sweep dir read back: seeds pooled per grid point, mean ± std per split and metric, report.md and figures."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlpdl.files import atomic_write_text
from nlpdl.report import plots
from nlpdl.report.runs import is_number, read_results

Stats = dict[str, dict[str, tuple[float, float]]]  # split -> metric -> (mean, std)
SPLIT_ORDER = ("train", "valid", "test")


@dataclass(frozen=True)
class GroupSummary:
    """The seeds of one grid point: `n` of them finished, `missing` names those without results.json."""
    values: dict[str, str]
    n: int
    missing: tuple[str, ...]
    stats: Stats
    points: tuple[str, ...]  # run subdir names, finished or not

    @property
    def total(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class SweepSummary:
    sweep_dir: Path
    experiment: str
    base_overrides: tuple[str, ...]
    axes: dict[str, list]  # axis -> its values, in sweep order
    seeds: tuple[int, ...]
    metric: str
    mode: str  # "max" or "min": which way the headline metric is better
    groups: tuple[GroupSummary, ...]
    pooled: dict[str, list] = field(default_factory=dict)  # axes averaged over like seeds (CV folds)
    seed_keys: tuple[str, ...] = ("train.seed",)  # the config keys each seed set

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(name for g in self.groups for name in g.missing)

    @property
    def splits(self) -> list[str]:
        """Splits present in any group's results: train, valid, test first, then the rest by name."""
        present = {split for g in self.groups for split in g.stats}
        return sorted(present, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))

    @property
    def headline_split(self) -> str:
        """The split plotted: test when any group has it, else valid."""
        return "test" if any(self.metric in g.stats.get("test", {}) for g in self.groups) else "valid"

    @property
    def selection_split(self) -> str:
        """The split the best group is chosen on: valid when any group has it (never select on test)."""
        return "valid" if any(self.metric in g.stats.get("valid", {}) for g in self.groups) else "test"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0.0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def pool(results: Sequence[dict]) -> Stats:
    """Seeds' results.json pooled: split -> metric -> (mean, std) over the seeds that report it."""
    values: dict[str, dict[str, list[float]]] = {}
    for result in results:
        for split, metrics in result.items():
            if isinstance(metrics, dict):  # skips top-level scalars such as best_step
                for metric, value in metrics.items():
                    if is_number(value):
                        values.setdefault(split, {}).setdefault(metric, []).append(float(value))
    return {split: {m: mean_std(v) for m, v in metrics.items()} for split, metrics in values.items()}


def summarize_sweep(sweep_dir: Path) -> SweepSummary:
    """Groups the points of sweep.json by their axis values (seeds pooled) and summarizes their results."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep dir: it has no sweep.json")
    sweep = json.loads(path.read_text())
    points = sweep["points"]
    axes = sweep["axes"] if "axes" in sweep else {a: [] for a in (points[0]["values"] if points else {})}
    mode = sweep.get("mode", "max")
    if mode not in ("max", "min"):
        raise ValueError(f"{path}: mode must be 'max' or 'min', not {mode!r}")

    by_key: dict[tuple, list[dict]] = {}
    for point in points:
        by_key.setdefault(tuple(str(point["values"][a]) for a in axes), []).append(point)
    groups = []
    for key, members in by_key.items():
        names = tuple(p["name"] for p in members)
        results = {name: read_results(sweep_dir / name) for name in names}
        finished = [r for r in results.values() if r is not None]
        groups.append(GroupSummary(values=dict(zip(axes, key)), n=len(finished),
                                   missing=tuple(name for name, r in results.items() if r is None),
                                   stats=pool(finished), points=names))
    return SweepSummary(
        sweep_dir=sweep_dir, experiment=sweep.get("experiment", sweep_dir.name),
        base_overrides=tuple(sweep.get("base_overrides", ())), axes=dict(axes),
        seeds=tuple(sweep.get("seeds") or sorted({p["seed"] for p in points})),
        metric=sweep.get("metric", "accuracy"), mode=mode, groups=tuple(groups), pooled=sweep.get("pooled", {}),
        seed_keys=tuple(sweep.get("seed_keys", ("train.seed",))))


def best_groups(summary: SweepSummary) -> list[int]:
    """Indices of the groups with the best headline mean (all of them on a tie); non-finite means never win."""
    split, metric = summary.selection_split, summary.metric
    means = {i: g.stats[split][metric][0] for i, g in enumerate(summary.groups)
             if metric in g.stats.get(split, {}) and math.isfinite(g.stats[split][metric][0])}
    if not means:
        return []
    best = (max if summary.mode == "max" else min)(means.values())
    return [i for i, m in means.items() if m == best]


def cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def fmt(stat: tuple[float, float] | None) -> str:
    return f"{stat[0]:.4f} ± {stat[1]:.4f}" if stat else "–"


def table_columns(summary: SweepSummary) -> list[tuple[str, str]]:
    """(split, metric) per result column: the headline metric, then loss, for valid and test (where present)."""
    splits = [s for s in ("valid", "test") if s in summary.splits]
    metrics = list(dict.fromkeys([summary.metric, "loss"]))
    return [(split, metric) for split in splits for metric in metrics]


def render_report(summary: SweepSummary, figures: Sequence[Path] = ()) -> str:
    """report.md: what was swept, one table row per group (best in bold), missing points, figures."""
    axes, columns, best = list(summary.axes), table_columns(summary), set(best_groups(summary))
    finished = sum(g.n for g in summary.groups)
    total = sum(g.total for g in summary.groups)
    overrides = ", ".join(f"`{o}`" for o in summary.base_overrides) or "none"
    lines = [
        f"# Sweep report: {summary.experiment}", "",
        f"- base overrides: {overrides}",
        "- axes: " + (", ".join(f"`{a}` ({', '.join(map(str, v))})" for a, v in summary.axes.items()) or "none"),
        f"- seeds: {', '.join(map(str, summary.seeds))} (each sets {', '.join(f'`{k}`' for k in summary.seed_keys)})",
        *(f"- pooled like seeds: `{a}` ({', '.join(map(str, v))})" for a, v in summary.pooled.items()),
        (f"- best row in bold: {summary.metric} on {summary.selection_split} ({summary.mode} is better); "
         f"cells are mean ± sample std over finished runs (seeds{' and pooled axes' if summary.pooled else ''})"),
        f"- finished runs: {finished}/{total}", "",
        "| " + " | ".join([*map(cell, axes), "runs" if summary.pooled else "seeds",
                           *(f"{s} {m}" for s, m in columns)]) + " |",
        "|" + "---|" * (len(axes) + 1 + len(columns)),
    ]
    for i, g in enumerate(summary.groups):
        cells = [*(cell(g.values[a]) for a in axes), f"{g.n}/{g.total}",
                 *(fmt(g.stats.get(s, {}).get(m)) for s, m in columns)]
        if i in best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if summary.missing:
        lines += ["", f"Missing ({len(summary.missing)}, no results.json): "
                  + ", ".join(f"`{name}`" for name in summary.missing)]
    for figure in figures:
        lines += ["", f"![{figure.stem}]({figure.name})"]
    return "\n".join(lines) + "\n"


def write_report(sweep_dir: Path) -> list[Path]:
    """Writes <metric>.png, curves.png (when there is something to plot) and report.md; returns their paths."""
    summary = summarize_sweep(sweep_dir)
    figure_name = re.sub(r"[^\w.-]", "_", summary.metric) + ".png"
    figures = [f for f in (plots.plot_sweep_bars(summary, summary.sweep_dir / figure_name),
                           plots.plot_sweep_curves(summary, summary.sweep_dir / "curves.png")) if f is not None]
    report = summary.sweep_dir / "report.md"
    atomic_write_text(report, render_report(summary, figures))
    return [*figures, report]
