"""Benchmark ``rltuner evaluate``: sampling + every statistic for 100,000 compositions.

Times :func:`rltuner.evaluate.evaluate_model` (generation, Reward-RNN log p, KL, Table-1
statistics, extra statistics) for

* the default 1×100 Note RNN (its own Reward RNN: one LSTM per step) and
* a tuned 1×100 model (the policy and the Reward RNN both advance: two LSTMs per step),

after one small warm-up call (numba compilation is cached on disk, so it is excluded). Uses the
bundled Note RNN when installed, else a random 1×100 network (the speed does not depend on the
weights). Prints the numbers and writes ``benchmarks/results/evaluate.json``. The original
RL Tuner managed ~58 compositions/s on this machine (~29 minutes for 100,000).

    python benchmarks/bench_evaluate.py [--compositions 100000] [--batch 1024]

Each case runs on 1 thread and on ``default_workers()`` threads; wall and CPU seconds are
recorded with the 1-minute load average (the machine is shared: compare CPU seconds).

The naturalness metrics (:mod:`rltuner.naturalness`, part of every evaluation) are also timed
alone: building the corpus reference once per process (cold: loading the corpus, fitting the
trigram, the held-out windows' row) and scoring one model's compositions (``naturalness``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from rltuner.checkpoint import atomic_write_text
from rltuner.env import Network, load_network
from rltuner.evaluate import EvalModel, bundled_note_rnn_path, default_workers, evaluate_model
from rltuner.lstm_kernels import NetLayout
from rltuner.naturalness import bundled_reference, naturalness_stats

ORIGINAL_COMPOSITIONS_PER_SECOND = 58.0


def _base_network() -> tuple[Network, str]:
    path = bundled_note_rnn_path()
    if path.exists():
        return load_network(path)[0], str(path)
    layout = NetLayout((100,))
    rng = np.random.default_rng(0)
    theta = (rng.standard_normal(layout.num_params) * 0.15).astype(np.float32)
    return Network(layout, theta), "random 1x100 network"


def _time_naturalness(
    base: Network, source: str, compositions: int, batch: int
) -> dict[str, float]:
    """Seconds to build the corpus reference (cold) and to score ``compositions`` melodies."""
    bundled_reference.cache_clear()
    t0 = time.perf_counter()
    ref = bundled_reference()
    if ref is not None:
        ref.reference_stats(32)
    build = time.perf_counter() - t0
    _, ro = evaluate_model(EvalModel("Note RNN", Path(source), base), compositions, seed=0,
                           batch=batch)  # fmt: skip
    naturalness_stats(ro.compositions[:500], ref)  # compiled-code cache
    t0, c0 = time.perf_counter(), time.process_time()
    naturalness_stats(ro.compositions, ref)
    score, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"naturalness: reference built in {build:.2f} s (once per process; corpus "
          f"{'installed' if ref is not None else 'missing'}); {compositions:,} compositions "
          f"scored in {score:.3f} s wall, {cpu:.3f} s CPU per model")  # fmt: skip
    return {"reference_build_seconds": build, "seconds_per_model": score,
            "cpu_seconds_per_model": cpu, "corpus_installed": ref is not None}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compositions", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=1, help="take the best of this many runs")
    args = ap.parse_args()

    base, source = _base_network()
    tuned_net = base.copy()
    tuned_net.theta += (
        np.random.default_rng(1).normal(0, 0.05, tuned_net.theta.shape).astype(np.float32)
    )
    models = {
        "note_rnn": EvalModel("Note RNN", Path(source), base),
        "tuned_q": EvalModel("tuned (Q)", Path(source), tuned_net, "q", base, Path(source)),
    }
    results: dict[str, dict[str, float]] = {}
    naturalness = _time_naturalness(base, source, args.compositions, args.batch)
    for key, model in models.items():
        evaluate_model(model, 500, seed=0, batch=args.batch)  # warm-up (compiled-code cache)
        for workers in sorted({1, default_workers()}):
            best, cpu = float("inf"), float("inf")
            for r in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                ev, _ = evaluate_model(model, args.compositions, seed=r, batch=args.batch,
                                       workers=workers)  # fmt: skip
                best = min(best, time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0)
            rate = args.compositions / best
            results[f"{key}/workers_{workers}"] = {
                "seconds": best,
                "cpu_seconds": cpu,
                "compositions_per_second": rate,
                "seconds_per_100k": 100_000 / rate,
                "speedup_vs_original": rate / ORIGINAL_COMPOSITIONS_PER_SECOND,
                "mean_log_p": ev.extra["mean_log_p"],
            }
            print(f"{model.name:<10} workers={workers} {args.compositions:,} compositions in "
                  f"{best:6.2f} s wall, {cpu:6.2f} s CPU ({rate:,.0f}/s; 100,000 in "
                  f"{100_000 / rate:.2f} s; {rate / ORIGINAL_COMPOSITIONS_PER_SECOND:,.0f}x "
                  "the original)")  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": load,
        "model": source,
        "compositions": args.compositions,
        "batch": args.batch,
        "num_notes": 32,
        "results": results,
        "naturalness": naturalness,
    }
    path = Path(__file__).parent / "results" / "evaluate.json"
    atomic_write_text(path, json.dumps(out, indent=2) + "\n")
    print(f"load average (1 min) {load:.2f}; wrote {path}")


if __name__ == "__main__":
    main()
