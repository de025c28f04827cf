"""The tuner's networks and update in PyTorch, for ``--device cuda`` (or any torch device).

Same flat parameter layout, same mathematics as the fused CPU kernels of
:mod:`rltuner.lstm_kernels` (tested against each other), written with autograd and
``torch.optim.Adam``. The environment and the rules stay in numpy on the CPU; batches cross
to the device once per step. On this project's CPU machines the numba kernels are ~5x faster,
so ``--device cpu`` (the default) never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rltuner.errors import missing_torch

try:
    import torch
except ImportError:  # torch is the optional [torch] extra
    raise missing_torch("a torch device (--device cuda, mps, ...)") from None

from rltuner.lstm_kernels import NetLayout

__all__ = ["torch_forward", "torch_bootstrap", "TorchStepper", "TorchUpdater"]


def torch_forward(
    theta: torch.Tensor,
    layout: NetLayout,
    obs: torch.Tensor,
    state: torch.Tensor,
    cond: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step: ``obs (B,)`` long, ``state (B, S)`` -> ``(q (B, 38), new_state (B, S))``
    (state layout ``[h_l, c_l]`` per layer, as the CPU kernels); ``cond = (chord (B,), rows
    (C, K))`` long: a conditioned network's chord per input (``-1`` = none) and each chord's
    extra input rows (``-1``-padded), whose sum is added to the input."""
    x = None
    new = []
    for l, (inp, h, owx, owh, ob, so) in enumerate(layout.lmeta.tolist()):
        g = 4 * h
        wx = theta[owx:owh].view(inp, g)
        wh = theta[owh:ob].view(h, g)
        z = state[:, so : so + h] @ wh + theta[ob : ob + g]
        if l == 0:
            z = z + wx[obs]
            if cond is not None and layout.cond_inputs:
                chord, rows = cond
                live = (rows >= 0).unsqueeze(2).to(wx.dtype)
                sums = (wx[rows.clamp(min=0)] * live).sum(1)  # (C, 4H): each chord's input
                z = z + sums[chord.clamp(min=0)] * (chord >= 0).unsqueeze(1).to(wx.dtype)
        else:
            z = z + x @ wx
        i, f, gg, o = z.split(h, 1)
        c = torch.sigmoid(f) * state[:, so + h : so + 2 * h] + torch.sigmoid(i) * torch.tanh(gg)
        x = torch.sigmoid(o) * torch.tanh(c)
        new += [x, c]
    owo, obo, hl = layout.ometa.tolist()
    q = x @ theta[owo:obo].view(hl, -1) + theta[obo:]
    return q, torch.cat(new, dim=1)


