"""What a run ran on: package versions, devices, threads and the code's commit, one record per invocation.

Two runs of one config can differ when these do (another jaxlib, another thread count), so a run dir keeps them
beside its config: environment.jsonl gets a line each time `nlpdl train` starts or resumes the run.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy", "nlpdl")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit(path: Path) -> str | None:
    """The commit of the checkout nlpdl runs from, with `+dirty` for uncommitted changes; None outside git."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        git("ls-files", "--error-unmatch", "__init__.py")  # a copy installed inside another repo is not its commit
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's name ("AMD EPYC 7B13"): Linux's first `model name`, else what `platform` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(start_step: int) -> dict:
    """This process's environment; `start_step` is the step the invocation starts from (0 for a new run)."""
    devices = jax.devices()
    return {
        "start_step": start_step,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in PACKAGES},
        "nlpdl_commit": _git_commit(Path(__file__).resolve().parent),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "host_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
