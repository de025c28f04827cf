"""The thing that acts: a network, its algorithm's action scores, and the one sampler.

A :class:`Policy` is a network plus how its outputs become action scores (:func:`action_scores`:
Q, Ψ or the Note RNN's logits as they are; for G, ``G + prior logits``) and, for a tuned
model, the prior it was tuned from (the Reward RNN). :func:`sample` draws compositions from it;
``rltuner generate``, ``rltuner evaluate``, the report and the tuner's evaluation windows,
Table-1 statistics and samples all sample through it, so every path samples a G model from
``softmax(G + prior logits)``.

Sampling (no exploration): each chunk of compositions starts primed (:class:`rltuner.env.Priming`;
default random-note: zero LSTM states, first observation uniform over the 38 classes), then the
network and the prior advance one step per note on the numba forward pass
(:meth:`rltuner.network.Network.step`) and each next note is drawn from ``softmax(scores /
temperature)`` by inverse CDF (or is the argmax with ``most_probable``). Chunk ``i`` draws all
its random numbers from ``numpy.random.default_rng([*seed, i])``: the same seed and chunk size
give the same compositions whatever the number of worker threads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from rltuner.encoding import NUM_CLASSES
from rltuner.env import Priming
from rltuner.errors import RltunerError
from rltuner.lstm_kernels import single_threaded_blas
from rltuner.network import Network, bundled_note_rnn_path, load_network

__all__ = [
    "POLICY_ALGORITHMS",
    "Policy",
    "Samples",
    "action_scores",
    "sample",
    "default_workers",
    "LoadedPolicy",
    "load_policy",
    "resolve_model_path",
]

# "note_rnn": an untuned Note RNN (samples from its own logits); "kl_pg": the policy-gradient
# tuner's policy network (rltuner.policy_gradient), whose logits are its action scores
POLICY_ALGORITHMS = ("note_rnn", "q", "psi", "g", "pure_rl", "kl_pg")


def action_scores(algorithm: str, q: np.ndarray, reward_logits: np.ndarray) -> np.ndarray:
    """What the policy takes argmax / softmax of: ``Q`` (or Ψ, or a Note RNN's logits), and for
    G ``G + logits`` of the prior (softmax-equivalent to ``G + log p``: the policy is
    ∝ p(a|s)·exp(G(s, a)))."""
    return q + reward_logits if algorithm == "g" else q


@dataclass
class Policy:
    """A network that acts. ``algorithm`` is ``"note_rnn"`` for an untuned Note RNN, else the
    tuner's algorithm; ``prior`` is the Note RNN a tuned model was tuned from (its Reward RNN;
    G acts on ``network logits + prior logits``), ``None`` when the network is its own prior."""

    network: Network
    algorithm: str = "note_rnn"
    prior: Network | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in POLICY_ALGORITHMS:
            valid = ", ".join(POLICY_ALGORITHMS)
            raise RltunerError(f"unknown policy algorithm {self.algorithm!r}; valid: {valid}")
        if self.algorithm == "g" and self.prior is None:
            raise RltunerError("a G policy acts on G + prior logits: it needs its prior Note RNN")

    @property
    def base(self) -> Network:
        """The untuned Note RNN: the prior, or the network itself."""
        return self.prior if self.prior is not None else self.network

    def scores(self, q: np.ndarray, prior_logits: np.ndarray) -> np.ndarray:
        return action_scores(self.algorithm, q, prior_logits)

    def sample(self, n: int, num_notes: int = 32, seed: int | Sequence[int] = 0, **kw) -> Samples:
        """:func:`sample` from this policy."""
        return sample(self, n, num_notes, seed, **kw)


class Samples(NamedTuple):
    """Compositions sampled from a policy and per-step scores.

    ``compositions`` (M, N) int8 classes; ``log_p`` (M, N) float32 ``log p(a|s)`` of each
    sampled note under the prior (the network itself for an untuned Note RNN); ``kl`` (M, N)
    float32 ``KL(π(·|s) ‖ p(·|s))`` at each step (0 for an untuned Note RNN at temperature 1);
    ``first_obs`` (M,) int64 the priming observation; ``probs`` (K, N, 38) float32 the
    distribution each note of the first ``K = probs_for`` compositions was drawn from
    (``None`` when ``probs_for`` is 0)."""

    compositions: np.ndarray
    log_p: np.ndarray
    kl: np.ndarray
    first_obs: np.ndarray
    probs: np.ndarray | None = None


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _centre(q, rl, mode, inv_temp, x):
    """``x[0] = scores·inv_temp − row max`` (scores = q, or q + rl for G = mode 2); for
    mode > 0 also ``x[1] = rl − row max``."""
    b = q.shape[0]
    for j in range(b):
        m = np.float32(-np.inf)
        for a in range(NUM_CLASSES):
            v = (q[j, a] + rl[j, a] if mode == 2 else q[j, a]) * inv_temp
            x[0, j, a] = v
            m = max(m, v)
        for a in range(NUM_CLASSES):
            x[0, j, a] -= m
        if mode > 0:
            m = np.float32(-np.inf)
            for a in range(NUM_CLASSES):
                m = max(m, rl[j, a])
            for a in range(NUM_CLASSES):
                x[1, j, a] = rl[j, a] - m


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _draw(x, e, mode, greedy, u, obs, log_p, kl):
    """Draw ``obs[j]`` from ``softmax(x[0, j])`` by inverse CDF with ``u[j]`` (``e = exp(x)``),
    or take its argmax with ``greedy``; write its prior ``log_p[j]`` and ``kl[j] = Σ π (log π −
    log p)``."""
    b = x.shape[1]
    for j in range(b):
        s = 0.0
        for a in range(NUM_CLASSES):
            s += e[0, j, a]
        pick = NUM_CLASSES - 1
        if greedy:
            pick = 0
            for a in range(1, NUM_CLASSES):
                if x[0, j, a] > x[0, j, pick]:
                    pick = a
        else:
            target = u[j] * s
            c = 0.0
            for a in range(NUM_CLASSES):
                c += e[0, j, a]
                if c >= target:
                    pick = a
                    break
        obs[j] = pick
        log_s = math.log(s)
        if mode == 0:
            log_p[j] = x[0, j, pick] - log_s
            kl[j] = 0.0
            continue
        sr = 0.0
        for a in range(NUM_CLASSES):
            sr += e[1, j, a]
        log_sr = math.log(sr)
        log_p[j] = x[1, j, pick] - log_sr
        d = 0.0
        for a in range(NUM_CLASSES):
            d += e[0, j, a] * ((x[0, j, a] - log_s) - (x[1, j, a] - log_sr))
        kl[j] = max(d / s, 0.0)


def default_workers() -> int:
    """Threads for :func:`sample`: the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def _chunk(policy, b, num_notes, rng, priming, inv_temp, greedy, keep_probs):
    state, obs, _ = priming.draw(b, rng)
    obs = np.ascontiguousarray(obs, dtype=np.int64)
    first = obs.copy()
    uniforms = rng.random((num_notes, b))
    prior = policy.prior
    # mode 0: the network is its own prior at temperature 1 (log p from the same softmax)
    mode = 2 if policy.algorithm == "g" else (1 if prior is not None or inv_temp != 1.0 else 0)
    net_state = state
    prior_state = state.copy() if prior is not None else None
    # ping-pong output buffers: fresh multi-megabyte arrays every step cost page faults
    s_size = state.shape[1]
    bufs = [(np.empty((b, NUM_CLASSES), np.float32), np.empty((b, s_size), np.float32))
            for _ in range(4)]  # fmt: skip
    x = np.empty((2 if mode else 1, b, NUM_CLASSES), dtype=np.float32)
    e = np.empty_like(x)
    comps = np.empty((num_notes, b), dtype=np.int8)
    log_p = np.empty((num_notes, b), dtype=np.float32)
    kl = np.empty((num_notes, b), dtype=np.float32)
    keep = min(keep_probs, b)
    probs = np.empty((num_notes, keep, NUM_CLASSES), dtype=np.float32) if keep else None
    for t in range(num_notes):
        q, net_state = policy.network.step(obs, net_state, out=bufs[t % 2])
        if prior is not None:
            rl, prior_state = prior.step(obs, prior_state, out=bufs[2 + t % 2])
        else:
            rl = q
        _centre(q, rl, mode, np.float32(inv_temp), x)
        np.exp(x, out=e)
        _draw(x, e, mode, greedy, uniforms[t], obs, log_p[t], kl[t])
        comps[t] = obs
        if probs is not None:
            probs[t] = e[0, :keep] / e[0, :keep].sum(axis=1, keepdims=True)
    return comps.T, log_p.T, kl.T, first, None if probs is None else probs.transpose(1, 0, 2)


