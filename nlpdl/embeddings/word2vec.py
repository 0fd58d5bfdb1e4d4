"""word2vec (Mikolov et al. 2013): skip-gram or CBOW with negative sampling, frequent-word subsampling, a
dynamic window and a linearly decaying learning rate, with gensim's definitions of each.

Each epoch's training examples are made in numpy, all at once (subsampling, reduced windows, pairs or windows
grouped by their number of context words), and shuffled, while the devices still run the previous epoch; the
updates run on device as one jitted `lax.scan` per group over many mini-batches per call. A step is pure:
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
    # skip-gram: a centre's context words share its `negative` noise words (BlazingText): each pair's loss is
    # word2vec's, 2.1x the words/s of drawing negatives per pair, at gensim's quality (benchmarks/word2vec.md);
    # false: word2vec's own per-pair draws
    shared_negatives: bool = True
    batch_size: int = 256  # examples (windows; pairs without shared negatives) per update
    steps_per_call: int = 256  # updates per jitted call (fewer host round trips); devices merge once per call
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
                   rng: np.random.Generator, by_window: bool = False) -> list[dict[str, np.ndarray]]:
    """One epoch's examples, in random order, as groups of equal shape. Subsampled words are removed first; each
    centre then gets `window - b` words on each side, b uniform in [0, window) (gensim's reduced windows), cut at
    its sentence's ends (`sids`, in sentence order).

    skip-gram: one (centre, context) pair per context word, one group. CBOW, or `by_window`: each centre with its
    context ids, grouped by how many it has (1-2, 3-4, ..., 2W-1 to 2W); the group of width w holds them as
    N x w, -1 after the last. Reduced windows and sentence ends leave about 40% of 2W slots empty, and an empty
    slot costs a step as much as a full one."""
    kept = rng.random(len(ids)) < keep_prob[ids]
    ids, sids = ids[kept], sids[kept]
    n = len(ids)
    reach = window - rng.integers(0, window, n)
    pos = np.arange(n)
    new_sentence = np.r_[True, sids[1:] != sids[:-1]]
    first = np.maximum.accumulate(np.where(new_sentence, pos, 0))  # of each word's sentence
    last = np.minimum.accumulate(np.where(np.r_[new_sentence[1:], True], pos, n)[::-1])[::-1]
    left, right = np.minimum(reach, pos - first), np.minimum(reach, last - pos)
    if model == "skipgram" and not by_window:
        centre = np.concatenate([np.repeat(pos, left), np.repeat(pos, right)])
        below = np.arange(len(centre) - right.sum()) - np.repeat(np.cumsum(left) - left, left)  # 0 .. left-1
        above = np.arange(right.sum()) - np.repeat(np.cumsum(right) - right, right)
        context = centre + np.concatenate([-1 - below, 1 + above])
        order = rng.permutation(len(centre))
        return [{"centre": ids[centre[order]], "context": ids[context[order]]}]
    count = left + right
    centres = rng.permutation(pos[count > 0])
    widths = np.arange(2, 2 * window + 1, 2)
    group = np.searchsorted(widths, count[centres]).astype(np.int8)  # the narrowest width that holds them
    order = np.argsort(group, kind="stable")
    centres, bounds = centres[order], np.searchsorted(group[order], np.arange(len(widths) + 1))
    padded = np.concatenate([ids, np.full(2 * window, -1, ids.dtype)])
    groups = []
    for start, stop, width in zip(bounds[:-1], bounds[1:], widths):
        p_N = centres[start:stop]
        left_N1, j_1xW = left[p_N][:, None], np.arange(width)[None, :]
        # the width + 1 words from the window's first, centre included, then the centre left out
        span_NxW1 = np.lib.stride_tricks.sliding_window_view(padded, width + 1)[p_N - left[p_N]]
        context = np.where(j_1xW < left_N1, span_NxW1[:, :-1], span_NxW1[:, 1:])
        groups.append({"centre": ids[p_N], "context": np.where(j_1xW < count[p_N][:, None], context, -1)})
    return groups


# every index is a vocabulary id by construction; skipping XLA's bounds handling makes CPU scatters ~1.5x faster
IN_BOUNDS = "promise_in_bounds"
DEVICES = "devices"  # the mesh axis the examples of a call are split along


def noise_table(p_V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of the distribution `p_V` (Vose's construction): word i is drawn as bucket i, uniform
    over the V buckets, kept with probability `keep_V[i]`, else replaced by `alias_V[i]`. A draw is two random
    numbers and two lookups; a binary search over the cumulative distribution took a tenth of a step."""
    scaled = np.asarray(p_V, np.float64) * len(p_V)
    keep_V, alias_V = np.ones(len(p_V)), np.arange(len(p_V))
    small, large = [i for i, x in enumerate(scaled) if x < 1.0], [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        keep_V[s], alias_V[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return keep_V.astype(np.float32), alias_V.astype(np.int32)  # leftovers (rounding) keep themselves


def _negatives(key, table: tuple[jax.Array, jax.Array], shape) -> jax.Array:
    keep_V, alias_V = map(jnp.asarray, table)
    bucket_key, keep_key = jax.random.split(key)
    bucket = jax.random.randint(bucket_key, shape, 0, keep_V.shape[0])
    kept = jax.random.uniform(keep_key, shape) < keep_V.at[bucket].get(mode=IN_BOUNDS)
    return jnp.where(kept, bucket, alias_V.at[bucket].get(mode=IN_BOUNDS))


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


def skipgram_step(params, batch, lr, key, noise, negative: int):
    syn0, syn1 = params
    centre_B, context_B, weight_B = batch["centre"], batch["context"], batch["weight"]
    negatives_BxK = _negatives(key, noise, (centre_B.shape[0], negative))
    h_BxD = syn0.at[centre_B].get(mode=IN_BOUNDS)
    targets, dh_BxD, du_BxK1xD, loss = _sgns_rows(h_BxD, context_B, negatives_BxK, syn1)
    w_Bx1 = weight_B[:, None]
    syn1 = syn1.at[targets.reshape(-1)].add((-lr * du_BxK1xD * w_Bx1[..., None]).reshape(-1, syn1.shape[1]), mode=IN_BOUNDS)
    syn0 = syn0.at[centre_B].add(-lr * dh_BxD * w_Bx1, mode=IN_BOUNDS)
    return (syn0, syn1), loss


def skipgram_window_step(params, batch, lr, key, noise, negative: int):
    """Skip-gram over whole windows: every context word of a centre predicts it against the same `negative`
    noise words (negative sharing, Gupta & Khare 2017, BlazingText). Each pair's loss and gradients are
    word2vec's; a window touches C + 1 + K rows instead of C (2 + K)."""
    syn0, syn1 = params
    centre_B, context_BxC, weight_B = batch["centre"], batch["context"], batch["weight"]
    present_BxC = (context_BxC >= 0).astype(syn0.dtype) * weight_B[:, None]
    ctx_BxC = jnp.maximum(context_BxC, 0)
    h_BxCxD = syn0.at[ctx_BxC].get(mode=IN_BOUNDS)
    negatives_BxK = _negatives(key, noise, (centre_B.shape[0], negative))
    targets_BxK1 = jnp.concatenate([centre_B[:, None], negatives_BxK], axis=1)
    u_BxK1xD = syn1.at[targets_BxK1].get(mode=IN_BOUNDS)
    # XLA folds a transpose into the dot that reads it; the dot then contracts a dimension that is not its
    # operand's last or second-to-last and misses XLA CPU's fast kernels (du took 0.84 of a 2.9 ms step). Both
    # transposes are made real arrays, which XLA cannot fold: 1.8 -> 1.2 ms a step at 10 contexts.
    u_BxDxK1 = jax.lax.optimization_barrier(jnp.swapaxes(u_BxK1xD, 1, 2))
    scores_BxCxK1 = jnp.einsum("bcd,bdk->bck", h_BxCxD, u_BxDxK1)
    positive_1x1xK1 = (jnp.arange(targets_BxK1.shape[1]) == 0)[None, None, :]
    p_BxCxK1 = jax.nn.sigmoid(scores_BxCxK1)
    g_BxCxK1 = (p_BxCxK1 - positive_1x1xK1) * present_BxC[..., None]
    loss = _nll(p_BxCxK1, positive_1x1xK1, present_BxC[..., None])
    dh_BxCxD = jnp.einsum("bck,bkd->bcd", g_BxCxK1, u_BxK1xD)
    g_BxK1xC = jax.lax.optimization_barrier(jnp.swapaxes(g_BxCxK1, 1, 2))
    du_BxK1xD = jnp.einsum("bkc,bcd->bkd", g_BxK1xC, h_BxCxD)
    dim = syn0.shape[1]
    syn1 = syn1.at[targets_BxK1.reshape(-1)].add(-lr * du_BxK1xD.reshape(-1, dim), mode=IN_BOUNDS)
    syn0 = syn0.at[ctx_BxC.reshape(-1)].add(-lr * dh_BxCxD.reshape(-1, dim), mode=IN_BOUNDS)
    return (syn0, syn1), loss


def cbow_step(params, batch, lr, key, noise, negative: int):
    """The mean of the context vectors predicts the centre; each context word gets the mean's gradient / n."""
    syn0, syn1 = params
    centre_B, context_BxC, weight_B = batch["centre"], batch["context"], batch["weight"]
    present_BxC = (context_BxC >= 0).astype(syn0.dtype)
    count_B1 = jnp.maximum(present_BxC.sum(1, keepdims=True), 1.0)
    ctx = jnp.maximum(context_BxC, 0)
    h_BxD = jnp.einsum("bcd,bc->bd", syn0.at[ctx].get(mode=IN_BOUNDS), present_BxC) / count_B1
    negatives_BxK = _negatives(key, noise, (centre_B.shape[0], negative))
    targets, dh_BxD, du_BxK1xD, loss = _sgns_rows(h_BxD, centre_B, negatives_BxK, syn1)
    w_Bx1 = weight_B[:, None]
    syn1 = syn1.at[targets.reshape(-1)].add((-lr * du_BxK1xD * w_Bx1[..., None]).reshape(-1, syn1.shape[1]), mode=IN_BOUNDS)
    per_context_BxCxD = (-lr * dh_BxD * w_Bx1 / count_B1)[:, None, :] * present_BxC[..., None]
    syn0 = syn0.at[ctx.reshape(-1)].add(per_context_BxCxD.reshape(-1, syn0.shape[1]), mode=IN_BOUNDS)
    return (syn0, syn1), loss


def make_train_chunk(mesh: Mesh, model: str, negative: int, shared_negatives: bool = False):
    """`(params, groups, lrs, key, noise) -> (params, loss)`: one call's mini-batches on every device of `mesh`.

    `groups` is a tuple of batch dicts, one per window width (a single one for pairs), each S_g x (devices * B)
    (x C_g), with `lrs` S_g per group; they run one after the other. Each device runs its own B columns with its
    own negatives, from the same starting tables, and the call ends by adding every device's updates to those
    tables (as word2vec's and gensim's threads share them lock-free, but merged once per call). One device:
    plain SGD. A mini-batch that is all padding (the end of an epoch) is skipped, not computed.
    """
    step = cbow_step if model == "cbow" else skipgram_window_step if shared_negatives else skipgram_step

    def local(params, groups, lrs, key, noise):
        key = jax.random.fold_in(key, jax.lax.axis_index(DEVICES))
        new = jax.tree.map(lambda x: jax.lax.pcast(x, DEVICES, to="varying"), params)  # each device's copy
        loss = 0.0
        for g, (batches, group_lrs) in enumerate(zip(groups, lrs)):
            group_key = jax.random.fold_in(key, g)

            def body(params, xs):
                batch, lr, i = xs
                def run(p):
                    return step(p, batch, lr, jax.random.fold_in(group_key, i), noise, negative)

                def skip(p):
                    return p, jax.lax.pcast(jnp.zeros((), p[0].dtype), DEVICES, to="varying")

                return jax.lax.cond(batch["weight"].any(), run, skip, params)

            new, losses = jax.lax.scan(body, new, (batches, group_lrs, jnp.arange(group_lrs.shape[0])))
            loss = loss + losses.sum()
        loss = jax.lax.psum(loss, DEVICES)
        if mesh.size == 1:  # a sum over one device is its table; the merge below would cost passes over both
            return jax.tree.map(lambda n: jax.lax.psum(n, DEVICES), new), loss
        return jax.tree.map(lambda n, o: o + jax.lax.psum(n - o, DEVICES), new, params), loss

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(None, DEVICES), P(), P(), P()),
                            out_specs=(P(), P()))
    return jax.jit(sharded, donate_argnums=(0,))


def init_params(vocab_size: int, dim: int, seed: int, mesh: Mesh | None = None) -> tuple[jax.Array, jax.Array]:
    """word2vec's initialisation: input vectors uniform in [-0.5/dim, 0.5/dim), output vectors zero; made in
    numpy and placed on every device of `mesh`, where the train call keeps them (so it compiles once)."""
    syn0 = (np.random.default_rng(seed).random((vocab_size, dim), np.float32) - 0.5) / dim
    params = (syn0, np.zeros((vocab_size, dim), np.float32))
    mesh = mesh or local_mesh(1)
    return jax.device_put(params, jax.sharding.NamedSharding(mesh, P()))


def steps_per_group(sizes: Sequence[int], steps_per_call: int) -> tuple[int, ...]:
    """Each group's share of a call's mini-batches, in proportion to its examples (at least one), so that the
    groups run out together at the end of an epoch."""
    total = max(sum(sizes), 1)
    return tuple(max(1, int(np.ceil(steps_per_call * n / total))) for n in sizes)


def _slice(group: dict[str, np.ndarray], start: int, steps: int, per_step: int) -> tuple[dict, np.ndarray]:
    """`steps * per_step` examples from `start`, padded with weight-0 rows, as steps x per_step, and the number
    of real examples in each mini-batch."""
    part = {k: v[start:start + steps * per_step] for k, v in group.items()}
    m = len(part["centre"])
    pad = steps * per_step - m
    part = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in part.items()}
    part["weight"] = np.concatenate([np.ones(m, np.float32), np.zeros(pad, np.float32)])
    real = np.clip(m - per_step * np.arange(steps), 0, per_step)
    return {k: v.reshape(steps, per_step, *v.shape[1:]) for k, v in part.items()}, real


