"""Recurrent sentence classifiers: Elman RNN, LSTM or GRU cells, stacked, uni- or bidirectional, the sentence
read from its final state, or the mean or max of the top layer's outputs.

Padding is masked everywhere: each direction's final state is taken at the sentence's own length (the backward
direction reads the sentence reversed in place, padding kept at the end), and pooling skips padded positions,
so a padded batch gives each sentence the logits it gets alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.models.cnn import token_mask
from nlpdl.models.ffn import masked_mean
from nlpdl.nn.dropout import Dropout
from nlpdl.nn.recurrent import Bidirectional, Recurrent, hidden_of


@dataclass(frozen=True)
class RNNClassifierConfig(ModelConfig):
    kind: str = "rnn_classifier"
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    embed_dim: int = 300
    hidden: int = 150  # per direction
    num_layers: int = 1
    bidirectional: bool = False
    pooling: Literal["final", "mean", "max"] = "final"
    dropout: float = 0.5


class RecurrentClassifier(nnx.Module):
    def __init__(self, cfg: RNNClassifierConfig, spec: DataSpec, rngs: nnx.Rngs):
        self.embed = nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs)
        layers, width = [], cfg.embed_dim
        for _ in range(cfg.num_layers):
            make = lambda: Recurrent(cfg.cell, width, cfg.hidden, rngs=rngs)  # noqa: E731
            layers.append(Bidirectional(make(), make()) if cfg.bidirectional else make())
            width = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.layers = nnx.List(layers)
        self.dropout = Dropout(cfg.dropout)
        self.out = nnx.Linear(width, spec.num_outputs, rngs=rngs)
        self.pooling, self.bidirectional = cfg.pooling, cfg.bidirectional
        self.cell, self.hidden = cfg.cell, cfg.hidden

    def layer_outputs(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None):
        """The embeddings, then each layer's outputs B x L x H(x2), and the top layer's final state."""
        lengths_B = batch["lengths"]
        x = self.dropout(self.embed(batch["tokens"]), deterministic=not train, rngs=rngs)
        outputs, carry = [x], None
        for layer in self.layers:
            carry, x = layer(x, seq_lengths=lengths_B)
            outputs.append(x)
        final = (jnp.concatenate([hidden_of(carry[0]), hidden_of(carry[1])], axis=-1)
                 if self.bidirectional else hidden_of(carry))
        return outputs, final

    def __call__(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        outputs, final_BxH = self.layer_outputs(batch, train=train, rngs=rngs)
        top_BxLxH = outputs[-1]
        if self.pooling == "final":
            pooled = final_BxH
        elif self.pooling == "mean":
            pooled = masked_mean(top_BxLxH, batch["lengths"])
        else:
            mask_BxL = token_mask(batch["tokens"], batch["lengths"])
            pooled = jnp.max(jnp.where(mask_BxL[..., None], top_BxLxH, -jnp.inf), axis=1)
        return self.out(self.dropout(pooled, deterministic=not train, rngs=rngs))


@register_model(RNNClassifierConfig)
def build(cfg: RNNClassifierConfig, spec: DataSpec, rngs: nnx.Rngs) -> RecurrentClassifier:
    return RecurrentClassifier(cfg, spec, rngs)
