"""Melody extraction, key handling and MIDI round trips (fixtures: tests/fixtures/README.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rltuner.encoding import Key, melody_to_notes, notes_to_melody
from rltuner.errors import RltunerError
from rltuner.harmony import Chord, ChordSpan, Progression
from rltuner.midi_io import (
    CHORD_VELOCITY,
    DROP_FEW_PITCHES,
    DROP_RANGE,
    DROP_SHORT,
    NoteTrack,
    chord_voicing,
    estimate_key,
    extract_melodies,
    load_pretty_midi,
    melodies_from_track,
    melody_to_pretty_midi,
    read_midi,
    write_midi,
)

FIX = Path(__file__).parent / "fixtures"
NO_FILTER = dict(min_bars=0, min_unique_pitches=0, gap_bars=None)
C_MAJOR_TUNE = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 67, 62, 60]


def quarters(pitches, start=0):
    return [(p, start + 4 * i, 4) for i, p in enumerate(pitches)]


def make_pm(notes, key_number=None, drum=False, qpm=120.0) -> pretty_midi.PrettyMIDI:
    """In-memory MIDI; notes are (pitch, onset step, duration steps) at ``qpm``."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    if key_number is not None:
        pm.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    inst = pretty_midi.Instrument(0, is_drum=drum, name="test")
    step = 60.0 / qpm / 4
    for p, o, d in notes:
        inst.notes.append(pretty_midi.Note(100, p, o * step, (o + d) * step))
    pm.instruments.append(inst)
    return pm


def pitches_of(melody):
    return (melody_to_notes(melody).pitch).tolist()


# ----------------------------------------------------------------------------- fixtures


def test_polyphonic_keeps_highest_note():
    (m,) = read_midi(FIX / "polyphonic.mid")
    assert pitches_of(m.melody) == [72, 74, 76, 77, 79, 77, 76, 74, 72, 74, 76, 79, 77, 76, 74, 72]
    assert m.melody.dtype == np.int8 and m.melody[0] >= 2
    assert np.all(m.melody[1:4] == 1)  # quarter notes: onset + 3 holds


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("drums_only.mid", "no melody found (only drum tracks)"),
        ("empty.mid", "empty file"),
        ("corrupt.mid", "not a valid MIDI file"),
        ("missing.mid", "no such file"),
    ],
)
def test_bad_files_raise_rltuner_error_naming_the_file(name, phrase):
    with pytest.raises(RltunerError) as err:
        read_midi(FIX / name)
    assert phrase in str(err.value)
    assert name in str(err.value)


def test_folder_and_no_notes_errors(tmp_path):
    with pytest.raises(RltunerError, match="is a folder"):
        read_midi(tmp_path)
    path = tmp_path / "silent.mid"
    pretty_midi.PrettyMIDI().write(str(path))
    with pytest.raises(RltunerError, match="silent.mid: no melody found .the file has no notes"):
        read_midi(path)


def test_out_of_range_track_dropped_and_low_track_shifted_up():
    ex = extract_melodies(load_pretty_midi(FIX / "out_of_range.mid"))
    assert ex.dropped == {DROP_RANGE: 1}
    (m,) = ex.melodies
    assert m.track == "low" and m.transposition == 24
    assert pitches_of(m.melody)[:3] == [52, 53, 55]


def test_gap_of_a_bar_or_more_splits():
    first, second = read_midi(FIX / "gap_split.mid")
    assert (first.start_step, second.start_step) == (0, 80)
    assert np.array_equal(first.melody, second.melody) and first.melody.size == 48


def test_short_fragment_dropped():
    ex = extract_melodies(load_pretty_midi(FIX / "short_fragment.mid"))
    assert len(ex.melodies) == 1 and ex.dropped == {DROP_SHORT: 1}
    assert ex.melodies[0].melody.size == 48


def test_tempo_change_quantised_by_ticks():
    (m,) = read_midi(FIX / "tempo_change.mid", transpose=False)
    notes = melody_to_notes(m.melody)
    assert notes.onset.tolist() == list(range(0, 64, 4))
    assert set(notes.duration.tolist()) == {4}


