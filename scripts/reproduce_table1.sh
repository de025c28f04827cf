#!/usr/bin/env bash
# Tune the bundled Note RNN with Q, Psi, G and pure RL (paper defaults, 1,000,000 steps each)
# and compare all five models on 100,000 sampled compositions each.
# Takes ~6 minutes on a quiet 2-core machine. Results: results/evaluation.{md,json,csv,png}.
set -euo pipefail
seed=${SEED:-0}
for alg in q psi g pure_rl; do
  rltuner tune --algorithm "$alg" --seed "$seed" --out "runs/$alg" --force --quiet
done
rltuner evaluate bundled q=runs/q psi=runs/psi g=runs/g pure_rl=runs/pure_rl \
  --compositions 100000 --seed "$seed" --out results
