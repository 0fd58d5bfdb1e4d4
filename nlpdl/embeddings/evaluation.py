"""Intrinsic evaluation of word vectors: analogies by 3CosAdd and word-similarity Spearman correlation, computed as
gensim 4's KeyedVectors.evaluate_word_analogies / evaluate_word_pairs do (so numbers compare with published ones), and
cosine nearest neighbours. Numpy only: matrix products over chunks of questions, no scipy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nlpdl.embeddings.vectors import Vectors, unit_rows

_TOP = 5  # gensim takes the best 5 candidates and answers with the first that is not a question word
_CHUNK_ELEMENTS = 1 << 23  # questions per matrix product: about this many similarities (32 MiB of float32)


def _vocab(words: Sequence[str], case_insensitive: bool) -> dict[str, int]:
    """gensim's `ok_vocab`: each word's key (upper-cased if case-insensitive, as gensim does) -> the index of the first
    word with that key, which is the most frequent case variant when words are sorted by frequency."""
    vocab: dict[str, int] = {}
    for i, word in enumerate(words):
        vocab.setdefault(word.upper() if case_insensitive else word, i)
    return vocab


def _answer(unit: np.ndarray, group: np.ndarray, questions: np.ndarray) -> np.ndarray:
    """Whether 3CosAdd answers each question (rows of vocab indices a, b, c, d) with d, as gensim: the 5 words most
    cosine-similar to b - a + c (unit vectors), a, b and c left out; the answer is the first of them whose key is none
    of a's, b's and c's (other case variants of them are skipped), else the last of them."""
    a, b, c, expected = questions.T
    sims = (unit[b] + unit[c] - unit[a]) @ unit.T
    rows = np.arange(len(questions))[:, None]
    sims[rows, questions[:, :3]] = -np.inf
    top = min(_TOP, sims.shape[1])
    candidates = np.argpartition(-sims, top - 1, axis=1)[:, :top] if top < sims.shape[1] else np.argsort(-sims, axis=1)
    candidates = np.take_along_axis(candidates, np.argsort(-np.take_along_axis(sims, candidates, 1), 1, "stable"), 1)
    valid = np.take_along_axis(sims, candidates, 1) > -np.inf  # fewer than 5 words left: a prefix is valid
    keys = group[candidates]
    new = valid & (keys != a[:, None]) & (keys != b[:, None]) & (keys != c[:, None])
    last = np.maximum(valid.sum(1) - 1, 0)
    predicted = np.where(new.any(1), keys[rows[:, 0], new.argmax(1)],
                         np.where(valid.any(1), keys[rows[:, 0], last], -1))
    return predicted == expected


def _counts(correct: int, answered: int, oov: int, oov_as_wrong: bool) -> dict:
    """correct, total (the accuracy's denominator: answered questions, plus OOV ones if they count as wrong), oov and
    accuracy (0.0 when total is 0, as gensim)."""
    total = answered + oov if oov_as_wrong else answered
    return {"correct": correct, "total": total, "oov": oov, "accuracy": correct / total if total else 0.0}


