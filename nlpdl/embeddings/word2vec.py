"""word2vec (Mikolov et al. 2013): skip-gram or CBOW with negative sampling, frequent-word subsampling, a
dynamic window and a linearly decaying learning rate, with gensim's definitions of each.

Each epoch's training examples are made in numpy, all at once (subsampling, reduced windows, pairs), and
shuffled; the updates run on device as one jitted `lax.scan` over many mini-batches per call. A step is pure:
`(params, batch, lr, key) -> params`, with sparse scatter-add updates of only the rows a batch touches (the
embedding matrices are donated, so they are updated in place) and negatives drawn on device from the
unigram^0.75 table.

Several devices (on CPU: cores, with `nlpdl --cpu-devices N`) train side by side: each runs its own share of a
call's mini-batches on its own copy of the tables, and the call ends by adding up every device's updates, the
way word2vec's threads share one table lock-free, except that they see each other's updates once per call.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from nlpdl.config import ConfigError
from nlpdl.embeddings.vectors import Vectors


@dataclass(frozen=True)
class Word2VecConfig:
    corpus: Literal["wikitext-2", "ptb", "botchan", "tinyshakespeare"] = "wikitext-2"  # its train split, by line
    model: Literal["skipgram", "cbow"] = "skipgram"
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3  # subsampling threshold (0: keep every word)
    epochs: int = 5
    alpha: float = 0.025  # learning rate, decaying linearly to min_alpha over all epochs
    min_alpha: float = 1e-4
    ns_exponent: float = 0.75
    shared_negatives: bool = False  # skip-gram: a centre's context words share its negatives (BlazingText)
    batch_size: int = 1024  # examples per update
    steps_per_call: int = 64  # updates per jitted call (fewer host round trips); devices merge once per call
    devices: int = 0  # local devices that train side by side (0: all); on CPU, cores become devices with
    # `nlpdl --cpu-devices N` (or XLA_FLAGS=--xla_force_host_platform_device_count=N)
    seed: int = 0


def build_vocab(sentences: Iterable[Sequence[str]], min_count: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Words with at least `min_count` occurrences, most frequent first (ties in first-seen order), and counts."""
    counts = Counter(w for s in sentences for w in s)
    kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: -wc[1])
    return tuple(w for w, _ in kept), np.asarray([c for _, c in kept], dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """gensim's subsampling: a word of count c is kept with probability (sqrt(c / t) + 1) * t / c, where
    t = sample * total count (at most 1)."""
    if sample <= 0:
        return np.ones(len(counts))
    threshold = sample * counts.sum()
    return np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1.0)


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """P(word) for negative samples: count^exponent, normalised."""
    weights = counts.astype(np.float64) ** exponent
    return weights / weights.sum()


