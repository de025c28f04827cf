"""Naturalness and diversity metrics (rltuner.naturalness): hand-built batches, edge cases, the
compiled counters against plain-Python oracles, the Kneser–Ney trigram and the bundled
reference split."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rltuner.encoding import NUM_CLASSES
from rltuner.naturalness import (
    INTERVAL_LABELS,
    MAX_INTERVAL,
    NOTE_RNN_SPLIT,
    CorpusReference,
    KneserNeyTrigram,
    bundled_reference,
    interval_histogram,
    naturalness_stats,
    onset_position_histogram,
    opening_diversity,
    pitch_class_histogram,
    repeated_pitch_share,
    shares,
    total_variation,
)

C, D, E, G = 14, 16, 18, 21  # C4, D4, E4, G4 in the class encoding
ZERO = MAX_INTERVAL + 1  # the bin of a repeated pitch


# ------------------------------------------------------------------ openings
def test_openings_hand_built():
    a = [C, 1, 1, 1] + [D] * 12 + [E] * 4
    b = [C, 1, 1, 1] + [D] * 12 + [G] * 4  # same first bar as a, other ending
    c = [G] * 20
    o16 = opening_diversity(np.array([a, b, a, c]), 16)
    assert o16.distinct_share == pytest.approx(2 / 4)
    assert o16.top_share == pytest.approx(3 / 4)
    assert o16.top == tuple(a[:16])
    o4 = opening_diversity(np.array([a, b, a, c]), 4)
    assert (o4.distinct_share, o4.top_share, o4.top) == (0.5, 0.75, (C, 1, 1, 1))
    # a prefix shared over the first 6-step chunk but not the second is told apart
    x = [C] * 6 + [D] * 10
    y = [C] * 6 + [E] * 10
    assert opening_diversity(np.array([x, y]), 16).distinct_share == 1.0


def test_openings_all_identical_batch():
    batch = np.tile(np.array([C, 1, 0, G] * 8), (50, 1))
    for n in (8, 16):
        o = opening_diversity(batch, n)
        assert o.distinct_share == pytest.approx(1 / 50)
        assert o.top_share == 1.0
        assert o.top == tuple(batch[0, :n])


def test_distinct_openings_counted_among_the_first_sample():
    rows = np.repeat(np.arange(2, 12, dtype=np.int8), 16).reshape(10, 16)  # 10 distinct
    batch = np.concatenate([rows, np.tile(rows[:1], (90, 1))])  # then 90 copies of the first
    o = opening_diversity(batch, 16, sample=10)
    assert o.distinct_share == 1.0  # among the first 10
    assert o.top_share == pytest.approx(91 / 100)  # over the whole batch
    assert opening_diversity(batch, 16, sample=1000).distinct_share == pytest.approx(10 / 100)
    from rltuner.naturalness import OPENING_SAMPLE

    assert OPENING_SAMPLE == 2000  # issue 13's yardstick


def test_openings_tie_takes_smallest_and_batch_shorter_than_a_bar():
    o = opening_diversity(np.array([[5] * 8, [3] * 8]), 8)
    assert o.top == (3,) * 8 and o.top_share == 0.5
    short = np.full((10, 12), C)
    o16 = opening_diversity(short, 16)
    assert math.isnan(o16.distinct_share) and math.isnan(o16.top_share) and o16.top is None
    assert opening_diversity(short, 8).distinct_share == pytest.approx(0.1)
    assert math.isnan(opening_diversity(np.zeros((0, 32), np.int8), 8).distinct_share)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 20), st.integers(2, 38), st.integers(0, 2**31),
       st.integers(1, 70))  # fmt: skip
def test_openings_match_python(m, length, classes, seed, sample):
    c = np.random.default_rng(seed).integers(0, classes, (m, 20)).astype(np.int8)
    o = opening_diversity(c, length, sample=sample)
    prefixes = [tuple(int(x) for x in row[:length]) for row in c]
    counts: dict[tuple[int, ...], int] = {}
    for p in prefixes:
        counts[p] = counts.get(p, 0) + 1
    best = max(counts.values())
    n = min(m, sample)
    assert o.distinct_share == pytest.approx(len(set(prefixes[:n])) / n)
    assert o.top_share == pytest.approx(best / m)
    assert o.top == min(p for p, n in counts.items() if n == best)


# ------------------------------------------------------------------ histograms
def test_intervals_hand_built():
    # C . rest D | hold hold C C | G(+19 from C? no: G4 = C4 + 7) ; then two octaves up
    mel = np.array([[C, 1, 0, D, 1, 1, C, C, G, 37, 2, 1]])
    h = interval_histogram(mel)
    # C->D +2 (across a rest), D->C −2, C->C 0, C->G +7, G->37 (+16: pooled up), 37->2 (−35)
    expected = {2: 1, -2: 1, 0: 1, 7: 1}
    for d, n in expected.items():
        assert h[d + ZERO] == n
    assert h[-1] == 1 and h[0] == 1 and h.sum() == 6
    assert INTERVAL_LABELS[ZERO] == "0" and INTERVAL_LABELS[0] == "< −12"
    assert INTERVAL_LABELS[ZERO + 12] == "+12" and INTERVAL_LABELS[-1] == "> +12"
    assert repeated_pitch_share(mel) == pytest.approx(1 / 6)


def test_intervals_never_span_two_melodies():
    # C at the end of row 0 and C at the start of row 1 are not a repeated pitch
    h = interval_histogram(np.array([[1, 1, D, C], [C, 1, 1, E]]))
    assert h.sum() == 2 and h[ZERO] == 0 and h[ZERO - 2] == 1 and h[ZERO + 4] == 1
    h2 = interval_histogram([np.array([D, C]), np.array([C]), np.array([], np.int8), [C, E]])
    assert h2.sum() == 2 and h2[ZERO] == 0


def test_no_sounding_notes():
    silent = np.array([[0, 1, 1, 0] * 8, [1] * 32])
    assert interval_histogram(silent).sum() == 0
    assert pitch_class_histogram(silent).sum() == 0
    assert onset_position_histogram(silent).sum() == 0
    assert math.isnan(repeated_pitch_share(silent))
    assert np.isnan(shares(interval_histogram(silent))).all()
    ref = _toy_reference()
    s = naturalness_stats(silent, ref)
    assert math.isnan(s.repeated_pitch_share)
    assert math.isnan(s.interval_distance) and math.isnan(s.pitch_class_distance)
    assert math.isnan(s.onset_position_distance)
    assert math.isfinite(s.ngram_log_likelihood)  # rests and holds are scored as any class
    assert s.details()["interval_shares"]["0"] is None


def test_pitch_class_and_onset_positions():
    mel = np.array([[C, 1, 1, 1, G, 1, 26, 0] + [1] * 8 + [E, 1]])
    pc = pitch_class_histogram(mel)
    assert pc[0] == 2 and pc[7] == 1 and pc[4] == 1 and pc.sum() == 4  # 26 = C5
    on = onset_position_histogram(mel)
    assert on[0] == 2 and on[4] == 1 and on[6] == 1 and on.sum() == 4  # step 16 is position 0
    assert onset_position_histogram(mel, steps_per_bar=8)[0] == 2


def _python_counts(melodies):
    iv, pc, on = np.zeros(27, int), np.zeros(12, int), np.zeros(16, int)
    for m in melodies:
        prev = None
        for t, x in enumerate(int(v) for v in m):
            if x < 2:
                continue
            pc[(x + 46) % 12] += 1
            on[t % 16] += 1
            if prev is not None:
                iv[min(max(x - prev, -13), 13) + 13] += 1
            prev = x
    return iv, pc, on


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, NUM_CLASSES - 1), max_size=40), max_size=8))
def test_counts_match_python_oracle(melodies):
    arrays = [np.array(m, dtype=np.int8) for m in melodies]
    iv, pc, on = _python_counts(arrays)
    np.testing.assert_array_equal(interval_histogram(arrays), iv)
    np.testing.assert_array_equal(pitch_class_histogram(arrays), pc)
    np.testing.assert_array_equal(onset_position_histogram(arrays), on)


def test_bad_classes_rejected():
    with pytest.raises(ValueError):
        interval_histogram(np.array([[2, 38]]))
    with pytest.raises(ValueError):
        opening_diversity(np.array([[-1] * 16]))


def test_total_variation():
    assert total_variation([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert total_variation([1, 0], [0, 5]) == pytest.approx(1.0)
    assert total_variation([1, 0], [1, 1]) == pytest.approx(0.5)
    assert math.isnan(total_variation([0, 0], [1, 1]))


# ------------------------------------------------------------------ n-gram
def _toy_reference() -> CorpusReference:
    rng = np.random.default_rng(0)
    fit = [rng.choice([C, D, E, 1, 0], size=40) for _ in range(30)]
    held = [rng.choice([C, D, E, 1, 0], size=70) for _ in range(5)]
    return CorpusReference.from_melodies(fit, held, "toy")


def test_kneser_ney_distributions_normalise():
    ref = _toy_reference()
    lm = ref.ngram
    np.testing.assert_allclose(np.exp(lm.log_p3).sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(lm.log_p2).sum(-1), 1.0, atol=1e-12)
    assert np.exp(lm.log_p1).sum() == pytest.approx(1.0)
    assert np.isfinite(lm.log_p3).all()  # unseen classes keep a positive probability
    assert all(0 < d <= 1 for d in lm.discounts.values())


def test_kneser_ney_hand_computed():
    # one melody "C D C D C": trigrams CDC x2, DCD x1; bigram types CD, DC
    lm = KneserNeyTrigram.fit([np.array([C, D, C, D, C])])
    u = 1 / NUM_CLASSES
    d3 = 1 / (1 + 2 * 1)  # D = n1/(n1 + 2 n2) with n1 = 1 (DCD), n2 = 1 (CDC)
    assert lm.discounts["trigram"] == pytest.approx(d3)
    # continuation counts N1+(•CD) = |{D}|, N1+(•DC) = |{C}|: all 1, so n2 = 0 and D = 1;
    # the same for N1+(•C) = |{D}|, N1+(•D) = |{C}|
    assert lm.discounts["continuation_bigram"] == 1.0
    assert lm.discounts["continuation_unigram"] == 1.0
    # pc1(w) = (max(N1+(•w) − 1, 0) + 1 · 2 · u) / 2 = u for every class
    # a bigram context never seen falls back to pc1
    np.testing.assert_allclose(np.exp(lm.log_p2[5]), u)
    # pc2(C | D) = (max(1 − 1, 0) + 1 · 1 · pc1(C)) / 1 = u
    # p3(C | C, D) = (max(2 − d3, 0) + d3 · 1 · pc2(C | D)) / c(CD•) = 2
    assert math.exp(lm.log_p3[C, D, C]) == pytest.approx((2 - d3 + d3 * u) / 2)
    assert math.exp(lm.log_p3[C, D, E]) == pytest.approx(d3 * u / 2)
    # an unseen trigram context falls back to the continuation bigram of its last class
    assert math.exp(lm.log_p3[E, D, C]) == pytest.approx(u)
    # the top-level unigram discounts raw counts: C 3, D 2 -> n1 = 0 -> D = 0.1 (the floor)
    assert lm.discounts["unigram"] == 0.1
    assert math.exp(lm.log_p1[C]) == pytest.approx((3 - 0.1 + 0.1 * 2 * u) / 5)


def test_log_likelihood_steps_and_mean():
    ref = _toy_reference()
    lm = ref.ngram
    comps = np.array([[C, D, E, C, 1], [0, 0, 1, D, D]])
    ll = lm.log_likelihood(comps)
    assert ll.shape == (2, 5)
    assert ll[0, 0] == lm.log_p1[C]
    assert ll[0, 1] == lm.log_p2[C, D]
    assert ll[0, 4] == lm.log_p3[E, C, 1]
    assert lm.mean_log_likelihood(comps) == pytest.approx(ll.mean())
    assert lm.mean_log_likelihood(comps[:, :1]) == pytest.approx(lm.log_p1[[C, 0]].mean())
    assert math.isnan(lm.mean_log_likelihood(np.zeros((0, 5), np.int8)))
    # the data it was fitted on scores higher than uniform noise
    noise = np.random.default_rng(1).integers(0, NUM_CLASSES, (20, 32))
    assert lm.mean_log_likelihood(ref.windows(32)) > lm.mean_log_likelihood(noise)


def test_windows_start_on_bar_lines():
    held = [np.arange(2, 38, dtype=np.int8), np.array([C] * 6, np.int8)]
    ref = CorpusReference.from_melodies([np.array([C, D])], held)
    w = ref.windows(8)
    assert w.shape == (2, 8)  # the 36-step melody gives windows at 0 and 16; the 6-step none
    starts = sorted(int(x[0]) for x in w)  # (in a fixed shuffled order)
    assert starts == [2, 18]
    np.testing.assert_array_equal(w[np.argmax(w[:, 0])], np.arange(18, 26))
    assert not w.flags.writeable  # shared by the cache
    with pytest.raises(ValueError, match="at least 1"):
        ref.windows(0)
    assert ref.windows(40).shape == (0, 40)


# ------------------------------------------------------------------ all together
def test_naturalness_stats_keys_and_edges():
    ref = _toy_reference()
    same = np.tile(np.array([C, 1, D, 1] * 8, np.int8), (20, 1))
    s = naturalness_stats(same, ref)
    sc = s.scalars()
    assert set(sc) == {"distinct_openings_16", "top_opening_share_16", "distinct_openings_8",
                       "top_opening_share_8", "repeated_pitch_share", "interval_distance",
                       "pitch_class_distance", "onset_position_distance",
                       "ngram_log_likelihood"}  # fmt: skip
    assert sc["distinct_openings_16"] == pytest.approx(1 / 20) and sc["top_opening_share_8"] == 1
    assert sc["repeated_pitch_share"] == 0.0
    assert s.details()["top_openings"]["16"] == [C, 1, D, 1] * 4
    # a batch shorter than a bar: 16-step openings undefined, everything else defined
    short = naturalness_stats(same[:, :10], ref).scalars()
    assert math.isnan(short["distinct_openings_16"])
    assert short["distinct_openings_8"] == pytest.approx(1 / 20)
    assert math.isfinite(short["ngram_log_likelihood"])
    assert math.isfinite(short["interval_distance"])
    # without a reference: distributions only
    bare = naturalness_stats(same).scalars()
    assert math.isnan(bare["ngram_log_likelihood"]) and math.isnan(bare["interval_distance"])
    # the held-out reference windows are close to the fit's histograms
    r = ref.reference_stats(32)
    assert r.interval_distance < naturalness_stats(same, ref).interval_distance


# ------------------------------------------------------------------ the bundled reference
def test_bundled_reference_uses_the_note_rnn_validation_split():
    ref = bundled_reference()
    if ref is None:
        pytest.skip("bundled corpus not installed")
    from rltuner.corpus import load_bundled

    train, valid = load_bundled().split(*NOTE_RNN_SPLIT)
    assert ref.num_fit == len(valid) and len(ref.held_out) == len(train)
    assert ref.ngram.num_steps == valid.num_steps
    assert "1,285 validation" in ref.split
    r = ref.reference_stats(32).scalars()
    # held-out corpus windows: near the fit's distributions and well above a uniform model
    assert r["interval_distance"] < 0.05 and r["onset_position_distance"] < 0.05
    assert -1.6 < r["ngram_log_likelihood"] < -1.1
    assert 0.10 < r["repeated_pitch_share"] < 0.20


def test_note_rnn_split_matches_the_bundled_checkpoint():
    from rltuner.env import load_network
    from rltuner.evaluate import bundled_note_rnn_path

    path = bundled_note_rnn_path()
    if not path.exists():
        pytest.skip("bundled Note RNN not installed")
    training = load_network(path)[1]["training"]
    assert (training["validation_fraction"], training["seed"]) == NOTE_RNN_SPLIT
    assert training["num_valid_melodies"] == 1285


def test_all_opening_prefixes_rank_in_lexicographic_order():
    from rltuner.naturalness import _prefix_ranks

    rows = np.array(list(product([0, 5, 37], repeat=7)), dtype=np.int8)
    ranks = _prefix_ranks(rows[::-1])
    assert (np.diff(ranks[::-1]) == 1).all()
