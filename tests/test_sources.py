"""Tests for nlpdl.data.sources against the real files in shared/data."""

import functools
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlpdl.data import sources
from nlpdl.data.sources import (DATASETS, TREC_CLASSES, DataError, RemoteFile, dataset_file, kfold_split,
                                read_botchan, read_mr, read_polarity, read_ptb, read_sst, read_sst_phrases,
                                read_tinyshakespeare, read_trec, read_wikitext2, resolve_data_dir, verify_dataset)

LM_DATASETS = ("wikitext-2", "tinyshakespeare", "botchan")
CLS_DATASETS = ("subj", "cr", "mpqa", "sst2", "sst5", "sst-trees", "trec")


@pytest.fixture
def lm_data_dir(data_dir):
    """data_dir, skipping when the language-modelling corpora are not there."""
    if not all((data_dir / name / f.name).is_file() for name in LM_DATASETS for f in DATASETS[name]):
        pytest.skip(f"language-modelling datasets not found under {data_dir}")
    return data_dir


@pytest.fixture
def cls_data_dir(data_dir):
    """data_dir, skipping when the sentence-classification datasets beyond MR are not there."""
    if not all((data_dir / name / f.name).is_file() for name in CLS_DATASETS for f in DATASETS[name]):
        pytest.skip(f"sentence-classification datasets not found under {data_dir}")
    return data_dir


def test_read_mr_counts_and_latin1(data_dir):
    sentences, labels = read_mr(data_dir)
    assert len(sentences) == 10662 and labels.dtype == np.int32
    assert (labels[:5331] == 0).all() and (labels[5331:] == 1).all()
    # Line 474 of rt-polarity.neg starts with byte 0x85; it must stay one intact sentence.
    assert sentences[473].startswith("\x85the maudlin way its story unfolds")
    assert any("hmmm\x85might i suggest" in s for s in sentences)
    assert all(s and s == s.strip(" \n\r") for s in sentences)


@pytest.mark.parametrize("split,count", [("train", 929_589), ("valid", 73_760), ("test", 82_430)])
def test_read_ptb_counts(data_dir, split, count):
    tokens = read_ptb(data_dir, split)
    assert len(tokens) == count and tokens[-1] == "<eos>"


def test_ptb_vocab_size(data_dir):
    assert len(set(read_ptb(data_dir, "train"))) == 10_000


def test_read_ptb_bad_split(data_dir):
    with pytest.raises(DataError, match="valid"):
        read_ptb(data_dir, "dev")


def test_verify_dataset_real_and_tampered(data_dir, tmp_path):
    verify_dataset(data_dir, "mr")
    shutil.copytree(data_dir / "mr", tmp_path / "mr")
    neg = tmp_path / "mr" / "rt-polarity.neg"
    neg.chmod(0o644)
    data = bytearray(neg.read_bytes())
    data[100] ^= 1
    neg.write_bytes(bytes(data))
    with pytest.raises(DataError, match="rt-polarity.neg.*sha256"):
        verify_dataset(tmp_path, "mr")


def test_read_mr_empty_file(tmp_path):
    (tmp_path / "mr").mkdir()
    for f in DATASETS["mr"]:
        (tmp_path / "mr" / f.name).write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_mr(tmp_path)


def test_resolve_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NLPDL_DATA_DIR", raising=False)
    assert resolve_data_dir() == tmp_path / "xdg" / "nlpdl" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_data_dir() == Path.home() / ".cache" / "nlpdl" / "data"
    monkeypatch.setenv("NLPDL_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_data_dir("~/x") == Path.home() / "x"
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "env").exists()


def test_dataset_file_missing_no_download(tmp_path):
    remote = DATASETS["mr"][0]
    with pytest.raises(DataError) as err:
        dataset_file(tmp_path, "mr", remote.name)
    msg = str(err.value)
    assert str(tmp_path / "mr" / remote.name) in msg and remote.url in msg and remote.sha256 in msg
    assert "NLPDL_DATA_DIR" in msg
    assert not (tmp_path / "mr").exists()


def test_dataset_file_unknown_names(tmp_path):
    with pytest.raises(DataError, match="mr, ptb"):
        dataset_file(tmp_path, "imdb", "x")
    with pytest.raises(DataError, match="rt-polarity.pos"):
        dataset_file(tmp_path, "mr", "x")


def _fake_remote(monkeypatch, tmp_path, payload: bytes, sha256: str) -> RemoteFile:
    src = tmp_path / "remote" / "toy.txt"
    src.parent.mkdir()
    src.write_bytes(payload)
    remote = RemoteFile("toy.txt", src.as_uri(), sha256, len(payload))
    monkeypatch.setitem(sources.DATASETS, "toy", (remote,))
    return remote


