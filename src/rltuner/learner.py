"""Replay memory, exploration and the one DQN update loop (``docs/rules.md#algorithms``).

Q, Ψ, G and pure-RL share everything here and differ only in the bootstrap value
``V(s')`` of the target ``y = r + γ·V(s')``. :func:`bootstrap_value` is the readable
reference of it; the fused CPU kernel (:mod:`rltuner.lstm_kernels`) and the torch path
(:mod:`rltuner.torch_backend`) compute the same formulas and are tested against it. For G the
policy also acts on ``G + log p`` (:func:`rltuner.policy.action_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rltuner.encoding import NUM_CLASSES
from rltuner.lstm_kernels import ALGO_CODES, SplitUpdater
from rltuner.network import Network, softmax_sample

__all__ = [
    "ALGORITHMS",
    "EXPLORATION_MODES",
    "bootstrap_value",
    "linear_epsilon",
    "ReplayMemory",
    "Learner",
    "UpdateStats",
]

ALGORITHMS = ("q", "psi", "g", "pure_rl")
EXPLORATION_MODES = ("egreedy", "boltzmann")


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def bootstrap_value(
    algorithm: str,
    target_q: np.ndarray,
    reward_logits: np.ndarray | None = None,
    online_q: np.ndarray | None = None,
) -> np.ndarray:
    """``V(s')`` per row from the target network's outputs ``target_q (B, 38)``:

    * ``q`` / ``pure_rl``: ``max_a' Q⁻(s', a')``; Double DQN (``online_q`` = the online
      network's outputs at ``s'`` given): ``Q⁻(s', argmax_a' Q(s', a'))``
    * ``psi``: ``logsumexp_a' Ψ⁻(s', a')``
    * ``g``: ``logsumexp_a' (log p(a'|s') + G⁻(s', a'))`` with ``log p`` the log-softmax of
      the Reward RNN's ``reward_logits (B, 38)`` at ``s'``.

    (Double DQN changes only the max of Q-learning; Ψ and G have no max to change.)
    """
    q = np.asarray(target_q, dtype=np.float64)
    if algorithm in ("q", "pure_rl"):
        if online_q is not None:
            best = np.asarray(online_q).argmax(axis=1)
            return q[np.arange(q.shape[0]), best]
        return q.max(axis=1)
    if algorithm == "psi":
        return _logsumexp(q)
    if algorithm == "g":
        if reward_logits is None:
            raise ValueError("G learning needs the Reward RNN's logits at s'")
        r = np.asarray(reward_logits, dtype=np.float64)
        log_p = r - _logsumexp(r)[:, None]
        return _logsumexp(q + log_p)
    raise ValueError(f"unknown algorithm {algorithm!r}; valid: {', '.join(ALGORITHMS)}")


def linear_epsilon(
    step: int | np.ndarray, exploration_period: int, final: float = 0.1, initial: float = 1.0
) -> np.ndarray:
    """ε annealed linearly from ``initial`` to ``final`` over ``exploration_period`` steps,
    then constant."""
    frac = np.clip(np.asarray(step, dtype=np.float64) / max(exploration_period, 1), 0.0, 1.0)
    return initial + frac * (final - initial)


class ReplayMemory:
    """Circular replay memory in preallocated arrays (one row per transition).

    Row ``i`` holds ``obs`` (the observation the network consumed), ``action`` (the note
    actually played; it is also the next observation), ``reward``, ``next_q_state`` (the
    Q-network's LSTM state after consuming ``obs``) and, for G only, ``next_r_state`` (the
    Reward RNN's state after ``obs``).

    The state *before* ``obs`` is not stored twice: rows arrive in blocks of ``stride``
    (= parallel compositions), so a transition's predecessor in its composition sits exactly
    ``stride`` rows earlier and its ``next_q_state`` is this row's ``q_state``. The first
    transition of a composition instead records ``prime[i]``, the row of ``prime_states``
    (the priming table: one zero row for ``random_note``) it started from. This halves the
    memory (100,000 transitions of a 1x100 network: 80 MB instead of 160 MB). The oldest
    ``stride`` rows, whose predecessors were overwritten, are never sampled.

    A chord-conditioned network also reads, per row, ``cond`` int8: the chord (a row of
    ``cond_rows (C, K)``, the chords' conditioning input rows, :mod:`rltuner.conditioning`)
    that went with ``obs``, and ``next_cond``: that of the next observation.
    """

    def __init__(
        self,
        capacity: int,
        state_size: int,
        store_reward_state: bool,
        stride: int,
        prime_states: np.ndarray,
        cond_rows: np.ndarray | None = None,
    ) -> None:
        self.capacity = int(capacity)
        self.stride = int(stride)
        if self.capacity <= self.stride:
            raise ValueError("replay capacity must exceed the number of parallel compositions")
        self.prime_states = np.ascontiguousarray(prime_states, dtype=np.float32)
        self.obs = np.zeros(self.capacity, dtype=np.int8)
        self.action = np.zeros(self.capacity, dtype=np.int8)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.prime = np.full(self.capacity, -1, dtype=np.int32)
        rows = np.zeros((0, 0)) if cond_rows is None else cond_rows
        self.cond_rows = np.ascontiguousarray(rows, dtype=np.int64)
        n_cond = self.capacity if self.cond_rows.shape[0] else 1
        self.cond = np.full(n_cond, -1, dtype=np.int8)
        self.next_cond = np.full(n_cond, -1, dtype=np.int8)
        self.next_q_state = np.zeros((self.capacity, state_size), dtype=np.float32)
        rs = state_size if store_reward_state else 1
        self.next_r_state = np.zeros(
            (self.capacity if store_reward_state else 1, rs), dtype=np.float32
        )
        self.store_reward_state = store_reward_state
        self.size = 0
        self.pos = 0

    def add(
        self,
        obs: np.ndarray,
        prime: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_q_state: np.ndarray,
        next_r_state: np.ndarray | None,
        cond: np.ndarray | None = None,
        next_cond: np.ndarray | None = None,
    ) -> None:
        """Append one block of ``stride`` transitions (one per composition, in slot order).
        ``prime[b]`` is the priming-table row for a composition's first transition, else -1.
        ``cond`` / ``next_cond`` (stride,): a conditioned network's chords."""
        n = obs.shape[0]
        if n != self.stride:
            raise ValueError(f"add() takes blocks of {self.stride} transitions, got {n}")
        start = 0
        while start < n:
            k = min(n - start, self.capacity - self.pos)
            sl = slice(self.pos, self.pos + k)
            src = slice(start, start + k)
            self.obs[sl] = obs[src]
            self.action[sl] = action[src]
            self.reward[sl] = reward[src]
            self.prime[sl] = prime[src]
            self.next_q_state[sl] = next_q_state[src]
            if self.store_reward_state:
                self.next_r_state[sl] = next_r_state[src]
            if self.cond_rows.shape[0]:
                self.cond[sl] = cond[src]
                self.next_cond[sl] = next_cond[src]
            self.pos = (self.pos + k) % self.capacity
            self.size = min(self.size + k, self.capacity)
            start += k

    @property
    def num_sampleable(self) -> int:
        return self.size - self.stride if self.size == self.capacity else self.size

    def q_state(self, rows: np.ndarray) -> np.ndarray:
        """The Q-network state before each row's ``obs``, ``(len(rows), S)``."""
        rows = np.asarray(rows, dtype=np.int64)
        p = self.prime[rows]
        prev = self.next_q_state[(rows - self.stride) % self.capacity]
        primed = self.prime_states[np.maximum(p, 0)]
        return np.where((p >= 0)[:, None], primed, prev)

    def sample_indices(
        self, rng: np.random.Generator, num_batches: int, batch_size: int
    ) -> np.ndarray:
        """``(num_batches, batch_size)`` rows, uniform over the sampleable rows and without
        replacement inside one minibatch (as the original's ``random.sample``)."""
        n = self.num_sampleable
        if n < batch_size:
            raise ValueError("not enough transitions to sample a minibatch")
        if n <= 4 * batch_size:
            # argpartition of uniform keys = a sample without replacement
            keys = rng.random((num_batches, n))
            k = np.argpartition(keys, batch_size - 1, axis=1)[:, :batch_size].astype(np.int64)
        else:
            k = rng.integers(0, n, (num_batches, batch_size))
            srt = np.sort(k, axis=1)
            # redraw the (rare, ~0.5%) minibatches holding a duplicate
            for r in np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1)):
                row = k[r]
                while np.unique(row).size < batch_size:
                    dup = np.ones(batch_size, dtype=bool)
                    dup[np.unique(row, return_index=True)[1]] = False
                    row[dup] = rng.integers(0, n, int(dup.sum()))
        if self.size == self.capacity:  # skip the oldest `stride` rows (ring starts at pos)
            k = (k + self.pos + self.stride) % self.capacity
        return k

    def state_dict(self) -> dict[str, np.ndarray]:
        d = {
            "obs": self.obs,
            "action": self.action,
            "reward": self.reward,
            "prime": self.prime,
            "next_q_state": self.next_q_state,
            "pointer": np.array([self.size, self.pos, self.stride], dtype=np.int64),
        }
        if self.store_reward_state:
            d["next_r_state"] = self.next_r_state
        if self.cond_rows.shape[0]:
            d["cond"], d["next_cond"] = self.cond, self.next_cond
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        for k in ("obs", "action", "reward", "prime", "next_q_state"):
            getattr(self, k)[...] = d[k]
        if self.cond_rows.shape[0]:
            self.cond[...], self.next_cond[...] = d["cond"], d["next_cond"]
        if self.store_reward_state:
            self.next_r_state[...] = d["next_r_state"]
        self.size, self.pos, stride = (int(x) for x in d["pointer"])
        if stride != self.stride:
            raise ValueError("checkpointed replay was written with another num_envs")


