"""Typed, locked experiment configs: the pieces, the registry of named experiments, overrides.

An experiment is a function `variant -> ExperimentConfig` registered under a name. `get("mr_ffn:tiny")`
resolves it; `apply_overrides(cfg, ["model.hidden=3"])` returns a new config, refusing unknown keys
(naming the close matches) and values that do not parse as the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import pkgutil
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal


class ConfigError(Exception):
    """A user's mistake in naming an experiment or overriding its config."""


def _positive(default, **kw):
    return field(default=default, metadata={"min": 1, **kw})


def _nonneg(default, **kw):
    return field(default=default, metadata={"min": 0, **kw})


@dataclass(frozen=True)
class TaskConfig:
    name: Literal["classification", "language_modeling"] = "classification"
    loss: Literal["cross_entropy", "binary_cross_entropy", "mse"] = "cross_entropy"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mr"
    min_count: int = _positive(1)
    max_vocab: int = _nonneg(0)  # 0: no limit
    max_len: int = _positive(64)
    batch_size: int = _positive(50)
    full_batch: bool = False  # the whole training set in every batch (gradient descent); ignores batch_size
    eval_batch_size: int = _positive(512)
    num_folds: int = _positive(10)
    fold: int = _nonneg(0)
    valid_fraction: float = field(default=0.1, metadata={"min": 0.0, "max": 0.5})
    seed: int = 0  # shuffle order, and the splits unless split_seed is set; independent of the model seed
    # CV fold assignment and the held-out dev rows (datasets without a standard dev set); None: data.seed.
    # Sets apart which split a score is measured on from which batch order trained it.
    split_seed: int | None = None
    phrases: bool = True  # SST: also train on every labelled phrase of the training trees (Kim 2014)
    # sentence datasets: "none" splits the files' text on whitespace; "kim" first cleans it as Kim's (2014) code did
    # (nlpdl/data/tokenizers.py: kim_clean)
    clean: Literal["none", "kim"] = "none"
    # sentence datasets: the words that get an id (and so a vector of their own). "train": the train split's
    # (min_count, max_vocab); "all": those, then every other word of the valid and test sentences, as in Kim's
    # (2014) code, where words never seen in training keep distinct untrained random vectors (labels are not read)
    vocab_from: Literal["train", "all"] = "train"
    # sentence datasets: how training batches are drawn. "reshuffled": every epoch a new permutation of the rows;
    # "fixed": Kim's (2014) code, batches made once (the rows topped up to whole batches with random repeats) and
    # visited in a new order every epoch
    batches: Literal["reshuffled", "fixed"] = "reshuffled"
    # sentence datasets: how far each batch's tokens are padded. "max_len": every batch to data.max_len (one
    # compiled shape); "longest": to the batch's longest sentence rounded up to a multiple of 8 (at most
    # max_len / 8 shapes, each compiled once; fewer positions to compute when most sentences are short). The
    # models mask padding, so a batch's outputs agree up to the order of floating-point sums; dropout over token
    # positions (recurrent, Transformer) draws its masks for the cut shape, so those runs also draw other masks.
    padding: Literal["max_len", "longest"] = "max_len"
    bptt: int = _positive(35)  # language models: tokens per truncated-BPTT window
    tokenizer: Literal["words", "chars", "sentencepiece"] = "words"  # language models: what a token is
    spm_vocab_size: int = _positive(1000)  # sentencepiece, trained on the train split
    spm_model_type: Literal["bpe", "unigram"] = "bpe"


