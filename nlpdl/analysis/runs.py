"""A trained run opened for analysis: its model with the best parameters, or with the parameters it started from
(the untrained control of the same shape), and its tokenizer for new text, exactly as in training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
from flax import nnx

from nlpdl import config as C
from nlpdl.data.pipelines import pad_token_ids
from nlpdl.data.tokenizers import WordVocab
from nlpdl.tasks.classification import sentence_tokenizer
from nlpdl.tasks.language_modeling import text_codec
from nlpdl.train.loop import Trainer, restore_run
from nlpdl.train.state import split_model

LM_MAX_LEN = 64  # tokens of a sentence a language model reads here (its windows can be shorter or longer)


@dataclass(frozen=True)
class OpenedRun:
    path: Path
    cfg: C.ExperimentConfig
    trainer: Trainer
    graphdef: nnx.GraphDef
    params: Any  # the best-on-valid parameters
    encode: Callable[[str], np.ndarray]  # text -> token ids, as training tokenised it
    token_text: Callable[[int], str]
    max_len: int  # sentences are cut to this many tokens

    def model(self, params: Any = None) -> nnx.Module:
        return nnx.merge(self.graphdef, self.params if params is None else params)

    def initial_params(self, seed: int | None = None) -> Any:
        """The parameters training started from (`train.seed`), or those of another seed: an untrained model of
        the same shape."""
        seed = self.cfg.train.seed if seed is None else seed
        init_key, _ = jax.random.split(jax.random.PRNGKey(seed))  # as train/state.py splits it
        _, params = nnx.split(self.trainer.make_model(nnx.Rngs(params=init_key)), nnx.Param)
        return nnx.to_pure_dict(params)

    def batch(self, sentences: list[str]) -> dict[str, np.ndarray]:
        """Sentences as tokens N x max_len (padded) and lengths N."""
        return pad_token_ids([self.encode(s) for s in sentences], self.max_len, self.trainer.data.spec.pad_id)


def open_run(workdir: Path, data_dir: Path) -> OpenedRun:
    cfg, t, params = restore_run(workdir, data_dir)
    if cfg.task.name == "language_modeling":
        encode, decode = text_codec(cfg, workdir)
        context = getattr(cfg.model, "context", LM_MAX_LEN)  # a Transformer's learned positions end there
        max_len = min(LM_MAX_LEN, context) if cfg.model.kind == "transformer_lm" else LM_MAX_LEN
        token_text = lambda i: decode([i])  # noqa: E731
    else:
        if not (workdir / "vocab.json").is_file():
            raise C.ConfigError(f"{workdir} did not train on text (it has no vocab.json): this needs a run of a "
                                "sentence classifier or a language model.")
        vocab = WordVocab.load(workdir / "vocab.json")
        tokenize = sentence_tokenizer(cfg.data)
        encode = lambda text: vocab.encode(tokenize(text))  # noqa: E731
        token_text = lambda i: vocab.tokens[i]  # noqa: E731
        max_len = cfg.data.max_len
    return OpenedRun(path=workdir, cfg=cfg, trainer=t, graphdef=split_model(t.make_model), params=params,
                     encode=encode, token_text=token_text, max_len=max_len)
