"""The trade-off front: each algorithm over its trade-off knob, several seeds, one table + plots.

Q, Ψ and G run over the reward scaler ``c``; kl_pg over its KL coefficient ``β`` (fixed) or, with
``--kl-knob target_kl``, over the KL target of the adaptive β. Every run trains from the bundled
Note RNN for ``--steps`` composed notes (single-threaded), then samples ``--compositions``
melodies (as ``rltuner evaluate`` does) and records: Table-1 rows met vs the paper's Q column,
mean r_MT per step (unscaled, so runs with different ``c`` compare), KL(π‖p) per step,
mean log p, the held-out trigram log-likelihood, the share of distinct 8-step openings, the top
opening's share and the interval-histogram distance to the corpus.

One JSON per run lands in ``OUT/runs/``; a run whose file exists is skipped, so an interrupted
study continues where it stopped. Runs are ordered seed by seed (every knob value of seed 0
first), so a study cut short still covers every knob. At the end (or with ``--plots-only``):
``OUT/summary.json``, ``OUT/summary.md`` (means ± std over seeds, and the dominance check of the
issue) and ``OUT/tradeoff_*.png``.

Usage::

    python scripts/tradeoff_study.py --out study --workers 2
    python scripts/tradeoff_study.py --out study --plots-only --docs docs/images
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# "kl_pg+natural": kl_pg with its "natural" constraint preset (rltuner.constraints);
# "kl_pg": without constraints (the study's first runs, before the preset existed)
LABELS = {"q": "Q", "psi": "Ψ", "g": "G", "kl_pg": "KL-PG",
          "kl_pg+natural": "KL-PG + bounds"}  # fmt: skip
COLORS = {"q": "tab:blue", "psi": "tab:orange", "g": "tab:green", "kl_pg": "tab:red",
          "kl_pg+natural": "tab:purple"}  # fmt: skip
METRICS = ("rows", "mean_r_mt", "kl", "mean_log_p", "ngram", "distinct8", "top8", "interval_tv")


def run_one(job: dict) -> dict:
    """Train one configuration and evaluate it; returns the result row (also written)."""

    from rltuner.evaluate import EvalModel, evaluate_model, rows_matching_paper
    from rltuner.tuner import RLTuner, TunerConfig

    out = Path(job["path"])
    if out.exists():
        return json.loads(out.read_text())
    algorithm, _, preset = job["algorithm"].partition("+")
    kw = {"algorithm": algorithm, job["knob"]: job["value"], "seed": job["seed"]}
    if algorithm == "kl_pg":
        kw["constraints"] = preset or "none"
    if job["knob"] == "target_kl":
        kw["kl_coef"] = job["kl_coef_start"]
    cfg = TunerConfig(steps=job["steps"], eval_every=10**12, report=False, threads=1, **kw)
    t0 = time.perf_counter()
    tuner = RLTuner(cfg)
    tuner.train(None, progress=False)
    train_s = time.perf_counter() - t0
    model = EvalModel(job["name"], Path(job["name"]), tuner.learner.q.copy(), cfg.algorithm,
                      tuner.reward_rnn, Path(tuner.note_rnn_path))  # fmt: skip
    n = job["compositions"]
    ev, _ = evaluate_model(model, n, seed=1000 + job["seed"], workers=1)
    ro = tuner.rollout(n, 2000 + job["seed"])
    table1 = ev.table1()
    met = rows_matching_paper(table1)
    row = {
        **{k: job[k] for k in ("algorithm", "knob", "value", "seed", "steps", "compositions")},
        "rows": int(sum(met.values())),
        "rows_missed": [k for k, v in met.items() if not v],
        "mean_r_mt": float(ro.music_theory.mean()),
        "kl": ev.extra["kl_to_note_rnn"],
        "mean_log_p": ev.extra["mean_log_p"],
        "ngram": ev.extra["ngram_log_likelihood"],
        "distinct8": ev.extra["distinct_openings_8"],
        "top8": ev.extra["top_opening_share_8"],
        "interval_tv": ev.extra["interval_distance"],
        "table1": table1,
        "train_seconds": train_s,
        "final_kl_coef": getattr(tuner.learner, "kl_coef", None),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    if job.get("save_model"):  # the tuned policy, for a larger evaluation later
        tuner.save(out.with_suffix(".safetensors"))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1) + "\n")
    os.replace(tmp, out)
    return row


class _Inline:
    """``--workers 1``: the runs one after the other in this process (a pool's interface)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn, items):
        return map(fn, items)


def jobs(args: argparse.Namespace) -> list[dict]:
    knobs = {
        "q": ("reward_scaler", args.c_values),
        "psi": ("reward_scaler", args.c_values),
        "g": ("reward_scaler", args.c_values),
        "kl_pg": (args.kl_knob, args.kl_values),
        "kl_pg+natural": (args.kl_knob, args.kl_values),
    }
    out = []
    for seed in range(args.seeds):
        for alg in args.algorithms:
            knob, values = knobs[alg]
            for v in values:
                name = f"{alg}_{knob}_{v:g}_seed{seed}"
                out.append({"algorithm": alg, "knob": knob, "value": v, "seed": seed,
                            "steps": args.steps, "compositions": args.compositions,
                            "kl_coef_start": args.kl_coef_start, "name": name,
                            "save_model": alg.startswith("kl_pg"),
                            "path": str(Path(args.out) / "runs" / f"{name}.json")})  # fmt: skip
    return out


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (algorithm, knob value)."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["algorithm"], r["knob"], r["value"]), []).append(r)
    out = []
    for (alg, knob, value), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        s = {"algorithm": alg, "knob": knob, "value": value, "seeds": len(rs)}
        for m in METRICS:
            vals = np.array([r[m] for r in rs], dtype=float)
            s[m] = float(vals.mean())
            s[m + "_std"] = float(vals.std())
        out.append(s)
    return out


def dominance(summary: list[dict]) -> list[dict]:
    """For each Q/Ψ/G point: is there a kl_pg point with no more KL, at least as many rows and a
    higher trigram likelihood (the issue's criterion, on means over seeds)?"""
    pg = [s for s in summary if s["algorithm"].startswith("kl_pg")]
    checks = []
    for s in summary:
        if s["algorithm"].startswith("kl_pg"):
            continue
        wins = [p for p in pg if p["kl"] <= s["kl"] and p["rows"] >= s["rows"]
                and p["ngram"] > s["ngram"]]  # fmt: skip
        checks.append({"algorithm": s["algorithm"], "value": s["value"], "kl": s["kl"],
                       "rows": s["rows"], "ngram": s["ngram"], "dominated": bool(wins),
                       "by": [f"{p['algorithm']} {p['value']:g}" for p in wins]})  # fmt: skip
    return checks


def plot(summary: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [
        ("kl", "KL(π‖p) per step (nats)", "rows", "Table-1 rows met (of 11, paper's Q column)"),
        ("kl", "KL(π‖p) per step (nats)", "mean_r_mt", "mean r_MT per step (unscaled)"),
        ("ngram", "held-out trigram log-likelihood per step", "rows", "Table-1 rows met"),
        ("distinct8", "distinct 8-step openings (share of 2,000)", "rows", "Table-1 rows met"),
        ("ngram", "held-out trigram log-likelihood per step", "mean_r_mt", "mean r_MT per step"),
        ("kl", "KL(π‖p) per step (nats)", "ngram", "held-out trigram log-likelihood"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, (xk, xl, yk, yl) in zip(axes.flat, specs, strict=True):
        for alg in LABELS:
            pts = sorted((s for s in summary if s["algorithm"] == alg), key=lambda s: s[xk])
            if not pts:
                continue
            ax.errorbar(
                [p[xk] for p in pts],
                [p[yk] for p in pts],
                xerr=[p[xk + "_std"] for p in pts],
                yerr=[p[yk + "_std"] for p in pts],
                marker="o",
                ms=4,
                capsize=2,
                color=COLORS[alg],
                label=LABELS[alg],
            )
            for p in pts:
                knob = "c" if p["knob"] == "reward_scaler" else (
                    "β" if p["knob"] == "kl_coef" else "KL*")  # fmt: skip
                ax.annotate(
                    f"{knob}={p['value']:g}",
                    (p[xk], p[yk]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                    color=COLORS[alg],
                )
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle("Trade-off front: means ± std over seeds")
    fig.tight_layout()
    path = out / "tradeoff.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_summary(rows: list[dict], out: Path) -> dict:
    summary = summarise(rows)
    checks = dominance(summary)
    data = {"runs": len(rows), "summary": summary, "dominance": checks}
    (out / "summary.json").write_text(json.dumps(data, indent=1) + "\n")
    head = ["algorithm", "knob", "value", "seeds", "rows met", "mean r_MT", "KL/step",
            "log p", "trigram LL", "distinct 8-step", "top opening", "interval TV"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        f = lambda k, d=2, s=s: f"{s[k]:.{d}f} ± {s[k + '_std']:.{d}f}"  # noqa: E731
        lines.append("| " + " | ".join([
            LABELS[s["algorithm"]], s["knob"], f"{s['value']:g}", str(s["seeds"]), f("rows", 1),
            f("mean_r_mt"), f("kl", 3), f("mean_log_p"), f("ngram"), f("distinct8"),
            f("top8", 3), f("interval_tv", 3)]) + " |")  # fmt: skip
    lines += ["", "Dominance (a kl_pg point with KL ≤, rows ≥ and trigram LL > the baseline's):",
              ""]  # fmt: skip
    for c in checks:
        lines.append(
            f"- {LABELS[c['algorithm']]} c={c['value']:g} (KL {c['kl']:.3f}, rows "
            f"{c['rows']:.1f}, LL {c['ngram']:.2f}): "
            + (f"dominated by {', '.join(c['by'])}" if c["dominated"] else "NOT dominated")
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return data


def acceptance(out: Path, value: float, n: int, algorithm: str = "kl_pg") -> dict:
    """The issue's acceptance numbers for kl_pg at ``kl_coef = value`` (the default setting):
    each saved seed's policy evaluated on ``n`` compositions, and the mean over seeds."""
    import numpy as np

    from rltuner.evaluate import evaluate_model, load_model, rows_matching_paper

    per_seed = []
    for path in sorted((out / "runs").glob(f"{algorithm}_kl_coef_{value:g}_seed*.safetensors")):
        ev, _ = evaluate_model(load_model(path), n, seed=7)
        met = rows_matching_paper(ev.table1())
        per_seed.append({
            "model": path.name, "rows": int(sum(met.values())),
            "rows_missed": {k: ev.table1()[k] for k, v in met.items() if not v},
            "mean_log_p": ev.extra["mean_log_p"], "kl": ev.extra["kl_to_note_rnn"],
            "distinct8": ev.extra["distinct_openings_8"], "top8": ev.extra["top_opening_share_8"],
            "interval_tv": ev.extra["interval_distance"], "ngram": ev.extra["ngram_log_likelihood"],
            "table1": ev.table1(),
        })  # fmt: skip
        print(json.dumps(per_seed[-1]), flush=True)
    keys = ("rows", "mean_log_p", "kl", "distinct8", "top8", "interval_tv", "ngram")
    mean = {k: float(np.mean([r[k] for r in per_seed])) for k in keys} if per_seed else {}
    data = {"algorithm": algorithm, "kl_coef": value, "compositions": n,
            "seeds": len(per_seed), "mean": mean, "per_seed": per_seed}  # fmt: skip
    (out / f"acceptance_{algorithm}_{value:g}.json").write_text(json.dumps(data, indent=1) + "\n")
    return data


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tradeoff_study", help="output folder")
    ap.add_argument("--steps", type=int, default=1_000_000, help="composed notes per run")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--compositions", type=int, default=10_000, help="sampled per evaluation")
    ap.add_argument("--algorithms", nargs="+", default=["kl_pg", "q", "psi", "g"])
    ap.add_argument("--c-values", type=float, nargs="+", default=[0.5, 2.0, 8.0],
                    help="reward scalers c for Q, Ψ and G")  # fmt: skip
    ap.add_argument("--kl-knob", choices=["kl_coef", "target_kl"], default="kl_coef")
    ap.add_argument("--kl-values", type=float, nargs="+", default=[2.5, 5.0, 10.0, 20.0],
                    help="β values (or KL targets) for kl_pg")  # fmt: skip
    ap.add_argument("--kl-coef-start", type=float, default=5.0, help="β start for target_kl")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--plots-only", action="store_true", help="summarise what is there")
    ap.add_argument("--docs", help="also copy the plot into this folder")
    ap.add_argument("--acceptance", type=float, metavar="BETA",
                    help="only evaluate the saved kl_pg policies of this beta on 100,000 "
                    "compositions each (the issue's acceptance numbers)")  # fmt: skip
    ap.add_argument(
        "--acceptance-algorithm",
        default="kl_pg+natural",
        help="kl_pg+natural or kl_pg: whose policies --acceptance evaluates",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.acceptance is not None:
        done = acceptance(out, args.acceptance, 100_000, args.acceptance_algorithm)
        print(json.dumps(done["mean"], indent=1))
        return
    todo = jobs(args)
    t0 = time.perf_counter()
    if not args.plots_only:
        with (
            ProcessPoolExecutor(max_workers=args.workers) if args.workers > 1 else _Inline() as pool
        ):
            for row in pool.map(run_one, todo):
                print(f"[{time.perf_counter() - t0:7.0f} s] {row['algorithm']} "
                      f"{row['knob']}={row['value']:g} seed {row['seed']}: rows {row['rows']}, "
                      f"KL {row['kl']:.3f}, r_MT {row['mean_r_mt']:.2f}, LL {row['ngram']:.2f}, "
                      f"distinct8 {row['distinct8']:.2f}", flush=True)  # fmt: skip
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    if not rows:
        raise SystemExit(f"{out}: no finished runs")
    write_summary(rows, out)
    for p in plot(summarise(rows), out):
        if args.docs:
            Path(args.docs).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, Path(args.docs) / p.name)
    print(f"{len(rows)} runs; summary in {out}/summary.md", flush=True)
    if any(math.isnan(r["ngram"]) for r in rows):
        print("warning: some runs lack the trigram score (corpus reference missing)")


if __name__ == "__main__":
    # one thread per run (the runs themselves go side by side); set before anything imports numba
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    main()
