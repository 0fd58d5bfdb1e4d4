"""The fused recurrent layers: the hand-written backward pass equals autodiff of the plain loop, and each cell
computes what Flax's cell of the same name computes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nlpdl.nn.recurrent import (GATES, Bidirectional, Recurrent, hidden_of, recurrence, recurrence_reference,
                                reverse_padded)

CELLS = ["rnn", "lstm", "gru"]


def _inputs(cell: str, T=6, B=3, H=4):
    G = GATES[cell]
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    x_TxBxG = jax.random.normal(k[0], (T, B, G * H))
    w_HxG = 0.6 * jax.random.normal(k[1], (H, G * H))
    h_BxH = jax.random.normal(k[3], (B, H))
    carry = (0.5 * h_BxH, h_BxH) if cell == "lstm" else h_BxH
    keep_TxB = jnp.arange(T)[:, None] < jnp.array([T, 3, 1])[None, :]
    return x_TxBxG, w_HxG, carry, keep_TxB


@pytest.mark.parametrize("cell", CELLS)
def test_hand_written_backward_pass_equals_autodiff_of_the_loop(cell):
    x, w, carry, keep = _inputs(cell)

    def loss(loop):
        def fn(x, w, carry):
            final, h_TxBxH = loop(cell, x, w, carry, keep)
            # every output and the final carry reach the loss, with different weights
            return jnp.sum(jnp.sin(h_TxBxH)) + sum(jnp.sum(jnp.cos(3.0 * c)) for c in jax.tree.leaves(final))
        return fn

    ours = jax.jit(jax.grad(loss(recurrence), argnums=(0, 1, 2)))(x, w, carry)
    reference = jax.jit(jax.grad(loss(recurrence_reference), argnums=(0, 1, 2)))(x, w, carry)
    for a, r in zip(jax.tree.leaves(ours), jax.tree.leaves(reference)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(ours[1]).sum()) > 0  # the recurrent weights do get a gradient


@pytest.mark.parametrize("cell", CELLS)
def test_carry_is_held_past_each_sequence_end(cell):
    x, w, carry, keep = _inputs(cell)
    final, h_TxBxH = recurrence(cell, x, w, carry, keep)
    # row 1 ends after 3 steps: its final state is its output at step 3, repeated after
    np.testing.assert_allclose(h_TxBxH[2:, 1], jnp.broadcast_to(h_TxBxH[2, 1], h_TxBxH[2:, 1].shape))
    np.testing.assert_allclose(hidden_of(final)[1], h_TxBxH[2, 1])


FLAX_CELLS = {"rnn": nnx.SimpleCell, "lstm": nnx.LSTMCell, "gru": nnx.GRUCell}


def _copy_into_flax(cell: str, layer: Recurrent, flax_cell) -> None:
    """Our fused weights, split per gate into Flax's layout (its bias sits on either side of the sum)."""
    H = layer.hidden
    wi, wh, b = layer.input_kernel[...], layer.recurrent_kernel[...], layer.bias[...]
    pairs = ([(getattr(flax_cell, "i" + g if g != "f" else "if_"), getattr(flax_cell, "h" + g), slice(k * H, (k + 1) * H))
              for k, g in enumerate("ifgo")] if cell == "lstm"
             else [(flax_cell.dense_i, flax_cell.dense_h, slice(None))])
    for dense_i, dense_h, sl in pairs:
        dense_i.kernel[...], dense_h.kernel[...] = wi[:, sl], wh[:, sl]
        (dense_i if dense_i.bias is not None else dense_h).bias[...] = b[sl]


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_computes_what_flax_cell_computes(cell):
    I, H, B, T = 5, 4, 2, 7
    layer = Recurrent(cell, I, H, rngs=nnx.Rngs(0))
    layer.bias[...] = jax.random.normal(jax.random.PRNGKey(3), layer.bias.shape)
    flax_cell = FLAX_CELLS[cell](I, H, rngs=nnx.Rngs(1))
    _copy_into_flax(cell, layer, flax_cell)
    x_BxTxI = jax.random.normal(jax.random.PRNGKey(2), (B, T, I))
    carry, ours_BxTxH = layer(x_BxTxI)
    flax_carry, flax_BxTxH = nnx.RNN(flax_cell, return_carry=True, rngs=False)(x_BxTxI,
                                                                               initial_carry=layer.initial_carry(B))
    np.testing.assert_allclose(ours_BxTxH, flax_BxTxH, rtol=1e-5, atol=1e-5)
    for a, r in zip(jax.tree.leaves(carry), jax.tree.leaves(flax_carry)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


def test_reverse_padded_reverses_each_row_within_its_length():
    x_BxTx1 = jnp.arange(10.0).reshape(2, 5, 1)
    out = reverse_padded(x_BxTx1, jnp.array([5, 3]))[..., 0]
    np.testing.assert_array_equal(out, [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]])
    np.testing.assert_array_equal(reverse_padded(reverse_padded(x_BxTx1, jnp.array([5, 3])), jnp.array([5, 3])),
                                  x_BxTx1)


def test_bidirectional_backward_half_reads_the_future():
    layer = Bidirectional(Recurrent("gru", 3, 4, rngs=nnx.Rngs(0)), Recurrent("gru", 3, 4, rngs=nnx.Rngs(1)))
    x_1xTx3 = jax.random.normal(jax.random.PRNGKey(0), (1, 6, 3))
    _, h = layer(x_1xTx3, seq_lengths=jnp.array([6]))
    changed = x_1xTx3.at[0, 5].add(1.0)
    _, h2 = layer(changed, seq_lengths=jnp.array([6]))
    # the last input changes no forward output before it, and every backward output
    np.testing.assert_allclose(h[0, :5, :4], h2[0, :5, :4])
    assert np.all(np.abs(np.asarray(h[0, :, 4:] - h2[0, :, 4:])).max(-1) > 0)
