"""Benchmark chord-symbol parsing: rltuner's own parser against music21's ChordSymbol.

Parses every symbol the parser reads (14 root spellings × every quality alias, plus slash
chords) with :func:`rltuner.harmony.parse_chord` and, when music21 is installed (the ``data``
extra), with ``music21.harmony.ChordSymbol`` (the same chords in music21's spelling), and prints
microseconds per symbol. Writes the numbers to ``benchmarks/results/chords.json``.

    python benchmarks/bench_chords.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rltuner.harmony import QUALITY_ALIASES, parse_chord

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
    out = Path(__file__).parent / "results" / "chords.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
