"""Probing tasks: what to predict from a layer, and the sentences to predict it on.

Token tasks label every token of a sentence; sentence tasks label the sentence. The surface tasks (`position`,
`frequency`, `length`) read the run's own corpus (its train split to fit the probe, its test split to score it);
a dataset's name (`trec`, `sst2`, `subj`, ...) predicts that dataset's labels from its sentences, e.g. TREC
question types from a model trained on SST-2. Tokens are the model's own (words, characters or pieces).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from nlpdl import config as C
from nlpdl.analysis.runs import OpenedRun
from nlpdl.tasks.classification import TEXT_READERS, read_texts
from nlpdl.tasks.language_modeling import EOS, read_split

POSITIONS = 10  # position classes 0 .. 8, then 9 for every later token
FREQUENCY_BUCKETS = 4  # each bucket holds about a quarter of the corpus's tokens, most frequent words first
LENGTH_EDGES = (6, 11, 16, 21, 26, 31)  # sentence lengths 1-5, 6-10, ..., 26-30, 31+ tokens

Sentences = dict[str, tuple[list[str], np.ndarray | None]]  # "train" / "test" -> sentences, labels (or None)


@dataclass(frozen=True)
class ProbeTask:
    name: str
    level: str  # "token" or "sentence"
    description: str
    classes: int
    # (batch of the probe-train sentences, of the probe-test ones) -> their labels: N x L (-1 on padding) or N
    label: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]] | None = None


def _positions(batch: dict[str, np.ndarray]) -> np.ndarray:
    L = batch["tokens"].shape[1]
    position_NxL = np.broadcast_to(np.minimum(np.arange(L), POSITIONS - 1), batch["tokens"].shape)
    return np.where(np.arange(L)[None, :] < batch["lengths"][:, None], position_NxL, -1)


def _frequency_buckets(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """A token's bucket by its count in the probe-train sentences: tokens sorted by count, cut into buckets of
    equal token mass (so the classes are balanced on the train side)."""
    mask_NxL = np.arange(train["tokens"].shape[1])[None, :] < train["lengths"][:, None]
    ids, counts = np.unique(train["tokens"][mask_NxL], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    mass_before = (np.cumsum(counts[order]) - counts[order]) / counts.sum()
    bucket = np.full(max(ids.max(initial=0), test["tokens"].max(initial=0)) + 1, FREQUENCY_BUCKETS - 1)
    bucket[ids[order]] = np.minimum((mass_before * FREQUENCY_BUCKETS).astype(int), FREQUENCY_BUCKETS - 1)

    def label(batch):
        return np.where(_positions(batch) >= 0, bucket[batch["tokens"]], -1)

    return label(train), label(test)


SURFACE_TASKS = {
    "position": ProbeTask("position", "token", "the token's position in its sentence (0-8, 9+)", POSITIONS,
                          lambda train, test: (_positions(train), _positions(test))),
    "frequency": ProbeTask("frequency", "token", f"the token's frequency bucket ({FREQUENCY_BUCKETS}, equal token "
                           "mass)", FREQUENCY_BUCKETS, _frequency_buckets),
    "length": ProbeTask("length", "sentence", "the sentence's length in tokens (1-5, 6-10, ..., 31+)",
                        len(LENGTH_EDGES) + 1,
                        lambda train, test: tuple(np.digitize(b["lengths"], LENGTH_EDGES) for b in (train, test))),
}
TASK_NAMES = (*SURFACE_TASKS, *TEXT_READERS)


def get_task(name: str) -> ProbeTask:
    if name in SURFACE_TASKS:
        return SURFACE_TASKS[name]
    if name in TEXT_READERS:
        return ProbeTask(name, "sentence", f"the {name} label of the sentence", 0)
    raise C.ConfigError(f"unknown probe task {name!r}: choose one of {', '.join(TASK_NAMES)}.")


def _corpus_sentences(run: OpenedRun, data_dir: Path) -> Sentences:
    """The run's own train and test sentences (a language model's lines)."""
    cfg = run.cfg
    if cfg.task.name == "language_modeling":
        out = {}
        for split in ("train", "test"):
            text = read_split(cfg.data.dataset, cfg.data.tokenizer, data_dir, split)
            lines = (" ".join(text).split(f" {EOS}") if isinstance(text, list) else text.splitlines())
            out[split] = ([line.strip() for line in lines if line.strip()], None)
        return out
    texts, _ = read_texts(replace(cfg, data=replace(cfg.data, phrases=False)), data_dir)
    return {split: (texts[split][0], None) for split in ("train", "test")}


def task_sentences(task: ProbeTask, run: OpenedRun, data_dir: Path) -> tuple[Sentences, int]:
    """The task's train / test sentences (with labels for a dataset's task) and its number of classes."""
    if task.name in SURFACE_TASKS:
        return _corpus_sentences(run, data_dir), task.classes
    cfg = run.cfg
    data = replace(C.get(f"{task.name}_ffn").data, seed=0, fold=0, phrases=False)  # the dataset's own protocol
    texts, classes = read_texts(replace(cfg, data=data), data_dir)
    return {split: (texts[split][0], np.asarray(texts[split][1])) for split in ("train", "test")}, classes


def subsample(sentences: Sentences, limits: dict[str, int], seed: int) -> Sentences:
    """At most `limits[split]` sentences of each split, drawn without replacement."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, (texts, labels) in sentences.items():
        keep = np.sort(rng.permutation(len(texts))[:limits[split]])
        out[split] = ([texts[i] for i in keep], None if labels is None else labels[keep])
    return out
