#!/usr/bin/env bash
# Two Ray nodes on this machine (separate processes, loopback only), then one sweep file run
# on them through --address, as on a real cluster. Prints which node ran each trial.
#
#   bash scripts/ray_two_nodes.sh [SWEEP.toml] [OUT]
#
# Each node is a `ray start --block` process of its own (1 CPU each); the script stops exactly
# those two processes at the end (never `ray stop`, which would end every Ray on the machine).
set -euo pipefail
SPEC=${1:-examples/sweeps/quick.toml}
OUT=${2:-$(mktemp -d)/sweep}
PORT=${PORT:-6391}
ADDR=127.0.0.1:$PORT
LOGS=$(mktemp -d)
# Ray's token authentication: one token for both nodes and every client (here: this script's
# environment; on a real cluster, the same RAY_AUTH_TOKEN or token file on every machine)
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$(python -c "import secrets; print(secrets.token_hex(32))")
export RAY_AUTH_TOKEN
common=(--node-ip-address 127.0.0.1 --num-cpus 1 --disable-usage-stats --block)

ray start --head --port "$PORT" --include-dashboard false "${common[@]}" >"$LOGS/head.log" 2>&1 &
HEAD=$!
cleanup() { kill "${WORKER:-}" "$HEAD" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 30); do ray status --address "$ADDR" >/dev/null 2>&1 && break; sleep 1; done
ray start --address "$ADDR" "${common[@]}" >"$LOGS/worker.log" 2>&1 &
WORKER=$!
for _ in $(seq 30); do
  [ "$(ray status --address "$ADDR" 2>/dev/null | grep -c ' node_')" -ge 2 ] && break; sleep 1
done
echo "== ray status"
ray status --address "$ADDR" | sed -n '/Node status/,/Pending/p'
echo "== rltuner sweep $SPEC --out $OUT --address $ADDR"
time rltuner sweep "$SPEC" --out "$OUT" --address "$ADDR"
echo "== trials per node"
python - "$OUT" <<'PY'
import json, pathlib, sys
from collections import Counter
out = pathlib.Path(sys.argv[1])
nodes = Counter()
for info in sorted(out.glob("trials/*/sweep_trial.json")):
    d = json.loads(info.read_text())
    node = d["attempts"][-1]["node"]
    nodes[node] += 1
    print(f"{d['name']}: node {node[:12]}, {d['wall_seconds']:.1f} s")
print(f"{len(nodes)} nodes ran {sum(nodes.values())} trials")
PY
