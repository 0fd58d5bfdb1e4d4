#!/usr/bin/env bash
# Train one experiment with N cooperating JAX processes on this machine (multi-process without a cluster).
# Run with --help for usage. Output of process i is prefixed with "[i] " on this terminal.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/local_multiprocess.sh [-n NUM_PROCS] [--port PORT] [--devices-per-process K]
                                    [--cpu | --no-cpu] [--dry-run] [--] NAME [args...]

Starts NUM_PROCS `nlpdl train` processes on this machine that form one JAX distributed run
(process 0 hosts the coordinator at 127.0.0.1:PORT), waits for all of them, and exits with the first
non-zero exit code; if one process fails, the others are killed (SIGKILL: after distributed init,
JAX catches SIGTERM). Everything after the options (experiment NAME first, then key.path=value
overrides and `nlpdl train` flags such as --workdir) is passed to `nlpdl train` verbatim; the script
appends --coordinator 127.0.0.1:PORT --num-processes N --process-id i.

Options:
  -n, --num-procs N          processes to start (default 2)
  --port PORT                coordinator port on 127.0.0.1 (default 12355)
  --devices-per-process K    devices each process gets (default 1)
  --cpu                      (default) CPU only: each process runs with JAX_PLATFORMS=cpu and
                             XLA_FLAGS=--xla_force_host_platform_device_count=K (K fake CPU devices)
  --no-cpu                   on a GPU box: drop JAX_PLATFORMS/XLA_FLAGS and give process i the K GPUs
                             i*K .. i*K+K-1 through CUDA_VISIBLE_DEVICES
  --dry-run                  print the commands (one per line, shell-quoted), run nothing
  -h, --help                 this help

Each process's output (stdout and stderr) is printed here with the prefix "[i] "; every process
runs with PYTHONUNBUFFERED=1 so lines arrive as they are written. Pass --no-progress to keep the
progress bars out of the interleaved output. All processes write to the same work dir.

Environment: NLPDL_BIN  the nlpdl executable (default: <repo>/.venv/bin/nlpdl, from `make venv`)

Example:
  launch/local_multiprocess.sh -n 2 -- mr_ffn:tiny train.steps=20 --workdir runs/mp --no-progress
EOF
}

die() { echo "local_multiprocess.sh: $1" >&2; exit "${2:-2}"; }

# quote WORD: WORD as one shell word (single-quoted unless it is plainly safe).
quote() {
  local s=$1 safe='^[A-Za-z0-9_./:=,+@%-]+$'
  if [[ $s =~ $safe ]]; then printf '%s' "$s"
  else s=${s//\'/\'\\\'\'}; printf "'%s'" "$s"; fi
}
# print_cmd WORD...: one copy-pasteable line.
print_cmd() {
  local out="" w
  for w in "$@"; do out+="${out:+ }$(quote "$w")"; done
  printf '%s\n' "$out"
}

# The repo is the parent of this script's directory (symlinks resolved).
src=${BASH_SOURCE[0]}
while [[ -L $src ]]; do
  dir=$(cd -P "$(dirname "$src")" && pwd)
  src=$(readlink "$src")
  [[ $src == /* ]] || src=$dir/$src
done
REPO=$(cd -P "$(dirname "$src")/.." && pwd)

num_procs=2 port=12355 devices=1 cpu=1 dry_run=0
need_value() { [[ $# -ge 2 ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--num-procs) need_value "$@"; num_procs=$2; shift 2 ;;
    -n*) num_procs=${1#-n}; shift ;;
    --num-procs=*) num_procs=${1#*=}; shift ;;
    --port) need_value "$@"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --devices-per-process) need_value "$@"; devices=$2; shift 2 ;;
    --devices-per-process=*) devices=${1#*=}; shift ;;
    --cpu) cpu=1; shift ;;
    --no-cpu) cpu=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done

posint='^[1-9][0-9]*$'
[[ $num_procs =~ $posint ]] || die "-n wants a positive integer, got '$num_procs'"
[[ $devices =~ $posint ]] || die "--devices-per-process wants a positive integer, got '$devices'"
[[ $port =~ $posint && $port -le 65535 ]] || die "--port wants a port number, got '$port'"
[[ $# -gt 0 && $1 != -* ]] || die "no experiment NAME given (usage: launch/local_multiprocess.sh [options] -- NAME [args...])"
for a in "$@"; do
  case $a in
    --coordinator|--coordinator=*|--num-processes|--num-processes=*|--process-id|--process-id=*)
      die "do not pass $a: this script sets --coordinator, --num-processes and --process-id" ;;
  esac
done

nlpdl=${NLPDL_BIN:-$REPO/.venv/bin/nlpdl}

# build_cmd I: the command of process I, into the array `cmd`.
build_cmd() {
  local i=$1 first d gpus=""
  shift
  cmd=(env PYTHONUNBUFFERED=1)
  if [[ $cpu == 1 ]]; then
    cmd+=(JAX_PLATFORMS=cpu "XLA_FLAGS=--xla_force_host_platform_device_count=$devices")
  else
    first=$((i * devices))
    for ((d = first; d < first + devices; d++)); do gpus+="${gpus:+,}$d"; done
    cmd+=("CUDA_VISIBLE_DEVICES=$gpus")
  fi
  cmd+=("$nlpdl" train "$@" --coordinator "127.0.0.1:$port" --num-processes "$num_procs" --process-id "$i")
}

if [[ $dry_run == 1 ]]; then
  for ((i = 0; i < num_procs; i++)); do build_cmd "$i" "$@"; print_cmd "${cmd[@]}"; done
  exit 0
fi

[[ -x $nlpdl ]] || die "no $nlpdl: run \`make venv\` in $REPO first (or set NLPDL_BIN)" 1
(( BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 3) )) || die "needs bash >= 4.3 (wait -n)" 1

# Job control: each process (with its prefixing loop) gets its own process group, so that a failure
# can kill a whole group (the process and anything it started) at once.
set -m
kill_all() {  # (quietly: no "Killed" job notices)
  local pgid
  {
    for pgid in $(jobs -p); do kill -KILL -- "-$pgid" || true; done
    wait || true
  } 2>/dev/null
}
stop() { trap - EXIT INT TERM; kill_all; exit "$1"; }
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'kill_all' EXIT

# prefix P: copy stdin to stdout line by line, each line prefixed with P (pure bash: no buffering).
prefix() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do printf '%s%s\n' "$1" "$line"; done
}

declare -A proc_of=()  # pid of a job's last process -> process index
for ((i = 0; i < num_procs; i++)); do
  build_cmd "$i" "$@"
  "${cmd[@]}" </dev/null 2>&1 | prefix "[$i] " &
  proc_of[$!]=$i
done

for ((left = num_procs; left > 0; left--)); do
  rc=0 pid=""
  if (( BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1) )); then
    wait -n -p pid || rc=$?
  else
    wait -n || rc=$?  # bash < 5.1 cannot say which one
  fi
  if [[ $rc != 0 ]]; then
    echo "local_multiprocess.sh: process ${proc_of[$pid]:-?} exited with code $rc; killing the others" >&2
    kill_all
    trap - EXIT
    exit "$rc"
  fi
done
trap - EXIT
