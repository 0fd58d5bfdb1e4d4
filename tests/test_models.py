"""Models: shapes, padding that cannot leak into the output, configurable depth and activation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nlpdl.models import DataSpec, build_model
from nlpdl.models.ffn import FFNConfig, masked_mean


def test_masked_mean_ignores_positions_past_the_length():
    x_BxLxD = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
    lengths_B = jnp.array([2, 4])
    out = masked_mean(x_BxLxD, lengths_B)
    np.testing.assert_allclose(out[0], x_BxLxD[0, :2].mean(0))
    np.testing.assert_allclose(out[1], x_BxLxD[1].mean(0))


def test_embedding_ffn_output_does_not_depend_on_padding():
    model = build_model(FFNConfig(embed_dim=8, hidden=5, num_layers=2), DataSpec(num_outputs=3, vocab_size=20),
                        nnx.Rngs(0))
    tokens = jnp.array([[4, 7, 0, 0], [3, 3, 3, 9]])
    batch = {"tokens": tokens, "lengths": jnp.array([2, 4])}
    garbage = {"tokens": tokens.at[0, 2:].set(jnp.array([11, 12])), "lengths": batch["lengths"]}
    out = model(batch)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, model(garbage))


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_feature_mlp_depth_and_activation(num_layers):
    cfg = FFNConfig(input="features", hidden=6, num_layers=num_layers, activation="tanh")
    model = build_model(cfg, DataSpec(num_outputs=2, input_dim=4), nnx.Rngs(1))
    assert len(model.hidden) == num_layers
    out = model({"features": jnp.ones((5, 4))})
    assert out.shape == (5, 2)
    params = nnx.state(model, nnx.Param)
    assert len(jax.tree.leaves(params)) == 2 * (num_layers + 1)


def test_dropout_only_in_training_and_keyed():
    model = build_model(FFNConfig(input="features", hidden=32, dropout=0.5), DataSpec(2, input_dim=8), nnx.Rngs(0))
    batch = {"features": jnp.ones((4, 8))}
    np.testing.assert_array_equal(model(batch), model(batch, train=False))
    a = model(batch, train=True, rngs=nnx.Rngs(dropout=1))
    b = model(batch, train=True, rngs=nnx.Rngs(dropout=1))
    c = model(batch, train=True, rngs=nnx.Rngs(dropout=2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
