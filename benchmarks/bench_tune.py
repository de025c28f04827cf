"""RL tuning throughput and memory.

Prints and writes ``benchmarks/results/tune.json``:

* environment steps/s at the default update ratio (one minibatch of 32 per 5 steps) for
  B = 1, 64, 256 parallel compositions, and minibatch updates/s, per algorithm (q, psi, g);
* optionally (``--full``) a complete default ``rltuner tune`` run (1,000,000 steps with its
  evaluations, checkpoints, plots, samples and Table-1 statistics) in a subprocess: wall time and
  peak resident memory.

Usage: ``python benchmarks/bench_tune.py [--steps 200000] [--full]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def throughput(
    algorithm: str, num_envs: int, steps: int, note_rnn: str | None, threads: int = 0
) -> dict:
    from rltuner.tuner import RLTuner, TunerConfig

    cfg = TunerConfig(
        algorithm=algorithm,
        steps=steps,
        num_envs=num_envs,
        eval_every=10**12,
        exploration_period=steps // 2,
        note_rnn=note_rnn,
        threads=threads,
    )
    tuner = RLTuner(cfg)
    tuner.train(None, progress=False, stop_after=min(steps, 5 * num_envs + 2000))  # warm-up/JIT
    tuner.step = 0
    t0 = time.perf_counter()
    u0 = int(tuner.learner.adam_step[0])
    tuner.train(None, progress=False)
    dt = time.perf_counter() - t0
    updates = int(tuner.learner.adam_step[0]) - u0
    return {
        "algorithm": algorithm,
        "num_envs": num_envs,
        "threads": tuner.learner.threads,
        "steps": tuner.step,
        "seconds": dt,
        "steps_per_s": tuner.step / dt,
        "updates_per_s": updates / dt,
    }


def full_run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rltuner.cli", "tune", "--out", f"{tmp}/run", "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "command": " ".join(["rltuner", *cmd[3:]]),
        "wall_seconds": wall,
        "peak_rss_mib": peak_kib / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--algorithms", default="q,psi,g")
    ap.add_argument("--envs", default="1,64,256")
    ap.add_argument("--note-rnn", default=None)
    ap.add_argument(
        "--threads",
        default="0,1",
        help="update threads to measure (0 = the default: automatic, 1 or 2)",
    )
    ap.add_argument("--full", action="store_true", help="also time a full default tune run")
    args = ap.parse_args()
    rows = []
    for alg in args.algorithms.split(","):
        for b in (int(x) for x in args.envs.split(",")):
            for th in (int(x) for x in args.threads.split(",")):
                steps = args.steps if b > 1 else max(args.steps // 10, 5000)
                r = throughput(alg, b, steps, args.note_rnn, th)
                rows.append(r)
                thr = r["threads"] or "auto"
                print(
                    f"{alg:>4} B={b:<4} threads={thr:<4} {r['steps_per_s']:>9,.0f} steps/s "
                    f"{r['updates_per_s']:>8,.0f} updates/s ({r['steps']:,} steps)",
                    flush=True,
                )
    out = {
        "machine": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
        "throughput": rows,
    }
    if args.full:
        out["full_default_run"] = f = full_run()
        print(f"full default run: {f['wall_seconds']:.1f} s, peak RSS {f['peak_rss_mib']:.0f} MiB")
    path = Path(__file__).parent / "results" / "tune.json"
    from rltuner.checkpoint import atomic_write_text  # after OMP_NUM_THREADS is set

    atomic_write_text(path, json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
