"""Chords and chord progressions: the data the harmony rules, the chord-conditioned networks,
the statistics and the accompaniment share.

A :class:`Chord` is a set of pitch classes with a root (and a bass, for slash chords). A
:class:`Progression` is a sequence of chords, each lasting a whole number of sixteenth steps;
it repeats to fill a composition (:meth:`Progression.chord_index`). :class:`HarmonyTables`
flattens one or more progressions into the small integer arrays the compiled code reads.

Pitch class of a melody class ``a`` (2..37, MIDI ``a + 46``): ``(a + 10) % 12``
(:func:`class_pitch_class`).

Chord symbols (:func:`parse_chord`) and progressions (:func:`parse_progression`,
:func:`read_progressions`) are read here without music21 (the tests use music21 as the oracle).

The harmony rules (docs/rules.md#harmony-rules), columns of :data:`HARMONY_RULE_NAMES`, score the
action played at step ``t`` given the composition before it and the chord at every step. Strong
beats: ``t % 16`` in {0, 8}. The *sounding note* at ``t``: the action if a note; for a hold, the
last non-hold entry if that is a note; else none.

================== ==============================================================================
``chord_tone``     strong beat, a sounding note: +3 a tone of the chord at ``t``, −3 not
``clash``          strong beat, a sounding non-chord tone a semitone above a chord tone: −3
``resolution``     action a note or note-off, previous onset ``p`` (walking back over holds; a
                   note-off stops the walk) a non-chord tone at its own step: 0 when the action
                   is a note 1–2 semitones from ``p`` and a tone of the chord at ``t``, else −2
``cadence``        final step only: the last note (trailing holds/rests ignored) is the final
                   chord's root +5, another tone of it +3, anything else or no note −3
``neighbour_keys`` −0.5 a note only in the keys a fifth above/below (same mode), −1 a note in
                   none of the three, 0 otherwise
================== ==============================================================================

:func:`harmony_step_into` runs them in one compiled pass over a batch;
:func:`reference_harmony_step` is the plain-Python oracle. :func:`harmony_statistics` measures
whole compositions with the same definitions (docs/rules.md#harmony-statistics).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from rltuner.encoding import (
    FIRST_NOTE_CLASS,
    NO_EVENT,
    NUM_CLASSES,
    PITCH_NAMES,
    STEPS_PER_BAR,
    Key,
)
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
    "check_chord_steps",
    "HARMONY_RULE_NAMES",
    "DEFAULT_HARMONY_WEIGHTS",
    "STRONG_BEATS",
    "CHORD_TONE_REWARD",
    "CLASH_PENALTY",
    "UNRESOLVED_PENALTY",
    "MAX_RESOLUTION_STEP",
    "CADENCE_ROOT_REWARD",
    "CADENCE_TONE_REWARD",
    "CADENCE_PENALTY",
    "NEIGHBOUR_KEY_PENALTY",
    "OUT_OF_KEYS_PENALTY",
    "neighbour_key_values",
    "harmony_step_into",
    "harmony_step",
    "reference_harmony_step",
    "HARMONY_STAT_NAMES",
    "harmony_statistics",
]


_PC_OFFSET = 10  # class a is MIDI a + 46, and 46 % 12 == 10


def class_pitch_class(a: np.ndarray | int) -> np.ndarray:
    """Pitch class (0 = C .. 11 = B) of melody classes 2..37 (MIDI ``a + 46``)."""
    return (np.asarray(a, dtype=np.int64) + _PC_OFFSET) % 12


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


def check_chord_steps(chord_steps: int, where: str) -> int:
    """``chord_steps`` as an int; :class:`RltunerError` starting with ``where`` unless it is a
    whole number >= 1."""
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
    steps = check_chord_steps(chord_steps, where)
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


# --------------------------------------------------------------------------- harmony rules
HARMONY_RULE_NAMES: tuple[str, ...] = (
    "chord_tone",
    "clash",
    "resolution",
    "cadence",
    "neighbour_keys",
)
DEFAULT_HARMONY_WEIGHTS: dict[str, float] = {
    "chord_tone": 1.0,
    "clash": 1.0,
    "resolution": 1.0,
    "cadence": 1.0,
    "neighbour_keys": 0.0,
}
# The rules' constants, read by the compiled kernels and by the plain-Python reference alike.
STRONG_BEATS = (0, 8)  # strong beats: steps t with t % 16 in these, beats 1 and 3 of a 4/4 bar
CHORD_TONE_REWARD = 3.0  # +3 a chord tone on a strong beat, -3 any other sounding note there
CLASH_PENALTY = -3.0  # a strong-beat non-chord tone a semitone above a chord tone
# a non-chord tone not resolved by step to a chord tone; a resolved one earns nothing (a bonus
# paid the policy for inserting non-chord tones, chromatic ones included: docs/rules.md)
UNRESOLVED_PENALTY = -2.0
MAX_RESOLUTION_STEP = 2  # "by step": 1 or 2 semitones
CADENCE_ROOT_REWARD = 5.0  # the last note is the final chord's root
CADENCE_TONE_REWARD = 3.0  # ... another tone of the final chord
CADENCE_PENALTY = -3.0  # ... any other note, or no note at all
NEIGHBOUR_KEY_PENALTY = -0.5  # a note only in the keys a fifth above or below
OUT_OF_KEYS_PENALTY = -1.0  # a note in none of the three keys
_FIFTH = 7
(_CHORD_TONE, _CLASH, _RESOLUTION, _CADENCE, _NEIGHBOUR_KEYS) = range(len(HARMONY_RULE_NAMES))


@lru_cache(maxsize=64)
def neighbour_key_values(key: Key) -> np.ndarray:
    """``(38,)`` float64, read-only: the ``neighbour_keys`` rule's value of every class in
    ``key``: 0 for note-off, hold and notes of the key; :data:`NEIGHBOUR_KEY_PENALTY` for notes
    only in the key a fifth above or below (same mode); :data:`OUT_OF_KEYS_PENALTY` otherwise."""
    home = set(key.scale_pitch_classes)
    near = set(Key((key.tonic + _FIFTH) % 12, key.mode).scale_pitch_classes)
    near |= set(Key((key.tonic - _FIFTH) % 12, key.mode).scale_pitch_classes)
    out = np.zeros(NUM_CLASSES, dtype=np.float64)
    for a in range(FIRST_NOTE_CLASS, NUM_CLASSES):
        pc = (a + _PC_OFFSET) % 12
        if pc not in home:
            out[a] = NEIGHBOUR_KEY_PENALTY if pc in near else OUT_OF_KEYS_PENALTY
    out.flags.writeable = False
    return out


@njit(cache=True)
def _in_mask(mask, a):
    """Is class ``a``'s pitch class in the 12-bit chord ``mask``?"""
    return (mask >> ((a + _PC_OFFSET) % 12)) & 1 == 1


