"""A run's work dir: config.json, metrics.jsonl, results.json, environment.jsonl, tokenizer files, checkpoints.

Nothing in it is overwritten silently: a different config is refused unless the user allows the change,
and then the old config is kept beside the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nlpdl import config as C
from nlpdl.files import atomic_write_text
from nlpdl.report.runs import read_metrics


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def _with_defaults(saved: dict) -> dict:
    """A saved config with the keys it predates at their defaults (a key added later leaves runs saved before it
    unchanged by defaulting to their behaviour); as saved when this nlpdl cannot read it."""
    try:
        return C.to_dict(C.from_dict(C.ExperimentConfig, saved))
    except (C.ConfigError, ValueError, TypeError, KeyError):
        return saved


class RunDir:
    """`writer`: whether this process writes (in a multi-process run only process 0 does; the others read)."""

    def __init__(self, path: Path, writer: bool = True):
        self.path = path
        self.writer = writer
        self.config_path = path / "config.json"
        self.metrics_path = path / "metrics.jsonl"
        self.results_path = path / "results.json"
        self._tb = None
        self._tb_purge_step: int | None = None

    def read_config(self) -> C.ExperimentConfig:
        if not self.config_path.is_file():
            raise C.ConfigError(f"{self.path} is not a run dir (no config.json); pass a dir `nlpdl train` wrote.")
        try:
            cfg = C.from_dict(C.ExperimentConfig, json.loads(self.config_path.read_text()))
            C.validate(cfg)
        except (C.ConfigError, ValueError, TypeError, KeyError) as e:
            raise C.ConfigError(f"{self.config_path} is not a config this nlpdl can use ({e}).") from None
        return cfg

    def check_config(self, cfg: C.ExperimentConfig, allow_config_change: bool = False) -> None:
        """Refuses a dir that holds another config (unless allowed) or files that are not an nlpdl run."""
        if self.config_path.exists():
            diff = _differences(_with_defaults(json.loads(self.config_path.read_text())), C.to_dict(cfg))
            if diff and not allow_config_change:
                raise C.ConfigError(
                    f"work dir {self.path} holds a run with a different config ({'; '.join(diff[:5])}). "
                    f"Use another --workdir, or pass --allow-config-change to continue this run with the new "
                    f"config (the old one is kept as config.N.json).")
        elif self.path.exists() and any(self.path.iterdir()):
            raise C.ConfigError(f"{self.path} is not empty and holds no nlpdl run (no config.json); "
                                f"choose an empty or new --workdir.")

    def write_config(self, cfg: C.ExperimentConfig) -> None:
        """Writes config.json; a different one already there is kept as config.N.json."""
        text = C.dumps(cfg) + "\n"
        if not self.writer:
            return
        if self.config_path.exists():
            if json.loads(self.config_path.read_text()) == C.to_dict(cfg):
                return
            n = 1
            while (self.path / f"config.{n}.json").exists():
                n += 1
            os.replace(self.config_path, self.path / f"config.{n}.json")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, text)

    def save_artifacts(self, artifacts: dict[str, Any]) -> None:
        """Tokenizer files and the like, written once (they are derived from the config and the data)."""
        for name, obj in artifacts.items():
            if self.writer and not (self.path / name).exists():
                obj.save(self.path / name)

    def truncate_metrics(self, step: int) -> None:
        """Keeps the records up to `step`; a resumed run writes the later ones again, identically.

        TensorBoard events after `step` are purged the same way when the writer opens.
        """
        self._tb_purge_step = step + 1
        if not self.writer:
            return
        kept = [r for r in read_metrics(self.path) if r["step"] <= step] if self.metrics_path.exists() else []
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def log(self, record: dict) -> None:
        if not self.writer:
            return
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        self._log_tensorboard(record)

    def _log_tensorboard(self, record: dict) -> None:
        if self._tb is None:
            from tensorboardX import SummaryWriter  # only runs that log pay for the import

            self._tb = SummaryWriter(str(self.path / "tb"), purge_step=self._tb_purge_step,
                                     flush_secs=30)
        for key, value in record.items():
            if key not in ("step", "split") and isinstance(value, (int, float)):
                self._tb.add_scalar(f"{record['split']}/{key}", value, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def record_environment(self, record: dict) -> None:
        """Appends one invocation's environment (train/environment.py) to environment.jsonl; earlier lines stay."""
        if self.writer:
            with (self.path / "environment.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")

    def read_train_seconds(self) -> float:
        """Training wall time of the earlier invocations of this run (0 for a new run)."""
        path = self.path / "timing.json"
        return float(json.loads(path.read_text())["train_seconds"]) if path.is_file() else 0.0

    def write_train_seconds(self, seconds: float) -> None:
        """Kept out of results.json, which a resumed run writes bit for bit as an uninterrupted one would."""
        if self.writer:
            atomic_write_text(self.path / "timing.json", json.dumps({"train_seconds": seconds}) + "\n")

    def write_results(self, results: dict) -> None:
        if not self.writer:
            return
        atomic_write_text(self.results_path, json.dumps(results, indent=2) + "\n")
