"""nlpdl's real training steps side by side with the same models in PyTorch, interleaved A B A B in one process.

    python benchmarks/speed.py [--cases lstm_small,lstm_medium,gpt256,gpt512,kim_cnn] [--rounds 5 --steps 5]
        [--torch-compile] [--memory] [--out benchmarks/RESULTS.md]

nlpdl side: the registered experiment's trainer (`build_trainer`: its data pipeline, model, optimizer and jitted,
donated train step), timed step by step until the new state is ready. PyTorch side (benchmarks/torch_peers.py):
the same architecture, shapes, optimizer and clipping, fed the same batches. Each round runs `--steps` steps of
one, then of the other; the table gives the median (min-max) tokens/s over all timed steps, the first step's
time (compilation or warm-up), the ratio, and for the Transformers the model FLOPs utilisation against this
machine's f32 matmul peak, measured in the same run (jnp 4096 x 4096). `--memory` also runs each side alone in
a subprocess for a few steps and reports its peak resident memory (what the process holds, framework included;
the PyTorch probe also imports jax, for nlpdl's data pipeline that feeds it, but builds no JAX model).
`make bench` runs this and benchmarks/word2vec_vs_gensim.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nlpdl import config as C
from nlpdl import host_memory, parallel
from nlpdl.data.sources import resolve_data_dir
from nlpdl.train.loop import build_trainer

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    experiment: str
    overrides: tuple[str, ...]
    peer: str  # torch_peers factory
    what: str


CASES = {
    "lstm_small": Case("ptb_lstm_small", (), "lstm", "PTB LSTM small: 2x200, bptt 20, batch 20, SGD"),
    "lstm_medium": Case("ptb_lstm_medium", (), "lstm", "PTB LSTM medium: 2x650, bptt 35, batch 20, dropout 0.5, SGD"),
    "gpt256": Case("ptb_transformer_small", (), "gpt",
                   "GPT decoder: 4 layers, 4 heads, d_model 256, context 128, batch 16, AdamW"),
    "gpt512": Case("ptb_transformer_small", ("model.d_model=512", "model.d_ff=2048"), "gpt",
                   "GPT decoder: 4 layers, 4 heads, d_model 512, context 128, batch 16, AdamW"),
    "kim_cnn": Case("sst2_cnn", (), "cnn", "Kim CNN on SST-2 phrases: widths 3,4,5 x 100, batch 50, Adadelta"),
}


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    """Median f32 GFLOP/s of an n x n matmul in jax on this machine."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def gpt_flops_per_token(cfg, vocab: int) -> float:
    """6 x (matmul parameters, output layer included) + 6 x attention (QK^T and AV: 2 x T x d per layer), the
    PaLM appendix-B count of training FLOPs per token."""
    m = cfg.model
    per_layer = 4 * m.d_model ** 2 + 2 * m.d_model * m.d_ff
    return 6 * (m.num_layers * per_layer + vocab * m.d_model) + 6 * m.num_layers * 2 * cfg.data.bptt * m.d_model


def batch_tokens(batch: dict) -> int:
    if "inputs" in batch:
        return int(batch["inputs"].size)
    return int(np.asarray(batch["lengths"]).sum())


class Side:
    """One contender: `step()` runs and waits for one training step on the next batch."""

    def __init__(self, name: str, step: Callable[[dict], None], batches, params: int):
        self.name, self._step, self._batches, self.params = name, step, batches, params
        self.times: list[float] = []
        self.tokens: list[int] = []
        self.first = None

    def run(self, steps: int) -> None:
        for _ in range(steps):
            batch = next(self._batches)
            t = time.perf_counter()
            self._step(batch)
            dt = time.perf_counter() - t
            if self.first is None:
                self.first = dt
            else:
                self.times.append(dt)
                self.tokens.append(batch_tokens(batch))

    def tokens_per_s(self) -> list[float]:
        return [n / t for n, t in zip(self.tokens, self.times)]


def make_sides(name: str, data_dir: Path, torch_compile: bool,
               build: tuple[str, ...] = ("nlpdl", "pytorch")) -> tuple[Side | None, Side | None, dict]:
    """The two contenders of case `name`; a side not in `build` is None (its model is never made). Both read
    batches from the experiment's own data pipeline."""
    case = CASES[name]
    cfg = C.apply_overrides(C.get(case.experiment), list(case.overrides))
    t = build_trainer(cfg, data_dir)
    vocab, classes = t.data.spec.vocab_size, t.data.spec.num_outputs
    ours = peer = None
    if "nlpdl" in build:
        state = t.init_state()

        def nlpdl_step(batch):
            nonlocal state
            state, _ = t.step_fn(state, parallel.put_batch(batch, t.mesh))
            jax.block_until_ready(state)

        params = sum(x.size for x in jax.tree.leaves(state.params))
        ours = Side("nlpdl", nlpdl_step, iter(t.data.train), params)
    if "pytorch" in build:
        import torch_peers

        if case.peer == "lstm":
            step, n = torch_peers.make_lstm_lm(cfg, vocab)
        elif case.peer == "gpt":
            step, n = torch_peers.make_gpt(cfg, vocab, compile=torch_compile)
        else:
            step, n = torch_peers.make_kim_cnn(cfg, vocab, classes)
        peer = Side("pytorch" + (" (compiled)" if torch_compile else ""), lambda b: step(b).item(),
                    iter(t.data.train), n)
    info = {"what": case.what, "command": f"nlpdl train {case.experiment} {' '.join(case.overrides)}".strip(),
            "flops_per_token": gpt_flops_per_token(cfg, vocab) if case.peer == "gpt" else None}
    return ours, peer, info


