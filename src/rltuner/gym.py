"""Gymnasium environments: compose a melody with any RL library (optional extra ``rltuner[gym]``).

Importing this module registers ``rltuner/Melody-v0``::

    import gymnasium as gym
    import rltuner.gym  # noqa: F401  (registers the id)

    env = gym.make("rltuner/Melody-v0", note_rnn="model.safetensors", key="G major")

(``gym.make("rltuner.gym:rltuner/Melody-v0", ...)`` imports the module for you.)

The MDP is the tuner's (``docs/rules.md#compositions-and-priming``), with its reward
(``docs/rules.md#reward-modes``) -- the same
:class:`~rltuner.env.CompositionEnv` that ``rltuner tune`` trains on, with batch 1:

* one episode = one composition of ``num_notes`` steps (default 32); ``terminated`` after the
  last note, never ``truncated``. Every episode starts primed (``priming``, default a random
  first note).
* action: ``Discrete(38)``, the next class (0 note-off, 1 no-event, 2..37 = MIDI 48..83).
* observation: ``MultiDiscrete([39] * N + [38, N + 1])``, int64 vector of length ``N + 2``:
  ``obs[:N]`` the composition so far, entries not yet played = ``SENTINEL`` (38);
  ``obs[N]`` the previous note -- the class the Reward RNN consumes next (the priming note at
  beat 0, else the last action); ``obs[N + 1]`` the beat (notes played, 0..N). The tuner's
  agent sees the previous note plus an LSTM state; a gym agent sees the whole composition
  instead, so any feed-forward policy (e.g. SB3's ``MlpPolicy``, which one-hot encodes it)
  can act on it.
* reward: the configured ``reward_mode`` (default ``music_theory_all``:
  ``log p(a|s) + reward_scaler * r_MT``, log p from the frozen Reward RNN), with rule weights
  and user rules (:mod:`rltuner.plugins`) as in a tuning run.
* ``info``: ``log_p``, ``music_theory`` (weighted r_MT, unscaled) and ``rules`` (each rule's
  value, built-in and user).

Configuration: a :class:`~rltuner.tuner.TunerConfig` (``config=``) and/or its fields as keyword
arguments (``note_rnn``, ``key``, ``num_notes``, ``reward_mode``, ``reward_scaler``,
``weights``, ``rules``, ``priming``, ``primer``, ``seed``); the learning fields are ignored.
``model=RUN`` (a tuned model or its run folder) scores with the prior that model was tuned
from, taken as :func:`rltuner.policy.load_policy` takes it (its embedded copy, else its
recorded file when the hash matches; ``note_rnn`` then supplies a missing one).
Seeding follows Gymnasium: ``reset(seed=...)`` reseeds the priming draws.

:class:`MelodyVectorEnv` runs ``num_envs`` compositions in one batched step (a
``gymnasium.vector.VectorEnv``, same-step autoreset: finished rows come back already reset,
their last observation in ``info["final_obs"]``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rltuner.encoding import NUM_CLASSES, PITCH_NAMES, Key
from rltuner.env import CompositionEnv, Priming
from rltuner.network import Network, bundled_note_rnn_path, load_network
from rltuner.plugins import load_rules
from rltuner.policy import load_prior
from rltuner.rewards import RULE_NAMES, RuleTables
from rltuner.tuner import TunerConfig

__all__ = [
    "ENV_ID",
    "SENTINEL",
    "MelodyEnv",
    "MelodyVectorEnv",
    "melody_observation_space",
    "make_composition_env",
]

ENV_ID = "rltuner/Melody-v0"
SENTINEL = NUM_CLASSES  # 38: "not played yet" in the composition part of an observation


def melody_observation_space(num_notes: int) -> spaces.MultiDiscrete:
    """``MultiDiscrete([39] * N + [38, N + 1])``: composition (padded), previous note, beat."""
    return spaces.MultiDiscrete(
        np.array([NUM_CLASSES + 1] * num_notes + [NUM_CLASSES, num_notes + 1], dtype=np.int64)
    )


def _config(config: TunerConfig | None, overrides: dict[str, Any]) -> TunerConfig:
    d = (config or TunerConfig()).to_dict()
    d.update(overrides)
    return TunerConfig.from_dict(d)


def _primer_melodies(cfg: TunerConfig) -> list[np.ndarray] | None:
    if cfg.priming == "single_midi":
        from rltuner.midi_io import read_midi

        return [read_midi(cfg.primer)[0].melody]
    if cfg.priming == "random_midi":
        from rltuner.corpus import load_bundled

        return list(load_bundled().melodies)
    return None


def make_composition_env(
    cfg: TunerConfig, batch: int, rng: np.random.Generator, reward_rnn: Network | None = None
) -> CompositionEnv:
    """The batched environment of ``cfg`` (Reward RNN, key, rules, priming), ``batch`` rows.
    ``reward_rnn`` defaults to ``cfg.note_rnn``'s file (or the bundled Note RNN)."""
    net = reward_rnn or load_network(cfg.note_rnn or bundled_note_rnn_path())[0]
    tables = RuleTables.from_key(Key.parse(cfg.key), cfg.num_notes)
    priming = Priming(cfg.priming, net, _primer_melodies(cfg), rng=np.random.default_rng(cfg.seed))
    return CompositionEnv(
        net,
        tables,
        batch,
        priming,
        rng,
        reward_mode=cfg.reward_mode,
        reward_scaler=cfg.reward_scaler,
        weights=cfg.weights or None,
        user_rules=load_rules(cfg.rules, cfg.weights),
    )


