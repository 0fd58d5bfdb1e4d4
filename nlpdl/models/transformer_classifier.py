"""Transformer encoder classifier: token + position embeddings, pre-LN blocks of multi-head self-attention
(padding keys masked) and feed-forward layers with residuals, a final layer norm, then a [CLS] vector or the
mean over the sentence's tokens into a linear layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ConfigError, ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.models.cnn import token_mask
from nlpdl.models.ffn import masked_mean
from nlpdl.models.transformer_lm import Block, sinusoidal_positions
from nlpdl.nn.dropout import Dropout


@dataclass(frozen=True)
class TransformerClassifierConfig(ModelConfig):
    kind: str = "transformer_classifier"
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    max_len: int = 128  # learned positions (the [CLS] vector takes one more)
    positions: Literal["learned", "sinusoidal"] = "learned"
    pooling: Literal["cls", "mean"] = "cls"
    dropout: float = 0.1


class TransformerClassifier(nnx.Module):
    def __init__(self, cfg: TransformerClassifierConfig, spec: DataSpec, rngs: nnx.Rngs):
        if cfg.positions == "learned" and spec.seq_len > cfg.max_len:
            raise ConfigError(f"sentences are cut to data.max_len={spec.seq_len} tokens but model.max_len is "
                              f"{cfg.max_len}: set data.max_len <= model.max_len.")
        init = nnx.initializers.normal(0.02)
        self.embed = nnx.Embed(spec.vocab_size, cfg.d_model, embedding_init=init, rngs=rngs)
        self.pos_embed = (nnx.Embed(cfg.max_len + 1, cfg.d_model, embedding_init=init, rngs=rngs)
                          if cfg.positions == "learned" else None)
        self.cls = nnx.Param(init(rngs.params(), (1, 1, cfg.d_model))) if cfg.pooling == "cls" else None
        self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.num_layers)])
        self.ln_out = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.dropout = Dropout(cfg.dropout)
        self.out = nnx.Linear(cfg.d_model, spec.num_outputs, rngs=rngs)
        self.d_model = cfg.d_model

    def encode(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None):
        """Each block's outputs B x T x D (T counts [CLS] first when there is one), their attention weights
        B x H x T x T, and the token mask B x T."""
        tokens_BxL = batch["tokens"]
        B, L = tokens_BxL.shape
        mask_BxT = token_mask(tokens_BxL, batch["lengths"])
        x = self.embed(tokens_BxL)
        if self.cls is not None:
            x = jnp.concatenate([jnp.broadcast_to(self.cls[...], (B, 1, self.d_model)), x], axis=1)
            mask_BxT = jnp.concatenate([jnp.ones((B, 1), bool), mask_BxT], axis=1)
        positions_T = jnp.arange(x.shape[1])
        x = x + (self.pos_embed(positions_T) if self.pos_embed is not None
                 else sinusoidal_positions(positions_T, self.d_model))[None]
        x = self.dropout(x, deterministic=not train, rngs=rngs)
        keys_Bx1x1xT = mask_BxT[:, None, None, :]
        outputs, attention = [x], []
        for block in self.blocks:
            x, weights, _ = block(x, keys_Bx1x1xT, train=train, rngs=rngs)
            outputs.append(x), attention.append(weights)
        outputs[-1] = self.ln_out(x)
        return outputs, attention, mask_BxT

    def __call__(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        outputs, _, mask_BxT = self.encode(batch, train=train, rngs=rngs)
        top_BxTxD = outputs[-1]
        pooled = top_BxTxD[:, 0] if self.cls is not None else masked_mean(top_BxTxD, batch["lengths"])
        return self.out(self.dropout(pooled, deterministic=not train, rngs=rngs))


@register_model(TransformerClassifierConfig)
def build(cfg: TransformerClassifierConfig, spec: DataSpec, rngs: nnx.Rngs) -> TransformerClassifier:
    return TransformerClassifier(cfg, spec, rngs)
