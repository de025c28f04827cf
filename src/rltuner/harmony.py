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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rltuner.encoding import PITCH_NAMES, STEPS_PER_BAR
from rltuner.errors import RltunerError

__all__ = [
    "Chord",
    "ChordSpan",
    "Progression",
    "HarmonyTables",
    "class_pitch_class",
    "pc_mask",
    "CHORD_QUALITIES",
    "QUALITY_ALIASES",
    "COMMON_PROGRESSIONS",
    "parse_chord",
    "parse_progression",
    "read_progressions",
    "check_fits",
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


# --------------------------------------------------------------------------- chord symbols
#: Chord qualities by canonical name: the intervals (semitones above the root) of their tones.
CHORD_QUALITIES: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "6": (0, 4, 7, 9),
    "m6": (0, 3, 7, 9),
}

#: Every quality suffix :func:`parse_chord` reads (what follows the root), with its canonical
#: name in :data:`CHORD_QUALITIES`.
QUALITY_ALIASES: dict[str, str] = {
    "": "major",
    "m": "minor", "min": "minor", "-": "minor",
    "dim": "dim", "°": "dim",
    "aug": "aug", "+": "aug",
    "sus2": "sus2",
    "sus4": "sus4", "sus": "sus4",
    "7": "7",
    "maj7": "maj7", "M7": "maj7", "Δ7": "maj7",
    "m7": "m7", "min7": "m7", "-7": "m7",
    "m7b5": "m7b5", "ø": "m7b5", "ø7": "m7b5",
    "dim7": "dim7", "°7": "dim7",
    "6": "6",
    "m6": "m6",
}  # fmt: skip

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"#": 1, "♯": 1, "b": -1, "♭": -1}
_CHORD_HELP = (
    "write a root A-G with an optional # or b, then one of the qualities "
    "'' (major), m, dim, aug, sus2, sus4, 7, maj7, m7, m7b5, dim7, 6, m6 "
    "(or min, -, °, +, sus, M7, Δ7, min7, -7, ø, ø7, °7), and optionally /BASS, e.g. C/E"
)


def _parse_root(text: str) -> tuple[int, str] | None:
    """(pitch class, rest of ``text``) of a root name at the start of ``text``, or None."""
    if not text or text[0] not in _LETTER_PC:
        return None
    pc = _LETTER_PC[text[0]]
    rest = text[1:]
    if rest and rest[0] in _ACCIDENTAL:
        pc += _ACCIDENTAL[rest[0]]
        rest = rest[1:]
    return pc % 12, rest


def parse_chord(symbol: str) -> Chord:
    """Read a chord symbol: a root ``A``..``G`` with an optional ``#``/``b`` (``♯``/``♭``), a
    quality from :data:`QUALITY_ALIASES` and an optional slash bass (``C/E``, ``Am/G``). A bass
    that is not a chord tone joins the chord's pitch classes. Raises :class:`RltunerError`
    naming the symbol when it cannot be read. Needs no music21 (the tests check every quality
    against music21's ``harmony.ChordSymbol``)."""
    text = symbol.strip() if isinstance(symbol, str) else ""
    head, slash, bass_text = text.partition("/")
    root = _parse_root(head)
    quality = QUALITY_ALIASES.get(root[1]) if root is not None else None
    bass = root[0] if root is not None else 0
    if slash:
        b = _parse_root(bass_text)
        bass = b[0] if b is not None and b[1] == "" else -1
    if root is None or quality is None or bass < 0:
        raise RltunerError(f"unknown chord symbol {symbol!r}: {_CHORD_HELP}")
    r = root[0]
    tones = {(r + i) % 12 for i in CHORD_QUALITIES[quality]} | {bass}
    pcs = tuple(sorted(tones, key=lambda pc: (pc - r) % 12))
    return Chord(text, r, pcs, bass)


# --------------------------------------------------------------------------- progressions
#: Common four-chord progressions, all diatonic triads of C major / A minor (one chord per
#: half bar by default): a family to train on, holding one out to test on.
COMMON_PROGRESSIONS: tuple[str, ...] = (
    "C G Am F",
    "C Am F G",
    "Am F C G",
    "C F G C",
    "C Em F G",
    "Dm G C Am",
    "F G Em Am",
    "C F Am G",
)


