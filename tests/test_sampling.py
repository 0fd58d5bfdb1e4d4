"""Sampling: one scan with the carried state or KV cache gives what recomputing the whole prefix gives, for the
same key; top-k; seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nlpdl.models import DataSpec, build_model
from nlpdl.models.nplm import NPLMConfig
from nlpdl.models.rnn_lm import RNNLMConfig
from nlpdl.models.transformer_lm import TransformerLMConfig
from nlpdl.sampling import generate, pick
from nlpdl.train.state import initial_carry

SPEC = DataSpec(num_outputs=30, vocab_size=30)


MODELS = [RNNLMConfig(cell="lstm", embed_dim=8, hidden=8, init_scale=0.5), NPLMConfig(context=3, embed_dim=4, hidden=16),
          TransformerLMConfig(d_model=16, num_heads=2, num_layers=2, d_ff=32, context=12, dropout=0.0),
          TransformerLMConfig(d_model=16, num_heads=4, num_layers=1, d_ff=16, context=4, positions="sinusoidal")]


@pytest.mark.parametrize("temperature,top_k", [(0.0, 0), (1.0, 0), (0.7, 5)])
@pytest.mark.parametrize("cfg", MODELS, ids=["lstm", "nplm", "transformer", "transformer-sinusoidal"])
def test_scan_with_the_carry_or_kv_cache_equals_recomputing_the_prefix(cfg, temperature, top_k):
    model = build_model(cfg, SPEC, nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    params = nnx.to_pure_dict(state)  # as the train state holds them
    prompt, key = jnp.array([[3, 7, 1]]), jax.random.PRNGKey(0)
    fast = generate(params, prompt, key, graphdef=graphdef, num_tokens=9, temperature=temperature, top_k=top_k)
    tokens = prompt
    for step_key in jax.random.split(key, 9):  # the slow way: the whole sequence again for every new token
        logits, _ = model(tokens, initial_carry(model, 1))
        tokens = jnp.concatenate([tokens, pick(logits[:, -1], step_key, temperature, top_k)[:, None]], axis=1)
    np.testing.assert_array_equal(fast, tokens[0, 3:])
    if temperature:
        assert len(set(np.asarray(fast).tolist())) > 1


def test_seed_makes_samples_reproducible():
    model = build_model(RNNLMConfig(embed_dim=8, hidden=8, init_scale=1.0), SPEC, nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    params = nnx.to_pure_dict(state)  # as the train state holds them
    run = lambda seed: generate(params, jnp.array([[1]]), jax.random.PRNGKey(seed), graphdef=graphdef,  # noqa: E731
                                num_tokens=40, temperature=1.0, top_k=0)
    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_top_k_keeps_only_the_k_likeliest_tokens():
    logits = jnp.log(jnp.array([[0.05, 0.4, 0.05, 0.3, 0.2]]))
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    drawn = {int(pick(logits, k, 1.0, 2)[0]) for k in keys}
    assert drawn == {1, 3}
    assert int(pick(logits, keys[0], 1.0, 1)[0]) == int(pick(logits, keys[0], 0.0, 0)[0]) == 1
