"""Batched composition environment: state, step, reward, priming.

The decision problem and the priming modes: ``docs/rules.md#compositions-and-priming``.

``B`` compositions advance together. The environment holds, per composition, the notes so far,
the beat, the leap-rule state, the previous observation, the acting network's LSTM state and
the frozen Reward RNN's LSTM state, and it computes the reward of a step (Reward-RNN
``log p(a|s)`` + music-theory rules, combined by the reward mode) in one batched call.

Everything here is numpy + numba: the tuner's CPU hot loop never touches torch (torch alone
costs ~220 MB of resident memory and ~3 µs per op).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rltuner.conditioning import chord_at, chord_input_rows
from rltuner.encoding import NUM_CLASSES
from rltuner.errors import RltunerError
from rltuner.harmony import HarmonyTables, harmony_step, harmony_step_into

# re-exported: the networks moved to rltuner.network
from rltuner.network import Network, load_network, log_softmax, softmax_sample
from rltuner.plugins import UserRule, builtin_weights, evaluate_user_rules
from rltuner.rewards import (
    LeapState,
    RuleTables,
    StepEvaluation,
    combine_reward,
    evaluate_step_into,
    weights_vector,
)

__all__ = [
    "Network",
    "load_network",
    "Priming",
    "CompositionEnv",
    "StepOutcome",
    "music_theory_rewards",
    "log_softmax",
    "softmax_sample",
    "PRIMING_MODES",
    "Harmony",
]

PRIMING_MODES = ("random_note", "random_midi", "single_midi")


class Priming:
    """How each composition starts (docs/rules.md#compositions-and-priming).

    * ``random_note``: zero LSTM states, first observation uniform over all 38 classes (the
      original never drew class 37; fixed).
    * ``random_midi`` / ``single_midi``: LSTM states and first observation from running a
      melody (a random one of ``melodies``, or the single primer) through the Note RNN: the
      state at its end, observation = the network's most likely next note. The acting network
      and the Reward RNN are primed from the same melody.
    """

    def __init__(
        self,
        mode: str,
        note_rnn: Network,
        melodies: list[np.ndarray] | None = None,
        max_primers: int = 2000,
        rng: np.random.Generator | None = None,
    ) -> None:
        if mode not in PRIMING_MODES:
            raise ValueError(f"unknown priming mode {mode!r}; valid: {', '.join(PRIMING_MODES)}")
        self.mode = mode
        self.state_size = note_rnn.layout.state_size
        self.states: np.ndarray | None = None
        self.notes: np.ndarray | None = None
        if mode != "random_note":
            if not melodies:
                raise RltunerError(f"priming mode {mode!r} needs at least one primer melody")
            if mode == "single_midi":
                melodies = melodies[:1]
            elif len(melodies) > max_primers:
                rng = rng or np.random.default_rng(0)
                pick = rng.choice(len(melodies), max_primers, replace=False)
                melodies = [melodies[i] for i in np.sort(pick)]
            self.states, self.notes = prime_states(note_rnn, melodies)

    @property
    def table(self) -> np.ndarray:
        """``(P, S)`` the primed states compositions start from (one zero row for
        ``random_note``); :meth:`draw`'s indices point into it."""
        if self.states is None:
            return np.zeros((1, self.state_size), dtype=np.float32)
        return self.states

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(state (n, S) float32, first observation (n,) int64, table row (n,) int32)``."""
        if self.states is None:
            return (
                np.zeros((n, self.state_size), dtype=np.float32),
                rng.integers(0, NUM_CLASSES, n),
                np.zeros(n, dtype=np.int32),
            )
        i = rng.integers(0, self.states.shape[0], n)
        return self.states[i].copy(), self.notes[i].copy(), i.astype(np.int32)


def prime_states(
    net: Network, melodies: list[np.ndarray], batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Run each melody through ``net`` from a zero state: ``(final states (M, S), argmax of the
    output after the last note (M,))``. Melodies of different lengths run in one batch; a
    finished melody's state is frozen."""
    states = np.zeros((len(melodies), net.layout.state_size), dtype=np.float32)
    notes = np.zeros(len(melodies), dtype=np.int64)
    for s in range(0, len(melodies), batch):
        chunk = [np.asarray(m, dtype=np.int64) for m in melodies[s : s + batch]]
        lengths = np.array([len(m) for m in chunk])
        if (lengths < 1).any():
            raise RltunerError("a primer melody is empty")
        pad = np.zeros((len(chunk), lengths.max()), dtype=np.int64)
        for i, m in enumerate(chunk):
            pad[i, : len(m)] = m
        st = net.zero_state(len(chunk))
        last = np.zeros((len(chunk), NUM_CLASSES), dtype=np.float32)
        for t in range(lengths.max()):
            live = lengths > t
            logits, new = net.step(pad[:, t], st)
            st[live] = new[live]
            last[live] = logits[live]
        states[s : s + len(chunk)] = st
        notes[s : s + len(chunk)] = last.argmax(axis=1)
    return states, notes


def _weighted_music_theory(values, weights_vec, user_rules, user_weights, compositions, beat,
                           action, tables):  # fmt: skip
    """Weighted r_MT of one step ``(B,)``, the user rules' unweighted values ``(B, R)`` (or
    ``None``) and their weighted sum (or ``None``); user rules see the compositions as before
    the action, like the built-in rules."""
    music = values @ weights_vec
    if not user_rules:
        return music, None, None
    user_values = evaluate_user_rules(user_rules, compositions, beat, action, tables.key)
    extra = user_values @ user_weights
    return music + extra, user_values, extra


class Harmony:
    """The chords a batch of compositions is played over, and the harmony rules' weights.

    ``tables``: the progressions (:class:`~rltuner.harmony.HarmonyTables`); each composition
    plays one of them (drawn uniformly at its start when there are several, else the one).
    ``weights (5,)``: the weights of :data:`rltuner.harmony.HARMONY_RULE_NAMES`.
    ``conditioned``: the acting network reads the current chord (:mod:`rltuner.conditioning`).
    """

    def __init__(self, tables: HarmonyTables, weights: np.ndarray, conditioned: bool) -> None:
        self.tables = tables
        self.weights = np.asarray(weights, dtype=np.float64)
        self.conditioned = bool(conditioned)
        # (C, K) int64: every chord's conditioning input rows (a conditioned run)
        self.rows = chord_input_rows(tables) if conditioned else None

    def values(self, compositions, beat, action, chord_of, key, out=None) -> np.ndarray:
        """The harmony rules' unweighted values ``(B, 5)`` of one step (written into ``out``
        when given: float64, and then the inputs must have the kernel's dtypes)."""
        if out is None:
            return harmony_step(compositions, beat, action, chord_of, self.tables, key)
        harmony_step_into(compositions, beat, action, chord_of, self.tables, key, out)
        return out


def music_theory_rewards(
    compositions: np.ndarray,
    first_obs: np.ndarray,
    tables: RuleTables,
    weights: dict[str, float] | None = None,
    user_rules: Sequence[UserRule] = (),
    harmony: Harmony | None = None,
    chord_of: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted r_MT ``(M, N)`` float64 of every step of finished compositions ``(M, N)``,
    scored as :meth:`CompositionEnv.step` scores them while they are played: step ``t`` sees
    the first ``t`` notes, the leap state so far and the previous observation (``first_obs
    (M,)``, the priming note, at ``t = 0``). With ``harmony``, the weighted harmony rules over
    the chords ``chord_of (M, N)`` are included."""
    comps = np.ascontiguousarray(compositions, dtype=np.int8)
    m, n = comps.shape
    weights_vec = weights_vector(builtin_weights(weights))
    rules = list(user_rules)
    user_weights = np.array([r.weight for r in rules], dtype=np.float64)
    out = np.zeros((m, n))
    leap = LeapState.initial(m)
    ev = StepEvaluation.empty(m)
    obs = np.asarray(first_obs, dtype=np.int64).copy()
    so_far = np.zeros_like(comps)  # as the env holds them: notes not yet played are 0
    for t in range(n):
        beat = np.full(m, t, dtype=np.int64)
        action = comps[:, t].astype(np.int64)
        evaluate_step_into(so_far, beat, action, leap, tables, obs, ev, leap)
        out[:, t] = _weighted_music_theory(
            ev.values, weights_vec, rules, user_weights, so_far, beat, action, tables
        )[0]
        if harmony is not None:
            h = harmony.values(so_far, beat, action, chord_of, tables.key)
            out[:, t] += h @ harmony.weights
        so_far[:, t] = comps[:, t]
        obs = action
    return out


class StepOutcome(NamedTuple):
    """What one environment step produced, for ``B`` compositions.

    ``reward`` (B,) float64 total reward of the mode; ``log_p`` (B,) Reward-RNN log p(a|s);
    ``music_theory`` (B,) float64 weighted r_MT (before the scaler); ``rules`` the per-rule
    :class:`~rltuner.rewards.StepEvaluation` (owned by the env: copy before the next step);
    ``done`` (B,) bool, True where the composition just reached N notes (it has been reset and
    primed again); ``finished`` (B, N) int8 the completed compositions of the ``done`` rows;
    ``user_values`` (B, R) float64 the unweighted values of the env's R user rules
    (:mod:`rltuner.plugins`, order of ``env.user_rules``), already included in ``music_theory``;
    ``harmony_values`` (B, 5) float64 the unweighted harmony rules (with chords), included too.
    """

    reward: np.ndarray
    log_p: np.ndarray
    music_theory: np.ndarray
    rules: StepEvaluation
    done: np.ndarray
    finished: np.ndarray
    user_values: np.ndarray | None = None
    harmony_values: np.ndarray | None = None


class CompositionEnv:
    """``B`` compositions of ``tables.num_notes`` steps advancing together.

    Per step the caller reads ``obs`` and ``q_state`` (the acting network's input), computes its
    action and the acting network's next state, and calls :meth:`step`. ``reward_logits`` holds
    the Reward RNN's output at the current state (G acts on ``Q + reward_logits``).
    """

    def __init__(
        self,
        reward_rnn: Network,
        tables: RuleTables,
        batch_size: int,
        priming: Priming,
        rng: np.random.Generator,
        *,
        reward_mode: str = "music_theory_all",
        reward_scaler: float = 0.1,
        weights: dict[str, float] | None = None,
        user_rules: Sequence[UserRule] = (),
        harmony: Harmony | None = None,
    ) -> None:
        self.reward_rnn = reward_rnn
        self.harmony = harmony
        self.tables = tables
        self.batch_size = b = int(batch_size)
        self.priming = priming
        self.rng = rng
        self.reward_mode = reward_mode
        self.reward_scaler = float(reward_scaler)
        self.weights_vec = weights_vector(builtin_weights(weights))
        # user rules (rltuner.plugins): weighted, added to r_MT after the built-in kernel
        self.user_rules = list(user_rules)
        self.user_weights = np.array([r.weight for r in self.user_rules], dtype=np.float64)
        combine_reward(
            reward_mode, np.zeros(1), np.zeros((1, self.weights_vec.size)), 1.0, self.weights_vec
        )  # validates the mode early
        n = tables.num_notes
        s = reward_rnn.layout.state_size
        self.compositions = np.zeros((b, n), dtype=np.int8)
        self.beat = np.zeros(b, dtype=np.int64)
        self.prime_index = np.zeros(b, dtype=np.int32)  # priming-table row of each composition
        self.obs = np.zeros(b, dtype=np.int64)
        self.q_state = np.zeros((b, s), dtype=np.float32)
        self.r_state = np.zeros((b, s), dtype=np.float32)
        self.leap = LeapState.initial(b)
        self._eval = StepEvaluation.empty(b)
        self.reward_logits = np.zeros((b, NUM_CLASSES), dtype=np.float32)
        self.r_next_state = np.zeros((b, s), dtype=np.float32)
        self.progression = np.zeros(b, dtype=np.int64)  # the progression each one plays
        self.chord_of = np.zeros((b, n), dtype=np.int64)  # its chord (tables row) per step
        self._hvals = np.zeros((b, 5), dtype=np.float64)
        self.reset()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every array of the environment's state (for checkpoints)."""
        return {
            "compositions": self.compositions,
            "beat": self.beat,
            "prime_index": self.prime_index,
            "obs": self.obs,
            "q_state": self.q_state,
            "r_state": self.r_state,
            "leap_direction": self.leap.direction,
            "leap_from": self.leap.leapt_from,
            "leap_steps": self.leap.steps_since_leap,
            "reward_logits": self.reward_logits,
            "r_next_state": self.r_next_state,
            "progression": self.progression,
        }

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        for k in (
            "compositions",
            "beat",
            "prime_index",
            "obs",
            "q_state",
            "r_state",
            "reward_logits",
            "r_next_state",
        ):
            setattr(self, k, np.array(d[k], dtype=getattr(self, k).dtype))
        self.leap = LeapState(
            d["leap_direction"].astype(np.int8).copy(),
            d["leap_from"].astype(np.int16).copy(),
            d["leap_steps"].astype(np.int32).copy(),
        )
        if "progression" in d:
            self.progression = np.array(d["progression"], dtype=np.int64)
            if self.harmony is not None:
                self.chord_of = self.harmony.tables.steps[self.progression].copy()

    @property
    def cond(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The acting network's chord input for the current step: ``(chord (B,), rows (C,
        K))`` (:meth:`rltuner.network.Network.step`); ``None`` for an unconditioned run."""
        h = self.harmony
        if h is None or h.rows is None:
            return None
        return chord_at(self.chord_of, self.beat), h.rows

    @property
    def next_chord(self) -> np.ndarray | None:
        """The chord ``(B,)`` of the step after the current one (the replay's next state)."""
        h = self.harmony
        if h is None or h.rows is None:
            return None
        return chord_at(self.chord_of, self.beat + 1)

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Start new compositions (all, or the boolean/int ``rows``) and prime them."""
        idx = (
            np.arange(self.batch_size)
            if rows is None
            else np.flatnonzero(rows)
            if (np.asarray(rows).dtype == bool)
            else np.asarray(rows)
        )
        if idx.size == 0:
            return
        state, obs, row = self.priming.draw(idx.size, self.rng)
        self.prime_index[idx] = row
        self.q_state[idx] = state
        self.r_state[idx] = state
        self.obs[idx] = obs
        self.beat[idx] = 0
        self.compositions[idx] = 0
        self.leap.direction[idx] = 0
        self.leap.leapt_from[idx] = -1
        self.leap.steps_since_leap[idx] = 0
        if self.harmony is not None:
            p = self.harmony.tables.steps.shape[0]
            pick = self.rng.integers(0, p, idx.size) if p > 1 else np.zeros(idx.size, np.int64)
            self.progression[idx] = pick
            self.chord_of[idx] = self.harmony.tables.steps[pick]
        logits, nxt = self.reward_rnn.step(self.obs[idx], self.r_state[idx])
        self.reward_logits[idx] = logits
        self.r_next_state[idx] = nxt

    def step(self, action: np.ndarray, q_next_state: np.ndarray) -> StepOutcome:
        """Play ``action (B,)`` (the note actually played); ``q_next_state (B, S)`` is the acting
        network's state after consuming the current observation."""
        action = np.asarray(action, dtype=np.int64)
        log_p = log_softmax(self.reward_logits)[np.arange(self.batch_size), action]
        evaluate_step_into(
            self.compositions,
            self.beat,
            action,
            self.leap,
            self.tables,
            self.obs,
            self._eval,
            self.leap,
        )
        values = self._eval.values
        reward = combine_reward(
            self.reward_mode, log_p, values, self.reward_scaler, self.weights_vec
        )
        music, user_values, extra = _weighted_music_theory(
            values, self.weights_vec, self.user_rules, self.user_weights,
            self.compositions, self.beat, action, self.tables,
        )  # fmt: skip
        uses_music = self.reward_mode in ("music_theory_all", "music_theory_only")
        if extra is not None and uses_music:
            reward = reward + self.reward_scaler * extra
        harmony_values = None
        if self.harmony is not None:
            harmony_values = self.harmony.values(
                self.compositions, self.beat, action, self.chord_of, self.tables.key, self._hvals
            )
            h_extra = harmony_values @ self.harmony.weights
            music = music + h_extra
            if uses_music:
                reward = reward + self.reward_scaler * h_extra
        rows = np.arange(self.batch_size)
        self.compositions[rows, self.beat] = action
        self.beat += 1
        self.obs = action.copy()
        # copies: reset() below rewrites rows in place, and the caller keeps its arrays
        self.q_state = np.array(q_next_state, dtype=np.float32)
        self.r_state = self.r_next_state.copy()
        self.reward_logits, self.r_next_state = self.reward_rnn.step(self.obs, self.r_state)
        done = self.beat >= self.tables.num_notes
        finished = self.compositions[done].copy() if done.any() else self.compositions[:0]
        if done.any():
            self.reset(done)
        return StepOutcome(
            reward, log_p, music, self._eval, done, finished, user_values, harmony_values
        )