@dataclass(frozen=True)
class ModelConfig:
    """Base of the per-model configs; `kind` picks the registered model class."""

    kind: str = ""


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["sgd", "momentum", "adagrad", "adadelta", "adam", "adamw"] = "adam"
    lr: float = field(default=1e-3, metadata={"min_exclusive": 0.0})
    momentum: float = field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    b1: float = field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    b2: float = field(default=0.999, metadata={"min": 0.0, "max": 1.0})
    rho: float = field(default=0.95, metadata={"min": 0.0, "max": 1.0})  # adadelta
    eps: float = field(default=1e-8, metadata={"min": 0.0})
    weight_decay: float = _nonneg(0.0)
    clip_norm: float = _nonneg(0.0)  # 0: no clipping
    schedule: Literal["constant", "step", "cosine"] = "constant"
    warmup_steps: int = _nonneg(0)
    decay_rate: float = field(default=0.5, metadata={"min_exclusive": 0.0, "max": 1.0})  # step
    decay_every: int = _nonneg(0)  # step: lr is multiplied by decay_rate every this many steps (or epochs) ...
    decay_start: int = _nonneg(0)  # ... the first time at this step (or epoch)
    schedule_unit: Literal["steps", "epochs"] = "steps"  # what warmup_steps, decay_every and decay_start count
    min_lr_ratio: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})  # cosine floor
    max_norm: float = _nonneg(0.0)  # > 0: after each update, every column of the output layer (`out/kernel`) with
    # a larger L2 norm is scaled back to it (Kim 2014's constraint); 0: none


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _nonneg(0)  # exactly one of epochs / steps is set
    steps: int = _nonneg(0)
    eval_every: int = _nonneg(0)  # 0: once per epoch
    eval_batches: int = _nonneg(0)  # evaluate on the first N batches of each split (smoke runs); 0: all of it
    log_every: int = _positive(50)
    checkpoint_every: int = _nonneg(0)  # 0: at every evaluation
    max_to_keep: int = _positive(3)
    best_metric: str = "accuracy"  # scored on the valid split
    # also score the test split at every evaluation (metrics.jsonl split "test"), never to choose parameters: test
    # curves, and the test score at each epoch that Kim's code recorded
    eval_test: bool = False
    best_mode: Literal["max", "min"] = "max"
    # a valid score equal to the best keeps the earlier parameters ("first") or takes the later ones ("last": Kim's
    # code, which keeps the test score of the last epoch whose dev accuracy is >= the best)
    best_ties: Literal["first", "last"] = "first"
    seed: int = 0
    num_devices: int = _nonneg(0)  # 0: all devices
    model_parallel: int = _positive(1)  # size of the mesh's `model` axis (large weights split over it)
    grad_accum: int = _positive(1)  # micro-batches per batch: the same update as the whole batch at once
    compute_dtype: Literal["float32", "bfloat16"] = "float32"  # parameters and optimizer state stay float32
    log_grad_norms: bool = False  # log each layer's gradient norm too (metrics.jsonl "grad_norm/LAYER")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    description: str
    task: TaskConfig
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    train: TrainConfig

    FIXED: ClassVar[tuple[str, ...]] = ("name", "description", "task.name", "model.kind")


# ---------------------------------------------------------------- model config classes by kind

MODEL_CONFIGS: dict[str, type[ModelConfig]] = {}


def register_model_config(cls: type[ModelConfig]) -> type[ModelConfig]:
    kind = cls.__dataclass_fields__["kind"].default
    MODEL_CONFIGS[kind] = cls
    return cls


# ---------------------------------------------------------------- the experiment registry


@dataclass(frozen=True)
class Sweep:
    """An ablation as data: the product of `grid`, crossed with the `zip` axes taken in lockstep, x `pooled`
    x seeds. Results are averaged over the `pooled` axes as over seeds (e.g. the folds of cross-validation)."""

    grid: dict[str, tuple[str, ...]] = field(default_factory=dict)
    zip: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pooled: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seeds: int = 1
    overrides: tuple[str, ...] = ()  # applied to every point
    # the config keys each seed index sets: ("train.seed", "data.seed") also draws the batch order and the
    # splits per seed, so the spread covers them too
    seed_keys: tuple[str, ...] = ("train.seed",)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    make: Callable[[str], ExperimentConfig]
    variants: tuple[str, ...]
    sweeps: dict[str, Sweep]


_EXPERIMENTS: dict[str, Experiment] = {}


def register(name: str, description: str, variants: tuple[str, ...] = ("tiny",),
             sweeps: dict[str, Sweep] | None = None):
    """Decorator: `make(variant)` builds the config; variant "" is the real experiment. `sweeps` are the
    ablations declared beside it, run with `nlpdl sweep NAME --sweep SWEEP`."""

    def wrap(make: Callable[[str], ExperimentConfig]):
        if name in _EXPERIMENTS and _EXPERIMENTS[name].make is not make:
            raise ValueError(f"experiment {name!r} registered twice")
        _EXPERIMENTS[name] = Experiment(name, description, make, ("",) + tuple(variants), dict(sweeps or {}))
        return make

    return wrap


def load_experiments() -> dict[str, Experiment]:
    """Imports every module of the `experiments` package, which registers its experiments."""
    package = importlib.import_module("experiments")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"experiments.{info.name}")
    return dict(sorted(_EXPERIMENTS.items()))


