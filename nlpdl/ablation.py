"""An architecture ablation: the same dataset's experiment for each model family, each trained over several
seeds (as a sweep, so finished seeds are skipped and interrupted ones resume), then one table and one bar chart:
test accuracy mean ± std, parameters, training time.

    nlpdl ablate sst2 --seeds 3   ->   runs/ablations/sst2/{sst2_ffn,sst2_cnn,...}/seed=K/, ablation.md, ablation.png
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nlpdl import config as C
from nlpdl import sweeps
from nlpdl.files import atomic_write_text
from nlpdl.report.sweeps import fmt, mean_std, summarize_sweep

MODELS = ("ffn", "cnn", "lstm", "gru", "bilstm", "transformer")


def experiments(dataset: str, models: tuple[str, ...], variant: str) -> list[str]:
    """`{dataset}_{model}[:variant]` for each model; unknown names fail before anything runs."""
    names = [f"{dataset}_{m}" + (f":{variant}" if variant else "") for m in models]
    for name in names:
        C.get(name)
    return names


def _timing(run_dir: Path) -> float | None:
    path = run_dir / "timing.json"
    return json.loads(path.read_text())["train_seconds"] if path.is_file() else None


def summarize(out_dir: Path, names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        sweep_dir = out_dir / sweeps.safe_name(name)
        summary = summarize_sweep(sweep_dir)
        (group,) = summary.groups
        finished = [sweep_dir / p for p in group.points if (sweep_dir / p / "results.json").is_file()]
        params = {json.loads((d / "results.json").read_text()).get("num_params") for d in finished}
        seconds = [s for s in map(_timing, finished) if s is not None]
        rows.append({"experiment": name, "runs": f"{group.n}/{group.total}",
                     "test": group.stats.get("test", {}).get("accuracy"),
                     "valid": group.stats.get("valid", {}).get("accuracy"),
                     "params": params.pop() if len(params) == 1 else None,
                     "seconds": mean_std(seconds) if seconds else None})
    return rows


def render(dataset: str, rows: list[dict], overrides: list[str], figure: str,
           seed_keys: tuple[str, ...] = C.Sweep.seed_keys) -> str:
    lines = [f"# Architecture ablation on {dataset}", "",
             f"- overrides: {', '.join(f'`{o}`' for o in overrides) or 'none'}",
             f"- seeds: each sets {', '.join(f'`{k}`' for k in seed_keys)}",
             "- accuracy: mean ± sample std over seeds, of each run's best-on-valid parameters; training time: "
             "wall seconds of the training loop (evaluations included), mean ± std", "",
             "| experiment | runs | test accuracy | valid accuracy | parameters | training time (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else "-"
        seconds = f"{r['seconds'][0]:.0f} ± {r['seconds'][1]:.0f}" if r["seconds"] else "-"
        lines.append(f"| {r['experiment']} | {r['runs']} | {fmt(r['test'])} | {fmt(r['valid'])} | {params} | "
                     f"{seconds} |")
    return "\n".join(lines + ["", f"![test accuracy]({figure})"]) + "\n"


def plot(dataset: str, rows: list[dict], out: Path) -> Path:
    from nlpdl.report.plots import colors, plt, save

    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 3, 4.5), layout="constrained")
    means = [r["test"][0] if r["test"] else np.nan for r in rows]
    stds = [r["test"][1] if r["test"] else 0.0 for r in rows]
    ax.bar(np.arange(len(rows)), means, 0.7, yerr=stds, capsize=4, color=colors(len(rows)))
    ax.set_xticks(np.arange(len(rows)), [r["experiment"].split(":")[0] for r in rows], rotation=20)
    finite = [m for m in means if np.isfinite(m)]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 0.1), min(1.0, max(finite) + 0.05))
    ax.set(ylabel="test accuracy", title=f"{dataset}: test accuracy, mean ± std over seeds")
    ax.grid(axis="y", alpha=0.3)
    return save(fig, out)


def run_ablation(dataset: str, out_dir: Path, data_dir: Path, *, seeds: int = 3, models: tuple[str, ...] = MODELS,
                 variant: str = "", overrides: list[str] = (), progress: bool = True,
                 seed_keys: tuple[str, ...] = C.Sweep.seed_keys) -> list[Path]:
    names = experiments(dataset, models, variant)
    sweep = C.Sweep(seeds=seeds, overrides=tuple(overrides), seed_keys=seed_keys)
    for name in names:
        sweeps.plan(name, sweep)  # a bad override fails before anything trains
    for name in names:
        print(f"== {name}")
        sweeps.run_sweep(name, sweep, out_dir / sweeps.safe_name(name), data_dir, progress=progress)
    rows = summarize(out_dir, names)
    figure = plot(dataset, rows, out_dir / "ablation.png")
    report = out_dir / "ablation.md"
    atomic_write_text(report, render(dataset, rows, list(overrides), figure.name, seed_keys))
    return [figure, report]
