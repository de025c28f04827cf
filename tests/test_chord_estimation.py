"""Tests of the chord estimator (``rltuner.chord_estimation``) on MIDI files written here with
pretty_midi. Notes are (MIDI pitch, start step, steps) in sixteenths."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from rltuner.chord_estimation import accompaniment, estimate_chords, progression_from_midi
from rltuner.errors import RltunerError
from rltuner.harmony import check_fits
from rltuner.midi_io import NoteTrack

C2, A2, C3, E3, G3 = 36, 45, 48, 52, 55
CHORDS = {  # block chords in the third octave, the root in the bass an octave lower
    "C": (36, 48, 52, 55), "G": (43, 55, 59, 62), "Am": (45, 57, 60, 64), "F": (41, 53, 57, 60),
    "G7": (43, 55, 59, 62, 65), "Bdim": (47, 59, 62, 65), "Am7": (45, 57, 60, 64, 67),
    "Dm": (38, 50, 53, 57), "E": (40, 52, 56, 59), "Cm7": (36, 48, 51, 55, 58),
}  # fmt: skip


def write_midi(path, parts, qpm=120.0):
    """``parts``: (program, notes, is_drum) per instrument."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    sixteenth = 60.0 / qpm / 4
    for program, notes, is_drum in parts:
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
        for pitch, start, steps in notes:
            inst.notes.append(
                pretty_midi.Note(80, pitch, start * sixteenth, (start + steps) * sixteenth)
            )
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def block(symbols, steps=16, length=None):
    """Block chords, one per ``steps``, each sounding ``length`` steps (default: all)."""
    out = []
    for i, s in enumerate(symbols):
        if s is not None:
            out += [(p, i * steps, length or steps) for p in CHORDS[s]]
    return out


def track(notes, name="t"):
    p, o, d = (np.array(x, dtype=np.int64) for x in zip(*notes, strict=True))
    return NoteTrack(name, p, o, d)


@pytest.mark.parametrize("qpm", [60.0, 90.0, 120.0, 150.0])
def test_four_chords_at_any_tempo(tmp_path, qpm):
    melody = [(76, 0, 4), (77, 4, 4), (79, 8, 8), (81, 16, 16), (72, 32, 16), (74, 48, 16)]
    f = write_midi(tmp_path / "song.mid", [(0, block(["C", "G", "Am", "F"]), False),
                                           (73, melody, False)], qpm)  # fmt: skip
    prog = progression_from_midi(f)
    assert prog.symbols() == "C G Am F"
    assert prog.durations == (16, 16, 16, 16)
    # two chords per bar with chord_steps=8: each bar's chord twice
    assert progression_from_midi(f, chord_steps=8).symbols() == "C C G G Am Am F F"


def test_sevenths_and_diminished_and_ties_go_to_triads(tmp_path):
    f = write_midi(tmp_path / "s.mid", [(0, block(["G7", "Bdim", "Am7", "C", "Cm7"]), False)])
    # B D F is all inside G7 too: the tie goes to the triad
    assert progression_from_midi(f).symbols() == "G7 Bdim Am7 C Cm7"


def test_the_melody_is_left_out(tmp_path):
    # short chord stabs (4 steps a bar) under a sustained Eb: with the melody, C minor
    stabs = block(["C", "C"], length=4)
    melody = [(75, 0, 16), (75, 16, 16)]
    f = write_midi(tmp_path / "m.mid", [(0, stabs, False), (73, melody, False)])
    assert progression_from_midi(f).symbols() == "C C"
    with_melody = estimate_chords([track(stabs), track(melody)], 16)
    assert [c.symbol for c in with_melody] == ["Cm", "Cm"]
    # a single instrument is all accompaniment, melody and all
    f1 = write_midi(tmp_path / "one.mid", [(0, stabs + melody, False)])
    assert progression_from_midi(f1).symbols() == "Cm Cm"


