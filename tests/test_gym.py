"""The Gymnasium environments: API conformance, observation/reward semantics, seeding."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

import rltuner.gym as rgym  # noqa: E402
from rltuner.encoding import Key  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _make(tiny, **kw):
    return gym.make("rltuner/Melody-v0", note_rnn=str(tiny), **kw)


def test_passes_check_env(tiny_note_rnn):
    from gymnasium.utils.env_checker import check_env

    env = _make(tiny_note_rnn, num_notes=16)
    check_env(env.unwrapped)
    assert env.action_space == gym.spaces.Discrete(38)
    assert env.observation_space.shape == (18,)


def test_episode_observations_and_rewards(tiny_note_rnn):
    env = _make(tiny_note_rnn, num_notes=8, reward_scaler=0.5, render_mode="ansi").unwrapped
    obs, info = env.reset(seed=3)
    n = 8
    assert (obs[:n] == rgym.SENTINEL).all() and obs[n + 1] == 0 and 0 <= obs[n] < 38
    actions = [14, 14, 16, 1, 0, 18, 19, 14]
    for t, a in enumerate(actions):
        obs, r, terminated, truncated, info = env.step(a)
        assert obs[: t + 1].tolist() == actions[: t + 1]
        assert (obs[t + 1 : n] == rgym.SENTINEL).all()
        assert obs[n] == a and obs[n + 1] == t + 1
        assert r == pytest.approx(info["log_p"] + 0.5 * info["music_theory"])
        assert info["log_p"] < 0
        assert terminated == (t == n - 1) and not truncated
    assert set(info["rules"]) >= {"key", "tonic", "unique_extremes"}
    assert env.render().split() == ["C4", "C4", "D4", "-", "off", "E4", "F4", "C4"]
    with pytest.raises(gym.error.ResetNeeded):
        env.step(3)


def test_same_seed_same_episode(tiny_note_rnn):
    def run(seed):
        env = _make(tiny_note_rnn, num_notes=16)
        obs, _ = env.reset(seed=seed)
        rewards = []
        for a in np.random.default_rng(1).integers(0, 38, 16):
            obs, r, *_ = env.step(int(a))
            rewards.append(r)
        return obs, rewards

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert a[1] != c[1]  # another seed primes with another note


def test_key_and_user_rules_reach_the_gym_reward(tiny_note_rnn):
    rule = f"{EXAMPLES / 'rules' / 'neighbour_keys.py'}:neighbour_keys"
    env = _make(tiny_note_rnn, key="G major", rules=[rule], weights={"neighbour_keys": 2.0})
    env.reset(seed=0)
    _, _, _, _, info = env.step(Key.parse("G major").tonic_class + 6)  # C#: in D major only
    assert info["rules"]["key"] == -1.0 and info["rules"]["neighbour_keys"] == 0.5
    _, _, _, _, info = env.step(int(np.flatnonzero(Key.parse("G major").in_key_mask)[5]))
    assert info["rules"]["key"] == 0.0 and info["rules"]["neighbour_keys"] == 0.0


def test_vector_env_matches_the_single_env(tiny_note_rnn):
    venv = gym.make_vec("rltuner/Melody-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        note_rnn=str(tiny_note_rnn), num_notes=8)  # fmt: skip
    assert isinstance(venv.unwrapped, rgym.MelodyVectorEnv)
    single = rgym.MelodyVectorEnv(1, note_rnn=str(tiny_note_rnn), num_notes=8)
    env = _make(tiny_note_rnn, num_notes=8)
    obs_v, _ = single.reset(seed=11)
    obs_s, _ = env.reset(seed=11)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    for a in [5, 9, 1, 0, 12, 14, 14, 20]:
        ov, rv, tv, _, iv = single.step(np.array([a]))
        os_, rs, ts, _, _ = env.step(a)
        assert rv[0] == pytest.approx(rs)
    assert tv[0] and ts
    np.testing.assert_array_equal(iv["final_obs"][0], os_)
    assert ov[0, -1] == 0  # already reset (same-step autoreset)

    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 10)
    for t in range(8):
        obs, r, term, trunc, info = venv.step(venv.action_space.sample())
        assert r.shape == (3,) and term.all() == (t == 7) and not trunc.any()
    assert info["_final_obs"].all() and (obs[:, 8 + 1] == 0).all()


def test_sb3_example_trains_and_writes_midi(tiny_note_rnn, tmp_path):
    pytest.importorskip("stable_baselines3", reason="optional extra rltuner[sb3] not installed")
    out = tmp_path / "sb3"
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "sb3_train.py"), "--note-rnn", str(tiny_note_rnn),
         "--steps", "600", "--melodies", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    from rltuner.midi_io import read_midi

    mids = sorted(out.glob("melody_*.mid"))
    assert len(mids) == 2 and (out / "model.zip").exists()
    for m in mids:  # playable files (possibly too short for the corpus filters)
        try:
            read_midi(m, min_bars=0, min_unique_pitches=0)
        except Exception as e:  # a melody of only rests/holds has no notes
            assert "no melody" in str(e) or "no notes" in str(e)