@njit(cache=True)
def _is_strong(t):
    """Is step ``t`` a strong beat (:data:`STRONG_BEATS`)?"""
    for s in STRONG_BEATS:
        if t % STEPS_PER_BAR == s:
            return True
    return False


@njit(cache=True)
def _resolves(prev, a, mask):
    """Does action ``a`` resolve the non-chord tone ``prev``: a note 1 or 2 semitones away
    that is a tone of the chord ``mask`` sounding at the action?"""
    return a >= FIRST_NOTE_CLASS and 1 <= abs(a - prev) <= MAX_RESOLUTION_STEP and _in_mask(mask, a)


@njit(cache=True)
def _harmony_kernel(comps, beat, action, chord_of, chord_mask, chord_root, neighbour,
                    num_notes, out):  # fmt: skip
    """The five harmony rules for every row; returns the first bad row or -1."""
    for b in range(comps.shape[0]):
        n = beat[b]
        a = action[b]
        if n < 0 or n >= num_notes or n > comps.shape[1] or a < 0 or a >= NUM_CLASSES:
            return b
        c = chord_of[b, n]
        mask = chord_mask[c]
        # last non-hold entry before the action (-1: none)
        i = n - 1
        while i >= 0 and comps[b, i] == NO_EVENT:
            i -= 1
        prev = np.int64(comps[b, i]) if i >= 0 else np.int64(-1)
        sounding = a if a >= FIRST_NOTE_CLASS else (prev if a == NO_EVENT else -1)
        tone = 0.0
        clash = 0.0
        if _is_strong(n) and sounding >= FIRST_NOTE_CLASS:
            if _in_mask(mask, sounding):
                tone = CHORD_TONE_REWARD
            else:
                tone = -CHORD_TONE_REWARD
                if _in_mask(mask, sounding - 1):
                    clash = CLASH_PENALTY
        resolution = 0.0
        if (
            a != NO_EVENT
            and prev >= FIRST_NOTE_CLASS
            and not _in_mask(chord_mask[chord_of[b, i]], prev)
        ):
            resolution = 0.0 if _resolves(prev, a, mask) else UNRESOLVED_PENALTY
        cadence = 0.0
        if n == num_notes - 1:
            last = a
            j = n - 1
            while last < FIRST_NOTE_CLASS and j >= 0:
                last = np.int64(comps[b, j])
                j -= 1
            if last < FIRST_NOTE_CLASS:
                cadence = CADENCE_PENALTY
            elif (last + _PC_OFFSET) % 12 == chord_root[c]:
                cadence = CADENCE_ROOT_REWARD
            elif _in_mask(mask, last):
                cadence = CADENCE_TONE_REWARD
            else:
                cadence = CADENCE_PENALTY
        out[b, _CHORD_TONE] = tone
        out[b, _CLASH] = clash
        out[b, _RESOLUTION] = resolution
        out[b, _CADENCE] = cadence
        out[b, _NEIGHBOUR_KEYS] = neighbour[a]
    return -1