def test_accompaniment_drops_the_highest_monophonic_track():
    chords = track(block(["C", "F"]), "piano")
    tune = track([(72, 0, 8), (74, 8, 8), (76, 16, 16)], "tune")
    bass = track([(36, 0, 16), (41, 16, 16)], "bass")
    assert [t.name for t in accompaniment([chords, tune, bass])] == ["piano", "bass"]
    assert [t.name for t in accompaniment([bass, chords])] == ["piano"]  # bass: the only tune
    # without a monophonic track nothing is dropped
    assert [t.name for t in accompaniment([chords])] == ["piano"]
    high_chords = track([(p + 24, s, d) for p, s, d in block(["C", "F"])], "high")
    assert len(accompaniment([chords, high_chords])) == 2


def test_the_bass_weighs_more():
    # B2 in the bass for 4 steps under E4 G4 (whole window) and C5 (6 steps). Weights (bass
    # counted twice): B 8, E 16 + 12 (the bass after B), G 16, C 6. E minor: 52 - 6 = 46;
    # C major 50 - 8 = 42. Counted once, C major would win (38 - 4 = 34 against 36 - 6 = 30).
    notes = [(47, 0, 4), (64, 0, 16), (67, 0, 16), (72, 0, 6)]
    assert estimate_chords([track(notes)], 16)[0].symbol == "Em"
    # the same notes with the B above the rest: no longer the bass; C 54 - 4, Em 52 - 6
    notes[0] = (83, 0, 4)
    assert estimate_chords([track(notes)], 16)[0].symbol == "C"
    # the dyad C E: C major with C in the bass, A minor with A in the bass
    assert estimate_chords([track([(C3, 0, 16), (E3, 0, 16)])], 16)[0].symbol == "C"
    assert estimate_chords([track([(A2, 0, 16), (C3, 0, 16), (E3, 0, 16)])], 16)[0].symbol == "Am"


def test_empty_windows_repeat_the_chord_before(tmp_path):
    f = write_midi(tmp_path / "gap.mid", [(0, block([None, "Dm", None, "G", None, "C"]), False)])
    assert progression_from_midi(f).symbols() == "Dm Dm Dm G G C"


def test_drums_are_ignored_and_max_steps_cuts(tmp_path):
    drums = [(38, s, 1) for s in range(0, 64, 2)] + [(42, s, 1) for s in range(0, 64, 2)]
    f = write_midi(tmp_path / "d.mid", [(0, block(["E", "Am", "Dm", "G"]), False),
                                        (0, drums, True)])  # fmt: skip
    assert progression_from_midi(f).symbols() == "E Am Dm G"
    cut = progression_from_midi(f, max_steps=32)
    assert cut.symbols() == "E Am"
    check_fits(cut, 32)
    assert progression_from_midi(f, max_steps=40).symbols() == "E Am"  # whole chords only
    assert progression_from_midi(f, chord_steps=8, max_steps=20).symbols() == "E E"


def test_errors_name_the_file(tmp_path):
    with pytest.raises(RltunerError, match="nope.mid: no such file"):
        progression_from_midi(tmp_path / "nope.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    with pytest.raises(RltunerError, match="bad.mid: not a valid MIDI file"):
        progression_from_midi(bad)
    drums = write_midi(tmp_path / "drums.mid", [(0, [(38, 0, 4)], True)])
    with pytest.raises(RltunerError, match="drums.mid: no notes"):
        progression_from_midi(drums)
    f = write_midi(tmp_path / "ok.mid", [(0, block(["C"]), False)])
    with pytest.raises(RltunerError, match="ok.mid: chord steps must be >= 1"):
        progression_from_midi(f, chord_steps=0)
    with pytest.raises(RltunerError, match="shorter than one chord"):
        progression_from_midi(f, max_steps=8)
    # notes only after max_steps: nothing to estimate from
    late = write_midi(tmp_path / "late.mid", [(0, block([None, None, "C"]), False)])
    with pytest.raises(RltunerError, match="late.mid: no notes"):
        progression_from_midi(late, max_steps=32)
