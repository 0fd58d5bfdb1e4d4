"""Text classifiers: `mr_ffn` (the Foundation's feed-forward net with its sweeps), then every architecture of the
course on the seven sentence-classification benchmarks of Kim (2014)."""

from dataclasses import replace

from nlpdl.config import DataConfig, ExperimentConfig, OptimConfig, Sweep, TaskConfig, TrainConfig, register
from nlpdl.models.cnn import CNNConfig
from nlpdl.models.ffn import FFNConfig
from nlpdl.models.rnn_classifier import RNNClassifierConfig
from nlpdl.models.transformer_classifier import TransformerClassifierConfig


MR_FFN_SWEEPS = {
    "activations": Sweep(grid={"model.activation": ("sigmoid", "tanh", "relu", "leaky_relu")}, seeds=3),
    # each optimizer at a learning rate that suits it
    "optimizers": Sweep(zip={"optim.name": ("sgd", "momentum", "adagrad", "adadelta", "adam"),
                             "optim.lr": ("0.5", "0.05", "0.1", "1.0", "0.001")}, seeds=3),
    "depth": Sweep(grid={"model.num_layers": ("0", "1", "2", "3")}, seeds=3),
}


@register("mr_ffn", "feed-forward classifier over averaged word embeddings, MR (test = CV fold 0)",
          sweeps=MR_FFN_SWEEPS)
def mr_ffn(variant: str) -> ExperimentConfig:
    tiny = variant == "tiny"
    return ExperimentConfig(
        name="mr_ffn",
        description="FFN over averaged embeddings on MR",
        task=TaskConfig(loss="cross_entropy"),
        data=DataConfig(dataset="mr", max_len=64, batch_size=50, eval_batch_size=512, num_folds=10, fold=0,
                        valid_fraction=0.1),
        model=FFNConfig(input="embeddings", embed_dim=16 if tiny else 300, hidden=16 if tiny else 100,
                        num_layers=1, activation="relu", dropout=0.0 if tiny else 0.5),
        optim=OptimConfig(name="adam", lr=1e-2 if tiny else 1e-3),
        train=TrainConfig(epochs=0 if tiny else 5, steps=60 if tiny else 0, eval_every=20 if tiny else 0,
                          log_every=10 if tiny else 50),
    )


@register("mr_ffn_deep", "a 6-hidden-layer feed-forward net on MR (sigmoid units; --sweep activations: sigmoid, "
          "tanh, relu), each layer's gradient norm logged: vanishing gradients with depth",
          sweeps={"activations": Sweep(grid={"model.activation": ("sigmoid", "tanh", "relu")})})
def mr_ffn_deep(variant: str) -> ExperimentConfig:
    cfg = mr_ffn(variant)
    return replace(cfg, name="mr_ffn_deep", description="6-hidden-layer FFN over averaged embeddings on MR",
                   model=replace(cfg.model, num_layers=6, activation="sigmoid", dropout=0.0, init="glorot_uniform"),
                   train=replace(cfg.train, log_grad_norms=True))


# ---------------------------------------------------------------- the course's classifiers on seven benchmarks
# `{dataset}_{model}`: MR, Subj, CR, MPQA by 10-fold cross-validation (`data.fold=K` runs one fold; the declared
# sweep `folds` runs all ten and reports mean ± std); SST-2 and SST-5 on train (phrases and sentences) / dev /
# test; TREC on train / test with 10% of train as dev. The best-on-dev parameters are kept (early stopping).

CV_DATASETS = ("mr", "subj", "cr", "mpqa")
DATASETS = (*CV_DATASETS, "sst2", "sst5", "trec")
FOLDS = {"folds": Sweep(pooled={"data.fold": tuple(str(k) for k in range(10))})}


def _model(kind: str, tiny: bool):
    """Each architecture at the course's (or the paper's) settings; tiny: a few units of each."""
    e, h = (8, 8) if tiny else (300, 150)
    if kind == "ffn":
        return FFNConfig(input="embeddings", embed_dim=e, hidden=h if tiny else 100, num_layers=1,
                         activation="relu", dropout=0.5)
    if kind == "cnn":  # Kim (2014) CNN-rand
        return CNNConfig(embed_dim=e, widths=(3, 4, 5), maps=4 if tiny else 100, dropout=0.5)
    if kind == "transformer":
        return TransformerClassifierConfig(d_model=16 if tiny else 128, num_heads=2 if tiny else 4,
                                           num_layers=1 if tiny else 2, d_ff=32 if tiny else 256, max_len=64,
                                           pooling="mean", dropout=0.1)
    cell = {"rnn": "rnn", "lstm": "lstm", "gru": "gru", "bilstm": "lstm"}[kind]
    return RNNClassifierConfig(cell=cell, embed_dim=e, hidden=h, num_layers=1, bidirectional=kind == "bilstm",
                               pooling="final", dropout=0.5)


