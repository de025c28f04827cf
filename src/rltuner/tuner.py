"""RLTuner: wires the batched environment and the learner; train, generate, evaluate, save, load.

A run directory holds::

    config.json            the exact configuration of the run
    checkpoint/            latest checkpoint (networks, Adam, replay, environment, RNG, logs)
    metrics.jsonl / .csv   one row per evaluation window (namespaced keys)
    tuned.safetensors      the tuned Q-network as a Note RNN checkpoint (usable anywhere a
                           Note RNN is: generate, evaluate, as a Reward RNN...)
    plots/*.png, samples/*.mid, stats.json    written at the end of training
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.checkpoint import atomic_write_text, load_arrays, save_arrays
from rltuner.conditioning import (
    CHORD_FEATURES,
    CHORD_INPUTS,
    CHORD_STEPS_HELP,
    harmony_weights,
    progressions_from_json,
    progressions_to_json,
    resolve_progressions,
)
from rltuner.constraints import constraint_set
from rltuner.encoding import PITCH_NAMES, Key
from rltuner.env import PRIMING_MODES, CompositionEnv, Harmony, Priming, music_theory_rewards
from rltuner.errors import RltunerError
from rltuner.harmony import HARMONY_RULE_NAMES, HarmonyTables, Progression, parse_progression
from rltuner.learner import (
    ALGORITHMS,
    EXPLORATION_MODES,
    Learner,
    LearnerHyper,
    ReplayMemory,
    linear_epsilon,
)
from rltuner.metrics import composition_stats
from rltuner.naturalness import bundled_reference, naturalness_stats
from rltuner.network import Network, bundled_note_rnn_path, load_network, softmax_sample
from rltuner.options import check_device, check_int, check_range, option
from rltuner.plugins import installed_rule_names, load_rules, rule_name
from rltuner.policy import (
    Policy,
    action_scores,
    prior_arrays,
    prior_record,
    resolve_prior,
    sample,
)
from rltuner.rewards import REWARD_MODES, RULE_NAMES, RuleTables
from rltuner.warmup import ensure_compiled

__all__ = ["TunerConfig", "RLTuner", "Rollout", "RESUME_OVERRIDES"]

FORMAT_VERSION = 1
PG_ALGORITHM = "kl_pg"  # rltuner.policy_gradient (PPO with a KL penalty to the Note RNN)

# The settings a resumed run may change (RLTuner.load's ``config_overrides``, ``tune --resume``):
# the length of the run and where it runs. Anything else would make a different run. ``rules``
# must be given again (code is never loaded from a checkpoint) and must be the saved ones.
RESUME_OVERRIDES = ("steps", "threads", "device")


@dataclass
class TunerConfig:
    """Configuration of an RL tuning run. Defaults are the paper's; each field's ``help`` is its
    ``rltuner tune --help`` text."""

    algorithm: str = option(
        "q", help="q | psi | g | pure_rl | kl_pg (KL-regularised PPO; needs torch)"
    )
    steps: int = option(1_000_000, help="environment steps (notes played) in total")
    reward_mode: str = option(
        "music_theory_all",
        help="reward mode, see docs/rules.md; g and pure_rl always use music_theory_only",
    )
    reward_scaler: float = option(
        2.0, help="c in log p(a|s) + c*r_MT (the paper's 1/0.5 = 2; the original script's 0.1)"
    )
    exploration: str = option("egreedy", help="egreedy | boltzmann")
    exploration_period: int = option(
        500_000, help="steps over which epsilon anneals linearly from 1.0 to its final value"
    )
    random_action_probability: float = option(0.1, help="final epsilon, in [0, 1]")
    priming: str = option(
        "random_note",
        help="how compositions start: random_note | random_midi | single_midi (needs --primer)",
    )
    primer: str | None = option(
        None, help="MIDI file whose first melody primes every composition (--priming single_midi)"
    )
    note_rnn: str | None = option(
        None, help="Note RNN checkpoint to tune (.safetensors); unset: the bundled one"
    )
    key: str = option("C major", help='tonic and mode of the rules and statistics, e.g. "G major"')
    num_notes: int = option(32, help="steps (16th notes) per composition")
    discount: float = option(0.5, help="discount factor gamma, in [0, 1)")
    minibatch_size: int = option(32, help="transitions per minibatch update")
    train_every: int = option(5, help="one minibatch update per this many environment steps")
    memory_size: int = option(100_000, help="replay memory capacity (transitions)")
    target_update_rate: float = option(
        0.01, help="eta of the soft target update after every minibatch, in (0, 1]"
    )
    learning_rate: float = option(1e-3, help="Adam learning rate")
    clip_norm: float = option(5.0, help="per-tensor gradient norm clip")
    double_dqn: bool = option(False, help="Double-DQN target (off in the original)")
    num_envs: int = option(64, help="compositions played in parallel")
    stochastic_observations: bool = option(
        False, help="play a note sampled from the softmax instead of the greedy one (egreedy)"
    )
    eval_every: int = option(50_000, help="steps between evaluations and checkpoints")
    eval_compositions: int = option(100, help="compositions sampled per evaluation")
    final_compositions: int = option(
        1000, help="compositions sampled for the Table-1 statistics at the end"
    )
    num_samples: int = option(10, help="MIDI samples written at the end")
    weights: dict[str, float] = option(
        help="rule weights, name -> weight (default: every rule 1)", factory=dict
    )
    rules: list[str] = option(
        help="user reward rules (path/to/file.py:function or an installed rule's name), or a "
        "harmony rule's name (neighbour_keys)",
        factory=list,
    )
    chords: list[str] = option(
        help='chord progressions to tune over, e.g. "C G Am F" or "C G | Am F" (several: each '
        "composition draws one); turns on the harmony rules and chord conditioning",
        factory=list,
    )
    chords_file: str | None = option(
        None,
        help="more progressions: a text file (one per line, # comments) or a MIDI file whose "
        "accompaniment gives the chords",
    )
    chord_steps: int = option(8, help=CHORD_STEPS_HELP)
    chord_conditioning: bool = option(
        True, help="with chords: the tuned network reads the current chord (off: rewards only)"
    )
    seed: int = option(0, help="random seed (the same seed gives the same weights)")
    device: str = option(
        "cpu", help="cpu = fused numba kernels; a torch device (cuda, cuda:1, mps) = PyTorch"
    )
    threads: int = option(
        0, help="update threads: 1, 2, or 0 = automatic (the results never change)"
    )
    save_replay: bool = option(True, help="checkpoint the replay memory too (exact resume)")
    report: bool = option(True, help="write report.html (plots, statistics, audio) at the end")
    embed_prior: bool = option(
        True,
        help="store the Note RNN's weights in tuned.safetensors and the checkpoint (off: only "
        "its hash; then the model needs that file, see --note-rnn)",
    )
    tensorboard: bool = option(
        False, help="also log the scalars to RUN/tensorboard/ (tensorboard --logdir RUN)"
    )
    # kl_pg only (rltuner.policy_gradient): reward c*r_MT + alpha*log p - beta*(log pi - log p)
    pg_batch: int = option(256, help="kl_pg: whole compositions sampled per PPO iteration")
    kl_coef: float = option(
        6.0, help="kl_pg: beta, the KL penalty per step (start value if adaptive)"
    )
    target_kl: float = option(
        0.0, help="kl_pg: KL(pi||p) per step that beta is steered toward; 0 = fixed beta"
    )
    kl_adapt_rate: float = option(
        0.5, help="kl_pg: beta *= 1 + rate*clip(KL/target - 1, +-0.2) per batch"
    )
    log_p_bonus: float = option(
        3.0, help="kl_pg: alpha, weight of the Note RNN's log p(a|s) in the reward"
    )
    pg_discount: float = option(1.0, help="kl_pg: gamma within a composition (1 = undiscounted)")
    gae_lambda: float = option(0.95, help="kl_pg: lambda of the generalised advantage estimate")
    ppo_clip: float = option(0.2, help="kl_pg: PPO's clip range epsilon of the probability ratio")
    ppo_epochs: int = option(4, help="kl_pg: passes over each batch")
    ppo_minibatches: int = option(4, help="kl_pg: minibatches per pass (whole compositions each)")
    pg_learning_rate: float = option(2e-4, help="kl_pg: Adam step size (policy and value head)")
    pg_max_grad_norm: float = option(
        1.0, help="kl_pg: global gradient-norm clip (policy, value separately)"
    )
    value_coef: float = option(0.5, help="kl_pg: weight of the value loss")
    constraints: str = option(
        "natural",
        help="kl_pg: bounds on statistics held by Lagrange multipliers: natural (table1 and "
        "at least 9% repeated pitches), table1 (the paper's Q column with a margin) or none; "
        "--bound adds or changes one",
    )
    bounds: dict[str, float] = option(
        help="kl_pg: constraint bounds, statistic -> bound (see rltuner.constraints)",
        factory=dict,
    )
    constraint_rate: float = option(
        0.15, help="kl_pg: per-batch rise of a clearly violated bound's multiplier, in beta"
    )
    constraint_cap: float = option(
        10.0, help="kl_pg: the largest multiplier of a bound, in units of beta"
    )
    constraint_release: float = option(
        3.0, help="kl_pg: a met bound's multiplier falls this many times as fast as it rises"
    )

    def __post_init__(self) -> None:
        if self.algorithm not in (*ALGORITHMS, PG_ALGORITHM):
            raise RltunerError(
                f"unknown algorithm {self.algorithm!r}; choose from "
                f"{', '.join((*ALGORITHMS, PG_ALGORITHM))}"
            )
        if self.reward_mode not in REWARD_MODES:
            raise RltunerError(
                f"unknown reward mode {self.reward_mode!r}; choose from {', '.join(REWARD_MODES)}"
            )
        if self.exploration not in EXPLORATION_MODES:
            valid = ", ".join(EXPLORATION_MODES)
            raise RltunerError(f"unknown exploration {self.exploration!r}; choose from {valid}")
        if self.priming not in PRIMING_MODES:
            raise RltunerError(
                f"unknown priming mode {self.priming!r}; choose from {', '.join(PRIMING_MODES)}"
            )
        if self.priming == "single_midi" and not self.primer:
            raise RltunerError("priming 'single_midi' needs --primer FILE.mid")
        if self.primer and self.priming != "single_midi":
            raise RltunerError(
                f"--primer {self.primer} is used only with --priming single_midi "
                f"(priming is {self.priming!r})"
            )
        unknown = (
            set(self.weights)
            - set(RULE_NAMES)
            - set(HARMONY_RULE_NAMES)
            - {rule_name(r) for r in self.rules}
        )
        if unknown and unknown - installed_rule_names():
            raise RltunerError(
                f"unknown rule(s) in weights: {sorted(unknown)}; valid: {', '.join(RULE_NAMES)}"
                f", {', '.join(HARMONY_RULE_NAMES)} or a user rule (--rule)"
            )
        if isinstance(self.chords, str):  # chords = "C G Am F" in a config file: one
            self.chords = [self.chords]
        has_chords = bool(self.chords or self.chords_file)
        user_names = {rule_name(r) for r in self.rules if r not in HARMONY_RULE_NAMES}
        chord_rules = sorted(
            r
            for r in {*self.rules, *self.weights} - user_names
            if r in HARMONY_RULE_NAMES and r != "neighbour_keys" and self.weights.get(r, 1) != 0
        )
        if chord_rules and not has_chords:
            raise RltunerError(
                f"the harmony rule(s) {', '.join(chord_rules)} need chords: give a progression "
                'with --chords "C G Am F" (or --chords-file)'
            )
        if has_chords and self.algorithm == PG_ALGORITHM:
            raise RltunerError(
                "--chords: harmony tuning runs with q, psi, g and pure_rl (not kl_pg yet)"
            )
        for name in (
            "steps",
            "num_notes",
            "minibatch_size",
            "train_every",
            "memory_size",
            "num_envs",
            "eval_every",
            "eval_compositions",
            "final_compositions",
            "pg_batch",
            "ppo_epochs",
            "ppo_minibatches",
            "chord_steps",
        ):
            check_int(name, getattr(self, name), 1)
        check_int("num_samples", self.num_samples, 0)
        check_int("exploration_period", self.exploration_period, 0)
        check_int("seed", self.seed, 0)
        for name in ("kl_coef", "target_kl", "kl_adapt_rate", "ppo_clip", "log_p_bonus",
                     "value_coef", "constraint_rate", "constraint_cap",
                     "constraint_release"):  # fmt: skip
            check_range(name, getattr(self, name), 0.0, math.inf)
        for name in ("pg_learning_rate", "pg_max_grad_norm"):
            check_range(name, getattr(self, name), 0.0, math.inf, low_open=True)
        check_range("pg_discount", self.pg_discount, 0.0, 1.0)
        constraint_set(self.constraints, self.bounds)  # raises for a bad preset or bound
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        if self.memory_size < self.minibatch_size:
            raise RltunerError(
                f"--memory-size ({self.memory_size}) must be at least --minibatch-size "
                f"({self.minibatch_size})"
            )
        check_range("discount", self.discount, 0.0, 1.0, high_open=True)
        check_range("random_action_probability", self.random_action_probability, 0.0, 1.0)
        check_range("target_update_rate", self.target_update_rate, 0.0, 1.0, low_open=True)
        check_range("learning_rate", self.learning_rate, 0.0, math.inf, low_open=True)
        check_range("clip_norm", self.clip_norm, 0.0, math.inf, low_open=True)
        check_range("reward_scaler", self.reward_scaler, 0.0, math.inf)
        if self.threads not in (0, 1, 2):
            raise RltunerError(f"--threads must be 0 (automatic), 1 or 2, got {self.threads}")
        for name, w in self.weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
                raise RltunerError(f"--weight {name}={w!r}: the weight must be a finite number")
        try:
            Key.parse(self.key)
        except ValueError as e:
            raise RltunerError(f"--key: {e}") from None
        check_device(self.device)
        if not isinstance(self.chords, list) or not all(isinstance(c, str) for c in self.chords):
            raise RltunerError(f"chords must be a list of progressions, got {self.chords!r}")

    @property
    def env_batch(self) -> int:
        """Compositions played in parallel while training."""
        return self.pg_batch if self.algorithm == PG_ALGORITHM else self.num_envs

    @property
    def effective_reward_mode(self) -> str:
        return "music_theory_only" if self.algorithm in ("g", "pure_rl") else self.reward_mode

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TunerConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise RltunerError(f"unknown configuration field(s): {sorted(unknown)}")
        return cls(**d)


@dataclass
class Rollout:
    """Compositions sampled from a policy, with per-step rewards.

    ``compositions`` (n, N) int8; ``log_p`` and ``music_theory`` (n, N) float64: Reward-RNN
    log p(a|s) and weighted r_MT (unscaled) of every step; over chords, ``chord_of`` (n, N) the
    chord (row of the run's harmony tables) at every step."""

    compositions: np.ndarray
    log_p: np.ndarray
    music_theory: np.ndarray
    chord_of: np.ndarray | None = None


class RLTuner:
    """Tune a Note RNN with RL. ``RLTuner(config).train(run_dir)``; ``.generate()``,
    ``.evaluate()``, ``.save()``, ``RLTuner.load(run_dir)``."""

    def __init__(
        self,
        config: TunerConfig | None = None,
        *,
        prior: Network | None = None,
        primer_melody: np.ndarray | None = None,
        progressions: Sequence[Progression] | None = None,
    ) -> None:
        """``prior``: the Note RNN to tune (default: ``config.note_rnn``'s file, or the bundled
        one); ``primer_melody``: the ``single_midi`` primer as classes (default: read from
        ``config.primer``); ``progressions``: the chords to tune over (default: from
        ``config.chords`` / ``config.chords_file``). :meth:`load` passes all three from a
        checkpoint."""
        self.config = cfg = config or TunerConfig()
        self.note_rnn_path = cfg.note_rnn or str(bundled_note_rnn_path())
        self.note_rnn_meta: dict[str, Any] = {}
        if prior is None:
            prior, self.note_rnn_meta = load_network(self.note_rnn_path)
        note_rnn = prior
        self.prior = prior.to("cpu") if prior.device != "cpu" else prior
        self._primer_melody = None if primer_melody is None else np.asarray(primer_melody)
        if cfg.device != "cpu":
            note_rnn = note_rnn.to(cfg.device)
        self.key = Key.parse(cfg.key)
        self.tables = RuleTables.from_key(self.key, cfg.num_notes)
        user_specs = [r for r in cfg.rules if r not in HARMONY_RULE_NAMES]
        # a user rule (--rule FILE.py:name) shadows a built-in harmony rule of the same name
        self._user_names = {rule_name(r) for r in user_specs}
        self.user_rules = load_rules(
            user_specs,
            {k: v for k, v in cfg.weights.items()
             if k not in HARMONY_RULE_NAMES or k in self._user_names},
        )  # fmt: skip
        if progressions is None:
            progressions = resolve_progressions(
                cfg.chords, cfg.chords_file, cfg.chord_steps, cfg.num_notes
            )
        self.progressions = tuple(progressions)
        self.harmony = self._make_harmony()
        self.reward_rnn = note_rnn
        self.rng = np.random.default_rng(cfg.seed)
        self.learner = (
            _policy_gradient_learner(note_rnn, cfg)
            if cfg.algorithm == PG_ALGORITHM
            else self._q_learner(note_rnn, cfg)
        )
        self.priming = Priming(cfg.priming, note_rnn, self._primer_melodies(), rng=self.rng)
        self.step = 0
        self.pending_updates = 0.0
        self.history: list[dict[str, float]] = []
        self._memory: ReplayMemory | None = None
        self._env: CompositionEnv | None = None
        self._tb = None  # rltuner.tensorboard.ScalarWriter of this process, made on first use
        self._history_at_start = 0  # log rows written before this train() call (a resume's)
        self._on_window: Callable[[dict[str, float]], None] | None = None  # train()'s hook
        # the running sums of the evaluation window in progress (a _Window; kl_pg: a list of
        # batch statistics): checkpointed, so that a run interrupted mid-window logs that
        # window's row exactly as an uninterrupted run does
        self._window: Any = None

    def _make_harmony(self) -> Harmony | None:
        """The chords and harmony-rule weights of the run (``None``: no harmony rules). Without
        chords only ``neighbour_keys`` can be on; it is scored over the tonic triad with the
        chord rules' weights 0."""
        cfg = self.config
        weights = harmony_weights(
            {k: v for k, v in cfg.weights.items() if k not in self._user_names}, cfg.rules
        )
        if self.progressions:
            tables = HarmonyTables.build(self.progressions, cfg.num_notes)
            return Harmony(tables, weights, conditioned=cfg.chord_conditioning)
        keys_only = np.where(np.array(HARMONY_RULE_NAMES) == "neighbour_keys", weights, 0.0)
        if not keys_only.any():
            return None
        tonic = Key.parse(cfg.key)
        triad = parse_progression(PITCH_NAMES[tonic.tonic] + ("m" if tonic.mode == "minor" else ""))
        return Harmony(HarmonyTables.build([triad], cfg.num_notes), keys_only, conditioned=False)

    @property
    def conditioned(self) -> bool:
        """Whether the tuned network reads the current chord."""
        return self.harmony is not None and self.harmony.conditioned

    def _q_learner(self, note_rnn: Network, cfg: TunerConfig) -> Learner:
        return Learner(
            note_rnn.with_cond_inputs(CHORD_INPUTS) if self.conditioned else note_rnn.copy(),
            self.reward_rnn,
            LearnerHyper(
                algorithm=cfg.algorithm,
                discount=cfg.discount,
                learning_rate=cfg.learning_rate,
                clip_norm=cfg.clip_norm,
                target_update_rate=cfg.target_update_rate,
                double_dqn=cfg.double_dqn,
            ),
            threads=cfg.threads,
        )

    # ------------------------------------------------------------------ set-up helpers
    def _primer_melodies(self) -> list[np.ndarray] | None:
        cfg = self.config
        if cfg.priming == "single_midi":
            if self._primer_melody is None:
                from rltuner.midi_io import read_midi

                self._primer_melody = np.asarray(read_midi(cfg.primer)[0].melody)
            return [self._primer_melody]
        if cfg.priming == "random_midi":
            from rltuner.corpus import load_bundled

            return list(load_bundled().melodies)
        return None

    def _make_env(self, batch: int, rng: np.random.Generator) -> CompositionEnv:
        cfg = self.config
        return CompositionEnv(
            self.reward_rnn,
            self.tables,
            batch,
            self.priming,
            rng,
            reward_mode=cfg.effective_reward_mode,
            reward_scaler=cfg.reward_scaler,
            weights=cfg.weights or None,
            user_rules=self.user_rules,
            harmony=self.harmony,
        )

    def _new_memory(self) -> ReplayMemory:
        cfg = self.config
        return ReplayMemory(
            cfg.memory_size,
            self.reward_rnn.layout.state_size,
            store_reward_state=cfg.algorithm == "g",
            stride=cfg.num_envs,
            prime_states=self.priming.table,
            cond_rows=self.harmony.rows if self.harmony is not None else None,
        )

    @property
    def q_network(self) -> Network:
        return self.learner.q

    @property
    def policy(self) -> Policy:
        """The tuned policy: the Q-network with this run's algorithm and its prior."""
        progs = self.progressions if self.conditioned else ()
        return Policy(self.learner.q, self.config.algorithm, self.reward_rnn, progs)

    # ------------------------------------------------------------------ sampling
    def rollout(
        self,
        n: int,
        seed: int | Sequence[int] | None = None,
        *,
        most_probable: bool = False,
        network: Network | None = None,
        batch: int = 2048,
    ) -> Rollout:
        """Sample ``n`` compositions (no exploration) with the one sampler
        (:func:`rltuner.policy.sample`) and this run's priming: each note drawn from the
        softmax of the policy's scores (argmax with ``most_probable``), then every step
        scored as the environment scores it. ``network`` defaults to the tuned Q-network; pass
        ``self.reward_rnn`` for the untuned Note RNN."""
        seed = self.config.seed + 1 if seed is None else seed
        policy = self.policy if network is None else Policy(network)
        s = sample(policy, n, self.tables.num_notes, seed, priming=self.priming,
                   most_probable=most_probable, batch=batch,
                   progressions=self.progressions or None)  # fmt: skip
        cfg = self.config
        chord_of = s.chord_of
        if self.harmony is not None and chord_of is None:  # neighbour_keys alone: no chords
            chord_of = self.harmony.tables.steps[np.zeros(n, dtype=np.int64)]
        music = music_theory_rewards(s.compositions, s.first_obs, self.tables,
                                     cfg.weights or None, self.user_rules, self.harmony,
                                     chord_of)  # fmt: skip
        return Rollout(s.compositions, s.log_p.astype(np.float64), music, s.chord_of)

    def generate(
        self, n: int = 10, seed: int | None = None, most_probable: bool = False
    ) -> np.ndarray:
        """``(n, num_notes)`` int8 compositions from the tuned policy."""
        seed = self.config.seed + 7 if seed is None else seed
        return self.rollout(n, seed, most_probable=most_probable).compositions

    def evaluate(
        self, n: int = 1000, seed: int | None = None, network: Network | None = None
    ) -> dict[str, Any]:
        """Table-1 statistics (``docs/rules.md#table-1-statistics``), mean rewards, and the
        naturalness and diversity metrics of :mod:`rltuner.naturalness` (``naturalness``: flat
        scalars, NaN as ``None``; ``naturalness_details``: distributions and top openings;
        ``naturalness_corpus``: the same scalars for held-out corpus windows of ``num_notes`` steps,
        for reference) of ``n`` sampled compositions."""
        seed = self.config.seed + 11 if seed is None else seed
        ro = self.rollout(n, seed, network=network)
        stats = composition_stats(ro.compositions, self.key)
        reference = bundled_reference()
        nat = naturalness_stats(ro.compositions, reference)
        corpus = reference.reference_stats(self.config.num_notes) if reference else None
        harmony: dict[str, Any] = {}
        if self.progressions:
            from rltuner.harmony import harmony_statistics

            tables = self.harmony.tables
            base = self.rollout(n, seed, network=self.reward_rnn) if network is None else None
            harmony = {
                "progressions": [p.symbols() for p in self.progressions],
                "harmony": harmony_statistics(ro.compositions, ro.chord_of, tables),
                "harmony_note_rnn": None
                if base is None
                else harmony_statistics(base.compositions, base.chord_of, tables),
            }
        return {
            "compositions": n,
            "table1": stats.table1(),
            "mean_log_p": float(ro.log_p.mean()),
            "mean_music_theory": float(ro.music_theory.mean()),
            "mean_music_theory_scaled": float(ro.music_theory.mean() * self.config.reward_scaler),
            "naturalness": _none_for_nan(nat.scalars()),
            "naturalness_details": nat.details(),
            "naturalness_corpus": _none_for_nan(corpus.scalars()) if corpus else None,
            **harmony,
        }

    # ------------------------------------------------------------------ training
    def train(
        self,
        run_dir: str | os.PathLike | None = None,
        *,
        progress: bool = True,
        stop_after: int | None = None,
        force: bool = False,
        on_window: Callable[[dict[str, float]], None] | None = None,
    ) -> dict[str, Any]:
        """Train to ``config.steps`` environment steps (continuing from ``self.step``).

        With ``run_dir``: logs, a checkpoint every ``eval_every`` steps (atomic), and at the end
        plots, MIDI samples, ``stats.json`` and ``tuned.safetensors``. Ctrl-C (SIGINT) writes a
        checkpoint and returns. ``stop_after`` stops after that many more steps (tests).
        ``on_window(row)`` is called with every evaluation window's log row once it is logged
        and checkpointed (a sweep reports it to Ray Tune; a scheduler may end the process
        there, losing nothing).

        A new tuner (step 0) refuses a ``run_dir`` that already holds a run's checkpoint unless
        ``force``: then it starts over there, replacing that run's config, logs and outputs.
        To continue a run, use :meth:`RLTuner.load` and call ``train`` on the loaded tuner."""
        cfg = self.config
        run = Path(run_dir) if run_dir is not None else None
        if run is not None:
            self._prepare_run_dir(run, fresh=self.step == 0 and not self.history, force=force)
        self._history_at_start = len(self.history)
        self._on_window = on_window
        is_pg = cfg.algorithm == PG_ALGORITHM
        if cfg.device == "cpu" and not is_pg:
            ensure_compiled(self.learner.threads, announce=progress)
        if self._memory is None and not is_pg:
            self._memory = self._new_memory()
        if self._env is None:
            self._env = self._make_env(cfg.env_batch, self.rng)
        env, memory, learner = self._env, self._memory, self.learner
        end = cfg.steps if stop_after is None else min(cfg.steps, self.step + stop_after)
        window = self._window if isinstance(self._window, _Window) else _Window()
        self._window = window
        bar = _progress(progress, total=cfg.steps, initial=self.step)
        interrupted = False
        previous_handler = None
        stop_flag = {"stop": False}

        def _on_sigint(signum, frame):  # finish the current step, then checkpoint
            stop_flag["stop"] = True

        with contextlib.suppress(ValueError):  # not in the main thread: no handler
            previous_handler = signal.signal(signal.SIGINT, _on_sigint)
        t0 = time.perf_counter()
        steps_at_start = self.step
        try:
            if is_pg:
                from rltuner.policy_gradient import train_loop

                interrupted = train_loop(self, run, end, bar, stop_flag, t0)
            while not is_pg and self.step < end:
                if stop_flag["stop"]:
                    interrupted = True
                    break
                b = env.batch_size
                eps = float(
                    linear_epsilon(self.step, cfg.exploration_period, cfg.random_action_probability)
                )
                cond = env.cond
                q, q_next = learner.q.step(env.obs, env.q_state, cond=cond)
                scores = action_scores(cfg.algorithm, q, env.reward_logits)
                if cfg.stochastic_observations and cfg.exploration == "egreedy":
                    # the original: a random action is played as drawn; otherwise the note
                    # played is sampled from the softmax (and, fixed here, that note is stored)
                    action, explored = learner.choose_egreedy(scores, self.rng, eps)
                    action = np.where(explored, action, softmax_sample(scores, self.rng))
                else:
                    action = learner.choose(scores, self.rng, cfg.exploration, eps)
                obs, r_next, next_chord = env.obs, env.r_next_state, env.next_chord
                prime = np.where(env.beat == 0, env.prime_index, -1)
                out = env.step(action, q_next)
                memory.add(
                    obs,
                    prime,
                    action,
                    out.reward,
                    q_next,
                    r_next if memory.store_reward_state else None,
                    None if cond is None else cond[0],
                    next_chord,
                )
                window.add_steps(out, cfg.reward_scaler)
                self.step += b
                self.pending_updates += b / cfg.train_every
                if memory.size >= cfg.minibatch_size and self.pending_updates >= 1:
                    k = int(self.pending_updates)
                    self.pending_updates -= k
                    idx = memory.sample_indices(self.rng, k, cfg.minibatch_size)
                    stats = learner.update(memory, idx)
                    if not np.isfinite(stats.loss).all():
                        self._diverged(run, "the TD loss")
                    window.add_updates(stats)
                if bar is not None:
                    bar.update(b)
                    if window.n_steps and (self.step // b) % 50 == 0:
                        bar.set_postfix(window.postfix(), refresh=False)
                crossed = self.step // cfg.eval_every > (self.step - b) // cfg.eval_every
                if crossed or self.step >= cfg.steps:
                    row = self._evaluate_window(
                        window, time.perf_counter() - t0, self.step - steps_at_start
                    )
                    self._window = window = _Window()
                    if not np.isfinite(learner.q.theta).all():
                        self._diverged(run, "the Q-network weights")
                    self._end_window(run, row)
        finally:
            if bar is not None:
                bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        if interrupted and run is not None:
            self.save_checkpoint(run)
            print(
                f"interrupted at step {self.step:,}: checkpoint written to {run / 'checkpoint'}; "
                f"continue with: rltuner tune --resume {run}",
                file=sys.stderr,
            )
        result: dict[str, Any] = {
            "steps": self.step,
            "interrupted": interrupted,
            "seconds": time.perf_counter() - t0,
        }
        if self.step >= cfg.steps and run is not None and not interrupted:
            # the replay (~160 MB) is in the checkpoint already: free it before the end-of-run
            # evaluation, plots and report so they do not add to the run's peak memory
            self._memory = None
            result.update(self.finish(run))
        return result

    def _diverged(self, run: Path | None, what: str) -> None:
        kept = (
            f"the last good checkpoint is kept in {run / 'checkpoint'}"
            if run is not None and (run / "checkpoint" / "state.safetensors").exists()
            else "no checkpoint was written"
        )
        raise RltunerError(
            f"training diverged at step {self.step:,}: {what} became NaN or infinite "
            f"(try a lower --learning-rate or --reward-scaler); {kept}"
        )

    def _evaluate_window(
        self, window: _Window, elapsed: float, steps_done: int
    ) -> dict[str, float]:
        cfg = self.config
        ro = self.rollout(cfg.eval_compositions, (cfg.seed, self.step))
        chords: dict[str, float] = {}
        if self.progressions:
            from rltuner.harmony import harmony_statistics

            h = harmony_statistics(ro.compositions, ro.chord_of, self.harmony.tables)
            chords = {f"eval/{k}": float(h[k]) for k in _WINDOW_HARMONY}
        row = {
            "step": self.step,
            **window.summary(),
            "eval/music_theory_reward": float(ro.music_theory.mean() * cfg.reward_scaler),
            "eval/note_rnn_log_p": float(ro.log_p.mean()),
            "eval/log_p_plus_music_theory": float(
                (ro.music_theory * cfg.reward_scaler + ro.log_p).mean()
            ),
            "charts/epsilon": float(
                linear_epsilon(self.step, cfg.exploration_period, cfg.random_action_probability)
            ),
            "charts/steps_per_second": steps_done / max(elapsed, 1e-9),
            **chords,
        }
        self.history.append(row)
        return row

    def _end_window(self, run: Path | None, row: dict[str, float]) -> None:
        """Log and checkpoint a finished window (with a run dir), then hand its row to the
        ``on_window`` hook of :meth:`train`. Every algorithm's loop ends a window here."""
        if run is not None:
            self._write_row_and_checkpoint(run, row)
        if self._on_window is not None:
            self._on_window(row)

    def _write_row_and_checkpoint(self, run: Path, row: dict[str, float]) -> None:
        try:
            self._append_log(run, row)
        except OSError as e:  # e.g. a full disk
            raise RltunerError(
                f"{run}: cannot write the training log ({e.strerror or e}); "
                "the last checkpoint is intact"
            ) from None
        self.save_checkpoint(run)

    def _prepare_run_dir(self, run: Path, fresh: bool, force: bool) -> None:
        if fresh and has_checkpoint(run) and not force:
            raise RltunerError(
                f"{run}: already holds a run; continue it (rltuner tune --resume {run}, or "
                "RLTuner.load) or start over (--force, or train(..., force=True))"
            )
        try:
            run.mkdir(parents=True, exist_ok=True)
            probe = run / ".write_test"
            probe.write_text("ok")
            probe.unlink()
            if fresh:  # starting over: nothing of an earlier run may mix with this one
                for name in _RUN_OUTPUTS:
                    p = run / name
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.exists():
                        p.unlink()
        except OSError as e:
            raise RltunerError(
                f"{run}: cannot write the run directory ({e.strerror or e})"
            ) from None
        # the configuration as it runs now: a resume with a new --steps updates it, so that
        # `rltuner tune --config RUN/config.toml` repeats the run as it was finished
        import tomli_w

        d = self.config.to_dict()
        text_json = json.dumps(d, indent=2) + "\n"
        text_toml = tomli_w.dumps({k: v for k, v in d.items() if v is not None})
        for path, text in ((run / "config.json", text_json), (run / "config.toml", text_toml)):
            if not path.exists() or path.read_text() != text:
                atomic_write_text(path, text)

    def _append_log(self, run: Path, row: dict[str, float]) -> None:
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        _write_csv(run / "metrics.csv", self.history)
        self._log_tensorboard(run, row)

    def _log_tensorboard(self, run: Path, row: dict[str, Any]) -> None:
        """The scalars of ``row`` at ``row["step"]`` to ``run/tensorboard/`` when
        ``config.tensorboard`` is on. This process's
        first write opens a new event file; after a resume it starts with a marker that makes
        TensorBoard drop what an interrupted run logged after its last checkpoint."""
        if not self.config.tensorboard:
            return
        step = int(row["step"])
        if self._tb is None:
            from rltuner.tensorboard import ScalarWriter

            earlier = self.history[: self._history_at_start]
            last = earlier[-1] if earlier else None
            if last is not None and last["step"] >= step:
                # a finished run resumed (only its end-of-run outputs are written again): drop
                # the earlier points at this step and log the last window again, then the rest
                self._tb = ScalarWriter(run / "tensorboard", resume_step=step - 1)
                self._tb.add_scalars(int(last["step"]), _without_step(last))
            else:
                self._tb = ScalarWriter(
                    run / "tensorboard", resume_step=last["step"] if last else None
                )
        self._tb.add_scalars(step, _without_step(row))

    # ------------------------------------------------------------------ outputs
    def finish(self, run: Path) -> dict[str, Any]:
        """End-of-run outputs: tuned model, Table-1 statistics, MIDI samples, plots, report.
        The report (its own process) starts as soon as the tuned model is written and runs on
        the second core while this process writes the rest."""
        cfg = self.config
        self.save(run / "tuned.safetensors")
        report = self._start_report(run) if cfg.report else None
        stats = self.evaluate(cfg.final_compositions)
        atomic_write_text(run / "stats.json", json.dumps(stats, indent=2) + "\n")
        table1 = {f"table1/{k}": v for k, v in stats["table1"].items()}
        natural = {f"naturalness/{k}": v for k, v in stats["naturalness"].items()}
        self._log_tensorboard(
            run,
            {"step": self.step, **table1, "table1/mean_log_p": stats["mean_log_p"], **natural},
        )
        from rltuner.midi_io import write_midi

        samples = run / "samples"
        samples.mkdir(exist_ok=True)
        comps = self.generate(cfg.num_samples)
        progs = self.progressions
        for i, m in enumerate(comps):  # over chords: sample i plays progression i mod P
            spans = progs[i % len(progs)].spans(cfg.num_notes) if progs else None
            write_midi(m.astype(np.int64), samples / f"sample_{i:03d}.mid", chords=spans)
        from rltuner.report import plot_training

        plot_training(self.history, run / "plots")
        out: dict[str, Any] = {"stats": stats}
        if report is not None:
            _, err = report.communicate()
            if report.returncode != 0:
                print(f"warning: the HTML report failed: {err.strip()[-500:]}", file=sys.stderr)
            else:
                out["report"] = str(run / "report.html")
        return out

    @staticmethod
    def _start_report(run: Path):
        """``rltuner report`` in a child process: its evaluation kernels and audio rendering
        (~130 MB) never add to the training process's peak memory, and a failure there cannot
        lose the run's other outputs."""
        import subprocess

        cmd = [
            sys.executable,
            "-m",
            "rltuner.cli",
            "report",
            str(run),
            "--samples",
            "4",
            "--compositions",
            "1000",
            "--synth",
            "builtin",
            "--quiet",
        ]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def _prior_source(self) -> str:
        return "bundled" if self.config.note_rnn is None else str(self.config.note_rnn)

    def _prior_record(self, where: Path) -> dict[str, Any]:
        src = None if self.config.note_rnn is None else Path(self.config.note_rnn)
        return prior_record(self.prior, self._prior_source(), src, where, self.config.embed_prior)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tuned Q-network as a Note RNN checkpoint (loadable by
        :func:`rltuner.note_rnn.load_note_rnn` and by :func:`rltuner.network.load_network`),
        recording its prior's identity (``training.prior``) and, with ``config.embed_prior``,
        the prior's weights (:func:`rltuner.policy.load_policy` reads them)."""
        path = Path(path)
        meta = {
            "kind": "note_rnn",
            "format_version": 1,
            "config": {"layer_sizes": list(self.learner.q.layout.layer_sizes), "num_classes": 38},
            "training": {
                "tuned_by": "rltuner tune",
                "tuner_config": self.config.to_dict(),
                "steps": self.step,
                "base_note_rnn": self._prior_source(),
                "prior": self._prior_record(path.parent),
                "progressions": progressions_to_json(self.progressions),
            },
            "metrics": {},
        }
        if self.note_rnn_meta.get("encoding"):
            meta["encoding"] = dict(self.note_rnn_meta["encoding"])
        if self.conditioned:
            meta["config"]["cond_inputs"] = CHORD_INPUTS
            meta["config"]["cond_features"] = CHORD_FEATURES
        arrays = self.learner.q.to_state_dict()
        if self.config.embed_prior:
            arrays.update(prior_arrays(self.prior))
        save_arrays(path, arrays, meta)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, run: str | os.PathLike) -> Path:
        """Atomically write everything needed to resume exactly to ``run/checkpoint``."""
        run = Path(run)
        d = run / "checkpoint"
        d.mkdir(parents=True, exist_ok=True)
        arrays = {f"learner/{k}": v for k, v in self.learner.state_dict().items()}
        if self._env is not None:
            arrays.update({f"env/{k}": v for k, v in self._env.state_dict().items()})
        if self._memory is not None and self.config.save_replay:
            arrays.update({f"replay/{k}": v for k, v in self._memory.state_dict().items()})
        if self.config.embed_prior:
            arrays.update(prior_arrays(self.prior))
        meta = {
            "kind": "rltuner_run",
            "format_version": FORMAT_VERSION,
            "step": self.step,
            "pending_updates": self.pending_updates,
            "window": _window_state(self._window),
            "rng": _jsonable_rng(self.rng),
            "config": self.config.to_dict(),
            "history": self.history,
            "prior": self._prior_record(d),
            "progressions": progressions_to_json(self.progressions),
        }
        if self.note_rnn_meta.get("encoding"):
            meta["encoding"] = dict(self.note_rnn_meta["encoding"])
        if self._primer_melody is not None:  # the run must not need the primer file again
            meta["primer_melody"] = [int(c) for c in self._primer_melody]
        try:  # the checkpoint it replaces is kept as previous.safetensors (a fallback)
            save_arrays(d / "state.safetensors", arrays, meta, previous=d / "previous.safetensors")
        except OSError as e:  # e.g. a full disk: the atomic write left the old checkpoint whole
            raise RltunerError(
                f"{d / 'state.safetensors'}: cannot write the checkpoint ({e.strerror or e}); "
                "the previous checkpoint, if any, is intact"
            ) from None
        return d

    @classmethod
    def load(
        cls,
        run: str | os.PathLike,
        config_overrides: dict[str, Any] | None = None,
        note_rnn: str | os.PathLike | None = None,
    ) -> RLTuner:
        """Rebuild a tuner from ``run/checkpoint`` (networks, Adam, replay, env, RNG, logs).

        The prior comes from the checkpoint (embedded, else its recorded file or the bundled
        Note RNN when the hash matches; ``note_rnn``: a file to use, checked against the hash;
        :func:`rltuner.policy.resolve_prior`), so a run folder can be moved or copied.

        The latest checkpoint is ``state.safetensors``; when it is missing or damaged (its
        SHA-256 does not match) the one before it, ``previous.safetensors``, is used, and a line
        on stderr says so."""
        run = Path(run)
        path, arrays, meta = _load_run_checkpoint(run)
        cfg_dict = dict(meta["config"])
        if cfg_dict.get("algorithm") == PG_ALGORITHM and "constraints" not in cfg_dict:
            cfg_dict["constraints"] = "none"  # saved before kl_pg had bounds: it had none
        overrides = dict(config_overrides or {})
        refused = sorted(set(overrides) - set(RESUME_OVERRIDES) - {"rules"})
        if refused:
            raise RltunerError(
                f"{run}: a resumed run keeps its configuration; {', '.join(refused)} cannot be "
                f"changed (only {', '.join(RESUME_OVERRIDES)}); start a new run instead"
            )
        # user rules run code, so they are never taken from a checkpoint: the caller names them
        saved_rules = list(cfg_dict.pop("rules", []))
        given = list(overrides.pop("rules", []))
        if saved_rules and not given:
            raise RltunerError(
                f"{run}: this run used user rules ({', '.join(saved_rules)}); rules are never "
                "loaded from a checkpoint, so pass them again: "
                + " ".join(f"--rule {r}" for r in saved_rules)
            )
        if given != saved_rules:
            raise RltunerError(
                f"{run}: the run's user rules are [{', '.join(saved_rules)}], not "
                f"[{', '.join(given)}]; a resumed run keeps its rules"
            )
        if "steps" in overrides and int(overrides["steps"]) < int(meta["step"]):
            raise RltunerError(
                f"{run}: --steps {overrides['steps']:,} is below the run's step "
                f"{int(meta['step']):,}; a run cannot be shortened"
            )
        cfg_dict.update(overrides, rules=given)
        legacy = [meta["config"].get("note_rnn")]
        prior, _ = resolve_prior(path, meta.get("prior"), arrays, legacy, note_rnn)
        primer = meta.get("primer_melody")
        progs = meta.get("progressions")
        tuner = cls(
            TunerConfig.from_dict(cfg_dict),
            prior=prior,
            primer_melody=None if primer is None else np.asarray(primer, dtype=np.int64),
            progressions=None if progs is None else progressions_from_json(progs, str(path)),
        )
        if meta.get("encoding"):
            tuner.note_rnn_meta = {"encoding": dict(meta["encoding"])}
        sub = lambda p: {k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}  # noqa: E731
        tuner.learner.load_state_dict(sub("learner/"))
        tuner.step = int(meta["step"])
        tuner.pending_updates = float(meta["pending_updates"])
        tuner._window = _window_from_state(meta.get("window"))
        tuner.history = list(meta.get("history", []))
        env_state = sub("env/")
        if env_state:
            tuner._env = tuner._make_env(tuner.config.env_batch, tuner.rng)
            tuner._env.load_state_dict(env_state)
        tuner.rng.bit_generator.state = meta["rng"]  # after the env's reset drew from it
        replay = sub("replay/")
        if replay:
            tuner._memory = tuner._new_memory()
            tuner._memory.load_state_dict(replay)
        # keep the log consistent with the checkpoint: drop rows written after it
        log = run / "metrics.jsonl"
        if log.exists():
            rows = []
            for x in log.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line torn by a kill
                    rows.append(json.loads(x))
            rows = [r for r in rows if r.get("step", 0) <= tuner.step]
            atomic_write_text(log, "".join(json.dumps(r) + "\n" for r in rows))
        return tuner


# ---------------------------------------------------------------------- small helpers
def _load_run_checkpoint(run: Path) -> tuple[Path, dict[str, np.ndarray], dict[str, Any]]:
    """The path, arrays and metadata of the run's latest readable checkpoint (see
    RLTuner.load)."""
    d = run / "checkpoint"
    latest, previous = d / "state.safetensors", d / "previous.safetensors"
    if not latest.exists() and not previous.exists():
        raise RltunerError(f"{run}: no checkpoint found (expected {latest})")
    problem = None
    for path in (latest, previous):
        if not path.exists():
            continue
        try:
            arrays, meta = load_arrays(path, what="run checkpoint")
        except RltunerError as e:
            problem = problem or str(e)
            continue
        if meta.get("kind") != "rltuner_run":
            problem = problem or f"{path}: not an rltuner run checkpoint"
            continue
        if path == previous:
            print(
                f"warning: {problem or f'{latest}: missing'}; resuming from the previous "
                f"checkpoint {path.name} (step {int(meta['step']):,})",
                file=sys.stderr,
            )
        return path, arrays, meta
    raise RltunerError(
        problem if not previous.exists() else f"{problem}; {previous} is unusable too"
    )


def has_checkpoint(run: str | os.PathLike) -> bool:
    """Whether the run directory ``run`` holds a checkpoint to resume from:
    ``checkpoint/state.safetensors``, or ``previous.safetensors`` alone when a crash fell
    between the two renames of a checkpoint write. A run stopped before its first checkpoint was
    whole has neither (at most the empty folder): nothing to resume, it starts over."""
    d = Path(run) / "checkpoint"
    return (d / "state.safetensors").exists() or (d / "previous.safetensors").exists()


# what a run writes into its directory (removed when a new run starts over there)
_RUN_OUTPUTS = (
    "config.json", "config.toml", "metrics.jsonl", "metrics.csv", "checkpoint", "tensorboard",
    "tuned.safetensors", "stats.json", "samples", "plots", "report.html",
)  # fmt: skip


def _policy_gradient_learner(note_rnn: Network, cfg: TunerConfig):
    from rltuner.policy_gradient import PolicyGradientLearner, hyper_from_config

    if cfg.device != "cpu":  # the rollouts run numba; the update's torch device is the CPU's
        raise RltunerError("--algorithm kl_pg runs on the CPU only (use --device cpu)")
    return PolicyGradientLearner(note_rnn.copy(), hyper_from_config(cfg), seed=cfg.seed)


# the harmony statistics logged per evaluation window of a run over chords
_WINDOW_HARMONY = ("strong_beat_chord_tones", "clashes", "unresolved_non_chord_tones", "cadence")


def _without_step(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "step"}


def _none_for_nan(d: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: undefined values become ``None``."""
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in d.items()}


def _window_state(window: Any) -> Any:
    """The window in progress as JSON data (see RLTuner._window)."""
    if isinstance(window, _Window):
        return {"kind": "dqn", **vars(window)}
    if window:  # kl_pg: the statistics of the batches since the last row
        return {"kind": "pg", "batches": [{k: float(v) for k, v in s.items()} for s in window]}
    return None


def _window_from_state(state: dict[str, Any] | None) -> Any:
    if not state:
        return None
    if state.get("kind") == "pg":
        return list(state["batches"])
    w = _Window()
    for k, v in state.items():
        if k != "kind":
            setattr(w, k, v)
    return w


class _Window:
    """Running sums of training rewards and update statistics within a log window."""

    def __init__(self) -> None:
        self.n_steps = 0
        self.total = self.music = self.log_p = 0.0
        self.n_updates = 0
        self.loss = self.target = 0.0

    def add_steps(self, out, scaler: float) -> None:
        self.n_steps += out.reward.shape[0]
        self.total += float(out.reward.sum())
        self.music += float(out.music_theory.sum()) * scaler
        self.log_p += float(out.log_p.sum())

    def add_updates(self, stats) -> None:
        self.n_updates += stats.loss.shape[0]
        self.loss += float(stats.loss.sum())
        self.target += float(stats.target.sum())

    def summary(self) -> dict[str, float]:
        n, u = max(self.n_steps, 1), max(self.n_updates, 1)
        return {
            "train/reward": self.total / n,
            "train/music_theory_reward": self.music / n,
            "train/note_rnn_log_p": self.log_p / n,
            "losses/td_loss": self.loss / u,
            "losses/mean_target": self.target / u,
            "charts/updates": self.n_updates,
        }

    def postfix(self) -> dict[str, str]:
        n = max(self.n_steps, 1)
        return {
            "r": f"{self.total / n:.2f}",
            "mt": f"{self.music / n:.2f}",
            "logp": f"{self.log_p / n:.2f}",
        }


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        unit_scale=True,
        smoothing=0.1,
        dynamic_ncols=True,
    )


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _jsonable_rng(rng: np.random.Generator) -> dict[str, Any]:
    st = rng.bit_generator.state
    return json.loads(json.dumps(st, default=int))
