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
call, on one or two threads (:class:`SplitLayout`: each thread owns half of every layer's
units). Its gradients are checked against torch autograd in the tests, and its results are
bit-identical on one thread and two.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numba as nb
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  -- the BLAS that numba's np.dot calls
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from threadpoolctl import threadpool_limits

__all__ = [
    "NetLayout",
    "SplitLayout",
    "SplitUpdater",
    "forward",
    "update_many",
    "parallel_available",
    "default_threads",
    "uses_parallel_kernel",
    "ALGO_CODES",
    "single_threaded_blas",
]

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
    cond_inputs: int = 0  # extra input rows of layer 0 after the classes (chord features)

    @property
    def num_inputs(self) -> int:
        """Rows of layer 0's ``Wx``: the one-hot classes, then the conditioning features."""
        return self.num_classes + self.cond_inputs

    @property
    def lmeta(self) -> np.ndarray:
        rows, off, soff, inp = [], 0, 0, self.num_inputs
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


# ----------------------------------------------------------------------------- the update
# The minibatch update runs on two threads without moving the networks between CPU cores:
# every LSTM layer's units are cut into two halves ("parts") and thread t owns part t -- the
# gate columns of its units in the online and target networks, their gradients and their Adam
# moments (SplitLayout gives each part's weights one contiguous block). A thread computes its
# units' gates, cell and output for every network, then its units' gradients, then Adam and the
# soft update of its own block; only small arrays (LSTM outputs, TD errors, norms) cross. Moving
# the 240 KB weight vectors between cores every update cost more than the second core saved.
# Each element is computed by the same operations whichever thread runs it, so one thread and
# two give the same weights (tested).
NUM_PARTS = 2


