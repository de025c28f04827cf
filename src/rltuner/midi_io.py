"""MIDI input/output and monophonic melody extraction.

We use **pretty_midi**: it is the field-standard MIDI library of music-information retrieval,
works with numpy 2, exposes tempo maps and ticks (so quantisation survives tempo changes), and
ships a General MIDI soundfont plus a synthesizer for rendering audio.

Extraction follows Magenta's melody extractor, in our encoding (see :mod:`rltuner.encoding`):

1. every non-drum instrument is a candidate; note times are converted to MIDI ticks through the
   file's tempo map and rounded to sixteenth-note steps (4 per quarter note);
2. monophony: at each onset step only the highest note is kept, and a new onset ends the note
   sounding before it;
3. the note stream is split at silences of ``gap_bars`` bars or more (bar length from the first
   time signature; 4/4 when there is none);
4. fragments shorter than ``min_bars`` bars or with fewer than ``min_unique_pitches`` distinct
   pitches are dropped;
5. each fragment is transposed to C major / A minor by the smallest shift (-6..+5 semitones) that
   takes its tonic there, then octave-shifted into MIDI 48..83 (the shift closest to zero that
   fits); a fragment whose range cannot fit is dropped (never clipped).

The key of a fragment comes from the file's key signature when it is plausible (at least 90% of
the note duration lies in its scale -- many MIDI files carry a default "C major" signature, and
the Essen ABC files give the tonic rather than the mode), otherwise from a Krumhansl-Kessler
key-profile estimate (:func:`estimate_key`). Steps 2-5 live in :func:`melodies_from_track` and
serve MIDI as well as ABC/MusicXML input (see :mod:`rltuner.corpus`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pretty_midi

from rltuner.checkpoint import atomic_path
from rltuner.encoding import (
    DEFAULT_QPM,
    MAX_PITCH,
    MIN_PITCH,
    NUM_CLASSES,
    STEPS_PER_QUARTER,
    Key,
    NoteArray,
    melody_to_notes,
    notes_to_melody,
)
from rltuner.errors import RltunerError
from rltuner.harmony import Chord, ChordSpan

__all__ = [
    "InputFileError",
    "ExtractedMelody",
    "Extraction",
    "NoteTrack",
    "KEY_MODES",
    "DROP_SHORT",
    "DROP_FEW_PITCHES",
    "DROP_RANGE",
    "estimate_key",
    "melodies_from_track",
    "tracks_from_pretty_midi",
    "load_pretty_midi",
    "extract_melodies",
    "describe_dropped",
    "no_melody_error",
    "read_midi",
    "CHORD_STYLES",
    "CHORD_VELOCITY",
    "chord_voicing",
    "chords_to_instrument",
    "melody_to_pretty_midi",
    "write_midi",
]

KEY_MODES = ("auto", "notated", "estimate")
A_MINOR = Key(9, "minor")
# Reasons a fragment is dropped (keys of Extraction.dropped).
DROP_SHORT = "shorter than min_bars"
DROP_FEW_PITCHES = "too few distinct pitches"
DROP_RANGE = "range does not fit MIDI 48..83"
# The notated key is trusted when this share of the note duration lies in its scale.
_NOTATED_KEY_MIN_FIT = 0.9

# Krumhansl & Kessler (1982) probe-tone ratings, index 0 = tonic.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


class InputFileError(RltunerError):
    """A bad input file. ``reason`` is a short category for summaries ("not a valid MIDI file")."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # keep ``reason`` when sent back from a worker process
        return (type(self), (str(self), self.reason))


@dataclass(frozen=True)
class ExtractedMelody:
    """One monophonic melody found in a file.

    ``melody``: int8 classes, shape ``(T,)``, starting with a note (class >= 2).
    ``source_key``: the key before transposition. ``transposition``: semitones applied to the
    source pitches, octave shift included (0 means untouched). ``track``: instrument or part
    name. ``start_step``: the first note's position in the source, in sixteenth-note steps.
    """

    melody: np.ndarray
    source_key: Key
    transposition: int
    track: str = ""
    start_step: int = 0


class Extraction(NamedTuple):
    """Melodies kept and the number of fragments dropped per reason."""

    melodies: list[ExtractedMelody]
    dropped: dict[str, int]


