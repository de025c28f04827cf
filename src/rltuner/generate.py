"""``rltuner generate``: sample melodies from a model, write them as MIDI and plot them.

The model is an untuned Note RNN or a tuned model (``tuned.safetensors`` or its run folder);
sampling is the one sampler of :mod:`rltuner.policy`, so a tuned model acts as it did in
training and evaluation (G: ``softmax(G + prior logits)``) and ``generate`` gives the same
melodies as ``rltuner evaluate`` samples for the same seed.

Priming (``docs/rules.md#compositions-and-priming``). Without a primer (``random_note``): zero LSTM
state and a first observation drawn uniformly from all 38 classes (the original's ``randint(0, 36)``
never drew class 37, B5 -- a quirk fixed here). With a primer melody (``single_midi``): the primer
is run through the base Note RNN, the state at its end is kept and the first observation is the
network's most likely next note there. Every following step samples from ``softmax(scores /
temperature)`` (or takes the argmax with ``most_probable``) and feeds the note back. The returned
melody is the ``length`` generated notes, not the priming observation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.conditioning import resolve_progressions
from rltuner.encoding import DEFAULT_QPM, class_label
from rltuner.env import Priming
from rltuner.errors import RltunerError
from rltuner.policy import Policy, load_policy
from rltuner.report import plot_note_probabilities, plot_piano_rolls

__all__ = [
    "GenerateResult",
    "generate",
    "plot_piano_rolls",
    "plot_note_probabilities",
    "class_label",
]


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
    note_rnn: str | os.PathLike | None = None,
    chords: Sequence[str] = (),
    chord_steps: int = 8,
    chord_style: str = "block",
) -> GenerateResult:
    """Sample ``n`` melodies of ``length`` steps from a model (a Note RNN or tuned checkpoint
    or a run folder; ``None``: the bundled Note RNN; ``note_rnn``: the prior of a tuned model,
    see :func:`rltuner.policy.load_policy`) and write ``out_dir/melody_000.mid ...``,
    ``out_dir/piano_roll.png`` and, with ``plot_probabilities``, ``out_dir/probabilities.png``
    (the first melody's note distribution). ``primer_path``: a MIDI file whose first
    extracted melody primes every sample (else random-note priming). Same seed, same files.

    ``chords``: progressions to play over (``"C G Am F"``; several: melody ``i`` over
    progression ``i mod P``); default: a chord-tuned model's own. Over chords every MIDI file
    has a second track with the chords (``chord_style`` ``block`` or ``arpeggio``)."""
    from rltuner.midi_io import write_midi

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RltunerError(f"n must be a whole number >= 1, got {n!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise RltunerError(f"length must be a whole number >= 1, got {length!r}")
    loaded = load_policy(model_path if model_path is not None else "bundled", note_rnn=note_rnn)
    policy = loaded.policy
    if device != "cpu":
        prior = None if policy.prior is None else policy.prior.to(device)
        policy = Policy(policy.network.to(device), policy.algorithm, prior, policy.progressions)
    priming = None
    if primer_path is not None:
        priming = Priming("single_midi", policy.base, [_read_primer(primer_path)])
    progs = resolve_progressions(chords, None, chord_steps, length) or list(policy.progressions)
    samples = policy.sample(n, length, seed, priming=priming, temperature=temperature,
                            most_probable=most_probable, probs_for=1,
                            progressions=progs or None)  # fmt: skip
    melodies, probs = samples.compositions.astype(np.int64), samples.probs
    path = loaded.path
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RltunerError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    width = max(3, len(str(n - 1)))
    midi_paths = []
    spans = [progs[i % len(progs)].spans(length) for i in range(n)] if progs else None
    for i, m in enumerate(melodies):
        p = out / f"melody_{i:0{width}d}.mid"
        write_midi(m, p, qpm=qpm, program=program, chords=spans[i] if spans else None,
                   chord_style=chord_style)  # fmt: skip
        midi_paths.append(p)
    roll = plot_piano_rolls(melodies, out / "piano_roll.png", chords=spans)
    prob_path = None
    if plot_probabilities:
        prob_path = plot_note_probabilities(probs[0], melodies[0], out / "probabilities.png",
                                            title="Note probabilities, melody 0")  # fmt: skip
    return GenerateResult(midi_paths, roll, prob_path, melodies, path)
