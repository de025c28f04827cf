"""The KL-regularised policy-gradient tuner (rltuner.policy_gradient, --algorithm kl_pg)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rltuner.checkpoint import load_arrays  # noqa: E402
from rltuner.errors import RltunerError  # noqa: E402
from rltuner.evaluate import EvalModel, evaluate_model  # noqa: E402
from rltuner.policy_gradient import adapt_kl_coef, gae, kl_rewards, ppo_loss  # noqa: E402
from rltuner.tuner import RLTuner, TunerConfig  # noqa: E402


def _cfg(path, **kw):
    base = dict(
        algorithm="kl_pg",
        note_rnn=str(path),
        steps=4 * 16 * 32,
        pg_batch=16,
        eval_every=16 * 32,
        eval_compositions=16,
        final_compositions=64,
        num_samples=2,
        seed=3,
        report=False,
    )
    base.update(kw)
    return TunerConfig(**base)


# ------------------------------------------------------------------ the loss, by hand
def test_kl_rewards_by_hand():
    mt = np.array([[1.0, -2.0]])
    log_pi = np.array([[-1.0, -0.5]])
    log_p = np.array([[-2.0, -0.5]])
    # c*r_MT + alpha*log p - beta*(log pi - log p), c=2, beta=3, alpha=0.5
    expected = np.array([[2.0 - 1.0 - 3.0 * 1.0, -4.0 - 0.25 - 0.0]])
    np.testing.assert_allclose(kl_rewards(mt, log_pi, log_p, 2.0, 3.0, 0.5), expected)


def test_gae_by_hand():
    rewards = np.array([[1.0, 2.0], [0.0, 1.0]])
    values = np.array([[0.5, 1.0], [1.0, 0.0]])
    adv, ret = gae(rewards, values, discount=1.0, lam=0.5)
    # row 0: delta_1 = 2 + 0 - 1 = 1 -> A_1 = 1; delta_0 = 1 + 1 - 0.5 = 1.5 -> A_0 = 1.5 + 0.5
    # row 1: delta_1 = 1 - 0 = 1 -> A_1 = 1; delta_0 = 0 + 0 - 1 = -1 -> A_0 = -1 + 0.5
    np.testing.assert_allclose(adv, [[2.0, 1.0], [-0.5, 1.0]])
    np.testing.assert_allclose(ret, adv + values)
    adv_g, _ = gae(rewards, values, discount=0.5, lam=1.0)
    # row 0: A_1 = 2 - 1 = 1; delta_0 = 1 + 0.5*1 - 0.5 = 1 -> A_0 = 1 + 0.5*1 = 1.5
    np.testing.assert_allclose(adv_g[0], [1.5, 1.0])


def test_ppo_loss_by_hand():
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 0.5, 1.1]))  # ratios 1.5, 0.5, 1.1
    adv = torch.tensor([1.0, -1.0, 2.0])
    values = torch.tensor([0.0, 1.0, 2.0])
    returns = torch.tensor([1.0, 1.0, 0.0])
    loss, st = ppo_loss(new, old, adv, values, returns, clip_range=0.2, value_coef=0.5)
    # min(1.5*1, 1.2*1) = 1.2; min(0.5*-1, 0.8*-1) = -0.8; min(2.2, 2.2) = 2.2
    policy = -(1.2 - 0.8 + 2.2) / 3
    value = (1.0 + 0.0 + 4.0) / 3
    assert st["policy_loss"] == pytest.approx(policy, rel=1e-6)
    assert st["value_loss"] == pytest.approx(value, rel=1e-6)
    assert float(loss) == pytest.approx(policy + 0.5 * value, abs=1e-6)
    assert st["clip_fraction"] == pytest.approx(2 / 3)
    # the two entries where the clipped term is the minimum carry no gradient; the third
    # does: d/d(log ratio) of -(ratio * A)/3 = -1.1 * 2 / 3
    new_g = new.clone().requires_grad_(True)
    ppo_loss(new_g, old, adv, values, returns, 0.2, 0.5)[0].backward()
    g = new_g.grad.numpy()
    np.testing.assert_array_equal(g[:2], [0.0, 0.0])
    assert g[2] == pytest.approx(-2.2 / 3, rel=1e-6)


def test_adaptive_kl_coef_moves_toward_the_target():
    assert adapt_kl_coef(2.0, kl=1.0, target=0.5, rate=0.5) > 2.0  # too far: penalise more
    assert adapt_kl_coef(2.0, kl=0.1, target=0.5, rate=0.5) < 2.0  # too close: relax
    assert adapt_kl_coef(2.0, kl=9.0, target=0.0, rate=0.5) == 2.0  # target 0: fixed beta
    # a toy system whose KL falls as 1/beta: the controller settles where KL = target
    beta = 1.0
    for _ in range(300):
        beta = adapt_kl_coef(beta, kl=1.0 / beta, target=0.25, rate=0.5)
    assert beta == pytest.approx(4.0, rel=0.05)


# ------------------------------------------------------------------ the tuner
@pytest.mark.parametrize("constraints", ["none", "table1"])
def test_resume_gives_identical_weights(tiny_note_rnn, tmp_path, constraints):
    full = RLTuner(_cfg(tiny_note_rnn, constraints=constraints))
    full.train(tmp_path / "full", progress=False)
    if constraints != "none":  # the multipliers moved and are part of the exact state
        assert full.learner.multipliers.any()
    part = RLTuner(_cfg(tiny_note_rnn, constraints=constraints))
    part.train(tmp_path / "part", progress=False, stop_after=2 * 16 * 32)
    assert part.step == 2 * 16 * 32
    resumed = RLTuner.load(tmp_path / "part")
    assert resumed.step == part.step
    np.testing.assert_array_equal(resumed.learner.multipliers, part.learner.multipliers)
    resumed.train(tmp_path / "part", progress=False)
    np.testing.assert_array_equal(resumed.learner.q.theta, full.learner.q.theta)
    a, b = resumed.learner.state_dict(), full.learner.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    untimed = lambda h: [{k: v for k, v in r.items() if k != "charts/steps_per_second"} for r in h]  # noqa: E731
    assert untimed(resumed.history) == untimed(full.history)
    stats = "stats.json"
    assert (tmp_path / "part" / stats).read_text() == (tmp_path / "full" / stats).read_text()


def test_a_run_saved_before_bounds_existed_resumes_without_them(tiny_note_rnn, tmp_path):
    """kl_pg checkpoints written before the bounds were added hold no multipliers and no
    ``constraints`` setting; they resume as runs without bounds (not with today's default)."""
    from rltuner.checkpoint import save_arrays

    full = RLTuner(_cfg(tiny_note_rnn, constraints="none"))
    full.train(tmp_path / "full", progress=False)
    part = RLTuner(_cfg(tiny_note_rnn, constraints="none"))
    part.train(tmp_path / "old", progress=False, stop_after=2 * 16 * 32)
    state = tmp_path / "old" / "checkpoint" / "state.safetensors"
    arrays, meta = load_arrays(state)
    old = {k: v for k, v in arrays.items() if "constraint_multipliers" not in k}
    assert len(old) == len(arrays) - 1
    for key in ("constraints", "bounds", "constraint_rate", "constraint_cap"):
        del meta["config"][key]
    save_arrays(state, old, meta)
    resumed = RLTuner.load(tmp_path / "old")
    assert resumed.config.constraints == "none" and resumed.learner.hyper.constraints == ()
    resumed.train(tmp_path / "old", progress=False)
    np.testing.assert_array_equal(resumed.learner.q.theta, full.learner.q.theta)


def test_sigkill_then_resume_is_exact(tiny_note_rnn, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    flags = ["--algorithm", "kl_pg", "--note-rnn", str(tiny_note_rnn), "--steps", "8192",
             "--pg-batch", "16", "--eval-every", "512", "--eval-compositions", "8",
             "--final-compositions", "32", "--num-samples", "1", "--no-report",
             "--quiet"]  # fmt: skip
    cli = [sys.executable, "-m", "rltuner.cli", "tune"]
    killed, full = tmp_path / "killed", tmp_path / "full"
    proc = subprocess.Popen([*cli, *flags, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    state = killed / "checkpoint" / "state.safetensors"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 0 < load_arrays(state)[1]["step"] < 8192
    r = subprocess.run([*cli, "--resume", str(killed), "--quiet"], env=env, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cli, *flags, "--out", str(full)], env=env, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    a, _ = load_arrays(full / "tuned.safetensors")
    b, _ = load_arrays(killed / "tuned.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_same_seed_same_weights(tiny_note_rnn):
    a, b = RLTuner(_cfg(tiny_note_rnn, steps=1024)), RLTuner(_cfg(tiny_note_rnn, steps=1024))
    a.train(None, progress=False)
    b.train(None, progress=False)
    np.testing.assert_array_equal(a.learner.q.theta, b.learner.q.theta)
    c = RLTuner(_cfg(tiny_note_rnn, steps=1024, seed=4))
    c.train(None, progress=False)
    assert not np.array_equal(a.learner.q.theta, c.learner.q.theta)


def test_tuning_raises_music_theory_reward_with_bounded_kl(trained_tiny_note_rnn):
    """60 PPO iterations raise the mean r_MT of sampled compositions far above the Note
    RNN's while the KL to it stays bounded (measured with 100 iterations and beta = 2: r_MT
    about -37 -> +1.4 per step, KL 0.78/step)."""
    cfg = _cfg(trained_tiny_note_rnn, steps=60 * 64 * 32, pg_batch=64, eval_every=10**9,
               kl_coef=3.0, log_p_bonus=0.0)  # fmt: skip
    tuner = RLTuner(cfg)
    before = tuner.rollout(1000, 5, network=tuner.reward_rnn)
    tuner.train(None, progress=False)
    after = tuner.rollout(1000, 5)
    model = EvalModel("t", tuner.note_rnn_path, tuner.learner.q, "kl_pg", tuner.reward_rnn)
    ev, _ = evaluate_model(model, 1000, seed=1, workers=1)
    print(before.music_theory.mean(), after.music_theory.mean(), ev.extra["kl_to_note_rnn"])
    assert after.music_theory.mean() > before.music_theory.mean() + 15
    assert ev.extra["kl_to_note_rnn"] < 1.0


def test_a_bound_raises_its_statistic(trained_tiny_note_rnn):
    """A bound the tuner does not meet on its own gets a price that rises until the policy
    moves: 'at least 70% of the notes in motifs' (seed 3, 40 batches: 57.8% of the notes of
    1,000 compositions without the bound, 68.8% with it, multiplier 3.7)."""
    from rltuner.metrics import composition_stats

    share = {}
    for bounds in ({}, {"in_motif": 0.7}):
        cfg = _cfg(trained_tiny_note_rnn, steps=40 * 64 * 32, pg_batch=64, eval_every=10**9,
                   constraints="none", bounds=bounds)  # fmt: skip
        tuner = RLTuner(cfg)
        tuner.train(None, progress=False)
        comps = tuner.rollout(1000, 5).compositions
        share[bool(bounds)] = composition_stats(comps).table1()["Notes in motif"]
        if bounds:
            (c,) = tuner.learner.hyper.constraints
            assert c.label == "in_motif/min" and c.bound == 0.7
            assert tuner.learner.multipliers[0] > 0
    print(share)
    assert share[True] > share[False] + 0.06


def test_outputs_and_logs(tiny_note_rnn, tmp_path):
    tuner = RLTuner(_cfg(tiny_note_rnn, tensorboard=True))
    result = tuner.train(tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "metrics.csv", "tuned.safetensors",
                 "stats.json", "plots", "samples", "tensorboard"):  # fmt: skip
        assert (run / name).exists(), name
    row = tuner.history[-1]
    for key in ("train/kl_per_step", "charts/kl_coef", "losses/policy_loss",
                "losses/value_loss", "eval/music_theory_reward"):  # fmt: skip
        assert np.isfinite(row[key]), key
    assert result["stats"]["compositions"] == 64
    plots = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert plots == ["constraint_prices.png", "evaluation_rewards.png", "kl_control.png",
                     "ppo_losses.png", "training_rewards.png"]  # fmt: skip
    for key in ("constraints/lambda/starting_with_tonic/min",
                "constraints/slack/starting_with_tonic/min"):  # fmt: skip
        assert np.isfinite(row[key]), key
    # the tuned policy is a Note RNN checkpoint: evaluation loads it as a kl_pg model
    from rltuner.evaluate import load_model

    assert load_model(run / "tuned.safetensors").algorithm == "kl_pg"


def test_bad_pg_config_is_a_clear_error(tiny_note_rnn):
    with pytest.raises(RltunerError, match="pg[-_]batch"):
        _cfg(tiny_note_rnn, pg_batch=0)
    with pytest.raises(RltunerError, match="kl[-_]coef"):
        _cfg(tiny_note_rnn, kl_coef=-1.0)
    with pytest.raises(RltunerError, match="pg[-_]discount"):
        _cfg(tiny_note_rnn, pg_discount=1.5)


def test_without_torch_one_clear_line(tiny_note_rnn, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(RltunerError, match=r"kl_pg needs PyTorch.*rltuner\[torch\]"):
        RLTuner(_cfg(tiny_note_rnn))
