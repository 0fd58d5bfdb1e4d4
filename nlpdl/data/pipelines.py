"""grain input pipelines: padded classification batches and contiguous language-model batches (truncated BPTT).

Every training pipeline is an infinite `grain.IterDataset`; its iterator's `get_state()` is saved in the
checkpoint next to the train state, so a resumed run sees exactly the batches it would have seen.
Evaluation pipelines are finite and keep every example once: the last batch is padded with rows of weight 0.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import grain
import numpy as np


# Batches are gathered from arrays in memory: two threads a few batches ahead keep up with any step here. grain's
# default (16 threads filling a 500-batch buffer) takes the cores and the GIL from the steps it feeds: it made a
# 60-step XOR run 2x slower.
READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=8)


def pad_token_ids(sequences: Sequence[np.ndarray], max_len: int, pad_id: int = 0) -> dict[str, np.ndarray]:
    """Truncates/pads each id sequence to `max_len`: tokens [N, L] and lengths [N] (at least 1)."""
    tokens_NxL = np.full((len(sequences), max_len), pad_id, dtype=np.int32)
    lengths_N = np.zeros(len(sequences), dtype=np.int32)
    for i, ids in enumerate(sequences):
        ids = ids[:max_len]
        tokens_NxL[i, : len(ids)] = ids
        lengths_N[i] = max(len(ids), 1)  # an empty sentence is one pad token, so means stay defined
    return {"tokens": tokens_NxL, "lengths": lengths_N}


def with_weights(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(next(iter(arrays.values())))
    return {**arrays, "weights": np.ones(n, dtype=np.float32)}


def local_rows(batch_size: int, process_index: int, process_count: int) -> slice:
    """This process's rows of every global batch: the global batch is the same for any process count."""
    local = batch_size // process_count
    return slice(process_index * local, (process_index + 1) * local)


def _gather(arrays: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[indices] for k, v in arrays.items()}


def _read_rows(arrays: dict[str, np.ndarray], global_idx: np.ndarray, rows: slice,
               pad_multiple: int) -> dict[str, np.ndarray]:
    """This process's rows of the global batch `global_idx`. With `pad_multiple`, tokens are cut to the global
    batch's longest sentence rounded up to that multiple: every process computes the same width."""
    batch = _gather(arrays, global_idx[rows])
    if pad_multiple and "tokens" in arrays:
        longest = int(arrays["lengths"][global_idx].max())
        width = min(-(-longest // pad_multiple) * pad_multiple, arrays["tokens"].shape[1])
        batch["tokens"] = batch["tokens"][:, :width]
    return batch


def train_batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1, pad_multiple: int = 0) -> grain.IterDataset:
    """Rows reshuffled every epoch, endlessly, in global batches of `batch_size`, of which this process reads
    only its own rows (the last partial batch of the endless stream is never reached). `pad_multiple`: see
    `_read_rows`."""
    arrays, rows = with_weights(arrays), local_rows(batch_size, process_index, process_count)
    n = len(arrays["weights"])
    ds = grain.MapDataset.range(n).seed(seed).shuffle().repeat(None).batch(batch_size, drop_remainder=True)
    return ds.map(lambda idx: _read_rows(arrays, np.asarray(idx), rows, pad_multiple)).to_iter_dataset(READ_OPTIONS)


def fixed_batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1, pad_multiple: int = 0) -> grain.IterDataset:
    """Kim's (2014) code: the rows, topped up with randomly chosen ones to whole batches, permuted once and cut
    into batches, which every epoch visits in a new order, endlessly; this process reads its rows of each."""
    arrays, rows = with_weights(arrays), local_rows(batch_size, process_index, process_count)
    n = len(arrays["weights"])
    rng = np.random.default_rng(seed)
    top_up = -n % batch_size
    order = rng.permutation(np.concatenate([np.arange(n), rng.choice(n, top_up, replace=False)]))
    batches_NBxB = order.reshape(-1, batch_size)
    ds = grain.MapDataset.source(batches_NBxB).seed(seed).shuffle().repeat(None)
    return ds.map(lambda idx: _read_rows(arrays, np.asarray(idx), rows, pad_multiple)).to_iter_dataset(READ_OPTIONS)


def eval_batches(arrays: dict[str, np.ndarray], batch_size: int, process_index: int = 0,
                 process_count: int = 1, pad_multiple: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Every row once, in order, in full global batches (padding rows copy row 0 with weight 0); this
    process gets its own rows of each."""
    arrays, rows = with_weights(arrays), local_rows(batch_size, process_index, process_count)
    n = len(arrays["weights"])

    def read(idx: np.ndarray) -> dict[str, np.ndarray]:
        idx = np.asarray(idx)
        batch = _read_rows(arrays, np.concatenate([idx, np.zeros(batch_size - len(idx), dtype=idx.dtype)]), rows,
                           pad_multiple)
        batch["weights"] = batch["weights"] * (np.arange(batch_size)[rows] < len(idx))
        return batch

    return iter(grain.MapDataset.range(n).batch(batch_size).map(read))


class LMBatches:
    """Batch i of an epoch of truncated BPTT: the id stream cut into `batch_size` contiguous rows
    (Zaremba et al. 2014), windows of `bptt` inputs with their next-token targets; a process keeps its rows.

    With `pad_last`, a last window shorter than `bptt` is kept, padded with weight-0 positions, so that every
    token of the rows is scored once (evaluation); otherwise it is dropped (training).
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, process_index: int = 0, process_count: int = 1,
                 pad_last: bool = False):
        usable = (len(ids) - 1) // batch_size * batch_size
        if usable < batch_size * (1 if pad_last else bptt):
            raise ValueError(f"{len(ids)} tokens are too few for batch_size={batch_size} x bptt={bptt}.")
        rows = local_rows(batch_size, process_index, process_count)
        self.inputs_BxN = ids[:usable].reshape(batch_size, -1)[rows].astype(np.int32)
        self.targets_BxN = ids[1: usable + 1].reshape(batch_size, -1)[rows].astype(np.int32)
        self.bptt = bptt
        length = self.inputs_BxN.shape[1]
        self.num_windows = -(-length // bptt) if pad_last else length // bptt

    def __len__(self) -> int:
        return self.num_windows

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        window = slice(i * self.bptt, (i + 1) * self.bptt)
        inputs, targets = self.inputs_BxN[:, window], self.targets_BxN[:, window]
        weights = np.ones(inputs.shape, np.float32)
        missing = self.bptt - inputs.shape[1]
        if missing:
            pad = ((0, 0), (0, missing))
            inputs, targets, weights = np.pad(inputs, pad), np.pad(targets, pad), np.pad(weights, pad)
        # The carried state starts afresh with each epoch.
        resets = np.full(inputs.shape[0], i == 0)
        return {"inputs": inputs, "targets": targets, "weights": weights, "resets": resets}


def lm_train_batches(ids: np.ndarray, batch_size: int, bptt: int, process_index: int = 0,
                     process_count: int = 1) -> grain.IterDataset:
    """The epochs of BPTT windows, in order, endlessly."""
    source = LMBatches(ids, batch_size, bptt, process_index, process_count)
    return grain.MapDataset.source(source).repeat(None).to_iter_dataset(READ_OPTIONS)


def lm_eval_batches(ids: np.ndarray, batch_size: int, bptt: int, process_index: int = 0,
                    process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
    return iter(grain.MapDataset.source(LMBatches(ids, batch_size, bptt, process_index, process_count, pad_last=True)))
