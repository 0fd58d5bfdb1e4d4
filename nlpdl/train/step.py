"""The pure train and eval steps. Metrics are sums (and counts) so they add over batches and devices."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import optax
from flax import nnx
from jax.sharding import Mesh

from nlpdl import parallel
from nlpdl.train.state import TrainState

# (model, batch, train, rngs) -> (mean loss to differentiate, {metric: sum})
LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def train_step(state: TrainState, batch: dict, *, graphdef: nnx.GraphDef, tx: optax.GradientTransformation,
               loss_fn: LossFn) -> tuple[TrainState, dict[str, jax.Array]]:
    key = jax.random.fold_in(state.rng, state.step)

    def objective(params):
        model = nnx.merge(graphdef, params)
        return loss_fn(model, batch, train=True, rngs=nnx.Rngs(dropout=key))

    (_, sums), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {**sums, "grad_norm_sum": optax.tree.norm(grads), "steps": 1}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


def eval_step(params, batch: dict, *, graphdef: nnx.GraphDef, loss_fn: LossFn) -> dict[str, jax.Array]:
    _, sums = loss_fn(nnx.merge(graphdef, params), batch, train=False, rngs=None)
    return sums


def jit_train_step(graphdef, tx, loss_fn: LossFn, mesh: Mesh):
    """Jitted once; the incoming state's buffers are donated to the outgoing one."""
    step = functools.partial(train_step, graphdef=graphdef, tx=tx, loss_fn=loss_fn)
    rep, batch = parallel.replicated(mesh), parallel.data_sharded(mesh)
    return jax.jit(step, in_shardings=(rep, batch), out_shardings=(rep, rep),
                   donate_argnums=0)


def jit_eval_step(graphdef, loss_fn: LossFn, mesh: Mesh):
    rep, batch = parallel.replicated(mesh), parallel.data_sharded(mesh)
    step = functools.partial(eval_step, graphdef=graphdef, loss_fn=loss_fn)
    return jax.jit(step, in_shardings=(rep, batch), out_shardings=rep)
