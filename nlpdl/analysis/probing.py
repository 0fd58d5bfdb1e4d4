"""Layer-wise probing (`nlpdl probe RUN_DIR --task TASK`): freeze a trained model, take each layer's
representations of the task's sentences, fit a linear classifier (softmax regression on standardised features,
a fixed budget of Adam steps) per layer on the probe-train sentences and score it on the probe-test ones.

The control is the same model at the parameters its training started from: what a layer encodes by its
architecture and random weights alone. A sentence task reads a token-level layer through the mean over the
sentence's tokens.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nlpdl import config as C
from nlpdl.analysis.layers import layer_representations, supports
from nlpdl.analysis.probe_tasks import ProbeTask, get_task, subsample, task_sentences
from nlpdl.analysis.runs import OpenedRun, open_run
from nlpdl.files import atomic_write_text


@dataclass(frozen=True)
class ProbeBudget:
    train_sentences: int = 3000
    test_sentences: int = 1000
    max_examples: int = 40_000  # tokens of a token task (drawn at random), per split
    steps: int = 1000
    batch_size: int = 512
    lr: float = 1e-2
    l2: float = 1e-4
    seed: int = 0


class LayerExtractor:
    """Every layer's representations of a batch of sentences, `chunk` sentences per call of one jitted function
    (compiled once per run, whatever the parameters)."""

    def __init__(self, run: OpenedRun, chunk: int = 256):
        self.names: list[str] = []
        self.chunk = chunk

        def representations(params, batch):
            layers = layer_representations(nnx.merge(run.graphdef, params), batch)
            self.names[:] = layers  # a dict returned from jit comes back with sorted keys: keep the model's order
            return list(layers.values())

        self._forward = jax.jit(representations)

    def __call__(self, params, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n, chunk = len(batch["lengths"]), self.chunk
        padded = {k: np.concatenate([v, np.repeat(v[:1], -n % chunk, axis=0)]) for k, v in batch.items()}
        parts = [jax.device_get(self._forward(params, {k: v[i:i + chunk] for k, v in padded.items()}))
                 for i in range(0, n + (-n % chunk), chunk)]
        return {name: np.concatenate([p[i] for p in parts])[:n] for i, name in enumerate(self.names)}


def as_examples(layers: dict[str, np.ndarray], batch: dict[str, np.ndarray], level: str,
                rows: np.ndarray | None) -> dict[str, np.ndarray]:
    """One feature row per example: the chosen tokens (`rows` of the flattened valid positions) of a token task,
    every sentence of a sentence task (token-level layers averaged over the sentence)."""
    lengths_N = batch["lengths"]
    out = {}
    for name, x in layers.items():
        if level == "token":
            if x.ndim != 3:
                continue  # one vector per sentence: it has no token to label
            mask_NxL = np.arange(x.shape[1])[None, :] < lengths_N[:, None]
            out[name] = x[mask_NxL][rows]
        elif x.ndim == 3:
            mask = (np.arange(x.shape[1])[None, :] < lengths_N[:, None])[..., None]
            out[name] = (x * mask).sum(1) / np.maximum(lengths_N, 1)[:, None]
        else:
            out[name] = x
    return out


@functools.partial(jax.jit, static_argnames=("classes", "steps", "batch_size"))
def _fit(x_NxD, y_N, key, lr, l2, *, classes: int, steps: int, batch_size: int):
    mean_1xD, std_1xD = x_NxD.mean(0, keepdims=True), x_NxD.std(0, keepdims=True) + 1e-6
    params = {"w": jnp.zeros((x_NxD.shape[1], classes)), "b": jnp.zeros(classes)}
    tx = optax.adam(lr)

    def loss(p, x, y):
        logits = ((x - mean_1xD) / std_1xD) @ p["w"] + p["b"][None, :]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean() + l2 * jnp.sum(p["w"] ** 2)

    def step(carry, i):
        p, opt_state = carry
        idx = jax.random.randint(jax.random.fold_in(key, i), (batch_size,), 0, x_NxD.shape[0])
        grads = jax.grad(loss)(p, x_NxD[idx], y_N[idx])
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))
    return params, mean_1xD, std_1xD


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classes: int,
                   budget: ProbeBudget = ProbeBudget()) -> float:
    """Test accuracy of a softmax-regression probe fitted with `budget.steps` Adam steps."""
    p, mean, std = _fit(jnp.asarray(x_train, jnp.float32), jnp.asarray(y_train, jnp.int32),
                        jax.random.PRNGKey(budget.seed), budget.lr, budget.l2, classes=classes, steps=budget.steps,
                        batch_size=budget.batch_size)
    logits = ((jnp.asarray(x_test, jnp.float32) - mean) / std) @ p["w"] + p["b"][None, :]
    predicted = np.asarray(jnp.argmax(logits, -1))
    return float(np.mean(predicted == y_test))


def probe(run: OpenedRun, task: ProbeTask, data_dir: Path, budget: ProbeBudget = ProbeBudget()) -> dict:
    """Probe accuracy of every layer of the trained model and of its untrained control."""
    sentences, classes = task_sentences(task, run, data_dir)
    sentences = subsample(sentences, {"train": budget.train_sentences, "test": budget.test_sentences}, budget.seed)
    batches = {split: run.batch(texts) for split, (texts, _) in sentences.items()}
    if task.label is not None:
        labels = dict(zip(("train", "test"), task.label(batches["train"], batches["test"])))
    else:
        labels = {split: y for split, (_, y) in sentences.items()}
    rows = {}
    if task.level == "token":
        rng = np.random.default_rng(budget.seed)
        for split, y in labels.items():
            y = y[y >= 0]  # the valid positions, in the order as_examples flattens them
            rows[split] = np.sort(rng.permutation(len(y))[:budget.max_examples])
            labels[split] = y[rows[split]]
    examples, extract = {}, LayerExtractor(run)
    for which, params in (("trained", run.params), ("control", run.initial_params())):
        for split, batch in batches.items():
            layers = extract(params, batch)
            examples[which, split] = as_examples(layers, batch, task.level, rows.get(split))
    names = list(examples["trained", "train"])
    if not names:
        raise C.ConfigError(f"{run.cfg.name} has no layer with a vector per token: probe it on a sentence task.")
    counts = np.bincount(labels["train"], minlength=classes)
    table = []
    for name in names:
        row = {"layer": name, "dim": int(examples["trained", "train"][name].shape[1])}
        for which in ("trained", "control"):
            row[which] = probe_accuracy(examples[which, "train"][name], labels["train"],
                                        examples[which, "test"][name], labels["test"], classes, budget)
        table.append(row)
    return {"run": str(run.path), "experiment": run.cfg.name, "task": task.name, "level": task.level,
            "description": task.description or task.name, "classes": classes,
            "majority": float(np.mean(labels["test"] == np.argmax(counts))),
            "examples": {split: int(len(y)) for split, y in labels.items()},
            "budget": {"steps": budget.steps, "batch_size": budget.batch_size, "lr": budget.lr, "l2": budget.l2},
            "layers": table}


def markdown(result: dict) -> str:
    lines = [f"# Probe `{result['task']}` on {result['experiment']} ({result['run']})", "",
             f"Predicts {result['description']} ({result['level']} level, {result['classes']} classes) with a linear "
             f"probe per layer: {result['examples']['train']} train / {result['examples']['test']} test examples, "
             f"{result['budget']['steps']} Adam steps. Majority class: {result['majority']:.4f}. Control: the same "
             "model at its initial (untrained) parameters.", "",
             "| layer | dim | trained | control |", "|---|---|---|---|"]
    lines += [f"| {r['layer']} | {r['dim']} | {r['trained']:.4f} | {r['control']:.4f} |" for r in result["layers"]]
    return "\n".join(lines) + "\n"


def plot(result: dict, out: Path) -> Path:
    from nlpdl.report.plots import plt, save

    names = [r["layer"] for r in result["layers"]]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 3.6))
    for which, style in (("trained", "o-"), ("control", "s--")):
        ax.plot(range(len(names)), [r[which] for r in result["layers"]], style, label=which)
    ax.axhline(result["majority"], color="grey", linestyle=":", label="majority class")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("probe test accuracy")
    ax.set_title(f"{result['task']} probe, {result['experiment']}")
    ax.legend()
    fig.tight_layout()
    return save(fig, out)


def probe_run(workdir: Path, task_name: str, data_dir: Path, out_dir: Path | None = None,
              budget: ProbeBudget = ProbeBudget()) -> list[Path]:
    """Probes a run dir; writes TASK.json, TASK.md and TASK.png into `out_dir` (default RUN_DIR/probes)."""
    task = get_task(task_name)
    run = open_run(workdir, data_dir)
    if not supports(run.model()):
        raise C.ConfigError(f"{run.cfg.name} is a {run.cfg.model.kind} model, which probing does not read yet.")
    result = probe(run, task, data_dir, budget)
    out_dir = out_dir or workdir / "probes"
    atomic_write_text(out_dir / f"{task.name}.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out_dir / f"{task.name}.md", markdown(result))
    return [out_dir / f"{task.name}.md", out_dir / f"{task.name}.json", plot(result, out_dir / f"{task.name}.png")]
