"""Evaluate and compare melody models at scale: the paper's Table 1 and extra statistics.

A *model* is a Note RNN checkpoint, a tuned checkpoint (``tuned.safetensors``, written by ``rltuner
tune``), a run directory holding one, or the word ``bundled``. Each model is sampled as
``docs/rules.md#table-1-statistics`` says: random-note priming (zero LSTM state, first observation
uniform over all 38 classes), then every next note drawn from the softmax of the model's outputs
(for G models: of ``G + Reward-RNN logits``), no exploration.

The *Reward RNN* scores the sampled notes: the base Note RNN a tuned model was tuned from (the
copy embedded in the tuned file, else its recorded file when the hash matches; never another
model in its place: :func:`rltuner.policy.resolve_prior`), or the model itself for an untuned
Note RNN (so its KL is exactly 0).

Sampling is the one sampler of :mod:`rltuner.policy` (the same that ``rltuner generate``, the
report and the tuner use): batched chunks on the numba forward pass, softmax, sampling,
``log p`` and KL of a step in one compiled pass plus one vectorised ``exp``. Every model sees
the same random numbers for the same seed (common random numbers: differences between models
are not sampling noise in the priming notes), and chunk ``i`` always uses seed ``(seed, i)``,
so results do not depend on the chunk order or the number of threads.

Statistics per model: the Table-1 rows of :mod:`rltuner.metrics` (with binomial standard
errors) and

* ``mean_log_p``: mean over sampled steps of ``log p(a|s)`` under the Reward RNN;
* ``kl_to_note_rnn``: mean over sampled steps of ``KL(π(·|s) ‖ p(·|s)) = Σ_a π(a|s)(log π(a|s)
  − log p(a|s))``, from both networks' outputs along the sampled trajectories;
* ``distinct_share``: distinct compositions / compositions;
* ``notes_per_composition``: mean number of note onsets (classes ≥ 2);
* ``rest_share`` / ``hold_share``: share of steps that are note-off (0) / no-event (1);
* naturalness and diversity (:mod:`rltuner.naturalness`, against the bundled corpus split as
  the bundled Note RNN was): ``distinct_openings_16`` / ``_8`` and ``top_opening_share_16`` /
  ``_8`` (first-bar and 8-step openings), ``repeated_pitch_share``, total-variation distances
  ``interval_distance``, ``pitch_class_distance`` (note onsets by pitch class) and
  ``onset_position_distance`` (onsets by position in the bar), and ``ngram_log_likelihood``
  (mean per-step log-likelihood under the corpus trigram); NaN where the corpus is not
  installed. The held-out corpus windows of the same length give the reference column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rltuner.checkpoint import atomic_write_text
from rltuner.conditioning import resolve_progressions
from rltuner.encoding import C_MAJOR, FIRST_NOTE_CLASS, NUM_CLASSES, Key
from rltuner.errors import RltunerError
from rltuner.harmony import HarmonyTables, Progression, check_fits
from rltuner.metrics import INTERVAL_NAMES, TABLE1_ROWS, CompositionStats, composition_stats
from rltuner.naturalness import (
    bundled_reference,
    format_opening,
    naturalness_stats,
    pitch_class_histogram,
    total_variation,
)
from rltuner.network import Network, bundled_note_rnn_path
from rltuner.policy import Policy, default_workers, load_policy, sample

__all__ = [
    "EvalModel",
    "EvalRollout",
    "ModelEvaluation",
    "Comparison",
    "PAPER_TABLE1",
    "PAPER_COLUMNS",
    "LOWER_IS_BETTER",
    "rows_matching_paper",
    "EXTRA_ROWS",
    "HARMONY_ROWS",
    "ALGORITHM_LABELS",
    "load_model",
    "bundled_note_rnn_path",
    "rollout",
    "default_workers",
    "sample_trace",
    "kl_divergence",
    "distinct_share",
    "pitch_class_histogram",
    "total_variation",
    "event_shares",
    "corpus_reference",
    "evaluate_model",
    "evaluate_models",
]

ALGORITHM_LABELS = {
    "note_rnn": "Note RNN",
    "q": "Q",
    "psi": "Ψ",
    "g": "G",
    "pure_rl": "RL only",
    "kl_pg": "KL-PG",
}
PAPER_COLUMNS: tuple[str, ...] = ("Note RNN", "Q", "Ψ", "G")
# Jaques et al. (2017), Table 1, 100,000 compositions per model; (fraction or mean, as printed)
PAPER_TABLE1: dict[str, tuple[tuple[float, str], ...]] = {
    "Notes excessively repeated": ((0.633, "63.3%"), (0.0, "0.0%"), (0.0002, "0.02%"),
                                   (0.0003, "0.03%")),
    "Mean autocorrelation, lag 1": ((-0.16, "−.16"), (-0.11, "−.11"), (-0.10, "−.10"),
                                    (0.55, ".55")),
    "Mean autocorrelation, lag 2": ((0.14, ".14"), (0.03, ".03"), (-0.01, "−.01"), (0.31, ".31")),
    "Mean autocorrelation, lag 3": ((-0.13, "−.13"), (0.03, ".03"), (0.01, ".01"), (0.17, ".17")),
    "Notes not in key": ((0.001, "0.1%"), (0.01, "1.00%"), (0.006, "0.60%"), (0.287, "28.7%")),
    "Compositions starting with tonic": ((0.009, "0.9%"), (0.288, "28.8%"), (0.287, "28.7%"),
                                         (0.0, "0.0%")),
    "Leaps resolved": ((0.772, "77.2%"), (0.911, "91.1%"), (0.900, "90.0%"), (0.522, "52.2%")),
    "Compositions with unique max note": ((0.647, "64.7%"), (0.564, "56.4%"), (0.594, "59.4%"),
                                          (0.371, "37.1%")),
    "Compositions with unique min note": ((0.494, "49.4%"), (0.519, "51.9%"), (0.583, "58.3%"),
                                          (0.565, "56.5%")),
    "Notes in motif": ((0.059, "5.9%"), (0.757, "75.7%"), (0.738, "73.8%"), (0.693, "69.3%")),
    "Notes in repeated motif": ((0.00007, "0.007%"), (0.0011, "0.11%"), (0.0009, "0.09%"),
                                (0.0001, "0.01%")),
}  # fmt: skip

# rows where smaller is better (the autocorrelations in absolute value); larger elsewhere
LOWER_IS_BETTER = frozenset(TABLE1_ROWS[:5])


def _printed_decimals(printed: str) -> int:
    digits = printed.rstrip("%").split(".")
    return len(digits[1]) if len(digits) == 2 else 0


def rows_matching_paper(table1: dict[str, float], column: str = "Q") -> dict[str, bool]:
    """Which Table-1 rows match or beat the paper's ``column`` (the issue's yardstick).

    Rows 1–5 (excessive repetition, the three autocorrelations in absolute value, notes not in
    key) are better when lower, the other six when higher. "Match" is at the paper's printed
    precision: our value rounded to the decimals the paper prints (in % for shares), so 0.03%
    matches a printed 0.0% but 0.06% does not."""
    col = PAPER_COLUMNS.index(column)
    out = {}
    for row in TABLE1_ROWS:
        paper, printed = PAPER_TABLE1[row][col]
        ours = table1.get(row, math.nan)
        if math.isnan(ours):
            out[row] = False
            continue
        scale = 100.0 if row in PERCENT_ROWS else 1.0
        ours_r = round(ours * scale, _printed_decimals(printed))
        paper_r = round(paper * scale, _printed_decimals(printed))
        if row in LOWER_IS_BETTER:
            out[row] = abs(ours_r) <= abs(paper_r)
        else:
            out[row] = ours_r >= paper_r
    return out


# extra rows: key -> (label, kind) with kind "pct" (a share, shown in %) or "num"
# over chords (rltuner.harmony.harmony_statistics), shown when a model has them
HARMONY_ROWS: dict[str, str] = {
    "harmony_strong_beat_chord_tones": "Strong-beat notes that are chord tones",
    "harmony_clashes": "Strong-beat notes clashing with the chord",
    "harmony_non_chord_tones": "Notes that are not chord tones",
    "harmony_unresolved_non_chord_tones": "Non-chord tones not resolved by step",
    "harmony_cadence": "Compositions ending on a chord tone",
    "harmony_cadence_root": "Compositions ending on the chord's root",
}
EXTRA_ROWS: dict[str, tuple[str, str]] = {
    "mean_log_p": ("Mean log p(a|s) under the Reward RNN", "num"),
    "kl_to_note_rnn": ("KL(model ‖ Note RNN) per step (nats)", "num"),
    "distinct_share": ("Distinct melodies among those sampled", "pct"),
    "pitch_class_distance": ("Pitch-class histogram distance to the corpus (TV)", "num"),
    "notes_per_composition": ("Mean notes per composition", "num"),
    "rest_share": ("Rest (note-off) share of steps", "pct"),
    "hold_share": ("Hold (no-event) share of steps", "pct"),
    "distinct_openings_16": ("Distinct first-bar (16-step) openings, of the first 2,000", "pct"),
    "top_opening_share_16": ("Most common first-bar opening", "pct"),
    "distinct_openings_8": ("Distinct 8-step openings, of the first 2,000", "pct"),
    "top_opening_share_8": ("Most common 8-step opening", "pct"),
    "repeated_pitch_share": ("Repeated pitch (share of melodic intervals)", "pct"),
    "interval_distance": ("Melodic-interval histogram distance to the corpus (TV)", "num"),
    "onset_position_distance": ("Onset-position (in the bar) distance to the corpus (TV)", "num"),
    "ngram_log_likelihood": ("Log-likelihood per step under the corpus trigram (nats)", "num"),
}
# shares of all sampled steps: the only extra rows shown with a binomial standard error
_STEP_SHARE_ROWS = frozenset({"rest_share", "hold_share"})
INTERVAL_LABELS = {
    "octave_jumps": "Octave jumps (> 12 semitones)",
    "sevenths": "Sevenths (11)",
    "fifths": "Fifths (7, not from tonic/fifth)",
    "sixths": "Sixths (9)",
    "fourths": "Fourths (5)",
    "thirds": "Thirds (4)",
    "seconds": "Seconds (2)",
    "rests": "Rests",
    "rests_after_tonic_or_fifth": "Rests after tonic/fifth",
    "in_key_preferred": "In-key preferred intervals (fifths and thirds)",
}
PERCENT_ROWS = frozenset(r for r in TABLE1_ROWS if not r.startswith("Mean autocorrelation"))


# ------------------------------------------------------------------------------ models
@dataclass
class EvalModel:
    """A policy to sample from and the Reward RNN that scores it.

    ``algorithm`` is ``"note_rnn"`` for an untuned model, else the tuner's algorithm; ``"g"``
    acts on ``network logits + reward_rnn logits``. ``reward_rnn`` is ``None`` when the model
    is its own Reward RNN (an untuned Note RNN)."""

    name: str
    path: Path
    network: Network
    algorithm: str = "note_rnn"
    reward_rnn: Network | None = None
    reward_rnn_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    # a chord-tuned model's progressions (its default chords)
    progressions: tuple[Progression, ...] = ()

    @property
    def label(self) -> str:
        return ALGORITHM_LABELS.get(self.algorithm, self.algorithm)

    @property
    def policy(self) -> Policy:
        """The policy this model samples with (:mod:`rltuner.policy`)."""
        return Policy(self.network, self.algorithm, self.reward_rnn, self.progressions)

    @property
    def base(self) -> EvalModel:
        """The untuned Note RNN this model was tuned from (itself for a Note RNN)."""
        if self.reward_rnn is None:
            return self
        path = self.reward_rnn_path or Path("?")
        return EvalModel(_default_name(path), path, self.reward_rnn)


def _default_name(path: Path) -> str:
    if path == bundled_note_rnn_path():
        return "bundled Note RNN"
    if path.stem in ("tuned", "best", "last") and path.parent.name:
        return path.parent.name
    return path.stem


def load_model(
    spec: str | os.PathLike, name: str | None = None, note_rnn: str | os.PathLike | None = None
) -> EvalModel:
    """Load ``spec``: a checkpoint path, a run directory, ``"bundled"``, or ``"NAME=PATH"``
    (``NAME`` labels the model in tables), with its prior as :func:`rltuner.policy.load_policy`
    finds it (``note_rnn``: a Note RNN file to use as the prior)."""
    spec = str(spec)
    if name is None and "=" in spec and not Path(spec).exists():
        name, spec = spec.split("=", 1)
    loaded = load_policy(spec, note_rnn=note_rnn)
    path = loaded.path
    display = name or ("bundled Note RNN" if spec == "bundled" else _default_name(path))
    pol = loaded.policy
    return EvalModel(display, path, pol.network, pol.algorithm, pol.prior, loaded.prior_path,
                     loaded.meta, pol.progressions)  # fmt: skip


# ------------------------------------------------------------------------------ sampling
class EvalRollout(NamedTuple):
    """Sampled compositions and per-step scores.

    ``compositions`` (M, N) int8 classes; ``log_p`` (M, N) float32 Reward-RNN log p(a|s) of
    each sampled note; ``kl`` (M, N) float32 ``KL(π(·|s) ‖ p(·|s))`` at each step (0 when the
    model is its own Reward RNN)."""

    compositions: np.ndarray
    log_p: np.ndarray
    kl: np.ndarray
    harmony: HarmonyTables | None = None
    chord_of: np.ndarray | None = None


def rollout(
    model: EvalModel,
    n: int,
    seed: int = 0,
    num_notes: int = 32,
    batch: int = 1024,
    workers: int | None = None,
    progressions: Sequence[Progression] | None = None,
) -> EvalRollout:
    """Sample ``n`` compositions of ``num_notes`` steps from ``model`` with the one sampler
    (:func:`rltuner.policy.sample`: random-note priming, softmax of the policy's scores), in
    chunks of ``batch`` on ``workers`` threads (default :func:`default_workers`). Chunk ``i``
    draws from seed ``(seed, i)``: the same ``seed`` and ``batch`` give the same compositions
    whatever the number of workers, and the same as ``rltuner generate`` with that seed.
    ``progressions``: play over these chords (default: a chord-tuned model's own)."""
    s = sample(model.policy, n, num_notes, seed, batch=batch, workers=workers,
               progressions=progressions)  # fmt: skip
    return EvalRollout(s.compositions, s.log_p, s.kl, s.harmony, s.chord_of)


def sample_trace(
    model: EvalModel, num_notes: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One sampled melody ``(N,)`` and the policy's distribution before each note
    ``(N, 38)`` (for the note-probability heatmap)."""
    s = sample(model.policy, 1, num_notes, seed, probs_for=1)
    return s.compositions[0].astype(np.int64), s.probs[0].astype(np.float64)


# ------------------------------------------------------------------------------ statistics
def kl_divergence(policy_logits: np.ndarray, prior_logits: np.ndarray) -> np.ndarray:
    """``KL(softmax(policy) ‖ softmax(prior))`` per row of two ``(B, 38)`` logit arrays, in
    nats (float64). Equal rows give 0; a class with zero policy probability contributes 0."""
    lp = np.asarray(policy_logits, dtype=np.float64)
    lq = np.asarray(prior_logits, dtype=np.float64)
    lp = lp - (lp.max(axis=1, keepdims=True) + np.log(np.exp(lp - lp.max(1, keepdims=True))
                                                      .sum(1, keepdims=True)))  # fmt: skip
    lq = lq - (lq.max(axis=1, keepdims=True) + np.log(np.exp(lq - lq.max(1, keepdims=True))
                                                      .sum(1, keepdims=True)))  # fmt: skip
    return np.maximum((np.exp(lp) * (lp - lq)).sum(axis=1), 0.0)


def distinct_share(compositions: np.ndarray) -> float:
    """Number of distinct rows of ``compositions (M, N)`` divided by ``M``; NaN for M = 0."""
    comps = np.ascontiguousarray(np.asarray(compositions, dtype=np.int8))
    if comps.ndim != 2 or comps.shape[0] == 0:
        return math.nan
    if comps.shape[1] == 0:
        return 1.0 / comps.shape[0]
    rows = comps.view(np.dtype((np.void, comps.shape[1]))).reshape(-1)
    return float(np.unique(rows).size / comps.shape[0])


def event_shares(compositions: np.ndarray) -> dict[str, float]:
    """``notes_per_composition`` (mean count of classes ≥ 2 per row), ``rest_share`` (share of
    entries equal to 0, note-off) and ``hold_share`` (equal to 1, no-event) of ``(M, N)``."""
    c = np.asarray(compositions)
    if c.ndim != 2 or c.size == 0:
        return {"notes_per_composition": math.nan, "rest_share": math.nan, "hold_share": math.nan}
    counts = np.bincount(c.reshape(-1).astype(np.int64), minlength=NUM_CLASSES)
    return {
        "notes_per_composition": float(counts[FIRST_NOTE_CLASS:].sum() / c.shape[0]),
        "rest_share": float(counts[0] / c.size),
        "hold_share": float(counts[1] / c.size),
    }


def corpus_reference(num_notes: int = 32) -> dict[str, Any] | None:
    """The corpus column of the tables: the extra statistics that are defined for data
    (:func:`distinct_share`, :func:`event_shares` and the naturalness metrics) of the held-out
    ``num_notes``-step windows of the bundled corpus (:mod:`rltuner.naturalness`), with the
    split named; ``None`` when the corpus is not installed or has no such window."""
    ref = bundled_reference()
    if ref is None:
        return None
    windows = ref.windows(num_notes)
    if windows.shape[0] == 0:
        return None
    nat = ref.reference_stats(num_notes)
    return {
        "label": "Corpus (held-out windows)",
        "split": ref.split,
        "windows": int(windows.shape[0]),
        "extra": {
            "distinct_share": distinct_share(windows),
            **event_shares(windows),
            **nat.scalars(),
        },
        "naturalness": nat.details(),
    }


# ------------------------------------------------------------------------------ results
@dataclass
class ModelEvaluation:
    """Statistics of one model's ``stats.num_compositions`` sampled compositions."""

    name: str
    path: str
    algorithm: str
    reward_rnn: str | None
    stats: CompositionStats
    extra: dict[str, float]
    seconds: float = 0.0
    # JSON-ready distributions and top openings (NaturalnessStats.details())
    naturalness: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return ALGORITHM_LABELS.get(self.algorithm, self.algorithm)

    @property
    def column(self) -> str:
        """Column header: the name, with the algorithm when the name does not say it."""
        if self.name == self.label or self.name.endswith(f"({self.label})"):
            return self.name
        return f"{self.name} ({self.label})"

    def table1(self) -> dict[str, float]:
        return self.stats.table1()

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        intervals = {k: _ratio(getattr(s, k), s.total_notes) for k in INTERVAL_NAMES}
        return {
            "name": self.name,
            "path": self.path,
            "algorithm": self.algorithm,
            "reward_rnn": self.reward_rnn,
            "compositions": s.num_compositions,
            "notes": s.total_notes,
            "seconds": self.seconds,
            "table1": _clean(self.table1()),
            "matches_paper_q": rows_matching_paper(self.table1()),
            "standard_errors": _clean(s.binomial_se()),
            "extra": _clean(self.extra),
            "intervals": _clean(intervals),
            "naturalness": self.naturalness,
            "counts": dataclasses.asdict(s),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelEvaluation:
        return cls(d["name"], d["path"], d["algorithm"], d.get("reward_rnn"),
                   CompositionStats(**d["counts"]), {k: _nan(v) for k, v in d["extra"].items()},
                   float(d.get("seconds", 0.0)), d.get("naturalness") or {})  # fmt: skip


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _clean(d: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: undefined values become ``null``."""
    return {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
            for k, v in d.items()}  # fmt: skip


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def evaluate_model(
    model: EvalModel,
    compositions: int = 100_000,
    seed: int = 0,
    key: Key = C_MAJOR,
    num_notes: int = 32,
    batch: int = 1024,
    workers: int | None = None,
    progressions: Sequence[Progression] | None = None,
) -> tuple[ModelEvaluation, EvalRollout]:
    """Sample and score ``compositions`` melodies of ``model`` (over ``progressions``, or a
    chord-tuned model's own chords: then with the harmony statistics of
    :func:`rltuner.harmony.harmony_statistics` as ``harmony_*`` extra rows). Returns the
    statistics and the rollout they came from."""
    t0 = time.perf_counter()
    ro = rollout(model, compositions, seed, num_notes, batch, workers, progressions)
    stats = composition_stats(ro.compositions, key)
    nat = naturalness_stats(ro.compositions, bundled_reference())
    extra = {
        "mean_log_p": float(ro.log_p.mean(dtype=np.float64)),
        "kl_to_note_rnn": float(ro.kl.mean(dtype=np.float64)),
        "distinct_share": distinct_share(ro.compositions),
        **event_shares(ro.compositions),
        **nat.scalars(),
    }
    if ro.harmony is not None:
        from rltuner.harmony import harmony_statistics

        h = harmony_statistics(ro.compositions, ro.chord_of, ro.harmony)
        extra.update({f"harmony_{k}": float(v) for k, v in h.items()})
    reward = str(model.reward_rnn_path) if model.reward_rnn_path is not None else None
    ev = ModelEvaluation(model.name, str(model.path), model.algorithm, reward, stats, extra,
                         time.perf_counter() - t0, nat.details())  # fmt: skip
    return ev, ro


# ------------------------------------------------------------------------------ comparison
def _fmt_pct(v: float, se: float | None = None) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    pct = 100.0 * v
    digits = 1 if abs(pct) >= 10 else 2 if abs(pct) >= 0.1 or pct == 0 else 3
    if se is not None and not math.isnan(se) and se > 0:
        # enough digits that the standard error is visible
        digits = max(digits, min(4, 1 - math.floor(math.log10(100.0 * se))))
        return f"{pct:.{digits}f}% ± {100.0 * se:.{digits}f}"
    return f"{pct:.{digits}f}%"


def _fmt_num(v: float, digits: int = 3) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    return f"{v:.{digits}f}".replace("-", "−")


@dataclass
class Comparison:
    """Evaluations of several models under the same settings; renders Markdown, JSON, CSV."""

    models: list[ModelEvaluation]
    compositions: int
    seed: int
    key: str = "C major"
    num_notes: int = 32
    # the corpus column (:func:`corpus_reference`), None without the corpus
    reference: dict[str, Any] | None = None

    def _reference_value(self, k: str) -> float | None:
        """The corpus column's value of extra row ``k``; ``None`` when it has none."""
        if self.reference is None or k not in self.reference["extra"]:
            return None
        return _nan(self.reference["extra"][k])

    # ---- Markdown
    def to_markdown(self, paper: bool = True) -> str:
        cols = [m.column for m in self.models]
        head = ["Metric", *cols] + ([f"Paper: {c}" for c in PAPER_COLUMNS] if paper else [])
        lines = [
            f"### Table 1 statistics ({self.compositions:,} compositions per model, "
            f"{self.num_notes} steps, key {self.key}, seed {self.seed})",
            "",
            _md_row(head),
            _md_row(["---"] + ["---:"] * (len(head) - 1)),
        ]
        for row in TABLE1_ROWS:
            cells = [row]
            for m in self.models:
                v, se = m.table1()[row], m.stats.binomial_se().get(row)
                cells.append(_fmt_pct(v, se) if row in PERCENT_ROWS else _fmt_num(v, 3))
            if paper:
                cells += [s for _, s in PAPER_TABLE1[row]]
            lines.append(_md_row(cells))
        if paper:
            counts = ", ".join(
                f"{m.column} {sum(rows_matching_paper(m.table1()).values())}/{len(TABLE1_ROWS)}"
                for m in self.models
            )
            lines += [
                "",
                f"Rows matching or beating the paper's Q column (rows 1–5 lower is "
                f"better, |autocorrelation|; at the paper's printed precision): {counts}.",
            ]
        lines += ["", "### Further statistics (not in the paper)", ""]
        ref_cols = [self.reference["label"]] if self.reference else []
        lines.append(_md_row(["Metric", *cols, *ref_cols]))
        lines.append(_md_row(["---"] + ["---:"] * (len(cols) + len(ref_cols))))
        for k, (label, kind) in EXTRA_ROWS.items():
            cells = [label]
            for m in self.models:
                v = m.extra.get(k, math.nan)
                if kind == "pct":
                    se = (
                        math.sqrt(v * (1 - v) / m.stats.total_notes)
                        if k in _STEP_SHARE_ROWS and not math.isnan(v) and m.stats.total_notes
                        else None
                    )
                    cells.append(_fmt_pct(v, se))
                else:
                    cells.append(_fmt_num(v, 3))
            if ref_cols:
                r = self._reference_value(k)
                cells.append("—" if r is None else _fmt_pct(r) if kind == "pct" else _fmt_num(r))
            lines.append(_md_row(cells))
        if any(k in m.extra for m in self.models for k in HARMONY_ROWS):
            lines += ["", "### Harmony (over the chords each model played)", ""]
            lines.append(_md_row(["Metric", *cols]))
            lines.append(_md_row(["---"] + ["---:"] * len(cols)))
            for k, label in HARMONY_ROWS.items():
                lines.append(_md_row([label, *(_fmt_pct(m.extra.get(k, math.nan))
                                               for m in self.models)]))  # fmt: skip
        lines += ["", "Most common first bar (16 steps; `-` hold, `r` rest):", ""]
        for m in self.models:
            top = (m.naturalness.get("top_openings") or {}).get("16")
            share = m.extra.get("top_opening_share_16", math.nan)
            text = f"`{format_opening(top)}` ({_fmt_pct(share)})" if top else "n/a"
            lines.append(f"- {m.column}: {text}")
        lines += ["", "### Intervals (share of all notes; docs/rules.md#table-1-statistics)", ""]
        lines.append(_md_row(["Interval", *cols]))
        lines.append(_md_row(["---"] + ["---:"] * len(cols)))
        for k in INTERVAL_NAMES:
            cells = [INTERVAL_LABELS[k]]
            for m in self.models:
                n = m.stats.total_notes
                v = _ratio(getattr(m.stats, k), n)
                cells.append(_fmt_pct(v, math.sqrt(v * (1 - v) / n) if n else None))
            lines.append(_md_row(cells))
        lines += ["", *self._notes()]
        return "\n".join(lines) + "\n"

    def _notes(self) -> list[str]:
        notes = [
            "Notes:",
            "- Sampling: random-note priming (first observation uniform over all 38 classes), "
            "each next note drawn from the softmax of the model's outputs (G: of G + Reward-RNN "
            "logits), no exploration; every model sees the same random numbers.",
            "- ± values are binomial standard errors sqrt(p(1−p)/n) with n the row's "
            "denominator (notes, compositions or leaps).",
            '- "In-key preferred intervals" counts in-key fifths **and in-key thirds**; the '
            "original code counted only the fifths (a misplaced parenthesis).",
            "- Autocorrelations are means over compositions where the coefficient is defined.",
            "- Mean log p(a|s) and the KL estimate use the model's Reward RNN (its base Note "
            "RNN; an untuned Note RNN is its own, so its KL is 0). KL is the mean over sampled "
            "steps of Σ_a π(a|s)(log π(a|s) − log p(a|s)).",
            "- Naturalness (docs/evaluation.md): distinct openings = distinct 16/8-step "
            "prefixes among the first 2,000 compositions (the share falls as a batch grows); "
            "the most common opening's share is over all compositions; melodic intervals are "
            "between consecutive note onsets "
            "(±12 semitones, larger leaps pooled); distances are total variation "
            "½Σ|p − q| to the corpus histograms (intervals, pitch classes of onsets, onset "
            "positions in the bar); the trigram is interpolated Kneser–Ney over the 38 classes. "
            "Corpus = the bundled corpus split as the bundled Note RNN was: "
            + (self.reference["split"] if self.reference else "not installed (n/a)")
            + (
                f"; its column scores {self.reference['windows']:,} held-out "
                f"{self.num_notes}-step windows."
                if self.reference
                else "."
            ),
            "- Paper columns: Jaques et al., Table 1 (100,000 compositions per model), for "
            "reference; their Note RNN and corpus differ from ours.",
        ]
        for m in self.models:
            notes.append(f"- {m.column}: `{m.path}`" + (
                f", Reward RNN `{m.reward_rnn}`" if m.reward_rnn else "") +
                f" ({m.seconds:.1f} s)")  # fmt: skip
        return notes

    # ---- JSON / CSV
    def to_dict(self) -> dict[str, Any]:
        return {
            "compositions": self.compositions,
            "seed": self.seed,
            "key": self.key,
            "num_notes": self.num_notes,
            "in_key_preferred_counts_thirds": True,
            "models": [m.to_dict() for m in self.models],
            "corpus_reference": (
                {**self.reference, "extra": _clean(self.reference["extra"])}
                if self.reference
                else None
            ),
            "paper": {
                row: dict(zip(PAPER_COLUMNS, (v for v, _ in vals), strict=True))
                for row, vals in PAPER_TABLE1.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        models = [ModelEvaluation.from_dict(m) for m in d["models"]]
        return cls(models, int(d["compositions"]), int(d["seed"]), d.get("key", "C major"),
                   int(d.get("num_notes", 32)), d.get("corpus_reference"))  # fmt: skip

    def to_csv(self) -> str:
        """One row per metric; per model a value and a standard-error column (fractions, not
        %), then the corpus reference and the paper's columns (empty where they have no
        value)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        header = ["section", "metric"]
        for m in self.models:
            header += [m.column, f"{m.column} se"]
        header += ["corpus reference"]
        header += [f"paper {c}" for c in PAPER_COLUMNS]
        w.writerow(header)

        def emit(section: str, metric: str, values: list[tuple[float, float | None]],
                 paper: tuple | None = None, reference: float | None = None) -> None:  # fmt: skip
            row: list[Any] = [section, metric]
            for v, se in values:
                row += [_csv_num(v), _csv_num(se)]
            row.append(_csv_num(reference))
            row += [v for v, _ in paper] if paper else [""] * len(PAPER_COLUMNS)
            w.writerow(row)

        for r in TABLE1_ROWS:
            emit("table1", r, [(m.table1()[r], m.stats.binomial_se().get(r)) for m in self.models],
                 PAPER_TABLE1[r])  # fmt: skip
        for k, (label, _) in EXTRA_ROWS.items():
            emit("extra", label, [(m.extra.get(k, math.nan), None) for m in self.models],
                 reference=self._reference_value(k))  # fmt: skip
        for k in INTERVAL_NAMES:
            vals = []
            for m in self.models:
                n = m.stats.total_notes
                v = _ratio(getattr(m.stats, k), n)
                vals.append((v, math.sqrt(v * (1 - v) / n) if n else None))
            emit("intervals", INTERVAL_LABELS[k], vals)
        if any(k in m.extra for m in self.models for k in HARMONY_ROWS):
            for k, label in HARMONY_ROWS.items():
                emit("harmony", label, [(m.extra.get(k, math.nan), None) for m in self.models])
        return buf.getvalue()

    def write(self, out_dir: str | os.PathLike, stem: str = "evaluation") -> dict[str, Path]:
        """Write ``stem.md``, ``stem.json`` and ``stem.csv`` into ``out_dir`` (atomically)."""
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RltunerError(f"{out}: cannot create the output folder ({e.strerror})") from None
        paths = {"markdown": out / f"{stem}.md", "json": out / f"{stem}.json",
                 "csv": out / f"{stem}.csv"}  # fmt: skip
        atomic_write_text(paths["markdown"], self.to_markdown())
        atomic_write_text(paths["json"], self.to_json())
        atomic_write_text(paths["csv"], self.to_csv())
        return paths


def _csv_num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(float(v))


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def evaluate_models(
    specs: Sequence[str | EvalModel],
    compositions: int = 100_000,
    seed: int = 0,
    key: Key | str = C_MAJOR,
    num_notes: int = 32,
    batch: int = 1024,
    workers: int | None = None,
    progress: bool = False,
    note_rnn: str | os.PathLike | None = None,
    chords: Sequence[str] = (),
    chord_steps: int = 8,
    progressions: Sequence[Progression] | None = None,
) -> Comparison:
    """Evaluate every model of ``specs`` (paths, run folders, ``"bundled"``, ``NAME=PATH`` or
    loaded :class:`EvalModel`) with the same settings. Duplicate names get a suffix.
    ``note_rnn``: the prior of tuned models whose own is not found (checked against each
    model's recorded hash; see :func:`rltuner.policy.resolve_prior`).

    ``chords``: progressions (``"C G Am F"``) every model plays over, with the harmony rows;
    without them, chord-tuned models play over their own. Over chords, when no untuned Note
    RNN is among the models, the first tuned model's base Note RNN is added as the baseline
    column (on the same chords). ``progressions``: parsed progressions, instead of ``chords``."""
    key = Key.parse(key) if isinstance(key, str) else key
    progs = resolve_progressions(chords, None, chord_steps, num_notes)
    for prog in progressions or ():
        check_fits(prog, num_notes, where="--chords")
        progs.append(prog)
    models = [s if isinstance(s, EvalModel) else load_model(s, note_rnn=note_rnn) for s in specs]
    over_chords = bool(progs) or any(m.progressions for m in models)
    if over_chords and all(m.reward_rnn is not None for m in models):
        models.append(models[0].base)
    reference = corpus_reference(num_notes)  # built once, before any model is timed
    seen: dict[str, int] = {}
    for m in models:
        seen[m.name] = seen.get(m.name, 0) + 1
        if seen[m.name] > 1:
            m.name = f"{m.name} #{seen[m.name]}"
    results = []
    base_progs = progs or next((list(m.progressions) for m in models if m.progressions), [])
    for m in models:
        own = progs or (list(m.progressions) if m.progressions else base_progs)
        ev, _ = evaluate_model(m, compositions, seed, key, num_notes, batch, workers,
                               own or None)  # fmt: skip
        if progress:
            print(f"{m.name}: {compositions:,} compositions in {ev.seconds:.2f} s")
        results.append(ev)
    return Comparison(results, compositions, seed, key.name, num_notes, reference)
