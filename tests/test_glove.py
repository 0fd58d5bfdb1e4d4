"""GloVe: co-occurrence counts as cooccur.c makes them, the weighting f, glove.c's AdaGrad update, a loss that falls
epoch over epoch, words sharing contexts ending up neighbours, and the `nlpdl glove` command."""

import json
from collections import defaultdict

import jax.numpy as jnp
import numpy as np
import pytest

from nlpdl.embeddings import glove as G
from nlpdl.embeddings.evaluation import nearest
from nlpdl.embeddings.word2vec import build_vocab, encode


def naive_cooccurrence(sentences: list[list[int]], window: int, symmetric: bool) -> dict[tuple[int, int], float]:
    counts: dict[tuple[int, int], float] = defaultdict(float)
    for s in sentences:
        for p in range(len(s)):
            for q in range(p + 1, min(p + window + 1, len(s))):
                counts[s[p], s[q]] += 1 / (q - p)
                if symmetric:
                    counts[s[q], s[p]] += 1 / (q - p)
    return counts


@pytest.mark.parametrize("symmetric", [True, False])
def test_cooccurrence_equals_a_double_loop_within_sentences_weighted_by_one_over_distance(symmetric):
    text = ["the cat sat on the mat", "the dog", "x", "a cat and a dog sat on the cat rare", "", "dog dog the cat"]
    sentences = [line.split() for line in text]
    words, _ = build_vocab(sentences, min_count=2)  # "mat", "x", "and", "rare" are dropped before pairing
    ids, sids = encode(sentences, words)
    kept = [[words.index(w) for w in s if w in words] for s in sentences]
    rng = np.random.default_rng(0)
    random = [list(rng.integers(0, 7, rng.integers(0, 12))) for _ in range(40)]  # repeats, empty and short sentences
    for window in (1, 2, 3, 5, 20):
        for sents, vocab_size in ((kept, len(words)), (random, 7)):
            flat = np.asarray([w for s in sents for w in s], np.int32)
            sent_ids = np.asarray([k for k, s in enumerate(sents) for _ in s], np.int32)
            if sents is kept:
                assert (flat == ids).all() and (sent_ids == sids).all()
            rows, cols, values = G.cooccurrence(flat, sent_ids, vocab_size, window, symmetric)
            assert rows.dtype == cols.dtype == np.int32 and values.dtype == np.float32
            assert (np.diff(rows.astype(np.int64) * vocab_size + cols) > 0).all()  # sorted, each entry once
            expected = naive_cooccurrence(sents, window, symmetric)
            assert set(zip(rows.tolist(), cols.tolist())) == set(expected)
            np.testing.assert_allclose(values, [expected[r, c] for r, c in zip(rows, cols)], rtol=1e-6)
    x = G.cooccurrence(ids, sids, len(words), 2, symmetric)
    dense = np.zeros((len(words), len(words)))
    dense[x[0], x[1]] = x[2]
    the, cat, sat, dog = (words.index(w) for w in ("the", "cat", "sat", "dog"))
    assert dense[the, cat] == 3 and dense[cat, the] == (3 if symmetric else 0)  # "the cat" thrice, never "cat ? the"
    assert dense[sat, the] == (1.5 if symmetric else 1)  # "sat on the" twice, 1/2 each; "the cat sat" once
    assert dense[dog, dog] == (2 if symmetric else 1)  # "dog dog": one pair, both ways
    assert (dense == dense.T).all() == symmetric


