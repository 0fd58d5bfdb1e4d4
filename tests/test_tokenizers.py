"""Tests for nlpdl.data.tokenizers."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from nlpdl.data.sources import DataError, read_ptb
from nlpdl.data.tokenizers import SentencePieceTokenizer, WordVocab, kim_clean, tokenize_words, train_sentencepiece

from conftest import DATA

BOTCHAN = DATA / "botchan" / "botchan.txt"


def test_tokenize_words_ascii_whitespace_only():
    assert tokenize_words(" a  b\tc\n") == ["a", "b", "c"]
    assert tokenize_words("hmmm\x85might i") == ["hmmm\x85might", "i"]


def test_word_vocab_build_order_and_limits():
    docs = [["b", "a", "c", "a"], ["b", "d", "a", "<unk>"]]
    vocab = WordVocab.build(docs)
    assert vocab.tokens == ("<pad>", "<unk>", "a", "b", "c", "d")
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert WordVocab.build(docs, min_count=2).tokens == ("<pad>", "<unk>", "a", "b")
    assert WordVocab.build(docs, max_size=3).tokens == ("<pad>", "<unk>", "a")
    four = WordVocab.build(docs, specials=("<pad>", "<unk>", "<bos>", "<eos>"))
    assert len(four) == 8 and four.specials == ("<pad>", "<unk>", "<bos>", "<eos>")
    with pytest.raises(DataError):
        WordVocab.build(docs, specials=("<pad>",))


def test_word_vocab_extended_appends_the_new_words_and_keeps_every_id():
    vocab = WordVocab.build([["b", "a", "a"]])
    more = vocab.extended([["z", "a", "y"], ["z", "<unk>"]])
    assert more.tokens == ("<pad>", "<unk>", "a", "b", "y", "z")
    assert more.encode(["a", "b", "q"]).tolist() == vocab.encode(["a", "b", "q"]).tolist() == [2, 3, 1]
    assert vocab.extended([]) == vocab


def test_word_vocab_encode_decode():
    vocab = WordVocab.build([["x", "y", "y"]])
    ids = vocab.encode(["y", "x", "zzz"])
    assert ids.dtype == np.int32 and ids.tolist() == [2, 3, 1]
    assert vocab.decode(ids) == ["y", "x", "<unk>"]
    assert vocab.encode([]).shape == (0,)


def test_word_vocab_save_load(tmp_path):
    vocab = WordVocab.build([["é", "b", "b"]], specials=("<pad>", "<unk>", "<eos>"))
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert WordVocab.load(path) == vocab
    assert os.listdir(tmp_path) == ["vocab.json"]
    assert pickle.loads(pickle.dumps(vocab)) == vocab


@pytest.mark.parametrize("content", [
    "not json",
    json.dumps({"format": "nlpdl.WordVocab/1", "specials": ["<pad>", "<unk>"], "tokens": ["<unk>", "<pad>", "a"]}),
    json.dumps({"format": "nlpdl.WordVocab/1", "specials": ["<pad>", "<unk>"]}),
    json.dumps(["<pad>", "<unk>"]),
])
def test_word_vocab_load_bad(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(DataError):
        WordVocab.load(path)


def test_word_vocab_ptb(data_dir):
    vocab = WordVocab.build([read_ptb(data_dir, "train")])
    # PTB's own "<unk>" merges with the special, so 10,000 words + "<pad>".
    assert len(vocab) == 10_001 and vocab.encode(["<unk>"]).tolist() == [1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if BOTCHAN.is_file():
        return BOTCHAN
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(f"the quick brown fox {i} jumps over the lazy dog." for i in range(2000)))
    return path


def test_sentencepiece_train_cache_pickle(corpus, tmp_path, monkeypatch):
    tok = train_sentencepiece(corpus, tmp_path, vocab_size=500)
    assert len(tok) == 500
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    sp = tok.processor
    assert (sp.id_to_piece(0), sp.id_to_piece(1), sp.id_to_piece(2), sp.id_to_piece(3)) == ("<pad>", "<unk>", "<s>", "</s>")
    lines = [ln for ln in corpus.read_text(encoding="utf-8-sig").splitlines() if ln.strip()][:50]
    for text in [*lines, "  two  spaces, tabs\tand ünïcödé 中文 ", " leading space"]:
        ids = tok.encode(text)
        assert ids.dtype == np.int32 and tok.decode(ids) == text

    [model] = list(tmp_path.glob("*.model"))
    assert sorted(os.listdir(tmp_path)) == [model.name]
    mtime = model.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("should hit the cache")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", no_training)
    again = train_sentencepiece(corpus, tmp_path, vocab_size=500)
    assert again.model_path == model and model.stat().st_mtime_ns == mtime
    assert again.encode(lines[0]).tolist() == tok.encode(lines[0]).tolist()

    clone = pickle.loads(pickle.dumps(tok))
    assert clone._sp is None and clone.decode(clone.encode(lines[1])) == lines[1]


def test_sentencepiece_cache_key_depends_on_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    text = "\n".join(f"line {i} of some text" for i in range(300))
    a.write_text(text)
    b.write_text(text + "\nmore")
    ta = train_sentencepiece(a, tmp_path / "cache", vocab_size=300)
    tb = train_sentencepiece(b, tmp_path / "cache", vocab_size=300)
    tc = train_sentencepiece(a, tmp_path / "cache", vocab_size=301)
    assert len({ta.model_path, tb.model_path, tc.model_path}) == 3


def test_sentencepiece_waits_on_lock(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"word {i}" for i in range(200)))
    tok = train_sentencepiece(corpus, tmp_path / "cache", vocab_size=300)
    tok.model_path.unlink()
    lock = tok.model_path.with_name(tok.model_path.name + ".lock")
    lock.touch()
    with pytest.raises(DataError, match=r"\.lock"):
        train_sentencepiece(corpus, tmp_path / "cache", vocab_size=300, lock_timeout_s=0.2)
    assert lock.exists() and not tok.model_path.exists()


def test_sentencepiece_wrong_special_ids(corpus, tmp_path):
    tok = train_sentencepiece(corpus, tmp_path, vocab_size=500)
    with pytest.raises(DataError, match="special ids"):
        len(SentencePieceTokenizer(tok.model_path, pad_id=-1))


def test_kim_clean_applies_his_rules():
    text = "it's a gorgeous, witty (seductive) movie -- isn't it? \"yes\" we'd say 2:1"
    assert kim_clean(text) == ["it", "'s", "a", "gorgeous", ",", "witty", "(", "seductive", ")", "movie", "is", "n't",
                               "it", "?", "yes", "we", "'d", "say", "2", "1"]
    assert kim_clean("What is the Full form of .com ?", lower=False) == ["What", "is", "the", "Full", "form", "of",
                                                                         "com", "?"]
    # his SST cleaning only drops characters and lower-cases
    assert kim_clean("It's witty, -- Really !", clitics=False) == ["it's", "witty,", "really", "!"]


def test_kim_clean_gives_kims_mr_vocabulary(data_dir):
    from nlpdl.data.sources import read_polarity

    sentences, _ = read_polarity(data_dir, "mr")
    assert len({w for s in sentences for w in kim_clean(s)}) == 18_765  # Kim (2014), Table 1: |V| of MR