def encode(sentences: Iterable[Sequence[str]], words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of the in-vocabulary words (out-of-vocabulary ones are dropped, as gensim does) and the
    sentence id of each."""
    index = {w: i for i, w in enumerate(words)}
    ids, sids = [], []
    for k, sentence in enumerate(sentences):
        row = [index[w] for w in sentence if w in index]
        ids.extend(row)
        sids.extend([k] * len(row))
    return np.asarray(ids, np.int32), np.asarray(sids, np.int32)


def epoch_examples(ids: np.ndarray, sids: np.ndarray, keep_prob: np.ndarray, window: int, model: str,
                   rng: np.random.Generator, by_window: bool = False) -> dict[str, np.ndarray]:
    """One epoch's examples. Subsampled words are removed first; each centre then gets a window of
    `window - b` words on each side, b uniform in [0, window) (gensim's reduced windows).

    skip-gram: one (centre, context) pair per context word. CBOW, or `by_window`: the centre and its context ids
    N x 2W (-1 where there is none)."""
    kept = rng.random(len(ids)) < keep_prob[ids]
    ids, sids = ids[kept], sids[kept]
    n = len(ids)
    reach = window - rng.integers(0, window, n)
    offsets = [d for d in range(-window, window + 1) if d]
    if model == "skipgram" and not by_window:
        centres, contexts = [], []
        for d in offsets:
            pos = np.arange(max(0, -d), min(n, n - d))
            ok = (reach[pos] >= abs(d)) & (sids[pos] == sids[pos + d])
            centres.append(ids[pos[ok]]), contexts.append(ids[pos[ok] + d])
        return {"centre": np.concatenate(centres), "context": np.concatenate(contexts)}
    def around(a: np.ndarray) -> np.ndarray:  # N x 2W: the W values before and after each position
        padded = np.concatenate([np.full(window, -1, a.dtype), a, np.full(window, -1, a.dtype)])
        view = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)
        return np.concatenate([view[:, :window], view[:, window + 1:]], axis=1)

    distance = np.abs(np.asarray(offsets))
    ok = (around(sids) == sids[:, None]) & (reach[:, None] >= distance[None, :])
    context = np.where(ok, around(ids), -1).astype(np.int32)
    has = ok.any(axis=1)
    return {"centre": ids[has], "context": context[has]}


# every index is a vocabulary id by construction; skipping XLA's bounds handling makes CPU scatters ~1.5x faster
IN_BOUNDS = "promise_in_bounds"
DEVICES = "devices"  # the mesh axis the examples of a call are split along


def _negatives(key, cdf_V: jax.Array, shape) -> jax.Array:
    return jnp.searchsorted(cdf_V, jax.random.uniform(key, shape), side="right").astype(jnp.int32)


def _nll(p, positive, weight=1.0):
    """-log s(score) for the true word, -log s(-score) for the noise words, from p = s(score): one log per score
    (log_sigmoid would take an exp and a log1p, a fifth of a step's time), clamped where p rounds to 0 or 1."""
    return -jnp.sum(weight * jnp.log(jnp.maximum(jnp.where(positive, p, 1.0 - p), 1e-7)))


def _sgns_rows(h_BxD, centre_out_B, negatives_BxK, syn1_VxD):
    """Gradients of the negative-sampling loss -log s(h.u_o) - sum_k log s(-h.u_k) w.r.t. h and the output
    rows it touched."""
    targets_BxK1 = jnp.concatenate([centre_out_B[:, None], negatives_BxK], axis=1)
    labels_1xK1 = jnp.zeros((1, targets_BxK1.shape[1])).at[0, 0].set(1.0)
    u_BxK1xD = syn1_VxD.at[targets_BxK1].get(mode=IN_BOUNDS)
    scores_BxK1 = jnp.einsum("bd,bkd->bk", h_BxD, u_BxK1xD)
    p_BxK1 = jax.nn.sigmoid(scores_BxK1)
    g_BxK1 = p_BxK1 - labels_1xK1  # d loss / d score
    loss = _nll(p_BxK1, labels_1xK1 > 0)
    dh_BxD = jnp.einsum("bk,bkd->bd", g_BxK1, u_BxK1xD)
    return targets_BxK1, dh_BxD, jnp.einsum("bk,bd->bkd", g_BxK1, h_BxD), loss


def skipgram_step(params, batch, lr, key, cdf_V, negative: int):
    syn0, syn1 = params
    centre_B, context_B, weight_B = batch["centre"], batch["context"], batch["weight"]
    negatives_BxK = _negatives(key, cdf_V, (centre_B.shape[0], negative))
    h_BxD = syn0.at[centre_B].get(mode=IN_BOUNDS)
    targets, dh_BxD, du_BxK1xD, loss = _sgns_rows(h_BxD, context_B, negatives_BxK, syn1)
    w_Bx1 = weight_B[:, None]
    syn1 = syn1.at[targets.reshape(-1)].add((-lr * du_BxK1xD * w_Bx1[..., None]).reshape(-1, syn1.shape[1]), mode=IN_BOUNDS)
    syn0 = syn0.at[centre_B].add(-lr * dh_BxD * w_Bx1, mode=IN_BOUNDS)
    return (syn0, syn1), loss


def skipgram_window_step(params, batch, lr, key, cdf_V, negative: int):
    """Skip-gram over whole windows: every context word of a centre predicts it against the same `negative`
    noise words (negative sharing, Gupta & Khare 2017, BlazingText). Each pair's loss and gradients are
    word2vec's; a window touches C + 1 + K rows instead of C (2 + K)."""
    syn0, syn1 = params
    centre_B, context_BxC, weight_B = batch["centre"], batch["context"], batch["weight"]
    present_BxC = (context_BxC >= 0).astype(syn0.dtype) * weight_B[:, None]
    ctx_BxC = jnp.maximum(context_BxC, 0)
    h_BxCxD = syn0.at[ctx_BxC].get(mode=IN_BOUNDS)
    negatives_BxK = _negatives(key, cdf_V, (centre_B.shape[0], negative))
    targets_BxK1 = jnp.concatenate([centre_B[:, None], negatives_BxK], axis=1)
    u_BxK1xD = syn1.at[targets_BxK1].get(mode=IN_BOUNDS)
    scores_BxCxK1 = jnp.einsum("bcd,bkd->bck", h_BxCxD, u_BxK1xD)
    positive_1x1xK1 = (jnp.arange(targets_BxK1.shape[1]) == 0)[None, None, :]
    p_BxCxK1 = jax.nn.sigmoid(scores_BxCxK1)
    g_BxCxK1 = (p_BxCxK1 - positive_1x1xK1) * present_BxC[..., None]
    loss = _nll(p_BxCxK1, positive_1x1xK1, present_BxC[..., None])
    dh_BxCxD = jnp.einsum("bck,bkd->bcd", g_BxCxK1, u_BxK1xD)
    du_BxK1xD = jnp.einsum("bck,bcd->bkd", g_BxCxK1, h_BxCxD)
    dim = syn0.shape[1]
    syn1 = syn1.at[targets_BxK1.reshape(-1)].add(-lr * du_BxK1xD.reshape(-1, dim), mode=IN_BOUNDS)
    syn0 = syn0.at[ctx_BxC.reshape(-1)].add(-lr * dh_BxCxD.reshape(-1, dim), mode=IN_BOUNDS)
    return (syn0, syn1), loss


def cbow_step(params, batch, lr, key, cdf_V, negative: int):
    """The mean of the context vectors predicts the centre; each context word gets the mean's gradient / n."""
    syn0, syn1 = params
    centre_B, context_BxC, weight_B = batch["centre"], batch["context"], batch["weight"]
    present_BxC = (context_BxC >= 0).astype(syn0.dtype)
    count_B1 = jnp.maximum(present_BxC.sum(1, keepdims=True), 1.0)
    ctx = jnp.maximum(context_BxC, 0)
    h_BxD = jnp.einsum("bcd,bc->bd", syn0.at[ctx].get(mode=IN_BOUNDS), present_BxC) / count_B1
    negatives_BxK = _negatives(key, cdf_V, (centre_B.shape[0], negative))
    targets, dh_BxD, du_BxK1xD, loss = _sgns_rows(h_BxD, centre_B, negatives_BxK, syn1)
    w_Bx1 = weight_B[:, None]
    syn1 = syn1.at[targets.reshape(-1)].add((-lr * du_BxK1xD * w_Bx1[..., None]).reshape(-1, syn1.shape[1]), mode=IN_BOUNDS)
    per_context_BxCxD = (-lr * dh_BxD * w_Bx1 / count_B1)[:, None, :] * present_BxC[..., None]
    syn0 = syn0.at[ctx.reshape(-1)].add(per_context_BxCxD.reshape(-1, syn0.shape[1]), mode=IN_BOUNDS)
    return (syn0, syn1), loss


def make_train_chunk(mesh: Mesh, model: str, negative: int, shared_negatives: bool = False):
    """`(params, batches, lrs, key, cdf_V) -> (params, loss)`: S mini-batches per call on every device of `mesh`.

    `batches` arrays are S x (devices * B) (x C); each device runs its own S x B with its own negatives, from
    the same starting tables, and the call ends by adding every device's updates to those tables (as
    word2vec's and gensim's threads share them lock-free, but merged once per call). One device: plain SGD.
    """
    step = cbow_step if model == "cbow" else skipgram_window_step if shared_negatives else skipgram_step

    def local(params, batches, lrs, key, cdf_V):
        key = jax.random.fold_in(key, jax.lax.axis_index(DEVICES))

        def body(params, xs):
            batch, lr, i = xs
            return step(params, batch, lr, jax.random.fold_in(key, i), cdf_V, negative)

        start = jax.tree.map(lambda x: jax.lax.pcast(x, DEVICES, to="varying"), params)  # each device's copy
        new, losses = jax.lax.scan(body, start, (batches, lrs, jnp.arange(lrs.shape[0])))
        loss = jax.lax.psum(losses.sum(), DEVICES)
        if mesh.size == 1:  # a sum over one device is its table; the merge below would cost passes over both
            return jax.tree.map(lambda n: jax.lax.psum(n, DEVICES), new), loss
        return jax.tree.map(lambda n, o: o + jax.lax.psum(n - o, DEVICES), new, params), loss

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(None, DEVICES), P(), P(), P()),
                            out_specs=(P(), P()))
    return jax.jit(sharded, donate_argnums=(0,))


def init_params(vocab_size: int, dim: int, seed: int) -> tuple[jax.Array, jax.Array]:
    """word2vec's initialisation: input vectors uniform in [-0.5/dim, 0.5/dim), output vectors zero."""
    key = jax.random.PRNGKey(seed)
    syn0 = (jax.random.uniform(key, (vocab_size, dim)) - 0.5) / dim
    return syn0, jnp.zeros((vocab_size, dim))


def _chunks(examples: dict[str, np.ndarray], batch_size: int, steps: int):
    """Examples cut into S x B chunks; the last is padded with weight-0 rows."""
    n = len(examples["centre"])
    per_chunk = batch_size * steps
    for start in range(0, n, per_chunk):
        part = {k: v[start:start + per_chunk] for k, v in examples.items()}
        m = len(part["centre"])
        pad = per_chunk - m
        weight = np.concatenate([np.ones(m, np.float32), np.zeros(pad, np.float32)])
        part = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in part.items()}
        part["weight"] = weight
        yield {k: v.reshape(steps, batch_size, *v.shape[1:]) for k, v in part.items()}, m


