"""Language modelling: a token stream in truncated-BPTT windows, next-token cross-entropy, perplexity.

Evaluation follows the standard protocol: the split is cut into `eval_batch_size` contiguous rows, every
token of them is scored once, and a recurrent model carries its state from window to window.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nlpdl.config import ExperimentConfig
from nlpdl.data import pipelines
from nlpdl.data.sources import DataError, read_ptb, read_tinyshakespeare, read_wikitext2
from nlpdl.data.tokenizers import WordVocab
from nlpdl.models import DataSpec
from nlpdl.tasks import TaskData

SPLITS = ("train", "valid", "test")
# dataset -> split -> tokens (words with "<eos>" per line, or characters)
DATASETS = {
    "ptb": lambda data_dir, split: read_ptb(data_dir, split),
    "wikitext-2": lambda data_dir, split: read_wikitext2(data_dir, split),
    "tinyshakespeare": lambda data_dir, split: list(read_tinyshakespeare(data_dir, split)),
}


def load_data(cfg: ExperimentConfig, data_dir: Path) -> TaskData:
    d = cfg.data
    if d.dataset not in DATASETS:
        raise DataError(f"language_modeling has no dataset {d.dataset!r}: use one of {', '.join(DATASETS)}.")
    tokens = {split: DATASETS[d.dataset](data_dir, split) for split in SPLITS}
    vocab = WordVocab.build([tokens["train"]], min_count=d.min_count, max_size=d.max_vocab)
    ids = {split: vocab.encode(toks) for split, toks in tokens.items()}
    process = dict(process_index=jax.process_index(), process_count=jax.process_count())
    train = pipelines.LMBatches(ids["train"], d.batch_size, d.bptt, **process)
    evals = {split: (lambda s=split: pipelines.lm_eval_batches(ids[s], d.eval_batch_size, d.bptt, **process))
             for split in ("valid", "test")}
    return TaskData(train=pipelines.lm_train_batches(ids["train"], d.batch_size, d.bptt, **process), evals=evals,
                    steps_per_epoch=len(train), batch_size=d.batch_size,
                    spec=DataSpec(num_outputs=len(vocab), vocab_size=len(vocab), pad_id=vocab.pad_id),
                    artifacts={"vocab.json": vocab})


def make_loss_fn(cfg: ExperimentConfig):
    def loss_fn(model, batch, carry, *, train: bool, rngs=None):
        """Next-token cross-entropy of every weighted position; the carry restarts where `resets` is set."""
        resets_B = batch["resets"]
        carry = jax.tree.map(lambda c: jnp.where(resets_B.reshape(-1, *[1] * (c.ndim - 1)), jnp.zeros_like(c), c),
                             carry)
        logits_BxTxV, carry = model(batch["inputs"], carry, train=train, rngs=rngs)
        logp_BxTxV = jax.nn.log_softmax(logits_BxTxV.astype(jnp.float32))
        nll_BxT = -jnp.take_along_axis(logp_BxTxV, batch["targets"][..., None], axis=-1)[..., 0]
        weights_BxT = batch["weights"]
        count = jnp.sum(weights_BxT)
        sums = {"loss_sum": jnp.sum(nll_BxT * weights_BxT), "count": count, "tokens": count,
                "correct": jnp.sum((jnp.argmax(logits_BxTxV, -1) == batch["targets"]) * weights_BxT)}
        return sums, carry

    return loss_fn


def summarize(sums: dict[str, float]) -> dict[str, float]:
    loss = sums["loss_sum"] / max(sums["count"], 1.0)
    return {"loss": loss, "perplexity": float(np.exp(loss)), "accuracy": sums["correct"] / max(sums["count"], 1.0)}
