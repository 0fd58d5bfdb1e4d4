"""The train step and loop: golden first steps, devices, resume, divergence, work-dir safety."""

import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import checkpoint_state, xla_flags

from nlpdl import config as C
from nlpdl import parallel
from nlpdl.train.checkpoint import CheckpointError, check_shapes
from nlpdl.train.environment import cpu_model
from nlpdl.train.loop import NonFiniteLoss, build_trainer, improves, train

REPO = Path(__file__).resolve().parents[1]

# mr_ffn:tiny, seed 0: mean loss of the first two training batches. If a change alters them on purpose
# (init, data order, tokenisation, a library upgrade), run this test with -s and paste the printed values.
GOLDEN_LOSSES = (0.6942489743232727, 0.6916647553443909)


def _run_cli(args, cwd, env_extra=None, **kw):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "nlpdl.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _records(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _final_state(workdir: Path):
    return checkpoint_state(workdir)


def test_golden_first_steps(data_dir):
    t = build_trainer(C.get("mr_ffn:tiny"), data_dir)
    state, it, losses = t.init_state(), iter(t.data.train), []
    for _ in GOLDEN_LOSSES:
        state, metrics = t.step_fn(state, parallel.put_batch(next(it), t.mesh))
        losses.append(float(metrics["loss_sum"] / metrics["count"]))
    print("GOLDEN_LOSSES =", tuple(losses))
    assert np.allclose(losses, GOLDEN_LOSSES, rtol=1e-5, atol=0), (
        f"first-step losses {tuple(losses)} differ from GOLDEN_LOSSES {GOLDEN_LOSSES}; if the change is "
        f"intended, update GOLDEN_LOSSES in tests/test_train.py to the printed values.")
    assert int(state.step) == 2


def test_step_is_pure_and_keyed_by_step(data_dir):
    """Same state and batch give the same result; dropout keys come from fold_in(rng, step)."""
    cfg = C.apply_overrides(C.get("mr_ffn:tiny"), ["model.dropout=0.5"])
    t = build_trainer(cfg, data_dir)
    batch = parallel.put_batch(next(iter(t.data.train)), t.mesh)
    first = [t.step_fn(t.init_state(), batch) for _ in range(2)]
    assert float(first[0][1]["loss_sum"]) == float(first[1][1]["loss_sum"])
    later = t.init_state().replace(step=np.int32(5))
    assert float(t.step_fn(later, batch)[1]["loss_sum"]) != float(first[0][1]["loss_sum"])


