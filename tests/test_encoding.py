"""Encoding: classes <-> pitches, melodies <-> notes, keys."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rltuner.encoding import (
    C_MAJOR,
    NO_EVENT,
    NOTE_OFF,
    Key,
    NoteArray,
    class_to_pitch,
    melody_to_notes,
    notes_to_melody,
    pitch_to_class,
)


def test_class_pitch_mapping():
    assert pitch_to_class(60) == 14 and class_to_pitch(14) == 60
    assert pitch_to_class(48) == 2 and pitch_to_class(83) == 37
    np.testing.assert_array_equal(class_to_pitch(np.arange(2, 38)), np.arange(48, 84))
    with pytest.raises(ValueError):
        pitch_to_class(84)
    with pytest.raises(ValueError):
        class_to_pitch(1)


def test_spec_examples():
    # [4,1,0,1] = an eighth-note D3 then an eighth rest
    n = melody_to_notes(np.array([4, 1, 0, 1]))
    assert n.pitch.tolist() == [50] and n.onset.tolist() == [0] and n.duration.tolist() == [2]
    # [2,4,6,7] = four sixteenths C3 D3 E3 F3
    n = melody_to_notes(np.array([2, 4, 6, 7]))
    assert n.pitch.tolist() == [48, 50, 52, 53] and n.duration.tolist() == [1, 1, 1, 1]


def test_c_major_sets_match_spec():
    assert C_MAJOR.key_classes.tolist() == [
        0,
        1,
        2,
        4,
        6,
        7,
        9,
        11,
        13,
        14,
        16,
        18,
        19,
        21,
        23,
        25,
        26,
        28,
        30,
        31,
        33,
        35,
        37,
    ]
    assert C_MAJOR.scale_classes.tolist() == [2, 4, 6, 7, 9, 11, 13, 14, 16, 18, 19, 21, 23, 25, 26]
    assert C_MAJOR.tonic_class == 14 and Key(9, "minor").tonic_class == 23
    assert C_MAJOR.tonic_notes.tolist() == [2, 14, 26]
    assert C_MAJOR.third_notes.tolist() == [6, 18, 30]
    assert C_MAJOR.fifth_notes.tolist() == [9, 21, 33]
    # the relative minor shares the key set
    assert Key.parse("A minor").key_classes.tolist() == C_MAJOR.key_classes.tolist()


def test_other_keys():
    g = Key.parse("G major")
    assert g.tonic_class == 21 and 8 in g.key_classes and 7 not in g.key_classes  # F# in, F out
    d = Key.parse("D minor")
    assert d.tonic_class == 16 and d.third_notes.tolist() == [7, 19, 31]  # F
    assert d.fifth_notes.tolist() == [11, 23, 35]  # A
    assert Key.parse("f#m") == Key(6, "minor") and Key.parse("Bb") == Key(10, "major")
    assert Key.parse("E").transposition_to(C_MAJOR) == -4
    with pytest.raises(ValueError):
        Key.parse("H major")
    with pytest.raises(ValueError):
        Key(12)


@given(st.lists(st.integers(0, 37), min_size=1, max_size=64))
def test_melody_notes_roundtrip(seq):
    """notes_to_melody(melody_to_notes(m)) == m except where m holds something MIDI cannot
    express: a hold or note-off with nothing sounding is a rest either way."""
    m = np.array(seq)
    back = notes_to_melody(melody_to_notes(m), len(m))
    canonical = notes_to_melody(melody_to_notes(back), len(m))
    np.testing.assert_array_equal(back, canonical)
    sounding = False
    for a, b in zip(m, back, strict=True):
        if a >= 2:
            assert b == a
            sounding = True
        elif a == NOTE_OFF:
            if sounding:
                assert b == NOTE_OFF
            sounding = False
        elif sounding:
            assert b == NO_EVENT


def test_notes_to_melody_gaps_and_overlaps():
    notes = NoteArray(np.array([60, 62]), np.array([0, 2]), np.array([4, 1]))  # overlap: cut
    assert notes_to_melody(notes).tolist() == [14, 1, 16, 0]  # length = latest end (4)
    notes = NoteArray(np.array([60, 62]), np.array([0, 4]), np.array([2, 2]))  # gap: rest
    assert notes_to_melody(notes).tolist() == [14, 1, 0, 1, 16, 1]
