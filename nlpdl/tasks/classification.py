"""Sentence (or feature-vector) classification: data splits, the weighted loss, accuracy."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nlpdl.config import ExperimentConfig
from nlpdl.data import pipelines
from nlpdl.data.sources import DataError, kfold_split, read_mr
from nlpdl.data.tokenizers import WordVocab, tokenize_words
from nlpdl.fundamentals.xor import XOR_INPUTS, XOR_LABELS
from nlpdl.models import DataSpec
from nlpdl.nn.losses import get_loss
from nlpdl.tasks import TaskData

Split = dict[str, np.ndarray]  # "tokens"/"lengths" or "features", plus "labels"


def _xor_splits(cfg: ExperimentConfig, data_dir: Path) -> tuple[dict[str, Split], int, dict]:
    """The four XOR points are train, valid and test alike: the question is whether they can be fit."""
    split = {"features": np.asarray(XOR_INPUTS), "labels": np.asarray(XOR_LABELS)}
    return {"train": split, "valid": split, "test": split}, 2, {}


def _mr_splits(cfg: ExperimentConfig, data_dir: Path) -> tuple[dict[str, Split], int, dict]:
    """MR: fold `data.fold` of `data.num_folds` is the test set; `valid_fraction` of the rest is held out."""
    d = cfg.data
    sentences, labels = read_mr(data_dir)
    train_idx, test_idx = kfold_split(len(sentences), d.num_folds, d.fold, d.seed)
    train_idx = np.random.default_rng(d.seed + 1).permutation(train_idx)
    num_valid = int(round(len(train_idx) * d.valid_fraction))
    parts = {"train": train_idx[num_valid:], "valid": train_idx[:num_valid], "test": test_idx}
    tokens = [tokenize_words(s) for s in sentences]
    vocab = WordVocab.build((tokens[i] for i in parts["train"]), min_count=d.min_count, max_size=d.max_vocab)
    splits = {}
    for name, idx in parts.items():
        if len(idx) == 0:
            continue
        arrays = pipelines.pad_token_ids([vocab.encode(tokens[i]) for i in idx], d.max_len, vocab.pad_id)
        splits[name] = {**arrays, "labels": labels[idx]}
    return splits, 2, {"vocab.json": vocab}


DATASETS = {"xor": _xor_splits, "mr": _mr_splits}


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
                    pad_id=vocab.pad_id if vocab else 0)
    process = dict(process_index=jax.process_index(), process_count=jax.process_count())
    evals = {name: (lambda s=split: pipelines.eval_batches(s, cfg.data.eval_batch_size, **process))
             for name, split in splits.items() if name != "train"}
    return TaskData(train=pipelines.train_batches(train, batch_size, cfg.data.seed, **process), evals=evals,
                    steps_per_epoch=max(train_size // batch_size, 1), batch_size=batch_size, spec=spec,
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

