"""Fused numba kernels for the tuner's LSTM networks on the CPU (no torch in the hot loop).

A network (a Note RNN copy: LSTM layers of any sizes + a linear output) lives in ONE flat
float32 vector ``theta``. For layer ``l`` with input size ``I`` and ``H`` units:

* ``Wx`` (I, 4H) then ``Wh`` (H, 4H) -- adjacent, so together they are the layer's "kernel"
  (TensorFlow's ``[W_x; W_h]`` variable, clipped as one tensor), gate order (i, f, g, o);
* ``b`` (4H,) -- ``b_ih + b_hh`` of PyTorch.

Then ``Wo`` (H_last, 38) and ``bo`` (38,). Layer 0 reads a one-hot input, so ``x @ Wx`` is a
row gather. An LSTM state of a batch is one ``(B, S)`` float32 array holding ``[h_l, c_l]`` for
each layer in turn (``S = sum(2 H_l)``).

``lmeta[l] = (I, H, off_Wx, off_Wh, off_b, state_off)`` and ``ometa = (off_Wo, off_bo, H_last)``
describe the layout to the kernels; :class:`NetLayout` builds them.

The update kernel does a whole DQN minibatch update in one call (target values, forward,
hand-written backward, per-tensor clipping, Adam, soft target update), several updates per
call. Its gradients are checked against torch autograd in the tests.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numba as nb
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  -- the BLAS that numba's np.dot calls
from threadpoolctl import threadpool_limits

__all__ = ["NetLayout", "forward", "update_many", "ALGO_CODES", "single_threaded_blas"]

NUM_CLASSES = 38
# No "arcp"/"afn"/"reassoc" on element-wise loops: with them LLVM's vector body and its scalar
# remainder round differently, and which elements take which path depends on the buffers'
# alignment -- results then changed from run to run (1 ulp, amplified by training), breaking
# exact resumption. These flags still let the loops vectorise.
_FM = {"nnan", "ninf", "nsz", "contract"}
_FM_REDUCE = {"nnan", "ninf", "nsz", "contract", "reassoc"}
ALGO_CODES = {"q": 0, "pure_rl": 0, "psi": 1, "g": 2}


def _pin_kernel_blas_to_one_thread() -> None:
    """Give the BLAS behind numba's ``np.dot`` (SciPy's bundled OpenBLAS, not NumPy's) one
    thread, for good. The kernels' matrices are tiny (32 x 100 x 400): a second thread only adds
    synchronisation -- when the other core was busy it made updates ~100x slower here -- and
    OpenBLAS's threaded splits made results differ from run to run (3e-8), which broke exact
    resumption. NumPy's own BLAS, which user code calls, is left alone."""
    from threadpoolctl import ThreadpoolController

    scipy_dir = os.path.dirname(os.path.dirname(scipy.__file__))
    for lib in ThreadpoolController().lib_controllers:
        if lib.filepath.startswith(os.path.join(scipy_dir, "scipy")) and lib.user_api == "blas":
            lib.set_num_threads(1)


