"""The launch scripts (launch/*): their --dry-run commands, exact to the word, and their argument errors.

Nothing here needs gcloud, sbatch or srun: the dry runs execute nothing, and the tests that do run a
script put fakes of those commands first on PATH. Each test takes well under a second.
"""

import os
import shlex
import stat
import subprocess
import time
from pathlib import Path

import pytest

# pytest-xdist: its scripts use fixed coordinator ports: one worker runs them all
pytestmark = pytest.mark.xdist_group("launch")

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
LOCAL = LAUNCH / "local_multiprocess.sh"
TPU = LAUNCH / "tpu_pod.sh"
SLURM = LAUNCH / "slurm.sbatch"
NLPDL = str(REPO / ".venv" / "bin" / "nlpdl")

# An override with a space and quotes in it, to check that quoting survives the round trip.
TRICKY = """data.name=it's "a b" $HOME"""
ARGS = ["mr_ffn:tiny", "train.steps=20", TRICKY, "--workdir", "runs/mp"]


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# A fake command that records its working directory and arguments (one per line) in $FAKE_LOG.
RECORDER = """#!/usr/bin/env bash
{ echo "$(basename "$0")"; pwd; printf '%s\\n' "$@"; } > "$FAKE_LOG"
"""


@pytest.fixture
def fakes(tmp_path) -> Path:
    """A bin dir with recording fakes of gcloud, sbatch and srun."""
    bin_dir = tmp_path / "bin"
    for name in ("gcloud", "sbatch", "srun"):
        write_exe(bin_dir / name, RECORDER)
    return bin_dir


def run(script: Path, *args: str, env: dict | None = None, fakes: Path | None = None, cwd=None, timeout=30):
    """Run a launch script with SLURM's variables removed (tests may run inside a SLURM job)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "NLPDL_BIN"))}
    if fakes is not None:
        full["PATH"] = f"{fakes}{os.pathsep}{full.get('PATH', '')}"
    full.update(env or {})
    return subprocess.run(["bash", str(script), *args], check=False, capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=timeout)


def lines(result) -> list[list[str]]:
    """The printed commands, each parsed back into words."""
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines()]


def recorded(log: Path) -> tuple[str, Path, list[str]]:
    name, cwd, *args = log.read_text().split("\n")[:-1]
    return name, Path(cwd), args


@pytest.mark.parametrize("script", [LOCAL, TPU, SLURM])
def test_scripts_are_executable_and_have_help(script):
    assert os.access(script, os.X_OK), f"{script.name} lacks the executable bit"
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
    result = subprocess.run([str(script), "--help"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "Usage:" in result.stdout and "--dry-run" in result.stdout


@pytest.mark.parametrize("script, options", [
    (LOCAL, ["--dry-run"]),
    (LOCAL, ["--dry-run", "--"]),
    (LOCAL, ["--dry-run", "--", "--workdir", "x"]),  # a flag is no experiment name
    (TPU, ["--tpu", "t", "--zone", "z", "--dry-run"]),
    (TPU, ["--tpu", "t", "--zone", "z", "--dry-run", "--", "--no-progress"]),
    (SLURM, ["--dry-run"]),
    (SLURM, []),
])
def test_no_experiment_name_is_exit_2(script, options, fakes):
    result = run(script, *options, fakes=fakes)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "no experiment NAME" in result.stderr


# --- local_multiprocess.sh ---------------------------------------------------------------------------------------

def test_local_dry_run_prints_one_exact_command_per_process():
    result = run(LOCAL, "-n", "2", "--dry-run", "--", *ARGS)
    env = ["env", "PYTHONUNBUFFERED=1", "JAX_PLATFORMS=cpu", "XLA_FLAGS=--xla_force_host_platform_device_count=1"]
    assert lines(result) == [
        [*env, NLPDL, "train", *ARGS, "--coordinator", "127.0.0.1:12355", "--num-processes", "2", "--process-id", "0"],
        [*env, NLPDL, "train", *ARGS, "--coordinator", "127.0.0.1:12355", "--num-processes", "2", "--process-id", "1"],
    ]
    # The plain part reads as written in the docs.
    assert ("nlpdl train mr_ffn:tiny train.steps=20 'data.name=it'\\''s \"a b\" $HOME' --workdir runs/mp "
            "--coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0") in result.stdout.splitlines()[0]


def test_local_dry_run_options():
    result = run(LOCAL, "-n", "3", "--port", "23456", "--devices-per-process", "4", "--dry-run", "xor")
    assert lines(result) == [
        ["env", "PYTHONUNBUFFERED=1", "JAX_PLATFORMS=cpu", "XLA_FLAGS=--xla_force_host_platform_device_count=4",
         NLPDL, "train", "xor", "--coordinator", "127.0.0.1:23456", "--num-processes", "3", "--process-id", str(i)]
        for i in range(3)]


def test_local_no_cpu_gives_each_process_its_own_gpus():
    result = run(LOCAL, "--no-cpu", "--devices-per-process=2", "--dry-run", "--", "xor")
    assert lines(result) == [
        ["env", "PYTHONUNBUFFERED=1", f"CUDA_VISIBLE_DEVICES={gpus}", NLPDL, "train", "xor",
         "--coordinator", "127.0.0.1:12355", "--num-processes", "2", "--process-id", str(i)]
        for i, gpus in enumerate(["0,1", "2,3"])]


@pytest.mark.parametrize("options", [
    ["-n", "0"], ["-n", "two"], ["--port", "x"], ["--devices-per-process", "0"], ["--bogus"],
    ["--", "xor", "--process-id", "1"], ["--", "xor", "--coordinator=h:1"],  # the script sets those itself
])
def test_local_bad_options_are_exit_2(options):
    result = run(LOCAL, "--dry-run", *options, *(["xor"] if options[0] != "--" else []))
    assert result.returncode == 2 and result.stdout == "" and result.stderr.startswith("local_multiprocess.sh: ")


def test_local_runs_processes_with_prefixed_output(tmp_path):
    fake = write_exe(tmp_path / "nlpdl", """#!/usr/bin/env bash
