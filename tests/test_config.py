"""The registry, locked overrides and config serialisation."""

import dataclasses

import pytest

from nlpdl import config as C


def test_registry_lists_foundation_experiments_with_variants():
    experiments = C.load_experiments()
    assert {"xor", "mr_ffn"} <= set(experiments)
    for exp in experiments.values():
        assert "" in exp.variants and "tiny" in exp.variants
        real, tiny = exp.make(""), exp.make("tiny")
        C.validate(real)
        C.validate(tiny)
        assert real.name == tiny.name == exp.name


def test_unknown_experiment_names_close_match():
    with pytest.raises(C.ConfigError, match="mr_ffn"):
        C.get("mr_fn")


def test_unknown_variant_lists_variants():
    with pytest.raises(C.ConfigError, match="mr_ffn:tiny"):
        C.get("mr_ffn:huge")


def test_override_sets_typed_values():
    cfg = C.apply_overrides(C.get("mr_ffn"), ["model.hidden=3", "optim.lr=0.5", "optim.name=sgd",
                                              "data.full_batch=true", "model.activation=tanh"])
    assert cfg.model.hidden == 3 and isinstance(cfg.model.hidden, int)
    assert cfg.optim.lr == 0.5 and cfg.optim.name == "sgd" and cfg.data.full_batch is True
    assert cfg.model.activation == "tanh"
    assert C.get("mr_ffn").model.hidden != 3  # the registered config is untouched


def test_unknown_key_names_the_close_match():
    with pytest.raises(C.ConfigError, match=r"unknown config key 'model.hiden'.*model\.hidden"):
        C.apply_overrides(C.get("mr_ffn"), ["model.hiden=3"])


@pytest.mark.parametrize("override,message", [
    ("model.hidden=3.5", "not a valid int"),
    ("optim.lr=fast", "not a valid float"),
    ("model.activation=rleu", "did you mean 'relu'"),
    ("optim.lr=-1", "must be > 0"),
    ("data.max_len=0", "must be >= 1"),
    ("data.batch_size=0", "data.batch_size=0 must be >= 1"),
    ("data.full_batch=maybe", "not a valid bool"),
    ("train.steps=100", "exactly one of train.epochs and train.steps"),
    ("model.kind=cnn", "fixed by the experiment"),
    ("model.hidden", "key.path=value"),
    ("data.fold=10", "must be < data.num_folds"),
])
def test_bad_overrides_fail_with_a_clear_message(override, message):
    with pytest.raises(C.ConfigError, match=message):
        C.apply_overrides(C.get("mr_ffn"), [override])


def test_to_dict_from_dict_round_trip():
    cfg = C.apply_overrides(C.get("mr_ffn"), ["model.hidden=7"])
    again = C.from_dict(C.ExperimentConfig, C.to_dict(cfg))
    assert again == cfg and type(again.model) is type(cfg.model)


def test_configs_are_frozen():
    cfg = C.get("xor")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.hidden = 3  # type: ignore[misc]
