"""word2vec: gensim's subsampling and noise distributions, the dynamic window's examples, and training that
puts words sharing contexts next to each other."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import xla_flags

from nlpdl.embeddings import word2vec as w2v
from nlpdl.embeddings.evaluation import nearest


def test_subsampling_keeps_rare_words_and_thins_frequent_ones_by_gensims_formula():
    counts = np.array([1_000_000, 10_000, 100, 1])
    keep = w2v.keep_probabilities(counts, 1e-3)
    t = 1e-3 * counts.sum()
    np.testing.assert_allclose(keep[0], (np.sqrt(counts[0] / t) + 1) * t / counts[0])
    assert keep[0] < keep[1] < 1.0 and keep[2] == keep[3] == 1.0  # only words above ~t are thinned
    assert (w2v.keep_probabilities(counts, 0) == 1).all()


def test_noise_distribution_is_unigram_to_the_three_quarters_and_sampled_as_such():
    counts = np.array([81, 16, 1])
    p = w2v.noise_distribution(counts)
    np.testing.assert_allclose(p, np.array([27, 8, 1]) / 36)
    draws = w2v._negatives(jax.random.PRNGKey(0), w2v.noise_table(p), (200_000,))
    np.testing.assert_allclose(np.bincount(np.asarray(draws), minlength=3) / 200_000, p, atol=0.005)


def test_alias_table_gives_each_word_exactly_its_noise_probability():
    counts = np.random.default_rng(0).zipf(1.5, 1000)
    p = w2v.noise_distribution(counts)
    keep, alias = w2v.noise_table(p)
    # word i: its own bucket's kept share, plus the rejected share of every bucket that aliases it
    implied = (keep + np.bincount(alias, weights=1.0 - keep, minlength=len(p))) / len(p)
    np.testing.assert_allclose(implied, p, rtol=1e-5, atol=1e-9)


def test_examples_stay_in_their_sentence_and_within_the_reduced_window():
    ids = np.arange(12, dtype=np.int32)
    sids = np.array([0] * 5 + [1] * 7, np.int32)
    keep = np.ones(12)
    (pairs,) = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(0))
    c, x = pairs["centre"], pairs["context"]
    assert ((c < 5) == (x < 5)).all() and (np.abs(c - x) <= 3).all() and (c != x).all()
    assert len({(a, b) for a, b in zip(c, x)}) == len(c)  # no pair twice
    (again,) = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(0))
    assert (again["centre"] == c).all() and (again["context"] == x).all()  # deterministic for a seed
    # averaged over seeds, a context at distance d is used with probability (window - d + 1) / window
    used = {d: 0 for d in (1, 2, 3)}
    for seed in range(300):
        (p,) = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(seed))
        mask = p["centre"] == 8  # positions 5..11 hold its sentence: 3 words each side
        for d in used:
            used[d] += np.sum(np.abs(p["context"][mask] - 8) == d)
    np.testing.assert_allclose([used[d] / (2 * 300) for d in (1, 2, 3)], [1, 2 / 3, 1 / 3], atol=0.05)


@pytest.mark.parametrize("model,by_window", [("cbow", False), ("skipgram", True)])
def test_windows_hold_the_pairs_context_words_grouped_by_width(model, by_window):
    """A window lists exactly the context words the pairs give its centre, first and in any order, in the
    narrowest group (width 2, 4, ..., 2W) that holds them."""
    ids = np.arange(60, dtype=np.int32)  # one id per position: a centre names its window
    sids = np.repeat(np.arange(6), 10).astype(np.int32)
    keep = np.full(60, 0.8)
    (pairs,) = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(5))
    groups = w2v.epoch_examples(ids, sids, keep, 3, model, np.random.default_rng(5), by_window=by_window)
    assert [g["context"].shape[1] for g in groups] == [2, 4, 6]
    windows = {}
    for g in groups:
        width = g["context"].shape[1]
        present = g["context"] >= 0
        count = present.sum(1)
        assert ((count > width - 2) & (count <= width)).all()
        assert (present == (np.arange(width) < count[:, None])).all()
        windows.update({int(c): sorted(row[row >= 0]) for c, row in zip(g["centre"], g["context"])})
    expected = {int(c): sorted(pairs["context"][pairs["centre"] == c]) for c in np.unique(pairs["centre"])}
    assert windows == expected and len(expected) > 30
    assert sum(len(g["centre"]) for g in groups) == len(expected)  # each window once


@pytest.mark.parametrize("model,shared", [("skipgram", False), ("skipgram", True), ("cbow", False)])
def test_words_sharing_contexts_end_up_nearest_neighbours(model, shared):
    rng = np.random.default_rng(0)
    # two topics: animals appear with animal words, vehicles with vehicle words
    animals, vehicles = ["cat", "dog", "horse", "cow"], ["car", "bus", "truck", "train"]
    sentences = [list(rng.choice(animals if rng.random() < 0.5 else vehicles, 8)) for _ in range(3000)]
    # a batch is 128 pairs, or 32 windows of ~4 pairs with shared negatives
    cfg = w2v.Word2VecConfig(model=model, dim=16, window=3, negative=3, min_count=1, sample=0, epochs=3,
                             batch_size=32 if shared else 128, steps_per_call=8, shared_negatives=shared)
    vectors, stats = w2v.train_word2vec(sentences, cfg, log=lambda _: None)
    assert stats["corpus_words"] == 24_000 and len(vectors) == 8
    for group in (animals, vehicles):
        for word in group:
            top3 = {w for w, _ in nearest(vectors, word, k=3)}
            assert top3 == set(group) - {word}


def test_word2vec_cli_writes_vectors_gensim_format_and_scores_then_neighbors(data_dir, tmp_path, capsys):
    from nlpdl.cli import main
    from nlpdl.embeddings.vectors import read_word2vec

    run = tmp_path / "w2v"
    args = ["word2vec", "corpus=botchan", "dim=16", "epochs=1", "min_count=3", "model=cbow", "--workdir", str(run),
            "--data-dir", str(data_dir)]
    assert main(args) == 0
    results = json.loads((run / "results.json").read_text())
    assert set(results) == {"training", "analogy", "ws353", "simlex999", "men", "rw"}
    assert json.loads((run / "config.json").read_text())["model"] == "cbow"
    vectors = read_word2vec(run / "vectors.bin")
    assert vectors.matrix.shape == (results["training"]["vocab_size"], 16) and vectors.words[0] == "the"
    capsys.readouterr()
    assert main(["neighbors", str(run), "the", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["neighbors", str(run), "zzzunknown"]) == 2
    assert main(args) == 2  # a finished run is never overwritten
    assert main(["word2vec", "dimm=3", "--workdir", str(tmp_path / "x"), "--data-dir", str(data_dir)]) == 2
    assert "Did you mean dim" in capsys.readouterr().err


def test_devices_train_side_by_side_and_their_updates_add_up():
    """On a 2-device mesh one call equals the start plus each device's own single-device updates on its half."""
    script = r"""
import jax, jax.numpy as jnp, numpy as np
from nlpdl.embeddings import word2vec as w2v
V, D, S, B = 20, 8, 3, 4
rng = np.random.default_rng(0)
params = (jnp.asarray(rng.normal(size=(V, D)), jnp.float32) * 0.1, jnp.asarray(rng.normal(size=(V, D)), jnp.float32) * 0.1)
batches = {"centre": rng.integers(0, V - 1, (S, 2 * B)).astype(np.int32),
           "context": rng.integers(0, V - 1, (S, 2 * B)).astype(np.int32), "weight": np.ones((S, 2 * B), np.float32)}
lrs, key = jnp.full((S,), 0.5), jax.random.PRNGKey(0)
noise = w2v.noise_table(np.r_[np.zeros(V - 1), 1.0])  # every negative is the last word: keys do not matter
copy = lambda p: tuple(jnp.array(x, copy=True) for x in p)
two, _ = w2v.make_train_chunk(w2v.local_mesh(2), "skipgram", 2)(copy(params), (batches,), (lrs,), key, noise)
one = w2v.make_train_chunk(w2v.local_mesh(1), "skipgram", 2)
halves = [one(copy(params), ({k: v[:, h * B:(h + 1) * B] for k, v in batches.items()},), (lrs,), key, noise)[0]
          for h in (0, 1)]
for t in range(2):
    expected = params[t] + (halves[0][t] - params[t]) + (halves[1][t] - params[t])
    np.testing.assert_allclose(two[t], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(halves[0][t], params[t]) and not np.allclose(halves[1][t], params[t])
print("OK", len(two[0].sharding.device_set))
"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags("--xla_force_host_platform_device_count=2")}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0 and "OK 2" in res.stdout, res.stderr[-3000:]


def test_shared_negatives_window_step_equals_the_pair_step_on_its_pairs():
    """With the same noise words, a window of skip-gram pairs updates and scores exactly as its pairs one by one
    in one batch: sharing changes which negatives are drawn, not the loss or the gradients."""
    V, D, K = 12, 6, 3
    rng = np.random.default_rng(1)
    params = tuple(jax.numpy.asarray(rng.normal(size=(V, D)) * 0.3, jax.numpy.float32) for _ in range(2))
    context = np.array([[1, 2, -1, 4], [5, -1, -1, 6], [7, 8, 9, 2]], np.int32)
    centre = np.array([3, 0, 10], np.int32)
    windows = {"centre": centre, "context": context, "weight": np.array([1, 1, 0], np.float32)}  # 3rd is padding
    rows, cols = np.nonzero((context >= 0) & (windows["weight"][:, None] > 0))
    pairs = {"centre": context[rows, cols], "context": centre[rows], "weight": np.ones(len(rows), np.float32)}
    noise = w2v.noise_table(np.r_[np.zeros(V - 1), 1.0])  # every noise word is word V-1
    key = jax.random.PRNGKey(0)
    (a0, a1), loss_w = w2v.skipgram_window_step(params, windows, 0.1, key, noise, K)
    (b0, b1), loss_p = w2v.skipgram_step(params, pairs, 0.1, key, noise, K)
    np.testing.assert_allclose(a0, b0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a1, b1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss_w, loss_p, rtol=1e-5)
    assert not np.allclose(a0, params[0]) and not np.allclose(a1, params[1])


def test_cpu_devices_flag_trains_word2vec_on_that_many_devices(data_dir, tmp_path):
    run = tmp_path / "w2v"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags()}
    res = subprocess.run([sys.executable, "-m", "nlpdl.cli", "--cpu-devices", "2", "word2vec", "corpus=botchan", "dim=8",
                          "epochs=1", "min_count=3", "--workdir", str(run), "--data-dir", str(data_dir)],
                         env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run / "results.json").read_text())["training"]["devices"] == 2


def test_steps_are_shared_out_in_proportion_to_each_groups_examples():
    assert w2v.steps_per_group([300, 100, 0], 8) == (6, 2, 1)