echo "out ${@: -1}: $*"
echo "err ${@: -1}" >&2
""")
    result = run(LOCAL, "-n", "3", "--", "xor", "a b", env={"NLPDL_BIN": str(fake)})
    assert result.returncode == 0, result.stderr
    got = sorted(result.stdout.splitlines())
    assert got == sorted([f"[{i}] out {i}: train xor a b --coordinator 127.0.0.1:12355 --num-processes 3 "
                          f"--process-id {i}" for i in range(3)] + [f"[{i}] err {i}" for i in range(3)])


def test_local_failure_kills_the_others_and_exits_with_its_code(tmp_path):
    # Process 1 fails at once; processes 0 and 2 would run for a minute and ignore SIGTERM (like JAX).
    fake = write_exe(tmp_path / "nlpdl", f"""#!/usr/bin/env bash
i=${{@: -1}}
if [[ $i == 1 ]]; then sleep 0.2; echo "failing"; exit 3; fi
trap '' TERM
echo $$ > {tmp_path}/pid.$i
sleep 60
""")
    start = time.monotonic()
    result = run(LOCAL, "-n", "3", "--", "xor", env={"NLPDL_BIN": str(fake)})
    assert time.monotonic() - start < 10
    assert result.returncode == 3
    assert "[1] failing" in result.stdout.splitlines()
    assert "process 1 exited with code 3" in result.stderr and "Killed" not in result.stderr
    for i in (0, 2):
        pid = int((tmp_path / f"pid.{i}").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# --- tpu_pod.sh ----------------------------------------------------------------------------------------------------

def gcloud(tpu="my-tpu", zone="us-central2-b", project=None):
    return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", tpu, "--zone", zone,
            *(["--project", project] if project else []), "--worker=all", "--command"]


def test_tpu_dry_run_prints_the_gcloud_line_and_inner_command():
    result = run(TPU, "--tpu", "my-tpu", "--zone", "us-central2-b", "--repo-dir", "/opt/nlpdl", "--dry-run",
                 "--", *ARGS)
    [line] = lines(result)
    assert line[:-1] == gcloud()
    assert shlex.split(line[-1]) == ["cd", "/opt/nlpdl", "&&", ".venv/bin/nlpdl", "train", *ARGS]


def test_tpu_default_repo_dir_is_relative_to_home():
    result = run(TPU, "--tpu=t", "--zone=z", "--project=p", "--dry-run", "xor", env={"HOME": str(REPO.parent)})
    [line] = lines(result)
    assert line[:-1] == gcloud("t", "z", "p")
    assert line[-1] == f"cd ~/{REPO.name} && .venv/bin/nlpdl train xor"  # ~ left for the worker to expand
    elsewhere = run(TPU, "--tpu=t", "--zone=z", "--dry-run", "xor", env={"HOME": "/nonexistent-home"})
    assert lines(elsewhere)[0][-1] == f"cd {REPO} && .venv/bin/nlpdl train xor"


def test_tpu_setup_runs_make_venv_on_all_workers():
    result = run(TPU, "--tpu", "t", "--zone", "z", "--repo-dir", "~/my repo", "--setup", "--dry-run")
    [line] = lines(result)
    assert line[:-1] == gcloud("t", "z")
    assert line[-1].startswith("cd ~/")  # the ~ stays unquoted
    assert shlex.split(line[-1]) == ["cd", "~/my repo", "&&", "make", "venv"]
    assert run(TPU, "--tpu", "t", "--zone", "z", "--setup", "--dry-run", "xor").returncode == 2


@pytest.mark.parametrize("options, missing", [(["--zone", "z"], "--tpu"), (["--tpu", "t"], "--zone"),
                                              (["--tpu"], "--tpu")])
def test_tpu_missing_tpu_or_zone_is_an_error(options, missing, fakes):
    result = run(TPU, *options, "--dry-run", "xor", fakes=fakes)
    assert result.returncode != 0 and result.stdout == ""
    assert missing in result.stderr and len(result.stderr.splitlines()) == 1


def test_tpu_runs_gcloud_whose_command_works_on_a_worker(tmp_path, fakes):
    # A worker's checkout with a fake nlpdl that prints its arguments; run the recorded --command there.
    worker = tmp_path / "worker repo"
    write_exe(worker / ".venv" / "bin" / "nlpdl", "#!/usr/bin/env bash\npwd; printf '<%s>\\n' \"$@\"\n")
    log = tmp_path / "log"
    result = run(TPU, "--tpu", "t", "--zone", "z", "--repo-dir", str(worker), "--", *ARGS,
                 fakes=fakes, env={"FAKE_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    name, _, args = recorded(log)
    assert name == "gcloud" and ["gcloud", *args[:-1]] == gcloud("t", "z")
    remote = subprocess.run(["bash", "-c", args[-1]], check=False, capture_output=True, text=True, cwd=tmp_path,
                            timeout=30)
    assert remote.stdout.splitlines() == [str(worker), "<train>", *[f"<{a}>" for a in ARGS]]


# --- slurm.sbatch --------------------------------------------------------------------------------------------------

def test_slurm_sbatch_defaults():
    directives = [line.split(None, 1)[1] for line in SLURM.read_text().splitlines() if line.startswith("#SBATCH ")]
    for option in ["--nodes=1", "--ntasks-per-node=8", "--gpus-per-task=1", "--cpus-per-task=8", "--time=24:00:00",
                   "--output=slurm-%j.out"]:
        assert option in directives


def test_slurm_dry_run_prints_the_sbatch_and_srun_lines():
    result = run(SLURM, "--dry-run", *ARGS, cwd="/")
    assert lines(result) == [
        ["cd", str(REPO), "&&", "sbatch", "launch/slurm.sbatch", *ARGS],
        ["srun", "--kill-on-bad-exit=1", NLPDL, "train", *ARGS],
    ]


def test_slurm_outside_a_job_submits_from_the_repo(tmp_path, fakes):
    log = tmp_path / "log"
    result = run(SLURM, *ARGS, fakes=fakes, env={"FAKE_LOG": str(log)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorded(log) == ("sbatch", REPO, ["launch/slurm.sbatch", *ARGS])


def test_slurm_in_a_job_runs_srun_in_the_submit_dir(tmp_path, fakes):
    # Under sbatch the script runs from a spool copy; the repo is $SLURM_SUBMIT_DIR.
    submit_dir = tmp_path / "repo"
    write_exe(submit_dir / ".venv" / "bin" / "nlpdl", "#!/bin/sh\n")
    spool_copy = write_exe(tmp_path / "spool" / "slurm_script", SLURM.read_text())
    log = tmp_path / "log"
    result = run(spool_copy, *ARGS, fakes=fakes, cwd=tmp_path, env={
        "FAKE_LOG": str(log), "SLURM_JOB_ID": "42", "SLURM_SUBMIT_DIR": str(submit_dir), "SLURM_NTASKS": "8"})
    assert result.returncode == 0, result.stderr
    assert recorded(log) == ("srun", submit_dir,
                             ["--kill-on-bad-exit=1", f"{submit_dir}/.venv/bin/nlpdl", "train", *ARGS])
    nowhere = run(spool_copy, "xor", fakes=fakes, cwd=tmp_path,
                  env={"FAKE_LOG": str(log), "SLURM_JOB_ID": "42", "SLURM_SUBMIT_DIR": str(tmp_path)})
    assert nowhere.returncode != 0 and "submit from the repo root" in nowhere.stderr
