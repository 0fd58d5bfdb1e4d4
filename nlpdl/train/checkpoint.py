"""Orbax checkpoints of a run: the train state and the data-iterator position in one step.

`checkpoints/` holds the latest steps (for resuming); `best/` holds the parameters that scored best on the
valid split. Restores go against an abstract target, so optax state keeps its structure and arrays land
in their shardings.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from nlpdl import parallel


class CheckpointError(Exception):
    """A checkpoint that cannot be used with this config."""


class DamagedCheckpointWarning(UserWarning):
    """A checkpoint that could not be read was set aside and an older one used."""


def _manager(path: Path, max_to_keep: int, async_save: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=async_save,
                                           cleanup_tmp_directories=True, create=True)
    return ocp.CheckpointManager(path.absolute(), options=options)


def _leaf_name(path: tuple) -> str:
    """A tree path as "a/b/0", the same whether a level is a dict, a dataclass or a tuple."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return "/".join(parts)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    return {_leaf_name(path): tuple(leaf.shape) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _saved_shapes(step_dir: Path, item: str) -> dict[str, tuple[int, ...]] | None:
    """Shapes recorded in a saved item ("state", or "params" of a best checkpoint), or None where orbax cannot
    read its metadata."""
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)  # orbax warns that the per-item metadata file it does not need is absent
    try:
        metadata = ocp.StandardCheckpointer().metadata(step_dir.absolute() / item).item_metadata
    finally:
        absl_log.setLevel(level)
    if metadata is None:
        return None
    return _shapes(metadata.tree if hasattr(metadata, "tree") else metadata)


def check_shapes(abstract_state: Any, step_dir: Path, item: str = "state") -> None:
    """Fails naming the first tree path whose saved shape differs from the one the config gives, or that one
    of them lacks."""
    saved, wanted = _saved_shapes(step_dir, item), _shapes(abstract_state)
    if saved is None:  # the restore itself will then fail or succeed on its own terms
        return
    for name in sorted(set(saved) & set(wanted)):
        if saved[name] != wanted[name]:
            raise CheckpointError(
                f"checkpoint {step_dir} does not match this config: at {name} it holds shape {saved[name]}, the "
                f"config gives {wanted[name]}. Train into a new --workdir, or use the config it was made with.")
    missing, extra = sorted(set(wanted) - set(saved)), sorted(set(saved) - set(wanted))
    if missing:
        holds = (f" and holds {extra[0]}, which this model lacks (a checkpoint of another model, or of an older "
                 f"nlpdl that named its layers' parameters differently)" if extra else "")
        raise CheckpointError(f"checkpoint {step_dir} does not match this config: it has no {missing[0]}{holds}. "
                              f"Train into a new --workdir, or use the config (and nlpdl version) it was made with.")


class Checkpointer:
    def __init__(self, workdir: Path, max_to_keep: int, async_save: bool = True):
        self.dir = workdir / "checkpoints"
        self.latest = _manager(self.dir, max_to_keep, async_save)
        self.best = _manager(workdir / "best", 1, async_save=False)

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def save(self, step: int, state: Any, data_iter: grain.DatasetIterator, meta: dict) -> None:
        self.latest.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         data=grain.checkpoint.CheckpointSave(data_iter),
                                                         meta=ocp.args.JsonSave(meta)))

    def restore_latest(self, abstract_state: Any, data_iter: grain.DatasetIterator) -> tuple[int | None, Any, dict]:
        """The newest step that reads back whole, as (step, state, meta); (None, None, None) if none does.

        A step that fails to read (truncated or corrupt files) is moved to `damaged/` with a warning and the
        one before it is tried; a step whose shapes differ from the config is an error, not damage.
        """
        for step in sorted(self.latest.all_steps(), reverse=True):
            step_dir = self.dir / str(step)
            try:
                check_shapes(abstract_state, step_dir)
                state, meta = self.restore(step, abstract_state, data_iter)
                return step, state, meta
            except CheckpointError:
                raise
            except Exception as err:  # noqa: BLE001 - whatever orbax, tensorstore or grain raise on bad bytes
                kept = self._set_aside(step_dir)
                warnings.warn(f"checkpoint {step_dir} is damaged ({type(err).__name__}: {str(err)[:200]}); moved "
                              f"it to {kept} and trying the previous one.", DamagedCheckpointWarning, stacklevel=2)
        return None, None, None

    def _set_aside(self, step_dir: Path) -> Path:
        damaged = self.dir.parent / "damaged"
        dest = damaged / f"checkpoint-{step_dir.name}"
        n = 1
        while dest.exists():
            dest, n = damaged / f"checkpoint-{step_dir.name}.{n}", n + 1
        if parallel.is_main_process():
            damaged.mkdir(exist_ok=True)
            os.replace(step_dir, dest)
        parallel.sync(f"set aside {step_dir}")
        self.latest.reload()
        return dest

    def restore(self, step: int, abstract_state: Any, data_iter: grain.DatasetIterator) -> tuple[Any, dict]:
        out = self.latest.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                                  data=grain.checkpoint.CheckpointRestore(data_iter),
                                                                  meta=ocp.args.JsonRestore()))
        return out.state, dict(out.meta)

    def save_best(self, step: int, params: Any, meta: dict) -> None:
        self.best.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                                       meta=ocp.args.JsonSave(meta)))

    def drop_best_after(self, step: int) -> None:
        """On resume: best checkpoints newer than the restored step are recomputed identically."""
        for s in self.best.all_steps():
            if s > step:
                self.best.delete(s)

    def best_step(self) -> int | None:
        return self.best.latest_step()

    def restore_best(self, abstract_params: Any) -> tuple[Any, dict]:
        step = self.best.latest_step()
        if step is None:
            raise CheckpointError(f"{self.dir.parent} has no best checkpoint yet: train the run until its first "
                                  f"evaluation (nlpdl train ... --workdir {self.dir.parent}).")
        check_shapes(abstract_params, self.best.directory / str(step), item="params")
        out = self.best.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params),
                                                                meta=ocp.args.JsonRestore()))
        return out.params, dict(out.meta)

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()
