"""Kim (2014) convolutional sentence classifier: word vectors, filters of several widths, ReLU, max-over-time
pooling, dropout, a softmax layer (whose weight columns the optimizer keeps within an L2 norm, `optim.max_norm`).

As in Kim's code every sentence is padded with width-1 zero vectors on both sides, so a filter also sees the
sentence's first and last words in every window position; windows that hold no word of the sentence (batch
padding) are left out of the max, so a padded batch scores each sentence as it would be scored alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ModelConfig
from nlpdl.models import DataSpec, register_model


@dataclass(frozen=True)
class CNNConfig(ModelConfig):
    kind: str = "cnn"
    embed_dim: int = 300
    widths: tuple[int, ...] = (3, 4, 5)
    maps: int = 100  # feature maps per width
    dropout: float = 0.5
    embed_init_scale: float = 0.25  # CNN-rand: uniform in [-s, s], as Kim's code


def token_mask(tokens_BxL: jax.Array, lengths_B: jax.Array) -> jax.Array:
    return jnp.arange(tokens_BxL.shape[1])[None, :] < lengths_B[:, None]


class KimCNN(nnx.Module):
    def __init__(self, cfg: CNNConfig, spec: DataSpec, rngs: nnx.Rngs):
        s = cfg.embed_init_scale
        self.embed = nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs,
                               embedding_init=lambda k, shape, dtype=jnp.float32: jax.random.uniform(
                                   k, shape, dtype, -s, s))
        self.convs = nnx.List([nnx.Conv(cfg.embed_dim, cfg.maps, kernel_size=(w,), padding="VALID", rngs=rngs)
                               for w in cfg.widths])
        self.dropout = nnx.Dropout(cfg.dropout)
        self.out = nnx.Linear(cfg.maps * len(cfg.widths), spec.num_outputs, rngs=rngs)
        self.widths = cfg.widths

    def features(self, batch: dict) -> jax.Array:
        """The max-pooled feature maps, B x (maps * widths)."""
        tokens_BxL, lengths_B = batch["tokens"], batch["lengths"]
        mask_BxL = token_mask(tokens_BxL, lengths_B)
        x_BxLxD = self.embed(tokens_BxL) * mask_BxL[..., None]
        pooled = []
        for width, conv in zip(self.widths, self.convs):
            padded = jnp.pad(x_BxLxD, ((0, 0), (width - 1, width - 1), (0, 0)))
            maps_BxWxM = jax.nn.relu(conv(padded))  # window j covers positions j-width+1 .. j
            # window j holds a word of the sentence iff it starts before the sentence ends
            starts_W = jnp.arange(maps_BxWxM.shape[1]) - (width - 1)
            valid_BxW = starts_W[None, :] < lengths_B[:, None]
            pooled.append(jnp.max(jnp.where(valid_BxW[..., None], maps_BxWxM, -jnp.inf), axis=1))
        return jnp.concatenate(pooled, axis=-1)

    def __call__(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.out(self.dropout(self.features(batch), deterministic=not train, rngs=rngs))


@register_model(CNNConfig)
def build(cfg: CNNConfig, spec: DataSpec, rngs: nnx.Rngs) -> KimCNN:
    return KimCNN(cfg, spec, rngs)
