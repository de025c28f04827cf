"""Tuning over chords: chord inputs, the environment's harmony rewards, conditioned tuning,
resume, sampling, generate/evaluate over chords, and the errors of bad chord input."""

import json

import numpy as np
import pretty_midi
import pytest

from rltuner.conditioning import (
    CHORD_INPUTS,
    chord_at,
    chord_input_rows,
    harmony_weights,
    progressions_from_json,
    progressions_to_json,
    resolve_progressions,
)
from rltuner.env import CompositionEnv, Harmony, Priming, music_theory_rewards
from rltuner.errors import RltunerError
from rltuner.harmony import (
    HARMONY_RULE_NAMES,
    HarmonyTables,
    harmony_step,
    parse_progression,
)
from rltuner.network import load_network
from rltuner.policy import Policy, load_policy, sample
from rltuner.rewards import RuleTables
from rltuner.tuner import RLTuner

FOUR = "C G Am F"


def test_chord_input_rows_are_pitch_classes_then_root():
    tables = HarmonyTables.build([parse_progression("C G7 Am C/E")], 32)
    rows = chord_input_rows(tables)
    by_symbol = {c.symbol: rows[i] for i, c in enumerate(tables.chords)}
    assert sorted(r for r in by_symbol["C"] if r >= 0) == [38 + 0, 38 + 4, 38 + 7, 50 + 0]
    assert sorted(r for r in by_symbol["G7"] if r >= 0) == [38 + 2, 38 + 5, 38 + 7, 38 + 11,
                                                             50 + 7]  # fmt: skip
    assert sorted(r for r in by_symbol["Am"] if r >= 0) == [38 + 0, 38 + 4, 38 + 9, 50 + 9]
    assert rows.shape[1] == 5 and rows.max() < 38 + CHORD_INPUTS
    # the chord at a step follows the progression, wrapping at the composition's end
    chord_of = tables.steps[[0, 0]]
    assert np.array_equal(chord_at(chord_of, np.array([0, 32])), chord_of[:, 0])
    assert np.array_equal(chord_at(chord_of, np.array([8, 31])), [chord_of[0, 8], chord_of[0, 31]])


def test_harmony_weights_defaults_rules_and_overrides():
    w = dict(zip(HARMONY_RULE_NAMES, harmony_weights({}), strict=True))
    assert w["chord_tone"] == 1 and w["neighbour_keys"] == 0
    w = dict(zip(HARMONY_RULE_NAMES, harmony_weights({"clash": 2.5}, ["neighbour_keys"]),
                 strict=True))  # fmt: skip
    assert w["clash"] == 2.5 and w["neighbour_keys"] == 1


def test_progressions_round_trip_through_json():
    progs = [parse_progression(FOUR), parse_progression("Dm7 G7 | Cmaj7", chord_steps=8)]
    back = progressions_from_json(progressions_to_json(progs), "x")
    assert back == progs
    with pytest.raises(RltunerError, match="bad chord progressions"):
        progressions_from_json([{"chords": ["C"]}], "x")


def _env(net, harmony, batch=6, seed=0):
    tables = RuleTables.from_key(num_notes=32)
    rng = np.random.default_rng(seed)
    return CompositionEnv(net, tables, batch, Priming("random_note", net), rng, harmony=harmony)


def test_env_adds_weighted_harmony_rules_as_scored_afterwards(tiny_note_rnn):
    """Per step the env adds the weighted harmony rules to r_MT, exactly as
    music_theory_rewards scores the finished compositions; several progressions are drawn per
    composition, and the conditioning rows follow each composition's chords."""
    net, _ = load_network(tiny_note_rnn)
    tables = HarmonyTables.build([parse_progression(FOUR), parse_progression("Am F C G")], 32)
    weights = np.array([1.0, 2.0, 0.5, 1.5, 0.0])
    h = Harmony(tables, weights, conditioned=True)
    env = _env(net, h)
    rng = np.random.default_rng(1)
    music = np.zeros((6, 32))
    harmony_vals = np.zeros((6, 32, 5))
    chord_of = env.chord_of.copy()
    first_obs = env.obs.copy()
    for t in range(32):
        chord, rows = env.cond
        assert np.array_equal(chord, chord_of[:, t]) and rows is h.rows
        action = rng.integers(0, 38, 6)
        expect = harmony_step(env.compositions, env.beat, action, chord_of, tables,
                              env.tables.key)  # fmt: skip
        out = env.step(action, env.q_state)
        music[:, t] = out.music_theory
        harmony_vals[:, t] = out.harmony_values
        np.testing.assert_array_equal(out.harmony_values, expect)
    finished = out.finished
    assert finished.shape == (6, 32)
    assert set(np.unique(env.progression)) <= {0, 1}
    again = music_theory_rewards(finished, first_obs, env.tables, None, (), h, chord_of)
    np.testing.assert_allclose(again, music, atol=1e-12)
    plain = music_theory_rewards(finished, first_obs, env.tables)
    np.testing.assert_allclose(music - plain, harmony_vals @ weights, atol=1e-12)
    assert np.abs(harmony_vals).sum() > 0