@dataclass(frozen=True)
class NoteTrack:
    """Quantised notes of one instrument or part, before monophonic reduction.

    ``pitch``/``onset``/``duration``: int64 arrays ``(n,)``; onsets and durations in
    sixteenth-note steps, pitches in any MIDI range, notes in any order, overlaps allowed.
    ``key_changes``: ``(step, Key)`` pairs from the notation, sorted by step (may be empty).
    """

    name: str
    pitch: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    steps_per_bar: int = 16
    key_changes: tuple[tuple[int, Key], ...] = field(default=())


def estimate_key(pitch: np.ndarray, duration: np.ndarray | None = None) -> Key:
    """Krumhansl-Kessler key estimate.

    Correlates the duration-weighted pitch-class histogram with the 24 rotated major/minor
    profiles and returns the best key (ties: major before minor, lower tonic first). An empty
    input or one without any pitch variety returns C major.
    """
    pitch = np.asarray(pitch, dtype=np.int64).reshape(-1)
    weights = np.ones(pitch.size) if duration is None else np.asarray(duration, dtype=np.float64)
    hist = np.bincount(pitch % 12, weights=weights, minlength=12)
    if not hist.any() or np.ptp(hist) == 0:
        return Key(0, "major")
    profiles = np.stack([np.roll(p, t) for p in (_KK_MAJOR, _KK_MINOR) for t in range(12)])
    h = hist - hist.mean()
    pr = profiles - profiles.mean(axis=1, keepdims=True)
    corr = pr @ h / (np.linalg.norm(pr, axis=1) * np.linalg.norm(h))
    best = int(np.argmax(corr))
    return Key(best % 12, "major" if best < 12 else "minor")


def _scale_fit(pitch: np.ndarray, duration: np.ndarray, key: Key) -> float:
    hist = np.bincount(pitch % 12, weights=duration.astype(np.float64), minlength=12)
    total = hist.sum()
    return float(hist[list(key.scale_pitch_classes)].sum() / total) if total else 1.0


def _choose_key(pitch: np.ndarray, duration: np.ndarray, notated: Key | None, key_mode: str) -> Key:
    if notated is None or key_mode == "estimate":
        return estimate_key(pitch, duration)
    if key_mode == "notated" or _scale_fit(pitch, duration, notated) >= _NOTATED_KEY_MIN_FIT:
        return notated
    return estimate_key(pitch, duration)


def _octave_shift(low: int, high: int) -> int | None:
    """Multiple of 12 closest to 0 that moves [low, high] into MIDI 48..83, or None."""
    fits = [
        12 * k for k in range(-10, 11) if low + 12 * k >= MIN_PITCH and high + 12 * k <= MAX_PITCH
    ]
    return min(fits, key=abs) if fits else None


def melodies_from_track(
    track: NoteTrack,
    *,
    transpose: bool = True,
    key_mode: str = "auto",
    min_bars: float = 2.0,
    min_unique_pitches: int = 3,
    gap_bars: float | None = 1.0,
    target_key: Key | None = None,
) -> Extraction:
    """Monophonic reduction, gap splitting, filtering, transposition and encoding of one track.

    ``gap_bars=None`` never splits; ``min_bars=0`` and ``min_unique_pitches=0`` keep every
    fragment. With ``transpose=False`` melodies keep their key and are only octave-shifted.
    ``target_key`` (default C major): major melodies move to its major key, minor ones to its
    minor key (the relative minor of a major target, the relative major of a minor one).
    """
    if key_mode not in KEY_MODES:
        raise ValueError(f"key_mode must be one of {KEY_MODES}, got {key_mode!r}")
    pitch = np.asarray(track.pitch, dtype=np.int64)
    onset = np.asarray(track.onset, dtype=np.int64)
    duration = np.asarray(track.duration, dtype=np.int64)
    dropped: Counter[str] = Counter()
    if pitch.size == 0:
        return Extraction([], {})
    # highest note per onset step; a later onset cuts the note before it
    order = np.lexsort((-pitch, onset))
    pitch, onset, duration = pitch[order], onset[order], duration[order]
    first = np.r_[True, onset[1:] != onset[:-1]]
    pitch, onset, duration = pitch[first], onset[first], duration[first]
    end = np.minimum(onset + np.maximum(duration, 1), np.r_[onset[1:], np.iinfo(np.int64).max])

    bar = max(int(track.steps_per_bar), 1)
    if gap_bars is None:
        cuts = np.zeros(0, dtype=np.int64)
    else:
        cuts = np.flatnonzero(onset[1:] - end[:-1] >= gap_bars * bar) + 1
    starts = np.r_[0, cuts]
    stops = np.r_[cuts, pitch.size]
    key_steps = np.array([s for s, _ in track.key_changes], dtype=np.int64)
    target_key = target_key or Key(0, "major")
    shift_to_minor = 9 if target_key.mode == "major" else 0
    target_major = Key((target_key.tonic + shift_to_minor + 3) % 12, "major")
    target_minor = Key((target_key.tonic + shift_to_minor) % 12, "minor")
    kept = []
    for a, b in zip(starts, stops, strict=True):
        p, o, e = pitch[a:b], onset[a:b], end[a:b]
        length = int(e[-1] - o[0])
        if length < min_bars * bar:
            dropped[DROP_SHORT] += 1
            continue
        if np.unique(p).size < min_unique_pitches:
            dropped[DROP_FEW_PITCHES] += 1
            continue
        notated = None
        if key_steps.size:  # signature in force at the fragment's start (else the first one)
            idx = max(int(np.searchsorted(key_steps, o[0], side="right")) - 1, 0)
            notated = track.key_changes[idx][1]
        key = _choose_key(p, e - o, notated, key_mode)
        shift = (
            key.transposition_to(target_major if key.mode == "major" else target_minor)
            if transpose
            else 0
        )
        octave = _octave_shift(int(p.min()) + shift, int(p.max()) + shift)
        if octave is None:
            dropped[DROP_RANGE] += 1
            continue
        total = shift + octave
        melody = notes_to_melody(NoteArray(p + total, o - o[0], e - o), length)
        kept.append(ExtractedMelody(melody.astype(np.int8), key, int(total), track.name, int(o[0])))
    return Extraction(kept, dict(dropped))


