"""Tests for nlpdl.data.sources against the real files in shared/data."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlpdl.data import sources
from nlpdl.data.sources import (DATASETS, DataError, RemoteFile, dataset_file, kfold_split, read_botchan, read_mr,
                                read_ptb, read_tinyshakespeare, read_wikitext2, resolve_data_dir, verify_dataset)

LM_DATASETS = ("wikitext-2", "tinyshakespeare", "botchan")


@pytest.fixture
def lm_data_dir(data_dir):
    """data_dir, skipping when the language-modelling corpora are not there."""
    if not all((data_dir / name / f.name).is_file() for name in LM_DATASETS for f in DATASETS[name]):
        pytest.skip(f"language-modelling datasets not found under {data_dir}")
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