def harmony_step_into(
    compositions: np.ndarray,
    beat: np.ndarray,
    action: np.ndarray,
    chord_of: np.ndarray,
    tables: HarmonyTables,
    key: Key,
    out: np.ndarray,
) -> None:
    """Allocation-free :func:`harmony_step` for the hot loop: writes the ``(B, 5)`` rule values
    into ``out`` (float64). Arrays must have the kernel's dtypes (``compositions`` int8,
    ``beat``/``action``/``chord_of`` int64; others trigger a new compilation). Raises
    ``ValueError`` for mismatched shapes, and naming the row for a beat outside ``0..N-1`` or
    an action outside 0..37. The chord rows in ``chord_of`` are not checked (the kernel trusts
    them to index ``tables``)."""
    b = compositions.shape[0]
    if chord_of.shape[0] != b or chord_of.shape[1] < tables.num_notes or out.shape[0] != b:
        raise ValueError(
            f"harmony_step: {b} compositions need chord_of of shape ({b}, {tables.num_notes}) "
            f"and out of ({b}, {len(HARMONY_RULE_NAMES)}); got {chord_of.shape} and {out.shape}"
        )
    bad = _harmony_kernel(
        compositions, beat, action, chord_of, tables.chord_mask, tables.chord_root,
        neighbour_key_values(key), tables.num_notes, out,
    )  # fmt: skip
    if bad >= 0:
        raise ValueError(
            f"harmony_step: row {bad} has beat {int(beat[bad])} (composition length "
            f"{tables.num_notes}) and action {int(action[bad])} (classes 0..{NUM_CLASSES - 1})"
        )


def harmony_step(
    compositions: np.ndarray,
    beat: np.ndarray,
    action: np.ndarray,
    chord_of: np.ndarray,
    tables: HarmonyTables,
    key: Key,
) -> np.ndarray:
    """The harmony rules for one step of ``B`` compositions.

    Args:
        compositions: ``(B, W)`` int, row ``b`` holds the notes played so far in
            ``[:beat[b]]`` (the rest is ignored).
        beat: ``(B,)`` the step the action is played at (``0..N-1``, ``N = tables.num_notes``).
        action: ``(B,)`` the class played (0..37).
        chord_of: ``(B, N)`` row of ``tables``' chord arrays sounding at each step, per row
            (e.g. ``tables.steps[progression_of_row]``).
        tables: the chords; key: the key of the ``neighbour_keys`` rule.

    Returns ``(B, 5)`` float64, columns in :data:`HARMONY_RULE_NAMES` order (unweighted).
    """
    comps = np.ascontiguousarray(compositions, dtype=np.int8)
    out = np.empty((comps.shape[0], len(HARMONY_RULE_NAMES)), dtype=np.float64)
    harmony_step_into(
        comps, np.ascontiguousarray(beat, dtype=np.int64),
        np.ascontiguousarray(action, dtype=np.int64),
        np.ascontiguousarray(chord_of, dtype=np.int64), tables, key, out,
    )  # fmt: skip
    return out