def sample(
    policy: Policy,
    n: int,
    num_notes: int = 32,
    seed: int | Sequence[int] = 0,
    *,
    priming: Priming | None = None,
    temperature: float = 1.0,
    most_probable: bool = False,
    batch: int = 1024,
    workers: int | None = 1,
    probs_for: int = 0,
) -> Samples:
    """Sample ``n`` compositions of ``num_notes`` steps from ``policy`` (see the module
    docstring), in chunks of ``batch`` on ``workers`` threads (``None``:
    :func:`default_workers`; the kernels release the GIL). ``priming`` defaults to random-note
    priming; a :class:`~rltuner.env.Priming` of another mode starts from primed states (made
    with the policy's base Note RNN, as in training). ``probs_for``: also return the note
    distributions of the first that many compositions (at most ``batch``)."""
    if n < 1 or num_notes < 1:
        raise RltunerError(f"need at least one composition of one note, got {n} x {num_notes}")
    if not temperature > 0:
        raise RltunerError(f"temperature must be > 0, got {temperature}")
    seeds = [int(seed)] if isinstance(seed, int | np.integer) else [int(s) for s in seed]
    priming = priming if priming is not None else Priming("random_note", policy.base)
    comps = np.empty((n, num_notes), dtype=np.int8)
    log_p = np.empty((n, num_notes), dtype=np.float32)
    kl = np.empty((n, num_notes), dtype=np.float32)
    first = np.empty(n, dtype=np.int64)
    probs_for = min(max(int(probs_for), 0), n, batch)
    probs = None
    starts = list(range(0, n, batch))

    def run(i: int) -> None:
        s = starts[i]
        b = min(batch, n - s)
        rng = np.random.default_rng([*seeds, i])
        c, lp, k, f, p = _chunk(policy, b, num_notes, rng, priming, 1.0 / temperature,
                                most_probable, probs_for if i == 0 else 0)  # fmt: skip
        comps[s : s + b], log_p[s : s + b], kl[s : s + b], first[s : s + b] = c, lp, k, f
        if p is not None:
            nonlocal probs
            probs = p

    workers = min(workers or default_workers(), len(starts))
    with single_threaded_blas():
        if workers <= 1:
            for i in range(len(starts)):
                run(i)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, range(len(starts))))
    return Samples(comps, log_p, kl, first, probs)


