"""The Note RNN: an LSTM melody model over the 38 classes, its checkpoints and its training.

The model reads one-hot classes (see :mod:`rltuner.encoding`) and predicts the next class.
Two APIs share the same weights:

* :meth:`NoteRNN.forward` -- whole sequences ``(B, T)`` through fused ``nn.LSTM`` layers
  (supervised training, priming with a melody);
* :meth:`NoteRNN.step` -- one step ``(B,)`` with explicit ``addmm`` kernels (the RL tuner and
  sampling, where a Python-level step loop is unavoidable and ``nn.LSTM``'s per-call overhead
  dominates).

Training follows the paper (README, "Training a Note RNN"): batch 128, Adam, global gradient-norm
clip 5, L2 2.5e-5 on weight matrices, staircase learning-rate decay ×0.85 every 1000 steps, the
first 8 predictions of every sequence not counted, sequences of at most 192 steps.

Counted steps. For a melody ``m`` of length ``N`` the network makes predictions
``p_t = P(m[t+1] | m[0..t])`` for ``t = 0..N-2``; prediction ``t`` is *counted* when
``t >= skip_steps`` (default 8). Losses, accuracy, log-perplexity and the unigram/bigram
baselines all use exactly these steps. **Log-perplexity** is the mean negative log-likelihood per
counted step, in nats (natural log).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.errors import RltunerError, missing_torch

try:
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn
except ImportError:  # torch is the optional [torch] extra
    raise missing_torch("training or loading a Note RNN as a torch module") from None

from rltuner.checkpoint import load_tensors, save_tensors
from rltuner.encoding import ENCODING_META, NO_EVENT, NUM_CLASSES
from rltuner.network import NOTE_RNN_FORMAT_VERSION, NOTE_RNN_KIND
from rltuner.options import check_device, check_int, check_range, option

__all__ = [
    "NoteRNNConfig",
    "NoteRNN",
    "LSTMState",
    "save_note_rnn",
    "load_note_rnn",
    "bundled_note_rnn_path",
    "TrainConfig",
    "TrainResult",
    "train_note_rnn",
    "evaluate_note_rnn",
    "unigram_bigram_log_perplexity",
    "ENCODING_META",
    "CHECKPOINT_KIND",
    "FORMAT_VERSION",
]

CHECKPOINT_KIND = NOTE_RNN_KIND
FORMAT_VERSION = NOTE_RNN_FORMAT_VERSION

# State: one (h, c) pair per layer, each of shape (B, H_l), float32.
LSTMState = tuple[tuple[Tensor, Tensor], ...]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class NoteRNNConfig:
    """Architecture of a :class:`NoteRNN`."""

    layer_sizes: tuple[int, ...] = (100,)  # LSTM units per layer, bottom first (paper: (100,))
    num_classes: int = NUM_CLASSES  # one-hot input size = number of output logits

    def __post_init__(self) -> None:
        self.layer_sizes = tuple(int(h) for h in self.layer_sizes)
        if not self.layer_sizes or any(h < 1 for h in self.layer_sizes):
            raise ValueError(f"layer_sizes must be positive sizes, got {self.layer_sizes}")
        if int(self.num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        self.num_classes = int(self.num_classes)

    def to_dict(self) -> dict[str, Any]:
        return {"layer_sizes": list(self.layer_sizes), "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoteRNNConfig:
        return cls(
            layer_sizes=tuple(d["layer_sizes"]),
            num_classes=int(d.get("num_classes", NUM_CLASSES)),
        )


class NoteRNN(nn.Module):
    """One-hot(num_classes) -> stack of LSTM layers (any widths) -> linear -> logits.

    Weights live in ``self.lstms`` (a ``ModuleList`` of single-layer ``nn.LSTM(batch_first=True)``,
    PyTorch gate order i, f, g, o) and ``self.output`` (``nn.Linear(H_last, num_classes)``).
    """

    def __init__(self, config: NoteRNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or NoteRNNConfig()
        sizes = (self.config.num_classes, *self.config.layer_sizes)
        self.lstms = nn.ModuleList(
            nn.LSTM(sizes[i], sizes[i + 1], num_layers=1, batch_first=True)
            for i in range(len(sizes) - 1)
        )
        self.output = nn.Linear(sizes[-1], self.config.num_classes)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> LSTMState:
        """Zero state: a tuple with one ``(h, c)`` pair per layer, each ``(batch, H_l)`` float32."""
        device = self.device if device is None else torch.device(device)
        return tuple(
            (torch.zeros(batch, h, device=device), torch.zeros(batch, h, device=device))
            for h in self.config.layer_sizes
        )

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """Run whole sequences.

        Args:
            x: LongTensor ``(B, T)`` of classes.
            state: initial state (see :meth:`initial_state`); ``None`` means zeros.
        Returns:
            ``(logits (B, T, num_classes), final state)``; logits at ``t`` predict ``x[:, t+1]``.
        """
        h = F.one_hot(x, self.num_classes).to(self.output.weight.dtype)
        new_state = []
        for i, lstm in enumerate(self.lstms):
            if state is None:
                h, (hn, cn) = lstm(h)
            else:
                h0, c0 = state[i]
                h, (hn, cn) = lstm(h, (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()))
            new_state.append((hn.squeeze(0), cn.squeeze(0)))
        return self.output(h), tuple(new_state)

    def step(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """Advance one step.

        Args:
            x: LongTensor ``(B,)`` of classes (the observation).
            state: tuple of ``(h, c)`` per layer, each ``(B, H_l)``.
        Returns:
            ``(logits (B, num_classes), new state)``. Equal to :meth:`forward` on a length-1
            sequence up to float rounding; differentiable.
        """
        weights = self.layer_weights()
        new_state = []
        inp: Tensor | None = None
        for i, ((w_ih, w_hh, b), (h, c)) in enumerate(zip(weights, state, strict=True)):
            if i == 0:
                # one-hot input: gather rows of (W_ih^T + b) instead of a matmul
                pre = (w_ih.t() + b).index_select(0, x)
                gates = torch.addmm(pre, h, w_hh.t())
            else:
                gates = torch.addmm(torch.addmm(b, inp, w_ih.t()), h, w_hh.t())
            i_g, f_g, g_g, o_g = gates.chunk(4, dim=1)
            c_new = torch.sigmoid(f_g) * c + torch.sigmoid(i_g) * torch.tanh(g_g)
            h_new = torch.sigmoid(o_g) * torch.tanh(c_new)
            new_state.append((h_new, c_new))
            inp = h_new
        w_out, b_out = self.output_weights()
        return torch.addmm(b_out, inp, w_out.t()), tuple(new_state)

    def layer_weights(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per layer ``(W_ih (4H, in), W_hh (4H, H), b (4H,))`` with ``b = b_ih + b_hh``.

        Gate order along the ``4H`` axis is PyTorch's: input ``i``, forget ``f``, cell ``g``,
        output ``o``. One step computes ``z = W_ih x + W_hh h + b``, ``i,f,g,o = split(z)``,
        ``c' = σ(f)·c + σ(i)·tanh(g)``, ``h' = σ(o)·tanh(c')``. Layer 0's input ``x`` is
        one-hot(num_classes), so ``W_ih x`` is column ``x`` of ``W_ih``. The tensors are views of
        the parameters (``b`` is a fresh sum) and carry gradients.
        """
        return [
            (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)
            for lstm in self.lstms
        ]

    def output_weights(self) -> tuple[Tensor, Tensor]:
        """``(W (num_classes, H_last), b (num_classes,))``: ``logits = W h_last + b``."""
        return self.output.weight, self.output.bias


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def save_note_rnn(
    path: str | os.PathLike,
    model: NoteRNN,
    *,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Write one ``.safetensors`` file (atomically): the model's ``state_dict`` tensors plus JSON
    metadata ``{"kind": "note_rnn", "format_version": 1, "config", "encoding", "training",
    "metrics"}``."""
    meta = {
        "kind": CHECKPOINT_KIND,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "encoding": dict(ENCODING_META),
        "training": training or {},
        "metrics": metrics or {},
    }
    save_tensors(path, dict(model.state_dict()), meta)


def _model_from_tensors(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> NoteRNN:
    if meta.get("kind") != CHECKPOINT_KIND:
        raise RltunerError(
            f"{path}: not a Note RNN checkpoint (kind is {meta.get('kind')!r}, expected 'note_rnn')"
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise RltunerError(f"{path}: unsupported Note RNN format_version {version!r} (expected 1)")
    try:
        config = NoteRNNConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise RltunerError(f"{path}: Note RNN checkpoint has an invalid config ({e})") from None
    enc = meta.get("encoding", ENCODING_META)
    if enc != ENCODING_META:
        raise RltunerError(f"{path}: Note RNN uses another melody encoding {enc} than rltuner")
    model = NoteRNN(config)
    # a tuned checkpoint may embed the Note RNN it was tuned from: not part of this network
    tensors = {k: v for k, v in tensors.items() if not k.startswith("prior/")}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
        raise RltunerError(
            f"{path}: architecture mismatch: tensors do not match config layer_sizes="
            f"{list(config.layer_sizes)} (differing name/shape: {diff})"
        )
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model


def load_note_rnn(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[NoteRNN, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_note_rnn`; never unpickles.

    Returns ``(model in eval mode on device, metadata dict)``. Raises :class:`RltunerError`
    naming the file for a missing file, a non-safetensors file, a file that is not a Note RNN
    checkpoint, or tensors that do not fit the stored config ("architecture mismatch")."""
    path = Path(path)
    tensors, meta = load_tensors(path, what="Note RNN checkpoint")
    model = _model_from_tensors(path, tensors, meta)
    return model.to(device).eval(), meta


def bundled_note_rnn_path() -> Path:
    """Path of the packaged pretrained model ``rltuner/data/note_rnn.safetensors`` (it may not
    exist in a development checkout before the model is trained)."""
    return Path(str(resources.files("rltuner") / "data" / "note_rnn.safetensors"))


# --------------------------------------------------------------------------------------------
# Batching and evaluation
# --------------------------------------------------------------------------------------------


def _as_melodies(
    melodies: Sequence[np.ndarray], num_classes: int = NUM_CLASSES
) -> list[np.ndarray]:
    out = []
    for m in melodies:
        a = np.asarray(m, dtype=np.int64).reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"melody classes must lie in 0..{num_classes - 1}")
        out.append(a)
    return out