def train_word2vec(sentences: Sequence[Sequence[str]], cfg: Word2VecConfig, log=print) -> tuple[Vectors, dict]:
    """Trains on `sentences` (lists of words); returns the input vectors and throughput figures."""
    words, counts = build_vocab(sentences, cfg.min_count)
    if not words:
        raise ValueError(f"no word occurs {cfg.min_count} times: lower min_count.")
    ids, sids = encode(sentences, words)
    keep = keep_probabilities(counts, cfg.sample)
    cdf_V = jnp.asarray(np.cumsum(noise_distribution(counts, cfg.ns_exponent)), jnp.float32)
    params = init_params(len(words), cfg.dim, cfg.seed)
    mesh = local_mesh(cfg.devices)
    per_step = cfg.batch_size * mesh.size
    train_chunk = make_train_chunk(mesh, cfg.model, cfg.negative, cfg.shared_negatives)
    rng = np.random.default_rng(cfg.seed)
    key = jax.random.PRNGKey(cfg.seed + 1)
    # the learning rate decays with the fraction of the corpus's words processed, as in gensim
    total_words, done_words, loss_sum, examples_seen = cfg.epochs * len(ids), 0, 0.0, 0
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        examples = epoch_examples(ids, sids, keep, cfg.window, cfg.model, rng, by_window=cfg.shared_negatives)
        order = rng.permutation(len(examples["centre"]))
        examples = {k: v[order] for k, v in examples.items()}
        n = len(examples["centre"])
        for c, (chunk, m) in enumerate(_chunks(examples, per_step, cfg.steps_per_call)):
            ends = done_words + len(ids) * np.minimum(
                (c * per_step * cfg.steps_per_call + per_step * np.arange(cfg.steps_per_call)) / n, 1.0)
            lrs = np.maximum(cfg.alpha - (cfg.alpha - cfg.min_alpha) * ends / total_words, cfg.min_alpha)
            params, loss = train_chunk(params, chunk, jnp.asarray(lrs, jnp.float32),
                                       jax.random.fold_in(key, epoch * 1_000_003 + c), cdf_V)
            loss_sum += float(loss) if c % 50 == 0 else 0.0
            examples_seen += m
        done_words += len(ids)
        jax.block_until_ready(params)
        log(f"epoch {epoch + 1}/{cfg.epochs}: {n} examples, {done_words / (time.perf_counter() - start):.0f} words/s")
    seconds = time.perf_counter() - start
    vectors = Vectors(words=words, matrix=np.asarray(jax.device_get(params[0]), np.float32))
    return vectors, {"seconds": seconds, "words_per_second": total_words / seconds, "examples": examples_seen,
                     "vocab_size": len(words), "corpus_words": int(len(ids)), "devices": mesh.size}


def local_mesh(devices: int) -> Mesh:
    """A one-axis mesh over this process's first `devices` devices (0: all of them)."""
    available = jax.local_devices()
    if devices > len(available):
        raise ConfigError(f"devices={devices} but this process sees {len(available)}; lower it or set 0 (all). "
                          f"On CPU, `nlpdl --cpu-devices N ...` makes N devices.")
    return Mesh(np.asarray(available[: devices or len(available)]), (DEVICES,))