# ----------------------------------------------------------------------------- reading MIDI


def load_pretty_midi(path: str | PathLike) -> pretty_midi.PrettyMIDI:
    """Parse a MIDI file. Raises :class:`InputFileError` (an ``RltunerError``) naming the file
    for a missing, empty, or unreadable file."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file", "no such file")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, expected a MIDI file", "is a folder")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: empty file (0 bytes), not a valid MIDI file", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about harmless oddities
            return pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # mido/pretty_midi raise OSError, EOFError, ValueError, KeyError, ...
        msg = str(e).strip() or type(e).__name__
        raise InputFileError(
            f"{path}: not a valid MIDI file ({msg})", "not a valid MIDI file"
        ) from None


def _steps_per_bar(numerator: int, denominator: int) -> int:
    steps = round(numerator * 4 * STEPS_PER_QUARTER / denominator)
    return steps if steps >= 1 else 16


def tracks_from_pretty_midi(pm: pretty_midi.PrettyMIDI) -> list[NoteTrack]:
    """Quantised :class:`NoteTrack` per non-drum instrument (instruments without notes are
    skipped). Times go through the tempo map to ticks, then to the nearest sixteenth."""
    per_step = STEPS_PER_QUARTER / pm.resolution

    def to_steps(times: np.ndarray) -> np.ndarray:
        ticks = np.array([pm.time_to_tick(float(t)) for t in times], dtype=np.float64)
        return np.rint(ticks * per_step).astype(np.int64)

    ts = sorted(pm.time_signature_changes, key=lambda t: t.time)
    steps_per_bar = _steps_per_bar(ts[0].numerator, ts[0].denominator) if ts else 16
    keys = sorted(pm.key_signature_changes, key=lambda k: k.time)
    key_changes = tuple(
        (int(s), Key(k.key_number % 12, "major" if k.key_number < 12 else "minor"))
        for s, k in zip(to_steps(np.array([k.time for k in keys])), keys, strict=True)
    )
    tracks = []
    for i, inst in enumerate(pm.instruments):
        if inst.is_drum or not inst.notes:
            continue
        starts = to_steps(np.array([n.start for n in inst.notes]))
        ends = to_steps(np.array([n.end for n in inst.notes]))
        name = (
            inst.name.strip() or f"{pretty_midi.program_to_instrument_name(inst.program)} #{i + 1}"
        )
        tracks.append(
            NoteTrack(
                name=name,
                pitch=np.array([n.pitch for n in inst.notes], dtype=np.int64),
                onset=starts,
                duration=np.maximum(ends - starts, 1),
                steps_per_bar=steps_per_bar,
                key_changes=key_changes,
            )
        )
    return tracks


def _merge(extractions: list[Extraction]) -> Extraction:
    melodies: list[ExtractedMelody] = []
    dropped: Counter[str] = Counter()
    for ex in extractions:
        melodies.extend(ex.melodies)
        dropped.update(ex.dropped)
    return Extraction(melodies, dict(dropped))


def extract_melodies(
    pm: pretty_midi.PrettyMIDI,
    *,
    transpose: bool = True,
    key_mode: str = "auto",
    min_bars: float = 2.0,
    min_unique_pitches: int = 3,
    gap_bars: float | None = 1.0,
) -> Extraction:
    """All melodies of an in-memory MIDI object (see the module docstring for the steps)."""
    return _merge(
        [
            melodies_from_track(
                t,
                transpose=transpose,
                key_mode=key_mode,
                min_bars=min_bars,
                min_unique_pitches=min_unique_pitches,
                gap_bars=gap_bars,
            )
            for t in tracks_from_pretty_midi(pm)
        ]
    )


def describe_dropped(dropped: dict[str, int]) -> str:
    """``{"shorter than min_bars": 2}`` -> ``"2 shorter than min_bars"``."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items()))


