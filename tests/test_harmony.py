"""Tests of chord symbols, progressions, the harmony rules and the harmony statistics
(``rltuner.harmony``; definitions in docs/rules.md, section "Harmony rules").

Pitch classes: C = 0 .. B = 11; melody class ``a`` has pitch class ``(a + 10) % 12``
(C4 = class 14, D4 = 16, E4 = 18, F4 = 19, G4 = 21, A4 = 23, B4 = 25, C5 = 26).
"""

from __future__ import annotations

import pytest

from rltuner.errors import RltunerError
from rltuner.harmony import (
    CHORD_QUALITIES,
    COMMON_PROGRESSIONS,
    QUALITY_ALIASES,
    HarmonyTables,
    check_fits,
    parse_chord,
    parse_progression,
    read_progressions,
)

ROOTS = ("C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B")
# music21's spelling of each canonical quality (its roots write a flat as '-')
M21_QUALITY = {
    "major": "", "minor": "m", "dim": "dim", "aug": "+", "sus2": "sus2", "sus4": "sus4",
    "7": "7", "maj7": "maj7", "m7": "m7", "m7b5": "m7b5", "dim7": "dim7", "6": "6", "m6": "m6",
}  # fmt: skip


def m21_root(name: str) -> str:
    return name[0] + name[1:].replace("b", "-")


# --------------------------------------------------------------------------- chord symbols
def test_every_quality_has_a_music21_spelling_and_an_alias():
    assert set(M21_QUALITY) == set(CHORD_QUALITIES) == set(QUALITY_ALIASES.values())


@pytest.mark.parametrize("alias", sorted(QUALITY_ALIASES))
def test_every_root_and_quality_agrees_with_music21(alias):
    harmony = pytest.importorskip("music21.harmony")
    for root in ROOTS:
        chord = parse_chord(root + alias)
        ref = harmony.ChordSymbol(m21_root(root) + M21_QUALITY[QUALITY_ALIASES[alias]])
        assert set(chord.pitch_classes) == set(ref.pitchClasses), root + alias
        assert chord.root == ref.root().pitchClass
        assert chord.bass == chord.root
        assert chord.pitch_classes[0] == chord.root
        assert len(set(chord.pitch_classes)) == len(chord.pitch_classes)
        # root first, then upwards
        steps = [(pc - chord.root) % 12 for pc in chord.pitch_classes]
        assert steps == sorted(steps)


@pytest.mark.parametrize("symbol", ["C/E", "C/G", "Am/G", "C/F#", "G7/B", "Fmaj7/E", "Dm/Bb",
                                    "Bbm7/Ab", "E/G#", "C/Db"])  # fmt: skip
def test_slash_chords_agree_with_music21(symbol):
    harmony = pytest.importorskip("music21.harmony")
    chord = parse_chord(symbol)
    head, bass = symbol.split("/")
    r = head[:2] if len(head) > 1 and head[1] in "#b" else head[:1]
    m21 = m21_root(r) + M21_QUALITY[QUALITY_ALIASES[head[len(r) :]]] + "/" + m21_root(bass)
    ref = harmony.ChordSymbol(m21)
    assert set(chord.pitch_classes) == set(ref.pitchClasses)
    assert chord.root == ref.root().pitchClass
    assert chord.bass == ref.bass().pitchClass


def test_hand_worked_chords():
    assert parse_chord("C").pitch_classes == (0, 4, 7)
    assert parse_chord("Am").pitch_classes == (9, 0, 4)
    assert parse_chord("G7").pitch_classes == (7, 11, 2, 5)
    assert parse_chord("Fmaj7").pitch_classes == (5, 9, 0, 4)
    assert parse_chord("Bdim").pitch_classes == (11, 2, 5)
    assert parse_chord("Csus4").pitch_classes == (0, 5, 7)
    assert parse_chord("Bbm7b5").pitch_classes == (10, 1, 4, 8)
    c_e = parse_chord("C/E")
    assert (c_e.root, c_e.bass, c_e.pitch_classes, c_e.symbol) == (0, 4, (0, 4, 7), "C/E")
    # a bass outside the chord joins it
    c_fs = parse_chord(" C/F# ")
    assert (c_fs.root, c_fs.bass, c_fs.pitch_classes, c_fs.symbol) == (0, 6, (0, 4, 6, 7), "C/F#")
    assert parse_chord("Cb").root == 11 and parse_chord("B#").root == 0
    assert parse_chord("C♯m").pitch_classes == (1, 4, 8)
    assert parse_chord("C").mask == (1 << 0) | (1 << 4) | (1 << 7)


@pytest.mark.parametrize("bad", ["", " ", "H", "c", "Cmaj9", "Cx", "C#b", "C/", "C/H", "C/Em",
                                 "C//E", "Am7sus", "7", "C G"])  # fmt: skip
