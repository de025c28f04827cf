"""Chord progressions estimated from a MIDI file's accompaniment.

A simple template matcher, enough to take "the chords of this song" for ``--chords``:

1. The file's non-drum instruments are quantised to sixteenth steps through its tempo map
   (:func:`rltuner.midi_io.tracks_from_pretty_midi`).
2. The accompaniment is every instrument but the melody: the melody is the instrument with the
   highest mean pitch among the monophonic-ish ones (at most :data:`MAX_MELODY_POLYPHONY` of the
   steps where it sounds have two or more of its notes at once). A file of one instrument, or
   one without a monophonic-ish instrument, is all accompaniment.
3. The steps are cut into windows of ``chord_steps``. Each window gets a duration-weighted
   pitch-class histogram: every sounding note adds 1 to its pitch class per step, and the
   lowest sounding note (the bass) adds :data:`BASS_WEIGHT` − 1 more.
4. Each window's chord is the best of 12 roots × (major, minor, 7, m7, dim): score = the
   weight on the chord's tones minus the weight off them. Ties go to a triad, then to a chord
   whose root is the window's strongest bass note, then to the lower root pitch class.
5. A window without notes repeats the chord before it (leading empty windows take the first
   chord found).
"""

from __future__ import annotations

from os import PathLike

import numpy as np

from rltuner.encoding import PITCH_NAMES
from rltuner.errors import RltunerError
from rltuner.harmony import CHORD_QUALITIES, Chord, Progression, check_chord_steps, parse_chord
from rltuner.midi_io import NoteTrack, load_pretty_midi, tracks_from_pretty_midi

__all__ = [
    "ESTIMATED_QUALITIES",
    "BASS_WEIGHT",
    "MAX_MELODY_POLYPHONY",
    "accompaniment",
    "estimate_chords",
    "progression_from_midi",
]

#: The qualities the estimator chooses from, triads first, with the suffix it writes.
ESTIMATED_QUALITIES: tuple[tuple[str, str], ...] = (
    ("major", ""),
    ("minor", "m"),
    ("dim", "dim"),
    ("7", "7"),
    ("m7", "m7"),
)
BASS_WEIGHT = 2  # the lowest sounding note counts this many times per step
MAX_MELODY_POLYPHONY = 0.1  # share of a melody's sounding steps with 2+ notes at once
_MIDI_PITCHES = 128


def _roll(tracks: list[NoteTrack], length: int) -> np.ndarray:
    """``(length, 128)`` int64: how many notes of ``tracks`` sound at each step and pitch."""
    roll = np.zeros((length, _MIDI_PITCHES), dtype=np.int64)
    for tr in tracks:
        for p, on, d in zip(
            tr.pitch.tolist(), tr.onset.tolist(), tr.duration.tolist(), strict=True
        ):
            if 0 <= p < _MIDI_PITCHES and on < length:
                roll[max(on, 0) : on + d, p] += 1
    return roll


def accompaniment(tracks: list[NoteTrack]) -> list[NoteTrack]:
    """The tracks without the melody (step 2 of the module's description)."""
    if len(tracks) <= 1:
        return list(tracks)
    best, best_mean = -1, -np.inf
    for i, tr in enumerate(tracks):
        length = int((tr.onset + tr.duration).max())
        sounding = _roll([tr], length).sum(axis=1)
        busy = np.count_nonzero(sounding)
        if busy and np.count_nonzero(sounding >= 2) / busy <= MAX_MELODY_POLYPHONY:
            mean = float(tr.pitch.mean())
            if mean > best_mean:
                best, best_mean = i, mean
    return [tr for i, tr in enumerate(tracks) if i != best]


def _templates() -> tuple[np.ndarray, list[tuple[int, str, bool]]]:
    """``(T, 12)`` 0/1 chord templates and (root, suffix, is_triad) per template."""
    rows, info = [], []
    for quality, suffix in ESTIMATED_QUALITIES:
        intervals = CHORD_QUALITIES[quality]
        for root in range(12):
            row = np.zeros(12, dtype=np.int64)
            row[[(root + i) % 12 for i in intervals]] = 1
            rows.append(row)
            info.append((root, suffix, len(intervals) == 3))
    return np.array(rows), info


