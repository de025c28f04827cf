"""Music-theory reward rules and reward modes, batched and compiled.

The rules and modes in words: ``docs/rules.md`` (sections "Music-theory rules", "Reward modes").

Every rule scores one *action* (the next class, 0..37) given the *composition* so far (the
classes already played; ``beat`` = its length) and, for the leap rule, an explicit leap state.
All rules of one step are computed in one compiled pass over a batch of ``B`` compositions by
:func:`evaluate_step`; :func:`reference_step` is a plain-Python transcription of those rules for
one composition, kept as the oracle for the tests and as readable documentation.

Rules (column order of :data:`RULE_NAMES`; values are the reward of that rule alone):

============================ ===============================================================
``key``                      −1 if the action is not in the key set (0 and 1 are in key)
``tonic``                    +3 for the tonic on beat 0 or ``N−4``, a hold on ``N−3``, a
                             rest or hold after that
``repetition``               −100 when the action repeats excessively (see below)
``autocorrelation``          −Σ 3·|c_lag| over lags 1, 2, 3 with |c_lag| > 0.15
``motif``                    3 + 0.3·(u−3) when the last 8 entries hold u ≥ 3 distinct notes
``repeated_motif``           4 + (u−3) when that motif already occurred earlier
``preferred_intervals``      5 × a table over the interval code (see ``interval code``)
``leap``                     +5 leap resolved, −5 leap doubled
``unique_extremes``          on the final note: +3 unique maximum, +3 unique lowest real note
``scale``                    the original's scale-teaching reward (needs ``obs``)
``key_distribute_prob``      ``1/len(key set)`` for an in-key action
``non_repeating``            0.1, or −100 when the repetition rule fires (quirk fixed)
============================ ===============================================================

The first nine are r_MT (:data:`MUSIC_THEORY_RULES`). Conventions shared by all functions:

* Excessive repetition: walk the composition backwards from its last entry; an entry equal to
  the action counts as a repeat, a note-off (0) sets ``has_rest``, a no-event (1) sets
  ``has_hold``, anything else stops the walk. Fires if the action is a note-off and
  ``repeats > 1``; else if no flag is set and ``repeats > 4``; else if a flag is set and
  ``repeats > 6``.
* Autocorrelation of ``seq = composition + [action]`` (``n = len(seq)``) at lag ``k``:
  ``c_k = sum(x[k:] * x[:n-k]) / n / var(seq)`` with ``x = seq − mean(seq)`` and the
  population variance, in float64 and in numpy's exact summation order (pairwise sums), so
  ties ``|c| = 3/20`` are decided bit-for-bit as the original decided them. ``k ≥ n`` gives 0,
  a constant ``seq`` gives NaN (skipped).
* Interval code: ``prev`` = last real note (≥ 2) of the composition; none → code 0. A hold
  gives −2.5 after a tonic/fifth note, else −1.5; a note-off −2 after a tonic/fifth note, else
  −1; a note ``d = |action − prev|`` semitones away gives −5 if ``d == 7`` from a tonic/fifth
  note ("in-key fifth"), −3 if ``d == 4`` from a tonic/third note ("in-key third"), else ``d``.
* Leap state per composition: ``direction`` (0 none, +1 up, −1 down), ``leapt_from`` (class,
  −1 none) and ``steps_since_leap``; a leap is code ≥ 7 or code −5. See :func:`reference_step`.

Difference from the original (``docs/rules.md#differences-from-the-original``): ``non_repeating``
returns −100 when the repetition rule fires (the original returned ``None``); tonic/third/fifth
notes come from the :class:`~rltuner.encoding.Key`, so every key works (minor keys use the minor
third).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numba import njit

from rltuner.encoding import C_MAJOR, NUM_CLASSES, Key

__all__ = [
    "RULE_NAMES",
    "MUSIC_THEORY_RULES",
    "REWARD_MODES",
    "DEFAULT_WEIGHTS",
    "MOTIF_LENGTH",
    "AUTOCORRELATION_LAGS",
    "LEAP_NONE",
    "LEAP_RESOLVED",
    "LEAP_DOUBLED",
    "KEY_PENALTY",
    "TONIC_REWARD",
    "REPETITION_PENALTY",
    "LEAP_REWARD",
    "UNIQUE_EXTREME_REWARD",
    "LeapState",
    "RuleTables",
    "StepEvaluation",
    "evaluate_step",
    "evaluate_step_into",
    "weights_vector",
    "music_theory_reward",
    "combine_reward",
    "autocorrelation",
    "interval_reward",
    "reference_step",
    "COUNT_NAMES",
    "composition_counts",
    "composition_features",
    "STEP_FEATURES",
    "COMPOSITION_FEATURES",
]

RULE_NAMES: tuple[str, ...] = (
    "key",
    "tonic",
    "repetition",
    "autocorrelation",
    "motif",
    "repeated_motif",
    "preferred_intervals",
    "leap",
    "unique_extremes",
    "scale",
    "key_distribute_prob",
    "non_repeating",
)
MUSIC_THEORY_RULES: tuple[str, ...] = RULE_NAMES[:9]
REWARD_MODES: tuple[str, ...] = (
    "music_theory_all",
    "music_theory_only",
    "music_theory_basic",
    "music_theory_basic_plus_variety",
    "music_theory_random",
    "key_and_tonic",
    "key",
    "scale",
    "non_repeating",
    "preferred_intervals",
)
DEFAULT_WEIGHTS: dict[str, float] = {
    name: (1.0 if name in MUSIC_THEORY_RULES else 0.0) for name in RULE_NAMES
}

# column indices into StepEvaluation.values
(
    _KEY,
    _TONIC,
    _REPETITION,
    _AUTOCORRELATION,
    _MOTIF,
    _REPEATED_MOTIF,
    _PREFERRED_INTERVALS,
    _LEAP,
    _UNIQUE_EXTREMES,
    _SCALE,
    _KEY_DISTRIBUTE_PROB,
    _NON_REPEATING,
) = range(len(RULE_NAMES))

# The rules' constants. The compiled kernel reads these names (numba freezes module constants
# at compile time), and so does the plain-Python reference: one value, one place.
KEY_PENALTY = -1.0  # an action outside the key set
TONIC_REWARD = 3.0  # tonic on beat 0 / N-4, hold on N-3, rest or hold after
_TONIC_FROM_END = 4  # the closing tonic falls on beat N - 4
REPETITION_PENALTY = -100.0
_MAX_REPEATS_REST = 1  # a note-off repeated more often than this is excessive
_MAX_REPEATS = 4  # ... a note, with no rest or hold in the walk back
_MAX_REPEATS_FLAGGED = 6  # ... a note, with a rest or hold in the walk back
AUTOCORRELATION_LAGS = (1, 2, 3)
AUTOCORRELATION_THRESHOLD = 0.15
AUTOCORRELATION_WEIGHT = 3.0
MOTIF_LENGTH = 8  # "one bar" for motifs (sic: half a 4/4 bar of sixteenths)
_MOTIF_MIN_NOTES = 3  # distinct notes that make a motif
_MOTIF_REWARD = 3.0
_MOTIF_BONUS_PER_NOTE = 0.3  # per distinct note above the minimum
_REPEATED_MOTIF_REWARD = 4.0  # plus 1 per distinct note above the minimum
LEAP_NONE, LEAP_RESOLVED, LEAP_DOUBLED = 0, 1, 2
LEAP_REWARD = 5.0  # +5 a resolved leap, -5 a doubled leap
_STEPS_BETWEEN_LEAPS = 6  # a leap back counts as a resolution only after more steps than this
UNIQUE_EXTREME_REWARD = 3.0  # each of: unique maximum, unique lowest real note
NON_REPEATING_REWARD = 0.1
# the scale-teaching extra rule
_SCALE_HOLD_REWARD = 0.1
_SCALE_STEP_UP_REWARD = 0.05  # 1 or 2 classes above the observation
_SCALE_IN_SCALE_REWARD = 0.01
_SCALE_NEXT_DEGREE_REWARD = 0.8

# Interval codes (docs/rules.md#preferred-intervals; a plain interval is its size in semitones)
_CODE_NONE = 0.0  # no earlier real note
_CODE_REST = -1.0
_CODE_HOLD = -1.5
_CODE_REST_AFTER_TONIC_OR_FIFTH = -2.0
_CODE_HOLD_AFTER_TONIC_OR_FIFTH = -2.5
_CODE_IN_KEY_THIRD = -3.0  # a major third (4) up or down from a tonic or third note
_CODE_IN_KEY_FIFTH = -5.0  # a fifth (7) up or down from a tonic or fifth note
_THIRD, _FIFTH, _SEVENTH, _OCTAVE = 4, 7, 11, 12
_INTERVAL_SCALER = 5.0
_OCTAVE_JUMP_REWARD = -1.0  # any code above an octave
# the one interval table: (code, reward before the scaler); codes not listed give 0
_INTERVAL_TABLE = (
    (_CODE_NONE, 0.0),
    (_CODE_REST, 0.05),
    (_CODE_HOLD, 0.075),
    (_CODE_REST_AFTER_TONIC_OR_FIFTH, 0.15),
    (_CODE_HOLD_AFTER_TONIC_OR_FIFTH, 0.3),
    (float(_SEVENTH), -0.3),
    (_CODE_IN_KEY_FIFTH, 0.1),
    (_CODE_IN_KEY_THIRD, 0.15),
    (4.0, 0.09),
    (2.0, 0.08),
    (5.0, 0.07),
    (9.0, 0.05),
    (7.0, 0.02),
)

# composition-level counters written by the stats kernel (metrics.composition_stats)
COUNT_NAMES: tuple[str, ...] = (
    "repeated",
    "not_in_key",
    "in_motif",
    "in_repeated_motif",
    "leaps_resolved",
    "leaps_doubled",
    "starting_with_tonic",
    "unique_max",
    "unique_min",
    "octave_jumps",
    "sevenths",
    "fifths",
    "sixths",
    "fourths",
    "thirds",
    "seconds",
    "rests",
    "rests_after_tonic_or_fifth",
    "in_key_preferred",
)
# per-composition features (:func:`composition_features`): flags per step, values per composition
STEP_FEATURES: tuple[str, ...] = COUNT_NAMES[:6]
COMPOSITION_FEATURES: tuple[str, ...] = (
    "starting_with_tonic",
    "unique_max",
    "unique_min",
    "autocorrelation_1",
    "autocorrelation_2",
    "autocorrelation_3",
)


# --------------------------------------------------------------------------- containers
class LeapState(NamedTuple):
    """Leap-rule state of ``B`` compositions (``docs/rules.md#leaps``).

    ``direction`` (B,) int8: 0 none, +1 after an upward leap, −1 after a downward leap.
    ``leapt_from`` (B,) int16: class the unresolved leap started from, −1 for none.
    ``steps_since_leap`` (B,) int32: steps since the last leap.
    """

    direction: np.ndarray
    leapt_from: np.ndarray
    steps_since_leap: np.ndarray

    @classmethod
    def initial(cls, batch_size: int) -> LeapState:
        """The state at the start of a composition: no leap, counter 0."""
        return cls(
            np.zeros(batch_size, dtype=np.int8),
            np.full(batch_size, -1, dtype=np.int16),
            np.zeros(batch_size, dtype=np.int32),
        )


class RuleTables(NamedTuple):
    """Everything key-dependent, precomputed as small arrays (build with :meth:`from_key`).

    Masks have shape (38,) and are indexed by class. ``scale_pos[c]`` is the position of class
    ``c`` in ``scale`` or −1. ``num_notes`` is N, the composition length of an episode.
    """

    key: Key
    num_notes: int
    in_key: np.ndarray  # (38,) bool, key set incl. 0 and 1
    tonic_class: int  # the tonic in MIDI 60..71 (C major: 14)
    tonic_mask: np.ndarray  # (38,) bool
    third_mask: np.ndarray  # (38,) bool
    fifth_mask: np.ndarray  # (38,) bool
    scale: np.ndarray  # (15,) int64, the scale reward's list
    scale_pos: np.ndarray  # (38,) int64
    key_size: int  # len(key set), 23 for every key
    packed: np.ndarray  # (4, 38) int64: in_key, tonic|fifth, tonic|third, scale_pos (kernel)
    kernel_params: np.ndarray  # (3,) int64: tonic_class, len(scale), num_notes (kernel)

    @classmethod
    def from_key(cls, key: Key = C_MAJOR, num_notes: int = 32) -> RuleTables:
        if int(num_notes) < 1:
            raise ValueError(f"num_notes must be >= 1, got {num_notes}")

        def mask(classes: np.ndarray) -> np.ndarray:
            m = np.zeros(NUM_CLASSES, dtype=bool)
            m[np.asarray(classes, dtype=np.int64)] = True
            return m

        in_key = key.in_key_mask.copy()
        tonic, third, fifth = mask(key.tonic_notes), mask(key.third_notes), mask(key.fifth_notes)
        scale = np.asarray(key.scale_classes, dtype=np.int64).copy()
        scale_pos = np.full(NUM_CLASSES, -1, dtype=np.int64)
        scale_pos[scale] = np.arange(scale.size)
        packed = np.stack([in_key, tonic | fifth, tonic | third, np.zeros(NUM_CLASSES)])
        packed = packed.astype(np.int64)
        packed[3] = scale_pos
        params = np.array([key.tonic_class, scale.size, num_notes], dtype=np.int64)
        for a in (in_key, tonic, third, fifth, scale, scale_pos, packed, params):
            a.flags.writeable = False
        return cls(key, int(num_notes), in_key, int(key.tonic_class), tonic, third, fifth,
                   scale, scale_pos, int(key.key_classes.size), packed, params)  # fmt: skip


class StepEvaluation(NamedTuple):
    """All rules of one step for ``B`` compositions.

    ``values`` (B, 12) float64: each rule's reward, columns in :data:`RULE_NAMES` order.
    ``repeated`` (B,) bool: the repetition rule fired. ``motif`` / ``repeated_motif`` (B,)
    bool: rules 5 / 6 found a (repeated) motif ending at the action. ``leap_outcome`` (B,)
    int8: 0 none, 1 resolved, 2 doubled. ``interval_code`` (B,) float64: the interval code
    (0 when there is no previous real note). ``in_key`` (B,) bool.
    """

    values: np.ndarray
    repeated: np.ndarray
    motif: np.ndarray
    repeated_motif: np.ndarray
    leap_outcome: np.ndarray
    interval_code: np.ndarray
    in_key: np.ndarray

    @classmethod
    def empty(cls, batch_size: int) -> StepEvaluation:
        """Preallocated outputs for :func:`evaluate_step_into`."""
        b = batch_size
        return cls(
            np.zeros((b, len(RULE_NAMES)), dtype=np.float64),
            np.zeros(b, dtype=np.bool_),
            np.zeros(b, dtype=np.bool_),
            np.zeros(b, dtype=np.bool_),
            np.zeros(b, dtype=np.int8),
            np.zeros(b, dtype=np.float64),
            np.zeros(b, dtype=np.bool_),
        )


# --------------------------------------------------------------------------- compiled core
@njit(cache=True)
def _block_sum(a, lo, n):
    """numpy's pairwise-sum leaf for ``n <= 128`` items of ``a[lo:]``: a plain loop below 8
    items, else eight strided accumulators combined as a tree plus a plain tail."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo+n]`` (float64) in exactly numpy's pairwise order (``pairwise_sum`` in
    numpy's loops): leaves of at most 128 items (:func:`_block_sum`); a longer range splits at
    ``n//2`` rounded down to a multiple of 8 and adds the two halves' sums. The recursion is
    unrolled into an explicit stack (numba's cache cannot store recursive functions)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    s_lo = np.empty(64, dtype=np.int64)
    s_n = np.empty(64, dtype=np.int64)
    s_stage = np.empty(64, dtype=np.int64)  # 0 new, 1 left pending, 2 right pending
    s_left = np.empty(64, dtype=np.float64)
    s_lo[0], s_n[0], s_stage[0] = lo, n, 0
    sp = 1
    value = 0.0
    while True:
        top = sp - 1
        cur_n = s_n[top]
        stage = s_stage[top]
        if cur_n <= 128 or stage == 3:
            if cur_n <= 128:
                value = _block_sum(a, s_lo[top], cur_n)
            else:
                value = s_left[top] + value
            sp -= 1
            if sp == 0:
                return value
            parent = sp - 1
            if s_stage[parent] == 1:
                s_left[parent] = value
                s_stage[parent] = 2
            else:
                s_stage[parent] = 3
            continue
        half = cur_n // 2
        half -= half % 8
        if stage == 0:
            s_stage[top] = 1
            s_lo[sp], s_n[sp], s_stage[sp] = s_lo[top], half, 0
            sp += 1
        elif stage == 2:
            s_lo[sp], s_n[sp], s_stage[sp] = s_lo[top] + half, cur_n - half, 0
            sp += 1


@njit(cache=True)
def _centre(seq, n, x, p):
    """``x[:n] = seq[:n] − mean``; returns the population variance (as ``np.var``)."""
    s = 0.0
    for i in range(n):
        s += seq[i]  # integers: exact in any order
    mean = s / n
    for i in range(n):
        d = seq[i] - mean
        x[i] = d
        p[i] = d * d
    return (0.0 + _pairwise_sum(p, 0, n)) / n  # a reduction starts from the identity 0.0


@njit(cache=True)
def _lag_coefficient(x, n, lag, var, p):
    """``sum(x[lag:] * x[:n-lag]) / n / var``; NaN if ``var == 0``; 0 if ``lag >= n``."""
    if var == 0.0:
        return np.nan
    m = n - lag
    if m <= 0:
        return 0.0 / n / var
    for i in range(m):
        p[i] = x[lag + i] * x[i]
    return (0.0 + _pairwise_sum(p, 0, m)) / n / var


@njit(cache=True)
def _interval_reward(code):
    """The preferred-intervals reward of ``code`` from :data:`_INTERVAL_TABLE`, scaled."""
    r = 0.0
    if code > _OCTAVE:
        r = _OCTAVE_JUMP_REWARD
    else:
        for i in range(len(_INTERVAL_TABLE)):
            if code == _INTERVAL_TABLE[i][0]:
                r = _INTERVAL_TABLE[i][1]
                break
    return r * _INTERVAL_SCALER


@njit(cache=True)
def _unique_extremes(seq, n):
    """(max of ``seq[:n]`` occurs once, lowest real note exists and occurs once)."""
    mx = -1
    mx_count = 0
    mn = NUM_CLASSES
    mn_count = 0
    for i in range(n):
        e = seq[i]
        if e > mx:
            mx = e
            mx_count = 1
        elif e == mx:
            mx_count += 1
        if e >= 2:
            if e < mn:
                mn = e
                mn_count = 1
            elif e == mn:
                mn_count += 1
    return mx_count == 1, mn_count == 1


@njit(cache=True)
def _eval_one(seq, beat, obs, direction, leapt_from, steps, packed, params, key_prob,
              with_autocorrelation, vals, x, p):  # fmt: skip
    """All rules for one composition. ``seq[:beat]`` is the composition and ``seq[beat]`` the
    action; writes the 12 rule values into ``vals`` (the autocorrelation only when asked) and
    returns (repeated, motif, repeated_motif, leap_outcome, code, in_key, direction,
    leapt_from, steps_since_leap) -- the last three being the new leap state."""
    action = seq[beat]
    n = beat + 1
    tonic_class = params[0]
    scale_len = params[1]
    num_notes = params[2]

    # 1. key
    in_key = packed[0, action] != 0
    vals[0] = 0.0 if in_key else KEY_PENALTY

    # 2. tonic
    f = num_notes - _TONIC_FROM_END
    t = 0.0
    if beat == 0 or beat == f:
        if action == tonic_class:
            t = TONIC_REWARD
    elif beat == f + 1:
        if action == 1:
            t = TONIC_REWARD
    elif beat > f + 1:
        if action == 0 or action == 1:
            t = TONIC_REWARD
    vals[1] = t

    # 3. excessive repetition
    repeats = 0
    flagged = False
    i = beat - 1
    while i >= 0:
        e = seq[i]
        if e == action:
            repeats += 1
        elif e == 0 or e == 1:
            flagged = True
        else:
            break
        i -= 1
    if action == 0 and repeats > _MAX_REPEATS_REST:
        repeated = True
    elif not flagged:
        repeated = repeats > _MAX_REPEATS
    else:
        repeated = repeats > _MAX_REPEATS_FLAGGED
    vals[2] = REPETITION_PENALTY if repeated else 0.0

    # 4. autocorrelation
    if with_autocorrelation:
        var = _centre(seq, n, x, p)
        penalty = 0.0
        if var != 0.0:
            for lag in AUTOCORRELATION_LAGS:
                c = _lag_coefficient(x, n, lag, var, p)
                if abs(c) > AUTOCORRELATION_THRESHOLD:
                    penalty += abs(c) * AUTOCORRELATION_WEIGHT
        vals[3] = 0.0 - penalty
    else:
        vals[3] = 0.0

    # 5. motif, 6. repeated motif
    motif = False
    repeated_motif = False
    vals[4] = 0.0
    vals[5] = 0.0
    if n >= MOTIF_LENGTH:
        bits = np.int64(0)
        for j in range(n - MOTIF_LENGTH, n):
            if seq[j] >= 2:
                bits |= np.int64(1) << seq[j]
        u = 0
        while bits != 0:
            bits &= bits - 1
            u += 1
        if u >= _MOTIF_MIN_NOTES:
            motif = True
            vals[4] = _MOTIF_REWARD + max((u - _MOTIF_MIN_NOTES) * _MOTIF_BONUS_PER_NOTE, 0.0)
            # the motif is seq[start:n]; search composition[:-(L-1)] = seq[:start]
            start = n - MOTIF_LENGTH
            for s in range(0, start - MOTIF_LENGTH + 1):
                same = True
                for j in range(MOTIF_LENGTH):
                    if seq[s + j] != seq[start + j]:
                        same = False
                        break
                if same:
                    repeated_motif = True
                    break
            if repeated_motif:
                vals[5] = _REPEATED_MOTIF_REWARD + max(u - _MOTIF_MIN_NOTES, 0)

    # 7. preferred intervals
    prev = -1
    i = beat - 1
    while i >= 0:
        if seq[i] >= 2:
            prev = seq[i]
            break
        i -= 1
    code = _CODE_NONE
    if prev >= 0:
        if action == 1:
            code = _CODE_HOLD_AFTER_TONIC_OR_FIFTH if packed[1, prev] != 0 else _CODE_HOLD
        elif action == 0:
            code = _CODE_REST_AFTER_TONIC_OR_FIFTH if packed[1, prev] != 0 else _CODE_REST
        else:
            d = abs(action - prev)
            if d == _FIFTH and packed[1, prev] != 0:
                code = _CODE_IN_KEY_FIFTH
            elif d == _THIRD and packed[2, prev] != 0:
                code = _CODE_IN_KEY_THIRD
            else:
                code = float(d)
    vals[6] = _interval_reward(code)

    # 8. leap up, leap back
    new_dir = direction
    new_from = leapt_from
    new_steps = steps
    outcome = 0
    if beat > 0:
        if action == 0 or action == 1:
            new_steps = steps + 1
        elif code >= _FIFTH or code == _CODE_IN_KEY_FIFTH:
            leap_dir = 1 if action > prev else -1
            if direction != 0:
                if direction != leap_dir:
                    if steps > _STEPS_BETWEEN_LEAPS:
                        outcome = LEAP_RESOLVED
                    new_dir = 0
                    new_from = -1
                else:
                    outcome = LEAP_DOUBLED
            else:
                new_dir = leap_dir
                new_from = prev
            new_steps = 0
        else:
            new_steps = steps + 1
            if (direction == 1 and action <= leapt_from) or (
                direction == -1 and action >= leapt_from
            ):
                outcome = LEAP_RESOLVED
                new_dir = 0
                new_from = -1
    if outcome == LEAP_RESOLVED:
        vals[7] = LEAP_REWARD
    elif outcome == LEAP_DOUBLED:
        vals[7] = -LEAP_REWARD
    else:
        vals[7] = 0.0

    # 9. unique extremes (final note only)
    ue = 0.0
    if n == num_notes:
        hi, lo = _unique_extremes(seq, n)
        if hi:
            ue += UNIQUE_EXTREME_REWARD
        if lo:
            ue += UNIQUE_EXTREME_REWARD
    vals[8] = ue

    # extras: scale, key_distribute_prob, non_repeating
    sc = 0.0
    if obs >= 0:
        if action == 1:
            sc += _SCALE_HOLD_REWARD
        if obs < action and action < obs + 3:
            sc += _SCALE_STEP_UP_REWARD
        a_pos = packed[3, action]
        if a_pos >= 0:
            sc += _SCALE_IN_SCALE_REWARD
            o_pos = packed[3, obs]
            if o_pos >= 0:
                if o_pos == scale_len - 1 and a_pos == 0:
                    sc += _SCALE_NEXT_DEGREE_REWARD
                elif a_pos == o_pos + 1:
                    sc += _SCALE_NEXT_DEGREE_REWARD
    vals[9] = sc
    vals[10] = key_prob if in_key else 0.0
    vals[11] = REPETITION_PENALTY if repeated else NON_REPEATING_REWARD

    return (repeated, motif, repeated_motif, outcome, code, in_key, new_dir, new_from,
            new_steps)  # fmt: skip


@njit(cache=True)
def _step_kernel(comps, beat, action, obs, l_dir, l_from, l_steps, packed, params, key_prob,
                 values, repeated, motif, repeated_motif, outcome, code, in_key,
                 o_dir, o_from, o_steps):  # fmt: skip
    """Batched step; returns the first invalid row or −1. Output leap arrays may alias the
    input ones (each row is read before it is written)."""
    n_rows, width = comps.shape
    seq = np.empty(width + 1, dtype=np.int64)
    x = np.empty(width + 1, dtype=np.float64)
    p = np.empty(width + 1, dtype=np.float64)
    want_values = True
    for b in range(n_rows):
        bt = beat[b]
        a = action[b]
        ob = obs[b]
        if bt < 0 or bt > width or a < 0 or a >= NUM_CLASSES or ob < -1 or ob >= NUM_CLASSES:
            return b
        for j in range(bt):
            e = comps[b, j]
            if e < 0 or e >= NUM_CLASSES:
                return b
            seq[j] = e
        seq[bt] = a
        lf = l_from[b]
        if l_dir[b] != 0 and (lf < 0 or lf >= NUM_CLASSES):
            return b
        # every argument as int64 / bool_: one compiled specialisation of _eval_one, not one
        # per caller's dtypes and literal constants (each costs ~1 s of compilation)
        r = _eval_one(seq, np.int64(bt), np.int64(ob), np.int64(l_dir[b]), np.int64(lf),
                      np.int64(l_steps[b]), packed, params, key_prob, np.bool_(want_values),
                      values[b], x, p)  # fmt: skip
        repeated[b] = r[0]
        motif[b] = r[1]
        repeated_motif[b] = r[2]
        outcome[b] = r[3]
        code[b] = r[4]
        in_key[b] = r[5]
        o_dir[b] = r[6]
        o_from[b] = r[7]
        o_steps[b] = r[8]
    return -1


@njit(cache=True)
def _score_composition(seq, width, packed, params, key_prob, vals, x, p, steps_out, codes,
                       comp_out):  # fmt: skip
    """One composition ``seq[:width]`` scored step by step from an empty composition with a
    fresh leap state (the same :func:`_eval_one` as the reward). Writes per step into
    ``steps_out`` (width, 6) the flags of :data:`STEP_FEATURES` and into ``codes`` (width,)
    the interval code; into ``comp_out`` (6,) the values of :data:`COMPOSITION_FEATURES`
    (autocorrelations NaN when undefined)."""
    no_obs = -1
    d = 0
    f = -1
    s = 0
    for i in range(width):
        r = _eval_one(seq, np.int64(i), np.int64(no_obs), np.int64(d), np.int64(f),
                      np.int64(s), packed, params, key_prob, np.bool_(False), vals, x,
                      p)  # fmt: skip
        d = r[6]
        f = r[7]
        s = r[8]
        steps_out[i, 0] = 1 if r[0] else 0
        steps_out[i, 1] = 0 if r[5] else 1
        steps_out[i, 2] = 1 if r[1] else 0
        steps_out[i, 3] = 1 if r[2] else 0
        steps_out[i, 4] = 1 if r[3] == LEAP_RESOLVED else 0
        steps_out[i, 5] = 1 if r[3] == LEAP_DOUBLED else 0
        codes[i] = r[4]
    for k in range(3):
        comp_out[k] = 0.0
    for k in range(len(AUTOCORRELATION_LAGS)):
        comp_out[3 + k] = np.nan
    if width > 0:
        if seq[0] == params[0]:
            comp_out[0] = 1.0
        hi, lo = _unique_extremes(seq, width)
        if hi:
            comp_out[1] = 1.0
        if lo:
            comp_out[2] = 1.0
        var = _centre(seq, width, x, p)
        if var != 0.0:
            for k in range(len(AUTOCORRELATION_LAGS)):
                comp_out[3 + k] = _lag_coefficient(x, width, AUTOCORRELATION_LAGS[k], var, p)


@njit(cache=True)
def _read_row(comps, m, seq):
    """Copies row ``m`` of ``comps`` into ``seq``; False if an entry lies outside 0..37."""
    for j in range(comps.shape[1]):
        e = comps[m, j]
        if e < 0 or e >= NUM_CLASSES:
            return False
        seq[j] = e
    return True


@njit(cache=True)
def _composition_counts_kernel(comps, packed, params, key_prob, counts, ac_sum, ac_count):
    """Table-1 counters over whole compositions ``comps`` (M, N), each scored by
    :func:`_score_composition`. Adds into ``counts`` (len(COUNT_NAMES),) int64, ``ac_sum`` /
    ``ac_count`` (3,) for lags 1..3. Returns the first invalid row or −1."""
    n_rows, width = comps.shape
    seq = np.empty(width + 1, dtype=np.int64)
    x = np.empty(width + 1, dtype=np.float64)
    p = np.empty(width + 1, dtype=np.float64)
    vals = np.empty(12, dtype=np.float64)
    steps_out = np.empty((width, 6), dtype=np.int8)
    codes = np.empty(width, dtype=np.float64)
    comp_out = np.empty(6, dtype=np.float64)
    for m in range(n_rows):
        if not _read_row(comps, m, seq):
            return m
        _score_composition(seq, width, packed, params, key_prob, vals, x, p, steps_out, codes,
                           comp_out)  # fmt: skip
        for i in range(width):
            for k in range(6):
                counts[k] += steps_out[i, k]  # COUNT_NAMES[:6] are STEP_FEATURES
            c = codes[i]
            if c == _CODE_REST:
                counts[16] += 1
            elif c == _CODE_REST_AFTER_TONIC_OR_FIFTH:
                counts[17] += 1
            elif c > _OCTAVE:
                counts[9] += 1
            elif c == _CODE_IN_KEY_FIFTH or c == _CODE_IN_KEY_THIRD:
                counts[18] += 1
            elif c == _FIFTH:
                counts[11] += 1
            elif c == _THIRD:
                counts[14] += 1
            elif c == 9.0:
                counts[12] += 1
            elif c == 2.0:
                counts[15] += 1
            elif c == 5.0:
                counts[13] += 1
            elif c == _SEVENTH:
                counts[10] += 1
        for k in range(3):  # COUNT_NAMES[6:9] are COMPOSITION_FEATURES[:3]
            if comp_out[k] != 0.0:
                counts[6 + k] += 1
        for k in range(len(AUTOCORRELATION_LAGS)):
            v = comp_out[3 + k]
            if not np.isnan(v):
                ac_sum[k] += v
                ac_count[k] += 1
    return -1


@njit(cache=True)
def _composition_features_kernel(comps, packed, params, key_prob, steps_out, comp_out):
    """Per-composition Table-1 features of ``comps`` (M, N): ``steps_out`` (M, N, 6) int8 and
    ``comp_out`` (M, 6) float64 as :func:`_score_composition` writes them. Returns the first
    invalid row or −1."""
    n_rows, width = comps.shape
    seq = np.empty(width + 1, dtype=np.int64)
    x = np.empty(width + 1, dtype=np.float64)
    p = np.empty(width + 1, dtype=np.float64)
    vals = np.empty(12, dtype=np.float64)
    codes = np.empty(width, dtype=np.float64)
    for m in range(n_rows):
        if not _read_row(comps, m, seq):
            return m
        _score_composition(seq, width, packed, params, key_prob, vals, x, p, steps_out[m],
                           codes, comp_out[m])  # fmt: skip
    return -1


@njit(cache=True)
def _autocorrelation_kernel(seq, lags, out):
    n = seq.shape[0]
    s = np.empty(max(n, 1), dtype=np.int64)
    for i in range(n):
        s[i] = seq[i]
    x = np.empty(max(n, 1), dtype=np.float64)
    p = np.empty(max(n, 1), dtype=np.float64)
    var = _centre(s, n, x, p) if n > 0 else 0.0
    for k in range(lags.shape[0]):
        out[k] = _lag_coefficient(x, n, lags[k], var, p)


@njit(cache=True)
def _weighted_sum(values, weights, out):
    """``out[b] = Σ_r values[b, r]·weights[r]``, accumulated left to right over ``r``."""
    n_rows, n_rules = values.shape
    for b in range(n_rows):
        acc = values[b, 0] * weights[0]
        for r in range(1, n_rules):
            acc += values[b, r] * weights[r]
        out[b] = acc


# --------------------------------------------------------------------------- public API
def _row_error(row: int, compositions, beat, action, obs, leap) -> ValueError:
    return ValueError(
        f"invalid input in row {row}: beat={int(beat[row])} (0..{compositions.shape[1]}), "
        f"action={int(action[row])} (0..37), obs={int(obs[row])} (-1 or 0..37), leap state "
        f"({int(leap.direction[row])}, {int(leap.leapt_from[row])}), or a composition entry "
        "outside 0..37"
    )


def _as_vector(a, dtype, n: int, name: str) -> np.ndarray:
    v = np.asarray(a, dtype=dtype)
    if v.shape != (n,):
        v = v.reshape(-1)
        if v.shape[0] != n:
            raise ValueError(f"{name} has {v.shape[0]} entries, expected {n}")
    return v


def evaluate_step_into(
    compositions: np.ndarray,
    beat: np.ndarray,
    action: np.ndarray,
    leap: LeapState,
    tables: RuleTables,
    obs: np.ndarray,
    out: StepEvaluation,
    out_leap: LeapState,
) -> None:
    """Allocation-free :func:`evaluate_step` for the hot loop.

    Arrays must already have the kernel's dtypes (compositions int8 or int64; ``beat``,
    ``action`` and ``obs`` int64 -- other dtypes trigger a new compilation); ``obs`` (B,) uses
    −1 for "no observation" (the scale rule gives 0); ``out``
    and ``out_leap`` are preallocated with the dtypes of :meth:`StepEvaluation.empty` and
    :meth:`LeapState.initial`; ``out_leap`` may be ``leap`` itself (in-place update).
    Raises ``ValueError`` on out-of-range input.
    """
    bad = _step_kernel(
        compositions, beat, action, obs, leap.direction, leap.leapt_from, leap.steps_since_leap,
        tables.packed, tables.kernel_params, 1.0 / tables.key_size, out.values, out.repeated,
        out.motif, out.repeated_motif, out.leap_outcome, out.interval_code, out.in_key,
        out_leap.direction, out_leap.leapt_from, out_leap.steps_since_leap,
    )  # fmt: skip
    if bad >= 0:
        raise _row_error(bad, compositions, beat, action, obs, leap)


def evaluate_step(
    compositions: np.ndarray,
    beat: np.ndarray,
    action: np.ndarray,
    leap: LeapState,
    tables: RuleTables,
    obs: np.ndarray | None = None,
) -> tuple[StepEvaluation, LeapState]:
    """Evaluate every rule for one step of ``B`` compositions.

    Args:
        compositions: (B, W) int, row ``i`` holds the composition in ``[:beat[i]]`` (the rest
            is ignored); ``W >= beat``.
        beat: (B,) int, notes already played (0..W).
        action: (B,) int, the next class (0..37).
        leap: the leap state before this step.
        tables: key-dependent tables (``tables.num_notes`` = episode length N).
        obs: (B,) previous observation for the ``scale`` rule; ``None`` → scale reward 0.

    Returns:
        (the :class:`StepEvaluation`, the new :class:`LeapState`). Inputs are not modified.
    """
    comps = np.asarray(compositions)
    if comps.ndim != 2 or comps.dtype.kind not in "iu":
        raise ValueError(f"compositions must be a 2-D int array, got {comps.dtype} {comps.shape}")
    if comps.dtype != np.int8 and comps.dtype != np.int64:
        comps = comps.astype(np.int64)
    n = comps.shape[0]
    beat_a = _as_vector(beat, np.int64, n, "beat")
    action_a = _as_vector(action, np.int64, n, "action")
    obs_a = np.full(n, -1, dtype=np.int64) if obs is None else _as_vector(obs, np.int64, n, "obs")
    leap_in = LeapState(
        _as_vector(leap.direction, np.int8, n, "leap.direction"),
        _as_vector(leap.leapt_from, np.int16, n, "leap.leapt_from"),
        _as_vector(leap.steps_since_leap, np.int32, n, "leap.steps_since_leap"),
    )
    # every output entry is written by the kernel: no need to zero
    out = StepEvaluation(
        np.empty((n, len(RULE_NAMES))), np.empty(n, np.bool_), np.empty(n, np.bool_),
        np.empty(n, np.bool_), np.empty(n, np.int8), np.empty(n), np.empty(n, np.bool_),
    )  # fmt: skip
    out_leap = LeapState(np.empty(n, np.int8), np.empty(n, np.int16), np.empty(n, np.int32))
    evaluate_step_into(comps, beat_a, action_a, leap_in, tables, obs_a, out, out_leap)
    return out, out_leap


def autocorrelation(seq: np.ndarray | Sequence[int], lags: Sequence[int] = (1, 2, 3)) -> np.ndarray:
    """Autocorrelation coefficients of a class sequence (``docs/rules.md#autocorrelation``),
    bit-identical to ``(x[k:] * x[:n-k]).sum() / n / np.var(seq)`` with ``x = seq − np.mean(seq)``.

    Returns float64 (len(lags),): NaN for a constant (or empty) sequence, 0 for ``k >= n``.
    """
    s = np.asarray(seq, dtype=np.int64).reshape(-1)
    lag_a = np.asarray(lags, dtype=np.int64).reshape(-1)
    if np.any(lag_a < 0):
        raise ValueError("lags must be >= 0")
    out = np.empty(lag_a.size, dtype=np.float64)
    if s.size == 0:
        out[:] = np.nan
        return out
    _autocorrelation_kernel(s, lag_a, out)
    return out


def interval_reward(code: float) -> float:
    """The preferred-intervals reward (already ×5) of an interval code
    (``docs/rules.md#preferred-intervals``)."""
    return float(_interval_reward(float(code)))


def weights_vector(weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Rule weights as a (len(RULE_NAMES),) float64 vector: :data:`DEFAULT_WEIGHTS` (the nine
    r_MT rules 1, the extras 0) overridden by ``weights``. Unknown names raise ``ValueError``."""
    w = dict(DEFAULT_WEIGHTS)
    if weights:
        unknown = sorted(set(weights) - set(RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown reward rule(s) {unknown}; valid: {', '.join(RULE_NAMES)}")
        w.update({k: float(v) for k, v in weights.items()})
    return np.array([w[name] for name in RULE_NAMES], dtype=np.float64)


_DEFAULT_WEIGHTS_VEC = weights_vector()
_DEFAULT_WEIGHTS_VEC.flags.writeable = False


def music_theory_reward(values: np.ndarray, weights_vec: np.ndarray | None = None) -> np.ndarray:
    """r_MT = Σ_r w_r·values[:, r] (B,), summed in rule order so that unit weights give
    exactly the original's sum key + tonic + … + unique extremes."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(RULE_NAMES):
        raise ValueError(f"values must have shape (B, {len(RULE_NAMES)}), got {v.shape}")
    w = _DEFAULT_WEIGHTS_VEC if weights_vec is None else np.asarray(weights_vec, np.float64)
    if w.shape != (len(RULE_NAMES),):
        raise ValueError(f"weights_vec must have shape ({len(RULE_NAMES)},), got {w.shape}")
    out = np.empty(v.shape[0], dtype=np.float64)
    _weighted_sum(v, w, out)
    return out


# modes whose music-theory part is a fixed subset of rules (unit weights), and whether L is added
_SUBSET_MODES: dict[str, tuple[tuple[int, ...], bool]] = {
    "music_theory_basic": ((_KEY, _TONIC, _REPETITION), True),
    "music_theory_basic_plus_variety": ((_KEY, _TONIC, _REPETITION, _AUTOCORRELATION), True),
    "music_theory_random": ((_KEY, _TONIC, _REPETITION), False),
    "key_and_tonic": ((_KEY, _TONIC), False),
    "key": ((_KEY_DISTRIBUTE_PROB,), False),
    "scale": ((_SCALE,), False),
    "non_repeating": ((_NON_REPEATING,), False),
    "preferred_intervals": ((_PREFERRED_INTERVALS,), False),
}


def combine_reward(
    mode: str,
    log_p: np.ndarray | None,
    values: np.ndarray,
    scaler: float,
    weights_vec: np.ndarray | None = None,
) -> np.ndarray:
    """The reward of a reward mode (``docs/rules.md#reward-modes``), (B,) float64, with ``c =
    scaler`` and ``L = log_p`` = log p(action | state) from the Reward RNN:

    * ``music_theory_all``: ``c·r_MT + L``; ``music_theory_only``: ``c·r_MT`` (r_MT weighted
      by ``weights_vec``, default :data:`DEFAULT_WEIGHTS`);
    * ``music_theory_basic``: ``c·(key + tonic + repetition) + L``;
      ``music_theory_basic_plus_variety``: adds ``autocorrelation`` inside the bracket;
    * ``music_theory_random``: ``c·(key + tonic + repetition)``; ``key_and_tonic``:
      ``c·(key + tonic)``; ``key``: ``c·key_distribute_prob``; ``scale``: ``c·scale``;
      ``non_repeating``: ``c·non_repeating``; ``preferred_intervals``:
      ``c·preferred_intervals``.

    Weights apply only to the r_MT modes; the other modes use their fixed rule sets. ``log_p``
    may be ``None`` for modes without ``L``.
    """
    v = np.asarray(values, dtype=np.float64)
    if mode in ("music_theory_all", "music_theory_only"):
        music, with_log_p = music_theory_reward(v, weights_vec), mode == "music_theory_all"
    elif mode in _SUBSET_MODES:
        cols, with_log_p = _SUBSET_MODES[mode]
        music = v[:, cols[0]].copy()
        for c in cols[1:]:
            music += v[:, c]
    else:
        raise ValueError(f"unknown reward mode {mode!r}; valid: {', '.join(REWARD_MODES)}")
    reward = music * float(scaler)
    if with_log_p:
        if log_p is None:
            raise ValueError(f"reward mode {mode!r} needs log_p (the Reward RNN's log p(a|s))")
        reward = reward + np.asarray(log_p, dtype=np.float64)
    return reward


def _checked_compositions(compositions: np.ndarray) -> np.ndarray:
    comps = np.asarray(compositions)
    if comps.ndim != 2 or comps.dtype.kind not in "iu":
        raise ValueError(f"compositions must be a 2-D int array, got {comps.dtype} {comps.shape}")
    comps = np.ascontiguousarray(comps, dtype=np.int8 if comps.size else np.int64)
    if comps.size and (comps.min() < 0 or comps.max() >= NUM_CLASSES):
        raise ValueError("composition entries must lie in 0..37")
    return comps


def composition_counts(
    compositions: np.ndarray, tables: RuleTables
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Table-1 counters of whole compositions (M, N), each scored step by step from an empty
    composition and a fresh leap state by the reward kernel (used by
    :func:`rltuner.metrics.composition_stats`).

    Returns (counts (len(COUNT_NAMES),) int64, autocorrelation sums (3,) float64 and counts
    (3,) int64 for lags 1..3 over compositions with a defined coefficient). ``tables.num_notes``
    is ignored: N is the width of ``compositions``.
    """
    comps = _checked_compositions(compositions)
    params = tables.kernel_params.copy()
    params[2] = comps.shape[1]
    counts = np.zeros(len(COUNT_NAMES), dtype=np.int64)
    ac_sum = np.zeros(3, dtype=np.float64)
    ac_count = np.zeros(3, dtype=np.int64)
    bad = _composition_counts_kernel(
        comps, tables.packed, params, 1.0 / tables.key_size, counts, ac_sum, ac_count
    )
    if bad >= 0:
        raise ValueError(f"composition {bad} has an entry outside 0..37")
    return counts, ac_sum, ac_count


def composition_features(
    compositions: np.ndarray, tables: RuleTables
) -> tuple[np.ndarray, np.ndarray]:
    """Table-1 features of each composition (M, N), scored as :func:`composition_counts`
    scores them (their sums over compositions are its first nine counters).

    Returns ``(steps, values)``: ``steps`` (M, N, 6) int8, per step the 0/1 flags of
    :data:`STEP_FEATURES` (the note is excessively repeated, out of key, in a motif, in a
    repeated motif; a leap resolved or doubled at this step); ``values`` (M, 6) float64 per
    composition, :data:`COMPOSITION_FEATURES` (first note is the tonic, unique maximum,
    unique lowest real note as 0/1; the autocorrelation coefficients at lags 1..3, NaN where
    undefined). Raises ``ValueError`` for entries outside 0..37.
    """
    comps = _checked_compositions(compositions)
    params = tables.kernel_params.copy()
    params[2] = comps.shape[1]
    steps = np.zeros((comps.shape[0], comps.shape[1], len(STEP_FEATURES)), dtype=np.int8)
    values = np.zeros((comps.shape[0], len(COMPOSITION_FEATURES)), dtype=np.float64)
    _composition_features_kernel(comps, tables.packed, params, 1.0 / tables.key_size, steps,
                                 values)  # fmt: skip
    return steps, values


# --------------------------------------------------------------------------- reference
def _ref_autocorrelate(seq: list[int], lag: int) -> float:
    """The original's formula, literally (numpy)."""
    n = len(seq)
    x = np.asarray(seq) - np.mean(seq)
    c0 = np.var(seq)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float((x[lag:] * x[: max(n - lag, 0)]).sum() / float(n) / c0)


def reference_step(
    composition: Sequence[int],
    action: int,
    beat: int | None = None,
    leap_state: tuple[int, int | None, int] = (0, -1, 0),
    key: Key = C_MAJOR,
    num_notes: int = 32,
    obs: int | None = None,
) -> tuple[dict[str, float], dict[str, float | bool | int], tuple[int, int, int]]:
    """One step of one composition, transcribed literally from ``docs/rules.md`` (the test oracle).

    Args:
        composition: classes played so far. action: the next class.
        beat: notes already played (default ``len(composition)``); only the tonic rule reads
            it, as in the original.
        leap_state: (direction 0/+1/−1, leapt_from (−1 or ``None`` = none), steps_since_leap).
        key, num_notes: the key and N. obs: previous observation for ``scale`` (None → 0).

    Returns:
        (rule name → value for every name in :data:`RULE_NAMES`, flags ``repeated``,
        ``motif``, ``repeated_motif``, ``leap_outcome`` (0/1/2), ``interval_code``,
        ``in_key``, and the new leap state tuple with −1 for "none").
    """
    comp = [int(c) for c in composition]
    action = int(action)
    beat = len(comp) if beat is None else int(beat)
    key_set = set(key.key_classes.tolist())
    tonic_notes = set(key.tonic_notes.tolist())
    third_notes = set(key.third_notes.tolist())
    fifth_notes = set(key.fifth_notes.tolist())
    values: dict[str, float] = {}

    # 1. key
    in_key = action in key_set
    values["key"] = 0.0 if in_key else KEY_PENALTY

    # 2. tonic
    f = num_notes - _TONIC_FROM_END
    tonic = 0.0
    if beat == 0 or beat == f:
        if action == key.tonic_class:
            tonic = TONIC_REWARD
    elif beat == f + 1:
        if action == 1:
            tonic = TONIC_REWARD
    elif beat > f + 1:
        if action in (0, 1):
            tonic = TONIC_REWARD
    values["tonic"] = tonic

    # 3. excessive repetition
    repeats, has_rest, has_hold = 0, False, False
    for entry in reversed(comp):
        if entry == action:
            repeats += 1
        elif entry == 0:
            has_rest = True
        elif entry == 1:
            has_hold = True
        else:
            break
    if action == 0 and repeats > _MAX_REPEATS_REST:
        repeated = True
    elif not has_rest and not has_hold:
        repeated = repeats > _MAX_REPEATS
    else:
        repeated = repeats > _MAX_REPEATS_FLAGGED
    values["repetition"] = REPETITION_PENALTY if repeated else 0.0

    # 4. autocorrelation
    seq = comp + [action]
    penalty = 0.0
    for lag in AUTOCORRELATION_LAGS:
        c = _ref_autocorrelate(seq, lag)
        if not np.isnan(c) and abs(c) > AUTOCORRELATION_THRESHOLD:
            penalty += abs(c) * AUTOCORRELATION_WEIGHT
    values["autocorrelation"] = 0.0 - penalty

    # 5. motif, 6. repeated motif
    motif = repeated_motif = False
    values["motif"] = values["repeated_motif"] = 0.0
    if len(seq) >= MOTIF_LENGTH:
        last = seq[-MOTIF_LENGTH:]
        u = len({e for e in last if e >= 2})
        if u >= _MOTIF_MIN_NOTES:
            motif = True
            values["motif"] = _MOTIF_REWARD + max((u - _MOTIF_MIN_NOTES) * _MOTIF_BONUS_PER_NOTE, 0)
            earlier = comp[: -(MOTIF_LENGTH - 1)] if len(comp) > MOTIF_LENGTH - 1 else []
            for i in range(len(earlier) - MOTIF_LENGTH + 1):
                if earlier[i : i + MOTIF_LENGTH] == last:
                    repeated_motif = True
                    break
            if repeated_motif:
                values["repeated_motif"] = _REPEATED_MOTIF_REWARD + max(u - _MOTIF_MIN_NOTES, 0)

    # 7. preferred intervals
    real = [e for e in comp if e >= 2]
    prev = real[-1] if real else None
    tonic_or_fifth = tonic_notes | fifth_notes
    if prev is None:
        code = _CODE_NONE
    elif action == 1:
        code = _CODE_HOLD_AFTER_TONIC_OR_FIFTH if prev in tonic_or_fifth else _CODE_HOLD
    elif action == 0:
        code = _CODE_REST_AFTER_TONIC_OR_FIFTH if prev in tonic_or_fifth else _CODE_REST
    else:
        d = abs(action - prev)
        if d == _FIFTH and prev in tonic_or_fifth:
            code = _CODE_IN_KEY_FIFTH
        elif d == _THIRD and prev in (tonic_notes | third_notes):
            code = _CODE_IN_KEY_THIRD
        else:
            code = float(d)
    base = _OCTAVE_JUMP_REWARD if code > _OCTAVE else dict(_INTERVAL_TABLE).get(code, 0.0)
    values["preferred_intervals"] = base * _INTERVAL_SCALER

    # 8. leap up, leap back
    direction, leapt_from, steps = leap_state
    leapt_from = -1 if leapt_from is None else int(leapt_from)
    outcome = LEAP_NONE
    if comp:
        if action in (0, 1):
            steps += 1
        elif code >= _FIFTH or code == _CODE_IN_KEY_FIFTH:
            leap_dir = 1 if action > prev else -1
            if direction != 0:
                if direction != leap_dir:
                    if steps > _STEPS_BETWEEN_LEAPS:
                        outcome = LEAP_RESOLVED
                    direction, leapt_from = 0, -1
                else:
                    outcome = LEAP_DOUBLED
            else:
                direction, leapt_from = leap_dir, prev
            steps = 0
        else:
            steps += 1
            if (direction == 1 and action <= leapt_from) or (
                direction == -1 and action >= leapt_from
            ):
                outcome = LEAP_RESOLVED
                direction, leapt_from = 0, -1
    values["leap"] = {LEAP_RESOLVED: LEAP_REWARD, LEAP_DOUBLED: -LEAP_REWARD}.get(outcome, 0.0)

    # 9. unique extremes
    extremes = 0.0
    if len(comp) + 1 == num_notes:
        if seq.count(max(seq)) == 1:
            extremes += UNIQUE_EXTREME_REWARD
        real_all = [e for e in seq if e >= 2]
        if real_all and seq.count(min(real_all)) == 1:
            extremes += UNIQUE_EXTREME_REWARD
    values["unique_extremes"] = extremes

    # extras
    scale_reward = 0.0
    if obs is not None:
        scale = key.scale_classes.tolist()
        if action == 1:
            scale_reward += _SCALE_HOLD_REWARD
        if obs < action < obs + 3:
            scale_reward += _SCALE_STEP_UP_REWARD
        if action in scale:
            scale_reward += _SCALE_IN_SCALE_REWARD
            if obs in scale:
                a_pos, o_pos = scale.index(action), scale.index(obs)
                if o_pos == len(scale) - 1 and a_pos == 0:
                    scale_reward += _SCALE_NEXT_DEGREE_REWARD
                elif a_pos == o_pos + 1:
                    scale_reward += _SCALE_NEXT_DEGREE_REWARD
    values["scale"] = scale_reward
    values["key_distribute_prob"] = 1.0 / len(key_set) if in_key else 0.0
    values["non_repeating"] = REPETITION_PENALTY if repeated else NON_REPEATING_REWARD

    flags: dict[str, float | bool | int] = {
        "repeated": repeated,
        "motif": motif,
        "repeated_motif": repeated_motif,
        "leap_outcome": outcome,
        "interval_code": code,
        "in_key": in_key,
    }
    return values, flags, (int(direction), int(leapt_from), int(steps))
