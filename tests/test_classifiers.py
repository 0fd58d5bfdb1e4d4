"""The course's classifiers: padding never changes a sentence's logits, output shapes, the datasets' protocols
(CV folds, fixed splits, SST phrases), Kim's max-norm, a tiny end-to-end run per architecture, predict."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nlpdl import config as C
from nlpdl import parallel
from nlpdl.cli import main as nlpdl_main
from nlpdl.models import DataSpec, build_model
from nlpdl.models.cnn import CNNConfig
from nlpdl.models.ffn import FFNConfig
from nlpdl.models.rnn_classifier import RNNClassifierConfig
from nlpdl.models.transformer_classifier import TransformerClassifierConfig
from nlpdl.nn.dropout import LEVELS, keep_threshold
from nlpdl.predict import predict_run
from nlpdl.tasks import classification
from nlpdl.train.checkpoint import Checkpointer
from nlpdl.train.loop import build_trainer, evaluate, train
from nlpdl.train.optim import output_max_norm

SPEC = DataSpec(num_outputs=3, vocab_size=40, seq_len=10)
MODELS = {
    "ffn": FFNConfig(embed_dim=8, hidden=8),
    "cnn": CNNConfig(embed_dim=8, maps=4),
    "cnn-pool-padding": CNNConfig(embed_dim=8, maps=4, pool_padding=True),
    "rnn-mean": RNNClassifierConfig(cell="rnn", embed_dim=8, hidden=6, pooling="mean"),
    "lstm-final": RNNClassifierConfig(cell="lstm", embed_dim=8, hidden=6),
    "gru-max": RNNClassifierConfig(cell="gru", embed_dim=8, hidden=6, pooling="max"),
    "bilstm-2layers": RNNClassifierConfig(cell="lstm", embed_dim=8, hidden=6, num_layers=2, bidirectional=True),
    "bigru-final": RNNClassifierConfig(cell="gru", embed_dim=8, hidden=6, bidirectional=True),
    "birnn-max": RNNClassifierConfig(cell="rnn", embed_dim=8, hidden=6, pooling="max", bidirectional=True),
    "transformer-cls": TransformerClassifierConfig(d_model=16, num_heads=2, d_ff=16, max_len=10),
    "transformer-mean": TransformerClassifierConfig(d_model=16, num_heads=4, num_layers=2, d_ff=16, max_len=10,
                                                    pooling="mean", positions="sinusoidal"),
}


def padded_batch():
    lengths_B = np.array([3, 10, 1, 6])
    tokens_BxL = np.array(jax.random.randint(jax.random.PRNGKey(0), (4, 10), 2, 40))
    tokens_BxL[np.arange(10)[None] >= lengths_B[:, None]] = 7  # padding that is not even the pad id
    return tokens_BxL, lengths_B


@pytest.mark.parametrize("name", MODELS)
def test_a_padded_batch_gives_each_sentence_its_logits_alone(name):
    model = nnx.jit(lambda m, batch: m(batch))
    params = build_model(MODELS[name], SPEC, nnx.Rngs(0))
    tokens_BxL, lengths_B = padded_batch()
    together = model(params, {"tokens": jnp.asarray(tokens_BxL), "lengths": jnp.asarray(lengths_B)})
    assert together.shape == (4, 3)
    for i, n in enumerate(lengths_B):
        alone = model(params, {"tokens": jnp.asarray(tokens_BxL[i:i + 1, :n]),
                               "lengths": jnp.asarray(lengths_B[i:i + 1])})
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-5, atol=1e-6)


def test_the_backward_direction_reads_each_sentence_from_its_own_end():
    model = build_model(MODELS["bilstm-2layers"], SPEC, nnx.Rngs(0))
    tokens_BxL, lengths_B = padded_batch()
    batch = {"tokens": jnp.asarray(tokens_BxL), "lengths": jnp.asarray(lengths_B)}
    outputs, final_BxH = model.layer_outputs(batch)
    assert [o.shape for o in outputs] == [(4, 10, 8), (4, 10, 12), (4, 10, 12)]  # embeddings, 2 layers x 2 dirs
    # the backward final state is the backward output at the first token; the forward one at the last token
    np.testing.assert_allclose(final_BxH[:, 6:], outputs[-1][:, 0, 6:], rtol=1e-6)
    np.testing.assert_allclose(final_BxH[:, :6], outputs[-1][np.arange(4), lengths_B - 1, :6], rtol=1e-6)


def test_max_norm_keeps_every_output_column_within_the_bound():
    params = {"out": {"kernel": jnp.array([[3.0, 0.1], [4.0, 0.1]]), "bias": jnp.array([9.0, 9.0])},
              "embed": {"kernel": jnp.full((2, 2), 10.0)}}
    tx = optax.chain(optax.sgd(1.0), output_max_norm(3.0))
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["out"]["kernel"][:, 0], [1.8, 2.4], rtol=1e-6)  # norm 5 -> 3
    np.testing.assert_allclose(new["out"]["kernel"][:, 1], [0.1, 0.1])  # within the bound: untouched
    assert float(new["embed"]["kernel"].max()) == 10.0 and float(new["out"]["bias"][0]) == 9.0


@pytest.mark.parametrize("dataset,sizes,classes", [
    ("subj", (10_000, 1000), 2), ("cr", (3771, 378), 2), ("mpqa", (10_603, 1061), 2)])
def test_cv_datasets_split_by_fold_and_cover_everything_across_folds(dataset, sizes, classes, data_dir):
    total, first_fold = sizes
    base = C.apply_overrides(C.get(f"{dataset}_cnn:tiny"), ["data.max_vocab=0"])
    seen = []
    for fold in (0, 9):
        data = classification.load_data(C.apply_overrides(base, [f"data.fold={fold}"]), data_dir)
        test = [b for b in data.evals["test"]()]
        rows = sum(int(b["weights"].sum()) for b in test)
        seen.append(np.concatenate([b["tokens"][b["weights"] > 0] for b in test]))
        assert data.spec.num_outputs == classes
        if fold == 0:
            assert rows == first_fold
        valid = sum(int(b["weights"].sum()) for b in data.evals["valid"]())
        assert valid == round((total - rows) * 0.1)
    assert not np.array_equal(seen[0][:50], seen[1][:50])


def test_fixed_split_datasets_and_sst_phrases(data_dir):
    sst2 = C.apply_overrides(C.get("sst2_cnn:tiny"), ["data.max_vocab=0"])
    sentences = classification.load_data(sst2, data_dir)
    phrases = classification.load_data(C.apply_overrides(sst2, ["data.phrases=true"]), data_dir)
    count = lambda data, split: sum(int(b["weights"].sum()) for b in data.evals[split]())  # noqa: E731
    assert count(sentences, "valid") == count(phrases, "valid") == 872  # dev and test stay sentences
    assert count(sentences, "test") == count(phrases, "test") == 1821
    assert sentences.steps_per_epoch == 6920 // 50 and phrases.steps_per_epoch == 77_195 // 50
    sst5 = classification.load_data(C.get("sst5_lstm:tiny"), data_dir)
    assert sst5.spec.num_outputs == 5 and count(sst5, "test") == 2210
    trec = classification.load_data(C.get("trec_gru:tiny"), data_dir)
    assert trec.spec.num_outputs == 6 and count(trec, "test") == 500
    assert count(trec, "valid") == round(5452 * 0.1)


@pytest.mark.parametrize("name", ["sst2_ffn", "sst2_cnn", "trec_rnn", "sst2_lstm", "sst5_gru", "sst2_bilstm",
                                  "sst2_transformer"])
def test_tiny_run_per_architecture_learns(name, data_dir, tmp_path):
    cfg = C.get(f"{name}:tiny")
    results = train(cfg, tmp_path / "run", data_dir, progress=False)
    assert results["num_params"] > 0 and (tmp_path / "run" / "timing.json").is_file()
    # 12 tiny steps move the valid loss by less than its noise (Adadelta starts slowly): the run must fit the
    # batches it trained on better than its initial parameters do
    t = build_trainer(cfg, data_dir)
    step, state, _ = Checkpointer(tmp_path / "run", cfg.train.max_to_keep).restore_latest(t.abstract,
                                                                                        iter(t.data.train))
    seen = list(itertools.islice(iter(t.data.train), cfg.train.steps))
    loss = lambda params: evaluate(t.eval_fn, params, t.eval_carry, seen, t.mesh, t.task.summarize)["loss"]  # noqa: E731
    assert step == cfg.train.steps and loss(state.params) < loss(t.init_state().params)


def test_predict_prints_class_probabilities_tokenised_as_in_training(data_dir, tmp_path, capsys):
    cfg = C.apply_overrides(C.get("sst2_cnn:tiny"), ["train.steps=4"])
    train(cfg, tmp_path / "run", data_dir, progress=False)
    rows = predict_run(tmp_path / "run", ["a gorgeous , witty , seductive movie .", "dull"], data_dir)
    assert [set(r) for r in rows] == [{"negative", "positive"}] * 2
    for r in rows:
        assert sum(r.values()) == pytest.approx(1.0, abs=1e-5)
    capsys.readouterr()
    assert nlpdl_main(["predict", str(tmp_path / "run"), "a gorgeous , witty , seductive movie .",
                       "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(max(rows[0], key=rows[0].get)) and f"{rows[0]['positive']:.4f}" in out
    train(C.get("ptb_nplm:tiny"), tmp_path / "lm", data_dir, progress=False)
    assert nlpdl_main(["predict", str(tmp_path / "lm"), "hello", "--data-dir", str(data_dir)]) == 2
    assert "not a sentence classifier" in capsys.readouterr().err


@pytest.mark.parametrize("name,dropout", [("trec_cnn", []), ("trec_bilstm", ["model.dropout=0"]),
                                          ("trec_transformer", ["model.dropout=0"])])
def test_padding_each_batch_to_its_longest_trains_what_padding_to_max_len_does(data_dir, tmp_path, name, dropout):
    """Only the padding is cut, which every model masks: the same run up to the order of float sums. (Dropout
    over token positions would draw its masks for the cut shape: off, except the CNN's, over pooled features.)"""
    overrides = ["train.steps=12", "data.max_len=64", *dropout]
    cut = C.apply_overrides(C.get(f"{name}:tiny"), [*overrides, "data.padding=longest"])
    assert next(iter(classification.load_data(cut, data_dir).train))["tokens"].shape[1] < 64
    results = {}
    for padding in ("max_len", "longest"):
        cfg = C.apply_overrides(C.get(f"{name}:tiny"), [*overrides, f"data.padding={padding}"])
        train(cfg, tmp_path / padding, data_dir, progress=False)
        results[padding] = json.loads((tmp_path / padding / "results.json").read_text())
    for split in ("valid", "test"):
        a, b = results["max_len"][split], results["longest"][split]
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=2.5e-3)  # at most one question of 500 flips
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_ablation_trains_each_architecture_over_seeds_and_writes_table_and_chart(data_dir, tmp_path, capsys):
    out = tmp_path / "ablation"
    args = ["ablate", "sst2", "train.steps=4", "--variant", "tiny", "--seeds", "2", "--models", "ffn,bilstm",
            "--out-dir", str(out), "--data-dir", str(data_dir), "--no-progress"]
    assert nlpdl_main(args) == 0
    table = (out / "ablation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| sst2_")]
    assert [r.split(" | ")[0] for r in rows] == ["| sst2_ffn:tiny", "| sst2_bilstm:tiny"]
    for row, name in zip(rows, ["sst2_ffn", "sst2_bilstm"]):
        runs = sorted((out / f"{name}_tiny").glob("seed=*/results.json"))
        accs = [json.loads(p.read_text())["test"]["accuracy"] for p in runs]
        assert len(accs) == 2 and f"{np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f}" in row
        assert f"{json.loads(runs[0].read_text())['num_params']:,}" in row and " 2/2 " in row
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert nlpdl_main(args) == 0  # everything finished: nothing retrains
    assert "finished, skipped" in capsys.readouterr().out
    assert nlpdl_main([*args[:-5], "--models", "ffn,nope", "--out-dir", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_an_ablation_with_seed_keys_draws_the_data_seed_per_seed_too(data_dir, tmp_path):
    out = tmp_path / "ablation"
    assert nlpdl_main(["ablate", "trec", "train.steps=2", "train.eval_every=2", "--variant", "tiny", "--seeds", "2",
                       "--models", "ffn", "--seed-keys", "train.seed,data.seed", "--out-dir", str(out),
                       "--data-dir", str(data_dir), "--no-progress"]) == 0
    for k in range(2):
        saved = json.loads((out / "trec_ffn_tiny" / f"seed={k}" / "config.json").read_text())
        assert saved["train"]["seed"] == saved["data"]["seed"] == k
    table = (out / "ablation.md").read_text()
    assert "- seeds: each sets `train.seed`, `data.seed`" in table and "| trec_ffn:tiny | 2/2 |" in table


def test_folds_sweep_runs_every_fold_and_reports_their_mean_and_std(data_dir, tmp_path, capsys):
    out = tmp_path / "folds"
    assert nlpdl_main(["sweep", "cr_ffn:tiny", "train.steps=2", "train.eval_every=2", "--sweep", "folds",
                       "--sweep-dir", str(out), "--data-dir", str(data_dir), "--no-progress"]) == 0
    runs = sorted(out.glob("data.fold=*,seed=0/results.json"))
    assert len(runs) == 10
    accs = [json.loads(p.read_text())["test"]["accuracy"] for p in runs]
    report = (out / "report.md").read_text()
    assert "pooled like seeds: `data.fold` (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in report
    assert "| **10/10** | " in report and f"{np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f}" in report


def test_cnn_static_nonstatic_multichannel_start_from_the_vectors_and_train_as_named(data_dir, tmp_path):
    from nlpdl.embeddings.vectors import Vectors, write_word2vec_text

    rng = np.random.default_rng(0)
    words = ("the", "movie", "Film", "good", "bad", "not-in-sst-xyz")
    vectors = Vectors(words=words, matrix=rng.normal(size=(len(words), 8)).astype(np.float32))
    write_word2vec_text(tmp_path / "vecs.txt", vectors)
    embeddings = {}
    for mode in ("static", "nonstatic", "multichannel"):
        cfg = C.apply_overrides(C.get(f"sst2_cnn_{mode}:tiny"), [f"model.vectors={tmp_path / 'vecs.txt'}"])
        t = build_trainer(cfg, data_dir)
        vocab = t.data.spec.vocab
        start = t.init_state().params
        for word, row in (("movie", 1), ("film", 2)):  # exact match, then a case variant
            np.testing.assert_array_equal(start["embed"]["embedding"][vocab.index(word)], vectors.matrix[row])
        state, it = t.init_state(), iter(t.data.train)
        for _ in range(3):
            state, _ = t.step_fn(state, parallel.put_batch(next(it), t.mesh))
        moved = lambda name: not np.allclose(start[name]["embedding"], state.params[name]["embedding"])  # noqa: E731
        embeddings[mode] = (moved("embed"), moved("tuned") if "tuned" in start else None)
    assert embeddings == {"static": (False, None), "nonstatic": (True, None), "multichannel": (False, True)}
    with pytest.raises(C.ConfigError, match="needs model.vectors"):
        build_trainer(C.apply_overrides(C.get("sst2_cnn_static:tiny"), ["model.vectors="]), data_dir)


def test_kim_cleaning_is_used_in_training_and_prediction_alike(data_dir):
    trec = C.apply_overrides(C.get("trec_cnn:tiny"), ["data.clean=kim", "data.max_vocab=0"])
    data = classification.load_data(trec, data_dir)
    words = set(data.spec.vocab)
    assert {"What", "How", "?"} <= words and not any("." in w or ":" in w for w in words)  # TREC keeps case
    vocab = classification.WordVocab(data.spec.vocab)
    batch = classification.encode_sentences(["What's the Full form of .com ?"], vocab, trec.data)
    expected = list(vocab.encode(["What", "'s", "the", "Full", "form", "of", "com", "?"]))
    assert list(np.asarray(batch["tokens"][0, :8])) == expected and int(batch["lengths"][0]) == 8
    mr = C.apply_overrides(C.get("mr_cnn:tiny"), ["data.clean=kim", "data.max_vocab=0"])
    mr_words = set(classification.load_data(mr, data_dir).spec.vocab[2:])
    assert {"'s", "n't"} <= mr_words and all(w == w.lower() for w in mr_words)


def test_cnn_softmax_layer_can_start_at_zero_as_in_kims_code(data_dir):
    for out_init, all_zero in (("zeros", True), ("lecun_normal", False)):
        cfg = C.apply_overrides(C.get("trec_cnn:tiny"), [f"model.out_init={out_init}"])
        kernel = build_trainer(cfg, data_dir).init_state().params["out"]["kernel"]
        assert bool(jnp.all(kernel == 0)) == all_zero
    with pytest.raises(C.ConfigError):
        C.apply_overrides(C.get("trec_cnn:tiny"), ["model.out_init=ones"])


def test_cnn_filters_can_start_as_in_kims_code(data_dir):
    def uniform_within_kims_bound(conv_init):
        cfg = C.apply_overrides(C.get("trec_cnn:tiny"), [f"model.conv_init={conv_init}", "model.maps=40"])
        convs = build_trainer(cfg, data_dir).init_state().params["convs"]
        for k, width in enumerate(cfg.model.widths):
            fan_in = width * cfg.model.embed_dim
            positions = cfg.data.max_len + 2 * (max(cfg.model.widths) - 1) - width + 1
            bound = np.sqrt(6 / (fan_in + cfg.model.maps * fan_in / positions))
            kernel = np.asarray(convs[k]["kernel"])
            assert kernel.shape == (width, cfg.model.embed_dim, cfg.model.maps)
            if not (np.abs(kernel).max() <= bound and abs(kernel.std() / (bound / np.sqrt(3)) - 1) < 0.1):
                return False
        return True

    assert uniform_within_kims_bound("kim") and not uniform_within_kims_bound("lecun_normal")


def test_cnn_pool_padding_gives_the_max_of_kims_layout_every_sentence_padded_to_the_longest():
    model = build_model(CNNConfig(embed_dim=8, maps=16, pool_padding=True), SPEC, nnx.Rngs(0))
    for k, conv in enumerate(model.convs):  # biases of both signs, so that relu(bias) floors some maps
        conv.bias[...] = jax.random.normal(jax.random.PRNGKey(k), conv.bias.shape)
    tokens_BxL, lengths_B = padded_batch()
    batch = {"tokens": jnp.asarray(tokens_BxL), "lengths": jnp.asarray(lengths_B)}
    widest = max(model.widths)
    kims = []
    for i, n in enumerate(lengths_B):  # widest-1 zeros, the words, zeros up to SPEC.seq_len + 2 (widest-1)
        x_1xTxD = jnp.zeros((1, SPEC.seq_len + 2 * (widest - 1), 8))
        x_1xTxD = x_1xTxD.at[0, widest - 1:widest - 1 + n].set(model.embed(jnp.asarray(tokens_BxL[i, :n])))
        kims.append(jnp.concatenate([jnp.max(jax.nn.relu(conv(x_1xTxD)), axis=1)[0] for conv in model.convs]))
    np.testing.assert_allclose(model.features(batch), jnp.stack(kims), rtol=1e-5, atol=1e-6)
    model.pool_padding = False  # the default leaves the zero windows out, which here changes some features
    assert not np.allclose(model.features(batch), jnp.stack(kims), atol=1e-3)


def test_cnn_with_kims_dropout_is_the_default_model_with_its_softmax_weights_scaled_by_the_keep_probability():
    tokens_BxL, lengths_B = padded_batch()
    batch = {"tokens": jnp.asarray(tokens_BxL), "lengths": jnp.asarray(lengths_B)}
    kims = build_model(CNNConfig(embed_dim=8, maps=4, dropout_scaling="test"), SPEC, nnx.Rngs(0))
    default = build_model(CNNConfig(embed_dim=8, maps=4), SPEC, nnx.Rngs(0))
    keep = keep_threshold(0.5) / LEVELS
    default.out.kernel[...] = kims.out.kernel[...] * keep
    for train in (False, True):
        np.testing.assert_allclose(kims(batch, train=train, rngs=nnx.Rngs(dropout=3)),
                                   default(batch, train=train, rngs=nnx.Rngs(dropout=3)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(kims(batch), build_model(CNNConfig(embed_dim=8, maps=4), SPEC, nnx.Rngs(0))(batch))


def test_kims_fixed_batches_give_epochs_of_whole_batches_that_cover_the_training_split(data_dir):
    cfg = C.apply_overrides(C.get("trec_cnn:tiny"), ["data.batches=fixed", "data.batch_size=64"])
    labels_N = np.asarray(classification.read_texts(cfg, data_dir)[0]["train"][1])
    data = classification.load_data(cfg, data_dir)
    assert data.steps_per_epoch == -(-len(labels_N) // 64)
    it = iter(data.train)
    epoch_labels = np.concatenate([next(it)["labels"] for _ in range(data.steps_per_epoch)])
    counts, train_counts = (np.bincount(x, minlength=6) for x in (epoch_labels, labels_N))
    assert len(epoch_labels) - len(labels_N) < 64 and (counts >= train_counts).all()  # every row, a few repeats


def test_kims_vocabulary_gives_test_words_their_own_vectors_which_training_leaves_alone(data_dir):
    train_only = C.apply_overrides(C.get("trec_cnn:tiny"), ["data.max_vocab=0"])
    every = C.apply_overrides(train_only, ["data.vocab_from=all"])
    words, all_words = (classification.load_data(c, data_dir).spec.vocab for c in (train_only, every))
    assert all_words[:len(words)] == words
    texts, _ = classification.read_texts(every, data_dir)
    tokenize = classification.sentence_tokenizer(every.data)
    unseen = sorted({w for s in texts["test"][0] for w in tokenize(s)} - set(words))
    assert unseen and set(unseen) <= set(all_words)
    rows = np.array([all_words.index(w) for w in unseen[:5]])
    t = build_trainer(every, data_dir)
    start = np.asarray(t.init_state().params["embed"]["embedding"])
    state, it = t.init_state(), iter(t.data.train)
    for _ in range(3):
        state, _ = t.step_fn(state, parallel.put_batch(next(it), t.mesh))
    embedding = np.asarray(state.params["embed"]["embedding"])
    assert np.array_equal(embedding[rows], start[rows]) and not np.array_equal(embedding, start)
    assert len({tuple(r) for r in start[rows]}) == len(rows)  # not one shared unknown-word vector
