"""Sweeps: an ablation declared as data, expanded into points, each trained into its own work dir.

A sweep dir holds `sweep.json` (what was asked) and one run dir per point, named from its overrides. A point
with results.json is finished and skipped on a re-run; an interrupted one resumes from its checkpoints.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from nlpdl import config as C
from nlpdl.files import atomic_write_text
from nlpdl.tasks import get_task


@dataclass(frozen=True)
class Point:
    values: dict[str, str]  # axis -> value, in axis order
    seed: int
    seed_keys: tuple[str, ...] = ("train.seed",)  # each set to `seed`

    @property
    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.values.items()] + [f"{k}={self.seed}" for k in self.seed_keys]

    @property
    def name(self) -> str:
        return safe_name(",".join([f"{k}={v}" for k, v in self.values.items()] + [f"seed={self.seed}"]))


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", label)


def parse_axes(items: list[str], flag: str) -> dict[str, tuple[str, ...]]:
    """["model.cell=lstm,gru", ...] -> {"model.cell": ("lstm", "gru")}."""
    axes = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise C.ConfigError(f"{flag} {item!r} is not of the form key.path=v1,v2,...")
        axes[key.strip()] = tuple(v.strip() for v in values.split(",") if v.strip())
    return axes


def expand(sweep: C.Sweep) -> list[Point]:
    lengths = {len(v) for v in sweep.zip.values()}
    if len(lengths) > 1:
        raise C.ConfigError(f"zipped axes need equal lengths, got { {k: len(v) for k, v in sweep.zip.items()} }.")
    zipped = [dict(zip(sweep.zip, vs)) for vs in zip(*sweep.zip.values())] or [{}]
    product = [dict(zip(sweep.grid, vs)) for vs in itertools.product(*sweep.grid.values())]
    pooled = [dict(zip(sweep.pooled, vs)) for vs in itertools.product(*sweep.pooled.values())]
    return [Point({**g, **z, **p}, seed, sweep.seed_keys) for g in product for z in zipped for p in pooled
            for seed in range(sweep.seeds)]


def parse_seed_keys(text: str | None, sweep: C.Sweep) -> tuple[str, ...]:
    """"train.seed,data.seed" -> ("train.seed", "data.seed"); None keeps the sweep's own."""
    if text is None:
        return sweep.seed_keys
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys or len(set(keys)) != len(keys):
        raise C.ConfigError(f"--seed-keys {text!r} needs one or more distinct keys, e.g. train.seed,data.seed.")
    not_seeds = [k for k in keys if not k.endswith("seed")]
    if not_seeds:
        raise C.ConfigError(f"--seed-keys takes seeds (train.seed, data.seed, data.split_seed), not "
                            f"{', '.join(not_seeds)}: sweep other keys with --grid.")
    swept = set(keys) & {*sweep.grid, *sweep.zip, *sweep.pooled}
    if swept:
        raise C.ConfigError(f"{', '.join(sorted(swept))} is both an axis and a seed key: drop it from one.")
    return keys


def resolve_sweep(spec: str, declared: str | None, grid: list[str], zipped: list[str], seeds: int | None,
                  overrides: list[str], seed_keys: str | None = None) -> C.Sweep:
    """A declared sweep of the experiment, extended or replaced by command-line axes."""
    base = C.Sweep()
    if declared:
        exp = C.experiment(spec)
        if declared not in exp.sweeps:
            known = ", ".join(exp.sweeps) or "none"
            raise C.ConfigError(f"experiment {exp.name!r} declares no sweep {declared!r} (declared: {known}).")
        base = exp.sweeps[declared]
    sweep = C.Sweep(grid={**base.grid, **parse_axes(grid, "--grid")}, zip={**base.zip, **parse_axes(zipped, "--zip")},
                    pooled=dict(base.pooled), seeds=seeds or base.seeds,
                    overrides=tuple(base.overrides) + tuple(overrides), seed_keys=base.seed_keys)
    sweep = dataclasses.replace(sweep, seed_keys=parse_seed_keys(seed_keys, sweep))
    if not sweep.grid and not sweep.zip and not sweep.pooled and sweep.seeds < 2:
        raise C.ConfigError("a sweep needs at least one --grid or --zip axis, a declared --sweep, or --seeds >= 2.")
    return sweep


def default_sweep_dir(spec: str, declared: str | None, sweep: C.Sweep) -> Path:
    label = declared or "+".join([*sweep.grid, *sweep.zip, *sweep.pooled]) or "seeds"
    if sweep.seed_keys != C.Sweep.seed_keys:
        label += "-seeding=" + "+".join(sweep.seed_keys)
    return Path("runs") / "sweeps" / safe_name(",".join([spec.replace(":", "-"), *sweep.overrides]) + "-" + label)


def plan(spec: str, sweep: C.Sweep) -> list[tuple[Point, C.ExperimentConfig]]:
    """Every point's config, resolved up front: a bad key or value fails before anything runs."""
    base = C.apply_overrides(C.get(spec), list(sweep.overrides))
    return [(p, C.apply_overrides(base, p.overrides)) for p in expand(sweep)]


def emit_lines(spec: str, sweep: C.Sweep, sweep_dir: Path) -> list[str]:
    """One `nlpdl train` line per point; writes only sweep.json, so `nlpdl report` reads the runs once they finish."""
    points = plan(spec, sweep)
    write_manifest(spec, sweep, sweep_dir, points)
    return [shlex.join(["nlpdl", "train", spec, *sweep.overrides, *p.overrides, "--workdir", str(sweep_dir / p.name)])
            for p, _ in points]


def write_manifest(spec: str, sweep: C.Sweep, sweep_dir: Path, points: list[tuple[Point, C.ExperimentConfig]]):
    cfg = points[0][1]
    manifest = {"experiment": spec, "base_overrides": list(sweep.overrides),
                "axes": {k: list(v) for k, v in {**sweep.grid, **sweep.zip}.items()},
                "pooled": {k: list(v) for k, v in sweep.pooled.items()}, "seeds": list(range(sweep.seeds)),
                "seed_keys": list(sweep.seed_keys),
                "points": [{"name": p.name, "values": p.values, "seed": p.seed} for p, _ in points],
                "metric": cfg.train.best_metric, "mode": cfg.train.best_mode}
    path = sweep_dir / "sweep.json"
    if path.exists() and {"seed_keys": list(C.Sweep.seed_keys), **json.loads(path.read_text())} != manifest:
        raise C.ConfigError(f"{sweep_dir} holds a different sweep; choose another --sweep-dir.")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


def run_sweep(spec: str, sweep: C.Sweep, sweep_dir: Path, data_dir: Path, *, progress: bool = True) -> list[Path]:
    """Trains every unfinished point, then writes the report; returns the report's files."""
    from nlpdl.report.sweeps import write_report
    from nlpdl.train.loop import train

    points = plan(spec, sweep)
    first = points[0][1]
    get_task(first.task.name).load_data(first, data_dir)  # missing or bad data fails before anything is written
    write_manifest(spec, sweep, sweep_dir, points)
    for i, (point, cfg) in enumerate(points, 1):
        workdir = sweep_dir / point.name
        if (workdir / "results.json").exists():
            print(f"[{i}/{len(points)}] {point.name}: finished, skipped")
            continue
        print(f"[{i}/{len(points)}] {point.name}")
        train(cfg, workdir, data_dir, progress=progress)
    return write_report(sweep_dir)
