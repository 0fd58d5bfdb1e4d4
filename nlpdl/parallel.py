"""The device mesh and how arrays are laid out on it: batches split over `data`, parameters replicated."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


class MeshError(Exception):
    """A batch or device count that cannot be laid out on the mesh."""


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D `data` mesh over the first `num_devices` local devices (0: all of them)."""
    devices = jax.local_devices()
    if num_devices > len(devices):
        raise MeshError(f"train.num_devices={num_devices} but only {len(devices)} devices are visible; "
                        f"lower it or set it to 0 to use all.")
    return Mesh(np.array(devices[: num_devices or len(devices)]), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def check_batch_size(batch_size: int, mesh: Mesh, what: str) -> None:
    if batch_size % mesh.size:
        raise MeshError(f"{what}={batch_size} does not divide over {mesh.size} devices; "
                        f"use a multiple of {mesh.size} or set train.num_devices.")


def put_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles global arrays, split along the batch axis, from this process's rows."""
    sharding = data_sharded(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def needs_step_sync(mesh: Mesh) -> bool:
    """CPU collectives over several devices deadlock when steps are dispatched back to back."""
    return mesh.devices.flat[0].platform == "cpu" and mesh.size > 1
