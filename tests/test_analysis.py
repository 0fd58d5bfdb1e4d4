"""Looking inside trained models: layer extraction for probes, the linear probe, per-layer gradient-norm logging,
gradients through time (Elman vs LSTM), attention maps."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import DATA
from flax import nnx

from nlpdl.analysis.gradflow import decay, hidden_state_gradients
from nlpdl.analysis.layers import layer_representations
from nlpdl.analysis.probing import ProbeBudget, probe_accuracy
from nlpdl.analysis.runs import open_run
from nlpdl.cli import main as nlpdl_main
from nlpdl.models import DataSpec, build_model
from nlpdl.models.cnn import CNNConfig
from nlpdl.models.ffn import FFNConfig
from nlpdl.models.rnn_classifier import RNNClassifierConfig
from nlpdl.models.rnn_lm import RNNLMConfig
from nlpdl.models.transformer_classifier import TransformerClassifierConfig
from nlpdl.models.transformer_lm import TransformerLMConfig

# pytest-xdist: its tests share one tiny trained run: one worker builds it
pytestmark = pytest.mark.xdist_group("analysis")

SPEC = DataSpec(num_outputs=3, vocab_size=40, seq_len=10)
SMALL_CORPUS = ["data.dataset=botchan", "data.tokenizer=chars"]  # a language model's tiny run in seconds
LAYERS = {  # config, expected (name, per-token width or None for one vector per sentence)
    "bilstm-2layers": (RNNClassifierConfig(cell="lstm", embed_dim=8, hidden=6, num_layers=2, bidirectional=True),
                       [("embeddings", 8), ("layer1.forward", 6), ("layer1.backward", 6), ("layer2.forward", 6),
                        ("layer2.backward", 6)]),
    "gru": (RNNClassifierConfig(cell="gru", embed_dim=8, hidden=6), [("embeddings", 8), ("layer1", 6)]),
    "transformer-cls": (TransformerClassifierConfig(d_model=16, num_heads=2, num_layers=2, d_ff=16, max_len=10),
                        [("embeddings", 16), ("block1", 16), ("block2", 16)]),
    "cnn": (CNNConfig(embed_dim=8, maps=4), [("embeddings", 8), ("features", None)]),
    "ffn": (FFNConfig(embed_dim=8, hidden=5, num_layers=2), [("embeddings", 8), ("hidden1", None), ("hidden2", None)]),
    "lstm-lm": (RNNLMConfig(cell="lstm", embed_dim=8, hidden=6, num_layers=2),
                [("embeddings", 8), ("layer1", 6), ("layer2", 6)]),
    "transformer-lm": (TransformerLMConfig(d_model=16, num_heads=2, num_layers=3, d_ff=16, context=10),
                       [("embeddings", 16), ("block1", 16), ("block2", 16), ("block3", 16)]),
}


def _batch():
    tokens = np.array([[5, 6, 7, 8, 9, 3, 4, 2, 0, 0], [11, 12, 13, 0, 0, 0, 0, 0, 0, 0]], np.int32)
    return {"tokens": jnp.asarray(tokens), "lengths": jnp.asarray([8, 3], jnp.int32)}


@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_and_direction_is_one_entry_in_order_with_its_shape(name):
    cfg, expected = LAYERS[name]
    layers = layer_representations(build_model(cfg, SPEC, nnx.Rngs(0)), _batch())
    assert [(k, v.shape[-1] if v.ndim == 3 else None) for k, v in layers.items()] == expected
    for k, v in layers.items():
        assert v.shape[:v.ndim - 1] == ((2, 10) if v.ndim == 3 else (2,)), k
        assert v.shape[-1] == (dict(expected)[k] or v.shape[-1])


def test_the_forward_half_of_a_bidirectional_layer_reads_the_past_and_the_backward_half_the_future():
    model = build_model(LAYERS["bilstm-2layers"][0], SPEC, nnx.Rngs(0))
    batch = _batch()
    changed = {**batch, "tokens": batch["tokens"].at[0, 7].set(30)}  # the first sentence's last token
    a, b = layer_representations(model, batch), layer_representations(model, changed)
    np.testing.assert_allclose(a["layer1.forward"][0, :7], b["layer1.forward"][0, :7], atol=1e-6)
    assert not np.allclose(a["layer1.backward"][0, 0], b["layer1.backward"][0, 0], atol=1e-6)
    np.testing.assert_allclose(a["layer2.backward"][1], b["layer2.backward"][1], atol=1e-6)  # other sentence


def test_the_probe_reads_a_linearly_encoded_label_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 3000)
    encoded = np.eye(4)[y] @ rng.normal(size=(4, 20)) + 0.3 * rng.normal(size=(3000, 20))
    budget = ProbeBudget(steps=300)
    assert probe_accuracy(encoded[:2000], y[:2000], encoded[2000:], y[2000:], 4, budget) > 0.95
    noise = rng.normal(size=(3000, 20))
    assert probe_accuracy(noise[:2000], y[:2000], noise[2000:], y[2000:], 4, budget) < 0.35


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    """A tiny Transformer classifier trained on MR, shared by the probe and attention tests."""
    run = tmp_path_factory.mktemp("runs") / "mr_transformer"
    assert nlpdl_main(["train", "mr_transformer:tiny", "--workdir", str(run), "--data-dir", str(DATA),
                       "--no-progress"]) == 0
    return run


def test_probe_command_writes_a_table_per_layer_with_the_control(data_dir, transformer_run, capsys):
    run = transformer_run
    small = ["--steps", "100", "--train-sentences", "300", "--test-sentences", "100", "--data-dir", str(data_dir)]
    for task, level in (("position", "token"), ("length", "sentence"), ("trec", "sentence")):
        assert nlpdl_main(["probe", str(run), "--task", task, *small]) == 0
        result = json.loads((run / "probes" / f"{task}.json").read_text())
        assert result["level"] == level and result["classes"] == {"position": 10, "length": 7, "trec": 6}[task]
        assert [r["layer"] for r in result["layers"]] == ["embeddings", "block1"]
        assert all(0 <= r[w] <= 1 for r in result["layers"] for w in ("trained", "control"))
        assert (run / "probes" / f"{task}.png").stat().st_size > 0
    assert "| block1 | 16 |" in capsys.readouterr().out
    assert nlpdl_main(["probe", str(run), "--task", "syntax", *small]) == 2


def test_logging_layer_gradient_norms_changes_no_result_and_they_add_up_to_the_total(data_dir, tmp_path):
    runs = {flag: tmp_path / flag for flag in ("true", "false")}
    for flag, run in runs.items():
        assert nlpdl_main(["train", "mr_ffn:tiny", f"train.log_grad_norms={flag}", "train.log_every=1",
                           "--workdir", str(run), "--data-dir", str(data_dir), "--no-progress"]) == 0
    results = [json.loads((run / "results.json").read_text()) for run in runs.values()]
    assert results[0] == results[1]
    records = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in runs.values()]
    train_logged = [r for r in records[0] if r["split"] == "train"]
    layers = sorted(k for k in train_logged[0] if k.startswith("grad_norm/"))
    assert layers == ["grad_norm/embed", "grad_norm/hidden.0", "grad_norm/out"]
    for r in train_logged:
        np.testing.assert_allclose(np.sqrt(sum(r[k] ** 2 for k in layers)), r["grad_norm"], rtol=1e-4)
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("grad_norm/")} for r in rs]  # noqa: E731
    assert strip(records[0]) == records[1]


def test_hidden_state_gradients_at_distance_zero_are_those_of_the_output_layer():
    model = build_model(RNNLMConfig(cell="gru", embed_dim=8, hidden=6, num_layers=2, init_scale=0.3),
                        DataSpec(num_outputs=40, vocab_size=40), nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    inputs_BxT = jax.random.randint(jax.random.PRNGKey(1), (3, 7), 0, 40)
    targets_B = jnp.array([1, 2, 3])
    grads = hidden_state_gradients(params, inputs_BxT, targets_B, graphdef=graphdef)
    assert grads.shape == (2, 7)
    outputs, _ = model.hidden_states(inputs_BxT, model.initial_carry(3))

    def loss(h_BxH):
        return optax.softmax_cross_entropy_with_integer_labels(model.logits(h_BxH[:, None])[:, 0], targets_B).sum()

    direct = jnp.linalg.norm(jax.grad(loss)(outputs[-1][:, -1]), axis=-1).mean()
    np.testing.assert_allclose(grads[1, 0], direct, rtol=1e-5)
    assert float(grads[0, 0]) == 0.0  # the lower layer's last state has not reached the output yet
    assert float(grads[0, 1]) > 0.0


def test_elman_rnn_gradient_decays_faster_with_distance_than_the_lstms(data_dir, tmp_path):
    runs = {cell: tmp_path / cell for cell in ("rnn", "lstm")}
    for cell, run in runs.items():
        assert nlpdl_main(["train", "ptb_cells:tiny", f"model.cell={cell}", *SMALL_CORPUS, "--workdir", str(run),
                           "--data-dir", str(data_dir), "--no-progress"]) == 0
    out = tmp_path / "gradflow.png"
    assert nlpdl_main(["gradflow", *map(str, runs.values()), "--out", str(out), "--length", "12", "--windows", "2",
                       "--batches", "2", "--data-dir", str(data_dir)]) == 0
    results = {r["cell"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    assert out.stat().st_size > 0
    for which in ("trained", "init"):
        rnn, lstm = (results[c]["hidden"][which][-1] for c in ("rnn", "lstm"))
        assert len(rnn) == len(lstm) == 12
        assert decay(rnn, 8) < decay(lstm, 8)
    assert list(results["lstm"]["layers"]["trained"]) == ["embed", "layers.0", "out"]


def test_attention_rows_sum_to_one_and_padding_receives_none():
    model = build_model(LAYERS["transformer-cls"][0], SPEC, nnx.Rngs(0))
    _, attention, mask_BxT = model.encode(_batch())
    for weights_BxHxTxT in attention:
        np.testing.assert_allclose(weights_BxHxTxT.sum(-1), 1.0, rtol=1e-5)
        keys_Bx1x1xT = mask_BxT[:, None, None, :]
        assert float(jnp.abs(jnp.where(keys_Bx1x1xT, 0.0, weights_BxHxTxT)).max()) == 0.0


@pytest.mark.parametrize("kind", ["classifier", "lm"])
def test_attention_command_draws_each_head_over_the_sentences_tokens(kind, data_dir, transformer_run, tmp_path):
    run = transformer_run
    if kind == "lm":
        run = tmp_path / "lm"
        assert nlpdl_main(["train", "ptb_transformer_small:tiny", *SMALL_CORPUS, "--workdir", str(run),
                           "--data-dir", str(data_dir), "--no-progress"]) == 0
    sentence = "the movie is not bad"
    opened = open_run(run, data_dir)
    from nlpdl.analysis.attention import attention_weights

    tokens, weights = attention_weights(opened, sentence)
    assert len(weights) == opened.cfg.model.num_layers
    assert len(tokens) == weights[0].shape[-1] == weights[0].shape[-2]
    np.testing.assert_allclose(np.stack(weights).sum(-1), 1.0, rtol=1e-5)
    if kind == "lm":  # causal: no query sees a later key
        assert np.all(np.triu(np.stack(weights), k=1) == 0)
    out = tmp_path / "attention.png"
    assert nlpdl_main(["attention", str(run), sentence, "--out", str(out), "--data-dir", str(data_dir)]) == 0
    assert out.stat().st_size > 0


def test_attention_on_a_model_without_attention_says_so(data_dir, tmp_path, capsys):
    run = tmp_path / "ffn"
    assert nlpdl_main(["train", "mr_ffn:tiny", "--workdir", str(run), "--data-dir", str(data_dir),
                       "--no-progress"]) == 0
    assert nlpdl_main(["attention", str(run), "a fine film", "--data-dir", str(data_dir)]) == 2
    assert "need a Transformer" in capsys.readouterr().err