def torch_bootstrap(
    algorithm: str,
    target_q: torch.Tensor,
    reward_logits: torch.Tensor | None = None,
    online_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`rltuner.learner.bootstrap_value` in torch (same arguments, same formulas)."""
    if algorithm == "psi":
        return torch.logsumexp(target_q, 1)
    if algorithm == "g":
        return torch.logsumexp(target_q + torch.log_softmax(reward_logits, 1), 1)
    if online_q is not None:
        return target_q.gather(1, online_q.argmax(1, keepdim=True))[:, 0]
    return target_q.max(1).values


class TorchStepper:
    """Runs a :class:`rltuner.env.Network`'s step on a torch device (numpy in, numpy out)."""

    def __init__(self, layout: NetLayout, theta: np.ndarray, device: str) -> None:
        self.layout = layout
        self.device = torch.device(device)
        self.theta_np = theta
        self.theta = torch.from_numpy(theta).to(self.device)

    def refresh(self) -> None:
        """Copy the numpy parameters (e.g. after loading a checkpoint) to the device."""
        self.theta.copy_(torch.from_numpy(self.theta_np))

    @torch.no_grad()
    def step(
        self,
        obs: np.ndarray,
        state: np.ndarray,
        cond: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        o = torch.as_tensor(np.asarray(obs, dtype=np.int64), device=self.device)
        s = torch.as_tensor(np.asarray(state, dtype=np.float32), device=self.device)
        c = None
        if cond is not None and self.layout.cond_inputs:
            c = tuple(torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)
                      for a in cond)  # fmt: skip
        q, new = torch_forward(self.theta, self.layout, o, s, c)
        return q.cpu().numpy(), new.cpu().numpy()


class TorchUpdater:
    """The minibatch update of :func:`rltuner.lstm_kernels.update_many` with autograd."""

    def __init__(
        self,
        layout: NetLayout,
        q: TorchStepper,
        target: TorchStepper,
        reward: TorchStepper,
        hyper: Any,
    ) -> None:
        """``hyper``: the :class:`rltuner.learner.LearnerHyper` of the run."""
        self.layout, self.hyper = layout, hyper
        self.q, self.target, self.reward = q, target, reward
        self.q.theta.requires_grad_(True)
        self.opt = torch.optim.Adam(
            [self.q.theta],
            lr=hyper.learning_rate,
            betas=(hyper.adam_beta1, hyper.adam_beta2),
            eps=hyper.adam_eps,
        )
        self.groups = [tuple(g) for g in layout.clip_groups.tolist()]

    def adam_moments(self) -> tuple[np.ndarray, np.ndarray]:
        st = self.opt.state.get(self.q.theta)
        if not st:
            z = np.zeros(self.q.theta.shape[0], dtype=np.float32)
            return z, z.copy()
        return st["exp_avg"].cpu().numpy(), st["exp_avg_sq"].cpu().numpy()

    def set_adam(self, m: np.ndarray, v: np.ndarray, step: int) -> None:
        """Restore Adam's moments and step count (resuming a checkpoint)."""
        if step == 0:
            return
        dev = self.q.device
        self.opt.state[self.q.theta] = {
            "step": torch.tensor(float(step)),
            "exp_avg": torch.as_tensor(m, device=dev).clone(),
            "exp_avg_sq": torch.as_tensor(v, device=dev).clone(),
        }

    def update(self, memory: Any, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One update per row of ``indices`` on :class:`rltuner.learner.ReplayMemory`
        ``memory``; returns the losses and mean targets ``(K,)``."""
        h, dev = self.hyper, self.q.device
        losses, targets = [], []
        for row in indices:
            obs = torch.as_tensor(memory.obs[row].astype(np.int64), device=dev)
            act = torch.as_tensor(memory.action[row].astype(np.int64), device=dev)
            rew = torch.as_tensor(memory.reward[row], device=dev)
            st = torch.as_tensor(memory.q_state(row), device=dev)
            nst = torch.as_tensor(memory.next_q_state[row], device=dev)
            oc = ac = None
            if memory.cond_rows.shape[0]:
                rows = torch.as_tensor(memory.cond_rows, device=dev)
                oc = (torch.as_tensor(memory.cond[row].astype(np.int64), device=dev), rows)
                ac = (torch.as_tensor(memory.next_cond[row].astype(np.int64), device=dev), rows)
            with torch.no_grad():
                qn, _ = torch_forward(self.target.theta, self.layout, act, nst, ac)
                rl = qo = None
                if h.algorithm == "g":
                    nrs = torch.as_tensor(memory.next_r_state[row], device=dev)
                    rl, _ = torch_forward(self.reward.theta, self.reward.layout, act, nrs)
                elif h.double_dqn and h.algorithm != "psi":
                    qo, _ = torch_forward(self.q.theta, self.layout, act, nst, ac)
                y = rew + h.discount * torch_bootstrap(h.algorithm, qn, rl, qo)
            q, _ = torch_forward(self.q.theta, self.layout, obs, st, oc)
            loss = ((q.gather(1, act[:, None])[:, 0] - y) ** 2).mean()
            self.opt.zero_grad(set_to_none=False)
            loss.backward()
            with torch.no_grad():
                g = self.q.theta.grad
                for a, b in self.groups:
                    n = g[a:b].norm()
                    if n > h.clip_norm:
                        g[a:b] *= h.clip_norm / n
            self.opt.step()
            with torch.no_grad():
                self.target.theta += h.target_update_rate * (self.q.theta - self.target.theta)
            losses.append(loss.item())
            targets.append(y.mean().item())
        with torch.no_grad():  # keep the numpy mirrors current (saving, CPU-side code)
            self.q.theta_np[...] = self.q.theta.detach().cpu().numpy()
            self.target.theta_np[...] = self.target.theta.cpu().numpy()
        return np.asarray(losses), np.asarray(targets)
