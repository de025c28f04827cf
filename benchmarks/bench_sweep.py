"""rltuner sweep vs the same runs one after the other.

Eight trials (seeds 0-7, paper defaults, ``--steps`` each, evaluated on ``--compositions``)
through :func:`rltuner.sweep.run_sweep` on a local Ray (one trial per CPU), then the same eight
runs one after the other: ``rltuner tune --threads 1`` then ``rltuner evaluate`` for each (the
sweep evaluates every trial too; the ratio without the evaluations is printed as well).

Overhead of the sweep = its wall time minus the trials' own time spread over the CPUs
(``sum of the trials' wall seconds / concurrent trials``): Ray's start, scheduling, worker start
and result collection. Prints the numbers and writes ``benchmarks/results/sweep.json``.

    python benchmarks/bench_sweep.py [--steps 200000] [--trials 8] [--compositions 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rltuner(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "rltuner.cli", *args, "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--compositions", type=int, default=1000)
    ap.add_argument("--out", default="benchmarks/results/sweep.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from rltuner.sweep import run_sweep

    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp_name:
        tmp = Path(tmp_name)
        spec = tmp / "sweep.toml"
        seeds = ", ".join(str(s) for s in range(args.trials))
        evaluation = f"[evaluation]\ncompositions = {args.compositions}\nseed = 0\n"
        spec.write_text(
            f"[base]\nsteps = {args.steps}\n\n[space]\nseed = [{seeds}]\n\n{evaluation}"
        )
        # a short run first: the numba cache is warm for both sides
        _rltuner("tune", "--steps", "1000", "--eval-every", "1000", "--threads", "1",
                 "--no-report", "--out", str(tmp / "warm"))  # fmt: skip

        t0 = time.perf_counter()
        results = run_sweep(tmp / "sweep", spec, quiet=True)
        sweep_wall = time.perf_counter() - t0
        trial_seconds = [r["wall_seconds"] for r in results["trials"]]
        concurrent = min(cpus, args.trials)
        overhead = sweep_wall - sum(trial_seconds) / concurrent

        tune_s = eval_s = 0.0
        for s in range(args.trials):
            run = tmp / f"seq{s}"
            t = time.perf_counter()
            _rltuner("tune", "--steps", str(args.steps), "--seed", str(s), "--threads", "1",
                     "--no-report", "--out", str(run))  # fmt: skip
            tune_s += time.perf_counter() - t
            t = time.perf_counter()
            _rltuner("evaluate", str(run), "--compositions", str(args.compositions),
                     "--seed", "0", "--workers", "1")  # fmt: skip
            eval_s += time.perf_counter() - t

    out = {
        "trials": args.trials,
        "steps": args.steps,
        "compositions": args.compositions,
        "cpus": cpus,
        "sweep_wall_s": sweep_wall,
        "sweep_timing_s": results["timing"],
        "trial_wall_s": trial_seconds,
        "sweep_overhead_s": overhead,
        "sweep_overhead_share": overhead / sweep_wall,
        "sequential_tune_s": tune_s,
        "sequential_evaluate_s": eval_s,
        "speedup_vs_tune_and_evaluate": (tune_s + eval_s) / sweep_wall,
        "speedup_vs_tune_only": tune_s / sweep_wall,
    }
    print(f"sweep of {args.trials} x {args.steps:,} steps on {cpus} CPUs: {sweep_wall:.1f} s "
          f"(Ray start {results['timing']['ray_start']:.1f} s, results "
          f"{results['timing']['results']:.1f} s)")  # fmt: skip
    print(f"trials' own time: {sum(trial_seconds):.1f} s in all; overhead {overhead:.1f} s = "
          f"{100 * overhead / sweep_wall:.1f}% of the sweep")  # fmt: skip
    print(f"sequential: tune {tune_s:.1f} s + evaluate {eval_s:.1f} s = {tune_s + eval_s:.1f} s")
    print(f"speed-up: {out['speedup_vs_tune_and_evaluate']:.2f}x (vs tune + evaluate), "
          f"{out['speedup_vs_tune_only']:.2f}x (vs tune alone)")  # fmt: skip
    from rltuner.checkpoint import atomic_write_text  # after OMP_NUM_THREADS is set

    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
