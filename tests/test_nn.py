"""Tests for nlpdl.nn: activations and losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlpdl.nn.activations import ACTIVATIONS, get_activation, leaky_relu, log_softmax, softmax
from nlpdl.nn import matmul
from nlpdl.nn.tied_output import tied_logits
from nlpdl.nn.losses import (
    LOSSES,
    binary_cross_entropy,
    cross_entropy,
    cross_entropy_by_autodiff,
    label_is_top,
    get_loss,
    mse,
)

REFERENCES = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "softmax": jax.nn.softmax,
    "identity": lambda x: x,
}


def _inputs() -> jax.Array:
    x = 5.0 * jax.random.normal(jax.random.key(0), (6, 8), jnp.float32)
    extremes = jnp.array([[-1000.0, 1000.0, 0.0, -1e-6, 1e-6, -30.0, 30.0, 88.0]], jnp.float32)
    return jnp.concatenate([x, extremes, -extremes], axis=0)


def test_registry_covers_references():
    assert set(ACTIVATIONS) == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_matches_jax_reference(name):
    x = _inputs()
    out = get_activation(name)(x)
    assert out.shape == x.shape
    assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_allclose(out, REFERENCES[name](x), rtol=1e-5, atol=1e-7)


def _sigmoid_derivative_f64(x: np.ndarray) -> np.ndarray:
    s = 0.5 * (np.tanh(x / 2) + 1)
    return s * (1 - s)


def _tanh_derivative_f64(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2 * np.abs(x))
    return 4 * e / (1 + e) ** 2


# float64 truth rather than jax's float32 gradients, which underflow to 0 in the tails.
DERIVATIVES = {
    "sigmoid": _sigmoid_derivative_f64,
    "tanh": _tanh_derivative_f64,
    "relu": lambda x: (x > 0).astype(np.float64),
    "leaky_relu": lambda x: np.where(x >= 0, 1.0, 0.01),
}


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_activation_gradients_are_accurate_and_finite(name):
    x = _inputs().ravel()
    grad = jax.vmap(jax.grad(get_activation(name)))(x)
    assert bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(grad, DERIVATIVES[name](np.asarray(x, np.float64)), rtol=1e-5, atol=1e-7)


def test_sigmoid_and_tanh_derivatives_at_zero():
    assert float(jax.grad(get_activation("sigmoid"))(0.0)) == pytest.approx(0.25)
    assert float(jax.grad(get_activation("tanh"))(0.0)) == pytest.approx(1.0)


def test_sigmoid_keeps_precision_in_negative_tail():
    np.testing.assert_allclose(get_activation("sigmoid")(jnp.float32(-50.0)), np.exp(-50.0), rtol=1e-5)


def test_softmax_rows_sum_to_one_and_log_softmax_is_consistent():
    x = _inputs()
    p = softmax(x)
    np.testing.assert_allclose(jnp.sum(p, axis=-1), 1.0, rtol=1e-6)
    assert bool(jnp.all(jnp.isfinite(log_softmax(x))))
    np.testing.assert_allclose(log_softmax(x), jax.nn.log_softmax(x), rtol=1e-5, atol=1e-5)


def test_leaky_relu_slope():
    x = jnp.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_allclose(leaky_relu(x), [-0.02, -0.005, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(leaky_relu(x, negative_slope=0.2), [-0.4, -0.1, 0.0, 3.0], rtol=1e-6)


def test_unknown_activation_suggests_close_match():
    with pytest.raises(ValueError, match="Unknown activation 'rleu'") as err:
        get_activation("rleu")
    assert "'relu'" in str(err.value)
    assert "sigmoid" in str(err.value)  # lists the known names too


def test_cross_entropy_by_hand():
    logits = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    labels = jnp.array([2, 0])
    by_hand = []
    for row, label in zip(np.asarray(logits, np.float64), [2, 0]):
        by_hand.append(-np.log(np.exp(row[label]) / np.exp(row).sum()))
    out = cross_entropy(logits, labels)
    assert out.shape == (2,)
    np.testing.assert_allclose(out, by_hand, rtol=1e-6)


def test_cross_entropy_finite_for_huge_logits():
    out = cross_entropy(jnp.array([[1000.0, -1000.0], [-1000.0, 1000.0]]), jnp.array([0, 0]))
    np.testing.assert_allclose(out, [0.0, 2000.0], rtol=1e-6)


def test_binary_cross_entropy_matches_naive_and_is_stable():
    logits = jnp.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    labels = jnp.array([0, 1, 1, 0, 1])
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    y = np.asarray(labels, np.float64)
    naive = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(binary_cross_entropy(logits, labels), naive, rtol=1e-5)
    np.testing.assert_allclose(binary_cross_entropy(logits[:, None], labels), naive, rtol=1e-5)

    big = jnp.array([1000.0, -1000.0, 1000.0, -1000.0])
    big_labels = jnp.array([1, 0, 0, 1])
    out = binary_cross_entropy(big, big_labels)
    assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_allclose(out, [0.0, 0.0, 1000.0, 1000.0], atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(jax.grad(lambda z: binary_cross_entropy(z, big_labels).sum())(big))))


def test_mse_by_hand():
    outputs = jnp.array([[0.5, 0.2, 0.3], [1.0, 0.0, 0.0]])
    labels = jnp.array([1, 0])
    # Row 0: ((0.5)^2 + (0.8)^2 + (0.3)^2) / 3 = 0.98 / 3; row 1 is a perfect one-hot.
    np.testing.assert_allclose(mse(outputs, labels), [0.98 / 3, 0.0], rtol=1e-6)


def test_num_outputs():
    assert LOSSES["cross_entropy"].num_outputs(5) == 5
    assert LOSSES["mse"].num_outputs(5) == 5
    assert LOSSES["binary_cross_entropy"].num_outputs(2) == 1
    with pytest.raises(ValueError):
        LOSSES["binary_cross_entropy"].num_outputs(3)


def test_predict_rules():
    outputs = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    for name in ["cross_entropy", "mse"]:
        pred = get_loss(name).predict(outputs)
        assert pred.dtype == jnp.int32
        np.testing.assert_array_equal(pred, [1, 0])
    pred = get_loss("binary_cross_entropy").predict(jnp.array([[-0.3], [0.0], [2.5]]))
    assert pred.dtype == jnp.int32
    np.testing.assert_array_equal(pred, [0, 0, 1])


def test_loss_fns_are_per_example_with_model_shaped_outputs():
    labels = jnp.array([0, 1, 1, 0])
    for name, loss in LOSSES.items():
        outputs = jnp.zeros((4, loss.num_outputs(2)))
        assert loss.fn(outputs, labels).shape == (4,), name


def test_unknown_loss_suggests_close_match():
    with pytest.raises(ValueError, match="Unknown loss") as err:
        get_loss("cross_entropi")
    assert "'cross_entropy'" in str(err.value)


def test_cross_entropy_over_tokens_matches_gather_and_its_gradient_is_softmax_minus_one_hot():
    logits_BxTxV = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 7)) * 3
    labels_BxT = jnp.array([[0, 6, 3], [2, 2, 5]])
    by_gather = -jnp.take_along_axis(jax.nn.log_softmax(logits_BxTxV), labels_BxT[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(cross_entropy(logits_BxTxV, labels_BxT), by_gather, rtol=1e-6, atol=1e-6)
    grad = jax.grad(lambda z: jnp.sum(cross_entropy(z, labels_BxT)))(logits_BxTxV)
    np.testing.assert_allclose(grad, jax.nn.softmax(logits_BxTxV) - jax.nn.one_hot(labels_BxT, 7), atol=1e-6)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 7), (4, 2, 10001)])
def test_cross_entropy_value_and_hand_written_gradient_match_autodiff(shape):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    logits = jax.random.normal(k1, shape) * 4
    labels = jax.random.randint(k2, shape[:-1], 0, shape[-1])
    weights = jax.random.uniform(k3, shape[:-1])  # a per-example cotangent other than 1
    np.testing.assert_allclose(cross_entropy(logits, labels), cross_entropy_by_autodiff(logits, labels),
                               rtol=1e-6, atol=1e-6)
    grads = [jax.grad(lambda z, f=f: jnp.sum(f(z, labels) * weights))(logits)
             for f in (cross_entropy, cross_entropy_by_autodiff)]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    jitted = jax.jit(jax.value_and_grad(lambda z: jnp.sum(cross_entropy(z, labels) * weights)))(logits)
    np.testing.assert_allclose(jitted[1], grads[1], rtol=1e-5, atol=1e-6)


def test_cross_entropy_stays_finite_for_huge_logits_and_labels_outside_the_classes():
    logits = jnp.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    labels = jnp.array([0, 3])  # 3: no class (a padding target), weighted 0 by the caller
    value, grad = jax.value_and_grad(lambda z: jnp.sum(cross_entropy(z, labels) * jnp.array([1.0, 0.0])))(logits)
    assert bool(jnp.isfinite(value)) and bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(grad[1], 0.0)
    np.testing.assert_allclose(cross_entropy(logits, jnp.array([0, 0]))[1], 2000.0, rtol=1e-6)


def test_label_is_top_agrees_with_argmax_and_counts_a_tie_as_correct():
    logits = jax.random.normal(jax.random.PRNGKey(2), (6, 9, 50))
    labels = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(3), 0.5, (6, 9)), jnp.argmax(logits, -1),
                       jax.random.randint(jax.random.PRNGKey(4), (6, 9), 0, 50))
    np.testing.assert_array_equal(label_is_top(logits, labels), jnp.argmax(logits, -1) == labels)
    assert bool(label_is_top(jnp.zeros((1, 4)), jnp.array([2]))[0])


def test_tied_logits_value_and_gradients_match_autodiff_of_the_plain_product():
    kx, kt, kg = jax.random.split(jax.random.PRNGKey(1), 3)
    x_BxTxD, table_VxD = jax.random.normal(kx, (2, 5, 4)), jax.random.normal(kt, (9, 4))
    g_BxTxV = jax.random.normal(kg, (2, 5, 9))
    ours, vjp_ours = jax.vjp(tied_logits, x_BxTxD, table_VxD)
    plain, vjp_plain = jax.vjp(lambda x, t: x @ t.T, x_BxTxD, table_VxD)
    np.testing.assert_allclose(ours, plain, rtol=1e-6)
    for a, b in zip(vjp_ours(g_BxTxV), vjp_plain(g_BxTxV)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, w_shape", [((6, 4), (4, 3)), ((6, 3), (3, 5)), ((2, 5, 4), (4, 7)),
                                              ((3, 5), (5, matmul.VOCABULARY_SIZED + 1))])
def test_dense_dot_general_value_and_gradients_match_autodiff(x_shape, w_shape):
    """Both orders of the weight gradient (the smaller operand transposed) and the vocabulary-sized fallback."""
    kx, kw, kg = jax.random.split(jax.random.PRNGKey(2), 3)
    x, w = jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)
    dims = (((len(x_shape) - 1,), (0,)), ((), ()))
    ours, vjp_ours = jax.vjp(lambda x, w: matmul.dot_general(x, w, dims), x, w)
    plain, vjp_plain = jax.vjp(lambda x, w: jax.lax.dot_general(x, w, dims), x, w)
    np.testing.assert_allclose(ours, plain, rtol=1e-6)
    g = jax.random.normal(kg, plain.shape)
    for a, b in zip(vjp_ours(g), vjp_plain(g)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(b))))


def test_dense_dot_general_leaves_other_contractions_to_lax():
    x, w = jnp.ones((2, 3, 4)), jnp.ones((2, 4, 5))
    dims = (((2,), (1,)), ((0,), (0,)))
    np.testing.assert_array_equal(matmul.dot_general(x, w, dims), jax.lax.dot_general(x, w, dims))


def test_dense_weight_gradient_dot_contracts_the_last_axis_on_cpu():
    """The point of `matmul`: XLA:CPU gets no dot over its first operand's first axis (Eigen's slow path), while
    autodiff of the plain product has one."""
    x, w = jnp.ones((64, 32)), jnp.ones((32, 16))

    def grad_hlo(dot):
        return jax.jit(jax.grad(lambda w: jnp.sum(jnp.tanh(dot(x, w, (((1,), (0,)), ((), ())))))))\
            .lower(w).compile().as_text()

    assert "lhs_contracting_dims={0}" in grad_hlo(jax.lax.dot_general)
    assert "lhs_contracting_dims={0}" not in grad_hlo(matmul.dot_general)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_is_flax_linear_with_the_same_parameters_outputs_and_gradients(use_bias):
    from flax import nnx

    ours = matmul.Dense(4, 6, use_bias=use_bias, rngs=nnx.Rngs(0))
    flax = nnx.Linear(4, 6, use_bias=use_bias, rngs=nnx.Rngs(0))
    if use_bias:  # a non-zero bias, the same in both
        ours.bias[...] = flax.bias[...] = jnp.arange(6.0)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, nnx.state(ours, nnx.Param), nnx.state(flax, nnx.Param)))
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 5, 4))
    g = jax.random.normal(jax.random.PRNGKey(4), (2, 5, 6))

    def value_and_grads(layer):
        graphdef, params = nnx.split(layer, nnx.Param)
        return jax.value_and_grad(lambda p, x: jnp.sum(nnx.merge(graphdef, p)(x) * g), argnums=(0, 1))(params, x)

    (v_ours, (gp_ours, gx_ours)), (v_flax, (gp_flax, gx_flax)) = value_and_grads(ours), value_and_grads(flax)
    np.testing.assert_allclose(v_ours, v_flax, rtol=1e-5)
    np.testing.assert_allclose(gx_ours, gx_flax, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(gp_ours), jax.tree.leaves(gp_flax)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_add_bias_gradient_sums_the_output_gradient_over_every_row():
    y, b = jnp.zeros((2, 3, 4)), jnp.arange(4.0)
    g = jax.random.normal(jax.random.PRNGKey(5), (2, 3, 4))
    out, vjp = jax.vjp(matmul.add_bias, y, b)
    np.testing.assert_array_equal(out, jnp.broadcast_to(b, (2, 3, 4)))
    g_y, g_b = vjp(g)
    np.testing.assert_array_equal(g_y, g)
    np.testing.assert_allclose(g_b, g.sum(axis=(0, 1)), rtol=1e-5)
