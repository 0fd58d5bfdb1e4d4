"""Sampling text from a trained language model: one jitted `lax.scan` that carries the model's state (an RNN's
hidden state, a feed-forward LM's context, a Transformer's key/value cache), so no step recomputes the prefix."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nlpdl import config as C
from nlpdl.tasks.language_modeling import text_codec
from nlpdl.train.loop import restore_run
from nlpdl.train.rundir import RunDir
from nlpdl.train.state import initial_carry, split_model


def pick(logits_BxV: jax.Array, key: jax.Array, temperature: float, top_k: int) -> jax.Array:
    """A token per row from softmax(logits / temperature), restricted to the top-k (0: all); temperature 0 is
    greedy."""
    if temperature == 0:
        return jnp.argmax(logits_BxV, axis=-1)
    if top_k:
        kth_B1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
        logits_BxV = jnp.where(logits_BxV < kth_B1, -jnp.inf, logits_BxV)
    return jax.random.categorical(key, logits_BxV / temperature, axis=-1)


def decoding_carry(model: nnx.Module, batch_size: int, length: int):
    """What the model carries while it decodes `length` positions: a Transformer's empty cache of that length,
    else its training carry."""
    if hasattr(model, "init_cache"):
        return model.init_cache(batch_size, length)
    return initial_carry(model, batch_size)


@functools.partial(jax.jit, static_argnames=("graphdef", "num_tokens", "temperature", "top_k"))
def generate(params, prompt_1xP: jax.Array, key: jax.Array, *, graphdef: nnx.GraphDef, num_tokens: int,
             temperature: float, top_k: int) -> jax.Array:
    """The prompt is read once; then each step feeds one token and its carry."""
    model = nnx.merge(graphdef, params)
    logits_1xPxV, carry = model(prompt_1xP, decoding_carry(model, 1, prompt_1xP.shape[1] + num_tokens))

    def step(state, key):
        carry, logits_1xV = state
        token_1 = pick(logits_1xV, key, temperature, top_k)
        # NNX modules belong to the trace they were made in: rebuild this one inside the scan body.
        logits_1x1xV, carry = nnx.merge(graphdef, params)(token_1[:, None], carry)
        return (carry, logits_1x1xV[:, -1]), token_1[0]

    _, tokens = jax.lax.scan(step, (carry, logits_1xPxV[:, -1]), jax.random.split(key, num_tokens))
    return tokens


def sample_run(workdir: Path, prompt: str, num_tokens: int, temperature: float, top_k: int, seed: int,
               data_dir: Path) -> str:
    """Text continuing `prompt`, from a run's best parameters, tokenised exactly as in training."""
    run = RunDir(workdir)
    cfg = run.read_config()
    if cfg.task.name != "language_modeling":
        raise C.ConfigError(f"{workdir} trained a {cfg.task.name} model; sampling needs a language model.")
    encode, decode = text_codec(cfg, workdir)
    prompt_ids = encode(prompt)
    if len(prompt_ids) == 0:
        raise C.ConfigError("--prompt is empty: give at least one token to continue from.")
    _, t, params = restore_run(workdir, data_dir)
    tokens = generate(params, jnp.asarray(prompt_ids)[None, :], jax.random.PRNGKey(seed),
                      graphdef=split_model(t.make_model), num_tokens=num_tokens, temperature=temperature,
                      top_k=top_k)
    # Decoded with the prompt, as the model read it (unknown words show as <unk>; pieces join up correctly).
    return decode(np.concatenate([np.asarray(prompt_ids), jax.device_get(tokens)]))
