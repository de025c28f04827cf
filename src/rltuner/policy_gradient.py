"""KL-regularised policy gradient (``--algorithm kl_pg``): PPO on whole compositions.

The objective is the tuner's (``docs/rules.md#algorithms``), optimised on-policy instead of by
Q-learning::

    maximise  E_π[ Σ_t  c·r_MT(t) + α·log p(a_t|s_t) ]  −  β · KL(π ‖ p)

with ``p`` the frozen Note RNN (the Reward RNN). As in KL-controlled fine-tuning of language
models, the KL term is paid per step inside the reward::

    r_t = c·r_MT(t) + α·log p(a_t|s_t) − β·(log π(a_t|s_t) − log p(a_t|s_t))

and optimised with PPO's clipped surrogate, a learned value baseline and GAE. ``β`` is either
fixed or adapted after every batch so that the measured KL per step tracks ``target_kl``.

One iteration: sample ``B`` whole compositions with the current policy (the environment gives
r_MT and log p), score them with the policy in torch (old log π, values), compute rewards and
advantages, then run ``epochs`` passes of ``minibatches`` minibatches, each a backward pass
through time over whole compositions. Rollouts run the numba kernels on a copy of the
policy's weights; only the update uses torch (single-threaded by default).

The pieces of the loss are pure functions (:func:`kl_rewards`, :func:`gae`,
:func:`ppo_loss`, :func:`adapt_kl_coef`) so that they can be checked by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rltuner.constraints import (
    Constraint,
    constraint_set,
    constraint_terms,
    constraint_values,
    dual_step,
)
from rltuner.env import CompositionEnv
from rltuner.errors import RltunerError, missing_torch
from rltuner.network import Network, softmax_sample
from rltuner.rewards import RuleTables, composition_features

if TYPE_CHECKING:
    import torch

__all__ = [
    "PGHyper",
    "PGBatch",
    "PolicyGradientLearner",
    "kl_rewards",
    "gae",
    "ppo_loss",
    "adapt_kl_coef",
    "require_torch",
]


def require_torch():
    """Import torch or fail with one line saying how to get it."""
    try:
        import torch
    except ImportError:
        raise missing_torch("--algorithm kl_pg") from None
    return torch


@dataclass(frozen=True)
class PGHyper:
    """Hyperparameters of :class:`PolicyGradientLearner` (TunerConfig's ``pg_*`` fields)."""

    reward_scaler: float = 2.0  # c
    log_p_bonus: float = 3.0  # α
    kl_coef: float = 6.0  # β (its start value when adaptive)
    target_kl: float = 0.0  # KL per step that β steers toward; 0 = fixed β
    kl_adapt_rate: float = 0.5  # β *= 1 + rate * clip(KL/target − 1, ±0.2) per batch
    discount: float = 1.0  # γ within a composition
    gae_lambda: float = 0.95
    clip_range: float = 0.2  # PPO's ε
    epochs: int = 4
    minibatches: int = 4
    learning_rate: float = 2e-4
    max_grad_norm: float = 1.0
    value_coef: float = 0.5
    value_hidden: int = 64
    constraints: tuple[Constraint, ...] = ()  # bounds on Table-1 statistics (rltuner.constraints)
    constraint_rate: float = 0.15  # η: rise per batch of a clearly violated bound's price, in β
    constraint_cap: float = 10.0  # the largest multiplier, in β
    constraint_release: float = 3.0  # a met bound's price falls this many times as fast


class PGBatch(NamedTuple):
    """``B`` whole compositions of ``T`` steps sampled by the policy.

    ``obs`` (B, T) int64 the network input at each step (the priming observation, then the
    notes played); ``actions`` (B, T) int64 the notes played; ``init_state`` (B, S) float32 the
    LSTM state the compositions start from (policy and Reward RNN alike); ``music_theory``
    (B, T) float64 unscaled r_MT; ``log_p`` (B, T) float64 Reward-RNN log p(a|s);
    ``compositions`` (B, T) int8."""

    obs: np.ndarray
    actions: np.ndarray
    init_state: np.ndarray
    music_theory: np.ndarray
    log_p: np.ndarray
    compositions: np.ndarray


# ---------------------------------------------------------------------------- pure pieces
def kl_rewards(
    music_theory: np.ndarray,
    log_pi: np.ndarray,
    log_p: np.ndarray,
    reward_scaler: float,
    kl_coef: float,
    log_p_bonus: float = 0.0,
) -> np.ndarray:
    """Per-step reward ``c·r_MT + α·log p − β·(log π − log p)``, all arrays ``(B, T)``."""
    return reward_scaler * music_theory + log_p_bonus * log_p - kl_coef * (log_pi - log_p)


def gae(
    rewards: np.ndarray, values: np.ndarray, discount: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates over whole compositions.

    ``rewards``, ``values`` (B, T); the composition ends after step ``T−1`` (value 0 there).
    ``δ_t = r_t + γ V_{t+1} − V_t``, ``A_t = δ_t + γλ A_{t+1}``. Returns
    ``(advantages, returns = advantages + values)``, both (B, T) float64."""
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    adv = np.zeros_like(r)
    running = np.zeros(r.shape[0])
    for t in range(r.shape[1] - 1, -1, -1):
        v_next = v[:, t + 1] if t + 1 < r.shape[1] else 0.0
        delta = r[:, t] + discount * v_next - v[:, t]
        running = delta + discount * lam * running
        adv[:, t] = running
    return adv, adv + v


def ppo_loss(
    new_log_pi: torch.Tensor,
    old_log_pi: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    returns: torch.Tensor,
    clip_range: float,
    value_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate plus the value regression, means over all entries.

    ``L = −mean(min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)) + value_coef·mean((V − R)²)`` with
    ``ρ = exp(new − old)``. Returns ``(loss, stats)``; stats hold the two terms, the share of
    clipped ratios and the approximate KL ``mean(old − new)`` between the two policies."""
    torch = require_torch()
    ratio = torch.exp(new_log_pi - old_log_pi)
    surrogate = torch.minimum(
        ratio * advantages, torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * advantages
    )
    policy_loss = -surrogate.mean()
    value_loss = ((values - returns) ** 2).mean()
    with torch.no_grad():
        clipped = ((ratio - 1).abs() > clip_range).float().mean().item()
        approx_kl = (old_log_pi - new_log_pi).mean().item()
    stats = {
        "policy_loss": float(policy_loss.item()),
        "value_loss": float(value_loss.item()),
        "clip_fraction": clipped,
        "approx_kl": approx_kl,
    }
    return policy_loss + value_coef * value_loss, stats


def adapt_kl_coef(kl_coef: float, kl: float, target: float, rate: float) -> float:
    """Proportional KL control: ``β·(1 + rate·clip(KL/target − 1, −0.2, 0.2))``. β grows when
    the measured KL per step is above the target and shrinks when below; ``target <= 0``
    keeps β fixed."""
    if target <= 0:
        return kl_coef
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return kl_coef * (1.0 + rate * error)


# ---------------------------------------------------------------------------- the learner
class _Adam:
    """Adam (Kingma & Ba; bias-corrected, no weight decay) with the arithmetic of
    ``torch.optim.Adam``'s single-tensor path and the same ``state`` per parameter (``step``,
    ``exp_avg``, ``exp_avg_sq``). Written out because constructing ``torch.optim.Adam``
    imports ``torch._dynamo`` (93 modules, +73 MiB resident), which alone took a default kl_pg
    run over its 500 MiB bound (``benchmarks/RESULTS.md``)."""

    def __init__(self, params: list[Any], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = params
        self.lr, (self.b1, self.b2), self.eps = float(lr), betas, float(eps)
        self.state: dict[Any, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = False) -> None:
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()

    def step(self) -> None:
        torch = require_torch()
        with torch.no_grad():
            for p in self.params:
                if p.grad is None:
                    continue
                st = self.state.get(p)
                if not st:
                    st = self.state[p] = {
                        "step": torch.tensor(0.0),
                        "exp_avg": torch.zeros_like(p),
                        "exp_avg_sq": torch.zeros_like(p),
                    }
                st["step"] += 1
                t = float(st["step"])
                g, m, v = p.grad, st["exp_avg"], st["exp_avg_sq"]
                m.lerp_(g, 1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                bias2_sqrt = math.sqrt(1 - self.b2**t)
                denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
                p.addcdiv_(m, denom, value=-self.lr / (1 - self.b1**t))


class PolicyGradientLearner:
    """The policy (a torch copy of the Note RNN), its value head and Adam.

    ``q`` is the policy as a numba :class:`~rltuner.env.Network` (its logits are the action
    scores), refreshed after every update: sampling, saving and evaluation use it as they use
    a Q-network."""

    def __init__(self, note_rnn: Network, hyper: PGHyper, seed: int = 0) -> None:
        torch = require_torch()
        from rltuner.note_rnn import NoteRNN, NoteRNNConfig

        self.hyper = hyper
        self.layout = note_rnn.layout
        self.kl_coef = float(hyper.kl_coef)
        self.multipliers = np.zeros(len(hyper.constraints))
        self.updates = 0
        gen = torch.Generator().manual_seed(int(seed))
        self.policy = NoteRNN(NoteRNNConfig(layer_sizes=note_rnn.layout.layer_sizes))
        state = {k: torch.from_numpy(np.array(v)) for k, v in note_rnn.to_state_dict().items()}
        self.policy.load_state_dict(state)
        self.value: Any = None  # built by the first batch (it sees the beat, one-hot)
        self.num_beats = 0  # set by the first batch (one-hot beat input of the value head)
        self._gen = gen
        self._value_built = False
        self.opt: Any = None
        self.q = note_rnn.copy()
        self._sync()
        self.tables: RuleTables | None = None  # the run's key, set by the first batch

    # -- parameters --------------------------------------------------------------------------
    def _build_value(self, num_beats: int) -> None:
        """The value head sees the policy's top-layer state (gradient stopped) and the beat."""
        torch = require_torch()
        if self._value_built:
            return
        hidden = self.layout.layer_sizes[-1]
        self.num_beats = int(num_beats)
        self.value = torch.nn.Sequential(
            torch.nn.Linear(hidden + num_beats, self.hyper.value_hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(self.hyper.value_hidden, 1),
        )
        with torch.no_grad():
            for p in self.value.parameters():
                p.copy_(torch.randn(p.shape, generator=self._gen) * (1.0 / math.sqrt(p.shape[-1])))
        self.opt = _Adam(
            list(self.policy.parameters()) + list(self.value.parameters()),
            lr=self.hyper.learning_rate,
            eps=1e-5,
        )
        self._value_built = True

    def _sync(self) -> None:
        """Copy the torch policy's weights into the numba network ``q``."""
        arrays = {k: v.detach().cpu().numpy() for k, v in self.policy.state_dict().items()}
        net = Network.from_state_dict(arrays, self.layout.layer_sizes, source="policy")
        self.q.theta[...] = net.theta
        self.q.sync()

    # -- acting ------------------------------------------------------------------------------
    def collect(self, env: CompositionEnv, rng: np.random.Generator) -> PGBatch:
        """Play ``env.batch_size`` whole compositions (the env must be at beat 0)."""
        if (env.beat != 0).any():
            raise RltunerError("kl_pg rollouts need compositions that start together")
        b, n = env.batch_size, env.tables.num_notes
        obs = np.empty((b, n), dtype=np.int64)
        actions = np.empty((b, n), dtype=np.int64)
        music = np.empty((b, n))
        log_p = np.empty((b, n))
        init_state = env.q_state.copy()
        self.tables = env.tables
        for t in range(n):
            obs[:, t] = env.obs
            logits, q_next = self.q.step(env.obs, env.q_state)
            a = softmax_sample(logits, rng)
            out = env.step(a, q_next)
            actions[:, t] = a
            music[:, t] = out.music_theory
            log_p[:, t] = out.log_p
        return PGBatch(obs, actions, init_state, music, log_p, out.finished)

    # -- learning ----------------------------------------------------------------------------
    def _evaluate(self, obs, actions, init_state, beats):
        """Policy log π(a_t|s_t) (B, T) with gradient, values (B, T)."""
        torch = require_torch()
        layers = []
        off = 0
        for h in self.layout.layer_sizes:
            layers.append((init_state[:, off : off + h], init_state[:, off + h : off + 2 * h]))
            off += 2 * h
        # the policy's forward, keeping the top layer's states for the value head
        x = torch.nn.functional.one_hot(obs, self.policy.num_classes).float()
        for i, lstm in enumerate(self.policy.lstms):
            h0, c0 = layers[i]
            x, _ = lstm(x, (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()))
        logits = self.policy.output(x)
        log_pi = torch.log_softmax(logits, dim=-1).gather(2, actions[..., None])[..., 0]
        feats = torch.cat([x.detach(), beats.expand(x.shape[0], -1, -1)], dim=2)
        values = self.value(feats)[..., 0]
        return log_pi, values

    def update(self, batch: PGBatch, rng: np.random.Generator) -> dict[str, float]:
        """One PPO iteration on ``batch``; adapts β afterwards. Returns logged statistics."""
        torch = require_torch()
        h = self.hyper
        b, n = batch.actions.shape
        self._build_value(n)
        obs = torch.from_numpy(batch.obs)
        actions = torch.from_numpy(batch.actions)
        init = torch.from_numpy(np.ascontiguousarray(batch.init_state, dtype=np.float32))
        beats = torch.eye(n)[None]
        with torch.no_grad():
            old_log_pi_t, values_t = self._evaluate(obs, actions, init, beats)
        old_log_pi = old_log_pi_t.double().numpy()
        rewards = kl_rewards(
            batch.music_theory, old_log_pi, batch.log_p, h.reward_scaler, self.kl_coef,
            h.log_p_bonus,
        )  # fmt: skip
        terms = None
        if h.constraints:
            if self.tables is None:
                raise RltunerError("kl_pg constraints need the batch's rule tables (collect)")
            steps, values = composition_features(batch.compositions, self.tables)
            terms = constraint_terms(steps, values, list(h.constraints), batch.compositions)
            # multipliers are in units of β: the tilt exp(λ·G/β) of the KL-regularised optimum
            rewards = rewards + self.kl_coef * np.tensordot(self.multipliers, terms, axes=1)
        adv, returns = gae(rewards, values_t.double().numpy(), h.discount, h.gae_lambda)
        adv_n = (adv - adv.mean()) / (adv.std() + 1e-8)
        adv_t = torch.from_numpy(adv_n.astype(np.float32))
        ret_t = torch.from_numpy(returns.astype(np.float32))
        policy_params = list(self.policy.parameters())
        value_params = list(self.value.parameters())
        sums: dict[str, float] = {}
        count = 0
        mb = max(1, b // h.minibatches)
        for _ in range(h.epochs):
            perm = rng.permutation(b)
            for s in range(0, b, mb):
                idx = torch.from_numpy(perm[s : s + mb])
                new_log_pi, values = self._evaluate(obs[idx], actions[idx], init[idx], beats)
                loss, st = ppo_loss(
                    new_log_pi, old_log_pi_t[idx], adv_t[idx], values, ret_t[idx],
                    h.clip_range, h.value_coef,
                )  # fmt: skip
                self.opt.zero_grad(set_to_none=False)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy_params, h.max_grad_norm)
                torch.nn.utils.clip_grad_norm_(value_params, h.max_grad_norm)
                self.opt.step()
                for k, v in st.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        self._sync()
        kl = float((old_log_pi - batch.log_p).mean())
        stats = {k: v / max(count, 1) for k, v in sums.items()}
        stats.update(
            kl_per_step=kl,
            kl_coef=self.kl_coef,
            reward=float(rewards.mean()),
            music_theory=float(batch.music_theory.mean() * h.reward_scaler),
            log_p=float(batch.log_p.mean()),
            value_mean=float(values_t.mean()),
        )
        if terms is not None:
            mean, se = constraint_values(terms)
            for c, g in zip(h.constraints, mean, strict=True):
                stats[f"slack/{c.label}"] = float(g)  # the log row's price is the learner's
            self.multipliers = dual_step(
                self.multipliers,
                mean,
                se,
                h.constraint_rate,
                h.constraint_cap,
                h.constraint_release,
            )
        if not all(math.isfinite(v) for v in stats.values()):
            raise FloatingPointError("non-finite policy-gradient statistics")
        self.kl_coef = adapt_kl_coef(self.kl_coef, kl, h.target_kl, h.kl_adapt_rate)
        self.updates += 1
        return stats

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Policy, value head, Adam moments and step counts, β: everything to resume exactly."""
        d = {f"policy/{k}": v.detach().numpy().copy() for k, v in self.policy.state_dict().items()}
        d["kl_coef"] = np.array([self.kl_coef], dtype=np.float64)
        d["constraint_multipliers"] = self.multipliers.astype(np.float64).copy()
        d["updates"] = np.array([self.updates], dtype=np.int64)
        d["num_beats"] = np.array([self.num_beats], dtype=np.int64)
        if self._value_built:
            for k, v in self.value.state_dict().items():
                d[f"value/{k}"] = v.detach().numpy().copy()
            params = list(self.policy.parameters()) + list(self.value.parameters())
            for i, p in enumerate(params):
                st = self.opt.state.get(p)
                if st:
                    d[f"adam/{i}/exp_avg"] = st["exp_avg"].numpy().copy()
                    d[f"adam/{i}/exp_avg_sq"] = st["exp_avg_sq"].numpy().copy()
                    d[f"adam/{i}/step"] = np.array([float(st["step"])], dtype=np.float64)
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        torch = require_torch()
        pol = {k[len("policy/") :]: torch.from_numpy(np.array(v)) for k, v in d.items()
               if k.startswith("policy/")}  # fmt: skip
        self.policy.load_state_dict(pol)
        self.kl_coef = float(d["kl_coef"][0])
        lam = np.asarray(d.get("constraint_multipliers", np.zeros(0)), dtype=np.float64)
        if lam.size != self.multipliers.size:
            raise RltunerError(
                f"the checkpoint holds {lam.size} constraint multipliers, the run has "
                f"{self.multipliers.size} constraints"
            )
        self.multipliers = lam.copy()
        self.updates = int(d["updates"][0])
        beats = int(d["num_beats"][0])
        if beats:
            self._build_value(beats)
            val = {k[len("value/") :]: torch.from_numpy(np.array(v)) for k, v in d.items()
                   if k.startswith("value/")}  # fmt: skip
            self.value.load_state_dict(val)
            params = list(self.policy.parameters()) + list(self.value.parameters())
            for i, p in enumerate(params):
                if f"adam/{i}/exp_avg" in d:
                    self.opt.state[p] = {
                        "step": torch.tensor(float(d[f"adam/{i}/step"][0])),
                        "exp_avg": torch.from_numpy(np.array(d[f"adam/{i}/exp_avg"])),
                        "exp_avg_sq": torch.from_numpy(np.array(d[f"adam/{i}/exp_avg_sq"])),
                    }
        self._sync()


# ---------------------------------------------------------------------------- the loop
def hyper_from_config(cfg: Any) -> PGHyper:
    """:class:`PGHyper` from a :class:`~rltuner.tuner.TunerConfig`."""
    return PGHyper(
        reward_scaler=cfg.reward_scaler,
        log_p_bonus=cfg.log_p_bonus,
        kl_coef=cfg.kl_coef,
        target_kl=cfg.target_kl,
        kl_adapt_rate=cfg.kl_adapt_rate,
        discount=cfg.pg_discount,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.ppo_clip,
        epochs=cfg.ppo_epochs,
        minibatches=cfg.ppo_minibatches,
        learning_rate=cfg.pg_learning_rate,
        max_grad_norm=cfg.pg_max_grad_norm,
        value_coef=cfg.value_coef,
        constraints=tuple(constraint_set(cfg.constraints, cfg.bounds)),
        constraint_rate=cfg.constraint_rate,
        constraint_cap=cfg.constraint_cap,
        constraint_release=cfg.constraint_release,
    )


def train_loop(tuner: Any, run: Any, end: int, bar: Any, stop_flag: dict, t0: float) -> bool:
    """The kl_pg training loop of :meth:`rltuner.tuner.RLTuner.train`: whole batches of
    ``pg_batch`` compositions until ``tuner.step >= end``; a log row and a checkpoint after
    each batch that crosses an ``eval_every`` boundary (checkpoints fall on batch
    boundaries, so a resumed run repeats the same batches). Returns True if interrupted."""
    import time

    torch = require_torch()
    cfg = tuner.config
    learner: PolicyGradientLearner = tuner.learner
    env = tuner._env
    torch.set_num_threads(cfg.threads if cfg.threads > 0 else 1)
    steps_at_start = tuner.step
    # the window in progress is the tuner's (checkpointed: a row never misses a batch)
    window: list[dict[str, float]] = tuner._window if isinstance(tuner._window, list) else []
    tuner._window = window
    while tuner.step < end:
        if stop_flag["stop"]:
            return True
        batch = learner.collect(env, tuner.rng)
        try:
            stats = learner.update(batch, tuner.rng)
        except FloatingPointError:
            tuner._diverged(run, "the policy-gradient loss")
        window.append(stats)
        b = batch.actions.size
        tuner.step += b
        if bar is not None:
            bar.update(b)
            bar.set_postfix(
                {"mt": f"{stats['music_theory']:.2f}", "logp": f"{stats['log_p']:.2f}",
                 "kl": f"{stats['kl_per_step']:.3f}", "beta": f"{stats['kl_coef']:.2f}"},
                refresh=False,
            )  # fmt: skip
        crossed = tuner.step // cfg.eval_every > (tuner.step - b) // cfg.eval_every
        if crossed or tuner.step >= cfg.steps:
            row = _log_row(tuner, window, time.perf_counter() - t0, tuner.step - steps_at_start)
            tuner._window = window = []
            tuner._end_window(run, row)
    return False


def _log_row(tuner: Any, window: list[dict[str, float]], elapsed: float, steps_done: int):
    cfg = tuner.config
    mean = lambda k: float(np.mean([s[k] for s in window]))  # noqa: E731
    ro = tuner.rollout(cfg.eval_compositions, (cfg.seed, tuner.step))
    row = {
        "step": tuner.step,
        "train/reward": mean("reward"),
        "train/music_theory_reward": mean("music_theory"),
        "train/note_rnn_log_p": mean("log_p"),
        "train/kl_per_step": mean("kl_per_step"),
        "losses/policy_loss": mean("policy_loss"),
        "losses/value_loss": mean("value_loss"),
        "losses/approx_kl": mean("approx_kl"),
        "losses/clip_fraction": mean("clip_fraction"),
        "losses/mean_value": mean("value_mean"),
        "charts/kl_coef": float(tuner.learner.kl_coef),
        "charts/updates": float(tuner.learner.updates),
        "eval/music_theory_reward": float(ro.music_theory.mean() * cfg.reward_scaler),
        "eval/note_rnn_log_p": float(ro.log_p.mean()),
        "eval/log_p_plus_music_theory": float(
            (ro.music_theory * cfg.reward_scaler + ro.log_p).mean()
        ),
        "charts/steps_per_second": steps_done / max(elapsed, 1e-9),
    }
    learner = tuner.learner
    for c, lam in zip(learner.hyper.constraints, learner.multipliers, strict=True):
        row[f"constraints/lambda/{c.label}"] = float(lam)  # the price now
        row[f"constraints/slack/{c.label}"] = mean(f"slack/{c.label}")  # mean G over the window
    tuner.history.append(row)
    return row