def no_melody_error(
    path: str | PathLike, pm: pretty_midi.PrettyMIDI, dropped: dict[str, int]
) -> InputFileError:
    """The error for a readable MIDI file that yields no melody, saying why."""
    if not any(inst.notes for inst in pm.instruments):
        why = "the file has no notes"
    elif all(inst.is_drum for inst in pm.instruments if inst.notes):
        why = "only drum tracks"
    else:
        n = sum(dropped.values())
        why = f"{n} fragment{'s' if n != 1 else ''} dropped: {describe_dropped(dropped)}"
    return InputFileError(f"{path}: no melody found ({why})", "no melody found")


def read_midi(
    path: str | PathLike,
    *,
    transpose: bool = True,
    key_mode: str = "auto",
    min_bars: float = 2.0,
    min_unique_pitches: int = 3,
    gap_bars: float | None = 1.0,
) -> list[ExtractedMelody]:
    """Read a MIDI file and return its monophonic melodies (at least one).

    ``transpose``: move each melody to C major / A minor (else keep its key, octave-shift
    only). ``key_mode``: ``"auto"`` (notated key when plausible, else estimated), ``"notated"``
    (trust the key signature whenever there is one) or ``"estimate"`` (always estimate).
    ``min_bars``/``min_unique_pitches``/``gap_bars``: fragment filters (``0``/``0``/``None``
    disable them). Raises :class:`~rltuner.errors.RltunerError` naming the file for a missing,
    empty, corrupt or melody-less file.
    """
    pm = load_pretty_midi(path)
    ex = extract_melodies(
        pm,
        transpose=transpose,
        key_mode=key_mode,
        min_bars=min_bars,
        min_unique_pitches=min_unique_pitches,
        gap_bars=gap_bars,
    )
    if not ex.melodies:
        raise no_melody_error(path, pm, ex.dropped)
    return ex.melodies


# ----------------------------------------------------------------------------- writing MIDI


#: How the chord track plays each chord: ``block`` holds the voicing for the chord's span,
#: ``arpeggio`` plays its notes one after another (bass first, upwards) in eighth notes.
CHORD_STYLES = ("block", "arpeggio")
#: Velocity of the chord track: below the melody's default 100, so the melody stays on top
#: (General MIDI synthesisers, and the built-in one, scale amplitude by ``(velocity/127)^2``).
CHORD_VELOCITY = 56
#: Default General MIDI program of the chord track (Electric Piano 1); Acoustic Grand Piano
#: when the melody itself uses it.
CHORD_PROGRAM = 4
# The chord track lies below the melody (MIDI 48..83): bass in 36..47, upper voices in 48..59.
_BASS_LOW = 36
_UPPER_LOW = 48


def chord_voicing(chord: Chord) -> list[int]:
    """MIDI pitches of ``chord`` as the chord track plays it, low to high: the bass
    (``chord.bass``) in MIDI 36..47, then each of ``chord.pitch_classes`` once in close
    position within MIDI 48..59 (the inversion that fits there)."""
    bass = _BASS_LOW + int(chord.bass) % 12
    upper = sorted({_UPPER_LOW + int(pc) % 12 for pc in chord.pitch_classes})
    return [bass, *upper]


