"""Dropout from 16-bit draws of a keyed hash: the keep rate and scale it promises, masks that behave as
independent draws, and nnx.Dropout's interface."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nlpdl.nn.dropout import LEVELS, Dropout, keep_mask, keep_threshold, random_words


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.65])
def test_units_are_kept_at_the_promised_rate_and_the_mean_is_unchanged(rate):
    x = jnp.ones((64, 33, 101))  # odd last axis: the two halves of the last word are cut
    y = Dropout(rate)(x, deterministic=False, rngs=nnx.Rngs(dropout=0))
    kept = np.asarray(y != 0)
    keep = keep_threshold(rate) / LEVELS
    assert abs(keep - (1 - rate)) <= 0.5 / LEVELS
    n = kept.size
    assert abs(kept.mean() - keep) < 4 * np.sqrt(keep * (1 - keep) / n)  # 4 standard errors
    np.testing.assert_allclose(np.asarray(y)[kept], 1.0 / keep, rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 4 * np.sqrt((1 - keep) / keep / n)


def test_the_two_draws_of_a_word_are_independent_units():
    # neighbours along the last axis come from the two halves of one 32-bit word: as often kept together as
    # independent units would be
    mask = np.asarray(keep_mask(jax.random.key(3), (4096, 64), 0.5))
    both = (mask[:, 0::2] & mask[:, 1::2]).mean()
    assert abs(both - 0.25) < 4 * np.sqrt(0.25 * 0.75 / mask[:, 0::2].size)


def test_evaluation_passes_through_and_a_key_gives_one_mask():
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 7))
    layer = Dropout(0.3)
    np.testing.assert_array_equal(layer(x, deterministic=True), x)
    a = layer(x, deterministic=False, rngs=nnx.Rngs(dropout=1))
    b = layer(x, deterministic=False, rngs=nnx.Rngs(dropout=1))
    c = layer(x, deterministic=False, rngs=nnx.Rngs(dropout=2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(Dropout(1.0)(x, deterministic=False, rngs=nnx.Rngs(dropout=0)), 0.0)
    assert Dropout(0.5)(jnp.ones(()), deterministic=False, rngs=nnx.Rngs(dropout=0)).shape == ()


def test_original_dropout_keeps_units_unscaled_and_scales_them_all_in_evaluation():
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 40))
    keep = keep_threshold(0.5) / LEVELS
    inverted, original = Dropout(0.5), Dropout(0.5, inverted=False)
    a = inverted(x, deterministic=False, rngs=nnx.Rngs(dropout=4))
    b = original(x, deterministic=False, rngs=nnx.Rngs(dropout=4))
    assert 0 < int(jnp.sum(b == 0)) < x.size
    np.testing.assert_array_equal(np.asarray(b) != 0, np.asarray(a) != 0)  # one key, one mask
    np.testing.assert_allclose(b, jnp.where(b != 0, x, 0.0))
    np.testing.assert_allclose(original(x, deterministic=True), x * keep, rtol=1e-6)
    np.testing.assert_array_equal(inverted(x, deterministic=True), x)


def test_masks_under_different_keys_are_independent_and_every_unit_is_kept_at_the_rate():
    keys = jax.random.split(jax.random.key(7), 400)
    masks = np.asarray(jax.vmap(lambda k: keep_mask(k, (8, 50), 0.5))(keys)).reshape(400, -1)
    # each unit over 400 keys: kept about half the time (a unit always kept or dropped would be far out)
    per_unit = masks.mean(axis=0)
    assert np.all(np.abs(per_unit - 0.5) < 5 * np.sqrt(0.25 / 400))
    # two keys' masks agree as often as independent coin flips do, also when one is shifted against the other
    flat = masks.astype(np.int8)
    for shift in (0, 1, 2, 17):
        agree = (flat[:-1, shift:] == flat[1:, :flat.shape[1] - shift]).mean()
        assert abs(agree - 0.5) < 5 * np.sqrt(0.25 / flat[:-1, shift:].size)


def test_random_words_are_uniform_over_their_bits():
    words = np.asarray(random_words(jax.random.key(11), (256, 1024)))
    bits = (words[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    ones = bits.reshape(-1, 32).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 5 * np.sqrt(0.25 / words.size))
    assert len(np.unique(words)) > 0.99 * words.size
