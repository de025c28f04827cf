"""Sampling melodies from a Note RNN, writing them as MIDI and plotting them.

Priming follows SPEC §3. Without a primer (``random_note``): zero LSTM state and a first
observation drawn uniformly from all 38 classes (the original's ``randint(0, 36)`` never drew
class 37, B5 -- a quirk fixed here). With a primer melody (``single_midi``/``random_midi``): the
primer is run through the network, the state at its end is kept and the first observation is the
network's most likely next note there. Every following step samples from
``softmax(logits / temperature)`` (or takes the argmax with ``most_probable``) and feeds the
note back. The returned melody is the ``length`` generated notes, not the priming observation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rltuner.encoding import (
    DEFAULT_QPM,
    FIRST_NOTE_CLASS,
    NUM_CLASSES,
    PITCH_NAMES,
    STEPS_PER_BAR,
    STEPS_PER_QUARTER,
    melody_to_notes,
)
from rltuner.errors import RltunerError
from rltuner.note_rnn import NoteRNN, bundled_note_rnn_path, load_note_rnn

__all__ = [
    "sample_melodies",
    "GenerateResult",
    "generate",
    "plot_piano_rolls",
    "plot_note_probabilities",
    "class_label",
]


def class_label(cls: int) -> str:
    """``0 -> 'off'``, ``1 -> 'hold'``, ``14 -> 'C4'`` (pitch names with MIDI octave - 1)."""
    if cls == 0:
        return "off"
    if cls == 1:
        return "hold"
    pitch = int(cls) + 46
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


@torch.no_grad()
def sample_melodies(
    model: NoteRNN,
    n: int,
    length: int,
    *,
    generator: torch.Generator,
    primer: np.ndarray | None = None,
    temperature: float = 1.0,
    most_probable: bool = False,
    return_probs: bool = False,
    device: torch.device | str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` melodies of ``length`` steps in one batch.

    Args:
        model: the Note RNN (any depth/width); it is not modified.
        n, length: number of melodies and steps per melody.
        generator: the only source of randomness (its device is where draws happen).
        primer: ``None`` for random-note priming, else classes of shape ``(T,)`` (shared by all
            melodies) or ``(n, T)``.
        temperature: logits are divided by it before the softmax (> 0).
        most_probable: take the argmax at every step instead of sampling.
        return_probs: also return the softmax each note was drawn from.
        device: where the network runs; ``None`` = the model's device.
    Returns:
        ``melodies (n, length)`` int64, and with ``return_probs`` also
        ``probs (n, length, 38)`` float32 (row ``t`` is the distribution of note ``t``).
    """
    if n < 1 or length < 0:
        raise ValueError(f"need n >= 1 and length >= 0, got n={n}, length={length}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    device = model.device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    k = model.num_classes
    gen_device = generator.device
    if primer is None:
        state = model.initial_state(n, device)
        obs = torch.randint(0, k, (n,), generator=generator, device=gen_device).to(device)
    else:
        p = np.asarray(primer, dtype=np.int64)
        if p.ndim == 1:
            p = np.broadcast_to(p, (n, p.size))
        if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 1:
            raise ValueError(f"primer must have shape (T,) or (n, T) with T >= 1, got {p.shape}")
        if p.min() < 0 or p.max() >= k:
            raise ValueError(f"primer classes must lie in 0..{k - 1}")
        logits, state = model(torch.as_tensor(np.ascontiguousarray(p), device=device))
        obs = logits[:, -1].argmax(-1)
    notes = torch.empty(n, length, dtype=torch.int64, device=device)
    probs_out = torch.empty(n, length, k, device=device) if return_probs else None
    for t in range(length):
        logits, state = model.step(obs, state)
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        if most_probable:
            obs = probs.argmax(-1)
        else:
            obs = torch.multinomial(probs.to(gen_device), 1, generator=generator).squeeze(1)
            obs = obs.to(device)
        notes[:, t] = obs
        if probs_out is not None:
            probs_out[:, t] = probs
    model.train(was_training)
    melodies = notes.cpu().numpy()
    if return_probs:
        return melodies, probs_out.cpu().numpy()
    return melodies


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_piano_rolls(
    melodies: np.ndarray | list[np.ndarray],
    path: str | os.PathLike,
    titles: list[str] | None = None,
    ncols: int | None = None,
) -> Path:
    """One PNG with a grid of small piano rolls (MIDI pitch vs sixteenth step), bar lines every
    16 steps and beat lines every 4. Rests are blank; held notes extend their bar.
    ``melodies``: ``(n, T)`` array or a list of ``(T_i,)`` arrays."""
    plt = _pyplot()
    mels = [np.asarray(m, dtype=np.int64).reshape(-1) for m in melodies]
    if not mels:
        raise ValueError("no melodies to plot")
    n = len(mels)
    ncols = ncols or min(n, 4)
    nrows = -(-n // ncols)
    notes = [melody_to_notes(m) for m in mels]
    all_p = np.concatenate([nt.pitch for nt in notes]) if any(nt.pitch.size for nt in notes) else []
    lo = int(np.min(all_p)) - 2 if len(all_p) else 58
    hi = int(np.max(all_p)) + 2 if len(all_p) else 74
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.0 * nrows), squeeze=False,
                             sharey=True)  # fmt: skip
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        m, nt = mels[i], notes[i]
        ax.barh(nt.pitch, nt.duration, left=nt.onset, height=0.8, color="tab:blue",
                edgecolor="navy", linewidth=0.4)  # fmt: skip
        for x in range(0, len(m) + 1, STEPS_PER_QUARTER):
            bar = x % STEPS_PER_BAR == 0
            ax.axvline(x, color="0.3" if bar else "0.85", linewidth=0.8 if bar else 0.4, zorder=0)
        ax.set_xlim(0, max(len(m), 1))
        ax.set_xticks(range(0, len(m) + 1, STEPS_PER_BAR if len(m) > 2 * STEPS_PER_BAR else 4))
        ax.set_ylim(lo, hi)
        ax.set_title(titles[i] if titles and i < len(titles) else f"melody {i}", fontsize=8)
        ax.tick_params(labelsize=6)
        if i % ncols == 0:
            ax.set_ylabel("MIDI pitch", fontsize=7)
        if i // ncols == nrows - 1:
            ax.set_xlabel("16th step", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_note_probabilities(
    probs: np.ndarray, melody: np.ndarray, path: str | os.PathLike, title: str | None = None
) -> Path:
    """Heatmap of the model's next-note distribution: 38 classes (rows) × steps (columns),
    ``probs (T, 38)``, with the chosen notes ``melody (T,)`` marked (the original's
    ``visualize_probs``)."""
    plt = _pyplot()
    probs = np.asarray(probs, dtype=np.float64)
    melody = np.asarray(melody, dtype=np.int64).reshape(-1)
    if probs.ndim != 2 or probs.shape[1] != NUM_CLASSES or probs.shape[0] != melody.size:
        raise ValueError(f"need probs (T, {NUM_CLASSES}) and melody (T,), got {probs.shape}, "
                         f"{melody.shape}")  # fmt: skip
    t = melody.size
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * t + 1.5), 6.0))
    im = ax.imshow(probs.T, origin="lower", aspect="auto", cmap="viridis", vmin=0.0,
                   vmax=max(float(probs.max()), 1e-9), interpolation="nearest")  # fmt: skip
    ax.scatter(np.arange(t), melody, marker="o", facecolors="none", edgecolors="red", s=30,
               linewidths=1.0, label="chosen note")  # fmt: skip
    ticks = [0, 1] + [c for c in range(FIRST_NOTE_CLASS, NUM_CLASSES) if (c + 46) % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([class_label(c) for c in ticks], fontsize=7)
    ax.set_xlabel("16th step")
    ax.set_ylabel("class")
    ax.set_title(title or "Note probabilities")
    fig.colorbar(im, ax=ax, label="probability")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# generate(): the CLI-level entry point
# --------------------------------------------------------------------------------------------


@dataclass
class GenerateResult:
    """Files written by :func:`generate` and the melodies ``(n, length)`` they hold."""

    midi_paths: list[Path]
    piano_roll_path: Path
    probabilities_path: Path | None
    melodies: np.ndarray
    model_path: Path


def _read_primer(primer_path: str | os.PathLike) -> np.ndarray:
    from rltuner import midi_io  # imported lazily: MIDI support is optional for sampling

    melodies: list[Any] = midi_io.read_midi(primer_path)
    if not melodies:
        raise RltunerError(f"{primer_path}: no melody found to prime with")
    first = melodies[0]
    return np.asarray(getattr(first, "melody", first), dtype=np.int64)


def generate(
    model_path: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    n: int = 10,
    length: int = 32,
    seed: int = 0,
    primer_path: str | os.PathLike | None = None,
    temperature: float = 1.0,
    most_probable: bool = False,
    qpm: float = DEFAULT_QPM,
    program: int = 0,
    plot_probabilities: bool = True,
    device: str = "cpu",
) -> GenerateResult:
    """Sample ``n`` melodies of ``length`` steps from a Note RNN checkpoint (``None``: the
    bundled model) and write ``out_dir/melody_000.mid ...``, ``out_dir/piano_roll.png`` and,
    with ``plot_probabilities``, ``out_dir/probabilities.png`` (the first melody's note
    distribution). ``primer_path``: a MIDI file whose first extracted melody primes every
    sample (else random-note priming). Same seed, same files."""
    from rltuner.midi_io import write_midi

    path = Path(model_path) if model_path is not None else bundled_note_rnn_path()
    if model_path is None and not path.exists():
        raise RltunerError(f"{path}: the bundled Note RNN is missing; pass a checkpoint path")
    model, _ = load_note_rnn(path, device=device)
    primer = _read_primer(primer_path) if primer_path is not None else None
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    melodies, probs = sample_melodies(
        model, n, length, generator=gen, primer=primer, temperature=temperature,
        most_probable=most_probable, return_probs=True,
    )  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(n - 1)))
    midi_paths = []
    for i, m in enumerate(melodies):
        p = out / f"melody_{i:0{width}d}.mid"
        write_midi(m, p, qpm=qpm, program=program)
        midi_paths.append(p)
    roll = plot_piano_rolls(melodies, out / "piano_roll.png")
    prob_path = None
    if plot_probabilities:
        prob_path = plot_note_probabilities(probs[0], melodies[0], out / "probabilities.png",
                                            title="Note probabilities, melody 0")  # fmt: skip
    return GenerateResult(midi_paths, roll, prob_path, melodies, path)
