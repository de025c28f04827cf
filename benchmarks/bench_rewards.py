"""Benchmark the reward kernel and the Table-1 statistics.

Prints microseconds per composition-step of :func:`rltuner.rewards.evaluate_step` (allocating)
and :func:`rltuner.rewards.evaluate_step_into` (preallocated, the RL hot loop) for batch sizes
1, 64 and 256 over whole random 32-step compositions, and the throughput of
:func:`rltuner.metrics.composition_stats` on 100,000 × 32 compositions. Writes the numbers to
``benchmarks/results/rewards.json``.

    python benchmarks/bench_rewards.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rltuner.checkpoint import atomic_write_text
from rltuner.metrics import composition_stats
from rltuner.rewards import (
    LeapState,
    RuleTables,
    StepEvaluation,
    evaluate_step,
    evaluate_step_into,
)

N = 32


def _random_compositions(rng: np.random.Generator, m: int) -> np.ndarray:
    """Melody-like random compositions: mostly small steps in C major, some rests/holds."""
    steps = rng.choice([-4, -3, -2, -1, 0, 1, 2, 3, 4, 7, -7], size=(m, N))
    notes = np.clip(14 + np.cumsum(steps, axis=1), 2, 37)
    special = rng.random((m, N))
    out = np.where(special < 0.15, 1, np.where(special < 0.2, 0, notes))
    return out.astype(np.int8)


def bench_step(batch: int, episodes: int, into: bool, rng: np.random.Generator) -> float:
    """Microseconds per composition-step over ``episodes`` whole compositions of ``batch``."""
    tables = RuleTables.from_key()
    comps = _random_compositions(rng, batch)
    obs = np.full(batch, 14, dtype=np.int64)
    out = StepEvaluation.empty(batch)
    beat = np.zeros(batch, dtype=np.int64)
    total = 0.0
    for _ in range(episodes):
        leap = LeapState.initial(batch)
        t0 = time.perf_counter()
        for i in range(N):
            beat[:] = i
            action = comps[:, i].astype(np.int64)
            if into:
                evaluate_step_into(comps, beat, action, leap, tables, obs, out, leap)
            else:
                _, leap = evaluate_step(comps, beat, action, leap, tables, obs)
        total += time.perf_counter() - t0
    return 1e6 * total / (episodes * N * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    bench_step(4, 1, False, rng)  # compile / load the cache
    bench_step(4, 1, True, rng)
    composition_stats(_random_compositions(rng, 4))

    results: dict[str, object] = {"machine": platform.processor() or platform.machine()}
    steps = {}
    for batch in (1, 64, 256):
        episodes = max(2, (2000 if not args.quick else 300) // batch)
        steps[str(batch)] = {
            "evaluate_step_us": bench_step(batch, episodes, False, rng),
            "evaluate_step_into_us": bench_step(batch, episodes, True, rng),
        }
        print(f"B={batch:4d}: evaluate_step {steps[str(batch)]['evaluate_step_us']:.3f} µs, "
              f"evaluate_step_into {steps[str(batch)]['evaluate_step_into_us']:.3f} µs "
              "per composition-step")  # fmt: skip
    results["us_per_composition_step"] = steps

    m = 100_000 if not args.quick else 20_000
    comps = _random_compositions(rng, m)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        composition_stats(comps)
        best = min(best, time.perf_counter() - t0)
    results["composition_stats"] = {
        "compositions": m,
        "notes_per_composition": N,
        "seconds": best,
        "compositions_per_second": m / best,
    }
    print(f"composition_stats: {m} x {N} in {best:.3f} s ({m / best:,.0f} compositions/s)")

    out = Path(__file__).parent / "results" / "rewards.json"
    atomic_write_text(out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