def test_stated_key_signature_is_used():
    (m,) = read_midi(FIX / "key_stated_d_major.mid")
    assert m.source_key == Key(2, "major") and m.transposition == -2
    assert pitches_of(m.melody)[:3] == [60, 62, 64]


def test_key_estimated_without_signature():
    (m,) = read_midi(FIX / "key_unstated_g_major.mid")
    assert m.source_key == Key(7, "major")
    assert m.transposition == -7  # smallest shift G -> C is +5, then the octave closest to 0
    assert pitches_of(m.melody)[0] == 60


def test_implausible_key_signature_is_replaced_by_estimate():
    d_major = [62, 64, 66, 67, 69, 71, 73, 74, 73, 71, 69, 66, 62, 66, 69, 62]
    pm = make_pm(quarters(d_major), key_number=0)  # claims C major
    (auto,) = extract_melodies(pm).melodies
    assert auto.source_key == Key(2, "major") and auto.transposition == -2
    (notated,) = extract_melodies(pm, key_mode="notated").melodies
    assert notated.source_key == Key(0, "major") and notated.transposition == 0
    (est,) = extract_melodies(
        make_pm(quarters(C_MAJOR_TUNE), key_number=2), key_mode="estimate"
    ).melodies
    assert est.source_key == Key(0, "major")


def test_minor_key_goes_to_a_minor():
    e_minor = [64, 66, 67, 71, 69, 67, 66, 64, 71, 72, 71, 69, 67, 66, 64, 64]
    (m,) = extract_melodies(make_pm(quarters(e_minor), key_number=16)).melodies  # E minor
    assert m.source_key == Key(4, "minor") and m.transposition == 5
    assert pitches_of(m.melody)[0] == 69


def test_transpose_false_keeps_key():
    (m,) = read_midi(FIX / "key_unstated_g_major.mid", transpose=False)
    assert m.transposition == 0 and pitches_of(m.melody)[0] == 67


# ----------------------------------------------------------------------------- key estimation


def test_estimate_key_c_major_scale():
    assert estimate_key(np.arange(60, 73)[[0, 2, 4, 5, 7, 9, 11, 12]]) == Key(0, "major")


def test_estimate_key_a_minor_melody():
    pitches = [69, 72, 76, 74, 72, 71, 69, 64, 65, 64, 62, 60, 59, 57, 64, 69]
    durations = [4, 2, 2, 2, 2, 2, 4, 4, 2, 2, 2, 2, 2, 4, 4, 8]
    assert estimate_key(pitches, durations) == Key(9, "minor")


@pytest.mark.parametrize("shift", [1, 3, 5, 7, -2])
def test_estimate_key_follows_transposition(shift):
    durations = [4] * 15 + [8]
    assert estimate_key(np.array(C_MAJOR_TUNE) + shift, durations) == Key(shift % 12, "major")


def test_estimate_key_degenerate_input():
    assert estimate_key([]) == Key(0, "major")


# ----------------------------------------------------------------------------- monophony etc.


def test_new_onset_cuts_sustained_note_and_quantises_off_grid_notes():
    track = NoteTrack(
        "t",
        pitch=np.array([60, 64, 67, 62, 55]),
        onset=np.array([0, 4, 8, 8, 12]),
        duration=np.array([16, 2, 8, 8, 4]),
    )
    (m,) = melodies_from_track(track, transpose=False, **NO_FILTER).melodies
    notes = melody_to_notes(m.melody)
    assert notes.pitch.tolist() == [60, 64, 67, 55]  # 67 beats 62 at step 8
    assert notes.onset.tolist() == [0, 4, 8, 12]
    assert notes.duration.tolist() == [4, 2, 4, 4]  # 60 cut at 4; 64 leaves a rest
    # humanised timing: 10 ms early/late at 120 qpm (a step is 125 ms) still quantises
    pm = make_pm([(p, o + 0.08 * (-1) ** o, d) for p, o, d in quarters(C_MAJOR_TUNE)])
    (h,) = extract_melodies(pm, transpose=False).melodies
    assert melody_to_notes(h.melody).onset.tolist() == list(range(0, 64, 4))


