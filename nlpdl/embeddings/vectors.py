"""Word vectors in memory and on disk: word2vec text and binary (as word2vec.c and gensim write them), GloVe text and
fastText `.vec`.

Files are read as bytes and split on ASCII whitespace before the word is decoded as UTF-8, so words may hold any other
character (U+00A0, U+2028, ...). Text floats are written as the shortest decimal that reads back to the same float32,
as gensim does, so text round trips are exact.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np

from nlpdl.data.sources import DataError
from nlpdl.files import atomic_write_bytes

_CHUNK = 1 << 20
_SPACE = re.compile(rb"[ \t\n\r\x0b\x0c]")  # what bytes.split() splits on: no word may hold it
# Bytes of a text vector line after its word; a binary vector's 4 * dim bytes are all among them only by rare chance.
_TEXT_BYTES = frozenset(b"0123456789+-.eE \t\rnaifNAIF")
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f]")


@dataclass(frozen=True, eq=False)
class Vectors:
    """Words and their vectors: row i of the float32 N x D `matrix` is `words[i]`.

    Where order matters (analogy evaluation's `restrict_vocab`, `limit` when reading) words are taken to be sorted by
    frequency, most frequent first, as word2vec, GloVe and fastText write them.
    """

    words: tuple[str, ...]
    matrix: np.ndarray
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        words = tuple(self.words)
        matrix = np.ascontiguousarray(self.matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise ValueError(f"a {len(words)}-word Vectors needs a {len(words)} x D matrix, got shape {matrix.shape}")
        index = {word: i for i, word in enumerate(words)}
        if len(index) != len(words):
            duplicate = next(word for word, n in Counter(words).items() if n > 1)
            raise ValueError(f"word {duplicate!r} appears twice: each word needs exactly one vector")
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "index", index)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        return f"Vectors({len(self)} words x {self.dim})"

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def vector(self, word: str) -> np.ndarray:
        """The row of `word`; KeyError naming the vocabulary size if it has none."""
        if word not in self.index:
            raise KeyError(f"{word!r} is not among the {len(self)} words")
        return self.matrix[self.index[word]]

    def normalized(self) -> Vectors:
        """The same words with unit-length rows (zero rows stay zero), for cosine similarity as dot products."""
        return Vectors(self.words, unit_rows(self.matrix))


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """`matrix` with each row divided by its L2 norm; all-zero rows are kept as zeros rather than NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


# ---- writing ----

def _encoded_words(path: Path, vectors: Vectors) -> list[bytes]:
    """UTF-8 words; ValueError for a word these formats cannot hold (empty, or with whitespace that ends it)."""
    for word in vectors.words:
        if not word or _SPACE.search(word.encode("utf-8")):
            raise ValueError(f"cannot write word {word!r} to {path}: word2vec and GloVe files end a word at whitespace")
    return [word.encode("utf-8") for word in vectors.words]


def _text_lines(path: Path, vectors: Vectors) -> Iterator[bytes]:
    """`word v1 ... vD\\n` per word, each float the shortest decimal that reads back as the same float32."""
    for word, row in zip(_encoded_words(path, vectors), vectors.matrix):
        yield word + b" " + " ".join(map(str, row)).encode("ascii") + b"\n"


def _header(vectors: Vectors) -> bytes:
    return f"{len(vectors)} {vectors.dim}\n".encode("ascii")


def write_word2vec_text(path: Path, vectors: Vectors) -> None:
    """word2vec text format: a `count dim` line, then `word v1 ... vD` lines. Atomic."""
    path = Path(path)
    atomic_write_bytes(path, b"".join([_header(vectors), *_text_lines(path, vectors)]))


def write_word2vec_binary(path: Path, vectors: Vectors) -> None:
    """word2vec binary format as word2vec.c writes it: a `count dim` line, then per word `word `, dim little-endian
    float32 and a newline (gensim writes no newline; both read either). Atomic."""
    path = Path(path)
    rows = vectors.matrix.astype("<f4", copy=False)
    atomic_write_bytes(path, b"".join([_header(vectors)] + [word + b" " + row.tobytes() + b"\n"
                                                            for word, row in zip(_encoded_words(path, vectors), rows)]))


def write_glove_text(path: Path, vectors: Vectors) -> None:
    """GloVe text format: `word v1 ... vD` lines, no header. Atomic."""
    path = Path(path)
    atomic_write_bytes(path, b"".join(_text_lines(path, vectors)))


# ---- reading ----

def _decode_word(path: Path, where: str, word: bytes) -> str:
    try:
        return word.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} {where}: the word {word[:40]!r} is not UTF-8 ({err.reason}): the file is damaged or "
                        f"in another encoding; re-create it with UTF-8 words.") from None