def reference_harmony_step(
    composition: Sequence[int],
    action: int,
    chord_row: Sequence[int],
    tables: HarmonyTables,
    key: Key,
) -> dict[str, float]:
    """The harmony rules for one composition, in plain Python: the oracle of the tests and the
    readable definition (docs/rules.md#harmony-rules). ``composition`` = the classes played so
    far, ``chord_row[t]`` = the row of ``tables.chords`` sounding at step ``t``."""
    comp = [int(e) for e in composition]
    t, a, n = len(comp), int(action), tables.num_notes
    chords = [tables.chords[int(c)] for c in chord_row]

    def pc(cls: int) -> int:
        return (cls + _PC_OFFSET) % 12

    def is_chord_tone(cls: int, step: int) -> bool:
        return pc(cls) in chords[step].pitch_classes

    held = [e for e in comp if e != NO_EVENT]
    prev = held[-1] if held else None  # the last non-hold entry
    prev_step = max(i for i, e in enumerate(comp) if e != NO_EVENT) if held else None
    if a >= FIRST_NOTE_CLASS:
        sounding = a
    elif a == NO_EVENT and prev is not None and prev >= FIRST_NOTE_CLASS:
        sounding = prev
    else:
        sounding = None
    values = dict.fromkeys(HARMONY_RULE_NAMES, 0.0)
    if t % STEPS_PER_BAR in STRONG_BEATS and sounding is not None:
        if is_chord_tone(sounding, t):
            values["chord_tone"] = CHORD_TONE_REWARD
        else:
            values["chord_tone"] = -CHORD_TONE_REWARD
            if pc(sounding - 1) in chords[t].pitch_classes:
                values["clash"] = CLASH_PENALTY
    if a != NO_EVENT and prev is not None and prev >= FIRST_NOTE_CLASS:
        if not is_chord_tone(prev, prev_step):
            by_step = a >= FIRST_NOTE_CLASS and abs(a - prev) in range(1, MAX_RESOLUTION_STEP + 1)
            ok = by_step and is_chord_tone(a, t)
            values["resolution"] = 0.0 if ok else UNRESOLVED_PENALTY
    if t == n - 1:
        notes = [e for e in [*comp, a] if e >= FIRST_NOTE_CLASS]
        final = chords[t]
        if not notes or pc(notes[-1]) not in final.pitch_classes:
            values["cadence"] = CADENCE_PENALTY
        elif pc(notes[-1]) == final.root:
            values["cadence"] = CADENCE_ROOT_REWARD
        else:
            values["cadence"] = CADENCE_TONE_REWARD
    if a >= FIRST_NOTE_CLASS and pc(a) not in key.scale_pitch_classes:
        up = Key((key.tonic + _FIFTH) % 12, key.mode).scale_pitch_classes
        down = Key((key.tonic - _FIFTH) % 12, key.mode).scale_pitch_classes
        near = pc(a) in up or pc(a) in down
        values["neighbour_keys"] = NEIGHBOUR_KEY_PENALTY if near else OUT_OF_KEYS_PENALTY
    return values


# --------------------------------------------------------------------------- statistics
HARMONY_STAT_NAMES: tuple[str, ...] = (
    "strong_beat_chord_tones",
    "clashes",
    "non_chord_tones",
    "unresolved_non_chord_tones",
    "cadence",
    "cadence_root",
)
# counter columns of the statistics kernel
(_N_STRONG, _N_STRONG_TONE, _N_CLASH, _N_ONSETS, _N_NCT, _N_UNRESOLVED, _N_CADENCE,
 _N_CADENCE_ROOT) = range(8)  # fmt: skip


