"""Tests of the Table-1 statistics and the interval-count quirk fix (docs/rules.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rltuner.encoding import C_MAJOR, Key
from rltuner.metrics import INTERVAL_NAMES, TABLE1_ROWS, CompositionStats, composition_stats
from rltuner.rewards import autocorrelation, reference_step


def test_hand_built_composition():
    # N = 8. Step by step (interval codes of docs/rules.md; C = 14, G = 21, F# = 20 is out of key):
    #   14 first note (tonic; no previous note, code 0)
    #   21 C->G up 7 from a C: code -5 (in-key preferred); leap up from 14
    #   20 code 1 (not counted), not in key
    #   19 code 1
    #    0 rest after F (19 is not C/G): code -1
    #    0 code -1 (2nd rest: repeats 1, not penalised)
    #    0 code -1, 3rd rest in a row: excessively repeated
    #    1 hold: code -1.5 (not counted); last 8 hold 4 distinct notes: a motif
    comp = [14, 21, 20, 19, 0, 0, 0, 1]
    s = composition_stats(np.array([comp]))
    assert (s.num_compositions, s.total_notes) == (1, 8)
    assert s.repeated == 1 and s.not_in_key == 1
    assert s.in_motif == 1 and s.in_repeated_motif == 0
    assert s.in_key_preferred == 1 and s.rests == 3
    assert sum(getattr(s, n) for n in INTERVAL_NAMES) == 4
    assert s.leaps_resolved == 0 and s.leaps_doubled == 0
    assert s.starting_with_tonic == 1 and s.unique_max == 1 and s.unique_min == 1
    ac = autocorrelation(comp)
    assert s.autocorrelation_sum == ac.tolist() and s.autocorrelation_count == [1, 1, 1]
    t = s.table1()
    assert list(t) == list(TABLE1_ROWS)
    assert t["Notes excessively repeated"] == 1 / 8
    assert t["Notes not in key"] == 1 / 8
    assert t["Notes in motif"] == 1 / 8
    assert math.isnan(t["Leaps resolved"])  # no leap was resolved or doubled
    assert t["Compositions starting with tonic"] == 1.0
    assert t["Mean autocorrelation, lag 2"] == ac[1]


def test_in_key_thirds_are_counted():
    # quirk fixed: the original counted only in-key fifths (-5) as in-key preferred intervals.
    # 14->18 C->E: -3; 18->16, 16->14: seconds; 14->21: -5; 21->14 G->C down 7: -5;
    # 14->1: hold (-2.5, not counted); 1->0: rest after a C: -2.
    s = composition_stats(np.array([[14, 18, 16, 14, 21, 14, 1, 0]]))
    assert s.in_key_preferred == 3
    assert s.seconds == 2 and s.rests_after_tonic_or_fifth == 1
    # 14->21 leaps up; 21->14 leaps back after 0 steps: cleared, neither resolved nor doubled
    assert s.leaps_resolved == 0 and s.leaps_doubled == 0


def test_leaps_and_interval_kinds():
    # 14->21 up (in-key fifth), 21->28 up again from a G: doubled; then steps down to 14:
    # gradual return to leapt_from 14: resolved
    comp = [14, 21, 28, 26, 24, 23, 21, 19, 17, 16, 14, 1]
    s = composition_stats(np.array([comp]))
    assert s.leaps_doubled == 1 and s.leaps_resolved == 1
    assert s.table1()["Leaps resolved"] == 0.5
    # codes: -5, -5, then 28->26 2, 26->24 2, 24->23 1, 23->21 2, 21->19 2, 19->17 2,
    # 17->16 1, 16->14 2, hold: six seconds
    assert s.seconds == 6 and s.in_key_preferred == 2
    s = composition_stats(np.array([[14, 27, 16, 27, 16, 25, 30, 35, 26, 14, 2, 0, 0]]))
    # 14->27: 13 (octave jump); 27->16: 11 (seventh); 16->27: 11; 27->16: 11; 16->25: 9;
    # 25->30: 5; 30->35: 5; 35->26: 9; 26->14: 12 (not counted); 14->2: 12; rest after C: -2;
    # 2nd rest: -2
    assert s.octave_jumps == 1 and s.sevenths == 3 and s.sixths == 2 and s.fourths == 2
    assert s.rests_after_tonic_or_fifth == 2


def test_composition_level_stats():
    comps = np.array([
        [14, 16, 18, 16],  # tonic start; max 18 once; min 14 once
        [16, 18, 18, 14],  # max twice; min once
        [0, 1, 0, 1],  # no real note: no unique min; max 1 twice
        [1, 0, 0, 0],  # max 1 once
    ])  # fmt: skip
    s = composition_stats(comps)
    assert s.starting_with_tonic == 1
    assert s.unique_max == 2 and s.unique_min == 2
    p = s.percentages()
    assert p["starting_with_tonic"] == 25.0 and p["unique_max"] == 50.0
    # a constant composition has no autocorrelation; others count
    s = composition_stats(np.array([[14] * 6, [14, 16] * 3]))
    assert s.autocorrelation_count == [1, 1, 1]
    assert s.table1()["Mean autocorrelation, lag 1"] == autocorrelation([14, 16] * 3)[0]


def test_binomial_se_and_empty():
    s = composition_stats(np.array([[14, 16, 18, 16, 14, 16, 18, 16]] * 4))
    se = s.binomial_se()
    p = s.table1()["Notes in motif"]
    assert se["Notes in motif"] == pytest.approx(math.sqrt(p * (1 - p) / 32))
    assert "Mean autocorrelation, lag 1" not in se
    empty = composition_stats(np.zeros((0, 32), dtype=np.int64))
    assert empty.num_compositions == 0
    assert all(math.isnan(v) for v in empty.table1().values())
    with pytest.raises(ValueError):
        composition_stats(np.array([[14, 38]]))


def test_custom_key():
    g = Key.parse("G")
    s = composition_stats(np.array([[21, 28, 20, 19]]), key=g)  # G, D (-5 from G), F#, F
    assert s.starting_with_tonic == 1 and s.in_key_preferred == 1 and s.not_in_key == 1


def _oracle_stats(comps: np.ndarray, key: Key = C_MAJOR) -> CompositionStats:
    """Statistics built from reference_step, note by note."""
    s = CompositionStats()
    m, n = comps.shape
    s.num_compositions, s.total_notes = m, m * n
    kinds = {13: "octave_jumps", 11: "sevenths", 7: "fifths", 9: "sixths", 5: "fourths",
             4: "thirds", 2: "seconds", -1: "rests", -2: "rests_after_tonic_or_fifth",
             -5: "in_key_preferred", -3: "in_key_preferred"}  # fmt: skip
    for row in comps.tolist():
        leap = (0, -1, 0)
        for i, a in enumerate(row):
            _, f, leap = reference_step(row[:i], a, i, leap, key, n)
            s.repeated += f["repeated"]
            s.not_in_key += not f["in_key"]
            s.in_motif += f["motif"]
            s.in_repeated_motif += f["repeated_motif"]
            s.leaps_resolved += f["leap_outcome"] == 1
            s.leaps_doubled += f["leap_outcome"] == 2
            code = f["interval_code"]
            name = kinds.get(13 if code > 12 else code)
            if name:
                setattr(s, name, getattr(s, name) + 1)
        s.starting_with_tonic += row[0] == key.tonic_class
        s.unique_max += row.count(max(row)) == 1
        real = [e for e in row if e >= 2]
        s.unique_min += bool(real) and row.count(min(real)) == 1
        for k, c in enumerate(autocorrelation(row)):
            if not np.isnan(c):
                s.autocorrelation_sum[k] += c
                s.autocorrelation_count[k] += 1
    return s


def _assert_stats_equal(a: CompositionStats, b: CompositionStats) -> None:
    da, db = vars(a).copy(), vars(b).copy()
    sa, sb = da.pop("autocorrelation_sum"), db.pop("autocorrelation_sum")
    assert da == db
    np.testing.assert_allclose(sa, sb, rtol=1e-12, atol=1e-12)


compositions = st.integers(1, 24).flatmap(
    lambda n: st.lists(
        st.lists(st.sampled_from([0, 1, 14, 16, 18, 19, 21, 23, 26, 15, 33, 2]),
                 min_size=n, max_size=n),
        min_size=1, max_size=6,
    )
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(compositions, st.sampled_from([C_MAJOR, Key(9, "minor"), Key(7, "major")]))
def test_batch_equals_oracle_and_sum_of_singles(rows, key):
    comps = np.array(rows, dtype=np.int64)
    batch = composition_stats(comps, key)
    _assert_stats_equal(batch, _oracle_stats(comps, key))
    merged = CompositionStats()
    for r in rows:
        merged = merged.merge(composition_stats(np.array([r]), key))
    _assert_stats_equal(batch, merged)


def test_throughput_smoke():
    rng = np.random.default_rng(0)
    comps = rng.integers(0, 38, (20_000, 32)).astype(np.int8)
    s = composition_stats(comps)
    assert s.total_notes == 640_000
    assert 0.3 < s.table1()["Notes not in key"] < 0.5  # 15 of 38 classes are out of key
