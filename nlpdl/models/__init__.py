"""Model families. Each registers its config class (by `kind`) and a builder here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flax import nnx

from nlpdl.config import ModelConfig, register_model_config


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data to size itself."""

    num_outputs: int
    vocab_size: int = 0
    input_dim: int = 0
    pad_id: int = 0
    seq_len: int = 0  # tokens per window a sequence model reads (language models: data.bptt)
    vocab: tuple[str, ...] = ()  # the words of the ids, for models initialised from pretrained word vectors


Builder = Callable[[ModelConfig, DataSpec, nnx.Rngs], nnx.Module]
_BUILDERS: dict[str, Builder] = {}


def register_model(config_cls: type[ModelConfig]):
    """Decorator for a builder `(cfg, spec, rngs) -> nnx.Module` of the models configured by `config_cls`."""
    register_model_config(config_cls)

    def wrap(builder: Builder) -> Builder:
        _BUILDERS[config_cls.__dataclass_fields__["kind"].default] = builder
        return builder

    return wrap


def build_model(cfg: ModelConfig, spec: DataSpec, rngs: nnx.Rngs) -> nnx.Module:
    return _BUILDERS[cfg.kind](cfg, spec, rngs)


from nlpdl.models import (  # noqa: E402,F401  (registers)
    cnn, ffn, nplm, rnn_classifier, rnn_lm, transformer_classifier, transformer_lm)
