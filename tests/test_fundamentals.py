"""Tests for nlpdl.fundamentals: XOR and hand-written backprop."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nlpdl.fundamentals.backprop import (
    chain_rule_example,
    init_two_layer_params,
    two_layer_forward,
    two_layer_loss,
    two_layer_manual_grads,
)
from nlpdl.fundamentals.xor import (
    AND_LABELS,
    OR_LABELS,
    XOR_INPUTS,
    XOR_LABELS,
    best_linear_threshold_accuracy,
    hand_set_xor_network,
    linear_threshold_unit,
)
from nlpdl.nn.losses import cross_entropy

GRID = jnp.linspace(-2.0, 2.0, 9)  # step 0.5


def test_hand_set_network_computes_xor_exactly():
    out = hand_set_xor_network(XOR_INPUTS)
    assert out.shape == (4,)
    np.testing.assert_array_equal(out, np.asarray(XOR_LABELS, np.float32))


def test_linear_threshold_unit():
    pred = linear_threshold_unit(XOR_INPUTS, jnp.array([1.0, 1.0]), -1.5)
    assert pred.dtype == jnp.int32
    np.testing.assert_array_equal(pred, AND_LABELS)


def test_single_linear_unit_fits_and_or_but_not_xor():
    assert best_linear_threshold_accuracy(XOR_INPUTS, AND_LABELS, GRID) == 1.0
    assert best_linear_threshold_accuracy(XOR_INPUTS, OR_LABELS, GRID) == 1.0
    assert best_linear_threshold_accuracy(XOR_INPUTS, XOR_LABELS, GRID) == 0.75


def _train(loss_fn: Callable, params, steps: int = 300, lr: float = 0.05):
    opt = optax.adam(lr)

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


def test_two_layer_relu_network_learns_xor_but_logistic_regression_does_not():
    params = init_two_layer_params(jax.random.key(0), 2, 16, 2)
    params = _train(lambda p: two_layer_loss(p, XOR_INPUTS, XOR_LABELS, "relu"), params)
    _, _, _, probs = two_layer_forward(params, XOR_INPUTS, "relu")
    np.testing.assert_array_equal(jnp.argmax(probs, axis=-1), XOR_LABELS)

    def logistic_loss(p):
        return jnp.mean(cross_entropy(XOR_INPUTS @ p["W"] + p["b"][None, :], XOR_LABELS))

    linear = {"W": 0.1 * jax.random.normal(jax.random.key(1), (2, 2)), "b": jnp.zeros(2)}
    linear = _train(logistic_loss, linear)
    pred = jnp.argmax(XOR_INPUTS @ linear["W"] + linear["b"][None, :], axis=-1)
    assert float(jnp.mean(pred == XOR_LABELS)) <= 0.75


def test_chain_rule_example_by_hand_and_autodiff():
    loss, da, db, dc = chain_rule_example(3.0, 1.0, -2.0)
    assert (loss, da, db, dc) == (-10.0, -2.0, -4.0, 5.0)
    auto = jax.grad(lambda a, b, c: chain_rule_example(a, b, c)[0], argnums=(0, 1, 2))(3.0, 1.0, -2.0)
    np.testing.assert_allclose(auto, (da, db, dc))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_manual_grads_match_autodiff(activation):
    d, h, c, b = 5, 7, 3, 11
    k_params, k_bias1, k_bias2, k_x, k_y = jax.random.split(jax.random.key(42), 5)
    params = init_two_layer_params(k_params, d, h, c)
    params["b1"] = 0.1 * jax.random.normal(k_bias1, (h,))
    params["b2"] = 0.1 * jax.random.normal(k_bias2, (c,))
    x = jax.random.normal(k_x, (b, d))
    y = jax.random.randint(k_y, (b,), 0, c)

    # Jitted only to keep the test fast: op-by-op dispatch compiles every primitive separately.
    manual = jax.jit(two_layer_manual_grads, static_argnums=3)(params, x, y, activation)
    auto = jax.jit(jax.grad(two_layer_loss), static_argnums=3)(params, x, y, activation)
    assert manual.keys() == params.keys()
    for name in params:
        assert manual[name].shape == params[name].shape
        np.testing.assert_allclose(manual[name], auto[name], atol=1e-5, rtol=1e-5, err_msg=name)


def test_unknown_hidden_activation():
    params = init_two_layer_params(jax.random.key(0), 2, 3, 2)
    with pytest.raises(ValueError, match="'tanh'"):
        two_layer_forward(params, XOR_INPUTS, "tahn")