def test_dataset_file_download_ok(monkeypatch, tmp_path):
    payload = b"hello\nworld\n"
    _fake_remote(monkeypatch, tmp_path, payload, hashlib.sha256(payload).hexdigest())
    path = dataset_file(tmp_path / "data", "toy", "toy.txt", download=True)
    assert path == tmp_path / "data" / "toy" / "toy.txt" and path.read_bytes() == payload
    assert os.listdir(path.parent) == ["toy.txt"]
    verify_dataset(tmp_path / "data", "toy")


def test_dataset_file_download_env_default(monkeypatch, tmp_path):
    payload = b"abc\n"
    _fake_remote(monkeypatch, tmp_path, payload, hashlib.sha256(payload).hexdigest())
    monkeypatch.setenv("NLPDL_DOWNLOAD", "1")
    assert dataset_file(tmp_path / "data", "toy", "toy.txt").read_bytes() == payload


def test_dataset_file_download_bad_hash(monkeypatch, tmp_path):
    _fake_remote(monkeypatch, tmp_path, b"tampered\n", "0" * 64)
    with pytest.raises(DataError, match="0{64}") as err:
        dataset_file(tmp_path / "data", "toy", "toy.txt", download=True)
    assert hashlib.sha256(b"tampered\n").hexdigest() in str(err.value)
    assert os.listdir(tmp_path / "data" / "toy") == []


def test_dataset_file_download_unreachable(monkeypatch, tmp_path):
    remote = _fake_remote(monkeypatch, tmp_path, b"x", "0" * 64)
    (tmp_path / "remote" / "toy.txt").unlink()
    with pytest.raises(DataError, match="download failed") as err:
        dataset_file(tmp_path / "data", "toy", "toy.txt", download=True)
    assert remote.url in str(err.value)
    assert os.listdir(tmp_path / "data" / "toy") == []


def test_kfold_partitions():
    n, k = 103, 10
    tests = []
    for fold in range(k):
        train, test = kfold_split(n, k, fold, seed=3)
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == n
        assert len(test) in (10, 11)
        tests.append(test)
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(n))
    assert np.array_equal(kfold_split(n, k, 2, seed=3)[1], tests[2])
    assert not np.array_equal(kfold_split(n, k, 2, seed=4)[1], tests[2])


@pytest.mark.parametrize("n,k,fold", [(10, 10, 10), (10, 3, -1), (10, 1, 0), (3, 5, 0)])
def test_kfold_bad_args(n, k, fold):
    with pytest.raises(DataError):
        kfold_split(n, k, fold)


def test_undecodable_ptb_bytes_name_the_file_and_line(tmp_path):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.valid.txt").write_bytes(b" a b\n c \xff d\n")
    with pytest.raises(DataError, match=r"ptb.valid.txt line 2 is not UTF-8.*sha256"):
        read_ptb(tmp_path, "valid")


@pytest.mark.parametrize("split,count", [("train", 2_088_628), ("valid", 217_646), ("test", 245_569)])
def test_read_wikitext2_counts(lm_data_dir, split, count):
    tokens = read_wikitext2(lm_data_dir, split)
    assert len(tokens) == count and tokens[-1] == "<eos>"
    # Blank lines give a lone "<eos>" each: the file is a blank line, a heading " = Title = ", another blank line.
    end = tokens.index("<eos>", 1)
    assert tokens[:2] == ["<eos>", "="] and tokens[end - 1] == "=" and tokens[end + 1] == "<eos>"


def test_wikitext2_vocab_size(lm_data_dir):
    vocab = {split: set(read_wikitext2(lm_data_dir, split)) for split in ("train", "valid", "test")}
    assert len(vocab["train"] | vocab["valid"] | vocab["test"]) == len(vocab["train"]) == 33_278
    assert "<unk>" in vocab["train"] and "@-@" in vocab["train"]


