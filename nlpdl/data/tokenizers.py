"""Tokenizers: a word vocabulary and a cached SentencePiece model."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from nlpdl.data.sources import DataError, sha256_file
from nlpdl.files import atomic_write_bytes

_VOCAB_FORMAT = "nlpdl.WordVocab/1"
# ASCII whitespace only: str.split() would also split on U+0085, which MR uses inside words.
_WORD_RE = re.compile(r"[^ \t\n\r\f\v]+")


def tokenize_words(text: str) -> list[str]:
    """Split already-tokenised text on ASCII whitespace."""
    return _WORD_RE.findall(text)


# Kim's (2014) `clean_str` (github.com/yoonkim/CNN_sentence, process_data.py), rule by rule: keep letters, digits
# and ( ) , ! ? ' `; split off the clitics 's 've n't 're 'd 'll and the punctuation kept.
_KIM_DROP = re.compile(r"[^A-Za-z0-9(),!?'`]")
_KIM_CLITICS = re.compile(r"('s|'ve|n't|'re|'d|'ll)")
_KIM_PUNCTUATION = re.compile(r"([,!()?])")


def kim_clean(text: str, *, clitics: bool = True, lower: bool = True) -> list[str]:
    """Kim's cleaning, then whitespace tokens. His SST preprocessing (`clean_str_sst`) keeps clitics and
    punctuation attached (`clitics=False`); his TREC keeps case (`lower=False`). On MR it gives his 18,765-word
    vocabulary (Kim 2014, Table 1)."""
    text = _KIM_DROP.sub(" ", text)
    if clitics:
        text = _KIM_PUNCTUATION.sub(r" \1 ", _KIM_CLITICS.sub(r" \1", text))
    return tokenize_words(text.lower() if lower else text)


class WordVocab:
    """Word <-> id map; the first two specials (pad, unk) have ids 0 and 1."""

    def __init__(self, tokens: Sequence[str], num_specials: int = 2):
        tokens = tuple(tokens)
        if num_specials < 2 or len(tokens) < num_specials:
            raise DataError(f"a WordVocab needs at least 2 specials (pad, unk), got {num_specials}: pass more specials.")
        if len(set(tokens)) != len(tokens):
            raise DataError("WordVocab tokens contain duplicates: pass each token once.")
        self._itos = tokens
        self._num_specials = num_specials
        self._stoi = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], *, min_count: int = 1, max_size: int = 0,
              specials: Sequence[str] = ("<pad>", "<unk>")) -> WordVocab:
        """Specials, then words with count >= min_count by descending count, then alphabetically.

        `max_size` (0 = unlimited) caps the total size, specials included.
        """
        counts = Counter(t for tokens in token_lists for t in tokens)
        for s in specials:
            counts.pop(s, None)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size:
            words = words[:max(0, max_size - len(specials))]
        return cls((*specials, *words), num_specials=len(specials))

    def extended(self, token_lists: Iterable[Sequence[str]]) -> WordVocab:
        """This vocabulary with the words of `token_lists` it lacks appended, alphabetically: known ids stay."""
        new = sorted({t for tokens in token_lists for t in tokens} - set(self._itos))
        return WordVocab((*self._itos, *new), num_specials=self._num_specials)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def specials(self) -> tuple[str, ...]:
        return self._itos[:self._num_specials]

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order."""
        return self._itos

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WordVocab):
            return NotImplemented
        return self._itos == other._itos and self._num_specials == other._num_specials

    def __hash__(self) -> int:
        return hash((self._itos, self._num_specials))

    def __repr__(self) -> str:
        return f"WordVocab(size={len(self)}, specials={self.specials})"

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """int32 ids; unknown tokens map to unk_id."""
        unk = self.unk_id
        return np.fromiter((self._stoi.get(t, unk) for t in tokens), dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self._itos[i] for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist()]

    def save(self, path: Path) -> None:
        """Write as JSON, atomically."""
        doc = {"format": _VOCAB_FORMAT, "specials": list(self.specials), "tokens": list(self._itos)}
        atomic_write_bytes(Path(path), json.dumps(doc, ensure_ascii=False).encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> WordVocab:
        """Read a vocab written by `save`; DataError if the file is malformed."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            specials, tokens = doc["specials"], doc["tokens"]
            ok = (doc.get("format") == _VOCAB_FORMAT and isinstance(specials, list) and isinstance(tokens, list)
                  and all(isinstance(t, str) for t in tokens))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise DataError(f"cannot read word vocab {path} ({err}): rebuild it with WordVocab.build and save it.") from err
        if not ok or len(specials) < 2 or tokens[:len(specials)] != specials:
            raise DataError(f"word vocab {path} is malformed (specials must come first, pad=0 and unk=1): "
                            "rebuild it with WordVocab.build and save it.")
        return cls(tokens, num_specials=len(specials))


_SPM_SPECIALS = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}


class SentencePieceTokenizer:
    """A SentencePiece model file; the processor loads lazily and is not pickled (safe for grain workers)."""

    def __init__(self, model_path: Path, *, pad_id: int = 0, unk_id: int = 1, bos_id: int = 2, eos_id: int = 3):
        self.model_path = Path(model_path)
        self._expected = {"pad": pad_id, "unk": unk_id, "bos": bos_id, "eos": eos_id}
        self._sp: spm.SentencePieceProcessor | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sp": None}

    @property
    def processor(self) -> spm.SentencePieceProcessor:
        if self._sp is None:
            self._sp = self._load()
        return self._sp

    def _load(self) -> spm.SentencePieceProcessor:
        try:
            sp = spm.SentencePieceProcessor(model_file=str(self.model_path))
        except (OSError, RuntimeError) as err:
            raise DataError(f"cannot load sentencepiece model {self.model_path} ({err}): delete it and retrain.") from err
        actual = {"pad": sp.pad_id(), "unk": sp.unk_id(), "bos": sp.bos_id(), "eos": sp.eos_id()}
        if actual != self._expected:
            raise DataError(f"sentencepiece model {self.model_path} has special ids {actual} but {self._expected} "
                            "were asked for: retrain it with those ids.")
        return sp

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.processor.encode(text), dtype=np.int32)

    def save(self, path: Path) -> None:
        atomic_write_bytes(Path(path), self.model_path.read_bytes())

    def decode(self, ids: Iterable[int]) -> str:
        return self.processor.decode(np.asarray(ids, dtype=np.int64).reshape(-1).tolist())

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    @property
    def pad_id(self) -> int:
        return self._expected["pad"]

    @property
    def unk_id(self) -> int:
        return self._expected["unk"]

    @property
    def bos_id(self) -> int:
        return self._expected["bos"]

    @property
    def eos_id(self) -> int:
        return self._expected["eos"]

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer({str(self.model_path)!r})"


def _train_spm_bytes(corpus: Path, settings: dict[str, Any]) -> bytes:
    model = io.BytesIO()
    try:
        with open(os.devnull, "w") as quiet:
            spm.SentencePieceTrainer.train(
                input=str(corpus), model_writer=model, logstream=quiet,
                **settings, **{f"{k}_id": v for k, v in _SPM_SPECIALS.items()},
                # identity + no whitespace squashing so decode(encode(text)) == text.
                normalization_rule_name="identity", remove_extra_whitespaces=False,
                num_threads=4, minloglevel=2,
            )
    except RuntimeError as err:
        raise DataError(f"sentencepiece could not train on {corpus} with {settings}: {str(err).split('] ')[-1]}"
                        ) from None
    return model.getvalue()


def train_sentencepiece(corpus: Path, cache_dir: Path, *, vocab_size: int, model_type: str = "bpe",
                        character_coverage: float = 1.0, byte_fallback: bool = True, add_dummy_prefix: bool = False,
                        lock_timeout_s: float = 600.0) -> SentencePieceTokenizer:
    """Train (once per corpus content + settings) or load a cached SentencePiece model.

    Special ids are pad=0, unk=1, bos=2, eos=3. Only one process trains: it holds `<model>.lock`
    (created with O_EXCL) while the others poll for the model file for up to `lock_timeout_s`.
    The model is written atomically, so nobody sees a half-written file. Without the dummy prefix a line's first
    word gets the same pieces whether it is encoded alone or inside a stream, and decoding gives the text back.
    """
    corpus, cache_dir = Path(corpus), Path(cache_dir)
    if not corpus.is_file():
        raise DataError(f"sentencepiece corpus {corpus} does not exist: pass a text file with one sentence per line.")
    settings = {"vocab_size": vocab_size, "model_type": model_type,
                "character_coverage": character_coverage, "byte_fallback": byte_fallback,
                "add_dummy_prefix": add_dummy_prefix}
    key_doc = json.dumps({"corpus": sha256_file(corpus), **settings, **_SPM_SPECIALS}, sort_keys=True)
    key = hashlib.sha256(key_doc.encode()).hexdigest()[:12]
    model_path = cache_dir / f"spm-{model_type}-{vocab_size}-{key}.model"
    lock_path = model_path.with_name(model_path.name + ".lock")
    cache_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    while not model_path.is_file():
        try:
            os.close(os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            if time.monotonic() > deadline:
                raise DataError(f"timed out waiting for another process to train {model_path}: "
                                f"if none is running, delete {lock_path} and retry.") from None
            time.sleep(0.5)
            continue
        try:
            if not model_path.is_file():  # another process may have finished just before we took the lock
                atomic_write_bytes(model_path, _train_spm_bytes(corpus, settings))
        finally:
            lock_path.unlink(missing_ok=True)
    return SentencePieceTokenizer(model_path)
