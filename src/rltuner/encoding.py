"""Melody encoding: 38 classes over sixteenth-note steps, keys and scales.

One step is one sixteenth note (``STEPS_PER_QUARTER = 4``). Every step holds one class:

* ``0`` (``NOTE_OFF``): the sounding note stops, a rest begins.
* ``1`` (``NO_EVENT``): nothing changes; the note (or rest) sounding before is held.
* ``2..37``: a new note of MIDI pitch ``class + 46``, i.e. 48 (C3) .. 83 (B5). A new note
  ends the previous one.

``[4, 1, 0, 1]`` is an eighth-note D3 then an eighth rest; ``[2, 4, 6, 7]`` four sixteenths
C3 D3 E3 F3. All functions here are pure and vectorised over numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

__all__ = [
    "NUM_CLASSES",
    "NOTE_OFF",
    "NO_EVENT",
    "FIRST_NOTE_CLASS",
    "MIN_PITCH",
    "MAX_PITCH",
    "STEPS_PER_QUARTER",
    "STEPS_PER_BAR",
    "DEFAULT_QPM",
    "Key",
    "C_MAJOR",
    "NoteArray",
    "pitch_to_class",
    "class_to_pitch",
    "melody_to_notes",
    "notes_to_melody",
    "PITCH_NAMES",
    "class_label",
]

NUM_CLASSES = 38
NOTE_OFF = 0
NO_EVENT = 1
FIRST_NOTE_CLASS = 2
MIN_PITCH = 48
MAX_PITCH = 83
STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
DEFAULT_QPM = 80.0
_PITCH_OFFSET = MIN_PITCH - FIRST_NOTE_CLASS  # 46

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NAME_TO_PC = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "F": 5,
    "E#": 5, "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11,
    "CB": 11,
}  # fmt: skip
_MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
_MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)  # natural minor: the relative minor shares the key set


def pitch_to_class(pitch: np.ndarray | int) -> np.ndarray:
    """MIDI pitch (48..83) -> class (2..37). Raises ``ValueError`` outside the range."""
    p = np.asarray(pitch, dtype=np.int64)
    if np.any((p < MIN_PITCH) | (p > MAX_PITCH)):
        raise ValueError(
            f"pitch outside {MIN_PITCH}..{MAX_PITCH}: {p[(p < MIN_PITCH) | (p > MAX_PITCH)][:5]}"
        )
    return p - _PITCH_OFFSET


def class_to_pitch(cls: np.ndarray | int) -> np.ndarray:
    """Class (2..37) -> MIDI pitch (48..83). Raises ``ValueError`` for 0/1 or out of range."""
    c = np.asarray(cls, dtype=np.int64)
    if np.any((c < FIRST_NOTE_CLASS) | (c >= NUM_CLASSES)):
        raise ValueError("only classes 2..37 are pitches (0 = note-off, 1 = no-event)")
    return c + _PITCH_OFFSET


@dataclass(frozen=True)
class Key:
    """A musical key: ``tonic`` pitch class (0 = C .. 11 = B) and ``mode`` ('major'/'minor').

    Derived class sets follow the original's C-major helpers, generalised:

    * ``key_classes`` -- 0, 1 and every class whose pitch is in the scale (rests and holds are
      "in key"). C major: ``[0,1,2,4,6,7,9,11,13,14,...,37]``.
    * ``tonic_class`` -- the tonic in the octave MIDI 60..71 (C major 14 = C4, A minor 23 = A4).
    * ``tonic_notes`` / ``third_notes`` / ``fifth_notes`` -- every class of that pitch class
      (C major: C ``[2,14,26]``, E ``[6,18,30]``, G ``[9,21,33]``).
    * ``scale_classes`` -- 15 scale notes rising from the tonic's lowest octave (the "scale"
      reward's list; C major ``[2,4,...,26]``).
    """

    tonic: int = 0
    mode: str = "major"

    def __post_init__(self) -> None:
        if not (isinstance(self.tonic, (int, np.integer)) and 0 <= int(self.tonic) < 12):
            raise ValueError(f"key tonic must be a pitch class 0..11, got {self.tonic!r}")
        if self.mode not in ("major", "minor"):
            raise ValueError(f"key mode must be 'major' or 'minor', got {self.mode!r}")
        object.__setattr__(self, "tonic", int(self.tonic))

    @classmethod
    def parse(cls, text: str) -> Key:
        """Parse ``'C'``, ``'G major'``, ``'D minor'``, ``'f#m'``, ``'Bb-minor'``."""
        t = text.strip().replace("-", " ").replace("_", " ")
        mode = "major"
        low = t.lower()
        for suffix, m in ((" minor", "minor"), (" major", "major"), ("min", "minor"),
                          ("maj", "major"), ("m", "minor")):  # fmt: skip
            if low.endswith(suffix) and len(t) > len(suffix) - (1 if suffix[0] == " " else 0):
                t, mode = t[: len(t) - len(suffix)].strip(), m
                break
        pc = _NAME_TO_PC.get(t.upper())
        if pc is None:
            raise ValueError(f"cannot read key {text!r}; use e.g. 'C major', 'G', 'D minor', 'F#m'")
        return cls(pc, mode)

    @property
    def name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    def __str__(self) -> str:
        return self.name

    @cached_property
    def scale_pitch_classes(self) -> tuple[int, ...]:
        steps = _MAJOR_STEPS if self.mode == "major" else _MINOR_STEPS
        return tuple((self.tonic + s) % 12 for s in steps)

    def _classes_with_pc(self, pcs: tuple[int, ...] | set[int]) -> np.ndarray:
        pitches = np.arange(MIN_PITCH, MAX_PITCH + 1)
        keep = np.isin(pitches % 12, list(pcs))
        return (pitches[keep] - _PITCH_OFFSET).astype(np.int64)

    @cached_property
    def key_classes(self) -> np.ndarray:
        return np.concatenate(
            [[NOTE_OFF, NO_EVENT], self._classes_with_pc(self.scale_pitch_classes)]
        )

    @cached_property
    def in_key_mask(self) -> np.ndarray:
        """Boolean mask of length 38, True for classes in ``key_classes``."""
        m = np.zeros(NUM_CLASSES, dtype=bool)
        m[self.key_classes] = True
        return m

    @cached_property
    def tonic_class(self) -> int:
        return int(60 + self.tonic - _PITCH_OFFSET)

    @cached_property
    def tonic_notes(self) -> np.ndarray:
        return self._classes_with_pc({self.scale_pitch_classes[0]})

    @cached_property
    def third_notes(self) -> np.ndarray:
        return self._classes_with_pc({self.scale_pitch_classes[2]})

    @cached_property
    def fifth_notes(self) -> np.ndarray:
        return self._classes_with_pc({self.scale_pitch_classes[4]})

    @cached_property
    def scale_classes(self) -> np.ndarray:
        steps = _MAJOR_STEPS if self.mode == "major" else _MINOR_STEPS
        base = MIN_PITCH + self.tonic
        pitches = [base + 12 * octave + s for octave in range(3) for s in steps][:15]
        return np.asarray(pitches, dtype=np.int64) - _PITCH_OFFSET

    def transposition_to(self, other: Key) -> int:
        """Semitones (-6..+5) that move music in this key to ``other``'s tonic."""
        d = (other.tonic - self.tonic) % 12
        return d - 12 if d > 5 else d


