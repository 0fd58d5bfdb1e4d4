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
    carry: Any = None  # what a recurrent model carries from one batch to the next (rows = batch rows)


def split_model(make_model: Callable[[nnx.Rngs], nnx.Module]) -> nnx.GraphDef:
    """The model's structure, without allocating its parameters."""
    model = nnx.eval_shape(lambda: make_model(nnx.Rngs(0)))
    graphdef, _ = nnx.split(model)
    return graphdef


def initial_carry(model: nnx.Module, batch_size: int) -> Any:
    """Zeros for a model that carries state across batches (it has `initial_carry`), else None."""
    return model.initial_carry(batch_size) if hasattr(model, "initial_carry") else None


def _init(make_model, tx: optax.GradientTransformation, seed: int, batch_size: int) -> TrainState:
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    model = make_model(nnx.Rngs(params=init_key))
    _, params = nnx.split(model, nnx.Param)
    params = nnx.to_pure_dict(params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=run_key,
                      carry=initial_carry(model, batch_size))


def abstract_state(make_model, tx, seed: int, mesh: Mesh, batch_size: int) -> TrainState:
    """Shapes, dtypes and shardings of the state (a restore target); nothing is allocated."""
    shapes = jax.eval_shape(lambda: _init(make_model, tx, seed, batch_size))
    shardings = parallel.state_sharding(shapes, mesh)
    shardings = shardings.replace(carry=jax.tree.map(lambda _: parallel.data_sharded(mesh), shapes.carry))
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)


def shardings_of(abstract: Any) -> Any:
    return jax.tree.map(lambda x: x.sharding, abstract)


def create_state(make_model, tx, seed: int, mesh: Mesh, batch_size: int) -> TrainState:
    """Initialises the state directly into its layout on the mesh."""
    shardings = shardings_of(abstract_state(make_model, tx, seed, mesh, batch_size))
    return jax.jit(lambda: _init(make_model, tx, seed, batch_size), out_shardings=shardings)()


def zero_carry(make_model, batch_size: int, mesh: Mesh) -> Any:
    """A fresh carry for `batch_size` rows (an evaluation pass starts from it), laid out over `data`."""
    shapes = jax.eval_shape(lambda: initial_carry(make_model(nnx.Rngs(0)), batch_size))
    zeros = lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)  # noqa: E731
    return jax.jit(zeros, out_shardings=jax.tree.map(lambda _: parallel.data_sharded(mesh), shapes))()
