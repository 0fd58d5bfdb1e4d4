"""Feed-forward classifiers: an MLP over dense features, or over the average of a sentence's word embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.nn.activations import get_activation
from nlpdl.nn.dropout import Dropout

INITS = {
    "default": nnx.initializers.lecun_normal(),
    "glorot_uniform": nnx.initializers.glorot_uniform(),
    "he_normal": nnx.initializers.he_normal(),
    "normal": nnx.initializers.normal(0.1),
    "zeros": nnx.initializers.zeros_init(),
}


@dataclass(frozen=True)
class FFNConfig(ModelConfig):
    kind: str = "ffn"
    input: Literal["features", "embeddings"] = "embeddings"
    embed_dim: int = 100
    hidden: int = 100
    num_layers: int = 1  # hidden layers; 0 is a linear (logistic-regression) model
    activation: Literal["sigmoid", "tanh", "relu", "leaky_relu", "identity"] = "relu"
    dropout: float = 0.0
    init: Literal["default", "glorot_uniform", "he_normal", "normal", "zeros"] = "default"
    remat: bool = False  # recompute each hidden layer in the backward pass instead of keeping its activations


def masked_mean(x_BxLxD: jax.Array, lengths_B: jax.Array) -> jax.Array:
    mask_BxL = jnp.arange(x_BxLxD.shape[1])[None, :] < lengths_B[:, None]
    total_BxD = jnp.einsum("bld,bl->bd", x_BxLxD, mask_BxL.astype(x_BxLxD.dtype))
    return total_BxD / jnp.maximum(lengths_B, 1)[:, None].astype(x_BxLxD.dtype)


class FeedForwardClassifier(nnx.Module):
    def __init__(self, cfg: FFNConfig, spec: DataSpec, rngs: nnx.Rngs):
        self.input = cfg.input
        if cfg.input == "embeddings":
            self.embed = nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs)
            width = cfg.embed_dim
        else:
            width = spec.input_dim
        init = INITS[cfg.init]
        layers = []
        for _ in range(cfg.num_layers):
            layers.append(nnx.Linear(width, cfg.hidden, kernel_init=init, rngs=rngs))
            width = cfg.hidden
        self.hidden = nnx.List(layers)
        self.out = nnx.Linear(width, spec.num_outputs, kernel_init=init, rngs=rngs)
        self.act = get_activation(cfg.activation)
        self.dropout = Dropout(cfg.dropout)
        self.remat = cfg.remat

    def __call__(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.out(self.hidden_outputs(batch, train=train, rngs=rngs)[-1])

    def hidden_outputs(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None) -> list[jax.Array]:
        """The input vector (the averaged embeddings, or the features), then each hidden layer's output, B x D."""
        if self.input == "embeddings":
            x = masked_mean(self.embed(batch["tokens"]), batch["lengths"])
        else:
            x = batch["features"]
        outputs = [self.dropout(x, deterministic=not train, rngs=rngs)]
        for layer in self.hidden:
            block = nnx.remat(FeedForwardClassifier._block) if self.remat else FeedForwardClassifier._block
            outputs.append(self.dropout(block(self, layer, outputs[-1]), deterministic=not train, rngs=rngs))
        return outputs

    def _block(self, layer: nnx.Linear, x: jax.Array) -> jax.Array:
        return self.act(layer(x))


@register_model(FFNConfig)
def build(cfg: FFNConfig, spec: DataSpec, rngs: nnx.Rngs) -> FeedForwardClassifier:
    return FeedForwardClassifier(cfg, spec, rngs)
