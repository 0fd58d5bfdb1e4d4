"""The `nlpdl` command as a user types it."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import xla_flags


def nlpdl(*args, cwd, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "nlpdl.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_list_shows_each_experiment_with_one_line(tmp_path):
    out = nlpdl("list", cwd=tmp_path)
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert {"xor", "mr_ffn"} <= set(names)


def test_show_prints_the_resolved_config_with_overrides(tmp_path):
    out = nlpdl("show", "mr_ffn", "model.hidden=3", cwd=tmp_path)
    assert out.returncode == 0
    cfg = json.loads(out.stdout)
    assert cfg["model"]["hidden"] == 3 and cfg["model"]["kind"] == "ffn" and cfg["name"] == "mr_ffn"


def test_misspelt_key_fails_at_once_naming_the_key_and_writing_nothing(tmp_path):
    start = time.time()
    out = nlpdl("train", "mr_ffn", "model.hiden=3", cwd=tmp_path)
    assert out.returncode == 2
    assert "model.hidden" in out.stderr and out.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    assert time.time() - start < 30  # no data loading or compilation before the error


@pytest.mark.parametrize("args,message", [
    (["train", "nosuch"], "unknown experiment"),
    (["train", "mr_ffn", "optim.lr=-1"], "optim.lr=-1.0 must be > 0"),
    (["train", "mr_ffn", "data.batch_size=0"], "data.batch_size=0 must be >= 1"),
    (["train", "mr_ffn", "train.epochs=two"], "train.epochs='two' is not a valid int"),
    (["train", "mr_ffn", "--data-dir", "/nonexistent/data"], "missing data file /nonexistent/data/mr/"),
])
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, args, message):
    out = nlpdl(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr and out.stderr.startswith("nlpdl: error:") and out.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_train_on_eight_fake_devices_end_to_end_and_rerun_resumes(data_dir, tmp_path):
    args = ("train", "mr_ffn:tiny", "data.batch_size=32", "data.eval_batch_size=256", "--workdir", "run",
            "--data-dir", str(data_dir), "--no-progress")
    env = {"XLA_FLAGS": xla_flags("--xla_force_host_platform_device_count=8"), "JAX_PLATFORMS": "cpu"}
    out = nlpdl(*args, cwd=tmp_path, env_extra=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mr_ffn: test accuracy" in out.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test"]["accuracy"] > 0.55
    again = nlpdl(*args, cwd=tmp_path, env_extra=env)  # a relative work dir, finished: resumes, trains nothing
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed run from step 60" in again.stdout
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results


def test_batch_that_does_not_divide_over_devices_is_refused(data_dir, tmp_path):
    out = nlpdl("train", "mr_ffn:tiny", "--data-dir", str(data_dir), cwd=tmp_path,
                env_extra={"XLA_FLAGS": xla_flags("--xla_force_host_platform_device_count=8"), "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 2 and "data.batch_size=50 does not divide over 8 devices" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_empty_data_file_is_one_line_error_with_exit_code_2(data_dir, tmp_path):
    (tmp_path / "data" / "mr").mkdir(parents=True)
    (tmp_path / "data" / "mr" / "rt-polarity.neg").write_bytes(b"")
    (tmp_path / "data" / "mr" / "rt-polarity.pos").write_bytes((data_dir / "mr" / "rt-polarity.pos").read_bytes())
    out = nlpdl("train", "mr_ffn", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "rt-polarity.neg is empty" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_eval_scores_the_best_parameters_of_a_run(data_dir, tmp_path):
    out = nlpdl("train", "xor:tiny", "--workdir", "run", "--data-dir", str(data_dir), "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    scored = nlpdl("eval", "run", "--split", "test", "--data-dir", str(data_dir), cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert f"run: test loss {results['test']['loss']:.4f} accuracy {results['test']['accuracy']:.4f}" in scored.stdout
    bad = nlpdl("eval", "run", "--split", "dev", "--data-dir", str(data_dir), cwd=tmp_path)
    assert bad.returncode == 2 and "no split 'dev'" in bad.stderr


def test_sample_continues_a_prompt_reproducibly(data_dir, tmp_path):
    out = nlpdl("train", "ptb_nplm:tiny", "--workdir", "lm", "--data-dir", str(data_dir), "--no-progress",
                cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    args = ("sample", "lm", "--prompt", "the company said", "--tokens", "15", "--temperature", "0.8", "--top-k",
            "40", "--seed", "1", "--data-dir", str(data_dir))
    first, again = nlpdl(*args, cwd=tmp_path), nlpdl(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    words = first.stdout.split()
    assert words[:3] == ["the", "company", "said"] and len(words) == 3 + 15
    assert first.stdout == again.stdout
    xor = nlpdl("train", "xor:tiny", "--workdir", "xor", "--data-dir", str(data_dir), "--no-progress", cwd=tmp_path)
    assert xor.returncode == 0
    refused = nlpdl("sample", "xor", "--prompt", "a", "--data-dir", str(data_dir), cwd=tmp_path)
    assert refused.returncode == 2 and "needs a language model" in refused.stderr
