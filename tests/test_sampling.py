"""Sampling: one scan with the carried state gives what recomputing the whole prefix gives; top-k, seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nlpdl.models import DataSpec, build_model
from nlpdl.models.nplm import NPLMConfig
from nlpdl.models.rnn_lm import RNNLMConfig
from nlpdl.sampling import generate, pick

SPEC = DataSpec(num_outputs=30, vocab_size=30)


@pytest.mark.parametrize("cfg", [RNNLMConfig(cell="lstm", embed_dim=8, hidden=8, init_scale=0.5),
                                 NPLMConfig(context=3, embed_dim=4, hidden=16)], ids=["lstm", "nplm"])
def test_greedy_scan_equals_recomputing_the_prefix(cfg):
    model = build_model(cfg, SPEC, nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    params = nnx.to_pure_dict(state)  # as the train state holds them
    prompt = jnp.array([[3, 7, 1]])
    fast = generate(params, prompt, jax.random.PRNGKey(0), graphdef=graphdef, num_tokens=8, temperature=0.0,
                    top_k=0)
    tokens = prompt
    for _ in range(8):  # the slow way: the whole sequence again for every new token
        logits, _ = model(tokens, model.initial_carry(1))
        tokens = jnp.concatenate([tokens, jnp.argmax(logits[:, -1], -1)[:, None]], axis=1)
    np.testing.assert_array_equal(fast, tokens[0, 3:])


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