def _parse_header(path: Path, line: bytes) -> tuple[int, int]:
    """(count, dim) of a word2vec / fastText `count dim` first line."""
    fields = line.split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields) or int(fields[1]) == 0:
        raise DataError(f"{path} line 1: expected the header `<count> <dim>` of a word2vec file, got "
                        f"{line[:60]!r}: pass a word2vec text or binary file (GloVe files have no header: use "
                        f"read_glove_text).")
    return int(fields[0]), int(fields[1])


def _parse_text_line(path: Path, number: int, line: bytes, dim: int) -> tuple[str, np.ndarray]:
    """(word, float32 vector) of a text line `word v1 ... vD` (line `number` of `path`)."""
    fields = line.split()
    if not fields:
        raise DataError(f"{path} line {number}: blank line where `word v1 ... v{dim}` was expected: the file is "
                        f"damaged; re-create it.")
    if len(fields) - 1 != dim:
        raise DataError(f"{path} line {number}: expected {dim} floats after the word {_shown(fields[0])}, got "
                        f"{len(fields) - 1}: the file is damaged (cut short?); re-create it.")
    try:
        vector = np.array(fields[1:], dtype=np.float32)
    except ValueError:
        bad = next(f for f in fields[1:] if not _is_float(f))
        raise DataError(f"{path} line {number}: {_shown(bad)} is not a number (word {_shown(fields[0])}): the file "
                        f"is damaged; re-create it.") from None
    return _decode_word(path, f"line {number}", fields[0]), vector


def _shown(raw: bytes) -> str:
    """A word or field for an error message: quoted, at most 40 bytes, undecodable bytes as U+FFFD."""
    return repr(raw[:40].decode("utf-8", "replace"))


