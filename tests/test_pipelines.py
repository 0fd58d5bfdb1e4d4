"""grain pipelines: padding, epochs, exact iterator resume, eval coverage, contiguous BPTT batches."""

import numpy as np

from nlpdl.data import pipelines


def _arrays(n=10, max_len=5):
    seqs = [np.arange(1, 2 + i % 4, dtype=np.int32) for i in range(n)]
    return {**pipelines.pad_token_ids(seqs, max_len), "labels": np.arange(n, dtype=np.int32)}


def test_pad_token_ids_truncates_and_pads():
    out = pipelines.pad_token_ids([np.array([5, 6, 7]), np.array([], dtype=np.int32), np.arange(1, 9)], 4, pad_id=0)
    np.testing.assert_array_equal(out["tokens"], [[5, 6, 7, 0], [0, 0, 0, 0], [1, 2, 3, 4]])
    np.testing.assert_array_equal(out["lengths"], [3, 1, 4])


def test_train_batches_cover_each_epoch_and_reshuffle():
    it = iter(pipelines.train_batches(_arrays(12), batch_size=4, seed=0))
    epochs = [np.concatenate([next(it)["labels"] for _ in range(3)]) for _ in range(2)]
    for labels in epochs:
        assert sorted(labels) == list(range(12))
    assert not np.array_equal(epochs[0], epochs[1])
    batch = next(it)
    assert batch["tokens"].shape == (4, 5) and batch["weights"].tolist() == [1, 1, 1, 1]


def _assert_resumes_exactly(ds, it, batches: int):
    """A fresh iterator of `ds` given `it`'s state yields the next `batches` batches that `it` does."""
    state = it.get_state()
    expected = [next(it)["labels"] for _ in range(batches)]
    resumed = iter(ds)
    resumed.set_state(state)
    for want in expected:
        np.testing.assert_array_equal(next(resumed)["labels"], want)


def test_train_iterator_resumes_exactly():
    ds = pipelines.train_batches(_arrays(10), batch_size=3, seed=1)
    it = iter(ds)
    for _ in range(5):
        next(it)
    _assert_resumes_exactly(ds, it, 6)


def test_fixed_batches_are_made_once_topped_up_and_visited_in_a_new_order_each_epoch():
    ds = pipelines.fixed_batches(_arrays(10), batch_size=4, seed=0)
    it = iter(ds)
    epochs = [[tuple(next(it)["labels"]) for _ in range(3)] for _ in range(4)]  # 10 rows + 2 repeats: 3 batches
    for batches in epochs:
        labels = np.concatenate(batches)
        assert set(labels) == set(range(10)) and len(labels) == 12
        assert sorted(map(sorted, batches)) == sorted(map(sorted, epochs[0]))  # the same batches every epoch
    assert len({tuple(batches) for batches in epochs}) > 1  # in a new order
    _assert_resumes_exactly(ds, it, 4)


def test_eval_batches_keep_every_row_once_with_zero_weight_padding():
    batches = list(pipelines.eval_batches(_arrays(10), batch_size=4))
    assert [b["labels"].shape[0] for b in batches] == [4, 4, 4]
    weights = np.concatenate([b["weights"] for b in batches])
    labels = np.concatenate([b["labels"] for b in batches])
    assert weights.tolist() == [1] * 10 + [0, 0]
    assert labels[:10].tolist() == list(range(10))
    assert (np.concatenate([b["lengths"] for b in batches]) >= 1).all()


def test_lm_batches_are_contiguous_streams():
    ids = np.arange(1000, dtype=np.int32)
    batches = pipelines.LMBatches(ids, batch_size=4, bptt=7)
    assert len(batches) == (999 // 4) // 7
    first, second = batches[0], batches[1]
    assert first["inputs"].shape == (4, 7) and first["resets"].all() and not second["resets"].any()
    np.testing.assert_array_equal(first["targets"], first["inputs"] + 1)  # next-token targets
    np.testing.assert_array_equal(second["inputs"][:, 0], first["inputs"][:, -1] + 1)  # each row continues
    np.testing.assert_array_equal(first["inputs"][:, 0], np.arange(4) * (999 // 4))  # rows are stream segments


def test_lm_train_batches_repeat_epochs_in_order_and_resume():
    ds = pipelines.lm_train_batches(np.arange(200, dtype=np.int32), batch_size=2, bptt=10)
    it = iter(ds)
    seen = [next(it) for _ in range(12)]  # 9 windows per epoch
    np.testing.assert_array_equal(seen[9]["inputs"], seen[0]["inputs"])
    assert seen[9]["resets"].all()
    state = it.get_state()
    want = next(it)
    again = iter(ds)
    again.set_state(state)
    np.testing.assert_array_equal(next(again)["inputs"], want["inputs"])


def test_lm_eval_batches_score_every_token_once():
    ids = np.arange(1001, dtype=np.int32)  # 1000 targets: 4 rows of 250, windows of 7 -> 36 windows, last has 5
    batches = list(pipelines.lm_eval_batches(ids, batch_size=4, bptt=7))
    assert len(batches) == 36
    weights = np.concatenate([b["weights"] for b in batches], axis=1)
    targets = np.concatenate([b["targets"] for b in batches], axis=1)
    assert weights.sum() == 1000 and sorted(targets[weights > 0].tolist()) == list(range(1, 1001))
    assert batches[-1]["weights"][:, 5:].sum() == 0
