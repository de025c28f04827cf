"""The fused numba kernels against torch autograd and the Note RNN itself."""

import numpy as np
import pytest
import torch

from rltuner.env import Network
from rltuner.lstm_kernels import NetLayout, SplitLayout, forward, ftanh_array, update_many
from rltuner.note_rnn import NoteRNN, NoteRNNConfig


def _torch_views(theta, lay):
    d = {}
    for l, (inp, h, owx, owh, ob, _) in enumerate(lay.lmeta):
        g = 4 * int(h)
        d[f"l{l}.Wx"] = theta[owx:owh].view(int(inp), g)
        d[f"l{l}.Wh"] = theta[owh:ob].view(int(h), g)
        d[f"l{l}.b"] = theta[ob : ob + g]
    o = lay.ometa
    d["Wo"] = theta[o[0] : o[1]].view(int(o[2]), 38)
    d["bo"] = theta[o[1] : o[1] + 38]
    return d


def _torch_forward(theta, lay, obs, state, cond=None):
    d = _torch_views(theta, lay)
    x = None
    for l, (_, h, _, _, _, so) in enumerate(lay.lmeta):
        h = int(h)
        hp, cp = state[:, so : so + h], state[:, so + h : so + 2 * h]
        z = hp @ d[f"l{l}.Wh"] + d[f"l{l}.b"]
        z = z + (d[f"l{l}.Wx"][obs] if l == 0 else x @ d[f"l{l}.Wx"])
        if l == 0 and cond is not None:  # a chord's rows: a multi-hot part of the input
            chord, rows = cond
            for j in range(z.shape[0]):
                if chord[j] >= 0:
                    for r in rows[chord[j]].tolist():
                        if r >= 0:
                            z[j] = z[j] + d["l0.Wx"][r]
        i, f, g, o = z.split(h, 1)
        c = torch.sigmoid(f) * cp + torch.sigmoid(i) * torch.tanh(g)
        x = torch.sigmoid(o) * torch.tanh(c)
    return x @ d["Wo"] + d["bo"]


def test_fast_tanh_accuracy():
    x = np.linspace(-20, 20, 200_001).astype(np.float32)
    assert np.abs(ftanh_array(x) - np.tanh(x.astype(np.float64))).max() < 5e-7


@pytest.mark.parametrize("sizes", [(16,), (12, 8)])
def test_network_step_matches_note_rnn(sizes):
    torch.manual_seed(0)
    model = NoteRNN(NoteRNNConfig(sizes))
    arrays = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    net = Network.from_state_dict(arrays, sizes)
    rng = np.random.default_rng(1)
    obs = rng.integers(0, 38, (5, 7))
    state_np = net.zero_state(5)
    state_t = model.initial_state(5)
    for t in range(7):
        logits_np, state_np = net.step(obs[:, t], state_np)
        logits_t, state_t = model.step(torch.tensor(obs[:, t]), state_t)
        np.testing.assert_allclose(logits_np, logits_t.detach().numpy(), atol=2e-5)


def test_pack_unpack_roundtrip():
    lay = NetLayout((6, 5))
    theta = np.random.default_rng(0).standard_normal(lay.num_params).astype(np.float32)
    layers, w, b = lay.unpack(theta)
    assert np.array_equal(lay.pack(layers, w, b), theta)
    assert lay.clip_groups[-1, 1] == lay.num_params