def test_read_tinyshakespeare_splits(lm_data_dir):
    text = (lm_data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    splits = {split: read_tinyshakespeare(lm_data_dir, split) for split in ("train", "valid", "test")}
    assert len(text) == 1_115_394 and sum(map(len, splits.values())) == len(text)
    assert splits["train"] + splits["valid"] + splits["test"] == text
    assert splits["train"] == text[:int(len(text) * 0.9)] and len(splits["train"]) == 1_003_854
    assert len(splits["valid"]) == len(splits["test"]) == 55_770
    assert splits["train"].startswith("First Citizen:\n") and len(set(text)) == 65


def test_read_botchan_lines(lm_data_dir):
    lines = read_botchan(lm_data_dir)
    assert len(lines) == 4_288
    assert not any("\ufeff" in line or "\r" in line or "\n" in line for line in lines)
    assert all(line.strip() for line in lines)
    assert lines[0] == "Project Gutenberg's Botchan (Master Darling), by Kin-nosuke Natsume"
    assert lines[-1] == "subscribe to our email newsletter to hear about new eBooks."
    assert any(line.startswith("  \"Arrived yesterday.") for line in lines)  # indentation is kept


@pytest.mark.parametrize("dataset", LM_DATASETS)
def test_verify_lm_datasets(lm_data_dir, dataset):
    verify_dataset(lm_data_dir, dataset)


@pytest.mark.parametrize("reader", [read_wikitext2, read_tinyshakespeare])
def test_lm_bad_split(tmp_path, reader):
    with pytest.raises(DataError, match="train, valid, test"):
        reader(tmp_path, "dev")


def test_undecodable_wikitext2_byte_names_the_file_and_line(lm_data_dir, tmp_path):
    (tmp_path / "wikitext-2").mkdir()
    lines = (lm_data_dir / "wikitext-2" / "valid.txt").read_bytes().split(b"\n")
    lines[1000] = lines[1000][:5] + b"\xc3" + lines[1000][5:]  # a lone UTF-8 lead byte
    (tmp_path / "wikitext-2" / "valid.txt").write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=r"valid.txt line 1001 is not UTF-8 \(.* at byte 5\).*f0737ed3"):
        read_wikitext2(tmp_path, "valid")


def test_undecodable_tinyshakespeare_byte_names_the_line(tmp_path):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_bytes(b"First\nSecond\nthe \xff third\n")
    with pytest.raises(DataError, match=r"input.txt line 3 is not UTF-8 \(.* at byte 4\)"):
        read_tinyshakespeare(tmp_path, "train")


def test_read_botchan_bom_crlf_blank_and_bad_bytes(tmp_path):
    (tmp_path / "botchan").mkdir()
    path = tmp_path / "botchan" / "botchan.txt"
    path.write_bytes(b"\xef\xbb\xbfOne\r\n\r\n  two \xc3\xa9\r\n \r\nthree\r\n")
    assert read_botchan(tmp_path) == ["One", "  two \u00e9", "three"]
    path.write_bytes(b"\xef\xbb\xbfOne\r\n\r\ntw\xe9o\r\n")
    with pytest.raises(DataError, match=r"botchan.txt line 3 is not UTF-8 \(.* at byte 2\).*464bd530"):
        read_botchan(tmp_path)


def _write(data_dir: Path, dataset: str, name: str, data: bytes) -> Path:
    """A small stand-in data file (existing files are not re-hashed, so any bytes will do)."""
    path = data_dir / dataset / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("dataset", CLS_DATASETS)
def test_verify_cls_datasets(cls_data_dir, dataset):
    verify_dataset(cls_data_dir, dataset)


@pytest.mark.parametrize("dataset,neg,pos", [("mr", 5331, 5331), ("subj", 5000, 5000), ("cr", 1366, 2405),
                                             ("mpqa", 7292, 3311)])
def test_read_polarity_counts(cls_data_dir, dataset, neg, pos):
    sentences, labels = read_polarity(cls_data_dir, dataset)
    assert labels.dtype == np.int32 and len(sentences) == len(labels) == neg + pos
    assert (labels[:neg] == 0).all() and (labels[neg:] == 1).all()
    assert all(s and s == s.strip(" \t\n\r") for s in sentences)


def test_read_polarity_blank_lines_and_encodings(cls_data_dir):
    # CR and MPQA have blank lines (counted by `wc -l`: 1,368 + 2,407 and 7,294 + 3,312); they are dropped.
    for dataset, blanks in (("cr", 4), ("mpqa", 3)):
        lines = sum(len((cls_data_dir / dataset / f.name).read_bytes().split(b"\n")) - 1 for f in DATASETS[dataset])
        assert lines - blanks == len(read_polarity(cls_data_dir, dataset)[0])
    subj, _ = read_polarity(cls_data_dir, "subj")  # subj.subjective is Latin-1
    assert sum(not s.isascii() for s in subj) > 100 and any("\x85" in s for s in subj)
    assert read_polarity(cls_data_dir, "mr")[0] == read_mr(cls_data_dir)[0]


