"""A sweep's results: one row per trial, tables, plots and an offline HTML page.

Reads only what the trials wrote into their run directories (``evaluation.json`` from the
evaluation of every finished trial, ``stats.json``, ``metrics.jsonl``, ``sweep_trial.json``)
plus the sweep's ``trials.json`` and ``status.json``; needs no Ray, so
``rltuner report SWEEP_DIR`` works anywhere the folder is.

Per trial: its swept settings, its state, the steps it ran, the Table-1 rows that match or beat
the paper's Q column (:func:`rltuner.evaluate.rows_matching_paper`), every Table-1 value, every
further statistic of the evaluation (``ModelEvaluation.to_dict()["extra"]``: mean log p(a|s),
KL to the Note RNN, distinct melodies, …), ``r_mt`` (mean unscaled music-theory reward per
step of the run's end-of-run compositions, ``stats.json``) and the trial's wall time (training
and evaluation, summed over its attempts).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.checkpoint import atomic_write_text
from rltuner.errors import RltunerError
from rltuner.metrics import TABLE1_ROWS

__all__ = ["collect", "write_results", "plot_results", "write_sweep_report", "SHORT_ROWS"]

SHORT_ROWS = dict(zip(TABLE1_ROWS, ("rep", "ac1", "ac2", "ac3", "key", "tonic", "leaps", "umax",
                                    "umin", "motif", "rmotif"), strict=True))  # fmt: skip
_MAIN_EXTRA = ("mean_log_p", "kl_to_note_rnn", "distinct_share")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_step(run: Path) -> int:
    step = 0
    try:
        for line in (run / "metrics.jsonl").read_text().splitlines():
            try:
                step = max(step, int(json.loads(line).get("step", 0)))
            except (ValueError, AttributeError):
                continue  # a line torn by a kill
    except OSError:
        pass
    return step


def collect(
    out: str | os.PathLike, spec: Any, trials: list[Any], states: dict[str, str]
) -> dict[str, Any]:
    """The results of the sweep in ``out`` (its :class:`rltuner.sweep.SweepSpec`, trials and
    their states, as :func:`rltuner.sweep.collect_results` reads them): ``{"sweep", "swept",
    "evaluation", "trials"}`` with one dict per trial (see the module docstring). Unfinished
    trials have ``None`` statistics."""
    out = Path(out)
    rows = []
    for t in trials:
        run = out / "trials" / t.name
        ev = _read_json(run / "evaluation.json")
        m = ev["models"][0] if ev else None
        stats = _read_json(run / "stats.json") if m else None
        info = _read_json(run / "sweep_trial.json") or {}
        rows.append({
            "trial": t.name,
            "status": states[t.name],
            "settings": t.settings,
            "steps": _last_step(run),
            "rows_met": sum(m["matches_paper_q"].values()) if m else None,
            "matches_paper_q": m["matches_paper_q"] if m else None,
            "table1": m["table1"] if m else None,
            "extra": m["extra"] if m else None,
            "r_mt": stats.get("mean_music_theory") if stats else None,
            "wall_seconds": info.get("wall_seconds"),
            "attempts": len(info.get("attempts", [])),
            "run_dir": str(Path("trials") / t.name),
        })  # fmt: skip
    return {
        "sweep": str(out),
        "swept": [d.key for d in spec.space],
        "evaluation": {"compositions": spec.evaluation.compositions, "seed": spec.evaluation.seed},
        "trials": rows,
    }


def _extra_keys(results: dict[str, Any]) -> list[str]:
    keys: dict[str, None] = {}
    for r in results["trials"]:
        keys.update(dict.fromkeys(r["extra"] or {}))
    return list(keys)


def _flat(r: dict[str, Any], swept: list[str], extra: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": r["trial"], "status": r["status"]}
    row.update({k: json.dumps(v) if isinstance(v, list) else r["settings"].get(k)
                for k, v in ((k, r["settings"].get(k)) for k in swept)})  # fmt: skip
    row["steps"] = r["steps"]
    row["rows_met"] = r["rows_met"]
    row.update({name: (r["table1"] or {}).get(name) for name in TABLE1_ROWS})
    row.update({k: (r["extra"] or {}).get(k) for k in extra})
    row.update({"r_mt": r["r_mt"], "wall_seconds": r["wall_seconds"], "attempts": r["attempts"],
                "run_dir": r["run_dir"]})  # fmt: skip
    return row


def _to_csv(results: dict[str, Any]) -> str:
    swept, extra = results["swept"], _extra_keys(results)
    flat = [_flat(r, swept, extra) for r in results["trials"]]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["trial"], lineterminator="\n")
    w.writeheader()
    for row in flat:
        w.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v)
                    for k, v in row.items()})  # fmt: skip
    return buf.getvalue()


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _cell(row: str, v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.3f}" if row.startswith("Mean autocorrelation") else f"{100 * v:.2f}%"


def _setting_text(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)


def _table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the per-trial table (Markdown and HTML)."""
    swept = results["swept"]
    extra = [k for k in _extra_keys(results) if k in _MAIN_EXTRA or k.startswith("distinct")]
    head = ["trial", *swept, "status", "steps", "rows met",
            *(SHORT_ROWS[r] for r in TABLE1_ROWS), *extra, "r_MT", "wall s"]  # fmt: skip
    body = []
    for r in results["trials"]:
        cells = [r["trial"][:3], *(_setting_text(r["settings"].get(k)) for k in swept),
                 r["status"], f"{r['steps']:,}",
                 "" if r["rows_met"] is None else f"{r['rows_met']}/11"]  # fmt: skip
        for row in TABLE1_ROWS:
            v = (r["table1"] or {}).get(row)
            met = (r["matches_paper_q"] or {}).get(row)
            cells.append(("✓ " if met else "") + _cell(row, v))
        ex = r["extra"] or {}
        cells += [_cell("share", ex.get(k)) if k.startswith("distinct") else _num(ex.get(k))
                  for k in extra]  # fmt: skip
        cells += [_num(r["r_mt"]), _num(r["wall_seconds"], 1)]
        body.append(cells)
    return head, body


