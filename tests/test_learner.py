"""Bootstrap values, exploration schedule, replay memory and the soft target update."""

import numpy as np
import pytest

from rltuner.learner import (
    Learner,
    LearnerHyper,
    ReplayMemory,
    bootstrap_value,
    linear_epsilon,
)
from rltuner.lstm_kernels import NetLayout
from rltuner.network import Network
from rltuner.policy import action_scores


def _q():
    q = np.zeros((2, 38))
    q[0, :3] = [1.0, 2.0, 0.5]
    q[1, 5] = -1.0
    return q


def test_bootstrap_q_is_max():
    v = bootstrap_value("q", _q())
    assert v.tolist() == [2.0, 0.0]
    assert bootstrap_value("pure_rl", _q()).tolist() == [2.0, 0.0]


def test_bootstrap_psi_is_logsumexp():
    q = _q()
    # row 0: log(e^1 + e^2 + e^0.5 + 35 * e^0)
    expected0 = np.log(np.e + np.e**2 + np.e**0.5 + 35)
    expected1 = np.log(37 + np.exp(-1.0))
    np.testing.assert_allclose(bootstrap_value("psi", q), [expected0, expected1], rtol=1e-12)


def test_bootstrap_g_uses_log_prior():
    q = _q()
    logits = np.zeros((2, 38))
    logits[0, 1] = np.log(3.0)  # p = 3/40 for class 1, 1/40 for the others
    # row 0: log sum_a p(a) e^{G(a)} = log((e^1 + 3 e^2 + e^0.5 + 35) / 40)
    expected0 = np.log((np.e + 3 * np.e**2 + np.e**0.5 + 35) / 40)
    expected1 = np.log((37 + np.exp(-1.0)) / 38)
    np.testing.assert_allclose(bootstrap_value("g", q, logits), [expected0, expected1], rtol=1e-12)
    # with a uniform prior G's value is Psi's minus log 38
    np.testing.assert_allclose(
        bootstrap_value("g", q, np.zeros((2, 38))),
        bootstrap_value("psi", q) - np.log(38),
        rtol=1e-12,
    )


def test_bootstrap_rejects_unknown():
    with pytest.raises(ValueError):
        bootstrap_value("sarsa", _q())


def test_action_scores_g_adds_prior_logits():
    q, r = np.ones((1, 38)), np.arange(38.0)[None]
    assert action_scores("q", q, r) is q
    assert action_scores("g", q, r)[0, 5] == 6.0


def test_linear_epsilon_schedule():
    eps = linear_epsilon(np.array([0, 250, 500, 1000]), 500, final=0.1)
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1])


def test_replay_wraps_and_samples_without_duplicates():
    mem = ReplayMemory(
        10,
        state_size=4,
        store_reward_state=False,
        stride=4,
        prime_states=np.zeros((1, 4), np.float32),
    )
    for i in range(3):
        obs = np.full(4, i, dtype=np.int64)
        st = np.full((4, 4), float(i), dtype=np.float32)
        mem.add(obs, np.full(4, -1), obs, obs.astype(np.float32), st, None)
    assert mem.size == 10 and mem.pos == 2
    # the 2 oldest rows were overwritten by the third block
    assert mem.obs.tolist() == [2, 2, 0, 0, 1, 1, 1, 1, 2, 2]
    assert mem.num_sampleable == 6  # the oldest `stride` rows (2..5) lost their predecessor
    idx = mem.sample_indices(np.random.default_rng(0), 300, 6)
    assert set(np.unique(idx)) == {6, 7, 8, 9, 0, 1}
    assert all(np.unique(r).size == 6 for r in idx)
    big = ReplayMemory(1000, 4, False, stride=8, prime_states=np.zeros((1, 4), np.float32))
    big.size = 1000
    idx = big.sample_indices(np.random.default_rng(1), 500, 32)
    assert all(np.unique(r).size == 32 for r in idx)
    counts = np.bincount(idx.ravel(), minlength=1000)
    assert (counts[big.pos : big.pos + 8] == 0).all() and (counts > 0).sum() > 900


