"""Sampling melodies from a Note RNN, writing them as MIDI and plotting them.

Priming (``docs/rules.md#compositions-and-priming``). Without a primer (``random_note``): zero LSTM
state and a first observation drawn uniformly from all 38 classes (the original's ``randint(0, 36)``
never drew class 37, B5 -- a quirk fixed here). With a primer melody
(``single_midi``/``random_midi``): the primer is run through the network, the state at its end is
kept and the first observation is the network's most likely next note there. Every following step
samples from ``softmax(logits / temperature)`` (or takes the argmax with ``most_probable``) and
feeds the note back. The returned melody is the ``length`` generated notes, not the priming
observation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.errors import RltunerError, missing_torch

try:
    import torch
except ImportError:  # torch is the optional [torch] extra
    raise missing_torch("rltuner generate") from None

from rltuner.encoding import DEFAULT_QPM, class_label
from rltuner.note_rnn import NoteRNN, bundled_note_rnn_path, load_note_rnn
from rltuner.report import plot_note_probabilities, plot_piano_rolls

__all__ = [
    "sample_melodies",
    "GenerateResult",
    "generate",
    "plot_piano_rolls",
    "plot_note_probabilities",
    "class_label",
]


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

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RltunerError(f"n must be a whole number >= 1, got {n!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise RltunerError(f"length must be a whole number >= 1, got {length!r}")
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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RltunerError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
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
