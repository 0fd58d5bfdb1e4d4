"""The pure train and eval steps. Metrics are sums (and counts) so they add over micro-batches, batches and
devices; the loss differentiated is the summed loss over the whole batch divided by its example count, so a
batch split into micro-batches gives the same update as the batch in one piece."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from nlpdl import parallel
from nlpdl.train.optim import global_norm
from nlpdl.train.state import TrainState

# (model, batch, carry, *, train, rngs) -> ({metric: sum} with at least "loss_sum" and "count", new carry)
LossFn = Callable[..., tuple[dict[str, jax.Array], Any]]


@dataclass(frozen=True)
class StepOptions:
    grad_accum: int = 1  # micro-batches per batch
    compute_dtype: Any = jnp.float32  # parameters are cast to it for the forward/backward pass only
    layer_grad_norms: bool = False  # also report each layer's gradient norm ("grad_norm/LAYER")


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _micro_batches(tree: Any, k: int) -> Any:
    """[B, ...] -> [k, B/k, ...], micro-batch i = rows i, i+k, ...: each device keeps its own rows."""
    return jax.tree.map(lambda x: jnp.swapaxes(x.reshape(x.shape[0] // k, k, *x.shape[1:]), 0, 1), tree)


def _whole_batch(tree: Any) -> Any:
    """The inverse of `_micro_batches`."""
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:]), tree)


def layer_groups(params: dict) -> dict[str, Any]:
    """A model's parameters by layer, bottom to top as the model lists them: each top-level module, and each
    item of a module list ("layers.0", "blocks.1", "hidden.2")."""
    groups = {}
    for name, sub in params.items():
        if isinstance(sub, dict) and sub and all(isinstance(k, int) for k in sub):
            groups.update({f"{name}.{i}": sub[i] for i in sorted(sub)})
        else:
            groups[name] = sub
    return groups


def layer_grad_norms(grads: dict) -> dict[str, jax.Array]:
    """The L2 norm of each layer's gradient, keyed "grad_norm/LAYER"."""
    return {f"grad_norm/{name}": global_norm(g) for name, g in layer_groups(grads).items()}


def train_step(state: TrainState, batch: dict, *, graphdef: nnx.GraphDef, tx: optax.GradientTransformation,
               loss_fn: LossFn, options: StepOptions = StepOptions()) -> tuple[TrainState, dict[str, jax.Array]]:
    key = jax.random.fold_in(state.rng, state.step)

    def summed_loss(params, micro: dict, carry: Any, micro_key: jax.Array):
        model = nnx.merge(graphdef, _cast(params, options.compute_dtype))
        sums, carry = loss_fn(model, micro, carry, train=True, rngs=nnx.Rngs(dropout=micro_key))
        sums = jax.tree.map(lambda x: x.astype(jnp.float32), sums)
        # Truncated BPTT: no gradient flows into the next batch through the carry.
        return sums["loss_sum"], (sums, jax.lax.stop_gradient(carry))

    grad_fn = jax.grad(summed_loss, has_aux=True)
    if options.grad_accum == 1:
        grads, (sums, carry) = grad_fn(state.params, batch, state.carry, key)
    else:
        def accumulate(total, xs):
            i, micro, micro_carry = xs
            g, (s, c) = grad_fn(state.params, micro, micro_carry, jax.random.fold_in(key, i))
            return jax.tree.map(jnp.add, total, (g, s)), c

        micro, micro_carry = _micro_batches((batch, state.carry), options.grad_accum)
        g_shape, (s_shape, _) = jax.eval_shape(grad_fn, state.params, jax.tree.map(lambda x: x[0], micro),
                                               jax.tree.map(lambda x: x[0], micro_carry), key)
        zeros = jax.tree.map(jnp.zeros_like, (g_shape, s_shape))
        (grads, sums), carries = jax.lax.scan(accumulate, zeros, (jnp.arange(options.grad_accum), micro, micro_carry))
        carry = _whole_batch(carries)
    grads = jax.tree.map(lambda g: g / jnp.maximum(sums["count"], 1.0), grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {**sums, "grad_norm_sum": global_norm(grads), "steps": jnp.ones((), jnp.float32)}
    if options.layer_grad_norms:
        metrics.update(layer_grad_norms(grads))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, carry=carry), metrics


def eval_step(params, carry: Any, batch: dict, *, graphdef: nnx.GraphDef, loss_fn: LossFn,
              options: StepOptions = StepOptions()) -> tuple[dict[str, jax.Array], Any]:
    model = nnx.merge(graphdef, _cast(params, options.compute_dtype))
    sums, carry = loss_fn(model, batch, carry, train=False, rngs=None)
    return jax.tree.map(lambda x: x.astype(jnp.float32), sums), carry


def jit_train_step(graphdef, tx, loss_fn: LossFn, mesh: Mesh, state_sharding: Any, options: StepOptions):
    """Jitted once; the incoming state's buffers are donated to the outgoing one."""
    step = functools.partial(train_step, graphdef=graphdef, tx=tx, loss_fn=loss_fn, options=options)
    return jax.jit(step, in_shardings=(state_sharding, parallel.data_sharded(mesh)),
                   out_shardings=(state_sharding, parallel.replicated(mesh)), donate_argnums=0)


def jit_eval_step(graphdef, loss_fn: LossFn, mesh: Mesh, params_sharding: Any, options: StepOptions):
    step = functools.partial(eval_step, graphdef=graphdef, loss_fn=loss_fn, options=options)
    data = parallel.data_sharded(mesh)
    return jax.jit(step, in_shardings=(params_sharding, data, data), out_shardings=(parallel.replicated(mesh), data))
