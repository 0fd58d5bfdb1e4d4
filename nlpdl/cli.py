"""The `nlpdl` command: argument parsing only; each subcommand calls one library function."""

from __future__ import annotations

import argparse
import sys

from nlpdl import host_memory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlpdl", description="Deep learning for NLP in JAX.")
    parser.add_argument("--cpu-devices", type=int, metavar="N",
                        help="run JAX on N CPU devices (as XLA_FLAGS=--xla_force_host_platform_device_count=N), "
                        "e.g. one per core for data-parallel word2vec or training on a CPU machine")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered experiments, one line each")
    show = sub.add_parser("show", help="print an experiment's resolved config")
    show.add_argument("name", help="experiment name, optionally NAME:VARIANT (e.g. mr_ffn:tiny)")
    show.add_argument("overrides", nargs="*", help="key.path=value")
    train = sub.add_parser("train", help="train (or resume) an experiment")
    train.add_argument("name")
    train.add_argument("overrides", nargs="*", help="key.path=value")
    train.add_argument("--workdir", help="run directory (default: runs/NAME[,overrides])")
    train.add_argument("--data-dir", help="dataset folder (default: $NLPDL_DATA_DIR, then ~/.cache/nlpdl/data)")
    train.add_argument("--allow-config-change", action="store_true",
                       help="continue a run whose saved config differs (the old config is kept)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--coordinator", help="HOST:PORT of process 0, for a multi-process run "
                       "(on SLURM and Cloud TPU pods it is detected; NLPDL_DISTRIBUTED=off disables that)")
    train.add_argument("--num-processes", type=int)
    train.add_argument("--process-id", type=int)
    sweep = sub.add_parser("sweep", help="train every point of an ablation, then write its report")
    sweep.add_argument("name")
    sweep.add_argument("overrides", nargs="*", help="key.path=value, applied to every point")
    sweep.add_argument("--sweep", help="a sweep declared beside the experiment")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                       help="an axis; several --grid axes form their product")
    sweep.add_argument("--zip", action="append", default=[], metavar="KEY=V1,V2",
                       help="axes taken in lockstep (equal lengths), crossed with the grid")
    sweep.add_argument("--seeds", type=int, help="seeds per point (each seed key = 0..N-1)")
    sweep.add_argument("--seed-keys", metavar="KEY,KEY",
                       help="config keys the seed sets (default train.seed); train.seed,data.seed also draws the "
                       "batch order and the dev split / CV folds per seed")
    sweep.add_argument("--sweep-dir", help="where the points' run dirs go (default: runs/sweeps/...)")
    sweep.add_argument("--emit", action="store_true", help="print one `nlpdl train` line per point, run nothing")
    sweep.add_argument("--data-dir")
    sweep.add_argument("--no-progress", action="store_true")
    evaluate = sub.add_parser("eval", help="score a run's best parameters on a split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--data-dir")
    sample = sub.add_parser("sample", help="text from a trained language model")
    sample.add_argument("run_dir")
    sample.add_argument("--prompt", required=True)
    sample.add_argument("--tokens", type=int, default=100)
    sample.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    sample.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens (0: all)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--data-dir")
    report = sub.add_parser("report", help="markdown table and PNG plots of a sweep")
    report.add_argument("sweep_dir")
    ablate = sub.add_parser("ablate", help="every architecture on one dataset over seeds: a table and a bar chart")
    ablate.add_argument("dataset", help="e.g. sst2: trains sst2_ffn, sst2_cnn, sst2_lstm, ...")
    ablate.add_argument("overrides", nargs="*", help="key.path=value, applied to every run")
    ablate.add_argument("--seeds", type=int, default=3)
    ablate.add_argument("--seed-keys", metavar="KEY,KEY", help="config keys the seed sets (as for sweep)")
    ablate.add_argument("--models", help="comma-separated (default: ffn,cnn,lstm,gru,bilstm,transformer)")
    ablate.add_argument("--variant", default="", help="e.g. tiny")
    ablate.add_argument("--out-dir", help="default: runs/ablations/DATASET")
    ablate.add_argument("--data-dir")
    ablate.add_argument("--no-progress", action="store_true")
    w2v = sub.add_parser("word2vec", help="train word vectors (skip-gram / CBOW) and evaluate them")
    w2v.add_argument("overrides", nargs="*", help="key=value of the word2vec config, e.g. model=cbow epochs=5")
    w2v.add_argument("--workdir", required=True)
    w2v.add_argument("--data-dir")
    glove = sub.add_parser("glove", help="train GloVe word vectors and evaluate them")
    glove.add_argument("overrides", nargs="*", help="key=value of the GloVe config, e.g. dim=50 epochs=10")
    glove.add_argument("--workdir", required=True)
    glove.add_argument("--data-dir")
    neighbors = sub.add_parser("neighbors", help="nearest words by cosine, from a word2vec run or vectors file")
    neighbors.add_argument("run_dir")
    neighbors.add_argument("word")
    neighbors.add_argument("-k", type=int, default=10)
    predict = sub.add_parser("predict", help="class probabilities of sentences from a trained classifier")
    predict.add_argument("run_dir")
    predict.add_argument("sentences", nargs="+", help="each argument is one sentence")
    predict.add_argument("--data-dir")
    plot = sub.add_parser("plot", help="train/valid curves of one or more runs as a PNG")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", default="curves.png", help="PNG to write (default: curves.png)")
    plot.add_argument("--metrics", help="comma-separated metrics (default: loss, accuracy, perplexity as logged)")
    probe = sub.add_parser("probe", help="linear probes of every layer of a trained model (and of its untrained "
                           "control): a table and a plot")
    probe.add_argument("run_dir")
    probe.add_argument("--task", required=True, help="position, frequency, length, or a dataset's labels (trec, "
                       "sst2, subj, ...)")
    probe.add_argument("--out-dir", help="default: RUN_DIR/probes")
    probe.add_argument("--train-sentences", type=int, default=3000, help="probe-train sentences (at most)")
    probe.add_argument("--test-sentences", type=int, default=1000, help="probe-test sentences (at most)")
    probe.add_argument("--steps", type=int, default=1000, help="Adam steps per probe")
    probe.add_argument("--data-dir")
    gradflow = sub.add_parser("gradflow", help="gradient norms by layer, and through time for recurrent LMs, "
                              "trained and at initialisation: a plot")
    gradflow.add_argument("run_dirs", nargs="+")
    gradflow.add_argument("--out", default="gradflow.png", help="PNG to write, with a .json beside it")
    gradflow.add_argument("--length", type=int, default=100, help="time steps back from the loss (recurrent LMs)")
    gradflow.add_argument("--windows", type=int, default=5, help="windows per valid row to average over")
    gradflow.add_argument("--batches", type=int, default=5, help="valid batches for the per-layer norms")
    gradflow.add_argument("--data-dir")
    attention = sub.add_parser("attention", help="each head's attention weights over a sentence, as a PNG grid")
    attention.add_argument("run_dir")
    attention.add_argument("sentence")
    attention.add_argument("--out", default="attention.png")
    attention.add_argument("--data-dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    host_memory.keep_freed_memory()  # before JAX starts its threads
    if args.cpu_devices:
        import jax

        jax.config.update("jax_num_cpu_devices", args.cpu_devices)  # before anything starts a JAX backend
    from nlpdl import commands  # after parsing, so `--help` does not start JAX

    try:
        if args.command == "list":
            commands.list_experiments()
        elif args.command == "show":
            commands.show(args.name, args.overrides)
        elif args.command == "train":
            commands.train(args.name, args.overrides, workdir=args.workdir, data_dir=args.data_dir,
                           allow_config_change=args.allow_config_change, progress=not args.no_progress,
                           coordinator=args.coordinator, num_processes=args.num_processes,
                           process_id=args.process_id)
        elif args.command == "sweep":
            commands.sweep(args.name, args.overrides, declared=args.sweep, grid=args.grid, zipped=args.zip,
                           seeds=args.seeds, sweep_dir=args.sweep_dir, emit=args.emit, data_dir=args.data_dir,
                           progress=not args.no_progress, seed_keys=args.seed_keys)
        elif args.command == "eval":
            commands.evaluate(args.run_dir, args.split, args.data_dir)
        elif args.command == "sample":
            commands.sample(args.run_dir, args.prompt, args.tokens, args.temperature, args.top_k, args.seed,
                            args.data_dir)
        elif args.command == "ablate":
            commands.ablate(args.dataset, args.overrides, seeds=args.seeds, models=args.models, variant=args.variant,
                            out_dir=args.out_dir, data_dir=args.data_dir, progress=not args.no_progress,
                            seed_keys=args.seed_keys)
        elif args.command == "word2vec":
            commands.word2vec(args.overrides, args.workdir, args.data_dir)
        elif args.command == "glove":
            commands.glove(args.overrides, args.workdir, args.data_dir)
        elif args.command == "neighbors":
            commands.neighbors(args.run_dir, args.word, args.k)
        elif args.command == "predict":
            commands.predict(args.run_dir, args.sentences, args.data_dir)
        elif args.command == "report":
            commands.report(args.sweep_dir)
        elif args.command == "plot":
            commands.plot(args.run_dirs, args.out, args.metrics)
        elif args.command == "probe":
            commands.probe(args.run_dir, args.task, out_dir=args.out_dir, train_sentences=args.train_sentences,
                           test_sentences=args.test_sentences, steps=args.steps, data_dir=args.data_dir)
        elif args.command == "gradflow":
            commands.gradflow(args.run_dirs, args.out, length=args.length, windows=args.windows,
                              batches=args.batches, data_dir=args.data_dir)
        elif args.command == "attention":
            commands.attention(args.run_dir, args.sentence, args.out, args.data_dir)
    except commands.USER_ERRORS as e:
        print(f"nlpdl: error: {e}", file=sys.stderr)
        return 2
    except commands.RUN_ERRORS as e:
        print(f"nlpdl: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