@njit(cache=True)
def _stats_kernel(comps, chord_of, chord_mask, chord_root, counts):
    """Add each composition's harmony counts (the ``_N_*`` columns) into ``counts``."""
    m_rows, n = comps.shape
    for m in range(m_rows):
        last_event = -1  # last non-hold entry so far
        pending = -1  # an unresolved non-chord-tone onset waiting for the next event
        last_note = -1
        for t in range(n):
            e = np.int64(comps[m, t])
            mask = chord_mask[chord_of[m, t]]
            if e != NO_EVENT:
                if pending >= 0:
                    if not _resolves(pending, e, mask):
                        counts[_N_UNRESOLVED] += 1
                    pending = -1
                last_event = e
                if e >= FIRST_NOTE_CLASS:
                    last_note = e
                    counts[_N_ONSETS] += 1
                    if not _in_mask(mask, e):
                        counts[_N_NCT] += 1
                        pending = e
            if _is_strong(t) and last_event >= FIRST_NOTE_CLASS:
                counts[_N_STRONG] += 1
                if _in_mask(mask, last_event):
                    counts[_N_STRONG_TONE] += 1
                elif _in_mask(mask, last_event - 1):
                    counts[_N_CLASH] += 1
        if pending >= 0:
            counts[_N_UNRESOLVED] += 1  # the last onset: never resolved
        if last_note >= FIRST_NOTE_CLASS and n > 0:
            c = chord_of[m, n - 1]
            if _in_mask(chord_mask[c], last_note):
                counts[_N_CADENCE] += 1
                if (last_note + _PC_OFFSET) % 12 == chord_root[c]:
                    counts[_N_CADENCE_ROOT] += 1


def harmony_statistics(
    compositions: np.ndarray, chord_of: np.ndarray, tables: HarmonyTables
) -> dict[str, float]:
    """Harmony statistics of ``M`` whole compositions, with the rules' definitions
    (docs/rules.md#harmony-statistics).

    Args:
        compositions: ``(M, N)`` classes.
        chord_of: ``(M, N)`` (or broadcastable to it, e.g. ``tables.steps[p]``) row of
            ``tables``' chord arrays at each step.

    Returns the shares (0..1) named in :data:`HARMONY_STAT_NAMES`: ``strong_beat_chord_tones``
    and ``clashes`` of the notes sounding on strong beats; ``non_chord_tones`` of the onsets;
    ``unresolved_non_chord_tones`` of the non-chord-tone onsets (the last onset of a
    composition is unresolved); ``cadence`` / ``cadence_root`` of the compositions (no note
    counts as neither). A share of nothing is NaN.
    """
    comps = np.asarray(compositions)
    if comps.ndim != 2:
        raise ValueError(f"compositions must be (M, N), got shape {comps.shape}")
    comps = np.ascontiguousarray(comps, dtype=np.int8)
    rows = np.ascontiguousarray(np.broadcast_to(chord_of, comps.shape), dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= tables.chord_mask.size):
        raise ValueError("chord_of holds rows outside the tables' chords")
    counts = np.zeros(8, dtype=np.int64)
    _stats_kernel(comps, rows, tables.chord_mask, tables.chord_root, counts)

    def share(num: int, den: int) -> float:
        return float(counts[num]) / float(counts[den]) if counts[den] else float("nan")

    m = comps.shape[0]
    return {
        "strong_beat_chord_tones": share(_N_STRONG_TONE, _N_STRONG),
        "clashes": share(_N_CLASH, _N_STRONG),
        "non_chord_tones": share(_N_NCT, _N_ONSETS),
        "unresolved_non_chord_tones": share(_N_UNRESOLVED, _N_NCT),
        "cadence": float(counts[_N_CADENCE]) / m if m else float("nan"),
        "cadence_root": float(counts[_N_CADENCE_ROOT]) / m if m else float("nan"),
    }
