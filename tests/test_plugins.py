"""User reward rules: loading, the example rule, integration into the env and the tuner."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rltuner.encoding import Key
from rltuner.env import CompositionEnv, Priming, load_network
from rltuner.errors import RltunerError
from rltuner.plugins import UserRule, load_rule, load_rules
from rltuner.rewards import RuleTables
from rltuner.tuner import RLTuner, TunerConfig

RULE_FILE = Path(__file__).resolve().parents[1] / "examples" / "rules" / "neighbour_keys.py"
SPEC = f"{RULE_FILE}:neighbour_keys"


def _cls(name: str) -> list[int]:
    """Classes of a pitch-class name in 48..83, e.g. 'F#' -> [8, 20, 32]."""
    pc = {"C": 0, "C#": 1, "D": 2, "F": 5, "F#": 6, "G": 7, "Bb": 10}[name]
    return [p - 46 for p in range(48, 84) if p % 12 == pc]


def test_neighbour_keys_example_rule():
    rule = load_rule(SPEC).fn
    actions = np.arange(38)
    comps, beat = np.zeros((38, 32), np.int8), np.zeros(38, np.int64)
    c = rule(comps, beat, actions, Key.parse("C major"))
    assert sorted(np.flatnonzero(c)) == sorted(_cls("F#") + _cls("Bb"))  # from G and F major
    assert set(c[c != 0]) == {0.5} and c[0] == c[1] == 0
    g = rule(comps, beat, actions, Key.parse("G major"))
    assert sorted(np.flatnonzero(g)) == sorted(_cls("C#") + _cls("F"))  # from D and C major
    d = rule(comps, beat, actions, Key.parse("D minor"))  # A minor adds B, G minor adds Eb
    assert sorted((np.flatnonzero(d) + 46) % 12) == sorted([11] * 3 + [3] * 3)


def test_rule_is_called_with_the_state_before_the_action(tiny_note_rnn):
    net, _ = load_network(tiny_note_rnn)
    seen = []

    def spy(compositions, beat, action, key):
        assert not compositions.flags.writeable
        seen.append((compositions.copy(), beat.copy(), action.copy(), key))
        return np.where(action == 14, 2.0, 0.0)

    spy_rule = UserRule("spy", spy, 3.0, "test")
    env = CompositionEnv(net, RuleTables.from_key(Key.parse("G major"), 8), 2,
                         Priming("random_note", net), np.random.default_rng(0),
                         reward_scaler=0.5, user_rules=[spy_rule])  # fmt: skip
    plain = CompositionEnv(net, RuleTables.from_key(Key.parse("G major"), 8), 2,
                           Priming("random_note", net), np.random.default_rng(0),
                           reward_scaler=0.5)  # fmt: skip
    for t, a in enumerate([[14, 3], [5, 14], [14, 14]]):
        out = env.step(np.array(a), env.q_state)
        ref = plain.step(np.array(a), plain.q_state)
        comps, beat, action, key = seen[-1]
        assert (beat == t).all() and (comps[:, t:] == 0).all() and key == Key.parse("G major")
        bonus = 3.0 * np.where(np.array(a) == 14, 2.0, 0.0)
        np.testing.assert_allclose(out.user_values[:, 0], bonus / 3.0)
        np.testing.assert_allclose(out.music_theory, ref.music_theory + bonus)
        np.testing.assert_allclose(out.reward, ref.reward + 0.5 * bonus)
    assert seen[-1][0][:, :2].tolist() == [[14, 5], [3, 14]]


def test_user_rules_count_only_in_r_mt_modes(tiny_note_rnn):
    net, _ = load_network(tiny_note_rnn)
    rule = UserRule("one", lambda c, b, a, k: np.ones(a.shape[0]), 1.0, "test")
    env = CompositionEnv(net, RuleTables.from_key(num_notes=8), 3, Priming("random_note", net),
                         np.random.default_rng(0), reward_mode="key_and_tonic",
                         user_rules=[rule])  # fmt: skip
    plain = CompositionEnv(net, RuleTables.from_key(num_notes=8), 3, Priming("random_note", net),
                           np.random.default_rng(0), reward_mode="key_and_tonic")  # fmt: skip
    a = np.array([14, 15, 0])
    np.testing.assert_array_equal(env.step(a, env.q_state).reward,
                                  plain.step(a, plain.q_state).reward)  # fmt: skip


def test_builtin_rule_off_with_weight_zero(tiny_note_rnn):
    net, _ = load_network(tiny_note_rnn)
    kw = dict(reward_mode="music_theory_only", reward_scaler=1.0)
    on = CompositionEnv(net, RuleTables.from_key(num_notes=8), 4, Priming("random_note", net),
                        np.random.default_rng(0), **kw)  # fmt: skip
    off = CompositionEnv(net, RuleTables.from_key(num_notes=8), 4, Priming("random_note", net),
                         np.random.default_rng(0), weights={"autocorrelation": 0.0},
                         **kw)  # fmt: skip
    for a in ([14, 2, 30, 0], [20, 3, 31, 1]):
        o1, o2 = on.step(np.array(a), on.q_state), off.step(np.array(a), off.q_state)
        ac = o1.rules.values[:, 3]
        np.testing.assert_allclose(o2.reward, o1.reward - ac)
    assert (ac != 0).any()


def test_bad_rules_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\n"
                   "def wrong_shape(c, b, a, k):\n    return np.zeros(3)\n"
                   "def boom(c, b, a, k):\n    raise KeyError('x')\n"
                   "NOT_A_FUNCTION = 3\n")  # fmt: skip
    with pytest.raises(RltunerError, match="no such file"):
        load_rule(f"{tmp_path / 'missing.py'}:f")
    with pytest.raises(RltunerError, match="defines no function 'NOT_A_FUNCTION'"):
        load_rule(f"{bad}:NOT_A_FUNCTION")
    with pytest.raises(RltunerError, match="built-in rule"):
        load_rule(f"{bad}:key")
    with pytest.raises(RltunerError, match="unknown rule 'nonexistent'"):
        load_rule("nonexistent")
    with pytest.raises(RltunerError, match="named 'boom'"):
        load_rules([f"{bad}:boom", f"{bad}:boom"])
    from rltuner.plugins import evaluate_user_rules

    args = (np.zeros((2, 4), np.int8), np.zeros(2, np.int64), np.zeros(2, np.int64), Key())
    with pytest.raises(RltunerError, match="'wrong_shape' returned shape"):
        evaluate_user_rules([load_rule(f"{bad}:wrong_shape")], *args)
    with pytest.raises(RltunerError, match="'boom'.*failed: KeyError"):
        evaluate_user_rules([load_rule(f"{bad}:boom")], *args)


def test_entry_point_rules(monkeypatch):
    ep = importlib.metadata.EntryPoint(
        name="neighbours", value="neighbour_keys:neighbour_keys", group="rltuner.rules"
    )
    monkeypatch.syspath_prepend(str(RULE_FILE.parent))
    real = importlib.metadata.entry_points

    def fake(**kw):
        if kw.get("group") == "rltuner.rules":
            return importlib.metadata.EntryPoints([ep])
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    (rule,) = load_rules(["neighbours"])
    assert rule.name == "neighbours" and rule.weight == 1.0
    (rule,) = load_rules([], {"neighbours": 0.25, "autocorrelation": 0.0})  # a weight enables it
    assert rule.weight == 0.25
    TunerConfig(weights={"neighbours": 1.0})  # known name: no error


def _tune_args(tiny, out, *extra):
    return [sys.executable, "-m", "rltuner.cli", "tune", "--note-rnn", str(tiny), "--steps",
            "640", "--eval-every", "320", "--num-envs", "16", "--memory-size", "1000",
            "--eval-compositions", "8", "--final-compositions", "16", "--num-samples", "1",
            "--quiet", "--out", str(out), *extra]  # fmt: skip


def test_cli_rule_weights_config_and_resume(tiny_note_rnn, tmp_path):
    no_report = ["--no-report"]
    run = tmp_path / "run"
    r = subprocess.run(_tune_args(tiny_note_rnn, run, "--rule", SPEC, "--weight",
                                  "neighbour_keys=2", "--weight", "autocorrelation=0",
                                  "--print-config"),
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (
        f'rules = [\n    "{SPEC}",\n]' in r.stdout
        or f'rules = [ "{SPEC}" ]' in r.stdout
        or SPEC in r.stdout
    )
    assert "neighbour_keys = 2.0" in r.stdout and "autocorrelation = 0.0" in r.stdout
    r = subprocess.run(_tune_args(tiny_note_rnn, run, "--rule", SPEC, "--weight",
                                  "neighbour_keys=2", *no_report),
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    import tomllib

    cfg = tomllib.loads((run / "config.toml").read_text())
    assert cfg["rules"] == [SPEC] and cfg["weights"] == {"neighbour_keys": 2.0}
    # rules are never loaded from a checkpoint: --resume without --rule is refused
    t = RLTuner(TunerConfig(note_rnn=str(tiny_note_rnn), steps=640, eval_every=320,
                            num_envs=16, memory_size=1000, eval_compositions=8,
                            rules=[SPEC], weights={"neighbour_keys": 2.0}))  # fmt: skip
    t.train(tmp_path / "part", progress=False, stop_after=320)
    with pytest.raises(RltunerError, match="never loaded from a checkpoint.*--rule"):
        RLTuner.load(tmp_path / "part")
    resumed = RLTuner.load(tmp_path / "part", {"rules": [SPEC]})
    assert [u.name for u in resumed.user_rules] == ["neighbour_keys"]
    assert resumed.user_rules[0].weight == 2.0
