"""Naturalness and diversity of melodies: how far a batch of compositions is from the data.

Every metric is a pure function over a batch of compositions ``(M, T)`` of int classes in the
encoding of :mod:`rltuner.encoding` (0 note-off, 1 no-event/hold, 2..37 pitches 48..83), or a
list of 1-D melodies of any lengths (for the corpus). Histograms are counts; shares and
distances are derived from them, so batches combine by adding counts.

* :func:`opening_diversity`: share of distinct ``length``-step prefixes (16 = the first bar,
  8 = its first half) among the compositions, and the single most common prefix with its share.
* :func:`interval_histogram`: melodic intervals between consecutive note onsets of a melody
  (rests and holds between them are skipped), −12..+12 semitones one bin each, larger leaps
  pooled into two bins (:data:`INTERVAL_LABELS`); :func:`repeated_pitch_share` is bin 0.
* :func:`pitch_class_histogram` and :func:`onset_position_histogram`: note onsets by pitch
  class and by position in the 16-step bar (step ``t`` of a melody lies at ``t mod 16``).
* :class:`KneserNeyTrigram`: an interpolated Kneser–Ney trigram model over the 38 classes;
  :meth:`~KneserNeyTrigram.mean_log_likelihood` is the held-out naturalness score.
* :func:`total_variation`: ``½ Σ |p − q|`` between two normalised histograms.

:func:`bundled_reference` fits the trigram and the corpus histograms on the part of the bundled
corpus that the bundled Note RNN did **not** train on (its validation split: ``Dataset.split(0.1,
seed=0)``, 1,285 melodies) and keeps the other 11,563 melodies as held-out data, whose 32-step
windows give the reference row (:meth:`CorpusReference.reference_stats`). No torch here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from rltuner.corpus import Dataset, load_bundled
from rltuner.encoding import (
    FIRST_NOTE_CLASS,
    MIN_PITCH,
    NO_EVENT,
    NOTE_OFF,
    NUM_CLASSES,
    STEPS_PER_BAR,
    class_label,
)
from rltuner.errors import RltunerError

__all__ = [
    "MAX_INTERVAL",
    "INTERVAL_LABELS",
    "OPENING_LENGTHS",
    "OPENING_SAMPLE",
    "NOTE_RNN_SPLIT",
    "Opening",
    "opening_diversity",
    "interval_histogram",
    "repeated_pitch_share",
    "pitch_class_histogram",
    "onset_position_histogram",
    "total_variation",
    "shares",
    "format_opening",
    "KneserNeyTrigram",
    "CorpusReference",
    "bundled_reference",
    "NaturalnessStats",
    "naturalness_stats",
]

MAX_INTERVAL = 12  # intervals beyond ±12 semitones are pooled into one bin per direction
# bin i holds interval i − 13: 0 = a leap down of more than 12, 1..25 = −12..+12, 26 = up > 12
INTERVAL_LABELS: tuple[str, ...] = (
    f"< −{MAX_INTERVAL}",
    *(f"{d:+d}".replace("-", "−") if d else "0" for d in range(-MAX_INTERVAL, MAX_INTERVAL + 1)),
    f"> +{MAX_INTERVAL}",
)
OPENING_LENGTHS: tuple[int, ...] = (STEPS_PER_BAR, STEPS_PER_BAR // 2)
# distinct openings are counted among this many compositions: the share of distinct prefixes
# falls as a batch grows (bundled Note RNN, 8 steps: 87% of 2,000, 76% of 10,000, 58% of
# 100,000), so a fixed sample keeps runs of any size comparable (issue 13's yardstick: 2,000)
OPENING_SAMPLE = 2000
# the bundled Note RNN's melody-level split (its checkpoint metadata: validation_fraction 0.1,
# seed 0, 11,563 training / 1,285 validation melodies; docs/model_card.md)
NOTE_RNN_SPLIT = (0.1, 0)

Melodies = np.ndarray | Sequence[np.ndarray]


# ------------------------------------------------------------------------------ counting
def _concat(melodies: Melodies) -> tuple[np.ndarray, np.ndarray]:
    """All steps of a batch in one int8 array ``(S,)`` and the melody boundaries ``(R+1,)``
    (melody ``r`` is ``steps[offsets[r]:offsets[r+1]]``). A 2-D array is not copied."""
    if isinstance(melodies, np.ndarray) and melodies.ndim == 2:
        m, t = melodies.shape
        steps = np.ascontiguousarray(melodies, dtype=np.int8).reshape(-1)
        offsets = np.arange(m + 1, dtype=np.int64) * t
    else:
        arrays = [np.asarray(a).reshape(-1) for a in (
            [melodies] if isinstance(melodies, np.ndarray) else melodies)]  # fmt: skip
        lengths = np.array([a.size for a in arrays], dtype=np.int64)
        steps = (np.concatenate(arrays).astype(np.int8) if arrays
                 else np.zeros(0, dtype=np.int8))  # fmt: skip
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if steps.size and (steps.min() < 0 or steps.max() >= NUM_CLASSES):
        raise ValueError(f"classes must lie in 0..{NUM_CLASSES - 1}")
    return steps, offsets


_PITCH_CLASS_OF = (np.arange(NUM_CLASSES) + MIN_PITCH - FIRST_NOTE_CLASS) % 12  # class -> pc


@nb.njit(cache=True, nogil=True)
def _count_notes(steps, offsets, intervals, pitch_classes, positions):
    """One pass over every melody: add its note onsets to ``pitch_classes (12,)`` and
    ``positions (P,)`` (step within the melody mod P) and the intervals between consecutive
    onsets to ``intervals (27,)`` (clipped to the two pooled bins)."""
    n_pos = positions.shape[0]
    for r in range(offsets.shape[0] - 1):
        last = -1
        pos = 0  # step within the melody mod n_pos (a counter: no division per step)
        for i in range(offsets[r], offsets[r + 1]):
            x = np.int64(steps[i])
            if x >= FIRST_NOTE_CLASS:
                pitch_classes[_PITCH_CLASS_OF[x]] += 1
                positions[pos] += 1
                if last >= 0:
                    d = min(max(x - last, -MAX_INTERVAL - 1), MAX_INTERVAL + 1)
                    intervals[d + MAX_INTERVAL + 1] += 1
                last = x
            pos += 1
            if pos == n_pos:
                pos = 0


class _NoteCounts(NamedTuple):
    intervals: np.ndarray  # (27,)
    pitch_classes: np.ndarray  # (12,)
    positions: np.ndarray  # (steps_per_bar,)


def _note_counts(melodies: Melodies, steps_per_bar: int = STEPS_PER_BAR) -> _NoteCounts:
    steps, offsets = _concat(melodies)
    out = _NoteCounts(np.zeros(len(INTERVAL_LABELS), np.int64), np.zeros(12, np.int64),
                      np.zeros(steps_per_bar, np.int64))  # fmt: skip
    _count_notes(steps, offsets, *out)
    return out


def _as_batch(compositions: np.ndarray) -> np.ndarray:
    c = np.asarray(compositions)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2:
        raise ValueError(f"compositions must be (M, T), got shape {c.shape}")
    if c.size and (c.min() < 0 or c.max() >= NUM_CLASSES):
        raise ValueError(f"classes must lie in 0..{NUM_CLASSES - 1}")
    return c


# ------------------------------------------------------------------------------ openings
class Opening(NamedTuple):
    """Diversity of the ``length``-step openings of a batch.

    ``distinct_share``: distinct prefixes / compositions among the first ``sample``
    compositions (all when fewer); ``top_share``: compositions opening with the most common
    prefix / compositions, over the whole batch; ``top``: that prefix (classes; the
    lexicographically smallest one on a tie). NaN / ``None`` when the batch is empty or its
    compositions are shorter than ``length`` (no such opening exists)."""

    length: int
    distinct_share: float
    top_share: float
    top: tuple[int, ...] | None


def _prefix_ranks(prefix: np.ndarray) -> np.ndarray:
    """Dense rank ``(M,)`` of each row of ``prefix (M, L)`` in lexicographic order (equal rows,
    equal ranks): base-38 integer keys of 6 steps at a time, each folded into the ranks of the
    steps before by one ``np.unique`` (ranks < M, so ``rank · 38⁶ + key`` cannot overflow)."""
    p = prefix.astype(np.int64)
    ranks = np.zeros(p.shape[0], dtype=np.int64)
    for s in range(0, p.shape[1], 6):
        chunk = p[:, s : s + 6]
        weights = NUM_CLASSES ** np.arange(chunk.shape[1] - 1, -1, -1, dtype=np.int64)
        key = ranks * NUM_CLASSES ** chunk.shape[1] + chunk @ weights
        _, ranks = np.unique(key, return_inverse=True)
    return ranks.reshape(-1)


def opening_diversity(
    compositions: np.ndarray, length: int = STEPS_PER_BAR, sample: int = OPENING_SAMPLE
) -> Opening:
    """Distinct ``length``-step openings of ``compositions (M, T)`` (see :class:`Opening`):

    ``distinct_share = |{c[i, :length] : i < n}| / n`` with ``n = min(M, sample)`` and
    ``top_share = max_p |{i : c[i, :length] = p}| / M``. An all-identical batch gives
    ``distinct_share = 1/n`` and ``top_share = 1``; ``T < length`` gives NaN (a shorter
    prefix would measure something else under the same name)."""
    c = _as_batch(compositions)
    m, t = c.shape
    if m == 0 or t < length or length < 1 or sample < 1:
        return Opening(length, math.nan, math.nan, None)
    ids = _prefix_ranks(c[:, :length])
    counts = np.bincount(ids)
    top = int(np.argmax(counts))  # first maximum: the lexicographically smallest prefix
    first = int(np.argmax(ids == top))
    top_prefix = tuple(int(x) for x in c[first, :length])
    n = min(m, sample)
    distinct = np.unique(ids[:n]).size / n
    return Opening(length, distinct, float(counts[top] / m), top_prefix)


def format_opening(classes: Sequence[int] | None) -> str:
    """An opening as text: pitch names (``C4``), ``-`` for a hold, ``r`` for a note-off;
    ``"n/a"`` for ``None``."""
    if classes is None:
        return "n/a"
    names = {NOTE_OFF: "r", NO_EVENT: "-"}
    return " ".join(names.get(int(c), class_label(int(c))) for c in classes)


# ------------------------------------------------------------------------------ histograms
def interval_histogram(melodies: Melodies) -> np.ndarray:
    """Counts ``(27,)`` of melodic intervals (:data:`INTERVAL_LABELS`) in ``melodies``.

    An interval is ``pitch(next onset) − pitch(onset)`` for consecutive note onsets (classes
    ≥ 2) of the same melody, whatever rests or holds lie between them; a repeated pitch is
    interval 0. A melody with fewer than two onsets adds nothing."""
    return _note_counts(melodies).intervals


def repeated_pitch_share(melodies: Melodies) -> float:
    """Share of melodic intervals (:func:`interval_histogram`) that repeat the pitch; NaN when
    no melody has two note onsets."""
    h = interval_histogram(melodies)
    total = h.sum()
    return float(h[MAX_INTERVAL + 1] / total) if total else math.nan


def pitch_class_histogram(melodies: Melodies) -> np.ndarray:
    """Counts ``(12,)`` of note onsets (classes ≥ 2) by pitch class (0 = C) over ``melodies``
    (an ``(M, N)`` array or a list of 1-D arrays). Holds and rests are not counted, and a
    note counts once whatever its duration."""
    return _note_counts(melodies).pitch_classes


def onset_position_histogram(melodies: Melodies, steps_per_bar: int = STEPS_PER_BAR) -> np.ndarray:
    """Counts ``(steps_per_bar,)`` of note onsets (classes ≥ 2) by position in the bar: the
    onset at step ``t`` of a melody (from 0) lies at ``t mod steps_per_bar``, i.e. every melody
    starts on a bar line (as the environment counts beats)."""
    return _note_counts(melodies, steps_per_bar).positions


def shares(counts: np.ndarray) -> np.ndarray:
    """``counts / Σ counts`` as float64; all NaN when the counts sum to 0."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else np.full(c.shape, math.nan)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``½ Σ |p/Σp − q/Σq|`` in [0, 1] between two histograms; NaN if either is empty."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# ------------------------------------------------------------------------------ n-gram
