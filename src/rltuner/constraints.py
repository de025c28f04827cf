"""Bounds on the statistics of the kl_pg tuner's melodies, held by Lagrange multipliers.

The KL-regularised tuner maximises ``E[c·r_MT + α·log p] − β·KL(π‖p)``. With bounds it also
asks that chosen statistics of its compositions stay on the right side of a bound: a Table-1
statistic (``docs/rules.md#table-1-statistics``; "at least 31% of the compositions start on
the tonic", "|mean lag-3 autocorrelation| at most 0.015") or one of two data statistics (the
share of repeated pitches among the melodic intervals, the share of held steps). Each is a
ratio of expectations over compositions, so each bound is a linear constraint on the policy's
expectation of a per-composition quantity ``G_k`` (``E_π[G_k] ≥ 0`` exactly when the bound
holds), and the Lagrangian adds ``β·ν_k·G_k`` to the return. ``G_k`` is paid where it is
decided: a note's flag at its step, the first note at step 0, the autocorrelation as its
products at the later step of each pair, unique extremes at the last step.

The prices ``ν_k`` are in units of β (``exp(ν_k·G_k)`` is the tilt of the KL-regularised
optimum, whatever β is) and follow projected dual ascent after every batch (as in Lagrangian
PPO for constrained RL): ``ν_k ← clip(ν_k − η·clip(z_k/3, −1, 1), 0, cap)`` with ``z_k`` the
batch mean of ``G_k`` over its standard error, the fall of a met bound's price multiplied by
``release``. A clearly violated bound gets dearer by ``η`` per batch, a clearly slack one
cheaper, noise moves a price little, and a bound that is met costs nothing (its ν stays 0):
the policy moves from the Note RNN only as far as the bounds and the rules' reward need.

The pieces are pure functions over the features of :func:`rltuner.rewards.composition_features`
(and the compositions) so that they can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rltuner.encoding import FIRST_NOTE_CLASS, NO_EVENT
from rltuner.errors import RltunerError
from rltuner.rewards import COMPOSITION_FEATURES, STEP_FEATURES

__all__ = [
    "Constraint",
    "CONSTRAINT_NAMES",
    "TABLE1_BOUNDS",
    "NATURAL_BOUNDS",
    "PRESETS",
    "repeated_pitch_steps",
    "autocorrelation_steps",
    "constraint_set",
    "constraint_terms",
    "constraint_values",
    "dual_step",
]


@dataclass(frozen=True)
class Constraint:
    """One bound on a statistic.

    ``name`` is the statistic (:data:`CONSTRAINT_NAMES`); ``sense`` +1 for "at least
    ``bound``", −1 for "at most ``bound``" (an autocorrelation's ``|mean| ≤ b`` is two
    constraints, ``≥ −b`` and ``≤ b``)."""

    name: str
    sense: int
    bound: float

    @property
    def label(self) -> str:
        """``name/min`` (an "at least" bound) or ``name/max``: the constraint's key in logs."""
        return f"{self.name}/{'min' if self.sense > 0 else 'max'}"


# statistic -> (Table-1 row, sense (+1 at least, -1 at most, 0 |value| at most))
_ROWS: dict[str, tuple[str, int]] = {
    "repeated": ("Notes excessively repeated", -1),
    "autocorrelation_1": ("Mean autocorrelation, lag 1", 0),
    "autocorrelation_2": ("Mean autocorrelation, lag 2", 0),
    "autocorrelation_3": ("Mean autocorrelation, lag 3", 0),
    "not_in_key": ("Notes not in key", -1),
    "starting_with_tonic": ("Compositions starting with tonic", 1),
    "leaps_resolved": ("Leaps resolved", 1),
    "unique_max": ("Compositions with unique max note", 1),
    "unique_min": ("Compositions with unique min note", 1),
    "in_motif": ("Notes in motif", 1),
    "in_repeated_motif": ("Notes in repeated motif", 1),
    # not a Table-1 row: the share of melodic intervals that repeat the pitch
    # (rltuner.naturalness.repeated_pitch_share); the rules push it far below the data's
    "repeated_pitch": ("Repeated pitch share", 1),
    # not a Table-1 row: the share of steps that hold (class 1, no event); the rules reward
    # notes, so tuned melodies hold far less than the data (corpus 63%, Note RNN 52%)
    "hold": ("Hold (no-event) share of steps", 1),
}
CONSTRAINT_NAMES: tuple[str, ...] = tuple(_ROWS)

