#!/usr/bin/env bash
# Train one experiment on every worker of a Cloud TPU VM pod slice (one nlpdl process per worker).
# Run with --help for usage.
# shellcheck disable=SC2088  # a quoted ~ is meant: it is expanded by the workers' shell, not here
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/tpu_pod.sh --tpu TPU --zone ZONE [--project PROJECT] [--repo-dir DIR] [--dry-run] [--] NAME [args...]
       launch/tpu_pod.sh --tpu TPU --zone ZONE [--project PROJECT] [--repo-dir DIR] [--dry-run] --setup

Runs, through `gcloud compute tpus tpu-vm ssh TPU --worker=all`, the same command on every worker:
  cd DIR && .venv/bin/nlpdl train NAME [args...]
Everything after the options (experiment NAME first, then key.path=value overrides and `nlpdl train`
flags such as --workdir) is passed to `nlpdl train` verbatim. No --coordinator is needed: on a TPU
VM pod nlpdl finds the coordinator, process count and process id itself (jax.distributed.initialize()).

Options:
  --tpu TPU          the TPU VM (pod slice) name (required)
  --zone ZONE        its zone (required)
  --project PROJECT  its GCP project (default: gcloud's configured project)
  --repo-dir DIR     the repo on the workers (default: this repo's path relative to $HOME, e.g. ~/nlpdl;
                     a leading ~ is expanded on the worker)
  --setup            instead of training, run `cd DIR && make venv` on all workers
  --dry-run          print the gcloud command (shell-quoted), run nothing
  -h, --help         this help

Before the first run: clone the repo to the same DIR on every worker, then run with --setup once.
The work dir must be on a file system shared by all workers (e.g. a GCS bucket mounted with gcsfuse)
so that orbax writes one checkpoint from all processes; the data dir must exist on every worker.
Stopping this script (Ctrl-C) does not stop the remote processes; to stop them:
  gcloud compute tpus tpu-vm ssh TPU --zone ZONE --worker=all --command "pkill -f 'nlpdl train'"

Example:
  launch/tpu_pod.sh --tpu my-v4-32 --zone us-central2-b --setup
  launch/tpu_pod.sh --tpu my-v4-32 --zone us-central2-b -- mr_ffn train.steps=1000 --workdir /mnt/runs/mr_ffn
EOF
}

die() { echo "tpu_pod.sh: $1" >&2; exit "${2:-2}"; }

# quote WORD: WORD as one shell word (single-quoted unless it is plainly safe).
quote() {
  local s=$1 safe='^[A-Za-z0-9_./:=,+@%-]+$'
  if [[ $s =~ $safe ]]; then printf '%s' "$s"
  else s=${s//\'/\'\\\'\'}; printf "'%s'" "$s"; fi
}
# quote_words WORD...: the words as one shell-quoted line (no newline).
quote_words() {
  local out="" w
  for w in "$@"; do out+="${out:+ }$(quote "$w")"; done
  printf '%s' "$out"
}
# quote_dir DIR: DIR quoted for the remote shell, a leading ~ or ~/ left unquoted so that it expands there.
quote_dir() {
  case $1 in
    "~") printf '~' ;;
    "~/") printf '~/' ;;
    "~/"*) printf '~/%s' "$(quote "${1#"~/"}")" ;;
    *) quote "$1" ;;
  esac
}

# The repo is the parent of this script's directory (symlinks resolved).
src=${BASH_SOURCE[0]}
while [[ -L $src ]]; do
  dir=$(cd -P "$(dirname "$src")" && pwd)
  src=$(readlink "$src")
  [[ $src == /* ]] || src=$dir/$src
done
REPO=$(cd -P "$(dirname "$src")/.." && pwd)

tpu="" zone="" project="" repo_dir="" setup=0 dry_run=0
need_value() { [[ $# -ge 2 && -n $2 && $2 != -* ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --tpu) need_value "$@"; tpu=$2; shift 2 ;;
    --tpu=*) tpu=${1#*=}; shift ;;
    --zone) need_value "$@"; zone=$2; shift 2 ;;
    --zone=*) zone=${1#*=}; shift ;;
    --project) need_value "$@"; project=$2; shift 2 ;;
    --project=*) project=${1#*=}; shift ;;
    --repo-dir) need_value "$@"; repo_dir=$2; shift 2 ;;
    --repo-dir=*) repo_dir=${1#*=}; shift ;;
    --setup) setup=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done

[[ -n $tpu ]] || die "--tpu TPU is required (the TPU VM name; see --help)"
[[ -n $zone ]] || die "--zone ZONE is required (the TPU VM's zone; see --help)"
if [[ $setup == 1 ]]; then
  [[ $# -eq 0 ]] || die "--setup takes no experiment (got: $*)"
else
  [[ $# -gt 0 && $1 != -* ]] || die "no experiment NAME given (usage: launch/tpu_pod.sh --tpu TPU --zone ZONE [options] -- NAME [args...])"
fi

if [[ -z $repo_dir ]]; then
  home=$(cd -P "$HOME" 2>/dev/null && pwd || printf '%s' "$HOME")
  case $REPO in
    "$home") repo_dir="~" ;;
    "$home"/*) repo_dir="~/${REPO#"$home"/}" ;;
    *) repo_dir=$REPO ;;  # not under $HOME: the same absolute path on the workers
  esac
fi

if [[ $setup == 1 ]]; then
  remote="cd $(quote_dir "$repo_dir") && make venv"
else
  remote="cd $(quote_dir "$repo_dir") && .venv/bin/nlpdl train $(quote_words "$@")"
fi

cmd=(gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone")
[[ -z $project ]] || cmd+=(--project "$project")
cmd+=(--worker=all --command "$remote")

if [[ $dry_run == 1 ]]; then
  quote_words "${cmd[@]}"
  echo
  exit 0
fi
command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud SDK (or use --dry-run)" 1
exec "${cmd[@]}"
