"""XOR: the hand-set ReLU network that solves it, and why a single linear threshold unit cannot."""

import itertools

import jax
import jax.numpy as jnp

XOR_INPUTS = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=jnp.float32)
XOR_LABELS = jnp.array([0, 1, 1, 0], dtype=jnp.int32)
AND_LABELS = jnp.array([0, 0, 0, 1], dtype=jnp.int32)
OR_LABELS = jnp.array([0, 1, 1, 1], dtype=jnp.int32)

# Goodfellow, Bengio & Courville (2016), section 6.1: f(x) = w^T max(0, W^T x + c) + b.
XOR_W = jnp.array([[1, 1], [1, 1]], dtype=jnp.float32)
XOR_C = jnp.array([0, -1], dtype=jnp.float32)
XOR_W_OUT = jnp.array([1, -2], dtype=jnp.float32)


def hand_set_xor_network(x_Bx2: jax.Array) -> jax.Array:
    """The textbook network: h = relu(x W + c), y = h . w; exactly XOR on {0,1}^2, as floats [B]."""
    h_Bx2 = jnp.maximum(x_Bx2 @ XOR_W + XOR_C[None, :], 0.0)
    return h_Bx2 @ XOR_W_OUT


def linear_threshold_unit(x_Bx2: jax.Array, w_2: jax.Array, b: float | jax.Array) -> jax.Array:
    """step(x . w + b) as int32 [B]: 1 where the pre-activation is positive."""
    return (x_Bx2 @ w_2 + b > 0).astype(jnp.int32)


def best_linear_threshold_accuracy(
    inputs_BxD: jax.Array, labels_B: jax.Array, grid: jax.Array
) -> float:
    """Best accuracy of a linear threshold unit, brute-forcing every weight and the bias over `grid`."""
    d = inputs_BxD.shape[-1]
    params_PxDp1 = jnp.array(list(itertools.product(grid.tolist(), repeat=d + 1)), jnp.float32)
    w_PxD, b_P = params_PxDp1[:, :d], params_PxDp1[:, d]
    preds_PxB = jax.vmap(linear_threshold_unit, in_axes=(None, 0, 0))(inputs_BxD, w_PxD, b_P)
    return float(jnp.max(jnp.mean(preds_PxB == labels_B[None, :], axis=-1)))