def test_untrained_conditioned_policy_samples_as_the_plain_one(tiny_note_rnn):
    """The new chord rows start at zero: before tuning, the conditioned network samples
    exactly the Note RNN's melodies, over any chords."""
    net, _ = load_network(tiny_note_rnn)
    wide = net.with_cond_inputs(CHORD_INPUTS)
    progs = [parse_progression(FOUR)]
    a = sample(Policy(net), 40, 32, seed=5)
    b = sample(Policy(wide, progressions=tuple(progs)), 40, 32, seed=5)
    assert np.array_equal(a.compositions, b.compositions)
    assert b.chord_of.shape == (40, 32)
    with pytest.raises(RltunerError, match="give a progression"):
        sample(Policy(wide), 4, 32)


@pytest.fixture(scope="module")
def chord_run(tmp_path_factory, trained_tiny_note_rnn):
    """A short conditioned Q run over two progressions (finished, with its outputs)."""
    from rltuner.tuner import TunerConfig

    run = tmp_path_factory.mktemp("chords") / "run"
    cfg = TunerConfig(note_rnn=str(trained_tiny_note_rnn), steps=6400, eval_every=3200,
                      exploration_period=3200, memory_size=4000, num_envs=16,
                      eval_compositions=16, final_compositions=64, num_samples=2, seed=2,
                      report=False, chords=[FOUR, "Am F C G"])  # fmt: skip
    tuner = RLTuner(cfg)
    tuner.train(run, progress=False)
    return run, tuner


def test_conditioned_run_outputs(chord_run):
    run, tuner = chord_run
    stats = json.loads((run / "stats.json").read_text())
    h, base = stats["harmony"], stats["harmony_note_rnn"]
    assert set(h) >= {"strong_beat_chord_tones", "clashes", "cadence"}
    assert 0 <= h["strong_beat_chord_tones"] <= 1 and base is not None
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert "eval/strong_beat_chord_tones" in rows[-1]
    # the tuned network reads chords: trained chord rows are no longer zero
    wx = tuner.learner.q.layout.views(tuner.learner.q.theta)["l0.Wx"]
    assert wx.shape[0] == 38 + CHORD_INPUTS and np.abs(wx[38:]).sum() > 0
    # samples carry a chord track
    pm = pretty_midi.PrettyMIDI(str(run / "samples" / "sample_000.mid"))
    assert len(pm.instruments) == 2
    # the tuned model loads with its progressions and plays a given one differently
    loaded = load_policy(run)
    assert loaded.policy.network.cond_inputs == CHORD_INPUTS
    assert [p.symbols() for p in loaded.policy.progressions] == [FOUR, "Am F C G"]
    a = loaded.policy.sample(64, 32, seed=1, progressions=[parse_progression(FOUR)])
    b = loaded.policy.sample(64, 32, seed=1, progressions=[parse_progression("F C G Am")])
    assert not np.array_equal(a.compositions, b.compositions)


def test_conditioned_run_resumes_exactly(trained_tiny_note_rnn, tmp_path):
    from rltuner.tuner import TunerConfig

    cfg = dict(note_rnn=str(trained_tiny_note_rnn), steps=3200, eval_every=1600,
               exploration_period=1600, memory_size=2000, num_envs=16, eval_compositions=8,
               final_compositions=16, num_samples=1, seed=4, report=False,
               chords=[FOUR, "C F G C"], algorithm="g")  # fmt: skip
    full = RLTuner(TunerConfig(**cfg))
    full.train(tmp_path / "full", progress=False)
    part = RLTuner(TunerConfig(**cfg))
    part.train(tmp_path / "part", progress=False, stop_after=1600)
    resumed = RLTuner.load(tmp_path / "part")
    assert resumed.progressions == full.progressions
    resumed.train(tmp_path / "part", progress=False)
    np.testing.assert_array_equal(resumed.learner.q.theta, full.learner.q.theta)


