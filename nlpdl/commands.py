"""What each CLI subcommand does, as plain functions (usable from notebooks and tests)."""

from __future__ import annotations

from pathlib import Path

from nlpdl import config as C
from nlpdl import parallel, sweeps
from nlpdl.data.sources import DataError, resolve_data_dir
from nlpdl.parallel import MeshError
from nlpdl.train.checkpoint import CheckpointError
from nlpdl.train.loop import NonFiniteLoss, evaluate_run, train as run_training

USER_ERRORS = (C.ConfigError, DataError, MeshError, CheckpointError)  # exit code 2
RUN_ERRORS = (NonFiniteLoss,)  # exit code 1


def list_experiments() -> None:
    for name, exp in C.load_experiments().items():
        variants = ",".join(v for v in exp.variants if v)
        print(f"{name:<24} {exp.description}" + (f"  [variants: {variants}]" if variants else ""))


def resolve(name: str, overrides: list[str]) -> C.ExperimentConfig:
    return C.apply_overrides(C.get(name), overrides)


def show(name: str, overrides: list[str]) -> None:
    print(C.dumps(resolve(name, overrides)))


def default_workdir(name: str, overrides: list[str]) -> Path:
    """runs/NAME, plus the overrides, so each distinct config gets its own dir."""
    return Path("runs") / sweeps.safe_name(",".join([name.replace(":", "-"), *overrides]))


def train(name: str, overrides: list[str], *, workdir: str | None = None, data_dir: str | None = None,
          allow_config_change: bool = False, progress: bool = True, coordinator: str | None = None,
          num_processes: int | None = None, process_id: int | None = None) -> dict:
    parallel.initialize_distributed(coordinator, num_processes, process_id)
    cfg = resolve(name, overrides)
    path = Path(workdir) if workdir else default_workdir(name, overrides)
    results = run_training(cfg, path, resolve_data_dir(data_dir), allow_config_change=allow_config_change,
                           progress=progress)
    metric = cfg.train.best_metric
    for split in ("valid", "test"):
        if split in results and parallel.is_main_process():
            print(f"{cfg.name}: {split} {metric} {results[split][metric]:.4f} "
                  f"(best valid at step {results['best_step']}; run dir {path})")
    return results


def sweep(name: str, overrides: list[str], *, declared: str | None = None, grid: list[str] = (),
          zipped: list[str] = (), seeds: int | None = None, sweep_dir: str | None = None, emit: bool = False,
          data_dir: str | None = None, progress: bool = True, seed_keys: str | None = None) -> None:
    spec = sweeps.resolve_sweep(name, declared, list(grid), list(zipped), seeds, overrides, seed_keys)
    path = Path(sweep_dir) if sweep_dir else sweeps.default_sweep_dir(name, declared, spec)
    if emit:
        print("\n".join(sweeps.emit_lines(name, spec, path)))
        return
    written = sweeps.run_sweep(name, spec, path, resolve_data_dir(data_dir), progress=progress)
    print("report: " + ", ".join(str(p) for p in written))


def report(sweep_dir: str) -> None:
    from nlpdl.report.sweeps import write_report

    path = Path(sweep_dir)
    if not (path / "sweep.json").is_file():
        raise C.ConfigError(f"{path} is not a sweep dir (no sweep.json); pass the dir `nlpdl sweep` wrote.")
    print("\n".join(str(p) for p in write_report(path)))


def plot(run_dirs: list[str], out: str, metrics: str | None) -> None:
    from nlpdl.report.plots import plot_runs

    for d in run_dirs:
        if not (Path(d) / "metrics.jsonl").is_file():
            raise C.ConfigError(f"{d} is not a run dir (no metrics.jsonl); pass dirs that `nlpdl train` wrote.")
    chosen = [m.strip() for m in metrics.split(",")] if metrics else None
    try:
        print(plot_runs([Path(d) for d in run_dirs], Path(out), chosen))
    except ValueError as e:
        raise C.ConfigError(str(e)) from None


