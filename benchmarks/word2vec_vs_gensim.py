"""nlpdl's word2vec against gensim 4 on the same corpus (WikiText-2 train, one sentence per line) with the same
settings (dim 100, window 5, negative 5, min count 5, 5 epochs, sample 1e-3; gensim with 2 worker threads),
interleaved A B A B ... in one process: words/s, wall time, analogy accuracy and WS-353 Spearman.

    python benchmarks/word2vec_vs_gensim.py --repeats 3 [--model skipgram|cbow] [--cpu-devices 2]
        [--batch 256 --steps-per-call 256] [--pairs-batch 1024] [--out benchmarks/word2vec.md]

nlpdl runs twice: with its defaults (skip-gram: shared negatives) and, for skip-gram, with word2vec's per-pair
negatives (`shared_negatives=false`, `--pairs-batch` pairs a mini-batch; 0 skips it).

words/s = corpus words (every token of the sentences, as gensim counts them) x epochs / training wall time, for
both. nlpdl trains on `--cpu-devices` CPU devices (default: one per core, as gensim's 2 workers use both cores
here). Needs gensim (`pip install gensim`), a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np

from nlpdl.data.sources import resolve_data_dir
from nlpdl.embeddings.run import corpus_sentences, evaluate_vectors
from nlpdl.embeddings.vectors import Vectors
from nlpdl.embeddings.word2vec import Word2VecConfig, train_word2vec


PAIRS = "nlpdl, per-pair negatives"


def run_gensim(sentences, cfg: Word2VecConfig, seed: int):
    from gensim.models import Word2Vec

    start = time.perf_counter()
    model = Word2Vec(sentences, vector_size=cfg.dim, window=cfg.window, negative=cfg.negative,
                     min_count=cfg.min_count, epochs=cfg.epochs, sample=cfg.sample, sg=int(cfg.model == "skipgram"),
                     alpha=cfg.alpha, min_alpha=cfg.min_alpha, workers=2, seed=seed)
    seconds = time.perf_counter() - start
    kv = model.wv
    return Vectors(words=tuple(kv.index_to_key), matrix=np.asarray(kv.vectors, np.float32)), seconds


def run_nlpdl(sentences, cfg: Word2VecConfig, seed: int):
    start = time.perf_counter()
    vectors, _ = train_word2vec(sentences, replace(cfg, seed=seed), log=lambda _: None)
    return vectors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="skipgram", choices=("skipgram", "cbow"))
    parser.add_argument("--data-dir")
    parser.add_argument("--cpu-devices", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=Word2VecConfig.batch_size, help="examples per mini-batch")
    parser.add_argument("--steps-per-call", type=int, default=Word2VecConfig.steps_per_call,
                        help="mini-batches per jitted call; the devices merge their updates once per call")
    parser.add_argument("--pairs-batch", type=int, default=1024,
                        help="also run skip-gram with per-pair negatives, this many pairs a batch (0: skip it)")
    parser.add_argument("--out", default="benchmarks/word2vec.md")
    args = parser.parse_args()
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    data_dir = resolve_data_dir(args.data_dir)
    sentences = corpus_sentences(data_dir, "wikitext-2")
    cfg = Word2VecConfig(model=args.model, dim=100, window=5, negative=5, min_count=5, epochs=5, sample=1e-3,
                         batch_size=args.batch, steps_per_call=args.steps_per_call)
    contenders = {"gensim": (run_gensim, cfg), "nlpdl": (run_nlpdl, cfg)}
    if args.model == "skipgram" and args.pairs_batch:
        contenders[PAIRS] = (run_nlpdl, replace(cfg, shared_negatives=False, batch_size=args.pairs_batch))
    corpus_words = sum(map(len, sentences)) * cfg.epochs
    rows: dict[str, list[dict]] = {name: [] for name in contenders}
    for r in range(args.repeats):
        for name, (fn, run_cfg) in contenders.items():
            vectors, seconds = fn(sentences, run_cfg, r)
            scores = evaluate_vectors(vectors, data_dir)
            row = {"seconds": seconds, "words_per_s": corpus_words / seconds,
                   "analogy": scores["analogy"]["total"], "ws353": scores["ws353"]["spearman"]}
            rows[name].append(row)
            print(f"repeat {r} {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)

    def med(name, key):
        values = [row[key] for row in rows[name]]
        return statistics.median(values), min(values), max(values)

    lines = [f"# word2vec ({args.model}): nlpdl vs gensim on WikiText-2 train", "",
             f"Machine: {platform.processor() or platform.machine()}, `{platform.platform()}`; "
             f"command: `python benchmarks/word2vec_vs_gensim.py --repeats {args.repeats} --model {args.model} "
             f"--cpu-devices {args.cpu_devices} --batch {args.batch} --steps-per-call {args.steps_per_call} "
             f"--pairs-batch {args.pairs_batch}`; "
             f"runs interleaved gensim, nlpdl, gensim, ...; median (min–max) of {args.repeats}.", "",
             "| | words/s | wall s | analogy total | WS-353 Spearman |", "|---|---|---|---|---|"]
    for name in rows:
        cells = [med(name, k) for k in ("words_per_s", "seconds", "analogy", "ws353")]
        lines.append(f"| {name} | {cells[0][0]:,.0f} ({cells[0][1]:,.0f}–{cells[0][2]:,.0f}) | "
                     f"{cells[1][0]:.1f} | {cells[2][0]:.4f} ({cells[2][1]:.4f}–{cells[2][2]:.4f}) | "
                     f"{cells[3][0]:.4f} ({cells[3][1]:.4f}–{cells[3][2]:.4f}) |")
    lines.append("")
    for name in rows:
        if name != "gensim":
            ratio = med(name, "words_per_s")[0] / med("gensim", "words_per_s")[0]
            lines.append(f"- {name} / gensim words/s: {ratio:.2f}; analogy difference ({name} - gensim): "
                         f"{100 * (med(name, 'analogy')[0] - med('gensim', 'analogy')[0]):+.2f} points; WS-353: "
                         f"{100 * (med(name, 'ws353')[0] - med('gensim', 'ws353')[0]):+.2f} points.")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