def _optim(kind: str) -> OptimConfig:
    if kind == "cnn":  # Kim: Adadelta (rho 0.95, eps 1e-6), output columns kept within L2 norm 3
        return OptimConfig(name="adadelta", lr=1.0, rho=0.95, eps=1e-6, max_norm=3.0)
    if kind == "transformer":
        return OptimConfig(name="adamw", lr=5e-4, weight_decay=0.01, clip_norm=1.0, schedule="cosine",
                           warmup_steps=1, schedule_unit="epochs")
    return OptimConfig(name="adam", lr=1e-3, clip_norm=5.0)


def _epochs(kind: str, dataset: str) -> int:
    if dataset in ("sst2", "sst5"):  # ~77k / ~160k phrases per epoch
        return 4 if dataset == "sst5" else 6
    return 25 if kind == "cnn" else 10  # Kim: 25 epochs


def classifier(dataset: str, kind: str, variant: str) -> ExperimentConfig:
    tiny = variant == "tiny"
    name = f"{dataset}_{kind}"
    # Kim's (2014) preprocessing and model selection for every architecture, so that an ablation compares models
    # on the same tokens: his cleaning (lower case but on TREC, punctuation split off) and the last of equal dev
    # scores (on MR's 10 folds with the CNN: +0.93 points over whitespace tokens and the first, README).
    data = DataConfig(dataset=dataset, max_len=56, batch_size=50, eval_batch_size=500, num_folds=10, fold=0,
                      valid_fraction=0.1, phrases=True, clean="kim")
    train = TrainConfig(epochs=_epochs(kind, dataset), log_every=100, best_ties="last")
    if tiny:
        data = replace(data, max_len=24, eval_batch_size=250, max_vocab=500, phrases=False)
        train = TrainConfig(steps=12, eval_every=6, log_every=6, best_ties="last")
    return ExperimentConfig(name=name, description=f"{kind} classifier on {dataset}",
                            task=TaskConfig(loss="cross_entropy"), data=data, model=_model(kind, tiny),
                            optim=_optim(kind), train=train)


MODEL_DESCRIPTIONS = {
    "ffn": "feed-forward net over averaged word embeddings",
    "cnn": "Kim (2014) CNN-rand: widths 3,4,5 x 100 maps, max-over-time, dropout 0.5, Adadelta, max-norm 3",
    "rnn": "Elman RNN, final state",
    "lstm": "LSTM, final state",
    "gru": "GRU, final state",
    "bilstm": "bidirectional LSTM, both final states",
    "transformer": "2-layer Transformer encoder, mean-pooled",
}

for _dataset in DATASETS:
    for _kind, _what in MODEL_DESCRIPTIONS.items():
        if (_dataset, _kind) == ("mr", "ffn"):
            continue  # mr_ffn above (the Foundation experiment)
        register(f"{_dataset}_{_kind}", f"{_what}; {_dataset}", sweeps=FOLDS if _dataset in CV_DATASETS else None)(
            lambda variant, d=_dataset, k=_kind: classifier(d, k, variant))


# Kim's CNN variants over pretrained vectors: by default nlpdl's own word2vec on WikiText-2 (300-d, as Kim's),
# made by `nlpdl word2vec dim=300 --workdir runs/word2vec-wikitext2-300d`; `model.vectors=PATH` takes any file.
NLPDL_VECTORS = "runs/word2vec-wikitext2-300d/vectors.bin"
for _dataset in DATASETS:
    for _mode in ("static", "nonstatic", "multichannel"):
        register(f"{_dataset}_cnn_{_mode}", f"Kim (2014) CNN-{_mode} over pretrained word vectors; {_dataset}",
                 sweeps=FOLDS if _dataset in CV_DATASETS else None)(
            lambda variant, d=_dataset, m=_mode: replace(
                classifier(d, "cnn", variant), name=f"{d}_cnn_{m}",
                model=replace(classifier(d, "cnn", variant).model, embeddings=m, vectors=NLPDL_VECTORS)))
