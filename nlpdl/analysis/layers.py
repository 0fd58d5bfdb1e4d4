"""Each layer's representations of a batch of sentences, for every model family that reads text.

`layer_representations(model, batch)` returns the layers bottom to top, by name: B x L x D where the layer has a
vector per token (embeddings, each RNN layer and direction, each Transformer block), B x D where it has one per
sentence (a feed-forward net's hidden layers, the CNN's pooled features). Token positions match `batch["tokens"]`
(a Transformer classifier's [CLS] vector is left out); positions past a sentence's length are padding.
"""

from __future__ import annotations

from typing import Callable

import jax
from flax import nnx

from nlpdl.models.cnn import KimCNN
from nlpdl.models.ffn import FeedForwardClassifier
from nlpdl.models.rnn_classifier import RecurrentClassifier
from nlpdl.models.rnn_lm import RecurrentLM
from nlpdl.models.transformer_classifier import TransformerClassifier
from nlpdl.models.transformer_lm import TransformerLM

Layers = dict[str, jax.Array]


def _ffn(model: FeedForwardClassifier, batch: dict) -> Layers:
    hidden = model.hidden_outputs(batch)[1:]
    embeddings = {"embeddings": model.embed(batch["tokens"])} if model.input == "embeddings" else {}
    return {**embeddings, **{f"hidden{i + 1}": h for i, h in enumerate(hidden)}}


def _cnn(model: KimCNN, batch: dict) -> Layers:
    return {"embeddings": model.embed_words(batch["tokens"]), "features": model.features(batch)}


def _rnn_classifier(model: RecurrentClassifier, batch: dict) -> Layers:
    outputs, _ = model.layer_outputs(batch)
    layers = {"embeddings": outputs[0]}
    for i, x in enumerate(outputs[1:], 1):
        if model.bidirectional:  # forward then backward states, each at its own token's position
            layers[f"layer{i}.forward"], layers[f"layer{i}.backward"] = x[..., :model.hidden], x[..., model.hidden:]
        else:
            layers[f"layer{i}"] = x
    return layers


def _transformer_classifier(model: TransformerClassifier, batch: dict) -> Layers:
    outputs, _, _ = model.encode(batch)
    skip = 1 if model.cls is not None else 0
    return {("embeddings" if i == 0 else f"block{i}"): x[:, skip:] for i, x in enumerate(outputs)}


def _rnn_lm(model: RecurrentLM, batch: dict) -> Layers:
    tokens_BxL = batch["tokens"]
    outputs, _ = model.hidden_states(tokens_BxL, model.initial_carry(tokens_BxL.shape[0]))
    return {("embeddings" if i == 0 else f"layer{i}"): x for i, x in enumerate(outputs)}


def _transformer_lm(model: TransformerLM, batch: dict) -> Layers:
    outputs, _, _ = model.decode(batch["tokens"])
    return {("embeddings" if i == 0 else f"block{i}"): x for i, x in enumerate(outputs)}


EXTRACTORS: dict[type, Callable[[nnx.Module, dict], Layers]] = {
    FeedForwardClassifier: _ffn, KimCNN: _cnn, RecurrentClassifier: _rnn_classifier,
    TransformerClassifier: _transformer_classifier, RecurrentLM: _rnn_lm, TransformerLM: _transformer_lm}


def supports(model: nnx.Module) -> bool:
    return type(model) in EXTRACTORS


def layer_representations(model: nnx.Module, batch: dict) -> Layers:
    """The model's layers for `batch` ("tokens" B x L, "lengths" B), in evaluation mode."""
    return EXTRACTORS[type(model)](model, batch)
