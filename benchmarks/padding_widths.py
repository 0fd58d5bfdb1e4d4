"""Step time by batch width under `data.padding=longest`, against `data.padding=max_len`, on real batches.

    python benchmarks/padding_widths.py [EXPERIMENT] [overrides ...] [--steps 400]

Trains EXPERIMENT (default sst5_cnn) for --steps steps with each padding, in one process, and prints for each
width: how many of the batches had it, its first step (compilation included) and the median of the others.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from nlpdl import host_memory

host_memory.keep_freed_memory()

import experiments  # noqa: E402,F401
from nlpdl import config as C, parallel  # noqa: E402
from nlpdl.data.sources import resolve_data_dir  # noqa: E402
from nlpdl.train.loop import build_trainer  # noqa: E402


def step_times_by_width(cfg, data_dir, steps: int) -> dict[int, list[float]]:
    t = build_trainer(cfg, data_dir)
    state, batches = t.init_state(), iter(t.data.train)
    seconds: dict[int, list[float]] = {}
    for _ in range(steps):
        batch = next(batches)
        start = time.perf_counter()
        state, _ = t.step_fn(state, parallel.put_batch(batch, t.mesh))
        jax.block_until_ready(state)
        seconds.setdefault(batch["tokens"].shape[1], []).append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("experiment", nargs="?", default="sst5_cnn")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    print(f"{args.experiment} {' '.join(args.overrides)}: {args.steps} steps each, "
          f"{jax.devices()[0].device_kind}, {jax.device_count()} device(s)")
    print("| data.padding | width | batches | first step s | median step ms |\n|---|---|---|---|---|")
    for padding in ("max_len", "longest"):
        cfg = C.apply_overrides(C.get(args.experiment), [*args.overrides, f"data.padding={padding}"])
        total = 0.0
        for width, seconds in sorted(step_times_by_width(cfg, resolve_data_dir(args.data_dir), args.steps).items()):
            total += sum(seconds)
            median = f"{statistics.median(seconds[1:]) * 1e3:.1f}" if len(seconds) > 1 else "–"
            print(f"| {padding} | {width} | {len(seconds)} | {seconds[0]:.2f} | {median} |")
        print(f"| {padding} | all | {args.steps} | | {total / args.steps * 1e3:.1f} (mean, compilations included) |")


if __name__ == "__main__":
    main()