def test_replay_reconstructs_states_before_each_transition():
    """q_state(row) is the stored state after the same composition's previous step, or the
    primed state for a composition's first step, also after the ring wraps."""
    rng = np.random.default_rng(0)
    b, s = 3, 2
    table = rng.standard_normal((5, s)).astype(np.float32)
    mem = ReplayMemory(14, s, False, stride=b, prime_states=table)
    state = table[[1, 2, 3]].copy()
    prime = np.array([1, 2, 3])
    truth = {}
    for t in range(12):
        nxt = rng.standard_normal((b, s)).astype(np.float32)
        rows = (np.arange(b) + mem.pos) % mem.capacity
        mem.add(np.zeros(b, np.int64), prime, np.zeros(b, np.int64), np.zeros(b), nxt, None)
        for k, r in enumerate(rows):
            truth[int(r)] = state[k].copy()
        state, prime = nxt, np.full(b, -1)
        if t % 4 == 3:  # compositions restart every 4 steps, from table rows 0, 4, 2
            state, prime = table[[0, 4, 2]].copy(), np.array([0, 4, 2])
    valid = mem.sample_indices(rng, 50, mem.num_sampleable)
    for r in np.unique(valid):
        np.testing.assert_array_equal(mem.q_state(np.array([r]))[0], truth[int(r)])


def test_soft_target_update_arithmetic():
    """With learning rate 0 the Q-network stays put and the target moves by eta * (theta - target)
    after every update: target_k = theta + (1 - eta)^k (target_0 - theta)."""
    lay = NetLayout((4,))
    rng = np.random.default_rng(0)
    q = Network(lay, rng.standard_normal(lay.num_params).astype(np.float32))
    learner = Learner(q, q.copy(), LearnerHyper(learning_rate=0.0, target_update_rate=0.01))
    learner.target.theta[...] = 0.0
    theta0 = q.theta.copy()
    mem = ReplayMemory(
        128,
        lay.state_size,
        False,
        stride=64,
        prime_states=np.zeros((1, lay.state_size), np.float32),
    )
    z = np.zeros(64, dtype=np.int64)
    s = np.zeros((64, lay.state_size), np.float32)
    mem.add(z, z, z, z.astype(np.float32), s, None)
    learner.update(mem, mem.sample_indices(rng, 5, 32))
    np.testing.assert_allclose(q.theta, theta0)
    np.testing.assert_allclose(learner.target.theta, theta0 * (1 - 0.99**5), rtol=1e-5, atol=1e-7)
    assert learner.adam_step[0] == 5


def test_choose_egreedy_and_boltzmann():
    lay = NetLayout((4,))
    q = Network(lay, np.zeros(lay.num_params, np.float32))
    learner = Learner(q, q.copy(), LearnerHyper())
    scores = np.zeros((4000, 38))
    scores[:, 7] = 5.0
    rng = np.random.default_rng(0)
    greedy = learner.choose(scores, rng, "egreedy", 0.0)
    assert (greedy == 7).all()
    explored = learner.choose(scores, rng, "egreedy", 1.0)
    assert 37 in explored and 0 in explored  # all 38 classes (the original never drew 37)
    soft = learner.choose(scores, rng, "boltzmann", 0.0)
    p7 = np.exp(5) / (np.exp(5) + 37)
    assert abs((soft == 7).mean() - p7) < 0.03


def test_egreedy_reports_which_rows_explored():
    """A random draw that happens to hit the argmax still counts as exploration (stochastic
    observations then play it as drawn instead of re-sampling it)."""
    scores = np.zeros((6000, 38))
    scores[:, 7] = 5.0
    actions, explored = Learner.choose_egreedy(scores, np.random.default_rng(1), 0.5)
    assert 0.45 < explored.mean() < 0.55
    assert (actions[~explored] == 7).all()
    assert (actions[explored] == 7).any()  # ~1/38 of the random draws equal the argmax
    again = Learner.choose_egreedy(scores, np.random.default_rng(1), 0.5)[0]
    np.testing.assert_array_equal(actions, again)


# ------------------------------------------------------------------ one source of V(s')
_CASES = [("q", False), ("pure_rl", False), ("psi", False), ("g", False), ("q", True),
          ("pure_rl", True), ("psi", True), ("g", True)]  # fmt: skip


