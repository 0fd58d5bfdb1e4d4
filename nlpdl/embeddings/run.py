"""word2vec runs: a corpus's train split as sentences, training, the vectors in word2vec binary format and
their evaluation (analogies, word-similarity Spearman) in the run dir; nearest neighbours from a run.

    nlpdl word2vec model=cbow epochs=5 --workdir runs/w2v-cbow   ->   config.json, vectors.bin, results.json
    nlpdl neighbors runs/w2v-cbow king
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from nlpdl import config as C
from nlpdl.data.sources import read_analogy, read_similarity
from nlpdl.embeddings.evaluation import analogy_accuracy, nearest, similarity_spearman
from nlpdl.embeddings.glove import GloVeConfig, train_glove
from nlpdl.embeddings.vectors import read_word2vec, write_word2vec_binary
from nlpdl.embeddings.word2vec import Word2VecConfig, train_word2vec
from nlpdl.files import atomic_write_text
from nlpdl.tasks.language_modeling import EOS, read_split

SIMILARITY_SETS = ("ws353", "simlex999", "men", "rw")
VECTORS_FILE = "vectors.bin"


def corpus_sentences(data_dir: Path, corpus: str) -> list[list[str]]:
    """The train split's lines as word lists (blank lines dropped)."""
    words = read_split(corpus, "words", data_dir, "train")
    sentences, current = [], []
    for w in words:
        if w == EOS:
            if current:
                sentences.append(current)
            current = []
        else:
            current.append(w)
    return sentences + ([current] if current else [])


def evaluate_vectors(vectors, data_dir: Path) -> dict:
    """Google analogies (3CosAdd, 30k most frequent words, as gensim) and Spearman on the similarity sets."""
    results = {"analogy": analogy_accuracy(vectors, read_analogy(data_dir), restrict_vocab=30_000)}
    for name in SIMILARITY_SETS:
        results[name] = similarity_spearman(vectors, read_similarity(data_dir, name))
    return results


TRAINERS = {Word2VecConfig: train_word2vec, GloVeConfig: train_glove}


def train_run(cfg: Word2VecConfig | GloVeConfig, workdir: Path, data_dir: Path) -> dict:
    """Trains word2vec or GloVe (by the config's type) into `workdir`: config.json, vectors.bin (word2vec
    binary; GloVe's are W + W~) and results.json. A finished run is never overwritten."""
    workdir = Path(workdir)
    if (workdir / "results.json").exists():
        raise C.ConfigError(f"{workdir} already holds a finished run: choose another --workdir.")
    sentences = corpus_sentences(data_dir, cfg.corpus)
    workdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(workdir / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    vectors, stats = TRAINERS[type(cfg)](sentences, cfg)
    write_word2vec_binary(workdir / VECTORS_FILE, vectors)
    results = {"training": stats, **evaluate_vectors(vectors, data_dir)}
    atomic_write_text(workdir / "results.json", json.dumps(results, indent=2) + "\n")
    return results


def resolve_config(overrides: list[str]) -> Word2VecConfig:
    return C.apply_overrides(Word2VecConfig(), overrides)


def resolve_glove_config(overrides: list[str]) -> GloVeConfig:
    return C.apply_overrides(GloVeConfig(), overrides)


def neighbors(path: Path, word: str, k: int = 10) -> list[tuple[str, float]]:
    """`path`: a word2vec run dir or a vectors file (word2vec text/binary)."""
    path = Path(path)
    vectors = read_word2vec(path / VECTORS_FILE if path.is_dir() else path)
    if word not in vectors:
        raise C.ConfigError(f"{word!r} is not in the vocabulary of {path} ({len(vectors)} words).")
    return nearest(vectors, word, k)
