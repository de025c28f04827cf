"""How much do Table-1 results move with the seed? Tune with several seeds, compare each run
with the paper's Q column.

For every algorithm and seed: ``rltuner tune --algorithm A --seed S`` (paper defaults,
1,000,000 steps unless ``--steps``; skipped when the run folder already holds
``tuned.safetensors``), then ``--compositions`` sampled compositions per run are scored. Writes
``OUT/seed_study.md`` and ``OUT/seed_study.json``: per run, each row's value and whether it
matches or beats the paper's Q column (:func:`rltuner.evaluate.rows_matching_paper`), and per
algorithm how often each row did.

Usage::

    python scripts/seed_study.py --algorithms q,psi --seeds 0,1,2,3,4 --out results/seeds
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rltuner.evaluate import evaluate_models, rows_matching_paper
from rltuner.metrics import TABLE1_ROWS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algorithms", default="q,psi")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--steps", type=int, default=None, help="default: the tuner's (1,000,000)")
    ap.add_argument("--compositions", type=int, default=10_000)
    ap.add_argument("--runs", default="runs/seeds", help="folder for the tuning runs")
    ap.add_argument("--out", default="results/seeds")
    args = ap.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = []
    for alg in args.algorithms.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = runs / f"{alg}_seed{seed}"
            if not (run / "tuned.safetensors").exists():
                cmd = ["rltuner", "tune", "--algorithm", alg, "--seed", str(seed), "--out",
                       str(run), "--force", "--quiet", "--no-report"]  # fmt: skip
                if args.steps:
                    cmd += ["--steps", str(args.steps)]
                print(" ".join(cmd), flush=True)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            specs.append((alg, seed, f"{alg}_seed{seed}={run}"))
    comparison = evaluate_models([s for *_, s in specs], compositions=args.compositions)
    results = []
    for (alg, seed, _), m in zip(specs, comparison.models, strict=True):
        t1 = m.table1()
        results.append({"algorithm": alg, "seed": seed, "table1": t1,
                        "matches": rows_matching_paper(t1),
                        "mean_log_p": m.extra.get("mean_log_p")})  # fmt: skip

    short = ["rep", "ac1", "ac2", "ac3", "key", "tonic", "leaps", "umax", "umin", "motif",
             "rmotif"]  # fmt: skip
    lines = [f"Rows matching or beating the paper's Q column ({args.compositions:,} compositions "
             "per run; ✓ = match or beat at the paper's printed precision)", "",
             "| run | " + " | ".join(short) + " | rows met | log p |",
             "|---|" + "---|" * (len(short) + 2)]  # fmt: skip
    for r in results:
        cells = []
        for row in TABLE1_ROWS:
            v = r["table1"][row]
            txt = f"{v:.3f}" if row.startswith("Mean autocorrelation") else f"{100 * v:.2f}%"
            cells.append(("✓ " if r["matches"][row] else "") + txt)
        met = sum(r["matches"].values())
        lines.append(f"| {r['algorithm']} seed {r['seed']} | " + " | ".join(cells)
                     + f" | {met}/11 | {r['mean_log_p']:.2f} |")  # fmt: skip
    lines += ["", "| algorithm | runs | rows met (min / mean / max) | times each row was met |",
              "|---|---|---|---|"]  # fmt: skip
    for alg in args.algorithms.split(","):
        rs = [r for r in results if r["algorithm"] == alg]
        met = [sum(r["matches"].values()) for r in rs]
        per_row = ", ".join(f"{s} {sum(r['matches'][row] for r in rs)}"
                            for s, row in zip(short, TABLE1_ROWS, strict=True))  # fmt: skip
        lines.append(f"| {alg} | {len(rs)} | {min(met)} / {sum(met) / len(met):.1f} / {max(met)} "
                     f"| {per_row} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    (out / "seed_study.md").write_text(text)
    (out / "seed_study.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
