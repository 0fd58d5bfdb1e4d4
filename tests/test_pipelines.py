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


def _ragged_arrays(n=24, max_len=16):
    lengths = [1 + (7 * i) % 13 for i in range(n)]  # 1..13 words
    seqs = [np.arange(1, 1 + k, dtype=np.int32) for k in lengths]
    return {**pipelines.pad_token_ids(seqs, max_len), "labels": np.arange(n, dtype=np.int32)}


def _batches(make, process_index=0, process_count=1, count=6, **kw):
    it = iter(make(_ragged_arrays(), batch_size=4, process_index=process_index, process_count=process_count, **kw))
    return [next(it) for _ in range(count)]


def test_padding_to_the_longest_cuts_each_global_batch_to_one_width_on_every_process():
    arrays = _ragged_arrays()
    for make, kw in [(pipelines.train_batches, {"seed": 3}), (pipelines.fixed_batches, {"seed": 3}),
                     (pipelines.eval_batches, {})]:
        full = _batches(make, **kw)
        cut = _batches(make, pad_multiple=4, **kw)
        halves = [_batches(make, process_index=p, process_count=2, pad_multiple=4, **kw) for p in (0, 1)]
        widths = set()
        for f, c, h0, h1 in zip(full, cut, *halves, strict=True):
            longest = int(arrays["lengths"][f["labels"]].max())
            width = c["tokens"].shape[1]
            widths.add(width)
            assert width % 4 == 0 and longest <= width < longest + 4
            np.testing.assert_array_equal(c["tokens"], f["tokens"][:, :width])
            assert not f["tokens"][:, width:].any()  # nothing but padding is cut
            for key in ("labels", "lengths", "weights"):
                np.testing.assert_array_equal(c[key], f[key])
            # each process cuts to the global batch's longest, not its own rows'
            assert h0["tokens"].shape[1] == h1["tokens"].shape[1] == width
            np.testing.assert_array_equal(np.concatenate([h0["tokens"], h1["tokens"]]), c["tokens"])
        assert len(widths) > 1 and max(widths) <= 16


def test_padding_to_the_longest_never_exceeds_max_len():
    seqs = [np.arange(1, 1 + k, dtype=np.int32) for k in (3, 9, 9, 2)]
    arrays = {**pipelines.pad_token_ids(seqs, 10), "labels": np.arange(4, dtype=np.int32)}
    batch = next(iter(pipelines.eval_batches(arrays, batch_size=4, pad_multiple=8)))
    assert batch["tokens"].shape == (4, 10)  # 9 rounds up to 16, which max_len caps


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
