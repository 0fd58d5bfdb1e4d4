"""The training loop: resume order, eval/log/checkpoint cadence, best-on-valid tracking, stop conditions.

Resume order: the work dir's latest complete checkpoint, else a fresh start from `train.seed`.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh
from tqdm import tqdm

from nlpdl import config as C
from nlpdl import parallel
from nlpdl.models import build_model
from nlpdl.tasks import TaskData, get_task
from nlpdl.train import environment
from nlpdl.train.checkpoint import Checkpointer
from nlpdl.train.optim import make_optimizer, make_schedule
from nlpdl.train.rundir import RunDir
from nlpdl.train.state import TrainState, abstract_state, create_state, shardings_of, split_model, zero_carry
from nlpdl.train.step import StepOptions, jit_eval_step, jit_train_step


class NonFiniteLoss(Exception):
    """Training diverged; the run stops and keeps its last good checkpoint."""


@dataclass(frozen=True)
class Cadence:
    total: int
    steps_per_epoch: int
    eval_every: int
    log_every: int
    checkpoint_every: int

    @classmethod
    def of(cls, cfg: C.ExperimentConfig, data: TaskData) -> "Cadence":
        per_epoch = data.steps_per_epoch
        eval_every = cfg.train.eval_every or per_epoch
        return cls(total=cfg.train.steps or cfg.train.epochs * per_epoch, steps_per_epoch=per_epoch,
                   eval_every=eval_every, log_every=cfg.train.log_every,
                   checkpoint_every=cfg.train.checkpoint_every or eval_every)

    def due(self, step: int, every: int) -> bool:
        return step % every == 0 or step == self.total


def evaluate(eval_fn, params, carry, batches, mesh, summarize) -> dict[str, float]:
    """One pass over a split; a recurrent model's carry runs through it from `carry` (zeros)."""
    sums, sync = None, parallel.needs_step_sync(mesh)
    for batch in batches:
        out, carry = eval_fn(params, carry, parallel.put_batch(batch, mesh))
        if sync:
            jax.block_until_ready(out)
        sums = out if sums is None else jax.tree.map(lambda a, b: a + b, sums, out)
    return summarize({k: float(v) for k, v in jax.device_get(sums).items()})


def _sum_checked(pending: list[tuple[int, dict]]) -> dict[str, float]:
    """Sums the metrics of the steps since the last record; stops on the first non-finite loss."""
    host = jax.device_get([m for _, m in pending])
    for (step, _), m in zip(pending, host):
        if not np.isfinite(m["loss_sum"]):
            raise NonFiniteLoss(step)
    return {k: float(sum(m[k] for m in host)) for k in host[0]}


@dataclass(frozen=True)
class Trainer:
    """Everything a run needs, built from a config before any state exists."""

    cfg: C.ExperimentConfig
    task: ModuleType
    data: TaskData
    mesh: Mesh
    cadence: Cadence
    schedule: optax.Schedule
    tx: optax.GradientTransformation
    make_model: Callable[[nnx.Rngs], nnx.Module]
    abstract: TrainState  # shapes, dtypes and shardings: the restore target
    eval_carry: Any  # the zero carry every evaluation pass starts from (None for stateless models)
    step_fn: Callable
    eval_fn: Callable

    def init_state(self) -> TrainState:
        return create_state(self.make_model, self.tx, self.cfg.train.seed, self.mesh, self.data.batch_size)

    def evaluate(self, params, split: str) -> dict[str, float]:
        batches = self.data.evals[split]()
        if self.cfg.train.eval_batches:
            batches = itertools.islice(batches, self.cfg.train.eval_batches)
        return evaluate(self.eval_fn, params, self.eval_carry, batches, self.mesh, self.task.summarize)


