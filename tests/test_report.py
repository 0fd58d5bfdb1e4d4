"""nlpdl.report on synthetic run and sweep dirs with known numbers."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nlpdl.report.plots import plot_runs
from nlpdl.report.runs import curves, mean_curve, read_metrics, read_results
from nlpdl.report.sweeps import best_groups, summarize_sweep, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRUNCATED = '{"step": 30, "split": "train", "lo'

# (activation, lr, seed) -> (valid accuracy, valid loss, test accuracy, test loss); dyadic, so means are exact
RESULTS = {
    ("relu", "0.01", 0): (0.5, 0.75, 0.75, 0.5), ("relu", "0.01", 1): (0.75, 0.5, 0.75, 0.25),
    ("relu", "0.1", 0): (0.875, 0.25, 0.5, 1.0), ("relu", "0.1", 1): (0.875, 0.25, 0.625, 0.75),
    ("tanh", "0.01", 0): (0.5, 1.0, 0.875, 0.25), ("tanh", "0.01", 1): (0.5, 0.5, 1.0, 0.125),
    ("tanh", "0.1", 0): (0.625, 0.5, 0.625, 0.5),  # seed 1 was killed: no results.json
}
KILLED = "model.activation=tanh,optim.lr=0.1,seed=1"


def write_run(path: Path, records: list[dict], results: dict | None = None, tail: str = "") -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"name": "mr_ffn", "train": {"seed": 0}}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    if results is not None:
        (path / "results.json").write_text(json.dumps(results))
    return path


def records(steps: list[int], seed: int, perplexity: bool = False) -> list[dict]:
    out = []
    for step in steps:
        train = {"step": step, "split": "train", "loss": 1.0 / (step + 1), "accuracy": 0.5 + step / 100,
                 "grad_norm": 0.1, "lr": 0.01}
        valid = {"step": step, "split": "valid", "loss": 1.0 / (step + 2), "accuracy": 0.5 + seed / 10 + step / 200}
        if perplexity:
            train["perplexity"] = valid["perplexity"] = math.exp(train["loss"])
        out += [train, valid]
    return out


def make_sweep(root: Path, with_test: bool = True, metric: str = "accuracy", mode: str = "max") -> Path:
    points = [{"name": f"model.activation={a},optim.lr={lr},seed={s}",
               "values": {"model.activation": a, "optim.lr": lr}, "seed": s}
              for a in ("relu", "tanh") for lr in ("0.01", "0.1") for s in (0, 1)]
    root.mkdir()
    (root / "sweep.json").write_text(json.dumps({
        "experiment": "mr_ffn:tiny", "base_overrides": ["train.steps=40"],
        "axes": {"model.activation": ["relu", "tanh"], "optim.lr": ["0.01", "0.1"]}, "seeds": [0, 1],
        "points": points, "metric": metric, "mode": mode}))
    for p in points:
        key = (p["values"]["model.activation"], p["values"]["optim.lr"], p["seed"])
        if p["name"] == KILLED:
            write_run(root / p["name"], records([0, 10], p["seed"]), tail=TRUNCATED)
            continue
        va, vl, ta, tl = RESULTS[key]
        results = {"best_step": 20, "valid": {"loss": vl, "accuracy": va}}
        if with_test:
            results["test"] = {"loss": tl, "accuracy": ta}
        write_run(root / p["name"], records([0, 10, 20], p["seed"]), results)
    return root


def test_read_metrics_skips_truncated_and_blank_lines(tmp_path):
    run = write_run(tmp_path / "run", records([0, 10], seed=0), tail="\n\n" + TRUNCATED)
    recs = read_metrics(run)
    assert len(recs) == 4 and [r["step"] for r in recs] == [0, 0, 10, 10]
    assert read_results(run) is None
    steps, values = curves(recs, "train", "accuracy")
    np.testing.assert_array_equal(steps, [0, 10])
    np.testing.assert_array_equal(values, [0.5, 0.6])
    assert curves(recs, "valid", "grad_norm")[0].size == 0  # valid records lack it


def test_mean_curve_std_only_when_steps_align():
    a = (np.array([0, 10]), np.array([0.5, 0.75]))
    b = (np.array([0, 10]), np.array([0.75, 1.0]))
    steps, mean, std = mean_curve([a, b])
    np.testing.assert_array_equal(mean, [0.625, 0.875])
    np.testing.assert_array_equal(std, [math.sqrt(0.03125)] * 2)
    steps, mean, std = mean_curve([a, (np.array([0]), np.array([0.25]))])
    np.testing.assert_array_equal(steps, [0, 10])
    np.testing.assert_array_equal(mean, [0.375, 0.75])
    assert std is None


def test_summarize_sweep_exact_stats(tmp_path):
    summary = summarize_sweep(make_sweep(tmp_path / "sweep"))
    assert [g.values for g in summary.groups] == [
        {"model.activation": a, "optim.lr": lr} for a in ("relu", "tanh") for lr in ("0.01", "0.1")]
    relu01, relu1, tanh01, tanh1 = summary.groups
    assert relu01.stats["valid"]["accuracy"] == (0.625, math.sqrt(0.03125))
    assert relu01.stats["valid"]["loss"] == (0.625, math.sqrt(0.03125))
    assert relu01.stats["test"]["accuracy"] == (0.75, 0.0)
    assert relu01.stats["test"]["loss"] == (0.375, math.sqrt(0.03125))
    assert relu1.stats["test"]["loss"] == (0.875, math.sqrt(0.03125))
    assert tanh01.stats["test"]["accuracy"] == (0.9375, math.sqrt(0.0078125))
    assert tanh01.stats["valid"]["loss"] == (0.75, math.sqrt(0.125))
    assert set(relu01.stats) == {"valid", "test"}  # best_step is not a split
    assert (relu01.n, relu01.total, relu01.missing) == (2, 2, ())
    assert (tanh1.n, tanh1.total, tanh1.missing) == (1, 2, (KILLED,))
    assert tanh1.stats["test"]["accuracy"] == (0.625, 0.0)  # a single seed: std 0.0
    assert summary.missing == (KILLED,)
    assert summary.headline_split == "test" and summary.selection_split == "valid"
    assert best_groups(summary) == [1]  # chosen on valid accuracy, never on test


def test_write_report_table_best_row_missing_and_figures(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    paths = write_report(sweep)
    assert paths == [sweep / "accuracy.png", sweep / "curves.png", sweep / "report.md"]
    report = (sweep / "report.md").read_text()
    assert "# Sweep report: mr_ffn:tiny" in report and "`train.steps=40`" in report
    assert ("| model.activation | optim.lr | seeds | valid accuracy | valid loss | test accuracy | test loss |"
            in report)
    assert "| relu | 0.01 | 2/2 | 0.6250 ± 0.1768 | 0.6250 ± 0.1768 | 0.7500 ± 0.0000 | 0.3750 ± 0.1768 |" in report
    # best by valid accuracy, although tanh/0.01 has the best test accuracy
    assert ("| **relu** | **0.1** | **2/2** | **0.8750 ± 0.0000** | **0.2500 ± 0.0000** | **0.5625 ± 0.0884** "
            "| **0.8750 ± 0.1768** |") in report
    assert "| tanh | 0.01 | 2/2 | 0.5000 ± 0.0000 | 0.7500 ± 0.3536 | 0.9375 ± 0.0884 | 0.1875 ± 0.0884 |" in report
    assert "| tanh | 0.1 | 1/2 | 0.6250 ± 0.0000 | 0.5000 ± 0.0000 | 0.6250 ± 0.0000 | 0.5000 ± 0.0000 |" in report
    assert report.count("**") == 2 * 7  # one bold row only
    assert f"Missing (1, no results.json): `{KILLED}`" in report
    assert "![accuracy](accuracy.png)" in report and "![curves](curves.png)" in report
    for png in paths[:2]:
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_report_falls_back_to_valid_and_follows_min_mode(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", with_test=False, metric="loss", mode="min")
    summary = summarize_sweep(sweep)
    assert summary.headline_split == summary.selection_split == "valid" and best_groups(summary) == [1]
    paths = write_report(sweep)
    assert paths[0] == sweep / "loss.png"
    report = (sweep / "report.md").read_text()
    assert "| model.activation | optim.lr | seeds | valid loss |" in report  # loss is the headline: not twice
    assert "| **relu** | **0.1** | **2/2** | **0.2500 ± 0.0000** |" in report
    assert "| tanh | 0.01 | 2/2 | 0.7500 ± 0.3536 |" in report


def test_plot_runs_two_dirs(tmp_path):
    a = write_run(tmp_path / "run_a", records([0, 10, 20], seed=0), tail=TRUNCATED)
    b = write_run(tmp_path / "run_b", records([0, 10, 20, 30], seed=1, perplexity=True))
    out = plot_runs([a, b], tmp_path / "figs" / "runs.png")
    assert out == tmp_path / "figs" / "runs.png"
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert plot_runs([a], tmp_path / "acc.png", metrics=["accuracy"]).read_bytes().startswith(PNG_MAGIC)


def test_plot_runs_errors(tmp_path):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    run = write_run(tmp_path / "run", records([0], seed=0))
    with pytest.raises(ValueError, match="no metrics.jsonl"):
        plot_runs([run, empty], tmp_path / "out.png")
    with pytest.raises(ValueError, match="bleu"):
        plot_runs([run], tmp_path / "out.png", metrics=["bleu"])
    assert not (tmp_path / "out.png").exists()
