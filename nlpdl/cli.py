"""The `nlpdl` command: argument parsing only; each subcommand calls one library function."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlpdl", description="Deep learning for NLP in JAX.")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from nlpdl import commands  # after parsing, so `--help` does not start JAX

    try:
        if args.command == "list":
            commands.list_experiments()
        elif args.command == "show":
            commands.show(args.name, args.overrides)
        elif args.command == "train":
            commands.train(args.name, args.overrides, workdir=args.workdir, data_dir=args.data_dir,
                           allow_config_change=args.allow_config_change, progress=not args.no_progress)
    except commands.USER_ERRORS as e:
        print(f"nlpdl: error: {e}", file=sys.stderr)
        return 2
    except commands.RUN_ERRORS as e:
        print(f"nlpdl: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