def _discount(counts: np.ndarray) -> float:
    """Kneser–Ney's absolute discount ``D = n1 / (n1 + 2 n2)`` from the number of entries
    seen once (n1) and twice (n2), kept in [0.1, 1] so that every class keeps a positive
    probability on tiny data (the bound never binds on the bundled corpus, where D lies in
    0.27..0.48 below the top unigram); 0.5 when neither occurs."""
    n1 = int(np.count_nonzero(counts == 1))
    n2 = int(np.count_nonzero(counts == 2))
    return min(max(n1 / (n1 + 2 * n2), 0.1), 1.0) if n1 + n2 else 0.5


def _interpolate(counts: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Absolute discounting interpolated with a lower-order distribution: per context (row)
    ``p(w) = (max(c(w) − D, 0) + D · #{w: c(w) > 0} · lower(w)) / Σ_w c(w)``, and ``lower``
    itself for a context never seen. ``counts`` (C, V); ``lower`` (V,) or (C, V)."""
    c = counts.astype(np.float64)
    d = _discount(counts)
    total = c.sum(axis=-1, keepdims=True)
    types = np.count_nonzero(counts, axis=-1)[..., None].astype(np.float64)
    lower = np.broadcast_to(lower, c.shape)
    safe = np.where(total > 0, total, 1.0)
    p = (np.maximum(c - d, 0.0) + d * types * lower) / safe
    return np.where(total > 0, p, lower)


@dataclass(frozen=True, eq=False)
class KneserNeyTrigram:
    """Interpolated Kneser–Ney trigram model over the 38 classes (natural-log tables).

    ``log_p3[u, v, w] = log p(w | u, v)``; ``log_p2[v, w]`` and ``log_p1[w]`` are the top-level
    bigram and unigram models used for the first two steps of a sequence, which have no full
    context. Fitted by :meth:`fit`; ``discounts`` records the ``D`` of each level."""

    log_p3: np.ndarray
    log_p2: np.ndarray
    log_p1: np.ndarray
    num_steps: int
    discounts: dict[str, float]

    @classmethod
    def fit(cls, melodies: Melodies) -> KneserNeyTrigram:
        """Fit on ``melodies``; n-grams never span two melodies.

        Trigram level: ``p3(w|u,v) = (max(c(uvw) − D3, 0) + D3 · N1+(uv•) · pc2(w|v)) /
        c(uv•)``. The lower levels use continuation counts, as Kneser and Ney did:
        ``pc2(w|v)`` discounts ``N1+(•vw)`` (distinct ``u`` before ``vw``) and interpolates
        with ``pc1(w)``, which discounts ``N1+(•w)`` and interpolates with the uniform
        ``1/38``, so every class keeps a positive probability. The top-level bigram and
        unigram (for a sequence's first two steps) discount raw counts in the same way.
        ``D = n1/(n1 + 2 n2)`` per level (:func:`_discount`)."""
        v = NUM_CLASSES
        steps, offsets = _concat(melodies)
        s = steps.astype(np.int64)
        starts = np.zeros(s.size, dtype=bool)
        starts[offsets[:-1][offsets[:-1] < s.size]] = True
        same2 = ~starts[1:]  # steps i and i + 1 belong to one melody
        same3 = same2[1:] & same2[:-1]
        c1 = np.bincount(s, minlength=v)
        c2 = np.bincount((s[:-1] * v + s[1:])[same2], minlength=v * v).reshape(v, v)
        c3 = np.bincount((s[:-2] * v * v + s[1:-1] * v + s[2:])[same3],
                         minlength=v**3).reshape(v, v, v)  # fmt: skip
        uniform = np.full(v, 1.0 / v)
        cont1 = np.count_nonzero(c2, axis=0)  # N1+(•w)
        cont2 = np.count_nonzero(c3, axis=0)  # N1+(•vw), indexed [v, w]
        pc1 = _interpolate(cont1, uniform)
        pc2 = _interpolate(cont2, pc1)
        p3 = _interpolate(c3.reshape(v * v, v), np.tile(pc2, (v, 1))).reshape(v, v, v)
        p2 = _interpolate(c2, pc1)
        p1 = _interpolate(c1, uniform)
        discounts = {"trigram": _discount(c3), "continuation_bigram": _discount(cont2),
                     "continuation_unigram": _discount(cont1), "bigram": _discount(c2),
                     "unigram": _discount(c1)}  # fmt: skip
        return cls(np.log(p3), np.log(p2), np.log(p1), int(s.size), discounts)

    def log_likelihood(self, compositions: np.ndarray) -> np.ndarray:
        """``(M, T)`` natural-log probability of each step of ``compositions (M, T)``: step 0
        under the unigram, step 1 given step 0 under the bigram, step ``t ≥ 2`` given steps
        ``t−2, t−1`` under the trigram (the steps before a composition are unknown)."""
        c = _as_batch(compositions).astype(np.int64)
        m, t = c.shape
        out = np.empty((m, t), dtype=np.float64)
        if t >= 1:
            out[:, 0] = self.log_p1[c[:, 0]]
        if t >= 2:
            out[:, 1] = self.log_p2[c[:, 0], c[:, 1]]
        if t >= 3:
            v = NUM_CLASSES
            idx = c[:, :-2] * (v * v) + c[:, 1:-1] * v + c[:, 2:]
            out[:, 2:] = self.log_p3.reshape(-1)[idx]
        return out

    def mean_log_likelihood(self, compositions: np.ndarray) -> float:
        """Mean of :meth:`log_likelihood` over all steps (nats per step); NaN when empty.
        One compiled pass, no ``(M, T)`` array."""
        c = np.ascontiguousarray(_as_batch(compositions), dtype=np.int8)
        if c.size == 0:
            return math.nan
        total = _ngram_total(c, self.log_p1, self.log_p2, self.log_p3)
        return float(total / c.size)


@nb.njit(cache=True, nogil=True)
def _ngram_total(c, log_p1, log_p2, log_p3):
    """Sum of :meth:`KneserNeyTrigram.log_likelihood` over ``c (M, T)`` int8."""
    total = 0.0
    for j in range(c.shape[0]):
        row = c[j]
        for t in range(row.shape[0]):
            if t == 0:
                total += log_p1[row[0]]
            elif t == 1:
                total += log_p2[row[0], row[1]]
            else:
                total += log_p3[row[t - 2], row[t - 1], row[t]]
    return total


# ------------------------------------------------------------------------------ the reference
@dataclass(frozen=True, eq=False)
class CorpusReference:
    """The data the metrics compare against: an n-gram and histograms fitted on ``fit``
    melodies, and ``held_out`` melodies (never seen by the fit) for the reference row.

    ``split`` says in words which melodies are which."""

    ngram: KneserNeyTrigram
    interval_counts: np.ndarray  # (27,)
    pitch_class_counts: np.ndarray  # (12,)
    onset_position_counts: np.ndarray  # (16,)
    held_out: list[np.ndarray]
    num_fit: int
    split: str

    @classmethod
    def from_melodies(
        cls, fit: Sequence[np.ndarray], held_out: Sequence[np.ndarray], split: str = ""
    ) -> CorpusReference:
        fit = list(fit)
        return cls(
            KneserNeyTrigram.fit(fit),
            interval_histogram(fit),
            pitch_class_histogram(fit),
            onset_position_histogram(fit),
            [np.asarray(m) for m in held_out],
            len(fit),
            split,
        )

    @classmethod
    def from_dataset(
        cls, data: Dataset, validation_fraction: float = NOTE_RNN_SPLIT[0],
        seed: int = NOTE_RNN_SPLIT[1],
    ) -> CorpusReference:  # fmt: skip
        """Fit on the *validation* part of ``data.split(validation_fraction, seed)`` (what a
        Note RNN trained by ``rltuner note-rnn train`` with these settings never trained on)
        and hold out its training part."""
        train, valid = data.split(validation_fraction, seed)
        split = (f"fit on the {len(valid):,} validation melodies of Dataset.split("
                 f"{validation_fraction}, seed={seed}); held out: its {len(train):,} training "
                 "melodies")  # fmt: skip
        return cls.from_melodies(valid.melodies, train.melodies, split)

    def windows(self, length: int) -> np.ndarray:
        """``(W, length)`` int8 windows of the held-out melodies: from each melody every whole
        window starting at a bar line, ``stride = length`` rounded up to whole bars apart
        (steps 0, 32, 64, … for ``length = 32``), so bar positions match the samples', in a
        fixed shuffled order. Cached per length, hence read-only."""
        return _windows(self, length)

    def reference_stats(self, length: int = 32) -> NaturalnessStats:
        """:func:`naturalness_stats` of the held-out :meth:`windows` of ``length`` steps (cached
        per length): the corpus row of the evaluation tables."""
        return _reference_stats(self, length)


@functools.lru_cache(maxsize=8)
def _windows(ref: CorpusReference, length: int) -> np.ndarray:
    if length < 1:
        raise ValueError(f"window length must be at least 1, got {length}")
    stride = -(-length // STEPS_PER_BAR) * STEPS_PER_BAR
    out = [m[s : s + length] for m in ref.held_out for s in range(0, m.size - length + 1, stride)]
    if not out:
        return np.zeros((0, length), dtype=np.int8)
    # a fixed shuffle: the first OPENING_SAMPLE windows are a sample of the whole corpus, not
    # of its first few hundred tunes (the corpus is ordered by collection)
    windows = np.stack(out).astype(np.int8)[np.random.default_rng(0).permutation(len(out))]
    windows.flags.writeable = False  # shared by every caller of the cache
    return windows


@functools.lru_cache(maxsize=8)
def _reference_stats(ref: CorpusReference, length: int) -> NaturalnessStats:
    return naturalness_stats(ref.windows(length), ref)


@functools.cache
def bundled_reference() -> CorpusReference | None:
    """:class:`CorpusReference` of the bundled corpus split as the bundled Note RNN was
    (:data:`NOTE_RNN_SPLIT`), built once per process (~0.6 s); ``None`` when the corpus is
    not installed."""
    try:
        data = load_bundled()
    except (RltunerError, OSError):
        return None
    return CorpusReference.from_dataset(data)


# ------------------------------------------------------------------------------ all together
@dataclass(frozen=True, eq=False)
class NaturalnessStats:
    """Naturalness and diversity of one batch (see the module docstring).

    ``openings``: one :class:`Opening` per length of :data:`OPENING_LENGTHS`;
    ``*_counts``: the batch's histograms; ``*_distance``: total variation to the reference's
    histograms and ``ngram_log_likelihood`` the reference trigram's mean per-step log
    likelihood (NaN without a reference)."""

    openings: tuple[Opening, ...]
    interval_counts: np.ndarray
    pitch_class_counts: np.ndarray
    onset_position_counts: np.ndarray
    interval_distance: float
    pitch_class_distance: float
    onset_position_distance: float
    ngram_log_likelihood: float

    @property
    def repeated_pitch_share(self) -> float:
        return float(shares(self.interval_counts)[MAX_INTERVAL + 1])

    def scalars(self) -> dict[str, float]:
        """Flat ``{name: value}`` of the single-number metrics (what tables show)."""
        out: dict[str, float] = {}
        for o in self.openings:
            out[f"distinct_openings_{o.length}"] = o.distinct_share
            out[f"top_opening_share_{o.length}"] = o.top_share
        out["repeated_pitch_share"] = self.repeated_pitch_share
        out["interval_distance"] = self.interval_distance
        out["pitch_class_distance"] = self.pitch_class_distance
        out["onset_position_distance"] = self.onset_position_distance
        out["ngram_log_likelihood"] = self.ngram_log_likelihood
        return out

    def details(self) -> dict[str, Any]:
        """JSON-ready distributions and top openings (NaN shares become ``None``)."""

        def clean(a: np.ndarray) -> list[float | None]:
            return [None if math.isnan(x) else float(x) for x in a]

        return {
            "top_openings": {
                str(o.length): list(o.top) if o.top else None for o in self.openings
            },  # fmt: skip
            "interval_shares": dict(
                zip(INTERVAL_LABELS, clean(shares(self.interval_counts)), strict=True)
            ),  # fmt: skip
            "pitch_class_shares": clean(shares(self.pitch_class_counts)),
            "onset_position_shares": clean(shares(self.onset_position_counts)),
        }


def naturalness_stats(
    compositions: np.ndarray, reference: CorpusReference | None = None
) -> NaturalnessStats:
    """All metrics of this module for ``compositions (M, T)`` against ``reference`` (the
    distances and the n-gram score are NaN without one)."""
    c = _as_batch(compositions)
    iv, pc, on = _note_counts(c)
    nan = math.nan
    return NaturalnessStats(
        openings=tuple(opening_diversity(c, n) for n in OPENING_LENGTHS),
        interval_counts=iv,
        pitch_class_counts=pc,
        onset_position_counts=on,
        interval_distance=total_variation(iv, reference.interval_counts) if reference else nan,
        pitch_class_distance=(
            total_variation(pc, reference.pitch_class_counts) if reference else nan
        ),  # fmt: skip
        onset_position_distance=(
            total_variation(on, reference.onset_position_counts) if reference else nan
        ),  # fmt: skip
        ngram_log_likelihood=reference.ngram.mean_log_likelihood(c) if reference else nan,
    )
