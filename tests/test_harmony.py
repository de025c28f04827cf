"""Tests of chord symbols, progressions, the harmony rules and the harmony statistics
(``rltuner.harmony``; definitions in docs/rules.md, section "Harmony rules").

Pitch classes: C = 0 .. B = 11; melody class ``a`` has pitch class ``(a + 10) % 12``
(C4 = class 14, D4 = 16, E4 = 18, F4 = 19, G4 = 21, A4 = 23, B4 = 25, C5 = 26).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rltuner.encoding import C_MAJOR, Key
from rltuner.errors import RltunerError
from rltuner.harmony import (
    CHORD_QUALITIES,
    COMMON_PROGRESSIONS,
    DEFAULT_HARMONY_WEIGHTS,
    HARMONY_RULE_NAMES,
    HARMONY_STAT_NAMES,
    QUALITY_ALIASES,
    HarmonyTables,
    Progression,
    check_fits,
    harmony_statistics,
    harmony_step,
    harmony_step_into,
    neighbour_key_values,
    parse_chord,
    parse_progression,
    read_progressions,
    reference_harmony_step,
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


# --------------------------------------------------------------------------- harmony rules
# "C G Am F", half a bar each, N = 32: C on steps 0-7, G 8-15, Am 16-23, F 24-31.
C4, CS4, D4, DS4, E4, F4, FS4, G4, GS4, A4, BB4, B4, C5 = range(14, 27)
FOUR = "C G Am F"
_TABLES: dict[tuple[str, int], HarmonyTables] = {}


def tables_for(text: str = FOUR, n: int = 32) -> HarmonyTables:
    if (text, n) not in _TABLES:
        _TABLES[(text, n)] = HarmonyTables.build([parse_progression(text)], n)
    return _TABLES[(text, n)]


def rules(comp, action, text=FOUR, n=32, key=C_MAJOR) -> dict[str, float]:
    """The rules for one step through the kernel and the reference; asserts they agree."""
    tables = tables_for(text, n)
    ref = reference_harmony_step(comp, action, tables.steps[0], tables, key)
    row = np.zeros((1, n), dtype=np.int8)
    row[0, : len(comp)] = comp
    got = harmony_step(
        row, np.array([len(comp)]), np.array([action]), tables.steps[:1], tables, key
    )
    assert got.shape == (1, len(HARMONY_RULE_NAMES))
    assert dict(zip(HARMONY_RULE_NAMES, got[0].tolist(), strict=True)) == ref
    return ref


def test_names_and_default_weights():
    assert HARMONY_RULE_NAMES == ("chord_tone", "clash", "resolution", "cadence", "neighbour_keys")
    assert DEFAULT_HARMONY_WEIGHTS == {
        "chord_tone": 1.0, "clash": 1.0, "resolution": 1.0, "cadence": 1.0, "neighbour_keys": 0.0
    }  # fmt: skip


def test_chord_tone_and_clash_on_strong_beats():
    assert rules([], E4) == {"chord_tone": 3.0, "clash": 0.0, "resolution": 0.0,
                             "cadence": 0.0, "neighbour_keys": 0.0}  # fmt: skip
    r = rules([], D4)  # D over C: not a chord tone, but C# is no chord tone either
    assert (r["chord_tone"], r["clash"]) == (-3.0, 0.0)
    r = rules([], F4)  # F a semitone above E
    assert (r["chord_tone"], r["clash"]) == (-3.0, -3.0)
    r = rules([], CS4)  # C# a semitone above C, and outside both neighbouring keys
    assert (r["chord_tone"], r["clash"], r["neighbour_keys"]) == (-3.0, -3.0, -1.0)
    # a hold or note-off at t = 0 sounds nothing
    assert rules([], 1)["chord_tone"] == 0.0
    assert rules([], 0)["chord_tone"] == 0.0
    # weak beats score nothing, whatever the note
    assert rules([C4, 1, 1], CS4)["chord_tone"] == 0.0
    assert rules([C4, 1, 1], CS4)["clash"] == 0.0
    # step 8 (beat 3) over G: G B D
    assert rules([C4] + [1] * 7, B4)["chord_tone"] == 3.0
    # strong beat 16 (over Am) and 24 (over F)
    assert rules([C4] + [1] * 15, A4)["chord_tone"] == 3.0
    r = rules([C4] + [1] * 23, BB4)  # Bb a semitone above A, over F
    assert (r["chord_tone"], r["clash"], r["neighbour_keys"]) == (-3.0, -3.0, -0.5)


def test_holds_across_a_strong_beat_keep_the_note_sounding():
    assert rules([G4] + [1] * 7, 1)["chord_tone"] == 3.0  # G held into the G chord
    r = rules([C4] + [1] * 7, 1)  # C held into G: a semitone above B
    assert (r["chord_tone"], r["clash"]) == (-3.0, -3.0)
    r = rules([E4, 1, 1, F4, 1, 1, 1, 1], 1)  # F (onset at 3) held into G
    assert (r["chord_tone"], r["clash"]) == (-3.0, 0.0)
    # a rest before the strong beat: nothing sounds
    assert rules([E4, 0, 1, 1, 1, 1, 1, 1], 1)["chord_tone"] == 0.0
    assert rules([E4] + [1] * 7, 0)["chord_tone"] == 0.0


def test_resolution_of_non_chord_tones():
    # resolved: no penalty (and no bonus)
    assert rules([C4, D4], E4)["resolution"] == 0.0  # passing tone C D E
    assert rules([C4, D4], C4)["resolution"] == 0.0  # neighbour tone C D C
    assert rules([C4, D4, 1, 1], E4)["resolution"] == 0.0  # holds in between
    assert rules([C4, D4], F4)["resolution"] == -2.0  # three semitones: a leap
    assert rules([C4, D4], G4)["resolution"] == -2.0
    assert rules([C4, D4], DS4)["resolution"] == -2.0  # by step, but no chord tone
    assert rules([C4, D4], 0)["resolution"] == -2.0  # broken off by a rest
    assert rules([C4, D4], 1)["resolution"] == 0.0  # a hold decides nothing yet
    assert rules([C4, D4], D4)["resolution"] == -2.0  # repeated: 0 semitones
    assert rules([C4, E4], G4)["resolution"] == 0.0  # the previous onset was a chord tone
    assert rules([D4, 0, 1], C4)["resolution"] == 0.0  # a rest stops the walk back
    assert rules([], C4)["resolution"] == 0.0
    # resolved into the next chord: F over C at step 7, G (a tone of G) at step 8
    r = rules([C4, 1, 1, 1, 1, 1, 1, F4], G4)
    assert (r["resolution"], r["chord_tone"]) == (0.0, 3.0)
    r = rules([C4, 1, 1, 1, 1, 1, 1, F4], E4)  # E is a step away but not a tone of G
    assert (r["resolution"], r["chord_tone"], r["clash"]) == (-2.0, -3.0, 0.0)
    # the previous onset is judged against the chord at its own step: B over C (step 7) is a
    # non-chord tone even though B belongs to the G that follows
    assert rules([C4, 1, 1, 1, 1, 1, 1, B4], A4)["resolution"] == -2.0
    assert rules([C4, 1, 1, 1, 1, 1, 1, B4], B4 - 2)["resolution"] == -2.0  # A: not in G
    assert rules([C4, 1, 1, 1, 1, 1, 1, B4], C5 + 2)["resolution"] == -2.0  # a leap


def test_cadence_on_the_final_step_only():
    comp = [C4] + [1] * 30  # the action is played at step 31, over F (F A C)
    assert rules(comp, F4)["cadence"] == 5.0
    assert rules(comp, A4)["cadence"] == 3.0
    assert rules(comp, C5)["cadence"] == 3.0
    assert rules(comp, G4)["cadence"] == -3.0
    assert rules(comp, 1)["cadence"] == 3.0  # C held to the end: a tone of F
    assert rules(comp, 0)["cadence"] == 3.0  # trailing rests are ignored
    assert rules([F4] + [0] + [1] * 29, 0)["cadence"] == 5.0
    assert rules([1] * 31, 1)["cadence"] == -3.0  # no note at all
    assert rules([0] * 31, 0)["cadence"] == -3.0
    assert rules([C4] + [1] * 29, F4)["cadence"] == 0.0  # step 30 is not the last
    # the root of a slash chord is its root, not its bass
    assert rules([C4] + [1] * 14, 1, text="G C/E", n=16)["cadence"] == 5.0
    assert rules([E4] + [1] * 14, 1, text="G C/E", n=16)["cadence"] == 3.0
    # a one-step composition: its only step is the last
    assert rules([], F4, text="F", n=1)["cadence"] == 5.0


def test_neighbour_keys():
    c = neighbour_key_values(C_MAJOR)
    assert c[0] == c[1] == 0.0
    # C major's neighbours G major (F#) and F major (Bb)
    for cls, value in [(C4, 0), (CS4, -1), (D4, 0), (DS4, -1), (E4, 0), (F4, 0), (FS4, -0.5),
                       (G4, 0), (GS4, -1), (A4, 0), (BB4, -0.5), (B4, 0)]:  # fmt: skip
        for octave in (-12, 0, 12):
            if 2 <= cls + octave <= 37:
                assert c[cls + octave] == value, (cls + octave, value)
    # A minor: the same notes (E minor adds F#, D minor Bb)
    assert np.array_equal(neighbour_key_values(Key(9, "minor")), c)
    g = neighbour_key_values(Key.parse("G major"))  # D major adds C#, C major F
    assert (g[CS4], g[F4], g[BB4], g[FS4]) == (-0.5, -0.5, -1.0, 0.0)
    assert rules([], FS4)["neighbour_keys"] == -0.5
    assert rules([], 0)["neighbour_keys"] == 0.0
    assert rules([], BB4, key=Key.parse("G major"))["neighbour_keys"] == -1.0
    assert not c.flags.writeable


def test_harmony_step_into_writes_and_rejects_bad_rows():
    tables = tables_for()
    comps = np.zeros((2, 32), dtype=np.int8)
    out = np.full((2, 5), 99.0)
    rows = np.ascontiguousarray(tables.steps[[0, 0]])
    harmony_step_into(comps, np.array([0, 0]), np.array([E4, F4]), rows, tables, C_MAJOR, out)
    assert out[:, 0].tolist() == [3.0, -3.0] and out[:, 1].tolist() == [0.0, -3.0]
    with pytest.raises(ValueError, match="row 1"):
        harmony_step_into(comps, np.array([0, 32]), np.array([E4, F4]), rows, tables, C_MAJOR, out)
    with pytest.raises(ValueError, match="row 0"):
        harmony_step_into(comps, np.array([0, 0]), np.array([38, F4]), rows, tables, C_MAJOR, out)
    with pytest.raises(ValueError, match="chord_of of shape"):
        harmony_step_into(comps, np.array([0, 0]), np.array([E4, F4]), rows[:1], tables, C_MAJOR,
                          out)  # fmt: skip
    with pytest.raises(ValueError, match="chord_of of shape"):
        harmony_step_into(comps, np.array([0, 0]), np.array([E4, F4]), rows[:, :16], tables,
                          C_MAJOR, out)  # fmt: skip


_SYMBOLS = ("C", "G", "Am", "F", "Em", "Dm", "G7", "Bdim", "Fmaj7", "C/E", "Csus4", "E", "Bb")


@st.composite
def _progressions(draw):
    k = draw(st.integers(1, 5))
    chords = tuple(parse_chord(draw(st.sampled_from(_SYMBOLS))) for _ in range(k))
    durations = tuple(draw(st.integers(1, 12)) for _ in range(k))
    return Progression(chords, durations)


# melody-like entries: many holds and rests, notes around the middle
_ENTRY = st.one_of(st.sampled_from([0, 1, 1, 1]), st.integers(2, 37), st.integers(12, 28))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batched_kernel_equals_reference(data):
    n = data.draw(st.sampled_from([1, 8, 16, 32, 40]))
    progs = data.draw(st.lists(_progressions(), min_size=1, max_size=3))
    tables = HarmonyTables.build(progs, n)
    key = Key(data.draw(st.integers(0, 11)), data.draw(st.sampled_from(["major", "minor"])))
    b = data.draw(st.integers(1, 6))
    comps = np.zeros((b, n), dtype=np.int8)
    beat = np.zeros(b, dtype=np.int64)
    action = np.zeros(b, dtype=np.int64)
    chord_of = np.zeros((b, n), dtype=np.int64)
    for i in range(b):
        t = data.draw(st.integers(0, n - 1))
        beat[i] = t
        comps[i, :t] = data.draw(st.lists(_ENTRY, min_size=t, max_size=t))
        comps[i, t:] = data.draw(st.integers(0, 37))  # what lies after must not matter
        action[i] = data.draw(_ENTRY)
        if data.draw(st.booleans()):
            chord_of[i] = tables.steps[data.draw(st.integers(0, len(progs) - 1))]
        else:  # any chord at any step
            chord_of[i] = data.draw(
                st.lists(st.integers(0, len(tables.chords) - 1), min_size=n, max_size=n)
            )
    got = harmony_step(comps, beat, action, chord_of, tables, key)
    for i in range(b):
        comp = comps[i, : beat[i]].tolist()
        ref = reference_harmony_step(comp, int(action[i]), chord_of[i], tables, key)
        assert got[i].tolist() == [ref[name] for name in HARMONY_RULE_NAMES], (i, comp, action[i])


# --------------------------------------------------------------------------- statistics
def test_statistics_hand_worked():
    tables = tables_for()
    comp = [1] * 32
    comp[0] = C4  # strong, a chord tone
    comp[4] = F4  # a non-chord tone over C ...
    comp[5] = E4  # ... resolved by step
    # step 8: E still sounding over G: not a chord tone, no clash (D# is not in G)
    comp[9] = B4
    comp[16] = 0  # strong, but a rest
    comp[24] = BB4  # strong, over F: a non-chord tone clashing with A ...
    comp[25] = 0  # ... left by a rest: unresolved
    comp[31] = F4  # the final note: the root of F
    stats = harmony_statistics(np.array([comp]), tables.steps[:1], tables)
    assert list(stats) == list(HARMONY_STAT_NAMES)
    assert stats["strong_beat_chord_tones"] == 1 / 3  # C yes; E over G no; Bb no
    assert stats["clashes"] == 1 / 3
    assert stats["non_chord_tones"] == 2 / 6  # F and Bb of C F E B Bb F
    assert stats["unresolved_non_chord_tones"] == 1 / 2
    assert stats["cadence"] == 1.0 and stats["cadence_root"] == 1.0
    # the same composition, ending on A (a tone of F, not its root)
    comp[31] = A4
    stats = harmony_statistics(np.array([comp]), tables.steps[0], tables)
    assert stats["cadence"] == 1.0 and stats["cadence_root"] == 0.0
    # a non-chord tone as the last onset is unresolved
    comp[31] = G4
    stats = harmony_statistics(np.array([comp]), tables.steps[0], tables)
    assert stats["cadence"] == 0.0 and stats["unresolved_non_chord_tones"] == 2 / 3


def test_statistics_of_identical_batches_and_no_notes():
    tables = tables_for()
    rng = np.random.default_rng(0)
    one = rng.integers(0, 38, size=(1, 32)).astype(np.int8)
    a = harmony_statistics(one, tables.steps[0], tables)
    b = harmony_statistics(np.repeat(one, 50, axis=0), tables.steps[0], tables)
    assert a == b
    silent = np.array([[0] * 32, [1] * 32, [0, 1] * 16])
    s = harmony_statistics(silent, tables.steps[0], tables)
    for name in ("strong_beat_chord_tones", "clashes", "non_chord_tones",
                 "unresolved_non_chord_tones"):  # fmt: skip
        assert math.isnan(s[name])
    assert s["cadence"] == 0.0 and s["cadence_root"] == 0.0
    empty = harmony_statistics(np.zeros((0, 32), dtype=np.int8), tables.steps[0], tables)
    assert all(math.isnan(v) for v in empty.values())


def _stats_from_reference(comps, chord_of, tables) -> dict[str, float]:
    """The statistics by replaying every step through the reference rules."""
    n_strong = n_tone = n_clash = n_onsets = n_nct = n_unresolved = n_cad = n_root = 0
    for comp, row in zip(comps.tolist(), chord_of.tolist(), strict=True):
        pending = False
        for t, e in enumerate(comp):
            r = reference_harmony_step(comp[:t], e, row, tables, C_MAJOR)
            if r["chord_tone"] != 0:
                n_strong += 1
                n_tone += r["chord_tone"] > 0
                n_clash += r["clash"] < 0
            n_unresolved += r["resolution"] < 0
            if e != 1:
                pending = False
            if e >= 2:
                n_onsets += 1
                if (e + 10) % 12 not in tables.chords[row[t]].pitch_classes:
                    n_nct += 1
                    pending = True
            if t == len(comp) - 1:
                n_cad += r["cadence"] > 0
                n_root += r["cadence"] == 5.0
        n_unresolved += pending  # a non-chord tone that nothing followed

    def share(a: int, b: int) -> float:
        return a / b if b else math.nan

    m = len(comps)
    return {
        "strong_beat_chord_tones": share(n_tone, n_strong),
        "clashes": share(n_clash, n_strong),
        "non_chord_tones": share(n_nct, n_onsets),
        "unresolved_non_chord_tones": share(n_unresolved, n_nct),
        "cadence": share(n_cad, m),
        "cadence_root": share(n_root, m),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_statistics_agree_with_the_reference_rules(data):
    n = data.draw(st.sampled_from([1, 9, 16, 32]))
    progs = data.draw(st.lists(_progressions(), min_size=1, max_size=3))
    tables = HarmonyTables.build(progs, n)
    m = data.draw(st.integers(1, 8))
    comps = np.array(
        [data.draw(st.lists(_ENTRY, min_size=n, max_size=n)) for _ in range(m)], dtype=np.int8
    )
    chord_of = tables.steps[data.draw(st.lists(st.integers(0, len(progs) - 1), min_size=m,
                                               max_size=m))]  # fmt: skip
    got = harmony_statistics(comps, chord_of, tables)
    want = _stats_from_reference(comps, chord_of, tables)
    for name in HARMONY_STAT_NAMES:
        assert (math.isnan(got[name]) and math.isnan(want[name])) or got[name] == want[name], name