def experiment(spec: str) -> Experiment:
    """The registered experiment of "name" or "name:variant"."""
    experiments = load_experiments()
    name = spec.partition(":")[0]
    if name not in experiments:
        close = difflib.get_close_matches(name, experiments, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown experiment {name!r}.{hint} Run `nlpdl list` to see them all.")
    return experiments[name]


def get(spec: str) -> ExperimentConfig:
    """Resolves "name" or "name:variant" to its config."""
    exp = experiment(spec)
    name, _, variant = spec.partition(":")
    if variant not in exp.variants:
        shown = ", ".join(f"{name}:{v}" if v else name for v in exp.variants)
        raise ConfigError(f"experiment {name!r} has no variant {variant!r}; choose one of: {shown}.")
    cfg = exp.make(variant)
    validate(cfg)
    return cfg


# ---------------------------------------------------------------- flattening, overrides, validation


def to_dict(cfg: Any) -> Any:
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def from_dict(cls: type, data: dict) -> Any:
    """Inverse of `to_dict`; the model section is rebuilt from its registered `kind`."""
    if cls is ModelConfig or (isinstance(cls, type) and issubclass(cls, ModelConfig)):
        kind = data.get("kind", "")
        if kind not in MODEL_CONFIGS:
            importlib.import_module("nlpdl.models")
        if kind not in MODEL_CONFIGS:
            raise ConfigError(f"unknown model kind {kind!r}; known: {', '.join(sorted(MODEL_CONFIGS))}.")
        cls = MODEL_CONFIGS[kind]
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            value = from_dict(kind, value)
        elif typing.get_origin(kind) is tuple:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, key + "."))
        else:
            out[key] = value
    return out


def _parse(text: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            close = difflib.get_close_matches(text, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{key}={text!r} is not one of {', '.join(choices)}{hint}.")
        return text
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        return _parse(text, args[0], key)
    if origin is tuple:
        (item, *_) = typing.get_args(kind)
        return tuple(_parse(t.strip(), item, key) for t in text.split(",") if t.strip())
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
    except ValueError:
        pass
    else:
        raise ConfigError(f"{key} has unsupported type {kind}.")
    raise ConfigError(f"{key}={text!r} is not a valid {kind.__name__}.")


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Applies "a.b=value" overrides; every key must exist and every value parse as its type."""
    known = flatten(cfg)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key.path=value.")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown config key {key!r}.{hint} " + (f"Run `nlpdl show {cfg.name}` to see every key."
                                                          if isinstance(cfg, ExperimentConfig) else
                                                          f"Keys: {', '.join(known)}."))
        if key in ExperimentConfig.FIXED:
            raise ConfigError(f"{key} is fixed by the experiment; register a new experiment to change it.")
        cfg = _replace_path(cfg, key.split("."), text, key)
    validate(cfg)
    return cfg


def _replace_path(obj: Any, path: list[str], text: str, key: str) -> Any:
    name = path[0]
    if len(path) > 1:
        return dataclasses.replace(obj, **{name: _replace_path(getattr(obj, name), path[1:], text, key)})
    kind = typing.get_type_hints(type(obj))[name]
    return dataclasses.replace(obj, **{name: _parse(text, kind, key)})


def validate(cfg: Any, prefix: str = "") -> None:
    """Checks types, Literal choices and declared ranges of every field."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = prefix + f.name
        kind = hints[f.name]
        if dataclasses.is_dataclass(value):
            validate(value, key + ".")
            continue
        if typing.get_origin(kind) is Literal and value not in typing.get_args(kind):
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(typing.get_args(kind))}.")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{key}={value!r} is not a {kind.__name__}.")
        if kind is int and not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} is not an int.")
        meta = f.metadata
        if "min" in meta and value < meta["min"]:
            raise ConfigError(f"{key}={value} must be >= {meta['min']}.")
        if "min_exclusive" in meta and value <= meta["min_exclusive"]:
            raise ConfigError(f"{key}={value} must be > {meta['min_exclusive']}.")
        if "max" in meta and value > meta["max"]:
            raise ConfigError(f"{key}={value} must be <= {meta['max']}.")
    if isinstance(cfg, ExperimentConfig):
        if (cfg.train.epochs > 0) == (cfg.train.steps > 0):
            raise ConfigError("set exactly one of train.epochs and train.steps to a positive number.")
        if cfg.data.fold >= cfg.data.num_folds:
            raise ConfigError(f"data.fold={cfg.data.fold} must be < data.num_folds={cfg.data.num_folds}.")


def dumps(cfg: ExperimentConfig) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)
