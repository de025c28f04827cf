"""The seed study (docs/seed_study.md) as a sweep: a thin wrapper around

    rltuner sweep examples/sweeps/seed_study.toml --out OUT      (or --resume OUT)

It continues the sweep when OUT already holds it, and prints OUT/results.md (one row per run:
every Table-1 value, ✓ where it matches or beats the paper's Q column, rows met, log p, KL,
distinct melodies). Further options go to ``rltuner sweep`` (e.g. ``--address auto``).

    python scripts/seed_study.py [--out sweeps/seed_study] [rltuner sweep options]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "examples" / "sweeps" / "seed_study.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="sweeps/seed_study")
    args, rest = ap.parse_known_args()
    out = Path(args.out)
    where = ["--resume", str(out)] if (out / "trials.json").is_file() else [str(SPEC), "--out",
                                                                            str(out)]  # fmt: skip
    rc = subprocess.call([sys.executable, "-m", "rltuner.cli", "sweep", *where, *rest])
    if rc == 0:
        sys.stdout.write((out / "results.md").read_text())
    sys.exit(rc)


if __name__ == "__main__":
    main()
