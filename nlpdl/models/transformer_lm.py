"""A causal Transformer decoder (GPT-style): token + learned or sinusoidal positions, pre-LN blocks of masked
multi-head self-attention and a GELU feed-forward layer, a final layer norm, output tied to the embeddings.

Training and evaluation read each window on its own (no state between windows, so the carry is None). Sampling
passes a `KVCache` instead: the keys and values of every position so far, so each new token costs one position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx, struct

from nlpdl.config import ConfigError, ModelConfig
from nlpdl.models import DataSpec, register_model
from nlpdl.nn.dropout import Dropout
from nlpdl.nn.matmul import Dense
from nlpdl.nn.tied_output import tied_logits


@dataclass(frozen=True)
class TransformerLMConfig(ModelConfig):
    kind: str = "transformer_lm"
    d_model: int = 256
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int = 1024
    context: int = 128  # the longest window (and sample) learned positions allow
    positions: Literal["learned", "sinusoidal"] = "learned"
    dropout: float = 0.1
    tie_embeddings: bool = True


@struct.dataclass
class KVCache:
    keys: tuple[jax.Array, ...]  # per layer, B x S x H x Dh
    values: tuple[jax.Array, ...]
    length: jax.Array  # int32 scalar: positions written so far


def sinusoidal_positions(positions_T: jax.Array, d_model: int) -> jax.Array:
    """Vaswani et al. (2017): sin on even features, cos on odd, wavelengths from 2*pi to 10000*2*pi."""
    inv_freq = jnp.exp(-math.log(10000.0) * jnp.arange(0, d_model, 2) / d_model)
    angles_TxF = positions_T[:, None].astype(jnp.float32) * inv_freq[None, :]
    return jnp.stack([jnp.sin(angles_TxF), jnp.cos(angles_TxF)], axis=-1).reshape(len(positions_T), -1)[:, :d_model]


def causal_attention(q_BxTxHxD, k_BxSxHxD, v_BxSxHxD, mask_TxS, dropout, *, train, rngs):
    """Softmax attention; returns the outputs and the weights B x H x T x S (rows sum to 1 over allowed keys)."""
    scores_BxHxTxS = jnp.einsum("bthd,bshd->bhts", q_BxTxHxD, k_BxSxHxD) / math.sqrt(q_BxTxHxD.shape[-1])
    scores_BxHxTxS = jnp.where(mask_TxS, scores_BxHxTxS, jnp.finfo(scores_BxHxTxS.dtype).min)
    weights_BxHxTxS = jax.nn.softmax(scores_BxHxTxS.astype(jnp.float32), axis=-1).astype(q_BxTxHxD.dtype)
    dropped = dropout(weights_BxHxTxS, deterministic=not train, rngs=rngs)
    return jnp.einsum("bhts,bshd->bthd", dropped, v_BxSxHxD), weights_BxHxTxS


class Block(nnx.Module):
    """x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: TransformerLMConfig, rngs: nnx.Rngs):
        d, init = cfg.d_model, nnx.initializers.normal(0.02)
        # GPT-2: the projections into the residual stream start smaller, by sqrt(2 * layers)
        out_init = nnx.initializers.normal(0.02 / math.sqrt(2 * cfg.num_layers))
        self.ln_attn = nnx.LayerNorm(d, rngs=rngs)
        self.qkv = Dense(d, 3 * d, kernel_init=init, rngs=rngs)
        self.proj = Dense(d, d, kernel_init=out_init, rngs=rngs)
        self.ln_mlp = nnx.LayerNorm(d, rngs=rngs)
        self.up = Dense(d, cfg.d_ff, kernel_init=init, rngs=rngs)
        self.down = Dense(cfg.d_ff, d, kernel_init=out_init, rngs=rngs)
        self.dropout = Dropout(cfg.dropout)
        self.num_heads = cfg.num_heads

    def __call__(self, x_BxTxD, mask_TxS, kv=None, *, train=False, rngs=None):
        """`kv` = (cached keys, cached values, write position) appends this window's keys and values there.
        Returns the new x, the attention weights and the updated (keys, values)."""
        B, T, D = x_BxTxD.shape
        q, k, v = jnp.split(self.qkv(self.ln_attn(x_BxTxD)).reshape(B, T, 3, self.num_heads, -1), 3, axis=2)
        q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]
        if kv is not None:
            cached_k, cached_v, start = kv
            k = jax.lax.dynamic_update_slice(cached_k, k.astype(cached_k.dtype), (0, start, 0, 0))
            v = jax.lax.dynamic_update_slice(cached_v, v.astype(cached_v.dtype), (0, start, 0, 0))
        attended, weights = causal_attention(q, k, v, mask_TxS, self.dropout, train=train, rngs=rngs)
        x_BxTxD = x_BxTxD + self.dropout(self.proj(attended.reshape(B, T, D)), deterministic=not train, rngs=rngs)
        h = self.dropout(jax.nn.gelu(self.up(self.ln_mlp(x_BxTxD))), deterministic=not train, rngs=rngs)
        x_BxTxD = x_BxTxD + self.dropout(self.down(h), deterministic=not train, rngs=rngs)
        return x_BxTxD, weights, (k, v)


