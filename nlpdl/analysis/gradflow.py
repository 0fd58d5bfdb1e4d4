"""Gradient flow (`nlpdl gradflow RUN_DIR ...`): how large the gradient is at each layer, and how it shrinks with
distance through time in a recurrent language model, for the trained parameters and for the ones training
started from.

- Every model: the norm of the loss gradient of each layer's parameters, averaged over validation batches (the
  same per-layer grouping `train.log_grad_norms=true` logs during training).
- A recurrent LM: ||dL/dh_t||, the gradient of the last position's next-token loss with respect to each layer's
  hidden state t steps before it. It is measured exactly by adding a zero to every h_t while the model reads
  the window one token at a time, and differentiating with respect to those zeros.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nlpdl import config as C
from nlpdl.analysis.runs import OpenedRun, open_run
from nlpdl.files import atomic_write_text
from nlpdl.models.rnn_lm import RecurrentLM
from nlpdl.nn.recurrent import hidden_of
from nlpdl.train.step import layer_grad_norms


def _add_to_hidden(carry: Any, delta_BxH: jax.Array) -> Any:
    """An LSTM carries (c, h); the other cells carry h."""
    return (carry[0], carry[1] + delta_BxH) if isinstance(carry, tuple) else carry + delta_BxH


@functools.partial(jax.jit, static_argnames=("graphdef",))
def hidden_state_gradients(params, inputs_BxT: jax.Array, targets_B: jax.Array, *, graphdef) -> jax.Array:
    """Layers x T: the mean over rows of ||dL/dh||, where L is the loss of predicting `targets_B` after the
    window; column d is the hidden state d steps before the last (d = 0: the state the prediction reads)."""
    model = nnx.merge(graphdef, params)
    B, T = inputs_BxT.shape
    carry = model.initial_carry(B)
    zeros_TxLxBxH = jnp.zeros((T, len(carry), B, model.hidden), jnp.float32)

    def loss(deltas_TxLxBxH):
        def step(state, xs):
            # the parameters ride in the scan's state: an NNX module must be built from this trace's values
            params, carry = state
            tokens_B, deltas_LxBxH = xs
            _, carry = nnx.merge(graphdef, params)(tokens_B[:, None], carry)
            return (params, tuple(_add_to_hidden(c, d) for c, d in zip(carry, deltas_LxBxH))), None

        (_, last), _ = jax.lax.scan(step, (params, carry), (inputs_BxT.T, deltas_TxLxBxH))
        logits_BxV = nnx.merge(graphdef, params).logits(hidden_of(last[-1])[:, None])[:, 0]
        # summed over rows, so each row's gradient is its own loss's
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxV, targets_B).sum()

    grads_TxLxBxH = jax.grad(loss)(zeros_TxLxBxH)
    return jnp.linalg.norm(grads_TxLxBxH, axis=-1).mean(-1).T[:, ::-1]


def lm_windows(run: OpenedRun, length: int, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """`windows` consecutive windows of `length` tokens from each row of the valid split's stream, as
    (windows * rows) x length inputs and the token after each window."""
    inputs, targets, have = [], [], 0
    for batch in run.trainer.data.evals["valid"]():
        inputs.append(batch["inputs"]), targets.append(batch["targets"])
        have += batch["inputs"].shape[1]
        if have >= length * windows:
            break
    if have < length * windows:
        raise C.ConfigError(f"the valid split has {have} tokens per row: ask for fewer than {length} x {windows}.")
    inputs_BxN, targets_BxN = np.concatenate(inputs, 1), np.concatenate(targets, 1)
    starts = range(0, length * windows, length)
    return (np.concatenate([inputs_BxN[:, s:s + length] for s in starts]),
            np.concatenate([targets_BxN[:, s + length - 1] for s in starts]))


def parameter_gradient_norms(run: OpenedRun, params, batches: int) -> dict[str, float]:
    """Each layer's gradient norm of the mean loss over a validation batch, averaged over `batches` of them."""
    loss_fn = run.trainer.task.make_loss_fn(run.cfg)
    carry = run.trainer.eval_carry

    @jax.jit
    def norms(params, batch):
        def mean_loss(p):
            sums, _ = loss_fn(nnx.merge(run.graphdef, p), batch, carry, train=False)
            return sums["loss_sum"] / jnp.maximum(sums["count"], 1.0)

        return layer_grad_norms(jax.grad(mean_loss)(params))

    totals, seen = None, 0
    for batch in run.trainer.data.evals["valid"]():
        out = jax.device_get(norms(params, batch))
        totals = out if totals is None else {k: totals[k] + out[k] for k in out}
        seen += 1
        if seen == batches:
            break
    return {k.removeprefix("grad_norm/"): float(v) / seen for k, v in totals.items()}


def gradflow(run: OpenedRun, *, length: int = 100, windows: int = 5, batches: int = 5) -> dict:
    result: dict[str, Any] = {"run": str(run.path), "experiment": run.cfg.name, "kind": run.cfg.model.kind,
                              "cell": getattr(run.cfg.model, "cell", None), "layers": {}, "hidden": {}}
    recurrent = isinstance(run.model(), RecurrentLM)
    if recurrent:
        inputs, targets = lm_windows(run, length, windows)
    for which, params in (("trained", run.params), ("init", run.initial_params())):
        result["layers"][which] = parameter_gradient_norms(run, params, batches)
        if recurrent:
            grads = hidden_state_gradients(params, jnp.asarray(inputs), jnp.asarray(targets), graphdef=run.graphdef)
            result["hidden"][which] = np.asarray(grads).tolist()
    return result


def decay(curve: list[float], distance: int) -> float:
    """How much of the gradient at distance 0 is left `distance` steps back."""
    return curve[distance] / curve[0]


def plot(results: list[dict], out: Path) -> Path:
    from nlpdl.report.plots import colors, plt, save

    recurrent = [r for r in results if r["hidden"]]
    fig, axes = plt.subplots(1, 2 if recurrent else 1, figsize=(12 if recurrent else 6.5, 4.2), squeeze=False)
    styles = {"trained": "-", "init": "--"}
    if recurrent:
        ax = axes[0, 0]
        for color, r in zip(colors(len(results)), results):
            for which, curve in r["hidden"].items():
                top = curve[-1]
                ax.plot(range(len(top)), top, styles[which], color=color,
                        label=f"{Path(r['run']).name} ({which})")
        ax.set_yscale("log")
        ax.set_xlabel("distance t from the loss (time steps)")
        ax.set_ylabel("||dL/dh|| of the top layer")
        ax.set_title("gradient through time")
        ax.legend(fontsize=7)
    ax = axes[0, -1]
    widest = max(results, key=lambda r: len(r["layers"]["trained"]))
    for color, r in zip(colors(len(results)), results):
        for which, norms in r["layers"].items():
            ax.plot(range(len(norms)), list(norms.values()), styles[which] + "o", color=color, markersize=3,
                    label=f"{Path(r['run']).name} ({which})")
    names = list(widest["layers"]["trained"])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("||dL/dW|| of the layer")
    ax.set_title("gradient by layer, input to output")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out)


def gradflow_runs(workdirs: list[Path], data_dir: Path, out: Path, *, length: int = 100, windows: int = 5,
                  batches: int = 5) -> list[Path]:
    """Measures each run; writes OUT (PNG) and OUT with .json beside it."""
    results = [gradflow(open_run(w, data_dir), length=length, windows=windows, batches=batches) for w in workdirs]
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    return [plot(results, out), out.with_suffix(".json")]
