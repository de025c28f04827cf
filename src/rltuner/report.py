"""Plots and the HTML report of a run (reading logs and results, never training).

Plots (matplotlib, Agg backend; PNG, or SVG with ``fmt="svg"``): training and evaluation
reward curves (:func:`plot_training`, :func:`plot_training_run`), the note-probability
heatmap of one melody (:func:`plot_note_probabilities`), piano rolls
(:func:`plot_piano_rolls`) and a grouped bar chart of the Table-1 metrics of several models
(:func:`plot_comparison`) and the melodic-interval, pitch-class and onset-position
distributions of several models against the corpus (:func:`plot_distributions`). None of them
needs torch.

:func:`write_report` writes one self-contained HTML file (images and audio embedded as base64
data URIs, no script or style from the network): configuration, training curves, the Table-1
comparison of the tuned model with its untuned Note RNN (and any other models), a
note-probability heatmap, and side-by-side players with piano rolls for sample melodies.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rltuner.checkpoint import atomic_path, atomic_write_text
from rltuner.encoding import (
    FIRST_NOTE_CLASS,
    NUM_CLASSES,
    PITCH_NAMES,
    STEPS_PER_BAR,
    STEPS_PER_QUARTER,
    class_label,
    melody_to_notes,
)
from rltuner.errors import RltunerError
from rltuner.harmony import ChordSpan, Progression
from rltuner.naturalness import INTERVAL_LABELS, format_opening

if TYPE_CHECKING:
    from rltuner.evaluate import Comparison

__all__ = [
    "plot_training",
    "read_history",
    "plot_training_run",
    "plot_note_probabilities",
    "plot_piano_rolls",
    "plot_comparison",
    "plot_distributions",
    "write_report",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(history: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r[key]) for r in history if key in r]
    if not rows:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(rows, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _save(fig, path: Path, fmt: str) -> None:
    with atomic_path(path, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight")


# Keys renamed when "total" had two meanings; rows of older runs are read under the new names.
LEGACY_KEYS = {
    "train/total_reward": "train/reward",
    "eval/total_reward": "eval/log_p_plus_music_theory",
}


def upgrade_row(row: dict) -> dict:
    """A log row with the keys of older runs renamed (:data:`LEGACY_KEYS`)."""
    return {LEGACY_KEYS.get(k, k): v for k, v in row.items()}


def _robust_limits(ys: list[np.ndarray]) -> tuple[float, float] | None:
    """y-limits that the first window (exploration at ε ≈ 1, an untrained policy) does not
    set: the range of the later windows, padded; None when the first point lies within it."""
    later = [y[1:] for y in ys if y.size > 2]
    if not later:
        return None
    rest = np.concatenate(later)
    lo, hi = float(rest.min()), float(rest.max())
    pad = 0.1 * (hi - lo) or 0.1 * max(abs(hi), 1.0)
    first = np.array([y[0] for y in ys if y.size > 2])
    if ((first >= lo - pad) & (first <= hi + pad)).all():
        return None
    return lo - pad, hi + pad


def plot_training(
    history: Sequence[dict], out_dir: str | os.PathLike, fmt: str = "png"
) -> list[Path]:
    """Training rewards (the reward the agent maximises / music theory / Note RNN), evaluation
    rewards and mean target values per log window, as images in ``out_dir`` (a kl_pg run: its
    KL and β, its PPO losses and the prices of its bounds, instead of the target values; a
    plot none of whose keys were logged is not drawn). Rewards are per step (one 16th note),
    log p in nats. The y-range of the reward plots is that of the windows after the first
    (whose value, far off at ε ≈ 1, is then written on the plot). A line equal to another (G
    and RL-only runs are trained on c·r_MT alone) is drawn once, with both labels. Returns the
    paths."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history = [upgrade_row(r) for r in history]
    per_step = "reward per step (log p in nats; r_MT × c)"
    specs = [
        (
            "training_rewards",
            "Training reward per step (window mean, with exploration)",
            per_step,
            [
                ("train/reward", "reward maximised (its reward mode)"),
                ("train/music_theory_reward", "music theory c·r_MT"),
                ("train/note_rnn_log_p", "Note RNN log p(a|s)"),
            ],
        ),
        (
            "evaluation_rewards",
            "Evaluation reward per step (sampled, no exploration)",
            per_step,
            [
                ("eval/log_p_plus_music_theory", "log p(a|s) + c·r_MT"),
                ("eval/music_theory_reward", "music theory c·r_MT"),
                ("eval/note_rnn_log_p", "Note RNN log p(a|s)"),
            ],
        ),
        (
            "target_values",
            "Mean target value y = r + γ V(s')",
            "y (reward units, per step)",
            [("losses/mean_target", "mean y")],
        ),
        (
            "kl_control",
            "KL(π‖p) per step of the sampled batches, and β (kl_pg)",
            "KL (nats per step) / β",
            [("train/kl_per_step", "KL per step"), ("charts/kl_coef", "β")],
        ),
        (
            "ppo_losses",
            "PPO losses (kl_pg, window mean)",
            "loss (per step)",
            [("losses/policy_loss", "clipped surrogate"), ("losses/value_loss", "value")],
        ),
    ]
    logged = {k for row in history for k in row}
    prices = sorted(k for k in logged if k.startswith("constraints/lambda/")
                    and any(row.get(k) for row in history))  # fmt: skip
    if prices:  # a kl_pg run with bounds: the prices that ever rose above 0
        specs.append((
            "constraint_prices",
            "Prices ν of the bounds (kl_pg; units of β, 0 = met)",
            "ν (its bound pays β·ν per unit)",
            [(k, k.removeprefix("constraints/lambda/")) for k in prices],
        ))  # fmt: skip
    paths = []
    for name, title, ylabel, keys in specs:
        if not any(key in logged for key, _ in keys):
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        if len(keys) > 10:  # more lines than the default cycle's 10 colours
            ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
        drawn: list[tuple[np.ndarray, np.ndarray, str]] = []
        for key, label in keys:
            x, y = _series(history, key)
            if not x.size:
                continue
            same = next((i for i, (x2, y2, _) in enumerate(drawn)
                         if x2.shape == x.shape and np.allclose(y2, y, rtol=1e-9, atol=1e-12)),
                        None)  # fmt: skip
            if same is not None:  # identical values: one line, both names
                drawn[same] = (drawn[same][0], drawn[same][1], f"{drawn[same][2]} = {label}")
            else:
                drawn.append((x, y, label))
        for x, y, label in drawn:
            ax.plot(x, y, marker="o", ms=3, label=label)
        limits = _robust_limits([y for _, y, _ in drawn]) if "reward" in name else None
        if limits is not None:
            ax.set_ylim(*limits)
            firsts = ", ".join(f"{y[0]:.3g}" for _, y, _ in drawn if y.size > 2)
            ax.annotate(f"first window off scale: {firsts}", xy=(0.01, 0.02),
                        xycoords="axes fraction", fontsize=7, color="0.35")  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
        path = out / f"{name}.{fmt}"
        _save(fig, path, fmt)
        plt.close(fig)
        paths.append(path)
    return paths


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """Rows of ``run_dir/metrics.jsonl`` (one per evaluation window); ``[]`` if absent. A
    truncated last line (a run killed mid-write) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(upgrade_row(json.loads(line)))
            except json.JSONDecodeError:
                continue
    return rows


def plot_training_run(
    run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, fmt: str = "png"
) -> list[Path]:
    """:func:`plot_training` of a run's ``metrics.jsonl`` into ``out_dir`` (default
    ``run_dir/plots``)."""
    history = read_history(run_dir)
    if not history:
        raise RltunerError(f"{run_dir}: no training log (metrics.jsonl) to plot")
    return plot_training(history, out_dir or Path(run_dir) / "plots", fmt=fmt)


def _fmt_of(path: Path, fmt: str | None) -> str:
    return fmt or (path.suffix.lstrip(".") or "png")


def plot_note_probabilities(
    probs: np.ndarray,
    melody: np.ndarray,
    path: str | os.PathLike,
    title: str | None = None,
    fmt: str | None = None,
) -> Path:
    """Heatmap of the policy's next-note distribution, 38 classes (rows) × steps (columns),
    ``probs (T, 38)``, with the sampled notes ``melody (T,)`` circled (the original's
    ``visualize_probs``). ``fmt`` defaults to the path's suffix."""
    plt = _pyplot()
    probs = np.asarray(probs, dtype=np.float64)
    melody = np.asarray(melody, dtype=np.int64).reshape(-1)
    if probs.ndim != 2 or probs.shape[1] != NUM_CLASSES or probs.shape[0] != melody.size:
        raise ValueError(f"need probs (T, 38) and melody (T,), got {probs.shape}, {melody.shape}")
    t = melody.size
    fig, ax = plt.subplots(figsize=(max(5.0, 0.2 * t + 2.0), 5.5))
    im = ax.imshow(probs.T, origin="lower", aspect="auto", cmap="magma", vmin=0.0,
                   vmax=max(float(probs.max()), 1e-9), interpolation="nearest")  # fmt: skip
    ax.scatter(np.arange(t), melody, marker="o", facecolors="none", edgecolors="cyan", s=28,
               linewidths=1.0, label="sampled note")  # fmt: skip
    ticks = [0, 1] + [c for c in range(FIRST_NOTE_CLASS, NUM_CLASSES) if (c + 46) % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([class_label(c) for c in ticks], fontsize=7)
    ax.set_xlabel("16th step")
    ax.set_ylabel("class")
    ax.set_title(title or "Note probabilities")
    fig.colorbar(im, ax=ax, label="probability")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    _save(fig, path, _fmt_of(path, fmt))
    plt.close(fig)
    return path


def _pitch_name(pitch: float, _pos: object = None) -> str:
    """A MIDI pitch as a note name with octave (60 -> "C4"); "" between whole pitches."""
    p = int(round(pitch))
    return f"{PITCH_NAMES[p % 12]}{p // 12 - 1}" if abs(pitch - p) < 1e-6 else ""


def _chords_per_melody(
    chords: Sequence[ChordSpan] | Sequence[Sequence[ChordSpan]] | None, n: int
) -> list[list[ChordSpan]] | None:
    """One list of spans per melody: the same spans for all, or one list each."""
    if chords is None:
        return None
    chords = list(chords)
    if not chords or isinstance(chords[0], ChordSpan):
        return [list(chords)] * n
    if len(chords) != n:
        raise ValueError(f"{len(chords)} chord lists for {n} melodies")
    return [list(c) for c in chords]


def _draw_chord_lane(ax, spans: Sequence[ChordSpan], lane_top: float, lane_frac: float) -> None:
    """Chord symbols in a lane under the notes (y below ``lane_top``, the bottom ``lane_frac``
    of the axes): alternately shaded bands, the symbol at each span's start, and a line across
    the roll at each chord change."""
    xaxis = ax.get_xaxis_transform()  # x in steps, y in axes fraction
    ax.axhline(lane_top, color="0.6", linewidth=0.5, zorder=1)
    for k, span in enumerate(spans):
        start, end = span.start, span.start + span.steps
        ax.axvspan(start, end, ymin=0.0, ymax=lane_frac, zorder=0, linewidth=0,
                   color="#dce8f5" if k % 2 == 0 else "#eef3f9")  # fmt: skip
        if k > 0:
            ax.axvline(start, color="tab:blue", alpha=0.35, linewidth=0.7, linestyle="--",
                       zorder=1)  # fmt: skip
        ax.text(start + 0.3, lane_frac / 2, span.chord.symbol, transform=xaxis, fontsize=7,
                ha="left", va="center", color="navy", clip_on=True, zorder=3)  # fmt: skip


def plot_piano_rolls(
    melodies: np.ndarray | Sequence[np.ndarray],
    path: str | os.PathLike,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    fmt: str | None = None,
    size: tuple[float, float] = (3.2, 2.0),
    chords: Sequence[ChordSpan] | Sequence[Sequence[ChordSpan]] | None = None,
) -> Path:
    """A grid of piano rolls (MIDI pitch × 16th step; bar lines every 16 steps, beat lines
    every 4; rests blank, holds extend the note). ``melodies``: ``(n, T)`` or a list of
    ``(T_i,)`` arrays; ``size``: inches per panel. ``chords``: the chord spans (in steps, e.g.
    ``Progression.spans(T)``) under every roll, or one list of spans per melody; their symbols
    are written in a shaded lane under the notes, with a dashed line at each chord change."""
    plt = _pyplot()
    mels = [np.asarray(m, dtype=np.int64).reshape(-1) for m in melodies]
    if not mels:
        raise ValueError("no melodies to plot")
    n = len(mels)
    spans = _chords_per_melody(chords, n)
    ncols = ncols or min(n, 4)
    nrows = -(-n // ncols)
    notes = [melody_to_notes(m) for m in mels]
    pitches = np.concatenate([nt.pitch for nt in notes])
    lo, hi = (int(pitches.min()) - 2, int(pitches.max()) + 2) if pitches.size else (58, 74)
    lane = max(3.0, 0.2 * (hi - lo)) if spans is not None else 0.0  # pitch units for the lane
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False, sharey=True)  # fmt: skip
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        m, nt = mels[i], notes[i]
        ax.barh(nt.pitch, nt.duration, left=nt.onset, height=0.8, color="tab:orange",
                edgecolor="saddlebrown", linewidth=0.4)  # fmt: skip
        for x in range(0, m.size + 1, STEPS_PER_QUARTER):
            bar = x % STEPS_PER_BAR == 0
            ax.axvline(x, color="0.3" if bar else "0.85", linewidth=0.8 if bar else 0.4, zorder=0)
        ax.set_xlim(0, max(m.size, 1))
        ax.set_ylim(lo - lane, hi)
        if spans is not None:
            _draw_chord_lane(ax, spans[i], lo - 0.5, (lane - 0.5) / (hi - lo + lane))
        ax.set_title(titles[i] if titles and i < len(titles) else f"melody {i}", fontsize=8)
        ax.tick_params(labelsize=6)
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))  # whole pitches only
        if spans is None:
            ax.yaxis.set_major_formatter(FuncFormatter(_pitch_name))
        else:  # no pitch names in the chord lane
            ax.yaxis.set_major_formatter(
                FuncFormatter(lambda p, pos, _lo=lo: "" if p < _lo else _pitch_name(p, pos))
            )
        if i % ncols == 0:
            ax.set_ylabel("pitch", fontsize=7)
        if i // ncols == nrows - 1:
            ax.set_xlabel("16th step", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    _save(fig, path, _fmt_of(path, fmt))
    plt.close(fig)
    return path


def plot_comparison(
    comparison: Comparison, path: str | os.PathLike, fmt: str | None = None, paper: bool = False
) -> Path:
    """Grouped bar chart of the Table-1 metrics, one bar per model (with binomial standard
    errors): proportions in % on the left panel, mean autocorrelations on the right. With
    ``paper`` the paper's four columns are drawn too, hatched."""
    from rltuner.evaluate import PAPER_COLUMNS, PAPER_TABLE1, PERCENT_ROWS

    plt = _pyplot()
    rows_pct = [r for r in PAPER_TABLE1 if r in PERCENT_ROWS]
    rows_ac = [r for r in PAPER_TABLE1 if r not in PERCENT_ROWS]
    series: list[tuple[str, list[float], list[float], bool]] = []
    for m in comparison.models:
        t, se = m.table1(), m.stats.binomial_se()
        vals = [t[r] for r in rows_pct + rows_ac]
        errs = [se.get(r, math.nan) for r in rows_pct + rows_ac]
        series.append((m.column, vals, errs, False))
    if paper:
        for i, col in enumerate(PAPER_COLUMNS):
            vals = [PAPER_TABLE1[r][i][0] for r in rows_pct + rows_ac]
            series.append((f"paper {col}", vals, [math.nan] * len(vals), True))
    k = len(series)
    width = 0.8 / k
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2),
                                   gridspec_kw={"width_ratios": [len(rows_pct), 2.2]})  # fmt: skip
    for i, (name, vals, errs, hatched) in enumerate(series):
        for ax, rows, scale, off in ((ax1, rows_pct, 100.0, 0), (ax2, rows_ac, 1.0, len(rows_pct))):
            x = np.arange(len(rows)) - 0.4 + width * (i + 0.5)
            y = np.array(vals[off : off + len(rows)], dtype=np.float64) * scale
            e = np.array(errs[off : off + len(rows)], dtype=np.float64) * scale
            ax.bar(x, np.nan_to_num(y), width, yerr=np.where(np.isnan(e), 0, e),
                   label=name if ax is ax1 else None, color=f"C{i % 10}",
                   hatch="//" if hatched else None, alpha=0.55 if hatched else 0.9,
                   capsize=2, edgecolor="black", linewidth=0.3)  # fmt: skip
    short = {"Compositions": "Comp.", "Notes": "Notes", "with": "w/"}
    for ax, rows in ((ax1, rows_pct), (ax2, rows_ac)):
        labels = [" ".join(short.get(w, w) for w in r.split()) for r in rows]
        ax.set_xticks(np.arange(len(rows)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.axhline(0, color="black", linewidth=0.6)
    ax1.set_ylabel("%")
    ax1.set_title("Table-1 proportions")
    ax2.set_title("Mean autocorrelation")
    ax1.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = Path(path)
    _save(fig, path, _fmt_of(path, fmt))
    plt.close(fig)
    return path


def plot_distributions(
    comparison: Comparison, path: str | os.PathLike, fmt: str | None = None
) -> Path:
    """Three panels: the share of each melodic interval (−12…+12 semitones, larger leaps
    pooled), of each pitch class and of each onset position in the bar, one line per model and
    the held-out corpus windows as a dashed black line (when the corpus is installed)."""
    plt = _pyplot()
    panels = (
        ("interval_shares", "Melodic intervals (semitones)",
         [label.replace(" ", "") for label in INTERVAL_LABELS]),
        ("pitch_class_shares", "Pitch classes of note onsets", list(PITCH_NAMES)),
        ("onset_position_shares", "Note onsets by position in the bar",
         [str(i) for i in range(16)]),
    )  # fmt: skip

    def values(details: dict, key: str) -> np.ndarray:
        v = details.get(key) or []
        v = list(v.values()) if isinstance(v, dict) else list(v)
        return np.array([math.nan if x is None else x for x in v], dtype=np.float64)

    series = [(m.column, m.naturalness, f"C{i % 10}", "-") for i, m in
              enumerate(comparison.models)]  # fmt: skip
    if comparison.reference:
        series.append((comparison.reference["label"], comparison.reference["naturalness"],
                       "black", "--"))  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [27, 12, 16]})
    for ax, (key, title, labels) in zip(axes, panels, strict=True):
        x = np.arange(len(labels))
        for name, details, color, style in series:
            y = values(details, key)
            if y.size == len(labels):
                ax.plot(x, 100.0 * y, style, marker="o", markersize=3, color=color,
                        linewidth=1.2, label=name)  # fmt: skip
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=90 if len(labels) > 16 else 0, fontsize=7)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    _save(fig, path, _fmt_of(path, fmt))
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------ HTML report
_CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var auds = Array.prototype.slice.call(document.querySelectorAll('audio'));
  var done = 0;
  function record() {
    var r = {
      images: imgs.length,
      images_decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
      audio: auds.length,
      audio_with_duration: auds.filter(function (a) {
        return a.duration > 0 && isFinite(a.duration); }).length,
      audio_data_chars: auds.map(function (a) { return (a.currentSrc || a.src || '').length; }),
      audio_settled: done
    };
    document.body.setAttribute('data-check', JSON.stringify(r));
  }
  auds.forEach(function (a) {
    var settle = function () { done += 1; record(); };
    if (a.readyState >= 1 || a.error) { settle(); }
    else {
      a.addEventListener('loadedmetadata', settle, {once: true});
      a.addEventListener('error', settle, {once: true});
      a.load();
    }
  });
  record();
});
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1200px;
       color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.config td:nth-child(odd) { text-align: left; color: #555; }
thead th { background: #f3f3f3; } td.paper, th.paper { color: #777; background: #fafafa; }
td.corpus, th.corpus { background: #f4f8fc; }
img { max-width: 100%; } .grid { display: grid; gap: .8em; }
.cell { border: 1px solid #ddd; padding: .4em; border-radius: 4px; }
.cell img { width: 100%; } audio { width: 100%; } .muted { color: #666; font-size: .85em; }
details pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(path: Path, alt: str) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f'<img alt="{html.escape(alt)}" src="{_data_uri(path.read_bytes(), mime)}">'


def _comparison_html(comp: Comparison) -> str:
    from rltuner.evaluate import (
        EXTRA_ROWS,
        HARMONY_ROWS,
        PAPER_COLUMNS,
        PAPER_TABLE1,
        PERCENT_ROWS,
        _fmt_num,
        _fmt_pct,
    )

    e = html.escape
    head = "".join(f"<th>{e(m.column)}</th>" for m in comp.models)
    corpus = comp.reference is not None
    if corpus:
        head += f'<th class="corpus">{e(comp.reference["label"])}</th>'
    head += "".join(f'<th class="paper">paper {e(c)}</th>' for c in PAPER_COLUMNS)
    blank_corpus = '<td class="corpus"></td>' if corpus else ""
    rows = []
    for r, paper in PAPER_TABLE1.items():
        cells = []
        for m in comp.models:
            v, se = m.table1()[r], m.stats.binomial_se().get(r)
            cells.append(_fmt_pct(v, se) if r in PERCENT_ROWS else _fmt_num(v))
        tds = "".join(f"<td>{e(c)}</td>" for c in cells) + blank_corpus
        tds += "".join(f'<td class="paper">{e(s)}</td>' for _, s in paper)
        rows.append(f"<tr><td>{e(r)}</td>{tds}</tr>")
    for k, (label, kind) in EXTRA_ROWS.items():
        values = [m.extra.get(k, math.nan) for m in comp.models]
        fmt = _fmt_pct if kind == "pct" else _fmt_num
        tds = "".join(f"<td>{e(fmt(v))}</td>" for v in values)
        if corpus:
            ref = comp._reference_value(k)
            tds += f'<td class="corpus">{e("—" if ref is None else fmt(ref))}</td>'
        tds += '<td class="paper"></td>' * 4
        rows.append(f"<tr><td>{e(label)}</td>{tds}</tr>")
    for k, label in HARMONY_ROWS.items():  # over chords only
        if not any(k in m.extra for m in comp.models):
            continue
        tds = "".join(f"<td>{e(_fmt_pct(m.extra.get(k, math.nan)))}</td>" for m in comp.models)
        tds += blank_corpus + '<td class="paper"></td>' * 4
        rows.append(f"<tr><td>{e(label)}</td>{tds}</tr>")
    return (f"<table><thead><tr><th>Metric</th>{head}</tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")  # fmt: skip


def _openings_html(comp: Comparison) -> str:
    """Each model's most common first bar, and where the corpus column comes from."""
    from rltuner.evaluate import _fmt_pct

    e = html.escape
    items = []
    for m in comp.models:
        top = (m.naturalness.get("top_openings") or {}).get("16")
        share = _fmt_pct(m.extra.get("top_opening_share_16", math.nan))
        text = f"<code>{e(format_opening(top))}</code> ({e(share)})" if top else "n/a"
        items.append(f"<li>{e(m.column)}: {text}</li>")
    source = "The bundled corpus is not installed: no corpus column."
    if comp.reference:
        ref = comp.reference
        source = (
            f"Corpus column: {e(ref['split'])}; it scores {ref['windows']:,} held-out "
            f"{comp.num_notes}-step windows."
        )
    return (
        '<p class="muted">Most common first bar (16 steps; <code>-</code> hold, <code>r</code> '
        f"rest):</p><ul>{''.join(items)}</ul>"
        f'<p class="muted">Naturalness rows (see docs/evaluation.md): openings are the '
        "sampled melodies' first 16/8 steps; melodic intervals lie between consecutive note "
        "onsets; distances are total variation to the corpus histograms; the trigram is "
        f"interpolated Kneser–Ney over the 38 classes. {source}</p>"
    )


def _config_html(config: dict, per_row: int = 3) -> str:
    e = html.escape
    cells = [f"<td>{e(str(k))}</td><td>{e(v if isinstance(v, str) else json.dumps(v))}</td>"
             for k, v in config.items()]  # fmt: skip
    rows = "".join(f"<tr>{''.join(cells[i : i + per_row])}</tr>"
                   for i in range(0, len(cells), per_row))  # fmt: skip
    return f'<table class="config"><tbody>{rows}</tbody></table>'


def write_report(
    run_dir: str | os.PathLike,
    compare: Sequence[str] = (),
    out: str | os.PathLike | None = None,
    n_samples: int = 4,
    compositions: int = 2000,
    seed: int = 0,
    synth: str = "auto",
    note_rnn: str | os.PathLike | None = None,
    chords: Progression | Sequence[ChordSpan] | None = None,
    chord_style: str = "block",
) -> Path:
    """Write the run's self-contained HTML report (default ``run_dir/report.html``).

    Evaluates the run's tuned model (``run_dir/tuned.safetensors``), its untuned base Note RNN
    and every model of ``compare`` (paths, run folders, ``bundled``, ``NAME=PATH``) on
    ``compositions`` sampled compositions each (same seed for all), and embeds: the
    configuration (``config.json``), training curves (``metrics.jsonl``), the Table-1
    comparison and its bar chart, the note-probability heatmap of one tuned melody, and for
    ``n_samples`` melodies per model a piano roll and an ``<audio>`` player (WAV, FluidSynth
    when available else the built-in synthesiser). ``chords`` (a progression, or its spans
    over the run's compositions): their symbols are written under each piano roll and the
    players play them under the melody (``chord_style`` ``block`` or ``arpeggio``); the
    samples themselves are drawn as without chords. Returns the path written."""
    from rltuner.audio import synthesize, wav_bytes
    from rltuner.evaluate import evaluate_models, load_model, rollout, sample_trace

    run = Path(run_dir)
    if not run.is_dir():
        raise RltunerError(f"{run}: no such run directory")
    tuned_path = run / "tuned.safetensors"
    if not tuned_path.exists():
        raise RltunerError(f"{run}: no tuned model (tuned.safetensors); finish the run first")
    out_path = Path(out) if out is not None else run / "report.html"
    from rltuner.midi_io import CHORD_STYLES

    if chord_style not in CHORD_STYLES:
        raise RltunerError(f"unknown chord style {chord_style!r}; choose from "
                           f"{', '.join(CHORD_STYLES)}")  # fmt: skip
    tuned = load_model(tuned_path, name=run.name, note_rnn=note_rnn)
    num_notes = _num_notes(run)
    # over chords: the given ones, else those a chord-tuned run was tuned over; every model
    # plays them (sample i over progression i mod P) and gets the harmony statistics
    progs = [chords] if isinstance(chords, Progression) else list(tuned.progressions)
    if chords is not None and not isinstance(chords, Progression):
        progs = []  # spans given: only drawn and played, the samples are drawn without chords
        spans_of = [list(chords)] if chords else None
    else:
        spans_of = [p.spans(num_notes) for p in progs] or None
    models = [tuned, tuned.base] + [load_model(c) for c in compare]
    comp = evaluate_models(models, compositions=compositions, seed=seed, num_notes=num_notes,
                           progressions=progs or None)  # fmt: skip
    config = {}
    if (run / "config.json").exists():
        config = json.loads((run / "config.json").read_text())
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rltuner report: {e(run.name)}</title>",
        f"<style>{_CSS}</style>",
        f"<script>{_CHECK_SCRIPT}</script>",
        "</head><body>",
        f"<h1>RL Tuner run <code>{e(run.name)}</code></h1>",
        f'<p class="muted">{e(str(run.resolve()))} · written '
        f"{_dt.datetime.now().isoformat(timespec='seconds')} · self-contained (no network)</p>",
    ]
    with tempfile.TemporaryDirectory(prefix="rltuner-report-") as tmp_name:
        tmp = Path(tmp_name)
        parts.append("<h2>Configuration</h2>")
        parts.append(_config_html(config) if config else "<p>(no config.json)</p>")
        parts.append("<h2>Training</h2>")
        history = read_history(run)
        if history:
            parts.append('<div class="grid" style="grid-template-columns: repeat(3, 1fr)">')
            for p in plot_training(history, tmp / "training"):
                parts.append(_img(p, p.stem.replace("_", " ")))
            parts.append("</div>")
        else:
            parts.append("<p>(no training log metrics.jsonl)</p>")
        parts.append(f"<h2>Table 1: {comp.compositions:,} sampled compositions per model</h2>")
        parts.append(_comparison_html(comp))
        parts.append(
            '<p class="muted">± binomial standard errors. "In-key preferred intervals" (in the '
            "JSON/CSV of <code>rltuner evaluate</code>) count in-key thirds too (a quirk of the "
            "original fixed). Paper columns: Jaques et al., Table 1, for reference.</p>"
        )
        parts.append(_openings_html(comp))
        parts.append(_img(plot_comparison(comp, tmp / "comparison.png"), "Table-1 comparison"))
        parts.append(_img(plot_distributions(comp, tmp / "distributions.png"),
                          "interval, pitch-class and onset-position distributions"))  # fmt: skip
        melody, probs = sample_trace(tuned, _num_notes(run), seed=seed)
        heat = plot_note_probabilities(probs, melody, tmp / "probabilities.png",
                                       title=f"Note probabilities: {tuned.name}")  # fmt: skip
        parts.append("<h2>Note probabilities of one tuned melody</h2>")
        parts.append(_img(heat, "note probabilities"))
        parts.append(f"<h2>Listen: {n_samples} sample melodies per model</h2>")
        used = set()
        cols = len(models)
        grid = [f'<div class="grid" style="grid-template-columns: repeat({cols}, 1fr)">']
        grid += [f"<div><b>{e(m.column)}</b></div>" for m in comp.models]
        samples = [rollout(m, max(n_samples, 1), seed=seed + 1, num_notes=num_notes,
                           workers=1, progressions=progs or None).compositions
                   for m in models]  # fmt: skip
        for i in range(n_samples):
            spans = None if spans_of is None else spans_of[i % len(spans_of)]
            for j, m in enumerate(models):
                mel = samples[j][i].astype(np.int64)
                roll = plot_piano_rolls([mel], tmp / f"roll_{j}_{i}.png", titles=[f"{m.name} #{i}"],
                                        size=(4.0, 1.8), chords=spans)  # fmt: skip
                audio, synth_used = synthesize(mel, synth=synth, chords=spans,
                                               chord_style=chord_style)  # fmt: skip
                used.add(synth_used)
                src = _data_uri(wav_bytes(audio), "audio/wav")
                player = f'<audio controls preload="auto" src="{src}"></audio>'
                grid.append(f'<div class="cell">{_img(roll, f"roll {m.name} {i}")}{player}</div>')
        grid.append("</div>")
        parts += grid
        parts.append(f'<p class="muted">Audio: {", ".join(sorted(used))} synthesiser, 80 QPM; '
                     "same random priming note for every model in a row.</p>")  # fmt: skip
        if spans_of is not None:
            for sp in spans_of:
                parts.append(_chords_html(sp, chord_style))
    parts.append("<h2>Models</h2><ul>")
    for m in comp.models:
        rr = f" (Reward RNN <code>{e(m.reward_rnn)}</code>)" if m.reward_rnn else ""
        parts.append(f"<li>{e(m.column)}: <code>{e(m.path)}</code>{rr}</li>")
    parts.append("</ul>")
    parts.append(f"<details><summary>Markdown table</summary><pre>{e(comp.to_markdown())}"
                 "</pre></details>")  # fmt: skip
    parts.append("</body></html>")
    atomic_write_text(out_path, "\n".join(parts) + "\n")
    return out_path


def _chords_html(spans: Sequence[ChordSpan], style: str) -> str:
    """The chords of the players and piano rolls, bar by bar."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(s.chord.symbol)}</td><td>{s.start / STEPS_PER_BAR + 1:g}</td>"
        f"<td>{s.steps}</td></tr>"
        for s in spans
    )
    return (
        f'<p class="muted">Chords ({e(style)}, on a second, softer track under the melody; '
        "symbols under each piano roll): "
        f"<b>{e(' '.join(s.chord.symbol for s in spans))}</b></p>"
        "<details><summary>Chord spans</summary><table><thead><tr><th>Chord</th>"
        f"<th>bar</th><th>16ths</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _num_notes(run: Path) -> int:
    try:
        return int(json.loads((run / "config.json").read_text()).get("num_notes", 32))
    except (OSError, ValueError):
        return 32