def chords_to_instrument(
    chords: Sequence[ChordSpan],
    qpm: float = DEFAULT_QPM,
    style: str = "block",
    program: int = CHORD_PROGRAM,
    velocity: int = CHORD_VELOCITY,
) -> pretty_midi.Instrument:
    """The chord track: an instrument named ``"chords"`` playing each span's chord from its
    ``start`` for ``steps`` sixteenth steps at ``qpm`` (a step lasts ``60 / qpm / 4`` s), voiced
    by :func:`chord_voicing`. ``style``: one of :data:`CHORD_STYLES`. Raises ``ValueError`` for
    an unknown style or a span with ``start < 0`` or ``steps < 1``."""
    if style not in CHORD_STYLES:
        raise ValueError(f"chord style must be one of {', '.join(CHORD_STYLES)}, got {style!r}")
    if qpm <= 0:
        raise ValueError(f"qpm must be positive, got {qpm}")
    step = 60.0 / qpm / STEPS_PER_QUARTER
    inst = pretty_midi.Instrument(program=int(program), name="chords")
    eighth = STEPS_PER_QUARTER // 2
    for span in chords:
        start, steps = int(span.start), int(span.steps)
        if start < 0 or steps < 1:
            raise ValueError(f"chord span {span.chord} at step {start} lasts {steps} steps")
        pitches = chord_voicing(span.chord)
        end = start + steps
        if style == "block":
            notes = [(p, start, end) for p in pitches]
        else:
            onsets = range(start, end, eighth)
            notes = [(pitches[i % len(pitches)], o, min(o + eighth, end))
                     for i, o in enumerate(onsets)]  # fmt: skip
        for p, a, b in notes:
            inst.notes.append(pretty_midi.Note(int(velocity), p, float(a * step), float(b * step)))
    return inst


def melody_to_pretty_midi(
    melody: np.ndarray,
    qpm: float = DEFAULT_QPM,
    program: int = 0,
    velocity: int = 100,
    chords: Sequence[ChordSpan] | None = None,
    chord_style: str = "block",
) -> pretty_midi.PrettyMIDI:
    """Class sequence ``(T,)`` -> ``PrettyMIDI`` at ``qpm`` quarter notes per minute (a step
    lasts ``60 / qpm / 4`` s): the melody is the first instrument (``"melody"``). A trailing
    rest is not representable in MIDI and is lost. With ``chords`` (spans in steps of the
    same composition, e.g. ``Progression.spans(T)``) a second instrument ``"chords"`` plays
    them below the melody (:func:`chords_to_instrument`, style ``chord_style``, a program
    other than ``program``, softer)."""
    melody = np.asarray(melody).reshape(-1)
    if melody.size and (melody.min() < 0 or melody.max() >= NUM_CLASSES):
        raise ValueError("melody classes must lie in 0..37")
    if qpm <= 0:
        raise ValueError(f"qpm must be positive, got {qpm}")
    chord_track = None
    if chords is not None:
        chord_program = CHORD_PROGRAM if int(program) != CHORD_PROGRAM else 0
        chord_track = chords_to_instrument(chords, qpm, chord_style, chord_program)
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(qpm))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    inst = pretty_midi.Instrument(program=int(program), name="melody")
    step = 60.0 / qpm / STEPS_PER_QUARTER
    notes = melody_to_notes(melody)
    for p, o, d in zip(notes.pitch, notes.onset, notes.duration, strict=True):
        inst.notes.append(
            pretty_midi.Note(int(velocity), int(p), float(o * step), float((o + d) * step))
        )
    pm.instruments.append(inst)
    if chord_track is not None:
        pm.instruments.append(chord_track)
    return pm


def write_midi(
    melody: np.ndarray,
    path: str | PathLike,
    qpm: float = DEFAULT_QPM,
    program: int = 0,
    velocity: int = 100,
    chords: Sequence[ChordSpan] | None = None,
    chord_style: str = "block",
) -> Path:
    """Write a class sequence as a MIDI file, atomically: one track, or with ``chords`` a
    second track playing them (see :func:`melody_to_pretty_midi`). Returns the path."""
    pm = melody_to_pretty_midi(
        melody, qpm=qpm, program=program, velocity=velocity, chords=chords,
        chord_style=chord_style,
    )  # fmt: skip
    path = Path(path)
    with atomic_path(path, suffix=".mid") as tmp:
        pm.write(str(tmp))
    return path