def estimate_chords(tracks: list[NoteTrack], chord_steps: int = 16) -> list[Chord | None]:
    """One chord per window of ``chord_steps`` steps over all notes of ``tracks`` (steps 3-4 of
    the module's description); ``None`` for a window without notes."""
    if not tracks:
        return []
    length = max(int((tr.onset + tr.duration).max()) for tr in tracks)
    windows = -(-length // chord_steps)
    roll = _roll(tracks, windows * chord_steps)
    pcs = np.zeros((roll.shape[0], 12), dtype=np.int64)
    for pc in range(12):
        pcs[:, pc] = roll[:, pc::12].sum(axis=1)
    sounding = roll.any(axis=1)
    lowest = np.argmax(roll > 0, axis=1)  # the bass pitch of each sounding step
    steps = np.flatnonzero(sounding)
    bass = np.zeros_like(pcs)
    bass[steps, lowest[steps] % 12] = 1
    pcs += (BASS_WEIGHT - 1) * bass
    hist = pcs.reshape(windows, chord_steps, 12).sum(axis=1)  # (W, 12)
    bass_hist = bass.reshape(windows, chord_steps, 12).sum(axis=1)
    templates, info = _templates()
    total = hist.sum(axis=1, keepdims=True)
    score = 2 * (hist @ templates.T) - total  # on the tones minus off them: (W, T)
    roots = np.array([r for r, _, _ in info])
    triad = np.array([t for _, _, t in info])
    out: list[Chord | None] = []
    for w in range(windows):
        if total[w, 0] == 0:
            out.append(None)
            continue
        top_bass = int(np.argmax(bass_hist[w]))
        # exact integer keys, compared lexicographically: score, triad, root on the bass, low root
        keys = list(zip(score[w].tolist(), triad.tolist(), (roots == top_bass).tolist(),
                        (-roots).tolist(), strict=True))  # fmt: skip
        t = max(range(len(keys)), key=keys.__getitem__)
        root, suffix, _ = info[t]
        out.append(parse_chord(PITCH_NAMES[root] + suffix))
    return out


def progression_from_midi(
    path: str | PathLike,
    chord_steps: int = 16,
    max_steps: int | None = None,
) -> Progression:
    """Estimate the chord progression of a MIDI file's accompaniment, one chord per
    ``chord_steps`` sixteenth steps (16 = a bar of 4/4), as described in the module docstring.
    ``max_steps`` keeps only the first ``max_steps // chord_steps`` chords (pass the composition
    length, and the progression fits it). Raises :class:`RltunerError` naming the file for a
    missing or invalid MIDI file and one without notes."""
    steps = check_chord_steps(chord_steps, str(path))
    limit = None
    if max_steps is not None:
        limit = check_chord_steps(max_steps, f"{path}: max_steps") // steps * steps
        if limit == 0:
            raise RltunerError(
                f"{path}: max_steps {max_steps} is shorter than one chord ({steps} steps)"
            )
    pm = load_pretty_midi(path)
    tracks = tracks_from_pretty_midi(pm)
    if limit is not None:
        tracks = [tr for tr in (_cut(tr, limit) for tr in tracks) if tr.pitch.size]
    chords = estimate_chords(accompaniment(tracks), steps)
    first = next((c for c in chords if c is not None), None)
    if first is None:
        raise RltunerError(f"{path}: no notes (other than drums) to estimate chords from")
    filled: list[Chord] = []
    for c in chords:
        filled.append(c if c is not None else (filled[-1] if filled else first))
    return Progression(tuple(filled), (steps,) * len(filled))


def _cut(track: NoteTrack, limit: int) -> NoteTrack:
    """``track`` without what sounds from step ``limit`` on."""
    keep = track.onset < limit
    onset = track.onset[keep]
    duration = np.minimum(track.duration[keep], limit - onset)
    return NoteTrack(track.name, track.pitch[keep], onset, duration, track.steps_per_bar,
                     track.key_changes)  # fmt: skip
