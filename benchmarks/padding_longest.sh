#!/usr/bin/env bash
# data.padding=max_len vs longest on sst5_cnn: 3,000 training steps (about one epoch) and one evaluation of valid
# and test, three rounds, alternating. Prints each run's timing.json (the training loop, evaluations included),
# its wall time and its test accuracy.
# Usage: bash benchmarks/padding_longest.sh [OUT_DIR]   (run from the checkout, its .venv active)
set -euo pipefail
out=${1:-$(mktemp -d)}
mkdir -p "$out"
for round in 1 2 3; do
  for padding in max_len longest; do
    run="$out/$padding-$round"
    SECONDS=0
    nlpdl train sst5_cnn data.clean=none train.best_ties=first model.out_init=zeros model.pool_padding=true \
      train.epochs=0 train.steps=3000 train.eval_every=3000 data.padding="$padding" --workdir "$run" --no-progress \
      > "$run.log" 2>&1
    echo "$padding round $round: $(tr -d '\n' < "$run/timing.json"), wall ${SECONDS} s," \
      "$(grep 'test accuracy' "$run.log" | tail -1 | cut -d'(' -f1)"
  done
done
