"""Devices, processes and layouts: one code path from 1 CPU to a pod.

The mesh has a `data` axis (batches are split along it) and a `model` axis (large weight matrices are split
along it; size 1 unless `train.model_parallel` says otherwise). Several processes (hosts) join through
`jax.distributed`; each feeds its own rows of every global batch.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


class MeshError(Exception):
    """A batch, device or process count that cannot be laid out on the mesh."""


# Weights smaller than this stay replicated even on a model axis: splitting them costs more than it saves.
MIN_SHARDED_SIZE = 2**18


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
    """Joins a multi-process run: explicit arguments, else auto-detection on SLURM and Cloud TPU pods.

    Returns whether this is a multi-process run. Must run before anything else touches JAX devices.
    """
    if coordinator:
        if num_processes is None or process_id is None:
            raise MeshError("--coordinator needs --num-processes and --process-id too.")
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
        return True
    slurm = int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ
    tpu_pod = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    if os.environ.get("NLPDL_DISTRIBUTED", "auto") != "off" and (slurm or tpu_pod):
        jax.distributed.initialize()  # reads coordinator, process count and id from the cluster environment
        return True
    return False


def make_mesh(num_devices: int = 0, model_parallel: int = 1) -> Mesh:
    """A (`data`, `model`) mesh over `num_devices` devices (0: all devices of all processes)."""
    devices = jax.devices()
    if num_devices and jax.process_count() > 1:
        raise MeshError("train.num_devices must be 0 (all devices) in a multi-process run.")
    if num_devices > len(devices):
        raise MeshError(f"train.num_devices={num_devices} but only {len(devices)} devices are visible; "
                        f"lower it or set it to 0 to use all.")
    devices = devices[: num_devices or len(devices)]
    if len(devices) % model_parallel:
        raise MeshError(f"train.model_parallel={model_parallel} does not divide the {len(devices)} devices.")
    return Mesh(np.array(devices).reshape(len(devices) // model_parallel, model_parallel), ("data", "model"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def weight_sharding(shape: tuple[int, ...], mesh: Mesh) -> NamedSharding:
    """Splits the largest dimension of a large matrix over `model` (when it divides); the rest is replicated.

    Optimizer moments have their parameter's shape, so they land beside it.
    """
    size = mesh.shape["model"]
    if size == 1 or len(shape) < 2 or int(np.prod(shape)) < MIN_SHARDED_SIZE:
        return replicated(mesh)
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % size == 0:
            spec = [None] * len(shape)
            spec[dim] = "model"
            return NamedSharding(mesh, P(*spec))
    return replicated(mesh)


def state_sharding(abstract_tree: Any, mesh: Mesh) -> Any:
    return jax.tree.map(lambda x: weight_sharding(tuple(x.shape), mesh), abstract_tree)


def check_batch_size(batch_size: int, mesh: Mesh, what: str, micro_batches: int = 1) -> None:
    """Each process feeds batch/processes rows, split evenly over its devices on the `data` axis."""
    data, processes = mesh.shape["data"], jax.process_count()
    unit = data * micro_batches
    if batch_size % unit or batch_size % processes:
        extra = f" x {micro_batches} micro-batches" if micro_batches > 1 else ""
        raise MeshError(f"{what}={batch_size} does not divide over {data} devices{extra} "
                        f"({processes} process{'es' if processes > 1 else ''}); use a multiple of {unit} "
                        f"or change train.num_devices / train.grad_accum.")


def put_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles global arrays, split along the batch axis, from this process's rows."""
    sharding = data_sharded(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def needs_step_sync(mesh: Mesh) -> bool:
    """CPU collectives over several devices deadlock when steps are dispatched back to back."""
    return mesh.devices.flat[0].platform == "cpu" and mesh.size > 1


def is_main_process() -> bool:
    return jax.process_index() == 0


def sync(name: str) -> None:
    """All processes wait here (a no-op in a single-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
