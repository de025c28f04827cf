#!/usr/bin/env bash
# Reproduce the README's Results: tune Q, Psi, G and RL-only on seeds 0, 1, 2 (paper defaults,
# 1,000,000 steps each: 12 runs, about 12 x 1-2 minutes on a quiet 2-core machine), evaluate
# every run and the untuned Note RNN on 100,000 compositions each, write results/table1/ and
# replace the README's Results block. Fewer steps or compositions for a quick check:
#   RLTUNER_TABLE1_STEPS=20000 RLTUNER_TABLE1_COMPOSITIONS=2000 scripts/reproduce_table1.sh
# Every option: python scripts/reproduce_table1.py --help
set -euo pipefail
exec python "$(dirname "$0")/reproduce_table1.py" "$@"
