"""Optimizers and schedules from config."""

import jax
import jax.numpy as jnp
import optax
import pytest

from nlpdl.config import OptimConfig
from nlpdl.train.optim import clip_by_global_norm, global_norm, make_optimizer, make_schedule


@pytest.mark.parametrize("name,settings", [("sgd", dict(lr=0.1)), ("momentum", dict(lr=0.05)),
                                           ("adagrad", dict(lr=0.5)), ("adadelta", dict(lr=1.0, eps=1e-3)),
                                           ("adam", dict(lr=0.1)), ("adamw", dict(lr=0.1))])
def test_each_optimizer_minimises_a_quadratic(name, settings):
    tx = make_optimizer(OptimConfig(name=name, **settings), total_steps=200)
    params = {"w": jnp.array([3.0, -2.0])}
    state = tx.init(params)

    def loss(p):
        return jnp.sum((p["w"] - 1.0) ** 2)

    start = loss(params)
    for _ in range(200):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    assert loss(params) < 0.05 * start


def test_step_decay_schedule():
    s = make_schedule(OptimConfig(lr=1.0, schedule="step", decay_rate=0.5, decay_every=10, decay_start=20), 100)
    assert [float(s(i)) for i in (0, 19, 20, 29, 30, 40)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_step_decay_counted_in_epochs_halves_after_epoch_four():
    cfg = OptimConfig(lr=1.0, schedule="step", decay_rate=0.5, decay_every=1, decay_start=4, schedule_unit="epochs")
    s = make_schedule(cfg, 13 * 100, steps_per_epoch=100)
    assert [float(s(e * 100)) for e in range(7)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]


def test_cosine_with_warmup():
    s = make_schedule(OptimConfig(lr=2.0, schedule="cosine", warmup_steps=10), 110)
    assert float(s(0)) == 0.0 and float(s(5)) == pytest.approx(1.0)
    assert float(s(10)) == pytest.approx(2.0) and float(s(60)) == pytest.approx(1.0, rel=1e-3)
    assert float(s(110)) == pytest.approx(0.0, abs=1e-6)


def test_clipping_bounds_the_update():
    tx = make_optimizer(OptimConfig(name="sgd", lr=1.0, clip_norm=1.0), 10)
    grads = {"w": jnp.array([30.0, 40.0])}
    updates, _ = tx.update(grads, tx.init(grads), grads)
    assert float(optax.tree.norm(updates)) == pytest.approx(1.0)


def test_weight_decay_shrinks_weights_without_gradient():
    for name in ("sgd", "adamw"):
        tx = make_optimizer(OptimConfig(name=name, lr=0.1, weight_decay=0.5), 10)
        params = {"w": jnp.array([2.0])}
        updates, _ = tx.update({"w": jnp.array([0.0])}, tx.init(params), params)
        assert float(updates["w"][0]) < 0


def _tree(scale: float) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    return {"kernel": scale * jax.random.normal(keys[0], (7, 301)), "bias": scale * jax.random.normal(keys[1], (301,)),
            "conv": scale * jax.random.normal(keys[2], (3, 5, 4)), "scalar": scale * jax.random.normal(keys[3], ())}


def test_global_norm_matches_optax():
    tree = _tree(1.0)
    assert float(global_norm(tree)) == pytest.approx(float(optax.tree.norm(tree)), rel=1e-6)
    assert float(global_norm({"zero": jnp.zeros((3, 4))})) == 0.0


@pytest.mark.parametrize("scale", [1e-3, 10.0])
def test_clip_by_global_norm_matches_optax_below_and_above_the_limit(scale):
    tree = _tree(scale)
    ours, _ = clip_by_global_norm(5.0).update(tree, optax.EmptyState())
    theirs, _ = optax.clip_by_global_norm(5.0).update(tree, optax.EmptyState())
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert jnp.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(global_norm(ours)) == pytest.approx(min(float(global_norm(tree)), 5.0), rel=1e-5)