def _observations(env: CompositionEnv) -> np.ndarray:
    """``(B, N + 2)`` observations of the env's current (unfinished) compositions."""
    b, n = env.compositions.shape
    obs = np.full((b, n + 2), SENTINEL, dtype=np.int64)
    played = np.arange(n)[None, :] < env.beat[:, None]
    obs[:, :n] = np.where(played, env.compositions, SENTINEL)
    obs[:, n] = env.obs
    obs[:, n + 1] = env.beat
    return obs


def _finished_observations(finished: np.ndarray) -> np.ndarray:
    """``(k, N + 2)`` observations of complete compositions ``(k, N)``."""
    k, n = finished.shape
    obs = np.empty((k, n + 2), dtype=np.int64)
    obs[:, :n] = finished
    obs[:, n] = finished[:, -1]
    obs[:, n + 1] = n
    return obs


def _label(c: int) -> str:
    if c == 0:
        return "off"
    if c == 1:
        return "-"
    pitch = c + 46
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


class MelodyEnv(gymnasium.Env):
    """One composition per episode (see the module docstring for spaces and reward)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        config: TunerConfig | None = None,
        render_mode: str | None = None,
        model: str | None = None,
        **overrides: Any,
    ) -> None:
        self.config = cfg = _config(config, overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.num_notes = cfg.num_notes
        self.action_space = spaces.Discrete(NUM_CLASSES)
        self.observation_space = melody_observation_space(cfg.num_notes)
        reward_rnn = load_prior(model, cfg.note_rnn) if model is not None else None
        self._env = make_composition_env(cfg, 1, np.random.default_rng(cfg.seed), reward_rnn)
        self.rule_names = RULE_NAMES + tuple(r.name for r in self._env.user_rules)
        self._last_obs = _observations(self._env)[0]
        self._needs_reset = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._env.rng = self.np_random  # priming draws follow Gymnasium's seeding
        self._env.reset()
        self._needs_reset = False
        self._last_obs = _observations(self._env)[0]
        return self._last_obs.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise gymnasium.error.ResetNeeded("call reset() before step() (and after an episode)")
        a = int(action)
        if not 0 <= a < NUM_CLASSES:
            raise ValueError(f"action must be a class 0..{NUM_CLASSES - 1}, got {action!r}")
        env = self._env
        # a gym agent has no Q-network LSTM state: the env's slot is carried along unchanged
        out = env.step(np.array([a], dtype=np.int64), env.q_state)
        terminated = bool(out.done[0])
        if terminated:
            obs = _finished_observations(out.finished)[0]
            self._needs_reset = True
        else:
            obs = _observations(env)[0]
        self._last_obs = obs
        values = out.rules.values[0].tolist()
        if out.user_values is not None:
            values += out.user_values[0].tolist()
        info = {
            "log_p": float(out.log_p[0]),
            "music_theory": float(out.music_theory[0]),
            "rules": dict(zip(self.rule_names, values, strict=True)),
        }
        return obs.copy(), float(out.reward[0]), terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        n = self.num_notes
        played = [int(c) for c in self._last_obs[:n] if c != SENTINEL]
        return " ".join(_label(c) for c in played) + "\n"


class MelodyVectorEnv(VectorEnv):
    """``num_envs`` compositions stepped together by the batched environment.

    ``step(actions (B,))`` returns observations ``(B, N + 2)``, rewards ``(B,)`` float64,
    terminations/truncations ``(B,)`` bool and batched ``infos`` (``log_p``, ``music_theory``
    ``(B,)``; on the last step ``final_obs``/``_final_obs`` as Gymnasium's same-step autoreset).
    All compositions start together, so all finish on the same step."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 8,
        config: TunerConfig | None = None,
        model: str | None = None,
        **overrides: Any,
    ):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.config = cfg = _config(config, overrides)
        self.num_envs = int(num_envs)
        self.single_action_space = spaces.Discrete(NUM_CLASSES)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = melody_observation_space(cfg.num_notes)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.render_mode = None
        reward_rnn = load_prior(model, cfg.note_rnn) if model is not None else None
        self._env = make_composition_env(
            cfg, self.num_envs, np.random.default_rng(cfg.seed), reward_rnn
        )
        self._np_random = self._env.rng

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            if not isinstance(seed, int):
                raise ValueError("MelodyVectorEnv takes one int seed for the whole batch")
            self._np_random = np.random.default_rng(seed)
            self._env.rng = self._np_random
        self._env.reset()
        return _observations(self._env), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        if a.shape != (self.num_envs,) or a.min() < 0 or a.max() >= NUM_CLASSES:
            raise ValueError(f"actions must be {self.num_envs} classes in 0..{NUM_CLASSES - 1}")
        env = self._env
        out = env.step(a, env.q_state)
        obs = _observations(env)  # rows that finished are already reset and primed
        done = out.done.copy()
        every = np.ones(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {
            "log_p": out.log_p.copy(),
            "_log_p": every,
            "music_theory": out.music_theory.copy(),
            "_music_theory": every,
        }
        if done.any():
            final = np.full(self.num_envs, None, dtype=object)
            for i, o in zip(np.flatnonzero(done), _finished_observations(out.finished),
                            strict=True):  # fmt: skip
                final[i] = o
            infos["final_obs"] = final
            infos["_final_obs"] = done
        truncated = np.zeros(self.num_envs, dtype=bool)
        return obs, out.reward.astype(np.float64), done, truncated, infos


def _register() -> None:
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID,
            entry_point="rltuner.gym:MelodyEnv",
            vector_entry_point="rltuner.gym:MelodyVectorEnv",
        )


_register()