def build_trainer(cfg: C.ExperimentConfig, data_dir: Path) -> Trainer:
    """Loads the data and sizes the model; fails on missing data or a bad batch size before writing anything."""
    task = get_task(cfg.task.name)
    data = task.load_data(cfg, data_dir)
    mesh = parallel.make_mesh(cfg.train.num_devices, cfg.train.model_parallel)
    parallel.check_batch_size(data.batch_size, mesh, "data.batch_size", cfg.train.grad_accum)
    parallel.check_batch_size(cfg.data.eval_batch_size, mesh, "data.eval_batch_size")
    cadence = Cadence.of(cfg, data)
    tx = make_optimizer(cfg.optim, cadence.total, cadence.steps_per_epoch)

    def make_model(rngs: nnx.Rngs) -> nnx.Module:
        return build_model(cfg.model, data.spec, rngs)

    graphdef = split_model(make_model)
    loss_fn = task.make_loss_fn(cfg)
    options = StepOptions(grad_accum=cfg.train.grad_accum, compute_dtype=jnp.dtype(cfg.train.compute_dtype),
                          layer_grad_norms=cfg.train.log_grad_norms)
    abstract = abstract_state(make_model, tx, cfg.train.seed, mesh, data.batch_size)
    shardings = shardings_of(abstract)
    return Trainer(cfg=cfg, task=task, data=data, mesh=mesh, cadence=cadence,
                   schedule=make_schedule(cfg.optim, cadence.total, cadence.steps_per_epoch), tx=tx,
                   make_model=make_model, abstract=abstract,
                   eval_carry=zero_carry(make_model, cfg.data.eval_batch_size, mesh),
                   step_fn=jit_train_step(graphdef, tx, loss_fn, mesh, shardings, options),
                   eval_fn=jit_eval_step(graphdef, loss_fn, mesh, shardings.params, options))


def train(cfg: C.ExperimentConfig, workdir: Path, data_dir: Path, *, allow_config_change: bool = False,
          progress: bool = True) -> dict:
    """Trains (or resumes) `cfg` in `workdir`; returns the results of the best-on-valid parameters."""
    t = build_trainer(cfg, data_dir)
    data, mesh, cadence, task = t.data, t.mesh, t.cadence, t.task
    run = RunDir(workdir, writer=parallel.is_main_process())
    train_iter = iter(data.train)
    ckpt, start, state, meta = _open_run(t, run, allow_config_change, train_iter)

    sync = parallel.needs_step_sync(mesh)
    started, seconds_before = time.perf_counter(), run.read_train_seconds()
    pending: list[tuple[int, dict]] = []
    bar = tqdm(total=cadence.total, initial=start, disable=not (progress and run.writer), dynamic_ncols=True,
               unit="step")
    clock = time.perf_counter()
    try:
        for step in range(start + 1, cadence.total + 1):
            state, metrics = t.step_fn(state, parallel.put_batch(next(train_iter), mesh))
            pending.append((step, metrics))
            if sync:
                jax.block_until_ready(state)
            bar.update(1)
            evaluate_now = cadence.due(step, cadence.eval_every)
            save_now = cadence.due(step, cadence.checkpoint_every)
            if cadence.due(step, cadence.log_every) or evaluate_now or save_now:
                sums = _sum_checked(pending)
                pending.clear()
                record = {"step": step, "split": "train", **task.summarize(sums),
                          "grad_norm": sums["grad_norm_sum"] / sums["steps"], "lr": float(t.schedule(step - 1)),
                          **{k: v / sums["steps"] for k, v in sums.items() if k.startswith("grad_norm/")}}
                run.log(record)
                now = time.perf_counter()
                tokens = sums.get("tokens", sums["count"])
                bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{tokens / (now - clock):.0f}")
                clock = now
            if evaluate_now:
                meta = _evaluate_and_track(t, run, ckpt, state, step, meta, bar)
            if save_now:
                # recorded with every checkpoint, so that a killed run's earlier time is not lost on resume
                run.write_train_seconds(seconds_before + time.perf_counter() - started)
                ckpt.save(step, state, train_iter, meta)
    except NonFiniteLoss as e:
        ckpt.wait()
        raise NonFiniteLoss(
            f"the training loss became non-finite at step {e.args[0]}; the run stopped and its last good "
            f"checkpoint (step {ckpt.latest_step()}) is kept in {ckpt.dir}. Lower optim.lr or set "
            f"optim.clip_norm, then train into a new --workdir.") from None
    finally:
        bar.close()
        run.close()
        run.write_train_seconds(seconds_before + time.perf_counter() - started)
    ckpt.wait()

    if ckpt.best_step() is None:  # no valid split: the final parameters are the result
        ckpt.save_best(cadence.total, state.params, {"step": cadence.total})
        ckpt.wait()
    best_params, best_meta = ckpt.restore_best(t.abstract.params)
    results = {"best_step": best_meta["step"], "num_params": sum(x.size for x in jax.tree.leaves(best_params))}
    for split in data.evals:
        results[split] = t.evaluate(best_params, split)
    run.write_results(results)
    ckpt.close()
    return results


