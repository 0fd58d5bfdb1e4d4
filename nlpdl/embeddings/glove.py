"""GloVe (Pennington et al. 2014): word vectors fitted to the log of a corpus's co-occurrence counts by weighted least
squares, trained with AdaGrad as the GloVe C code (glove.c) trains them.

The counts X_ij (1/distance weighted, within a sentence, both directions by default, as cooccur.c counts them) are
built in numpy once, vectorised per offset. Each epoch the nonzero entries are shuffled and the updates run on device
as one jitted `lax.scan` over many mini-batches per call; a step is pure and scatter-adds into only the rows it
touches (the parameters and AdaGrad's squared gradients are donated, so they are updated in place).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nlpdl.embeddings.vectors import Vectors
from nlpdl.embeddings.word2vec import build_vocab, encode


_POSITIVE = {"min": 1}  # ranges `nlpdl glove key=value` overrides are checked against


@dataclass(frozen=True)
class GloVeConfig:
    corpus: Literal["wikitext-2", "ptb", "botchan", "tinyshakespeare"] = "wikitext-2"  # its train split, by line
    dim: int = field(default=100, metadata=_POSITIVE)
    window: int = field(default=10, metadata=_POSITIVE)  # context words on each side, each counted 1/distance
    min_count: int = field(default=5, metadata=_POSITIVE)
    symmetric: bool = True  # count both directions (GloVe's default); False: X_ij only where j follows i
    x_max: float = field(default=100.0, metadata={"min_exclusive": 0.0})  # f(x) = min(1, (x / x_max)^alpha)
    alpha: float = field(default=0.75, metadata={"min": 0.0})
    lr: float = field(default=0.05, metadata={"min_exclusive": 0.0})  # AdaGrad's initial learning rate (GloVe's eta)
    epochs: int = field(default=25, metadata=_POSITIVE)
    batch_size: int = field(default=4096, metadata=_POSITIVE)  # nonzero entries per update
    steps_per_call: int = field(default=64, metadata=_POSITIVE)  # updates per jitted call (fewer host round trips)
    seed: int = 0


def _sum_by_key(key: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, sorted, and the summed weight of each."""
    unique, inverse = np.unique(key, return_inverse=True)
    return unique, np.bincount(inverse.reshape(-1), weights=weight, minlength=len(unique))


