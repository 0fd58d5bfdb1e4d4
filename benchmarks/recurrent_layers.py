"""Flax's recurrent cells against nlpdl's fused layers, in the same PTB-shaped train step.

    python benchmarks/recurrent_layers.py [--shape small|medium] [--kinds flax,autodiff,fused,none] [--steps 10]

The step: embedding, 2 LSTM layers, a 10,000-way softmax, SGD. `flax` runs `nnx.RNN(nnx.LSTMCell)`;
`autodiff` runs nlpdl's `Recurrent` layer (input projection hoisted out of the time loop) differentiated by
autodiff of `lax.scan`; `fused` is the same layer with its hand-written backward pass (what the models use);
`none` drops the LSTM layers (embedding straight to the softmax), the cost of everything else. The kinds run
one after the other, twice, in one process; each prints its first-step time and median ms/step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from nlpdl.nn.recurrent import Recurrent, recurrence, recurrence_reference

SHAPES = {"small": dict(hidden=200, bptt=20), "medium": dict(hidden=650, bptt=35)}
VOCAB, LAYERS, BATCH = 10_000, 2, 20


class LM(nnx.Module):
    def __init__(self, kind: str, hidden: int, rngs: nnx.Rngs):
        self.kind = kind
        self.embed = nnx.Embed(VOCAB, hidden, rngs=rngs)
        if kind == "flax":
            self.layers = nnx.List([nnx.RNN(nnx.LSTMCell(hidden, hidden, rngs=rngs), return_carry=True, rngs=False)
                                    for _ in range(LAYERS)])
        else:
            self.layers = nnx.List([Recurrent("lstm", hidden, hidden, rngs=rngs) for _ in range(LAYERS if
                                                                                           kind != "none" else 0)])
        self.out = nnx.Linear(hidden, VOCAB, rngs=rngs)

    def __call__(self, tokens_BxT, carry):
        x, new = self.embed(tokens_BxT), []
        for layer, c in zip(self.layers, carry):
            if self.kind == "flax":
                c, x = layer(x, initial_carry=c)
            else:
                c, x = layer(x, c, loop=recurrence if self.kind == "fused" else recurrence_reference)
            new.append(c)
        return self.out(x), tuple(new) if new else carry


def time_kind(kind: str, hidden: int, bptt: int, steps: int) -> tuple[float, float]:
    graphdef, params = nnx.split(LM(kind, hidden, nnx.Rngs(0)))
    tx = optax.sgd(1.0)
    zeros_BxH = jnp.zeros((BATCH, hidden))
    carry = tuple((zeros_BxH, zeros_BxH) for _ in range(LAYERS))

    @jax.jit
    def step(params, opt_state, carry, tokens_BxT, targets_BxT):
        def loss(p):
            logits, c = nnx.merge(graphdef, p)(tokens_BxT, carry)
            return optax.softmax_cross_entropy_with_integer_labels(logits, targets_BxT).mean(), c

        (value, carry), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, carry, value

    opt_state = tx.init(params)
    tokens_BxT = jax.random.randint(jax.random.PRNGKey(1), (BATCH, bptt), 0, VOCAB)
    targets_BxT = jnp.roll(tokens_BxT, -1, axis=1)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        params, opt_state, carry, value = step(params, opt_state, carry, tokens_BxT, targets_BxT)
        value.block_until_ready()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="medium")
    parser.add_argument("--kinds", default="flax,autodiff,fused")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    shape = SHAPES[args.shape]
    for _ in range(2):
        for kind in args.kinds.split(","):
            first, median = time_kind(kind, shape["hidden"], shape["bptt"], args.steps)
            print(f"{args.shape} {kind:9s} first step {first:5.2f} s, median {median * 1000:7.1f} ms/step, "
                  f"{BATCH * shape['bptt'] / median:7.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main()
