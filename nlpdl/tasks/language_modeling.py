"""Language modelling: a token stream in truncated-BPTT windows, next-token cross-entropy, perplexity.

Evaluation follows the standard protocol: the split is cut into `eval_batch_size` contiguous rows, every
token of them is scored once, and a recurrent model carries its state from window to window.

A token is a word, a character or a sentencepiece piece (`data.tokenizer`); sentencepiece is trained on the
train split only and its model is kept in the run dir, so sampling tokenises exactly as training did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nlpdl.config import ConfigError, ExperimentConfig
from nlpdl.data import pipelines
from nlpdl.data.sources import (DataError, read_botchan_split, read_ptb, read_tinyshakespeare, read_wikitext2,
                                resolve_cache_dir)
from nlpdl.data.tokenizers import SentencePieceTokenizer, WordVocab, train_sentencepiece
from nlpdl.files import atomic_write_bytes
from nlpdl.models import DataSpec
from nlpdl.nn.losses import cross_entropy, label_is_top
from nlpdl.tasks import TaskData

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
# dataset -> (split -> words with "<eos>" ending each line, or split -> raw text)
WORD_DATASETS = {"ptb": read_ptb, "wikitext-2": read_wikitext2}
TEXT_DATASETS = {"tinyshakespeare": read_tinyshakespeare, "botchan": read_botchan_split}
VOCAB_FILE, SPM_FILE = "vocab.json", "tokenizer.model"


def read_split(dataset: str, tokenizer: str, data_dir: Path, split: str) -> list[str] | str:
    """Words (for the words tokenizer) or text (for chars and sentencepiece) of a split."""
    if dataset in WORD_DATASETS:
        words = WORD_DATASETS[dataset](data_dir, split)
        if tokenizer == "words":
            return words
        return " ".join(words).replace(f" {EOS} ", "\n").removesuffix(f" {EOS}") + "\n"
    if dataset in TEXT_DATASETS:
        text = TEXT_DATASETS[dataset](data_dir, split)
        if tokenizer == "words":
            return [w for line in text.splitlines() for w in (*line.split(), EOS)]
        return text
    raise DataError(f"language_modeling has no dataset {dataset!r}: use one of "
                    f"{', '.join([*WORD_DATASETS, *TEXT_DATASETS])}.")


def _train_spm(cfg: ExperimentConfig, train_text: str) -> SentencePieceTokenizer:
    cache = resolve_cache_dir() / "sentencepiece"
    corpus = cache / f"{cfg.data.dataset}-train.txt"
    if not corpus.is_file() or corpus.read_text(encoding="utf-8") != train_text:
        atomic_write_bytes(corpus, train_text.encode("utf-8"))
    return train_sentencepiece(corpus, cache, vocab_size=cfg.data.spm_vocab_size,
                               model_type=cfg.data.spm_model_type)


def _spm_ids(tokenizer: SentencePieceTokenizer, text: str) -> np.ndarray:
    """Line by line (sentencepiece splits its training input at newlines); newlines become their byte piece."""
    newline = np.asarray([tokenizer.processor.piece_to_id("<0x0A>")], np.int32)
    pieces = [np.concatenate([tokenizer.encode(line), newline]) for line in text.split("\n")]
    return np.concatenate(pieces)[:-1]


def load_data(cfg: ExperimentConfig, data_dir: Path) -> TaskData:
    d = cfg.data
    tokens = {split: read_split(d.dataset, d.tokenizer, data_dir, split) for split in SPLITS}
    if d.tokenizer == "sentencepiece":
        tokenizer = _train_spm(cfg, tokens["train"])
        ids = {split: _spm_ids(tokenizer, text) for split, text in tokens.items()}
        vocab_size, pad_id, artifacts = len(tokenizer), tokenizer.pad_id, {SPM_FILE: tokenizer}
    else:
        if d.tokenizer == "chars":
            tokens = {split: list(text) for split, text in tokens.items()}
        vocab = WordVocab.build([tokens["train"]], min_count=d.min_count, max_size=d.max_vocab)
        ids = {split: vocab.encode(toks) for split, toks in tokens.items()}
        vocab_size, pad_id, artifacts = len(vocab), vocab.pad_id, {VOCAB_FILE: vocab}
    process = dict(process_index=jax.process_index(), process_count=jax.process_count())
    train = pipelines.LMBatches(ids["train"], d.batch_size, d.bptt, **process)
    evals = {split: (lambda s=split: pipelines.lm_eval_batches(ids[s], d.eval_batch_size, d.bptt, **process))
             for split in ("valid", "test")}
    return TaskData(train=pipelines.lm_train_batches(ids["train"], d.batch_size, d.bptt, **process), evals=evals,
                    steps_per_epoch=len(train), batch_size=d.batch_size,
                    spec=DataSpec(num_outputs=vocab_size, vocab_size=vocab_size, pad_id=pad_id, seq_len=d.bptt),
                    artifacts=artifacts)


def text_codec(cfg: ExperimentConfig, workdir: Path) -> tuple[Callable[[str], np.ndarray], Callable[..., str]]:
    """(encode, decode) between text and a run's token ids, read from the tokenizer files the run saved."""
    tokenizer = cfg.data.tokenizer
    if tokenizer == "sentencepiece":
        spm = SentencePieceTokenizer(workdir / SPM_FILE)
        return (lambda text: _spm_ids(spm, text)), spm.decode
    if not (workdir / VOCAB_FILE).is_file():
        raise ConfigError(f"{workdir / VOCAB_FILE} is missing: this is not a finished language-model run dir.")
    vocab = WordVocab.load(workdir / VOCAB_FILE)
    if tokenizer == "chars":
        return (lambda text: vocab.encode(list(text))), (lambda ids: "".join(vocab.decode(ids)))
    return (lambda text: vocab.encode(text.split())), (lambda ids: " ".join(vocab.decode(ids)))


def make_loss_fn(cfg: ExperimentConfig):
    def loss_fn(model, batch, carry, *, train: bool, rngs=None):
        """Next-token cross-entropy of every weighted position; the carry restarts where `resets` is set."""
        resets_B = batch["resets"]
        carry = jax.tree.map(lambda c: jnp.where(resets_B.reshape(-1, *[1] * (c.ndim - 1)), jnp.zeros_like(c), c),
                             carry)
        logits_BxTxV, carry = model(batch["inputs"], carry, train=train, rngs=rngs)
        nll_BxT = cross_entropy(logits_BxTxV.astype(jnp.float32), batch["targets"])
        weights_BxT = batch["weights"]
        count = jnp.sum(weights_BxT)
        sums = {"loss_sum": jnp.sum(nll_BxT * weights_BxT), "count": count, "tokens": count,
                "correct": jnp.sum(label_is_top(logits_BxTxV, batch["targets"]) * weights_BxT)}
        return sums, carry

    return loss_fn


def summarize(sums: dict[str, float]) -> dict[str, float]:
    loss = sums["loss_sum"] / max(sums["count"], 1.0)
    return {"loss": loss, "perplexity": float(np.exp(loss)), "accuracy": sums["correct"] / max(sums["count"], 1.0)}
