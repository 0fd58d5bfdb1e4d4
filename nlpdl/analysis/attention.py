"""Attention maps (`nlpdl attention RUN_DIR "sentence"`): each head's self-attention weights of a trained
Transformer (encoder classifier or causal LM) over one sentence, as a grid of heatmaps, layers down and heads
across, the sentence's tokens on both axes (queries down, keys across), each head coloured from 0 to its largest
weight."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlpdl import config as C
from nlpdl.analysis.runs import OpenedRun, open_run
from nlpdl.models.transformer_classifier import TransformerClassifier
from nlpdl.models.transformer_lm import TransformerLM


def attention_weights(run: OpenedRun, sentence: str) -> tuple[list[str], list[np.ndarray]]:
    """The sentence's tokens (with [CLS] first where the classifier has one) and, per layer, the weights
    H x T x T (row: query, column: key) of the best parameters."""
    batch = run.batch([sentence])
    n = int(batch["lengths"][0])
    tokens = [run.token_text(int(i)) for i in batch["tokens"][0, :n]]
    model = run.model()
    if isinstance(model, TransformerClassifier):
        _, attention, _ = model.encode(batch)
        if model.cls is not None:
            tokens, n = ["[CLS]", *tokens], n + 1
    elif isinstance(model, TransformerLM):
        _, attention, _ = model.decode(batch["tokens"])
    else:
        raise C.ConfigError(f"{run.cfg.name} is a {run.cfg.model.kind} model: attention maps need a Transformer "
                            "(transformer classifier or transformer_lm) run.")
    return tokens, [np.asarray(w[0, :, :n, :n]) for w in attention]


def plot(tokens: list[str], weights: list[np.ndarray], out: Path, title: str) -> Path:
    from nlpdl.report.plots import plt, save

    layers, heads = len(weights), weights[0].shape[0]
    cell = max(2.2, 0.22 * len(tokens) + 1.0)
    fig, axes = plt.subplots(layers, heads, figsize=(cell * heads, cell * layers + 0.6), squeeze=False)
    for layer, weights_HxTxT in enumerate(weights):
        for head in range(heads):
            ax = axes[layer, head]
            # each head on its own scale (0 to its largest weight): near-uniform heads still show their pattern
            ax.imshow(weights_HxTxT[head], vmin=0.0, vmax=float(weights_HxTxT[head].max()), cmap="viridis")
            ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
            ax.set_title(f"layer {layer + 1}, head {head + 1} (max {weights_HxTxT[head].max():.2f})", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, out)


def attention_run(workdir: Path, sentence: str, data_dir: Path, out: Path) -> Path:
    run = open_run(workdir, data_dir)
    tokens, weights = attention_weights(run, sentence)
    return plot(tokens, weights, out, f"{run.cfg.name}: {sentence}")