def _positive_steps(chord_steps: int, where: str) -> int:
    if isinstance(chord_steps, bool) or not isinstance(chord_steps, (int, np.integer)):
        raise RltunerError(f"{where}: chord steps must be a whole number, got {chord_steps!r}")
    if int(chord_steps) < 1:
        raise RltunerError(f"{where}: chord steps must be >= 1, got {chord_steps}")
    return int(chord_steps)


def parse_progression(text: str, chord_steps: int = 8, where: str = "--chords") -> Progression:
    """Read a progression such as ``"C G Am F"`` (each chord lasting ``chord_steps`` sixteenth
    steps: 8 = half a bar, 16 = a bar) or, with bar lines, ``"C G | Am F"`` (each bar's 1, 2 or
    4 chords share its 16 steps evenly; ``chord_steps`` is then unused; a leading or trailing
    ``|`` is allowed). Raises :class:`RltunerError` starting with ``where`` for an empty
    progression, an empty bar, a bar of 3 or more than 4 chords, or an unknown symbol."""
    steps = _positive_steps(chord_steps, where)
    if not isinstance(text, str) or not text.strip():
        raise RltunerError(f"{where}: empty chord progression; give chords such as 'C G Am F'")
    if "|" in text:
        bars = [bar.split() for bar in text.split("|")]
        while bars and not bars[0]:
            bars.pop(0)
        while bars and not bars[-1]:
            bars.pop()
        symbols: list[str] = []
        durations: list[int] = []
        for i, bar in enumerate(bars, 1):
            if len(bar) not in (1, 2, 4):
                what = "no chord" if not bar else f"{len(bar)} chords ({' '.join(bar)})"
                raise RltunerError(
                    f"{where}: bar {i} has {what}; a bar between | holds 1, 2 or 4 chords"
                )
            symbols += bar
            durations += [STEPS_PER_BAR // len(bar)] * len(bar)
    else:
        symbols = text.split()
        durations = [steps] * len(symbols)
    chords = []
    for sym in symbols:
        try:
            chords.append(parse_chord(sym))
        except RltunerError as e:
            raise RltunerError(f"{where}: {e}") from None
    return Progression(tuple(chords), tuple(durations))


_COMMENT = re.compile(r"(^|\s)#.*$")  # '#' starts a comment only where no chord can (F# is a chord)


def read_progressions(path: str | PathLike, chord_steps: int = 8) -> list[Progression]:
    """Progressions from a UTF-8 text file: one per non-empty line, in
    :func:`parse_progression`'s form; ``#`` at the start of a line or after a space begins a
    comment. Raises :class:`RltunerError` naming the file (and line) for a missing or
    unreadable file, a file that is not UTF-8, a file without progressions and any bad line."""
    path = Path(path)
    if not path.exists():
        raise RltunerError(f"{path}: no such chord progression file")
    if path.is_dir():
        raise RltunerError(f"{path}: is a folder, expected a text file of chord progressions")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RltunerError(f"{path}: cannot read the file ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RltunerError(
            f"{path}: not a UTF-8 text file (undecodable byte at offset {e.start}); "
            "save the chord progressions as UTF-8"
        ) from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        body = _COMMENT.sub("", line).strip()
        if body:
            out.append(parse_progression(body, chord_steps, where=f"{path}, line {i}"))
    if not out:
        raise RltunerError(
            f"{path}: no chord progression in the file (write one per line, e.g. 'C G Am F')"
        )
    return out


def check_fits(progression: Progression, num_notes: int, where: str = "--chords") -> None:
    """Raise :class:`RltunerError` starting with ``where`` when one pass through
    ``progression`` lasts longer than a composition of ``num_notes`` steps."""
    if progression.length > int(num_notes):
        raise RltunerError(
            f"{where}: the progression '{progression.symbols()}' lasts {progression.length} "
            f"steps, longer than the composition's {int(num_notes)}; use fewer or shorter chords "
            "or longer compositions"
        )