def _groups(results: dict[str, Any], key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in results["trials"]:
        if r["rows_met"] is not None:
            out[_setting_text(r["settings"].get(key))].append(r)
    return dict(out)


def _summary(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per value of each swept setting (but the seed): trials, rows met min / mean / max,
    mean KL and log p."""
    head = ["setting", "value", "trials", "rows met (min / mean / max)", "KL", "log p"]
    body = []
    keys = [k for k in results["swept"] if k != "seed"] or ["seed"]
    for key in keys:
        for value, rs in _groups(results, key).items():
            met = [r["rows_met"] for r in rs]
            kl = [r["extra"].get("kl_to_note_rnn") or math.nan for r in rs]
            lp = [r["extra"].get("mean_log_p") or math.nan for r in rs]
            body.append([key, value, str(len(rs)),
                         f"{min(met)} / {np.mean(met):.1f} / {max(met)}",
                         _num(float(np.mean(kl))), _num(float(np.mean(lp)))])  # fmt: skip
    return head, body


def _md(head: list[str], body: list[list[str]]) -> list[str]:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return lines


def _to_markdown(results: dict[str, Any]) -> str:
    ev = results["evaluation"]
    lines = [f"# Sweep {Path(results['sweep']).name}", "",
             f"{len(results['trials'])} trials; each finished trial evaluated on "
             f"{ev['compositions']:,} sampled compositions (seed {ev['seed']}). ✓ = matches or "
             "beats the paper's Q column at its printed precision (rows 1–5 lower is better, "
             "|autocorrelation|).", ""]  # fmt: skip
    lines += _md(*_table(results))
    columns = ", ".join(f"{s} = {r}" for r, s in SHORT_ROWS.items())
    lines += ["", f"Columns: {columns}; r_MT = mean music-theory reward per step (unscaled, "
              "the run's stats.json).", ""]  # fmt: skip
    head, body = _summary(results)
    if body:
        lines += ["## By setting", ""] + _md(head, body) + [""]
    return "\n".join(lines)


def write_results(out: str | os.PathLike, results: dict[str, Any],
                  plots: bool = True) -> dict[str, Path]:  # fmt: skip
    """Write ``results.json``, ``results.csv``, ``results.md`` (and ``plots/``) into ``out``."""
    out = Path(out)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    atomic_write_text(paths["json"], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(paths["csv"], _to_csv(results))
    atomic_write_text(paths["md"], _to_markdown(results))
    if plots:
        paths.update({f"plot:{p.stem}": p for p in plot_results(results, out / "plots")})
    return paths


# ---------------------------------------------------------------------- plots
def _metrics(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, key) of every plotted metric; key ``table1:ROW``, ``extra:K``, ``rows_met`` or
    ``r_mt``."""
    out = [("rows met (of 11)", "rows_met"), ("r_MT per step", "r_mt")]
    out += [(r, f"table1:{r}") for r in TABLE1_ROWS]
    out += [(k, f"extra:{k}") for k in _extra_keys(results)
            if k in _MAIN_EXTRA or k.startswith("distinct")]  # fmt: skip
    return out


def _get(r: dict[str, Any], key: str) -> float:
    if key in ("rows_met", "r_mt"):
        v = r[key]
    else:
        section, _, name = key.partition(":")
        v = (r[section] or {}).get(name)
    return math.nan if v is None else float(v)


def plot_results(results: dict[str, Any], plot_dir: str | os.PathLike) -> list[Path]:
    """``tradeoff.png`` (rows met and r_MT against KL, one colour per combination of the
    settings other than the seed) and, per swept setting other than the seed,
    ``by_SETTING.png``: every metric against the setting's value, mean over seeds with their
    standard deviation as error bars (one line per combination of the other settings)."""
    from rltuner.report import _pyplot

    plt = _pyplot()
    done = [r for r in results["trials"] if r["rows_met"] is not None]
    d = Path(plot_dir)
    d.mkdir(parents=True, exist_ok=True)
    if not done:
        return []
    swept = results["swept"]
    paths = []
    others = [k for k in swept if k != "seed"]

    def label(r: dict[str, Any], keys: list[str]) -> str:
        return ", ".join(f"{k}={_setting_text(r['settings'][k])}" for k in keys) or "all"

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in done:
        series[label(r, others) if len(others) <= 3 else "trials"].append(r)
    for i, (name, rs) in enumerate(series.items()):
        kl = [_get(r, "extra:kl_to_note_rnn") for r in rs]
        for ax, key in zip(axes, ("rows_met", "r_mt"), strict=True):
            ax.scatter(kl, [_get(r, key) for r in rs], color=f"C{i % 10}", s=22,
                       label=name if ax is axes[0] else None)  # fmt: skip
    for ax, title in zip(axes, ("Table-1 rows met vs the paper's Q", "r_MT per step"),
                         strict=True):  # fmt: skip
        ax.set_xlabel("KL(model ‖ Note RNN) per step (nats)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    if len(series) <= 12:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(d / "tradeoff.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    metrics = _metrics(results)
    for key in others:
        values = sorted({_setting_text(r["settings"][key]) for r in done},
                        key=lambda s: (_as_float(s) is None, _as_float(s) or 0.0, s))  # fmt: skip
        if len(values) < 2:
            continue
        numeric = all(_as_float(v) is not None for v in values)
        xs_of = {v: (_as_float(v) if numeric else i) for i, v in enumerate(values)}
        rest = [k for k in others if k != key]
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in done:
            lines[label(r, rest) if len(rest) <= 2 else "all"].append(r)
        ncols = 4
        nrows = -(-len(metrics) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows), squeeze=False)
        for ax, (mlabel, mkey) in zip(axes.flat, metrics, strict=False):
            for i, (name, rs) in enumerate(lines.items()):
                xs, ys, es = [], [], []
                for v in values:
                    vals = [_get(r, mkey) for r in rs if _setting_text(r["settings"][key]) == v]
                    vals = [x for x in vals if not math.isnan(x)]
                    if vals:
                        xs.append(xs_of[v])
                        ys.append(float(np.mean(vals)))
                        es.append(float(np.std(vals)) if len(vals) > 1 else 0.0)
                ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=3, color=f"C{i % 10}",
                            label=name)  # fmt: skip
            ax.set_title(mlabel, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if not numeric:
                ax.set_xticks(range(len(values)))
                ax.set_xticklabels(values, fontsize=7)
            elif min(xs_of.values()) > 0 and max(xs_of.values()) / min(xs_of.values()) > 20:
                ax.set_xscale("log")
        for ax in list(axes.flat)[len(metrics) :]:
            ax.axis("off")
        if len(lines) > 1:
            axes.flat[0].legend(fontsize=6)
        fig.suptitle(f"Metrics against {key} (mean over seeds; bars: standard deviation)",
                     fontsize=10)  # fmt: skip
        fig.tight_layout()
        paths.append(d / f"by_{key.replace('.', '_')}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def _as_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


# ---------------------------------------------------------------------- HTML
def write_sweep_report(
    out: str | os.PathLike, results: dict[str, Any], path: str | os.PathLike | None = None
) -> Path:
    """One self-contained HTML page of the sweep in ``out`` (default ``out/report.html``) with
    its ``results`` (:func:`rltuner.sweep.collect_results`): the SPEC, the per-trial table, the
    per-setting summary and every plot (embedded)."""
    from rltuner.report import _CSS, _img

    out = Path(out)
    if not (out / "trials.json").is_file():
        raise RltunerError(f"{out}: not a sweep folder (no trials.json)")
    paths = write_results(out, results)
    e = html.escape
    states = [r["status"] for r in results["trials"]]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>rltuner sweep: {e(out.name)}</title>", f"<style>{_CSS}</style>",
             "</head><body>", f"<h1>Sweep <code>{e(out.name)}</code></h1>",
             f'<p class="muted">{e(str(out.resolve()))} · {len(states)} trials: {e(counts)} · '
             "self-contained (no network)</p>"]  # fmt: skip

    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"

    ev = results["evaluation"]
    parts.append(f"<h2>Trials</h2><p>Each finished trial evaluated on {ev['compositions']:,} "
                 f"compositions (seed {ev['seed']}); ✓ = matches or beats the paper's Q column."
                 "</p>")  # fmt: skip
    parts.append(table(*_table(results)))
    parts.append('<p class="muted">' + e(", ".join(f"{s} = {r}" for r, s in SHORT_ROWS.items()))
                 + "</p>")  # fmt: skip
    head, body = _summary(results)
    if body:
        parts += ["<h2>By setting</h2>", table(head, body)]
    parts.append("<h2>Plots</h2>")
    for key, p in paths.items():
        if key.startswith("plot:"):
            parts.append(f"<h3>{e(p.stem.replace('_', ' '))}</h3>{_img(p, p.stem)}")
    spec = (out / "spec.toml").read_text()
    parts.append(f"<details open><summary>SPEC</summary><pre>{e(spec)}</pre></details>")
    parts.append("</body></html>")
    target = Path(path) if path is not None else out / "report.html"
    atomic_write_text(target, "\n".join(parts) + "\n")
    return target