def test_unknown_symbols_give_one_clear_error(bad):
    with pytest.raises(RltunerError) as e:
        parse_chord(bad)
    msg = str(e.value)
    assert "\n" not in msg and repr(bad) in msg and "unknown chord symbol" in msg


# --------------------------------------------------------------------------- progressions
def test_progression_one_chord_per_chord_steps():
    p = parse_progression("C G Am F")
    assert [c.symbol for c in p.chords] == ["C", "G", "Am", "F"]
    assert p.durations == (8, 8, 8, 8)
    assert parse_progression("C G Am F", chord_steps=16).durations == (16, 16, 16, 16)
    # repeated to fill the composition
    idx = parse_progression("C G").chord_index(40)
    assert idx.tolist() == [0] * 8 + [1] * 8 + [0] * 8 + [1] * 8 + [0] * 8


def test_progression_with_bar_lines():
    p = parse_progression("| C G | Am | F G7 Em Dm |", chord_steps=3)
    assert [c.symbol for c in p.chords] == ["C", "G", "Am", "F", "G7", "Em", "Dm"]
    assert p.durations == (8, 8, 16, 4, 4, 4, 4)
    assert p.length == 48


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty chord progression"),
        ("   ", "empty chord progression"),
        ("C G Am F F | G", "bar 1 has 5 chords"),
        ("C || G", "bar 2 has no chord"),
        ("C G Xm F", "unknown chord symbol 'Xm'"),
    ],
)
def test_progression_errors(text, words):
    with pytest.raises(RltunerError) as e:
        parse_progression(text, where="--chords")
    assert str(e.value).startswith("--chords: ") and words in str(e.value)


def test_progression_bar_of_four_and_three():
    assert parse_progression("C G A F |").durations == (4, 4, 4, 4)
    with pytest.raises(RltunerError, match="bar 1 has 3 chords"):
        parse_progression("C G Am | F")


@pytest.mark.parametrize("steps", [0, -8, 2.5, True, "8"])
def test_bad_chord_steps(steps):
    with pytest.raises(RltunerError, match="chord steps"):
        parse_progression("C G", chord_steps=steps)


def test_check_fits():
    p = parse_progression("C G Am F")  # 32 steps
    check_fits(p, 32)
    check_fits(p, 33)
    with pytest.raises(RltunerError) as e:
        check_fits(p, 31, where="--chords")
    msg = str(e.value)
    assert msg.startswith("--chords: ") and "32 steps" in msg and "31" in msg


def test_common_progressions_are_diatonic_four_chord_triads_of_c_major():
    c_major = {0, 2, 4, 5, 7, 9, 11}
    assert len(COMMON_PROGRESSIONS) >= 6 and len(set(COMMON_PROGRESSIONS)) == len(
        COMMON_PROGRESSIONS
    )
    for text in COMMON_PROGRESSIONS:
        p = parse_progression(text)
        assert len(p.chords) == 4 and p.length == 32
        for c in p.chords:
            assert len(c.pitch_classes) == 3 and set(c.pitch_classes) <= c_major
    tables = HarmonyTables.build([parse_progression(t) for t in COMMON_PROGRESSIONS], 32)
    assert tables.steps.shape == (len(COMMON_PROGRESSIONS), 32)


def test_read_progressions(tmp_path):
    f = tmp_path / "chords.txt"
    f.write_text("# my progressions\nC G Am F   # the four-chord song\n\n  F# C#m | D E  \n")
    progs = read_progressions(f, chord_steps=16)
    assert [p.symbols() for p in progs] == ["C G Am F", "F# C#m D E"]
    assert progs[0].durations == (16,) * 4 and progs[1].durations == (8,) * 4
    # a byte-order mark is fine
    f.write_bytes("\ufeffC F".encode())
    assert read_progressions(f)[0].symbols() == "C F"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "no chord progression in the file"),
        (b"# only a comment\n\n", "no chord progression in the file"),
        (b"C G\nC Q\n", "line 2: unknown chord symbol 'Q'"),
        (b"C G\n\xff\xfeC\n", "not a UTF-8 text file"),
        (b"C G Am | F\n", "line 1: bar 1 has 3 chords"),
    ],
)
def test_read_progressions_errors(tmp_path, content, words):
    f = tmp_path / "chords.txt"
    f.write_bytes(content)
    with pytest.raises(RltunerError) as e:
        read_progressions(f)
    msg = str(e.value)
    assert msg.startswith(str(f)) and words in msg and "\n" not in msg


def test_read_progressions_missing_or_folder(tmp_path):
    with pytest.raises(RltunerError, match="no such chord progression file"):
        read_progressions(tmp_path / "nope.txt")
    with pytest.raises(RltunerError, match="is a folder"):
        read_progressions(tmp_path)
