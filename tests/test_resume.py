"""Runs survive damage: a corrupt latest checkpoint falls back to the previous one; kills at random moments
(during saves too) resume bit-exact."""

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import DATA, checkpoint_state

from nlpdl import config as C
from nlpdl.train.checkpoint import DamagedCheckpointWarning
from nlpdl.train.loop import train

# pytest-xdist: its damage tests share one finished run: one worker builds it
pytestmark = pytest.mark.xdist_group("resume")


def _checkpoint(workdir: Path, step: int):
    return checkpoint_state(workdir, step)[1]


def _assert_same_run(a: Path, b: Path, step: int) -> None:
    for x, y in zip(jax.tree.leaves(_checkpoint(a, step)), jax.tree.leaves(_checkpoint(b, step)), strict=True):
        assert np.array_equal(x, y)
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    assert json.loads((a / "results.json").read_text()) == json.loads((b / "results.json").read_text())


def _truncate_arrays(step_dir: Path) -> None:
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _garble_metadata(step_dir: Path) -> None:
    (step_dir / "state" / "_METADATA").write_text("{not json")


def _garble_iterator(step_dir: Path) -> None:
    for f in (step_dir / "data").rglob("*"):
        if f.is_file():
            f.write_text("\x00garbage")


DAMAGE_CFG = ["train.steps=20", "train.checkpoint_every=5", "model.dropout=0.2"]


@pytest.fixture(scope="module")
def finished_xor_run(tmp_path_factory) -> Path:
    """One finished tiny run: the reference each damage is compared with, and (copied) the run to damage."""
    run = tmp_path_factory.mktemp("xor") / "reference"
    train(C.apply_overrides(C.get("xor:tiny"), DAMAGE_CFG), run, DATA, progress=False)
    return run


@pytest.mark.parametrize("damage", [_truncate_arrays, _garble_metadata, _garble_iterator])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(data_dir, tmp_path, damage, finished_xor_run):
    cfg = C.apply_overrides(C.get("xor:tiny"), DAMAGE_CFG)
    shutil.copytree(finished_xor_run, tmp_path / "reference")
    shutil.copytree(finished_xor_run, tmp_path / "damaged")
    damage(tmp_path / "damaged" / "checkpoints" / "20")
    with pytest.warns(DamagedCheckpointWarning, match=r"checkpoints/20 is damaged.*damaged/checkpoint-20"):
        train(cfg, tmp_path / "damaged", data_dir, progress=False)
    assert (tmp_path / "damaged" / "damaged" / "checkpoint-20").is_dir()  # set aside, not deleted
    _assert_same_run(tmp_path / "reference", tmp_path / "damaged", 20)


def _saving(workdir: Path) -> bool:
    return any(".orbax-checkpoint-tmp" in p.name for p in (workdir / "checkpoints").glob("*"))


def test_a_killed_run_keeps_its_training_time_up_to_its_last_checkpoint(data_dir, tmp_path):
    overrides = ["train.steps=400", "train.checkpoint_every=8", "train.eval_every=100", "train.log_every=8"]
    args = [sys.executable, "-m", "nlpdl.cli", "train", "mr_ffn:tiny", *overrides, "--workdir", str(tmp_path),
            "--data-dir", str(data_dir), "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(p.name.isdigit() for p in (tmp_path / "checkpoints").glob("*")):  # a complete checkpoint
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:] if proc.stderr else ""
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded = json.loads((tmp_path / "timing.json").read_text())["train_seconds"]
    assert recorded > 0
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)  # resumed to the end
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "timing.json").read_text())["train_seconds"] > recorded


def test_runs_killed_at_ten_random_moments_resume_bit_exact(data_dir, tmp_path):
    overrides = ["train.steps=400", "train.checkpoint_every=8", "train.eval_every=100", "train.log_every=4",
                 "model.dropout=0.3"]
    reference = tmp_path / "reference"
    train(C.apply_overrides(C.get("mr_ffn:tiny"), overrides), reference, data_dir, progress=False)

    rng = random.Random(7)
    kills = during_save = 0
    finished: list[Path] = []
    workdir = tmp_path / "run0"
    while kills < 10:
        args = [sys.executable, "-m", "nlpdl.cli", "train", "mr_ffn:tiny", *overrides, "--workdir", str(workdir),
                "--data-dir", str(data_dir), "--no-progress"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + (30 if kills % 3 == 2 else rng.uniform(1.5, 8.0))
        while time.time() < deadline and proc.poll() is None:
            if kills % 3 == 2 and _saving(workdir):  # every third kill lands inside an async save
                break
            time.sleep(0.002)
        if proc.poll() is None:
            during_save += _saving(workdir)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()[-3000:]
        finished.append(workdir)
        workdir = tmp_path / f"run{len(finished)}"
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)  # finish the last one
    assert proc.returncode == 0, proc.stderr[-3000:]
    finished.append(workdir)
    assert during_save >= 3
    for run in finished:
        _assert_same_run(reference, run, 400)


def test_two_runs_with_the_same_seed_log_identical_metrics(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("mr_ffn:tiny"), ["model.dropout=0.3"])
    for name in ("a", "b"):
        train(cfg, tmp_path / name, data_dir, progress=False)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
    other = C.apply_overrides(cfg, ["train.seed=1"])
    train(other, tmp_path / "c", data_dir, progress=False)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() != (tmp_path / "c" / "metrics.jsonl").read_text()