def test_weighting_is_min_of_one_and_x_over_x_max_to_the_alpha():
    x = np.array([0.0, 1.0, 50.0, 100.0, 1e4], np.float32)
    np.testing.assert_allclose(G.weighting(x, 100.0, 0.75), [0, 0.01 ** 0.75, 0.5 ** 0.75, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(G.weighting(x, 10.0, 1.0), [0, 0.1, 1, 1, 1], rtol=1e-6)


def glove_c_update(w, gradsq, i, j, x, lr, x_max, alpha):
    """glove.c's loop body for one record (word1 = i, word2 = j already offset by V), in float64."""
    dim = w.shape[1] - 1
    diff = w[i, :dim] @ w[j, :dim] + w[i, dim] + w[j, dim] - np.log(x)
    fdiff = diff if x > x_max else (x / x_max) ** alpha * diff
    cost = 0.5 * fdiff * diff
    fdiff *= lr
    temp1, temp2 = fdiff * w[j, :dim], fdiff * w[i, :dim]
    up1, up2 = temp1 / np.sqrt(gradsq[i, :dim]), temp2 / np.sqrt(gradsq[j, :dim])
    gradsq[i, :dim] += temp1 ** 2
    gradsq[j, :dim] += temp2 ** 2
    w[i, :dim] -= up1
    w[j, :dim] -= up2
    w[i, dim] -= fdiff / np.sqrt(gradsq[i, dim])
    w[j, dim] -= fdiff / np.sqrt(gradsq[j, dim])
    gradsq[i, dim] += fdiff ** 2
    gradsq[j, dim] += fdiff ** 2
    return cost


def test_a_batch_of_entries_with_distinct_words_is_glove_c_applied_to_each_in_turn():
    vocab_size, dim = 10, 6
    w, gradsq = (np.asarray(a, np.float64) for a in G.init_params(vocab_size, dim, seed=3))
    gradsq += np.random.default_rng(0).random(gradsq.shape)  # as after earlier updates
    w *= 40  # big enough that the updates are far from zero
    rows, cols = np.array([0, 3, 7, 5], np.int32), np.array([4, 3, 1, 8], np.int32) + vocab_size
    x = np.array([0.5, 3.0, 150.0, 20.0], np.float32)
    batch = {"row": rows, "col": cols, "x": x, "mask": np.array([1, 1, 1, 0], np.float32)}  # the last is padding
    (w_new, gradsq_new), loss = G.glove_step((jnp.asarray(w, jnp.float32), jnp.asarray(gradsq, jnp.float32)), batch,
                                             0.05, 100.0, 0.75)
    cost = sum(glove_c_update(w, gradsq, i, j, float(v), 0.05, 100.0, 0.75) for i, j, v in zip(rows[:3], cols[:3], x))
    np.testing.assert_allclose(w_new, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradsq_new, gradsq, rtol=1e-5)
    assert float(loss) == pytest.approx(2 * cost, rel=1e-5)  # glove.c's cost is half of f * diff^2


def test_loss_falls_epoch_over_epoch_on_botchan(data_dir):
    from nlpdl.embeddings.run import corpus_sentences

    cfg = G.GloVeConfig(corpus="botchan", dim=16, epochs=5, batch_size=1024, steps_per_call=16)
    vectors, stats = G.train_glove(corpus_sentences(data_dir, "botchan"), cfg, log=lambda _: None)
    losses = stats["loss_per_epoch"]
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:])), losses
    assert vectors.matrix.shape == (stats["vocab_size"], 16) and np.isfinite(vectors.matrix).all()


def test_words_sharing_contexts_end_up_nearest_neighbours():
    rng = np.random.default_rng(0)
    # two topics, animals with animal words and vehicles with vehicle words, and function words in both
    animals, vehicles, common = ["cat", "dog", "horse", "cow"], ["car", "bus", "truck", "train"], ["the", "a", "and"]
    sentences = [list(rng.choice((animals if rng.random() < 0.5 else vehicles) + common, 8)) for _ in range(2000)]
    cfg = G.GloVeConfig(dim=16, window=3, min_count=1, epochs=30, batch_size=16, steps_per_call=4)
    vectors, stats = G.train_glove(sentences, cfg, log=lambda _: None)
    assert stats["corpus_words"] == 16_000 and len(vectors) == 11 and stats["nonzeros"] == 11 * 11 - 2 * 16
    for group in (animals, vehicles):
        for word in group:
            top3 = {w for w, _ in nearest(vectors, word, k=3)}
            assert top3 == set(group) - {word}


def test_glove_cli_writes_vectors_and_scores_and_never_overwrites_a_finished_run(data_dir, tmp_path, capsys):
    from nlpdl.cli import main
    from nlpdl.embeddings.vectors import read_word2vec

    run = tmp_path / "glove"
    args = ["glove", "corpus=botchan", "dim=16", "epochs=2", "--workdir", str(run), "--data-dir", str(data_dir)]
    assert main(args) == 0
    results = json.loads((run / "results.json").read_text())
    assert set(results) == {"training", "analogy", "ws353", "simlex999", "men", "rw"}
    assert len(results["training"]["loss_per_epoch"]) == 2
    assert json.loads((run / "config.json").read_text())["dim"] == 16
    vectors = read_word2vec(run / "vectors.bin")
    assert vectors.matrix.shape == (results["training"]["vocab_size"], 16) and vectors.words[0] == "the"
    assert "analogy total" in capsys.readouterr().out
    assert main(["neighbors", str(run), "the", "-k", "3"]) == 0
    assert main(args) == 2  # a finished run is never overwritten
    assert main(["glove", "dimm=3", "--workdir", str(tmp_path / "x"), "--data-dir", str(data_dir)]) == 2
    assert "Did you mean dim" in capsys.readouterr().err
    assert main(["glove", "epochs=0", "--workdir", str(tmp_path / "x"), "--data-dir", str(data_dir)]) == 2