# The default bounds ("table1"): the paper's Q column (Jaques et al. 2017, Table 1) with a
# margin, so that a policy that sits on its bound still meets the printed value after the
# spread between seeds and batches (kl_pg at β = 5 varied by about ±0.01 in the
# autocorrelations and ±1 percentage point in the shares over 3 seeds, docs/tradeoff.md).
TABLE1_BOUNDS: dict[str, float] = {
    "repeated": 0.0002,  # paper 0.0%: below 0.05% rounds to it
    "autocorrelation_1": 0.08,  # paper −.11
    "autocorrelation_2": 0.015,  # paper .03
    "autocorrelation_3": 0.015,  # paper .03
    "not_in_key": 0.008,  # paper 1.00%
    "starting_with_tonic": 0.31,  # paper 28.8%
    "leaps_resolved": 0.925,  # paper 91.1%
    "unique_max": 0.59,  # paper 56.4%
    "unique_min": 0.55,  # paper 51.9%
    "in_motif": 0.775,  # paper 75.7%
    "in_repeated_motif": 0.002,  # paper 0.11%
}
# "natural" adds a floor on repeated pitches: 15.5% of the melodic intervals of the corpus's
# validation melodies, about 12% of the Note RNN's, 4-5% of melodies tuned toward the rules
# without it; the missing repeats are most of their interval-histogram distance to the corpus
# (docs/tradeoff.md). 9% brought that distance from 0.22 to 0.13-0.15 (5 seeds, β = 6)
NATURAL_BOUNDS: dict[str, float] = {**TABLE1_BOUNDS, "repeated_pitch": 0.09}
PRESETS: dict[str, dict[str, float]] = {
    "table1": TABLE1_BOUNDS,
    "natural": NATURAL_BOUNDS,
    "none": {},
}


def constraint_set(preset: str, bounds: Mapping[str, float] | None = None) -> list[Constraint]:
    """The constraints of ``preset`` (:data:`PRESETS`: "table1" the paper's Q column with a
    margin, "natural" those and a floor on repeated pitches, "none") with ``bounds`` added or
    replacing the preset's (name → bound; an autocorrelation's bound is on its absolute
    value). Raises :class:`RltunerError` for an unknown preset or name or a bound outside
    its range."""
    if preset not in PRESETS:
        raise RltunerError(f"unknown constraint preset {preset!r}; choose {', '.join(PRESETS)}")
    chosen = dict(PRESETS[preset])
    for name, b in (bounds or {}).items():
        if name not in _ROWS:
            raise RltunerError(
                f"unknown constrained statistic {name!r}; choose from {', '.join(CONSTRAINT_NAMES)}"
            )
        if isinstance(b, bool) or not isinstance(b, int | float) or not np.isfinite(b):
            raise RltunerError(f"constraint bound {name}={b!r}: give a finite number")
        if not 0.0 <= b <= 1.0:
            raise RltunerError(f"constraint bound {name}={b!r}: it must lie in 0..1")
        chosen[name] = float(b)
    out: list[Constraint] = []
    for name in CONSTRAINT_NAMES:  # a fixed order: multipliers are stored by position
        if name not in chosen:
            continue
        sense = _ROWS[name][1]
        if sense == 0:
            out += [Constraint(name, 1, -chosen[name]), Constraint(name, -1, chosen[name])]
        else:
            out.append(Constraint(name, sense, chosen[name]))
    return out


