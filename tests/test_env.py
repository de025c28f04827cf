"""The batched environment against the one-at-a-time reference rules."""

import numpy as np

from rltuner.env import CompositionEnv, Priming, load_network, log_softmax, prime_states
from rltuner.rewards import RuleTables, reference_step


def test_env_rewards_match_reference(tiny_note_rnn):
    net, _ = load_network(tiny_note_rnn)
    rng = np.random.default_rng(0)
    tables = RuleTables.from_key(num_notes=16)
    env = CompositionEnv(
        net,
        tables,
        6,
        Priming("random_note", net),
        rng,
        reward_mode="music_theory_all",
        reward_scaler=0.5,
    )
    comps = [[] for _ in range(6)]
    leaps = [(0, -1, 0)] * 6
    for t in range(16):
        logits = env.reward_logits.copy()
        obs = env.obs.copy()
        action = rng.integers(0, 38, 6)
        _, q_next = net.step(env.obs, env.q_state)
        out = env.step(action, q_next)
        lp = log_softmax(logits)[np.arange(6), action]
        np.testing.assert_allclose(out.log_p, lp)
        for i in range(6):
            values, _, leaps[i] = reference_step(
                comps[i], int(action[i]), t, leaps[i], num_notes=16, obs=int(obs[i])
            )
            mt = sum(
                values[k]
                for k in (
                    "key",
                    "tonic",
                    "repetition",
                    "autocorrelation",
                    "motif",
                    "repeated_motif",
                    "preferred_intervals",
                    "leap",
                    "unique_extremes",
                )
            )
            assert abs(out.music_theory[i] - mt) < 1e-9
            assert abs(out.reward[i] - (lp[i] + 0.5 * mt)) < 1e-9
            comps[i].append(int(action[i]))
    assert out.done.all()
    assert out.finished.tolist() == comps
    assert (env.beat == 0).all()


def test_random_note_priming_draws_all_classes(tiny_note_rnn):
    net, _ = load_network(tiny_note_rnn)
    state, obs, row = Priming("random_note", net).draw(5000, np.random.default_rng(0))
    assert (row == 0).all()
    assert not state.any()
    assert set(obs.tolist()) == set(range(38))


def test_midi_priming_uses_state_at_melody_end(tiny_note_rnn):
    net, _ = load_network(tiny_note_rnn)
    melodies = [np.array([14, 1, 16, 18]), np.array([20, 0, 21])]
    states, notes = prime_states(net, melodies)
    st = net.zero_state(1)
    for c in melodies[1]:
        logits, st = net.step(np.array([c]), st)
    np.testing.assert_allclose(states[1], st[0], atol=1e-6)
    assert notes[1] == logits.argmax()
    pr = Priming("single_midi", net, melodies)
    s, o, row = pr.draw(3, np.random.default_rng(0))
    assert (row == 0).all() and np.allclose(pr.table[0], states[0])
    assert (o == notes[0]).all() and np.allclose(s, states[0])