class TransformerLM(nnx.Module):
    def __init__(self, cfg: TransformerLMConfig, spec: DataSpec, rngs: nnx.Rngs):
        if cfg.d_model % cfg.num_heads:
            raise ConfigError(f"model.d_model ({cfg.d_model}) must be a multiple of model.num_heads "
                              f"({cfg.num_heads}).")
        if cfg.positions == "learned" and spec.seq_len > cfg.context:
            raise ConfigError(f"the windows hold {spec.seq_len} tokens but model.context is {cfg.context}: set "
                              f"data.bptt <= model.context, or model.positions=sinusoidal.")
        init = nnx.initializers.normal(0.02)
        self.embed = nnx.Embed(spec.vocab_size, cfg.d_model, embedding_init=init, rngs=rngs)
        self.pos_embed = (nnx.Embed(cfg.context, cfg.d_model, embedding_init=init, rngs=rngs)
                          if cfg.positions == "learned" else None)
        self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.num_layers)])
        self.ln_out = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.out = None if cfg.tie_embeddings else Dense(cfg.d_model, spec.vocab_size, kernel_init=init, rngs=rngs)
        self.dropout = Dropout(cfg.dropout)
        self.cfg = cfg

    def init_cache(self, batch_size: int, length: int) -> KVCache:
        """An empty cache for `length` positions; learned positions allow at most `model.context`."""
        if self.pos_embed is not None and length > self.cfg.context:
            raise ConfigError(f"this model has learned positions for {self.cfg.context} tokens; prompt plus new "
                              f"tokens make {length}: sample fewer tokens or use a shorter prompt.")
        shape = (batch_size, length, self.cfg.num_heads, self.cfg.d_model // self.cfg.num_heads)
        zeros = tuple(jnp.zeros(shape, jnp.float32) for _ in self.blocks)
        return KVCache(keys=zeros, values=zeros, length=jnp.zeros((), jnp.int32))

    def embed_positions(self, positions_T: jax.Array) -> jax.Array:
        if self.pos_embed is None:
            return sinusoidal_positions(positions_T, self.cfg.d_model)
        return self.pos_embed(positions_T)

    def decode(self, inputs_BxT: jax.Array, cache: KVCache | None = None, *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> tuple[list[jax.Array], list[jax.Array], KVCache | None]:
        """The embedded input, then each block's output B x T x D (the last after the final layer norm), each
        block's attention weights B x H x T x S, and the updated cache (None without one)."""
        T = inputs_BxT.shape[1]
        start = jnp.zeros((), jnp.int32) if cache is None else cache.length
        positions_T = start + jnp.arange(T)
        key_positions_S = positions_T if cache is None else jnp.arange(cache.keys[0].shape[1])
        mask_TxS = key_positions_S[None, :] <= positions_T[:, None]
        x = self.embed(inputs_BxT) + self.embed_positions(positions_T)[None]
        x = self.dropout(x, deterministic=not train, rngs=rngs)
        outputs, keys, values, attention = [x], [], [], []
        for i, block in enumerate(self.blocks):
            kv = None if cache is None else (cache.keys[i], cache.values[i], start)
            x, weights, (k, v) = block(x, mask_TxS, kv, train=train, rngs=rngs)
            outputs.append(x), keys.append(k), values.append(v), attention.append(weights)
        outputs[-1] = self.ln_out(x)
        new_cache = None if cache is None else KVCache(tuple(keys), tuple(values), start + T)
        return outputs, attention, new_cache

    def __call__(self, inputs_BxT: jax.Array, cache: KVCache | None = None, *, train: bool = False,
                 rngs: nnx.Rngs | None = None, return_attention: bool = False):
        """Logits B x T x V and the updated cache (None without one); with `return_attention`, also each
        block's attention weights B x H x T x S."""
        outputs, attention, new_cache = self.decode(inputs_BxT, cache, train=train, rngs=rngs)
        x = outputs[-1]
        logits_BxTxV = tied_logits(x, self.embed.embedding[...]) if self.out is None else self.out(x)
        return (logits_BxTxV, new_cache, attention) if return_attention else (logits_BxTxV, new_cache)


@register_model(TransformerLMConfig)
def build(cfg: TransformerLMConfig, spec: DataSpec, rngs: nnx.Rngs) -> TransformerLM:
    return TransformerLM(cfg, spec, rngs)
