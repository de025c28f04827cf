"""Benchmark the harmony code: chord-symbol parsing (rltuner's own parser against music21's
ChordSymbol), the harmony rule kernel and the harmony statistics.

* Parses every symbol the parser reads (14 root spellings × every quality alias, plus slash
  chords) with :func:`rltuner.harmony.parse_chord` and, when music21 is installed (the ``data``
  extra), with ``music21.harmony.ChordSymbol`` (the same chords in music21's spelling):
  microseconds per symbol.
* :func:`rltuner.harmony.harmony_step_into` against :func:`rltuner.rewards.evaluate_step_into`
  (the music-theory rules) on B = 64 random 32-step compositions: microseconds per
  composition-step.
* :func:`rltuner.harmony.harmony_statistics` on 100,000 × 32 compositions: seconds.

Writes the numbers to ``benchmarks/results/chords.json``.

    python benchmarks/bench_chords.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rltuner.checkpoint import atomic_write_text
from rltuner.encoding import C_MAJOR
from rltuner.harmony import (
    COMMON_PROGRESSIONS,
    HARMONY_RULE_NAMES,
    QUALITY_ALIASES,
    HarmonyTables,
    harmony_statistics,
    harmony_step_into,
    parse_chord,
    parse_progression,
)
from rltuner.rewards import LeapState, RuleTables, StepEvaluation, evaluate_step_into

N = 32

ROOTS = ("C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B")
# music21's spelling of each canonical quality; its roots write a flat as '-'
M21_QUALITY = {
    "major": "", "minor": "m", "dim": "dim", "aug": "+", "sus2": "sus2", "sus4": "sus4",
    "7": "7", "maj7": "maj7", "m7": "m7", "m7b5": "m7b5", "dim7": "dim7", "6": "6", "m6": "m6",
}  # fmt: skip


def symbols() -> list[tuple[str, str]]:
    """(rltuner symbol, the same chord in music21's spelling) pairs."""
    out = []
    for root in ROOTS:
        m21_root = root[0] + root[1:].replace("b", "-")
        for alias, quality in QUALITY_ALIASES.items():
            out.append((root + alias, m21_root + M21_QUALITY[quality]))
        out.append((root + "/E", m21_root + "/E"))
        out.append((root + "m7/Bb", m21_root + "m7/B-"))
    return out


def per_symbol_us(parse, texts: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in texts:
            parse(s)
        best = min(best, time.perf_counter() - t0)
    return best / len(texts) * 1e6


def random_compositions(rng: np.random.Generator, m: int) -> np.ndarray:
    """Melody-like random compositions: mostly small steps in C major, some rests/holds."""
    steps = rng.choice([-4, -3, -2, -1, 0, 1, 2, 3, 4, 7, -7], size=(m, N))
    notes = np.clip(14 + np.cumsum(steps, axis=1), 2, 37)
    special = rng.random((m, N))
    return np.where(special < 0.15, 1, np.where(special < 0.2, 0, notes)).astype(np.int8)


def bench_rules(batch: int, episodes: int, rng: np.random.Generator) -> tuple[float, float]:
    """Microseconds per composition-step of (harmony rules, music-theory rules)."""
    tables = HarmonyTables.build([parse_progression(t) for t in COMMON_PROGRESSIONS], N)
    chord_of = np.ascontiguousarray(tables.steps[rng.integers(0, len(COMMON_PROGRESSIONS), batch)])
    rule_tables = RuleTables.from_key(C_MAJOR, N)
    comps = random_compositions(rng, batch)
    out = np.zeros((batch, len(HARMONY_RULE_NAMES)))
    ev = StepEvaluation.empty(batch)
    obs = np.full(batch, -1, dtype=np.int64)
    beat = np.zeros(batch, dtype=np.int64)
    actions = [np.ascontiguousarray(comps[:, i], dtype=np.int64) for i in range(N)]
    harmony_s = theory_s = 0.0
    for _ in range(episodes):
        leap = LeapState.initial(batch)
        t0 = time.perf_counter()
        for i in range(N):
            beat[:] = i
            harmony_step_into(comps, beat, actions[i], chord_of, tables, C_MAJOR, out)
        t1 = time.perf_counter()
        for i in range(N):
            beat[:] = i
            evaluate_step_into(comps, beat, actions[i], leap, rule_tables, obs, ev, leap)
        t2 = time.perf_counter()
        harmony_s += t1 - t0
        theory_s += t2 - t1
    steps = episodes * N * batch
    return harmony_s / steps * 1e6, theory_s / steps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    pairs = symbols()
    ours = [a for a, _ in pairs]
    result: dict[str, object] = {
        "symbols": len(pairs),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    result["rltuner_us_per_symbol"] = per_symbol_us(parse_chord, ours, 3 if args.quick else 20)
    print(f"rltuner parse_chord: {result['rltuner_us_per_symbol']:.2f} us/symbol "
          f"({len(pairs)} symbols)")  # fmt: skip
    try:
        from music21 import harmony
    except ImportError:
        print("music21 not installed (pip install 'rltuner[data]'): no comparison")
    else:
        m21 = [b for _, b in pairs]
        harmony.ChordSymbol("C")  # first-call set-up out of the timing
        us = per_symbol_us(harmony.ChordSymbol, m21, 1 if args.quick else 3)
        result["music21_us_per_symbol"] = us
        result["speedup"] = us / result["rltuner_us_per_symbol"]
        print(
            f"music21 ChordSymbol: {us:.1f} us/symbol; rltuner is {result['speedup']:.0f}x faster"
        )
    rng = np.random.default_rng(0)
    bench_rules(64, 2, rng)  # compile
    h_us, t_us = bench_rules(64, 50 if args.quick else 500, rng)
    result["harmony_rules_us_per_step_b64"] = h_us
    result["music_theory_rules_us_per_step_b64"] = t_us
    print(f"harmony_step_into: {h_us:.3f} us per composition-step (B = 64); "
          f"the music-theory rules: {t_us:.3f} us ({h_us / t_us:.1%})")  # fmt: skip
    tables = HarmonyTables.build([parse_progression(t) for t in COMMON_PROGRESSIONS], N)
    comps = random_compositions(rng, 100_000)
    chord_of = tables.steps[rng.integers(0, len(COMMON_PROGRESSIONS), comps.shape[0])]
    harmony_statistics(comps[:10], chord_of[:10], tables)  # compile
    best = float("inf")
    for _ in range(3 if args.quick else 10):
        t0 = time.perf_counter()
        stats = harmony_statistics(comps, chord_of, tables)
        best = min(best, time.perf_counter() - t0)
    result["statistics_s_100000x32"] = best
    print(
        f"harmony_statistics on 100,000 x 32: {best * 1e3:.1f} ms  "
        + ", ".join(f"{k} {v:.3f}" for k, v in stats.items())
    )
    out = Path(__file__).parent / "results" / "chords.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
