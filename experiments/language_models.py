"""Language models on PTB, WikiText-2, Tiny Shakespeare and Botchan: Bengio's feed-forward LM, Elman RNN, LSTM
(Zaremba et al. 2014), GRU and a causal Transformer; words, characters or sentencepiece pieces."""

from dataclasses import replace

from nlpdl.config import DataConfig, ExperimentConfig, OptimConfig, Sweep, TaskConfig, TrainConfig, register
from nlpdl.models.nplm import NPLMConfig
from nlpdl.models.rnn_lm import RNNLMConfig
from nlpdl.models.transformer_lm import TransformerLMConfig

TINY_DATA = dict(batch_size=4, eval_batch_size=128, bptt=8)
TINY_TRAIN = TrainConfig(steps=20, eval_every=10, eval_batches=4, log_every=5, best_metric="perplexity",
                         best_mode="min")


def _lm(name: str, description: str, variant: str, *, data: DataConfig, model, optim: OptimConfig,
        epochs: int) -> ExperimentConfig:
    tiny = variant == "tiny"
    if tiny:
        data = replace(data, **TINY_DATA, spm_vocab_size=min(data.spm_vocab_size, 400))
        model = (replace(model, d_model=16, num_heads=2, num_layers=2, d_ff=32) if model.kind == "transformer_lm"
                 else replace(model, embed_dim=16, hidden=16))
    train = TINY_TRAIN if tiny else TrainConfig(epochs=epochs, log_every=100, best_metric="perplexity",
                                                best_mode="min")
    return ExperimentConfig(name=name, description=description, task=TaskConfig(name="language_modeling"),
                            data=data, model=model, optim=optim, train=train)


def _zaremba_decay(lr: float, rate: float, start_epoch: int, bptt: int) -> OptimConfig:
    """SGD with Zaremba's lr and norm-5 clipping, lr multiplied by `rate` every epoch from `start_epoch` on.

    Zaremba's loss sums over the `bptt` time steps (and averages over the batch); nlpdl's averages over tokens,
    a gradient `bptt` times smaller. lr * bptt and clip 5 / bptt give exactly his updates.
    """
    return OptimConfig(name="sgd", lr=lr * bptt, clip_norm=5.0 / bptt, schedule="step", decay_rate=rate,
                       decay_every=1, decay_start=start_epoch, schedule_unit="epochs")


@register("ptb_lstm_small", "Zaremba et al. (2014) small LSTM LM on PTB: 2x200, bptt 20, batch 20, 13 epochs")
def ptb_lstm_small(variant: str) -> ExperimentConfig:
    return _lm("ptb_lstm_small", "2x200 LSTM LM, PTB (Zaremba small)", variant,
               data=DataConfig(dataset="ptb", batch_size=20, eval_batch_size=10, bptt=20),
               model=RNNLMConfig(cell="lstm", embed_dim=200, hidden=200, num_layers=2, dropout=0.0, init_scale=0.1),
               optim=_zaremba_decay(1.0, 0.5, 4, bptt=20), epochs=13)


@register("ptb_lstm_medium", "Zaremba et al. (2014) medium LSTM LM on PTB: 2x650, dropout 0.5, 39 epochs")
def ptb_lstm_medium(variant: str) -> ExperimentConfig:
    return _lm("ptb_lstm_medium", "2x650 LSTM LM, PTB (Zaremba medium)", variant,
               data=DataConfig(dataset="ptb", batch_size=20, eval_batch_size=10, bptt=35),
               model=RNNLMConfig(cell="lstm", embed_dim=650, hidden=650, num_layers=2, dropout=0.5,
                                 init_scale=0.05),
               optim=_zaremba_decay(1.0, 1 / 1.2, 6, bptt=35), epochs=39)


@register("ptb_gru_small", "GRU LM on PTB with the small LSTM's settings")
def ptb_gru_small(variant: str) -> ExperimentConfig:
    return _lm("ptb_gru_small", "2x200 GRU LM, PTB", variant,
               data=DataConfig(dataset="ptb", batch_size=20, eval_batch_size=10, bptt=20),
               model=RNNLMConfig(cell="gru", embed_dim=200, hidden=200, num_layers=2, init_scale=0.1),
               optim=_zaremba_decay(1.0, 0.5, 4, bptt=20), epochs=13)


@register("ptb_rnn", "Elman RNN LM on PTB: 1x400 tanh units, tied embeddings, dropout 0.5, Adam halved each epoch "
          "after epoch 6")
def ptb_rnn(variant: str) -> ExperimentConfig:
    # SGD at the LSTM's rate diverges with tanh units (loss above uniform within 500 steps); Adam does not. The
    # layers' own initialisers keep the recurrent matrix orthogonal: uniform +-0.1 gives it a spectral radius near
    # 1.15, and a barely trained RNN can then lock into a self-sustaining state on some streams.
    return _lm("ptb_rnn", "1x400 Elman RNN LM, PTB", variant,
               data=DataConfig(dataset="ptb", batch_size=32, eval_batch_size=10, bptt=35),
               model=RNNLMConfig(cell="rnn", embed_dim=400, hidden=400, num_layers=1, dropout=0.5,
                                 tie_embeddings=True, init_scale=0.0),
               optim=OptimConfig(name="adam", lr=1e-3, clip_norm=1.0, schedule="step", decay_rate=0.5,
                                 decay_every=1, decay_start=6, schedule_unit="epochs"), epochs=12)


