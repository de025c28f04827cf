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
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from rltuner.checkpoint import load_arrays
from rltuner.conditioning import chord_input_rows, progressions_from_json
from rltuner.encoding import NUM_CLASSES
from rltuner.env import Priming
from rltuner.errors import RltunerError
from rltuner.harmony import HarmonyTables, Progression
from rltuner.lstm_kernels import single_threaded_blas
from rltuner.network import Network, bundled_note_rnn_path, load_network, network_from_checkpoint

__all__ = [
    "POLICY_ALGORITHMS",
    "Policy",
    "Samples",
    "action_scores",
    "sample",
    "default_workers",
    "LoadedPolicy",
    "load_policy",
    "load_prior",
    "resolve_model_path",
    "PRIOR_PREFIX",
    "prior_record",
    "prior_arrays",
    "resolve_prior",
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
    # a chord-conditioned network's progressions (those it was tuned over): the default chords
    # it is sampled over
    progressions: tuple[Progression, ...] = ()

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
    (``None`` when ``probs_for`` is 0); over chords, ``harmony`` the progressions' tables and
    ``chord_of`` (M, N) int64 the chord (row of ``harmony``) at each step of each composition
    (composition ``i`` plays progression ``i mod P``)."""

    compositions: np.ndarray
    log_p: np.ndarray
    kl: np.ndarray
    first_obs: np.ndarray
    probs: np.ndarray | None = None
    harmony: HarmonyTables | None = None
    chord_of: np.ndarray | None = None


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


def _chunk(policy, b, num_notes, rng, priming, inv_temp, greedy, keep_probs, chord_of, rows):
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
        cond = None if rows is None else (chord_of[:, t], rows)
        q, net_state = policy.network.step(obs, net_state, out=bufs[t % 2], cond=cond)
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
    progressions: Sequence[Progression] | None = None,
) -> Samples:
    """Sample ``n`` compositions of ``num_notes`` steps from ``policy`` (see the module
    docstring), in chunks of ``batch`` on ``workers`` threads (``None``:
    :func:`default_workers`; the kernels release the GIL). ``priming`` defaults to random-note
    priming; a :class:`~rltuner.env.Priming` of another mode starts from primed states (made
    with the policy's base Note RNN, as in training). ``probs_for``: also return the note
    distributions of the first that many compositions (at most ``batch``). ``progressions``:
    play over these chords (composition ``i`` over progression ``i mod P``; default: the
    policy's own, for a chord-conditioned network): a conditioned network reads them."""
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
    progs = tuple(progressions) if progressions else policy.progressions
    if policy.network.cond_inputs and not progs:
        raise RltunerError(
            "this model was tuned over chords and reads the current chord: give a progression "
            '(--chords "C G Am F")'
        )
    harmony = HarmonyTables.build(progs, num_notes) if progs else None
    chord_of = None if harmony is None else harmony.steps[np.arange(n) % len(progs)]
    rows = None
    if harmony is not None and policy.network.cond_inputs:
        rows = chord_input_rows(harmony)

    def run(i: int) -> None:
        s = starts[i]
        b = min(batch, n - s)
        rng = np.random.default_rng([*seeds, i])
        ch = None if chord_of is None else chord_of[s : s + b]
        c, lp, k, f, p = _chunk(policy, b, num_notes, rng, priming, 1.0 / temperature,
                                most_probable, probs_for if i == 0 else 0, ch, rows)  # fmt: skip
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
    return Samples(comps, log_p, kl, first, probs, harmony, chord_of)


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


# ------------------------------------------------------------------------------ priors
# A tuned checkpoint records its prior (the Note RNN it was tuned from: Reward RNN, and for G
# part of the policy) as ``meta["training"]["prior"]`` (run checkpoints: ``meta["prior"]``):
# ``sha256`` (Network.weights_hash), ``layer_sizes``, ``source`` (the path as the user gave it,
# or "bundled"), ``relative`` (that file relative to the checkpoint's folder, when there was a
# file) and ``embedded``; with ``embedded`` its weights are the arrays under PRIOR_PREFIX.
PRIOR_PREFIX = "prior/"
_ANNOUNCED: set[str] = set()  # checkpoints whose unconfirmed prior was already reported


def prior_record(
    prior: Network, source: str, source_path: Path | None, where: Path, embedded: bool
) -> dict[str, Any]:
    """The identity of ``prior`` as a checkpoint in folder ``where`` records it."""
    rec: dict[str, Any] = {
        "sha256": prior.weights_hash(),
        "layer_sizes": list(prior.layout.layer_sizes),
        "source": source,
        "embedded": bool(embedded),
    }
    if source != "bundled" and source_path is not None:
        rec["relative"] = os.path.relpath(os.path.abspath(source_path), os.path.abspath(where))
    return rec


def prior_arrays(prior: Network) -> dict[str, np.ndarray]:
    """The prior's weights as arrays to embed in a checkpoint (under :data:`PRIOR_PREFIX`)."""
    return {PRIOR_PREFIX + k: v for k, v in prior.to_state_dict().items()}


def _describe(record: dict[str, Any]) -> str:
    sizes = "x".join(str(h) for h in record.get("layer_sizes", ())) or "?"
    return f"LSTM {sizes}, sha256 {str(record.get('sha256', '?'))[:16]}…"


def _source_path(source: str | None) -> Path | None:
    if not source:
        return None
    return bundled_note_rnn_path() if source == "bundled" else Path(source)


def resolve_prior(
    checkpoint: Path,
    record: dict[str, Any] | None,
    arrays: dict[str, np.ndarray],
    legacy: Sequence[str | None] = (),
    note_rnn: str | os.PathLike | None = None,
) -> tuple[Network, Path | None]:
    """The prior of the tuned checkpoint ``checkpoint`` (its ``record`` and ``arrays``) and
    where it came from (``None``: embedded, else the file used).

    ``note_rnn`` (given by the user) is used when it matches the recorded hash, else refused.
    Otherwise: the embedded weights; else the recorded file (as given, then relative to the
    checkpoint's folder), then the bundled Note RNN, each only when its hash matches; else one
    clear error naming what is missing and how to supply it. A checkpoint of an earlier version
    (no ``record``) takes ``note_rnn``, else the first existing of ``legacy`` and the bundled
    Note RNN, and says once that this prior cannot be confirmed."""
    if record is None:
        if note_rnn is not None:
            return load_network(note_rnn)[0], Path(note_rnn)
        for c in [*legacy, "bundled"]:
            p = _source_path(c)
            if p is not None and p.is_file():
                if str(checkpoint) not in _ANNOUNCED:
                    _ANNOUNCED.add(str(checkpoint))
                    print(
                        f"note: {checkpoint} was written by an older rltuner and does not record "
                        f"which Note RNN it was tuned from; using {p} as its prior (this cannot "
                        "be confirmed; pass --note-rnn PATH to choose another)",
                        file=sys.stderr,
                    )
                return load_network(p)[0], p
        raise RltunerError(
            f"{checkpoint}: its prior Note RNN {legacy[0] if legacy else None!r} is missing and "
            "so is the bundled one; pass it with --note-rnn PATH"
        )
    want = record.get("sha256")
    if note_rnn is not None:
        net = load_network(note_rnn)[0]
        if net.weights_hash() != want:
            raise RltunerError(
                f"{note_rnn}: does not match the prior Note RNN {checkpoint} was tuned from "
                f"({_describe(record)}); pass that Note RNN"
            )
        return net, Path(note_rnn)
    embedded = {k[len(PRIOR_PREFIX) :]: v for k, v in arrays.items() if k.startswith(PRIOR_PREFIX)}
    if embedded:
        net = Network.from_state_dict(embedded, tuple(record["layer_sizes"]), str(checkpoint))
        if net.weights_hash() != want:
            raise RltunerError(
                f"{checkpoint}: its embedded prior Note RNN does not match its recorded hash "
                "(the file is damaged); pass the Note RNN it was tuned from with --note-rnn PATH"
            )
        return net, None
    candidates: list[Path] = []
    source = _source_path(record.get("source"))
    if source is not None:
        candidates.append(source)
    if record.get("relative"):
        candidates.append(checkpoint.parent / record["relative"])
    candidates.append(bundled_note_rnn_path())
    tried: list[str] = []
    seen: set[str] = set()
    for c in candidates:
        key = os.path.abspath(c)
        if key in seen:
            continue
        seen.add(key)
        if not c.is_file():
            tried.append(f"{c} is missing")
            continue
        try:
            net = load_network(c)[0]
        except RltunerError:
            tried.append(f"{c} is not a Note RNN checkpoint")
            continue
        if net.weights_hash() == want:
            return net, c
        tried.append(f"{c} does not match (another model)")
    raise RltunerError(
        f"{checkpoint}: the prior Note RNN it was tuned from ({_describe(record)}) is not "
        f"embedded in it and {'; '.join(tried)}; pass that Note RNN with --note-rnn PATH "
        "(it is checked against the hash)"
    )


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
    ``tuned.safetensors``, or its run folder) with its algorithm and its prior, found by
    :func:`resolve_prior` (``note_rnn``: the prior, checked against the recorded hash)."""
    path = resolve_model_path(spec)
    arrays, meta = load_arrays(path, what="Note RNN checkpoint")
    own = {k: v for k, v in arrays.items() if not k.startswith(PRIOR_PREFIX)}
    network = network_from_checkpoint(own, meta, str(path))
    training = meta.get("training") or {}
    tuner_cfg = training.get("tuner_config") or {}
    progs = tuple(progressions_from_json(training.get("progressions") or (), str(path)))
    if network.cond_inputs and not progs:
        raise RltunerError(f"{path}: a chord-conditioned model without its chord progressions")
    if not tuner_cfg:
        return LoadedPolicy(Policy(network, progressions=progs), path, meta, None)
    algorithm = str(tuner_cfg.get("algorithm", "q"))
    if algorithm not in POLICY_ALGORITHMS:
        raise RltunerError(f"{path}: unknown tuning algorithm {algorithm!r} in its metadata")
    record = training.get("prior")
    legacy = [training.get("base_note_rnn"), tuner_cfg.get("note_rnn")]
    prior, prior_path = resolve_prior(path, record, arrays, legacy, note_rnn)
    if prior_path is None:  # embedded: name it by where it came from
        prior_path = _source_path(record.get("source")) or path
    return LoadedPolicy(Policy(network, algorithm, prior, progs), path, meta, prior_path)


def load_prior(spec: str | os.PathLike, note_rnn: str | os.PathLike | None = None) -> Network:
    """The Note RNN that scores melodies for ``spec``: a Note RNN file itself, or a tuned
    model's prior (:func:`load_policy`)."""
    return load_policy(spec, note_rnn).policy.base
