"""Kim (2014) convolutional sentence classifier: word vectors, filters of several widths, ReLU, max-over-time
pooling, dropout, a softmax layer (whose weight columns the optimizer keeps within an L2 norm, `optim.max_norm`).

Word vectors (`model.embeddings`): "rand" learns them from uniform noise; "static" keeps pretrained vectors
(`model.vectors`, any word2vec / GloVe / fastText file) fixed; "nonstatic" fine-tunes them; "multichannel" has
both a fixed and a fine-tuned copy, each seen by its own slice of every filter, the two results added.

As in Kim's code every sentence is padded with width-1 zero vectors on both sides, so a filter also sees the
sentence's first and last words in every window position; windows that hold no word of the sentence (batch
padding) are left out of the max, so a padded batch scores each sentence as it would be scored alone.
`model.pool_padding` gives instead the max of Kim's code, which pads every sentence to the longest one and pools
over all of it: there a window of zeros scores relu(bias), a floor under the map wherever such a window exists.
`model.dropout_scaling=test` drops as Kim's code does (unscaled in training, scaled at test), which changes what
the max-norm bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from nlpdl.config import ConfigError, ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.nn.dropout import Dropout


@dataclass(frozen=True)
class CNNConfig(ModelConfig):
    kind: str = "cnn"
    embed_dim: int = 300
    widths: tuple[int, ...] = (3, 4, 5)
    maps: int = 100  # feature maps per width
    dropout: float = 0.5
    embed_init_scale: float = 0.25  # words without a vector: uniform in [-s, s], as Kim's code
    embeddings: Literal["rand", "static", "nonstatic", "multichannel"] = "rand"
    vectors: str = ""  # pretrained vectors file for static / nonstatic / multichannel
    out_init: Literal["lecun_normal", "zeros"] = "lecun_normal"  # the softmax layer's weights; Kim's code: zeros
    conv_init: Literal["lecun_normal", "kim"] = "lecun_normal"  # the filters; "kim": as his code (kim_conv_init)
    pool_padding: bool = False  # also max over the all-zero windows of Kim's layout (data.max_len words per sentence)
    # "test": Kim's code's dropout, kept units unscaled in training and all scaled by 1 - dropout at test, so that
    # optim.max_norm bounds his weights, which are 1 / (1 - dropout) times the default's ("inverted") for one function
    dropout_scaling: Literal["inverted", "test"] = "inverted"


def token_mask(tokens_BxL: jax.Array, lengths_B: jax.Array) -> jax.Array:
    return jnp.arange(tokens_BxL.shape[1])[None, :] < lengths_B[:, None]


def embedding_init(cfg: CNNConfig, spec: DataSpec):
    """Uniform noise, with the pretrained vector of each vocabulary word that has one (read when built)."""
    s = cfg.embed_init_scale
    if cfg.embeddings == "rand":
        return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -s, s)
    if not cfg.vectors or not spec.vocab:
        raise ConfigError(f"model.embeddings={cfg.embeddings} needs model.vectors=PATH (a word2vec, GloVe or "
                          "fastText file) and a task with a word vocabulary.")
    from nlpdl.embeddings.vectors import match_words, read_vectors

    vectors = read_vectors(cfg.vectors)
    if vectors.dim != cfg.embed_dim:
        raise ConfigError(f"{cfg.vectors} holds {vectors.dim}-d vectors: set model.embed_dim={vectors.dim}.")
    rows, found = match_words(spec.vocab, vectors)

    def init(key, shape, dtype=jnp.float32):
        noise = jax.random.uniform(key, shape, jnp.float32, -s, s)
        return noise.at[rows].set(jnp.asarray(vectors.matrix[found])).astype(dtype)

    return init


def kim_conv_init(width: int, cfg: CNNConfig, spec: DataSpec, channels: int):
    """Kim's code: uniform in +-sqrt(6 / (fan_in + fan_out)), fan_in = width x D, fan_out = maps x width x D over
    the positions each map is max-pooled from, his sentences being `data.max_len` words padded by (widest - 1)."""
    fan_in = width * cfg.embed_dim * channels
    positions = spec.seq_len + 2 * (max(cfg.widths) - 1) - width + 1
    bound = (6.0 / (fan_in + cfg.maps * fan_in / positions)) ** 0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class KimCNN(nnx.Module):
    def __init__(self, cfg: CNNConfig, spec: DataSpec, rngs: nnx.Rngs):
        init = embedding_init(cfg, spec)
        self.embed = nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs, embedding_init=init)
        # multichannel: a second copy, same start, trained while the first stays fixed
        self.tuned = (nnx.Embed(spec.vocab_size, cfg.embed_dim, rngs=rngs, embedding_init=init)
                      if cfg.embeddings == "multichannel" else None)
        channels = 2 if self.tuned is not None else 1
        self.convs = nnx.List([nnx.Conv(channels * cfg.embed_dim, cfg.maps, kernel_size=(w,), padding="VALID",
                                        rngs=rngs, **({"kernel_init": kim_conv_init(w, cfg, spec, channels)}
                                                      if cfg.conv_init == "kim" else {}))
                               for w in cfg.widths])
        self.dropout = Dropout(cfg.dropout, inverted=cfg.dropout_scaling == "inverted")
        self.out = nnx.Linear(cfg.maps * len(cfg.widths), spec.num_outputs, rngs=rngs,
                              **({"kernel_init": nnx.initializers.zeros} if cfg.out_init == "zeros" else {}))
        self.widths = cfg.widths
        self.pool_padding = cfg.pool_padding
        self.seq_len = spec.seq_len
        self.frozen = cfg.embeddings in ("static", "multichannel")

    def embed_words(self, tokens_BxL: jax.Array) -> jax.Array:
        x_BxLxD = self.embed(tokens_BxL)
        if self.frozen:  # no gradient reaches the fixed vectors (only weight decay, off for Kim, could move them)
            x_BxLxD = jax.lax.stop_gradient(x_BxLxD)
        if self.tuned is not None:
            x_BxLxD = jnp.concatenate([x_BxLxD, self.tuned(tokens_BxL)], axis=-1)
        return x_BxLxD

    def features(self, batch: dict) -> jax.Array:
        """The max-pooled feature maps, B x (maps * widths)."""
        tokens_BxL, lengths_B = batch["tokens"], batch["lengths"]
        mask_BxL = token_mask(tokens_BxL, lengths_B)
        x_BxLxD = self.embed_words(tokens_BxL) * mask_BxL[..., None]
        pooled = []
        for width, conv in zip(self.widths, self.convs):
            padded = jnp.pad(x_BxLxD, ((0, 0), (width - 1, width - 1), (0, 0)))
            maps_BxWxM = jax.nn.relu(conv(padded))  # window j covers positions j-width+1 .. j
            # window j holds a word of the sentence iff it starts before the sentence ends
            starts_W = jnp.arange(maps_BxWxM.shape[1]) - (width - 1)
            valid_BxW = starts_W[None, :] < lengths_B[:, None]
            pooled_BxM = jnp.max(jnp.where(valid_BxW[..., None], maps_BxWxM, -jnp.inf), axis=1)
            if self.pool_padding:
                pooled_BxM = jnp.maximum(pooled_BxM, self.zero_window_floor(width, conv, lengths_B))
            pooled.append(pooled_BxM)
        return jnp.concatenate(pooled, axis=-1)

    def zero_window_floor(self, width: int, conv: nnx.Conv, lengths_B: jax.Array) -> jax.Array:
        """relu(bias) where Kim's layout has a window of zeros: before the sentence, for all but the widest filter
        (widest - 1 zeros lead every sentence), and after it, for a sentence that far short of data.max_len words."""
        widest = max(self.widths)
        has_zero_window_B = (width < widest) | (lengths_B <= self.seq_len + widest - 1 - width)
        return jnp.where(has_zero_window_B[:, None], jax.nn.relu(conv.bias[...])[None, :], 0.0)

    def __call__(self, batch: dict, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.out(self.dropout(self.features(batch), deterministic=not train, rngs=rngs))


@register_model(CNNConfig)
def build(cfg: CNNConfig, spec: DataSpec, rngs: nnx.Rngs) -> KimCNN:
    return KimCNN(cfg, spec, rngs)