def _pad_batch(seqs: Sequence[np.ndarray], skip_steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Windows of notes -> ``(inputs (B, T), targets (B, T), mask (B, T) bool)``, ``T`` =
    longest window minus one. ``mask[b, t]``: a real, counted prediction (``t >= skip_steps``)."""
    t_max = max(len(s) for s in seqs) - 1
    b = len(seqs)
    inputs = np.full((b, t_max), NO_EVENT, dtype=np.int64)
    targets = np.full((b, t_max), NO_EVENT, dtype=np.int64)
    mask = np.zeros((b, t_max), dtype=bool)
    for i, s in enumerate(seqs):
        n = len(s) - 1
        inputs[i, :n] = s[:-1]
        targets[i, :n] = s[1:]
        mask[i, skip_steps:n] = True
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(mask)


@torch.no_grad()
def evaluate_note_rnn(
    model: NoteRNN, melodies: Sequence[np.ndarray], batch_size: int = 128, skip_steps: int = 8
) -> dict[str, float]:
    """Next-step accuracy and log-perplexity over the counted steps of whole melodies.

    Each melody is run from a zero state over its full length (no cropping). Returns
    ``{"accuracy", "log_perplexity" (mean NLL per counted step, nats), "num_steps"}``; NaN
    metrics when no step is counted."""
    mels = [m for m in _as_melodies(melodies, model.num_classes) if len(m) > skip_steps + 1]
    was_training = model.training
    model.eval()
    order = sorted(range(len(mels)), key=lambda i: len(mels[i]))  # little padding per batch
    nll, correct, count = 0.0, 0, 0
    device = model.device
    for start in range(0, len(order), batch_size):
        batch = [mels[i] for i in order[start : start + batch_size]]
        x, y, mask = (t.to(device) for t in _pad_batch(batch, skip_steps))
        logits, _ = model(x)
        lp = F.log_softmax(logits.float(), dim=-1)
        nll -= lp.gather(-1, y.unsqueeze(-1)).squeeze(-1)[mask].double().sum().item()
        correct += (logits.argmax(-1) == y)[mask].sum().item()
        count += int(mask.sum().item())
    model.train(was_training)
    if count == 0:
        return {"accuracy": math.nan, "log_perplexity": math.nan, "num_steps": 0}
    return {"accuracy": correct / count, "log_perplexity": nll / count, "num_steps": count}


def unigram_bigram_log_perplexity(
    train: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    skip_steps: int = 8,
    num_classes: int = NUM_CLASSES,
) -> dict[str, float]:
    """Add-one (Laplace) smoothed unigram and bigram baselines, comparable with the RNN.

    Counts come from all transitions of ``train`` (unigram: every target ``m[t+1]``, bigram:
    every pair ``(m[t], m[t+1])``); evaluation is over the counted steps of ``valid`` (targets
    ``m[t+1]`` with ``t >= skip_steps``). ``P_uni(k) = (n_k + 1) / (N + K)``,
    ``P_bi(k | j) = (n_jk + 1) / (n_j + K)`` with ``K = num_classes``.

    Returns ``{"unigram_log_perplexity", "bigram_log_perplexity", "unigram_accuracy",
    "bigram_accuracy", "num_steps"}`` (nats per counted step; accuracy of the argmax guess)."""
    k = num_classes
    pairs = np.zeros((k, k), dtype=np.float64)
    for m in _as_melodies(train, k):
        if len(m) > 1:
            np.add.at(pairs, (m[:-1], m[1:]), 1.0)
    uni = pairs.sum(axis=0)
    p_uni = (uni + 1.0) / (uni.sum() + k)
    p_bi = (pairs + 1.0) / (pairs.sum(axis=1, keepdims=True) + k)
    prev_all, tgt_all = [], []
    for m in _as_melodies(valid, k):
        if len(m) > skip_steps + 1:
            prev_all.append(m[skip_steps:-1])
            tgt_all.append(m[skip_steps + 1 :])
    if not tgt_all:
        nan = math.nan
        return {"unigram_log_perplexity": nan, "bigram_log_perplexity": nan,
                "unigram_accuracy": nan, "bigram_accuracy": nan, "num_steps": 0}  # fmt: skip
    prev, tgt = np.concatenate(prev_all), np.concatenate(tgt_all)
    return {
        "unigram_log_perplexity": float(-np.log(p_uni[tgt]).mean()),
        "bigram_log_perplexity": float(-np.log(p_bi[prev, tgt]).mean()),
        "unigram_accuracy": float((tgt == np.argmax(p_uni)).mean()),
        "bigram_accuracy": float((tgt == np.argmax(p_bi, axis=1)[prev]).mean()),
        "num_steps": int(tgt.size),
    }


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Supervised training of the Note RNN (the paper's recipe except the learning rate); each
    field's ``help`` is its ``rltuner note-rnn train --help`` text."""

    learning_rate: float = option(
        1e-2, help="Adam initial learning rate (measured best of 1e-3..2e-2; paper: 0.5)"
    )
    lr_decay_rate: float = option(0.85, help="multiply the learning rate by this ...")
    lr_decay_steps: int = option(
        1000, help="... every this many steps (staircase: lr0 * rate**(step // n))"
    )
    batch_size: int = option(128, help="sequences per step")
    max_sequence_length: int = option(
        192, help="input steps per sequence; longer melodies are randomly cropped"
    )
    skip_steps: int = option(
        8, help="first predictions of every sequence not counted in loss and metrics"
    )
    grad_clip_norm: float = option(5.0, help="clip the global gradient norm to this")
    l2_weight: float = option(
        2.5e-5, help="loss += l2_weight * sum(w**2) / 2 over the weight matrices (not biases)"
    )
    num_epochs: int = option(
        100, help="passes over the melodies, one random crop each (bundled corpus: 90 steps each)"
    )
    max_steps: int | None = option(
        None, help="stop after this many optimizer steps in total; unset: no cap"
    )
    checkpoint_every: int = option(
        500, help="also save last + train_state every this many steps (0: only each epoch)"
    )
    validation_fraction: float = option(
        0.1, help="share of the melodies held out for validation (split by melody, by --seed)"
    )
    seed: int = option(0, help="model initialisation, validation split and data order")
    num_threads: int | None = option(None, help="torch CPU threads; unset: torch's default")
    device: str = option("cpu", help="torch device for training (cpu, cuda, cuda:1, mps)")

    def __post_init__(self) -> None:
        check_range("learning_rate", self.learning_rate, 0.0, math.inf, low_open=True)
        check_range("lr_decay_rate", self.lr_decay_rate, 0.0, 1.0, low_open=True)
        check_int("lr_decay_steps", self.lr_decay_steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("skip_steps", self.skip_steps, 0)
        check_int("max_sequence_length", self.max_sequence_length, self.skip_steps + 1)
        check_range("grad_clip_norm", self.grad_clip_norm, 0.0, math.inf, low_open=True)
        check_range("l2_weight", self.l2_weight, 0.0, math.inf)
        check_int("num_epochs", self.num_epochs, 1)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1)
        check_int("checkpoint_every", self.checkpoint_every, 0)
        check_range("validation_fraction", self.validation_fraction, 0.0, 1.0,
                    low_open=True, high_open=True)  # fmt: skip
        check_int("seed", self.seed, 0)
        if self.num_threads is not None:
            check_int("num_threads", self.num_threads, 1)
        check_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Fields that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"num_epochs", "max_steps", "checkpoint_every", "num_threads", "device"}


