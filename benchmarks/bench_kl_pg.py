"""Speed and memory of the KL-regularised policy-gradient tuner (``--algorithm kl_pg``).

Runs a complete default ``rltuner tune --algorithm kl_pg`` (1,000,000 composed notes, with its
evaluations, checkpoints, plots, samples, Table-1 statistics and the HTML report) in a
subprocess on one torch thread and prints and writes ``benchmarks/results/kl_pg.json``: wall
time, composed notes per second and the peak resident memory of the run (the largest of the
training process and its report child). ``--steps N`` runs a shorter one.

Usage: ``python benchmarks/bench_kl_pg.py [--steps 1000000] [--no-report]``
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

from rltuner.checkpoint import atomic_write_text


def full_run(steps: int, report: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rltuner.cli", "tune", "--algorithm", "kl_pg",
               "--steps", str(steps), "--out", f"{tmp}/run", "--quiet"]  # fmt: skip
        if not report:
            cmd.append("--no-report")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        seconds = time.perf_counter() - t0
        stats = json.loads(Path(f"{tmp}/run/stats.json").read_text())
        rows = [json.loads(x) for x in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "command": " ".join(["rltuner", *cmd[3:]]),
        "steps": rows[-1]["step"],
        "seconds": seconds,
        "notes_per_s": rows[-1]["step"] / seconds,
        "train_notes_per_s": rows[-1]["charts/steps_per_second"],
        "peak_rss_mib": peak_kib / 1024,
        "final_kl_per_step": rows[-1]["train/kl_per_step"],
        "final_mean_log_p": stats["mean_log_p"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--no-report", action="store_true", help="skip the HTML report")
    args = ap.parse_args()
    result = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
        "full_run": full_run(args.steps, not args.no_report),
        "load_average_after": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "kl_pg.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