class SplitLayout:
    """The parameter layout used by the update: ``theta_split = theta[perm]``.

    Per LSTM layer, for part ``t`` (units ``[u0, u0 + h)``): ``Wx_t (I, 4h)``, ``Wh_t (H, 4h)``,
    ``b_t (4h)``, columns gate-major (i, f, g, o of the part's units); then ``Wo`` and ``bo``
    exactly as in :class:`NetLayout` (``Wo``'s rows of part ``t`` are its units).

    ``lmeta (L, 2, 9)``: ``(I, H, h, u0, off_Wx, off_Wh, off_b, state_off, hoff)`` with
    ``hoff`` the part's units in the layers below (its activation buffers' offset).
    ``ranges (R, 4)``: ``(part, start, end, clip_group)`` -- the blocks each part owns, clip
    groups numbered as :attr:`NetLayout.clip_groups`.
    """

    def __init__(self, base: NetLayout) -> None:
        self.base = base
        lm = base.lmeta
        nl = lm.shape[0]
        self.num_groups = 2 * nl + 2
        self.lmeta = np.zeros((nl, NUM_PARTS, 9), dtype=np.int64)
        perm = np.arange(base.num_params, dtype=np.int64)  # Wo, bo stay in place
        ranges = []
        hoff = [0] * NUM_PARTS
        for l, (inp, hh, owx, owh, ob, so) in enumerate(lm):
            off = int(owx)
            for t in range(NUM_PARTS):
                u0, u1 = hh * t // NUM_PARTS, hh * (t + 1) // NUM_PARTS
                h = u1 - u0
                cols = np.concatenate([q * hh + np.arange(u0, u1) for q in range(4)])
                o_wh, o_b = off + inp * 4 * h, off + (inp + hh) * 4 * h
                perm[off:o_wh] = (owx + np.arange(inp)[:, None] * 4 * hh + cols).ravel()
                perm[o_wh:o_b] = (owh + np.arange(hh)[:, None] * 4 * hh + cols).ravel()
                perm[o_b : o_b + 4 * h] = ob + cols
                self.lmeta[l, t] = (inp, hh, h, u0, off, o_wh, o_b, so, hoff[t])
                ranges += [(t, off, o_b, 2 * l), (t, o_b, o_b + 4 * h, 2 * l + 1)]
                off = o_b + 4 * h
                hoff[t] += h
        owo, obo, hl = (int(x) for x in base.ometa)
        for t in range(NUM_PARTS):
            u0, u1 = hl * t // NUM_PARTS, hl * (t + 1) // NUM_PARTS
            ranges.append((t, owo + u0 * NUM_CLASSES, owo + u1 * NUM_CLASSES, 2 * nl))
        ranges.append((NUM_PARTS - 1, obo, obo + NUM_CLASSES, 2 * nl + 1))
        self.ranges = np.asarray([r for r in ranges if r[2] > r[1]], dtype=np.int64)
        self.perm = perm
        self.units = np.asarray(hoff, dtype=np.int64)  # units per part over all layers
        # the permutation as runs of consecutive elements: (split start, canonical start, length)
        brk = np.flatnonzero(np.diff(perm) != 1) + 1
        starts = np.concatenate([[0], brk])
        ends = np.concatenate([brk, [perm.size]])
        self.runs = np.stack([starts, perm[starts], ends - starts], axis=1).astype(np.int64)

    def split(self, theta: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Canonical -> split order."""
        if out is None:
            out = np.empty_like(theta)
        _copy_runs(theta, out, self.runs, False)
        return out

    def merge(self, split: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Split -> canonical order, written into ``out``."""
        _copy_runs(split, out, self.runs, True)
        return out


@nb.njit(cache=True)
def _copy_runs(src, dst, runs, to_canonical):
    for r in range(runs.shape[0]):
        a, b, n = runs[r, 0], runs[r, 1], runs[r, 2]
        if to_canonical:
            a, b = b, a
        for i in range(n):
            dst[a + i] = src[b + i]


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _chord_sums(theta, owx, g4, rows, out):
    """``out[c, :g4]`` = the sum of layer 0's ``Wx`` rows ``rows[c]`` (``-1`` = none; rows of
    ``g4`` floats from offset ``owx``), added in order from zero: what chord ``c`` adds to an
    input. Acting and learning both add these sums, so they see the same network."""
    for c in range(rows.shape[0]):
        for k in range(g4):
            out[c, k] = np.float32(0.0)
        for i in range(rows.shape[1]):
            r = rows[c, i]
            if r >= 0:
                for k in range(g4):
                    out[c, k] += theta[owx + r * g4 + k]


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _units_forward(t, l, theta, slm, obs, cid, csum, state, new_state, gates, tanh_c, z):
    """Layer ``l`` of one network for part ``t``'s units: gates (kept in ``gates``/``tanh_c``
    for the backward), new cell and output written into ``new_state``'s columns of these
    units. ``state`` is the whole previous state; layers above 0 read the layer below's new
    output (both parts') from ``new_state``. Layer 0 adds, after the observation's row, the
    sum of the conditioning rows of row ``j``'s chord ``cid[j]`` (``csum[cid[j]]``, made by
    :func:`_chord_sums`; ``-1`` = none)."""
    inp, hh, h, u0, owx, owh, ob, so, hoff = slm[l, t]
    if h == 0:
        return
    bm = obs.shape[0]
    g4 = 4 * h
    zl = z[: bm * g4].reshape((bm, g4))
    gl = gates[bm * 4 * hoff : bm * 4 * (hoff + h)].reshape((bm, g4))
    tl = tanh_c[bm * hoff : bm * (hoff + h)].reshape((bm, h))
    hprev = np.ascontiguousarray(state[:, so : so + hh])
    np.dot(hprev, theta[owh : owh + hh * g4].reshape((hh, g4)), zl)
    bias = theta[ob : ob + g4]
    if l == 0:
        for j in range(bm):
            row = theta[owx + obs[j] * g4 : owx + (obs[j] + 1) * g4]
            for k in range(g4):
                zl[j, k] += row[k] + bias[k]
            c = cid[j]
            if c >= 0:
                for k in range(g4):
                    zl[j, k] += csum[c, k]
    else:
        pso = slm[l - 1, 0, 7]
        xin = np.ascontiguousarray(new_state[:, pso : pso + inp])
        zx = np.dot(xin, theta[owx : owx + inp * g4].reshape((inp, g4)))
        for j in range(bm):
            for k in range(g4):
                zl[j, k] += zx[j, k]
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
    cprev = np.ascontiguousarray(state[:, so + hh + u0 : so + hh + u0 + h])
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
    # element loops, not slice assignment: numba compiles ~10 s of error-message formatting
    # for every array-to-slice assignment
    for j in range(bm):
        for k in range(h):
            new_state[j, so + u0 + k] = hn[j, k]
            new_state[j, so + hh + u0 + k] = cn[j, k]


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _output_layer(theta, slm, ometa, new_state, q):
    """``q = h_last @ Wo + bo`` (the same in both layouts)."""
    owo, obo, hl = ometa[0], ometa[1], ometa[2]
    so_last = slm[slm.shape[0] - 1, 0, 7]
    hlast = np.ascontiguousarray(new_state[:, so_last : so_last + hl])
    np.dot(hlast, theta[owo : owo + hl * NUM_CLASSES].reshape((hl, NUM_CLASSES)), q)
    for j in range(q.shape[0]):
        for a in range(NUM_CLASSES):
            q[j, a] += theta[obo + a]


@nb.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def forward(theta, lmeta, ometa, obs, cid, rows, state, new_state, q, z, zx):
    """One LSTM step for a batch, keeping no activations (acting, sampling, priming):
    ``obs (B,)`` int classes, ``state (B, S)`` -> ``new_state (B, S)``, output ``q (B, 38)``.
    A conditioned network's input also holds row ``j``'s chord ``cid[j]`` (``-1`` = none):
    the chord's rows ``rows[cid[j]]`` (``(C, K)``, ``-1``-padded) of layer 0's ``Wx`` are
    added (as their sum); a plain network gets ``rows`` of shape ``(0, 0)``.
    ``z`` and ``zx`` are scratch of at least ``B * 4 * max H`` floats each.

    The arithmetic of every element is the update's forward (:func:`_units_forward`: the same
    operations in the same order), so acting and learning see the same network; it only skips
    storing the gates and works on whole-batch flat loops, which vectorise."""
    bm = obs.shape[0]
    nl = lmeta.shape[0]
    xin = np.empty((bm, 1), dtype=np.float32)  # the layer below's new output (contiguous)
    for l in range(nl):
        inp, h, owx, owh, ob, so = lmeta[l]
        g4 = 4 * h
        zl = z[: bm * g4].reshape((bm, g4))
        hprev = np.ascontiguousarray(state[:, so : so + h])
        np.dot(hprev, theta[owh : owh + h * g4].reshape((h, g4)), zl)
        if l == 0:
            csum = np.empty((rows.shape[0], g4), dtype=np.float32)
            _chord_sums(theta, owx, g4, rows, csum)
            for j in range(bm):
                r = owx + obs[j] * g4
                for k in range(g4):
                    zl[j, k] += theta[r + k] + theta[ob + k]
                c = cid[j] if rows.shape[0] > 0 else -1
                if c >= 0:
                    for k in range(g4):
                        zl[j, k] += csum[c, k]
        else:
            zxl = zx[: bm * g4].reshape((bm, g4))
            np.dot(xin, theta[owx : owx + inp * g4].reshape((inp, g4)), zxl)
            for j in range(bm):
                for k in range(g4):
                    zl[j, k] += zxl[j, k]
            for j in range(bm):
                for k in range(g4):
                    zl[j, k] += theta[ob + k]
        # one loop over all four gates (it vectorises without remainders): sigmoid(x) =
        # 0.5·tanh(0.5·x) + 0.5 for i, f, o (as fsigmoid), tanh(x) = 1·tanh(1·x) + 0 for g
        sc = np.full(g4, np.float32(0.5))
        off = np.full(g4, np.float32(0.5))
        for k in range(2 * h, 3 * h):
            sc[k] = np.float32(1.0)
            off[k] = np.float32(0.0)
        for j in range(bm):
            for k in range(g4):
                zl[j, k] = sc[k] * ftanh(sc[k] * zl[j, k]) + off[k]
        hn = np.empty((bm, h), dtype=np.float32)
        cn = np.empty((bm, h), dtype=np.float32)
        for j in range(bm):
            for k in range(h):
                cn[j, k] = zl[j, h + k] * state[j, so + h + k] + zl[j, k] * zl[j, 2 * h + k]
        for j in range(bm):
            for k in range(h):
                hn[j, k] = zl[j, 3 * h + k] * ftanh(cn[j, k])
        for j in range(bm):
            for k in range(h):
                new_state[j, so + k] = hn[j, k]
                new_state[j, so + h + k] = cn[j, k]
        xin = hn
    owo, obo, hlast = ometa[0], ometa[1], ometa[2]
    np.dot(xin, theta[owo : owo + hlast * NUM_CLASSES].reshape((hlast, NUM_CLASSES)), q)
    for j in range(bm):
        for a in range(NUM_CLASSES):
            q[j, a] += theta[obo + a]


@intrinsic
def _prefetch(typingctx, arr, i):
    """Hint the CPU to fetch the cache line holding ``arr[i]`` (1-D array) into every cache
    level (``llvm.prefetch``; no effect on results)."""
    if not isinstance(arr, types.Array) or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        # read access, high temporal locality, data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@nb.njit(cache=True)
def _prefetch_rows(a, row, row_size):
    """Prefetch row ``row`` of the C-contiguous 2-D array ``a`` (16 floats per cache line)."""
    flat = a.reshape(-1)
    base = row * row_size
    for c in range(0, row_size, 16):
        _prefetch(flat, base + c)


@nb.njit(cache=True)
def _copy_row(src, i, dst, j):
    """``dst[j, :] = src[i, :]`` as an element loop (see :func:`_units_forward`)."""
    for k in range(src.shape[1]):
        dst[j, k] = src[i, k]


@nb.njit(cache=True, error_model="numpy")
def _forward_part(
    t, l, u, idx, theta, target, rtheta, slm, prime, prime_states, stride, next_qstate,
    next_rstate, algo, double_dqn, o_b, a_b, oc_b, ac_b, rows, csums, st, nst, rst, new_st,
    new_nst, new_rst, new_ost, gates_on, tanh_on, gates_sc, tanh_sc, z,
):  # fmt: skip
    """Part ``t`` of layer ``l`` of every forward of update ``u``: the target network at s'
    (the Reward RNN there for G, the online network there for Double DQN) and the online
    network at s, whose activations the backward reads. Layer 0 first gathers the states."""
    bm = o_b.shape[0]
    cap = next_qstate.shape[0]
    if l == 0:
        for j in range(bm):
            r = idx[u, j]
            _copy_row(next_qstate, r, nst[t], j)
            if prime[r] >= 0:
                _copy_row(prime_states, np.int64(prime[r]), st[t], j)
            else:
                _copy_row(next_qstate, (r - stride + cap) % cap, st[t], j)
            if algo == 2:
                _copy_row(next_rstate, r, rst[t], j)
        if rows.shape[0] > 0:  # the chords' input sums of the three networks, this part's units
            owx0, g40 = slm[0, t, 4], 4 * slm[0, t, 2]
            _chord_sums(target, owx0, g40, rows, csums[t, 0])
            _chord_sums(theta, owx0, g40, rows, csums[t, 1])
            if algo == 2:
                _chord_sums(rtheta, owx0, g40, rows, csums[t, 2])
        if u + 1 < idx.shape[0]:  # the next update's rows arrive while this one computes
            s_size = next_qstate.shape[1]
            for j in range(bm):
                r = idx[u + 1, j]
                _prefetch_rows(next_qstate, r, s_size)
                if prime[r] < 0:
                    _prefetch_rows(next_qstate, (r - stride + cap) % cap, s_size)
                if algo == 2:
                    _prefetch_rows(next_rstate, r, s_size)
    cs = csums[t]
    _units_forward(t, l, target, slm, a_b, ac_b, cs[0], nst[t], new_nst, gates_sc[t],
                   tanh_sc[t], z[t])  # fmt: skip
    if algo == 2:  # (a conditioned network's Reward RNN has zero conditioning rows)
        _units_forward(t, l, rtheta, slm, a_b, ac_b, cs[2], rst[t], new_rst, gates_sc[t],
                       tanh_sc[t], z[t])  # fmt: skip
    if double_dqn:
        _units_forward(t, l, theta, slm, a_b, ac_b, cs[1], nst[t], new_ost, gates_sc[t],
                       tanh_sc[t], z[t])  # fmt: skip
    _units_forward(t, l, theta, slm, o_b, oc_b, cs[1], st[t], new_st, gates_on[t], tanh_on[t],
                   z[t])  # fmt: skip


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _backward_head(theta, slm, ometa, new_state, act, dqa, grad, dq, dh):
    """Output layer of the backward of ``sum_j dqa[j] * q[j, act[j]]``: ``Wo``/``bo`` gradients
    (written, not added) and ``dh`` (B, H_last), the gradient at the last layer's output."""
    bm = act.shape[0]
    owo, obo, hl = ometa[0], ometa[1], ometa[2]
    so_last = slm[slm.shape[0] - 1, 0, 7]
    # dq is one-hot per row (only Q(s, a) enters the loss): as a dense (B, 38) matrix the
    # output layer's gradients are two small matmuls
    dq[:, :] = 0.0
    gbo = grad[obo : obo + NUM_CLASSES]
    gbo[:] = 0.0
    for j in range(bm):
        dq[j, act[j]] = dqa[j]
        gbo[act[j]] += dqa[j]
    hlast_t = np.ascontiguousarray(new_state[:, so_last : so_last + hl].T)
    np.dot(hlast_t, dq, grad[owo:obo].reshape((hl, NUM_CLASSES)))
    wo = theta[owo:obo].reshape((hl, NUM_CLASSES))
    np.dot(dq, wo.T, dh)


@nb.njit(cache=True, fastmath=_FM_REDUCE, error_model="numpy")
def _sum_squares(x):
    """float32 sum of squares (fastmath lets it vectorise; float64 accumulation did not)."""
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += x[i] * x[i]
    return acc


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _backward_part(t, l, theta, slm, obs, cid, rows, dsum, state, new_state, gates, tanh_c,
                   dh_flat, dz, grad, dh_below_flat, ranges, sq):  # fmt: skip
    """Part ``t`` of layer ``l``'s backward: the gate gradients of its units from ``dh``
    (``dh_flat`` holds (B, H)), then its bias, recurrent and input weights' gradients (written
    by matmuls with ``out=``) and, above layer 0, its share of the gradient at the layer
    below's output (``dh_below_flat`` receives (B, I); the caller sums the parts). At layer 0
    it finally adds the squares of all its gradient blocks into ``sq[t, group]`` for the
    per-tensor clipping."""
    inp, hh, h, u0, owx, owh, ob, so, hoff = slm[l, t]
    bm = obs.shape[0]
    g4 = 4 * h
    dh = dh_flat[: bm * hh].reshape((bm, hh))
    dh_below = dh_below_flat[: bm * inp].reshape((bm, inp))
    if h > 0:
        gl = gates[bm * 4 * hoff : bm * 4 * (hoff + h)].reshape((bm, g4))
        tl = tanh_c[bm * hoff : bm * (hoff + h)].reshape((bm, h))
        dzl = dz[: bm * g4].reshape((bm, g4))
        cprev = np.ascontiguousarray(state[:, so + hh + u0 : so + hh + u0 + h])
        one = np.float32(1.0)
        for j in range(bm):
            for k in range(h):
                ig = gl[j, k]
                fg = gl[j, h + k]
                gg = gl[j, 2 * h + k]
                og = gl[j, 3 * h + k]
                tc = tl[j, k]
                dhk = dh[j, u0 + k]
                dc = dhk * og * (one - tc * tc)
                dzl[j, k] = dc * gg * ig * (one - ig)
                dzl[j, h + k] = dc * cprev[j, k] * fg * (one - fg)
                dzl[j, 2 * h + k] = dc * ig * (one - gg * gg)
                dzl[j, 3 * h + k] = dhk * tc * og * (one - og)
        gb = grad[ob : ob + g4]
        gb[:] = 0.0
        for j in range(bm):
            for k in range(g4):
                gb[k] += dzl[j, k]
        hprev_t = np.ascontiguousarray(state[:, so : so + hh].T)
        np.dot(hprev_t, dzl, grad[owh : owh + hh * g4].reshape((hh, g4)))
        if l == 0:
            gx = grad[owx : owx + inp * g4]
            gx[:] = 0.0
            for j in range(bm):
                r = obs[j] * g4
                for n in range(g4):
                    gx[r + n] += dzl[j, n]
            if rows.shape[0] > 0:  # a chord's rows get the gate gradients of its inputs
                for c in range(rows.shape[0]):
                    for n in range(g4):
                        dsum[c, n] = np.float32(0.0)
                for j in range(bm):
                    c = cid[j]
                    if c >= 0:
                        for n in range(g4):
                            dsum[c, n] += dzl[j, n]
                for c in range(rows.shape[0]):
                    for i in range(rows.shape[1]):
                        r = rows[c, i] * g4
                        if r >= 0:
                            for n in range(g4):
                                gx[r + n] += dsum[c, n]
        else:
            pso = slm[l - 1, 0, 7]
            xin_t = np.ascontiguousarray(new_state[:, pso : pso + inp].T)
            np.dot(xin_t, dzl, grad[owx : owx + inp * g4].reshape((inp, g4)))
            wx = theta[owx : owx + inp * g4].reshape((inp, g4))
            np.dot(dzl, wx.T, dh_below)
    elif l > 0:
        dh_below[:, :] = 0.0
    if l == 0:
        for gi in range(sq.shape[1]):
            sq[t, gi] = 0.0
        for r in range(ranges.shape[0]):
            if ranges[r, 0] == t:
                sq[t, ranges[r, 3]] += _sum_squares(grad[ranges[r, 1] : ranges[r, 2]])


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


@nb.njit(cache=True, fastmath=_FM, error_model="numpy")
def _adam_part(t, theta, target, grad, m, v, ranges, scale, step, lr, b1, b2, eps, eta):
    """Part ``t``'s blocks: clipping (``scale[group]``, 1 = none), Adam, the soft update."""
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    step_size = np.float32(lr / bc1)
    inv_sqrt_bc2 = np.float32(1.0 / math.sqrt(bc2))
    for r in range(ranges.shape[0]):
        if ranges[r, 0] != t:
            continue
        s, e = ranges[r, 1], ranges[r, 2]
        sc = scale[ranges[r, 3]]
        if sc != 1.0:
            for i in range(s, e):
                grad[i] *= sc
        _adam_soft(theta[s:e], target[s:e], grad[s:e], m[s:e], v[s:e], step_size, inv_sqrt_bc2,
                   np.float32(b1), np.float32(b2), np.float32(eps), np.float32(eta))  # fmt: skip


@nb.njit(cache=True, error_model="numpy")
def _td_errors(algo, double_dqn, u, idx, rew, gamma, q, qn, qo, rl, a_b, vnext, dqa, out_loss,
               out_target):  # fmt: skip
    """Targets ``y = r + gamma V(s')``, the loss, its mean target and ``dL/dQ(s, a)``."""
    bm = a_b.shape[0]
    _bootstrap(algo, qn, rl, vnext, qo, double_dqn)
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


@nb.njit(cache=True)
def _sum_parts(parts, n, out):
    """``out[:n] = sum over parts of parts[t, :n]`` (in part order)."""
    for i in range(n):
        acc = parts[0, i]
        for t in range(1, parts.shape[0]):
            acc += parts[t, i]
        out[i] = acc


@nb.njit(cache=True)
def _clip_scales(sq, clip, scale):
    """Per clip group: the factor bringing the gradient's norm down to ``clip`` (1 if below)."""
    for gi in range(scale.shape[0]):
        total = np.float32(0.0)
        for t in range(sq.shape[0]):
            total += sq[t, gi]
        norm = math.sqrt(total)
        scale[gi] = np.float32(clip / norm) if norm > clip else np.float32(1.0)


def _make_update_loop(parallel: bool):
    """The driver of the update: ``parallel`` runs the two parts of each step on two threads
    (numba's OpenMP layer), otherwise one after the other -- with the same results."""
    prange = nb.prange if parallel else range

    def loop(theta, target, m, v, adam_step, rtheta, slm, ometa, ranges, obs, act, rew, prime,
             prime_states, stride, next_qstate, next_rstate, cond, next_cond, rows, idx, algo,
             double_dqn, gamma, lr, b1, b2, eps, clip, eta, out_loss, out_target, ws):  # fmt: skip
        # the buffers come from _workspace (allocating them here made numba's parallel
        # analysis of this function several seconds slower to compile)
        (
            o_b,
            a_b,
            oc_b,
            ac_b,
            csums,
            dsums,
            st,
            nst,
            rst,
            new_st,
            new_nst,
            new_rst,
            new_ost,
            gates_on,
            tanh_on,
            gates_sc,
            tanh_sc,
            z,
            dz,
            qn,
            qo,
            rl,
            q,
            dq,
            vnext,
            dqa,
            grad,
            dh_buf,
            dhp,
            sq,
            scale,
        ) = ws
        nupd, bm = idx.shape
        nl = slm.shape[0]
        npart = slm.shape[1]
        for u in range(nupd):
            for j in range(bm):
                o_b[j] = obs[idx[u, j]]
                a_b[j] = act[idx[u, j]]  # the action played = the next observation
                if rows.shape[0] > 0:  # the chords of obs and of the next observation
                    oc_b[j] = cond[idx[u, j]]
                    ac_b[j] = next_cond[idx[u, j]]
            for l in range(nl):
                for t in prange(npart):
                    _forward_part(
                        np.int64(t), np.int64(l), u, idx, theta, target, rtheta, slm, prime,
                        prime_states, stride, next_qstate, next_rstate, algo, double_dqn, o_b,
                        a_b, oc_b, ac_b, rows, csums, st, nst, rst,
                        new_st, new_nst, new_rst, new_ost, gates_on, tanh_on, gates_sc, tanh_sc,
                        z,
                    )  # fmt: skip
            _output_layer(target, slm, ometa, new_nst, qn)
            if algo == 2:
                _output_layer(rtheta, slm, ometa, new_rst, rl)
            if double_dqn:
                _output_layer(theta, slm, ometa, new_ost, qo)
            _output_layer(theta, slm, ometa, new_st, q)
            _td_errors(algo, double_dqn, u, idx, rew, gamma, q, qn, qo, rl, a_b, vnext, dqa,
                       out_loss, out_target)  # fmt: skip
            hl = slm[nl - 1, 0, 1]
            _backward_head(theta, slm, ometa, new_st, a_b, dqa, grad, dq,
                           dh_buf[: bm * hl].reshape((bm, hl)))  # fmt: skip
            # (the layer loop reassigns no array variable: numba's parallel lowering got such
            # reassignments around a prange wrong)
            for l in range(nl - 1, -1, -1):
                for t in prange(npart):
                    _backward_part(
                        np.int64(t), np.int64(l), theta, slm, o_b, oc_b, rows, dsums[t], st[t],
                        new_st, gates_on[t], tanh_on[t], dh_buf, dz[t], grad, dhp[t], ranges, sq,
                    )  # fmt: skip
                if l > 0:
                    _sum_parts(dhp, bm * slm[l, 0, 0], dh_buf)
            _clip_scales(sq, clip, scale)
            adam_step[0] += 1
            for t in prange(npart):
                _adam_part(np.int64(t), theta, target, grad, m, v, ranges, scale, adam_step[0], lr,
                           b1, b2, eps, eta)  # fmt: skip

    loop.__name__ = loop.__qualname__ = "_update_parallel" if parallel else "_update_serial"
    return nb.njit(cache=True, parallel=parallel, error_model="numpy")(loop)


_update_serial = _make_update_loop(False)
_update_parallel = _make_update_loop(True)


def _workspace(
    sl: SplitLayout, bm: int, s_size: int, algo: int, chords: int = 0
) -> tuple[np.ndarray, ...]:
    """Scratch buffers of the update loop for minibatches of ``bm`` (see ``loop``'s unpacking)."""
    slm = sl.lmeta
    npart = slm.shape[1]
    hmax = int(slm[:, 0, 1].max())
    dmax = max(hmax, int(slm[:, 0, 0].max()))
    umax = max(1, int(sl.units.max()))
    f32 = np.float32

    def parts(*shape: int) -> np.ndarray:
        return np.zeros((npart, *shape), dtype=f32)

    def rows(width: int, dtype: type = f32) -> np.ndarray:
        return np.zeros((bm, width), dtype=dtype)

    return (
        np.zeros(bm, np.int64),  # o_b
        np.zeros(bm, np.int64),  # a_b
        np.full(bm, -1, np.int64),  # oc_b: the chord of obs (conditioned networks)
        np.full(bm, -1, np.int64),  # ac_b: the chord of the next observation
        parts(3, chords, 4 * hmax),  # csums: chord input sums of target, online, Reward RNN
        parts(chords, 4 * hmax),  # dsums: gate gradients summed per chord
        parts(bm, s_size),  # st: state before obs (per part's own copy)
        parts(bm, s_size),  # nst: state after obs (s')
        parts(bm if algo == 2 else 1, s_size),  # rst: Reward-RNN state at s' (G)
        rows(s_size),  # new_st
        rows(s_size),  # new_nst
        rows(s_size),  # new_rst
        rows(s_size),  # new_ost
        parts(bm * 4 * umax),  # gates_on
        parts(bm * umax),  # tanh_on
        parts(bm * 4 * umax),  # gates_sc
        parts(bm * umax),  # tanh_sc
        parts(bm * 4 * hmax),  # z
        parts(bm * 4 * hmax),  # dz
        rows(NUM_CLASSES),  # qn
        rows(NUM_CLASSES),  # qo
        rows(NUM_CLASSES),  # rl
        rows(NUM_CLASSES),  # q
        rows(NUM_CLASSES),  # dq
        np.zeros(bm, np.float64),  # vnext
        np.zeros(bm, f32),  # dqa
        np.zeros(sl.perm.size, f32),  # grad
        np.zeros(bm * dmax, f32),  # dh_buf
        parts(bm * dmax),  # dhp
        np.zeros((npart, sl.num_groups), f32),  # sq
        np.ones(sl.num_groups, f32),  # scale
    )


_parallel_state: dict[str, int] = {}


def parallel_available() -> bool:
    """Whether :func:`update_many` can use two threads here: numba's OpenMP threading layer must
    load (it needs ``libgomp``). Other layers cost ~100 µs per parallel step here, more than the
    work, so without OpenMP the update runs on one thread. Decided once per process; a child
    forked after the OpenMP threads started stays on one thread (libgomp is not fork-safe)."""
    if _parallel_state.get("pid", os.getpid()) != os.getpid():
        return False
    if "ok" not in _parallel_state:
        _parallel_state["pid"] = os.getpid()
        ok = False
        try:
            if nb.config.THREADING_LAYER == "default":
                nb.config.THREADING_LAYER = "omp"
            _probe_parallel(np.zeros(2))
            ok = nb.threading_layer() == "omp" and nb.config.NUMBA_NUM_THREADS >= 2
        except (ValueError, RuntimeError, ImportError):  # no OpenMP runtime
            ok = False
        _parallel_state["ok"] = ok
    return _parallel_state["ok"]


@nb.njit(cache=True, parallel=True)
def _probe_parallel(x):
    for t in nb.prange(2):
        x[t] += 1.0


@functools.cache
def default_threads() -> int:
    """Threads for the update: 2 when two CPUs are available to this process, else 1 (looked
    up once per process)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return 2 if cpus >= 2 else 1


def uses_parallel_kernel(threads: int) -> bool:
    """Whether an update with ``threads`` (1, 2, or 0 = automatic) runs the two-part kernel on
    numba's OpenMP threads, rather than the one-thread kernel."""
    if threads == 1 or (threads == 0 and default_threads() < 2):
        return False
    return parallel_available()


class ThreadChooser:
    """Picks one or two threads for each call of the update by its measured cost per update.

    Two threads are ~1.5x faster on an idle 2-CPU machine but ~2x *slower* than one when the
    other CPU is busy (the second thread then waits for time slices at every step). The
    results never depend on the choice, so it follows the machine's load. After a first call
    of each choice (not counted: it may load code) and ``burst`` measured calls of each, the
    faster is used; every ``interval`` calls the other gets a burst of ``burst`` calls, and the
    median of that burst is compared with the median of the last ``window`` calls of the
    current choice -- medians, so that a stray slow call does not flip the choice. Two
    threads are kept unless they cost ``margin`` times one thread's. The interval starts at
    ``explore_every`` and doubles (up to ``max_interval``) each time the other is still slower."""

    def __init__(
        self,
        explore_every: int = 32,
        max_interval: int = 1024,
        window: int = 5,
        burst: int = 3,
        margin: float = 1.25,
    ) -> None:
        self.explore_every = explore_every
        self.max_interval = max_interval
        self.window = window
        self.burst = burst
        self.margin = margin
        self.recent: dict[int, list[float]] = {1: [], 2: []}
        self.seen = {1: 0, 2: 0}
        self.current = 2
        self.interval = explore_every
        self.since = 0
        self.burst_left = 0

    def _median(self, threads: int, last: int) -> float:
        return float(np.median(self.recent[threads][-last:]))

    def _faster(self, a: int, b: int) -> bool:
        """Whether choice ``a`` beats ``b`` by the recent medians (favouring two threads)."""
        ca, cb = self._median(a, self.burst), self._median(b, self.window)
        return ca <= self.margin * cb if a == 2 else self.margin * ca < cb

    def pick(self) -> int:
        for n in (2, 1):  # measure both first
            if self.seen[n] < 1 + self.burst:
                return n
        if self.burst_left > 0:
            return 3 - self.current
        if self.since >= self.interval:
            self.since = 0
            self.burst_left = self.burst
            return 3 - self.current
        self.since += 1
        return self.current

    def record(self, threads: int, seconds_per_update: float) -> None:
        self.seen[threads] += 1
        if self.seen[threads] == 1:
            return
        r = self.recent[threads]
        r.append(seconds_per_update)
        del r[: -self.window]
        if self.seen[1] == 1 + self.burst and threads == 1:  # both measured: first decision
            self.current = 1 if self._faster(1, 2) else 2
        elif threads != self.current and self.burst_left > 0:
            self.burst_left -= 1
            if self.burst_left == 0:
                if self._faster(threads, self.current):
                    self.current = threads
                    self.interval = self.explore_every
                else:
                    self.interval = min(2 * self.interval, self.max_interval)


class SplitUpdater:
    """The update's own copies of the online and target networks and Adam's moments, in
    :class:`SplitLayout` order, kept between calls so that nothing is reordered per update.

    ``load(theta, target, m, v)`` copies canonical arrays in; :meth:`run` performs updates and
    writes the online network back into the caller's canonical ``theta`` (the acting network
    reads it); :meth:`store` writes target and moments back on request (checkpoints)."""

    def __init__(self, layout: NetLayout, reward_theta: np.ndarray) -> None:
        self.layout = SplitLayout(layout)
        sl = self.layout
        self.theta = np.zeros(layout.num_params, dtype=np.float32)
        self.target = np.zeros_like(self.theta)
        self.m = np.zeros_like(self.theta)
        self.v = np.zeros_like(self.theta)
        self.reward_theta = sl.split(np.ascontiguousarray(reward_theta, dtype=np.float32))
        self._ometa = layout.ometa
        self._ws: tuple[np.ndarray, ...] = ()
        self._ws_key: tuple[int, ...] | None = None
        self._chooser = ThreadChooser()

    def load(self, theta: np.ndarray, target: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
        sl = self.layout
        for src, dst in ((theta, self.theta), (target, self.target), (m, self.m), (v, self.v)):
            sl.split(src, out=dst)

    def load_theta(self, theta: np.ndarray) -> None:
        self.layout.split(theta, out=self.theta)

    def store(self, theta: np.ndarray, target: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
        sl = self.layout
        for src, dst in ((self.theta, theta), (self.target, target), (self.m, m), (self.v, v)):
            sl.merge(src, dst)

    def run(
        self,
        theta_out: np.ndarray,
        adam_step: np.ndarray,
        replay: tuple[np.ndarray, ...],
        stride: int,
        idx: np.ndarray,
        algo: int,
        double_dqn: bool,
        hyper: tuple[float, ...],
        out_loss: np.ndarray,
        out_target: np.ndarray,
        threads: int = 1,
    ) -> None:
        """``idx.shape[0]`` updates (see :func:`update_many`); then ``theta_out`` (canonical)
        receives the online network. ``replay = (obs, act, rew, prime, prime_states,
        next_qstate, next_rstate[, cond, next_cond])``; ``hyper = (gamma, lr, b1, b2, eps,
        clip, eta)``."""
        sl = self.layout
        obs, act, rew, prime, prime_states, next_qstate, next_rstate = replay[:7]
        cond, next_cond, rows = replay[7:] if len(replay) > 7 else (None, None, None)
        if rows is None or cond is None:
            cond = next_cond = np.zeros(1, dtype=np.int8)
            rows = np.zeros((0, 0), dtype=np.int64)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        key = (idx.shape[1], next_qstate.shape[1], algo, rows.shape[0])
        if self._ws_key != key:
            self._ws = _workspace(sl, *key)
            self._ws_key = key
        args = (
            self.theta, self.target, self.m, self.v, adam_step, self.reward_theta, sl.lmeta,
            self._ometa, sl.ranges, obs, act, rew, prime, prime_states, stride, next_qstate,
            next_rstate, cond, next_cond, rows, idx, algo, bool(double_dqn), *hyper, out_loss,
            out_target, self._ws,
        )  # fmt: skip
        if not uses_parallel_kernel(threads):
            _update_serial(*args)
        elif threads >= 2:
            nb.set_num_threads(min(NUM_PARTS, nb.config.NUMBA_NUM_THREADS))
            _update_parallel(*args)
        else:  # auto: one or two threads, whichever is measured faster right now
            n = self._chooser.pick()
            nb.set_num_threads(n)
            t0 = time.perf_counter()
            _update_parallel(*args)
            self._chooser.record(n, (time.perf_counter() - t0) / idx.shape[0])
        sl.merge(self.theta, theta_out)


def update_many(
    theta: np.ndarray,
    target: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    adam_step: np.ndarray,
    rtheta: np.ndarray,
    layout: NetLayout,
    obs: np.ndarray,
    act: np.ndarray,
    rew: np.ndarray,
    prime: np.ndarray,
    prime_states: np.ndarray,
    stride: int,
    next_qstate: np.ndarray,
    next_rstate: np.ndarray,
    idx: np.ndarray,
    algo: int,
    double_dqn: bool,
    gamma: float,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    clip: float,
    eta: float,
    out_loss: np.ndarray,
    out_target: np.ndarray,
    threads: int = 1,
    cond: np.ndarray | None = None,
    next_cond: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> None:
    """Run ``idx.shape[0]`` minibatch updates on canonical arrays (updated in place);
    minibatch ``u`` uses replay rows ``idx[u]``.

    Replay arrays (see :class:`rltuner.learner.ReplayMemory`): ``obs``/``act`` (M,) int8 (next
    observation = the action played), ``rew`` (M,) float32, ``next_qstate`` (M, S) float32
    (Q-network state after consuming ``obs``), ``next_rstate`` (M, S) Reward-RNN state after
    ``obs`` (G only); for a conditioned network (``layout.cond_inputs > 0``) ``cond`` /
    ``next_cond`` (M,) int8 the chord of ``obs`` and of the next observation (``-1`` = none)
    and ``rows`` (C, K) each chord's conditioning rows of layer 0 (``-1``-padded). The state
    *before* ``obs`` is ``prime_states[prime[r]]`` when
    ``prime[r] >= 0`` (first step of a composition), else ``next_qstate[(r - stride) % M]``.
    ``adam_step`` is a 1-element int64 array, incremented per update. Per update: target
    ``y = r + gamma * V(s')`` from the target network (and for G the Reward RNN at s'),
    loss ``mean((Q(s, a) - y)^2)``, gradient, clipping per tensor, Adam, then
    ``target <- target + eta * (theta - target)``. ``out_loss[u]`` / ``out_target[u]`` get the
    loss and the mean target value. ``threads = 2`` runs the two halves of every step on two
    threads when :func:`parallel_available`; the results are identical.

    This converts the layout on every call; the tuner keeps a :class:`SplitUpdater` instead."""
    up = SplitUpdater(layout, rtheta)
    up.load(theta, target, m, v)
    up.run(
        theta, adam_step,
        (obs, act, rew, prime, prime_states, next_qstate, next_rstate, cond, next_cond, rows),
        stride,
        idx, algo, double_dqn, (gamma, lr, b1, b2, eps, clip, eta), out_loss, out_target,
        threads,
    )  # fmt: skip
    up.store(theta, target, m, v)
