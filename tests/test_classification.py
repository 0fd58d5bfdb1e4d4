"""The classification task: MR splits, vocabulary from training data only, weighted loss and accuracy."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from nlpdl import config as C
from nlpdl.tasks import classification


def test_mr_splits_are_disjoint_and_sized_by_fold(data_dir):
    cfg = C.get("mr_ffn:tiny")
    data = classification.load_data(cfg, data_dir)
    valid_rows = sum(int(b["weights"].sum()) for b in data.evals["valid"]())
    test_rows = sum(int(b["weights"].sum()) for b in data.evals["test"]())
    assert test_rows == 1067  # fold 0 of 10 over 10,662 sentences (array_split: first folds get one more)
    train_rows = 10662 - test_rows - valid_rows
    assert data.steps_per_epoch == train_rows // data.batch_size
    assert valid_rows == round((10662 - test_rows) * cfg.data.valid_fraction)
    assert set(data.evals) == {"valid", "test"}
    vocab = data.artifacts["vocab.json"]
    assert data.spec.vocab_size == len(vocab) and vocab.pad_id == 0
    # Words seen only outside the training split are <unk>: the test split has some.
    test_ids = np.concatenate([b["tokens"][b["weights"] > 0].ravel() for b in data.evals["test"]()])
    assert (test_ids == vocab.unk_id).any()


def test_other_folds_give_other_test_sets(data_dir):
    cfg0 = C.get("mr_ffn:tiny")
    cfg3 = C.apply_overrides(cfg0, ["data.fold=3"])
    first = next(classification.load_data(cfg0, data_dir).evals["test"]())["tokens"]
    other = next(classification.load_data(cfg3, data_dir).evals["test"]())["tokens"]
    assert not np.array_equal(first, other)


class _Fixed(nnx.Module):
    def __init__(self, outputs):
        self.outputs = outputs

    def __call__(self, batch, *, train=False, rngs=None):
        return self.outputs


def test_loss_and_accuracy_ignore_zero_weight_rows():
    cfg = C.get("xor")
    loss_fn = classification.make_loss_fn(cfg)
    outputs = jnp.array([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    batch = {"labels": jnp.array([0, 0, 1]), "weights": jnp.array([1.0, 1.0, 0.0])}
    sums, carry = loss_fn(_Fixed(outputs), batch, None, train=False)
    assert carry is None
    per_example = -jnp.log(jax_softmax(outputs)[jnp.arange(3), batch["labels"]])
    assert float(sums["count"]) == 2 and float(sums["correct"]) == 1
    np.testing.assert_allclose(float(sums["loss_sum"]), float(per_example[:2].sum()), rtol=1e-6)
    assert classification.summarize({k: float(v) for k, v in sums.items()})["accuracy"] == 0.5


def jax_softmax(x):
    e = jnp.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _valid_sentences(cfg, data_dir):
    return classification.read_texts(cfg, data_dir)[0]["valid"][0]


def test_split_seed_sets_the_dev_split_apart_from_the_batch_order(data_dir):
    base = C.get("trec_cnn:tiny")
    fixed_split = C.apply_overrides(base, ["data.split_seed=0", "data.seed=5"])
    assert _valid_sentences(fixed_split, data_dir) == _valid_sentences(base, data_dir)
    assert _valid_sentences(C.apply_overrides(base, ["data.seed=5"]), data_dir) != _valid_sentences(base, data_dir)
    assert (_valid_sentences(C.apply_overrides(base, ["data.split_seed=5"]), data_dir)
            == _valid_sentences(C.apply_overrides(base, ["data.seed=5"]), data_dir))
    first = [next(iter(classification.load_data(cfg, data_dir).train))["tokens"] for cfg in (base, fixed_split)]
    assert not np.array_equal(*first)  # same split, another batch order


def test_split_seed_draws_the_cv_folds(data_dir):
    base = C.get("mr_ffn:tiny")
    test_sets = {seeds: next(classification.load_data(C.apply_overrides(base, list(seeds)), data_dir)
                             .evals["test"]())["tokens"]
                 for seeds in [(), ("data.seed=4",), ("data.split_seed=0", "data.seed=4"), ("data.split_seed=4",)]}
    assert np.array_equal(test_sets[()], test_sets[("data.split_seed=0", "data.seed=4")])
    assert np.array_equal(test_sets[("data.seed=4",)], test_sets[("data.split_seed=4",)])
    assert not np.array_equal(test_sets[()], test_sets[("data.seed=4",)])