def _open_run(t: Trainer, run: RunDir, allow_config_change: bool,
              train_iter) -> tuple[Checkpointer, int, TrainState, dict]:
    """Resume order: the latest checkpoint that reads back whole, else a fresh state. Refuses a dir holding
    another config before anything in it changes; a fresh dir gets config.json before anything else, then the
    tokenizer files."""
    run.check_config(t.cfg, allow_config_change)
    if not run.config_path.exists():  # a fresh dir gets config.json first: killed at any later point, it resumes
        run.write_config(t.cfg)
    parallel.sync("work dir checked")  # every process has looked before any creates checkpoint dirs
    ckpt = Checkpointer(run.path, t.cfg.train.max_to_keep)
    start, state, meta = ckpt.restore_latest(t.abstract, train_iter)
    if start is None:
        start, state, meta = 0, t.init_state(), {"best": None}
    elif run.writer:
        print(f"resumed {run.path} from step {start}")
    run.write_config(t.cfg)
    run.record_environment(environment.describe(start))
    run.save_artifacts(t.data.artifacts)
    # What a killed run wrote after its last complete checkpoint is written again, identically.
    ckpt.drop_best_after(start)
    run.truncate_metrics(start)
    parallel.sync("run dir ready")  # the other processes wait for process 0's files
    return ckpt, start, state, meta


def improves(value: float, best: float | None, mode: str, ties: str) -> bool:
    """Whether a valid score replaces the best so far: better in `mode`, or equal with `ties="last"`."""
    if best is None or math.isnan(best):
        return True
    if value == best:
        return ties == "last"
    return value > best if mode == "max" else value < best


def _evaluate_and_track(t: Trainer, run: RunDir, ckpt: Checkpointer, state: TrainState, step: int, meta: dict,
                        bar: tqdm) -> dict:
    """Scores the valid split (and test with `train.eval_test`); saves the parameters when they beat the best so
    far on valid."""
    cfg = t.cfg
    if cfg.train.eval_test and "test" in t.data.evals:
        run.log({"step": step, "split": "test", **t.evaluate(state.params, "test")})
    if "valid" not in t.data.evals:
        return meta
    scores = t.evaluate(state.params, "valid")
    run.log({"step": step, "split": "valid", **scores})
    value = scores[cfg.train.best_metric]
    if run.writer:
        bar.write(f"step {step}: valid " + " ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    if improves(value, meta["best"], cfg.train.best_mode, cfg.train.best_ties):
        meta = {"best": value, "best_step": step}
        ckpt.save_best(step, state.params, {"step": step, "valid": scores})
    return meta


def restore_run(workdir: Path, data_dir: Path) -> tuple[C.ExperimentConfig, Trainer, Any]:
    """A finished (or running) run's config, its trainer (data and model as trained) and its best parameters."""
    cfg = RunDir(workdir).read_config()
    t = build_trainer(cfg, data_dir)
    params, _ = Checkpointer(workdir, cfg.train.max_to_keep).restore_best(t.abstract.params)
    return cfg, t, params


def evaluate_run(workdir: Path, split: str, data_dir: Path) -> dict[str, float]:
    """Scores a run's best parameters on `split`, with the config and data pipeline it was trained with."""
    cfg, t, params = restore_run(workdir, data_dir)
    if split not in t.data.evals:
        raise C.ConfigError(f"{cfg.name} has no split {split!r}; choose one of {', '.join(t.data.evals)}.")
    return t.evaluate(params, split)