def test_few_distinct_pitches_dropped():
    pm = make_pm(quarters([60, 62] * 8))
    assert extract_melodies(pm).dropped == {DROP_FEW_PITCHES: 1}


def test_drum_tracks_skipped_when_melody_exists():
    pm = make_pm(quarters(C_MAJOR_TUNE))
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 90, 0.0, 0.1))  # high, would win monophony
    pm.instruments.append(drums)
    (m,) = extract_melodies(pm).melodies
    assert pitches_of(m.melody)[0] == 60


# ----------------------------------------------------------------------------- writing


def test_write_read_round_trip(tmp_path):
    melody = np.array([14, 1, 16, 1, 18, 0, 1, 1, 19, 21, 23, 1, 1, 1, 25, 2, 37, 1], dtype=np.int8)
    path = write_midi(melody, tmp_path / "out" / "song.mid")
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["song.mid"]
    (m,) = read_midi(path, transpose=False, **NO_FILTER)
    assert np.array_equal(m.melody, melody)
    pm = load_pretty_midi(path)
    assert pm.estimate_tempo() > 0 and pm.get_tempo_changes()[1][0] == pytest.approx(80.0)


def test_melody_to_pretty_midi_timing():
    pm = melody_to_pretty_midi(np.array([14, 1, 1, 1, 0, 1, 16]), qpm=60.0, program=73, velocity=64)
    (inst,) = pm.instruments
    assert inst.program == 73
    assert [(n.pitch, n.start, n.end, n.velocity) for n in inst.notes] == [
        (60, 0.0, 1.0, 64),
        (62, 1.5, 1.75, 64),
    ]


def test_write_rejects_bad_classes(tmp_path):
    with pytest.raises(ValueError):
        write_midi(np.array([2, 40]), tmp_path / "x.mid")
    assert not (tmp_path / "x.mid").exists()


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(2, 37),
    rest=st.lists(st.integers(0, 37), max_size=80),
    qpm=st.sampled_from([40.0, 80.0, 123.0, 200.0]),
)
def test_round_trip_property(tmp_path_factory, first, rest, qpm):
    melody = np.array([first, *rest], dtype=np.int64)
    path = tmp_path_factory.mktemp("rt") / "m.mid"
    write_midi(melody, path, qpm=qpm)
    (m,) = read_midi(path, transpose=False, **NO_FILTER)
    # MIDI keeps notes, not redundant note-offs or a trailing rest: compare the canonical form
    expected = notes_to_melody(melody_to_notes(melody))
    assert np.array_equal(m.melody, expected)


# ----------------------------------------------------------------------------- chord track

C = Chord("C", 0, (0, 4, 7), 0)
G7 = Chord("G7", 7, (7, 11, 2, 5), 7)
AM = Chord("Am", 9, (9, 0, 4), 9)
F_OVER_A = Chord("F/A", 5, (5, 9, 0), 9)
SONG = np.array([14, 1, 16, 1, 18, 0, 1, 1, 19, 21, 23, 1, 1, 1, 25, 2, 37, 1], dtype=np.int64)


def _step_seconds(pm: pretty_midi.PrettyMIDI) -> float:
    _, tempi = pm.get_tempo_changes()
    assert tempi.size == 1
    return 60.0 / float(tempi[0]) / 4


def test_melody_only_file_is_byte_identical_to_before_chords_existed(tmp_path):
    # sha256 of write_midi(SONG) as written before the chord track was added (commit c1da928)
    path = write_midi(SONG, tmp_path / "m.mid")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "dba7f83b46252344a7a01ba5c8879d265bb744ddbde806e55a38e5ba240d0c6e"
    assert path.read_bytes() == write_midi(SONG, tmp_path / "n.mid", chords=None).read_bytes()


def test_chord_voicing_lies_below_the_melody_with_the_bass_lowest():
    assert chord_voicing(C) == [36, 48, 52, 55]
    assert chord_voicing(G7) == [43, 50, 53, 55, 59]
    assert chord_voicing(F_OVER_A) == [45, 48, 53, 57]  # slash bass in the lowest octave
    for ch in (C, G7, AM, F_OVER_A):
        v = chord_voicing(ch)
        assert 36 <= v[0] <= 47 and v[0] % 12 == ch.bass
        assert all(48 <= p <= 59 for p in v[1:]) and v[1:] == sorted(set(v[1:]))
        assert {p % 12 for p in v[1:]} == set(ch.pitch_classes)