def test_read_polarity_errors(tmp_path):
    with pytest.raises(DataError, match="mr, subj, cr, mpqa"):
        read_polarity(tmp_path, "sst2")
    _write(tmp_path, "cr", "custrev.neg", b"\n  \n")
    _write(tmp_path, "cr", "custrev.pos", b"good\n")
    with pytest.raises(DataError, match=r"custrev.neg has only blank lines.*8f29d7fa"):
        read_polarity(tmp_path, "cr")
    _write(tmp_path, "cr", "custrev.neg", b"bad\nbad \xe9\n")
    with pytest.raises(DataError, match=r"custrev.neg line 2 is not UTF-8"):
        read_polarity(tmp_path, "cr")


@pytest.mark.parametrize("classes,split,counts", [
    (2, "train", [3310, 3610]), (2, "dev", [428, 444]), (2, "test", [912, 909]),
    (5, "train", [1092, 2218, 1624, 2322, 1288]), (5, "dev", [139, 289, 229, 279, 165]),
    (5, "test", [279, 633, 389, 510, 399])])
def test_read_sst_counts(cls_data_dir, classes, split, counts):
    sentences, labels = read_sst(cls_data_dir, classes, split)
    assert labels.dtype == np.int32 and len(sentences) == sum(counts)
    assert np.bincount(labels, minlength=classes).tolist() == counts
    assert all(s and s == s.strip() and s == s.lower() for s in sentences)


def test_read_sst_first_line(cls_data_dir):
    sentences, labels = read_sst(cls_data_dir, 5, "train")
    assert labels[0] == 4 and sentences[0].startswith("a stirring , funny and finally transporting re-imagining")


@pytest.mark.parametrize("line", [b"5 too high", b"x no label", b"-1 negative", b"1", b"1\tno space", b" ", b"+1 signed"])
def test_read_sst_bad_label(tmp_path, line):
    _write(tmp_path, "sst5", "stsa.fine.dev", b"4 fine .\n0 also fine\n" + line + b"\n")
    with pytest.raises(DataError, match=r"stsa.fine.dev line 3: wrong label format.*0\.\.4.*b2f76c62"):
        read_sst(tmp_path, 5, "dev")


def test_read_sst_binary_rejects_label_2_and_bad_args(tmp_path):
    _write(tmp_path, "sst2", "stsa.binary.test", b"1 good\n2 neutral\n")
    with pytest.raises(DataError, match=r"stsa.binary.test line 2: wrong label format.*0\.\.1"):
        read_sst(tmp_path, 2, "test")
    with pytest.raises(DataError, match="train, dev, test"):
        read_sst(tmp_path, 2, "valid")
    with pytest.raises(DataError, match="2 or 5"):
        read_sst(tmp_path, 3, "test")
    with pytest.raises(DataError, match="2 or 5"):
        read_sst_phrases(tmp_path, 1)


@functools.cache
def _phrases(data_dir: Path, classes: int) -> tuple[list[str], np.ndarray]:
    return read_sst_phrases(data_dir, classes)


@pytest.fixture
def sst_phrases(cls_data_dir):
    """(data dir, {classes: phrases}), each parsed once for all the tests below."""
    return cls_data_dir, {classes: _phrases(cls_data_dir, classes) for classes in (2, 5)}


def test_sst_phrase_counts(sst_phrases):
    _, phrases = sst_phrases
    texts, labels = phrases[5]
    assert len(texts) == len(set(texts)) == 156_817 and labels.dtype == np.int32
    assert np.bincount(labels).tolist() == [7189, 27513, 79856, 33016, 9243]
    texts, labels = phrases[2]
    assert len(texts) == len(set(texts)) == 77_195 and np.bincount(labels).tolist() == [34788, 42407]
    assert texts[0].startswith("the rock is destined to be the 21st century 's new `` conan ''")
    fine = set(phrases[5][0])  # -LRB- / -RRB- lower-cased, "\\/" kept, U+00A0 inside a leaf kept
    assert {"-lrb- taymor -rrb-", "co-writer\\/director", "2\xa01\\/2"} <= fine and not any("LRB" in t for t in fine)


@pytest.mark.parametrize("classes", [2, 5])
def test_sst_phrases_hold_every_train_sentence(sst_phrases, classes):
    data_dir, phrases = sst_phrases
    label_of = dict(zip(*phrases[classes]))
    sentences, labels = read_sst(data_dir, classes, "train")
    assert [label_of.get(s) for s in sentences] == labels.tolist()


