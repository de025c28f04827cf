"""Evaluation at scale (rltuner.evaluate): sampling, the extra statistics, Markdown/JSON/CSV
output and the `rltuner evaluate` command."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rltuner.cli import main
from rltuner.encoding import NUM_CLASSES
from rltuner.env import Network, load_network, log_softmax
from rltuner.errors import RltunerError
from rltuner.evaluate import (
    EXTRA_ROWS,
    EvalModel,
    distinct_share,
    evaluate_model,
    evaluate_models,
    event_shares,
    kl_divergence,
    load_model,
    pitch_class_histogram,
    rollout,
    sample_trace,
    total_variation,
)
from rltuner.lstm_kernels import NetLayout
from rltuner.metrics import INTERVAL_NAMES, TABLE1_ROWS, composition_stats


def make_tuned(tmp: Path, base: Path, algorithm: str, noise: float = 0.3) -> Path:
    """A run folder with ``tuned.safetensors``: the base Note RNN with perturbed weights,
    saved by RLTuner (so its metadata names the algorithm and the base model)."""
    from rltuner.tuner import RLTuner, TunerConfig

    tuner = RLTuner(TunerConfig(algorithm=algorithm, note_rnn=str(base), steps=100))
    q = tuner.q_network
    q.theta += np.random.default_rng(3).normal(0, noise, q.theta.shape).astype(np.float32)
    run = tmp / f"run_{algorithm}"
    run.mkdir()
    tuner.save(run / "tuned.safetensors")
    return run


def bias_network(bias: dict[int, float], hidden: int = 4) -> Network:
    """A network whose output ignores its input: all weights 0, output bias as given."""
    layout = NetLayout((hidden,))
    theta = np.zeros(layout.num_params, dtype=np.float32)
    for c, v in bias.items():
        theta[layout.ometa[1] + c] = v
    return Network(layout, theta)


# ------------------------------------------------------------------ pure statistics
def test_kl_hand_made_cases():
    uniform = np.zeros((1, NUM_CLASSES))
    assert kl_divergence(uniform, uniform)[0] == pytest.approx(0.0, abs=1e-12)
    point = np.full((1, NUM_CLASSES), -1e9)
    point[0, 5] = 0.0  # policy: always class 5
    assert kl_divergence(point, uniform)[0] == pytest.approx(math.log(38))
    half = np.full((1, NUM_CLASSES), -1e9)
    half[0, [2, 3]] = 0.0  # policy: 1/2 on two classes, prior uniform -> log 19
    assert kl_divergence(half, uniform)[0] == pytest.approx(math.log(19))
    # shift invariance and asymmetry
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 38)), rng.normal(size=(3, 38))
    np.testing.assert_allclose(kl_divergence(a + 7.0, b - 2.0), kl_divergence(a, b))
    assert not np.allclose(kl_divergence(a, b), kl_divergence(b, a))


def test_distinct_share():
    assert distinct_share(np.array([[1, 2], [1, 2], [3, 4]])) == pytest.approx(2 / 3)
    assert distinct_share(np.array([[5, 5, 5]])) == 1.0
    assert distinct_share(np.array([[1, 2], [2, 1]])) == 1.0  # order matters
    assert math.isnan(distinct_share(np.zeros((0, 4), dtype=np.int8)))


def test_pitch_class_histogram_counts_onsets_only():
    # 14 = C4, 16 = D4, 26 = C5, 37 = B5; holds (1) and rests (0) are not notes
    h = pitch_class_histogram(np.array([[14, 1, 1, 0, 16, 26, 1, 37]]))
    expected = np.zeros(12, dtype=int)
    expected[[0, 2, 11]] = [2, 1, 1]
    np.testing.assert_array_equal(h, expected)
    # a list of melodies of different lengths sums the same way
    h2 = pitch_class_histogram([np.array([14, 1]), np.array([0, 16, 26, 37])])
    np.testing.assert_array_equal(h2, expected)


def test_total_variation():
    assert total_variation([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert total_variation([1, 0], [0, 5]) == pytest.approx(1.0)
    assert total_variation([1, 0], [1, 1]) == pytest.approx(0.5)
    assert math.isnan(total_variation([0, 0], [1, 1]))


def test_event_shares():
    s = event_shares(np.array([[2, 1, 0, 1], [0, 0, 3, 4]]))
    assert s["notes_per_composition"] == pytest.approx(1.5)
    assert s["rest_share"] == pytest.approx(3 / 8)
    assert s["hold_share"] == pytest.approx(2 / 8)


# ------------------------------------------------------------------ sampling
def test_rollout_deterministic_and_thread_independent(tiny_note_rnn):
    m = load_model(tiny_note_rnn)
    a = rollout(m, 700, seed=4, num_notes=16, batch=256, workers=1)
    b = rollout(m, 700, seed=4, num_notes=16, batch=256, workers=2)
    c = rollout(m, 700, seed=5, num_notes=16, batch=256, workers=1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.compositions, c.compositions)
    assert a.compositions.shape == (700, 16) and a.compositions.dtype == np.int8
    assert a.compositions.min() >= 0 and a.compositions.max() < NUM_CLASSES


def test_sampling_follows_the_policy_and_g_adds_reward_logits():
    policy = bias_network({7: 40.0})
    prior = bias_network({7: -30.0, 9: 20.0})
    q = EvalModel("q", Path("q"), policy, "q", prior, Path("prior"))
    g = EvalModel("g", Path("g"), policy, "g", prior, Path("prior"))
    assert (rollout(q, 50, num_notes=8).compositions == 7).all()  # softmax of Q alone: 40 vs 0
    # G acts on G + Reward-RNN logits: class 7 scores 40 - 30 = 10, class 9 scores 0 + 20
    assert (rollout(g, 50, num_notes=8).compositions == 9).all()


@pytest.mark.parametrize("algorithm", ["note_rnn", "q", "g"])
def test_log_p_and_kl_match_a_step_by_step_replay(tiny_note_rnn, tmp_path, algorithm):
    """The compiled rollout's log p(a|s) and KL equal those recomputed with Network.step and
    the pure functions along the same trajectories."""
    if algorithm == "note_rnn":
        m = load_model(tiny_note_rnn)
    else:
        m = load_model(make_tuned(tmp_path, tiny_note_rnn, algorithm))
    n, steps = 40, 12
    ro = rollout(m, n, seed=2, num_notes=steps, batch=64)
    first = np.random.default_rng([2, 0]).integers(0, NUM_CLASSES, size=n)
    reward = m.reward_rnn or m.network
    st, rs, obs = m.network.zero_state(n), reward.zero_state(n), first
    for t in range(steps):
        q, st = m.network.step(obs, st)
        rl, rs = reward.step(obs, rs)
        policy = q + rl if algorithm == "g" else q
        a = ro.compositions[:, t].astype(np.int64)
        np.testing.assert_allclose(ro.log_p[:, t], log_softmax(rl)[np.arange(n), a], atol=2e-5)
        np.testing.assert_allclose(ro.kl[:, t], kl_divergence(policy, rl), atol=2e-5)
        obs = a
    if algorithm == "note_rnn":
        assert (ro.kl == 0).all()
    else:
        assert ro.kl.mean() > 1e-3


def test_sample_trace(tiny_note_rnn):
    melody, probs = sample_trace(load_model(tiny_note_rnn), 20, seed=1)
    assert melody.shape == (20,) and probs.shape == (20, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


# ------------------------------------------------------------------ models
def test_load_model_kinds(tiny_note_rnn, tmp_path):
    m = load_model(tiny_note_rnn)
    assert m.algorithm == "note_rnn" and m.reward_rnn is None and m.base is m
    run = make_tuned(tmp_path, tiny_note_rnn, "psi")
    t = load_model(run)  # a run directory
    assert t.algorithm == "psi" and t.label == "Ψ" and t.name == "run_psi"
    assert t.reward_rnn_path == tiny_note_rnn
    np.testing.assert_array_equal(t.base.network.theta, load_network(tiny_note_rnn)[0].theta)
    named = load_model(f"mine={run / 'tuned.safetensors'}")
    assert named.name == "mine"
    with pytest.raises(RltunerError, match="no such model"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(RltunerError, match="holds no model"):
        load_model(tmp_path)


def test_tuned_model_without_its_base_uses_the_embedded_copy(tiny_note_rnn, tmp_path):
    """Never the bundled Note RNN in place of a missing base: the tuned file carries its own."""
    import shutil

    base = tmp_path / "base.safetensors"
    shutil.copy(tiny_note_rnn, base)
    run = make_tuned(tmp_path, base, "q")
    base.unlink()
    m = load_model(run)
    np.testing.assert_array_equal(m.reward_rnn.theta, load_network(tiny_note_rnn)[0].theta)
    assert m.reward_rnn_path == base  # named by where it came from


# ------------------------------------------------------------------ results and outputs
@pytest.fixture(scope="module")
def comparison(tiny_note_rnn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    return evaluate_models([str(tiny_note_rnn), str(make_tuned(tmp, tiny_note_rnn, "g"))],
                           compositions=300, seed=1, num_notes=16)  # fmt: skip


def test_statistics_equal_composition_stats_of_the_samples(tiny_note_rnn):
    m = load_model(tiny_note_rnn)
    ev, ro = evaluate_model(m, 300, seed=3, num_notes=16)
    assert ev.stats == composition_stats(ro.compositions)
    assert ev.extra["mean_log_p"] == pytest.approx(float(ro.log_p.mean()), rel=1e-6)
    assert ev.extra["kl_to_note_rnn"] == 0.0
    assert set(ev.extra) == set(EXTRA_ROWS)


def test_markdown(comparison):
    md = comparison.to_markdown()
    for row in TABLE1_ROWS:
        assert f"| {row} |" in md
    assert "Paper: Note RNN" in md and "| 63.3% |" in md and "Paper: Ψ" in md
    assert "in-key thirds" in md  # the quirk fix is stated
    assert "log p(a\\|s)" in md  # a pipe inside a cell is escaped
    assert " ± " in md
    header = next(line for line in md.splitlines() if line.startswith("| Metric"))
    assert "(G)" in header and "tiny" in header
    widths = {line.count(" | ") for line in md.splitlines() if line.startswith("| Notes")}
    assert len(widths) == 1  # every Table-1 row has all columns


def test_json_round_trip_and_no_nan(comparison):
    text = comparison.to_json()

    def no_nan(c):
        raise AssertionError(f"non-JSON constant {c}")

    d = json.loads(text, parse_constant=no_nan)
    assert d["compositions"] == 300 and d["in_key_preferred_counts_thirds"] is True
    assert [m["algorithm"] for m in d["models"]] == ["note_rnn", "g"]
    assert set(d["models"][0]["table1"]) == set(TABLE1_ROWS)
    assert set(d["models"][0]["intervals"]) == set(INTERVAL_NAMES)
    assert d["paper"]["Notes in motif"]["Q"] == pytest.approx(0.757)
    again = type(comparison).from_dict(d)
    assert again.models[1].stats == comparison.models[1].stats


def test_csv(comparison):
    rows = list(csv.reader(io.StringIO(comparison.to_csv())))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["section", "metric"] and header[-1] == "paper G"
    assert len(body) == len(TABLE1_ROWS) + len(EXTRA_ROWS) + len(INTERVAL_NAMES)
    assert all(len(r) == len(header) for r in body)
    motif = next(r for r in body if r[1] == "Notes in motif")
    assert float(motif[2]) == pytest.approx(comparison.models[0].table1()["Notes in motif"])
    assert float(motif[3]) > 0  # its standard error


def test_naturalness_rows_and_corpus_reference(comparison):
    from rltuner.naturalness import bundled_reference

    m = comparison.models[0]
    for k in ("distinct_openings_16", "distinct_openings_8", "top_opening_share_8",
              "repeated_pitch_share"):  # fmt: skip
        assert 0.0 <= m.extra[k] <= 1.0
    assert len(m.naturalness["top_openings"]["16"]) == 16
    assert len(m.naturalness["onset_position_shares"]) == 16
    md = comparison.to_markdown()
    assert "| Distinct 8-step openings, of the first 2,000 |" in md
    assert "Most common first bar" in md
    d = comparison.to_dict()
    assert d["models"][0]["naturalness"] == m.naturalness
    again = type(comparison).from_dict(json.loads(comparison.to_json()))
    assert again.models[0].naturalness["top_openings"] == m.naturalness["top_openings"]
    rows = list(csv.reader(io.StringIO(comparison.to_csv())))
    ngram = next(r for r in rows if r[1] == EXTRA_ROWS["ngram_log_likelihood"][0])
    ref_col = rows[0].index("corpus reference")
    if bundled_reference() is None:
        assert comparison.reference is None and ngram[ref_col] == ""
        return
    # the corpus column: held-out 16-step windows, scored like the samples
    ref = comparison.reference
    assert ref["windows"] == bundled_reference().windows(16).shape[0]
    head = next(line for line in md.splitlines() if line.endswith("| Corpus (held-out windows) |"))
    row = next(line for line in md.splitlines() if line.startswith("| Distinct 8-step"))
    assert row.count(" | ") == head.count(" | ")  # every model and the corpus have a cell
    assert float(ngram[ref_col]) == pytest.approx(ref["extra"]["ngram_log_likelihood"])
    assert -1.6 < ref["extra"]["ngram_log_likelihood"] < -1.0
    assert m.extra["ngram_log_likelihood"] < ref["extra"]["ngram_log_likelihood"]
    assert d["corpus_reference"]["split"].startswith("fit on the 1,285 validation melodies")
    assert again.reference["windows"] == ref["windows"]


def test_write(comparison, tmp_path):
    paths = comparison.write(tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == [
        "evaluation.csv", "evaluation.json", "evaluation.md"]  # fmt: skip


# ------------------------------------------------------------------ CLI
def test_cli_evaluate_end_to_end(tiny_note_rnn, tmp_path, capsys):
    run = make_tuned(tmp_path, tiny_note_rnn, "q")
    out = tmp_path / "eval"
    rc = main(["evaluate", str(tiny_note_rnn), f"tuned={run}", "--compositions", "200",
               "--seed", "3", "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Notes excessively repeated" in printed and "tuned (Q)" in printed
    d = json.loads((out / "evaluation.json").read_text())
    assert [m["compositions"] for m in d["models"]] == [200, 200]
    assert (out / "evaluation.md").exists() and (out / "evaluation.csv").exists()
    assert (out / "comparison.png").stat().st_size > 1000
    assert (out / "distributions.png").stat().st_size > 1000


def test_cli_evaluate_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.safetensors")]) == 2
    assert "no such model" in capsys.readouterr().err
    (tmp_path / "bad.safetensors").write_text("not a checkpoint")
    assert main(["evaluate", str(tmp_path / "bad.safetensors"), "--compositions", "5"]) == 2


def test_rows_matching_paper_uses_printed_precision():
    from rltuner.evaluate import PAPER_TABLE1, rows_matching_paper

    paper_q = {row: vals[1][0] for row, vals in PAPER_TABLE1.items()}
    assert all(rows_matching_paper(paper_q).values())
    worse = dict(paper_q)
    worse["Notes excessively repeated"] = 0.0003  # 0.03% prints as 0.0%: a match
    worse["Mean autocorrelation, lag 1"] = 0.114  # |.114| -> .11: a match
    worse["Mean autocorrelation, lag 2"] = -0.04  # |-.04| > .03
    worse["Notes in motif"] = 0.7564  # 75.6% < 75.7%
    worse["Compositions with unique min note"] = 0.5186  # 51.86% -> 51.9%: a match
    got = rows_matching_paper(worse)
    assert sum(got.values()) == 9
    assert not got["Mean autocorrelation, lag 2"] and not got["Notes in motif"]
    worse["Notes excessively repeated"] = 0.0006  # 0.06% -> 0.1%
    assert not rows_matching_paper(worse)["Notes excessively repeated"]
    # the Ψ column has its own numbers
    assert not rows_matching_paper(paper_q, "Ψ")["Compositions with unique min note"]
