"""nlpdl keeps freed host memory: XLA's large CPU buffers are reused from step to step, not page-faulted afresh."""

import os
import platform
import subprocess
import sys

import pytest

from conftest import REPO

# Each call returns a fresh 96 MB array (an output buffer, allocated like a step's temporaries). The median call's
# faults: on a loaded machine the free on XLA's thread can come late, so that one call finds two buffers alive.
PROGRAM = """
import resource, time
from nlpdl.host_memory import keep_freed_memory
kept = keep_freed_memory()
import jax, jax.numpy as jnp
f = jax.jit(lambda x: x + 1.0)
x = jnp.ones((24 * 2 ** 20,), jnp.float32)
def call():
    y = f(x).block_until_ready()
    del y
    time.sleep(0.05)  # the buffer is freed on another thread
for _ in range(6):
    call()
faults = []
for _ in range(7):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    call()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, sorted(faults)[3])
"""


def page_faults_per_call(keep: str) -> tuple[bool, float]:
    env = {**os.environ, "NLPDL_KEEP_FREED_MEMORY": keep, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", float(out[1])


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc",
                    reason="glibc's malloc only")
def test_large_buffers_are_reused_instead_of_faulted_in_again():
    kept, faults_kept = page_faults_per_call("1")
    default, faults_default = page_faults_per_call("0")
    assert kept and not default
    # glibc's default: a fresh mmap each call, every page of it (4 KiB, or 2 MiB with transparent huge pages)
    # touched anew
    assert faults_default >= 40
    assert faults_kept <= faults_default / 20