@dataclass
class TrainResult:
    """Outcome of :func:`train_note_rnn`. ``history`` holds the ``log.jsonl`` records of this
    and earlier (resumed) runs, one dict per validation."""

    best_path: Path | None
    last_path: Path
    log_path: Path
    steps: int
    epochs_completed: int
    best_valid_log_perplexity: float
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _epoch_windows(
    mels: list[np.ndarray], epoch: int, config: TrainConfig
) -> list[list[np.ndarray]]:
    """Batches of note windows for one epoch. Deterministic in ``(seed, epoch)``, so a run
    resumed mid-epoch sees exactly the batches of an uninterrupted one."""
    rng = np.random.default_rng([config.seed, epoch, 0x5EED])
    order = rng.permutation(len(mels))
    win = config.max_sequence_length + 1  # notes per window -> max_sequence_length predictions
    offsets = rng.random(len(mels))
    windows = []
    for i in order:
        m = mels[i]
        if len(m) > win:
            start = int(offsets[i] * (len(m) - win + 1))
            m = m[start : start + win]
        windows.append(m)
    bs = config.batch_size
    return [windows[s : s + bs] for s in range(0, len(windows), bs)]


def _l2_penalty(model: NoteRNN) -> Tensor:
    return sum((p.pow(2).sum() for n, p in model.named_parameters() if "weight" in n),
               torch.zeros((), device=model.device)) / 2  # fmt: skip


