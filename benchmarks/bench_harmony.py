"""Wall time of a default run over chords against the same run without them.

Runs complete default ``rltuner tune`` runs (1,000,000 steps, evaluations, checkpoints, plots,
samples, statistics and the report), alternating ``--chords "C G Am F"`` (harmony rules + chord
conditioning) and no chords, ``--rounds`` times each, one process at a time, and prints and
writes ``benchmarks/results/harmony.json``: every run's wall seconds and peak memory (the
largest resident set of a run's processes), the median of each side and their ratio. Run it on
an otherwise idle machine: the ratio is the number to read. Short runs of both kinds go first,
so no timed run compiles the numba kernels.

Usage: ``python benchmarks/bench_harmony.py [--steps 1000000] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rltuner.checkpoint import atomic_write_text

CHORDS = "C G Am F"


def one_run(steps: int, chords: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rltuner.cli", "tune", "--steps", str(steps),
               "--out", f"{tmp}/run", "--quiet"]  # fmt: skip
        if chords:
            cmd += ["--chords", CHORDS]
        if steps < 1_000_000:
            cmd += ["--eval-every", str(min(50_000, steps)), "--exploration-period",
                    str(steps // 2)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        timed = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
        t0 = time.perf_counter()
        p = subprocess.run(timed + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, env=env, check=True)  # fmt: skip
        seconds = time.perf_counter() - t0
        rss_kb = int(p.stderr.strip().splitlines()[-1]) if timed else 0
        stats = json.loads(Path(f"{tmp}/run/stats.json").read_text())
    return {
        "chords": CHORDS if chords else None,
        "seconds": seconds,
        "max_rss_mib": rss_kb / 1024,
        "strong_beat_chord_tones": (stats.get("harmony") or {}).get("strong_beat_chord_tones"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/harmony.json")
    args = ap.parse_args()
    # warm-up: short runs of both kinds, so that no timed run compiles the numba kernels
    for chords in (False, True):
        one_run(2000, chords)
    runs = []
    for r in range(args.rounds):
        for chords in (False, True) if r % 2 == 0 else (True, False):
            res = one_run(args.steps, chords)
            runs.append(res)
            side = "chords" if chords else "plain "
            print(f"round {r}: {side} {res['seconds']:.2f} s, {res['max_rss_mib']:.0f} MiB")
    plain = statistics.median(x["seconds"] for x in runs if not x["chords"])
    over = statistics.median(x["seconds"] for x in runs if x["chords"])
    result = {
        "steps": args.steps,
        "rounds": args.rounds,
        "runs": runs,
        "median_seconds_plain": plain,
        "median_seconds_chords": over,
        "ratio": over / plain,
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },  # fmt: skip
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"median: without chords {plain:.2f} s, with {CHORDS!r} {over:.2f} s, "
          f"ratio {over / plain:.3f}")  # fmt: skip
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
