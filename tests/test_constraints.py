"""Bounds on Table-1 statistics for kl_pg (rltuner.constraints) and the per-composition
features they read (rltuner.rewards.composition_features)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rltuner.constraints import (
    CONSTRAINT_NAMES,
    NATURAL_BOUNDS,
    TABLE1_BOUNDS,
    Constraint,
    autocorrelation_steps,
    constraint_set,
    constraint_terms,
    constraint_values,
    dual_step,
    repeated_pitch_steps,
)
from rltuner.encoding import C_MAJOR
from rltuner.errors import RltunerError
from rltuner.metrics import composition_stats
from rltuner.naturalness import repeated_pitch_share
from rltuner.rewards import (
    COMPOSITION_FEATURES,
    STEP_FEATURES,
    RuleTables,
    composition_counts,
    composition_features,
)

TABLES = RuleTables.from_key(C_MAJOR, 32)

# Table-1 statistic of each constrained name, from composition_stats(...).table1()
ROW = {
    "repeated": "Notes excessively repeated",
    "autocorrelation_1": "Mean autocorrelation, lag 1",
    "autocorrelation_2": "Mean autocorrelation, lag 2",
    "autocorrelation_3": "Mean autocorrelation, lag 3",
    "not_in_key": "Notes not in key",
    "starting_with_tonic": "Compositions starting with tonic",
    "leaps_resolved": "Leaps resolved",
    "unique_max": "Compositions with unique max note",
    "unique_min": "Compositions with unique min note",
    "in_motif": "Notes in motif",
    "in_repeated_motif": "Notes in repeated motif",
}


def _statistic(comps, name):
    if name == "repeated_pitch":
        return repeated_pitch_share(comps)
    if name == "hold":
        return float((comps == 1).mean())
    return composition_stats(comps).table1()[ROW[name]]


def _melodies(rng, m, n):
    """Melody-like compositions: mostly steps in C major with holds, some leaps and repeats."""
    comps = np.empty((m, n), dtype=np.int8)
    for i in range(m):
        x = int(rng.integers(10, 28))
        for j in range(n):
            r = rng.random()
            if r < 0.25 and j:
                comps[i, j] = 1  # hold
                continue
            x = int(np.clip(x + rng.choice([-7, -2, -1, 0, 1, 2, 5, 12]), 2, 37))
            comps[i, j] = x
    return comps


# ------------------------------------------------------------------ the features
@pytest.mark.parametrize("width", [0, 1, 5, 16, 32])
def test_features_sum_to_the_table1_counters(width):
    rng = np.random.default_rng(width)
    comps = np.concatenate([_melodies(rng, 60, width), np.full((3, width), 14, np.int8)])
    counts, ac_sum, ac_count = composition_counts(comps, TABLES)
    steps, values = composition_features(comps, TABLES)
    assert steps.shape == (63, width, len(STEP_FEATURES)) and steps.dtype == np.int8
    assert values.shape == (63, len(COMPOSITION_FEATURES))
    np.testing.assert_array_equal(steps.sum(axis=(0, 1)), counts[:6])
    np.testing.assert_array_equal(values[:, :3].sum(axis=0), counts[6:9])
    ac = values[:, 3:]
    np.testing.assert_array_equal((~np.isnan(ac)).sum(axis=0), ac_count)
    np.testing.assert_allclose(np.nansum(ac, axis=0), ac_sum)
    if width:
        assert np.isnan(ac[-1]).all()  # a constant composition has no autocorrelation


def test_features_by_hand():
    # C4 (14) E4 (18) C4, then the same bar: tonic start, leap of a third is no leap
    comp = np.array([[14, 18, 14, 1]], dtype=np.int8)
    steps, values = composition_features(comp, TABLES)
    assert values[0, 0] == 1.0  # starts on the tonic
    assert values[0, 1] == 1.0 and values[0, 2] == 0.0  # one E4; two C4 (lowest real note)
    assert steps[0, :, STEP_FEATURES.index("not_in_key")].tolist() == [0, 0, 0, 0]
    bad = np.array([[14, 40]], dtype=np.int64)
    with pytest.raises(ValueError, match="0..37"):
        composition_features(bad, TABLES)


# ------------------------------------------------------------------ constraint sets
def test_presets_and_bounds():
    table1 = constraint_set("table1")
    names = [c.name for c in table1]
    assert set(names) == set(TABLE1_BOUNDS) == set(ROW)  # the eleven Table-1 rows
    # |mean autocorrelation| <= b is two one-sided constraints
    ac3 = [c for c in table1 if c.name == "autocorrelation_3"]
    b = TABLE1_BOUNDS["autocorrelation_3"]
    assert ac3 == [Constraint("autocorrelation_3", 1, -b), Constraint("autocorrelation_3", -1, b)]
    assert constraint_set("none") == []
    assert {c.name for c in constraint_set("natural")} == set(NATURAL_BOUNDS)
    assert set(NATURAL_BOUNDS) <= set(CONSTRAINT_NAMES)
    own = constraint_set("none", {"starting_with_tonic": 0.4})
    assert own == [Constraint("starting_with_tonic", 1, 0.4)]
    changed = constraint_set("table1", {"starting_with_tonic": 0.4})
    assert Constraint("starting_with_tonic", 1, 0.4) in changed and len(changed) == len(table1)
    with pytest.raises(RltunerError, match="preset"):
        constraint_set("paper")
    with pytest.raises(RltunerError, match="unknown constrained statistic 'tonic'"):
        constraint_set("none", {"tonic": 0.3})
    with pytest.raises(RltunerError, match="0..1"):
        constraint_set("none", {"starting_with_tonic": 1.5})
    with pytest.raises(RltunerError, match="finite"):
        constraint_set("none", {"starting_with_tonic": float("nan")})


# ------------------------------------------------------------------ terms, by hand
def test_terms_by_hand():
    m, n = 2, 4
    steps = np.zeros((m, n, 6), dtype=np.int8)
    values = np.zeros((m, 6))
    steps[0, 1, STEP_FEATURES.index("in_motif")] = 1
    steps[0, 2, STEP_FEATURES.index("in_motif")] = 1
    steps[1, 3, STEP_FEATURES.index("leaps_resolved")] = 1
    steps[0, 2, STEP_FEATURES.index("leaps_doubled")] = 1
    steps[1, 0, STEP_FEATURES.index("not_in_key")] = 1
    values[0, 0] = 1.0  # composition 0 starts on the tonic
    values[:, 5] = [0.1, np.nan]  # lag-3 autocorrelation; undefined for composition 1
    cons = [
        Constraint("in_motif", 1, 0.25),
        Constraint("not_in_key", -1, 0.125),
        Constraint("leaps_resolved", 1, 0.75),
        Constraint("starting_with_tonic", 1, 0.5),
        Constraint("autocorrelation_3", -1, 0.02),
    ]
    h = constraint_terms(steps, values, cons)
    assert h.shape == (5, m, n)
    np.testing.assert_allclose(h[0], [[-0.25, 0.75, 0.75, -0.25], [-0.25] * 4])
    np.testing.assert_allclose(h[1], [[0.125] * 4, [-0.875, 0.125, 0.125, 0.125]])
    np.testing.assert_allclose(h[2], [[0, 0, -0.75, 0], [0, 0, 0, 0.25]])
    np.testing.assert_allclose(h[3], [[0.5, 0, 0, 0], [-0.5, 0, 0, 0]])
    np.testing.assert_allclose(h[4], [[0, 0, 0, -0.08], [0, 0, 0, 0.02]])
    mean, se = constraint_values(h)
    # in motif: 2 of 8 notes = the bound 0.25 -> G sums to 0; out of key 1 of 8 = 0.125 -> 0
    np.testing.assert_allclose(mean, [0.0, 0.0, (-0.75 + 0.25) / 2, 0.0, -0.03], atol=1e-12)
    g = h.sum(axis=2)
    np.testing.assert_allclose(se, g.std(axis=1, ddof=1) / np.sqrt(2))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(CONSTRAINT_NAMES),
       bound=st.floats(0.0, 1.0), spread=st.booleans())  # fmt: skip
def test_mean_g_is_nonnegative_exactly_when_the_statistic_meets_its_bound(
    seed, name, bound, spread
):
    """E[G] >= 0 over a batch  <=>  the pooled statistic of that batch meets the bound (the
    autocorrelation's bound is on |mean|, over the compositions where it is defined), whether
    the autocorrelation is paid at the last step or spread over the steps."""
    rng = np.random.default_rng(seed)
    comps = _melodies(rng, 40, 32)
    if name.startswith("autocorrelation"):
        bound = bound * 0.3
    stat = _statistic(comps, name)
    steps, values = composition_features(comps, TABLES)
    cons = constraint_set("none", {name: bound})
    given_comps = comps if spread or name in ("repeated_pitch", "hold") else None
    mean, _ = constraint_values(constraint_terms(steps, values, cons, given_comps))
    if name.startswith("autocorrelation"):
        # all 40 melodies have a defined coefficient, so the batch mean is the statistic
        assert (abs(stat) <= bound + 1e-12) == bool((mean >= -1e-12).all())
    elif np.isnan(stat):  # no leaps at all
        assert mean[0] == 0.0
    else:
        sense = cons[0].sense
        assert (sense * (stat - bound) >= -1e-12) == bool(mean[0] >= -1e-12)


def test_repeated_pitch_and_autocorrelation_steps_by_hand():
    # C4 hold C4 rest C4 D4: intervals C4->C4 (repeat, across a hold), C4->C4 (across a rest),
    # C4->D4; the first onset has no interval
    comps = np.array([[14, 1, 14, 0, 14, 16]], dtype=np.int8)
    rep, interval = repeated_pitch_steps(comps)
    assert interval.tolist() == [[False, False, True, False, True, True]]
    assert rep.tolist() == [[False, False, True, False, True, False]]
    with pytest.raises(ValueError, match="compositions"):
        constraint_terms(np.zeros((1, 6, 6), np.int8), np.zeros((1, 6)),
                         constraint_set("none", {"repeated_pitch": 0.1}))  # fmt: skip
    seq = np.array([[2, 4, 2, 4]])  # x = -1, 1, -1, 1; var 1: lag 1 products -1 at steps 1..3
    h = autocorrelation_steps(seq, 1)
    np.testing.assert_allclose(h, [[0, -0.25, -0.25, -0.25]])
    np.testing.assert_allclose(autocorrelation_steps(seq, 2), [[0, 0, 0.25, 0.25]])
    assert not autocorrelation_steps(np.full((1, 4), 7), 1).any()  # constant: 0, not NaN


# ------------------------------------------------------------------ dual ascent
def test_dual_step_moves_prices_toward_feasibility():
    lam = np.array([0.0, 1.0, 1.0, 0.05, 9.95])
    mean = np.array([-1.0, 1.0, -0.01, 1.0, -1.0])
    se = np.array([0.1, 0.1, 0.1, 0.1, 0.1])
    out = dual_step(lam, mean, se, rate=0.1, cap=10.0)
    # violated by 10 s.e.: a full step up; slack by 10 s.e.: a full step down;
    # violated by 0.1 s.e.: a step of 0.1/3 of it; never below 0 nor above the cap
    np.testing.assert_allclose(out, [0.1, 0.9, 1.0 + 0.1 / 30, 0.0, 10.0])
    np.testing.assert_array_equal(lam, [0.0, 1.0, 1.0, 0.05, 9.95])  # not modified
    # release: a met bound's price falls three times as fast as a violated one's rises
    out3 = dual_step(lam, mean, se, rate=0.1, cap=10.0, release=3.0)
    np.testing.assert_allclose(out3, [0.1, 0.7, 1.0 + 0.1 / 30, 0.0, 10.0])
    # a zero standard error counts as certain
    np.testing.assert_allclose(dual_step(np.zeros(2), np.array([-0.5, 0.0]), np.zeros(2),
                                         0.1, 10.0), [0.1, 0.0])  # fmt: skip