@pytest.mark.parametrize(
    ("sizes", "algo", "threads", "k"),
    [
        ((8,), 0, 1, 0),
        ((8, 6), 1, 2, 0),
        ((5, 7), 2, 1, 0),
        ((8,), 0, 2, 0),
        ((1,), 1, 2, 0),
        ((7, 1, 3), 0, 2, 0),
        ((8,), 0, 1, 3),  # chord-conditioned networks (K conditioning rows per input)
        ((6, 5), 2, 2, 4),
        ((5,), 1, 2, 2),
    ],
)
def test_update_matches_torch_autograd(sizes, algo, threads, k):
    """Three minibatch updates (target, MSE, per-tensor clipping, Adam, soft update) equal
    the same computed with torch autograd + torch.optim.Adam."""
    rng = np.random.default_rng(0)
    lay = NetLayout(sizes, cond_inputs=5 if k else 0)
    p, s = lay.num_params, lay.state_size
    theta = (rng.standard_normal(p) * 0.3).astype(np.float32)
    target = (theta + rng.standard_normal(p).astype(np.float32) * 0.1).astype(np.float32)
    rtheta = (rng.standard_normal(p) * 0.3).astype(np.float32)
    m = 50
    obs = rng.integers(0, 38, m).astype(np.int8)
    act = rng.integers(0, 38, m).astype(np.int8)
    rew = rng.standard_normal(m).astype(np.float32)
    qs, nqs, nrs = (rng.standard_normal((m, s)).astype(np.float32) for _ in range(3))
    idx = rng.integers(0, m, (3, 16)).astype(np.int64)
    # three chords of k conditioning rows in 38..42 (-1 = none; chords share rows), and the
    # chord of each transition (-1 = none)
    rows = np.where(rng.random((3, k)) < 0.2, -1, rng.integers(38, 43, (3, k)))
    cond = rng.integers(-1, 3, m).astype(np.int8)
    next_cond = rng.integers(-1, 3, m).astype(np.int8)
    rt = torch.tensor(rows)
    ct = [(torch.tensor(c.astype(np.int64)), rt) for c in (cond, next_cond)]

    def pick(which, ii):
        return (ct[which][0][ii], rt) if k else None

    th = torch.tensor(theta, requires_grad=True)
    tg = torch.tensor(target)
    opt = torch.optim.Adam([th], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for u in range(3):
        ii = torch.tensor(idx[u])
        o = torch.tensor(obs.astype(np.int64))[ii]
        a = torch.tensor(act.astype(np.int64))[ii]
        with torch.no_grad():
            qn = _torch_forward(tg, lay, a, torch.tensor(nqs)[ii], pick(1, ii))
            if algo == 0:
                v = qn.max(1).values
            elif algo == 1:
                v = torch.logsumexp(qn, 1)
            else:
                rl = _torch_forward(torch.tensor(rtheta), lay, a, torch.tensor(nrs)[ii],
                                    pick(1, ii))  # fmt: skip
                v = torch.logsumexp(qn + torch.log_softmax(rl, 1), 1)
            y = torch.tensor(rew)[ii] + 0.5 * v
        q = _torch_forward(th, lay, o, torch.tensor(qs)[ii], pick(0, ii))
        loss = ((q.gather(1, a[:, None])[:, 0] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            for a0, b0 in lay.clip_groups:
                n = th.grad[a0:b0].norm()
                if n > 5:
                    th.grad[a0:b0] *= 5 / n
        opt.step()
        with torch.no_grad():
            tg += 0.01 * (th - tg)

    mm, vv, st = np.zeros(p, np.float32), np.zeros(p, np.float32), np.zeros(1, np.int64)
    out_loss, out_t = np.zeros(3), np.zeros(3)
    # every row's before-state comes from the priming table (prime[r] = r)
    prime = np.arange(m, dtype=np.int32)
    update_many(theta, target, mm, vv, st, rtheta, lay, obs, act, rew, prime, qs, 1, nqs, nrs, idx,
                algo, False, 0.5, 1e-3, 0.9, 0.999, 1e-8, 5.0, 0.01, out_loss, out_t,
                threads=threads, cond=cond if k else None,
                next_cond=next_cond if k else None, rows=rows if k else None)  # fmt: skip
    np.testing.assert_allclose(out_loss, losses, rtol=1e-4)
    np.testing.assert_allclose(theta, th.detach().numpy(), atol=2e-6)
    np.testing.assert_allclose(target, tg.numpy(), atol=2e-6)
    assert st[0] == 3


def _random_update_problem(sizes, seed, m=300, scale=1.0):
    rng = np.random.default_rng(seed)
    lay = NetLayout(sizes)
    p, s = lay.num_params, lay.state_size
    theta = (rng.standard_normal(p) * 0.3).astype(np.float32)
    arrays = {
        "theta": theta,
        "target": theta * np.float32(0.9),
        "m": np.zeros(p, np.float32),
        "v": np.zeros(p, np.float32),
        "adam_step": np.zeros(1, np.int64),
        "rtheta": (rng.standard_normal(p) * 0.3).astype(np.float32),
    }
    replay = {
        "obs": rng.integers(0, 38, m).astype(np.int8),
        "act": rng.integers(0, 38, m).astype(np.int8),
        "rew": (rng.standard_normal(m) * scale).astype(np.float32),
        "prime": np.where(rng.random(m) < 0.2, 0, -1).astype(np.int32),
        "prime_states": rng.standard_normal((1, s)).astype(np.float32),
        "stride": 8,
        "next_qstate": rng.standard_normal((m, s)).astype(np.float32),
        "next_rstate": rng.standard_normal((m, s)).astype(np.float32),
    }
    idx = rng.integers(8, m, (20, 16)).astype(np.int64)
    return lay, arrays, replay, idx


@pytest.mark.parametrize("sizes", [(12,), (9, 14), (1,), (3, 1)])
@pytest.mark.parametrize("algo", [0, 1, 2])
@pytest.mark.parametrize("double_dqn", [False, True])
def test_update_same_on_one_and_two_threads(sizes, algo, double_dqn):
    """The two halves of each update give bit-identical weights, moments and losses whether
    they run on one thread or two (with large rewards, so clipping is active too)."""
    results = []
    for threads in (1, 2):
        lay, a, r, idx = _random_update_problem(sizes, 5, scale=30.0)
        loss, tgt = np.zeros(len(idx)), np.zeros(len(idx))
        update_many(*a.values(), lay, *r.values(), idx, algo, double_dqn, 0.5, 1e-3, 0.9, 0.999,
                    1e-8, 5.0, 0.01, loss, tgt, threads=threads)  # fmt: skip
        results.append((a["theta"], a["target"], a["m"], a["v"], loss, tgt))
    for x, y in zip(*results, strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("sizes", [(100,), (9, 14), (7,), (1,), (3, 1, 2)])
def test_split_layout_is_a_permutation(sizes):
    lay = NetLayout(sizes)
    sl = SplitLayout(lay)
    assert np.array_equal(np.sort(sl.perm), np.arange(lay.num_params))
    theta = np.random.default_rng(0).standard_normal(lay.num_params).astype(np.float32)
    split = sl.split(theta)
    assert np.array_equal(split, theta[sl.perm])
    back = np.empty_like(theta)
    assert np.array_equal(sl.merge(split, back), theta)
    # the parts' blocks tile the parameters; each clip group covers the same elements as
    # NetLayout's group
    covered = np.zeros(lay.num_params, np.int64)
    for _, s, e, _ in sl.ranges:
        covered[s:e] += 1
    assert (covered == 1).all()
    for g, (s, e) in enumerate(lay.clip_groups):
        mine = np.concatenate([sl.perm[a:b] for _, a, b, gg in sl.ranges if gg == g])
        assert np.array_equal(np.sort(mine), np.arange(s, e))


def test_forward_kernel_matches_torch_two_layers():
    rng = np.random.default_rng(3)
    lay = NetLayout((9, 4))
    theta = (rng.standard_normal(lay.num_params) * 0.5).astype(np.float32)
    obs = rng.integers(0, 38, 6)
    state = rng.standard_normal((6, lay.state_size)).astype(np.float32)
    new, q = np.empty_like(state), np.empty((6, 38), np.float32)
    z, zx = np.empty(6 * 36, np.float32), np.empty(6 * 36, np.float32)
    forward(theta, lay.lmeta, lay.ometa, obs, np.full(6, -1), np.zeros((0, 0), np.int64), state,
            new, q, z, zx)  # fmt: skip
    ref = _torch_forward(torch.tensor(theta), lay, torch.tensor(obs), torch.tensor(state))
    np.testing.assert_allclose(q, ref.numpy(), atol=3e-6)


def test_conditioned_forward_matches_torch_and_zero_rows_change_nothing():
    """A conditioned network's step adds its conditioning rows (torch reference, and the torch
    backend's forward); with those rows zero it equals the plain network bit for bit."""
    from rltuner.torch_backend import torch_forward

    rng = np.random.default_rng(4)
    plain = Network(NetLayout((9, 4)), (rng.standard_normal(NetLayout((9, 4)).num_params) * 0.5)
                    .astype(np.float32))  # fmt: skip
    wide = plain.with_cond_inputs(6)
    obs = rng.integers(0, 38, 7)
    rows = np.where(rng.random((4, 3)) < 0.3, -1, rng.integers(38, 44, (4, 3)))
    cond = (rng.integers(-1, 4, 7), rows)
    state = rng.standard_normal((7, plain.layout.state_size)).astype(np.float32)
    q0, s0 = plain.step(obs, state)
    q1, s1 = wide.step(obs, state, cond=cond)
    assert np.array_equal(q0, q1) and np.array_equal(s0, s1)
    wide.layout.views(wide.theta)["l0.Wx"][38:] = rng.standard_normal((6, 36)).astype(np.float32)
    q2, _ = wide.step(obs, state, cond=cond)
    assert not np.allclose(q2, q0)
    tc = (torch.tensor(cond[0]), torch.tensor(rows))
    ref = _torch_forward(torch.tensor(wide.theta), wide.layout, torch.tensor(obs),
                         torch.tensor(state), tc)  # fmt: skip
    np.testing.assert_allclose(q2, ref.numpy(), atol=3e-6)
    tb, _ = torch_forward(torch.tensor(wide.theta), wide.layout, torch.tensor(obs),
                          torch.tensor(state), tc)  # fmt: skip
    np.testing.assert_allclose(q2, tb.numpy(), atol=3e-6)


def test_forked_child_falls_back_to_one_thread():
    """libgomp is not fork-safe: after the parent used the two-thread update, a forked child
    must run the update on one thread (and still finish, with the same results)."""
    import multiprocessing as mp

    from rltuner.lstm_kernels import parallel_available

    lay, a, r, idx = _random_update_problem((12,), 1)
    loss, tgt = np.zeros(len(idx)), np.zeros(len(idx))
    update_many(*a.values(), lay, *r.values(), idx, 0, False, 0.5, 1e-3, 0.9, 0.999, 1e-8, 5.0,
                0.01, loss, tgt, threads=2)  # fmt: skip
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child():
        lay2, a2, r2, idx2 = _random_update_problem((12,), 1)
        l2, t2 = np.zeros(len(idx2)), np.zeros(len(idx2))
        update_many(*a2.values(), lay2, *r2.values(), idx2, 0, False, 0.5, 1e-3, 0.9, 0.999,
                    1e-8, 5.0, 0.01, l2, t2, threads=2)  # fmt: skip
        q.put((parallel_available(), a2["theta"]))

    p = ctx.Process(target=child)
    p.start()
    parallel, theta = q.get(timeout=120)
    p.join(timeout=60)
    assert p.exitcode == 0 and not parallel
    assert np.array_equal(theta, a["theta"])


def test_thread_chooser_follows_the_cheaper_choice():
    from rltuner.lstm_kernels import ThreadChooser

    ch = ThreadChooser(explore_every=4, max_interval=16, window=5, burst=3)
    cost = {1: 2.0, 2: 1.0}  # an idle machine: two threads are cheaper

    def run(calls, spike_every=0):
        picks = []
        for i in range(calls):
            n = ch.pick()
            slow = spike_every and i % spike_every == 0
            ch.record(n, cost[n] * (10.0 if slow else 1.0))
            picks.append(n)
        return picks

    picks = run(100, spike_every=7)  # with a stray 10x slow call now and then
    assert picks[:8] == [2, 2, 2, 2, 1, 1, 1, 1]  # both measured, first calls not counted
    assert picks[8:].count(2) > 65 and 1 in picks[8:]  # two threads, the other re-tried
    ones = "".join(str(n) for n in picks[8:]).split("2")
    assert max(len(x) for x in ones) == 3  # only re-try bursts: no spike flipped the choice
    cost[2] = 5.0  # the other CPU got busy
    picks = run(300)
    assert picks[-100:].count(1) >= 80
    starts = [i for i in range(1, len(picks)) if picks[i] == 2 and picks[i - 1] == 1]
    assert starts[-1] - starts[-2] == 16 + 3  # re-tries back off to the longest interval
    cost[2] = 1.0  # idle again: back to two threads after the next re-try
    picks = run(60)
    assert picks[-20:].count(2) >= 16
