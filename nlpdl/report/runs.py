"""A run dir read back: its metric records, its final results, and curves drawn from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of metrics.jsonl; blank lines and lines that do not parse are skipped."""
    records = []
    # errors="replace": a run killed mid-write can leave half a multi-byte character on the last line
    for line in (Path(run_dir) / "metrics.jsonl").read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record and "split" in record:
            records.append(record)
    return records


def read_results(run_dir: Path) -> dict | None:
    """results.json, or None while the run has not finished."""
    path = Path(run_dir) / "results.json"
    return json.loads(path.read_text()) if path.is_file() else None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def curves(records: Sequence[dict], split: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `metric` on `split`, sorted by step; records lacking the metric are skipped."""
    points = sorted(((r["step"], r[metric]) for r in records
                     if r.get("split") == split and is_number(r.get(metric))), key=lambda p: p[0])
    return (np.array([p[0] for p in points], dtype=np.int64),
            np.array([p[1] for p in points], dtype=np.float64))


def mean_curve(runs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(steps, mean, std) over runs; std (ddof=1) only when 2+ runs share exactly the same steps.

    Runs that do not align (one was killed early) are averaged step by step over the runs that reached it.
    """
    if not runs:
        raise ValueError("mean_curve needs at least one curve")
    if all(np.array_equal(runs[0][0], steps) for steps, _ in runs):
        stacked = np.stack([values for _, values in runs])
        std = stacked.std(axis=0, ddof=1) if len(runs) > 1 else None
        return runs[0][0], stacked.mean(axis=0), std
    steps = np.unique(np.concatenate([s for s, _ in runs]))
    table = np.full((len(runs), len(steps)), np.nan)
    for row, (s, values) in zip(table, runs):
        row[np.searchsorted(steps, s)] = values
    return steps, np.nanmean(table, axis=0), None
