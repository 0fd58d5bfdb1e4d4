"""Sentence (or feature-vector) classification: data splits, the weighted loss, accuracy."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nlpdl.config import DataConfig, ExperimentConfig
from nlpdl.data import pipelines
from nlpdl.data.sources import (TREC_CLASSES, DataError, kfold_split, read_polarity, read_sst, read_sst_phrases,
                                read_trec)
from nlpdl.data.tokenizers import WordVocab, kim_clean, tokenize_words
from nlpdl.fundamentals.xor import XOR_INPUTS, XOR_LABELS
from nlpdl.models import DataSpec
from nlpdl.nn.losses import get_loss
from nlpdl.tasks import TaskData

Split = dict[str, np.ndarray]  # "tokens"/"lengths" or "features", plus "labels"
CV_DATASETS = ("mr", "subj", "cr", "mpqa")  # no standard split: k-fold cross-validation
CLASS_NAMES = {"sst2": ("negative", "positive"), "sst5": ("very negative", "negative", "neutral", "positive",
                                                           "very positive"),
               "trec": TREC_CLASSES, "subj": ("objective", "subjective")}


def _xor_splits(cfg: ExperimentConfig, data_dir: Path) -> tuple[dict[str, Split], int, dict]:
    """The four XOR points are train, valid and test alike: the question is whether they can be fit."""
    split = {"features": np.asarray(XOR_INPUTS), "labels": np.asarray(XOR_LABELS)}
    return {"train": split, "valid": split, "test": split}, 2, {}


Texts = dict[str, tuple[list[str], np.ndarray]]  # split -> (sentences, labels)


def split_seed(data: DataConfig) -> int:
    """The seed of the CV folds and the held-out dev rows: `data.split_seed`, else `data.seed`."""
    return data.seed if data.split_seed is None else data.split_seed


def _holdout(train_idx: np.ndarray, cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """`valid_fraction` of the training rows (shuffled with the split seed) as valid; returns (train, valid)."""
    train_idx = np.random.default_rng(split_seed(cfg.data) + 1).permutation(train_idx)
    num_valid = int(round(len(train_idx) * cfg.data.valid_fraction))
    return train_idx[num_valid:], train_idx[:num_valid]


def _pick(sentences: list[str], labels: np.ndarray, idx: np.ndarray) -> tuple[list[str], np.ndarray]:
    return [sentences[i] for i in idx], labels[idx]


def _cv_texts(cfg: ExperimentConfig, data_dir: Path) -> tuple[Texts, int]:
    """MR, Subj, CR, MPQA: fold `data.fold` of `data.num_folds` is the test set; `valid_fraction` of the rest
    is held out."""
    d = cfg.data
    sentences, labels = read_polarity(data_dir, d.dataset)
    rest, test = kfold_split(len(sentences), d.num_folds, d.fold, split_seed(d))
    train, valid = _holdout(rest, cfg)
    return {name: _pick(sentences, labels, idx) for name, idx in
            (("train", train), ("valid", valid), ("test", test))}, 2


def _sst_texts(cfg: ExperimentConfig, data_dir: Path) -> tuple[Texts, int]:
    """SST-2 / SST-5: the standard train/dev/test; with `data.phrases` training also sees every labelled phrase
    of the training trees (Kim 2014), while dev and test stay whole sentences."""
    classes = 2 if cfg.data.dataset == "sst2" else 5
    train = (read_sst_phrases(data_dir, classes) if cfg.data.phrases
             else read_sst(data_dir, classes, "train"))
    return {"train": train, "valid": read_sst(data_dir, classes, "dev"),
            "test": read_sst(data_dir, classes, "test")}, classes


def _trec_texts(cfg: ExperimentConfig, data_dir: Path) -> tuple[Texts, int]:
    """TREC (6 coarse classes): the standard test set; valid is `valid_fraction` of the training questions."""
    sentences, labels = read_trec(data_dir, "train")
    train, valid = _holdout(np.arange(len(sentences)), cfg)
    return {"train": _pick(sentences, labels, train), "valid": _pick(sentences, labels, valid),
            "test": read_trec(data_dir, "test")}, len(TREC_CLASSES)


def sentence_tokenizer(data: DataConfig) -> Callable[[str], list[str]]:
    """How `data` turns a sentence into words: the files' own tokens, or Kim's cleaning (with his SST and TREC
    variants)."""
    if data.clean == "none":
        return tokenize_words
    return functools.partial(kim_clean, clitics=data.dataset not in ("sst2", "sst5"), lower=data.dataset != "trec")


def _sentence_splits(read: Callable[[ExperimentConfig, Path], tuple[Texts, int]]):
    """Reads a dataset's texts, builds the vocabulary (`data.vocab_from`) and pads every split."""

    def splits(cfg: ExperimentConfig, data_dir: Path) -> tuple[dict[str, Split], int, dict]:
        d = cfg.data
        texts, num_classes = read(cfg, data_dir)
        tokenize = sentence_tokenizer(d)
        tokens = {name: [tokenize(s) for s in sentences] for name, (sentences, _) in texts.items()}
        vocab = WordVocab.build(tokens["train"], min_count=d.min_count, max_size=d.max_vocab)
        if d.vocab_from == "all":
            vocab = vocab.extended(t for name, lists in tokens.items() if name != "train" for t in lists)
        out = {}
        for name, (_, labels) in texts.items():
            if len(labels):
                arrays = pipelines.pad_token_ids([vocab.encode(t) for t in tokens[name]], d.max_len, vocab.pad_id)
                out[name] = {**arrays, "labels": np.asarray(labels, np.int32)}
        return out, num_classes, {"vocab.json": vocab}

    return splits


