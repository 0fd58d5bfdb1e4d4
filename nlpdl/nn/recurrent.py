"""Recurrent layers (Elman RNN, LSTM, GRU) that run a whole window at once.

The cells compute the same functions as Flax's `SimpleCell`, `LSTMCell` and `GRUCell` (gate order i, f, g, o for
the LSTM; r, z, n for the GRU; one bias per gate, on the input side), laid out for speed:

- every gate's input weights are one I x G*H matrix, applied to all T time steps in one matmul before the time
  loop (only h_{t-1} @ W_h stays inside it);
- the time loop has a hand-written backward pass (`jax.custom_vjp`): the loop going backwards only carries
  dL/dh and dL/dc and emits each step's gate gradient, and the recurrent weights' gradient is then one
  (T*B) x H by (T*B) x G*H matmul, instead of a small matmul accumulated at every step as autodiff of
  `lax.scan` does it. `tests/test_recurrent.py` checks it against autodiff of the plain loop.

Sequences shorter than the window (`seq_lengths`) keep their state once they end, so the final carry is each
sequence's state at its own length, and the outputs past the end repeat it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
from flax import nnx

Cell = Literal["rnn", "lstm", "gru"]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
Initializer = Callable[..., jax.Array]


def _rnn_update(x_BxG, hw_BxG, h_BxH):
    return jnp.tanh(x_BxG + hw_BxG)


def _lstm_update(x_BxG, hw_BxG, carry):
    c_BxH, _ = carry
    i, f, g, o = jnp.split(x_BxG + hw_BxG, 4, axis=-1)
    c_BxH = jax.nn.sigmoid(f) * c_BxH + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c_BxH, jax.nn.sigmoid(o) * jnp.tanh(c_BxH)


def _gru_update(x_BxG, hw_BxG, h_BxH):
    x_r, x_z, x_n = jnp.split(x_BxG, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hw_BxG, 3, axis=-1)
    r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h_BxH


UPDATES = {"rnn": _rnn_update, "lstm": _lstm_update, "gru": _gru_update}


def hidden_of(carry) -> jax.Array:
    """The hidden state h of a carry (an LSTM carries (c, h))."""
    return carry[1] if isinstance(carry, tuple) else carry


def _masked_update(cell: Cell, x_BxG, hw_BxG, carry, keep_B):
    new = UPDATES[cell](x_BxG, hw_BxG, carry)
    return jax.tree.map(lambda n, o: jnp.where(keep_B[:, None], n, o), new, carry)


def recurrence_reference(cell: Cell, x_TxBxG, w_hxG, carry, keep_TxB):
    """The time loop as plain `lax.scan`, differentiated by autodiff: what `recurrence` must equal."""
    def step(carry, xs):
        x_BxG, keep_B = xs
        carry = _masked_update(cell, x_BxG, hidden_of(carry) @ w_hxG, carry, keep_B)
        return carry, hidden_of(carry)

    return jax.lax.scan(step, carry, (x_TxBxG, keep_TxB))


def _forward(cell, x_TxBxG, w_hxG, carry, keep_TxB):
    def step(carry, xs):
        x_BxG, keep_B = xs
        hw_BxG = hidden_of(carry) @ w_hxG
        new = _masked_update(cell, x_BxG, hw_BxG, carry, keep_B)
        return new, (new, hw_BxG)

    return jax.lax.scan(step, carry, (x_TxBxG, keep_TxB))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrence(cell: Cell, x_TxBxG, w_hxG, carry, keep_TxB):
    """(final carry, h_TxBxH): the cell run over the pre-computed input projections `x_TxBxG` (bias included)
    from `carry`, with recurrent weights `w_hxG`; where `keep_TxB` is False the carry is held."""
    final, (carries, _) = _forward(cell, x_TxBxG, w_hxG, carry, keep_TxB)
    return final, hidden_of(carries)


def _recurrence_fwd(cell, x_TxBxG, w_hxG, carry, keep_TxB):
    final, (carries, hw_TxBxG) = _forward(cell, x_TxBxG, w_hxG, carry, keep_TxB)
    # the carry each step started from: the initial one, then every step's but the last
    previous = jax.tree.map(lambda c0, cs: jnp.concatenate([c0[None], cs[:-1]]), carry, carries)
    return (final, hidden_of(carries)), (x_TxBxG, hw_TxBxG, w_hxG, previous, keep_TxB)


def _recurrence_bwd(cell, residuals, cotangents):
    x_TxBxG, hw_TxBxG, w_hxG, previous, keep_TxB = residuals
    ct_final, ct_h_TxBxH = cotangents

    def step(ct_carry, xs):
        x_BxG, hw_BxG, prev, keep_B, ct_h_BxH = xs
        ct_carry = ((ct_carry[0], ct_carry[1] + ct_h_BxH) if isinstance(ct_carry, tuple)
                    else ct_carry + ct_h_BxH)
        _, vjp = jax.vjp(lambda x, hw, c: _masked_update(cell, x, hw, c, keep_B), x_BxG, hw_BxG, prev)
        ct_x_BxG, ct_hw_BxG, ct_prev = vjp(ct_carry)
        ct_h_prev = hidden_of(ct_prev) + ct_hw_BxG @ w_hxG.T
        ct_prev = (ct_prev[0], ct_h_prev) if isinstance(ct_prev, tuple) else ct_h_prev
        return ct_prev, (ct_x_BxG, ct_hw_BxG)

    ct_carry0, (ct_x_TxBxG, ct_hw_TxBxG) = jax.lax.scan(
        step, ct_final, (x_TxBxG, hw_TxBxG, previous, keep_TxB, ct_h_TxBxH), reverse=True)
    h_prev_TxBxH = hidden_of(previous)
    ct_w_hxG = jnp.einsum("tbh,tbg->hg", h_prev_TxBxH, ct_hw_TxBxG)
    return ct_x_TxBxG, ct_w_hxG, ct_carry0, None


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _stacked(init: Initializer, gates: int) -> Initializer:
    """An initialiser for H x G*H drawing each gate's H x H block on its own (e.g. G orthogonal matrices)."""
    def fn(key, shape, dtype=jnp.float32):
        rows, cols = shape
        keys = jax.random.split(key, gates)
        return jnp.concatenate([init(k, (rows, cols // gates), dtype) for k in keys], axis=-1)

    return fn


def reverse_padded(x_BxTxD: jax.Array, lengths_B: jax.Array) -> jax.Array:
    """Each row's first `length` steps reversed in place, its padding left where it is."""
    t_T = jnp.arange(x_BxTxD.shape[1])
    index_BxT = jnp.where(t_T[None] < lengths_B[:, None], lengths_B[:, None] - 1 - t_T[None], t_T[None])
    return jnp.take_along_axis(x_BxTxD, index_BxT[..., None], axis=1)


class Recurrent(nnx.Module):
    """One recurrent layer over B x T x I inputs: `(carry, h_BxTxH) = layer(x_BxTxI, carry, seq_lengths)`."""

    def __init__(self, cell: Cell, in_features: int, hidden: int, *, rngs: nnx.Rngs,
                 kernel_init: Initializer = nnx.initializers.lecun_normal(),
                 recurrent_kernel_init: Initializer = nnx.initializers.orthogonal()):
        gates = GATES[cell]
        self.cell, self.hidden = cell, hidden
        self.input_kernel = nnx.Param(kernel_init(rngs.params(), (in_features, gates * hidden)))
        self.recurrent_kernel = nnx.Param(_stacked(recurrent_kernel_init, gates)(rngs.params(), (hidden, gates * hidden)))
        self.bias = nnx.Param(jnp.zeros((gates * hidden,)))

    def initial_carry(self, batch_size: int) -> Any:
        h_BxH = jnp.zeros((batch_size, self.hidden), jnp.float32)
        return (h_BxH, h_BxH) if self.cell == "lstm" else h_BxH

    def __call__(self, x_BxTxI: jax.Array, carry: Any = None, seq_lengths: jax.Array | None = None,
                 *, loop: Callable = recurrence) -> tuple[Any, jax.Array]:
        B, T, _ = x_BxTxI.shape
        carry = self.initial_carry(B) if carry is None else carry
        kernel, recurrent = self.input_kernel[...], self.recurrent_kernel[...]
        x_TxBxG = jnp.einsum("bti,ig->tbg", x_BxTxI, kernel.astype(x_BxTxI.dtype)) + self.bias[None, None, :]
        lengths_B = jnp.full((B,), T) if seq_lengths is None else seq_lengths
        keep_TxB = jnp.arange(T)[:, None] < lengths_B[None, :]
        carry, h_TxBxH = loop(self.cell, x_TxBxG, recurrent.astype(x_TxBxG.dtype), carry, keep_TxB)
        return carry, jnp.swapaxes(h_TxBxH, 0, 1)


class Bidirectional(nnx.Module):
    """A forward and a backward layer; the backward one reads each sequence reversed within its own length.
    Outputs are concatenated [forward, backward]; the carry is (forward's, backward's)."""

    def __init__(self, forward: Recurrent, backward: Recurrent):
        self.forward, self.backward = forward, backward

    def __call__(self, x_BxTxI: jax.Array, carry: Any = None, seq_lengths: jax.Array | None = None,
                 **kw) -> tuple[Any, jax.Array]:
        B, T, _ = x_BxTxI.shape
        lengths_B = jnp.full((B,), T) if seq_lengths is None else seq_lengths
        carry_f, carry_b = (None, None) if carry is None else carry
        carry_f, h_f = self.forward(x_BxTxI, carry_f, lengths_B, **kw)
        carry_b, h_b = self.backward(reverse_padded(x_BxTxI, lengths_B), carry_b, lengths_B, **kw)
        return (carry_f, carry_b), jnp.concatenate([h_f, reverse_padded(h_b, lengths_B)], axis=-1)
