"""Figures of runs and sweeps as image files; the Agg backend needs no screen."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nlpdl.files import atomic_write_bytes
from nlpdl.report.runs import curves, mean_curve, read_metrics

if TYPE_CHECKING:
    from nlpdl.report.sweeps import GroupSummary, SweepSummary

DEFAULT_METRICS = ("loss", "accuracy", "perplexity")
SPLIT_STYLES = {"train": "-", "valid": "--", "test": ":"}
LOG_SCALE = {"perplexity"}  # starts near the vocabulary size, ends near 100


def colors(n: int) -> list:
    """n distinct colours: the default cycle while it lasts, then samples of a continuous map."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    return list(plt.get_cmap("turbo")(np.linspace(0.05, 0.95, n)))


def save(fig: Figure, out: Path) -> Path:
    """Writes the figure atomically (format from the suffix, PNG by default) and closes it."""
    out = Path(out)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=out.suffix.lstrip(".").lower() or "png", dpi=120)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out


def run_label(run_dir: Path) -> str:
    return Path(run_dir).resolve().name or str(run_dir)


def plot_runs(run_dirs: Sequence[Path], out: Path, metrics: Sequence[str] | None = None) -> Path:
    """One subplot per metric; train solid, valid dashed, test dotted, one colour per run. Returns `out`."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run dir")
    for d in run_dirs:
        if not (d / "metrics.jsonl").is_file():
            raise ValueError(f"{d} has no metrics.jsonl: not an nlpdl run dir, or the run has logged nothing yet")
    records = [read_metrics(d) for d in run_dirs]
    logged = {key for rs in records for r in rs for key in r}
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in logged]
        if not metrics:
            raise ValueError(f"none of {', '.join(DEFAULT_METRICS)} is logged in {', '.join(map(str, run_dirs))}")
    elif absent := [m for m in metrics if m not in logged]:
        raise ValueError(f"metric(s) {', '.join(absent)} not logged in any of {', '.join(map(str, run_dirs))}")

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.5), squeeze=False, layout="constrained")
    palette = colors(len(run_dirs))
    for ax, metric in zip(axes[0], metrics):
        for color, rs in zip(palette, records):
            for split, style in SPLIT_STYLES.items():
                steps, values = curves(rs, split, metric)
                if len(steps):
                    ax.plot(steps, values, linestyle=style, color=color, marker=_marker(steps), markersize=3)
        ax.set(title=metric, xlabel="step", ylabel=metric)
        if metric in LOG_SCALE:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, label=run_label(d)) for c, d in zip(palette, run_dirs)]
    logged_splits = {r["split"] for rs in records for r in rs}
    handles += [Line2D([], [], color="grey", linestyle=s, label=split) for split, s in SPLIT_STYLES.items()
                if split in logged_splits]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize="small")
    return save(fig, out)


def group_label(values: dict[str, str], axes: Sequence[str]) -> str:
    return ", ".join(f"{a}={values[a]}" for a in axes) or "all"


def headline(group: GroupSummary | None, split: str, metric: str) -> tuple[float, float] | None:
    return group.stats.get(split, {}).get(metric) if group is not None else None


def plot_sweep_bars(summary: SweepSummary, out: Path) -> Path | None:
    """Headline metric (test, else valid) mean ± std: bars grouped by the first axis, one colour per
    combination of the other axes. None (nothing written) when no point has finished."""
    split, metric = summary.headline_split, summary.metric
    if not any(metric in g.stats.get(split, {}) for g in summary.groups):
        return None
    axes = list(summary.axes)
    first, rest = (axes[0], axes[1:]) if axes else (None, [])
    xs = list(dict.fromkeys(g.values[first] for g in summary.groups)) if first else ["all"]
    combos = list(dict.fromkeys(tuple(g.values[a] for a in rest) for g in summary.groups))
    by_key = {tuple(g.values[a] for a in axes) or ("all",): g for g in summary.groups}

    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(xs) * len(combos) + 3), 4.5), layout="constrained")
    width = 0.8 / len(combos)
    for j, (combo, color) in enumerate(zip(combos, colors(len(combos)))):
        stats = [headline(by_key.get((x, *combo)), split, metric) for x in xs]
        means = [s[0] if s else np.nan for s in stats]
        stds = [s[1] if s else 0.0 for s in stats]
        ax.bar(np.arange(len(xs)) + (j - (len(combos) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
               color=color, label=group_label(dict(zip(rest, combo)), rest) if rest else None)
    ax.set_xticks(np.arange(len(xs)), [str(x) for x in xs])
    ax.set(xlabel=first or "", ylabel=f"{split} {metric}", title=f"{split} {metric}: mean ± std over seeds")
    ax.grid(axis="y", alpha=0.3)
    if rest:
        ax.legend(fontsize="small")
    return save(fig, out)


def plot_sweep_curves(summary: SweepSummary, out: Path) -> Path | None:
    """Valid headline metric vs step, mean over seeds per group, ±std shaded where seeds align.
    None (nothing written) when no point has logged it."""
    metric, axes = summary.metric, list(summary.axes)
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    drawn = False
    for group, color in zip(summary.groups, colors(len(summary.groups))):
        runs = [curves(read_metrics(summary.sweep_dir / p), "valid", metric) for p in group.points
                if (summary.sweep_dir / p / "metrics.jsonl").is_file()]
        runs = [r for r in runs if len(r[0])]
        if not runs:
            continue
        steps, mean, std = mean_curve(runs)
        ax.plot(steps, mean, color=color, marker=_marker(steps), markersize=3,
                label=f"{group_label(group.values, axes)} (n={len(runs)})")
        if std is not None:
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xlabel="step", ylabel=f"valid {metric}", title=f"valid {metric}: mean over seeds")
    if metric in LOG_SCALE:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(summary.groups) > 6:  # a long legend would hide the curves
        fig.legend(loc="outside right upper", fontsize="small")
    else:
        ax.legend(fontsize="small")
    return save(fig, out)


def _marker(steps) -> str | None:
    """Dots where points are few (a curve of one or two evaluations would otherwise not show)."""
    return "o" if len(steps) < 30 else None
