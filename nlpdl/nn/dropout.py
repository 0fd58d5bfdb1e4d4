"""Inverted dropout with cheaper masks.

Same interface and semantics as `nnx.Dropout` (a unit is kept with probability 1 - rate and scaled by
1 / (1 - rate); the key comes from `rngs.dropout()`), with two changes that make masks cheap on a CPU, where
generating them dominated dropout:
- each unit's keep/drop draw uses 16 random bits, two units per 32-bit word, so the keep probability is
  rounded to a multiple of 2^-16 (at most 7.6e-6 away from 1 - rate); the scale uses that exact probability,
  so the expected output still equals the input;
- the words are a keyed hash of each word's position (a counter-based generator, as threefry is, with a
  cheaper mixing function): two 32-bit seeds are drawn from the key with threefry, and word i is
  mix(mix(i ^ seed0) + seed1), mix being Wellons' low-bias 32-bit integer hash ("lowbias32": two multiplies and
  three xor-shifts, a bijection). Threefry's 20 rounds for every word cost 9x as much here
  (benchmarks/RESULTS.md). Dropout needs independent-looking bits, not cryptographic ones; tests check the
  rate, pairs of units and masks under different keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

LEVELS = 1 << 16


def keep_threshold(rate: float) -> int:
    """Units whose 16-bit draw is below this are kept: round((1 - rate) * 2^16), within [1, 2^16 - 1]."""
    return min(max(round((1.0 - rate) * LEVELS), 1), LEVELS - 1)


def _mix32(x_u32: jax.Array) -> jax.Array:
    x_u32 = x_u32 ^ (x_u32 >> 16)
    x_u32 = x_u32 * jnp.uint32(0x21F0AAAD)
    x_u32 = x_u32 ^ (x_u32 >> 15)
    x_u32 = x_u32 * jnp.uint32(0x735A2D97)
    return x_u32 ^ (x_u32 >> 15)


def random_words(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """uint32 words of `shape`, a keyed hash of each word's row-major position. Elementwise in the position,
    so a sharded array's words are computed where they live, the same under any sharding."""
    seed0_u32, seed1_u32 = jax.random.bits(key, (2,), jnp.uint32)
    position_u32 = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        position_u32 = position_u32 + jax.lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride = stride * shape[axis] % (1 << 32)
    return _mix32(_mix32(position_u32 ^ seed0_u32) + seed1_u32)


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """A boolean mask of `shape`, True with probability keep_threshold(rate) / 2^16, from 16-bit draws. The
    draws are laid out along the last axis only, so the leading (batch) axes shard like the activations."""
    *lead, last = shape
    words = random_words(key, (*lead, (last + 1) // 2))
    draws = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(*lead, -1)[..., :last]
    return draws < jnp.uint16(keep_threshold(rate))


class Dropout(nnx.Module):
    """`inverted=False` is the original dropout (Srivastava et al. 2014; Kim's code): kept units pass unscaled in
    training and every unit is multiplied by the keep probability in evaluation. The two give the same function
    up to a rescaling of the next layer's weights, but not the same training under a max-norm constraint on them
    or an optimizer whose steps do not scale with the weights (Adadelta's)."""

    def __init__(self, rate: float, *, inverted: bool = True):
        self.rate = rate
        self.inverted = inverted

    def __call__(self, x: jax.Array, *, deterministic: bool, rngs: nnx.Rngs | None = None) -> jax.Array:
        if self.rate == 0.0 or x.size == 0:
            return x
        keep = keep_threshold(self.rate) / LEVELS if self.rate < 1.0 else 0.0
        if deterministic:
            return x if self.inverted else x * jnp.asarray(keep, x.dtype)
        if self.rate >= 1.0:
            return jnp.zeros_like(x)
        if rngs is None:
            raise ValueError("dropout in training needs rngs with a 'dropout' stream")
        shape = x.shape if x.ndim else (1,)
        mask = keep_mask(rngs.dropout(), shape, self.rate).reshape(x.shape)
        kept = x / jnp.asarray(keep, x.dtype) if self.inverted else x
        return jnp.where(mask, kept, jnp.zeros((), x.dtype))
