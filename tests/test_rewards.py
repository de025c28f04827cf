"""Tests of the music-theory rules, reward modes and fixed quirks described in docs/rules.md.

Every hand-built case runs through both the compiled batch kernel (``evaluate_step``) and the
plain-Python oracle (``reference_step``) and requires them to agree bit for bit; expected
values are worked out from docs/rules.md in the comments. C major unless said otherwise:
C = 2/14/26, E = 6/18/30, G = 9/21/33, tonic class 14.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rltuner.encoding import C_MAJOR, Key
from rltuner.rewards import (
    DEFAULT_WEIGHTS,
    MUSIC_THEORY_RULES,
    REWARD_MODES,
    RULE_NAMES,
    LeapState,
    RuleTables,
    StepEvaluation,
    autocorrelation,
    combine_reward,
    evaluate_step,
    evaluate_step_into,
    interval_reward,
    music_theory_reward,
    reference_step,
    weights_vector,
)

_TABLES: dict[tuple[Key, int], RuleTables] = {}


def tables_for(key: Key = C_MAJOR, n: int = 32) -> RuleTables:
    if (key, n) not in _TABLES:
        _TABLES[(key, n)] = RuleTables.from_key(key, n)
    return _TABLES[(key, n)]


def same(a: float, b: float) -> bool:
    """Bit-identical floats (NaN equal to NaN)."""
    return (np.isnan(a) and np.isnan(b)) or (a == b and np.signbit(a) == np.signbit(b))


def step(comp, action, leap=(0, -1, 0), key=C_MAJOR, n=32, obs=None):
    """One step through kernel and reference; asserts they agree; returns the reference's
    (values, flags, new_leap)."""
    values, flags, new_leap = reference_step(comp, action, len(comp), leap, key, n, obs)
    width = max(n, len(comp) + 1)
    row = np.zeros((1, width), dtype=np.int8)
    row[0, : len(comp)] = comp
    ev, leap_out = evaluate_step(
        row, np.array([len(comp)]), np.array([action]),
        LeapState(np.array([leap[0]], np.int8), np.array([leap[1]], np.int16),
                  np.array([leap[2]], np.int32)),
        tables_for(key, n), None if obs is None else np.array([obs]),
    )  # fmt: skip
    for j, name in enumerate(RULE_NAMES):
        assert same(ev.values[0, j], values[name]), (name, ev.values[0, j], values[name])
    assert bool(ev.repeated[0]) == flags["repeated"]
    assert bool(ev.motif[0]) == flags["motif"]
    assert bool(ev.repeated_motif[0]) == flags["repeated_motif"]
    assert int(ev.leap_outcome[0]) == flags["leap_outcome"]
    assert ev.interval_code[0] == flags["interval_code"]
    assert bool(ev.in_key[0]) == flags["in_key"]
    got = (int(leap_out.direction[0]), int(leap_out.leapt_from[0]),
           int(leap_out.steps_since_leap[0]))  # fmt: skip
    assert got == new_leap
    return values, flags, new_leap


def play(notes, leap=(0, -1, 0), n=32, key=C_MAJOR):
    """Play ``notes`` from an empty composition; list of (values, flags, leap) per note."""
    out = []
    for i, a in enumerate(notes):
        v, f, leap = step(list(notes[:i]), a, leap, key, n)
        out.append((v, f, leap))
    return out


# --------------------------------------------------------------------------- 1. key
def test_key_rule():
    assert step([], 14)[0]["key"] == 0.0
    assert step([14], 15)[0]["key"] == -1.0  # C#4 not in C major
    assert step([14], 0)[0]["key"] == 0.0  # rests and holds are in key
    assert step([14], 1)[0]["key"] == 0.0
    assert step([14], 15)[1]["in_key"] is False


# --------------------------------------------------------------------------- 2. tonic
@pytest.mark.parametrize(
    ("beat", "action", "expected"),
    [
        (0, 14, 3.0),  # first note is the tonic class 14
        (0, 2, 0.0),  # C3 is a C, but not *the* tonic class
        (0, 26, 0.0),
        (5, 14, 0.0),  # middle of the piece: nothing
        (28, 14, 3.0),  # f = N - 4 = 28: first note of the final bar
        (29, 1, 3.0),  # f + 1: hold
        (29, 0, 0.0),  # f + 1: a rest is not rewarded
        (29, 14, 0.0),
        (30, 0, 3.0),  # > f + 1: rest or hold
        (31, 1, 3.0),
        (31, 14, 0.0),
    ],
)
def test_tonic_rule(beat, action, expected):
    comp = [16, 18] * 16
    assert step(comp[:beat], action)[0]["tonic"] == expected


# --------------------------------------------------------------------------- 3. repetition
@pytest.mark.parametrize(
    ("comp", "action", "fires"),
    [
        ([20] * 4, 20, False),  # 5th identical note: repeats = 4, not > 4
        ([20] * 5, 20, True),  # 6th identical note: repeats = 5 > 4
        ([21, 20, 20, 20, 20], 20, False),  # the walk stops at 21
        ([14, 0], 0, False),  # 2nd rest: repeats = 1
        ([14, 0, 0], 0, True),  # 3rd rest: note-off with repeats = 2 > 1
        ([14, 1, 1, 1, 1], 1, False),  # 5th hold
        ([14, 1, 1, 1, 1, 1], 1, True),  # 6th hold: repeats = 5 > 4, no flag
        ([20, 1] * 6, 20, False),  # 7th occurrence with holds: repeats = 6, not > 6
        ([20, 1] * 7, 20, True),  # 8th occurrence: repeats = 7 > 6 with a hold flag
        ([20, 0] * 7, 20, True),  # rests between count the same
        ([], 20, False),
    ],
)
def test_repetition_rule(comp, action, fires):
    values, flags, _ = step(comp, action)
    assert flags["repeated"] is fires
    assert values["repetition"] == (-100.0 if fires else 0.0)
    # quirk fixed: non_repeating returns the penalty (the original returned None)
    assert values["non_repeating"] == (-100.0 if fires else 0.1)


# --------------------------------------------------------------------------- 4. autocorr
def test_autocorrelation_beat_one_costs_one_and_a_half():
    # seq [14, 16]: mean 15, x = [-1, 1], var 1, lag 1: (1 * -1) / 2 / 1 = -0.5 -> 3 * 0.5;
    # lags 2 and 3 >= n give 0
    assert step([14], 16)[0]["autocorrelation"] == -1.5
    np.testing.assert_array_equal(autocorrelation([14, 16]), [-0.5, 0.0, 0.0])


def test_autocorrelation_constant_and_empty_are_skipped():
    assert step([], 14)[0]["autocorrelation"] == 0.0  # n = 1: var 0 -> NaN, skipped
    assert step([14, 14, 14], 14)[0]["autocorrelation"] == 0.0  # constant -> NaN
    assert np.isnan(autocorrelation([7, 7, 7])).all()
    assert np.isnan(autocorrelation([])).all()


def test_autocorrelation_ties_at_three_twentieths():
    # seq [a, b, b, b, b]: x = [-4d/5, d/5, d/5, d/5, d/5], var = 4d²/25; lag 3:
    # (x3·x0 + x4·x1) / 5 / var = (-4d²/25 + d²/25) / 5 / (4d²/25) = -3/20 exactly in real
    # numbers. Lags 1, 2 give -1/20 and -2/20 (no penalty). float64 rounding decides:
    c = autocorrelation([14, 16, 16, 16, 16])
    assert c[2] == -0.15000000000000008  # just above 0.15 -> penalised
    v = step([14, 16, 16, 16], 16)[0]["autocorrelation"]
    assert v == -(0.15000000000000008 * 3.0)
    c = autocorrelation([14, 21, 21, 21, 21])
    assert c[2] == -0.14999999999999997  # just below -> no penalty
    assert step([14, 21, 21, 21], 21)[0]["autocorrelation"] == 0.0


def test_autocorrelation_matches_numpy_formula_on_long_sequences():
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 127, 128, 129, 300, 1000):
        seq = rng.integers(0, 38, n)
        x = seq - np.mean(seq)
        with np.errstate(all="ignore"):
            want = [(x[k:] * x[: max(n - k, 0)]).sum() / float(n) / np.var(seq) for k in (1, 2, 3)]
        got = autocorrelation(seq)
        assert all(same(g, w) for g, w in zip(got, want, strict=True)), n


# --------------------------------------------------------------------------- 5./6. motif
def test_motif_needs_eight_entries():
    # 7 entries with 5 distinct notes: too short
    assert step([14, 16, 18, 19, 21, 23], 25)[0]["motif"] == 0.0
    # exactly 8 (beat 7): last 8 = [14,16,18,1,1,0,1,14], distinct real {14,16,18}: u=3 -> 3
    values, flags, _ = step([14, 16, 18, 1, 1, 0, 1], 14)
    assert values["motif"] == 3.0 and flags["motif"]
    assert values["repeated_motif"] == 0.0  # composition[:-7] is empty
    # u = 5 -> 3 + 2·0.3
    assert step([14, 16, 18, 19, 21, 1, 0], 14)[0]["motif"] == 3.0 + 2 * 0.3
    # only 2 distinct notes in the window -> no motif
    assert step([14, 16, 14, 16, 1, 1, 0], 14)[0]["motif"] == 0.0


def test_repeated_motif_adjacent_copy_is_found():
    m = [14, 16, 18, 1, 19, 0, 21, 1]  # u = 5
    # composition = m + m[:7], action m[7]: composition[:-7] = m (the last search position)
    values, flags, _ = step(m + m[:7], m[7])
    assert flags["repeated_motif"] and values["repeated_motif"] == 4.0 + 2
    assert values["motif"] == 3.0 + 2 * 0.3
    # one entry short: composition[:-7] = m[:7] cannot hold 8 entries
    assert not step(m[1:] + m[:7], m[7])[1]["repeated_motif"]


def test_repeated_motif_period_three():
    # [14,16,18] repeated: the window seq[beat-7 : beat+1] needs an earlier copy at the same
    # phase ending before it, i.e. start i = beat - 16 >= 0: first at beat 16.
    notes = [14, 16, 18] * 8
    found = [f["repeated_motif"] for _, f, _ in play(notes[:20])]
    assert found.index(True) == 16
    assert not any(found[:16]) and all(found[16:])


# --------------------------------------------------------------------------- 7. intervals
@pytest.mark.parametrize(
    ("comp", "action", "code", "reward"),
    [
        ([], 14, 0.0, 0.0),  # empty composition
        ([0, 1, 0], 14, 0.0, 0.0),  # no real note before
        ([14], 1, -2.5, 0.3 * 5),  # hold after a C
        ([21], 1, -2.5, 0.3 * 5),  # hold after a G
        ([16], 1, -1.5, 0.075 * 5),  # hold after a D
        ([14], 0, -2.0, 0.15 * 5),  # rest after a C
        ([18], 0, -1.0, 0.05 * 5),  # rest after an E (E is not C/G)
        ([14], 21, -5.0, 0.1 * 5),  # C -> G: in-key fifth
        ([21], 28, -5.0, 0.1 * 5),  # G -> D: in-key fifth (from a G)
        ([16], 23, 7.0, 0.02 * 5),  # D -> A: plain fifth
        ([14], 18, -3.0, 0.15 * 5),  # C -> E: in-key third
        ([18], 22, -3.0, 0.15 * 5),  # E -> G#: third from an E
        ([16], 20, 4.0, 0.09 * 5),  # D -> F#: plain third
        ([14], 16, 2.0, 0.08 * 5),
        ([14], 19, 5.0, 0.07 * 5),
        ([14], 23, 9.0, 0.05 * 5),
        ([14], 25, 11.0, -0.3 * 5),
        ([14], 26, 12.0, 0.0),  # octave: no reward
        ([14], 27, 13.0, -1.0 * 5),  # more than an octave
        ([14], 15, 1.0, 0.0),
        ([14], 17, 3.0, 0.0),
        ([14], 14, 0.0, 0.0),
        ([14, 0, 1, 1], 21, -5.0, 0.1 * 5),  # prev found by walking back over rests/holds
        ([28], 21, 7.0, 0.02 * 5),  # D5 -> G4: 7 down, but from a D: a plain fifth
        ([33], 26, -5.0, 0.1 * 5),  # G5 -> C5: 7 down from a G
    ],
)
def test_preferred_intervals(comp, action, code, reward):
    values, flags, _ = step(comp, action)
    assert flags["interval_code"] == code
    assert values["preferred_intervals"] == pytest.approx(reward, abs=1e-15)
    assert interval_reward(code) == values["preferred_intervals"]


# --------------------------------------------------------------------------- 8. leap
def test_leap_empty_composition_keeps_state():
    v, f, leap = step([], 30, leap=(1, 14, 3))
    assert leap == (1, 14, 3) and f["leap_outcome"] == 0 and v["leap"] == 0.0


def test_leap_rests_count_steps():
    assert step([14], 0, leap=(1, 10, 3))[2] == (1, 10, 4)
    assert step([14], 1, leap=(0, -1, 0))[2] == (0, -1, 1)


def test_leap_resolved_by_leap_back_after_more_than_six_steps():
    # 14 -> 21 leaps up (in-key fifth): direction up, leapt_from 14, steps 0; seven small
    # steps stay above 14 (steps 7); 20 -> 13 is a plain fifth down: resolved (+5)
    notes = [14, 21, 20, 19, 20, 19, 20, 19, 20, 13]
    res = play(notes)
    assert res[1][2] == (1, 14, 0)
    assert res[8][2] == (1, 14, 7)
    assert res[9][1]["leap_outcome"] == 1 and res[9][0]["leap"] == 5.0
    assert res[9][2] == (0, -1, 0)


def test_leap_back_too_soon_clears_without_reward():
    notes = [14, 21, 20, 19, 20, 19, 20, 19, 12]  # only 6 steps before the leap back
    res = play(notes)
    assert res[7][2] == (1, 14, 6)
    assert res[8][1]["interval_code"] == 7.0  # F4 -> C4 (19 -> 12): a plain fifth down
    assert res[8][1]["leap_outcome"] == 0 and res[8][0]["leap"] == 0.0
    assert res[8][2] == (0, -1, 0)  # cleared anyway


def test_leap_doubled():
    res = play([14, 21, 28])  # C -> G up, then G -> D up again (in-key fifth)
    assert res[2][1]["leap_outcome"] == 2 and res[2][0]["leap"] == -5.0
    assert res[2][2] == (1, 14, 0)  # direction kept


def test_leap_gradual_return():
    res = play([14, 21, 19, 16, 14])  # back down by steps to leapt_from 14
    assert [r[1]["leap_outcome"] for r in res] == [0, 0, 0, 0, 1]
    assert res[4][0]["leap"] == 5.0 and res[4][2] == (0, -1, 3)
    res = play([30, 23, 25, 28, 31])  # leap down from 30 (code 7), gradual return up
    assert res[1][2] == (-1, 30, 0)
    assert res[4][1]["leap_outcome"] == 1


# --------------------------------------------------------------------------- 9. extremes
def test_unique_extremes_only_on_final_note():
    comp = [14, 16, 18, 16, 15, 0, 1]  # N = 8: the action is the final note
    assert step(comp, 20, n=8)[0]["unique_extremes"] == 6.0  # max 20 once, min 14 once
    assert step(comp, 18, n=8)[0]["unique_extremes"] == 3.0  # max 18 twice, min 14 once
    assert step(comp, 14, n=8)[0]["unique_extremes"] == 3.0  # max 18 once, min 14 twice
    assert step([14, 18, 16, 18, 15, 0, 1], 14, n=8)[0]["unique_extremes"] == 0.0
    assert step(comp[:6], 20, n=8)[0]["unique_extremes"] == 0.0  # not the final note
    assert step(comp, 20, n=32)[0]["unique_extremes"] == 0.0
    # the maximum is over all entries: [0]*7 + [1] has max 1 once; no real note -> no min
    assert step([0] * 7, 1, n=8)[0]["unique_extremes"] == 3.0
    assert step([0, 1, 0, 1, 1, 0, 1], 1, n=8)[0]["unique_extremes"] == 0.0


# --------------------------------------------------------------------------- extras
def test_scale_rule():
    # scale (C major) = [2,4,6,7,9,11,13,14,16,...,26]; 14 at position 7, 16 at 8
    assert step([14], 16, obs=14)[0]["scale"] == pytest.approx(0.05 + 0.01 + 0.8)
    assert step([26], 2, obs=26)[0]["scale"] == pytest.approx(0.01 + 0.8)  # wrap last->first
    assert step([14], 1, obs=14)[0]["scale"] == pytest.approx(0.1)
    assert step([0], 1, obs=0)[0]["scale"] == pytest.approx(0.1 + 0.05)  # 0 < 1 < 3
    assert step([14], 15, obs=14)[0]["scale"] == pytest.approx(0.05)  # C#: not in scale
    assert step([14], 19, obs=14)[0]["scale"] == pytest.approx(0.01)  # in scale, no step
    assert step([14], 30, obs=14)[0]["scale"] == 0.0  # E5 lies beyond the 15-note list
    assert step([14], 16)[0]["scale"] == 0.0  # no observation


def test_key_distribute_prob():
    assert step([], 14)[0]["key_distribute_prob"] == 1.0 / 23
    assert step([], 15)[0]["key_distribute_prob"] == 0.0


# --------------------------------------------------------------------------- keys
def test_g_major_and_d_minor_tables():
    g = Key.parse("G major")
    t = RuleTables.from_key(g)
    assert t.tonic_class == 21 and t.in_key[20] and not t.in_key[19]  # F# in, F out
    assert step([], 21, key=g)[0]["tonic"] == 3.0
    assert step([14], 19, key=g)[0]["key"] == -1.0
    assert step([21], 28, key=g)[1]["interval_code"] == -5.0  # G -> D from the tonic
    assert step([14], 21, key=g)[1]["interval_code"] == 7.0  # C is not I or V in G
    assert step([16], 1, key=g)[1]["interval_code"] == -2.5  # D is the fifth of G
    assert step([13], 17, key=g)[1]["interval_code"] == -3.0  # B (third of G) up 4
    d = Key.parse("D minor")
    t = RuleTables.from_key(d)
    assert t.tonic_class == 16 and t.in_key[12] and not t.in_key[13]  # Bb in, B out
    assert step([19], 23, key=d)[1]["interval_code"] == -3.0  # F (minor third) -> A
    assert step([18], 22, key=d)[1]["interval_code"] == 4.0  # E is not a role note
    assert step([23], 0, key=d)[1]["interval_code"] == -2.0  # A is the fifth of D
    assert step([16], 23, key=d)[1]["interval_code"] == -5.0  # D -> A
    play([16, 19, 23, 21, 19, 18, 16, 28, 1, 0, 16], key=d)  # no crash, kernel == oracle


# --------------------------------------------------------------------------- modes
def test_reward_modes():
    values, _, _ = step([14, 16, 18, 19, 21, 0, 1], 14, obs=1)  # beat 7
    v = np.array([[values[name] for name in RULE_NAMES]])
    log_p = np.array([-2.0])
    c = 0.5
    r = {name: values[name] for name in RULE_NAMES}
    r_mt = sum(r[name] for name in MUSIC_THEORY_RULES)
    basic = r["key"] + r["tonic"] + r["repetition"]
    expected = {
        "music_theory_all": r_mt * c - 2.0,
        "music_theory_only": r_mt * c,
        "music_theory_basic": basic * c - 2.0,
        "music_theory_basic_plus_variety": (basic + r["autocorrelation"]) * c - 2.0,
        "music_theory_random": basic * c,
        "key_and_tonic": (r["key"] + r["tonic"]) * c,
        "key": r["key_distribute_prob"] * c,
        "scale": r["scale"] * c,
        "non_repeating": r["non_repeating"] * c,
        "preferred_intervals": r["preferred_intervals"] * c,
    }
    assert set(expected) == set(REWARD_MODES)
    for mode, want in expected.items():
        assert combine_reward(mode, log_p, v, c)[0] == pytest.approx(want, abs=1e-12), mode
    assert combine_reward("key", None, v, c)[0] == pytest.approx(c / 23)
    with pytest.raises(ValueError, match="music_theory_all"):
        combine_reward("nope", log_p, v, c)
    with pytest.raises(ValueError, match="log_p"):
        combine_reward("music_theory_all", None, v, c)


def test_weights():
    w = weights_vector()
    assert w.tolist() == [DEFAULT_WEIGHTS[n] for n in RULE_NAMES]
    assert w[:9].tolist() == [1.0] * 9 and w[9:].tolist() == [0.0] * 3
    w2 = weights_vector({"motif": 2.0, "scale": 1.0})
    assert w2[RULE_NAMES.index("motif")] == 2.0 and w2[RULE_NAMES.index("scale")] == 1.0
    with pytest.raises(ValueError, match="unique_extremes"):
        weights_vector({"keys": 1.0})
    values = np.arange(24, dtype=np.float64).reshape(2, 12)
    np.testing.assert_allclose(music_theory_reward(values), values[:, :9].sum(axis=1))
    np.testing.assert_allclose(music_theory_reward(values, w2), values @ w2)
    # unit weights sum in rule order, exactly like the original's running sum
    rng = np.random.default_rng(0)
    vals = rng.standard_normal((50, 12))
    running = vals[:, 0].copy()
    for j in range(1, 9):
        running = running + vals[:, j]
    np.testing.assert_array_equal(music_theory_reward(vals), running)
    w3 = weights_vector({"motif": 0.0})
    comb = combine_reward("music_theory_only", None, vals, 1.0, w3)
    np.testing.assert_allclose(comb, vals[:, :9].sum(axis=1) - vals[:, 4])


# --------------------------------------------------------------------------- API details
def test_evaluate_step_is_pure_and_validates():
    t = tables_for()
    comps = np.array([[14, 16, 18, 0] + [0] * 28, [21] * 32], dtype=np.int8)
    before = comps.copy()
    leap = LeapState(np.array([1, 0], np.int8), np.array([14, -1], np.int16),
                     np.array([2, 0], np.int32))  # fmt: skip
    leap_copy = [a.copy() for a in leap]
    ev, new = evaluate_step(comps, np.array([3, 5]), np.array([20, 21]), leap, t)
    np.testing.assert_array_equal(comps, before)
    for a, b in zip(leap, leap_copy, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ev.values.shape == (2, len(RULE_NAMES)) and ev.values.dtype == np.float64
    assert new.direction.dtype == np.int8 and new.leapt_from.dtype == np.int16
    assert bool(ev.repeated[1])  # sixth 21 in a row
    with pytest.raises(ValueError, match="row 0"):
        evaluate_step(comps, np.array([3, 5]), np.array([38, 21]), leap, t)
    with pytest.raises(ValueError, match="row 1"):
        evaluate_step(comps, np.array([3, 33]), np.array([1, 21]), leap, t)
    bad = comps.copy()
    bad[0, 1] = 40
    with pytest.raises(ValueError):
        evaluate_step(bad, np.array([3, 5]), np.array([1, 21]), leap, t)
    with pytest.raises(ValueError):
        evaluate_step(comps, np.array([3]), np.array([1, 21]), leap, t)


def test_evaluate_step_into_matches_and_updates_in_place():
    t = tables_for()
    rng = np.random.default_rng(3)
    comps = rng.integers(0, 38, (5, 32)).astype(np.int64)
    leap = LeapState.initial(5)
    out = StepEvaluation.empty(5)
    obs = np.full(5, -1, dtype=np.int64)
    ref_leap = LeapState.initial(5)
    for i in range(32):
        beat = np.full(5, i, dtype=np.int64)
        action = comps[:, i].copy()
        ev, ref_leap = evaluate_step(comps, beat, action, ref_leap, t)
        evaluate_step_into(comps, beat, action, leap, t, obs, out, leap)
        np.testing.assert_array_equal(out.values, ev.values)
        for a, b in zip(leap, ref_leap, strict=True):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- properties
@st.composite
def melodies(draw, min_len=1, max_len=40):
    """Melodies over a small random alphabet (so repeats, motifs and ties happen)."""
    alphabet = draw(st.lists(st.integers(0, 37), min_size=1, max_size=6, unique=True))
    extra = draw(st.sampled_from([[], [0], [1], [0, 1]]))
    return draw(st.lists(st.sampled_from(alphabet + extra), min_size=min_len, max_size=max_len))


@st.composite
def leap_states(draw):
    direction = draw(st.sampled_from([0, 1, -1]))
    leapt_from = -1 if direction == 0 else draw(st.integers(2, 37))
    return (direction, leapt_from, draw(st.integers(0, 12)))


KEYS = [C_MAJOR, Key(7, "major"), Key(2, "minor"), Key(9, "minor"), Key(6, "major")]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    melody=melodies(),
    leap0=leap_states(),
    key=st.sampled_from(KEYS),
    n_extra=st.integers(-3, 3),
    obs0=st.integers(-1, 37),
)
def test_kernel_equals_reference_through_whole_compositions(melody, leap0, key, n_extra, obs0):
    n = max(len(melody) + n_extra, 1)  # N near the length so the final-bar rules trigger
    t = tables_for(key, n)
    width = len(melody)
    comps = np.array([melody], dtype=np.int64)
    leap = LeapState(np.array([leap0[0]], np.int8), np.array([leap0[1]], np.int16),
                     np.array([leap0[2]], np.int32))  # fmt: skip
    ref_leap = leap0
    obs = obs0
    for i in range(width):
        a = melody[i]
        o = None if obs < 0 else obs
        values, flags, ref_leap = reference_step(melody[:i], a, i, ref_leap, key, n, o)
        ev, leap = evaluate_step(comps, np.array([i]), np.array([a]), leap, t,
                                 np.array([obs]))  # fmt: skip
        for j, name in enumerate(RULE_NAMES):
            assert same(ev.values[0, j], values[name]), (i, name)
        assert bool(ev.repeated[0]) == flags["repeated"]
        assert bool(ev.motif[0]) == flags["motif"]
        assert bool(ev.repeated_motif[0]) == flags["repeated_motif"]
        assert int(ev.leap_outcome[0]) == flags["leap_outcome"]
        assert ev.interval_code[0] == flags["interval_code"]
        assert (int(leap.direction[0]), int(leap.leapt_from[0]),
                int(leap.steps_since_leap[0])) == ref_leap  # fmt: skip
        obs = a


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_batch_with_mixed_beats_equals_reference(data):
    rows = data.draw(st.integers(1, 12))
    n = 32
    comps = np.zeros((rows, n), dtype=np.int8)
    beats, actions, obs, leaps = [], [], [], []
    for r in range(rows):
        melody = data.draw(melodies(min_len=1, max_len=n))
        comps[r, : len(melody) - 1] = melody[:-1]
        comps[r, len(melody) - 1 :] = data.draw(st.integers(0, 37))  # garbage past beat
        beats.append(len(melody) - 1)
        actions.append(melody[-1])
        obs.append(data.draw(st.integers(-1, 37)))
        leaps.append(data.draw(leap_states()))
    leap = LeapState(np.array([x[0] for x in leaps], np.int8),
                     np.array([x[1] for x in leaps], np.int16),
                     np.array([x[2] for x in leaps], np.int32))  # fmt: skip
    ev, new = evaluate_step(comps, np.array(beats), np.array(actions), leap, tables_for(),
                            np.array(obs))  # fmt: skip
    for r in range(rows):
        o = None if obs[r] < 0 else obs[r]
        comp = comps[r, : beats[r]].tolist()
        values, flags, new_leap = reference_step(comp, actions[r], beats[r], leaps[r],
                                                 C_MAJOR, n, o)  # fmt: skip
        for j, name in enumerate(RULE_NAMES):
            assert same(ev.values[r, j], values[name]), (r, name)
        assert (int(new.direction[r]), int(new.leapt_from[r]),
                int(new.steps_since_leap[r])) == new_leap  # fmt: skip


@st.composite
def tie_sequences(draw):
    """Sequences that often hit |c| = 3/20 exactly: a note then four copies of one value,
    optionally after a prefix."""
    a, b = draw(st.integers(0, 37)), draw(st.integers(0, 37))
    prefix = draw(st.lists(st.integers(0, 37), max_size=3))
    return prefix + [a, b, b, b, b]


@settings(max_examples=300, deadline=None)
@given(st.one_of(tie_sequences(), st.lists(st.integers(0, 37), min_size=0, max_size=70)))
def test_autocorrelation_bit_equal_to_numpy(seq):
    n = len(seq)
    arr = np.asarray(seq, dtype=np.int64)
    got = autocorrelation(seq)
    for k, g in zip((1, 2, 3), got, strict=True):
        if n == 0:
            assert np.isnan(g)
            continue
        x = arr - np.mean(arr)
        with np.errstate(all="ignore"):
            want = (x[k:] * x[: max(n - k, 0)]).sum() / float(n) / np.var(arr)
        assert same(g, want), (seq, k, g, want)


def test_compiled_rules_use_the_named_constants():
    """The kernel's reward values come from the module's named constants (which the reference
    reads too): no reward literal is hidden in the compiled rule code."""
    import ast
    import inspect

    from rltuner import rewards

    for fn in (rewards._eval_one, rewards._interval_reward, rewards._composition_counts_kernel):
        tree = ast.parse(inspect.getsource(fn.py_func))
        floats = {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, float)
        }
        assert floats <= {0.0, 2.0, 5.0, 9.0}, (fn.__name__, floats)  # 2/5/9: interval sizes
    table = dict(rewards._INTERVAL_TABLE)
    for code, r in table.items():
        assert rewards.interval_reward(code) == r * rewards._INTERVAL_SCALER
    assert rewards.interval_reward(13.0) == rewards._OCTAVE_JUMP_REWARD * rewards._INTERVAL_SCALER