def _values(seed=0, b=9):
    rng = np.random.default_rng(seed)
    qn, rl, qo = (rng.normal(0, 2, (b, 38)).astype(np.float32) for _ in range(3))
    return qn, rl, qo


@pytest.mark.parametrize(("algorithm", "double_dqn"), _CASES)
def test_numba_bootstrap_kernel_matches_the_reference(algorithm, double_dqn):
    from rltuner.lstm_kernels import ALGO_CODES, _bootstrap

    qn, rl, qo = _values()
    out = np.zeros(qn.shape[0])
    _bootstrap(ALGO_CODES[algorithm], qn, rl, out, qo, double_dqn)
    ref = bootstrap_value(algorithm, qn, rl, qo if double_dqn and algorithm != "psi" else None)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    if double_dqn and algorithm in ("q", "pure_rl"):  # the argmax of the online network
        assert not np.allclose(out, qn.max(axis=1))


@pytest.mark.parametrize(("algorithm", "double_dqn"), _CASES)
def test_torch_bootstrap_matches_the_reference(algorithm, double_dqn):
    torch = pytest.importorskip("torch")
    from rltuner.torch_backend import torch_bootstrap

    qn, rl, qo = _values(1)
    online = torch.tensor(qo) if double_dqn and algorithm != "psi" else None
    v = torch_bootstrap(algorithm, torch.tensor(qn), torch.tensor(rl), online)
    ref = bootstrap_value(algorithm, qn, rl, qo if double_dqn and algorithm != "psi" else None)
    np.testing.assert_allclose(v.numpy(), ref, rtol=1e-5)


def _update_problem(device: str, algorithm: str, double_dqn: bool):
    rng = np.random.default_rng(4)
    lay = NetLayout((8,))
    q = Network(lay, (rng.normal(0, 0.5, lay.num_params)).astype(np.float32), device)
    reward = Network(lay, (rng.normal(0, 0.5, lay.num_params)).astype(np.float32), device)
    hyper = LearnerHyper(algorithm=algorithm, discount=0.7, double_dqn=double_dqn)
    learner = Learner(q, reward, hyper, threads=1)
    # a target network that differs from the online one (else Double DQN equals plain max)
    learner.target.theta[...] += rng.normal(0, 0.3, lay.num_params).astype(np.float32)
    learner.target.sync()
    s = lay.state_size
    mem = ReplayMemory(64, s, algorithm == "g", 4, np.zeros((1, s), np.float32))
    for _ in range(12):
        mem.add(rng.integers(0, 38, 4).astype(np.int8), np.full(4, -1, np.int32),
                rng.integers(0, 38, 4).astype(np.int8), rng.normal(0, 1, 4).astype(np.float32),
                rng.normal(0, 0.5, (4, s)).astype(np.float32),
                rng.normal(0, 0.5, (4, s)).astype(np.float32))  # fmt: skip
    return learner, mem, mem.sample_indices(rng, 1, 16)


@pytest.mark.parametrize("device", ["cpu", "torch:cpu"])
@pytest.mark.parametrize(("algorithm", "double_dqn"), _CASES)
def test_update_targets_are_the_reference_bootstrap(device, algorithm, double_dqn):
    """The mean target y = r + γ V(s') of a real update (fused numba kernel, or the torch path
    of --device cuda) equals the one built from bootstrap_value and Network.step."""
    if device != "cpu":
        pytest.importorskip("torch")
    learner, mem, idx = _update_problem(device, algorithm, double_dqn)
    rows = idx[0]
    act = mem.action[rows].astype(np.int64)
    nst = mem.next_q_state[rows]
    cpu = lambda net: Network(net.layout, net.theta.copy())  # noqa: E731 -- numba reference
    qn = cpu(learner.target).step(act, nst)[0]
    rl = cpu(learner.reward_rnn).step(act, mem.next_r_state[rows] if algorithm == "g" else nst)[0]
    qo = cpu(learner.q).step(act, nst)[0] if double_dqn and algorithm != "psi" else None
    y = mem.reward[rows] + 0.7 * bootstrap_value(algorithm, qn, rl, qo)
    stats = learner.update(mem, idx)
    assert stats.target[0] == pytest.approx(float(y.mean()), rel=1e-5, abs=1e-5)
