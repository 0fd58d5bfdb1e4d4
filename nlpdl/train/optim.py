"""Optimizers and learning-rate schedules from `OptimConfig`, through optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from nlpdl.config import OptimConfig


def make_schedule(cfg: OptimConfig, total_steps: int, steps_per_epoch: int = 1) -> optax.Schedule:
    """Constant, step decay or cosine, each after an optional linear warm-up; the step schedule decays at
    `decay_start`, `decay_start + decay_every`, ... (counted in steps or epochs)."""
    unit = steps_per_epoch if cfg.schedule_unit == "epochs" else 1
    warmup, start, every = cfg.warmup_steps * unit, cfg.decay_start * unit, max(cfg.decay_every * unit, 1)
    if cfg.schedule == "constant":
        main = optax.constant_schedule(cfg.lr)
    elif cfg.schedule == "step":
        def main(step):
            decays = jnp.where(step >= start, jnp.floor((step - start) / every) + 1, 0)
            return cfg.lr * cfg.decay_rate ** decays
    else:
        cosine = optax.cosine_decay_schedule(cfg.lr, max(total_steps - warmup, 1), alpha=cfg.min_lr_ratio)

        def main(step):
            return cosine(jnp.maximum(step - warmup, 0))
    if warmup == 0:
        return main
    ramp = optax.linear_schedule(0.0, cfg.lr, warmup)
    return lambda step: jnp.where(step < warmup, ramp(step), main(step))


def _squared_sum(x: jax.Array) -> jax.Array:
    # A matrix-vector product with ones, not a sum: inside a train step XLA:CPU rewrote a large sum of squares into
    # a windowed reduction that took 15 ms for the PTB LSTM's 200 x 10,001 output gradient (benchmarks/RESULTS.md).
    x_RxC = x.astype(jnp.float32).reshape(-1, x.shape[-1] if x.ndim else 1)
    return jnp.sum((x_RxC * x_RxC) @ jnp.ones((x_RxC.shape[1],), jnp.float32))


def global_norm(tree) -> jax.Array:
    """The L2 norm of all leaves together (as `optax.tree.norm`)."""
    return jnp.sqrt(sum((_squared_sum(x) for x in jax.tree.leaves(tree)), jnp.zeros((), jnp.float32)))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """`optax.clip_by_global_norm` over `global_norm`: updates scaled to norm `max_norm` when above it."""

    def update(updates, state, params=None):
        norm = global_norm(updates)
        clip = norm >= max_norm
        return jax.tree.map(lambda u: jnp.where(clip, u / norm.astype(u.dtype) * max_norm, u), updates), state

    return optax.GradientTransformation(optax.init_empty_state, update)


def make_optimizer(cfg: OptimConfig, total_steps: int, steps_per_epoch: int = 1) -> optax.GradientTransformation:
    lr = make_schedule(cfg, total_steps, steps_per_epoch)
    if cfg.name == "sgd":
        base = optax.sgd(lr)
    elif cfg.name == "momentum":
        base = optax.sgd(lr, momentum=cfg.momentum)
    elif cfg.name == "adagrad":
        base = optax.adagrad(lr, eps=cfg.eps)
    elif cfg.name == "adadelta":
        base = optax.adadelta(lr, rho=cfg.rho, eps=cfg.eps)
    elif cfg.name == "adam":
        base = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    else:
        base = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
    chain = []
    if cfg.clip_norm > 0:
        chain.append(clip_by_global_norm(cfg.clip_norm))
    if cfg.weight_decay > 0 and cfg.name != "adamw":
        # L2 decay added to the gradient before the update rule, as in classic SGD weight decay.
        chain.append(optax.add_decayed_weights(cfg.weight_decay))
    chain.append(base)
    if cfg.max_norm > 0:
        chain.append(output_max_norm(cfg.max_norm))
    return optax.chain(*chain)


def _is_output_kernel(path) -> bool:
    names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    return names[-2:] == ["out", "kernel"]


def output_max_norm(max_norm: float) -> optax.GradientTransformation:
    """Turns the update of the output layer's kernel (in x classes) into one that leaves each class's weight
    column with L2 norm at most `max_norm` (a projection after the step, as in Kim 2014)."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("output_max_norm needs the params: call tx.update(grads, state, params).")

        def project(path, u, p):
            if not _is_output_kernel(path):
                return u
            new = p + u
            norms = jnp.linalg.norm(new, axis=0, keepdims=True)
            return new * jnp.minimum(1.0, max_norm / jnp.maximum(norms, 1e-12)) - p

        return jax.tree_util.tree_map_with_path(project, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
