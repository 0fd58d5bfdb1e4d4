"""word2vec: gensim's subsampling and noise distributions, the dynamic window's examples, and training that
puts words sharing contexts next to each other."""

import json

import jax
import numpy as np
import pytest

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
    draws = w2v._negatives(jax.random.PRNGKey(0), np.cumsum(p).astype(np.float32), (200_000,))
    np.testing.assert_allclose(np.bincount(np.asarray(draws), minlength=3) / 200_000, p, atol=0.005)


def test_examples_stay_in_their_sentence_and_within_the_reduced_window():
    ids = np.arange(12, dtype=np.int32)
    sids = np.array([0] * 5 + [1] * 7, np.int32)
    keep = np.ones(12)
    pairs = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(0))
    c, x = pairs["centre"], pairs["context"]
    assert ((c < 5) == (x < 5)).all() and (np.abs(c - x) <= 3).all() and (c != x).all()
    full = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(0))
    assert len(full["centre"]) == len(c)  # deterministic for a seed
    # averaged over seeds, a context at distance d is used with probability (window - d + 1) / window
    used = {d: 0 for d in (1, 2, 3)}
    for seed in range(300):
        p = w2v.epoch_examples(ids, sids, keep, 3, "skipgram", np.random.default_rng(seed))
        mask = p["centre"] == 8  # positions 5..11 hold its sentence: 3 words each side
        for d in used:
            used[d] += np.sum(np.abs(p["context"][mask] - 8) == d)
    np.testing.assert_allclose([used[d] / (2 * 300) for d in (1, 2, 3)], [1, 2 / 3, 1 / 3], atol=0.05)
    cbow = w2v.epoch_examples(ids, sids, keep, 3, "cbow", np.random.default_rng(0))
    assert cbow["context"].shape == (12, 6)
    for centre, row in zip(cbow["centre"], cbow["context"]):
        ctx = row[row >= 0]
        assert len(ctx) and ((ctx < 5) == (centre < 5)).all() and (np.abs(ctx - centre) <= 3).all()


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_words_sharing_contexts_end_up_nearest_neighbours(model):
    rng = np.random.default_rng(0)
    # two topics: animals appear with animal words, vehicles with vehicle words
    animals, vehicles = ["cat", "dog", "horse", "cow"], ["car", "bus", "truck", "train"]
    sentences = [list(rng.choice(animals if rng.random() < 0.5 else vehicles, 8)) for _ in range(3000)]
    cfg = w2v.Word2VecConfig(model=model, dim=16, window=3, negative=3, min_count=1, sample=0, epochs=3,
                             batch_size=128, steps_per_call=8)
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