_pin_kernel_blas_to_one_thread()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Every BLAS (NumPy's too) on one thread inside the block (benchmarks use it)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class NetLayout:
    """Offsets of every tensor of a network with LSTM ``layer_sizes`` inside ``theta``."""

    layer_sizes: tuple[int, ...]
    num_classes: int = NUM_CLASSES

    @property
    def lmeta(self) -> np.ndarray:
        rows, off, soff, inp = [], 0, 0, self.num_classes
        for h in self.layer_sizes:
            g = 4 * h
            rows.append((inp, h, off, off + inp * g, off + inp * g + h * g, soff))
            off += inp * g + h * g + g
            soff += 2 * h
            inp = h
        return np.asarray(rows, dtype=np.int64)

    @property
    def ometa(self) -> np.ndarray:
        m = self.lmeta
        last = m[-1]
        off_wo = int(last[4] + 4 * last[1])
        h = self.layer_sizes[-1]
        return np.asarray([off_wo, off_wo + h * self.num_classes, h], dtype=np.int64)

    @property
    def num_params(self) -> int:
        o = self.ometa
        return int(o[1] + self.num_classes)

    @property
    def state_size(self) -> int:
        return 2 * sum(self.layer_sizes)

    @property
    def clip_groups(self) -> np.ndarray:
        """``(G, 2)`` [start, end) ranges clipped to norm 5 each: per layer the kernel
        ``[Wx; Wh]`` and the bias, then ``Wo`` and ``bo``."""
        out = []
        for _, h, owx, _, ob, _ in self.lmeta:
            out.append((owx, ob))
            out.append((ob, ob + 4 * h))
        o = self.ometa
        out.append((o[0], o[1]))
        out.append((o[1], o[1] + self.num_classes))
        return np.asarray(out, dtype=np.int64)

    def views(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named reshaped views into ``theta`` (writes go through)."""
        v: dict[str, np.ndarray] = {}
        for l, (inp, h, owx, owh, ob, _) in enumerate(self.lmeta):
            g = 4 * h
            v[f"l{l}.Wx"] = theta[owx:owh].reshape(inp, g)
            v[f"l{l}.Wh"] = theta[owh:ob].reshape(h, g)
            v[f"l{l}.b"] = theta[ob : ob + g]
        o = self.ometa
        v["Wo"] = theta[o[0] : o[1]].reshape(o[2], self.num_classes)
        v["bo"] = theta[o[1] : o[1] + self.num_classes]
        return v

    def pack(
        self,
        layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        out_w: np.ndarray,
        out_b: np.ndarray,
    ) -> np.ndarray:
        """Build ``theta`` from PyTorch-shaped arrays: per layer ``W_ih (4H, I)``,
        ``W_hh (4H, H)``, ``b (4H,)``; output ``W (38, H)``, ``b (38,)``."""
        theta = np.zeros(self.num_params, dtype=np.float32)
        v = self.views(theta)
        if len(layers) != len(self.layer_sizes):
            raise ValueError("number of layers differs from the layout")
        for l, (w_ih, w_hh, b) in enumerate(layers):
            v[f"l{l}.Wx"][...] = np.asarray(w_ih, dtype=np.float32).T
            v[f"l{l}.Wh"][...] = np.asarray(w_hh, dtype=np.float32).T
            v[f"l{l}.b"][...] = b
        v["Wo"][...] = np.asarray(out_w, dtype=np.float32).T
        v["bo"][...] = out_b
        return theta

    def unpack(
        self, theta: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray, np.ndarray]:
        """Inverse of :meth:`pack` (the bias is returned whole, as ``b_ih``; ``b_hh = 0``)."""
        v = self.views(theta)
        layers = [
            (v[f"l{l}.Wx"].T.copy(), v[f"l{l}.Wh"].T.copy(), v[f"l{l}.b"].copy())
            for l in range(len(self.layer_sizes))
        ]
        return layers, v["Wo"].T.copy(), v["bo"].copy()


_TANH_CLAMP = np.float32(7.90531110763549805)


@nb.njit(cache=True, fastmath=_FM, error_model="numpy", inline="always")
def ftanh(x):
    """float32 tanh as a 13/6 rational minimax fit on [-7.905, 7.905] (clamped outside);
    max abs error 3e-7. Unlike libm's tanh it vectorises, which makes the kernels ~4x faster."""
    x = _TANH_CLAMP if x > _TANH_CLAMP else x
    x = -_TANH_CLAMP if x < -_TANH_CLAMP else x
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    d = np.float32(1.19825839466702e-06)
    d = d * x2 + np.float32(1.18534705686654e-04)
    d = d * x2 + np.float32(2.26843463243900e-03)
    d = d * x2 + np.float32(4.89352518554385e-03)
    return p * x / d


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def ftanh_array(x):
    """:func:`ftanh` over a 1-D float32 array (for tests and documentation)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = ftanh(x[i])
    return out


@nb.njit(cache=True, fastmath=_FM, error_model="numpy", inline="always")
def fsigmoid(x):
    return np.float32(0.5) * ftanh(np.float32(0.5) * x) + np.float32(0.5)


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def forward(theta, lmeta, ometa, obs, state, new_state, gates, tanh_c, q, z):
    """One LSTM step for a batch. ``obs (B,)`` int classes, ``state (B, S)`` ->
    ``new_state (B, S)``, output ``q (B, 38)``. ``gates`` (flat, ``B * sum 4H``) and
    ``tanh_c`` (flat, ``B * sum H``) receive the activations the backward pass needs, layer
    by layer as contiguous ``(B, 4H)`` / ``(B, H)`` blocks; ``z`` is scratch of at least
    ``B * 4 * max H`` floats.

    Every element-wise loop runs over contiguous per-layer blocks with no runtime offsets:
    with offsets into shared 2-D arrays LLVM could not vectorise them (measured 2x slower)."""
    bm = obs.shape[0]
    nl = lmeta.shape[0]
    hoff = 0
    for l in range(nl):
        inp, h, owx, owh, ob, so = lmeta[l]
        g4 = 4 * h
        zl = z[: bm * g4].reshape((bm, g4))
        gl = gates[bm * 4 * hoff : bm * 4 * (hoff + h)].reshape((bm, g4))
        tl = tanh_c[bm * hoff : bm * (hoff + h)].reshape((bm, h))
        hprev = np.ascontiguousarray(state[:, so : so + h])
        cprev = np.ascontiguousarray(state[:, so + h : so + 2 * h])
        np.dot(hprev, theta[owh : owh + h * g4].reshape((h, g4)), zl)
        bias = theta[ob : ob + g4]
        if l == 0:
            for j in range(bm):
                row = theta[owx + obs[j] * g4 : owx + (obs[j] + 1) * g4]
                for k in range(g4):
                    zl[j, k] += row[k] + bias[k]
        else:
            pso = lmeta[l - 1, 5]
            xin = np.ascontiguousarray(new_state[:, pso : pso + inp])
            zl += np.dot(xin, theta[owx : owx + inp * g4].reshape((inp, g4)))
            for j in range(bm):
                for k in range(g4):
                    zl[j, k] += bias[k]
        for j in range(bm):
            for k in range(2 * h):
                gl[j, k] = fsigmoid(zl[j, k])
            for k in range(2 * h, 3 * h):
                gl[j, k] = ftanh(zl[j, k])
            for k in range(3 * h, g4):
                gl[j, k] = fsigmoid(zl[j, k])
        cn = np.empty((bm, h), dtype=np.float32)
        hn = np.empty((bm, h), dtype=np.float32)
        for j in range(bm):
            for k in range(h):
                cn[j, k] = gl[j, h + k] * cprev[j, k] + gl[j, k] * gl[j, 2 * h + k]
        for j in range(bm):
            for k in range(h):
                tc = ftanh(cn[j, k])
                tl[j, k] = tc
                hn[j, k] = gl[j, 3 * h + k] * tc
        new_state[:, so : so + h] = hn
        new_state[:, so + h : so + 2 * h] = cn
        hoff += h
    owo, obo, hl = ometa[0], ometa[1], ometa[2]
    wo = theta[owo : owo + hl * NUM_CLASSES].reshape((hl, NUM_CLASSES))
    so_last = lmeta[nl - 1, 5]
    hlast = np.ascontiguousarray(new_state[:, so_last : so_last + hl])
    np.dot(hlast, wo, q)
    for j in range(bm):
        for a in range(NUM_CLASSES):
            q[j, a] += theta[obo + a]


@nb.njit(cache=True, fastmath=False)
def _logsumexp_row(x):
    m = x[0]
    for a in range(1, x.shape[0]):
        if x[a] > m:
            m = x[a]
    s = 0.0
    for a in range(x.shape[0]):
        s += math.exp(x[a] - m)
    return m + math.log(s)


@nb.njit(cache=True)
def _bootstrap(algo, qn, rl, out, online_next, double_dqn):
    """V(s') per row: q/pure_rl max (or Double-DQN), psi logsumexp, g logsumexp(log p + G)."""
    bm = qn.shape[0]
    tmp = np.empty(NUM_CLASSES, dtype=np.float64)
    for j in range(bm):
        if algo == 0:
            if double_dqn:
                best = 0
                for a in range(1, NUM_CLASSES):
                    if online_next[j, a] > online_next[j, best]:
                        best = a
                out[j] = qn[j, best]
            else:
                m = qn[j, 0]
                for a in range(1, NUM_CLASSES):
                    if qn[j, a] > m:
                        m = qn[j, a]
                out[j] = m
        elif algo == 1:
            for a in range(NUM_CLASSES):
                tmp[a] = qn[j, a]
            out[j] = _logsumexp_row(tmp)
        else:
            for a in range(NUM_CLASSES):
                tmp[a] = rl[j, a]
            norm = _logsumexp_row(tmp)
            for a in range(NUM_CLASSES):
                tmp[a] = qn[j, a] + rl[j, a] - norm
            out[j] = _logsumexp_row(tmp)


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _backward(theta, lmeta, ometa, obs, state, new_state, gates, tanh_c, act, dqa, grad):
    """Gradient of ``sum_j dqa[j] * q[j, act[j]]`` w.r.t. ``theta``, written (not added) into
    ``grad``. One step only: no gradient flows into the stored LSTM state."""
    bm = obs.shape[0]
    nl = lmeta.shape[0]
    owo, obo, hl = ometa[0], ometa[1], ometa[2]
    so_last = lmeta[nl - 1, 5]
    # dq is one-hot per row (only Q(s, a) enters the loss): as a dense (B, 38) matrix the
    # output layer's gradients are two small matmuls
    dq = np.zeros((bm, NUM_CLASSES), dtype=np.float32)
    gbo = grad[obo : obo + NUM_CLASSES]
    gbo[:] = 0.0
    for j in range(bm):
        dq[j, act[j]] = dqa[j]
        gbo[act[j]] += dqa[j]
    hlast_t = np.ascontiguousarray(new_state[:, so_last : so_last + hl].T)
    np.dot(hlast_t, dq, grad[owo:obo].reshape((hl, NUM_CLASSES)))
    wo = theta[owo:obo].reshape((hl, NUM_CLASSES))
    dh = np.ascontiguousarray(np.dot(dq, wo.T))
    hoff_total = 0
    for l in range(nl):
        hoff_total += lmeta[l, 1]
    hoff = hoff_total
    for l in range(nl - 1, -1, -1):
        inp, h, owx, owh, ob, so = lmeta[l]
        g4 = 4 * h
        hoff -= h
        gl = gates[bm * 4 * hoff : bm * 4 * (hoff + h)].reshape((bm, g4))
        tl = tanh_c[bm * hoff : bm * (hoff + h)].reshape((bm, h))
        cprev = np.ascontiguousarray(state[:, so + h : so + 2 * h])
        dz = np.empty((bm, g4), dtype=np.float32)
        one = np.float32(1.0)
        for j in range(bm):
            for k in range(h):
                ig = gl[j, k]
                fg = gl[j, h + k]
                gg = gl[j, 2 * h + k]
                og = gl[j, 3 * h + k]
                tc = tl[j, k]
                dhk = dh[j, k]
                dc = dhk * og * (one - tc * tc)
                dz[j, k] = dc * gg * ig * (one - ig)
                dz[j, h + k] = dc * cprev[j, k] * fg * (one - fg)
                dz[j, 2 * h + k] = dc * ig * (one - gg * gg)
                dz[j, 3 * h + k] = dhk * tc * og * (one - og)
        gb = grad[ob : ob + g4]
        gb[:] = 0.0
        for j in range(bm):
            for k in range(g4):
                gb[k] += dz[j, k]
        # each weight matrix's gradient is written by exactly one matmul (out=): no temporaries
        hprev_t = np.ascontiguousarray(state[:, so : so + h].T)
        np.dot(hprev_t, dz, grad[owh : owh + h * g4].reshape((h, g4)))
        if l == 0:
            gx = grad[owx : owx + inp * g4]
            gx[:] = 0.0
            for j in range(bm):
                r = obs[j] * g4
                for n in range(g4):
                    gx[r + n] += dz[j, n]
        else:
            pso = lmeta[l - 1, 5]
            xin_t = np.ascontiguousarray(new_state[:, pso : pso + inp].T)
            np.dot(xin_t, dz, grad[owx : owx + inp * g4].reshape((inp, g4)))
            wx = theta[owx : owx + inp * g4].reshape((inp, g4))
            dh = np.ascontiguousarray(np.dot(dz, wx.T))


@nb.njit(cache=True, fastmath=_FM_REDUCE, error_model="numpy")
def _sum_squares(x):
    """float32 sum of squares (fastmath lets it vectorise; float64 accumulation did not)."""
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += x[i] * x[i]
    return acc


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _clip_adam_soft(theta, target, grad, m, v, step, groups, clip, lr, b1, b2, eps, eta):
    for gi in range(groups.shape[0]):
        s, e = groups[gi, 0], groups[gi, 1]
        sq = _sum_squares(grad[s:e])
        norm = math.sqrt(sq)
        if norm > clip:
            scale = np.float32(clip / norm)
            for i in range(s, e):
                grad[i] *= scale
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    _adam_soft(
        theta,
        target,
        grad,
        m,
        v,
        np.float32(lr / bc1),
        np.float32(1.0 / math.sqrt(bc2)),
        np.float32(b1),
        np.float32(b2),
        np.float32(eps),
        np.float32(eta),
    )


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _adam_soft(theta, target, grad, m, v, step_size, inv_sqrt_bc2, b1, b2, eps, eta):
    """Adam (bias-corrected, PyTorch's formula) then the soft target update, one fused pass.
    float32 scalars and a temporary for the new parameter keep the loop vectorised (~4x)."""
    one = np.float32(1.0)
    for i in range(theta.shape[0]):
        g = grad[i]
        mi = b1 * m[i] + (one - b1) * g
        vi = b2 * v[i] + (one - b2) * g * g
        m[i] = mi
        v[i] = vi
        t = theta[i] - step_size * mi / (math.sqrt(vi) * inv_sqrt_bc2 + eps)
        theta[i] = t
        target[i] += eta * (t - target[i])


@nb.njit(cache=True, error_model="numpy")
def update_many(
    theta,
    target,
    m,
    v,
    adam_step,
    rtheta,
    lmeta,
    ometa,
    groups,
    obs,
    act,
    rew,
    prime,
    prime_states,
    stride,
    next_qstate,
    next_rstate,
    idx,
    algo,
    double_dqn,
    gamma,
    lr,
    b1,
    b2,
    eps,
    clip,
    eta,
    out_loss,
    out_target,
):
    """Run ``idx.shape[0]`` minibatch updates; minibatch ``u`` uses replay rows ``idx[u]``.

    Replay arrays (see :class:`rltuner.learner.ReplayMemory`): ``obs``/``act`` (M,) int8 (next
    observation = the action played), ``rew`` (M,) float32, ``next_qstate`` (M, S) float32
    (Q-network state after consuming ``obs``), ``next_rstate`` (M, S) Reward-RNN state after
    ``obs`` (G only). The state *before* ``obs`` is ``prime_states[prime[r]]`` when
    ``prime[r] >= 0`` (first step of a composition), else ``next_qstate[(r - stride) % M]``.
    ``adam_step`` is a 1-element int64 array, incremented per update. Per update: target
    ``y = r + gamma * V(s')`` from the target network (and for G the Reward RNN at s'),
    loss ``mean((Q(s, a) - y)^2)``, gradient, clipping per tensor, Adam, then
    ``target <- target + eta * (theta - target)``. ``out_loss[u]`` / ``out_target[u]`` get the
    loss and the mean target value."""
    nupd, bm = idx.shape
    s_size = next_qstate.shape[1]
    cap = next_qstate.shape[0]
    g_total = 0
    h_total = 0
    for l in range(lmeta.shape[0]):
        g_total += 4 * lmeta[l, 1]
        h_total += lmeta[l, 1]
    o_b = np.empty(bm, dtype=np.int64)
    a_b = np.empty(bm, dtype=np.int64)
    no_b = np.empty(bm, dtype=np.int64)
    st = np.empty((bm, s_size), dtype=np.float32)
    nst = np.empty((bm, s_size), dtype=np.float32)
    scratch_state = np.empty((bm, s_size), dtype=np.float32)
    gates = np.empty(bm * g_total, dtype=np.float32)
    tanh_c = np.empty(bm * h_total, dtype=np.float32)
    qn = np.empty((bm, NUM_CLASSES), dtype=np.float32)
    qo = np.empty((bm, NUM_CLASSES), dtype=np.float32)
    rl = np.empty((bm, NUM_CLASSES), dtype=np.float32)
    q = np.empty((bm, NUM_CLASSES), dtype=np.float32)
    vnext = np.empty(bm, dtype=np.float64)
    dqa = np.empty(bm, dtype=np.float32)
    grad = np.empty(theta.shape[0], dtype=np.float32)
    hmax = 0
    for l in range(lmeta.shape[0]):
        hmax = max(hmax, lmeta[l, 1])
    z = np.empty(bm * 4 * hmax, dtype=np.float32)
    for u in range(nupd):
        for j in range(bm):
            r = idx[u, j]
            o_b[j] = obs[r]
            a_b[j] = act[r]
            no_b[j] = act[r]
        # target network at s' (and the online network there for Double DQN)
        for j in range(bm):
            nst[j, :] = next_qstate[idx[u, j], :]
        forward(target, lmeta, ometa, no_b, nst, scratch_state, gates, tanh_c, qn, z)
        if algo == 2:
            for j in range(bm):
                st[j, :] = next_rstate[idx[u, j], :]
            forward(rtheta, lmeta, ometa, no_b, st, scratch_state, gates, tanh_c, rl, z)
        if double_dqn:
            forward(theta, lmeta, ometa, no_b, nst, scratch_state, gates, tanh_c, qo, z)
        _bootstrap(algo, qn, rl, vnext, qo, double_dqn)
        # online network at s
        for j in range(bm):
            r = idx[u, j]
            if prime[r] >= 0:
                st[j, :] = prime_states[prime[r], :]
            else:
                st[j, :] = next_qstate[(r - stride + cap) % cap, :]
        forward(theta, lmeta, ometa, o_b, st, nst, gates, tanh_c, q, z)
        loss = 0.0
        tsum = 0.0
        for j in range(bm):
            y = rew[idx[u, j]] + gamma * vnext[j]
            diff = q[j, a_b[j]] - y
            loss += diff * diff
            tsum += y
            dqa[j] = np.float32(2.0 * diff / bm)
        out_loss[u] = loss / bm
        out_target[u] = tsum / bm
        _backward(theta, lmeta, ometa, o_b, st, nst, gates, tanh_c, a_b, dqa, grad)
        adam_step[0] += 1
        _clip_adam_soft(theta, target, grad, m, v, adam_step[0], groups, clip, lr, b1, b2, eps, eta)