def train_word2vec(sentences: Sequence[Sequence[str]], cfg: Word2VecConfig, log=print) -> tuple[Vectors, dict]:
    """Trains on `sentences` (lists of words); returns the input vectors and throughput figures."""
    words, counts = build_vocab(sentences, cfg.min_count)
    if not words:
        raise ValueError(f"no word occurs {cfg.min_count} times: lower min_count.")
    ids, sids = encode(sentences, words)
    keep = keep_probabilities(counts, cfg.sample)
    mesh = local_mesh(cfg.devices)
    noise = jax.device_put(noise_table(noise_distribution(counts, cfg.ns_exponent)),
                           jax.sharding.NamedSharding(mesh, P()))
    params = init_params(len(words), cfg.dim, cfg.seed, mesh)
    per_step = cfg.batch_size * mesh.size
    train_chunk = make_train_chunk(mesh, cfg.model, cfg.negative, cfg.shared_negatives)
    rng = np.random.default_rng(cfg.seed)
    key = jax.random.PRNGKey(cfg.seed + 1)
    # the learning rate decays with the fraction of the corpus's words processed, as in gensim
    total_words, done_words, examples_seen, steps = cfg.epochs * len(ids), 0, 0, None
    start = time.perf_counter()
    def examples():
        return epoch_examples(ids, sids, keep, cfg.window, cfg.model, rng, by_window=cfg.shared_negatives)

    groups = examples()
    for epoch in range(cfg.epochs):
        n = sum(len(g["centre"]) for g in groups)
        # fixed after the first epoch: a call's shapes, hence its compilation, stay the same
        steps = steps or steps_per_group([len(g["centre"]) for g in groups], cfg.steps_per_call)
        calls = max(-(-len(g["centre"]) // (s * per_step)) for g, s in zip(groups, steps))
        seen = 0
        for c in range(calls):
            parts, real = zip(*(_slice(g, c * s * per_step, s, per_step) for g, s in zip(groups, steps)))
            before = seen + np.cumsum(np.concatenate(real)) - np.concatenate(real)  # examples before each step
            ends = done_words + len(ids) * np.minimum(before / max(n, 1), 1.0)
            lrs = np.maximum(cfg.alpha - (cfg.alpha - cfg.min_alpha) * ends / total_words, cfg.min_alpha)
            lrs = tuple(np.split(lrs.astype(np.float32), np.cumsum(steps)[:-1]))
            params, _ = train_chunk(params, tuple(parts), lrs, jax.random.fold_in(key, epoch * 1_000_003 + c), noise)
            seen += int(sum(r.sum() for r in real))
        examples_seen += seen
        done_words += len(ids)
        if epoch + 1 < cfg.epochs:  # the next epoch's examples are made while the devices run this one's calls
            groups = examples()
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