# ------------------------------------------------------------------------------ loading
def resolve_model_path(spec: str | os.PathLike) -> Path:
    """The checkpoint file of ``spec``: ``"bundled"`` (the packaged Note RNN), a run or
    training folder (its ``tuned``, ``best`` or ``last`` ``.safetensors``), or a file."""
    spec = str(spec)
    if spec == "bundled":
        path = bundled_note_rnn_path()
        if not path.exists():
            raise RltunerError(f"{path}: the bundled Note RNN is missing; pass a checkpoint path")
        return path
    p = Path(spec)
    if p.is_dir():
        for name in ("tuned.safetensors", "best.safetensors", "last.safetensors"):
            if (p / name).exists():
                return p / name
        raise RltunerError(f"{p}: folder holds no model (tuned/best/last .safetensors)")
    if not p.exists():
        raise RltunerError(f"{p}: no such model file or run directory")
    return p


class LoadedPolicy(NamedTuple):
    """A policy loaded from a checkpoint: the :class:`Policy`, the checkpoint file ``path``, its
    metadata ``meta`` and where its prior came from (``prior_path``; ``None`` for an untuned
    Note RNN, which is its own prior)."""

    policy: Policy
    path: Path
    meta: dict[str, Any]
    prior_path: Path | None


def load_policy(spec: str | os.PathLike, note_rnn: str | os.PathLike | None = None) -> LoadedPolicy:
    """Load a model to act with: an untuned Note RNN, or a tuned checkpoint (``rltuner tune``'s
    ``tuned.safetensors``, or its run folder) with its algorithm and its prior. A tuned
    model's prior is ``note_rnn`` when given, else its metadata's ``training.base_note_rnn``,
    else the bundled Note RNN when that file no longer exists."""
    path = resolve_model_path(spec)
    network, meta = load_network(path)
    training = meta.get("training") or {}
    tuner_cfg = training.get("tuner_config") or {}
    if not tuner_cfg:
        return LoadedPolicy(Policy(network), path, meta, None)
    algorithm = str(tuner_cfg.get("algorithm", "q"))
    if algorithm not in POLICY_ALGORITHMS:
        raise RltunerError(f"{path}: unknown tuning algorithm {algorithm!r} in its metadata")
    candidates = [note_rnn] if note_rnn is not None else []
    candidates += [training.get("base_note_rnn"), tuner_cfg.get("note_rnn"), None]
    prior_path = None
    for c in candidates:
        p = Path(c) if c else bundled_note_rnn_path()
        if p.exists():
            prior_path = p
            break
    if prior_path is None:
        raise RltunerError(
            f"{path}: its base Note RNN {training.get('base_note_rnn')!r} is missing and so is "
            "the bundled one; the Reward RNN cannot be loaded"
        )
    prior, _ = load_network(prior_path)
    return LoadedPolicy(Policy(network, algorithm, prior), path, meta, prior_path)