def _train_step(
    model: NoteRNN, optimizer: torch.optim.Optimizer, batch: list[np.ndarray], config: TrainConfig
) -> float:
    """One optimizer step on a batch of windows; returns the mean counted cross-entropy."""
    x, y, mask = (t.to(model.device) for t in _pad_batch(batch, config.skip_steps))
    logits, _ = model(x)
    ce = F.cross_entropy(logits[mask], y[mask])
    loss = ce + config.l2_weight * _l2_penalty(model) if config.l2_weight else ce
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
    optimizer.step()
    return float(ce.item())


def _lr_at(step: int, config: TrainConfig) -> float:
    return config.learning_rate * config.lr_decay_rate ** (step // config.lr_decay_steps)


def _save_train_state(
    path: Path, model: NoteRNN, optimizer: torch.optim.Optimizer, progress: dict[str, Any],
    config: TrainConfig, model_config: NoteRNNConfig,
) -> None:  # fmt: skip
    tensors: dict[str, Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_parameters()]
    opt_state = optimizer.state_dict()
    for idx, st in opt_state["state"].items():
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"optim.{names[idx]}.{key}"] = t.reshape(-1) if t.dim() == 0 else t
    tensors["rng.torch"] = torch.get_rng_state()
    best = progress.get("best_valid_log_perplexity")
    meta = {
        "kind": "note_rnn_train_state",
        "format_version": FORMAT_VERSION,
        # strict JSON has no infinity: "no best yet" is stored as null
        "progress": {
            **progress,
            "best_valid_log_perplexity": None if best is None or not math.isfinite(best) else best,
        },
        "train_config": config.to_dict(),
        "model_config": model_config.to_dict(),
    }
    save_tensors(path, tensors, meta)


