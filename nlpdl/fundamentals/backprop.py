"""Backpropagation by hand: a scalar chain-rule example and a 2-layer softmax network."""

import jax
import jax.numpy as jnp

from nlpdl.nn.activations import get_activation, sigmoid, softmax, tanh, unknown_name_error
from nlpdl.nn.losses import cross_entropy_by_autodiff

Params = dict[str, jax.Array]


def chain_rule_example(a: float, b: float, c: float) -> tuple[float, float, float, float]:
    """L = c (a + 2b) with hand-derived gradients: dL/da = c, dL/db = 2c, dL/dc = a + 2b."""
    q = a + 2 * b
    return c * q, c, 2 * c, q


def sigmoid_derivative(z: jax.Array) -> jax.Array:
    """s(z) (1 - s(z))."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh_derivative(z: jax.Array) -> jax.Array:
    """1 - tanh(z)^2."""
    t = tanh(z)
    return 1 - t**2


def relu_derivative(z: jax.Array) -> jax.Array:
    """1[z > 0]."""
    return (z > 0).astype(z.dtype)


ACTIVATION_DERIVATIVES = {
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
}


def init_two_layer_params(
    key: jax.Array, d: int, h: int, c: int, scale: float = 1.0
) -> Params:
    """Gaussian weights scaled by 1/sqrt(fan_in) (times `scale`), zero biases."""
    k1, k2 = jax.random.split(key)
    return {
        "W1": scale * jax.random.normal(k1, (d, h), jnp.float32) / jnp.sqrt(d),
        "b1": jnp.zeros((h,), jnp.float32),
        "W2": scale * jax.random.normal(k2, (h, c), jnp.float32) / jnp.sqrt(h),
        "b2": jnp.zeros((c,), jnp.float32),
    }


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATION_DERIVATIVES:
        raise unknown_name_error("hidden activation", activation, ACTIVATION_DERIVATIVES)


def two_layer_forward(
    params: Params, x_BxD: jax.Array, activation: str
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(z1, a1, z2, a2): hidden pre-activation and activation, logits and softmax probabilities."""
    _check_activation(activation)
    z1_BxH = x_BxD @ params["W1"] + params["b1"][None, :]
    a1_BxH = get_activation(activation)(z1_BxH)
    z2_BxC = a1_BxH @ params["W2"] + params["b2"][None, :]
    return z1_BxH, a1_BxH, z2_BxC, softmax(z2_BxC)


def two_layer_loss(params: Params, x_BxD: jax.Array, y_B: jax.Array, activation: str) -> jax.Array:
    """Mean cross-entropy of the 2-layer network."""
    _, _, z2_BxC, _ = two_layer_forward(params, x_BxD, activation)
    return jnp.mean(cross_entropy_by_autodiff(z2_BxC, y_B))


def two_layer_manual_grads(
    params: Params, x_BxD: jax.Array, y_B: jax.Array, activation: str
) -> Params:
    """Gradients of `two_layer_loss` by hand-written backprop, keyed like `params`."""
    z1_BxH, a1_BxH, _, a2_BxC = two_layer_forward(params, x_BxD, activation)
    batch, num_classes = a2_BxC.shape
    dz2_BxC = (a2_BxC - jax.nn.one_hot(y_B, num_classes, dtype=a2_BxC.dtype)) / batch
    da1_BxH = dz2_BxC @ params["W2"].T
    dz1_BxH = da1_BxH * ACTIVATION_DERIVATIVES[activation](z1_BxH)
    return {
        "W1": x_BxD.T @ dz1_BxH,
        "b1": jnp.sum(dz1_BxH, axis=0),
        "W2": a1_BxH.T @ dz2_BxC,
        "b2": jnp.sum(dz2_BxC, axis=0),
    }