TEXT_READERS = {**{name: _cv_texts for name in CV_DATASETS}, "sst2": _sst_texts, "sst5": _sst_texts,
                "trec": _trec_texts}
DATASETS = {"xor": _xor_splits, **{name: _sentence_splits(read) for name, read in TEXT_READERS.items()}}


def read_texts(cfg: ExperimentConfig, data_dir: Path) -> tuple[Texts, int]:
    """The sentences and labels of each split of a text dataset, as `cfg` splits them, and the class count."""
    if cfg.data.dataset not in TEXT_READERS:
        raise DataError(f"{cfg.data.dataset!r} is not a sentence dataset: use one of {', '.join(TEXT_READERS)}.")
    return TEXT_READERS[cfg.data.dataset](cfg, data_dir)


def encode_sentences(sentences: list[str], vocab: WordVocab, data: DataConfig) -> dict[str, np.ndarray]:
    """Sentences as a padded batch, tokenised exactly as training did (for prediction)."""
    tokenize = sentence_tokenizer(data)
    arrays = pipelines.pad_token_ids([vocab.encode(tokenize(s)) for s in sentences], data.max_len, vocab.pad_id)
    return {k: jnp.asarray(v) for k, v in arrays.items()}


PAD_MULTIPLE = 8  # data.padding=longest: batch widths are multiples of this, which bounds the compiled shapes


def load_data(cfg: ExperimentConfig, data_dir: Path) -> TaskData:
    if cfg.data.dataset not in DATASETS:
        raise DataError(f"classification has no dataset {cfg.data.dataset!r}: use one of {', '.join(DATASETS)}.")
    splits, num_classes, artifacts = DATASETS[cfg.data.dataset](cfg, data_dir)
    train = splits["train"]
    train_size = len(train["labels"])
    batch_size = train_size if cfg.data.full_batch else cfg.data.batch_size
    if batch_size > train_size:
        raise DataError(f"data.batch_size={batch_size} exceeds the {train_size} training examples: lower it.")
    vocab = artifacts.get("vocab.json")
    spec = DataSpec(num_outputs=get_loss(cfg.task.loss).num_outputs(num_classes),
                    vocab_size=len(vocab) if vocab else 0,
                    input_dim=train["features"].shape[1] if "features" in train else 0,
                    pad_id=vocab.pad_id if vocab else 0, seq_len=cfg.data.max_len,
                    vocab=vocab.tokens if vocab else ())
    reading = dict(process_index=jax.process_index(), process_count=jax.process_count(),
                   pad_multiple=PAD_MULTIPLE if cfg.data.padding == "longest" else 0)
    evals = {name: (lambda s=split: pipelines.eval_batches(s, cfg.data.eval_batch_size, **reading))
             for name, split in splits.items() if name != "train"}
    if cfg.data.batches == "fixed":
        stream = pipelines.fixed_batches(train, batch_size, cfg.data.seed, **reading)
        steps_per_epoch = -(-train_size // batch_size)  # the topped-up last batch too
    else:
        stream = pipelines.train_batches(train, batch_size, cfg.data.seed, **reading)
        steps_per_epoch = max(train_size // batch_size, 1)
    return TaskData(train=stream, evals=evals, steps_per_epoch=steps_per_epoch, batch_size=batch_size, spec=spec,
                    artifacts=artifacts)


def make_loss_fn(cfg: ExperimentConfig):
    loss = get_loss(cfg.task.loss)

    def loss_fn(model, batch, carry=None, *, train: bool, rngs=None):
        """Sentences are independent: nothing is carried (`carry` passes through)."""
        outputs = model(batch, train=train, rngs=rngs).astype(jnp.float32)
        weights_B = batch["weights"]
        count = jnp.sum(weights_B)
        loss_sum = jnp.sum(loss.fn(outputs, batch["labels"]) * weights_B)
        correct = jnp.sum((loss.predict(outputs) == batch["labels"]) * weights_B)
        tokens = jnp.sum(batch["lengths"] * weights_B) if "lengths" in batch else count
        return {"loss_sum": loss_sum, "correct": correct, "count": count, "tokens": tokens}, carry

    return loss_fn


def summarize(sums: dict[str, float]) -> dict[str, float]:
    count = max(sums["count"], 1.0)
    return {"loss": sums["loss_sum"] / count, "accuracy": sums["correct"] / count}