@register("ptb_cells", "gradient flow through time: a 1x200 recurrent LM on PTB, one epoch, the same initialisation "
          "and optimizer whatever the cell (model.cell; --sweep cells trains rnn, lstm and gru)",
          sweeps={"cells": Sweep(grid={"model.cell": ("rnn", "lstm", "gru")})})
def ptb_cells(variant: str) -> ExperimentConfig:
    cfg = _lm("ptb_cells", "1x200 recurrent LM, PTB, for gradient flow", variant,
              data=DataConfig(dataset="ptb", batch_size=32, eval_batch_size=10, bptt=35),
              model=RNNLMConfig(cell="rnn", embed_dim=200, hidden=200, num_layers=1, init_scale=0.1),
              optim=OptimConfig(name="adam", lr=1e-3, clip_norm=1.0), epochs=1)
    return replace(cfg, train=replace(cfg.train, log_grad_norms=True))


@register("ptb_nplm", "Bengio et al. (2003) feed-forward 5-gram LM on PTB: Adam, halved each epoch after epoch 5")
def ptb_nplm(variant: str) -> ExperimentConfig:
    return _lm("ptb_nplm", "feed-forward 5-gram LM, PTB", variant,
               data=DataConfig(dataset="ptb", batch_size=32, eval_batch_size=10, bptt=35),
               model=NPLMConfig(context=4, embed_dim=100, hidden=500, dropout=0.3),
               optim=OptimConfig(name="adam", lr=1e-3, clip_norm=5.0, schedule="step", decay_rate=0.5,
                                 decay_every=1, decay_start=5, schedule_unit="epochs"), epochs=8)


@register("wikitext2_lstm", "2x200 LSTM LM on WikiText-2 with the small PTB settings")
def wikitext2_lstm(variant: str) -> ExperimentConfig:
    return _lm("wikitext2_lstm", "2x200 LSTM LM, WikiText-2", variant,
               data=DataConfig(dataset="wikitext-2", batch_size=20, eval_batch_size=10, bptt=35),
               model=RNNLMConfig(cell="lstm", embed_dim=200, hidden=200, num_layers=2, dropout=0.2, init_scale=0.1),
               optim=_zaremba_decay(1.0, 0.5, 4, bptt=35), epochs=13)


def _adamw_cosine(lr: float, warmup: int) -> OptimConfig:
    return OptimConfig(name="adamw", lr=lr, b2=0.99, weight_decay=0.1, clip_norm=1.0, schedule="cosine",
                       warmup_steps=warmup, min_lr_ratio=0.1)


@register("ptb_transformer_small", "causal Transformer LM on PTB words: 4 layers, 4 heads, d_model 256, context 128")
def ptb_transformer_small(variant: str) -> ExperimentConfig:
    return _lm("ptb_transformer_small", "4-layer causal Transformer LM, PTB", variant,
               data=DataConfig(dataset="ptb", batch_size=16, eval_batch_size=10, bptt=128),
               model=TransformerLMConfig(d_model=256, num_heads=4, num_layers=4, d_ff=1024, context=128,
                                         dropout=0.3),
               optim=_adamw_cosine(1e-3, warmup=200), epochs=10)


@register("shakespeare_char_transformer", "character-level causal Transformer on Tiny Shakespeare (nanoGPT-style, "
          "CPU-sized: 4 layers, 4 heads, d_model 128, context 128)")
def shakespeare_char_transformer(variant: str) -> ExperimentConfig:
    return _lm("shakespeare_char_transformer", "char-level Transformer LM, Tiny Shakespeare", variant,
               data=DataConfig(dataset="tinyshakespeare", tokenizer="chars", batch_size=32, eval_batch_size=16,
                               bptt=128),
               model=TransformerLMConfig(d_model=128, num_heads=4, num_layers=4, d_ff=512, context=128,
                                         dropout=0.1),
               optim=_adamw_cosine(2e-3, warmup=100), epochs=8)


@register("shakespeare_bpe_transformer", "subword causal Transformer on Tiny Shakespeare: sentencepiece BPE, 1000 "
          "pieces trained on the train split")
def shakespeare_bpe_transformer(variant: str) -> ExperimentConfig:
    return _lm("shakespeare_bpe_transformer", "BPE-1000 Transformer LM, Tiny Shakespeare", variant,
               data=DataConfig(dataset="tinyshakespeare", tokenizer="sentencepiece", spm_vocab_size=1000,
                               batch_size=32, eval_batch_size=16, bptt=64),
               model=TransformerLMConfig(d_model=128, num_heads=4, num_layers=4, d_ff=512, context=64,
                                         dropout=0.2),
               optim=_adamw_cosine(2e-3, warmup=100), epochs=10)


@register("botchan_bpe_lstm", "subword LSTM LM on Botchan: sentencepiece BPE, 1000 pieces, 2x256")
def botchan_bpe_lstm(variant: str) -> ExperimentConfig:
    return _lm("botchan_bpe_lstm", "BPE-1000 LSTM LM, Botchan", variant,
               data=DataConfig(dataset="botchan", tokenizer="sentencepiece", spm_vocab_size=1000, batch_size=16,
                               eval_batch_size=4, bptt=35),
               model=RNNLMConfig(cell="lstm", embed_dim=256, hidden=256, num_layers=2, dropout=0.3,
                                 tie_embeddings=True, init_scale=0.1),
               optim=OptimConfig(name="adam", lr=2e-3, clip_norm=1.0), epochs=15)