def cooccurrence(ids: np.ndarray, sids: np.ndarray, vocab_size: int, window: int,
                 symmetric: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero X_ij as COO arrays (rows, cols int32, values float32, sorted by row then column): each pair of
    tokens of one sentence at distance d <= window adds 1/d to X[earlier, later], and with `symmetric` also to
    X[later, earlier]. One vectorised pass per offset, summed by a combined int64 key `row * V + col`; the
    symmetric sum is F + F^T of the one-directional counts F (half as many keys to sort as adding both at once)."""
    keys, weights = [], []
    for d in range(1, window + 1):
        p = np.flatnonzero(sids[:-d] == sids[d:]) if d < len(ids) else np.zeros(0, np.int64)
        keys.append(ids[p].astype(np.int64) * vocab_size + ids[p + d])
        weights.append(np.full(len(p), 1.0 / d))
    key, weight = _sum_by_key(np.concatenate(keys), np.concatenate(weights))
    if symmetric:
        transposed = (key % vocab_size) * vocab_size + key // vocab_size
        key, weight = _sum_by_key(np.concatenate([key, transposed]), np.concatenate([weight, weight]))
    return (key // vocab_size).astype(np.int32), (key % vocab_size).astype(np.int32), weight.astype(np.float32)


def weighting(x, x_max: float, alpha: float):
    """GloVe's f(x) = min(1, (x / x_max)^alpha): rare pairs (noisy) count less, frequent ones are capped."""
    return jnp.minimum(1.0, (x / x_max) ** alpha)


def init_params(vocab_size: int, dim: int, seed: int) -> tuple[jax.Array, jax.Array]:
    """glove.c's layout and initialisation: 2V x (D+1) rows, word vectors w_i then context vectors w~_j, each with
    its bias in the last column, all uniform in [-0.5/D, 0.5/D); AdaGrad's squared-gradient sums start at 1."""
    w_2VxD1 = (jax.random.uniform(jax.random.PRNGKey(seed), (2 * vocab_size, dim + 1)) - 0.5) / dim
    return w_2VxD1, jnp.ones_like(w_2VxD1)


def glove_step(params, batch, lr, x_max: float, alpha: float):
    """glove.c's update for each entry (i, j, X_ij) of a batch, with every entry's gradients from the same params:
    diff = w_i.w~_j + b_i + b~_j - log X_ij, g = lr * f(X_ij) * diff * d diff / d theta, theta -= g / sqrt(G), then
    G += g^2 (so G is the sum of earlier squared steps, starting at 1). Returns the sum of f(X_ij) * diff^2."""
    w_2VxD1, gradsq_2VxD1 = params
    rows_B, cols_B, x_B, mask_B = batch["row"], batch["col"], batch["x"], batch["mask"]
    wi_BxD1, wj_BxD1 = w_2VxD1[rows_B], w_2VxD1[cols_B]
    diff_B = jnp.sum(wi_BxD1[:, :-1] * wj_BxD1[:, :-1], axis=1) + wi_BxD1[:, -1] + wj_BxD1[:, -1] - jnp.log(x_B)
    fdiff_B = weighting(x_B, x_max, alpha) * mask_B * diff_B
    ones_Bx1 = jnp.ones_like(x_B)[:, None]
    g_BxD1 = lr * fdiff_B[:, None] * jnp.concatenate([wj_BxD1[:, :-1], ones_Bx1], axis=1)  # for (w_i, b_i)
    gc_BxD1 = lr * fdiff_B[:, None] * jnp.concatenate([wi_BxD1[:, :-1], ones_Bx1], axis=1)  # for (w~_j, b~_j)
    touched_2B = jnp.concatenate([rows_B, cols_B])
    g_2BxD1 = jnp.concatenate([g_BxD1, gc_BxD1])
    w_2VxD1 = w_2VxD1.at[touched_2B].add(-g_2BxD1 / jnp.sqrt(gradsq_2VxD1[touched_2B]))
    gradsq_2VxD1 = gradsq_2VxD1.at[touched_2B].add(g_2BxD1 * g_2BxD1)
    return (w_2VxD1, gradsq_2VxD1), jnp.sum(fdiff_B * diff_B)


@functools.partial(jax.jit, static_argnames=("x_max", "alpha"), donate_argnums=(0,))
def train_chunk(params, batches, lr, *, x_max: float, alpha: float):
    """Several mini-batches in one call: `batches` arrays are S x B. Returns the params and the summed loss."""

    def body(params, batch):
        return glove_step(params, batch, lr, x_max, alpha)

    params, losses_S = jax.lax.scan(body, params, batches)
    return params, losses_S.sum()


def _chunks(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, batch_size: int, steps: int):
    """The entries cut into S x B chunks; the last is padded with mask-0 entries (x = 1, so log x is finite)."""
    per_chunk = batch_size * steps
    for start in range(0, len(rows), per_chunk):
        m = min(per_chunk, len(rows) - start)
        pad = per_chunk - m
        part = {"row": rows[start:start + m], "col": cols[start:start + m], "x": values[start:start + m],
                "mask": np.ones(m, np.float32)}
        part = {k: np.concatenate([v, np.full(pad, 1 if k == "x" else 0, v.dtype)]) for k, v in part.items()}
        yield {k: v.reshape(steps, batch_size) for k, v in part.items()}


def train_glove(sentences: Sequence[Sequence[str]], cfg: GloVeConfig, log=print) -> tuple[Vectors, dict]:
    """Trains on `sentences` (lists of words); returns W + W~ (GloVe's default output) and figures incl. each
    epoch's mean f(X_ij) * diff^2 over the nonzero entries (glove.c prints half of it)."""
    words, _ = build_vocab(sentences, cfg.min_count)
    if not words:
        raise ValueError(f"no word occurs {cfg.min_count} times: lower min_count.")
    vocab_size = len(words)
    ids, sids = encode(sentences, words)
    start = time.perf_counter()
    rows, cols, values = cooccurrence(ids, sids, vocab_size, cfg.window, cfg.symmetric)
    cooc_seconds = time.perf_counter() - start
    nnz = len(values)
    if not nnz:
        raise ValueError("no two vocabulary words share a sentence: nothing to fit.")
    log(f"co-occurrences: {nnz} nonzero entries from {len(ids)} words ({vocab_size} distinct) in {cooc_seconds:.1f}s")
    cols = cols + vocab_size  # context vectors are rows V..2V-1
    params = init_params(vocab_size, cfg.dim, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = rng.permutation(nnz)
        sums = []
        for chunk in _chunks(rows[order], cols[order], values[order], cfg.batch_size, cfg.steps_per_call):
            params, loss = train_chunk(params, chunk, jnp.float32(cfg.lr), x_max=cfg.x_max, alpha=cfg.alpha)
            sums.append(loss)
        losses.append(float(jnp.stack(sums).sum()) / nnz)
        done = (epoch + 1) * nnz
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {losses[-1]:.4f}, {done / (time.perf_counter() - start):.0f} "
            "entries/s")
    seconds = time.perf_counter() - start
    w_2VxD = np.asarray(jax.device_get(params[0]), np.float32)[:, :-1]
    vectors = Vectors(words=words, matrix=w_2VxD[:vocab_size] + w_2VxD[vocab_size:])
    return vectors, {"seconds": seconds, "cooccurrence_seconds": cooc_seconds, "entries_per_second":
                     cfg.epochs * nnz / seconds, "nonzeros": nnz, "vocab_size": vocab_size, "corpus_words": int(len(ids)),
                     "loss_per_epoch": losses}
