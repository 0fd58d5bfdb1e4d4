"""The train state: one pytree with everything a step reads and writes."""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from nlpdl import parallel


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: number of updates applied
    params: Any  # pure dict of arrays (nnx.to_pure_dict of the model's Params)
    opt_state: optax.OptState
    rng: jax.Array  # raw uint32 key; the key of step s is fold_in(rng, s)


def split_model(make_model: Callable[[nnx.Rngs], nnx.Module]) -> nnx.GraphDef:
    """The model's structure, without allocating its parameters."""
    model = nnx.eval_shape(lambda: make_model(nnx.Rngs(0)))
    graphdef, _ = nnx.split(model)
    return graphdef


def _init(make_model, tx: optax.GradientTransformation, seed: int) -> TrainState:
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    model = make_model(nnx.Rngs(params=init_key))
    _, params = nnx.split(model, nnx.Param)
    params = nnx.to_pure_dict(params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=run_key)


def abstract_state(make_model, tx, seed: int, mesh: Mesh) -> TrainState:
    """Shapes, dtypes and shardings of the state (a restore target); nothing is allocated."""
    shapes = jax.eval_shape(lambda: _init(make_model, tx, seed))
    shardings = parallel.state_sharding(shapes, mesh)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)


def shardings_of(abstract: Any) -> Any:
    return jax.tree.map(lambda x: x.sharding, abstract)


def create_state(make_model, tx, seed: int, mesh: Mesh) -> TrainState:
    """Initialises the state directly into its layout on the mesh."""
    shardings = shardings_of(abstract_state(make_model, tx, seed, mesh))
    return jax.jit(lambda: _init(make_model, tx, seed), out_shardings=shardings)()