@pytest.mark.parametrize("qpm", [80.0, 123.0])
def test_block_chords_on_a_second_track(tmp_path, qpm):
    spans = Progression((C, G7, AM, F_OVER_A), (8, 8, 4, 4)).spans(SONG.size + 6)
    assert [(s.chord.symbol, s.start, s.steps) for s in spans] == [
        ("C", 0, 8), ("G7", 8, 8), ("Am", 16, 4), ("F/A", 20, 4),
    ]  # fmt: skip
    path = write_midi(SONG, tmp_path / "b.mid", qpm=qpm, chords=spans)
    pm = load_pretty_midi(path)
    melody, chords = pm.instruments
    assert (melody.name, chords.name) == ("melody", "chords")
    assert chords.program != melody.program
    plain = melody_to_pretty_midi(SONG, qpm=qpm).instruments[0]
    assert [(n.pitch, n.velocity) for n in melody.notes] == [(n.pitch, n.velocity)
                                                             for n in plain.notes]  # fmt: skip
    assert np.allclose([(n.start, n.end) for n in melody.notes],
                       [(n.start, n.end) for n in plain.notes], atol=1e-3)  # fmt: skip
    step = _step_seconds(pm)
    assert step == pytest.approx(60.0 / qpm / 4, rel=1e-3)
    for span in spans:
        t0, t1 = span.start * step, (span.start + span.steps) * step
        sounding = [n for n in chords.notes if abs(n.start - t0) < 1e-3]
        assert {n.pitch % 12 for n in sounding} == set(span.chord.pitch_classes)
        assert all(abs(n.end - t1) < 1e-3 for n in sounding)
        assert min(n.pitch for n in sounding) % 12 == span.chord.bass
    assert len(chords.notes) == sum(len(chord_voicing(s.chord)) for s in spans)
    assert all(n.velocity == CHORD_VELOCITY < 100 for n in chords.notes)
    assert max(n.pitch for n in chords.notes) < 60 <= max(n.pitch for n in melody.notes)
    # the melody read back from the two-track file is the melody written
    extracted = [m for m in read_midi(path, transpose=False, **NO_FILTER) if m.track == "melody"]
    assert np.array_equal(extracted[0].melody, notes_to_melody(melody_to_notes(SONG)))


def test_arpeggio_plays_chord_tones_in_eighths(tmp_path):
    spans = [ChordSpan(C, 0, 8), ChordSpan(G7, 8, 5)]
    pm = load_pretty_midi(write_midi(SONG, tmp_path / "a.mid", chords=spans,
                                     chord_style="arpeggio"))  # fmt: skip
    _, chords = pm.instruments
    step = _step_seconds(pm)
    got = [(n.pitch, round(n.start / step), round(n.end / step)) for n in chords.notes]
    assert got == [
        (36, 0, 2), (48, 2, 4), (52, 4, 6), (55, 6, 8),  # C: bass then upwards, one per eighth
        (43, 8, 10), (50, 10, 12), (53, 12, 13),  # G7 cut at its span's end (5 steps)
    ]  # fmt: skip
    assert all(n.velocity == CHORD_VELOCITY for n in chords.notes)


def test_program_clash_and_bad_chord_input(tmp_path):
    pm = melody_to_pretty_midi(SONG, program=4, chords=[ChordSpan(C, 0, 4)])
    assert pm.instruments[0].program == 4 and pm.instruments[1].program == 0
    with pytest.raises(ValueError, match="chord style must be one of block, arpeggio"):
        write_midi(SONG, tmp_path / "x.mid", chords=[ChordSpan(C, 0, 4)], chord_style="strum")
    with pytest.raises(ValueError, match="lasts 0 steps"):
        write_midi(SONG, tmp_path / "x.mid", chords=[ChordSpan(C, 0, 0)])
    assert not (tmp_path / "x.mid").exists()
    assert len(melody_to_pretty_midi(SONG, chords=[]).instruments[1].notes) == 0
