"""grain input pipelines: padded classification batches and contiguous language-model batches (truncated BPTT).

Every training pipeline is an infinite `grain.IterDataset`; its iterator's `get_state()` is saved in the
checkpoint next to the train state, so a resumed run sees exactly the batches it would have seen.
Evaluation pipelines are finite and keep every example once: the last batch is padded with rows of weight 0.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import grain
import numpy as np


class ArrayRows:
    """Random access to the rows of a dict of equally long arrays."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        lengths = {len(v) for v in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"arrays have different lengths: { {k: len(v) for k, v in arrays.items()} }")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in self.arrays.items()}


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


def train_batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int) -> grain.IterDataset:
    """Rows reshuffled every epoch, endlessly, in batches of `batch_size` (the last partial batch of the
    endless stream is never reached, so every batch is full)."""
    ds = grain.MapDataset.source(ArrayRows(with_weights(arrays))).seed(seed).shuffle().repeat(None)
    return ds.batch(batch_size, drop_remainder=True).to_iter_dataset()


def _pad_batch(batch: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    missing = batch_size - len(batch["weights"])
    if missing == 0:
        return batch
    # Padding rows copy row 0 (valid token ids, length >= 1) and carry weight 0.
    return {k: np.concatenate([v, np.repeat(v[:1], missing, axis=0) * (0 if k == "weights" else 1)])
            for k, v in batch.items()}


def eval_batches(arrays: dict[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Every row once, in order, in full batches; padding rows have weight 0."""
    ds = grain.MapDataset.source(ArrayRows(with_weights(arrays))).batch(batch_size)
    return iter(ds.map(lambda b: _pad_batch(b, batch_size)))


class LMBatches:
    """Batch i of an epoch of truncated BPTT: the id stream cut into `batch_size` contiguous rows
    (Zaremba et al. 2014), windows of `bptt` inputs with their next-token targets."""

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int):
        usable = (len(ids) - 1) // batch_size * batch_size
        if usable < batch_size * bptt:
            raise ValueError(f"{len(ids)} tokens are too few for batch_size={batch_size} x bptt={bptt}.")
        self.inputs_BxN = ids[:usable].reshape(batch_size, -1).astype(np.int32)
        self.targets_BxN = ids[1: usable + 1].reshape(batch_size, -1).astype(np.int32)
        self.bptt = bptt

    def __len__(self) -> int:
        return self.inputs_BxN.shape[1] // self.bptt

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        window = slice(i * self.bptt, (i + 1) * self.bptt)
        return {"inputs": self.inputs_BxN[:, window], "targets": self.targets_BxN[:, window],
                "resets": np.asarray(i == 0)}  # carried hidden state starts afresh with each epoch


def lm_train_batches(ids: np.ndarray, batch_size: int, bptt: int) -> grain.IterDataset:
    """The epochs of BPTT windows, in order, endlessly."""
    return grain.MapDataset.source(LMBatches(ids, batch_size, bptt)).repeat(None).to_iter_dataset()


def lm_eval_batches(ids: np.ndarray, batch_size: int, bptt: int) -> Iterator[dict[str, np.ndarray]]:
    return iter(grain.MapDataset.source(LMBatches(ids, batch_size, bptt)))