class UpdateStats(NamedTuple):
    """Per-update loss and mean target value ``y``, each ``(num_updates,)`` float64."""

    loss: np.ndarray
    target: np.ndarray


@dataclass
class LearnerHyper:
    """Hyperparameters of the update (defaults: ``docs/rules.md#algorithms``)."""

    algorithm: str = "q"
    discount: float = 0.5
    learning_rate: float = 1e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    clip_norm: float = 5.0
    target_update_rate: float = 0.01
    double_dqn: bool = False


class Learner:
    """Q-network + Target-Q-network + Adam state, updated by the fused CPU kernel.

    On the CPU the kernel keeps its own copies of the target network and Adam's moments in its
    split layout (:class:`rltuner.lstm_kernels.SplitUpdater`); ``target``, ``adam_m`` and
    ``adam_v`` bring them up to date when read, and writes made through them are picked up by
    the next update. ``q.theta`` is current after every :meth:`update`. ``threads`` (1, 2, or
    0 = automatic: two when two CPUs are available and that is faster right now) only changes
    the speed, never the results."""

    def __init__(
        self, q: Network, reward_rnn: Network, hyper: LearnerHyper, threads: int = 0
    ) -> None:
        if hyper.algorithm not in ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {hyper.algorithm!r}; valid: {', '.join(ALGORITHMS)}"
            )
        self.q = q
        self._target = q.copy()
        self.reward_rnn = reward_rnn
        self.hyper = hyper
        self.threads = max(0, int(threads))  # 0 = automatic (see SplitUpdater.run)
        self._adam_m = np.zeros_like(q.theta)
        self._adam_v = np.zeros_like(q.theta)
        self.adam_step = np.zeros(1, dtype=np.int64)
        lay = q.layout
        self._torch = None
        self._split: SplitUpdater | None = None
        self._split_newer = False  # the kernel's copies are newer than target/adam_m/adam_v
        self._canonical_exposed = True  # those were handed out: reload before updating
        if q.device != "cpu":
            from rltuner.torch_backend import TorchUpdater

            self._torch = TorchUpdater(
                lay, q._stepper, self._target._stepper, reward_rnn._stepper, hyper
            )
        else:
            # the update runs the Reward RNN (G) in the Q-network's layout: a conditioned
            # Q-network's prior gets zero conditioning rows (its outputs are unchanged)
            reward = reward_rnn.with_cond_inputs(lay.cond_inputs) if lay.cond_inputs else reward_rnn
            self._split = SplitUpdater(lay, reward.theta)

    def _sync_out(self) -> None:
        if self._split is not None:
            if self._split_newer:
                self._split.store(self.q.theta, self._target.theta, self._adam_m, self._adam_v)
                self._split_newer = False
            self._canonical_exposed = True

    @property
    def target(self) -> Network:
        self._sync_out()
        return self._target

    @property
    def adam_m(self) -> np.ndarray:
        self._sync_out()
        return self._adam_m

    @property
    def adam_v(self) -> np.ndarray:
        self._sync_out()
        return self._adam_v

    def update(self, memory: ReplayMemory, indices: np.ndarray) -> UpdateStats:
        """One minibatch update per row of ``indices (K, batch)``."""
        if self._torch is not None:
            stats = UpdateStats(*self._torch.update(memory, indices))
            self.adam_step += indices.shape[0]
            m, v = self._torch.adam_moments()
            self._adam_m[...], self._adam_v[...] = m, v
            return stats
        k = indices.shape[0]
        loss = np.zeros(k)
        target = np.zeros(k)
        h = self.hyper
        split = self._split
        if self._canonical_exposed:
            split.load(self.q.theta, self._target.theta, self._adam_m, self._adam_v)
            self._canonical_exposed = False
        else:  # q.theta is public and always current: take it as it is now
            split.load_theta(self.q.theta)
        split.run(
            self.q.theta,
            self.adam_step,
            (
                memory.obs, memory.action, memory.reward, memory.prime, memory.prime_states,
                memory.next_q_state, memory.next_r_state, memory.cond, memory.next_cond,
                memory.cond_rows,
            ),
            memory.stride,
            indices,
            ALGO_CODES[h.algorithm],
            h.double_dqn,
            (
                h.discount, h.learning_rate, h.adam_beta1, h.adam_beta2, h.adam_eps,
                h.clip_norm, h.target_update_rate,
            ),
            loss,
            target,
            self.threads,
        )  # fmt: skip
        self._split_newer = True
        return UpdateStats(loss, target)

    def choose(
        self, scores: np.ndarray, rng: np.random.Generator, exploration: str, epsilon: float
    ) -> np.ndarray:
        """Actions for a batch: ε-greedy (uniform over all 38 classes with probability ε,
        else argmax) or Boltzmann (sample from softmax of the scores)."""
        if exploration == "boltzmann":
            return softmax_sample(scores, rng)
        return self.choose_egreedy(scores, rng, epsilon)[0]

    @staticmethod
    def choose_egreedy(
        scores: np.ndarray, rng: np.random.Generator, epsilon: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """ε-greedy actions ``(B,)`` and the mask ``(B,)`` of rows that explored (drew a
        uniformly random class, which may happen to equal the argmax)."""
        greedy = scores.argmax(axis=1)
        explore = rng.random(scores.shape[0]) < epsilon
        if explore.any():
            greedy[explore] = rng.integers(0, NUM_CLASSES, int(explore.sum()))
        return greedy, explore

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "q": self.q.theta,
            "target": self.target.theta,
            "adam_m": self.adam_m,
            "adam_v": self.adam_v,
            "adam_step": self.adam_step,
        }

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.q.theta[...] = d["q"]
        self.target.theta[...] = d["target"]
        self.adam_m[...] = d["adam_m"]
        self.adam_v[...] = d["adam_v"]
        self.adam_step[...] = d["adam_step"]
        self.q.sync()
        self._target.sync()
        if self._torch is not None:
            self._torch.set_adam(self.adam_m, self.adam_v, int(self.adam_step[0]))