def test_sst_phrases_binary_mapping_dedup_and_case(tmp_path):
    _write(tmp_path, "sst-trees", "train.txt",
           b"(3 (1 (0 Bad) (2 film)) (4 (2 -LRB-) (4 great) (2 -RRB-)))\n"
           b"(2 (4 great) (2 film))\n"
           b"(1 (1 (0 bad) (2 Film)) (3 fine))\n")
    texts, labels = read_sst_phrases(tmp_path, 5)
    assert texts == ["bad film -lrb- great -rrb-", "bad film", "bad", "film", "-lrb- great -rrb-", "-lrb-", "great",
                     "-rrb-", "great film", "bad film fine", "fine"]
    assert labels.tolist() == [3, 1, 0, 2, 4, 2, 4, 2, 2, 1, 3] and labels.dtype == np.int32
    texts, labels = read_sst_phrases(tmp_path, 2)
    assert texts == ["bad film -lrb- great -rrb-", "bad film", "bad", "-lrb- great -rrb-", "great", "bad film fine",
                     "fine"]
    assert labels.tolist() == [1, 0, 0, 1, 1, 0, 1]


@pytest.mark.parametrize("tree,what", [
    (b"(3 (2 a) (2 b)", "missing '\\)'"), (b"(3 (2 a) (2 b)))", "unbalanced"),
    (b"(3 (2 a) (2 b)) (2 c)", "text after the root"),
    (b"(7 (2 a) (2 b))", "wrong label format '7'"), (b"(x a)", "wrong label format 'x'"), (b"(3 (2 a b))", "word 'a'"),
    (b"(3 (2 a) b)", "word 'b'"), (b"(3 ())", "wrong label format '\\)'"), (b"(3 (2))", "subtree without words"),
    (b"", "no tree"), (b"a", "word 'a'")])
def test_sst_phrases_malformed_tree(tmp_path, tree, what):
    _write(tmp_path, "sst-trees", "train.txt", b"(2 (2 ok) (2 .))\n" + tree + b"\n")
    with pytest.raises(DataError, match=rf"train.txt line 2: malformed tree \({what}.*e2f3f41b"):
        read_sst_phrases(tmp_path, 5)


def test_read_trec_counts(cls_data_dir):
    counts = {"train": [86, 1162, 1250, 1223, 835, 896], "test": [9, 138, 94, 65, 81, 113]}
    for split, expected in counts.items():
        questions, labels = read_trec(cls_data_dir, split)
        assert labels.dtype == np.int32 and len(questions) == sum(expected)
        assert np.bincount(labels, minlength=len(TREC_CLASSES)).tolist() == expected
    questions, labels = read_trec(cls_data_dir, "train")
    assert questions[0] == "How did serfdom develop in and then leave Russia ?" and TREC_CLASSES[labels[0]] == "DESC"
    assert [q for q in questions if not q.isascii()] == [
        "Which city has the oldest relationship as a sister\xf0city with Los Angeles ?"]


@pytest.mark.parametrize("line,match", [(b"FOO:bar What ?", "unknown coarse label 'FOO'"),
                                        (b"desc:manner How ?", "unknown coarse label 'desc'"),
                                        (b"DESC How ?", "wrong label format"), (b"DESC: How ?", "wrong label format"),
                                        (b"DESC:manner", "wrong label format")])
def test_read_trec_bad_label(tmp_path, line, match):
    _write(tmp_path, "trec", "TREC.test", b"NUM:date When ?\n" + line + b"\n")
    with pytest.raises(DataError, match=rf"TREC.test line 2: {match}.*033f22c0"):
        read_trec(tmp_path, "test")
    with pytest.raises(DataError, match="train, test"):
        read_trec(tmp_path, "dev")


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_download_cuts_to_head_lines(monkeypatch, tmp_path, chunk):
    kept = b"(2 a)\n(3 bb)\n"
    src = tmp_path / "remote" / "trees.txt"
    src.parent.mkdir()
    src.write_bytes(kept + b"(4 dev tree)\n(1 another)\n")
    remote = RemoteFile("trees.txt", src.as_uri(), hashlib.sha256(kept).hexdigest(), len(kept), head_lines=2)
    monkeypatch.setitem(sources.DATASETS, "toy", (remote,))
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    path = dataset_file(tmp_path / "data", "toy", "trees.txt", download=True)
    assert path.read_bytes() == kept
    verify_dataset(tmp_path / "data", "toy")


def test_head_lines_named_in_messages(tmp_path):
    remote = sources.remote_file("sst-trees", "train.txt")
    assert remote.head_lines == 8_544 and remote.size == 2_160_058
    with pytest.raises(DataError, match=r"RNTN/12bb731b.*/trees/train.txt \(keep only its first 8,544 lines\)"):
        dataset_file(tmp_path, "sst-trees", "train.txt")
