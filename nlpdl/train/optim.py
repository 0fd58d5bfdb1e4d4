"""Optimizers and learning-rate schedules from `OptimConfig`, through optax."""

from __future__ import annotations

import optax

from nlpdl.config import OptimConfig


def make_schedule(cfg: OptimConfig, total_steps: int) -> optax.Schedule:
    """Constant, step decay or cosine, each after an optional linear warm-up."""
    if cfg.schedule == "constant":
        main = optax.constant_schedule(cfg.lr)
    elif cfg.schedule == "step":
        every = cfg.decay_every or max(total_steps, 1)
        main = optax.exponential_decay(cfg.lr, transition_steps=every, decay_rate=cfg.decay_rate,
                                       transition_begin=max(cfg.decay_start - cfg.warmup_steps, 0),
                                       staircase=True)
    else:
        main = optax.cosine_decay_schedule(cfg.lr, max(total_steps - cfg.warmup_steps, 1), alpha=cfg.min_lr_ratio)
    if cfg.warmup_steps == 0:
        return main
    warmup = optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps)
    return optax.join_schedules([warmup, main], [cfg.warmup_steps])


def make_optimizer(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    lr = make_schedule(cfg, total_steps)
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
        chain.append(optax.clip_by_global_norm(cfg.clip_norm))
    if cfg.weight_decay > 0 and cfg.name != "adamw":
        # L2 decay added to the gradient before the update rule, as in classic SGD weight decay.
        chain.append(optax.add_decayed_weights(cfg.weight_decay))
    return optax.chain(*chain, base)