def _is_float(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_binary(sample: bytes, dim: int) -> bool:
    """Whether `sample`, the bytes after a word2vec header, starts a binary entry rather than a text line: text if the
    first line is the word and `dim` numbers; also if it only holds number characters after its word (its count is
    wrong: the text reader says so) and nothing in the sample is a control byte, which no text file holds."""
    line, newline, _ = sample.partition(b"\n")
    word_end = line.find(b" ")
    if not newline or word_end < 0 or not set(line[word_end:]) <= _TEXT_BYTES:
        return True
    return len(line.split()) != dim + 1 and _CONTROL.search(sample) is not None


def _vectors(path: Path, words: list[str], rows: list[np.ndarray], dim: int, where: Callable[[int], str]) -> Vectors:
    """Vectors of what was read; a repeated word is a DataError naming both places (`where(i)`: entry i's place)."""
    if len(set(words)) != len(words):
        first: dict[str, int] = {}
        again = next(i for i, word in enumerate(words) if first.setdefault(word, i) != i)
        raise DataError(f"{path} {where(again)}: the word {words[again]!r} appears again (first at "
                        f"{where(first[words[again]])}): keep one vector per word.")
    return Vectors(tuple(words), np.stack(rows) if rows else np.zeros((0, dim), np.float32))


def _read_text_entries(f: BinaryIO, path: Path, count: int, dim: int, first_number: int,
                       lines: tuple[bytes, ...] = ()) -> tuple[list[str], list[np.ndarray]]:
    """Up to `count` text lines: `lines` already read, then the rest of `f`; line numbers start at `first_number`."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    pending = list(lines)
    while len(words) < count:
        line = pending.pop(0) if pending else f.readline()
        if not line:
            break
        word, vector = _parse_text_line(path, first_number + len(words), line, dim)
        words.append(word)
        rows.append(vector)
    return words, rows


def _read_binary_entries(f: BinaryIO, path: Path, count: int, dim: int,
                         offset: int) -> tuple[list[str], list[np.ndarray], bytes]:
    """Up to `count` binary entries `word<space><dim float32 LE>[\\n]` from `f` (at byte `offset` of the file), and the
    bytes read past the last one."""
    size = 4 * dim
    words: list[str] = []
    rows: list[np.ndarray] = []
    buf, pos = b"", 0
    while len(words) < count:
        space = buf.find(b" ", pos)
        if space < 0 or len(buf) - space - 1 < size:
            more = f.read(_CHUNK)
            if not more:
                break
            offset += pos
            buf, pos = buf[pos:] + more, 0
            continue
        raw = buf[pos:space].lstrip(b"\n")  # word2vec.c ends each entry with "\n"; gensim does not
        if not raw or _SPACE.search(raw):
            raise DataError(f"{path} entry {len(words) + 1} (byte {offset + pos}): expected `word<space>` and "
                            f"{size} bytes of floats, got {buf[pos:pos + 40]!r}: the file is damaged, or is a text "
                            f"file (pass binary=False).")
        words.append(_decode_word(path, f"entry {len(words) + 1} (byte {offset + pos})", raw))
        rows.append(np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1).astype(np.float32))
        pos = space + 1 + size
    return words, rows, buf[pos:]


def read_word2vec(path: Path, binary: bool | None = None, limit: int | None = None) -> Vectors:
    """Vectors of a word2vec file (text or binary, as word2vec.c, gensim or write_word2vec_* write them), the first
    `limit` only if given. `binary=None` tells the format from the bytes after the header."""
    path = Path(path)
    with open(path, "rb") as f:
        count, dim = _parse_header(path, f.readline())
        wanted = count if limit is None else min(count, limit)
        start = f.tell()
        if binary is None:
            binary = _looks_binary(f.read(_CHUNK), dim)
            f.seek(start)
        if binary:
            words, rows, rest = _read_binary_entries(f, path, wanted, dim, start)
        else:
            words, rows = _read_text_entries(f, path, wanted, dim, 2)
            rest = b""
        if len(words) < wanted:
            raise DataError(f"{path}: the header says {count} vectors but the file ends after {len(words)}: it is "
                            f"cut short; re-create it.")
        if wanted == count and (rest + f.read(_CHUNK)).strip():
            raise DataError(f"{path}: more data follows the {count} vectors the header announces: the header or the "
                            f"format is wrong ({'binary' if binary else 'text'} was assumed); re-create the file.")
    return _vectors(path, words, rows, dim, (lambda i: f"entry {i + 1}") if binary else (lambda i: f"line {i + 2}"))


def read_glove_text(path: Path, limit: int | None = None) -> Vectors:
    """Vectors of a GloVe `.txt` (no header) or fastText `.vec` (`count dim` header) file, the first `limit` only if
    given. The first line is taken as a header if it is two integers `count dim` and the next line holds a word and
    `dim` floats (or the file ends and count is 0)."""
    path = Path(path)
    with open(path, "rb") as f:
        first, second = f.readline(), f.readline()
        fields = first.split()
        header = (len(fields) == 2 and all(x.isdigit() for x in fields) and int(fields[1]) > 0
                  and (len(second.split()) == int(fields[1]) + 1 or (not second and int(fields[0]) == 0)))
        if header:
            count, dim = int(fields[0]), int(fields[1])
            lines, first_number = (second,), 2
        elif not fields:
            raise DataError(f"{path} line 1: {'the file is empty' if not first else 'blank line'}, expected "
                            f"`word v1 ... vD`: pass a GloVe or fastText vectors file.")
        else:
            count, dim, lines, first_number = -1, len(fields) - 1, (first, second), 1
            if dim == 0:
                raise DataError(f"{path} line 1: a word without floats ({first[:60]!r}): pass a GloVe or fastText "
                                f"vectors file.")
        wanted = count if header else sys.maxsize
        wanted = wanted if limit is None else min(wanted, limit)
        words, rows = _read_text_entries(f, path, wanted, dim, first_number, tuple(line for line in lines if line))
        if header and len(words) < wanted:
            raise DataError(f"{path}: the header says {count} vectors but the file ends after {len(words)}: it is "
                            f"cut short; re-create it.")
        if header and wanted == count and f.read(_CHUNK).strip():
            raise DataError(f"{path}: more lines follow the {count} vectors the header announces: the header is "
                            f"wrong; re-create the file.")
    return _vectors(path, words, rows, dim, lambda i: f"line {i + first_number}")


def read_vectors(path: Path) -> Vectors:
    """Any vectors file nlpdl reads: word2vec binary or text (header line `count dim`), GloVe `.txt` (no
    header) or fastText `.vec`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"vectors file {path} does not exist: train some (`nlpdl word2vec`) or pass another path.")
    with open(path, "rb") as f:
        fields = f.readline().split()
    if len(fields) == 2 and all(x.isdigit() for x in fields):
        return read_word2vec(path)
    return read_glove_text(path)


def match_words(vocab: Sequence[str], vectors: Vectors) -> tuple[np.ndarray, np.ndarray]:
    """(vocabulary rows, vector rows) of the vocabulary words that have a vector: the exact word first, then its
    most frequent case variant (SST and MR are lower-cased)."""
    lowered: dict[str, int] = {}
    for i, w in enumerate(vectors.words):
        lowered.setdefault(w.lower(), i)
    pairs = [(row, vectors.index.get(word, lowered.get(word.lower()))) for row, word in enumerate(vocab)]
    pairs = [(row, i) for row, i in pairs if i is not None]
    return np.asarray([r for r, _ in pairs], np.int32), np.asarray([i for _, i in pairs], np.int32)
