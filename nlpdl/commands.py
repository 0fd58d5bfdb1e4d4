"""What each CLI subcommand does, as plain functions (usable from notebooks and tests)."""

from __future__ import annotations

import re
from pathlib import Path

from nlpdl import config as C
from nlpdl.data.sources import DataError, resolve_data_dir
from nlpdl.parallel import MeshError
from nlpdl.train.checkpoint import CheckpointError
from nlpdl.train.loop import NonFiniteLoss, train as run_training

USER_ERRORS = (C.ConfigError, DataError, MeshError, CheckpointError)  # exit code 2
RUN_ERRORS = (NonFiniteLoss,)  # exit code 1


def list_experiments() -> None:
    for name, exp in C.load_experiments().items():
        variants = ",".join(v for v in exp.variants if v)
        print(f"{name:<24} {exp.description}" + (f"  [variants: {variants}]" if variants else ""))


def resolve(name: str, overrides: list[str]) -> C.ExperimentConfig:
    return C.apply_overrides(C.get(name), overrides)


def show(name: str, overrides: list[str]) -> None:
    print(C.dumps(resolve(name, overrides)))


def default_workdir(name: str, overrides: list[str]) -> Path:
    """runs/NAME, plus the overrides, so each distinct config gets its own dir."""
    suffix = ",".join(overrides)
    label = name.replace(":", "-") + (f",{suffix}" if suffix else "")
    return Path("runs") / re.sub(r"[^A-Za-z0-9_.,=+-]", "_", label)


def train(name: str, overrides: list[str], *, workdir: str | None = None, data_dir: str | None = None,
          allow_config_change: bool = False, progress: bool = True) -> dict:
    cfg = resolve(name, overrides)
    path = Path(workdir) if workdir else default_workdir(name, overrides)
    results = run_training(cfg, path, resolve_data_dir(data_dir), allow_config_change=allow_config_change,
                           progress=progress)
    metric = cfg.train.best_metric
    for split in ("valid", "test"):
        if split in results:
            print(f"{cfg.name}: {split} {metric} {results[split][metric]:.4f} "
                  f"(best valid at step {results['best_step']}; run dir {path})")
    return results
