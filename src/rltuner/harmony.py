"""Chords and chord progressions: the data the harmony rules, the chord-conditioned networks,
the statistics and the accompaniment share.

A :class:`Chord` is a set of pitch classes with a root (and a bass, for slash chords). A
:class:`Progression` is a sequence of chords, each lasting a whole number of sixteenth steps;
it repeats to fill a composition (:meth:`Progression.chord_index`). :class:`HarmonyTables`
flattens one or more progressions into the small integer arrays the compiled code reads.

Pitch class of a melody class ``a`` (2..37, MIDI ``a + 46``): ``(a + 10) % 12``
(:func:`class_pitch_class`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rltuner.encoding import PITCH_NAMES

__all__ = [
    "Chord",
    "ChordSpan",
    "Progression",
    "HarmonyTables",
    "class_pitch_class",
    "pc_mask",
]


def class_pitch_class(a: np.ndarray | int) -> np.ndarray:
    """Pitch class (0 = C .. 11 = B) of melody classes 2..37 (MIDI ``a + 46``)."""
    return (np.asarray(a, dtype=np.int64) + 10) % 12


def pc_mask(pitch_classes: Sequence[int]) -> int:
    """The pitch classes as a 12-bit mask (bit ``pc`` set)."""
    m = 0
    for pc in pitch_classes:
        m |= 1 << (int(pc) % 12)
    return m


@dataclass(frozen=True)
class Chord:
    """A chord: its ``symbol`` as written, ``root`` and ``bass`` pitch classes (0..11; ``bass``
    differs from ``root`` only for slash chords) and its ``pitch_classes`` (root first, then
    the other tones upwards, each once; the bass of a slash chord is included)."""

    symbol: str
    root: int
    pitch_classes: tuple[int, ...]
    bass: int

    @property
    def mask(self) -> int:
        """:attr:`pitch_classes` as a 12-bit mask."""
        return pc_mask(self.pitch_classes)

    def contains(self, pitch_class: int) -> bool:
        return int(pitch_class) % 12 in self.pitch_classes

    def __str__(self) -> str:
        return self.symbol

    @property
    def root_name(self) -> str:
        return PITCH_NAMES[self.root]


class ChordSpan(NamedTuple):
    """One chord of a progression laid out on a composition: it sounds from step ``start`` for
    ``steps`` sixteenth steps."""

    chord: Chord
    start: int
    steps: int


@dataclass(frozen=True)
class Progression:
    """Chords in order, chord ``i`` lasting ``durations[i]`` sixteenth steps; the progression
    repeats (the last repetition cut off) to fill a composition."""

    chords: tuple[Chord, ...]
    durations: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.chords:
            raise ValueError("a chord progression needs at least one chord")
        if len(self.durations) != len(self.chords):
            raise ValueError("one duration per chord")
        if any(int(d) < 1 for d in self.durations):
            raise ValueError("chord durations must be >= 1 step")

    @property
    def length(self) -> int:
        """Steps of one pass through the progression."""
        return int(sum(self.durations))

    def chord_index(self, num_notes: int) -> np.ndarray:
        """``(num_notes,)`` index into :attr:`chords` of the chord at each step."""
        one = np.repeat(np.arange(len(self.chords)), self.durations)
        reps = -(-int(num_notes) // one.size)
        return np.tile(one, reps)[: int(num_notes)].astype(np.int64)

    def spans(self, num_notes: int) -> list[ChordSpan]:
        """The chords sounding over a composition of ``num_notes`` steps, in order."""
        idx = self.chord_index(num_notes)
        out: list[ChordSpan] = []
        start = 0
        for t in range(1, idx.size + 1):
            at_boundary = t == idx.size or idx[t] != idx[t - 1]
            # a chord repeated across the progression's end starts again
            wraps = t < idx.size and t % self.length == 0
            if at_boundary or wraps:
                out.append(ChordSpan(self.chords[int(idx[start])], start, t - start))
                start = t
        return out

    def symbols(self) -> str:
        return " ".join(c.symbol for c in self.chords)


@dataclass(frozen=True)
class HarmonyTables:
    """Progressions flattened for compiled code. ``chord_mask (C,)`` int64 12-bit pitch-class
    masks, ``chord_root`` / ``chord_bass (C,)`` int64 pitch classes of the ``C`` distinct
    chords; ``steps (P, N)`` int64: the chord (row of those arrays) at every step of a
    composition, for each of the ``P`` progressions."""

    chords: tuple[Chord, ...]
    chord_mask: np.ndarray
    chord_root: np.ndarray
    chord_bass: np.ndarray
    steps: np.ndarray
    progressions: tuple[Progression, ...]

    @classmethod
    def build(cls, progressions: Sequence[Progression], num_notes: int) -> HarmonyTables:
        progs = tuple(progressions)
        if not progs:
            raise ValueError("no chord progression given")
        chords: list[Chord] = []
        where: dict[Chord, int] = {}
        steps = np.zeros((len(progs), int(num_notes)), dtype=np.int64)
        for p, prog in enumerate(progs):
            local = np.array([where.setdefault(c, len(where)) for c in prog.chords])
            for c in prog.chords:
                if where[c] == len(chords):
                    chords.append(c)
            steps[p] = local[prog.chord_index(num_notes)]
        mask = np.array([c.mask for c in chords], dtype=np.int64)
        root = np.array([c.root for c in chords], dtype=np.int64)
        bass = np.array([c.bass for c in chords], dtype=np.int64)
        for a in (mask, root, bass, steps):
            a.flags.writeable = False
        return cls(tuple(chords), mask, root, bass, steps, progs)

    @property
    def num_notes(self) -> int:
        return int(self.steps.shape[1])
