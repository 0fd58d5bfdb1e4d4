"""nlpdl's language-model step before and after a set of changes, side by side in one process.

    python benchmarks/lm_step_before_after.py EXPERIMENT [overrides ...] [--changes NAME] [--rounds 6 --steps 3]
        [--after-first]

"before" rebuilds the step with the earlier functions patched in; "after" is the code as it is. Change sets:
- `loss-tied-masks` (2026-12-02, first): the gather cross-entropy, the tied output layer left to autodiff, and
  dropout masks from threefry for every 32-bit word;
- `matmul-norm` (2026-12-02, second): dense layers' products left to autodiff (`jax.lax.dot_general`
  instead of `nlpdl.nn.matmul.dot_general`, and Flax's own `nnx.Linear.__call__`) and gradient norms by
  `optax.tree.norm` (clipping and the metric);
- `loss-bias` (2026-12-02, third; the default): the cross-entropy's gradient left to autodiff
  (`cross_entropy_by_autodiff`), top-1 accuracy by argmax, and dense layers' biases added by Flax's
  `nnx.Linear.__call__` (their gradient a sum over rows) instead of `nlpdl.nn.matmul.add_bias`.
Both trainers are built and compiled first; then each round runs `--steps` steps of one, then of the other (the
order flips with --after-first, to see the order's own effect). Prints the median step time of each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from nlpdl import host_memory

host_memory.keep_freed_memory()

import experiments  # noqa: E402,F401
import nlpdl.models.rnn_lm as rnn_lm  # noqa: E402
import nlpdl.models.transformer_lm as transformer_lm  # noqa: E402
import nlpdl.nn.losses as losses  # noqa: E402
import nlpdl.nn.matmul as matmul  # noqa: E402
import nlpdl.nn.dropout as dropout  # noqa: E402
import nlpdl.tasks.language_modeling as language_modeling  # noqa: E402
import nlpdl.train.optim as optim  # noqa: E402
import nlpdl.train.step as step  # noqa: E402
from nlpdl import config as C, parallel  # noqa: E402
from nlpdl.data.sources import resolve_data_dir  # noqa: E402
from nlpdl.train.loop import build_trainer  # noqa: E402


def gather_cross_entropy(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], axis=-1)[..., 0]


def autodiff_tied_logits(x, table):
    return x @ table.T


def argmax_is_label(logits, labels):
    return jnp.argmax(logits, -1) == labels


def plus_bias(y, b):
    return y + b.reshape((1,) * (y.ndim - 1) + (-1,))


def threefry_keep_mask(key, shape, rate):
    *lead, last = shape
    words = jax.random.bits(key, (*lead, (last + 1) // 2), jnp.uint32)
    draws = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(*lead, -1)[..., :last]
    return draws < jnp.uint16(dropout.keep_threshold(rate))


class Change:
    """Module attributes that a change set replaced: `before` puts the earlier values back, `after` today's."""

    def __init__(self, targets: list[tuple[object, str]], earlier: list[object]):
        self.targets, self.earlier = targets, earlier
        self.today = [getattr(module, name) for module, name in targets]

    def use(self, values) -> None:
        for (module, name), value in zip(self.targets, values):
            setattr(module, name, value)

    def before(self) -> None:
        self.use(self.earlier)

    def after(self) -> None:
        self.use(self.today)


CHANGES = {
    "loss-tied-masks": Change(
        [(language_modeling, "cross_entropy"), (transformer_lm, "tied_logits"), (rnn_lm, "tied_logits"),
         (dropout, "keep_mask")],
        [gather_cross_entropy, autodiff_tied_logits, autodiff_tied_logits, threefry_keep_mask]),
    "matmul-norm": Change(
        [(matmul, "dot_general"), (matmul.Dense, "__call__"), (rnn_lm, "add_bias"), (optim, "global_norm"),
         (step, "global_norm")],
        [jax.lax.dot_general, nnx.Linear.__call__, plus_bias] + [optax.tree.norm] * 2),
    "loss-bias": Change(
        [(language_modeling, "cross_entropy"), (language_modeling, "label_is_top"), (matmul.Dense, "__call__"),
         (rnn_lm, "add_bias")],
        [losses.cross_entropy_by_autodiff, argmax_is_label, nnx.Linear.__call__, plus_bias]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--after-first", action="store_true")
    parser.add_argument("--changes", choices=sorted(CHANGES), default="loss-bias")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    cfg = C.apply_overrides(C.get(args.experiment), args.overrides)
    change = CHANGES[args.changes]
    order = [("after", change.after), ("before", change.before)]
    sides = {}
    for name, use in (order if args.after_first else order[::-1]):
        use()  # the step is traced below, with these functions
        t = build_trainer(cfg, resolve_data_dir(args.data_dir))
        state, batches = t.init_state(), iter(t.data.train)
        state, _ = t.step_fn(state, parallel.put_batch(next(batches), t.mesh))
        jax.block_until_ready(state)
        sides[name] = {"trainer": t, "state": state, "batches": batches, "times": []}
    change.after()
    for _ in range(args.rounds):
        for side in sides.values():
            t = side["trainer"]
            for _ in range(args.steps):
                batch = parallel.put_batch(next(side["batches"]), t.mesh)
                start = time.perf_counter()
                side["state"], _ = t.step_fn(side["state"], batch)
                jax.block_until_ready(side["state"])
                side["times"].append(time.perf_counter() - start)
    median = {name: statistics.median(side["times"]) for name, side in sides.items()}
    print(f"{args.experiment} {' '.join(args.overrides)} [{args.changes}]: before {median['before'] * 1e3:.1f} ms, after "
          f"{median['after'] * 1e3:.1f} ms a step (after / before {median['after'] / median['before']:.3f}; median "
          f"of {args.rounds * args.steps} steps each, {'after' if args.after_first else 'before'} first)")


if __name__ == "__main__":
    main()