def _load_train_state(
    path: Path, model: NoteRNN, optimizer: torch.optim.Optimizer, config: TrainConfig,
    model_config: NoteRNNConfig,
) -> dict[str, Any]:  # fmt: skip
    tensors, meta = load_tensors(path, what="training state")
    if meta.get("kind") != "note_rnn_train_state":
        raise RltunerError(f"{path}: not a Note RNN training state")
    if meta.get("model_config") != model_config.to_dict():
        raise RltunerError(
            f"{path}: cannot resume: saved model config {meta.get('model_config')} differs from "
            f"{model_config.to_dict()} (use another out_dir or resume=False)"
        )
    saved = {k: v for k, v in meta.get("train_config", {}).items() if k not in _RESUMABLE_CHANGES}
    now = {k: v for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES}
    if saved != now:
        changed = sorted(k for k in now if saved.get(k) != now[k])
        raise RltunerError(
            f"{path}: cannot resume: training settings {changed} differ from the saved run "
            "(use another out_dir or resume=False)"
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    names = [n for n, _ in model.named_parameters()]
    state_dict = optimizer.state_dict()
    new_state = {}
    for idx, name in enumerate(names):
        prefix = f"optim.{name}."
        st = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if st:
            if "step" in st:
                st["step"] = st["step"].reshape(())
            new_state[idx] = st
    state_dict["state"] = new_state
    optimizer.load_state_dict(state_dict)
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    return meta["progress"]


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_note_rnn(
    train: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    config: TrainConfig,
    out_dir: str | os.PathLike,
    model_config: NoteRNNConfig | None = None,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train a Note RNN on melodies (arrays of classes); the melody-level split is the caller's.

    Every epoch each training melody yields one window of at most
    ``config.max_sequence_length + 1`` notes (a random crop of longer melodies), shuffled into
    batches; melodies with no counted step (length ``<= skip_steps + 1``) are dropped. After
    each epoch the validation melodies are evaluated (:func:`evaluate_note_rnn`), a record is
    printed and appended to ``out_dir/log.jsonl``, ``out_dir/best.safetensors`` is kept for the
    lowest validation log-perplexity and ``out_dir/last.safetensors`` plus
    ``out_dir/train_state.safetensors`` (weights, Adam state, step, epoch, position in epoch,
    RNG) are written; the latter two also every ``checkpoint_every`` steps and on Ctrl-C.

    With ``resume=True`` and an existing ``train_state.safetensors`` training continues from its
    step; the batches are a function of ``(seed, epoch)``, so an interrupted and resumed run
    reproduces an uninterrupted one. ``resume=False`` starts afresh (overwriting the files).
    """
    t0 = time.perf_counter()
    model_config = model_config or NoteRNNConfig()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RltunerError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    best_path, last_path = out / "best.safetensors", out / "last.safetensors"
    state_path, log_path = out / "train_state.safetensors", out / "log.jsonl"
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))

    k = model_config.num_classes
    train_m = [m for m in _as_melodies(train, k) if len(m) > config.skip_steps + 1]
    valid_m = _as_melodies(valid, k)
    if not train_m:
        raise RltunerError(
            f"no training melody is longer than {config.skip_steps + 1} steps; nothing to learn"
        )

    torch.manual_seed(config.seed)
    model = NoteRNN(model_config).to(config.device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)

    prog: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0,
                            "best_valid_log_perplexity": math.inf}  # fmt: skip
    if resume and state_path.exists():
        prog = _load_train_state(state_path, model, optimizer, config, model_config)
        if prog.get("best_valid_log_perplexity") is None:
            prog["best_valid_log_perplexity"] = math.inf
        history = _read_log(log_path)
    else:
        history = []
        for p in (best_path, last_path, state_path, log_path):
            p.unlink(missing_ok=True)

    train_meta = {**config.to_dict(), "num_train_melodies": len(train_m),
                  "num_valid_melodies": len(valid_m)}  # fmt: skip

    def checkpoint() -> None:
        last_metrics = history[-1] if history else {}
        save_note_rnn(last_path, model, training={**train_meta, "step": prog["step"]},
                      metrics=last_metrics)  # fmt: skip
        _save_train_state(state_path, model, optimizer, prog, config, model_config)

    def validate(epoch_done: int, train_loss: float, partial: bool) -> None:
        metrics = evaluate_note_rnn(model, valid_m, config.batch_size, config.skip_steps)
        model.train()
        rec = {
            "epoch": epoch_done, "step": prog["step"], "partial": partial,
            "train_loss": train_loss, "valid_accuracy": metrics["accuracy"],
            "valid_log_perplexity": metrics["log_perplexity"],
            "lr": _lr_at(prog["step"], config), "seconds": round(time.perf_counter() - t0, 3),
        }  # fmt: skip
        history.append(rec)
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if progress:
            print(f"epoch {epoch_done} step {prog['step']}: train loss {train_loss:.4f}, "
                  f"valid accuracy {metrics['accuracy']:.4f}, "
                  f"valid log-perplexity {metrics['log_perplexity']:.4f}")  # fmt: skip
        lp = metrics["log_perplexity"]
        # without validation data the latest model counts as the best
        if (math.isnan(lp) and not valid_m) or lp < prog["best_valid_log_perplexity"]:
            prog["best_valid_log_perplexity"] = lp if not math.isnan(lp) else math.inf
            save_note_rnn(best_path, model, training={**train_meta, "step": prog["step"]},
                          metrics=rec)  # fmt: skip

    def done() -> bool:
        return config.max_steps is not None and prog["step"] >= config.max_steps

    try:
        while prog["epoch"] < config.num_epochs and not done():
            epoch = prog["epoch"]
            batches = _epoch_windows(train_m, epoch, config)
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(batches), initial=prog["batch_in_epoch"],
                           desc=f"epoch {epoch + 1}/{config.num_epochs}", leave=False)  # fmt: skip
            losses: list[float] = []
            while prog["batch_in_epoch"] < len(batches) and not done():
                for g in optimizer.param_groups:
                    g["lr"] = _lr_at(prog["step"], config)
                loss = _train_step(model, optimizer, batches[prog["batch_in_epoch"]], config)
                losses.append(loss)
                prog["step"] += 1
                prog["batch_in_epoch"] += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}")
                if (config.checkpoint_every and prog["step"] % config.checkpoint_every == 0
                        and prog["batch_in_epoch"] < len(batches)):  # fmt: skip
                    checkpoint()
            if bar is not None:
                bar.close()
            train_loss = float(np.mean(losses)) if losses else math.nan
            if prog["batch_in_epoch"] >= len(batches):
                prog["epoch"] += 1
                prog["batch_in_epoch"] = 0
                validate(prog["epoch"], train_loss, partial=False)
            else:
                validate(prog["epoch"], train_loss, partial=True)
            checkpoint()
    except KeyboardInterrupt:
        checkpoint()
        raise

    if not last_path.exists():  # nothing to do (already finished); still leave a model behind
        checkpoint()
    best = prog["best_valid_log_perplexity"]
    return TrainResult(
        best_path=best_path if best_path.exists() else None,
        last_path=last_path,
        log_path=log_path,
        steps=prog["step"],
        epochs_completed=prog["epoch"],
        best_valid_log_perplexity=best,
        history=history,
        seconds=time.perf_counter() - t0,
    )
