"""Inverted dropout with cheaper masks.

Same interface and semantics as `nnx.Dropout` (a unit is kept with probability 1 - rate and scaled by
1 / (1 - rate); the key comes from `rngs.dropout()`), but each unit's keep/drop draw uses 16 random bits, two
units per 32-bit word of the generator, so a mask costs half the threefry evaluations, which dominate dropout
on a CPU. The keep probability is therefore rounded to a multiple of 2^-16 (at most 7.6e-6 away from
1 - rate), and the scale uses that exact probability, so the expected output still equals the input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

LEVELS = 1 << 16


def keep_threshold(rate: float) -> int:
    """Units whose 16-bit draw is below this are kept: round((1 - rate) * 2^16), within [1, 2^16 - 1]."""
    return min(max(round((1.0 - rate) * LEVELS), 1), LEVELS - 1)


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """A boolean mask of `shape`, True with probability keep_threshold(rate) / 2^16, from 16-bit draws. The
    draws are laid out along the last axis only, so the leading (batch) axes shard like the activations."""
    *lead, last = shape
    words = jax.random.bits(key, (*lead, (last + 1) // 2), jnp.uint32)
    draws = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(*lead, -1)[..., :last]
    return draws < jnp.uint16(keep_threshold(rate))


class Dropout(nnx.Module):
    def __init__(self, rate: float):
        self.rate = rate

    def __call__(self, x: jax.Array, *, deterministic: bool, rngs: nnx.Rngs | None = None) -> jax.Array:
        if deterministic or self.rate == 0.0 or x.size == 0:
            return x
        if self.rate >= 1.0:
            return jnp.zeros_like(x)
        if rngs is None:
            raise ValueError("dropout in training needs rngs with a 'dropout' stream")
        keep = keep_threshold(self.rate) / LEVELS
        shape = x.shape if x.ndim else (1,)
        mask = keep_mask(rngs.dropout(), shape, self.rate).reshape(x.shape)
        return jnp.where(mask, x / jnp.asarray(keep, x.dtype), jnp.zeros((), x.dtype))