def repeated_pitch_steps(compositions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step of ``compositions`` (M, N): (the note onset repeats the pitch of the previous
    onset, the step is an onset after an earlier onset), both (M, N) bool: the melodic
    intervals of :func:`rltuner.naturalness.interval_histogram`, whatever holds or rests lie
    between."""
    comps = np.asarray(compositions, dtype=np.int64)
    m, n = comps.shape
    onset = comps >= FIRST_NOTE_CLASS
    last = np.where(onset, np.arange(n)[None, :], -1)
    last = np.maximum.accumulate(last, axis=1)
    prev = np.concatenate([np.full((m, 1), -1), last[:, :-1]], axis=1)  # last onset before t
    interval = onset & (prev >= 0)
    prev_pitch = np.take_along_axis(comps, np.maximum(prev, 0), axis=1)
    return interval & (prev_pitch == comps), interval


def autocorrelation_steps(compositions: np.ndarray, lag: int) -> np.ndarray:
    """The lag-``lag`` autocorrelation coefficient of each composition (M, N), the rule's
    formula ``Σ_t x_t·x_{t−lag} / (N·var)`` with ``x`` the classes minus their mean, as its
    (M, N) terms: the product of step ``t`` with step ``t − lag`` placed at step ``t`` (where
    the second note is chosen). Rows sum to the coefficient; a constant composition gives 0."""
    comps = np.asarray(compositions, dtype=np.float64)
    m, n = comps.shape
    out = np.zeros((m, n))
    if n == 0 or lag >= n:
        return out
    x = comps - comps.mean(axis=1, keepdims=True)
    var = (x * x).mean(axis=1)
    ok = var > 0
    out[:, lag:] = x[:, lag:] * x[:, :-lag]
    out[ok] /= n * var[ok, None]
    out[~ok] = 0.0
    return out


def constraint_terms(
    steps: np.ndarray,
    values: np.ndarray,
    constraints: list[Constraint],
    compositions: np.ndarray | None = None,
) -> np.ndarray:
    """Per-step pieces ``h_k`` (K, M, N) of each constraint's per-composition value
    ``G_k = Σ_t h_k[:, t]``, from :func:`~rltuner.rewards.composition_features`' ``steps``
    (M, N, 6) and ``values`` (M, 6). ``E[G_k] ≥ 0`` exactly when the bound holds for the
    pooled statistic:

    * note counts (excessively repeated, out of key, in motif, in repeated motif), each note
      at its step: ``±(flag_t − b)``, so ``G = ±(count − b·N)``;
    * leaps resolved: ``resolved_t − b·(resolved_t + doubled_t)`` at the step of the outcome;
    * first note is the tonic: ``tonic − b`` at step 0; unique max / min: ``u − b`` at the
      last step; autocorrelation: ``±(ac − bound)``, ``ac`` paid at the last step (0 where
      undefined, a constant composition, which the statistic skips) or, given
      ``compositions``, spread over the steps as its products (:func:`autocorrelation_steps`);
    * repeated pitch (needs ``compositions``): ``repeat_t − b·interval_t`` at each onset
      (:func:`repeated_pitch_steps`); hold share (needs ``compositions``): ``hold_t − b``.
    """
    m, n = steps.shape[:2]
    out = np.zeros((len(constraints), m, n), dtype=np.float64)
    if n == 0:
        return out
    products: dict[int, np.ndarray] = {}  # a lag's two bounds (≥ −b, ≤ b) share its products
    for k, c in enumerate(constraints):
        h = out[k]
        if c.name in STEP_FEATURES and c.name != "leaps_resolved":
            h[:] = steps[:, :, STEP_FEATURES.index(c.name)] - c.bound
        elif c.name == "leaps_resolved":
            res = steps[:, :, STEP_FEATURES.index("leaps_resolved")].astype(np.float64)
            dbl = steps[:, :, STEP_FEATURES.index("leaps_doubled")]
            h[:] = res - c.bound * (res + dbl)
        elif c.name == "repeated_pitch":
            if compositions is None:
                raise ValueError("the repeated-pitch constraint needs the compositions")
            rep, interval = repeated_pitch_steps(compositions)
            h[:] = rep - c.bound * interval
        elif c.name == "hold":
            if compositions is None:
                raise ValueError("the hold constraint needs the compositions")
            h[:] = (np.asarray(compositions) == NO_EVENT) - c.bound
        elif c.name == "starting_with_tonic":
            h[:, 0] = values[:, 0] - c.bound
        elif c.name.startswith("autocorrelation") and compositions is not None:
            lag = int(c.name[-1])
            if lag not in products:
                products[lag] = autocorrelation_steps(compositions, lag)
            h[:] = products[lag]
            h[:, -1] -= c.bound
        else:
            v = values[:, COMPOSITION_FEATURES.index(c.name)]
            h[:, -1] = np.nan_to_num(v, nan=0.0) - c.bound
        if c.sense < 0:
            h *= -1.0
    return out


def constraint_values(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch mean of each ``G_k`` and its standard error, both (K,), from
    :func:`constraint_terms`' (K, M, N)."""
    g = terms.sum(axis=2)
    m = g.shape[1]
    mean = g.mean(axis=1) if m else np.zeros(g.shape[0])
    se = g.std(axis=1, ddof=1) / np.sqrt(m) if m > 1 else np.full(g.shape[0], np.inf)
    return mean, se


def dual_step(
    multipliers: np.ndarray,
    mean: np.ndarray,
    se: np.ndarray,
    rate: float,
    cap: float,
    release: float = 1.0,
) -> np.ndarray:
    """Projected dual ascent: ``λ ← clip(λ − rate·clip(z/3, −1, 1), 0, cap)`` with ``z =
    mean/se`` (a violated bound, mean < 0, raises its multiplier); a met bound's multiplier
    falls ``release`` times as fast as a violated one's rises. A zero standard error counts
    as certain (``z = ±∞``, or 0 when the mean is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, mean / se, np.sign(mean) * np.inf)
    z = np.nan_to_num(z, nan=0.0)
    step = rate * np.clip(z / 3.0, -1.0, 1.0)
    step = np.where(step > 0, release * step, step)
    return np.clip(multipliers - step, 0.0, cap)
