"""Recurrent language models: Elman RNN, LSTM or GRU cells, stacked, dropout on the non-recurrent connections
(Zaremba et al. 2014), optionally tied input/output embeddings. The hidden state is carried across windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.nn.dropout import Dropout
from nlpdl.nn.matmul import Dense, add_bias
from nlpdl.nn.recurrent import Recurrent
from nlpdl.nn.tied_output import tied_logits


@dataclass(frozen=True)
class RNNLMConfig(ModelConfig):
    kind: str = "rnn_lm"
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    embed_dim: int = 200
    hidden: int = 200
    num_layers: int = 2
    dropout: float = 0.0
    tie_embeddings: bool = False  # needs embed_dim == hidden
    init_scale: float = 0.1  # every weight uniform in [-s, s] (Zaremba); 0 keeps the layers' own initialisers


class RecurrentLM(nnx.Module):
    def __init__(self, cfg: RNNLMConfig, spec: DataSpec, rngs: nnx.Rngs):
        if cfg.tie_embeddings and cfg.embed_dim != cfg.hidden:
            raise ValueError(f"tied embeddings need model.embed_dim == model.hidden, got {cfg.embed_dim} and "
                             f"{cfg.hidden}.")
        init = {}
        if cfg.init_scale:
            uniform = nnx.initializers.uniform(2 * cfg.init_scale)

            def init_fn(key, shape, dtype=jnp.float32):
                return uniform(key, shape, dtype) - cfg.init_scale

            init = {"kernel_init": init_fn, "recurrent_kernel_init": init_fn}
        self.embed = nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs,
                               **({"embedding_init": init["kernel_init"]} if init else {}))
        layers, width = [], cfg.embed_dim
        for _ in range(cfg.num_layers):
            layers.append(Recurrent(cfg.cell, width, cfg.hidden, rngs=rngs, **init))
            width = cfg.hidden
        self.layers = nnx.List(layers)
        self.tied = cfg.tie_embeddings
        if self.tied:
            self.out_bias = nnx.Param(jnp.zeros((spec.vocab_size,)))
        else:
            self.out = Dense(width, spec.vocab_size, rngs=rngs,
                             **({"kernel_init": init["kernel_init"]} if init else {}))
        self.dropout = Dropout(cfg.dropout)
        self.cell, self.hidden = cfg.cell, cfg.hidden

    def initial_carry(self, batch_size: int) -> tuple[Any, ...]:
        return tuple(layer.initial_carry(batch_size) for layer in self.layers)

    def hidden_states(self, inputs_BxT: jax.Array, carry: tuple[Any, ...], *, train: bool = False,
                      rngs: nnx.Rngs | None = None) -> tuple[list[jax.Array], tuple[Any, ...]]:
        """The embeddings, then each layer's outputs B x T x H (dropout applied in training), and the new carry."""
        x = self.dropout(self.embed(inputs_BxT), deterministic=not train, rngs=rngs)
        outputs, new_carry = [x], []
        for layer, layer_carry in zip(self.layers, carry):
            layer_carry, x = layer(x, layer_carry)
            x = self.dropout(x, deterministic=not train, rngs=rngs)
            outputs.append(x)
            new_carry.append(layer_carry)
        return outputs, tuple(new_carry)

    def __call__(self, inputs_BxT: jax.Array, carry: tuple[Any, ...], *, train: bool = False,
                 rngs: nnx.Rngs | None = None) -> tuple[jax.Array, tuple[Any, ...]]:
        outputs, new_carry = self.hidden_states(inputs_BxT, carry, train=train, rngs=rngs)
        return self.logits(outputs[-1]), new_carry

    def logits(self, x_BxTxH: jax.Array) -> jax.Array:
        """The output layer: the top layer's states to next-token logits B x T x V."""
        return (add_bias(tied_logits(x_BxTxH, self.embed.embedding[...]), self.out_bias[...]) if self.tied
                else self.out(x_BxTxH))


@register_model(RNNLMConfig)
def build(cfg: RNNLMConfig, spec: DataSpec, rngs: nnx.Rngs) -> RecurrentLM:
    return RecurrentLM(cfg, spec, rngs)