C_MAJOR = Key(0, "major")


class NoteArray(NamedTuple):
    """Notes of one melody, each array of shape ``(n_notes,)`` (int64).

    ``pitch`` is MIDI pitch, ``onset`` and ``duration`` are in sixteenth-note steps.
    """

    pitch: np.ndarray
    onset: np.ndarray
    duration: np.ndarray


def melody_to_notes(melody: np.ndarray) -> NoteArray:
    """Class sequence ``(T,)`` -> notes. A note lasts until the next note-off or new note
    (holds extend it); a note still sounding at the end lasts to ``T``."""
    m = np.asarray(melody, dtype=np.int64).reshape(-1)
    if m.size and (m.min() < 0 or m.max() >= NUM_CLASSES):
        raise ValueError("melody classes must lie in 0..37")
    events = np.flatnonzero(m != NO_EVENT)  # note-offs and note-ons end what sounds
    onsets = np.flatnonzero(m >= FIRST_NOTE_CLASS)
    # end of each note = the next event after its onset, else T
    nxt = np.searchsorted(events, onsets, side="right")
    ends = np.where(nxt < events.size, events[np.minimum(nxt, events.size - 1)], m.size)
    return NoteArray(m[onsets] + _PITCH_OFFSET, onsets, ends - onsets)


def notes_to_melody(notes: NoteArray, length: int | None = None) -> np.ndarray:
    """Notes -> class sequence. Gaps become a note-off followed by holds; overlapping notes
    are cut by the next onset (monophony). Pitches must lie in 48..83."""
    pitch = np.asarray(notes.pitch, dtype=np.int64)
    onset = np.asarray(notes.onset, dtype=np.int64)
    dur = np.asarray(notes.duration, dtype=np.int64)
    order = np.argsort(onset, kind="stable")
    pitch, onset, dur = pitch[order], onset[order], dur[order]
    ends = onset + np.maximum(dur, 1)
    total = int(ends.max()) if ends.size else 0
    if length is None:
        length = total
    out = np.full(length, NO_EVENT, dtype=np.int64)
    if not pitch.size:
        return out
    cls = pitch_to_class(pitch)
    # a rest after a note whose end comes before the next onset (or before `length`)
    next_onset = np.append(onset[1:], np.iinfo(np.int64).max)
    rest_at = ends[(ends < next_onset) & (ends < length)]
    out[rest_at] = NOTE_OFF
    keep = onset < length
    out[onset[keep]] = cls[keep]  # a later onset at the same step wins
    return out


def class_label(cls: int) -> str:
    """``0 -> 'off'``, ``1 -> 'hold'``, ``14 -> 'C4'`` (pitch name with MIDI octave - 1)."""
    if cls == NOTE_OFF:
        return "off"
    if cls == NO_EVENT:
        return "hold"
    pitch = int(cls) + _PITCH_OFFSET
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


# The encoding facts every Note RNN checkpoint records in its metadata (``"encoding"``).
ENCODING_META: dict[str, int] = {
    "num_classes": NUM_CLASSES,
    "note_off": NOTE_OFF,
    "no_event": NO_EVENT,
    "min_pitch": MIN_PITCH,
    "max_pitch": MAX_PITCH,
    "steps_per_quarter": STEPS_PER_QUARTER,
}