def test_eight_devices_equal_one_device(data_dir, tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, jax
        from pathlib import Path
        from nlpdl import config as C, parallel
        from nlpdl.train.loop import build_trainer
        assert len(jax.devices()) == 8
        results = []
        for n in (1, 8):
            cfg = C.apply_overrides(C.get("mr_ffn:tiny"), ["train.num_devices=%d" % n, "data.batch_size=32",
                                                           "model.dropout=0.5"])  # masks alike under sharding
            t = build_trainer(cfg, Path({str(data_dir)!r}))
            state, it = t.init_state(), iter(t.data.train)
            for _ in range(3):
                batch = parallel.put_batch(next(it), t.mesh)
                assert len(batch["tokens"].sharding.device_set) == n
                state, metrics = t.step_fn(state, batch)
                jax.block_until_ready(state)
            leaf = jax.tree.leaves(state.params)[0]
            assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == n
            results.append((jax.device_get(state.params), float(metrics["loss_sum"]),
                            t.evaluate(state.params, "valid")))
        (p1, l1, e1), (p8, l8, e8) = results
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p1, p8)
        assert abs(l1 - l8) < 1e-4 and abs(e1["loss"] - e8["loss"]) < 1e-5 and e1["accuracy"] == e8["accuracy"]
        print("OK")
    """)
    env = {**os.environ, "XLA_FLAGS": xla_flags("--xla_force_host_platform_device_count=8"), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_tiny_run_learns_writes_its_dir_and_resumes_without_retraining(data_dir, tmp_path):
    cfg = C.get("mr_ffn:tiny")
    results = train(cfg, tmp_path / "run", data_dir, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_losses = [r["loss"] for r in records if r["split"] == "train"]
    assert train_losses[-1] < train_losses[0] - 0.05
    assert results["valid"]["accuracy"] > 0.6 and results["test"]["accuracy"] > 0.6
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == C.to_dict(cfg)
    assert (tmp_path / "run" / "vocab.json").exists()
    again = train(cfg, tmp_path / "run", data_dir, progress=False)
    assert again == results
    assert (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() == [json.dumps(r) for r in records]


def test_eval_test_logs_test_scores_beside_valid_without_changing_training_or_the_choice(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("mr_ffn:tiny"), ["train.steps=40", "model.dropout=0.3"])
    results = train(cfg, tmp_path / "plain", data_dir, progress=False)
    logged = train(C.apply_overrides(cfg, ["train.eval_test=true"]), tmp_path / "logged", data_dir, progress=False)
    plain, records = (_records(tmp_path / d) for d in ("plain", "logged"))
    assert [r for r in records if r["split"] != "test"] == plain
    tests = {r["step"]: r for r in records if r["split"] == "test"}
    assert sorted(tests) == [r["step"] for r in plain if r["split"] == "valid"] == [20, 40]
    assert logged == results
    assert tests[results["best_step"]]["accuracy"] == pytest.approx(results["test"]["accuracy"])


def test_each_invocation_records_its_environment_and_keeps_the_earlier_ones(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("xor:tiny"), ["train.steps=20"])
    train(cfg, tmp_path, data_dir, progress=False)
    train(C.apply_overrides(cfg, ["train.steps=40"]), tmp_path, data_dir, progress=False, allow_config_change=True)
    first, second = [json.loads(line) for line in (tmp_path / "environment.jsonl").read_text().splitlines()]
    assert (first["start_step"], second["start_step"]) == (0, 20)
    assert first["versions"]["jax"] == jax.__version__ and first["device_count"] == jax.device_count()
    assert first["backend"] == jax.default_backend() and first["process_count"] == 1
    assert first["cpu_model"] and first["hostname"] == platform.node()
    if (REPO / ".git").exists():  # run from a checkout: the commit it is at
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        assert first["nlpdl_commit"].removesuffix("+dirty") == head


def test_cpu_model_is_linuxs_model_name_else_platforms(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    cpuinfo.write_text("processor\t: 0\nCPU implementer\t: 0x41\n")  # ARM Linux names no model
    assert cpu_model(cpuinfo) == (platform.processor() or platform.machine())
    assert cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine())


def test_different_config_is_refused_unless_allowed(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("xor:tiny"), ["train.steps=20"])
    train(cfg, tmp_path, data_dir, progress=False)
    changed = C.apply_overrides(cfg, ["train.steps=40"])
    with pytest.raises(C.ConfigError, match=r"train.steps: 20 -> 40.*--allow-config-change"):
        train(changed, tmp_path, data_dir, progress=False)
    train(changed, tmp_path, data_dir, progress=False, allow_config_change=True)
    assert json.loads((tmp_path / "config.1.json").read_text())["train"]["steps"] == 20
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 40
    assert _final_state(tmp_path)[0] == 40


def test_a_run_saved_before_a_config_key_existed_resumes_with_its_default(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("xor:tiny"), ["train.steps=20"])
    train(cfg, tmp_path, data_dir, progress=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["data"]["clean"]  # as nlpdl wrote it before data.clean existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(C.ConfigError, match=r"data.clean: 'none' -> 'kim'"):
        train(C.apply_overrides(cfg, ["data.clean=kim"]), tmp_path, data_dir, progress=False)
    train(cfg, tmp_path, data_dir, progress=False)  # the same run: no --allow-config-change needed
    assert _final_state(tmp_path)[0] == 20
    assert json.loads((tmp_path / "config.1.json").read_text()) == saved  # the old file is kept as it was
    assert json.loads((tmp_path / "config.json").read_text()) == C.to_dict(cfg)


def test_best_on_valid_replaces_on_a_better_score_and_on_a_tie_only_when_told():
    assert improves(0.7, None, "max", "first") and improves(0.7, float("nan"), "max", "first")
    assert improves(0.8, 0.7, "max", "first") and not improves(0.6, 0.7, "max", "last")
    assert improves(2.0, 3.0, "min", "first") and not improves(4.0, 3.0, "min", "last")
    assert not improves(0.7, 0.7, "max", "first") and improves(0.7, 0.7, "max", "last")
    assert not improves(float("nan"), 0.7, "max", "last")


def test_foreign_nonempty_dir_is_refused(data_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(C.ConfigError, match="holds no nlpdl run"):
        train(C.get("xor:tiny"), tmp_path, data_dir, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_non_finite_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("xor:tiny"), ["optim.lr=1e30", "train.checkpoint_every=1", "train.log_every=1",
                                                "model.init=normal"])
    with pytest.raises(NonFiniteLoss, match=r"non-finite at step (\d+).*checkpoint \(step (\d+)\)") as err:
        train(cfg, tmp_path, data_dir, progress=False)
    import re
    bad, kept = map(int, re.search(r"step (\d+).*step (\d+)", str(err.value)).groups())
    assert kept == bad - 1
    step, state = _final_state(tmp_path)
    assert step == kept and all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))


def test_sigkilled_run_resumes_bitwise_equal(data_dir, tmp_path):
    overrides = ["train.steps=600", "train.checkpoint_every=50", "train.eval_every=150", "model.dropout=0.3"]
    reference = tmp_path / "reference"
    train(C.apply_overrides(C.get("mr_ffn:tiny"), overrides), reference, data_dir, progress=False)

    killed = tmp_path / "killed"
    args = ["train", "mr_ffn:tiny", *overrides, "--workdir", str(killed), "--data-dir", str(data_dir), "--no-progress"]
    proc = _run_cli(args, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = [int(p.name) for p in (killed / "checkpoints").glob("*") if p.name.isdigit()]
        if done and max(done) >= 200:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; give it more steps"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = _run_cli(args, cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed" in out

    (ref_step, ref), (step, state) = _final_state(reference), _final_state(killed)
    assert ref_step == step == 600
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(state), strict=True):
        assert np.array_equal(a, b)
    assert (killed / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    assert json.loads((killed / "results.json").read_text()) == json.loads((reference / "results.json").read_text())


def test_how_often_a_run_evaluates_leaves_what_it_trains_unchanged(data_dir, tmp_path):
    """Evaluation draws no key and reads no training batch: scoring valid and test every 7 steps trains the same
    parameters, bit for bit, as scoring once at the end (with dropout, so a key drawn by evaluation would show)."""
    base = ["train.steps=40", "train.checkpoint_every=40", "model.dropout=0.3"]
    once, often = tmp_path / "once", tmp_path / "often"
    train(C.apply_overrides(C.get("mr_ffn:tiny"), [*base, "train.eval_every=40"]), once, data_dir, progress=False)
    train(C.apply_overrides(C.get("mr_ffn:tiny"), [*base, "train.eval_every=7", "train.eval_test=true"]), often,
          data_dir, progress=False)
    (step_a, a), (step_b, b) = _final_state(once), _final_state(often)
    assert step_a == step_b == 40
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.array_equal(x, y)
    assert sum(r["split"] == "test" for r in _records(often)) == 6


def test_best_parameters_of_another_model_are_refused_naming_what_each_side_lacks(data_dir, tmp_path):
    train(C.apply_overrides(C.get("xor:tiny"), ["train.steps=10"]), tmp_path, data_dir, progress=False)
    step_dir = next(p for p in (tmp_path / "best").iterdir() if p.name.isdigit())
    renamed = {"layers": {0: {"input_kernel": jax.ShapeDtypeStruct((2, 8), jnp.float32)}}}
    with pytest.raises(CheckpointError, match=r"best/10 does not match this config: it has no "
                                              r"layers/0/input_kernel and holds \S+, which this model lacks"):
        check_shapes(renamed, step_dir, item="params")


def test_checkpoint_of_another_shape_is_refused_naming_path_and_shapes(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("xor:tiny"), ["train.steps=20"])
    train(cfg, tmp_path, data_dir, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json*")}
    wider = C.apply_overrides(cfg, ["model.hidden=16"])
    with pytest.raises(CheckpointError, match=r"checkpoints/20 .* at params/hidden/0/\w+ it holds shape "
                                              r"\((2, )?8,?\), the config gives \((2, )?16,?\)"):
        train(wider, tmp_path, data_dir, progress=False, allow_config_change=True)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json*")} == before  # nothing changed
