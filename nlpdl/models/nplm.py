"""Bengio et al. (2003) feed-forward language model: the n-1 previous words embedded and concatenated, a tanh
hidden layer, a softmax, optional direct connections from the embeddings to the output. The carry holds the
last n-1 tokens of the previous window, so the first positions of a window see their true context."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.nn.dropout import Dropout
from nlpdl.nn.matmul import Dense


@dataclass(frozen=True)
class NPLMConfig(ModelConfig):
    kind: str = "nplm"
    context: int = 4  # n - 1 previous words
    embed_dim: int = 100
    hidden: int = 500
    direct: bool = False  # direct connections embeddings -> output
    dropout: float = 0.0


class FeedForwardLM(nnx.Module):
    def __init__(self, cfg: NPLMConfig, spec: DataSpec, rngs: nnx.Rngs):
        self.context = cfg.context
        self.embed = nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs)
        width = cfg.context * cfg.embed_dim
        self.hidden = Dense(width, cfg.hidden, rngs=rngs)
        self.out = Dense(cfg.hidden, spec.vocab_size, rngs=rngs)
        self.direct = Dense(width, spec.vocab_size, use_bias=False, rngs=rngs) if cfg.direct else None
        self.dropout = Dropout(cfg.dropout)

    def initial_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.context), jnp.int32)  # the <pad> id stands for "before the text"

    def __call__(self, inputs_BxT: jax.Array, carry_BxC: jax.Array, *, train: bool = False,
                 rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array]:
        B, T = inputs_BxT.shape
        full_BxCT = jnp.concatenate([carry_BxC, inputs_BxT], axis=1)
        # position t sees tokens t-C+1..t: the C windows of the stream that end at t
        contexts_BxTxC = jnp.stack([full_BxCT[:, i + 1: i + 1 + T] for i in range(self.context)], axis=-1)
        e_BxTxCD = self.embed(contexts_BxTxC).reshape(B, T, -1)
        e_BxTxCD = self.dropout(e_BxTxCD, deterministic=not train, rngs=rngs)
        h_BxTxH = self.dropout(jnp.tanh(self.hidden(e_BxTxCD)), deterministic=not train, rngs=rngs)
        logits_BxTxV = self.out(h_BxTxH)
        if self.direct is not None:
            logits_BxTxV = logits_BxTxV + self.direct(e_BxTxCD)
        return logits_BxTxV, full_BxCT[:, -self.context:]


@register_model(NPLMConfig)
def build(cfg: NPLMConfig, spec: DataSpec, rngs: nnx.Rngs) -> FeedForwardLM:
    return FeedForwardLM(cfg, spec, rngs)