def analogy_accuracy(vectors: Vectors, sections: Sequence[tuple[str, Sequence[tuple[str, str, str, str]]]],
                     restrict_vocab: int | None = 30_000, case_insensitive: bool = True,
                     oov_as_wrong: bool = False) -> dict:
    """3CosAdd accuracy on analogy `sections` (as read_analogy gives them), exactly as gensim 4's
    evaluate_word_analogies (dummy4unknown=oov_as_wrong): only the first `restrict_vocab` words (None: all) are
    searched and known; case-insensitive matching upper-cases words, a key meaning its most frequent variant.

    A question with a word outside that vocabulary is OOV: skipped (gensim's default), or counted wrong if
    `oov_as_wrong`. Returns accuracies "total", "semantic" (sections not named gram*: the first 5 of the Google set)
    and "syntactic" (gram* sections); "questions" and "oov" counts; "counts" with correct / total / oov / accuracy of
    "total", "semantic" and "syntactic", and the same per section under "sections", in order.
    """
    words = vectors.words[:restrict_vocab]
    vocab = _vocab(words, case_insensitive)
    group = np.fromiter((vocab[w.upper() if case_insensitive else w] for w in words), np.int64, len(words))
    unit = unit_rows(vectors.matrix[:len(words)])
    names = [name for name, _ in sections]
    flat = [(s, tuple(vocab.get(w.upper() if case_insensitive else w, -1) for w in question))
            for s, (_, questions) in enumerate(sections) for question in questions]
    section_of = np.fromiter((s for s, _ in flat), np.int64, len(flat))
    ids = np.array([q for _, q in flat], np.int64).reshape(len(flat), 4)
    known = (ids >= 0).all(1)
    correct = np.zeros(len(flat), bool)
    where = np.flatnonzero(known)
    chunk = max(1, _CHUNK_ELEMENTS // max(len(words), 1))
    for start in range(0, len(where), chunk):
        rows = where[start:start + chunk]
        correct[rows] = _answer(unit, group, ids[rows])

    def counts(mask: np.ndarray) -> dict:
        return _counts(int(correct[mask].sum()), int(known[mask].sum()), int((~known[mask]).sum()), oov_as_wrong)

    per_section = {name: counts(section_of == s) for s, name in enumerate(names)}
    syntactic = np.isin(section_of, [s for s, name in enumerate(names) if name.startswith("gram")])
    totals = {"total": counts(np.ones(len(flat), bool)), "semantic": counts(~syntactic), "syntactic": counts(syntactic)}
    return {**{group_name: c["accuracy"] for group_name, c in totals.items()},
            "questions": len(flat), "oov": int((~known).sum()), "counts": totals, "sections": per_section}


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (scipy.stats.rankdata's "average")."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(np.r_[starts, len(values)])
    ranks = np.empty(len(values))
    ranks[order] = (starts + (sizes + 1) / 2)[group]
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN with fewer than 2 points or a constant side (scipy's answer too)."""
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def similarity_spearman(vectors: Vectors, pairs: Sequence[tuple[str, str, float]], case_insensitive: bool = True,
                        restrict_vocab: int | None = None) -> dict:
    """Spearman (and Pearson) correlation between human scores and cosine similarities of word `pairs`, as gensim 4's
    evaluate_word_pairs: pairs with a word outside the first `restrict_vocab` words (None: all) are skipped; matching
    upper-cases words if `case_insensitive`, a key meaning its most frequent variant.

    Returns spearman, pearson (NaN with fewer than 2 pairs used), pairs_used and oov (pairs skipped).
    """
    vocab = _vocab(vectors.words[:restrict_vocab], case_insensitive)
    key = str.upper if case_insensitive else str
    used = [(vocab[key(a)], vocab[key(b)], score) for a, b, score in pairs if key(a) in vocab and key(b) in vocab]
    first = np.array([i for i, _, _ in used], np.int64)
    second = np.array([j for _, j, _ in used], np.int64)
    gold = np.array([score for _, _, score in used], np.float64)
    model = (unit_rows(vectors.matrix[first]) * unit_rows(vectors.matrix[second])).sum(1, dtype=np.float64)
    return {"spearman": _pearson(_average_ranks(gold), _average_ranks(model)), "pearson": _pearson(gold, model),
            "pairs_used": len(used), "oov": len(pairs) - len(used)}


def nearest(vectors: Vectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The `k` words most cosine-similar to `word` (itself left out), most similar first, with their cosines."""
    if word not in vectors:
        raise KeyError(f"{word!r} is not among the {len(vectors)} words")
    unit = unit_rows(vectors.matrix)
    sims = unit @ unit[vectors.index[word]]
    sims[vectors.index[word]] = -np.inf
    best = np.argsort(-sims, kind="stable")[:min(k, len(vectors) - 1)]
    return [(vectors.words[i], float(sims[i])) for i in best]