def test_chords_file_and_midi_progressions(tmp_path):
    f = tmp_path / "progs.txt"
    f.write_text("# two progressions\nC G Am F\nDm G C C\n")
    progs = resolve_progressions(["F C G C"], str(f), 8, 32)
    assert [p.symbols() for p in progs] == ["F C G C", "C G Am F", "Dm G C C"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"C G \xff\xfe Am\n")
    with pytest.raises(RltunerError, match="bad.txt"):
        resolve_progressions([], str(bad), 8, 32)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--chords", "C G Xm7b F"], "Xm7b"),
        (["--chords", "  "], "--chords"),
        (["--chords", "C G Am F Dm Em G C C"], "longer"),
        (["--chords", FOUR, "--algorithm", "kl_pg"], "kl_pg"),
        (["--weight", "chord_tone=2"], "need chords"),
    ],
)
def test_bad_chord_input_is_one_line(cli, small_tune_args, tmp_path, args, needle):
    cli(*small_tune_args(), "--out", tmp_path / "r", *args).assert_clear_error(needle)


def test_bad_chords_file_is_one_line(cli, small_tune_args, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("C G Am F \xe9\n".encode("latin-1"))
    cli(*small_tune_args(), "--out", tmp_path / "r", "--chords-file", bad).assert_clear_error(
        "latin1.txt"
    )


def test_generate_and_evaluate_over_chords(cli, chord_run, tmp_path):
    run, _ = chord_run
    out = tmp_path / "gen"
    r = cli("generate", "--model", run, "--out", out, "-n", "2", "--chords", "F C G Am",
            "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr
    pm = pretty_midi.PrettyMIDI(str(out / "melody_000.mid"))
    assert len(pm.instruments) == 2
    ev = tmp_path / "ev"
    r = cli("evaluate", run, "--compositions", "200", "--out", ev, "--no-plot", "--quiet")
    assert r.returncode == 0, r.stderr
    data = json.loads((ev / "evaluation.json").read_text())
    # the base Note RNN is added as the baseline, over the same chords
    assert len(data["models"]) == 2
    for m in data["models"]:
        assert m["extra"]["harmony_strong_beat_chord_tones"] is not None
    assert "Strong-beat notes that are chord tones" in r.stdout
    cli("evaluate", "bundled", "--chords", "C H", "--quiet").assert_clear_error("H")


def test_torch_path_matches_cpu_kernels_over_chords(tiny_note_rnn):
    """--device cuda's code (torch, here on the CPU) trains a conditioned network as the fused
    kernels do."""
    pytest.importorskip("torch")
    from rltuner.tuner import TunerConfig

    cfg = dict(note_rnn=str(tiny_note_rnn), steps=800, eval_every=800,
               exploration_period=800, memory_size=2000, num_envs=16, eval_compositions=8,
               seed=1, report=False, chords=[FOUR, "Am F C G"])  # fmt: skip
    a = RLTuner(TunerConfig(**cfg))
    a.train(None, progress=False)
    b = RLTuner(TunerConfig(**cfg, device="torch:cpu"))
    b.train(None, progress=False)
    assert a.learner.adam_step[0] == b.learner.adam_step[0] > 100
    wx = a.learner.q.layout.views(a.learner.q.theta)["l0.Wx"]
    assert np.abs(wx[38:]).sum() > 0  # the chord rows did learn
    np.testing.assert_allclose(a.learner.q.theta, b.learner.q.theta, atol=2e-3)


def test_report_of_a_chord_run_shows_harmony(chord_run, tmp_path):
    from rltuner.report import write_report

    run, _ = chord_run
    html = write_report(run, out=tmp_path / "r.html", n_samples=2, compositions=100,
                        synth="builtin").read_text()  # fmt: skip
    assert "Strong-beat notes that are chord tones" in html
    assert "C G Am F" in html and "Am F C G" in html


def test_chords_and_harmony_weights_from_a_config_file(cli, small_tune_args, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('chords = "C G Am F"\nchord_steps = 8\n[weights]\nchord_tone = 2.5\n')
    r = cli(*small_tune_args(), "--config", cfg, "--chords", "Am F C G", "--print-config")
    assert r.returncode == 0, r.stderr
    assert '"C G Am F"' in r.stdout and '"Am F C G"' in r.stdout and "chord_tone = 2.5" in r.stdout
    r = cli(*small_tune_args(steps=1600), "--config", cfg, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    tuner = RLTuner.load(tmp_path / "run")
    w = dict(zip(HARMONY_RULE_NAMES, tuner.harmony.weights, strict=True))
    assert w["chord_tone"] == 2.5 and w["clash"] == 1.0
    assert [p.symbols() for p in tuner.progressions] == ["C G Am F"]
