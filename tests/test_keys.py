"""Any key: tonic and mode are config values honoured by rules, statistics, generation and data."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rltuner.encoding import Key
from rltuner.metrics import composition_stats
from rltuner.tuner import RLTuner, TunerConfig

FIXTURES = Path(__file__).parent / "fixtures"


def _cfg(tiny, key, **kw):
    base = dict(note_rnn=str(tiny), key=key, steps=3200, eval_every=1600, exploration_period=1600,
                memory_size=4000, num_envs=16, eval_compositions=8, final_compositions=200,
                num_samples=2, seed=4, reward_scaler=1.0, report=False)  # fmt: skip
    base.update(kw)
    return TunerConfig(**base)


@pytest.mark.parametrize("key", ["G major", "D minor"])
def test_tune_end_to_end_in_key(tiny_note_rnn, tmp_path, key):
    k = Key.parse(key)
    tuner = RLTuner(_cfg(tiny_note_rnn, key))
    tuner.train(tmp_path, progress=False)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["compositions"] == 200
    # the final statistics are those of the configured key: recompute them by hand
    again = tuner.evaluate(200, seed=9)
    ro = tuner.rollout(200, 9)
    not_in_key = (~k.in_key_mask[ro.compositions.astype(np.int64)]).mean()
    assert again["table1"]["Notes not in key"] == pytest.approx(not_in_key)
    c_major = composition_stats(ro.compositions, Key.parse("C major")).table1()
    assert c_major["Notes not in key"] != pytest.approx(not_in_key)
    starts = (ro.compositions[:, 0] == k.tonic_class).mean()
    assert again["table1"]["Compositions starting with tonic"] == pytest.approx(starts)
    # the reward rules used the key: the env's key rule scores exactly the notes outside it
    env = tuner._make_env(38, np.random.default_rng(0))
    out = env.step(np.arange(38), env.q_state)
    np.testing.assert_array_equal(out.rules.values[:, 0], np.where(k.in_key_mask, 0.0, -1.0))
    assert out.rules.values[k.tonic_class, 1] == 3.0  # tonic rule on beat 0
    # generation comes from the tuned policy and is written as MIDI
    assert len(list((tmp_path / "samples").glob("*.mid"))) == 2
    assert tuner.generate(4).shape == (4, 32)


def test_tuning_in_g_major_moves_notes_into_g_major(tiny_note_rnn):
    """Key-only reward: a short run cuts the share of notes outside G major (not C major)."""
    k = Key.parse("G major")
    tuner = RLTuner(_cfg(tiny_note_rnn, "G major", steps=6400, reward_mode="key_and_tonic",
                         exploration_period=3200))  # fmt: skip
    before = tuner.rollout(300, 2).compositions.astype(np.int64)
    tuner.train(None, progress=False)
    after = tuner.rollout(300, 2).compositions.astype(np.int64)
    assert (~k.in_key_mask[after]).mean() < (~k.in_key_mask[before]).mean()


@pytest.mark.parametrize(
    ("target", "source", "shift"),
    [
        ("C major", "D major", -2),
        ("G major", "D major", 5),
        ("D minor", "D major", 3),
        ("E minor", "D major", 5),
    ],  # fmt: skip
)
def test_data_transposition_to_any_key(target, source, shift):
    from rltuner.midi_io import load_pretty_midi, melodies_from_track, tracks_from_pretty_midi

    (track,) = tracks_from_pretty_midi(load_pretty_midi(FIXTURES / "key_stated_d_major.mid"))
    (m,) = melodies_from_track(track, target_key=Key.parse(target)).melodies
    assert m.source_key == Key.parse(source)
    assert (m.transposition - shift) % 12 == 0
    pitches = np.asarray(m.melody[m.melody >= 2], dtype=np.int64) + 46
    major_target = Key.parse(target)
    if major_target.mode == "minor":  # a major melody goes to the relative major
        major_target = Key((major_target.tonic + 3) % 12, "major")
    assert set(pitches % 12) <= set(major_target.scale_pitch_classes)


def test_data_build_cli_key(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "tune.mid").write_bytes((FIXTURES / "key_unstated_g_major.mid").read_bytes())
    out = tmp_path / "d.npz"
    r = subprocess.run([sys.executable, "-m", "rltuner.cli", "data", "build", str(src), "--out",
                        str(out), "--key", "A major", "--quiet"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    from rltuner.corpus import Dataset

    d = Dataset.load(out)
    assert d.keys == ["G major"] and d.transpositions[0] % 12 == 2
    pcs = set((d.melodies[0][d.melodies[0] >= 2].astype(int) + 46) % 12)
    assert pcs <= set(Key.parse("A major").scale_pitch_classes)