def peak_rss_mb(name: str, side: str, steps: int, data_dir: Path, torch_compile: bool, malloc: str) -> float:
    """Peak resident memory of a process that runs only `side` of `name` for `steps` steps."""
    cmd = [sys.executable, __file__, "--only", side, "--cases", name, "--steps", str(steps), "--data-dir",
           str(data_dir), "--malloc", malloc] + (["--torch-compile"] if torch_compile else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="steps of one side per round")
    parser.add_argument("--torch-compile", action="store_true", help="torch.compile the GPT peer")
    parser.add_argument("--memory", action="store_true", help="also each side's peak RSS, alone in a subprocess")
    parser.add_argument("--malloc", choices=("kept", "default"), default="kept",
                        help="kept: glibc malloc as `nlpdl` sets it (nlpdl/host_memory.py); default: glibc's own. "
                        "It is process-wide, so both sides run under it")
    parser.add_argument("--only", choices=("nlpdl", "pytorch"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.malloc == "kept":
        host_memory.keep_freed_memory()  # before JAX or PyTorch start their threads
    sys.path.insert(0, str(Path(__file__).parent))
    data_dir = resolve_data_dir(args.data_dir)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    if args.only:  # a memory probe: one side alone
        ours, peer, _ = make_sides(names[0], data_dir, args.torch_compile, build=(args.only,))
        (ours or peer).run(args.steps)
        print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    import torch

    peak = matmul_peak()
    print(f"f32 matmul peak: {peak:.1f} GFLOP/s", flush=True)
    rows = []
    for name in names:
        ours, peer, info = make_sides(name, data_dir, args.torch_compile)
        for r in range(args.rounds):
            for side in (ours, peer):
                side.run(args.steps + (1 if r == 0 else 0))  # the first step of each side is its warm-up
        ratio = statistics.median(ours.tokens_per_s()) / statistics.median(peer.tokens_per_s())
        row = {"case": name, **info, "ratio": ratio, "sides": {}}
        for side in (ours, peer):
            tps = side.tokens_per_s()
            entry = {"tokens_per_s": fmt(tps), "median": statistics.median(tps), "first_step_s": side.first,
                     "params": side.params, "steps": len(tps)}
            if info["flops_per_token"]:
                entry["mfu"] = statistics.median(tps) * info["flops_per_token"] / (peak * 1e9)
            if args.memory:
                entry["peak_rss_mb"] = peak_rss_mb(name, "nlpdl" if side is ours else "pytorch", 3, data_dir,
                                                   args.torch_compile, args.malloc)
            row["sides"][side.name] = entry
        rows.append(row)
        print(f"{name}: nlpdl {row['sides']['nlpdl']['tokens_per_s']} tok/s, {peer.name} "
              f"{row['sides'][peer.name]['tokens_per_s']} tok/s, ratio {ratio:.2f}", flush=True)

    lines = ["# Speed: nlpdl vs PyTorch, interleaved in one run", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"`{platform.platform()}`; jax {jax.__version__}, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads); f32 matmul peak measured in this run: {peak:.1f} GFLOP/s.", "",
             f"Command: `python benchmarks/speed.py --cases {','.join(names)} --rounds {args.rounds} --steps "
             f"{args.steps}{' --torch-compile' if args.torch_compile else ''}{' --memory' if args.memory else ''}"
             f"{' --malloc default' if args.malloc == 'default' else ''}`. "
             f"Each round runs {args.steps} steps of nlpdl then {args.steps} of PyTorch on the same batches' shapes; "
             "tokens/s is the median (min–max) over the timed steps (the first step of each side is its "
             "compilation / warm-up, shown apart). glibc malloc: "
             + ("kept (as `nlpdl` sets it: freed memory stays in the process), for both sides." if args.malloc == "kept"
                else "glibc's defaults, for both sides.") + "", "",
             "| case | side | tokens/s | first step s | params | MFU | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for side, e in row["sides"].items():
            mfu = f"{e['mfu']:.1%}" if "mfu" in e else "–"
            rss = f"{e['peak_rss_mb']:,.0f}" if "peak_rss_mb" in e else "–"
            lines.append(f"| {row['case']} | {side} | {e['tokens_per_s']} | {e['first_step_s']:.2f} | "
                         f"{e['params']:,} | {mfu} | {rss} |")
    lines += ["", "| case | what | nlpdl experiment | nlpdl / PyTorch tokens/s |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['what']} | `{r['command']}` | **{r['ratio']:.2f}** |" for r in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"matmul_peak_gflops": peak, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
