"""Language models: the carry makes windows equal to one long sequence; resets; the Transformer's causal mask;
the LM task's data, tokenizers and protocol; resume and accumulation with a carried state; a tiny run of each
registered language-model experiment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import checkpoint_state
from nlpdl import config as C
from nlpdl import parallel
from nlpdl.models import DataSpec, build_model
from nlpdl.models.nplm import NPLMConfig
from nlpdl.models.rnn_lm import RNNLMConfig
from nlpdl.models.transformer_lm import TransformerLMConfig, sinusoidal_positions
from nlpdl.sampling import sample_run
from nlpdl.data.sources import DataError, read_ptb
from nlpdl.tasks import language_modeling
from nlpdl.train.loop import build_trainer, train

SPEC = DataSpec(num_outputs=50, vocab_size=50)
MODELS = [RNNLMConfig(cell="lstm", embed_dim=8, hidden=8, num_layers=2),
          RNNLMConfig(cell="gru", embed_dim=8, hidden=8, num_layers=2, tie_embeddings=True),
          RNNLMConfig(cell="rnn", embed_dim=8, hidden=12, num_layers=1, init_scale=0.0),
          NPLMConfig(context=3, embed_dim=4, hidden=10, direct=True)]


@pytest.mark.parametrize("cfg", MODELS, ids=lambda c: getattr(c, "cell", c.kind))
def test_windows_with_the_carry_equal_one_long_sequence(cfg):
    model = build_model(cfg, SPEC, nnx.Rngs(0))
    tokens_BxT = jax.random.randint(jax.random.PRNGKey(1), (3, 12), 0, 50)
    whole, _ = model(tokens_BxT, model.initial_carry(3))
    first, carry = model(tokens_BxT[:, :5], model.initial_carry(3))
    second, _ = model(tokens_BxT[:, 5:], carry)
    assert whole.shape == (3, 12, 50)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-5, atol=1e-5)


def test_tied_embeddings_share_the_input_matrix():
    tied = build_model(RNNLMConfig(embed_dim=8, hidden=8, tie_embeddings=True), SPEC, nnx.Rngs(0))
    untied = build_model(RNNLMConfig(embed_dim=8, hidden=8), SPEC, nnx.Rngs(0))
    count = lambda m: sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param)))  # noqa: E731
    assert count(untied) - count(tied) == 8 * 50
    with pytest.raises(ValueError, match="embed_dim == model.hidden"):
        build_model(RNNLMConfig(embed_dim=8, hidden=6, tie_embeddings=True), SPEC, nnx.Rngs(0))


def test_loss_restarts_the_carry_where_resets_is_set():
    cfg = C.get("ptb_lstm_small:tiny")
    model = build_model(RNNLMConfig(embed_dim=8, hidden=8), SPEC, nnx.Rngs(0))
    loss_fn = language_modeling.make_loss_fn(cfg)
    batch = {"inputs": jnp.ones((2, 4), jnp.int32), "targets": jnp.ones((2, 4), jnp.int32),
             "weights": jnp.ones((2, 4)), "resets": jnp.array([True, True])}
    stale = jax.tree.map(lambda c: c + 3.0, model.initial_carry(2))
    fresh_sums, _ = loss_fn(model, batch, model.initial_carry(2), train=False)
    reset_sums, _ = loss_fn(model, batch, stale, train=False)
    kept_sums, _ = loss_fn(model, {**batch, "resets": jnp.array([False, False])}, stale, train=False)
    assert float(reset_sums["loss_sum"]) == float(fresh_sums["loss_sum"])
    assert float(kept_sums["loss_sum"]) != float(fresh_sums["loss_sum"])
    assert language_modeling.summarize({"loss_sum": 2.0 * 8, "count": 8.0, "correct": 2.0})["perplexity"] == \
        pytest.approx(np.exp(2.0))


def test_ptb_data_epochs_and_every_valid_token_scored_once(data_dir):
    cfg = C.get("ptb_lstm_small:tiny")
    data = language_modeling.load_data(cfg, data_dir)
    assert data.spec.vocab_size == 10_001  # PTB's 10k words (<unk> merged with the special) + <pad>
    assert data.steps_per_epoch == (929_589 - 1) // 4 // 8
    batches = list(data.evals["valid"]())
    assert sum(float(b["weights"].sum()) for b in batches) == (73_760 - 1) // 128 * 128
    assert batches[0]["resets"].all() and not batches[1]["resets"].any()


def test_tiny_lm_run_lowers_perplexity_and_resumes_with_its_carry_bit_exact(data_dir, tmp_path):
    cfg = C.apply_overrides(C.get("ptb_lstm_small:tiny"), ["model.dropout=0.2"])
    results = train(cfg, tmp_path / "straight", data_dir, progress=False)
    assert results["test"]["perplexity"] < 0.85 * 10_001  # below the uniform guess after 20 tiny steps
    half = C.apply_overrides(cfg, ["train.steps=10"])
    train(half, tmp_path / "resumed", data_dir, progress=False)
    train(cfg, tmp_path / "resumed", data_dir, progress=False, allow_config_change=True)
    (s1, a), (s2, b) = checkpoint_state(tmp_path / "straight"), checkpoint_state(tmp_path / "resumed")
    assert s1 == s2 == 20 and len(jax.tree.leaves(a["carry"])) == 4  # (c, h) of 2 LSTM layers
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.array_equal(x, y)


def test_accumulation_splits_the_carry_rows_with_the_batch(data_dir):
    base = C.apply_overrides(C.get("ptb_lstm_small:tiny"), ["data.batch_size=8"])
    states = []
    for k in (1, 4):
        t = build_trainer(C.apply_overrides(base, [f"train.grad_accum={k}"]), data_dir)
        state, it = t.init_state(), iter(t.data.train)
        for _ in range(3):
            state, _ = t.step_fn(state, parallel.put_batch(next(it), t.mesh))
        states.append(jax.device_get(state))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), *states)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_causal_mask_leaks_nothing_from_later_tokens(positions):
    cfg = TransformerLMConfig(d_model=16, num_heads=2, num_layers=2, d_ff=32, context=12, positions=positions)
    model = build_model(cfg, SPEC, nnx.Rngs(0))
    tokens_BxT = jax.random.randint(jax.random.PRNGKey(1), (3, 12), 0, 50)
    logits, cache = model(tokens_BxT)
    assert logits.shape == (3, 12, 50) and cache is None
    for t in (0, 5, 11):
        changed, _ = model(tokens_BxT.at[:, t].set((tokens_BxT[:, t] + 1) % 50))
        np.testing.assert_array_equal(changed[:, :t], logits[:, :t])
        assert not np.allclose(changed[:, t:], logits[:, t:])  # ... while the later positions do see it


def test_transformer_attention_rows_sum_to_one_over_the_past_only():
    model = build_model(TransformerLMConfig(d_model=16, num_heads=4, num_layers=3, d_ff=32, context=8), SPEC,
                        nnx.Rngs(0))
    _, _, attention = model(jnp.arange(16).reshape(2, 8), return_attention=True)
    assert len(attention) == 3
    for weights_BxHxTxS in attention:
        assert weights_BxHxTxS.shape == (2, 4, 8, 8)
        np.testing.assert_allclose(weights_BxHxTxS.sum(-1), 1.0, rtol=1e-5)
        assert float(jnp.abs(jnp.triu(weights_BxHxTxS, k=1)).max()) == 0.0


def test_transformer_refuses_windows_longer_than_its_positions():
    with pytest.raises(C.ConfigError, match="data.bptt <= model.context"):
        build_model(TransformerLMConfig(context=16), DataSpec(num_outputs=5, vocab_size=5, seq_len=32), nnx.Rngs(0))
    model = build_model(TransformerLMConfig(d_model=8, num_heads=2, d_ff=8, context=16), SPEC, nnx.Rngs(0))
    with pytest.raises(C.ConfigError, match="learned positions for 16 tokens"):
        model.init_cache(1, 17)
    sines = sinusoidal_positions(jnp.arange(3), 6)
    np.testing.assert_allclose(sines[1, :2], [np.sin(1.0), np.cos(1.0)], rtol=1e-6)


@pytest.mark.parametrize("dataset", ["ptb", "tinyshakespeare", "botchan"])
def test_sentencepiece_streams_decode_back_to_the_split_text(dataset, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NLPDL_CACHE_DIR", str(tmp_path / "cache"))
    cfg = C.apply_overrides(C.get("botchan_bpe_lstm:tiny"), [f"data.dataset={dataset}"])
    data = language_modeling.load_data(cfg, data_dir)
    tokenizer = data.artifacts["tokenizer.model"]
    assert data.spec.vocab_size == len(tokenizer) == 400
    tokenizer.save(tmp_path / "tokenizer.model")
    encode, decode = language_modeling.text_codec(cfg, tmp_path)
    valid = language_modeling.read_split(dataset, "sentencepiece", data_dir, "valid")
    assert decode(encode(valid)) == valid
    assert len(encode(valid)) < 0.8 * len(valid)  # pieces merge characters (even with only ~100 merges)
    with pytest.raises(DataError, match="Vocabulary size is smaller than required_chars"):
        language_modeling.load_data(C.apply_overrides(cfg, ["data.spm_vocab_size=100"]), data_dir)


def test_char_and_word_views_of_the_same_text(data_dir):
    chars = C.apply_overrides(C.get("shakespeare_char_transformer:tiny"), [])
    data = language_modeling.load_data(chars, data_dir)
    assert data.spec.vocab_size == 65 + 2  # Tiny Shakespeare's 65 characters, <pad>, <unk>
    words = language_modeling.read_split("botchan", "words", data_dir, "valid")
    text = language_modeling.read_split("botchan", "chars", data_dir, "valid")
    assert words.count("<eos>") == text.count("\n") and words[:-1] != []
    ptb_text = language_modeling.read_split("ptb", "chars", data_dir, "valid")
    assert ptb_text.split() == [w for w in read_ptb(data_dir, "valid") if w != "<eos>"]


LM_EXPERIMENTS = ["ptb_nplm", "ptb_rnn", "ptb_gru_small", "ptb_transformer_small", "wikitext2_lstm",
                  "shakespeare_char_transformer", "shakespeare_bpe_transformer", "botchan_bpe_lstm"]


@pytest.mark.parametrize("name", LM_EXPERIMENTS)
def test_tiny_run_of_each_language_model_experiment_learns_and_samples(name, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NLPDL_CACHE_DIR", str(tmp_path / "cache"))
    cfg = C.apply_overrides(C.get(f"{name}:tiny"), ["data.max_vocab=500"])  # scoring 33k-word softmaxes is slow
    results = train(cfg, tmp_path / "run", data_dir, progress=False)
    t = build_trainer(cfg, data_dir)
    assert results["test"]["perplexity"] < t.evaluate(t.init_state().params, "test")["perplexity"]
    prompt = "ROMEO:" if "shakespeare" in name else "the"
    text = sample_run(tmp_path / "run", prompt, 12, 0.8, 10, 0, data_dir)
    assert text.startswith(prompt) and len(text) > len(prompt)
