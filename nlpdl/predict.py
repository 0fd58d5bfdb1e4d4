"""Class probabilities for new sentences from a trained classifier's best parameters, tokenised exactly as the
run's training data was (its saved vocabulary and data.max_len)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from flax import nnx

from nlpdl import config as C
from nlpdl.data.tokenizers import WordVocab
from nlpdl.nn.losses import get_loss
from nlpdl.tasks.classification import CLASS_NAMES, encode_sentences
from nlpdl.train.loop import restore_run
from nlpdl.train.rundir import RunDir
from nlpdl.train.state import split_model


def class_names(dataset: str, num_classes: int) -> tuple[str, ...]:
    names = CLASS_NAMES.get(dataset, ("negative", "positive") if num_classes == 2 else ())
    return names if len(names) == num_classes else tuple(str(i) for i in range(num_classes))


def predict_run(workdir: Path, sentences: list[str], data_dir: Path) -> list[dict[str, float]]:
    """One {class name: probability} per sentence."""
    cfg = RunDir(workdir).read_config()
    if cfg.task.name != "classification" or not (workdir / "vocab.json").is_file():
        raise C.ConfigError(f"{workdir} is not a sentence classifier's run dir (it needs task.name=classification "
                            "and a vocab.json): predict works on classifiers trained on text.")
    vocab = WordVocab.load(workdir / "vocab.json")
    _, t, params = restore_run(workdir, data_dir)
    model = nnx.merge(split_model(t.make_model), params)
    outputs = model(encode_sentences(sentences, vocab, cfg.data))
    probs = np.asarray(jax.device_get(get_loss(cfg.task.loss).probabilities(outputs)))
    names = class_names(cfg.data.dataset, probs.shape[1])
    return [dict(zip(names, map(float, row))) for row in probs]