def evaluate(run_dir: str, split: str, data_dir: str | None = None) -> dict[str, float]:
    scores = evaluate_run(Path(run_dir), split, resolve_data_dir(data_dir))
    print(f"{run_dir}: {split} " + " ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return scores


def sample(run_dir: str, prompt: str, tokens: int, temperature: float, top_k: int, seed: int,
           data_dir: str | None = None) -> str:
    from nlpdl.sampling import sample_run

    if tokens < 1 or temperature < 0 or top_k < 0:
        raise C.ConfigError("--tokens must be >= 1, --temperature >= 0 and --top-k >= 0.")
    text = sample_run(Path(run_dir), prompt, tokens, temperature, top_k, seed, resolve_data_dir(data_dir))
    print(text)
    return text


def predict(run_dir: str, sentences: list[str], data_dir: str | None = None) -> list[dict[str, float]]:
    from nlpdl.predict import predict_run

    rows = predict_run(Path(run_dir), sentences, resolve_data_dir(data_dir))
    for sentence, probs in zip(sentences, rows):
        best = max(probs, key=probs.get)
        print(f"{best}\t" + "  ".join(f"{name} {p:.4f}" for name, p in probs.items()) + f"\t{sentence}")
    return rows


def ablate(dataset: str, overrides: list[str], *, seeds: int = 3, models: str | None = None, variant: str = "",
           out_dir: str | None = None, data_dir: str | None = None, progress: bool = True,
           seed_keys: str | None = None) -> None:
    from nlpdl.ablation import MODELS, run_ablation

    if seeds < 1:
        raise C.ConfigError("--seeds must be >= 1.")
    keys = sweeps.parse_seed_keys(seed_keys, C.Sweep())
    chosen = tuple(m.strip() for m in models.split(",") if m.strip()) if models else MODELS
    seeding = [] if keys == C.Sweep.seed_keys else ["seeding=" + "+".join(keys)]
    path = Path(out_dir) if out_dir else Path("runs") / "ablations" / sweeps.safe_name(
        ",".join([dataset + (f"-{variant}" if variant else ""), *overrides, *seeding]))
    written = run_ablation(dataset, path, resolve_data_dir(data_dir), seeds=seeds, models=chosen, variant=variant,
                           overrides=overrides, progress=progress, seed_keys=keys)
    print("ablation: " + ", ".join(str(p) for p in written))


def _train_vectors(cfg, workdir: str, data_dir: str | None) -> dict:
    from nlpdl.embeddings.run import train_run

    results = train_run(cfg, Path(workdir), resolve_data_dir(data_dir))
    a, t = results["analogy"], results["training"]
    print(f"{workdir}: analogy total {a['total']:.4f} (semantic {a['semantic']:.4f}, syntactic {a['syntactic']:.4f}); "
          + ", ".join(f"{k} spearman {v['spearman']:.4f}" for k, v in results.items() if "spearman" in v)
          + f"; {t['seconds']:.0f} s")
    return results


def word2vec(overrides: list[str], workdir: str, data_dir: str | None = None) -> dict:
    from nlpdl.embeddings.run import resolve_config

    return _train_vectors(resolve_config(overrides), workdir, data_dir)


def glove(overrides: list[str], workdir: str, data_dir: str | None = None) -> dict:
    from nlpdl.embeddings.run import resolve_glove_config

    return _train_vectors(resolve_glove_config(overrides), workdir, data_dir)


def neighbors(run_dir: str, word: str, k: int = 10) -> None:
    from nlpdl.embeddings.run import neighbors as nearest

    for other, cosine in nearest(Path(run_dir), word, k):
        print(f"{cosine:.4f}  {other}")


def probe(run_dir: str, task: str, *, out_dir: str | None = None, train_sentences: int = 3000,
          test_sentences: int = 1000, steps: int = 1000, data_dir: str | None = None) -> list[Path]:
    from nlpdl.analysis.probing import ProbeBudget, probe_run

    if min(train_sentences, test_sentences, steps) < 1:
        raise C.ConfigError("--train-sentences, --test-sentences and --steps must be >= 1.")
    budget = ProbeBudget(train_sentences=train_sentences, test_sentences=test_sentences, steps=steps)
    written = probe_run(Path(run_dir), task, resolve_data_dir(data_dir), Path(out_dir) if out_dir else None, budget)
    print(written[0].read_text(), end="")
    print("probe: " + ", ".join(str(p) for p in written))
    return written


def gradflow(run_dirs: list[str], out: str, *, length: int = 100, windows: int = 5, batches: int = 5,
             data_dir: str | None = None) -> list[Path]:
    from nlpdl.analysis.gradflow import gradflow_runs

    if min(length, windows, batches) < 1:
        raise C.ConfigError("--length, --windows and --batches must be >= 1.")
    written = gradflow_runs([Path(d) for d in run_dirs], resolve_data_dir(data_dir), Path(out), length=length,
                            windows=windows, batches=batches)
    print("gradflow: " + ", ".join(str(p) for p in written))
    return written


def attention(run_dir: str, sentence: str, out: str, data_dir: str | None = None) -> Path:
    from nlpdl.analysis.attention import attention_run

    written = attention_run(Path(run_dir), sentence, resolve_data_dir(data_dir), Path(out))
    print(f"attention: {written}")
    return written
