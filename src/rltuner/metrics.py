"""Evaluation statistics of the paper's Table 1 over batches of compositions.

Definitions: ``docs/rules.md#table-1-statistics``; rule names below are that page's sections.

:func:`composition_stats` scores every step ``i`` of each composition with the composition
before it (``beat = i``) and a fresh leap state per composition, using the reward kernel of
:mod:`rltuner.rewards` (the same rule code as the RL reward), and counts:

* note level (per generated note, denominator ``total_notes``): excessively repeated
  (repetition rule), not in key, in motif (motif rule), in repeated motif (repeated-motif
  rule), and the interval codes of the preferred-intervals rule:
  octave jumps (code > 12), sevenths (11), fifths (7; fifths not from a tonic/fifth note),
  sixths (9), fourths (5), thirds (4), seconds (2), rests (−1), rests after a tonic/fifth
  (−2) and in-key preferred intervals (−5 **and** −3; the original counted only −5 because of
  a misplaced parenthesis). Other codes (0, 1, 3, 6, 8, 10, 12, holds) are not counted.
* leaps (leap rule): resolved and doubled; "Leaps resolved" = resolved / (resolved + doubled).
* composition level (denominator ``num_compositions``): first note is the key's tonic class;
  the maximum over all entries occurs once; the lowest real note (≥ 2) exists and occurs once.
* autocorrelation at lags 1, 2, 3 of each whole composition (the autocorrelation rule's formula),
  averaged over compositions where it is defined (a constant composition gives NaN and is skipped).

Counts are raw integers, so statistics of several batches combine with
:meth:`CompositionStats.merge`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from rltuner.encoding import C_MAJOR, Key
from rltuner.rewards import COUNT_NAMES, RuleTables, composition_counts

__all__ = ["CompositionStats", "composition_stats", "TABLE1_ROWS", "INTERVAL_NAMES"]

TABLE1_ROWS: tuple[str, ...] = (
    "Notes excessively repeated",
    "Mean autocorrelation, lag 1",
    "Mean autocorrelation, lag 2",
    "Mean autocorrelation, lag 3",
    "Notes not in key",
    "Compositions starting with tonic",
    "Leaps resolved",
    "Compositions with unique max note",
    "Compositions with unique min note",
    "Notes in motif",
    "Notes in repeated motif",
)
INTERVAL_NAMES: tuple[str, ...] = COUNT_NAMES[COUNT_NAMES.index("octave_jumps") :]
_NOTE_COUNTS = ("repeated", "not_in_key", "in_motif", "in_repeated_motif", *INTERVAL_NAMES)
_COMPOSITION_COUNTS = ("starting_with_tonic", "unique_max", "unique_min")


def _zeros3() -> list[float]:
    return [0.0, 0.0, 0.0]


def _izeros3() -> list[int]:
    return [0, 0, 0]


@dataclass
class CompositionStats:
    """Raw Table-1 counts over ``num_compositions`` compositions of ``total_notes`` notes.

    ``autocorrelation_sum[k]`` / ``autocorrelation_count[k]`` hold the sum and number of
    defined (non-NaN) autocorrelation coefficients at lag ``k + 1`` over compositions.
    """

    num_compositions: int = 0
    total_notes: int = 0
    repeated: int = 0
    not_in_key: int = 0
    in_motif: int = 0
    in_repeated_motif: int = 0
    leaps_resolved: int = 0
    leaps_doubled: int = 0
    starting_with_tonic: int = 0
    unique_max: int = 0
    unique_min: int = 0
    octave_jumps: int = 0
    sevenths: int = 0
    fifths: int = 0
    sixths: int = 0
    fourths: int = 0
    thirds: int = 0
    seconds: int = 0
    rests: int = 0
    rests_after_tonic_or_fifth: int = 0
    in_key_preferred: int = 0
    autocorrelation_sum: list[float] = field(default_factory=_zeros3)
    autocorrelation_count: list[int] = field(default_factory=_izeros3)

    def merge(self, other: CompositionStats) -> CompositionStats:
        """A new :class:`CompositionStats` with the counts of both (batches combined)."""
        out = CompositionStats()
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(out, f.name, [x + y for x, y in zip(a, b, strict=True)]
                    if isinstance(a, list) else a + b)  # fmt: skip
        return out

    def _ratio(self, count: int, total: int) -> float:
        return count / total if total else math.nan

    def leaps_resolved_fraction(self) -> float:
        """resolved / (resolved + doubled); NaN without leaps."""
        return self._ratio(self.leaps_resolved, self.leaps_resolved + self.leaps_doubled)

    def mean_autocorrelation(self, lag: int) -> float:
        """Mean defined autocorrelation at ``lag`` (1..3) over compositions; NaN if none."""
        k = lag - 1
        return self._ratio(self.autocorrelation_sum[k], self.autocorrelation_count[k])

    def percentages(self) -> dict[str, float]:
        """Every count as a percentage: note-level counts of ``total_notes``, composition-level
        counts of ``num_compositions``, ``leaps_resolved`` of all resolved + doubled leaps."""
        out = {name: 100.0 * self._ratio(getattr(self, name), self.total_notes)
               for name in _NOTE_COUNTS}  # fmt: skip
        for name in _COMPOSITION_COUNTS:
            out[name] = 100.0 * self._ratio(getattr(self, name), self.num_compositions)
        out["leaps_resolved"] = 100.0 * self.leaps_resolved_fraction()
        return out

    def table1(self) -> dict[str, float]:
        """The paper's 11 Table-1 rows (:data:`TABLE1_ROWS`): fractions (not %) and means."""
        n, m = self.total_notes, self.num_compositions
        return {
            "Notes excessively repeated": self._ratio(self.repeated, n),
            "Mean autocorrelation, lag 1": self.mean_autocorrelation(1),
            "Mean autocorrelation, lag 2": self.mean_autocorrelation(2),
            "Mean autocorrelation, lag 3": self.mean_autocorrelation(3),
            "Notes not in key": self._ratio(self.not_in_key, n),
            "Compositions starting with tonic": self._ratio(self.starting_with_tonic, m),
            "Leaps resolved": self.leaps_resolved_fraction(),
            "Compositions with unique max note": self._ratio(self.unique_max, m),
            "Compositions with unique min note": self._ratio(self.unique_min, m),
            "Notes in motif": self._ratio(self.in_motif, n),
            "Notes in repeated motif": self._ratio(self.in_repeated_motif, n),
        }

    def binomial_se(self) -> dict[str, float]:
        """Binomial standard errors ``sqrt(p(1−p)/n)`` (fractions) of the proportion rows of
        :meth:`table1`; ``n`` is the row's denominator (notes, compositions or leaps)."""
        t = self.table1()
        denominators = {
            "Notes excessively repeated": self.total_notes,
            "Notes not in key": self.total_notes,
            "Compositions starting with tonic": self.num_compositions,
            "Leaps resolved": self.leaps_resolved + self.leaps_doubled,
            "Compositions with unique max note": self.num_compositions,
            "Compositions with unique min note": self.num_compositions,
            "Notes in motif": self.total_notes,
            "Notes in repeated motif": self.total_notes,
        }
        return {row: (math.sqrt(t[row] * (1.0 - t[row]) / d) if d else math.nan)
                for row, d in denominators.items()}  # fmt: skip


def composition_stats(compositions: np.ndarray, key: Key = C_MAJOR) -> CompositionStats:
    """Table-1 statistics of ``compositions`` (M, N) int classes 0..37 in ``key``.

    Each composition is scored note by note with the composition before the note and a fresh
    leap state (see the module docstring); N is the width of the array. Raises ``ValueError``
    for entries outside 0..37.
    """
    comps = np.asarray(compositions)
    if comps.ndim == 1:
        comps = comps[None, :]
    m, n = comps.shape
    counts, ac_sum, ac_count = composition_counts(comps, RuleTables.from_key(key, max(n, 1)))
    stats = CompositionStats(num_compositions=int(m), total_notes=int(m * n))
    for name, value in zip(COUNT_NAMES, counts.tolist(), strict=True):
        setattr(stats, name, int(value))
    stats.autocorrelation_sum = [float(v) for v in ac_sum]
    stats.autocorrelation_count = [int(v) for v in ac_count]
    return stats
